//! What a traffic source needs beyond the forwarder's RX → TX path: mbufs
//! allocated in bulk straight into a burst, and the port's link state (a
//! memif or af_packet peer may come up after the port starts).
//!
//! Kept apart from `mbuf.rs`, `mempool.rs` and `port.rs` so the forwarder's
//! hot path and this code change independently.

use crate::error::{check, Result};
use crate::mbuf::MbufBurst;
use crate::mempool::Mempool;
use crate::port::Port;
use crate::sys;

impl Mempool {
    /// Allocates `n` mbufs (reset: empty, default headroom) into the free
    /// slots of `burst` with one call (`rte_pktmbuf_alloc_bulk`), all or
    /// none. Returns `false` and leaves `burst` unchanged if the pool has
    /// fewer than `n` available or `burst` has fewer than `n` free slots.
    #[inline]
    pub fn alloc_bulk(&self, burst: &mut MbufBurst, n: usize) -> bool {
        let (ptr, room) = burst.spare_raw();
        if n == 0 {
            return true;
        }
        if n > room as usize {
            return false;
        }
        // SAFETY: `ptr` points at `room` >= n free slots of the burst's
        // array; the pool is a live pktmbuf pool (we hold it). On success
        // DPDK wrote n owned, reset mbufs there; on failure it wrote nothing
        // we keep (the call is all-or-none).
        let ret = unsafe { sys::dnlb_pktmbuf_alloc_bulk(self.as_ptr(), ptr, n as u32) };
        if ret != 0 {
            return false;
        }
        // SAFETY: the n slots after the live ones now hold owned mbufs.
        unsafe { burst.commit(n) };
        true
    }
}

/// A port's link as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Whether the link is up (for memif: the peer is connected).
    pub up: bool,
    /// Speed in Mb/s as the driver reports it (0 when unknown).
    pub speed_mbps: u32,
}

impl Port {
    /// The link state, without waiting (`rte_eth_link_get_nowait`).
    pub fn link(&self) -> Result<LinkStatus> {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: `l` is a valid out-pointer; the port id is a started port
        // (we hold it).
        check("rte_eth_link_get_nowait", unsafe {
            sys::rte_eth_link_get_nowait(self.id().0, &mut l)
        })?;
        Ok(LinkStatus {
            up: l.link_status() != 0,
            speed_mbps: l.link_speed,
        })
    }
}

//! Packet-buffer pools (`rte_pktmbuf_pool_create`).

use std::ffi::{CStr, CString};
use std::fmt;
use std::ptr::NonNull;

use crate::eal::{Eal, SocketId};
use crate::error::{from_rte_errno, Error, Result};
use crate::mbuf::Mbuf;
use crate::sys;

/// Parameters of a packet-buffer pool.
#[derive(Debug, Clone)]
pub struct MempoolConfig {
    /// Pool name, unique in the process (DPDK limits it to 25 characters).
    pub name: String,
    /// Number of mbufs.
    pub size: u32,
    /// Per-lcore cache size (0 disables caches; at most 512).
    pub cache_size: u32,
    /// Data room per mbuf including headroom (default 2048 + 128).
    pub data_room: u16,
    /// NUMA socket for the memory.
    pub socket: SocketId,
}

impl MempoolConfig {
    /// A pool of `size` mbufs with DPDK's default buffer size.
    pub fn new(name: impl Into<String>, size: u32) -> Self {
        MempoolConfig {
            name: name.into(),
            size,
            cache_size: 256.min(size / 8),
            data_room: sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            socket: SocketId::ANY,
        }
    }
}

/// A pool of packet buffers. Thread-safe: any thread may allocate from it.
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
    name: String,
    _eal: Eal,
}

// SAFETY: rte_mempool is designed for concurrent use from many threads
// (per-lcore caches plus a lock-free ring behind them).
unsafe impl Send for Mempool {}
// SAFETY: as above; all methods take &self and DPDK synchronises internally.
unsafe impl Sync for Mempool {}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool").field("name", &self.name).finish()
    }
}

impl Mempool {
    /// Creates a pool.
    pub fn new(eal: &Eal, cfg: &MempoolConfig) -> Result<Mempool> {
        let cname =
            CString::new(cfg.name.as_str()).map_err(|_| Error::NulInArgument(cfg.name.clone()))?;
        // SAFETY: EAL is initialised (we hold a handle); cname is valid for the call.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                cfg.size,
                cfg.cache_size,
                0,
                cfg.data_room,
                cfg.socket.0,
            )
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| from_rte_errno("rte_pktmbuf_pool_create"))?;
        Ok(Mempool {
            ptr,
            name: cfg.name.clone(),
            _eal: eal.clone(),
        })
    }

    /// The pool's name as DPDK knows it.
    pub fn name(&self) -> String {
        // SAFETY: ptr is a live mempool; its name is a NUL-terminated array.
        unsafe { CStr::from_ptr(self.ptr.as_ref().name.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Allocates one mbuf (reset, empty, with default headroom).
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: ptr is a live pktmbuf pool.
        let m = unsafe { sys::dnlb_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a non-null result is a freshly allocated mbuf we now own.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Allocates an mbuf holding a copy of `bytes`, or `None` if the pool is
    /// empty or `bytes` does not fit one segment.
    pub fn alloc_with(&self, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = self.alloc()?;
        let len = u16::try_from(bytes.len()).ok()?;
        m.append(len)?.copy_from_slice(bytes);
        Some(m)
    }

    /// Mbufs available (approximate while other threads use the pool).
    pub fn available(&self) -> u32 {
        // SAFETY: ptr is a live mempool.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs in use (approximate while other threads use the pool).
    pub fn in_use(&self) -> u32 {
        // SAFETY: ptr is a live mempool.
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool is ours; ports that used it hold an Arc to it and
        // were closed before this runs (see `Port`), so no PMD references it.
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) }
    }
}

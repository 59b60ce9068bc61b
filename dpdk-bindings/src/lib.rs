//! The only crate in dnlb that talks C.
//!
//! [`sys`] holds bindgen output generated against the system DPDK (found with
//! pkg-config, `libdpdk` >= 22.11) and a small C shim for DPDK's static-inline
//! functions and thread-local variables. The rest is a safe layer: EAL
//! initialisation ([`Eal`]), mempools, ports with RX/TX queues and RSS, burst
//! receive and transmit, and mbufs as byte slices with headroom for
//! encapsulation. Errors are typed ([`Error`]) and carry the DPDK errno.
//!
//! Lifetimes: every [`Mempool`], [`Port`] and queue holds a handle on the
//! [`Eal`]; ports hold their pool. The EAL is cleaned up when the last handle
//! goes, ports are stopped and closed when their last queue goes.

pub mod eal;
pub mod error;
pub mod mbuf;
pub mod mempool;
pub mod port;
pub mod source;
pub mod sys;

pub use eal::{rdtsc, Eal, Launched, LcoreId, SocketId};
pub use error::{Error, Result};
pub use mbuf::{Mbuf, MbufBurst, BURST_SIZE};
pub use mempool::{Mempool, MempoolConfig};
pub use port::{
    port_by_name, port_count, port_info, Port, PortConfig, PortId, PortInfo, PortStats, QueueId,
    RxQueue, TxQueue,
};
pub use source::LinkStatus;

//! Typed errors for the slow path. Each failing DPDK call is named and its
//! errno (negative return or `rte_errno`) is carried with DPDK's own text.

use std::ffi::CStr;

use crate::sys;

/// What went wrong in a DPDK call made through the safe layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// DPDK's EAL can be initialised only once per process, even after cleanup.
    #[error("the DPDK EAL was already initialised in this process (rte_eal_init may run only once per process)")]
    EalAlreadyInitialized,
    /// An EAL argument, device or pool name contained a NUL byte.
    #[error("argument contains a NUL byte: {0:?}")]
    NulInArgument(String),
    /// A DPDK call returned an error.
    #[error("{call} failed: {message} (errno {errno})")]
    Call {
        /// The DPDK function that failed.
        call: &'static str,
        /// The positive errno value.
        errno: i32,
        /// DPDK's `rte_strerror` text for it.
        message: String,
    },
    /// No ethernet device with that name was probed.
    #[error("no DPDK port named {0:?}: the device is not in the EAL arguments, or its probe failed (see the EAL log)")]
    NoSuchPort(String),
    /// A queue index outside what the port was configured with.
    #[error("port {port}: {kind} queue {queue} does not exist or is already owned by a worker")]
    QueueUnavailable {
        /// Port id.
        port: u16,
        /// "rx" or "tx".
        kind: &'static str,
        /// Queue index.
        queue: u16,
    },
    /// The device cannot do what the configuration asks.
    #[error("port {port}: {what}")]
    Unsupported {
        /// Port id.
        port: u16,
        /// What is not supported.
        what: String,
    },
    /// The lcore cannot run a worker (not enabled, the main lcore, or busy).
    #[error("lcore {0} is not an idle EAL worker lcore")]
    LcoreUnavailable(u32),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn strerror(errno: i32) -> String {
    if errno == 0 {
        return "DPDK gave no error code; see its log above".to_string();
    }
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string that stays valid until the next call on this
    // thread; it is copied out at once.
    unsafe {
        let p = sys::rte_strerror(errno);
        if p.is_null() {
            format!("errno {errno}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Builds an error from a negative DPDK return code (`-errno`).
pub(crate) fn from_ret(call: &'static str, ret: i32) -> Error {
    let errno = ret.checked_neg().unwrap_or(i32::MAX);
    Error::Call {
        call,
        errno,
        message: strerror(errno),
    }
}

/// Builds an error from the calling thread's `rte_errno`.
pub(crate) fn from_rte_errno(call: &'static str) -> Error {
    // SAFETY: reads this thread's rte_errno through the C shim; no preconditions.
    let errno = unsafe { sys::dnlb_errno() };
    Error::Call {
        call,
        errno,
        message: strerror(errno),
    }
}

/// Turns a DPDK `int` return (0 or positive = success, negative = -errno).
pub(crate) fn check(call: &'static str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(from_ret(call, ret))
    } else {
        Ok(ret)
    }
}

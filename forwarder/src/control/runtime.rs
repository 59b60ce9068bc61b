//! The control side's async runtime: a small multi-threaded tokio runtime
//! for the control plane's I/O — the admin server's connections and the
//! health probes. Workers never touch it; the control thread hands it work
//! and never blocks on it. Built on the control thread after EAL init, its
//! threads inherit the main lcore's CPU set, never a worker's.

use std::io;

/// Threads the runtime runs on: probes and clients wait on sockets, not
/// CPU; two, so a request waiting for the control thread never stops
/// another from being accepted.
const THREADS: usize = 2;

/// Starts the runtime (`dnlb-ctl` threads). A thread that cannot be started
/// is an error, not a panic.
pub fn start() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .max_blocking_threads(4)
        .thread_name("dnlb-ctl")
        .enable_all()
        .build()
}

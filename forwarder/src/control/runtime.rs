//! The control side's async runtime: a small multi-threaded tokio runtime
//! for the admin server (and other control-side I/O). Workers never touch
//! it; the control thread hands it work and never blocks on it.

use std::io;

/// Threads the runtime runs on. Two: a request that waits for the control
/// thread never stops another from being accepted.
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

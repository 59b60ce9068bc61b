//! The control plane's async runtime: a small multi-thread tokio runtime for
//! its I/O-bound helpers (health probes today). Never on a worker lcore:
//! built on the control thread after EAL init, its threads inherit the main
//! lcore's CPU set.

use tokio::runtime::Runtime;

/// Worker threads of the control runtime: probes wait on sockets, not CPU.
const THREADS: usize = 2;

/// Builds the control runtime: [`THREADS`] threads named `dnlb-ctl`, with
/// I/O and timers.
pub fn control_runtime() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .thread_name("dnlb-ctl")
        .enable_io()
        .enable_time()
        .build()
}

//! Why a gateway could not run.

use dnlb_lb::snapshot::SnapshotError;

/// Why the forwarder could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A DPDK call failed.
    #[error(transparent)]
    Dpdk(#[from] dpdk_bindings::Error),
    /// A port could not be configured or started.
    #[error("port {name}: {error}{hint}")]
    Port {
        /// The port's DPDK name.
        name: String,
        /// What DPDK said.
        error: dpdk_bindings::Error,
        /// What to check, when the device kind tells (else empty).
        hint: &'static str,
    },
    /// A configured worker lcore is not enabled in the EAL.
    #[error("worker lcore {0} is not enabled by the EAL arguments (check -l/--lcores in dataplane.eal_args)")]
    LcoreNotEnabled(u32),
    /// The configured main lcore is not EAL's main lcore.
    #[error("EAL's main lcore is {actual}, but dataplane.main_lcore is {configured}")]
    MainLcoreMismatch {
        /// From the config.
        configured: u32,
        /// From EAL.
        actual: u32,
    },
    /// The load-balancing state could not be built from the config.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The config file or its run-time changes could not be read at start.
    #[error("{0}")]
    Config(String),
    /// The admin API could not start.
    #[error("{0}")]
    Admin(std::io::Error),
    /// The control plane's async runtime could not start.
    #[error("cannot start the control runtime: {0}")]
    Runtime(std::io::Error),
    /// A worker returned an error code.
    #[error("worker on lcore {lcore} exited with code {code}")]
    WorkerFailed {
        /// The lcore.
        lcore: u32,
        /// Its return code (-1: panicked).
        code: i32,
    },
}

//! The control plane (slow path): brings the data plane up from config,
//! supervises it and takes it down. Runs on the main lcore, never on workers.
//!
//! - [`bringup`]: EAL, pool, ports, the first snapshot, workers launched.
//! - [`run`]: the control loop and the ordered shutdown.
//! - [`plane`]: the control thread's state, the one writer of the running
//!   config (reloads, run-time changes, health changes, drain deadlines).
//! - [`changes`]: what may change at run time and why a change is refused.
//! - [`health`]: health checks (one prober on the control [`runtime`]);
//!   [`routes`]: VIP announcements through BIRD.
//! - [`admin`]: the admin HTTP server on the control side's tokio
//!   [`runtime`] (requests become calls on the control thread); [`report`]
//!   builds the [`status`] it serves and the final report; [`metrics`]
//!   renders the status for Prometheus.
//! - [`events`]: what the control plane tells the outside world.
//! - [`explain`]: `dnlb explain`, where a flow goes and why.
//! - [`plan`]: a config's plan in words (`dnlb check`) and a line diff of
//!   two plans; [`check`]: the admin API's dry run of a new config.

pub mod admin;
pub mod bringup;
pub mod capture;
pub mod changes;
pub mod check;
mod deadlines;
pub mod error;
pub mod events;
pub mod explain;
pub mod health;
pub mod metrics;
pub mod plan;
pub mod plane;
pub mod report;
pub mod routes;
pub mod run;
pub mod runtime;
pub mod status;
pub mod sync;

pub use events::{Event, Events};
pub use run::{run, RunError, RunOptions, RunReport};

//! The control plane (slow path): brings the data plane up from config,
//! supervises it and takes it down. Runs on the main lcore, never on workers.

pub mod api;
pub mod health;
pub mod metrics;
pub mod plane;
pub mod routes;
pub mod run;
pub mod status;

pub use run::{run, RunError, RunOptions, RunReport};

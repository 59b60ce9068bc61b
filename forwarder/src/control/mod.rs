//! The control plane (slow path): brings the data plane up from config,
//! supervises it and takes it down. Runs on the main lcore, never on workers.

pub mod health;
pub mod run;

pub use run::{run, RunError, RunOptions, RunReport};

//! dnlb's forwarder.
//!
//! - [`dataplane`]: the poll-mode worker loop over a packet-I/O trait (DPDK
//!   queues in production, in-memory queues in tests and benchmarks),
//!   pipelines and per-worker counters.
//! - [`control`]: the slow path that builds and runs the data plane from a
//!   validated [`dnlb_config::Config`].
//!
//! Only `dpdk-bindings` calls C; this crate has no `unsafe`.

#![forbid(unsafe_code)]

pub mod control;
pub mod dataplane;

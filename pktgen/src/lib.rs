//! `dnlb-pktgen`: a DPDK traffic generator on dnlb's own bindings.
//!
//! Pure parts, testable without DPDK: [`range`] (address and port ranges,
//! the odometer over their product), [`frame`] (prebuilt frame templates
//! with constant partial checksums), [`gen`] (the flow specification and
//! the packet sequence), [`stamp`] (latency stamps), [`latency`] (samples
//! and percentiles), [`pace`] (the TSC rate limiter), [`report`] (the JSON
//! lines). [`run`] joins them to one DPDK port on one lcore.

#![forbid(unsafe_code)]

pub mod frame;
pub mod gen;
pub mod latency;
pub mod pace;
pub mod range;
pub mod report;
pub mod run;
pub mod stamp;

pub use frame::{Kind, Proto, Tuple, MAX_FRAME, MIN_FRAME};
pub use gen::{FlowSpec, Generator, Next, SpecError};
pub use range::{AddrRange, PortRange};
pub use run::{run, RunConfig, RunError, Session};

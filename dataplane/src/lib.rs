//! dnlb's data plane: the poll-mode worker loop over a packet-I/O trait
//! (DPDK queues in production, in-memory queues in tests and benchmarks),
//! the pipelines it runs, per-worker counters and their publication, and the
//! adoption of load-balancing snapshots the control plane publishes.
//!
//! Depends on `dnlb-lb`, `dnlb-wire`, `dpdk-bindings` and the plain-data
//! `dnlb-model` only: nothing here can reach HTTP, metrics, TOML or JSON, or
//! import control-plane code.
//!
//! Invariants: no lock, allocation, syscall or formatting per packet; every
//! dropped packet increments exactly one [`DropReason`] counter; per-worker
//! state is owned by its worker.

#![forbid(unsafe_code)]
// The rules of `clippy.toml` (no locks, allocation, formatting or clock
// reads outside a `Clock`) and no panicking shortcuts, outside tests (the
// library is linted without `cfg(test)` too, so tests relax nothing of it).
#![cfg_attr(
    not(test),
    deny(
        clippy::disallowed_types,
        clippy::disallowed_methods,
        clippy::disallowed_macros,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]
#![cfg_attr(
    test,
    allow(
        clippy::disallowed_types,
        clippy::disallowed_methods,
        clippy::disallowed_macros
    )
)]

pub mod capture;
pub mod clock;
pub mod counters;
pub mod dpdk;
pub mod explain;
pub mod io;
pub mod lb_pipeline;
pub mod pipeline;
pub mod snapshot;
pub mod stats;
pub mod sync;
#[cfg(any(test, feature = "testing"))]
#[allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test doubles"
)]
pub mod testing;
pub mod worker;

pub use capture::{CaptureBoard, CaptureFilter, CaptureTap};
pub use clock::{Clock, MonotonicClock, TscClock};
pub use counters::{Counters, DropReason, PublishedCounters};
pub use explain::{ExplainBoard, ExplainResponder};
pub use io::{Burst, PacketIo, PortIndex, BURST};
pub use lb_pipeline::{LbPipeline, PortPlan};
pub use pipeline::{BurstVerdict, ForwardPipeline, Pipeline, Verdict};
pub use stats::{LbStats, LbStatsBoard, LbStatsPublisher};
pub use worker::Worker;

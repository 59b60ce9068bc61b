//! The data plane: the worker loop over a packet-I/O trait, per-worker
//! counters, and the two I/O implementations (DPDK and in-memory).
//!
//! Invariants: no lock, allocation, syscall or formatting per packet; every
//! dropped packet increments exactly one [`DropReason`] counter; per-worker
//! state is owned by its worker.

pub mod clock;
pub mod counters;
pub mod dpdk;
pub mod io;
pub mod lb_pipeline;
pub mod mem;
pub mod pipeline;
pub mod snapshot;
pub mod stats;
pub mod worker;

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use counters::{Counters, DropReason, PublishedCounters};
pub use io::{Burst, Packet, PacketIo, PortIndex, BURST};
pub use lb_pipeline::{LbPipeline, PortPlan};
pub use pipeline::{BurstVerdict, ForwardPipeline, Pipeline, Verdict};
pub use stats::{LbStats, LbStatsBoard, LbStatsPublisher};
pub use worker::{Idle, Worker};

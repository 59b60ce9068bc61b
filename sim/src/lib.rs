//! dnlb-sim: how many connections survive churn, per flow-sync strategy.
//!
//! A fleet of gateways behind a router's ECMP group, backends in zones, and
//! connections with arrivals, lifetimes and packet gaps, in simulated time
//! and seeded (the same seed gives the same figures). Each gateway is a real
//! [`dnlb_lb::flow_table::FlowTable`] and real Maglev tables
//! ([`dnlb_lb::maglev::MaglevTable`], planned by
//! [`dnlb_lb::snapshot::plan_group`]); flows are hashed with
//! [`dnlb_lb::hash::flow_hash_v4`]. No DPDK, no I/O.
//!
//! - [`scenario`]: what a run simulates (TOML or built in: [`builtin`]).
//! - [`strategy`]: what a gateway does on a flow-table miss.
//! - [`engine`]: the simulation.
//! - [`fleet`]: backends, config versions and the tables built from them.
//! - [`ecmp`]: the router (modulo or resilient hashing).
//! - [`workload`]: connections and their sampled packets.
//! - [`report`], [`plot`]: tables, JSON lines and SVG plots.
//!
//! See `docs/simulator.md` for what is modelled, what is not, and results.
#![forbid(unsafe_code)]

pub mod builtin;
pub mod ecmp;
pub mod engine;
pub mod fleet;
pub mod plot;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod strategy;
pub mod workload;

pub use engine::Sim;
pub use report::RunResult;
pub use scenario::Scenario;
pub use strategy::Strategy;

/// Runs `sc` once per strategy in `strategies`.
pub fn run_all(sc: &Scenario, strategies: &[Strategy]) -> Vec<RunResult> {
    strategies.iter().map(|&s| Sim::new(sc, s).run()).collect()
}

//! dnlb's load-balancing logic: what each worker does to each packet.
//!
//! Pure and deterministic: no I/O, no clock (time is passed in as wrapping
//! milliseconds), no allocation per packet. Runs on DPDK mbufs in the data
//! plane and on plain buffers in tests and benchmarks alike.
//!
//! - [`vip`]: listener lookup by (VIP, protocol, port), all-ports listeners.
//! - [`acl`]: listener access lists, compiled for the hot path.
//! - [`hash`]: the flow hash every gateway computes identically.
//! - [`maglev`]: weighted Maglev tables, a pure function of the backends.
//! - [`flow_table`]: per-worker connection tracking.
//! - [`policing`]: rate limits (new flows, ICMP, the exception path) as
//!   workers apply them.
//! - [`encap`]: outer-header templates and per-packet encapsulation.
//! - [`reply`]: echo replies and "too big" answers built in place.
//! - [`snapshot`]: the immutable state built from a validated config.
//! - [`processor`]: one packet in, one [`verdict::Action`] out.
//! - [`verdict`]: actions and the one table of drop reasons.
//! - [`prefetch`]: the cache hint that overlaps flow-table misses in a burst.

// Unsafe is denied everywhere but `prefetch`, which fences one hint, and
// `hugepage`, which allocates tables aligned for huge pages.
#![deny(unsafe_code)]

pub mod acl;
pub mod encap;
pub mod flow_table;
pub mod hash;
pub mod hugepage;
pub mod ids;
pub mod maglev;
pub mod policing;
pub mod prefetch;
pub mod processor;
pub mod ratelimit;
pub mod reply;
pub mod snapshot;
pub mod verdict;
pub mod vip;

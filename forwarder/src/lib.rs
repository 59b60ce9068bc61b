//! dnlb's forwarder program: the control plane that builds, runs and
//! supervises the data plane (`dnlb-dataplane`) from a validated config, and
//! the `dnlb` binary.
//!
//! Only `dpdk-bindings` calls C; this crate has no `unsafe`.

#![forbid(unsafe_code)]

pub mod control;

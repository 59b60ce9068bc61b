//! What the generator prints: one JSON object a line on stdout, each with a
//! `type` — `start` once the link is up, `second` for every report
//! interval, `summary` at the end — so scripts can parse it line by line.

use std::io::Write;

use serde::Serialize;

use crate::latency::LatencySummary;

/// A report line.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The run starts (the port is up).
    Start(Start),
    /// One report interval.
    Second(Second),
    /// The run's totals.
    Summary(Summary),
}

/// What the run is about to do.
#[derive(Debug, Clone, Serialize)]
pub struct Start {
    /// DPDK device name.
    pub port: String,
    /// Its driver.
    pub driver: String,
    /// Source MAC of the frames.
    pub src_mac: String,
    /// Destination MAC of the frames.
    pub dst_mac: String,
    /// "udp" or "tcp".
    pub proto: &'static str,
    /// 4 or 6.
    pub ip: u8,
    /// Established flows (the product of the flow ranges).
    pub flows: u128,
    /// Distinct new-flow tuples before they repeat.
    pub new_flow_tuples: u128,
    /// Share of packets that open a new flow.
    pub new_flow_fraction: f64,
    /// Frame length without FCS.
    pub frame_len: usize,
    /// Length of stamped frames.
    pub stamped_len: usize,
    /// Every N-th packet stamped (0: none).
    pub stamp_every: u64,
    /// Target packets per second (0: as fast as possible).
    pub rate_pps: u64,
    /// TSC frequency.
    pub tsc_hz: u64,
}

/// One report interval's rates (from the actual interval length) and the
/// totals so far.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds since the start, at the end of the interval.
    pub t: f64,
    /// Packets sent per second in the interval.
    pub tx_pps: f64,
    /// Packets received per second in the interval.
    pub rx_pps: f64,
    /// Bits sent per second (frames without FCS).
    pub tx_bps: f64,
    /// Bits received per second.
    pub rx_bps: f64,
    /// Packets sent so far.
    pub tx_packets: u64,
    /// Packets received so far.
    pub rx_packets: u64,
}

/// Packet and byte counters of the generator's loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Packets the driver took.
    pub tx_packets: u64,
    /// Their bytes (frames without FCS).
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Bulk allocations that failed (pool empty).
    pub alloc_failures: u64,
    /// TX bursts the driver took only part of (the rest is retried).
    pub tx_partial_bursts: u64,
    /// Packets built but still unsent when sending stopped (freed).
    pub tx_unsent: u64,
}

/// The driver's own counters at the end.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DriverCounters {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Dropped for full RX queues.
    pub rx_missed: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_no_mbuf: u64,
}

/// The run's totals.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Why sending stopped: "duration", "count" or "signal".
    pub stopped_by: &'static str,
    /// Seconds spent sending.
    pub elapsed_s: f64,
    /// Seconds spent afterwards receiving what was still in flight.
    pub drain_s: f64,
    /// The loop's counters.
    #[serde(flatten)]
    pub counters: Counters,
    /// Average packets sent per second over `elapsed_s`.
    pub tx_pps: f64,
    /// Packets received over `elapsed_s` (the drain's included) per second.
    pub rx_pps: f64,
    /// Packets that opened a new flow.
    pub new_flow_packets: u64,
    /// How often every new-flow tuple had been used and the walk started
    /// over (0: every new flow was really new).
    pub new_flow_wraps: u64,
    /// Round-trip latency of stamped packets, when stamping was on.
    pub latency: Option<LatencySummary>,
    /// The driver's counters.
    pub driver: DriverCounters,
}

/// Writes one line and flushes it (a reader may be waiting for it).
pub fn emit(out: &mut dyn Write, line: &Line) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// A MAC address as `02:00:00:00:00:01`.
pub fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

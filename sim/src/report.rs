//! What a run reports: a row per strategy as text and as JSON lines.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// An event and the connections broken after it (before the next).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventCount {
    /// When, seconds.
    pub at_s: f64,
    /// What.
    pub label: String,
    /// Broken connections attributed to it.
    pub broken: u64,
}

/// The outcome of one scenario under one strategy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// Scenario name.
    pub scenario: String,
    /// Strategy name.
    pub strategy: String,
    /// Router hashing.
    pub ecmp: String,
    /// Gateways at the start.
    pub gateways: u32,
    /// Backends at the start.
    pub backends: u32,
    /// Maglev table size.
    pub table_size: u32,
    /// Connections that arrived.
    pub connections: u64,
    /// Connections whose SYN found no gateway or no backend.
    pub refused: u64,
    /// Connections that reached their FIN.
    pub completed: u64,
    /// Connections a packet of which reached another backend than their
    /// SYN while that backend still served.
    pub broken: u64,
    /// Of those, broken at the handshake's first ACK.
    pub broken_handshake: u64,
    /// Of those, established connections whose shared entry was still
    /// queued (the current sync batch) at a gateway that was lost or
    /// stopped: the window batching leaves open.
    #[serde(default)]
    pub broken_unsent: u64,
    /// Of those, established connections whose packet reached a gateway
    /// whose config did not have their backend yet (config skew: it cannot
    /// use a peer's entry for a backend it does not know).
    #[serde(default)]
    pub broken_skew: u64,
    /// Connections whose backend stopped serving (lost whatever the
    /// gateways do; not counted as broken).
    pub orphaned: u64,
    /// SYNs a gateway sent to a backend that had stopped (its health checks
    /// had not seen it yet, or the version that says so was staged).
    #[serde(default)]
    pub syns_to_stopped: u64,
    /// `broken / connections`.
    pub broken_fraction: f64,
    /// Every event and what broke after it.
    pub events: Vec<EventCount>,
    /// Entries shared (each sent once to every peer).
    pub shared_entries: u64,
    /// Of those, entries shared only because a zone-loss table moves them
    /// (`zone-presync`).
    #[serde(default)]
    pub presync_entries: u64,
    /// Sync bytes sent per gateway per second, averaged over the run and
    /// the gateways (one copy per peer).
    pub sync_bytes_per_s_per_gateway: f64,
    /// The most sync bytes one gateway sent in one second.
    pub sync_peak_bytes_per_s: u64,
    /// Bytes (re)starting gateways fetched from their peers.
    pub fetch_bytes: u64,
    /// The most shared entries held at once (each peer holds them all).
    pub peak_shared_entries: u64,
    /// Flow-table inserts that found the table full.
    pub table_full: u64,
    /// Sampled packets simulated.
    pub packets: u64,
    /// Packets no gateway took (none announced).
    pub no_gateway_packets: u64,
    /// Maglev tables built.
    pub table_builds: u32,
    /// Simulated seconds.
    pub sim_seconds: f64,
    /// Wall-clock seconds the run took.
    pub wall_seconds: f64,
}

impl RunResult {
    /// The result as one JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("plain data serialises")
    }
}

/// Runs read back from JSON lines (as `--json` writes them), grouped by
/// scenario in the order each first appears, each group in the order of
/// [`crate::Strategy::ALL`]; a later line for the same scenario and strategy
/// replaces an earlier one.
pub fn from_json_lines(text: &str) -> Result<Vec<Vec<RunResult>>, String> {
    let mut groups: Vec<Vec<RunResult>> = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: RunResult =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        match groups.iter_mut().find(|g| g[0].scenario == r.scenario) {
            Some(g) => match g.iter_mut().find(|x| x.strategy == r.strategy) {
                Some(x) => *x = r,
                None => g.push(r),
            },
            None => groups.push(vec![r]),
        }
    }
    let order = |r: &RunResult| {
        crate::Strategy::parse(&r.strategy)
            .and_then(|s| crate::Strategy::ALL.iter().position(|&x| x == s))
            .unwrap_or(usize::MAX)
    };
    for g in &mut groups {
        g.sort_by_key(order);
    }
    Ok(groups)
}

/// Human-readable bytes per second.
pub fn rate(bps: f64) -> String {
    match bps {
        b if b >= 1e6 => format!("{:.2} MB/s", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB/s", b / 1e3),
        b => format!("{b:.0} B/s"),
    }
}

/// The events that broke the most, as `label@t: n`, at most `max` of them.
fn worst_events(r: &RunResult, max: usize) -> String {
    let mut ev: Vec<&EventCount> = r.events.iter().filter(|e| e.broken > 0).collect();
    ev.sort_by_key(|e| std::cmp::Reverse(e.broken));
    let mut s: Vec<String> = ev
        .iter()
        .take(max)
        .map(|e| format!("{}@{:.1}s: {}", e.label, e.at_s, e.broken))
        .collect();
    if ev.len() > max {
        s.push(format!("+{} more", ev.len() - max));
    }
    if s.is_empty() {
        "-".into()
    } else {
        s.join("; ")
    }
}

/// A text table of the runs of one scenario.
pub fn table(runs: &[RunResult]) -> String {
    let mut out = String::new();
    let Some(first) = runs.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "scenario {} (ecmp {}, {} gateways, {} backends, table {}, {} connections)",
        first.scenario,
        first.ecmp,
        first.gateways,
        first.backends,
        first.table_size,
        first.connections
    );
    let _ = writeln!(
        out,
        "| strategy | broken | fraction | at handshake | orphaned | sync/gateway (avg) | sync peak | broken per event |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2e} | {} | {} | {} | {} | {} |",
            r.strategy,
            r.broken,
            r.broken_fraction,
            r.broken_handshake,
            r.orphaned,
            rate(r.sync_bytes_per_s_per_gateway),
            rate(r.sync_peak_bytes_per_s as f64),
            worst_events(r, 3),
        );
    }
    out
}

//! What the admin API reports (`/v1/status` and its parts), as plain data:
//! the control thread fills it, the API serialises it to JSON, `dnlb
//! status` reads it back and the metrics endpoint renders it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole status of a gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Gateway name.
    pub gateway: String,
    /// Gateway zone.
    pub zone: Option<String>,
    /// Config file.
    pub config_file: Option<String>,
    /// Seconds since the forwarder started.
    pub uptime_secs: f64,
    /// Generation of the snapshot workers use (0: no listeners).
    pub generation: u64,
    /// Reloads that were published.
    pub reloads_ok: u64,
    /// Reloads that were rejected (the running config stayed).
    pub reloads_rejected: u64,
    /// Whether every worker answered the request for fresh counters.
    pub counters_fresh: bool,
    /// Per worker.
    pub workers: Vec<WorkerStatus>,
    /// Per port: the driver's counters.
    #[serde(default)]
    pub ports: Vec<PortStatus>,
    /// Drops by reason, summed over workers.
    pub drops: BTreeMap<String, u64>,
    /// Flow tables, summed over workers.
    pub flows: FlowStatus,
    /// Listeners.
    pub listeners: Vec<ListenerStatus>,
    /// Backends of every target group.
    pub backends: Vec<BackendStatus>,
    /// Run-time changes in effect (one line each).
    pub runtime_changes: Vec<String>,
    /// Run-time changes that no longer apply to the config.
    pub stale_changes: Vec<String>,
    /// Where run-time changes are kept.
    pub runtime_file: Option<String>,
}

/// One worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Its lcore.
    pub lcore: u32,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Packets dropped (all reasons).
    pub dropped: u64,
}

/// One port's driver counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortStatus {
    /// DPDK device name.
    pub name: String,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets the device dropped because RX queues were full.
    pub rx_missed: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_no_mbuf: u64,
}

/// Flow tables and what happened to flows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowStatus {
    /// Flows tracked.
    pub entries: u64,
    /// Capacity.
    pub capacity: u64,
    /// Flows created.
    pub created: u64,
    /// New flows that found their table full (served statelessly).
    pub table_full: u64,
    /// Established flows moved off an unusable backend.
    pub rescheduled: u64,
    /// ICMP errors forwarded to the backend of their flow.
    pub icmp_errors_forwarded: u64,
    /// Fragmentation needed / packet too big sent.
    pub too_big_sent: u64,
    /// Echo replies sent.
    pub echo_replies: u64,
}

/// One listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenerStatus {
    /// Name.
    pub name: String,
    /// VIPs.
    pub vips: Vec<String>,
    /// Elastic IP, if attached.
    pub elastic_ip: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Port (`None`: all ports).
    pub port: Option<u16>,
    /// Target group.
    pub target_group: String,
    /// Backends that take new flows.
    pub backends_taking_new_flows: usize,
    /// Packets sent to backends.
    pub packets: u64,
    /// Bytes sent to backends.
    pub bytes: u64,
    /// Drops on this listener by reason (only reasons with drops).
    pub drops: BTreeMap<String, u64>,
}

/// One backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendStatus {
    /// Target group.
    pub target_group: String,
    /// Address.
    pub address: String,
    /// Port (0: none).
    pub port: u16,
    /// `vm` or `container`.
    pub kind: String,
    /// Zone.
    pub zone: Option<String>,
    /// Tunnel type.
    pub tunnel: String,
    /// Configured weight.
    pub weight: u8,
    /// Passes its health checks (or has none).
    pub healthy: bool,
    /// May carry flows (healthy or failed open, not drained).
    pub usable: bool,
    /// Takes new flows.
    pub takes_new_flows: bool,
    /// Drain deadline (RFC 3339), if draining or drained.
    pub drain_until: Option<String>,
    /// Added or changed at run time.
    pub runtime: bool,
    /// Packets sent to it.
    pub packets: u64,
    /// Bytes sent to it.
    pub bytes: u64,
    /// Drops after it was chosen, by reason (only reasons with drops).
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
}

impl BackendStatus {
    /// A one-word state for tables.
    pub fn state(&self) -> &'static str {
        match (self.usable, self.healthy, self.takes_new_flows) {
            (false, _, _) if self.drain_until.is_some() && self.healthy => "drained",
            (false, _, _) => "down",
            (true, false, _) => "fail-open",
            (true, true, true) => "up",
            (true, true, false) if self.drain_until.is_some() => "draining",
            (true, true, false) => "standby",
        }
    }
}

/// Lays out rows as left-aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `dnlb status`: the status as readable tables.
pub fn render_table(s: &Status) -> String {
    let mut out = format!(
        "gateway {} (zone {}), config generation {}, up {:.0} s, reloads {} ok / {} rejected\n",
        s.gateway,
        s.zone.as_deref().unwrap_or("-"),
        s.generation,
        s.uptime_secs,
        s.reloads_ok,
        s.reloads_rejected
    );
    for w in &s.workers {
        out.push_str(&format!(
            "worker lcore {}: rx {} tx {} dropped {}\n",
            w.lcore, w.rx_packets, w.tx_packets, w.dropped
        ));
    }
    for p in &s.ports {
        out.push_str(&format!(
            "port {}: rx {} tx {} missed {} rx_errors {} tx_errors {} no_mbuf {}\n",
            p.name, p.rx_packets, p.tx_packets, p.rx_missed, p.rx_errors, p.tx_errors, p.rx_no_mbuf
        ));
    }
    let f = &s.flows;
    out.push_str(&format!(
        "flows: {} tracked of {}; created {}, table full {}, rescheduled {}\n",
        f.entries, f.capacity, f.created, f.table_full, f.rescheduled
    ));
    let drops: Vec<String> = s
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r}={n}"))
        .collect();
    if !drops.is_empty() {
        out.push_str(&format!("drops: {}\n", drops.join(" ")));
    }
    if !s.counters_fresh {
        out.push_str("(some workers did not answer in time: counters may be a little old)\n");
    }
    out.push('\n');
    let mut rows = vec![[
        "LISTENER",
        "ADDRESSES",
        "PROTO",
        "PORT",
        "GROUP",
        "NEW-FLOW BACKENDS",
        "PACKETS",
        "BYTES",
        "DROPS",
    ]
    .map(String::from)
    .to_vec()];
    for l in &s.listeners {
        let mut addrs = l.vips.join(",");
        if let Some(e) = &l.elastic_ip {
            addrs.push_str(&format!(",{e} (elastic)"));
        }
        rows.push(vec![
            l.name.clone(),
            addrs,
            l.protocol.clone(),
            l.port.map_or("all".into(), |p| p.to_string()),
            l.target_group.clone(),
            l.backends_taking_new_flows.to_string(),
            l.packets.to_string(),
            l.bytes.to_string(),
            l.drops
                .iter()
                .map(|(r, n)| format!("{r}={n}"))
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![[
        "GROUP", "BACKEND", "PORT", "ZONE", "TUNNEL", "WEIGHT", "STATE", "PACKETS", "BYTES", "NOTE",
    ]
    .map(String::from)
    .to_vec()];
    for b in &s.backends {
        let mut note = Vec::new();
        if let Some(d) = &b.drain_until {
            note.push(format!("drain until {d}"));
        }
        if b.runtime {
            note.push("changed at run time".to_string());
        }
        rows.push(vec![
            b.target_group.clone(),
            b.address.clone(),
            b.port.to_string(),
            b.zone.clone().unwrap_or_else(|| "-".into()),
            b.tunnel.clone(),
            b.weight.to_string(),
            b.state().to_string(),
            b.packets.to_string(),
            b.bytes.to_string(),
            note.join("; "),
        ]);
    }
    out.push_str(&table(&rows));
    if !s.runtime_changes.is_empty() || !s.stale_changes.is_empty() {
        out.push_str(&format!(
            "\nrun-time changes (kept in {}):\n",
            s.runtime_file.as_deref().unwrap_or("-")
        ));
        for c in &s.runtime_changes {
            out.push_str(&format!("  {c}\n"));
        }
        for c in &s.stale_changes {
            out.push_str(&format!("  stale: {c}\n"));
        }
    }
    out
}

//! What the admin API reports (`/v1/status` and its parts), as plain data:
//! `control::report` fills it, the API serialises it to JSON, `dnlb
//! status` reads it back (and lays it out as tables) and the metrics
//! endpoint renders it.

use std::collections::BTreeMap;

use std::fmt;

use dnlb_dataplane::{Counters, DropReason};
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
    /// Route announcements through BIRD (`None`: no `[routing]` section).
    #[serde(default)]
    pub routes: Option<RoutesStatus>,
    /// Flow-exception sync (`None`: no `[sync]` section).
    #[serde(default)]
    pub sync: Option<SyncStatus>,
}

/// Flow-exception sync: what the workers, the bridge and the endpoint did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// A new version is staged (its flows being shared before it is used).
    pub staged: bool,
    /// Exceptions workers found (walks and new flows).
    pub exceptions_found: u64,
    /// Exceptions workers could not keep (pending list full; found again later).
    pub exceptions_dropped: u64,
    /// Whole flow-table walks finished.
    pub walks: u64,
    /// SYNs pinned while a version was staged.
    pub pinned: u64,
    /// Entries from peers stored by workers (each worker counts).
    pub learned: u64,
    /// Entries from peers refused by a full learned table.
    pub learned_full: u64,
    /// Packets of flows moved here that a learned entry kept on their backend.
    pub learned_used: u64,
    /// Learned entries held by workers now (summed over workers).
    pub learned_entries: u64,
    /// Exceptions queued for the peers.
    pub shared: u64,
    /// Entries from peers handed to workers.
    pub from_peers: u64,
    /// Entries from peers naming what this gateway does not have.
    pub unknown: u64,
    /// Entries dropped between the endpoint and the workers (queues full).
    pub dropped: u64,
    /// Messages sent (a copy to each peer counts).
    pub sent_messages: u64,
    /// Bytes sent.
    pub sent_bytes: u64,
    /// Messages received and accepted.
    pub received_messages: u64,
    /// Messages rejected, by reason (forged, replayed, ...).
    pub rejected: BTreeMap<String, u64>,
    /// Entries waiting to be sent, and dropped from a full queue.
    pub queued: u64,
    /// Entries dropped from the full send queue.
    pub queue_drops: u64,
    /// Entries held for fetches.
    pub held: u64,
    /// Peers that answered this gateway's fetches in full, and did not.
    pub fetch_peers_complete: u64,
    /// See `fetch_peers_complete`.
    pub fetch_peers_failed: u64,
    /// Fetches this gateway answered.
    pub fetches_served: u64,
}

/// BIRD's state, as dnlb's BIRD worker last saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutesStatus {
    /// BIRD's control socket.
    pub bird_socket: String,
    /// Whether the last attempt went through (connected, `configure`
    /// answered without an error). False before the first attempt too.
    pub up: bool,
    /// The VIPs BIRD last confirmed it announces (`None`: none confirmed
    /// since dnlb started).
    pub announced: Option<Vec<String>>,
    /// The VIPs dnlb wants announced.
    pub wanted: Vec<String>,
    /// Whether a change waits for BIRD: `wanted` is not what BIRD
    /// confirmed, or a failed attempt rewrote the VIP files since.
    pub pending: bool,
    /// Attempts (VIP files written, `configure` sent) since the start.
    pub attempts: u64,
    /// Attempts that failed.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339).
    pub last_error_at: Option<String>,
    /// When BIRD last took a change (RFC 3339).
    pub last_ok_at: Option<String>,
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
    /// Seconds spent on loop iterations that received packets (its busy
    /// time; the rest it polled empty queues or slept).
    #[serde(default)]
    pub busy_seconds: f64,
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
    /// The exception path by class (empty without a host port's traffic).
    #[serde(default)]
    pub host: Vec<HostClassStatus>,
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
    /// Its access list and what each rule decided, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<AclStatus>,
    /// Its new-flow limits (per gateway), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsStatus>,
}

/// A listener's access list: each rule with the packets it decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclStatus {
    /// `allow` or `deny`, for sources no rule covers.
    pub default: String,
    /// Packets the default decided.
    pub default_packets: u64,
    /// The rules, in config order (allow lists, then deny lists).
    pub rules: Vec<AclRuleStatus>,
}

/// One access-list rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclRuleStatus {
    /// The prefix, `198.51.100.0/24`.
    pub prefix: String,
    /// `allow` or `deny`.
    pub action: String,
    /// Packets it decided (the longest matching prefix decides).
    pub packets: u64,
}

/// A listener's new-flow limits, per gateway (`None`: no limit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitsStatus {
    /// New flows per second of the whole listener.
    pub new_flows_per_sec: Option<u32>,
    /// Its burst.
    pub new_flows_burst: Option<u32>,
    /// New flows per second of one source.
    pub source_new_flows_per_sec: Option<u32>,
    /// Its burst.
    pub source_new_flows_burst: Option<u32>,
}

/// One class of the exception path (frames for the host's own stack).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostClassStatus {
    /// `routing`, `neighbor`, `backends` or `other`.
    pub class: String,
    /// Frames passed to the host.
    pub passed: u64,
    /// Frames dropped beyond the class's rate.
    pub dropped: u64,
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
    /// Healthy only presumed: no probe of it has ended since the gateway
    /// started (or since its group gained its health check).
    #[serde(default)]
    pub health_presumed: bool,
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
            (true, true, true) if self.health_presumed => "presumed",
            (true, true, true) => "up",
            (true, true, false) if self.drain_until.is_some() => "draining",
            (true, true, false) => "standby",
        }
    }
}

/// Drop counts by reason name, every reason.
pub fn all_drops(c: &Counters) -> BTreeMap<String, u64> {
    DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), c.drops_for(*r)))
        .collect()
}

/// A worker's (or all workers') packet counters, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CounterReport {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets handed to a TX queue.
    pub tx_packets: u64,
    /// Packets dropped, all reasons.
    pub dropped: u64,
    /// Drops by reason (every reason).
    pub drops: BTreeMap<String, u64>,
    /// Polls that found nothing.
    pub empty_polls: u64,
    /// Idle back-off sleeps.
    pub idle_sleeps: u64,
    /// Time-stamp counter cycles of iterations that received packets.
    pub busy_cycles: u64,
}

impl From<&Counters> for CounterReport {
    fn from(c: &Counters) -> Self {
        CounterReport {
            rx_packets: c.rx_packets,
            tx_packets: c.tx_packets,
            dropped: c.dropped(),
            drops: all_drops(c),
            empty_polls: c.empty_polls,
            idle_sleeps: c.idle_sleeps,
            busy_cycles: c.busy_cycles,
        }
    }
}

/// One worker's final counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerReport {
    /// Its lcore.
    pub lcore: u32,
    /// Its counters.
    #[serde(flatten)]
    pub counters: CounterReport,
}

/// Packets and bytes sent through one listener or to one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficReport {
    /// Listener name, or backend address.
    pub name: String,
    /// The backend's target group (backends only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Packets.
    pub packets: u64,
    /// Bytes (of the inner IP packets).
    pub bytes: u64,
}

/// What a forwarder did, from start to stop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Per worker, in lcore order.
    pub workers: Vec<WorkerReport>,
    /// Per port: the driver's counters.
    pub ports: Vec<PortStatus>,
    /// Per listener of the last snapshot.
    pub listeners: Vec<TrafficReport>,
    /// Per backend of the last snapshot.
    pub backends: Vec<TrafficReport>,
    /// Flow tables (none without listeners).
    pub flows: Option<FlowStatus>,
    /// Reloads published.
    pub reloads_ok: u64,
    /// Reloads rejected.
    pub reloads_rejected: u64,
    /// The last generation.
    pub generation: u64,
    /// All workers.
    pub total: CounterReport,
}

fn counter_line(f: &mut fmt::Formatter<'_>, prefix: &str, c: &CounterReport) -> fmt::Result {
    write!(
        f,
        "{prefix} rx_packets={} tx_packets={} dropped={}",
        c.rx_packets, c.tx_packets, c.dropped
    )?;
    for r in DropReason::ALL {
        let n = c.drops.get(r.name()).copied().unwrap_or(0);
        write!(f, " drop_{}={n}", r.name())?;
    }
    Ok(())
}

/// One line per worker, port, listener and backend, then flows, reloads and
/// the total.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.workers {
            counter_line(f, &format!("worker: lcore={}", w.lcore), &w.counters)?;
            writeln!(f)?;
        }
        for s in &self.ports {
            writeln!(
                f,
                "port: {} rx_packets={} tx_packets={} rx_bytes={} tx_bytes={} rx_missed={} rx_errors={} tx_errors={} rx_no_mbuf={}",
                s.name, s.rx_packets, s.tx_packets, s.rx_bytes, s.tx_bytes, s.rx_missed, s.rx_errors, s.tx_errors, s.rx_no_mbuf
            )?;
        }
        for l in &self.listeners {
            writeln!(
                f,
                "listener: {} packets={} bytes={}",
                l.name, l.packets, l.bytes
            )?;
        }
        for b in &self.backends {
            writeln!(
                f,
                "backend: {} group={} packets={} bytes={}",
                b.name,
                b.group.as_deref().unwrap_or("-"),
                b.packets,
                b.bytes
            )?;
        }
        if let Some(fl) = &self.flows {
            writeln!(
                f,
                "flows: new={} table_full={} rescheduled={} icmp_errors_forwarded={} too_big_sent={} echo_replies={}",
                fl.created, fl.table_full, fl.rescheduled, fl.icmp_errors_forwarded, fl.too_big_sent, fl.echo_replies
            )?;
        }
        writeln!(
            f,
            "reloads: ok={} rejected={} generation={}",
            self.reloads_ok, self.reloads_rejected, self.generation
        )?;
        counter_line(f, "total:", &self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::BackendStatus;

    #[test]
    fn each_backend_state_has_its_word() {
        let b = |usable, healthy, presumed, new, drain: bool| BackendStatus {
            usable,
            healthy,
            health_presumed: presumed,
            takes_new_flows: new,
            drain_until: drain.then(|| "2026-12-07T00:00:00Z".to_string()),
            ..BackendStatus::default()
        };
        assert_eq!(b(true, true, false, true, false).state(), "up");
        assert_eq!(b(true, true, true, true, false).state(), "presumed");
        assert_eq!(b(true, true, true, false, true).state(), "draining");
        assert_eq!(b(true, true, false, false, false).state(), "standby");
        assert_eq!(b(true, false, false, true, false).state(), "fail-open");
        assert_eq!(b(false, true, false, false, true).state(), "drained");
        assert_eq!(b(false, false, false, false, false).state(), "down");
    }
}

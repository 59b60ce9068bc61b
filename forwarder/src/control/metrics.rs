//! The Prometheus endpoint: a [`Status`] written straight into the text
//! exposition format (version 0.0.4, what `promtool check metrics` reads),
//! family after family. Workers keep plain counters, summed into the status
//! at scrape time, so every scrape shows exactly the current listeners and
//! backends (none left over from before a reload) and nothing is kept
//! between scrapes: no registry, no recorder, one string. A backend's
//! labels are escaped once per scrape and shared by its families.

use std::fmt::Write as _;
use std::ops::Range;

use super::status::{BackendStatus, PortStatus, Status, WorkerStatus};

/// A metric family's Prometheus type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A count that only grows (from the forwarder's start); its name ends
    /// in `_total`.
    Counter,
}

impl Kind {
    /// The type as a `# TYPE` line writes it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// Every metric family dnlb exports, as (kind, name, help text): the table
/// [`render`] writes from, for tools that check queries against it (the
/// Grafana dashboard's test, `forwarder/tests/grafana_dashboard.rs`).
pub fn families() -> impl Iterator<Item = (Kind, &'static str, &'static str)> {
    FAMILIES.iter().copied()
}

/// Every metric dnlb exports: kind, name and help text. A family is written
/// only when it has a sample.
const FAMILIES: &[(Kind, &str, &str)] = &[
    (Kind::Gauge, "dnlb_info", "Gateway name, zone and dnlb version (always 1)."),
    (Kind::Gauge, "dnlb_uptime_seconds", "Seconds since the forwarder started."),
    (Kind::Gauge, "dnlb_config_generation", "Generation of the configuration snapshot workers use."),
    (Kind::Counter, "dnlb_reloads_total", "Configuration reloads by result (ok: published; rejected: the running configuration stayed)."),
    (Kind::Gauge, "dnlb_runtime_changes", "Run-time changes made through the admin API that are in effect."),
    (Kind::Gauge, "dnlb_runtime_changes_stale", "Run-time changes that name something the config file no longer has."),
    (Kind::Counter, "dnlb_worker_received_packets_total", "Packets received by a worker."),
    (Kind::Counter, "dnlb_worker_transmitted_packets_total", "Packets transmitted by a worker."),
    (Kind::Counter, "dnlb_worker_dropped_packets_total", "Packets dropped by a worker (all reasons)."),
    (Kind::Counter, "dnlb_worker_busy_seconds_total", "Seconds a worker spent on loop iterations that received packets; its rate is the worker's load (1 = saturated)."),
    (Kind::Counter, "dnlb_dropped_packets_total", "Packets dropped, by reason, summed over workers."),
    (Kind::Counter, "dnlb_port_received_packets_total", "Packets a port's driver received."),
    (Kind::Counter, "dnlb_port_transmitted_packets_total", "Packets a port's driver sent."),
    (Kind::Counter, "dnlb_port_received_bytes_total", "Bytes a port's driver received."),
    (Kind::Counter, "dnlb_port_transmitted_bytes_total", "Bytes a port's driver sent."),
    (Kind::Counter, "dnlb_port_rx_missed_packets_total", "Packets a port dropped because its RX queues were full (workers too slow)."),
    (Kind::Counter, "dnlb_port_rx_errors_total", "Receive errors of a port."),
    (Kind::Counter, "dnlb_port_tx_errors_total", "Transmit errors of a port."),
    (Kind::Counter, "dnlb_port_rx_mbuf_alloc_failures_total", "RX mbuf allocation failures of a port (packet pool exhausted)."),
    (Kind::Gauge, "dnlb_flow_table_entries", "Flows tracked, summed over workers' flow tables."),
    (Kind::Gauge, "dnlb_flow_table_capacity", "Flow-table capacity, summed over workers."),
    (Kind::Counter, "dnlb_flows_created_total", "Flows added to flow tables."),
    (Kind::Counter, "dnlb_flow_table_full_total", "New flows that found their flow table full (served by the stateless hash)."),
    (Kind::Counter, "dnlb_flows_rescheduled_total", "Established flows moved because their backend became unusable."),
    (Kind::Counter, "dnlb_icmp_errors_forwarded_total", "ICMP errors about VIP flows forwarded to the flow's backend."),
    (Kind::Counter, "dnlb_too_big_sent_total", "Fragmentation-needed / packet-too-big messages sent to clients."),
    (Kind::Counter, "dnlb_echo_replies_total", "ICMP echo replies sent for VIPs."),
    (Kind::Counter, "dnlb_host_packets_total", "Frames for the host's own stack on the exception path, by class and result (passed, or dropped beyond the class's rate)."),
    (Kind::Counter, "dnlb_listener_packets_total", "Packets a listener sent to backends."),
    (Kind::Counter, "dnlb_listener_bytes_total", "Bytes (inner IP packets) a listener sent to backends."),
    (Kind::Gauge, "dnlb_listener_backends_taking_new_flows", "Backends of a listener's target group that take new flows."),
    (Kind::Counter, "dnlb_listener_dropped_packets_total", "Packets dropped on a listener, by reason."),
    (Kind::Counter, "dnlb_acl_rule_packets_total", "Packets an access-list rule decided (rule \"default\": no prefix matched); starts from 0 when the list changes."),
    (Kind::Gauge, "dnlb_listener_new_flow_limit", "A listener's new-flows-per-second limit (per gateway), by scope (listener, source)."),
    (Kind::Counter, "dnlb_backend_packets_total", "Packets sent to a backend."),
    (Kind::Counter, "dnlb_backend_bytes_total", "Bytes (inner IP packets) sent to a backend."),
    (Kind::Gauge, "dnlb_backend_healthy", "Whether a backend passes its health checks (1) or not (0)."),
    (Kind::Gauge, "dnlb_backend_health_presumed", "Whether a backend's health is only presumed (1): no probe of it has ended since the gateway started or its group gained its check."),
    (Kind::Gauge, "dnlb_backend_usable", "Whether a backend may carry flows (1): healthy or failed open, not drained."),
    (Kind::Gauge, "dnlb_backend_takes_new_flows", "Whether a backend takes new flows (1)."),
    (Kind::Gauge, "dnlb_backend_weight", "A backend's configured weight (0-100)."),
    (Kind::Counter, "dnlb_backend_dropped_packets_total", "Packets dropped after a backend was chosen, by reason."),
    (Kind::Gauge, "dnlb_bird_up", "Whether dnlb's last attempt to change BIRD's routes went through (1) or not (0)."),
    (Kind::Counter, "dnlb_bird_attempts_total", "Attempts to change BIRD's routes (VIP files written, configure sent)."),
    (Kind::Counter, "dnlb_bird_failures_total", "Attempts to change BIRD's routes that failed (no BIRD, no answer in time, refused)."),
    (Kind::Gauge, "dnlb_bird_announced_vips", "VIPs BIRD last confirmed it announces."),
    (Kind::Gauge, "dnlb_bird_wanted_vips", "VIPs dnlb wants BIRD to announce."),
    (Kind::Gauge, "dnlb_bird_change_pending", "Whether a change waits for BIRD to take it (1)."),
    (Kind::Gauge, "dnlb_sync_staged", "Whether a new version is staged (1): its flows are being shared before it is used."),
    (Kind::Counter, "dnlb_sync_exceptions_found_total", "Flows workers found whose backend is not what the (staged or current) table picks."),
    (Kind::Counter, "dnlb_sync_exceptions_shared_total", "Exceptions queued for the peer gateways."),
    (Kind::Counter, "dnlb_sync_pinned_total", "SYNs stored while a version was staged, because the staged table would move them."),
    (Kind::Counter, "dnlb_sync_learned_total", "Entries from peers stored in workers' learned tables (each worker counts)."),
    (Kind::Counter, "dnlb_sync_learned_used_total", "Packets of flows this gateway did not track that a learned entry kept on their backend."),
    (Kind::Gauge, "dnlb_sync_learned_entries", "Learned entries held by workers, summed (an expired one until its worker's sweep passes: seconds under traffic)."),
    (Kind::Gauge, "dnlb_sync_held_entries", "Entries from peers the sync endpoint holds (to answer fetches)."),
    (Kind::Counter, "dnlb_sync_messages_total", "Sync messages, by direction (sent: a copy to each peer counts; received: accepted)."),
    (Kind::Counter, "dnlb_sync_sent_bytes_total", "Bytes of sync messages sent (UDP payload)."),
    (Kind::Counter, "dnlb_sync_rejected_total", "Sync messages rejected and ignored, by reason (forged, replayed, malformed, ...)."),
    (Kind::Counter, "dnlb_sync_dropped_total", "Sync entries dropped, by where (worker_pending: found again by a later walk; send_queue; to_workers)."),
    (Kind::Counter, "dnlb_sync_fetch_peers_total", "Peers asked at start for what they hold, by result (complete, failed)."),
];

/// A family and how to read its value from one entity (worker, port,
/// backend).
type Field<T, V> = (&'static str, fn(&T) -> V);

/// A sample's value.
#[derive(Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(u64::from(v))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(v as u64)
    }
}

/// The text being written, and the family samples go to.
struct Text {
    out: String,
    family: Option<&'static str>,
    family_started: bool,
}

impl Text {
    /// Samples from now on belong to family `name` (its HELP and TYPE lines
    /// are written with its first sample).
    fn family(&mut self, name: &'static str) -> &mut Self {
        self.family = Some(name);
        self.family_started = false;
        self
    }

    /// A sample of the current family. `labels` are rendered `k="v"` lists
    /// (see [`push_label`]), joined with commas.
    fn sample(&mut self, labels: &[&str], value: impl Into<Value>) -> &mut Self {
        let Some(name) = self.family else {
            return self;
        };
        if !self.family_started {
            self.family_started = true;
            let (kind, help) = FAMILIES
                .iter()
                .find(|(_, n, _)| *n == name)
                .map_or((Kind::Gauge, ""), |(k, _, h)| (*k, *h));
            let kind = kind.name();
            let out = &mut self.out;
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            push_escaped(out, help, false);
            out.push_str("\n# TYPE ");
            out.push_str(name);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
        }
        let out = &mut self.out;
        out.push_str(name);
        let mut labels = labels.iter().filter(|l| !l.is_empty());
        if let Some(first) = labels.next() {
            out.push('{');
            out.push_str(first);
            for l in labels {
                out.push(',');
                out.push_str(l);
            }
            out.push('}');
        }
        out.push(' ');
        match value.into() {
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Float(v) if v.is_nan() => out.push_str("NaN"),
            Value::Float(v) if v.is_infinite() => {
                out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(v) => {
                let _ = write!(out, "{v}");
            }
        }
        out.push('\n');
        self
    }
}

/// Escapes `s` for a label value (`\`, `"`, newline) or a help text (`\`,
/// newline).
fn push_escaped(out: &mut String, s: &str, quote: bool) {
    if !s.contains(['\\', '"', '\n']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Appends `key="value"` (the value escaped).
fn push_label(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str("=\"");
    push_escaped(out, value, true);
    out.push('"');
}

/// `key="value"` as a string of its own.
fn label(key: &str, value: &str) -> String {
    let mut s = String::new();
    push_label(&mut s, key, value);
    s
}

/// Renders `s` in the Prometheus text exposition format.
pub fn render(s: &Status) -> String {
    let samples = 40
        + s.drops.len()
        + s.workers.len() * 3
        + s.ports.len() * 8
        + s.listeners.iter().map(|l| 3 + l.drops.len()).sum::<usize>()
        + s.backends.iter().map(|b| 6 + b.drops.len()).sum::<usize>();
    let mut t = Text {
        out: String::with_capacity(FAMILIES.len() * 160 + samples * 110),
        family: None,
        family_started: false,
    };
    gateway(&mut t, s);
    ports(&mut t, &s.ports);
    flows(&mut t, s);
    listeners(&mut t, s);
    backends(&mut t, s);
    bird(&mut t, s);
    sync(&mut t, s);
    t.out
}

/// The gateway as a whole: info, uptime, reloads, workers, drops.
fn gateway(t: &mut Text, s: &Status) {
    let info = [
        label("gateway", &s.gateway),
        label("zone", s.zone.as_deref().unwrap_or_default()),
        label("version", env!("CARGO_PKG_VERSION")),
    ];
    let info: Vec<&str> = info.iter().map(String::as_str).collect();
    t.family("dnlb_info").sample(&info, 1u64);
    t.family("dnlb_uptime_seconds")
        .sample(&[], Value::Float(s.uptime_secs));
    t.family("dnlb_config_generation").sample(&[], s.generation);
    t.family("dnlb_reloads_total")
        .sample(&["result=\"ok\""], s.reloads_ok)
        .sample(&["result=\"rejected\""], s.reloads_rejected);
    t.family("dnlb_runtime_changes")
        .sample(&[], s.runtime_changes.len());
    t.family("dnlb_runtime_changes_stale")
        .sample(&[], s.stale_changes.len());
    let lcores: Vec<String> = s
        .workers
        .iter()
        .map(|w| format!("lcore=\"{}\"", w.lcore))
        .collect();
    let by_worker: [Field<WorkerStatus, u64>; 3] = [
        ("dnlb_worker_received_packets_total", |w| w.rx_packets),
        ("dnlb_worker_transmitted_packets_total", |w| w.tx_packets),
        ("dnlb_worker_dropped_packets_total", |w| w.dropped),
    ];
    for (name, get) in by_worker {
        t.family(name);
        for (w, l) in s.workers.iter().zip(&lcores) {
            t.sample(&[l.as_str()], get(w));
        }
    }
    t.family("dnlb_worker_busy_seconds_total");
    for (w, l) in s.workers.iter().zip(&lcores) {
        t.sample(&[l.as_str()], Value::Float(w.busy_seconds));
    }
    t.family("dnlb_dropped_packets_total");
    for (reason, n) in &s.drops {
        t.sample(&[label("reason", reason).as_str()], *n);
    }
}

/// The ports' driver counters.
fn ports(t: &mut Text, ports: &[PortStatus]) {
    let labels: Vec<String> = ports.iter().map(|p| label("port", &p.name)).collect();
    let by_port: [Field<PortStatus, u64>; 8] = [
        ("dnlb_port_received_packets_total", |p| p.rx_packets),
        ("dnlb_port_transmitted_packets_total", |p| p.tx_packets),
        ("dnlb_port_received_bytes_total", |p| p.rx_bytes),
        ("dnlb_port_transmitted_bytes_total", |p| p.tx_bytes),
        ("dnlb_port_rx_missed_packets_total", |p| p.rx_missed),
        ("dnlb_port_rx_errors_total", |p| p.rx_errors),
        ("dnlb_port_tx_errors_total", |p| p.tx_errors),
        ("dnlb_port_rx_mbuf_alloc_failures_total", |p| p.rx_no_mbuf),
    ];
    for (name, get) in by_port {
        t.family(name);
        for (p, l) in ports.iter().zip(&labels) {
            t.sample(&[l.as_str()], get(p));
        }
    }
}

/// Flow tables and what happened to flows.
fn flows(t: &mut Text, s: &Status) {
    let f = &s.flows;
    for (name, v) in [
        ("dnlb_flow_table_entries", f.entries),
        ("dnlb_flow_table_capacity", f.capacity),
        ("dnlb_flows_created_total", f.created),
        ("dnlb_flow_table_full_total", f.table_full),
        ("dnlb_flows_rescheduled_total", f.rescheduled),
        ("dnlb_icmp_errors_forwarded_total", f.icmp_errors_forwarded),
        ("dnlb_too_big_sent_total", f.too_big_sent),
        ("dnlb_echo_replies_total", f.echo_replies),
    ] {
        t.family(name).sample(&[], v);
    }
    t.family("dnlb_host_packets_total");
    for h in &f.host {
        let class = label("class", &h.class);
        t.sample(&[class.as_str(), "result=\"passed\""], h.passed);
        t.sample(&[class.as_str(), "result=\"dropped\""], h.dropped);
    }
}

/// Per listener.
fn listeners(t: &mut Text, s: &Status) {
    let labels: Vec<String> = s
        .listeners
        .iter()
        .map(|l| label("listener", &l.name))
        .collect();
    let each = s.listeners.iter().zip(&labels);
    t.family("dnlb_listener_packets_total");
    for (l, lb) in each.clone() {
        t.sample(&[lb.as_str()], l.packets);
    }
    t.family("dnlb_listener_bytes_total");
    for (l, lb) in each.clone() {
        t.sample(&[lb.as_str()], l.bytes);
    }
    t.family("dnlb_listener_backends_taking_new_flows");
    for (l, lb) in each.clone() {
        t.sample(&[lb.as_str()], l.backends_taking_new_flows);
    }
    t.family("dnlb_listener_dropped_packets_total");
    for (l, lb) in each.clone() {
        for (reason, n) in &l.drops {
            t.sample(&[lb.as_str(), label("reason", reason).as_str()], *n);
        }
    }
    t.family("dnlb_acl_rule_packets_total");
    for (l, lb) in each.clone() {
        let Some(acl) = &l.acl else { continue };
        let default = [label("rule", "default"), label("action", &acl.default)];
        t.sample(
            &[lb.as_str(), &default[0], &default[1]],
            acl.default_packets,
        );
        for r in &acl.rules {
            let (rule, action) = (label("rule", &r.prefix), label("action", &r.action));
            t.sample(&[lb.as_str(), &rule, &action], r.packets);
        }
    }
    t.family("dnlb_listener_new_flow_limit");
    for (l, lb) in each {
        let Some(limits) = &l.limits else { continue };
        for (scope, v) in [
            ("listener", limits.new_flows_per_sec),
            ("source", limits.source_new_flows_per_sec),
        ] {
            if let Some(v) = v {
                t.sample(&[lb.as_str(), label("scope", scope).as_str()], u64::from(v));
            }
        }
    }
}

/// Per backend: its labels are rendered once, into one buffer.
fn backends(t: &mut Text, s: &Status) {
    let mut buf = String::with_capacity(s.backends.len() * 80);
    let mut spans: Vec<Range<usize>> = Vec::with_capacity(s.backends.len());
    for b in &s.backends {
        let start = buf.len();
        push_label(&mut buf, "target_group", &b.target_group);
        buf.push(',');
        push_label(&mut buf, "backend", &b.address);
        let _ = write!(buf, ",port=\"{}\",", b.port);
        push_label(&mut buf, "zone", b.zone.as_deref().unwrap_or_default());
        spans.push(start..buf.len());
    }
    let each = || s.backends.iter().zip(spans.iter().map(|r| &buf[r.clone()]));
    let by_backend: [Field<BackendStatus, Value>; 7] = [
        ("dnlb_backend_packets_total", |b| b.packets.into()),
        ("dnlb_backend_bytes_total", |b| b.bytes.into()),
        ("dnlb_backend_healthy", |b| b.healthy.into()),
        ("dnlb_backend_health_presumed", |b| b.health_presumed.into()),
        ("dnlb_backend_usable", |b| b.usable.into()),
        ("dnlb_backend_takes_new_flows", |b| b.takes_new_flows.into()),
        ("dnlb_backend_weight", |b| u64::from(b.weight).into()),
    ];
    for (name, get) in by_backend {
        t.family(name);
        for (b, l) in each() {
            t.sample(&[l], get(b));
        }
    }
    t.family("dnlb_backend_dropped_packets_total");
    for (b, l) in each() {
        for (reason, n) in &b.drops {
            t.sample(&[l, label("reason", reason).as_str()], *n);
        }
    }
}

/// BIRD's state (with a `[routing]` section only).
fn bird(t: &mut Text, s: &Status) {
    let Some(r) = &s.routes else { return };
    t.family("dnlb_bird_up").sample(&[], r.up);
    t.family("dnlb_bird_attempts_total").sample(&[], r.attempts);
    t.family("dnlb_bird_failures_total").sample(&[], r.failures);
    t.family("dnlb_bird_announced_vips")
        .sample(&[], r.announced.as_ref().map_or(0, Vec::len));
    t.family("dnlb_bird_wanted_vips")
        .sample(&[], r.wanted.len());
    t.family("dnlb_bird_change_pending").sample(&[], r.pending);
}

/// Flow-exception sync (with a `[sync]` section only).
fn sync(t: &mut Text, s: &Status) {
    let Some(y) = &s.sync else { return };
    t.family("dnlb_sync_staged").sample(&[], y.staged);
    t.family("dnlb_sync_exceptions_found_total")
        .sample(&[], y.exceptions_found);
    t.family("dnlb_sync_exceptions_shared_total")
        .sample(&[], y.shared);
    t.family("dnlb_sync_pinned_total").sample(&[], y.pinned);
    t.family("dnlb_sync_learned_total").sample(&[], y.learned);
    t.family("dnlb_sync_learned_used_total")
        .sample(&[], y.learned_used);
    t.family("dnlb_sync_learned_entries")
        .sample(&[], y.learned_entries);
    t.family("dnlb_sync_held_entries").sample(&[], y.held);
    t.family("dnlb_sync_messages_total")
        .sample(&["direction=\"sent\""], y.sent_messages)
        .sample(&["direction=\"received\""], y.received_messages);
    t.family("dnlb_sync_sent_bytes_total")
        .sample(&[], y.sent_bytes);
    let f = t.family("dnlb_sync_rejected_total");
    for (reason, n) in &y.rejected {
        f.sample(&[&label("reason", reason)], *n);
    }
    t.family("dnlb_sync_dropped_total")
        .sample(&["where=\"worker_pending\""], y.exceptions_dropped)
        .sample(&["where=\"send_queue\""], y.queue_drops)
        .sample(&["where=\"to_workers\""], y.dropped);
    t.family("dnlb_sync_fetch_peers_total")
        .sample(&["result=\"complete\""], y.fetch_peers_complete)
        .sample(&["result=\"failed\""], y.fetch_peers_failed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::status::{
        AclRuleStatus, AclStatus, FlowStatus, HostClassStatus, LimitsStatus, ListenerStatus,
        RoutesStatus, SyncStatus,
    };
    use std::collections::BTreeMap;

    /// A status with something in every family.
    fn full() -> Status {
        let drops = |r: &str, n: u64| -> BTreeMap<String, u64> {
            [(r.to_string(), n)].into_iter().collect()
        };
        Status {
            gateway: "gw1".into(),
            zone: Some("a".into()),
            uptime_secs: 12.5,
            generation: 7,
            reloads_ok: 3,
            runtime_changes: vec!["x".into()],
            workers: vec![WorkerStatus {
                lcore: 1,
                rx_packets: 9,
                ..Default::default()
            }],
            ports: vec![PortStatus {
                name: "net_pcap0".into(),
                rx_packets: 5,
                ..Default::default()
            }],
            drops: drops("no_backend", 2),
            listeners: vec![ListenerStatus {
                name: "web".into(),
                packets: 10,
                bytes: 1000,
                drops: drops("no_backend", 2),
                acl: Some(AclStatus {
                    default: "deny".into(),
                    default_packets: 3,
                    rules: vec![AclRuleStatus {
                        prefix: "198.18.0.0/16".into(),
                        action: "allow".into(),
                        packets: 8,
                    }],
                }),
                limits: Some(LimitsStatus {
                    source_new_flows_per_sec: Some(100),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            flows: FlowStatus {
                host: vec![HostClassStatus {
                    class: "routing".into(),
                    passed: 6,
                    dropped: 1,
                }],
                ..Default::default()
            },
            backends: vec![BackendStatus {
                target_group: "web".into(),
                address: "10.0.0.1".into(),
                healthy: true,
                weight: 100,
                packets: 10,
                drops: drops("too_big", 4),
                ..Default::default()
            }],
            routes: Some(RoutesStatus {
                up: true,
                attempts: 4,
                failures: 1,
                announced: Some(vec!["192.0.2.10".into()]),
                wanted: vec!["192.0.2.10".into(), "192.0.2.11".into()],
                pending: true,
                ..Default::default()
            }),
            sync: Some(SyncStatus {
                staged: true,
                exceptions_found: 30,
                shared: 29,
                learned: 12,
                learned_used: 5,
                rejected: [("forged".to_string(), 2)].into_iter().collect(),
                sent_messages: 4,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn renders_every_family_with_help_and_labels() {
        let text = render(&full());
        for want in [
            "# HELP dnlb_config_generation Generation of the configuration snapshot workers use.\n# TYPE dnlb_config_generation gauge\ndnlb_config_generation 7\n",
            "dnlb_info{gateway=\"gw1\",zone=\"a\",version=\"",
            "dnlb_uptime_seconds 12.5\n",
            "dnlb_reloads_total{result=\"ok\"} 3\ndnlb_reloads_total{result=\"rejected\"} 0\n",
            "dnlb_worker_received_packets_total{lcore=\"1\"} 9\n",
            "dnlb_port_received_packets_total{port=\"net_pcap0\"} 5\n",
            "dnlb_dropped_packets_total{reason=\"no_backend\"} 2\n",
            "dnlb_listener_bytes_total{listener=\"web\"} 1000\n",
            "dnlb_listener_dropped_packets_total{listener=\"web\",reason=\"no_backend\"} 2\n",
            "dnlb_backend_healthy{target_group=\"web\",backend=\"10.0.0.1\",port=\"0\",zone=\"\"} 1\n",
            "dnlb_backend_weight{target_group=\"web\",backend=\"10.0.0.1\",port=\"0\",zone=\"\"} 100\n",
            "# TYPE dnlb_backend_packets_total counter\n",
            "dnlb_backend_dropped_packets_total{target_group=\"web\",backend=\"10.0.0.1\",port=\"0\",zone=\"\",reason=\"too_big\"} 4\n",
            "dnlb_bird_up 1\n",
            "dnlb_bird_failures_total 1\n",
            "dnlb_bird_announced_vips 1\n",
            "dnlb_bird_wanted_vips 2\n",
            "dnlb_bird_change_pending 1\n",
            "dnlb_acl_rule_packets_total{listener=\"web\",rule=\"default\",action=\"deny\"} 3\n",
            "dnlb_acl_rule_packets_total{listener=\"web\",rule=\"198.18.0.0/16\",action=\"allow\"} 8\n",
            "dnlb_listener_new_flow_limit{listener=\"web\",scope=\"source\"} 100\n",
            "dnlb_host_packets_total{class=\"routing\",result=\"dropped\"} 1\n",
            "dnlb_sync_staged 1\n",
            "dnlb_sync_exceptions_found_total 30\n",
            "dnlb_sync_learned_used_total 5\n",
            "dnlb_sync_messages_total{direction=\"sent\"} 4\n",
            "dnlb_sync_rejected_total{reason=\"forged\"} 2\n",
            "dnlb_sync_dropped_total{where=\"send_queue\"} 0\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // Every family in the table is written, once, with HELP and TYPE;
        // every sample belongs to a family of the table.
        for (kind, name, help) in families() {
            let kind = kind.name();
            let head = format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
            assert_eq!(text.matches(&head).count(), 1, "{name}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(FAMILIES.iter().any(|(_, n, _)| *n == name), "{line}");
        }
        promtool_check(&text);
    }

    #[test]
    fn counters_and_only_counters_end_in_total() {
        for (kind, name, _) in families() {
            assert_eq!(kind == Kind::Counter, name.ends_with("_total"), "{name}");
            assert!(name.starts_with("dnlb_"), "{name}");
        }
    }

    #[test]
    fn empty_families_and_routing_are_left_out() {
        let text = render(&Status::default());
        assert!(!text.contains("dnlb_backend_"), "{text}");
        assert!(!text.contains("dnlb_bird_"), "{text}");
        assert!(!text.contains("dnlb_sync_"), "{text}");
        assert!(text.contains("dnlb_flow_table_entries 0\n"), "{text}");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let s = Status {
            gateway: "g\"w\\1\n".into(),
            ..Default::default()
        };
        let text = render(&s);
        assert!(
            text.contains("dnlb_info{gateway=\"g\\\"w\\\\1\\n\",zone=\"\","),
            "{text}"
        );
        let mut help = String::new();
        push_escaped(&mut help, "a \"b\" \\ c\nd", false);
        assert_eq!(help, "a \"b\" \\\\ c\\nd");
        let mut t = Text {
            out: String::new(),
            family: None,
            family_started: false,
        };
        t.family("dnlb_uptime_seconds")
            .sample(&[], Value::Float(f64::INFINITY))
            .sample(&[], Value::Float(f64::NAN))
            .sample(&[], Value::Float(0.25));
        assert!(
            t.out.ends_with(
                "dnlb_uptime_seconds +Inf\ndnlb_uptime_seconds NaN\ndnlb_uptime_seconds 0.25\n"
            ),
            "{}",
            t.out
        );
    }

    /// Runs `promtool check metrics` on `text`.
    fn promtool_check(text: &str) {
        use std::io::Write;
        let mut p = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
        p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

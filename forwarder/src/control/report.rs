//! Reporting: what the control plane's state and the workers' counters add
//! up to, built outside the state owner. [`status`] is what the admin API
//! serves (and `/metrics` renders); [`final_report`] is what a stopped
//! forwarder did. The reported data types live in [`super::status`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use dnlb_config::Config;
use dnlb_dataplane::{Counters, DropReason, LbStats};
use dnlb_lb::maglev::backend_identity;
use dnlb_lb::policing::HostClass;
use dnlb_lb::snapshot::{ListenerState, Snapshot};
use dpdk_bindings::PortStats;

use super::changes::touches;
use super::plane::ControlPlane;
use super::status::{
    all_drops, AclRuleStatus, AclStatus, BackendStatus, FlowStatus, HostClassStatus, LimitsStatus,
    ListenerStatus, PortStatus, Report, Status, SyncStatus, TrafficReport, WorkerReport,
    WorkerStatus,
};

/// Everything the admin API reports, with counters fresh from workers.
pub fn status(plane: &ControlPlane) -> Status {
    let (lb, fresh) = plane.lb_stats();
    let cfg = plane.config();
    let workers = plane
        .workers()
        .iter()
        .map(|(lcore, p)| {
            let c = p.read();
            WorkerStatus {
                lcore: *lcore,
                rx_packets: c.rx_packets,
                tx_packets: c.tx_packets,
                dropped: c.dropped(),
                busy_seconds: plane.busy_seconds(c.busy_cycles),
            }
        })
        .collect();
    let totals = plane.totals();
    let runtime = plane.runtime_changes();
    let (listeners, backends) = match plane.snapshot() {
        Some(snap) => (
            listener_statuses(cfg, &snap, &lb),
            backend_statuses(plane, &snap, &lb),
        ),
        None => Default::default(),
    };
    Status {
        gateway: cfg.gateway.name.clone(),
        zone: cfg.gateway.zone.clone(),
        config_file: plane.config_file().map(|p| p.display().to_string()),
        uptime_secs: plane.uptime().as_secs_f64(),
        generation: plane.generation(),
        reloads_ok: plane.reloads().ok,
        reloads_rejected: plane.reloads().rejected,
        counters_fresh: fresh,
        workers,
        ports: plane.ports().to_vec(),
        drops: all_drops(&totals),
        flows: flow_status(&lb),
        listeners,
        backends,
        runtime_changes: runtime.map(|(_, c)| c.describe()).unwrap_or_default(),
        stale_changes: plane.stale_changes().to_vec(),
        runtime_file: runtime.map(|(p, _)| p.display().to_string()),
        routes: plane.routes_status(),
        sync: sync_status(plane, &lb),
    }
}

/// Sync messages rejected, by reason (every reason, zeros included).
pub fn rejections(r: &dnlb_sync::Rejections) -> BTreeMap<String, u64> {
    [
        ("oversized", r.oversized),
        ("malformed", r.malformed),
        ("forged", r.forged),
        ("stale_epoch", r.stale_epoch),
        ("replayed", r.replayed),
        ("own", r.own),
        ("unexpected", r.unexpected),
        ("too_many_senders", r.too_many_senders),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn sync_status(plane: &ControlPlane, lb: &LbStats) -> Option<SyncStatus> {
    let (e, b) = plane.sync_stats()?;
    let w = &lb.counters.sync;
    Some(SyncStatus {
        staged: plane.is_staging(),
        exceptions_found: w.exceptions,
        exceptions_dropped: w.exceptions_dropped,
        walks: w.walks,
        pinned: w.pinned,
        learned: w.learned,
        learned_full: w.learned_full,
        learned_used: w.learned_used,
        learned_entries: w.learned_entries,
        shared: b.shared,
        from_peers: b.learned + b.withdrawn,
        unknown: b.unknown,
        dropped: b.inbox_dropped + b.worker_queue_full,
        sent_messages: e.sent_messages,
        sent_bytes: e.sent_bytes,
        received_messages: e.received_messages,
        rejected: rejections(&e.rejected),
        queued: e.queued,
        queue_drops: e.queue_drops,
        held: e.held,
        fetch_peers_complete: e.fetch_peers_complete,
        fetch_peers_failed: e.fetch_peers_failed,
        fetches_served: e.fetches_served,
    })
}

fn flow_status(lb: &LbStats) -> FlowStatus {
    let c = &lb.counters;
    FlowStatus {
        entries: lb.flows as u64,
        capacity: lb.flow_capacity as u64,
        created: c.new_flows,
        table_full: c.flow_table_full,
        rescheduled: c.flows_rescheduled,
        icmp_errors_forwarded: c.icmp_errors_forwarded,
        too_big_sent: c.too_big_sent,
        echo_replies: c.echo_replies,
        host: HostClass::ALL
            .iter()
            .zip(&c.host)
            .filter(|(_, h)| h.passed + h.dropped > 0)
            .map(|(class, h)| HostClassStatus {
                class: class.name().into(),
                passed: h.passed,
                dropped: h.dropped,
            })
            .collect(),
    }
}

/// Listener `l`'s access list with its rules' counters (from the snapshot's
/// compiled list, which holds them).
fn acl_status(l: &dnlb_config::Listener, ls: &ListenerState) -> Option<AclStatus> {
    let (acl, table) = (l.acl.as_ref()?, ls.acl.as_ref()?);
    Some(AclStatus {
        default: acl.default.name().into(),
        default_packets: table.hits(None),
        rules: acl
            .rules
            .iter()
            .enumerate()
            .map(|(i, (cidr, action))| AclRuleStatus {
                prefix: cidr.to_string(),
                action: action.name().into(),
                packets: table.hits(Some(i)),
            })
            .collect(),
    })
}

/// Listener `l`'s new-flow limits, if it has any.
fn limits_status(l: &dnlb_config::Listener) -> Option<LimitsStatus> {
    let (ln, src) = (l.limits.listener, l.limits.source);
    (ln.is_some() || src.is_some()).then(|| LimitsStatus {
        new_flows_per_sec: ln.map(|r| r.per_sec),
        new_flows_burst: ln.map(|r| r.burst),
        source_new_flows_per_sec: src.map(|r| r.per_sec),
        source_new_flows_burst: src.map(|r| r.burst),
    })
}

fn listener_statuses(cfg: &Config, snap: &Snapshot, lb: &LbStats) -> Vec<ListenerStatus> {
    let c = &lb.counters;
    cfg.listeners
        .iter()
        .zip(&snap.listeners)
        .map(|(l, ls)| {
            let slot = ls.slot as usize;
            let t = c.listeners.get(slot).copied().unwrap_or_default();
            let d = c.listener_drops.get(slot).copied().unwrap_or_default();
            ListenerStatus {
                name: l.name.clone(),
                vips: l.vips.iter().map(IpAddr::to_string).collect(),
                elastic_ip: l.elastic_ip.map(|a| a.to_string()),
                protocol: l.protocol.name().into(),
                port: l.port,
                target_group: cfg.target_groups[l.target_group].name.clone(),
                backends_taking_new_flows: snap
                    .backends
                    .iter()
                    .flatten()
                    .filter(|b| b.group as usize == l.target_group && b.takes_new_flows)
                    .count(),
                packets: t.packets,
                bytes: t.bytes,
                drops: nonzero(&d),
                acl: acl_status(l, ls),
                limits: limits_status(l),
            }
        })
        .collect()
}

fn backend_statuses(plane: &ControlPlane, snap: &Snapshot, lb: &LbStats) -> Vec<BackendStatus> {
    let c = &lb.counters;
    let changes = plane.runtime_changes().map(|(_, c)| c);
    let presumed = plane.presumed_healthy();
    let mut out = Vec::new();
    for (gi, g) in plane.config().target_groups.iter().enumerate() {
        for b in &g.backends {
            let key = (g.name.clone(), backend_identity(b));
            let Some(s) = plane
                .registry()
                .get(&g.name, &key.1)
                .and_then(|id| snap.backend(id))
                .filter(|s| s.group as usize == gi)
            else {
                continue;
            };
            let i = s.id.0 as usize;
            let t = c.backends.get(i).copied().unwrap_or_default();
            let d = c.backend_drops.get(i).copied().unwrap_or_default();
            out.push(BackendStatus {
                target_group: g.name.clone(),
                address: b.address.to_string(),
                port: b.port,
                kind: b.kind.name().into(),
                zone: b.zone.clone(),
                tunnel: b.tunnel.name().into(),
                weight: b.weight,
                healthy: s.healthy,
                health_presumed: s.healthy && presumed.contains(&key),
                usable: s.usable,
                takes_new_flows: s.takes_new_flows,
                drain_until: b
                    .drain_until
                    .map(|t| dnlb_config::time::from_system_time(t).to_string()),
                runtime: changes.is_some_and(|ch| touches(ch, &g.name, b)),
                packets: t.packets,
                bytes: t.bytes,
                drops: nonzero(&d),
            });
        }
    }
    out
}

/// Drop counts by reason name, leaving out reasons without drops.
fn nonzero(d: &[u64; DropReason::COUNT]) -> BTreeMap<String, u64> {
    DropReason::ALL
        .iter()
        .filter(|r| d[**r as usize] > 0)
        .map(|r| (r.name().to_string(), d[*r as usize]))
        .collect()
}

/// A port's driver counters as reported.
pub fn port_status(name: &str, s: &PortStats) -> PortStatus {
    PortStatus {
        name: name.to_string(),
        rx_packets: s.rx_packets,
        tx_packets: s.tx_packets,
        rx_bytes: s.rx_bytes,
        tx_bytes: s.tx_bytes,
        rx_missed: s.rx_missed,
        rx_errors: s.rx_errors,
        tx_errors: s.tx_errors,
        rx_no_mbuf: s.rx_no_mbuf,
    }
}

/// The report of a stopped forwarder: `workers` and `ports` as they
/// ended, the rest from the control plane.
pub fn final_report(
    plane: &ControlPlane,
    workers: &[(u32, Counters)],
    ports: Vec<PortStatus>,
) -> Report {
    let mut total = Counters::default();
    for (_, c) in workers {
        total.add(c);
    }
    let snap = plane.snapshot();
    let lb = snap.as_ref().map(|_| plane.last_lb_stats());
    let (mut listeners, mut backends) = (Vec::new(), Vec::new());
    if let (Some(snap), Some(lb)) = (&snap, &lb) {
        let c = &lb.counters;
        for l in &snap.listeners {
            let t = c
                .listeners
                .get(l.slot as usize)
                .copied()
                .unwrap_or_default();
            listeners.push(TrafficReport {
                name: l.name.clone(),
                group: None,
                packets: t.packets,
                bytes: t.bytes,
            });
        }
        for b in snap.backends.iter().flatten() {
            let t = c.backends.get(b.id.0 as usize).copied().unwrap_or_default();
            backends.push(TrafficReport {
                name: b.address.to_string(),
                group: Some(plane.config().target_groups[b.group as usize].name.clone()),
                packets: t.packets,
                bytes: t.bytes,
            });
        }
    }
    Report {
        workers: workers
            .iter()
            .map(|(lcore, c)| WorkerReport {
                lcore: *lcore,
                counters: c.into(),
            })
            .collect(),
        ports,
        listeners,
        backends,
        flows: lb.as_ref().map(flow_status),
        reloads_ok: plane.reloads().ok,
        reloads_rejected: plane.reloads().rejected,
        generation: plane.generation(),
        total: (&total).into(),
    }
}

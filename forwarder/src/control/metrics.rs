//! The Prometheus endpoint: a [`Status`] rendered through the `metrics`
//! crate and its Prometheus exporter. Workers keep plain counters; they are
//! summed at scrape time into a fresh recorder, so every scrape shows
//! exactly the current listeners and backends (none left over from before a
//! reload).

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};
use metrics_exporter_prometheus::PrometheusBuilder;

use super::status::Status;

/// Renders `s` in the Prometheus text exposition format.
pub fn render(s: &Status) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || record(s));
    handle.render()
}

fn record(s: &Status) {
    describe();
    let gw = s.gateway.clone();
    gauge!("dnlb_info", "gateway" => gw.clone(), "zone" => s.zone.clone().unwrap_or_default(),
        "version" => env!("CARGO_PKG_VERSION"))
    .set(1.0);
    gauge!("dnlb_uptime_seconds").set(s.uptime_secs);
    gauge!("dnlb_config_generation").set(s.generation as f64);
    counter!("dnlb_reloads_total", "result" => "ok").absolute(s.reloads_ok);
    counter!("dnlb_reloads_total", "result" => "rejected").absolute(s.reloads_rejected);
    gauge!("dnlb_runtime_changes").set(s.runtime_changes.len() as f64);
    gauge!("dnlb_runtime_changes_stale").set(s.stale_changes.len() as f64);
    for w in &s.workers {
        let lcore = w.lcore.to_string();
        counter!("dnlb_worker_received_packets_total", "lcore" => lcore.clone())
            .absolute(w.rx_packets);
        counter!("dnlb_worker_transmitted_packets_total", "lcore" => lcore.clone())
            .absolute(w.tx_packets);
        counter!("dnlb_worker_dropped_packets_total", "lcore" => lcore).absolute(w.dropped);
    }
    for p in &s.ports {
        let port = || ("port", p.name.clone());
        for (name, v) in [
            ("dnlb_port_received_packets_total", p.rx_packets),
            ("dnlb_port_transmitted_packets_total", p.tx_packets),
            ("dnlb_port_received_bytes_total", p.rx_bytes),
            ("dnlb_port_transmitted_bytes_total", p.tx_bytes),
            ("dnlb_port_rx_missed_packets_total", p.rx_missed),
            ("dnlb_port_rx_errors_total", p.rx_errors),
            ("dnlb_port_tx_errors_total", p.tx_errors),
            ("dnlb_port_rx_mbuf_alloc_failures_total", p.rx_no_mbuf),
        ] {
            counter!(name, &[port()]).absolute(v);
        }
    }
    for (reason, n) in &s.drops {
        counter!("dnlb_dropped_packets_total", "reason" => reason.clone()).absolute(*n);
    }
    let f = &s.flows;
    gauge!("dnlb_flow_table_entries").set(f.entries as f64);
    gauge!("dnlb_flow_table_capacity").set(f.capacity as f64);
    counter!("dnlb_flows_created_total").absolute(f.created);
    counter!("dnlb_flow_table_full_total").absolute(f.table_full);
    counter!("dnlb_flows_rescheduled_total").absolute(f.rescheduled);
    counter!("dnlb_icmp_errors_forwarded_total").absolute(f.icmp_errors_forwarded);
    counter!("dnlb_too_big_sent_total").absolute(f.too_big_sent);
    counter!("dnlb_echo_replies_total").absolute(f.echo_replies);
    for l in &s.listeners {
        let name = l.name.clone();
        counter!("dnlb_listener_packets_total", "listener" => name.clone()).absolute(l.packets);
        counter!("dnlb_listener_bytes_total", "listener" => name.clone()).absolute(l.bytes);
        gauge!("dnlb_listener_backends_taking_new_flows", "listener" => name.clone())
            .set(l.backends_taking_new_flows as f64);
        for (reason, n) in &l.drops {
            counter!("dnlb_listener_dropped_packets_total", "listener" => name.clone(),
                "reason" => reason.clone())
            .absolute(*n);
        }
    }
    for b in &s.backends {
        let labels = [
            ("target_group", b.target_group.clone()),
            ("backend", b.address.clone()),
            ("port", b.port.to_string()),
            ("zone", b.zone.clone().unwrap_or_default()),
        ];
        counter!("dnlb_backend_packets_total", &labels).absolute(b.packets);
        counter!("dnlb_backend_bytes_total", &labels).absolute(b.bytes);
        gauge!("dnlb_backend_healthy", &labels).set(f64::from(u8::from(b.healthy)));
        gauge!("dnlb_backend_usable", &labels).set(f64::from(u8::from(b.usable)));
        gauge!("dnlb_backend_takes_new_flows", &labels).set(f64::from(u8::from(b.takes_new_flows)));
        gauge!("dnlb_backend_weight", &labels).set(f64::from(b.weight));
        for (reason, n) in &b.drops {
            let mut l = labels.to_vec();
            l.push(("reason", reason.clone()));
            counter!("dnlb_backend_dropped_packets_total", &l).absolute(*n);
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// Every metric dnlb exports: kind, name, unit and help text.
const FAMILIES: &[(Kind, &str, Option<Unit>, &str)] = &[
    (Kind::Gauge, "dnlb_info", None, "Gateway name, zone and dnlb version (always 1)."),
    (Kind::Gauge, "dnlb_uptime_seconds", Some(Unit::Seconds), "Seconds since the forwarder started."),
    (Kind::Gauge, "dnlb_config_generation", None, "Generation of the configuration snapshot workers use."),
    (Kind::Counter, "dnlb_reloads_total", None, "Configuration reloads by result (ok: published; rejected: the running configuration stayed)."),
    (Kind::Gauge, "dnlb_runtime_changes", None, "Run-time changes made through the admin API that are in effect."),
    (Kind::Gauge, "dnlb_runtime_changes_stale", None, "Run-time changes that name something the config file no longer has."),
    (Kind::Counter, "dnlb_worker_received_packets_total", None, "Packets received by a worker."),
    (Kind::Counter, "dnlb_worker_transmitted_packets_total", None, "Packets transmitted by a worker."),
    (Kind::Counter, "dnlb_worker_dropped_packets_total", None, "Packets dropped by a worker (all reasons)."),
    (Kind::Counter, "dnlb_dropped_packets_total", None, "Packets dropped, by reason, summed over workers."),
    (Kind::Counter, "dnlb_port_received_packets_total", None, "Packets a port's driver received."),
    (Kind::Counter, "dnlb_port_transmitted_packets_total", None, "Packets a port's driver sent."),
    (Kind::Counter, "dnlb_port_received_bytes_total", Some(Unit::Bytes), "Bytes a port's driver received."),
    (Kind::Counter, "dnlb_port_transmitted_bytes_total", Some(Unit::Bytes), "Bytes a port's driver sent."),
    (Kind::Counter, "dnlb_port_rx_missed_packets_total", None, "Packets a port dropped because its RX queues were full (workers too slow)."),
    (Kind::Counter, "dnlb_port_rx_errors_total", None, "Receive errors of a port."),
    (Kind::Counter, "dnlb_port_tx_errors_total", None, "Transmit errors of a port."),
    (Kind::Counter, "dnlb_port_rx_mbuf_alloc_failures_total", None, "RX mbuf allocation failures of a port (packet pool exhausted)."),
    (Kind::Gauge, "dnlb_flow_table_entries", None, "Flows tracked, summed over workers' flow tables."),
    (Kind::Gauge, "dnlb_flow_table_capacity", None, "Flow-table capacity, summed over workers."),
    (Kind::Counter, "dnlb_flows_created_total", None, "Flows added to flow tables."),
    (Kind::Counter, "dnlb_flow_table_full_total", None, "New flows that found their flow table full (served by the stateless hash)."),
    (Kind::Counter, "dnlb_flows_rescheduled_total", None, "Established flows moved because their backend became unusable."),
    (Kind::Counter, "dnlb_icmp_errors_forwarded_total", None, "ICMP errors about VIP flows forwarded to the flow's backend."),
    (Kind::Counter, "dnlb_too_big_sent_total", None, "Fragmentation-needed / packet-too-big messages sent to clients."),
    (Kind::Counter, "dnlb_echo_replies_total", None, "ICMP echo replies sent for VIPs."),
    (Kind::Counter, "dnlb_listener_packets_total", None, "Packets a listener sent to backends."),
    (Kind::Counter, "dnlb_listener_bytes_total", Some(Unit::Bytes), "Bytes (inner IP packets) a listener sent to backends."),
    (Kind::Gauge, "dnlb_listener_backends_taking_new_flows", None, "Backends of a listener's target group that take new flows."),
    (Kind::Counter, "dnlb_listener_dropped_packets_total", None, "Packets dropped on a listener, by reason."),
    (Kind::Counter, "dnlb_backend_packets_total", None, "Packets sent to a backend."),
    (Kind::Counter, "dnlb_backend_bytes_total", Some(Unit::Bytes), "Bytes (inner IP packets) sent to a backend."),
    (Kind::Gauge, "dnlb_backend_healthy", None, "Whether a backend passes its health checks (1) or not (0)."),
    (Kind::Gauge, "dnlb_backend_usable", None, "Whether a backend may carry flows (1): healthy or failed open, not drained."),
    (Kind::Gauge, "dnlb_backend_takes_new_flows", None, "Whether a backend takes new flows (1)."),
    (Kind::Gauge, "dnlb_backend_weight", None, "A backend's configured weight (0-100)."),
];

fn describe() {
    for &(kind, name, unit, help) in FAMILIES {
        match (kind, unit) {
            (Kind::Gauge, Some(u)) => describe_gauge!(name, u, help),
            (Kind::Gauge, None) => describe_gauge!(name, help),
            (Kind::Counter, Some(u)) => describe_counter!(name, u, help),
            (Kind::Counter, None) => describe_counter!(name, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::status::{BackendStatus, ListenerStatus};

    #[test]
    fn renders_every_family_with_help_and_labels() {
        let s = Status {
            gateway: "gw1".into(),
            generation: 7,
            reloads_ok: 3,
            drops: [("no_backend".to_string(), 2)].into_iter().collect(),
            listeners: vec![ListenerStatus {
                name: "web".into(),
                packets: 10,
                bytes: 1000,
                drops: [("no_backend".to_string(), 2)].into_iter().collect(),
                ..Default::default()
            }],
            backends: vec![BackendStatus {
                target_group: "web".into(),
                address: "10.0.0.1".into(),
                healthy: true,
                packets: 10,
                drops: [("too_big".to_string(), 4)].into_iter().collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render(&s);
        for want in [
            "# HELP dnlb_config_generation",
            "dnlb_config_generation 7",
            "dnlb_reloads_total{result=\"ok\"} 3",
            "dnlb_dropped_packets_total{reason=\"no_backend\"} 2",
            "dnlb_listener_bytes_total{listener=\"web\"} 1000",
            "dnlb_listener_dropped_packets_total{listener=\"web\",reason=\"no_backend\"} 2",
            "dnlb_backend_healthy{target_group=\"web\",backend=\"10.0.0.1\",port=\"0\",zone=\"\"} 1",
            "# TYPE dnlb_backend_packets_total counter",
            "dnlb_backend_dropped_packets_total{target_group=\"web\",backend=\"10.0.0.1\",port=\"0\",zone=\"\",reason=\"too_big\"} 4",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}

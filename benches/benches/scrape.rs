//! What a scrape costs the control thread (never a worker): rendering the
//! status of a gateway with 10 listeners and 1000 backends as Prometheus
//! text and as JSON. `cargo bench -p dnlb-benches --bench scrape`.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use dnlb_forwarder::control::metrics;
use dnlb_forwarder::control::status::{
    BackendStatus, ListenerStatus, PortStatus, Status, WorkerStatus,
};

fn status() -> Status {
    let drops: BTreeMap<String, u64> = [("no_backend".to_string(), 3), ("too_big".to_string(), 1)]
        .into_iter()
        .collect();
    Status {
        gateway: "gw1".into(),
        zone: Some("a".into()),
        generation: 42,
        workers: (1..=4)
            .map(|l| WorkerStatus {
                lcore: l,
                rx_packets: 1 << 40,
                tx_packets: 1 << 40,
                dropped: 12,
                busy_seconds: 3600.25,
            })
            .collect(),
        ports: vec![PortStatus {
            name: "0000:03:00.0".into(),
            rx_packets: 1 << 42,
            ..Default::default()
        }],
        drops: drops.clone(),
        listeners: (0..10)
            .map(|i| ListenerStatus {
                name: format!("listener-{i}"),
                vips: vec![format!("203.0.113.{i}")],
                protocol: "tcp".into(),
                port: Some(443),
                target_group: format!("group-{i}"),
                backends_taking_new_flows: 100,
                packets: 1 << 30,
                bytes: 1 << 40,
                drops: drops.clone(),
                ..Default::default()
            })
            .collect(),
        backends: (0..1000)
            .map(|b| BackendStatus {
                target_group: format!("group-{}", b / 100),
                address: format!("10.{}.{}.{}", b / 65536, (b / 256) % 256, b % 256),
                port: 443,
                kind: "vm".into(),
                zone: Some(["a", "b", "c"][b % 3].into()),
                tunnel: "vxlan".into(),
                weight: 100,
                healthy: true,
                usable: true,
                takes_new_flows: true,
                packets: 1 << 30,
                bytes: 1 << 40,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let s = status();
    let text = metrics::render(&s);
    println!(
        "prometheus text: {} bytes, {} samples",
        text.len(),
        text.lines().filter(|l| !l.starts_with('#')).count()
    );
    let mut g = c.benchmark_group("scrape_1000_backends");
    g.bench_function("prometheus", |b| b.iter(|| metrics::render(&s)));
    g.bench_function("json", |b| b.iter(|| serde_json::to_string(&s).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

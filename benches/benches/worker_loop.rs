//! The worker loop's own cost per packet, over in-memory I/O that recycles
//! packets (no allocation): what the loop adds on top of the PMD; and the
//! whole load-balancing worker (loop, pipeline, snapshot, clock, counters)
//! on replayed frames: what a DPDK run costs without the PMD.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnlb_benches::LoopIo;
use std::sync::Arc;

use dnlb_dataplane::snapshot::Publisher;
use dnlb_dataplane::{
    ForwardPipeline, LbPipeline, MonotonicClock, Pipeline, PortIndex, PortPlan, Worker, BURST,
};
use dnlb_lb::processor::Processor;
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dnlb_testkit::{frames, FlowMix, IpVersion, Proto};

fn worker_loop(c: &mut Criterion) {
    let f = frames(&FlowMix::default());
    let mut g = c.benchmark_group("worker_loop");
    g.throughput(Throughput::Elements(BURST as u64));
    for ports in [1usize, 2] {
        let to: Vec<Option<PortIndex>> = (0..ports)
            .map(|p| Some(PortIndex(((p + 1) % ports) as u16)))
            .collect();
        let mut w = Worker::new(
            LoopIo::new(ports, &f, 4 * BURST),
            ForwardPipeline::new(to),
            dnlb_config::IdlePolicy::BusyPoll,
            Default::default(),
        );
        g.bench_function(format!("forward_burst_{ports}port"), |b| {
            b.iter(|| w.poll_once());
        });
    }
    g.finish();
}

/// A snapshot with one listener on 192.0.2.10 and 2001:db8::10 port 80
/// (`proto`), 8 backends behind `tunnel`: the DPDK benchmark script's.
fn snapshot(tunnel: &str, proto: &str) -> Snapshot {
    let mut t = format!(
        "[gateway]\nname = \"bench\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"l\"\nvips = [\"192.0.2.10\", \"2001:db8::10\"]\nprotocol = \"{proto}\"\nport = 80\ntarget_group = \"g\"\n\
         [[target_group]]\nname = \"g\"\n"
    );
    for b in 1..=8 {
        t +=
            &format!("[[target_group.backend]]\naddress = \"10.1.0.{b}\"\ntunnel = \"{tunnel}\"\n");
        if tunnel == "vxlan" {
            t += &format!("vni = 100\ninner_mac = \"02:00:0a:01:00:0{b}\"\n");
        }
    }
    let cfg = dnlb_config::parse(std::path::Path::new("bench.toml"), &t).unwrap();
    Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap()
}

fn lb_worker(c: &mut Criterion) {
    let mut g = c.benchmark_group("worker_loop");
    g.throughput(Throughput::Elements(BURST as u64));
    for (name, tunnel, proto, ip) in [
        ("lb_vxlan_v4_udp", "vxlan", Proto::Udp, IpVersion::V4),
        ("lb_ipip_v4_udp", "ipip", Proto::Udp, IpVersion::V4),
        ("lb_vxlan_v6_tcp", "vxlan", Proto::Tcp, IpVersion::V6),
    ] {
        let mix = FlowMix {
            flows: 1000,
            packets_per_flow: 2,
            proto,
            ip,
            ..FlowMix::default()
        };
        // Past each flow's first packet: TCP ACKs, the flow table's flows.
        let f = frames(&mix).split_off(mix.flows as usize);
        let proto = if proto == Proto::Udp { "udp" } else { "tcp" };
        let publisher = Publisher::new(Arc::new(snapshot(tunnel, proto)));
        let plan = PortPlan {
            macs: vec![[2, 0, 0, 0, 0, 2]],
            non_vip: vec![None],
            host_port: None,
        };
        let pipeline = LbPipeline::new(
            Processor::new(65536, 1),
            publisher.reader(),
            plan,
            MonotonicClock::default(),
        );
        let mut w = Worker::new(
            LoopIo::replaying(1, &f, 4 * BURST),
            pipeline,
            dnlb_config::IdlePolicy::BusyPoll,
            Default::default(),
        );
        w.pipeline_mut().on_start();
        g.bench_function(name, |b| {
            b.iter(|| w.poll_once());
        });
        let c = w.counters();
        assert_eq!(c.rx_packets, c.tx_packets, "every packet was sent: {c:?}");
        // For instruction counts per packet under callgrind.
        eprintln!("worker_loop/{name}: {} packets", c.rx_packets);
    }
    g.finish();
}

criterion_group!(benches, worker_loop, lb_worker);
criterion_main!(benches);

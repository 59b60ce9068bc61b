//! The load-balancing step per packet (`Processor::process`), on bursts of
//! 32 in-memory packets: established flows (flow-table hit) and new flows
//! (miss, Maglev lookup, insert), TCP and UDP, IPv4 and IPv6, each
//! encapsulation. Packets are restored between iterations outside the timed
//! part (criterion's `iter_batched_ref`).

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dnlb_lb::packet::VecPacket;
use dnlb_lb::processor::Processor;
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dnlb_lb::verdict::Action;
use dnlb_testkit::{frames, FlowMix, IpVersion, Proto};

const BURST: usize = 32;

fn snapshot(tunnel: &str, v6_backends: bool) -> Snapshot {
    let mut t = String::from(
        "[gateway]\nname = \"bench\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nsource_v6 = \"2001:db8:a::1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"tcp\"\nvips = [\"192.0.2.10\", \"2001:db8::10\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g\"\n\
         [[listener]]\nname = \"udp\"\nvips = [\"192.0.2.10\", \"2001:db8::10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"g\"\n\
         [[target_group]]\nname = \"g\"\n",
    );
    for i in 1..=16 {
        let addr = if v6_backends {
            format!("2001:db8:b::{i}")
        } else {
            format!("10.9.0.{i}")
        };
        t += &format!("[[target_group.backend]]\naddress = \"{addr}\"\ntunnel = \"{tunnel}\"\n");
        if tunnel == "vxlan" {
            t += &format!("vni = {i}\ninner_mac = \"02:be:00:00:00:01\"\n");
        }
    }
    let cfg = dnlb_config::parse(Path::new("bench.toml"), &t).unwrap();
    Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap()
}

fn burst(frames: &[Vec<u8>], at: usize) -> Vec<VecPacket> {
    (0..BURST)
        .map(|i| VecPacket::new(&frames[(at + i) % frames.len()]))
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BURST as u64));
    let cases: &[(&str, &str, bool, Proto, IpVersion)] = &[
        ("vxlan_v4_tcp", "vxlan", false, Proto::Tcp, IpVersion::V4),
        ("vxlan_v4_udp", "vxlan", false, Proto::Udp, IpVersion::V4),
        ("vxlan_v6_tcp", "vxlan", false, Proto::Tcp, IpVersion::V6),
        (
            "vxlan_v4_tcp_outer_v6",
            "vxlan",
            true,
            Proto::Tcp,
            IpVersion::V4,
        ),
        ("ipip_v4_tcp", "ipip", false, Proto::Tcp, IpVersion::V4),
        ("ipip_v6_tcp", "ipip", true, Proto::Tcp, IpVersion::V6),
        ("gue_v4_udp", "gue", false, Proto::Udp, IpVersion::V4),
        ("gre_v4_tcp", "gre", false, Proto::Tcp, IpVersion::V4),
    ];
    for &(name, tunnel, v6b, proto, ip) in cases {
        let snap = snapshot(tunnel, v6b);
        let f = frames(&FlowMix {
            flows: 1024,
            packets_per_flow: 1,
            proto,
            ip,
            frame_len: 60,
            dst_port: 80,
        });
        // Established: every flow already in the flow table.
        let mut p = Processor::new(1 << 16, 7, 1000, 0);
        p.adopt(&snap);
        for fr in &f {
            let mut pkt = VecPacket::new(fr);
            assert!(matches!(
                p.process(&snap, &mut pkt, [2, 0, 0, 0, 0, 1], 0),
                Action::Encapsulated(_)
            ));
        }
        let mut at = 0;
        g.bench_function(format!("established/{name}"), |b| {
            b.iter_batched_ref(
                || {
                    at = (at + BURST) % f.len();
                    burst(&f, at)
                },
                |pkts| {
                    for pkt in pkts.iter_mut() {
                        std::hint::black_box(p.process(&snap, pkt, [2, 0, 0, 0, 0, 1], 1));
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    // New flows: every packet has a source address never seen before; the
    // clock moves 100 ms per burst so the table stays at a steady state of
    // about (timeout / 100 ms) x 32 live flows, new ones reusing expired slots.
    for &(name, tunnel, v6b, proto, ip) in &cases[..2] {
        let snap = snapshot(tunnel, v6b);
        let template = frames(&FlowMix {
            flows: 1,
            packets_per_flow: 1,
            proto,
            ip,
            frame_len: 60,
            dst_port: 80,
        })
        .remove(0);
        let mut p = Processor::new(1 << 20, 7, 1000, 0);
        p.adopt(&snap);
        let next = std::cell::Cell::new(0u32);
        let now = std::cell::Cell::new(0u32);
        g.bench_function(format!("new_flow/{name}"), |b| {
            b.iter_batched_ref(
                || {
                    now.set(now.get().wrapping_add(100));
                    (0..BURST)
                        .map(|_| {
                            let mut f = template.clone();
                            let n = next.get().wrapping_add(1);
                            next.set(n);
                            f[26..30].copy_from_slice(&n.to_be_bytes()); // IPv4 source address
                            VecPacket::new(&f)
                        })
                        .collect::<Vec<_>>()
                },
                |pkts| {
                    for pkt in pkts.iter_mut() {
                        std::hint::black_box(p.process(&snap, pkt, [2, 0, 0, 0, 0, 1], now.get()));
                    }
                },
                BatchSize::SmallInput,
            )
        });
        let c = &p.counters;
        eprintln!(
            "new_flow/{name}: new_flows={} table_full={}",
            c.new_flows, c.flow_table_full
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The load-balancing step per packet (`Processor::process`), on bursts of
//! 32 in-memory packets: established flows (flow-table hit) and new flows
//! (miss, Maglev lookup, insert), TCP and UDP, IPv4 and IPv6, each
//! encapsulation. Each iteration restores 32 preallocated packets (a 60-byte
//! copy each) and processes them; `restore_only` measures the restoring
//! alone, to subtract.

use std::path::Path;

use std::time::Instant;

use criterion::{criterion_group, Criterion, Throughput};
use dnlb_lb::encap::SourceMac;
use dnlb_lb::processor::{ListenerMemo, Processor, Staged};
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dnlb_lb::verdict::Action;
use dnlb_testkit::VecPacket;
use dnlb_testkit::{frames, FlowMix, IpVersion, Proto};

const BURST: usize = 32;

fn snapshot(tunnel: &str, v6_backends: bool) -> Snapshot {
    snapshot_with(tunnel, v6_backends, "")
}

/// The TCP listener protected: an access list of 1000 IPv4 prefixes (999
/// random /24s denied across the address space, the clients' 198.18.0.0/15
/// allowed) and new-flow limits per source and per listener, set high
/// enough to admit everything the benchmarks send (their cost, not their
/// effect, is measured).
fn protection() -> String {
    let mut deny = std::collections::BTreeSet::new();
    let mut x: u32 = 12345;
    while deny.len() < 999 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let a = x & 0xffff_ff00;
        // Not the established clients' 198.18.0.0/15, not the new flows' 0.0.0.0/8.
        if a >> 17 == 0xc612_0000 >> 17 || a >> 24 == 0 {
            continue;
        }
        deny.insert(format!("\"{}/24\"", std::net::Ipv4Addr::from(a)));
    }
    let deny: Vec<String> = deny.into_iter().collect();
    format!(
        "[listener.acl]\ndefault = \"allow\"\nallow = [\"198.18.0.0/15\"]\ndeny = [{}]\n\
         [listener.limits]\nnew_flows_per_sec = 100000000\nsource_new_flows_per_sec = 100000000\n",
        deny.join(", ")
    )
}

/// [`snapshot`] with `tcp_extra` in the TCP listener's table.
fn snapshot_with(tunnel: &str, v6_backends: bool, tcp_extra: &str) -> Snapshot {
    let mut t = String::from(
        "[gateway]\nname = \"bench\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nsource_v6 = \"2001:db8:a::1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"tcp\"\nvips = [\"192.0.2.10\", \"2001:db8::10\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g\"\n\
         TCP_EXTRA\
         [[listener]]\nname = \"udp\"\nvips = [\"192.0.2.10\", \"2001:db8::10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"g\"\n\
         [[target_group]]\nname = \"g\"\n",
    )
    .replace("TCP_EXTRA", tcp_extra);
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

/// Restores `pkts` to the next `BURST` frames of `frames` from `at`.
#[inline]
fn restore(pkts: &mut [VecPacket], frames: &[Vec<u8>], at: &mut usize) {
    for p in pkts.iter_mut() {
        p.reset(&frames[*at % frames.len()]);
        *at += 1;
    }
}

/// Refills `pkts` with IPv4 `frame`, each from the next source address
/// after `next` (checksums left as they are: the step does not check them).
#[inline]
fn from_new_sources(pkts: &mut [VecPacket], frame: &mut [u8], next: &mut u32) {
    for pkt in pkts.iter_mut() {
        *next = next.wrapping_add(1);
        frame[26..30].copy_from_slice(&next.to_be_bytes()); // IPv4 source
        pkt.reset(frame);
    }
}

/// One burst as the worker's pipeline does it: the fast path's first stage
/// over all packets (parses, hashes, prefetches), then its second stage or
/// `process_hinted` reusing their fingerprints.
fn burst(p: &mut Processor, snap: &Snapshot, pkts: &mut [VecPacket], now: u32) {
    // What the worker does (`LbPipeline::process`): the first stage over
    // the burst, then the fast path's second stage or the general step.
    let mut staged = [Staged::default(); BURST];
    let mut memo = ListenerMemo::new();
    if p.opening_flows() {
        for (pkt, s) in pkts.iter().zip(staged.iter_mut()) {
            *s = p.stage_with::<true, _>(snap, pkt, &mut memo);
        }
        if memo.listed() {
            p.stage_listed::<true, _>(snap, pkts, &mut staged, &mut memo);
        }
    } else {
        for (pkt, s) in pkts.iter().zip(staged.iter_mut()) {
            *s = p.stage(snap, pkt, &mut memo);
        }
        if memo.listed() {
            p.stage_listed::<false, _>(snap, pkts, &mut staged, &mut memo);
        }
    }
    let mac = [2, 0, 0, 0, 0, 1];
    let src_mac = SourceMac::new(mac);
    for (pkt, s) in pkts.iter_mut().zip(staged.iter_mut()) {
        let a = match p.finish(snap, pkt, s, src_mac, now) {
            Some(a) => a,
            None => {
                s.unlist();
                p.process_hinted(snap, pkt, mac, now, s.hint())
            }
        };
        std::hint::black_box(a);
    }
    // After the burst, the rules of the listed packets the second stage took.
    if memo.listed() {
        for s in &staged {
            p.count_listed(snap, s);
        }
    }
}

/// Frames of a mix past each flow's first packet: for TCP, ACKs rather than
/// the SYNs the flow table does not keep.
fn mid_flow(mix: FlowMix) -> Vec<Vec<u8>> {
    let n = mix.flows as usize;
    let mut v = frames(&mix);
    v.drain(..n);
    v
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Established flows of `frames` (every one put in the flow table first),
/// under `label`.
fn established(g: &mut Group<'_>, label: &str, snap: &Snapshot, frames: &[Vec<u8>]) {
    established_on(g, label, snap, frames, Processor::new(1 << 16, 7));
}

/// [`established`] on processor `p`.
fn established_on(
    g: &mut Group<'_>,
    label: &str,
    snap: &Snapshot,
    frames: &[Vec<u8>],
    mut p: Processor,
) {
    p.adopt(snap);
    for fr in frames {
        let mut pkt = VecPacket::new(fr);
        assert!(matches!(
            p.process(snap, &mut pkt, [2, 0, 0, 0, 0, 1], 0),
            Action::Encapsulated(_)
        ));
    }
    let mut pkts: Vec<VecPacket> = (0..BURST).map(|_| VecPacket::new(&frames[0])).collect();
    let mut at = 0;
    g.bench_function(label, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                restore(&mut pkts, frames, &mut at);
                burst(&mut p, snap, &mut pkts, 1);
            }
            t.elapsed()
        })
    });
}

/// A mid-flow frame of one flow to the VIP's port 80, 60 bytes.
fn one_flow_frame(proto: Proto, ip: IpVersion) -> Vec<u8> {
    mid_flow(FlowMix {
        flows: 1,
        packets_per_flow: 2,
        proto,
        ip,
        frame_len: 60,
        dst_port: 80,
    })
    .remove(0)
}

/// Established TCP flows, `flows` of them (a power of two) in a table of
/// `capacity`, visited in a scrambled order.
struct EstablishedMany<'a> {
    snap: &'a Snapshot,
    p: Processor,
    frame: Vec<u8>,
    pkts: Vec<VecPacket>,
    flows: u32,
    at: u32,
}

impl<'a> EstablishedMany<'a> {
    fn new(snap: &'a Snapshot, flows: u32, capacity: usize) -> Self {
        assert!(flows.is_power_of_two());
        let mut frame = one_flow_frame(Proto::Tcp, IpVersion::V4);
        let mut p = Processor::new(capacity, 7);
        p.adopt(snap);
        let mut pkt = VecPacket::new(&frame);
        for i in 0..flows {
            frame[26..30].copy_from_slice(&i.to_be_bytes()); // IPv4 source: flow i
            pkt.reset(&frame);
            p.process(snap, &mut pkt, [2, 0, 0, 0, 0, 1], 0);
        }
        assert_eq!(p.counters.flow_table_full, 0);
        assert_eq!(p.flows().len(), flows as usize);
        let pkts = (0..BURST).map(|_| VecPacket::new(&frame)).collect();
        EstablishedMany {
            snap,
            p,
            frame,
            pkts,
            flows,
            at: 0,
        }
    }

    /// `n` bursts.
    fn bursts(&mut self, n: u64) {
        for _ in 0..n {
            for pkt in self.pkts.iter_mut() {
                // Flows in a scrambled order (an odd multiplier permutes 0..flows).
                let flow = self.at.wrapping_mul(0x9e37_79b1) & (self.flows - 1);
                self.at = self.at.wrapping_add(1);
                self.frame[26..30].copy_from_slice(&flow.to_be_bytes());
                pkt.reset(&self.frame);
            }
            burst(&mut self.p, self.snap, &mut self.pkts, 1);
        }
    }

    fn check(&self) {
        assert_eq!(
            self.p.counters.new_flows, self.flows as u64,
            "every benchmarked packet hit an established flow"
        );
    }
}

/// [`EstablishedMany`] under `label`.
fn established_many(g: &mut Group<'_>, label: &str, flows: u32, capacity: usize) {
    let snap = snapshot("vxlan", false);
    let mut e = EstablishedMany::new(&snap, flows, capacity);
    g.bench_function(label, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            e.bursts(iters);
            t.elapsed()
        })
    });
    e.check();
}

/// New flows: every packet from a source address never seen before, into
/// a table of `capacity` flows; the clock moves `step_ms` per burst, so the
/// table stays at a steady state of about (timeout / step) x 32 live
/// flows, new ones reusing expired slots.
struct NewFlows<'a> {
    snap: &'a Snapshot,
    p: Processor,
    frame: Vec<u8>,
    pkts: Vec<VecPacket>,
    next: u32,
    now: u32,
    step_ms: u32,
}

impl<'a> NewFlows<'a> {
    fn new(snap: &'a Snapshot, proto: Proto, ip: IpVersion, capacity: usize, step_ms: u32) -> Self {
        let frame = one_flow_frame(proto, ip);
        let mut p = Processor::new(capacity, 7);
        p.adopt(snap);
        let pkts = (0..BURST).map(|_| VecPacket::new(&frame)).collect();
        NewFlows {
            snap,
            p,
            frame,
            pkts,
            next: 0,
            now: 0,
            step_ms,
        }
    }

    /// `n` bursts.
    fn bursts(&mut self, n: u64) {
        for _ in 0..n {
            self.now = self.now.wrapping_add(self.step_ms);
            from_new_sources(&mut self.pkts, &mut self.frame, &mut self.next);
            burst(&mut self.p, self.snap, &mut self.pkts, self.now);
        }
    }
}

/// [`NewFlows`] under `label`.
fn new_flows(
    g: &mut Group<'_>,
    label: &str,
    snap: &Snapshot,
    proto: Proto,
    ip: IpVersion,
    capacity: usize,
    step_ms: u32,
) {
    let mut n = NewFlows::new(snap, proto, ip, capacity, step_ms);
    g.bench_function(label, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            n.bursts(iters);
            t.elapsed()
        })
    });
    let c = &n.p.counters;
    eprintln!(
        "{label}: new_flows={} table_full={}",
        c.new_flows, c.flow_table_full
    );
}

/// Issue 12's pair measured interleaved in one process: blocks of
/// `bursts` bursts of `established_16k_flows` and of `new_flow_64k`
/// (vxlan_v4_tcp) alternate for `rounds` rounds, so that both see the
/// same state of this noisy machine; prints each round's ns per packet
/// and ratio, the median ratio and the ratio of the fastest blocks.
/// Run with `DNLB_NEWFLOW_PAIR=ROUNDS[,BURSTS]` (`scripts/bench-newflow.sh
/// --interleaved`).
fn interleaved_pair(spec: &str) {
    let mut it = spec.split(',').map(|v| {
        v.trim()
            .parse::<u64>()
            .expect("DNLB_NEWFLOW_PAIR=ROUNDS[,BURSTS]")
    });
    let rounds = it.next().unwrap_or(20).max(1);
    let bursts = it.next().unwrap_or(20_000).max(1);
    let snap = snapshot("vxlan", false);
    let mut est = EstablishedMany::new(&snap, 1 << 14, 1 << 16);
    let mut new = NewFlows::new(&snap, Proto::Tcp, IpVersion::V4, 1 << 16, 2000);
    // Warm both up (the new flows' table reaches its steady state: 900 s
    // of flows at 2 s a burst).
    est.bursts(bursts);
    new.bursts(bursts.max(1000));
    let per_pkt = |t: std::time::Duration| t.as_nanos() as f64 / (bursts * BURST as u64) as f64;
    let mut ratios = Vec::new();
    let (mut best_e, mut best_n) = (f64::MAX, f64::MAX);
    println!(
        "{:<6} {:>22} {:>13} {:>8}",
        "round", "established_16k_flows", "new_flow_64k", "ratio"
    );
    for r in 0..rounds {
        let (mut te, mut tn) = (0.0, 0.0);
        // Alternate which goes first.
        for first_est in [r % 2 == 0, r % 2 != 0] {
            let t = Instant::now();
            if first_est {
                est.bursts(bursts);
                te = per_pkt(t.elapsed());
            } else {
                new.bursts(bursts);
                tn = per_pkt(t.elapsed());
            }
        }
        best_e = best_e.min(te);
        best_n = best_n.min(tn);
        ratios.push(tn / te);
        println!("{:<6} {:>22.2} {:>13.2} {:>8.3}", r + 1, te, tn, tn / te);
    }
    est.check();
    ratios.sort_by(f64::total_cmp);
    let m = ratios.len();
    let median = if m % 2 == 1 {
        ratios[m / 2]
    } else {
        (ratios[m / 2 - 1] + ratios[m / 2]) / 2.0
    };
    println!("median ratio {median:.3}");
    println!(
        "fastest blocks: {best_e:.2} / {best_n:.2} ns = {:.3}",
        best_n / best_e
    );
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
        let f = mid_flow(FlowMix {
            flows: 1024,
            packets_per_flow: 2,
            proto,
            ip,
            frame_len: 60,
            dst_port: 80,
        });
        established(&mut g, &format!("established/{name}"), &snap, &f);
        if name == "vxlan_v4_tcp" {
            // The same behind 1000 ACL prefixes and new-flow limits.
            let protected = snapshot_with(tunnel, v6b, &protection());
            established(&mut g, "established_protected/vxlan_v4_tcp", &protected, &f);
            // The same with flow-exception sync (a table of the same size).
            let synced = Processor::new(1 << 17, 7).with_sync(1 << 16, 1 << 12);
            established_on(&mut g, "established_sync/vxlan_v4_tcp", &snap, &f, synced);
            let mut pkts: Vec<VecPacket> = (0..BURST).map(|_| VecPacket::new(&f[0])).collect();
            let mut at = 0;
            g.bench_function("restore_only", |b| {
                b.iter_custom(|iters| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        restore(&mut pkts, &f, &mut at);
                        std::hint::black_box(&mut pkts);
                    }
                    t.elapsed()
                })
            });
        }
    }
    // Established flows with 1M flows in the table: the flow-table lookup
    // misses the cache; the prepare pass overlaps the misses of a burst.
    established_many(
        &mut g,
        "established_1m_flows/vxlan_v4_tcp",
        1 << 20,
        1 << 20,
    );
    // 16k flows in a 64k table: the working set of `new_flow_64k` (whose
    // new flows keep the whole table warm), established.
    established_many(
        &mut g,
        "established_16k_flows/vxlan_v4_tcp",
        1 << 14,
        1 << 16,
    );
    // New flows (`new_flows`) into a table of 1M flows, the clock moving
    // 100 ms a burst: ~288k live flows, out of cache like
    // `established_1m_flows`, its pair.
    let new_flow_cases = cases[..2]
        .iter()
        .map(|&(name, tunnel, v6b, proto, ip)| (name.to_string(), snapshot(tunnel, v6b), proto, ip))
        .chain(std::iter::once((
            "protected_vxlan_v4_tcp".to_string(),
            snapshot_with("vxlan", false, &protection()),
            Proto::Tcp,
            IpVersion::V4,
        )));
    for (name, snap, proto, ip) in new_flow_cases {
        new_flows(
            &mut g,
            &format!("new_flow/{name}"),
            &snap,
            proto,
            ip,
            1 << 20,
            100,
        );
        if name == "vxlan_v4_tcp" {
            // The same into a table the size of `established`'s (64k
            // flows, in cache), the clock moving 2 s a burst: ~14k live
            // flows (900 s / 2 s x 32). Paired with `established/…`.
            new_flows(
                &mut g,
                "new_flow_64k/vxlan_v4_tcp",
                &snap,
                proto,
                ip,
                1 << 16,
                2000,
            );
        }
    }
    // New flows into a full table (a flood of ACKs from new sources filled
    // it with live entries): every insert fails; after a few failed
    // searches for room the table stops searching, so a failing insert
    // costs about what a hit does.
    {
        let snap = snapshot("vxlan", false);
        let mut frame = one_flow_frame(Proto::Tcp, IpVersion::V4);
        let mut p = Processor::new(1 << 16, 7);
        p.adopt(&snap);
        let mut pkt = VecPacket::new(&frame);
        let mut next = 0u32;
        while p.counters.flow_table_full < 10_000 {
            next = next.wrapping_add(1);
            frame[26..30].copy_from_slice(&next.to_be_bytes()); // IPv4 source
            pkt.reset(&frame);
            p.process(&snap, &mut pkt, [2, 0, 0, 0, 0, 1], 0);
        }
        let mut pkts: Vec<VecPacket> = (0..BURST).map(|_| VecPacket::new(&frame)).collect();
        let (full0, new0) = (p.counters.flow_table_full, p.counters.new_flows);
        g.bench_function("new_flow_full_table/vxlan_v4_tcp", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    from_new_sources(&mut pkts, &mut frame, &mut next);
                    burst(&mut p, &snap, &mut pkts, 1);
                }
                t.elapsed()
            })
        });
        // A search now and then still finds room (a displacement chain);
        // nearly every insert fails (checked over a real run, not over the
        // single burst of `--test`).
        let (full, new) = (
            p.counters.flow_table_full - full0,
            p.counters.new_flows - new0,
        );
        if new + full >= 10_000 {
            assert!(
                new * 50 <= full,
                "the table stayed full: {new} stored, {full} refused"
            );
        }
    }
    // A SYN flood: every packet a SYN from a new source. Bare SYNs take no
    // flow-table entry, so this costs about what a hit does. Protected, each
    // SYN also passes the ACL and both new-flow limits.
    for (label, snap) in [
        ("syn_flood/vxlan_v4_tcp", snapshot("vxlan", false)),
        (
            "syn_flood_protected/vxlan_v4_tcp",
            snapshot_with("vxlan", false, &protection()),
        ),
    ] {
        let mut frame = frames(&FlowMix {
            flows: 1,
            packets_per_flow: 1,
            proto: Proto::Tcp,
            ip: IpVersion::V4,
            frame_len: 60,
            dst_port: 80,
        })
        .remove(0);
        let mut p = Processor::new(1 << 16, 7);
        p.adopt(&snap);
        let mut pkts: Vec<VecPacket> = (0..BURST).map(|_| VecPacket::new(&frame)).collect();
        let (mut next, mut now) = (0u32, 0u32);
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    now = now.wrapping_add(1);
                    from_new_sources(&mut pkts, &mut frame, &mut next);
                    burst(&mut p, &snap, &mut pkts, now);
                }
                t.elapsed()
            })
        });
        assert_eq!(p.flows().len(), 0, "SYNs took flow-table entries");
        let dropped: u64 = p.counters.listener_drops.iter().flatten().sum();
        assert_eq!(dropped, 0, "{label}: the limits admit the whole flood");
    }
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(spec) = std::env::var("DNLB_NEWFLOW_PAIR") {
        interleaved_pair(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

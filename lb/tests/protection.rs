//! Protection on the packet path, with a driven clock: new-flow rate
//! limits per source and per listener (established flows never limited),
//! ICMP policing (echo replies and forwarded errors rate-limited, only the
//! errors backends use, minimum MTUs, forged quotes), access-list rule
//! counters, and the exception path's per-class policing.

mod common;

use std::path::Path;

use common::{GW_MAC, ROUTER_MAC};
use dnlb_lb::policing::HostClass;
use dnlb_lb::processor::Processor;
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dnlb_lb::verdict::{Action, DropReason};
use dnlb_testkit::VecPacket;
use etherparse::PacketBuilder;

const VIP: [u8; 4] = [192, 0, 2, 1];
const VIP2: [u8; 4] = [192, 0, 2, 2];
const VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const BACKEND: [u8; 4] = [10, 9, 0, 1];

/// One gateway with one worker: TCP and UDP listeners on VIP (and VIP6),
/// a TCP listener on VIP2, one IPIP backend; `listener` is added to the
/// first listener's table, `extra` at the end of the file.
fn snapshot(listener: &str, extra: &str) -> Snapshot {
    let text = format!(
        "[gateway]\nname = \"p\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nsource_v6 = \"2001:db8:a::1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.1\", \"2001:db8::1\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g\"\n{listener}\
         [[listener]]\nname = \"dns\"\nvips = [\"192.0.2.1\"]\nprotocol = \"udp\"\nport = 53\ntarget_group = \"g\"\n{listener}\
         [[listener]]\nname = \"other\"\nvips = [\"192.0.2.2\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g\"\n\
         [[target_group]]\nname = \"g\"\n[[target_group.backend]]\naddress = \"10.9.0.1\"\ntunnel = \"ipip\"\n{extra}"
    );
    let cfg = dnlb_config::parse(Path::new("p.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap()
}

/// A TCP segment src:sport → VIP:80 with `flags` (S, A, R).
fn tcp(src: [u8; 4], sport: u16, flags: &str) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(src, VIP, 61)
        .tcp(sport, 80, 2, 1000);
    let b = flags.chars().fold(b, |b, f| match f {
        'S' => b.syn(),
        'A' => b.ack(1),
        'R' => b.rst(),
        _ => unreachable!(),
    });
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

/// A UDP datagram src:sport → VIP:53.
fn udp(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(src, VIP, 61)
        .udp(sport, 53)
        .write(&mut out, &[1, 2, 3])
        .unwrap();
    out
}

/// Source 198.18.X.Y for `n` = X·256 + Y.
fn src(n: u32) -> [u8; 4] {
    [198, 18, (n >> 8) as u8, n as u8]
}

fn send(p: &mut Processor, snap: &Snapshot, frame: &[u8], now: u32) -> Action {
    p.process(snap, &mut VecPacket::new(frame), GW_MAC, now)
}

fn processor(snap: &Snapshot) -> Processor {
    let mut p = Processor::new(1 << 16, 9);
    p.adopt(snap);
    p
}

fn encapsulated(a: Action) -> bool {
    matches!(a, Action::Encapsulated(_))
}

fn listener_drops(p: &Processor, snap: &Snapshot, name: &str, r: DropReason) -> u64 {
    let slot = snap.listeners.iter().find(|l| l.name == name).unwrap().slot;
    p.counters.listener_drops[slot as usize][r as usize]
}

#[test]
fn a_rate_limited_source_is_held_to_its_rate_and_nothing_else_is_touched() {
    let snap = snapshot(
        "[listener.limits]\nsource_new_flows_per_sec = 100\nsource_new_flows_burst = 10\n",
        "",
    );
    let mut p = processor(&snap);
    let flooder = [203, 0, 113, 9];
    // The flooder's established connection, opened before its flood.
    assert!(encapsulated(send(&mut p, &snap, &tcp(flooder, 1, "S"), 0)));
    assert!(encapsulated(send(&mut p, &snap, &tcp(flooder, 1, "A"), 1)));
    // Ten seconds: the flooder sends 1000 SYNs a second (new ports), keeps
    // using its connection, and 50 other sources open a flow a second.
    let (mut admitted, mut limited, mut established, mut others) = (0u32, 0u32, 0u32, 0u32);
    for ms in 2..10_002u32 {
        match send(
            &mut p,
            &snap,
            &tcp(flooder, 2 + (ms % 60000) as u16, "S"),
            ms,
        ) {
            Action::Encapsulated(_) => admitted += 1,
            Action::Drop(DropReason::SourceRateLimited) => limited += 1,
            a => panic!("flood SYN at {ms}: {a:?}"),
        }
        if ms % 10 == 0 {
            established += encapsulated(send(&mut p, &snap, &tcp(flooder, 1, "A"), ms)) as u32;
        }
        if ms % 20 == 0 {
            let n = ms / 20;
            others += encapsulated(send(&mut p, &snap, &tcp(src(n), 1000, "S"), ms)) as u32;
        }
    }
    // 100 a second for 10 s, plus the burst of 10: within 10 %.
    assert!(
        (900..=1100).contains(&admitted),
        "admitted {admitted} of 10000 (limited {limited})"
    );
    assert_eq!(admitted + limited, 10_000);
    assert_eq!(established, 1000, "its established flow is never limited");
    assert_eq!(others, 500, "other sources are untouched");
    assert_eq!(
        listener_drops(&p, &snap, "web", DropReason::SourceRateLimited),
        limited as u64
    );
    // UDP: a datagram of an untracked flow opens one, and counts.
    let mut udp_ok = 0;
    for port in 0..50u16 {
        udp_ok += encapsulated(send(&mut p, &snap, &udp(flooder, port), 20_000)) as u32;
    }
    assert_eq!(udp_ok, 10, "the burst, then limited");
    // ...but a tracked UDP flow's datagrams are not.
    for _ in 0..50 {
        assert!(encapsulated(send(&mut p, &snap, &udp(flooder, 0), 20_001)));
    }
}

#[test]
fn a_listener_limit_caps_new_flows_from_every_source_together() {
    let snap = snapshot("[listener.limits]\nnew_flows_per_sec = 500\n", "");
    let mut p = processor(&snap);
    // An established flow from before.
    let old = [203, 0, 113, 7];
    send(&mut p, &snap, &tcp(old, 7, "S"), 0);
    assert!(encapsulated(send(&mut p, &snap, &tcp(old, 7, "A"), 0)));
    // 2000 new sources a second for 5 s.
    let mut admitted = 0u32;
    for i in 0..10_000u32 {
        let ms = 1 + i / 2;
        if encapsulated(send(&mut p, &snap, &tcp(src(i % 60_000), 80, "S"), ms)) {
            admitted += 1;
        }
        if i % 100 == 0 {
            assert!(encapsulated(send(&mut p, &snap, &tcp(old, 7, "A"), ms)));
        }
    }
    // 500 a second for 5 s plus a burst of one second's worth.
    assert!((2700..=3300).contains(&admitted), "admitted {admitted}");
    assert_eq!(
        listener_drops(&p, &snap, "web", DropReason::ListenerRateLimited),
        10_000 - admitted as u64
    );
    // Other listeners have their own (no) limit.
    for i in 0..1000u16 {
        let mut f = tcp(src(i as u32), 80, "S");
        f[30..34].copy_from_slice(&VIP2);
        fix_ipv4_checksum(&mut f);
        assert!(encapsulated(send(&mut p, &snap, &f, 6000)));
    }
}

/// Recomputes the IPv4 header checksum of an Ethernet frame.
fn fix_ipv4_checksum(f: &mut [u8]) {
    f[24] = 0;
    f[25] = 0;
    let h = etherparse::Ipv4HeaderSlice::from_slice(&f[14..])
        .unwrap()
        .to_header();
    f[24..26].copy_from_slice(&h.calc_header_checksum().to_be_bytes());
}

/// An ICMPv4 error from a router to `to`, quoting a TCP packet the backend
/// sent from `quoted_src`:80 to the client 198.51.100.7:40000.
fn icmp4(to: [u8; 4], quoted_src: [u8; 4], icmp_type: u8, code: u8, rest: [u8; 4]) -> Vec<u8> {
    let mut quoted = Vec::new();
    PacketBuilder::ipv4(quoted_src, [198, 51, 100, 7], 50)
        .tcp(80, 40000, 7, 1000)
        .write(&mut quoted, &[])
        .unwrap();
    quoted.truncate(28);
    let [r0, r1, r2, r3] = rest;
    common::icmp4(
        [203, 0, 113, 1],
        to,
        [icmp_type, code, 0, 0, r0, r1, r2, r3],
        &quoted,
    )
}

/// An ICMPv6 error to VIP6 quoting VIP6:80 → client:40000 (the checksum
/// is not checked by the gateway).
fn icmp6(icmp_type: u8, code: u8, rest: [u8; 4]) -> Vec<u8> {
    let client = [0x20, 0x01, 0x0d, 0xb8, 0xc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    let mut quoted = Vec::new();
    PacketBuilder::ipv6(VIP6, client, 50)
        .tcp(80, 40000, 7, 1000)
        .write(&mut quoted, &[1; 100])
        .unwrap();
    let router = [0x20, 0x01, 0x0d, 0xb8, 0xf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let [r0, r1, r2, r3] = rest;
    common::icmp6(
        router,
        VIP6,
        [icmp_type, code, 0, 0, r0, r1, r2, r3],
        &quoted,
    )
}

#[test]
fn only_icmp_errors_backends_use_are_forwarded() {
    let snap = snapshot("", "");
    let mtu = |m: u16| [0, 0, (m >> 8) as u8, m as u8];
    let forwarded = |a: Action| matches!(a, Action::Encapsulated(_));
    let cases: Vec<(&str, Vec<u8>, Option<DropReason>)> = vec![
        ("net unreachable", icmp4(VIP, VIP, 3, 0, [0; 4]), None),
        ("host unreachable", icmp4(VIP, VIP, 3, 1, [0; 4]), None),
        ("port unreachable", icmp4(VIP, VIP, 3, 3, [0; 4]), None),
        ("admin prohibited", icmp4(VIP, VIP, 3, 13, [0; 4]), None),
        ("frag needed 1400", icmp4(VIP, VIP, 3, 4, mtu(1400)), None),
        ("frag needed 68", icmp4(VIP, VIP, 3, 4, mtu(68)), None),
        (
            "frag needed 67",
            icmp4(VIP, VIP, 3, 4, mtu(67)),
            Some(DropReason::IcmpMtuTooSmall),
        ),
        (
            "frag needed 0",
            icmp4(VIP, VIP, 3, 4, mtu(0)),
            Some(DropReason::IcmpMtuTooSmall),
        ),
        (
            "source route failed",
            icmp4(VIP, VIP, 3, 5, [0; 4]),
            Some(DropReason::IcmpFiltered),
        ),
        (
            "time exceeded",
            icmp4(VIP, VIP, 11, 0, [0; 4]),
            Some(DropReason::IcmpFiltered),
        ),
        (
            "parameter problem",
            icmp4(VIP, VIP, 12, 0, [0; 4]),
            Some(DropReason::IcmpFiltered),
        ),
        (
            "redirect",
            icmp4(VIP, VIP, 5, 1, [0; 4]),
            Some(DropReason::IcmpFiltered),
        ),
        (
            "source quench",
            icmp4(VIP, VIP, 4, 0, [0; 4]),
            Some(DropReason::IcmpFiltered),
        ),
        (
            "to one VIP quoting another",
            icmp4(VIP2, VIP, 3, 4, mtu(1400)),
            Some(DropReason::IcmpQuoteMismatch),
        ),
        (
            "to a VIP quoting a stranger",
            icmp4(VIP, [198, 51, 100, 99], 3, 1, [0; 4]),
            Some(DropReason::IcmpQuoteMismatch),
        ),
        ("v6 packet too big 1280", icmp6(2, 0, [0, 0, 5, 0]), None),
        (
            "v6 packet too big 1279",
            icmp6(2, 0, [0, 0, 4, 0xff]),
            Some(DropReason::IcmpMtuTooSmall),
        ),
        ("v6 no route", icmp6(1, 0, [0; 4]), None),
        ("v6 port unreachable", icmp6(1, 4, [0; 4]), None),
        (
            "v6 beyond scope",
            icmp6(1, 2, [0; 4]),
            Some(DropReason::IcmpFiltered),
        ),
        (
            "v6 time exceeded",
            icmp6(3, 0, [0; 4]),
            Some(DropReason::IcmpFiltered),
        ),
        (
            "v6 parameter problem",
            icmp6(4, 0, [0; 4]),
            Some(DropReason::IcmpFiltered),
        ),
    ];
    let mut failed = Vec::new();
    for (name, frame, want) in &cases {
        let mut p = processor(&snap);
        let a = send(&mut p, &snap, frame, 5);
        let ok = match want {
            None => forwarded(a),
            Some(r) => a == Action::Drop(*r),
        };
        if !ok {
            failed.push(format!("{name}: {a:?}, want {want:?}"));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn echo_replies_and_forwarded_errors_are_rate_limited() {
    let snap = snapshot(
        "",
        "[protection]\necho_replies_per_sec = 5\nicmp_errors_forwarded_per_sec = 3\n",
    );
    let mut p = processor(&snap);
    let mut ping = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4([198, 51, 100, 7], VIP, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut ping, &[0; 32])
        .unwrap();
    let replies = |p: &mut Processor, now| {
        (0..20)
            .map(|_| send(p, &snap, &ping, now))
            .filter(|a| *a == Action::Reply)
            .count()
    };
    assert_eq!(replies(&mut p, 10), 5, "the burst");
    assert_eq!(replies(&mut p, 210), 1, "one per 200 ms");
    assert_eq!(replies(&mut p, 5000), 5, "a full burst after a pause");
    assert_eq!(
        p.counters.echo_replies, 11,
        "replies counted; the rest dropped"
    );
    let err = icmp4(VIP, VIP, 3, 4, [0, 0, 5, 0]);
    let r: Vec<Action> = (0..5).map(|_| send(&mut p, &snap, &err, 6000)).collect();
    assert!(r[..3].iter().all(|a| matches!(a, Action::Encapsulated(_))));
    assert_eq!(
        r[3..],
        [Action::Drop(DropReason::IcmpForwardRateLimited); 2]
    );
}

#[test]
fn acl_rules_count_the_packets_they_decide() {
    let snap = snapshot(
        "[listener.acl]\ndefault = \"deny\"\nallow = [\"198.18.0.0/16\"]\ndeny = [\"198.18.1.0/24\"]\n",
        "",
    );
    let acl = snap.listeners[0]
        .acl
        .clone()
        .expect("the web listener's ACL");
    let mut p = processor(&snap);
    for i in 0..10 {
        assert!(encapsulated(send(&mut p, &snap, &tcp(src(5), 9, "A"), i)));
    }
    for i in 0..3 {
        let a = send(&mut p, &snap, &tcp(src(256 + 5), 9, "A"), i);
        assert_eq!(a, Action::Drop(DropReason::AclDenied));
    }
    let a = send(&mut p, &snap, &tcp([203, 0, 113, 1], 9, "S"), 0);
    assert_eq!(a, Action::Drop(DropReason::AclDenied));
    assert_eq!(
        (acl.hits(Some(0)), acl.hits(Some(1)), acl.hits(None)),
        (10, 3, 1),
        "allow 198.18.0.0/16, deny 198.18.1.0/24, the default"
    );
    // A changed list is a new table: its counters start at zero.
    let changed = snapshot(
        "[listener.acl]\ndefault = \"deny\"\nallow = [\"198.18.0.0/15\"]\n",
        "",
    );
    let acl2 = changed.listeners[0].acl.clone().unwrap();
    assert_eq!(acl2.hits(Some(0)), 0);
    send(&mut p, &changed, &tcp(src(5), 9, "A"), 20);
    assert_eq!((acl2.hits(Some(0)), acl.hits(Some(0))), (1, 10));
}

#[test]
fn the_exception_path_is_policed_per_class() {
    let snap = snapshot("", "[protection.host]\nother_pps = 5\nrouting_pps = 50\n");
    let mut p = processor(&snap);
    let host = [192, 0, 2, 250];
    let frame = |src: [u8; 4], sport: u16, dport: u16| {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
            .ipv4(src, host, 64)
            .tcp(sport, dport, 1, 1000)
            .write(&mut out, &[])
            .unwrap();
        out
    };
    let flood = frame([198, 51, 100, 1], 5555, 22);
    let bgp = frame([192, 0, 2, 249], 33000, 179);
    let health = frame(BACKEND, 80, 40000);
    let arp = dnlb_testkit::arp_request([192, 0, 2, 249].into(), host.into());
    let (mut flood_ok, mut bgp_ok, mut health_ok, mut arp_ok) = (0, 0, 0, 0);
    for _ in 0..100 {
        flood_ok += p.police_host(&snap, &flood, 10) as u32;
        bgp_ok += p.police_host(&snap, &bgp, 10) as u32;
        health_ok += p.police_host(&snap, &health, 10) as u32;
        arp_ok += p.police_host(&snap, &arp, 10) as u32;
    }
    assert_eq!(flood_ok, 5, "the rest is capped");
    assert_eq!(bgp_ok, 50, "routing has its own rate");
    assert_eq!((health_ok, arp_ok), (100, 100), "untouched by the flood");
    let c = &p.counters.host;
    assert_eq!(
        (
            c[HostClass::Other as usize].passed,
            c[HostClass::Other as usize].dropped
        ),
        (5, 95)
    );
    assert_eq!(c[HostClass::Routing as usize].dropped, 50);
    assert_eq!(c[HostClass::Backends as usize].passed, 100);
    assert_eq!(c[HostClass::Neighbor as usize].passed, 100);
}

#[test]
fn only_the_routing_peers_or_established_bgp_segments_are_routing() {
    let host = [192, 0, 2, 250];
    let frame = |src: [u8; 4], syn: bool| {
        let b = PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
            .ipv4(src, host, 64)
            .tcp(33000, 179, 1, 1000);
        let b = if syn { b.syn() } else { b.ack(1) };
        let mut out = Vec::new();
        b.write(&mut out, &[]).unwrap();
        out
    };
    let peer = [192, 0, 2, 249];
    let stranger = [198, 51, 100, 3];
    let passed = |snap: &Snapshot, f: &[u8]| {
        let mut p = processor(snap);
        let ok = (0..100).filter(|_| p.police_host(snap, f, 10)).count();
        (ok, p.counters.host)
    };
    // Without peers: a bare SYN to port 179 is "other", a segment of a
    // session is routing, whoever sends it.
    let snap = snapshot("", "[protection.host]\nother_pps = 5\nrouting_pps = 50\n");
    let (ok, c) = passed(&snap, &frame(stranger, true));
    assert_eq!((ok, c[HostClass::Other as usize].passed), (5, 5));
    assert_eq!(passed(&snap, &frame(stranger, false)).0, 50);
    // With peers: only theirs, SYN or not.
    let snap = snapshot(
        "",
        "[protection.host]\nother_pps = 5\nrouting_pps = 50\nrouting_peers = [\"192.0.2.249\"]\n",
    );
    assert_eq!(passed(&snap, &frame(peer, true)).0, 50);
    assert_eq!(passed(&snap, &frame(peer, false)).0, 50);
    let (ok, c) = passed(&snap, &frame(stranger, false));
    assert_eq!((ok, c[HostClass::Other as usize].passed), (5, 5));
}

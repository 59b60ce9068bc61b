//! Table-driven packet cases in the style of Katran's fixtures: each case has
//! a name, an input frame, the expected action and the expected output bytes.
//!
//! Input frames and expected outputs are built with `etherparse`, a parser
//! and writer independent of dnlb's own (VXLAN and GRE headers, which it does
//! not know, are written byte by byte with a comment per field). Every
//! encapsulation x inner IPv4/IPv6 x TCP/UDP is covered, for IPv4 and IPv6
//! outer headers, plus ICMP-error routing, echo, too-big answers, fragment
//! policies and the packets that are not the load balancer's business.

use std::net::IpAddr;
use std::path::Path;

use dnlb_config::Tunnel;
use dnlb_lb::hash;
use dnlb_lb::processor::Processor;
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dnlb_lb::verdict::{Action, DropReason};
use dnlb_testkit::VecPacket;
use dnlb_wire::buf::PacketBuf;
use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder, UdpHeader,
};

mod common;

use common::{GW_MAC, ROUTER_MAC};

const CLIENT4: [u8; 4] = [198, 51, 100, 7];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0xc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
const SRC4: [u8; 4] = [192, 0, 2, 254];
const SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
];

/// Tunnel kinds under test, each with an IPv4 and an IPv6 backend; listener
/// `i` (VIP 192.0.2.(i+1) / 2001:db8::(i+1)) balances over group `i`.
const GROUPS: &[(&str, &str, &str)] = &[
    ("ipip4", "10.9.0.1", "tunnel = \"ipip\""),
    ("ipip6", "2001:db8:b::1", "tunnel = \"ipip\""),
    ("gue4", "10.9.0.2", "tunnel = \"gue\""),
    (
        "gue6",
        "2001:db8:b::2",
        "tunnel = \"gue\"\ntunnel_port = 5555",
    ),
    (
        "vxlan4",
        "10.9.0.3",
        "tunnel = \"vxlan\"\nvni = 4097\ninner_mac = \"02:be:00:00:00:01\"",
    ),
    (
        "vxlan6",
        "2001:db8:b::3",
        "tunnel = \"vxlan\"\nvni = 7\ninner_mac = \"02:be:00:00:00:01\"",
    ),
    ("gre4", "10.9.0.4", "tunnel = \"gre\""),
    ("gre6", "2001:db8:b::4", "tunnel = \"gre\"\ngre_key = 258"),
];

fn config_text(mtu: u16, extra_listeners: &str) -> String {
    let mut t = format!(
        "[gateway]\nname = \"fx\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nsource_v6 = \"2001:db8:a::1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\nmtu = {mtu}\n"
    );
    for (i, (name, addr, tunnel)) in GROUPS.iter().enumerate() {
        let n = i + 1;
        t += &format!(
            "[[listener]]\nname = \"{name}-tcp\"\nvips = [\"192.0.2.{n}\", \"2001:db8::{n}\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"{name}\"\n\
             [[listener]]\nname = \"{name}-udp\"\nvips = [\"192.0.2.{n}\", \"2001:db8::{n}\"]\nprotocol = \"udp\"\nport = 53\ntarget_group = \"{name}\"\n\
             [[target_group]]\nname = \"{name}\"\n[[target_group.backend]]\naddress = \"{addr}\"\n{tunnel}\n"
        );
    }
    t + extra_listeners
}

fn snapshot(mtu: u16, extra: &str) -> Snapshot {
    let cfg = dnlb_config::parse(Path::new("fixtures.toml"), &config_text(mtu, extra))
        .unwrap_or_else(|e| panic!("{e}"));
    Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap()
}

fn vip4(n: u8) -> [u8; 4] {
    [192, 0, 2, n]
}

fn vip6(n: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = n;
    a
}

/// A client frame to VIP `n` (TCP port 80 or UDP port 53).
fn client_frame(n: u8, v6: bool, tcp: bool, payload_len: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC);
    let b = if v6 {
        b.ipv6(CLIENT6, vip6(n), 61)
    } else {
        b.ipv4(CLIENT4, vip4(n), 61)
    };
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let mut out = Vec::new();
    if tcp {
        b.tcp(40000, 80, 1, 1000)
            .syn()
            .write(&mut out, &payload)
            .unwrap();
    } else {
        b.udp(40000, 53).write(&mut out, &payload).unwrap();
    }
    out
}

/// The entropy of the outer headers of a client frame's flow: its mix, the
/// flow hash before its last round.
fn flow_entropy(n: u8, v6: bool, tcp: bool) -> u64 {
    let (proto, dport) = if tcp { (6, 80) } else { (17, 53) };
    if v6 {
        hash::flow_mix_v6(CLIENT6, vip6(n), proto, 40000, dport)
    } else {
        hash::flow_mix_v4(CLIENT4, vip4(n), proto, 40000, dport)
    }
}

/// The expected encapsulated frame, built independently of dnlb.
fn expected_encap(inner_frame: &[u8], backend: IpAddr, tunnel: Tunnel, entropy: u64) -> Vec<u8> {
    let inner_ip = &inner_frame[14..];
    let inner_v6 = inner_ip[0] >> 4 == 6;
    let sport = 49152 | ((entropy >> 20) as u16 & 0x3fff);
    // What follows the outer IP header.
    let mut after_ip: Vec<u8> = Vec::new();
    let proto: u8;
    match tunnel {
        Tunnel::IpIp => proto = if inner_v6 { 41 } else { 4 },
        Tunnel::Gue { port } => {
            proto = 17;
            after_ip.extend_from_slice(&sport.to_be_bytes());
            after_ip.extend_from_slice(&port.to_be_bytes());
            after_ip.extend_from_slice(&[0; 4]); // length and checksum: filled below
        }
        Tunnel::Vxlan {
            vni,
            inner_mac,
            port,
        } => {
            proto = 17;
            after_ip.extend_from_slice(&sport.to_be_bytes());
            after_ip.extend_from_slice(&port.to_be_bytes());
            after_ip.extend_from_slice(&[0; 4]);
            after_ip.extend_from_slice(&[0x08, 0, 0, 0]); // VXLAN flags: I bit; reserved
            after_ip.extend_from_slice(&(vni << 8).to_be_bytes()); // VNI (24 bits), reserved
            after_ip.extend_from_slice(&inner_mac); // inner Ethernet: dst = backend's VXLAN device
            after_ip.extend_from_slice(&GW_MAC); // inner src = gateway port
            after_ip.extend_from_slice(&(if inner_v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
        }
        Tunnel::Gre { key } => {
            proto = 47;
            let flags: u16 = if key.is_some() { 0x2000 } else { 0 }; // K bit, version 0
            after_ip.extend_from_slice(&flags.to_be_bytes());
            after_ip.extend_from_slice(&(if inner_v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
            if let Some(k) = key {
                after_ip.extend_from_slice(&k.to_be_bytes());
            }
        }
    }
    let udp = matches!(tunnel, Tunnel::Gue { .. } | Tunnel::Vxlan { .. });
    let mut l4: Vec<u8> = after_ip;
    l4.extend_from_slice(inner_ip);
    let mut out = Vec::new();
    let ethertype = if backend.is_ipv6() {
        EtherType::IPV6
    } else {
        EtherType::IPV4
    };
    Ethernet2Header {
        destination: ROUTER_MAC,
        source: GW_MAC,
        ether_type: ethertype,
    }
    .write(&mut out)
    .unwrap();
    match backend {
        IpAddr::V4(dst) => {
            let mut h =
                Ipv4Header::new(l4.len() as u16, 64, IpNumber(proto), SRC4, dst.octets()).unwrap();
            h.dont_fragment = true;
            h.identification = 0;
            h.header_checksum = h.calc_header_checksum();
            if udp {
                let len = l4.len() as u16;
                l4[4..6].copy_from_slice(&len.to_be_bytes()); // UDP length; checksum 0 over IPv4
            }
            h.write(&mut out).unwrap();
        }
        IpAddr::V6(dst) => {
            let h = Ipv6Header {
                traffic_class: 0,
                flow_label: etherparse::Ipv6FlowLabel::try_new((entropy as u32) & 0xf_ffff)
                    .unwrap(),
                payload_length: l4.len() as u16,
                next_header: IpNumber(proto),
                hop_limit: 64,
                source: SRC6,
                destination: dst.octets(),
            };
            if udp {
                let len = l4.len() as u16;
                l4[4..6].copy_from_slice(&len.to_be_bytes());
                let uh = UdpHeader {
                    source_port: sport,
                    destination_port: u16::from_be_bytes([l4[2], l4[3]]),
                    length: len,
                    checksum: 0,
                };
                let c = uh.calc_checksum_ipv6(&h, &l4[8..]).unwrap();
                l4[6..8].copy_from_slice(&c.to_be_bytes());
            }
            h.write(&mut out).unwrap();
        }
    }
    out.extend_from_slice(&l4);
    out
}

fn backend_addr(group: usize) -> IpAddr {
    GROUPS[group].1.parse().unwrap()
}

fn tunnel_of(group: usize) -> Tunnel {
    let cfg = dnlb_config::parse(Path::new("fixtures.toml"), &config_text(1500, "")).unwrap();
    cfg.target_groups[group].backends[0].tunnel
}

struct Case {
    name: String,
    input: Vec<u8>,
    want: Action,
    want_bytes: Option<Vec<u8>>,
}

fn run(snap: &Snapshot, cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let mut p = Processor::new(4096, 0x5eed);
        p.adopt(snap);
        let mut pkt = VecPacket::new(&c.input);
        let got = p.process(snap, &mut pkt, GW_MAC, 1000);
        if got != c.want {
            failures.push(format!("{}: action {got:?}, want {:?}", c.name, c.want));
            continue;
        }
        if let Some(want) = &c.want_bytes {
            if pkt.data() != &want[..] {
                failures.push(format!(
                    "{}: output differs\n  got  {:02x?}\n  want {:02x?}",
                    c.name,
                    pkt.data(),
                    want
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_encapsulation_by_family_and_protocol() {
    let snap = snapshot(1500, "");
    let mut cases = Vec::new();
    for (g, group) in GROUPS.iter().enumerate() {
        let n = g as u8 + 1;
        for v6 in [false, true] {
            for tcp in [false, true] {
                let input = client_frame(n, v6, tcp, 33);
                let want = expected_encap(
                    &input,
                    backend_addr(g),
                    tunnel_of(g),
                    flow_entropy(n, v6, tcp),
                );
                let listener = snap
                    .listeners
                    .iter()
                    .find(|l| l.group as usize == g)
                    .unwrap();
                let id = listener.table.entries()[0];
                cases.push(Case {
                    name: format!(
                        "{} inner {} {}",
                        group.0,
                        if v6 { "v6" } else { "v4" },
                        if tcp { "tcp" } else { "udp" }
                    ),
                    input,
                    want: Action::Encapsulated(id),
                    want_bytes: Some(want),
                });
            }
        }
    }
    assert_eq!(cases.len(), 32);
    run(&snap, &cases);
}

#[test]
fn ethernet_padding_and_vlan_tags_are_not_carried() {
    let snap = snapshot(1500, "");
    // 60-byte minimum frame: a small UDP packet padded by the sender.
    let mut padded = client_frame(1, false, false, 2);
    let ip_only = padded.clone();
    padded.resize(60, 0);
    let want = expected_encap(
        &ip_only,
        backend_addr(0),
        tunnel_of(0),
        flow_entropy(1, false, false),
    );
    // An 802.1Q-tagged frame: the tag is stripped with the old L2 header.
    let mut tagged = client_frame(1, false, false, 2);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
    let id = snap.listeners[0].table.entries()[0];
    run(
        &snap,
        &[
            Case {
                name: "padded".into(),
                input: padded,
                want: Action::Encapsulated(id),
                want_bytes: Some(want.clone()),
            },
            Case {
                name: "vlan".into(),
                input: tagged,
                want: Action::Encapsulated(id),
                want_bytes: Some(want),
            },
        ],
    );
}

/// An ARP request for 192.0.2.1, written by hand (etherparse has no ARP builder here).
fn arp() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]); // dst: broadcast
    f.extend_from_slice(&ROUTER_MAC); // src
    f.extend_from_slice(&[0x08, 0x06]); // ethertype ARP
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet, IPv4, sizes, request
    f.extend_from_slice(&ROUTER_MAC);
    f.extend_from_slice(&[192, 0, 2, 200]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[192, 0, 2, 1]);
    f.resize(60, 0);
    f
}

#[test]
fn traffic_that_is_not_for_a_listener() {
    let snap = snapshot(1500, "");
    let to_host = {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
            .ipv4(CLIENT4, [192, 0, 2, 254], 64)
            .tcp(40000, 179, 1, 1000)
            .write(&mut out, &[])
            .unwrap();
        out
    };
    let wrong_port = {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
            .ipv4(CLIENT4, vip4(1), 64)
            .tcp(40000, 443, 1, 1000)
            .write(&mut out, &[])
            .unwrap();
        out
    };
    let sctp_to_vip = {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
            .ipv4(CLIENT4, vip4(1), 64)
            .write(&mut out, IpNumber(132), &[0; 12])
            .unwrap();
        out
    };
    let mut truncated_ip = client_frame(1, false, true, 0);
    truncated_ip.truncate(14 + 12);
    let mut truncated_tcp = client_frame(1, false, true, 0);
    truncated_tcp.truncate(14 + 20 + 10);
    // fix the IP total length so only the TCP header is short
    let tl = (20 + 10) as u16;
    truncated_tcp[16..18].copy_from_slice(&tl.to_be_bytes());
    let mut bad_version = client_frame(1, false, true, 0);
    bad_version[14] = 0x55;
    let cases = [
        Case {
            name: "arp".into(),
            input: arp(),
            want: Action::NotForVip,
            want_bytes: Some(arp()),
        },
        Case {
            name: "bgp to the host".into(),
            input: to_host.clone(),
            want: Action::NotForVip,
            want_bytes: Some(to_host),
        },
        Case {
            name: "vip, no listener on port".into(),
            input: wrong_port,
            want: Action::Drop(DropReason::NoListener),
            want_bytes: None,
        },
        Case {
            name: "vip, other protocol".into(),
            input: sctp_to_vip,
            want: Action::Drop(DropReason::NoListener),
            want_bytes: None,
        },
        Case {
            name: "runt frame".into(),
            input: vec![0; 10],
            want: Action::Drop(DropReason::MalformedL2),
            want_bytes: None,
        },
        Case {
            name: "truncated ip".into(),
            input: truncated_ip,
            want: Action::Drop(DropReason::MalformedL3),
            want_bytes: None,
        },
        Case {
            name: "bad ip version".into(),
            input: bad_version,
            want: Action::Drop(DropReason::MalformedL3),
            want_bytes: None,
        },
        Case {
            name: "truncated tcp".into(),
            input: truncated_tcp,
            want: Action::Drop(DropReason::MalformedL4),
            want_bytes: None,
        },
    ];
    run(&snap, &cases);
}

/// An ICMP error from a router on the way back to the client, about a packet
/// the backend sent from VIP `n` to the client (direct server return).
fn icmp_error_v4(n: u8, icmp_type: u8, code: u8, rest: [u8; 4]) -> Vec<u8> {
    // The quoted packet: VIP:80 -> client:40000, TCP, truncated after 8 bytes of TCP.
    let mut quoted = Vec::new();
    PacketBuilder::ipv4(vip4(n), CLIENT4, 50)
        .tcp(80, 40000, 7, 1000)
        .write(&mut quoted, &[])
        .unwrap();
    quoted.truncate(28);
    let [r0, r1, r2, r3] = rest;
    common::icmp4(
        [203, 0, 113, 1],
        vip4(n),
        [icmp_type, code, 0, 0, r0, r1, r2, r3],
        &quoted,
    )
}

fn icmp_error_v6(n: u8, icmp_type: u8, rest: [u8; 4]) -> Vec<u8> {
    let mut quoted = Vec::new();
    PacketBuilder::ipv6(vip6(n), CLIENT6, 50)
        .tcp(80, 40000, 7, 1000)
        .write(&mut quoted, &[1; 100])
        .unwrap();
    let router = [0x20, 0x01, 0x0d, 0xb8, 0xf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let [r0, r1, r2, r3] = rest;
    common::icmp6(
        router,
        vip6(n),
        [icmp_type, 0, 0, 0, r0, r1, r2, r3],
        &quoted,
    )
}

#[test]
fn icmp_errors_reach_the_backend_that_owns_the_flow() {
    let snap = snapshot(1500, "");
    let mut cases = Vec::new();
    for g in [0usize, 4] {
        let n = g as u8 + 1;
        // The flow the error is about: client:40000 -> VIP:80, TCP.
        for (name, input, v6) in [
            (
                "frag needed",
                icmp_error_v4(n, 3, 4, [0, 0, 0x05, 0x00]),
                false,
            ),
            ("port unreachable", icmp_error_v4(n, 3, 3, [0; 4]), false),
            ("host unreachable", icmp_error_v4(n, 3, 1, [0; 4]), false),
            (
                "packet too big",
                icmp_error_v6(n, 2, [0, 0, 0x05, 0x00]),
                true,
            ),
            ("v6 unreachable", icmp_error_v6(n, 1, [0; 4]), true),
        ] {
            let h = flow_entropy(n, v6, true);
            let want = expected_encap(&input, backend_addr(g), tunnel_of(g), h);
            let id = snap
                .listeners
                .iter()
                .find(|l| l.group as usize == g)
                .unwrap()
                .table
                .entries()[0];
            cases.push(Case {
                name: format!("{} {name}", GROUPS[g].0),
                input,
                want: Action::Encapsulated(id),
                want_bytes: Some(want),
            });
        }
    }
    // An error about a flow of a port with no listener is not ours to route.
    let mut stray = icmp_error_v4(1, 3, 3, [0; 4]);
    let q = 14 + 20 + 8 + 20; // quoted TCP source port
    stray[q..q + 2].copy_from_slice(&8080u16.to_be_bytes());
    cases.push(Case {
        name: "error about no listener".into(),
        input: stray,
        want: Action::Drop(DropReason::IcmpUnsupported),
        want_bytes: None,
    });
    run(&snap, &cases);
}

#[test]
fn icmp_errors_follow_the_flow_across_backends() {
    // Many backends: the error must go where the flow's own packets go.
    let extra = "[[listener]]\nname = \"many\"\nvips = [\"192.0.2.100\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"many\"\n\
                 [[target_group]]\nname = \"many\"\n";
    let mut extra = extra.to_string();
    for i in 1..=20 {
        extra +=
            &format!("[[target_group.backend]]\naddress = \"10.8.0.{i}\"\ntunnel = \"ipip\"\n");
    }
    let snap = snapshot(1500, &extra);
    let mut seen = std::collections::HashSet::new();
    for port in 40000..40200u16 {
        let mut data = Vec::new();
        PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
            .ipv4(CLIENT4, vip4(100), 64)
            .tcp(port, 80, 1, 1000)
            .write(&mut data, &[])
            .unwrap();
        let mut quoted = Vec::new();
        PacketBuilder::ipv4(vip4(100), CLIENT4, 50)
            .tcp(80, port, 7, 1000)
            .write(&mut quoted, &[])
            .unwrap();
        quoted.truncate(28);
        let err = common::icmp4(
            [203, 0, 113, 1],
            vip4(100),
            [3, 4, 0, 0, 0, 0, 5, 0],
            &quoted,
        );
        // Two gateways: one saw the flow, the other only sees the error.
        let mut gw1 = Processor::new(4096, 1);
        let mut gw2 = Processor::new(4096, 2);
        gw1.adopt(&snap);
        gw2.adopt(&snap);
        let a = gw1.process(&snap, &mut VecPacket::new(&data), GW_MAC, 0);
        let b = gw2.process(&snap, &mut VecPacket::new(&err), GW_MAC, 0);
        assert_eq!(a, b, "client port {port}");
        seen.insert(format!("{a:?}"));
    }
    assert!(
        seen.len() > 10,
        "flows should spread over backends: {seen:?}"
    );
}

fn echo_v4(n: u8) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(CLIENT4, vip4(n), 64)
        .icmpv4_echo_request(9, 1)
        .write(&mut out, b"ping")
        .unwrap();
    out
}

fn echo_v6(n: u8) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv6(CLIENT6, vip6(n), 64)
        .icmpv6_echo_request(9, 1)
        .write(&mut out, b"ping")
        .unwrap();
    out
}

#[test]
fn echo_to_a_vip_is_answered_or_dropped() {
    let snap = snapshot(1500, "");
    let mut r4 = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, ROUTER_MAC)
        .ipv4(vip4(1), CLIENT4, 64)
        .icmpv4_echo_reply(9, 1)
        .write(&mut r4, b"ping")
        .unwrap();
    let mut r6 = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, ROUTER_MAC)
        .ipv6(vip6(1), CLIENT6, 64)
        .icmpv6_echo_reply(9, 1)
        .write(&mut r6, b"ping")
        .unwrap();
    // etherparse writes IPv4 with DF clear and ident 0, like the request it answers.
    run(
        &snap,
        &[
            Case {
                name: "echo v4".into(),
                input: echo_v4(1),
                want: Action::Reply,
                want_bytes: Some(r4),
            },
            Case {
                name: "echo v6".into(),
                input: echo_v6(1),
                want: Action::Reply,
                want_bytes: Some(r6),
            },
        ],
    );
    let text = config_text(1500, "").replace("mtu = 1500\n", "mtu = 1500\nicmp_echo = \"drop\"\n");
    let cfg = dnlb_config::parse(Path::new("x.toml"), &text).unwrap();
    let snap = Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap();
    run(
        &snap,
        &[
            Case {
                name: "echo v4 dropped".into(),
                input: echo_v4(1),
                want: Action::Drop(DropReason::EchoDropped),
                want_bytes: None,
            },
            Case {
                name: "echo v6 dropped".into(),
                input: echo_v6(1),
                want: Action::Drop(DropReason::EchoDropped),
                want_bytes: None,
            },
        ],
    );
}

#[test]
fn too_big_after_encapsulation_is_answered_with_icmp() {
    // MTU 1300: a 1280-byte IPv4 packet with DF plus 50 bytes of VXLAN does not fit.
    let snap = snapshot(1300, "");
    let big4 = {
        let mut out = Vec::new();
        let mut b = PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC).ipv4(CLIENT4, vip4(5), 61);
        let _ = &mut b;
        b.tcp(40000, 80, 1, 1000)
            .write(&mut out, &vec![7u8; 1280 - 40])
            .unwrap();
        out[14 + 6] |= 0x40; // set DF
        let mut h = etherparse::Ipv4HeaderSlice::from_slice(&out[14..])
            .unwrap()
            .to_header();
        h.header_checksum = h.calc_header_checksum();
        let mut w = Vec::new();
        h.write(&mut w).unwrap();
        out[14..34].copy_from_slice(&w);
        out
    };
    let mut no_df = big4.clone();
    no_df[14 + 6] &= !0x40;
    {
        let mut h = etherparse::Ipv4HeaderSlice::from_slice(&no_df[14..])
            .unwrap()
            .to_header();
        h.header_checksum = h.calc_header_checksum();
        let mut w = Vec::new();
        h.write(&mut w).unwrap();
        no_df[14..34].copy_from_slice(&w);
    }
    // Expected: Eth (swapped) | IPv4 VIP->client, ICMP 3/4 with MTU 1300-50 | quote.
    let want4 = {
        let quote = &big4[14..14 + 548];
        let mut icmp = vec![3, 4, 0, 0, 0, 0];
        icmp.extend_from_slice(&1250u16.to_be_bytes());
        icmp.extend_from_slice(quote);
        let c = etherparse::checksum::Sum16BitWords::new()
            .add_slice(&icmp)
            .ones_complement()
            .to_be();
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut h = Ipv4Header::new(icmp.len() as u16, 64, IpNumber(1), vip4(5), CLIENT4).unwrap();
        h.dont_fragment = true;
        h.header_checksum = h.calc_header_checksum();
        let mut out = Vec::new();
        Ethernet2Header {
            destination: ROUTER_MAC,
            source: GW_MAC,
            ether_type: EtherType::IPV4,
        }
        .write(&mut out)
        .unwrap();
        h.write(&mut out).unwrap();
        out.extend_from_slice(&icmp);
        out
    };
    let big6 = {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
            .ipv6(CLIENT6, vip6(5), 61)
            .udp(40000, 53)
            .write(&mut out, &vec![9u8; 1260])
            .unwrap();
        out
    };
    let want6 = {
        let quote = &big6[14..14 + 1232];
        let mut icmp = vec![2, 0, 0, 0];
        icmp.extend_from_slice(&(1300u32 - 50).to_be_bytes());
        icmp.extend_from_slice(quote);
        let sum = etherparse::checksum::Sum16BitWords::new()
            .add_16bytes(vip6(5))
            .add_16bytes(CLIENT6)
            .add_4bytes((icmp.len() as u32).to_be_bytes())
            .add_2bytes([0, 58])
            .add_slice(&icmp)
            .ones_complement()
            .to_be();
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let h = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: icmp.len() as u16,
            next_header: IpNumber(58),
            hop_limit: 64,
            source: vip6(5),
            destination: CLIENT6,
        };
        let mut out = Vec::new();
        Ethernet2Header {
            destination: ROUTER_MAC,
            source: GW_MAC,
            ether_type: EtherType::IPV6,
        }
        .write(&mut out)
        .unwrap();
        h.write(&mut out).unwrap();
        out.extend_from_slice(&icmp);
        out
    };
    run(
        &snap,
        &[
            Case {
                name: "v4 DF too big".into(),
                input: big4.clone(),
                want: Action::Reply,
                want_bytes: Some(want4),
            },
            Case {
                name: "v6 too big".into(),
                input: big6,
                want: Action::Reply,
                want_bytes: Some(want6),
            },
            Case {
                name: "v4 without DF".into(),
                input: no_df,
                want: Action::Drop(DropReason::TooBig),
                want_bytes: None,
            },
        ],
    );
    // The answers are rate-limited per worker (`encap.icmp_rate_per_sec`,
    // burst the same).
    let limited = |rate: u32| {
        let text = config_text(1300, "").replace(
            "mtu = 1300\n",
            &format!("mtu = 1300\nicmp_rate_per_sec = {rate}\n"),
        );
        let cfg = dnlb_config::parse(Path::new("x.toml"), &text).unwrap();
        Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap()
    };
    let snap3 = limited(3);
    let mut p = Processor::new(1024, 1);
    p.adopt(&snap3);
    let actions: Vec<Action> = (0..5)
        .map(|_| p.process(&snap3, &mut VecPacket::new(&big4), GW_MAC, 10))
        .collect();
    assert_eq!(&actions[..3], &[Action::Reply; 3]);
    assert_eq!(
        &actions[3..],
        &[Action::Drop(DropReason::IcmpRateLimited); 2]
    );
    // A third of a second later, one more.
    let later = p.process(&snap3, &mut VecPacket::new(&big4), GW_MAC, 10 + 334);
    assert_eq!(later, Action::Reply);
    // Drops are counted against the listener and the backend they hit.
    let snap1 = limited(1);
    let mut p = Processor::new(1024, 1);
    p.adopt(&snap1);
    for _ in 0..3 {
        p.process(&snap1, &mut VecPacket::new(&big4), GW_MAC, 10);
    }
    // With too_big = "drop" nothing is answered.
    let text = config_text(1300, "").replace("mtu = 1300\n", "mtu = 1300\ntoo_big = \"drop\"\n");
    let cfg = dnlb_config::parse(Path::new("x.toml"), &text).unwrap();
    let snap = Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap();
    run(
        &snap,
        &[Case {
            name: "policy drop".into(),
            input: big4,
            want: Action::Drop(DropReason::TooBig),
            want_bytes: None,
        }],
    );
}

/// IPv4 fragments of one UDP datagram to VIP `n`, port 53.
fn fragments_v4(n: u8) -> Vec<Vec<u8>> {
    let mut dgram = Vec::new();
    PacketBuilder::ipv4(CLIENT4, vip4(n), 61)
        .udp(40000, 53)
        .write(&mut dgram, &[5u8; 64])
        .unwrap();
    let payload = &dgram[20..]; // UDP header + data, 72 bytes
    let mut out = Vec::new();
    for (off, chunk, more) in [(0, &payload[..40], true), (40, &payload[40..], false)] {
        out.push(common::ipv4_fragment(
            CLIENT4,
            vip4(n),
            17,
            off,
            more,
            chunk,
        ));
    }
    out
}

/// IPv6 fragments (fragment header written by hand, RFC 8200 layout).
fn fragments_v6(n: u8) -> Vec<Vec<u8>> {
    let mut dgram = Vec::new();
    PacketBuilder::ipv6(CLIENT6, vip6(n), 61)
        .udp(40000, 53)
        .write(&mut dgram, &[5u8; 64])
        .unwrap();
    let payload = dgram[40..].to_vec();
    let mut out = Vec::new();
    for (off, chunk, more) in [(0usize, &payload[..40], true), (40, &payload[40..], false)] {
        let mut f = Vec::new();
        Ethernet2Header {
            destination: GW_MAC,
            source: ROUTER_MAC,
            ether_type: EtherType::IPV6,
        }
        .write(&mut f)
        .unwrap();
        let h = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: (8 + chunk.len()) as u16,
            next_header: IpNumber(44),
            hop_limit: 61,
            source: CLIENT6,
            destination: vip6(n),
        };
        h.write(&mut f).unwrap();
        let offm: u16 = ((off as u16 / 8) << 3) | more as u16;
        f.extend_from_slice(&[17, 0]); // next header UDP, reserved
        f.extend_from_slice(&offm.to_be_bytes()); // offset (13 bits) | res | M
        f.extend_from_slice(&0x0000_5678u32.to_be_bytes()); // identification
        f.extend_from_slice(chunk);
        out.push(f);
    }
    out
}

#[test]
fn fragment_policies() {
    // Listener "frag" on 192.0.2.50 / 2001:db8::50 hashes fragments on
    // addresses; the fixture's own UDP listeners drop them.
    let mut extra = String::from(
        "[[listener]]\nname = \"frag\"\nvips = [\"192.0.2.50\", \"2001:db8::32\"]\nprotocol = \"udp\"\nport = 53\n\
         fragments = \"hash_addresses\"\ntarget_group = \"frag\"\n\
         [[listener]]\nname = \"two-a\"\nvips = [\"192.0.2.60\"]\nprotocol = \"udp\"\nport = 53\nfragments = \"hash_addresses\"\ntarget_group = \"frag\"\n\
         [[listener]]\nname = \"two-b\"\nvips = [\"192.0.2.60\"]\nprotocol = \"udp\"\nport = 54\nfragments = \"hash_addresses\"\ntarget_group = \"frag\"\n\
         [[target_group]]\nname = \"frag\"\n",
    );
    for i in 1..=8 {
        extra +=
            &format!("[[target_group.backend]]\naddress = \"10.7.0.{i}\"\ntunnel = \"ipip\"\n");
    }
    let snap = snapshot(1500, &extra);
    let frag_listener = snap.listeners.iter().find(|l| l.name == "frag").unwrap();
    let want4 = frag_listener
        .table
        .lookup(hash::addr_hash_v4(CLIENT4, vip4(50), 17))
        .unwrap();
    let want6 = frag_listener
        .table
        .lookup(hash::addr_hash_v6(CLIENT6, vip6(50), 17))
        .unwrap();
    let mut cases = Vec::new();
    let groups = [
        (
            "v4",
            "hashed",
            fragments_v4(50),
            Action::Encapsulated(want4),
        ),
        (
            "v6",
            "hashed",
            fragments_v6(50),
            Action::Encapsulated(want6),
        ),
        (
            "v4",
            "dropped",
            fragments_v4(2),
            Action::Drop(DropReason::Fragment),
        ),
        (
            "v6",
            "dropped",
            fragments_v6(2),
            Action::Drop(DropReason::Fragment),
        ),
        (
            "v4",
            "ambiguous",
            fragments_v4(60),
            Action::Drop(DropReason::FragmentAmbiguous),
        ),
    ];
    for (family, what, frags, want) in groups {
        for (i, f) in frags.into_iter().enumerate() {
            cases.push(Case {
                name: format!("{family} fragment {i} {what}"),
                input: f,
                want,
                want_bytes: None,
            });
        }
    }
    let mut other = fragments_v4(200);
    cases.push(Case {
        name: "fragment not for a VIP".into(),
        input: other.remove(1),
        want: Action::NotForVip,
        want_bytes: None,
    });
    run(&snap, &cases);
    // The whole fragment, inner packet untouched, goes inside the tunnel.
    let f = fragments_v4(50).remove(1);
    let mut p = Processor::new(1024, 1);
    p.adopt(&snap);
    let mut pkt = VecPacket::new(&f);
    p.process(&snap, &mut pkt, GW_MAC, 0);
    assert_eq!(&pkt.data()[14 + 20..], &f[14..]);
}

#[test]
fn established_flows_keep_their_backend_until_it_is_unusable() {
    let mut extra = String::from("[[listener]]\nname = \"many\"\nvips = [\"192.0.2.100\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"many\"\n[[target_group]]\nname = \"many\"\n");
    for i in 1..=10 {
        extra +=
            &format!("[[target_group.backend]]\naddress = \"10.8.0.{i}\"\ntunnel = \"ipip\"\n");
    }
    let text = config_text(1500, &extra);
    let cfg = dnlb_config::parse(Path::new("x.toml"), &text).unwrap();
    let mut reg = BackendRegistry::default();
    let snap1 = Snapshot::build(&cfg, 1, &mut reg).unwrap();
    let mut p = Processor::new(4096, 3);
    p.adopt(&snap1);
    let frame = |port: u16| {
        let mut d = Vec::new();
        PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
            .ipv4(CLIENT4, vip4(100), 64)
            .tcp(port, 80, 1, 1000)
            .ack(1)
            .write(&mut d, &[])
            .unwrap();
        d
    };
    let first: Vec<Action> = (1000..1300)
        .map(|port| p.process(&snap1, &mut VecPacket::new(&frame(port)), GW_MAC, 0))
        .collect();
    // Drop one backend to weight 0 (no new flows) and remove another: a new table.
    let mut cfg2 = cfg.clone();
    let g = cfg2
        .target_groups
        .iter_mut()
        .find(|g| g.name == "many")
        .unwrap();
    g.backends[0].weight = 0;
    let g0 = g.backends[0].clone();
    let removed = g.backends.remove(1);
    let snap2 = Snapshot::build(&cfg2, 2, &mut reg).unwrap();
    p.adopt(&snap2);
    let removed_id = reg.id("many", dnlb_lb::maglev::backend_identity(&removed));
    let mut moved = 0;
    for (i, port) in (1000..1300).enumerate() {
        let again = p.process(&snap2, &mut VecPacket::new(&frame(port)), GW_MAC, 10);
        if first[i] == Action::Encapsulated(removed_id) {
            assert_ne!(again, first[i], "flow on a removed backend must move");
            moved += 1;
        } else {
            // Including flows on the weight-0 backend: they stay.
            assert_eq!(again, first[i], "established flow {port} changed backend");
        }
    }
    assert!(moved > 0);
    assert_eq!(p.counters.flows_rescheduled, moved);
    assert_eq!(
        p.counters.new_flows,
        300 + moved,
        "moved flows were re-inserted"
    );
    // A flow on the weight-0 backend: within the idle timeout (TCP 900 s)
    // it is found (not created) and stays...
    let weight0 = reg
        .get("many", &dnlb_lb::maglev::backend_identity(&g0))
        .unwrap();
    let i = first
        .iter()
        .position(|a| *a == Action::Encapsulated(weight0))
        .expect("a flow on the backend set to weight 0");
    let port = 1000 + i as u16;
    let kept = p.process(
        &snap2,
        &mut VecPacket::new(&frame(port)),
        GW_MAC,
        10 + 899_000,
    );
    assert_eq!(
        kept,
        Action::Encapsulated(weight0),
        "a live flow keeps its backend"
    );
    assert_eq!(
        p.counters.new_flows,
        300 + moved,
        "a live flow is not a new flow"
    );
    // ...and once it has been idle longer, it has expired: it is scheduled
    // afresh by the current table, which the weight-0 backend is not in.
    let fresh = p.process(
        &snap2,
        &mut VecPacket::new(&frame(port)),
        GW_MAC,
        10 + 899_000 + 901_000,
    );
    assert_eq!(
        p.counters.new_flows,
        301 + moved,
        "an expired flow is new again"
    );
    assert!(
        matches!(fresh, Action::Encapsulated(b) if b != weight0),
        "{fresh:?}"
    );
}

/// A client TCP segment of the flow in `client_frame` with these flags.
fn tcp_segment(flags: &str) -> Vec<u8> {
    segment(CLIENT4, flags)
}

/// A client TCP segment from `src` to the first listener's VIP, with these
/// flags (S, A, F, R).
fn segment(src: [u8; 4], flags: &str) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(src, vip4(1), 61)
        .tcp(40000, 80, 2, 1000);
    let b = flags.chars().fold(b, |b, f| match f {
        'S' => b.syn(),
        'A' => b.ack(1),
        'F' => b.fin(),
        'R' => b.rst(),
        _ => unreachable!(),
    });
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

#[test]
fn a_closed_tcp_flow_leaves_the_table_after_the_closing_timeout() {
    // tcp_idle_timeout 900 s, tcp_closing_timeout 30 s (defaults).
    let snap = snapshot(1500, "");
    let mut p = Processor::new(1024, 1);
    p.adopt(&snap);
    let send = |p: &mut Processor, flags: &str, now: u32| {
        let a = p.process(&snap, &mut VecPacket::new(&tcp_segment(flags)), GW_MAC, now);
        assert!(
            matches!(a, Action::Encapsulated(_)),
            "{flags} at {now}: {a:?}"
        );
    };
    let (s, min) = (1000u32, 60_000u32);
    send(&mut p, "S", 0);
    send(&mut p, "A", 10 * min);
    assert_eq!(
        p.counters.new_flows, 1,
        "idle for 10 minutes, still tracked"
    );
    // The client's FIN: from now on the entry lives 30 s past its last packet.
    send(&mut p, "FA", 11 * min);
    send(&mut p, "A", 11 * min + 29 * s); // the last ACK keeps it closing
    send(&mut p, "A", 11 * min + 58 * s);
    assert_eq!(p.counters.new_flows, 1);
    assert_eq!(p.flows().len(), 1);
    send(&mut p, "A", 11 * min + 89 * s); // 31 s after the last one
    assert_eq!(p.counters.new_flows, 2, "expired: a new entry");
    // A new SYN on the same 5-tuple opens it again: the long timeout is back.
    send(&mut p, "R", 20 * min);
    send(&mut p, "S", 20 * min + s);
    send(&mut p, "A", 30 * min);
    assert_eq!(
        p.counters.new_flows, 2,
        "reopened by the SYN, then idle 10 minutes"
    );
    // A RST closes it too.
    send(&mut p, "R", 40 * min);
    assert_eq!(p.counters.new_flows, 2);
    send(&mut p, "A", 40 * min + 31 * s);
    assert_eq!(p.counters.new_flows, 3, "expired 30 s after the RST");
    // A flow first seen with a FIN (its SYN went to a gateway that died) is
    // tracked only briefly.
    send(&mut p, "FA", 60 * min);
    assert_eq!(p.counters.new_flows, 4);
    send(&mut p, "A", 60 * min + 31 * s);
    assert_eq!(p.counters.new_flows, 5);
}

/// A TCP segment with `flags` from source 198.18.X.Y (`n` = X·256 + Y).
fn segment_from(n: u16, flags: &str) -> Vec<u8> {
    segment([198, 18, (n >> 8) as u8, n as u8], flags)
}

#[test]
fn bare_syns_and_untracked_rsts_take_no_flow_table_entry() {
    let snap = snapshot(1500, "");
    let mut p = Processor::new(1024, 1);
    p.adopt(&snap);
    // A flood of SYNs from 5000 sources into a table for 1024 flows: every
    // one is balanced, none is stored, nothing is refused.
    let mut first = Vec::new();
    for n in 0..5000u16 {
        let a = p.process(
            &snap,
            &mut VecPacket::new(&segment_from(n, "S")),
            GW_MAC,
            10,
        );
        assert!(matches!(a, Action::Encapsulated(_)), "SYN {n}: {a:?}");
        first.push(a);
    }
    assert_eq!(p.flows().len(), 0);
    assert_eq!((p.counters.new_flows, p.counters.flow_table_full), (0, 0));
    // RSTs of flows nobody tracks: the same.
    for n in 0..100u16 {
        p.process(
            &snap,
            &mut VecPacket::new(&segment_from(n, "R")),
            GW_MAC,
            20,
        );
    }
    assert_eq!(p.flows().len(), 0);
    // The handshake's ACK makes the entry, on the backend the SYN went to.
    for n in 0..100u16 {
        let a = p.process(
            &snap,
            &mut VecPacket::new(&segment_from(n, "A")),
            GW_MAC,
            30,
        );
        assert_eq!(a, first[n as usize], "flow {n}: the ACK follows its SYN");
    }
    assert_eq!(p.flows().len(), 100);
    assert_eq!(p.counters.new_flows, 100);
}

#[test]
fn a_listener_acl_drops_denied_sources_and_counts_them() {
    let acl = "[listener.acl]\ndefault = \"deny\"\nallow = [\"198.18.0.0/16\"]\ndeny = [\"198.18.1.0/24\"]\n";
    let text = config_text(1500, "").replacen(
        "target_group = \"ipip4\"\n",
        &format!("target_group = \"ipip4\"\n{acl}"),
        1,
    );
    assert!(text.contains("[listener.acl]"), "no anchor for the ACL");
    let cfg = dnlb_config::parse(std::path::Path::new("t.toml"), &text).unwrap();
    let snap = Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap();
    let l = snap
        .listeners
        .iter()
        .find(|l| l.acl.is_some())
        .expect("a listener with the ACL");
    let slot = l.slot as usize;
    let mut p = Processor::new(1024, 1);
    p.adopt(&snap);
    let send = |p: &mut Processor, n: u16| {
        p.process(
            &snap,
            &mut VecPacket::new(&segment_from(n, "A")),
            GW_MAC,
            10,
        )
    };
    // 198.18.0.5: allowed; 198.18.1.5: denied by the longer prefix.
    assert!(matches!(send(&mut p, 5), Action::Encapsulated(_)));
    assert_eq!(send(&mut p, 256 + 5), Action::Drop(DropReason::AclDenied));
    assert_eq!(
        p.counters.listener_drops[slot][DropReason::AclDenied as usize],
        1
    );
    assert_eq!(p.flows().len(), 1, "a denied packet takes no entry");
}

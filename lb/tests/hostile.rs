//! Hostile-input fixture table for the load-balancing step (issue 11).
//!
//! What it covers: frames cut at every length (IPv4/IPv6 TCP, UDP, 802.1Q
//! and QinQ frames, ICMP echoes), as plain cuts (the IP length field still
//! claims the whole packet: malformed L3), with the IP length rewritten to
//! the cut (malformed L4 inside the transport header, forwarded or answered
//! inside the data), and with only the length field shortened (the rest of
//! the frame becomes padding, which must never be parsed); broken IPv4 headers (IHL, total length,
//! version) and IPv6 payload lengths; Ethernet padding (forwarded, never
//! carried into the tunnel); long, over-limit and truncated IPv6
//! extension-header chains and next header 59; TTL / hop limit 0 and 1;
//! port 0; tiny, overlapping, first and non-first fragments under both
//! fragment policies; ICMP errors quoting truncated headers; oversized
//! packets and the too-big policies; VLAN, QinQ and unknown EtherTypes;
//! IPv4-mapped, multicast and link-local addresses; and illegal TCP flag
//! combinations (with what they do to the flow table). Every case names the
//! exact [`Action`] it expects; a forwarded case also checks, with
//! `etherparse`, that the output is a well-formed IP-in-IP frame to the
//! chosen backend whose inner packet is the input's IP packet byte for byte
//! (no Ethernet padding, no VLAN tag, TTL untouched). Frames are built with
//! `etherparse` and then corrupted byte by byte; each run goes through
//! [`Processor::prepare`] and [`Processor::process_hinted`], so debug builds
//! also check that the unvalidated first pass agrees with the parse.

mod common;

use std::path::Path;

use common::{GW_MAC, ROUTER_MAC};
use dnlb_lb::hash;
use dnlb_lb::ids::BackendId;
use dnlb_lb::processor::Processor;
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dnlb_lb::verdict::{Action, DropReason};
use dnlb_testkit::VecPacket;
use dnlb_wire::buf::PacketBuf;
use etherparse::checksum::Sum16BitWords;
use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv6Header, NetSlice, PacketBuilder, SlicedPacket,
    TransportSlice,
};

use DropReason::{
    EchoDropped, Fragment, FragmentAmbiguous, IcmpUnsupported, MalformedL2, MalformedL3,
    MalformedL4, NoListener, TooBig,
};

const CLIENT4: [u8; 4] = [198, 51, 100, 7];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0xc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
/// Outer source of encapsulated packets (`encap.source_v4`).
const SRC4: [u8; 4] = [192, 0, 2, 254];
/// A router sending ICMP errors.
const ROUTER4: [u8; 4] = [203, 0, 113, 1];
const ROUTER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0xf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// VIP of listeners `vip-tcp` (port 80) and `vip-udp` (port 53): fragments dropped.
const VIP4: [u8; 4] = [192, 0, 2, 1];
/// VIP of listeners `frag-tcp` / `frag-udp`: fragments hashed on addresses.
const FRAG4: [u8; 4] = [192, 0, 2, 50];
/// VIP of `any-tcp`, a TCP listener on every port.
const ANY4: [u8; 4] = [192, 0, 2, 60];
/// VIP of `two-a` and `two-b`, two UDP ports: non-first fragments ambiguous.
const TWO4: [u8; 4] = [192, 0, 2, 70];

fn v6(last: u16) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[14..].copy_from_slice(&last.to_be_bytes());
    a
}

/// `2001:db8::1`, the IPv6 VIP of `vip-tcp` and `vip-udp`.
fn vip6() -> [u8; 16] {
    v6(1)
}

/// `2001:db8::50`, the IPv6 VIP of `frag-tcp` and `frag-udp`.
fn frag_vip6() -> [u8; 16] {
    v6(0x50)
}

fn config_text(encap_extra: &str) -> String {
    let mut t = format!(
        "[gateway]\nname = \"hostile\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nsource_v6 = \"2001:db8:a::1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\nmtu = 1500\n{encap_extra}\
         [[listener]]\nname = \"vip-tcp\"\nvips = [\"192.0.2.1\", \"2001:db8::1\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"a\"\n\
         [[listener]]\nname = \"vip-udp\"\nvips = [\"192.0.2.1\", \"2001:db8::1\"]\nprotocol = \"udp\"\nport = 53\ntarget_group = \"a\"\n\
         [[listener]]\nname = \"frag-tcp\"\nvips = [\"192.0.2.50\", \"2001:db8::50\"]\nprotocol = \"tcp\"\nport = 80\nfragments = \"hash_addresses\"\ntarget_group = \"f\"\n\
         [[listener]]\nname = \"frag-udp\"\nvips = [\"192.0.2.50\", \"2001:db8::50\"]\nprotocol = \"udp\"\nport = 53\nfragments = \"hash_addresses\"\ntarget_group = \"f\"\n\
         [[listener]]\nname = \"any-tcp\"\nvips = [\"192.0.2.60\"]\nprotocol = \"tcp\"\nall_ports = true\ntarget_group = \"a\"\n\
         [[listener]]\nname = \"two-a\"\nvips = [\"192.0.2.70\"]\nprotocol = \"udp\"\nport = 53\nfragments = \"hash_addresses\"\ntarget_group = \"f\"\n\
         [[listener]]\nname = \"two-b\"\nvips = [\"192.0.2.70\"]\nprotocol = \"udp\"\nport = 54\nfragments = \"hash_addresses\"\ntarget_group = \"f\"\n\
         [[target_group]]\nname = \"a\"\n[[target_group.backend]]\naddress = \"10.9.0.1\"\ntunnel = \"ipip\"\n\
         [[target_group]]\nname = \"f\"\n"
    );
    for i in 1..=8 {
        t += &format!("[[target_group.backend]]\naddress = \"10.7.0.{i}\"\ntunnel = \"ipip\"\n");
    }
    t
}

/// The snapshot: MTU 1500, IP-in-IP to IPv4 backends (20 bytes of overhead).
fn snapshot_with(encap_extra: &str) -> Snapshot {
    let cfg = dnlb_config::parse(Path::new("hostile.toml"), &config_text(encap_extra))
        .unwrap_or_else(|e| panic!("{e}"));
    Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap()
}

fn snapshot() -> Snapshot {
    snapshot_with("")
}

fn listener<'a>(snap: &'a Snapshot, name: &str) -> &'a dnlb_lb::snapshot::ListenerState {
    snap.listeners
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no listener {name}"))
}

/// The one backend of group `a` (listeners `vip-tcp`, `vip-udp`, `any-tcp`).
fn backend_a(snap: &Snapshot) -> BackendId {
    listener(snap, "vip-tcp").table.entries()[0]
}

/// The backend a fragment from `src` to `dst` goes to on a `hash_addresses`
/// listener.
fn frag_backend4(snap: &Snapshot, name: &str, dst: [u8; 4], proto: u8) -> BackendId {
    listener(snap, name)
        .table
        .lookup(hash::addr_hash_v4(CLIENT4, dst, proto))
        .unwrap()
}

fn frag_backend6(snap: &Snapshot, dst: [u8; 16], proto: u8) -> BackendId {
    listener(snap, "frag-udp")
        .table
        .lookup(hash::addr_hash_v6(CLIENT6, dst, proto))
        .unwrap()
}

// ---------------------------------------------------------------------------
// The table and its runner.

struct Case {
    name: String,
    input: Vec<u8>,
    want: Action,
    /// For [`Action::Encapsulated`]: the inner packet the tunnel must carry.
    inner: Option<Vec<u8>>,
}

impl Case {
    fn drop(name: impl Into<String>, input: Vec<u8>, reason: DropReason) -> Case {
        Case {
            name: name.into(),
            input,
            want: Action::Drop(reason),
            inner: None,
        }
    }

    fn host(name: impl Into<String>, input: Vec<u8>) -> Case {
        Case {
            name: name.into(),
            input,
            want: Action::NotForVip,
            inner: None,
        }
    }

    fn reply(name: impl Into<String>, input: Vec<u8>) -> Case {
        Case {
            name: name.into(),
            input,
            want: Action::Reply,
            inner: None,
        }
    }

    /// Forwarded to `backend`, the tunnel carrying the input's IP packet as
    /// its length field says (without Ethernet padding).
    fn fwd(name: impl Into<String>, input: Vec<u8>, backend: BackendId) -> Case {
        let inner = ip_packet(&input);
        Case {
            name: name.into(),
            input,
            want: Action::Encapsulated(backend),
            inner: Some(inner),
        }
    }
}

/// The IP packet of a (well-formed) frame: after up to two VLAN tags, as
/// long as its IPv4 total length / IPv6 payload length says.
fn ip_packet(frame: &[u8]) -> Vec<u8> {
    let mut at = 12;
    while at < 20
        && matches!(
            u16::from_be_bytes([frame[at], frame[at + 1]]),
            0x8100 | 0x88a8
        )
    {
        at += 4;
    }
    let ip = &frame[at + 2..];
    let len = if ip[0] >> 4 == 4 {
        u16::from_be_bytes([ip[2], ip[3]]) as usize
    } else {
        40 + u16::from_be_bytes([ip[4], ip[5]]) as usize
    };
    ip[..len].to_vec()
}

/// The IP source address of a (well-formed) frame, as bytes.
fn ip_src(frame: &[u8]) -> Vec<u8> {
    let ip = ip_packet(frame);
    if ip[0] >> 4 == 4 {
        ip[12..16].to_vec()
    } else {
        ip[8..24].to_vec()
    }
}

/// Checks an encapsulated frame with etherparse: untagged Ethernet to the
/// next hop, an IPv4 header with a valid checksum from `encap.source_v4` to
/// the backend's address, IP-in-IP (4) or IPv6-in-IPv4 (41), and exactly
/// `inner` after it.
fn check_encap(
    snap: &Snapshot,
    out: &[u8],
    backend: BackendId,
    inner: &[u8],
) -> Result<(), String> {
    let p = SlicedPacket::from_ethernet(out).map_err(|e| format!("output does not parse: {e}"))?;
    if p.vlan.is_some() {
        return Err("output carries a VLAN tag".into());
    }
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
        return Err("no Ethernet II header".into());
    };
    if eth.destination() != ROUTER_MAC || eth.source() != GW_MAC {
        return Err(format!(
            "MACs {:02x?} -> {:02x?}",
            eth.source(),
            eth.destination()
        ));
    }
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return Err("outer header is not IPv4".into());
    };
    let h = ip.header().to_header();
    if h.header_checksum != h.calc_header_checksum() {
        return Err("outer IPv4 checksum wrong".into());
    }
    let want_dst = match snap.backend(backend).map(|b| b.address) {
        Some(std::net::IpAddr::V4(a)) => a.octets(),
        other => return Err(format!("backend {backend:?}: {other:?}")),
    };
    if h.source != SRC4 || h.destination != want_dst {
        return Err(format!(
            "outer {:?} -> {:?}, want {SRC4:?} -> {want_dst:?}",
            h.source, h.destination
        ));
    }
    let want_proto = if inner[0] >> 4 == 6 { 41 } else { 4 };
    if ip.payload().ip_number != IpNumber(want_proto) {
        return Err(format!("outer protocol {:?}", ip.payload().ip_number));
    }
    if ip.payload().payload != inner {
        return Err(format!(
            "inner packet differs\n    got  {:02x?}\n    want {:02x?}",
            ip.payload().payload,
            inner
        ));
    }
    if out.len() != 14 + 20 + inner.len() {
        return Err(format!(
            "{} bytes after the inner packet",
            out.len() as isize - (14 + 20 + inner.len()) as isize
        ));
    }
    Ok(())
}

/// Checks a reply with etherparse: it parses, is ICMP (echo reply,
/// fragmentation needed or packet too big) and goes back to the input's
/// source.
fn check_reply(input: &[u8], out: &[u8]) -> Result<(), String> {
    let p = SlicedPacket::from_ethernet(out).map_err(|e| format!("reply does not parse: {e}"))?;
    let dst = match &p.net {
        Some(NetSlice::Ipv4(ip)) => ip.header().destination().to_vec(),
        Some(NetSlice::Ipv6(ip)) => ip.header().destination().to_vec(),
        None => return Err("reply has no IP header".into()),
    };
    if dst != ip_src(input) {
        return Err(format!("reply to {dst:?}"));
    }
    match &p.transport {
        Some(TransportSlice::Icmpv4(m)) if matches!(m.type_u8(), 0 | 3) => Ok(()),
        Some(TransportSlice::Icmpv6(m)) if matches!(m.type_u8(), 129 | 2) => Ok(()),
        _ => Err("reply is not an ICMP echo reply / too-big".into()),
    }
}

/// Runs each case on a fresh processor; returns how many ran.
fn run(snap: &Snapshot, cases: &[Case]) -> usize {
    let mut failures = Vec::new();
    for c in cases {
        let mut p = Processor::new(4096, 1);
        p.adopt(snap);
        let mut pkt = VecPacket::new(&c.input);
        let hint = p.prepare(&pkt);
        let got = p.process_hinted(snap, &mut pkt, GW_MAC, 1000, hint);
        if got != c.want {
            failures.push(format!("{}: got {got:?}, want {:?}", c.name, c.want));
            continue;
        }
        let checked = match got {
            Action::Encapsulated(b) => check_encap(snap, pkt.data(), b, c.inner.as_ref().unwrap()),
            Action::Reply => check_reply(&c.input, pkt.data()),
            // Left to the host: untouched.
            Action::NotForVip if pkt.data() != &c.input[..] => Err("frame was changed".into()),
            _ => Ok(()),
        };
        if let Err(e) = checked {
            failures.push(format!("{}: {e}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    cases.len()
}

// ---------------------------------------------------------------------------
// Frame builders (etherparse), and the byte surgery on them.

fn tcp4_to(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(src, dst, 61)
        .tcp(sport, dport, 1, 1000)
        .ack(1)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn tcp4(dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    tcp4_to(CLIENT4, dst, 40000, dport, payload)
}

fn udp4_ports(dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(CLIENT4, dst, 61)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn udp4(dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    udp4_ports(dst, 40000, dport, payload)
}

fn tcp6_to(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv6(src, dst, 61)
        .tcp(sport, dport, 1, 1000)
        .ack(1)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn tcp6(dst: [u8; 16], dport: u16, payload: &[u8]) -> Vec<u8> {
    tcp6_to(CLIENT6, dst, 40000, dport, payload)
}

fn udp6_ports(dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv6(CLIENT6, dst, 61)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn udp6(dst: [u8; 16], dport: u16, payload: &[u8]) -> Vec<u8> {
    udp6_ports(dst, 40000, dport, payload)
}

fn echo4(dst: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(CLIENT4, dst, 64)
        .icmpv4_echo_request(9, 1)
        .write(&mut out, data)
        .unwrap();
    out
}

fn echo6(dst: [u8; 16], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv6(CLIENT6, dst, 64)
        .icmpv6_echo_request(9, 1)
        .write(&mut out, data)
        .unwrap();
    out
}

/// `frame` with VLAN tags (TPID, VLAN id) inserted after the MACs.
fn tagged(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    for &(tpid, vid) in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&vid.to_be_bytes());
    }
    out.extend_from_slice(&frame[12..]);
    out
}

/// Recomputes the IPv4 header checksum at `l2` (if the header is there).
fn fix_ip4_csum(f: &mut [u8], l2: usize) {
    let ihl = (f[l2] & 0x0f) as usize * 4;
    if ihl < 20 || f.len() < l2 + ihl {
        return;
    }
    f[l2 + 10..l2 + 12].fill(0);
    let c = Sum16BitWords::new()
        .add_slice(&f[l2..l2 + ihl])
        .ones_complement()
        .to_be();
    f[l2 + 10..l2 + 12].copy_from_slice(&c.to_be_bytes());
}

/// `frame` (IPv4 at 14) with `edit` applied to its IP header bytes, the
/// header checksum recomputed.
fn edit4(mut frame: Vec<u8>, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    edit(&mut frame[14..]);
    fix_ip4_csum(&mut frame, 14);
    frame
}

fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// An IPv4 datagram from the client to `dst` with the fragment fields set:
/// `off` in bytes, the more-fragments flag, DF.
fn frag4(dst: [u8; 4], proto: u8, off: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    common::ipv4_fragment(CLIENT4, dst, proto, off, more, payload)
}

/// An IPv6 extension header to insert with [`with_exts`].
#[derive(Clone, Copy)]
enum Ext {
    /// Hop-by-hop options, this many bytes (a multiple of 8), PadN-filled.
    Hop(usize),
    /// Destination options, likewise.
    Dst(usize),
    /// A routing header (experimental type 253, segments left 0: ignored).
    Rt,
    /// A fragment header: offset in bytes, more-fragments flag.
    Frag(u16, bool),
}

impl Ext {
    fn kind(self) -> u8 {
        match self {
            Ext::Hop(_) => 0,
            Ext::Dst(_) => 60,
            Ext::Rt => 43,
            Ext::Frag(..) => 44,
        }
    }

    fn bytes(self, next: u8) -> Vec<u8> {
        match self {
            Ext::Hop(n) | Ext::Dst(n) => {
                assert!(n >= 8 && n % 8 == 0 && n <= 2048);
                // Next header, length in 8-byte units past the first, then
                // PadN options (at most 257 bytes each) filling the rest.
                let mut b = vec![next, (n / 8 - 1) as u8];
                while b.len() < n {
                    let chunk = (n - b.len()).min(257);
                    b.extend_from_slice(&[1, (chunk - 2) as u8]);
                    b.resize(b.len() + chunk - 2, 0);
                }
                b
            }
            Ext::Rt => vec![next, 0, 253, 0, 0, 0, 0, 0],
            Ext::Frag(off, more) => {
                let word = off & 0xfff8 | more as u16;
                let mut b = vec![next, 0];
                b.extend_from_slice(&word.to_be_bytes());
                b.extend_from_slice(&0x0000_5678u32.to_be_bytes()); // identification
                b
            }
        }
    }
}

/// An IPv6 frame (IPv6 at 14, no padding) with extension headers inserted
/// between the fixed header and its payload; next headers and the payload
/// length are fixed up.
fn with_exts(frame: &[u8], exts: &[Ext]) -> Vec<u8> {
    let upper = frame[14 + 6];
    let mut out = frame[..54].to_vec();
    out[14 + 6] = exts.first().map_or(upper, |e| e.kind());
    for (i, e) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(upper, |e| e.kind());
        out.extend_from_slice(&e.bytes(next));
    }
    out.extend_from_slice(&frame[54..]);
    let pl = (out.len() - 54) as u16;
    set_u16(&mut out, 14 + 4, pl);
    out
}

/// An IPv6 fragment from the client to `dst` (fragment header by hand).
fn frag6(dst: [u8; 16], next: u8, off: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    Ethernet2Header {
        destination: GW_MAC,
        source: ROUTER_MAC,
        ether_type: EtherType::IPV6,
    }
    .write(&mut f)
    .unwrap();
    Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: (8 + payload.len()) as u16,
        next_header: IpNumber(44),
        hop_limit: 61,
        source: CLIENT6,
        destination: dst,
    }
    .write(&mut f)
    .unwrap();
    f.extend_from_slice(&Ext::Frag(off, more).bytes(next));
    f.extend_from_slice(payload);
    f
}

// ---------------------------------------------------------------------------
// Truncation at every length.

/// What a frame is, for working out the reason of each cut.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// TCP or UDP to a listener: forwarded when whole.
    Flow,
    /// ICMP echo request to a VIP: answered when whole.
    Echo,
}

struct Layout {
    name: &'static str,
    frame: Vec<u8>,
    /// Ethernet header with tags.
    l2: usize,
    /// IP header.
    l3: usize,
    /// Transport header (TCP 20, UDP 8, ICMP 8).
    l4: usize,
    /// UDP: the UDP length field is rewritten with the cut too.
    udp: bool,
    kind: Kind,
}

fn layouts() -> Vec<Layout> {
    let data = b"hostile!";
    let l = |name, frame, l2, l3, l4, udp, kind| Layout {
        name,
        frame,
        l2,
        l3,
        l4,
        udp,
        kind,
    };
    vec![
        l(
            "v4 tcp",
            tcp4(VIP4, 80, data),
            14,
            20,
            20,
            false,
            Kind::Flow,
        ),
        l("v4 udp", udp4(VIP4, 53, data), 14, 20, 8, true, Kind::Flow),
        l(
            "v6 tcp",
            tcp6(vip6(), 80, data),
            14,
            40,
            20,
            false,
            Kind::Flow,
        ),
        l(
            "v6 udp",
            udp6(vip6(), 53, data),
            14,
            40,
            8,
            true,
            Kind::Flow,
        ),
        l(
            "802.1Q v4 tcp",
            tagged(&tcp4(VIP4, 80, data), &[(0x8100, 100)]),
            18,
            20,
            20,
            false,
            Kind::Flow,
        ),
        l(
            "QinQ v6 udp",
            tagged(&udp6(vip6(), 53, data), &[(0x88a8, 10), (0x8100, 100)]),
            22,
            40,
            8,
            true,
            Kind::Flow,
        ),
        l("v4 echo", echo4(VIP4, data), 14, 20, 8, false, Kind::Echo),
        l("v6 echo", echo6(vip6(), data), 14, 40, 8, false, Kind::Echo),
    ]
}

/// Plain cuts: every length from 0 to full-1, the headers untouched. Up to
/// the end of the Ethernet header (and its tags) the reason is MalformedL2;
/// from there on it is MalformedL3 — even inside the TCP/UDP/ICMP header,
/// because the IP length field then claims more than the frame holds, which
/// is caught first (a frame shorter than its IP packet is a broken IP
/// packet, whatever else is cut).
#[test]
fn truncated_at_every_length() {
    let snap = snapshot();
    let mut cases = Vec::new();
    for lay in layouts() {
        for cut in 0..lay.frame.len() {
            let reason = if cut < lay.l2 {
                MalformedL2
            } else {
                MalformedL3
            };
            cases.push(Case::drop(
                format!("{} cut at {cut}", lay.name),
                lay.frame[..cut].to_vec(),
                reason,
            ));
        }
    }
    let n = run(&snap, &cases);
    assert_eq!(n, layouts().iter().map(|l| l.frame.len()).sum::<usize>());
}

/// `lay.frame` with its IP length field (and UDP length) saying the IP
/// packet is `ip_len` bytes, the frame cut at `cut`.
fn with_ip_len(lay: &Layout, ip_len: usize, cut: usize) -> Vec<u8> {
    let ip_at = lay.l2;
    let mut f = lay.frame[..cut].to_vec();
    if lay.l3 == 20 {
        set_u16(&mut f, ip_at + 2, ip_len as u16);
        fix_ip4_csum(&mut f, ip_at);
    } else {
        set_u16(&mut f, ip_at + 4, (ip_len - 40) as u16);
    }
    let l4_len = ip_len - lay.l3;
    if lay.udp && l4_len >= 8 {
        set_u16(&mut f, ip_at + lay.l3 + 4, l4_len as u16);
    }
    f
}

/// What a packet of layout `lay` whose IP packet is `ip_len` bytes (header
/// whole) should get: MalformedL4 inside the transport header, else
/// forwarded (or an echo answered) with exactly those `ip_len` bytes inside.
fn by_l4_len(lay: &Layout, name: String, f: Vec<u8>, ip_len: usize, a: BackendId) -> Case {
    if ip_len - lay.l3 < lay.l4 {
        Case::drop(name, f, MalformedL4)
    } else if lay.kind == Kind::Flow {
        Case::fwd(name, f, a)
    } else {
        Case::reply(name, f)
    }
}

/// Cuts past the IP header with the IP length (and the UDP length) written
/// to match: a cut inside the transport header is MalformedL4; a cut inside
/// the data leaves a smaller valid packet, forwarded whole (or an echo
/// answered).
#[test]
fn truncated_with_consistent_lengths() {
    let snap = snapshot();
    let a = backend_a(&snap);
    let mut cases = Vec::new();
    for lay in layouts() {
        for cut in lay.l2 + lay.l3..lay.frame.len() {
            let ip_len = cut - lay.l2;
            let f = with_ip_len(&lay, ip_len, cut);
            let name = format!("{} cut at {cut}, lengths fixed", lay.name);
            cases.push(by_l4_len(&lay, name, f, ip_len, a));
        }
    }
    run(&snap, &cases);
}

/// The frame left whole but the IP length field (and UDP length) shortened
/// to every value: what follows the IP packet is then Ethernet padding. A
/// length inside the IP header is MalformedL3 (IPv4 total length < IHL);
/// inside the transport header MalformedL4, even though the frame holds the
/// rest of the header (it must not be read from the padding); past it, the
/// packet is forwarded and the tunnel carries only `ip_len` bytes.
#[test]
fn truncated_by_the_length_field_only() {
    let snap = snapshot();
    let a = backend_a(&snap);
    let mut cases = Vec::new();
    for lay in layouts() {
        let full = lay.frame.len() - lay.l2;
        if lay.l3 == 20 {
            for ip_len in 0..20 {
                let mut f = lay.frame.clone();
                set_u16(&mut f, lay.l2 + 2, ip_len as u16);
                fix_ip4_csum(&mut f, lay.l2);
                cases.push(Case::drop(
                    format!("{} total length {ip_len}", lay.name),
                    f,
                    MalformedL3,
                ));
            }
        }
        for ip_len in lay.l3..full {
            let f = with_ip_len(&lay, ip_len, lay.frame.len());
            let name = format!("{} ip length {ip_len} of {full}", lay.name);
            cases.push(by_l4_len(&lay, name, f, ip_len, a));
        }
    }
    run(&snap, &cases);
}

// ---------------------------------------------------------------------------
// IP header fields.

#[test]
fn bad_ipv4_headers_and_lengths() {
    let snap = snapshot();
    let a = backend_a(&snap);
    let base = || tcp4(VIP4, 80, b"data");
    let mut cases = Vec::new();
    for ihl in 0..5u8 {
        cases.push(Case::drop(
            format!("ihl {ihl}"),
            edit4(base(), |ip| ip[0] = 0x40 | ihl),
            MalformedL3,
        ));
    }
    cases.extend([
        // IHL 15 (60 bytes) but the frame holds only 44 bytes of IP.
        Case::drop(
            "ihl 15 beyond the frame",
            edit4(base(), |ip| ip[0] = 0x4f),
            MalformedL3,
        ),
        // IHL 6 (24 bytes) with a total length of 20.
        Case::drop(
            "ihl 6 beyond the total length",
            edit4(base(), |ip| {
                ip[0] = 0x46;
                set_u16(ip, 2, 20);
            }),
            MalformedL3,
        ),
        // IHL 6 within the packet: the ports are read as options and the
        // TCP "header" starts at the sequence number (1: ports 0 -> 1). Its
        // data offset byte (the checksum's high byte) is forced to 5 words
        // here; there is no telling such a packet from a valid one with
        // options, so it goes where its misread ports say: no listener.
        Case::drop(
            "ihl 6 eating into the tcp header",
            edit4(base(), |ip| {
                ip[0] = 0x46;
                ip[24 + 12] = 0x50;
            }),
            NoListener,
        ),
        // The same with the misread data offset claiming 60 bytes.
        Case::drop(
            "ihl 6 eating into the tcp header, bad data offset",
            edit4(base(), |ip| {
                ip[0] = 0x46;
                ip[24 + 12] = 0xf0;
            }),
            MalformedL4,
        ),
        Case::drop(
            "total length 0",
            edit4(base(), |ip| set_u16(ip, 2, 0)),
            MalformedL3,
        ),
        Case::drop(
            "total length 19 < ihl",
            edit4(base(), |ip| set_u16(ip, 2, 19)),
            MalformedL3,
        ),
        // Header only: no TCP header at all.
        Case::drop(
            "total length = ihl (no tcp header)",
            edit4(base(), |ip| set_u16(ip, 2, 20)),
            MalformedL4,
        ),
        Case::drop(
            "total length 1 beyond the frame",
            edit4(base(), |ip| set_u16(ip, 2, 45)),
            MalformedL3,
        ),
        Case::drop(
            "total length 65535 in a short frame",
            edit4(base(), |ip| set_u16(ip, 2, 65535)),
            MalformedL3,
        ),
    ]);
    for v in [0u8, 5, 6, 15] {
        cases.push(Case::drop(
            format!("version {v} in an IPv4 ethertype"),
            edit4(base(), |ip| ip[0] = v << 4 | 5),
            MalformedL3,
        ));
    }
    // A whole, valid IPv6 packet behind the IPv4 EtherType, and the reverse.
    let mut v6_in_v4 = tcp6(vip6(), 80, b"data");
    set_u16(&mut v6_in_v4, 12, 0x0800);
    let mut v4_in_v6 = base();
    set_u16(&mut v4_in_v6, 12, 0x86dd);
    cases.push(Case::drop(
        "ipv6 packet, ipv4 ethertype",
        v6_in_v4,
        MalformedL3,
    ));
    cases.push(Case::drop(
        "ipv4 packet, ipv6 ethertype",
        v4_in_v6,
        MalformedL3,
    ));
    // IPv6 version field and payload length.
    let b6 = || tcp6(vip6(), 80, b"data");
    for v in [0u8, 4, 7] {
        let mut f = b6();
        f[14] = v << 4 | (f[14] & 0x0f);
        cases.push(Case::drop(format!("ipv6 version {v}"), f, MalformedL3));
    }
    for pl in [25u16, 1000, 65535] {
        let mut f = b6();
        set_u16(&mut f, 14 + 4, pl);
        cases.push(Case::drop(
            format!("ipv6 payload length {pl} beyond the frame (24)"),
            f,
            MalformedL3,
        ));
    }
    // IPv6 payload length 0 (a jumbogram claim without its option): the TCP
    // bytes after the header are outside the packet, so there is no header.
    let mut jumbo = b6();
    set_u16(&mut jumbo, 14 + 4, 0);
    cases.push(Case::drop("ipv6 payload length 0", jumbo, MalformedL4));
    // Valid IPv4 options (IHL 6: three NOPs and an end of list) are carried
    // as they are.
    let mut opts = base();
    opts.splice(34..34, [1, 1, 1, 0]); // NOP NOP NOP EOL
    let opts = edit4(opts, |ip| {
        ip[0] = 0x46;
        let tl = u16::from_be_bytes([ip[2], ip[3]]) + 4;
        set_u16(ip, 2, tl);
    });
    cases.push(Case::fwd("ipv4 options (ihl 6), valid", opts, a));
    // UDP lengths: below its header, beyond the IP payload, and shorter
    // than the IP payload (trailing bytes inside the IP packet: forwarded
    // whole, as IP says).
    let mut u = udp4(VIP4, 53, b"data");
    set_u16(&mut u, 34 + 4, 7);
    cases.push(Case::drop("udp length 7", u, MalformedL4));
    let mut u = udp4(VIP4, 53, b"data");
    set_u16(&mut u, 34 + 4, 13);
    cases.push(Case::drop(
        "udp length beyond the ip payload",
        u,
        MalformedL4,
    ));
    let mut u = udp4(VIP4, 53, b"data");
    set_u16(&mut u, 34 + 4, 8);
    cases.push(Case::fwd("udp length shorter than the ip payload", u, a));
    // TCP data offset below 5 and beyond the segment.
    let mut t = base();
    t[34 + 12] = 0x40;
    cases.push(Case::drop("tcp data offset 4", t, MalformedL4));
    let mut t = base();
    t[34 + 12] = 0x70;
    cases.push(Case::drop(
        "tcp data offset 7 beyond the segment",
        t,
        MalformedL4,
    ));
    run(&snap, &cases);
}

/// Ethernet padding (frame longer than the IP packet): forwarded, and the
/// tunnel carries the IP packet only. The padding is 0xAA so that a leak
/// would show.
#[test]
fn ethernet_padding_is_forwarded_but_not_tunnelled() {
    let snap = snapshot();
    let a = backend_a(&snap);
    let pad = |mut f: Vec<u8>, to: usize| {
        f.resize(to, 0xaa);
        f
    };
    let cases = vec![
        Case::fwd("v4 udp padded to 60", pad(udp4(VIP4, 53, b"x"), 60), a),
        Case::fwd("v4 tcp padded to 60", pad(tcp4(VIP4, 80, &[]), 60), a),
        // A 9000-byte frame is not too big for the 1500-byte MTU when its
        // IP packet is small: only the IP packet is tunnelled.
        Case::fwd(
            "9000-byte frame, 45-byte packet",
            pad(tcp4(VIP4, 80, b"hello"), 9000),
            a,
        ),
        Case::fwd(
            "v4 tcp + 1000 bytes of junk",
            pad(tcp4(VIP4, 80, b"hi"), 1056),
            a,
        ),
        Case::fwd("v6 udp padded to 80", pad(udp6(vip6(), 53, b"x"), 80), a),
        Case::fwd("v6 tcp + 500 bytes", pad(tcp6(vip6(), 80, b"hi"), 576), a),
        Case::fwd(
            "802.1Q v4 udp padded to 64",
            pad(tagged(&udp4(VIP4, 53, b"x"), &[(0x8100, 7)]), 64),
            a,
        ),
        Case::fwd(
            "QinQ v4 tcp padded to 100",
            pad(
                tagged(&tcp4(VIP4, 80, &[]), &[(0x88a8, 7), (0x8100, 8)]),
                100,
            ),
            a,
        ),
        Case::fwd(
            "v4 fragment padded to 60",
            pad(frag4(FRAG4, 17, 8, false, &[1; 8]), 60),
            frag_backend4(&snap, "frag-udp", FRAG4, 17),
        ),
        Case::fwd(
            "v6 with an extension header, padded",
            pad(with_exts(&tcp6(vip6(), 80, b"hi"), &[Ext::Hop(8)]), 200),
            a,
        ),
        // An echo answered from a padded request: the reply keeps the
        // frame's length (the padding stays padding after the IP packet).
        Case::reply("v4 echo padded to 60", pad(echo4(VIP4, b"p"), 60)),
    ];
    run(&snap, &cases);
}

// ---------------------------------------------------------------------------
// IPv6 extension headers.

#[test]
fn ipv6_extension_header_chains() {
    let snap = snapshot();
    let a = backend_a(&snap);
    let t = || tcp6(vip6(), 80, b"data");
    let u = || udp6(vip6(), 53, b"data");
    let mut cases = vec![
        Case::fwd("hop-by-hop, tcp", with_exts(&t(), &[Ext::Hop(8)]), a),
        Case::fwd(
            "hop-by-hop, dest opts, routing, atomic fragment, dest opts, udp",
            with_exts(
                &u(),
                &[
                    Ext::Hop(16),
                    Ext::Dst(8),
                    Ext::Rt,
                    Ext::Frag(0, false),
                    Ext::Dst(24),
                ],
            ),
            a,
        ),
        Case::fwd(
            "a 1400-byte hop-by-hop header",
            with_exts(&t(), &[Ext::Hop(1400)]),
            a,
        ),
        // The largest one (2048 bytes) makes the packet too big for the
        // 1500-byte MTU once encapsulated: answered, not forwarded.
        Case::reply(
            "a 2048-byte hop-by-hop header",
            with_exts(&t(), &[Ext::Hop(2048)]),
        ),
        // The parser takes 8 extension headers and no more
        // (dnlb_wire::ipv6::MAX_EXTENSION_HEADERS).
        Case::fwd("8 extension headers", with_exts(&t(), &[Ext::Dst(8); 8]), a),
        Case::drop(
            "9 extension headers",
            with_exts(&t(), &[Ext::Dst(8); 9]),
            MalformedL3,
        ),
        Case::drop(
            "64 extension headers",
            with_exts(&t(), &[Ext::Dst(8); 64]),
            MalformedL3,
        ),
        Case::drop(
            "9 extension headers, the last an atomic fragment",
            with_exts(
                &t(),
                &[
                    Ext::Dst(8),
                    Ext::Dst(8),
                    Ext::Dst(8),
                    Ext::Dst(8),
                    Ext::Dst(8),
                    Ext::Dst(8),
                    Ext::Dst(8),
                    Ext::Dst(8),
                    Ext::Frag(0, false),
                ],
            ),
            MalformedL3,
        ),
        // Hop-by-hop anywhere but first is against RFC 8200; the parser
        // follows it anyway (lenient: the backend's stack decides).
        Case::fwd(
            "hop-by-hop after a destination options header",
            with_exts(&t(), &[Ext::Dst(8), Ext::Hop(8)]),
            a,
        ),
        // An echo behind extension headers is answered.
        Case::reply(
            "echo behind hop-by-hop and dest opts",
            with_exts(&echo6(vip6(), b"ping"), &[Ext::Hop(8), Ext::Dst(8)]),
        ),
    ];
    // Truncated extension headers: the payload length ends inside them.
    let base = with_exts(&t(), &[Ext::Dst(16)]);
    for keep in [0usize, 1, 2, 8, 15] {
        let mut f = base[..54 + keep].to_vec();
        set_u16(&mut f, 18, keep as u16);
        cases.push(Case::drop(
            format!("16-byte dest opts cut to {keep} bytes"),
            f,
            MalformedL3,
        ));
    }
    let base = with_exts(&t(), &[Ext::Hop(8), Ext::Frag(0, false)]);
    for keep in [9usize, 12, 15] {
        let mut f = base[..54 + keep].to_vec();
        set_u16(&mut f, 18, keep as u16);
        cases.push(Case::drop(
            format!("fragment header cut to {} bytes", keep - 8),
            f,
            MalformedL3,
        ));
    }
    // The chain is whole but the TCP header after it is not.
    let base = with_exts(&t(), &[Ext::Hop(8), Ext::Dst(8)]);
    for keep in [16usize, 17, 35] {
        let mut f = base[..54 + keep].to_vec();
        set_u16(&mut f, 18, keep as u16);
        cases.push(Case::drop(
            format!("tcp cut to {} bytes after two extension headers", keep - 16),
            f,
            MalformedL4,
        ));
    }
    // Next header 59 (no next header): nothing to balance on. To a VIP it
    // counts as a protocol with no listener; elsewhere it is the host's.
    let mut nnh = t();
    nnh[14 + 6] = 59;
    cases.push(Case::drop(
        "next header 59 to a VIP",
        nnh.clone(),
        NoListener,
    ));
    cases.push(Case::drop(
        "hop-by-hop then 59 to a VIP",
        with_exts(&nnh, &[Ext::Hop(8)]),
        NoListener,
    ));
    let mut nnh_host = tcp6(v6(0x99), 80, b"data");
    nnh_host[14 + 6] = 59;
    cases.push(Case::host("next header 59 to another address", nnh_host));
    let mut empty = nnh.clone();
    empty.truncate(54);
    set_u16(&mut empty, 18, 0);
    cases.push(Case::drop(
        "next header 59, empty payload",
        empty,
        NoListener,
    ));
    // ESP (50): not followed, no listener for it.
    let mut esp = t();
    esp[14 + 6] = 50;
    cases.push(Case::drop("esp to a VIP", esp, NoListener));
    // A routing header with segments left 1: the VIP is not the packet's
    // final destination. dnlb does not look (the backend's stack decides).
    let mut rt = with_exts(&t(), &[Ext::Rt]);
    rt[54 + 3] = 1;
    cases.push(Case::fwd("routing header, segments left 1", rt, a));
    // A first fragment whose header chain does not fit in it (RFC 7112
    // forbids it): the chain is walked into the missing bytes.
    let mut f = with_exts(&u(), &[Ext::Frag(0, true), Ext::Dst(16)]);
    f.truncate(54 + 8 + 8);
    set_u16(&mut f, 18, 16);
    cases.push(Case::drop(
        "first fragment with its header chain cut (RFC 7112)",
        f,
        MalformedL3,
    ));
    // Two fragment headers (RFC 8200: at most one). Whichever carries the
    // more-fragments flag, the packet is a fragment: on this listener
    // (fragments = "drop") it is dropped, not balanced as a whole packet.
    cases.push(Case::drop(
        "atomic fragment header, then a first-fragment header",
        with_exts(&u(), &[Ext::Frag(0, false), Ext::Frag(0, true)]),
        Fragment,
    ));
    cases.push(Case::drop(
        "first-fragment header, then an atomic one",
        with_exts(&u(), &[Ext::Frag(0, true), Ext::Frag(0, false)]),
        Fragment,
    ));
    run(&snap, &cases);
}

// ---------------------------------------------------------------------------
// TTL, hop limit, ports.

/// TTL / hop limit 0 and 1 to a VIP: dnlb is not a router hop for the inner
/// packet. Like other L4 load balancers (Katran, Maglev) it encapsulates
/// without decrementing or checking; the inner packet reaches the backend
/// byte for byte, TTL included (the outer header has its own TTL).
#[test]
fn ttl_and_hop_limit_0_and_1_are_forwarded_unchanged() {
    let snap = snapshot();
    let a = backend_a(&snap);
    let mut cases = Vec::new();
    for ttl in [0u8, 1] {
        cases.push(Case::fwd(
            format!("v4 tcp ttl {ttl}"),
            edit4(tcp4(VIP4, 80, b"x"), |ip| ip[8] = ttl),
            a,
        ));
        cases.push(Case::fwd(
            format!("v4 udp ttl {ttl}"),
            edit4(udp4(VIP4, 53, b"x"), |ip| ip[8] = ttl),
            a,
        ));
        let mut f = tcp6(vip6(), 80, b"x");
        f[14 + 7] = ttl;
        cases.push(Case::fwd(format!("v6 tcp hop limit {ttl}"), f, a));
        let mut f = udp6(vip6(), 53, b"x");
        f[14 + 7] = ttl;
        cases.push(Case::fwd(format!("v6 udp hop limit {ttl}"), f, a));
        // An echo with TTL 0/1 is answered (the reply has its own TTL).
        cases.push(Case::reply(
            format!("v4 echo ttl {ttl}"),
            edit4(echo4(VIP4, b"p"), |ip| ip[8] = ttl),
        ));
    }
    run(&snap, &cases);
}

/// Port 0. dnlb does not treat it specially: a source port 0 is balanced
/// like any other (the backend's stack decides), a destination port 0 has
/// no listener unless one serves every port.
#[test]
fn port_zero() {
    let snap = snapshot();
    let a = backend_a(&snap);
    let cases = vec![
        Case::fwd(
            "v4 tcp source port 0",
            tcp4_to(CLIENT4, VIP4, 0, 80, b"x"),
            a,
        ),
        Case::fwd("v4 udp source port 0", udp4_ports(VIP4, 0, 53, b"x"), a),
        Case::fwd(
            "v6 tcp source port 0",
            tcp6_to(CLIENT6, vip6(), 0, 80, b"x"),
            a,
        ),
        Case::fwd("v6 udp source port 0", udp6_ports(vip6(), 0, 53, b"x"), a),
        Case::drop("v4 tcp destination port 0", tcp4(VIP4, 0, b"x"), NoListener),
        Case::drop("v4 udp destination port 0", udp4(VIP4, 0, b"x"), NoListener),
        Case::drop(
            "v6 tcp destination port 0",
            tcp6(vip6(), 0, b"x"),
            NoListener,
        ),
        Case::drop(
            "v6 udp destination port 0",
            udp6(vip6(), 0, b"x"),
            NoListener,
        ),
        Case::drop(
            "v4 udp both ports 0",
            udp4_ports(VIP4, 0, 0, b"x"),
            NoListener,
        ),
        Case::fwd(
            "tcp destination port 0 on an all-ports listener",
            tcp4(ANY4, 0, b"x"),
            a,
        ),
        Case::fwd(
            "tcp ports 0 -> 0 on an all-ports listener",
            tcp4_to(CLIENT4, ANY4, 0, 0, b"x"),
            a,
        ),
    ];
    run(&snap, &cases);
}

// ---------------------------------------------------------------------------
// Fragments.

#[test]
fn tiny_overlapping_and_odd_fragments() {
    let snap = snapshot();
    // hash_addresses listeners: every fragment of a datagram from the client
    // goes to the backend of its addresses, whatever its size or offset.
    let fu = frag_backend4(&snap, "frag-udp", FRAG4, 17);
    let ft = frag_backend4(&snap, "frag-tcp", FRAG4, 6);
    let fu6 = frag_backend6(&snap, frag_vip6(), 17);
    let ft6 = frag_backend6(&snap, frag_vip6(), 6);
    let udp_hdr = [0x9c, 0x40, 0, 53, 0, 80, 0, 0]; // 40000 -> 53, length 80
    let mut cases = vec![
        // First fragments too short to hold the transport header: ports are
        // never read from a fragment, so nothing is misread.
        Case::fwd(
            "v4 first fragment, 0 bytes",
            frag4(FRAG4, 17, 0, true, &[]),
            fu,
        ),
        Case::fwd(
            "v4 first fragment, 2 bytes (half a port)",
            frag4(FRAG4, 17, 0, true, &udp_hdr[..2]),
            fu,
        ),
        Case::fwd(
            "v4 first tcp fragment, 8 bytes (ports, no flags)",
            frag4(FRAG4, 6, 0, true, &[0x9c, 0x40, 0, 80, 0, 0, 0, 1]),
            ft,
        ),
        Case::fwd(
            "v4 8-byte middle fragment",
            frag4(FRAG4, 17, 8, true, &[7; 8]),
            fu,
        ),
        Case::fwd(
            "v4 8-byte last fragment",
            frag4(FRAG4, 17, 16, false, &[7; 8]),
            fu,
        ),
        // Overlapping fragments (a second fragment at 8 rewriting bytes
        // 8..24 of a 24-byte first one): dnlb is stateless and cannot see
        // overlaps; both go to the same backend, whose reassembly (RFC 5722
        // for IPv6) discards them.
        Case::fwd("v4 overlap, first", frag4(FRAG4, 17, 0, true, &[1; 24]), fu),
        Case::fwd(
            "v4 overlap, second",
            frag4(FRAG4, 17, 8, false, &[2; 16]),
            fu,
        ),
        // MF with offset 0 is a first fragment (not a whole packet).
        Case::fwd(
            "v4 MF + offset 0 with a whole udp header",
            frag4(FRAG4, 17, 0, true, &udp_hdr),
            fu,
        ),
        // A fragment whose end passes 65535 (offset 65528 + 16 bytes,
        // "ping of death"): forwarded, left to the backend's reassembly.
        Case::fwd(
            "v4 fragment ending past 65535",
            frag4(FRAG4, 17, 65528, false, &[3; 16]),
            fu,
        ),
        Case::fwd(
            "v6 first fragment, 0 bytes",
            frag6(frag_vip6(), 17, 0, true, &[]),
            fu6,
        ),
        Case::fwd(
            "v6 first tcp fragment, 4 bytes",
            frag6(frag_vip6(), 6, 0, true, &[0x9c, 0x40, 0, 80]),
            ft6,
        ),
        Case::fwd(
            "v6 8-byte middle fragment",
            frag6(frag_vip6(), 17, 8, true, &[7; 8]),
            fu6,
        ),
        Case::fwd(
            "v6 overlap, first",
            frag6(frag_vip6(), 17, 0, true, &[1; 24]),
            fu6,
        ),
        Case::fwd(
            "v6 overlap, second",
            frag6(frag_vip6(), 17, 8, false, &[2; 16]),
            fu6,
        ),
        // Drop policy (listener vip-udp): first, middle and last all dropped
        // under Fragment, whatever their size.
        Case::drop(
            "v4 drop policy, tiny first",
            frag4(VIP4, 17, 0, true, &[]),
            Fragment,
        ),
        Case::drop(
            "v4 drop policy, MF + offset 0",
            frag4(VIP4, 17, 0, true, &udp_hdr),
            Fragment,
        ),
        Case::drop(
            "v4 drop policy, non-first",
            frag4(VIP4, 17, 8, false, &[7; 8]),
            Fragment,
        ),
        Case::drop(
            "v6 drop policy, non-first",
            frag6(vip6(), 17, 8, false, &[7; 8]),
            Fragment,
        ),
        Case::drop(
            "v6 drop policy, MF + offset 0",
            frag6(vip6(), 17, 0, true, &udp_hdr),
            Fragment,
        ),
        // Two UDP listeners on one VIP: a fragment cannot be told apart.
        Case::drop(
            "v4 two listeners, non-first",
            frag4(TWO4, 17, 8, false, &[7; 8]),
            FragmentAmbiguous,
        ),
        Case::drop(
            "v4 two listeners, first with its ports",
            frag4(TWO4, 17, 0, true, &udp_hdr),
            FragmentAmbiguous,
        ),
        // A fragment of a protocol no listener of the VIP serves.
        Case::drop(
            "v4 icmp fragment to a VIP",
            frag4(VIP4, 1, 8, false, &[0; 8]),
            NoListener,
        ),
        Case::drop(
            "v4 sctp fragment to a VIP",
            frag4(FRAG4, 132, 8, false, &[0; 8]),
            NoListener,
        ),
        Case::host(
            "v4 fragment to another address",
            frag4([192, 0, 2, 99], 17, 8, false, &[0; 8]),
        ),
        // IPv6 atomic fragment (offset 0, no MF, RFC 6946): a whole packet.
        Case::fwd(
            "v6 atomic fragment on a drop-policy listener",
            with_exts(&udp6(vip6(), 53, b"x"), &[Ext::Frag(0, false)]),
            backend_a(&snap),
        ),
    ];
    // DF with MF: contradictory, still a fragment.
    cases.push(Case::fwd(
        "v4 DF + MF",
        edit4(frag4(FRAG4, 17, 0, true, &udp_hdr), |ip| ip[6] |= 0x40),
        fu,
    ));
    run(&snap, &cases);
}

// ---------------------------------------------------------------------------
// ICMP errors quoting truncated packets.

/// An ICMPv4 "fragmentation needed" (MTU 1400) from a router to VIP4,
/// quoting `quote`. (Which ICMP types and codes are forwarded is another
/// change's business; this table only varies the quote.)
fn icmp4_error(quote: &[u8]) -> Vec<u8> {
    common::icmp4(ROUTER4, VIP4, [3, 4, 0, 0, 0, 0, 0x05, 0x78], quote)
}

/// An ICMPv6 "packet too big" (MTU 1400) from a router to the IPv6 VIP.
fn icmp6_error(quote: &[u8]) -> Vec<u8> {
    common::icmp6(ROUTER6, vip6(), [2, 0, 0, 0, 0, 0, 0x05, 0x78], quote)
}

/// The packet the backend sent, VIP:80 -> client:40000 (TCP), as quoted.
fn quoted4() -> Vec<u8> {
    let mut q = Vec::new();
    PacketBuilder::ipv4(VIP4, CLIENT4, 50)
        .tcp(80, 40000, 7, 1000)
        .write(&mut q, &[])
        .unwrap();
    q
}

fn quoted6() -> Vec<u8> {
    let mut q = Vec::new();
    PacketBuilder::ipv6(vip6(), CLIENT6, 50)
        .tcp(80, 40000, 7, 1000)
        .write(&mut q, &[])
        .unwrap();
    q
}

#[test]
fn icmp_errors_quoting_truncated_headers() {
    let snap = snapshot();
    let a = backend_a(&snap);
    let q4 = quoted4();
    let q6 = quoted6();
    let mut cases = Vec::new();
    // Baselines: an IPv4 header plus the 8 bytes RFC 792 promises, and an
    // IPv6 header plus 8 bytes (dnlb needs the first 4, the ports):
    // forwarded. They show that what the cases below change is only the
    // quote.
    cases.push(Case::fwd("v4 quote of ihl + 8", icmp4_error(&q4[..28]), a));
    cases.push(Case::fwd("v6 quote of 48", icmp6_error(&q6[..48]), a));
    // Shorter than the IPv4 header, and shorter than IHL + 4 (the ports):
    // every length from 0 to 23.
    for len in 0..24 {
        cases.push(Case::drop(
            format!("v4 quote of {len} bytes"),
            icmp4_error(&q4[..len]),
            IcmpUnsupported,
        ));
    }
    // IHL 6 in the quote: IHL + 4 = 28 bytes needed.
    let mut q4o = q4.clone();
    q4o.splice(20..20, [1, 1, 1, 0]);
    q4o[0] = 0x46;
    for len in [20usize, 24, 27] {
        cases.push(Case::drop(
            format!("v4 quote with ihl 6, {len} bytes"),
            icmp4_error(&q4o[..len]),
            IcmpUnsupported,
        ));
    }
    let mut bad = q4[..28].to_vec();
    bad[0] = 0x44;
    cases.push(Case::drop(
        "v4 quote with ihl 4",
        icmp4_error(&bad),
        IcmpUnsupported,
    ));
    let mut bad = q4[..28].to_vec();
    bad[0] = 0x4f;
    cases.push(Case::drop(
        "v4 quote with ihl 15, 28 bytes",
        icmp4_error(&bad),
        IcmpUnsupported,
    ));
    let mut bad = q4[..28].to_vec();
    bad[0] = 0x65;
    cases.push(Case::drop(
        "v4 quote with version 6",
        icmp4_error(&bad),
        IcmpUnsupported,
    ));
    // IPv6: fewer than 44 bytes (header + ports).
    for len in [0usize, 1, 8, 39, 40, 41, 43] {
        cases.push(Case::drop(
            format!("v6 quote of {len} bytes"),
            icmp6_error(&q6[..len]),
            IcmpUnsupported,
        ));
    }
    let mut bad = q6[..48].to_vec();
    bad[0] = 0x45;
    cases.push(Case::drop(
        "v6 quote with version 4",
        icmp6_error(&bad),
        IcmpUnsupported,
    ));
    // The ICMP message itself shorter than its 8-byte header.
    let mut short = icmp4_error(&[]);
    short.truncate(14 + 20 + 4);
    let short = edit4(short, |ip| set_u16(ip, 2, 24));
    cases.push(Case::drop("v4 icmp header of 4 bytes", short, MalformedL4));
    let mut short = icmp6_error(&[]);
    short.truncate(14 + 40 + 4);
    set_u16(&mut short, 18, 4);
    cases.push(Case::drop("v6 icmp header of 4 bytes", short, MalformedL4));
    run(&snap, &cases);
}

// ---------------------------------------------------------------------------
// Oversized packets.

/// A TCP frame to VIP4 whose IP packet is `ip_len` bytes, DF as given.
fn big4(ip_len: usize, df: bool) -> Vec<u8> {
    let f = tcp4(VIP4, 80, &vec![0x5a; ip_len - 40]);
    edit4(f, |ip| {
        // etherparse sets DF by default.
        if df {
            ip[6] |= 0x40
        } else {
            ip[6] &= !0x40
        }
    })
}

fn big6(ip_len: usize) -> Vec<u8> {
    udp6(vip6(), 53, &vec![0x5a; ip_len - 48])
}

#[test]
fn oversized_packets() {
    // MTU 1500 and 20 bytes of IP-in-IP: 1480 fits, 1481 does not.
    let snap = snapshot();
    let a = backend_a(&snap);
    let cases = vec![
        Case::fwd("v4 1480 bytes DF: fits", big4(1480, true), a),
        Case::reply("v4 1481 bytes DF: frag needed", big4(1481, true)),
        Case::drop("v4 1481 bytes without DF", big4(1481, false), TooBig),
        Case::reply("v4 9000-byte jumbo DF", big4(9000, true)),
        Case::reply("v4 65535 bytes DF", big4(65535, true)),
        Case::drop("v4 65535 bytes without DF", big4(65535, false), TooBig),
        Case::fwd("v6 1480 bytes: fits", big6(1480), a),
        Case::reply("v6 1481 bytes: packet too big", big6(1481)),
        Case::reply("v6 payload length 65535", big6(40 + 65535)),
        // A length that claims 65535 in a normal-sized frame is not big,
        // it is broken.
        Case::drop(
            "v4 total length 65535, 1514-byte frame",
            edit4(big4(1500, true), |ip| set_u16(ip, 2, 65535)),
            MalformedL3,
        ),
    ];
    run(&snap, &cases);
    // too_big = "drop": never answered.
    let snap = snapshot_with("too_big = \"drop\"\n");
    let cases = vec![
        Case::drop("drop policy: v4 DF", big4(1481, true), TooBig),
        Case::drop("drop policy: v4 65535 DF", big4(65535, true), TooBig),
        Case::drop("drop policy: v6", big6(1481), TooBig),
        Case::fwd(
            "drop policy: v4 that fits",
            big4(1480, true),
            backend_a(&snap),
        ),
    ];
    run(&snap, &cases);
}

// ---------------------------------------------------------------------------
// L2: VLAN, QinQ, EtherTypes.

/// Tagged frames to a VIP are forwarded; the tags belong to the ingress
/// link and are not carried: the outer frame is the encapsulation's own
/// (untagged) and the inner packet is the IP packet alone. Replies, on the
/// other hand, keep the tags (they go back out the link they came in on).
#[test]
fn vlan_qinq_and_ethertypes() {
    let snap = snapshot();
    let a = backend_a(&snap);
    let t4 = || tcp4(VIP4, 80, b"x");
    let mut cases = vec![
        Case::fwd("802.1Q v4 tcp", tagged(&t4(), &[(0x8100, 100)]), a),
        Case::fwd(
            "802.1Q v6 udp",
            tagged(&udp6(vip6(), 53, b"x"), &[(0x8100, 100)]),
            a,
        ),
        Case::fwd(
            "802.1Q vlan 0 (priority tag)",
            tagged(&t4(), &[(0x8100, 0xe000)]),
            a,
        ),
        Case::fwd(
            "QinQ 88a8 + 8100",
            tagged(&t4(), &[(0x88a8, 10), (0x8100, 100)]),
            a,
        ),
        Case::fwd(
            "QinQ 8100 + 8100",
            tagged(&t4(), &[(0x8100, 10), (0x8100, 100)]),
            a,
        ),
        Case::fwd("single 88a8 tag", tagged(&t4(), &[(0x88a8, 10)]), a),
        Case::reply("802.1Q echo", tagged(&echo4(VIP4, b"p"), &[(0x8100, 100)])),
        Case::reply(
            "QinQ v6 echo",
            tagged(&echo6(vip6(), b"p"), &[(0x88a8, 10), (0x8100, 100)]),
        ),
        // A third tag is not followed: its TPID is the EtherType.
        Case::host(
            "three tags",
            tagged(&t4(), &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)]),
        ),
        // 0x9100 (pre-standard QinQ) is not a TPID dnlb follows.
        Case::host("9100 tag", tagged(&t4(), &[(0x9100, 10)])),
        // A frame that ends right after its tags' EtherType.
        Case::drop(
            "802.1Q with the IPv4 EtherType and nothing after",
            tagged(&t4(), &[(0x8100, 100)])[..18].to_vec(),
            MalformedL3,
        ),
    ];
    // Truncated tags: every cut inside the tags.
    let qinq = tagged(&t4(), &[(0x88a8, 10), (0x8100, 100)]);
    for cut in 12..22 {
        cases.push(Case::drop(
            format!("QinQ cut at {cut}"),
            qinq[..cut].to_vec(),
            MalformedL2,
        ));
    }
    // Unknown EtherTypes: not the load balancer's business, whatever follows.
    for (name, ty) in [
        ("LLDP 88cc", 0x88ccu16),
        ("MPLS 8847", 0x8847),
        ("MPLS multicast 8848", 0x8848),
        ("loopback 9000", 0x9000),
        ("ARP 0806", 0x0806),
        ("802.3 length field 002e", 0x002e),
        ("ethertype 0000", 0x0000),
        ("ethertype ffff", 0xffff),
    ] {
        let mut f = t4();
        set_u16(&mut f, 12, ty);
        cases.push(Case::host(
            format!("{name} carrying an IPv4 packet to a VIP"),
            f.clone(),
        ));
        cases.push(Case::host(format!("{name}, header only"), f[..14].to_vec()));
        cases.push(Case::host(
            format!("{name} behind an 802.1Q tag"),
            tagged(&f, &[(0x8100, 100)]),
        ));
    }
    run(&snap, &cases);
}

// ---------------------------------------------------------------------------
// Addresses.

#[test]
fn mapped_multicast_and_link_local_addresses() {
    let snap = snapshot();
    let a = backend_a(&snap);
    // ::ffff:192.0.2.1: the IPv4 VIP written as an IPv4-mapped IPv6 address.
    let mut mapped = [0u8; 16];
    mapped[10..12].copy_from_slice(&[0xff, 0xff]);
    mapped[12..].copy_from_slice(&VIP4);
    let mapped_frag = {
        let mut m = mapped;
        m[12..].copy_from_slice(&FRAG4);
        m
    };
    // ::192.0.2.1 (IPv4-compatible, deprecated).
    let mut compat = [0u8; 16];
    compat[12..].copy_from_slice(&VIP4);
    let mut mapped_src = [0u8; 16];
    mapped_src[10..12].copy_from_slice(&[0xff, 0xff]);
    mapped_src[12..].copy_from_slice(&CLIENT4);
    let ll = {
        let mut x = [0u8; 16];
        x[..2].copy_from_slice(&[0xfe, 0x80]);
        x[15] = 1;
        x
    };
    let mc = {
        let mut x = [0u8; 16];
        x[..2].copy_from_slice(&[0xff, 0x02]);
        x[15] = 1;
        x
    };
    let cases = vec![
        Case::host("tcp to ::ffff:192.0.2.1", tcp6(mapped, 80, b"x")),
        Case::host("udp to ::ffff:192.0.2.1", udp6(mapped, 53, b"x")),
        Case::host("echo to ::ffff:192.0.2.1", echo6(mapped, b"p")),
        Case::host(
            "fragment to ::ffff:192.0.2.50",
            frag6(mapped_frag, 17, 8, false, &[0; 8]),
        ),
        Case::host("tcp to ::192.0.2.1 (v4-compatible)", tcp6(compat, 80, b"x")),
        // An IPv4-mapped source is not checked (Linux refuses such TCP
        // connections itself; dnlb forwards them as any other client).
        Case::fwd(
            "tcp from ::ffff:198.51.100.7 to the IPv6 VIP",
            tcp6_to(mapped_src, vip6(), 40000, 80, b"x"),
            a,
        ),
        Case::host("tcp to fe80::1", tcp6(ll, 80, b"x")),
        Case::host("tcp to ff02::1", tcp6(mc, 80, b"x")),
        Case::host("udp to ff02::1", udp6(mc, 53, b"x")),
        Case::host("echo to ff02::1", echo6(mc, b"p")),
        Case::host("udp to 224.0.0.5", udp4([224, 0, 0, 5], 53, b"x")),
        Case::host("udp to 255.255.255.255", udp4([255; 4], 53, b"x")),
        // Left to the host whatever it is: a truncated ICMPv4 message is
        // only parsed once it is known to be for a VIP...
        Case::host(
            "v4 icmp of 4 bytes to another address",
            edit4(echo4([192, 0, 2, 99], &[])[..14 + 24].to_vec(), |ip| {
                set_u16(ip, 2, 24)
            }),
        ),
        // ...but TCP/UDP ports and the ICMPv6 type (to tell neighbour
        // discovery apart) are read before the VIP check: a truncated one
        // is malformed wherever it goes.
        Case::drop(
            "v6 icmp of 4 bytes to another address",
            {
                let mut f = echo6(v6(0x99), &[])[..14 + 44].to_vec();
                set_u16(&mut f, 18, 4);
                f
            },
            MalformedL4,
        ),
        Case::drop(
            "v4 tcp of 10 bytes to another address",
            edit4(tcp4([192, 0, 2, 99], 80, &[])[..44].to_vec(), |ip| {
                set_u16(ip, 2, 30)
            }),
            MalformedL4,
        ),
    ];
    run(&snap, &cases);
}

// ---------------------------------------------------------------------------
// TCP flags and the flow table.

/// A client TCP segment to VIP4:80 from `src` with `flags` (S A F R P U;
/// "" for none).
fn segment(src: [u8; 4], flags: &str) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(src, VIP4, 61)
        .tcp(40000, 80, 2, 1000);
    let b = flags.chars().fold(b, |b, f| match f {
        'S' => b.syn(),
        'A' => b.ack(1),
        'F' => b.fin(),
        'R' => b.rst(),
        'P' => b.psh(),
        'U' => b.urg(0),
        _ => unreachable!(),
    });
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

/// Sends `flags` from 100 sources to VIP4:80 and returns the actions and the
/// flow-table entries they left.
fn flood(flags: &str) -> (Vec<Action>, usize) {
    let snap = snapshot();
    let mut p = Processor::new(4096, 1);
    p.adopt(&snap);
    let actions = (0..100u8)
        .map(|n| {
            let mut pkt = VecPacket::new(&segment([198, 18, 0, n], flags));
            p.process(&snap, &mut pkt, GW_MAC, 1000)
        })
        .collect();
    (actions, p.flows().len())
}

/// Illegal and odd flag combinations to a VIP. Every one is forwarded (the
/// backend's stack answers or drops it); only a segment that acknowledges
/// something without SYN or RST takes a flow-table entry, so no junk —
/// SYN+FIN, SYN+RST, null, FIN and xmas scans, a client's SYN+ACK — can fill
/// the table any more than a SYN flood can (RFC 9293: a segment without ACK,
/// SYN or RST is dropped by any TCP).
#[test]
fn tcp_flag_combinations() {
    let a = backend_a(&snapshot());
    let mut failures = Vec::new();
    for (flags, entries, note) in [
        ("S", 0, "bare SYN"),
        ("SF", 0, "SYN+FIN"),
        ("SR", 0, "SYN+RST"),
        ("SFRPAU", 0, "every flag (RST wins)"),
        ("R", 0, "untracked RST"),
        ("RA", 0, "untracked RST+ACK"),
        ("A", 100, "ACK: a flow seen from its middle"),
        ("FA", 100, "FIN+ACK: tracked briefly (closing timeout)"),
        ("", 0, "no flags (null scan)"),
        ("F", 0, "FIN alone"),
        ("FPU", 0, "FIN+PSH+URG (xmas scan)"),
        ("SA", 0, "SYN+ACK from a client"),
    ] {
        let (actions, got) = flood(flags);
        if actions.iter().any(|&x| x != Action::Encapsulated(a)) {
            failures.push(format!("{note} [{flags}]: {actions:?}"));
        }
        if got != entries {
            failures.push(format!("{note} [{flags}]: {got} entries, want {entries}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The echo policy for completeness of the reasons this table uses:
/// a truncated echo under `icmp_echo = "drop"` is still malformed first.
#[test]
fn truncated_echo_under_the_drop_policy() {
    let snap = snapshot_with("icmp_echo = \"drop\"\n");
    let mut short = echo4(VIP4, &[]);
    short.truncate(14 + 24);
    let short = edit4(short, |ip| set_u16(ip, 2, 24));
    run(
        &snap,
        &[
            Case::drop("echo under drop policy", echo4(VIP4, b"p"), EchoDropped),
            Case::drop("4-byte echo under drop policy", short, MalformedL4),
        ],
    );
}

//! Runs every view, accessor, setter and writer of dnlb-wire over arbitrary bytes, and asserts
//! the invariants that must hold whatever the input.
//!
//! Shared by the proptest suite (`tests/proptest.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/parse_frame.rs`, which includes this file by path), so it depends on
//! nothing but dnlb-wire and std.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use dnlb_wire::ethernet::{self, EthernetFrame};
use dnlb_wire::icmp::{Icmpv4Packet, Icmpv6Packet};
use dnlb_wire::ip;
use dnlb_wire::ipv4::{Ipv4Header, Ipv4Packet};
use dnlb_wire::ipv6::{Ipv6Header, Ipv6Packet};
use dnlb_wire::tcp::TcpPacket;
use dnlb_wire::tunnel::{self, GreHeader, GrePacket, VxlanHeader, VxlanPacket};
use dnlb_wire::udp::{UdpHeader, UdpPacket};
use dnlb_wire::WireError;

/// How deep tunnels and ICMP-quoted packets are followed.
const MAX_DEPTH: usize = 4;

/// The addresses of the IP header a transport segment came in.
#[derive(Clone, Copy)]
enum Addrs {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// Runs everything on `data`: as an Ethernet frame (following IP, transport and tunnels),
/// as each header on its own, and as input to every writer.
pub fn exercise(data: &[u8]) {
    frame(data, 0);
    ipv4(data, MAX_DEPTH);
    ipv6(data, MAX_DEPTH);
    let v4 = Addrs::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let v6 = Addrs::V6(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
    for addrs in [v4, v6] {
        tcp(data, addrs);
        udp(data, addrs, MAX_DEPTH);
    }
    icmpv4(data, MAX_DEPTH);
    icmpv6(data, v6, MAX_DEPTH);
    vxlan(data, MAX_DEPTH);
    gre(data, MAX_DEPTH);
    let _ = tunnel::gue_v1_inner_version(data.first().copied().unwrap_or(0));
    writers(data);
}

/// An Ethernet frame and everything in it.
fn frame(data: &[u8], depth: usize) {
    let Ok(view) = EthernetFrame::new_checked(data) else {
        return;
    };
    let header_len = view.header_len();
    assert!(matches!(header_len, 14 | 18 | 22) && header_len <= data.len());
    assert_eq!(view.vlan_count() * 4 + 14, header_len);
    assert_eq!(view.vlan().is_some(), view.vlan_count() > 0);
    assert_eq!(view.inner_vlan().is_some(), view.vlan_count() > 1);
    black_box((view.dst(), view.src()));
    assert_eq!(view.payload().len(), data.len() - header_len);
    match view.ethertype() {
        ethernet::ETHERTYPE_IPV4 => ipv4(view.payload(), depth),
        ethernet::ETHERTYPE_IPV6 => ipv6(view.payload(), depth),
        _ => {}
    }

    let mut copy = data.to_vec();
    let mut view = EthernetFrame::new_checked(&mut copy[..]).unwrap();
    view.set_dst([1; 6]);
    view.set_src([2; 6]);
    view.set_ethertype(ethernet::ETHERTYPE_VLAN);
    view.payload_mut().fill(0xAA);
    assert_eq!(view.header_len(), header_len);
    assert_eq!(
        (view.dst(), view.src(), view.ethertype()),
        ([1; 6], [2; 6], 0x8100)
    );
}

/// An IPv4 packet and its payload.
fn ipv4(data: &[u8], depth: usize) {
    let Ok(view) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let header_len = view.header_len();
    let total_len = usize::from(view.total_len());
    assert_eq!(view.version(), 4);
    assert!((20..=60).contains(&header_len) && header_len <= total_len);
    assert!(total_len <= data.len());
    assert_eq!(view.options().len(), header_len - 20);
    assert_eq!(view.payload().len(), total_len - header_len);
    assert_eq!(view.tos(), view.dscp() << 2 | view.ecn());
    assert_eq!(
        view.is_fragment(),
        view.more_fragments() || view.frag_offset() != 0
    );
    if view.is_first_fragment() {
        assert!(view.is_fragment() && view.frag_offset() == 0);
    }
    assert_eq!(view.frag_offset() % 8, 0);
    black_box((
        view.ident(),
        view.dont_fragment(),
        view.ttl(),
        view.header_checksum(),
    ));
    let (src, dst) = (view.src(), view.dst());
    let valid = view.verify_checksum();
    if depth > 0 && view.frag_offset() == 0 {
        transport(
            view.protocol(),
            view.payload(),
            Addrs::V4(src, dst),
            depth - 1,
        );
    }

    let mut copy = data.to_vec();
    let mut view = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
    view.set_ttl(view.ttl().wrapping_sub(1));
    view.set_tos(0x2e);
    view.set_protocol(ip::IPPROTO_UDP);
    view.set_src(Ipv4Addr::new(192, 0, 2, 1));
    view.set_dst(dst);
    assert_eq!(
        view.verify_checksum(),
        valid,
        "incremental updates keep validity"
    );
    view.payload_mut().fill(0);
    view.fill_checksum();
    assert!(view.verify_checksum());
    assert_eq!(
        (view.header_len(), usize::from(view.total_len())),
        (header_len, total_len)
    );
}

/// An IPv6 packet, its extension headers and its payload.
fn ipv6(data: &[u8], depth: usize) {
    let Ok(view) = Ipv6Packet::new_checked(data) else {
        return;
    };
    let payload_len = usize::from(view.payload_len());
    assert_eq!(view.version(), 6);
    assert!(40 + payload_len <= data.len());
    assert_eq!(view.payload().len(), payload_len);
    assert!(view.flow_label() <= 0xF_FFFF);
    black_box((view.traffic_class(), view.hop_limit(), view.next_header()));
    let (src, dst) = (view.src(), view.dst());
    match view.upper_layer() {
        Ok(upper) => {
            assert!(upper.offset >= 40 && upper.offset <= 40 + payload_len);
            let rest = view.upper_layer_payload(&upper);
            assert_eq!(rest.len(), 40 + payload_len - upper.offset);
            if let Some(fragment) = upper.fragment {
                assert_eq!(fragment.offset % 8, 0);
                black_box((fragment.more, fragment.ident));
            }
            if depth > 0 && upper.header_present() {
                transport(upper.protocol, rest, Addrs::V6(src, dst), depth - 1);
            }
        }
        Err(e) => {
            assert!(matches!(
                e,
                WireError::Truncated | WireError::TooManyExtensionHeaders
            ));
        }
    }

    let mut copy = data.to_vec();
    let mut view = Ipv6Packet::new_checked(&mut copy[..]).unwrap();
    view.set_hop_limit(1);
    view.set_next_header(ip::IPPROTO_TCP);
    view.set_traffic_class(0xff);
    view.set_flow_label(u32::MAX);
    view.set_src(dst);
    view.set_dst(src);
    view.payload_mut().fill(0);
    assert_eq!(usize::from(view.payload_len()), payload_len);
    assert_eq!(
        (view.version(), view.traffic_class(), view.flow_label()),
        (6, 0xff, 0xF_FFFF)
    );
    assert_eq!(view.upper_layer().map(|u| u.offset), Ok(40));
}

/// Dispatches an IP payload by protocol number.
fn transport(protocol: u8, data: &[u8], addrs: Addrs, depth: usize) {
    match protocol {
        ip::IPPROTO_TCP => tcp(data, addrs),
        ip::IPPROTO_UDP => udp(data, addrs, depth),
        ip::IPPROTO_ICMP => icmpv4(data, depth),
        ip::IPPROTO_ICMPV6 => icmpv6(data, addrs, depth),
        ip::IPPROTO_GRE => gre(data, depth),
        ip::IPPROTO_IPIP => ipv4(data, depth),
        ip::IPPROTO_IPV6 => ipv6(data, depth),
        _ => {}
    }
}

/// Whether a transport checksum is right for `addrs`.
fn tcp_checksum_ok<B: AsRef<[u8]>>(view: &TcpPacket<B>, addrs: Addrs) -> bool {
    match addrs {
        Addrs::V4(s, d) => view.verify_checksum_v4(s, d),
        Addrs::V6(s, d) => view.verify_checksum_v6(s, d),
    }
}

/// A TCP segment.
fn tcp(data: &[u8], addrs: Addrs) {
    let Ok(view) = TcpPacket::new_checked(data) else {
        return;
    };
    let header_len = view.header_len();
    assert!((20..=60).contains(&header_len) && header_len <= data.len());
    assert_eq!(view.options().len(), header_len - 20);
    assert_eq!(view.payload().len(), data.len() - header_len);
    let flags = view.flags();
    assert!(flags.bits() <= 0x1ff);
    black_box((
        flags.syn(),
        flags.ack(),
        flags.fin(),
        flags.rst(),
        flags.psh(),
        flags.urg(),
    ));
    black_box((flags.ece(), flags.cwr(), flags.ns()));
    black_box((
        view.src_port(),
        view.dst_port(),
        view.seq_number(),
        view.ack_number(),
    ));
    black_box((view.window(), view.checksum(), view.urgent_pointer()));
    let valid = tcp_checksum_ok(&view, addrs);

    let mut copy = data.to_vec();
    let mut view = TcpPacket::new_checked(&mut copy[..]).unwrap();
    view.set_src_port(view.dst_port());
    view.set_dst_port(443);
    assert_eq!(
        tcp_checksum_ok(&view, addrs),
        valid,
        "incremental updates keep validity"
    );
    view.payload_mut().fill(1);
    match addrs {
        Addrs::V4(s, d) => view.fill_checksum_v4(s, d),
        Addrs::V6(s, d) => view.fill_checksum_v6(s, d),
    }
    assert!(tcp_checksum_ok(&view, addrs));
    assert_eq!(view.header_len(), header_len);
}

/// Whether a UDP checksum is right for `addrs`.
fn udp_checksum_ok<B: AsRef<[u8]>>(view: &UdpPacket<B>, addrs: Addrs) -> bool {
    match addrs {
        Addrs::V4(s, d) => view.verify_checksum_v4(s, d),
        Addrs::V6(s, d) => view.verify_checksum_v6(s, d),
    }
}

/// A UDP datagram, and VXLAN or GUE in it.
fn udp(data: &[u8], addrs: Addrs, depth: usize) {
    let Ok(view) = UdpPacket::new_checked(data) else {
        return;
    };
    let len = usize::from(view.len());
    assert!(len >= 8 && len <= data.len());
    assert_eq!(view.payload().len(), len - 8);
    assert_eq!(view.is_empty(), len == 8);
    black_box((view.src_port(), view.dst_port(), view.checksum()));
    let valid = udp_checksum_ok(&view, addrs);
    if depth > 0 {
        if view.dst_port() == tunnel::VXLAN_PORT {
            vxlan(view.payload(), depth - 1);
        }
        match view
            .payload()
            .first()
            .map(|&b| tunnel::gue_v1_inner_version(b))
        {
            Some(Some(4)) => ipv4(view.payload(), depth - 1),
            Some(Some(6)) => ipv6(view.payload(), depth - 1),
            _ => {}
        }
    }

    let mut copy = data.to_vec();
    let mut view = UdpPacket::new_checked(&mut copy[..]).unwrap();
    let had_checksum = view.checksum() != 0;
    view.set_src_port(view.dst_port());
    view.set_dst_port(tunnel::VXLAN_PORT);
    assert_eq!(
        udp_checksum_ok(&view, addrs),
        valid,
        "incremental updates keep validity"
    );
    assert_eq!(view.checksum() != 0, had_checksum);
    view.payload_mut().fill(0);
    match addrs {
        Addrs::V4(s, d) => view.fill_checksum_v4(s, d),
        Addrs::V6(s, d) => view.fill_checksum_v6(s, d),
    }
    assert!(udp_checksum_ok(&view, addrs));
    assert_ne!(view.checksum(), 0);
}

/// An ICMPv4 message and the packet it quotes.
fn icmpv4(data: &[u8], depth: usize) {
    let Ok(view) = Icmpv4Packet::new_checked(data) else {
        return;
    };
    assert_eq!(view.payload().len(), data.len() - 8);
    let rest = view.rest_of_header();
    assert_eq!(
        u32::from(view.echo_ident()) << 16 | u32::from(view.echo_seq()),
        rest
    );
    if let Some(mtu) = view.next_hop_mtu() {
        assert_eq!(u32::from(mtu), rest & 0xffff);
    }
    black_box((
        view.msg_type(),
        view.code(),
        view.checksum(),
        view.verify_checksum_v4(),
    ));
    if depth > 0 && view.is_error() {
        ipv4(view.payload(), depth - 1);
    }

    let mut copy = data.to_vec();
    let mut view = Icmpv4Packet::new_checked(&mut copy[..]).unwrap();
    view.set_msg_type(3);
    view.set_code(4);
    view.set_rest_of_header(1500);
    assert_eq!(view.next_hop_mtu(), Some(1500));
    assert!(view.is_error());
    view.payload_mut().fill(0);
    view.fill_checksum_v4();
    assert!(view.verify_checksum_v4());
}

/// An ICMPv6 message and the packet it quotes.
fn icmpv6(data: &[u8], addrs: Addrs, depth: usize) {
    let Ok(view) = Icmpv6Packet::new_checked(data) else {
        return;
    };
    let (src, dst) = match addrs {
        Addrs::V6(s, d) => (s, d),
        Addrs::V4(..) => (Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST),
    };
    assert_eq!(view.payload().len(), data.len() - 8);
    assert_eq!(view.mtu().is_some(), view.msg_type() == 2);
    assert!(!(view.is_error() && view.is_neighbor_discovery()));
    black_box((
        view.code(),
        view.checksum(),
        view.echo_ident(),
        view.echo_seq(),
    ));
    black_box(view.verify_checksum_v6(src, dst));
    if depth > 0 && view.is_error() {
        ipv6(view.payload(), depth - 1);
    }

    let mut copy = data.to_vec();
    let mut view = Icmpv6Packet::new_checked(&mut copy[..]).unwrap();
    view.set_msg_type(2);
    view.set_code(0);
    view.set_rest_of_header(1280);
    assert_eq!(view.mtu(), Some(1280));
    view.payload_mut().fill(0);
    view.fill_checksum_v6(src, dst);
    assert!(view.verify_checksum_v6(src, dst));
}

/// A VXLAN packet and its inner frame.
fn vxlan(data: &[u8], depth: usize) {
    let Ok(view) = VxlanPacket::new_checked(data) else {
        return;
    };
    assert!(view.vni() <= tunnel::VXLAN_MAX_VNI);
    assert_eq!(view.flags_valid(), view.flags() & 0x08 != 0);
    assert_eq!(view.payload().len(), data.len() - 8);
    if depth > 0 {
        frame(view.payload(), depth - 1);
    }
}

/// A GRE packet and its payload.
fn gre(data: &[u8], depth: usize) {
    let Ok(view) = GrePacket::new_checked(data) else {
        return;
    };
    let header_len = view.header_len();
    assert!(matches!(header_len, 4 | 8 | 12 | 16) && header_len <= data.len());
    assert_eq!(view.version(), 0);
    let optional = [
        view.checksum().is_some(),
        view.key().is_some(),
        view.sequence().is_some(),
    ];
    assert_eq!(4 + 4 * optional.iter().filter(|&&b| b).count(), header_len);
    black_box(view.verify_checksum());
    if depth > 0 {
        match view.protocol() {
            tunnel::GRE_PROTO_IPV4 => ipv4(view.payload(), depth - 1),
            tunnel::GRE_PROTO_IPV6 => ipv6(view.payload(), depth - 1),
            tunnel::GRE_PROTO_TEB => frame(view.payload(), depth - 1),
            _ => {}
        }
    }
}

/// Reads fixed-size values off the input, zero past its end.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }
}

/// Every writer, with field values taken from `data`, read back through the views.
fn writers(data: &[u8]) {
    let mut c = Cursor(data);
    let mut buf = [0u8; 128];

    let (dst, src, ethertype) = (c.take::<6>(), c.take::<6>(), c.u16());
    let written = ethernet::write_header(&mut buf, dst, src, ethertype);
    assert_eq!(written, Ok(14));
    if !ethernet::is_vlan_tpid(ethertype) {
        let view = EthernetFrame::new_checked(&buf[..14]).unwrap();
        assert_eq!(
            (view.dst(), view.src(), view.ethertype()),
            (dst, src, ethertype)
        );
    }

    let v4 = Ipv4Header {
        src: Ipv4Addr::from(c.u32()),
        dst: Ipv4Addr::from(c.u32()),
        protocol: c.u8(),
        ttl: c.u8(),
        tos: c.u8(),
        ident: c.u16(),
        dont_fragment: c.u8() & 1 == 1,
        payload_len: c.u16() % 100,
    };
    assert_eq!(v4.write(&mut buf), Ok(20));
    let view = Ipv4Packet::new_checked(&buf[..]).unwrap();
    assert!(view.verify_checksum() && !view.is_fragment());
    assert_eq!(
        usize::from(view.total_len()),
        20 + usize::from(v4.payload_len)
    );
    assert_eq!(
        (view.src(), view.dst(), view.protocol(), view.ttl()),
        (v4.src, v4.dst, v4.protocol, v4.ttl)
    );
    assert_eq!(
        (view.tos(), view.ident(), view.dont_fragment()),
        (v4.tos, v4.ident, v4.dont_fragment)
    );

    let v6 = Ipv6Header {
        src: Ipv6Addr::from(c.take::<16>()),
        dst: Ipv6Addr::from(c.take::<16>()),
        next_header: c.u8(),
        hop_limit: c.u8(),
        traffic_class: c.u8(),
        flow_label: c.u32(),
        payload_len: c.u16() % 80,
    };
    if v6.flow_label > 0xF_FFFF {
        assert_eq!(v6.write(&mut buf), Err(WireError::ValueOutOfRange));
    } else {
        assert_eq!(v6.write(&mut buf), Ok(40));
        let view = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (view.src(), view.dst(), view.next_header()),
            (v6.src, v6.dst, v6.next_header)
        );
        assert_eq!(
            (view.hop_limit(), view.traffic_class()),
            (v6.hop_limit, v6.traffic_class)
        );
        assert_eq!(
            (view.flow_label(), view.payload_len()),
            (v6.flow_label, v6.payload_len)
        );
    }

    let udp = UdpHeader {
        src_port: c.u16(),
        dst_port: c.u16(),
        length: 8 + c.u16() % 100,
        checksum: c.u16(),
    };
    assert_eq!(udp.write(&mut buf), Ok(8));
    let view = UdpPacket::new_checked(&buf[..]).unwrap();
    assert_eq!(
        (view.src_port(), view.dst_port()),
        (udp.src_port, udp.dst_port)
    );
    assert_eq!((view.len(), view.checksum()), (udp.length, udp.checksum));

    let vni = c.u32();
    match (VxlanHeader { vni }.write(&mut buf)) {
        Ok(8) => {
            let view = VxlanPacket::new_checked(&buf[..]).unwrap();
            assert!(view.flags_valid());
            assert_eq!(view.vni(), vni);
        }
        other => assert_eq!(
            (other, vni > tunnel::VXLAN_MAX_VNI),
            (Err(WireError::ValueOutOfRange), true)
        ),
    }

    let gre = GreHeader {
        protocol: c.u16(),
        key: if c.u8() & 1 == 1 { Some(c.u32()) } else { None },
    };
    assert_eq!(gre.write(&mut buf), Ok(gre.len()));
    let view = GrePacket::new_checked(&buf[..]).unwrap();
    assert_eq!(
        (view.protocol(), view.key(), view.header_len()),
        (gre.protocol, gre.key, gre.len())
    );
    assert_eq!((view.checksum(), view.sequence()), (None, None));
}

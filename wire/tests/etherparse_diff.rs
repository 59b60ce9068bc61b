//! Differential tests against etherparse: frames built by etherparse are read by dnlb-wire's
//! views (every field compared with etherparse's own parse), and headers written by
//! dnlb-wire's writers are parsed back by etherparse (checksums included).

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use common::packets;
use dnlb_wire::ethernet::{self, EthernetFrame};
use dnlb_wire::icmp::{Icmpv4Packet, Icmpv6Packet};
use dnlb_wire::ip;
use dnlb_wire::ipv4::{Ipv4Header, Ipv4Packet};
use dnlb_wire::ipv6::{Ipv6Header, Ipv6Packet};
use dnlb_wire::tcp::TcpPacket;
use dnlb_wire::tunnel::{self, GreHeader, GrePacket, VxlanHeader, VxlanPacket};
use dnlb_wire::udp::{self, UdpHeader, UdpPacket};
use etherparse::{
    icmpv4::DestUnreachableHeader, Icmpv4Type, Icmpv6Type, Ipv4HeaderSlice, Ipv6ExtensionSlice,
    Ipv6HeaderSlice, Ipv6Slice, LinkSlice, NetSlice, SlicedPacket, TransportSlice, UdpHeaderSlice,
    VlanSlice,
};

/// The IP addresses a transport segment travelled between.
#[derive(Clone, Copy, Debug)]
enum Addrs {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// Compares everything dnlb-wire reads from `frame` with etherparse's parse of it.
fn check_frame(name: &str, frame: &[u8]) {
    let sliced =
        SlicedPacket::from_ethernet(frame).unwrap_or_else(|e| panic!("{name}: etherparse: {e:?}"));
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let Some(LinkSlice::Ethernet2(link)) = &sliced.link else {
        panic!("{name}: no Ethernet II header");
    };
    assert_eq!(eth.dst(), link.destination(), "{name}");
    assert_eq!(eth.src(), link.source(), "{name}");
    let ether_payload = match &sliced.vlan {
        None => {
            assert_eq!(
                (eth.vlan(), eth.inner_vlan(), eth.header_len()),
                (None, None, 14)
            );
            link.payload()
        }
        Some(VlanSlice::SingleVlan(v)) => {
            assert_eq!(eth.vlan(), Some(v.vlan_identifier().value()), "{name}");
            assert_eq!((eth.inner_vlan(), eth.header_len()), (None, 18), "{name}");
            v.payload()
        }
        Some(VlanSlice::DoubleVlan(v)) => {
            assert_eq!(
                eth.vlan(),
                Some(v.outer().vlan_identifier().value()),
                "{name}"
            );
            assert_eq!(
                eth.inner_vlan(),
                Some(v.inner().vlan_identifier().value()),
                "{name}"
            );
            assert_eq!(eth.header_len(), 22, "{name}");
            v.payload()
        }
    };
    assert_eq!(eth.ethertype(), ether_payload.ether_type.0, "{name}");
    assert_eq!(eth.payload(), ether_payload.payload, "{name}");

    match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => {
            assert_eq!(eth.ethertype(), ethernet::ETHERTYPE_IPV4);
            let h = ip.header();
            let mine = check_ipv4_header(name, eth.payload(), &h);
            assert_eq!(mine.payload(), ip.payload().payload, "{name}");
            assert_eq!(mine.is_fragment(), ip.payload().fragmented, "{name}");
            let addrs = Addrs::V4(mine.src(), mine.dst());
            match &sliced.transport {
                Some(t) => check_transport(name, mine.payload(), t, addrs),
                None => {
                    assert!(
                        mine.is_fragment(),
                        "{name}: etherparse only skips fragments"
                    );
                    if mine.is_first_fragment() && mine.protocol() == ip::IPPROTO_UDP {
                        check_udp_header(name, mine.payload());
                    }
                }
            }
        }
        Some(NetSlice::Ipv6(ip)) => {
            assert_eq!(eth.ethertype(), ethernet::ETHERTYPE_IPV6);
            let mine = check_ipv6(name, eth.payload(), ip);
            let upper = mine.upper_layer().unwrap();
            let addrs = Addrs::V6(mine.src(), mine.dst());
            match &sliced.transport {
                Some(t) => check_transport(name, mine.upper_layer_payload(&upper), t, addrs),
                None => {
                    assert!(
                        upper.fragment.is_some(),
                        "{name}: etherparse only skips fragments"
                    );
                    if upper.header_present() && upper.protocol == ip::IPPROTO_UDP {
                        check_udp_header(name, mine.upper_layer_payload(&upper));
                    }
                }
            }
        }
        None => panic!("{name}: no IP layer"),
    }
}

/// Compares an IPv4 header with etherparse's slice of it; returns the view.
fn check_ipv4_header<'a>(
    name: &str,
    bytes: &'a [u8],
    h: &Ipv4HeaderSlice<'_>,
) -> Ipv4Packet<&'a [u8]> {
    let mine = Ipv4Packet::new_checked(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(mine.version(), h.version(), "{name}");
    assert_eq!(mine.header_len(), usize::from(h.ihl()) * 4, "{name}");
    assert_eq!(mine.total_len(), h.total_len(), "{name}");
    assert_eq!(mine.dscp(), h.dcp().value(), "{name}");
    assert_eq!(mine.ecn(), h.ecn().value(), "{name}");
    assert_eq!(mine.tos(), h.dcp().value() << 2 | h.ecn().value(), "{name}");
    assert_eq!(mine.ident(), h.identification(), "{name}");
    assert_eq!(mine.dont_fragment(), h.dont_fragment(), "{name}");
    assert_eq!(mine.more_fragments(), h.more_fragments(), "{name}");
    assert_eq!(
        mine.frag_offset(),
        h.fragments_offset().byte_offset(),
        "{name}"
    );
    assert_eq!(mine.is_fragment(), h.is_fragmenting_payload(), "{name}");
    assert_eq!(mine.ttl(), h.ttl(), "{name}");
    assert_eq!(mine.protocol(), h.protocol().0, "{name}");
    assert_eq!(mine.header_checksum(), h.header_checksum(), "{name}");
    assert_eq!(mine.src(), h.source_addr(), "{name}");
    assert_eq!(mine.dst(), h.destination_addr(), "{name}");
    assert_eq!(mine.options(), h.options(), "{name}");
    assert!(mine.verify_checksum(), "{name}");
    assert_eq!(
        mine.header_checksum(),
        h.to_header().calc_header_checksum(),
        "{name}"
    );
    mine
}

/// Compares an IPv6 header and its extension headers with etherparse's parse.
fn check_ipv6<'a>(name: &str, bytes: &'a [u8], ip: &Ipv6Slice<'_>) -> Ipv6Packet<&'a [u8]> {
    let h = ip.header();
    let mine = check_ipv6_header(name, bytes, &h);
    let upper = mine.upper_layer().unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(upper.protocol, ip.payload().ip_number.0, "{name}");
    assert_eq!(
        mine.upper_layer_payload(&upper),
        ip.payload().payload,
        "{name}"
    );
    assert_eq!(upper.offset, 40 + ip.extensions().slice().len(), "{name}");
    let theirs = ip.extensions().clone().into_iter().find_map(|e| match e {
        Ipv6ExtensionSlice::Fragment(f) => Some(f),
        _ => None,
    });
    match (upper.fragment, theirs) {
        (None, None) => {}
        (Some(ours), Some(theirs)) => {
            // etherparse 0.16 decodes the offset/M word with the wrong bit layout (its issue
            // #150): decode the word it located as RFC 8200 section 4.5 lays it out.
            let word = u16::from_be_bytes([theirs.slice()[2], theirs.slice()[3]]);
            assert_eq!(ours.offset, word & 0xFFF8, "{name}");
            assert_eq!(ours.more, word & 1 == 1, "{name}");
            assert_eq!(ours.ident, theirs.identification(), "{name}");
            assert_eq!(upper.header_present(), ours.offset == 0, "{name}");
        }
        other => panic!("{name}: fragment headers differ: {other:?}"),
    }
    mine
}

/// Compares the fixed IPv6 header with etherparse's slice of it; returns the view.
fn check_ipv6_header<'a>(
    name: &str,
    bytes: &'a [u8],
    h: &Ipv6HeaderSlice<'_>,
) -> Ipv6Packet<&'a [u8]> {
    let mine = Ipv6Packet::new_checked(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(mine.version(), h.version(), "{name}");
    assert_eq!(mine.traffic_class(), h.traffic_class(), "{name}");
    assert_eq!(mine.flow_label(), h.flow_label().value(), "{name}");
    assert_eq!(mine.payload_len(), h.payload_length(), "{name}");
    assert_eq!(mine.next_header(), h.next_header().0, "{name}");
    assert_eq!(mine.hop_limit(), h.hop_limit(), "{name}");
    assert_eq!(mine.src(), h.source_addr(), "{name}");
    assert_eq!(mine.dst(), h.destination_addr(), "{name}");
    mine
}

/// Compares the UDP header at the start of `bytes` with etherparse's slice of it.
fn check_udp_header(name: &str, bytes: &[u8]) {
    let mine = UdpPacket::new_checked(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let theirs = UdpHeaderSlice::from_slice(bytes).unwrap();
    assert_eq!(mine.src_port(), theirs.source_port(), "{name}");
    assert_eq!(mine.dst_port(), theirs.destination_port(), "{name}");
    assert_eq!(mine.len(), theirs.length(), "{name}");
    assert_eq!(mine.checksum(), theirs.checksum(), "{name}");
}

/// Compares a transport header and data with etherparse's, and recomputes the checksum.
fn check_transport(name: &str, bytes: &[u8], theirs: &TransportSlice<'_>, addrs: Addrs) {
    match theirs {
        TransportSlice::Tcp(t) => {
            let mine = TcpPacket::new_checked(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(mine.src_port(), t.source_port(), "{name}");
            assert_eq!(mine.dst_port(), t.destination_port(), "{name}");
            assert_eq!(mine.seq_number(), t.sequence_number(), "{name}");
            assert_eq!(mine.ack_number(), t.acknowledgment_number(), "{name}");
            assert_eq!(
                mine.header_len(),
                usize::from(t.data_offset()) * 4,
                "{name}"
            );
            let f = mine.flags();
            let ours = [
                f.fin(),
                f.syn(),
                f.rst(),
                f.psh(),
                f.ack(),
                f.urg(),
                f.ece(),
                f.cwr(),
                f.ns(),
            ];
            let theirs_flags = [
                t.fin(),
                t.syn(),
                t.rst(),
                t.psh(),
                t.ack(),
                t.urg(),
                t.ece(),
                t.cwr(),
                t.ns(),
            ];
            assert_eq!(ours, theirs_flags, "{name}");
            assert_eq!(mine.window(), t.window_size(), "{name}");
            assert_eq!(mine.checksum(), t.checksum(), "{name}");
            assert_eq!(mine.urgent_pointer(), t.urgent_pointer(), "{name}");
            assert_eq!(mine.options(), t.options(), "{name}");
            assert_eq!(mine.payload(), t.payload(), "{name}");
            let mut copy = bytes.to_vec();
            let mut view = TcpPacket::new_checked(&mut copy[..]).unwrap();
            match addrs {
                Addrs::V4(s, d) => {
                    assert!(mine.verify_checksum_v4(s, d), "{name}");
                    view.fill_checksum_v4(s, d);
                }
                Addrs::V6(s, d) => {
                    assert!(mine.verify_checksum_v6(s, d), "{name}");
                    view.fill_checksum_v6(s, d);
                }
            }
            assert_eq!(view.checksum(), t.checksum(), "{name}");
        }
        TransportSlice::Udp(u) => {
            check_udp_header(name, bytes);
            let mine = UdpPacket::new_checked(bytes).unwrap();
            assert_eq!(mine.payload(), u.payload(), "{name}");
            let mut copy = bytes.to_vec();
            let mut view = UdpPacket::new_checked(&mut copy[..]).unwrap();
            match addrs {
                Addrs::V4(s, d) => {
                    assert!(mine.verify_checksum_v4(s, d), "{name}");
                    view.fill_checksum_v4(s, d);
                }
                Addrs::V6(s, d) => {
                    assert!(mine.verify_checksum_v6(s, d), "{name}");
                    view.fill_checksum_v6(s, d);
                }
            }
            assert_eq!(view.checksum(), u.checksum(), "{name}");
            if mine.dst_port() == tunnel::VXLAN_PORT {
                let vxlan = VxlanPacket::new_checked(mine.payload()).unwrap();
                assert!(vxlan.flags_valid(), "{name}");
                assert_eq!(vxlan.vni(), 0x12_3456, "{name}");
                check_frame(&format!("{name}/inner"), vxlan.payload());
            }
        }
        TransportSlice::Icmpv4(i) => {
            let mine = Icmpv4Packet::new_checked(bytes).unwrap();
            assert_eq!(mine.msg_type(), i.type_u8(), "{name}");
            assert_eq!(mine.code(), i.code_u8(), "{name}");
            assert_eq!(mine.checksum(), i.checksum(), "{name}");
            assert_eq!(
                mine.rest_of_header(),
                u32::from_be_bytes(i.bytes5to8()),
                "{name}"
            );
            assert_eq!(mine.payload(), i.payload(), "{name}");
            assert!(mine.verify_checksum_v4(), "{name}");
            match i.icmp_type() {
                Icmpv4Type::EchoRequest(echo) | Icmpv4Type::EchoReply(echo) => {
                    assert_eq!((mine.echo_ident(), mine.echo_seq()), (echo.id, echo.seq));
                    assert!(!mine.is_error());
                }
                Icmpv4Type::DestinationUnreachable(
                    DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
                ) => {
                    assert_eq!(mine.next_hop_mtu(), Some(next_hop_mtu), "{name}");
                    assert!(mine.is_error());
                    // The quoted IPv4 header is intact; the quoted packet is truncated.
                    let quoted = Ipv4HeaderSlice::from_slice(mine.payload()).unwrap();
                    assert_eq!(quoted.protocol().0, ip::IPPROTO_TCP);
                    assert!(Ipv4Packet::new_checked(mine.payload()).is_err());
                    let quoted = Ipv4Packet::new_unchecked(mine.payload());
                    let ports = &mine.payload()[quoted.header_len()..];
                    assert_eq!(ports[..4], [0x9c, 0x40, 0x00, 0x50]);
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
            let mut copy = bytes.to_vec();
            let mut view = Icmpv4Packet::new_checked(&mut copy[..]).unwrap();
            view.fill_checksum_v4();
            assert_eq!(view.checksum(), i.checksum(), "{name}");
        }
        TransportSlice::Icmpv6(i) => {
            let Addrs::V6(src, dst) = addrs else {
                panic!("{name}: ICMPv6 over IPv4")
            };
            let mine = Icmpv6Packet::new_checked(bytes).unwrap();
            assert_eq!(mine.msg_type(), i.type_u8(), "{name}");
            assert_eq!(mine.code(), i.code_u8(), "{name}");
            assert_eq!(mine.checksum(), i.checksum(), "{name}");
            assert_eq!(
                mine.rest_of_header(),
                u32::from_be_bytes(i.bytes5to8()),
                "{name}"
            );
            assert_eq!(mine.payload(), i.payload(), "{name}");
            assert!(mine.verify_checksum_v6(src, dst), "{name}");
            assert!(i.is_checksum_valid(src.octets(), dst.octets()), "{name}");
            match i.icmp_type() {
                Icmpv6Type::EchoRequest(echo) | Icmpv6Type::EchoReply(echo) => {
                    assert_eq!((mine.echo_ident(), mine.echo_seq()), (echo.id, echo.seq));
                    assert!(!mine.is_error() && mine.mtu().is_none());
                }
                Icmpv6Type::PacketTooBig { mtu } => {
                    assert_eq!(mine.mtu(), Some(mtu), "{name}");
                    assert!(mine.is_error());
                    // The quoted IPv6 header is intact; the quoted packet is truncated, so
                    // only an unchecked view (of at least 40 bytes) may read it.
                    let quoted = Ipv6HeaderSlice::from_slice(mine.payload()).unwrap();
                    assert!(Ipv6Packet::new_checked(mine.payload()).is_err());
                    let view = Ipv6Packet::new_unchecked(mine.payload());
                    assert_eq!(view.src(), quoted.source_addr(), "{name}");
                    assert_eq!(view.dst(), quoted.destination_addr(), "{name}");
                    assert_eq!(view.next_header(), quoted.next_header().0, "{name}");
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
            let mut copy = bytes.to_vec();
            let mut view = Icmpv6Packet::new_checked(&mut copy[..]).unwrap();
            view.fill_checksum_v6(src, dst);
            assert_eq!(view.checksum(), i.checksum(), "{name}");
        }
    }
}

#[test]
fn views_agree_with_etherparse_on_built_frames() {
    for (name, frame) in packets::all() {
        check_frame(name, &frame);
    }
}

#[test]
fn ethernet_padding_is_excluded_from_ip_payload() {
    let mut frame = packets::ipv4_tcp_syn();
    frame.extend_from_slice(&[0; 6]); // pad to 64 bytes on the wire with FCS
    let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(ip.payload().len(), 24);
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(tcp.verify_checksum_v4(ip.src(), ip.dst()));
}

#[test]
fn ipv6_fragment_header_fields() {
    let frame = packets::ipv6_udp_fragment();
    let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
    let upper = ip.upper_layer().unwrap();
    assert_eq!(
        (upper.protocol, upper.offset),
        (ip::IPPROTO_UDP, 40 + 8 + 8)
    );
    assert_eq!(
        upper.fragment.map(|f| (f.offset, f.more, f.ident)),
        Some((0, true, 0xcafe_f00d))
    );
    assert!(upper.header_present());
}

#[test]
fn later_fragments_have_no_transport_header() {
    let frame = packets::ipv4_later_fragment();
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert_eq!(
        (ip.frag_offset(), ip.is_fragment(), ip.is_first_fragment()),
        (1480, true, false)
    );

    let frame = packets::ipv6_later_fragment();
    let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
    let upper = ip.upper_layer().unwrap();
    assert!(!upper.header_present());
    assert_eq!(
        upper.fragment.map(|f| (f.offset, f.more, f.ident)),
        Some((1232, false, 0xcafe_f00d))
    );
    assert_eq!(ip.upper_layer_payload(&upper), &[0x88; 24]);
}

/// Builds Ethernet + IPv4 + UDP with dnlb-wire's writers.
fn write_ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = UdpHeader::LEN + payload.len();
    let mut frame = vec![0u8; 14 + Ipv4Header::LEN + udp_len];
    let mut at = ethernet::write_header(
        &mut frame,
        packets::MAC_DST,
        packets::MAC_SRC,
        ethernet::ETHERTYPE_IPV4,
    )
    .unwrap();
    let ip = Ipv4Header {
        src,
        dst,
        protocol: ip::IPPROTO_UDP,
        ttl: 64,
        tos: 0x10,
        ident: 0x4321,
        dont_fragment: true,
        payload_len: udp_len as u16,
    };
    at += ip.write(&mut frame[at..]).unwrap();
    let udp_start = at;
    let header = UdpHeader {
        src_port: 33333,
        dst_port,
        length: udp_len as u16,
        checksum: 0,
    };
    at += header.write(&mut frame[at..]).unwrap();
    frame[at..].copy_from_slice(payload);
    udp::fill_udp_checksum_v4(&mut frame[udp_start..], src, dst).unwrap();
    frame
}

#[test]
fn ipv4_udp_writers_parse_with_etherparse() {
    let (src, dst) = (Ipv4Addr::new(10, 9, 8, 7), Ipv4Addr::new(172, 16, 0, 1));
    let frame = write_ipv4_udp(src, dst, 53, b"hello, world");
    let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!((h.source, h.destination), (src.octets(), dst.octets()));
    assert_eq!(
        (h.time_to_live, h.protocol.0, h.identification),
        (64, 17, 0x4321)
    );
    assert!(h.dont_fragment && !h.more_fragments);
    assert_eq!(h.dscp.value() << 2 | h.ecn.value(), 0x10);
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(TransportSlice::Udp(u)) = &sliced.transport else {
        panic!("not UDP")
    };
    assert_eq!(
        (u.source_port(), u.destination_port(), u.length()),
        (33333, 53, 20)
    );
    assert_eq!(u.payload(), b"hello, world");
    assert_eq!(
        u.checksum(),
        u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap()
    );
    check_frame("written ipv4/udp", &frame);
}

#[test]
fn ipv6_vxlan_encapsulation_parses_with_etherparse() {
    let inner = packets::ipv4_tcp_syn();
    let (src, dst): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::a".parse().unwrap(),
        "2001:db8::b".parse().unwrap(),
    );
    let udp_len = UdpHeader::LEN + VxlanHeader::LEN + inner.len();
    let mut frame = vec![0u8; 14 + Ipv6Header::LEN + udp_len];
    let mut at = ethernet::write_header(
        &mut frame,
        packets::MAC_DST,
        packets::MAC_SRC,
        ethernet::ETHERTYPE_IPV6,
    )
    .unwrap();
    let ip = Ipv6Header {
        src,
        dst,
        next_header: ip::IPPROTO_UDP,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0x5_4321,
        payload_len: udp_len as u16,
    };
    at += ip.write(&mut frame[at..]).unwrap();
    let udp_start = at;
    let header = UdpHeader {
        src_port: 50000,
        dst_port: tunnel::VXLAN_PORT,
        length: udp_len as u16,
        checksum: 0,
    };
    at += header.write(&mut frame[at..]).unwrap();
    at += VxlanHeader { vni: 0x12_3456 }
        .write(&mut frame[at..])
        .unwrap();
    frame[at..].copy_from_slice(&inner);
    udp::fill_udp_checksum_v6(&mut frame[udp_start..], src, dst).unwrap();

    let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
    let Some(NetSlice::Ipv6(ip6)) = &sliced.net else {
        panic!("not IPv6")
    };
    let h = ip6.header().to_header();
    assert_eq!(
        (h.source, h.destination, h.flow_label.value()),
        (src.octets(), dst.octets(), 0x5_4321)
    );
    let Some(TransportSlice::Udp(u)) = &sliced.transport else {
        panic!("not UDP")
    };
    assert_eq!(
        u.checksum(),
        u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap()
    );
    assert_ne!(u.checksum(), 0);
    assert_eq!(&u.payload()[..8], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
    let inner_sliced = SlicedPacket::from_ethernet(&u.payload()[8..]).unwrap();
    assert!(matches!(
        inner_sliced.transport,
        Some(TransportSlice::Tcp(_))
    ));
    check_frame("written ipv6/udp/vxlan", &frame);
}

#[test]
fn gue_v1_and_ipip_inner_packets() {
    // GUE variant 1: the UDP payload is the inner IPv6 packet.
    let inner = packets::ipv6_tcp();
    let frame = write_ipv4_udp(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        6080,
        &inner[14..],
    );
    let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
    let Some(TransportSlice::Udp(u)) = &sliced.transport else {
        panic!("not UDP")
    };
    assert_eq!(tunnel::gue_v1_inner_version(u.payload()[0]), Some(6));
    let inner_ip = Ipv6Slice::from_slice(u.payload()).unwrap();
    check_ipv6("gue inner", u.payload(), &inner_ip);

    // IPv4-in-IPv4: protocol 4, the payload is the inner packet.
    let inner = packets::ipv4_tcp_syn();
    let mut packet = vec![0u8; 20 + inner.len() - 14];
    let outer = Ipv4Header {
        src: Ipv4Addr::new(192, 0, 2, 1),
        dst: Ipv4Addr::new(192, 0, 2, 2),
        protocol: ip::IPPROTO_IPIP,
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_fragment: false,
        payload_len: (inner.len() - 14) as u16,
    };
    outer.write(&mut packet).unwrap();
    packet[20..].copy_from_slice(&inner[14..]);
    let sliced = SlicedPacket::from_ip(&packet).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4")
    };
    assert_eq!(ip.header().protocol().0, ip::IPPROTO_IPIP);
    let mine = Ipv4Packet::new_checked(&packet[..]).unwrap();
    let inner_theirs = Ipv4HeaderSlice::from_slice(ip.payload().payload).unwrap();
    check_ipv4_header("ipip inner", mine.payload(), &inner_theirs);
}

#[test]
fn gre_encapsulation() {
    // etherparse has no GRE parser: it checks the outer IPv4, dnlb-wire the GRE header.
    let inner = packets::ipv4_tcp_syn();
    let gre = GreHeader {
        protocol: tunnel::GRE_PROTO_TEB,
        key: Some(7),
    };
    let mut packet = vec![0u8; Ipv4Header::LEN + gre.len() + inner.len()];
    let outer = Ipv4Header {
        src: Ipv4Addr::new(192, 0, 2, 1),
        dst: Ipv4Addr::new(192, 0, 2, 2),
        protocol: ip::IPPROTO_GRE,
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_fragment: true,
        payload_len: (gre.len() + inner.len()) as u16,
    };
    let at = outer.write(&mut packet).unwrap();
    let at = at + gre.write(&mut packet[at..]).unwrap();
    packet[at..].copy_from_slice(&inner);
    let sliced = SlicedPacket::from_ip(&packet).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4")
    };
    assert_eq!(ip.payload().ip_number.0, ip::IPPROTO_GRE);
    let view = GrePacket::new_checked(ip.payload().payload).unwrap();
    assert_eq!(
        (view.protocol(), view.key(), view.header_len()),
        (tunnel::GRE_PROTO_TEB, Some(7), 8)
    );
    check_frame("gre inner", view.payload());
}

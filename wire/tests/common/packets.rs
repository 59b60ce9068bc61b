//! Test frames built with etherparse, independently of dnlb-wire's own writers.

use etherparse::{
    icmpv4, Icmpv4Type, Icmpv6Type, IpAuthHeader, IpFragOffset, IpHeaders, IpNumber, Ipv4Dscp,
    Ipv4Ecn, Ipv4Header, Ipv6Extensions, Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header,
    Ipv6RawExtHeader, Ipv6RoutingExtensions, PacketBuilder, TcpOptionElement, VlanId,
};

/// Source MAC of the test frames.
pub const MAC_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC of the test frames.
pub const MAC_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// IPv4 addresses of the test packets.
pub const V4_SRC: [u8; 4] = [198, 51, 100, 7];
/// IPv4 destination of the test packets.
pub const V4_DST: [u8; 4] = [192, 0, 2, 10];
/// IPv6 source of the test packets (2001:db8::7).
pub const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
/// IPv6 destination of the test packets (2001:db8:1::10).
pub const V6_DST: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn build(builder: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    builder(&mut out);
    out
}

/// IPv4 TCP SYN with an MSS option, untagged.
pub fn ipv4_tcp_syn() -> Vec<u8> {
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv4(V4_SRC, V4_DST, 64)
            .tcp(40000, 80, 0x0102_0304, 64240)
            .syn()
            .options(&[TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap()
            .write(out, &[])
            .unwrap()
    })
}

/// An IPv4 header with options, DSCP/ECN, identification and DF, for `payload_protocol`.
fn ipv4_header_with_options() -> Ipv4Header {
    let mut header = Ipv4Header::new(0, 17, IpNumber::UDP, V4_SRC, V4_DST).unwrap();
    header.options = [0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00].into(); // router alert, NOPs
    header.dscp = Ipv4Dscp::try_new(46).unwrap();
    header.ecn = Ipv4Ecn::try_new(1).unwrap();
    header.identification = 0xbeef;
    header.dont_fragment = true;
    header
}

/// IPv4 with 8 bytes of options, UDP with data, in a single 802.1Q tag.
pub fn vlan_ipv4_options_udp() -> Vec<u8> {
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .single_vlan(VlanId::try_new(100).unwrap())
            .ip(IpHeaders::Ipv4(
                ipv4_header_with_options(),
                Default::default(),
            ))
            .udp(5353, 53)
            .write(out, b"query")
            .unwrap()
    })
}

/// IPv4 with options, TCP with data and flags, in QinQ.
pub fn qinq_ipv4_options_tcp() -> Vec<u8> {
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .double_vlan(VlanId::try_new(10).unwrap(), VlanId::try_new(4094).unwrap())
            .ip(IpHeaders::Ipv4(
                ipv4_header_with_options(),
                Default::default(),
            ))
            .tcp(443, 51000, 7, 1000)
            .ack(99)
            .psh()
            .fin()
            .write(out, b"bye")
            .unwrap()
    })
}

/// IPv4 first fragment (more fragments, offset 0) carrying the start of a UDP datagram.
pub fn ipv4_first_fragment_udp() -> Vec<u8> {
    let mut header = Ipv4Header::new(0, 64, IpNumber::UDP, V4_SRC, V4_DST).unwrap();
    header.more_fragments = true;
    header.identification = 77;
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ip(IpHeaders::Ipv4(header, Default::default()))
            .udp(1000, 2000)
            .write(out, &[0x55; 24])
            .unwrap()
    })
}

/// IPv4 non-first fragment: offset 1480 bytes, raw payload (no transport header).
pub fn ipv4_later_fragment() -> Vec<u8> {
    let mut header = Ipv4Header::new(0, 64, IpNumber::UDP, V4_SRC, V4_DST).unwrap();
    header.fragment_offset = IpFragOffset::try_new(185).unwrap();
    header.identification = 77;
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ip(IpHeaders::Ipv4(header, Default::default()))
            .write(out, IpNumber::UDP, &[0x66; 16])
            .unwrap()
    })
}

/// ICMPv4 echo request.
pub fn ipv4_icmp_echo() -> Vec<u8> {
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv4(V4_SRC, V4_DST, 64)
            .icmpv4_echo_request(0x1234, 9)
            .write(out, b"abcdefgh")
            .unwrap()
    })
}

/// ICMPv4 "fragmentation needed" (MTU 1400) quoting the IP header and first 8 bytes of
/// [`ipv4_tcp_syn`] travelling the other way.
pub fn ipv4_icmp_frag_needed() -> Vec<u8> {
    let syn = ipv4_tcp_syn();
    let quoted = &syn[14..14 + 20 + 8];
    let kind =
        Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: 1400,
        });
    build(|out| {
        PacketBuilder::ethernet2(MAC_DST, MAC_SRC)
            .ipv4([203, 0, 113, 1], V4_SRC, 64)
            .icmpv4(kind)
            .write(out, quoted)
            .unwrap()
    })
}

/// IPv6 TCP SYN-ACK with a flow label and traffic class.
pub fn ipv6_tcp() -> Vec<u8> {
    let header = Ipv6Header {
        traffic_class: 0xb8,
        flow_label: Ipv6FlowLabel::try_new(0xabcde).unwrap(),
        hop_limit: 63,
        source: V6_SRC,
        destination: V6_DST,
        ..Default::default()
    };
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ip(IpHeaders::Ipv6(header, Default::default()))
            .tcp(80, 40000, 1, 65535)
            .syn()
            .ack(0x0102_0305)
            .write(out, &[])
            .unwrap()
    })
}

fn ipv6_header() -> Ipv6Header {
    Ipv6Header {
        hop_limit: 64,
        source: V6_SRC,
        destination: V6_DST,
        ..Default::default()
    }
}

/// IPv6 with hop-by-hop, destination options, routing and authentication headers, then UDP.
pub fn ipv6_exts_udp() -> Vec<u8> {
    let raw = |payload: &[u8]| Ipv6RawExtHeader::new_raw(IpNumber::UDP, payload).unwrap();
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(raw(&[1, 4, 0, 0, 0, 0])),
        destination_options: Some(raw(&[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        routing: Some(Ipv6RoutingExtensions {
            routing: raw(&[4, 0, 0, 0, 0, 0]),
            final_destination_options: None,
        }),
        fragment: None,
        auth: Some(IpAuthHeader::new(IpNumber::UDP, 0x100, 1, &[9, 9, 9, 9]).unwrap()),
    };
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ip(IpHeaders::Ipv6(ipv6_header(), exts))
            .udp(4000, 4001)
            .write(out, b"extension headers")
            .unwrap()
    })
}

/// Rewrites the offset/M word of the IPv6 fragment header at `at` as RFC 8200 section 4.5 lays
/// it out (offset in the top 13 bits, M in the lowest bit).
///
/// etherparse 0.16 writes and reads that word with the wrong bit positions (its issue #150,
/// fixed in later releases), so frames it builds with a fragment header are wrong on the wire.
fn fix_ipv6_fragment_word(frame: &mut [u8], at: usize, offset_units: u16, more: bool) {
    let word = (offset_units << 3) | u16::from(more);
    frame[at + 2..at + 4].copy_from_slice(&word.to_be_bytes());
}

/// IPv6 with a hop-by-hop header and a fragment header (first fragment: offset 0, more
/// fragments, identification 0xcafef00d), then the start of a UDP datagram.
pub fn ipv6_udp_fragment() -> Vec<u8> {
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[1, 4, 0, 0, 0, 0]).unwrap(),
        ),
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber::UDP,
            IpFragOffset::ZERO,
            true,
            0xcafe_f00d,
        )),
        ..Default::default()
    };
    let mut frame = build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ip(IpHeaders::Ipv6(ipv6_header(), exts))
            .udp(5000, 443)
            .write(out, &[0x77; 32])
            .unwrap()
    });
    fix_ipv6_fragment_word(&mut frame, 14 + 40 + 8, 0, true);
    frame
}

/// IPv6 non-first fragment: fragment header with offset 1232 bytes, no more fragments,
/// identification 0xcafef00d, then raw data.
pub fn ipv6_later_fragment() -> Vec<u8> {
    let exts = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber::UDP,
            IpFragOffset::try_new(154).unwrap(),
            false,
            0xcafe_f00d,
        )),
        ..Default::default()
    };
    let mut frame = build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ip(IpHeaders::Ipv6(ipv6_header(), exts))
            .write(out, IpNumber::UDP, &[0x88; 24])
            .unwrap()
    });
    fix_ipv6_fragment_word(&mut frame, 14 + 40, 154, false);
    frame
}

/// ICMPv6 echo request.
pub fn ipv6_icmpv6_echo() -> Vec<u8> {
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv6(V6_SRC, V6_DST, 255)
            .icmpv6_echo_request(0x4242, 1)
            .write(out, b"ping6")
            .unwrap()
    })
}

/// ICMPv6 packet too big (MTU 1280) quoting the start of [`ipv6_tcp`].
pub fn ipv6_icmpv6_packet_too_big() -> Vec<u8> {
    let inner = ipv6_tcp();
    build(|out| {
        PacketBuilder::ethernet2(MAC_DST, MAC_SRC)
            .ipv6(V6_DST, V6_SRC, 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(out, &inner[14..14 + 48])
            .unwrap()
    })
}

/// VXLAN (VNI 0x123456) over IPv4/UDP, carrying [`ipv4_tcp_syn`] as the inner frame.
pub fn vxlan_ipv4() -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0];
    payload.extend_from_slice(&ipv4_tcp_syn());
    build(|out| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64)
            .udp(49152, 4789)
            .write(out, &payload)
            .unwrap()
    })
}

/// Every test frame, by name.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("ipv4_tcp_syn", ipv4_tcp_syn()),
        ("vlan_ipv4_options_udp", vlan_ipv4_options_udp()),
        ("qinq_ipv4_options_tcp", qinq_ipv4_options_tcp()),
        ("ipv4_first_fragment_udp", ipv4_first_fragment_udp()),
        ("ipv4_later_fragment", ipv4_later_fragment()),
        ("ipv4_icmp_echo", ipv4_icmp_echo()),
        ("ipv4_icmp_frag_needed", ipv4_icmp_frag_needed()),
        ("ipv6_tcp", ipv6_tcp()),
        ("ipv6_exts_udp", ipv6_exts_udp()),
        ("ipv6_udp_fragment", ipv6_udp_fragment()),
        ("ipv6_later_fragment", ipv6_later_fragment()),
        ("ipv6_icmpv6_echo", ipv6_icmpv6_echo()),
        ("ipv6_icmpv6_packet_too_big", ipv6_icmpv6_packet_too_big()),
        ("vxlan_ipv4", vxlan_ipv4()),
    ]
}

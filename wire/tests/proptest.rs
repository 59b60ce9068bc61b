//! Property tests: no input makes a checked view or its accessors panic (every view, accessor,
//! setter and writer is run by `common::exercise`), and where etherparse accepts an IPv4,
//! IPv6, TCP or UDP header, dnlb-wire reads the same fields.

mod common;

use common::exercise::exercise;
use common::packets;
use dnlb_wire::ethernet::EthernetFrame;
use dnlb_wire::ipv4::Ipv4Packet;
use dnlb_wire::ipv6::Ipv6Packet;
use dnlb_wire::tcp::TcpPacket;
use dnlb_wire::udp::UdpPacket;
use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice, TcpHeaderSlice, UdpHeaderSlice};
use proptest::prelude::*;

/// A valid test frame, cut at a random length and with a few random bytes overwritten.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    let frames = packets::all();
    (
        0..frames.len(),
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    )
        .prop_map(move |(which, cut, edits)| {
            let mut frame = frames[which].1.clone();
            for (at, value) in edits {
                let at = at.index(frame.len());
                frame[at] = value;
            }
            if let Some(cut) = cut {
                frame.truncate(cut.index(frame.len() + 1));
            }
            frame
        })
}

/// Arbitrary bytes, biased to look like the start of the headers under test.
fn header_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let first = prop_oneof![
        any::<u8>(),
        (0x45u8..=0x4f), // IPv4 with valid IHL
        (0x60u8..=0x6f), // IPv6
    ];
    (first, prop::collection::vec(any::<u8>(), 0..120)).prop_map(|(first, mut rest)| {
        rest.insert(0, first);
        rest
    })
}

/// The IP packet inside a (possibly mutated) Ethernet frame, if the frame is long enough.
fn ip_part(frame: &[u8]) -> &[u8] {
    match EthernetFrame::new_checked(frame) {
        Ok(eth) => &frame[eth.header_len()..],
        Err(_) => &[],
    }
}

fn check_ipv4_agreement(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mine = Ipv4Packet::new_checked(bytes);
    let Ok(theirs) = Ipv4HeaderSlice::from_slice(bytes) else {
        prop_assert!(
            mine.is_err(),
            "dnlb-wire accepted an IPv4 header etherparse refused"
        );
        return Ok(());
    };
    // etherparse's header slice does not check the total length; dnlb-wire does.
    let total = usize::from(theirs.total_len());
    let header_len = usize::from(theirs.ihl()) * 4;
    prop_assert_eq!(mine.is_ok(), total >= header_len && total <= bytes.len());
    if let Ok(mine) = mine {
        prop_assert_eq!(mine.header_len(), header_len);
        prop_assert_eq!(mine.total_len(), theirs.total_len());
        prop_assert_eq!(mine.tos(), theirs.dcp().value() << 2 | theirs.ecn().value());
        prop_assert_eq!(mine.ident(), theirs.identification());
        prop_assert_eq!(mine.dont_fragment(), theirs.dont_fragment());
        prop_assert_eq!(mine.more_fragments(), theirs.more_fragments());
        prop_assert_eq!(mine.frag_offset(), theirs.fragments_offset().byte_offset());
        prop_assert_eq!(mine.is_fragment(), theirs.is_fragmenting_payload());
        prop_assert_eq!(mine.ttl(), theirs.ttl());
        prop_assert_eq!(mine.protocol(), theirs.protocol().0);
        prop_assert_eq!(mine.header_checksum(), theirs.header_checksum());
        prop_assert_eq!(mine.src(), theirs.source_addr());
        prop_assert_eq!(mine.dst(), theirs.destination_addr());
        prop_assert_eq!(mine.options(), theirs.options());
        // Over the raw header bytes: `to_header()` would drop the reserved
        // ("evil") flag bit and so recompute a different checksum.
        let theirs_valid = etherparse::checksum::Sum16BitWords::new()
            .add_slice(&bytes[..header_len])
            .ones_complement()
            == 0;
        prop_assert_eq!(mine.verify_checksum(), theirs_valid);
    }
    Ok(())
}

fn check_ipv6_agreement(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mine = Ipv6Packet::new_checked(bytes);
    let Ok(theirs) = Ipv6HeaderSlice::from_slice(bytes) else {
        prop_assert!(
            mine.is_err(),
            "dnlb-wire accepted an IPv6 header etherparse refused"
        );
        return Ok(());
    };
    let end = 40 + usize::from(theirs.payload_length());
    prop_assert_eq!(mine.is_ok(), end <= bytes.len());
    if let Ok(mine) = mine {
        prop_assert_eq!(mine.traffic_class(), theirs.traffic_class());
        prop_assert_eq!(mine.flow_label(), theirs.flow_label().value());
        prop_assert_eq!(mine.payload_len(), theirs.payload_length());
        prop_assert_eq!(mine.next_header(), theirs.next_header().0);
        prop_assert_eq!(mine.hop_limit(), theirs.hop_limit());
        prop_assert_eq!(mine.src(), theirs.source_addr());
        prop_assert_eq!(mine.dst(), theirs.destination_addr());
    }
    Ok(())
}

fn check_tcp_agreement(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mine = TcpPacket::new_checked(bytes);
    let theirs = TcpHeaderSlice::from_slice(bytes);
    prop_assert_eq!(mine.is_ok(), theirs.is_ok());
    if let (Ok(mine), Ok(theirs)) = (mine, theirs) {
        prop_assert_eq!(mine.src_port(), theirs.source_port());
        prop_assert_eq!(mine.dst_port(), theirs.destination_port());
        prop_assert_eq!(mine.seq_number(), theirs.sequence_number());
        prop_assert_eq!(mine.ack_number(), theirs.acknowledgment_number());
        prop_assert_eq!(mine.header_len(), usize::from(theirs.data_offset()) * 4);
        let f = mine.flags();
        prop_assert_eq!(
            [
                f.fin(),
                f.syn(),
                f.rst(),
                f.psh(),
                f.ack(),
                f.urg(),
                f.ece(),
                f.cwr(),
                f.ns()
            ],
            [
                theirs.fin(),
                theirs.syn(),
                theirs.rst(),
                theirs.psh(),
                theirs.ack(),
                theirs.urg(),
                theirs.ece(),
                theirs.cwr(),
                theirs.ns()
            ]
        );
        prop_assert_eq!(mine.window(), theirs.window_size());
        prop_assert_eq!(mine.checksum(), theirs.checksum());
        prop_assert_eq!(mine.urgent_pointer(), theirs.urgent_pointer());
        prop_assert_eq!(mine.options(), theirs.options());
    }
    Ok(())
}

fn check_udp_agreement(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mine = UdpPacket::new_checked(bytes);
    let Ok(theirs) = UdpHeaderSlice::from_slice(bytes) else {
        prop_assert!(mine.is_err());
        return Ok(());
    };
    // etherparse's header slice does not check the length field; dnlb-wire does.
    let len = usize::from(theirs.length());
    prop_assert_eq!(mine.is_ok(), len >= 8 && len <= bytes.len());
    if let Ok(mine) = mine {
        prop_assert_eq!(mine.src_port(), theirs.source_port());
        prop_assert_eq!(mine.dst_port(), theirs.destination_port());
        prop_assert_eq!(mine.len(), theirs.length());
        prop_assert_eq!(mine.checksum(), theirs.checksum());
    }
    Ok(())
}

#[test]
fn every_test_frame_passes_the_exercise() {
    for (_, frame) in packets::all() {
        exercise(&frame);
        exercise(ip_part(&frame));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..160)) {
        exercise(&data);
    }

    #[test]
    fn header_like_bytes_never_panic(data in header_like_bytes()) {
        exercise(&data);
    }

    #[test]
    fn mutated_frames_never_panic(frame in mutated_frame()) {
        exercise(&frame);
        exercise(ip_part(&frame));
    }

    #[test]
    fn views_agree_with_etherparse_on_arbitrary_bytes(data in header_like_bytes()) {
        check_ipv4_agreement(&data)?;
        check_ipv6_agreement(&data)?;
        check_tcp_agreement(&data)?;
        check_udp_agreement(&data)?;
    }

    #[test]
    fn views_agree_with_etherparse_on_mutated_frames(frame in mutated_frame()) {
        let ip = ip_part(&frame);
        check_ipv4_agreement(ip)?;
        check_ipv6_agreement(ip)?;
        // The transport header after a (mutated) fixed IP header without options.
        for offset in [20, 24, 28, 40, 56] {
            if let Some(l4) = ip.get(offset..) {
                check_tcp_agreement(l4)?;
                check_udp_agreement(l4)?;
            }
        }
    }
}

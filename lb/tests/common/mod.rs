//! Frame builders shared by the lb test tables (fixtures, hostile inputs,
//! protection): what etherparse's `PacketBuilder` cannot write by itself —
//! IPv4 fragments and ICMP messages with a given header — with correct
//! checksums, as a router would send them to the gateway; and, for the sync
//! tests, what a peer gateway learns of the exceptions one shares.

#![allow(dead_code, reason = "each test binary uses a part")]

use dnlb_lb::processor::{Exception, LearnOp};
use etherparse::checksum::Sum16BitWords;
use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder};

/// The gateway's MAC.
pub const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The router's MAC (the frames' source).
pub const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

/// An IPv4 fragment `src` → `dst` (TTL 61, identification 0x1234) at byte
/// offset `off` (a multiple of 8), with the more-fragments flag `more`.
pub fn ipv4_fragment(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    off: u16,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = Ipv4Header::new(payload.len() as u16, 61, IpNumber(proto), src, dst).unwrap();
    h.identification = 0x1234;
    h.more_fragments = more;
    h.fragment_offset = etherparse::IpFragOffset::try_new(off / 8).unwrap();
    h.header_checksum = h.calc_header_checksum();
    let mut f = Vec::new();
    ethernet(&mut f, EtherType::IPV4);
    h.write(&mut f).unwrap();
    f.extend_from_slice(payload);
    f
}

/// An ICMPv4 message `from` → `to` (TTL 64): the 8-byte header `head`
/// (type, code, checksum — filled in here — and the rest of the header),
/// then `body`.
pub fn icmp4(from: [u8; 4], to: [u8; 4], head: [u8; 8], body: &[u8]) -> Vec<u8> {
    let mut icmp = head.to_vec();
    icmp.extend_from_slice(body);
    icmp[2..4].fill(0);
    let c = Sum16BitWords::new()
        .add_slice(&icmp)
        .ones_complement()
        .to_be();
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(from, to, 64)
        .write(&mut out, IpNumber(1), &icmp)
        .unwrap();
    out
}

/// An ICMPv6 message `from` → `to` (hop limit 64), like [`icmp4`], its
/// checksum over the pseudo header.
pub fn icmp6(from: [u8; 16], to: [u8; 16], head: [u8; 8], body: &[u8]) -> Vec<u8> {
    let mut icmp = head.to_vec();
    icmp.extend_from_slice(body);
    icmp[2..4].fill(0);
    let sum = Sum16BitWords::new()
        .add_16bytes(from)
        .add_16bytes(to)
        .add_4bytes((icmp.len() as u32).to_be_bytes())
        .add_2bytes([0, 58])
        .add_slice(&icmp)
        .ones_complement()
        .to_be();
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut out = Vec::new();
    ethernet(&mut out, EtherType::IPV6);
    Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: icmp.len() as u16,
        next_header: IpNumber(58),
        hop_limit: 64,
        source: from,
        destination: to,
    }
    .write(&mut out)
    .unwrap();
    out.extend_from_slice(&icmp);
    out
}

/// The Ethernet header router → gateway.
fn ethernet(out: &mut Vec<u8>, ether_type: EtherType) {
    Ethernet2Header {
        destination: GW_MAC,
        source: ROUTER_MAC,
        ether_type,
    }
    .write(out)
    .unwrap();
}

/// What a peer gateway (with the same listener slots and backend ids) is
/// told of the exceptions `found`.
pub fn learn_ops(found: impl IntoIterator<Item = Exception>) -> Vec<LearnOp> {
    found
        .into_iter()
        .map(|e| LearnOp::Add {
            listener_slot: e.listener_slot,
            hash: e.hash,
            backend: e.backend,
            remaining_ms: e.remaining_ms,
            closing: e.closing,
        })
        .collect()
}

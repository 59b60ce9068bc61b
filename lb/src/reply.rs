//! Packets the gateway answers itself, rewritten in place: ICMP echo
//! replies, and "fragmentation needed" / "packet too big" for packets that
//! would exceed the egress MTU once encapsulated. Also the parsing of the
//! invoking packet quoted in an ICMP error.
//!
//! Replies keep the frame's L2 header (VLAN tags included) with the MACs
//! swapped, so they leave toward the router the packet came from.

use dnlb_wire::checksum;
use dnlb_wire::icmp;
use dnlb_wire::ip::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

use dnlb_wire::buf::PacketBuf;

/// TTL / hop limit of generated replies.
pub const REPLY_TTL: u8 = 64;
/// Bytes of the offending packet quoted in an ICMPv4 error (RFC 1812: the
/// whole error should fit in 576 bytes).
pub const QUOTE_V4: usize = 576 - 20 - 8;
/// Bytes quoted in an ICMPv6 error (RFC 4443: fit in the minimum MTU).
pub const QUOTE_V6: usize = 1280 - 40 - 8;

/// Addresses and ports of the packet quoted in an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<A> {
    /// Its source (for a VIP flow: the VIP).
    pub src: A,
    /// Its destination (the client).
    pub dst: A,
    /// TCP or UDP.
    pub proto: u8,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// Parses the IPv4 header and the first 4 bytes of TCP/UDP quoted in an
/// ICMPv4 error (the quote is usually truncated, so lengths are not checked
/// against the IP total length).
pub fn inner_v4(q: &[u8]) -> Option<Quoted<[u8; 4]>> {
    let first = *q.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = (first & 0x0f) as usize * 4;
    if ihl < 20 || q.len() < ihl + 4 {
        return None;
    }
    let frag = u16::from_be_bytes([q[6], q[7]]) & 0x1fff;
    let proto = q[9];
    if frag != 0 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        return None;
    }
    Some(Quoted {
        src: q[12..16].try_into().ok()?,
        dst: q[16..20].try_into().ok()?,
        proto,
        sport: u16::from_be_bytes([q[ihl], q[ihl + 1]]),
        dport: u16::from_be_bytes([q[ihl + 2], q[ihl + 3]]),
    })
}

/// Parses the IPv6 header and first 4 bytes of TCP/UDP quoted in an ICMPv6
/// error. Quoted packets with extension headers are not followed.
pub fn inner_v6(q: &[u8]) -> Option<Quoted<[u8; 16]>> {
    if q.len() < 44 || q[0] >> 4 != 6 {
        return None;
    }
    let proto = q[6];
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return None;
    }
    Some(Quoted {
        src: q[8..24].try_into().ok()?,
        dst: q[24..40].try_into().ok()?,
        proto,
        sport: u16::from_be_bytes([q[40], q[41]]),
        dport: u16::from_be_bytes([q[42], q[43]]),
    })
}

/// Addresses a reply: destination MAC = the frame's source (the router it
/// came from), source MAC = ours.
fn swap_macs(l2: &mut [u8], src_mac: [u8; 6]) {
    let (dst, rest) = l2.split_at_mut(6);
    dst.copy_from_slice(&rest[..6]);
    rest[..6].copy_from_slice(&src_mac);
}

/// Turns an ICMPv4 echo request at `l2` into the reply, in place.
pub fn echo_reply_v4<P: PacketBuf>(pkt: &mut P, l2: usize, src_mac: [u8; 6]) -> Option<()> {
    let d = pkt.data_mut();
    let ip = d.get_mut(l2..)?;
    let ihl = (ip.first()? & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]) as usize;
    if ip.len() < total || total < ihl + 8 {
        return None;
    }
    // Swap source and destination in place (no copy to the heap).
    let (src, dst) = ip[12..20].split_at_mut(4);
    src.swap_with_slice(dst);
    ip[8] = REPLY_TTL;
    ip[10] = 0;
    ip[11] = 0;
    let c = checksum::checksum(&ip[..ihl]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let m = &mut ip[ihl..total];
    let old = u16::from_be_bytes([m[0], m[1]]);
    m[0] = icmp::ICMPV4_ECHO_REPLY;
    let new = u16::from_be_bytes([m[0], m[1]]);
    let c = checksum::update_16(u16::from_be_bytes([m[2], m[3]]), old, new);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    swap_macs(&mut d[..l2], src_mac);
    Some(())
}

/// Turns an ICMPv6 echo request (IPv6 header at `l2`, ICMPv6 at `icmp_at`)
/// into the reply, in place.
pub fn echo_reply_v6<P: PacketBuf>(
    pkt: &mut P,
    l2: usize,
    icmp_at: usize,
    src_mac: [u8; 6],
) -> Option<()> {
    let d = pkt.data_mut();
    let ip = d.get_mut(l2..)?;
    if ip.len() < 40 {
        return None;
    }
    let end = 40 + u16::from_be_bytes([ip[4], ip[5]]) as usize;
    let at = icmp_at - l2;
    if ip.len() < end || end < at + 8 {
        return None;
    }
    let (src, dst) = ip[8..40].split_at_mut(16);
    src.swap_with_slice(dst);
    ip[7] = REPLY_TTL;
    let m = &mut ip[at..end];
    let old = u16::from_be_bytes([m[0], m[1]]);
    m[0] = icmp::ICMPV6_ECHO_REPLY;
    let new = u16::from_be_bytes([m[0], m[1]]);
    // Swapping source and destination leaves the pseudo-header sum unchanged.
    let c = checksum::update_16(u16::from_be_bytes([m[2], m[3]]), old, new);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    swap_macs(&mut d[..l2], src_mac);
    Some(())
}

/// Moves the L2 header `grow` bytes to the front, opening room between it
/// and the IP packet for new headers; trims the packet so that `keep` bytes
/// of the IP packet remain. Returns the (new) frame.
fn open_room<P: PacketBuf>(pkt: &mut P, l2: usize, keep: usize, grow: usize) -> Option<&mut [u8]> {
    let excess = pkt.len().checked_sub(l2 + keep)?;
    pkt.trim(excess as u16)?;
    pkt.prepend(grow as u16)?;
    let d = pkt.data_mut();
    d.copy_within(grow..grow + l2, 0);
    Some(d)
}

/// Replaces the IPv4 packet at `l2` (`ip_len` bytes) with an ICMP
/// "fragmentation needed" (type 3 code 4, next-hop MTU `mtu`) to its sender,
/// quoting its start. `None` if the headroom is too small.
pub fn frag_needed_v4<P: PacketBuf>(
    pkt: &mut P,
    l2: usize,
    ip_len: usize,
    mtu: u16,
    src_mac: [u8; 6],
) -> Option<()> {
    let quote = ip_len.min(QUOTE_V4);
    let (vip, client) = {
        let ip = pkt.data().get(l2..l2 + 20)?;
        (
            <[u8; 4]>::try_from(&ip[16..20]).ok()?,
            <[u8; 4]>::try_from(&ip[12..16]).ok()?,
        )
    };
    let d = open_room(pkt, l2, quote, 28)?;
    swap_macs(&mut d[..l2], src_mac);
    let total = (28 + quote) as u16;
    let ip = &mut d[l2..l2 + 20];
    ip.copy_from_slice(&[
        0x45,
        0,
        0,
        0,
        0,
        0,
        0x40,
        0,
        REPLY_TTL,
        IPPROTO_ICMP,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[12..16].copy_from_slice(&vip);
    ip[16..20].copy_from_slice(&client);
    let c = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let m = &mut d[l2 + 20..];
    m[..8].copy_from_slice(&[icmp::ICMPV4_DEST_UNREACHABLE, 4, 0, 0, 0, 0, 0, 0]);
    m[6..8].copy_from_slice(&mtu.to_be_bytes());
    let c = checksum::checksum(m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    Some(())
}

/// Replaces the IPv6 packet at `l2` (`ip_len` bytes) with an ICMPv6
/// "packet too big" (MTU `mtu`) to its sender, quoting its start.
pub fn packet_too_big_v6<P: PacketBuf>(
    pkt: &mut P,
    l2: usize,
    ip_len: usize,
    mtu: u32,
    src_mac: [u8; 6],
) -> Option<()> {
    let quote = ip_len.min(QUOTE_V6);
    let (vip, client) = {
        let ip = pkt.data().get(l2..l2 + 40)?;
        (
            <[u8; 16]>::try_from(&ip[24..40]).ok()?,
            <[u8; 16]>::try_from(&ip[8..24]).ok()?,
        )
    };
    let d = open_room(pkt, l2, quote, 48)?;
    swap_macs(&mut d[..l2], src_mac);
    let plen = (8 + quote) as u16;
    let ip = &mut d[l2..l2 + 40];
    ip[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, IPPROTO_ICMPV6, REPLY_TTL]);
    ip[4..6].copy_from_slice(&plen.to_be_bytes());
    ip[8..24].copy_from_slice(&vip);
    ip[24..40].copy_from_slice(&client);
    let m = &mut d[l2 + 40..];
    m[..8].copy_from_slice(&[icmp::ICMPV6_PACKET_TOO_BIG, 0, 0, 0, 0, 0, 0, 0]);
    m[4..8].copy_from_slice(&mtu.to_be_bytes());
    let pseudo = checksum::pseudo_header_v6(vip.into(), client.into(), IPPROTO_ICMPV6, plen as u32);
    let c = checksum::fold(checksum::combine(pseudo, checksum::sum(m)));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    Some(())
}

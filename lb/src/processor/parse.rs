//! The validated parse of one frame: where its IP packet is and what it
//! carries, as a [`Parsed`] value. Pure: it reads the bytes through the
//! `dnlb-wire` views, looks at no state and decides nothing about listeners
//! or backends. What is malformed is a [`DropReason`] here; what is
//! malformed only if it turns out to be for a VIP (an ICMP message) is
//! parsed only when the processor asks ([`Family::icmp`]), so it keeps the
//! rule "not for a VIP: not ours". [`Frame`] and [`Parsed`] are small plain
//! values so that the parse costs nothing to hand over (no memory round trip
//! on the per-packet path).

use dnlb_wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use dnlb_wire::icmp;
use dnlb_wire::ip::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use dnlb_wire::ipv4::Ipv4Packet;
use dnlb_wire::ipv6::Ipv6Packet;
use dnlb_wire::tcp::{TcpFlags, TcpPacket};
use dnlb_wire::udp::UdpPacket;

use crate::hash;
use crate::reply::{self, Quoted};
use crate::verdict::DropReason;
use crate::vip::{addr_key_v4, addr_key_v6, VipMatch, VipTable};

/// Addresses, protocol and ports of a flow.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuple<A> {
    pub src: A,
    pub dst: A,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

impl<A: Copy> Tuple<A> {
    /// The client → VIP flow of a packet a backend sent VIP → client (the
    /// packet an ICMP error quotes).
    pub fn of_quoted(q: &Quoted<A>) -> Self {
        Tuple {
            src: q.dst,
            dst: q.src,
            proto: q.proto,
            sport: q.dport,
            dport: q.sport,
        }
    }
}

/// Where the inner IP packet is in the frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    /// Offset of the IP header.
    pub l2: usize,
    /// Length of the IP packet.
    pub ip_len: usize,
    /// IPv6.
    pub v6: bool,
    /// IPv4 DF bit (IPv6: always true: routers never fragment).
    pub df: bool,
}

impl Frame {
    /// Offset of the end of the IP packet (where Ethernet padding starts).
    #[inline(always)]
    fn end(&self) -> usize {
        self.l2 + self.ip_len
    }
}

/// What differs between IPv4 and IPv6: the address type and the hash and
/// table-key functions over it.
pub(super) trait Family {
    type Addr: Copy;
    fn key(a: Self::Addr) -> u128;
    /// The listener of a packet to `dst`, `proto`, `port`.
    fn listener(vips: &VipTable, dst: Self::Addr, proto: u8, port: u16) -> VipMatch;
    /// Whether it is IPv6.
    const IS_V6: bool;
    /// Whether [`Family::memo_key`] alone tells destinations apart (IPv4:
    /// the address fits in it); else [`Family::memo_addr`] too.
    const MEMO_KEY_EXACT: bool;
    /// `dst`, `proto` and `port` in one word, for the fast path's
    /// [`super::fast::ListenerMemo`] (IPv6: `proto` and `port`, and the
    /// top bit set, so that it never equals an IPv4 key; never `u64::MAX`,
    /// the empty memo's key).
    fn memo_key(dst: Self::Addr, proto: u8, port: u16) -> u64;
    /// The address, where [`Family::memo_key`] does not hold it (IPv6).
    fn memo_addr(dst: Self::Addr) -> u128;
    /// The scheduler's 5-tuple hash before its last round
    /// ([`hash::flow_mix_v4`]; [`hash::flow_hash_of_mix`] finishes it): the
    /// flow's entropy for outer headers.
    fn flow_mix(t: &Tuple<Self::Addr>) -> u64;
    /// The part of [`Family::flow_mix`] that depends on the destination
    /// alone, where there is one worth sharing ([`hash::flow_mix_v6_dst`];
    /// IPv4: 0, unused).
    fn dst_mix(dst: Self::Addr) -> u64;
    /// [`Family::flow_mix`] of `t`, whose destination's part is `dst_mix`.
    fn flow_mix_with(t: &Tuple<Self::Addr>, dst_mix: u64) -> u64;
    fn src_hash(a: Self::Addr) -> u64;
    fn addr_hash(src: Self::Addr, dst: Self::Addr, proto: u8) -> u64;
    /// What access list `acl` says of source `src`.
    fn acl(acl: &crate::acl::AclTable, src: Self::Addr) -> crate::acl::AclCode;
    /// A source address folded to 64 bits, for the per-source limiters
    /// (which hash it with a secret seed).
    fn src_key(a: Self::Addr) -> u64;
    /// The ICMP message at frame offset `at` of a packet parsed as
    /// [`L4::Icmp`].
    fn icmp(d: &[u8], frame: &Frame, at: usize) -> Result<Icmp<Self::Addr>, DropReason>;
}

/// IPv4.
pub(super) struct V4;
/// IPv6.
pub(super) struct V6;

impl Family for V4 {
    type Addr = [u8; 4];
    #[inline(always)]
    fn key(a: [u8; 4]) -> u128 {
        addr_key_v4(a)
    }
    #[inline(always)]
    fn listener(vips: &VipTable, dst: [u8; 4], proto: u8, port: u16) -> VipMatch {
        vips.lookup_v4(dst, proto, port)
    }
    const IS_V6: bool = false;
    const MEMO_KEY_EXACT: bool = true;
    #[inline(always)]
    fn memo_key(dst: [u8; 4], proto: u8, port: u16) -> u64 {
        // 56 bits: never u64::MAX, the empty memo's key.
        let addr = u64::from(u32::from_be_bytes(dst));
        addr << 24 | u64::from(proto) << 16 | u64::from(port)
    }
    #[inline(always)]
    fn memo_addr(_: [u8; 4]) -> u128 {
        0
    }
    #[inline(always)]
    fn acl(acl: &crate::acl::AclTable, src: [u8; 4]) -> crate::acl::AclCode {
        acl.code_v4(src)
    }
    #[inline(always)]
    fn src_key(a: [u8; 4]) -> u64 {
        u64::from(u32::from_be_bytes(a))
    }
    #[inline(always)]
    fn flow_mix(t: &Tuple<[u8; 4]>) -> u64 {
        hash::flow_mix_v4(t.src, t.dst, t.proto, t.sport, t.dport)
    }
    #[inline(always)]
    fn dst_mix(_: [u8; 4]) -> u64 {
        0
    }
    #[inline(always)]
    fn flow_mix_with(t: &Tuple<[u8; 4]>, _: u64) -> u64 {
        Self::flow_mix(t)
    }
    #[inline(always)]
    fn src_hash(a: [u8; 4]) -> u64 {
        hash::src_hash_v4(a)
    }
    #[inline(always)]
    fn addr_hash(src: [u8; 4], dst: [u8; 4], proto: u8) -> u64 {
        hash::addr_hash_v4(src, dst, proto)
    }
    fn icmp(d: &[u8], frame: &Frame, at: usize) -> Result<Icmp<[u8; 4]>, DropReason> {
        icmp_v4(&d[at..frame.end()], frame.l2)
    }
}

impl Family for V6 {
    type Addr = [u8; 16];
    #[inline(always)]
    fn key(a: [u8; 16]) -> u128 {
        addr_key_v6(a)
    }
    #[inline(always)]
    fn listener(vips: &VipTable, dst: [u8; 16], proto: u8, port: u16) -> VipMatch {
        vips.lookup_v6(dst, proto, port)
    }
    const IS_V6: bool = true;
    const MEMO_KEY_EXACT: bool = false;
    #[inline(always)]
    fn memo_key(_: [u8; 16], proto: u8, port: u16) -> u64 {
        1 << 63 | u64::from(proto) << 16 | u64::from(port)
    }
    #[inline(always)]
    fn memo_addr(dst: [u8; 16]) -> u128 {
        u128::from_ne_bytes(dst)
    }
    #[inline(always)]
    fn acl(acl: &crate::acl::AclTable, src: [u8; 16]) -> crate::acl::AclCode {
        acl.code_v6(src)
    }
    #[inline(always)]
    fn src_key(a: [u8; 16]) -> u64 {
        let k = u128::from_be_bytes(a);
        (k >> 64) as u64 ^ (k as u64).rotate_left(29)
    }
    #[inline(always)]
    fn flow_mix(t: &Tuple<[u8; 16]>) -> u64 {
        hash::flow_mix_v6(t.src, t.dst, t.proto, t.sport, t.dport)
    }
    #[inline(always)]
    fn dst_mix(dst: [u8; 16]) -> u64 {
        hash::flow_mix_v6_dst(dst)
    }
    #[inline(always)]
    fn flow_mix_with(t: &Tuple<[u8; 16]>, dst_mix: u64) -> u64 {
        hash::flow_mix_v6_with(t.src, dst_mix, t.proto, t.sport, t.dport)
    }
    #[inline(always)]
    fn src_hash(a: [u8; 16]) -> u64 {
        hash::src_hash_v6(a)
    }
    #[inline(always)]
    fn addr_hash(src: [u8; 16], dst: [u8; 16], proto: u8) -> u64 {
        hash::addr_hash_v6(src, dst, proto)
    }
    fn icmp(d: &[u8], frame: &Frame, at: usize) -> Result<Icmp<[u8; 16]>, DropReason> {
        let m = icmp::Icmpv6Packet::new_checked(&d[at..frame.end()])
            .map_err(|_| DropReason::MalformedL4)?;
        icmp_v6(&m, at)
    }
}

/// An ICMP message to an address that may be a VIP.
#[derive(Debug, Clone, Copy)]
pub(super) enum Icmp<A> {
    /// An echo request; its ICMP header starts at this frame offset.
    EchoRequest { icmp_at: usize },
    /// An error quoting a packet (for a VIP: one a backend sent).
    Error(Quoted<A>),
}

/// What a frame carries: its addresses, protocol and ports, and what
/// follows the IP header(s). Plain scalars and a field-less kind (no enum
/// with data), so that the value stays in registers between the parse and
/// the processor.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parsed<A> {
    /// Addresses and protocol; the ports of [`L4::Ports`] (zero otherwise).
    pub t: Tuple<A>,
    /// What follows the IP header(s).
    pub l4: L4,
    /// TCP flags of [`L4::Ports`] (none for UDP and anything else).
    pub tcp_flags: TcpFlags,
    /// Frame offset of the upper-layer header (the message of [`L4::Icmp`]).
    pub l4_at: usize,
}

/// What follows the IP header(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum L4 {
    /// TCP or UDP, not a fragment: ports validated.
    Ports,
    /// An IP fragment (its ports may be in another fragment).
    Fragment,
    /// An ICMP message at `l4_at`; [`Family::icmp`] parses it (what is
    /// wrong with it counts only if the packet is for a VIP).
    Icmp,
    /// The host's own business whatever the address (neighbour discovery,
    /// router messages).
    Host,
    /// Another protocol.
    Other,
}

/// Parses an Ethernet frame: the IP packet's place and what it carries.
/// `Ok(None)`: not IP.
#[inline]
pub(super) fn frame(d: &[u8]) -> Result<Option<(u16, usize)>, DropReason> {
    let e =
        dnlb_wire::ethernet::EthernetFrame::new_checked(d).map_err(|_| DropReason::MalformedL2)?;
    Ok(match e.ethertype() {
        t @ (ETHERTYPE_IPV4 | ETHERTYPE_IPV6) => Some((t, e.header_len())),
        _ => None,
    })
}

/// Parses the IPv4 packet at `l2`.
#[inline(always)]
pub(super) fn ipv4(d: &[u8], l2: usize) -> Result<(Frame, Parsed<[u8; 4]>), DropReason> {
    let ip = Ipv4Packet::new_checked(&d[l2..]).map_err(|_| DropReason::MalformedL3)?;
    let frame = Frame {
        l2,
        ip_len: ip.total_len() as usize,
        v6: false,
        df: ip.dont_fragment(),
    };
    let mut p = Parsed {
        t: Tuple {
            src: ip.src().octets(),
            dst: ip.dst().octets(),
            proto: ip.protocol(),
            sport: 0,
            dport: 0,
        },
        l4: L4::Other,
        tcp_flags: TcpFlags::default(),
        l4_at: l2 + ip.header_len(),
    };
    if ip.is_fragment() {
        p.l4 = L4::Fragment;
        return Ok((frame, p));
    }
    match p.t.proto {
        IPPROTO_TCP | IPPROTO_UDP => ports(&mut p, ip.payload())?,
        IPPROTO_ICMP => p.l4 = L4::Icmp,
        _ => {}
    }
    Ok((frame, p))
}

/// The usual frame, parsed in few steps: untagged Ethernet, an IPv4
/// header without options, not a fragment, TCP or UDP whose headers fit.
/// `None` for anything else, which [`frame`] and [`ipv4`] then parse
/// (and judge). Whatever this accepts, they accept too and parse to the
/// same value (a test checks it on mutated frames); it only saves their
/// general steps (VLAN walk, option lengths, views) on every packet.
#[inline(always)]
pub(super) fn fast_v4(d: &[u8]) -> Option<(Frame, Parsed<[u8; 4]>)> {
    let h: &[u8; 38] = d.first_chunk()?;
    // EtherType 0x0800, and version 4 with a 20-byte header: two compares
    // with the frame's bytes in place (a 24-bit value would be assembled
    // from two loads first).
    if [h[12], h[13]] != [0x08, 0x00] || h[14] != 0x45 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let flags = u16::from_be_bytes([h[20], h[21]]);
    // At least a UDP header after the IP header (TCP's is checked below).
    if flags & 0x3fff != 0 || total < 28 || 14 + total > d.len() {
        return None;
    }
    let proto = h[23];
    let tcp_flags = fast_l4(d, proto, 34, total - 20)?;
    Some((
        Frame {
            l2: 14,
            ip_len: total,
            v6: false,
            df: flags & 0x4000 != 0,
        },
        with_ports(
            [h[26], h[27], h[28], h[29]],
            [h[30], h[31], h[32], h[33]],
            proto,
            [h[34], h[35], h[36], h[37]],
            tcp_flags,
            34,
        ),
    ))
}

/// [`fast_v4`] for IPv6 without extension headers.
#[inline(always)]
pub(super) fn fast_v6(d: &[u8]) -> Option<(Frame, Parsed<[u8; 16]>)> {
    let h: &[u8; 58] = d.first_chunk()?;
    if h[12] != 0x86 || h[13] != 0xdd || h[14] >> 4 != 6 {
        return None;
    }
    let l4 = usize::from(u16::from_be_bytes([h[18], h[19]]));
    if 54 + l4 > d.len() {
        return None;
    }
    let proto = h[20];
    let tcp_flags = fast_l4(d, proto, 54, l4)?;
    let (src, dst) = (h[22..38].try_into().ok()?, h[38..54].try_into().ok()?);
    Some((
        Frame {
            l2: 14,
            ip_len: 40 + l4,
            v6: true,
            df: true,
        },
        with_ports(src, dst, proto, [h[54], h[55], h[56], h[57]], tcp_flags, 54),
    ))
}

/// The source-IP scheduler's hash of a frame [`fast_v4`] (`v6`: [`fast_v6`])
/// accepted: its client address is at a fixed offset.
#[inline]
pub(super) fn src_hash_at(d: &[u8], v6: bool) -> Option<u64> {
    Some(if v6 {
        V6::src_hash(*d.get(22..38)?.first_chunk()?)
    } else {
        V4::src_hash(*d.get(26..30)?.first_chunk()?)
    })
}

/// A TCP/UDP packet's [`Parsed`] value: its ports are the first 4 bytes of
/// the header at frame offset `l4_at`.
#[inline(always)]
fn with_ports<A>(
    src: A,
    dst: A,
    proto: u8,
    p: [u8; 4],
    tcp_flags: TcpFlags,
    l4_at: usize,
) -> Parsed<A> {
    Parsed {
        t: Tuple {
            src,
            dst,
            proto,
            sport: u16::from_be_bytes([p[0], p[1]]),
            dport: u16::from_be_bytes([p[2], p[3]]),
        },
        l4: L4::Ports,
        tcp_flags,
        l4_at,
    }
}

/// The checks [`ports`] makes of a TCP or UDP header at frame offset `at`
/// with `len` bytes of IP payload (within the frame), a UDP datagram's
/// length exactly `len`: its TCP flags, or `None` if it is not TCP or UDP
/// or its header does not fit.
#[inline(always)]
fn fast_l4(d: &[u8], proto: u8, at: usize, len: usize) -> Option<TcpFlags> {
    match proto {
        IPPROTO_TCP if len >= 20 => {
            let h: &[u8; 20] = d.get(at..)?.first_chunk()?;
            let header_len = usize::from(h[12] >> 4) * 4;
            (header_len >= 20 && header_len <= len)
                .then(|| TcpFlags::from_bits(u16::from_be_bytes([h[12], h[13]])))
        }
        IPPROTO_UDP if len >= 8 => {
            let h: &[u8; 8] = d.get(at..)?.first_chunk()?;
            // The usual datagram fills the IP payload (a shorter one, with
            // bytes after it, is the general parse's: one compare here).
            let udp_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
            (udp_len == len).then(TcpFlags::default)
        }
        _ => None,
    }
}

/// Smallest MTU an IPv4 "fragmentation needed" may announce (RFC 791).
pub(super) const MIN_MTU_V4: u32 = 68;
/// Smallest MTU an IPv6 "packet too big" may announce (RFC 8200).
pub(super) const MIN_MTU_V6: u32 = 1280;

/// The ICMPv4 message `l4` of the IPv4 packet at `l2`. Of the errors, only
/// those a backend acts on pass: "destination unreachable" for network,
/// host, protocol or port, administratively prohibited (they end a
/// half-open connection at once), and "fragmentation needed" (path MTU)
/// announcing at least the minimum MTU.
fn icmp_v4(l4: &[u8], l2: usize) -> Result<Icmp<[u8; 4]>, DropReason> {
    let m = icmp::Icmpv4Packet::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
    match (m.msg_type(), m.code()) {
        (icmp::ICMPV4_ECHO_REQUEST, _) => Ok(Icmp::EchoRequest { icmp_at: l2 }),
        _ if m
            .next_hop_mtu()
            .is_some_and(|mtu| u32::from(mtu) < MIN_MTU_V4) =>
        {
            Err(DropReason::IcmpMtuTooSmall)
        }
        (icmp::ICMPV4_DEST_UNREACHABLE, 0..=4 | 9 | 10 | 13) => reply::inner_v4(m.payload())
            .map(Icmp::Error)
            .ok_or(DropReason::IcmpUnsupported),
        (
            icmp::ICMPV4_DEST_UNREACHABLE
            | icmp::ICMPV4_TIME_EXCEEDED
            | icmp::ICMPV4_PARAMETER_PROBLEM
            | icmp::ICMPV4_SOURCE_QUENCH
            | icmp::ICMPV4_REDIRECT,
            _,
        ) => Err(DropReason::IcmpFiltered),
        _ => Err(DropReason::IcmpUnsupported),
    }
}

/// Parses the IPv6 packet at `l2` (extension headers walked).
#[inline(always)]
pub(super) fn ipv6(d: &[u8], l2: usize) -> Result<(Frame, Parsed<[u8; 16]>), DropReason> {
    let ip = Ipv6Packet::new_checked(&d[l2..]).map_err(|_| DropReason::MalformedL3)?;
    let upper = ip.upper_layer().map_err(|_| DropReason::MalformedL3)?;
    let frame = Frame {
        l2,
        ip_len: 40 + ip.payload_len() as usize,
        v6: true,
        df: true,
    };
    let mut p = Parsed {
        t: Tuple {
            src: ip.src().octets(),
            dst: ip.dst().octets(),
            proto: upper.protocol,
            sport: 0,
            dport: 0,
        },
        l4: L4::Other,
        tcp_flags: TcpFlags::default(),
        l4_at: l2 + upper.offset,
    };
    if upper.fragment.is_some_and(|f| f.offset != 0 || f.more) {
        p.l4 = L4::Fragment;
        return Ok((frame, p));
    }
    let l4 = ip.upper_layer_payload(&upper);
    match p.t.proto {
        IPPROTO_TCP | IPPROTO_UDP => ports(&mut p, l4)?,
        IPPROTO_ICMPV6 => {
            let m = icmp::Icmpv6Packet::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
            // Neighbour discovery and router messages are the host's.
            p.l4 = if (133..=137).contains(&m.msg_type()) {
                L4::Host
            } else {
                L4::Icmp
            };
        }
        _ => {}
    }
    Ok((frame, p))
}

/// The ICMPv6 message `m`, whose header starts at frame offset `icmp_at`.
/// Of the errors, only "destination unreachable" for no route,
/// prohibited, address or port unreachable, policy and reject routes, and
/// "packet too big" announcing at least 1280 bytes pass (see [`icmp_v4`]).
fn icmp_v6(m: &icmp::Icmpv6Packet<&[u8]>, icmp_at: usize) -> Result<Icmp<[u8; 16]>, DropReason> {
    let error = || {
        reply::inner_v6(m.payload())
            .map(Icmp::Error)
            .ok_or(DropReason::IcmpUnsupported)
    };
    match (m.msg_type(), m.code()) {
        (icmp::ICMPV6_ECHO_REQUEST, _) => Ok(Icmp::EchoRequest { icmp_at }),
        (icmp::ICMPV6_PACKET_TOO_BIG, _) if m.rest_of_header() < MIN_MTU_V6 => {
            Err(DropReason::IcmpMtuTooSmall)
        }
        (icmp::ICMPV6_PACKET_TOO_BIG, _) | (icmp::ICMPV6_DEST_UNREACHABLE, 0 | 1 | 3..=6) => {
            error()
        }
        (
            icmp::ICMPV6_DEST_UNREACHABLE
            | icmp::ICMPV6_TIME_EXCEEDED
            | icmp::ICMPV6_PARAMETER_PROBLEM,
            _,
        ) => Err(DropReason::IcmpFiltered),
        _ => Err(DropReason::IcmpUnsupported),
    }
}

/// The ports of the TCP or UDP header `l4` of `p`, validated, and the TCP
/// flags: `p` becomes [`L4::Ports`].
#[inline(always)]
fn ports<A>(p: &mut Parsed<A>, l4: &[u8]) -> Result<(), DropReason> {
    if p.t.proto == IPPROTO_TCP {
        let tcp = TcpPacket::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
        p.tcp_flags = tcp.flags();
    } else {
        UdpPacket::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
    }
    p.t.sport = u16::from_be_bytes([l4[0], l4[1]]);
    p.t.dport = u16::from_be_bytes([l4[2], l4[3]]);
    p.l4 = L4::Ports;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnlb_testkit::{frame as gen, FlowMix, IpVersion, Proto};

    /// The general parse of `d`, if it is a TCP/UDP frame it accepts.
    fn general(d: &[u8]) -> Option<String> {
        let parsed = match frame(d) {
            Ok(Some((ETHERTYPE_IPV4, l2))) => ipv4(d, l2).map(|x| format!("{x:?}")),
            Ok(Some((_, l2))) => ipv6(d, l2).map(|x| format!("{x:?}")),
            _ => return None,
        };
        parsed.ok().filter(|s| s.contains("l4: Ports"))
    }

    fn fast(d: &[u8]) -> Option<String> {
        fast_v4(d)
            .map(|x| format!("{x:?}"))
            .or_else(|| fast_v6(d).map(|x| format!("{x:?}")))
    }

    /// Whatever the quick parse accepts, the general parse accepts too and
    /// parses alike; on clean frames the quick parse accepts. Every byte of
    /// the headers is set to values around the boundaries that matter, and
    /// every frame is cut at every length.
    #[test]
    fn the_quick_parse_agrees_with_the_general_one() {
        let mut accepted = 0;
        let mut declined = 0;
        for (proto, ip, len) in [
            (Proto::Udp, IpVersion::V4, 60),
            (Proto::Tcp, IpVersion::V4, 60),
            (Proto::Udp, IpVersion::V6, 80),
            (Proto::Tcp, IpVersion::V6, 90),
            (Proto::Tcp, IpVersion::V4, 300),
        ] {
            let mix = FlowMix {
                proto,
                ip,
                frame_len: len,
                ..FlowMix::default()
            };
            let base = gen(&mix, 7, 1);
            assert_eq!(fast(&base), general(&base), "{proto:?} {ip:?}");
            assert!(fast(&base).is_some(), "a clean frame takes the quick path");
            let mut check = |d: &[u8]| match fast(d) {
                Some(f) => {
                    assert_eq!(Some(f), general(d), "{d:02x?}");
                    accepted += 1;
                }
                None => declined += 1,
            };
            for cut in 0..base.len() {
                check(&base[..cut]);
            }
            for at in 0..base.len().min(80) {
                for v in [
                    0u8, 1, 4, 5, 6, 7, 8, 0x11, 0x14, 0x20, 0x3f, 0x40, 0x45, 0x46, 0x50, 0x60,
                    0x86, 0xdd, 0xf0, 0xff,
                ] {
                    let mut d = base.clone();
                    d[at] = v;
                    check(&d);
                    check(&d[..d.len() - 1]);
                }
            }
            // Every 16-bit word of the headers (lengths among them) set to
            // every value up to past the frame's length.
            for at in 12..base.len().min(80) - 1 {
                for v in 0..=base.len() as u16 + 4 {
                    let mut d = base.clone();
                    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
                    check(&d);
                }
            }
        }
        assert!(accepted > 1000 && declined > 1000, "{accepted} {declined}");
    }
}

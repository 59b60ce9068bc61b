//! The validated parse of one frame: where its IP packet is and what it
//! carries, as a [`Parsed`] value. Pure: it reads the bytes through the
//! `dnlb-wire` views, looks at no state and decides nothing about listeners
//! or backends. What is malformed is a [`DropReason`] here; what is
//! malformed only if it turns out to be for a VIP is carried inside the
//! value, so the processor keeps the rule "not for a VIP: not ours".

use dnlb_wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use dnlb_wire::icmp;
use dnlb_wire::ip::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use dnlb_wire::ipv4::Ipv4Packet;
use dnlb_wire::ipv6::Ipv6Packet;
use dnlb_wire::tcp::{TcpFlags, TcpPacket};
use dnlb_wire::udp::UdpPacket;

use crate::flow_table::{fingerprint_v4, fingerprint_v6};
use crate::hash;
use crate::reply::{self, Quoted};
use crate::verdict::DropReason;
use crate::vip::{addr_key_v4, addr_key_v6};

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
    /// TCP flags (none for anything else).
    pub tcp_flags: TcpFlags,
}

/// What differs between IPv4 and IPv6: the address type and the hash,
/// fingerprint and table-key functions over it.
pub(super) trait Family {
    type Addr: Copy;
    fn key(a: Self::Addr) -> u128;
    fn flow_hash(t: &Tuple<Self::Addr>) -> u64;
    fn src_hash(a: Self::Addr) -> u64;
    fn addr_hash(src: Self::Addr, dst: Self::Addr, proto: u8) -> u64;
    fn fingerprint(seed: u64, t: &Tuple<Self::Addr>) -> u64;
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
    fn flow_hash(t: &Tuple<[u8; 4]>) -> u64 {
        hash::flow_hash_v4(t.src, t.dst, t.proto, t.sport, t.dport)
    }
    #[inline(always)]
    fn src_hash(a: [u8; 4]) -> u64 {
        hash::src_hash_v4(a)
    }
    #[inline(always)]
    fn addr_hash(src: [u8; 4], dst: [u8; 4], proto: u8) -> u64 {
        hash::addr_hash_v4(src, dst, proto)
    }
    #[inline(always)]
    fn fingerprint(seed: u64, t: &Tuple<[u8; 4]>) -> u64 {
        fingerprint_v4(seed, t.src, t.dst, t.proto, t.sport, t.dport)
    }
}

impl Family for V6 {
    type Addr = [u8; 16];
    #[inline(always)]
    fn key(a: [u8; 16]) -> u128 {
        addr_key_v6(a)
    }
    #[inline(always)]
    fn flow_hash(t: &Tuple<[u8; 16]>) -> u64 {
        hash::flow_hash_v6(t.src, t.dst, t.proto, t.sport, t.dport)
    }
    #[inline(always)]
    fn src_hash(a: [u8; 16]) -> u64 {
        hash::src_hash_v6(a)
    }
    #[inline(always)]
    fn addr_hash(src: [u8; 16], dst: [u8; 16], proto: u8) -> u64 {
        hash::addr_hash_v6(src, dst, proto)
    }
    #[inline(always)]
    fn fingerprint(seed: u64, t: &Tuple<[u8; 16]>) -> u64 {
        fingerprint_v6(seed, t.src, t.dst, t.proto, t.sport, t.dport)
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

/// What a frame carries.
#[derive(Debug, Clone, Copy)]
pub(super) enum Parsed<A> {
    /// A TCP or UDP packet, not a fragment.
    Flow(Tuple<A>),
    /// An IP fragment (its ports may be in another fragment).
    Fragment { src: A, dst: A, proto: u8 },
    /// ICMP to `dst`; the message, or why it cannot be handled (which
    /// counts only if `dst` is a VIP).
    Icmp {
        dst: A,
        msg: Result<Icmp<A>, DropReason>,
    },
    /// The host's own business whatever the address (neighbour discovery,
    /// router messages).
    Host,
    /// Another protocol to `dst`.
    Other { dst: A },
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
#[inline]
pub(super) fn ipv4(d: &[u8], l2: usize) -> Result<(Frame, Parsed<[u8; 4]>), DropReason> {
    let ip = Ipv4Packet::new_checked(&d[l2..]).map_err(|_| DropReason::MalformedL3)?;
    let (src, dst, proto) = (ip.src().octets(), ip.dst().octets(), ip.protocol());
    let mut frame = Frame {
        l2,
        ip_len: ip.total_len() as usize,
        v6: false,
        df: ip.dont_fragment(),
        tcp_flags: TcpFlags::default(),
    };
    if ip.is_fragment() {
        return Ok((frame, Parsed::Fragment { src, dst, proto }));
    }
    let l4 = ip.payload();
    let parsed = match proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            let (sport, dport, flags) = ports(l4, proto)?;
            frame.tcp_flags = flags;
            Parsed::Flow(Tuple {
                src,
                dst,
                proto,
                sport,
                dport,
            })
        }
        IPPROTO_ICMP => Parsed::Icmp {
            dst,
            msg: icmp_v4(l4, l2),
        },
        _ => Parsed::Other { dst },
    };
    Ok((frame, parsed))
}

fn icmp_v4(l4: &[u8], l2: usize) -> Result<Icmp<[u8; 4]>, DropReason> {
    let m = icmp::Icmpv4Packet::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
    match m.msg_type() {
        icmp::ICMPV4_ECHO_REQUEST => Ok(Icmp::EchoRequest { icmp_at: l2 }),
        icmp::ICMPV4_DEST_UNREACHABLE
        | icmp::ICMPV4_TIME_EXCEEDED
        | icmp::ICMPV4_PARAMETER_PROBLEM => reply::inner_v4(m.payload())
            .map(Icmp::Error)
            .ok_or(DropReason::IcmpUnsupported),
        _ => Err(DropReason::IcmpUnsupported),
    }
}

/// Parses the IPv6 packet at `l2` (extension headers walked).
#[inline]
pub(super) fn ipv6(d: &[u8], l2: usize) -> Result<(Frame, Parsed<[u8; 16]>), DropReason> {
    let ip = Ipv6Packet::new_checked(&d[l2..]).map_err(|_| DropReason::MalformedL3)?;
    let (src, dst) = (ip.src().octets(), ip.dst().octets());
    let upper = ip.upper_layer().map_err(|_| DropReason::MalformedL3)?;
    let proto = upper.protocol;
    let mut frame = Frame {
        l2,
        ip_len: 40 + ip.payload_len() as usize,
        v6: true,
        df: true,
        tcp_flags: TcpFlags::default(),
    };
    if upper.fragment.is_some_and(|f| f.offset != 0 || f.more) {
        return Ok((frame, Parsed::Fragment { src, dst, proto }));
    }
    let l4 = ip.upper_layer_payload(&upper);
    let parsed = match proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            let (sport, dport, flags) = ports(l4, proto)?;
            frame.tcp_flags = flags;
            Parsed::Flow(Tuple {
                src,
                dst,
                proto,
                sport,
                dport,
            })
        }
        IPPROTO_ICMPV6 => {
            let m = icmp::Icmpv6Packet::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
            let t = m.msg_type();
            if (133..=137).contains(&t) {
                // Neighbour discovery and router messages are the host's.
                Parsed::Host
            } else {
                Parsed::Icmp {
                    dst,
                    msg: icmp_v6(&m, l2 + upper.offset),
                }
            }
        }
        _ => Parsed::Other { dst },
    };
    Ok((frame, parsed))
}

fn icmp_v6(m: &icmp::Icmpv6Packet<&[u8]>, icmp_at: usize) -> Result<Icmp<[u8; 16]>, DropReason> {
    match m.msg_type() {
        icmp::ICMPV6_ECHO_REQUEST => Ok(Icmp::EchoRequest { icmp_at }),
        icmp::ICMPV6_DEST_UNREACHABLE
        | icmp::ICMPV6_PACKET_TOO_BIG
        | icmp::ICMPV6_TIME_EXCEEDED
        | icmp::ICMPV6_PARAMETER_PROBLEM => reply::inner_v6(m.payload())
            .map(Icmp::Error)
            .ok_or(DropReason::IcmpUnsupported),
        _ => Err(DropReason::IcmpUnsupported),
    }
}

/// Source and destination ports of a TCP or UDP header, validated, and the
/// TCP flags (none for UDP).
#[inline]
fn ports(l4: &[u8], proto: u8) -> Result<(u16, u16, TcpFlags), DropReason> {
    let flags = if proto == IPPROTO_TCP {
        TcpPacket::new_checked(l4)
            .map_err(|_| DropReason::MalformedL4)?
            .flags()
    } else {
        UdpPacket::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
        TcpFlags::default()
    };
    Ok((
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
        flags,
    ))
}

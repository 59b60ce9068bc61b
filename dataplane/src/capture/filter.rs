//! What a capture keeps: a 5-tuple or CIDR filter (source and destination
//! prefixes, ports, protocol; every part optional), matched on a received
//! frame by an unvalidated peek at its headers (like
//! `dnlb_lb::processor::peek`): Ethernet, one VLAN tag, IPv4 or IPv6 (the
//! first next header, no extension-header walk), the TCP/UDP ports. A
//! frame the peek cannot read matches only a filter with no part at all.

use std::net::IpAddr;

use dnlb_wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use dnlb_wire::ip::{IPPROTO_TCP, IPPROTO_UDP};

/// An address prefix (CIDR), host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Bits of an address of this family.
fn width(v6: bool) -> u32 {
    if v6 {
        128
    } else {
        32
    }
}

fn bits(a: IpAddr) -> (u128, bool) {
    match a {
        IpAddr::V4(a) => (u128::from(u32::from(a)), false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

fn addr_of(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from(v.to_be_bytes())
    } else {
        IpAddr::from((v as u32).to_be_bytes())
    }
}

/// `v` with all but its first `len` bits (of `w`) cleared.
fn masked(v: u128, len: u8, w: u32) -> u128 {
    if len == 0 {
        0
    } else {
        let keep = u32::from(len).min(w);
        v >> (w - keep) << (w - keep)
    }
}

impl Prefix {
    /// `addr/len` with the host bits cleared; `None` if `len` is longer
    /// than the address.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        let (v, v6) = bits(addr);
        (u32::from(len) <= width(v6)).then(|| Prefix {
            addr: addr_of(masked(v, len, width(v6)), v6),
            len,
        })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether the prefix is `/0` (every address of its family).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn contains(&self, v: u128, v6: bool) -> bool {
        let (p, p6) = bits(self.addr);
        p6 == v6 && masked(v, self.len, width(v6)) == p
    }
}

/// A frame's addresses, protocol and ports, as read by [`peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tuple {
    v6: bool,
    src: u128,
    dst: u128,
    proto: u8,
    /// Source and destination ports (TCP/UDP, not a later fragment).
    ports: Option<(u16, u16)>,
}

fn ports_at(d: &[u8], at: usize) -> Option<(u16, u16)> {
    let p = d.get(at..at + 4)?;
    Some((
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

/// The tuple of an IPv4 or IPv6 frame, read without validation.
fn peek(d: &[u8]) -> Option<Tuple> {
    let (ethertype, l3) = match u16::from_be_bytes([*d.get(12)?, *d.get(13)?]) {
        0x8100 | 0x88a8 => (u16::from_be_bytes([*d.get(16)?, *d.get(17)?]), 18),
        t => (t, 14),
    };
    let l4 = |proto: u8| proto == IPPROTO_TCP || proto == IPPROTO_UDP;
    match ethertype {
        ETHERTYPE_IPV4 => {
            let ip = d.get(l3..l3 + 20)?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let first = ip[6] & 0x1f == 0 && ip[7] == 0;
            let word = |at: usize| u32::from_be_bytes([ip[at], ip[at + 1], ip[at + 2], ip[at + 3]]);
            Some(Tuple {
                v6: false,
                src: u128::from(word(12)),
                dst: u128::from(word(16)),
                proto: ip[9],
                ports: if l4(ip[9]) && first {
                    ports_at(d, l3 + ihl)
                } else {
                    None
                },
            })
        }
        ETHERTYPE_IPV6 => {
            let ip = d.get(l3..l3 + 40)?;
            let addr = |at: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&ip[at..at + 16]);
                u128::from_be_bytes(b)
            };
            Some(Tuple {
                v6: true,
                src: addr(8),
                dst: addr(24),
                proto: ip[6],
                ports: if l4(ip[6]) {
                    ports_at(d, l3 + 40)
                } else {
                    None
                },
            })
        }
        _ => None,
    }
}

/// Which packets a capture keeps: every part given must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaptureFilter {
    /// Source prefix.
    pub src: Option<Prefix>,
    /// Destination prefix.
    pub dst: Option<Prefix>,
    /// Source port (TCP/UDP).
    pub sport: Option<u16>,
    /// Destination port (TCP/UDP).
    pub dport: Option<u16>,
    /// IP protocol number (IPv6: the first next header).
    pub proto: Option<u8>,
}

/// Words of an encoded filter.
pub(super) const FILTER_WORDS: usize = 6;

impl CaptureFilter {
    /// Whether the received `frame` matches.
    #[inline]
    pub fn matches(&self, frame: &[u8]) -> bool {
        let Some(t) = peek(frame) else {
            return *self == CaptureFilter::default();
        };
        let port = |want: Option<u16>, pick: fn((u16, u16)) -> u16| match want {
            None => true,
            Some(w) => t.ports.is_some_and(|p| pick(p) == w),
        };
        self.src.is_none_or(|p| p.contains(t.src, t.v6))
            && self.dst.is_none_or(|p| p.contains(t.dst, t.v6))
            && self.proto.is_none_or(|p| p == t.proto)
            && port(self.sport, |p| p.0)
            && port(self.dport, |p| p.1)
    }

    pub(super) fn encode(&self) -> [u64; FILTER_WORDS] {
        let pfx = |p: Option<Prefix>| match p {
            None => (0u128, 0u64),
            Some(p) => {
                let (v, v6) = bits(p.addr);
                (v, 1 | u64::from(v6) << 1 | u64::from(p.len) << 8)
            }
        };
        let (s, sf) = pfx(self.src);
        let (d, df) = pfx(self.dst);
        let opt = |o: Option<u16>| o.map_or(0, |v| 1 << 16 | u64::from(v));
        [
            s as u64,
            (s >> 64) as u64,
            d as u64,
            (d >> 64) as u64,
            sf | df << 16 | opt(self.proto.map(u16::from)) << 32,
            opt(self.sport) | opt(self.dport) << 32,
        ]
    }

    pub(super) fn decode(w: [u64; FILTER_WORDS]) -> Self {
        let pfx = |lo: u64, hi: u64, f: u64| {
            let v6 = f >> 1 & 1 != 0;
            let addr = addr_of(u128::from(lo) | u128::from(hi) << 64, v6);
            (f & 1 != 0).then_some(Prefix {
                addr,
                len: (f >> 8) as u8,
            })
        };
        let opt = |v: u64| (v >> 16 & 1 != 0).then_some(v as u16);
        CaptureFilter {
            src: pfx(w[0], w[1], w[4] & 0xffff),
            dst: pfx(w[2], w[3], w[4] >> 16 & 0xffff),
            proto: opt(w[4] >> 32).map(|p| p as u8),
            sport: opt(w[5]),
            dport: opt(w[5] >> 32),
        }
    }
}

//! Frame templates: one frame built once (with `etherparse`, independent of
//! dnlb's own packet code) with zero addresses, ports and checksums, plus the
//! partial checksums of everything that does not change. Writing a packet is
//! a copy of the template, the flow's addresses and ports, an optional
//! latency stamp, and two checksums finished from the precomputed sums: a
//! few additions per packet, exact for every tuple (no incremental-update
//! corner cases).

use std::net::{Ipv4Addr, Ipv6Addr};

use dnlb_wire::checksum::{combine, fold, pseudo_header_v4, pseudo_header_v6, sum};
use etherparse::PacketBuilder;

use crate::stamp::{words128, words32, Stamp, STAMP_LEN};

/// Shortest Ethernet frame without FCS (a 64-byte frame on the wire).
pub const MIN_FRAME: usize = 60;
/// Longest untagged Ethernet frame without FCS at a 1500-byte MTU.
pub const MAX_FRAME: usize = 1514;

const ETH_LEN: usize = 14;
const IP_AT: usize = ETH_LEN;
const TCP_ACK_SEQ: u32 = 1001;
const TCP_ACK_ACK: u32 = 1;
const TCP_SYN_SEQ: u32 = 1000;
const TCP_WINDOW: u16 = 65535;
const TTL: u8 = 64;

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP segments.
    Tcp,
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Udp => 17,
            Proto::Tcp => 6,
        }
    }

    /// The transport header's length.
    pub fn header_len(self) -> usize {
        match self {
            Proto::Udp => 8,
            Proto::Tcp => 20,
        }
    }

    /// Where the checksum is inside the transport header.
    fn checksum_at(self) -> usize {
        match self {
            Proto::Udp => 6,
            Proto::Tcp => 16,
        }
    }
}

/// Which packet of a flow a template is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A packet of an established flow: for TCP an ACK segment in the middle
    /// of a connection (ACK set, no SYN/RST).
    Established,
    /// The first packet of a new flow: for TCP a SYN.
    NewFlow,
}

/// Headers' length for an IP version and transport.
pub fn headers_len(v6: bool, proto: Proto) -> usize {
    ETH_LEN + if v6 { 40 } else { 20 } + proto.header_len()
}

/// The addresses and ports of one packet. Addresses are integers (IPv4 in
/// the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Source address.
    pub src: u128,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: u128,
    /// Destination port.
    pub dport: u16,
}

/// What a template is built from.
#[derive(Debug, Clone, Copy)]
pub struct TemplateSpec {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Transport.
    pub proto: Proto,
    /// Established or new-flow packet.
    pub kind: Kind,
    /// Frame length without FCS (already validated: at least the headers,
    /// and room for a stamp if `stamped`).
    pub frame_len: usize,
    /// Whether the frame ends with a latency stamp.
    pub stamped: bool,
}

/// A prebuilt frame and its constant partial checksums.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    v6: bool,
    udp: bool,
    l4_at: usize,
    csum_at: usize,
    /// IPv4 header sum without addresses and checksum.
    ip_base: u32,
    /// Transport checksum sum without addresses, ports, checksum or stamp.
    l4_base: u32,
    /// Where the stamp goes, and whether it starts at an odd offset of the
    /// transport segment.
    stamp: Option<(usize, bool)>,
}

impl Template {
    /// Builds a template. `spec.frame_len` must hold the headers (and the
    /// stamp when `stamped`): [`crate::spec`] checks that before.
    pub fn new(spec: &TemplateSpec) -> Template {
        let headers = headers_len(spec.v6, spec.proto);
        let payload_len = spec.frame_len - headers;
        assert!(!spec.stamped || payload_len >= STAMP_LEN);
        let mut payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
        if spec.stamped {
            payload[payload_len - STAMP_LEN..].fill(0);
        }
        let b = PacketBuilder::ethernet2(spec.src_mac, spec.dst_mac);
        let b = if spec.v6 {
            b.ipv6([0; 16], [0; 16], TTL)
        } else {
            b.ipv4([0; 4], [0; 4], TTL)
        };
        let mut bytes = Vec::with_capacity(spec.frame_len);
        let written = match (spec.proto, spec.kind) {
            (Proto::Udp, _) => b.udp(0, 0).write(&mut bytes, &payload),
            (Proto::Tcp, Kind::Established) => b
                .tcp(0, 0, TCP_ACK_SEQ, TCP_WINDOW)
                .ack(TCP_ACK_ACK)
                .write(&mut bytes, &payload),
            (Proto::Tcp, Kind::NewFlow) => b
                .tcp(0, 0, TCP_SYN_SEQ, TCP_WINDOW)
                .syn()
                .write(&mut bytes, &payload),
        };
        // Writing into a Vec fails only for lengths IP cannot carry, which
        // frame lengths up to MAX_FRAME are not.
        written.expect("a frame of at most 1514 bytes is always writable");
        debug_assert_eq!(bytes.len(), spec.frame_len);
        let l4_at = IP_AT + if spec.v6 { 40 } else { 20 };
        let csum_at = l4_at + spec.proto.checksum_at();
        bytes[csum_at..csum_at + 2].fill(0);
        let ip_base = if spec.v6 {
            0
        } else {
            bytes[IP_AT + 10..IP_AT + 12].fill(0);
            sum(&bytes[IP_AT..l4_at])
        };
        let seg_len = bytes.len() - l4_at;
        let pseudo = if spec.v6 {
            pseudo_header_v6(
                Ipv6Addr::UNSPECIFIED,
                Ipv6Addr::UNSPECIFIED,
                spec.proto.number(),
                seg_len as u32,
            )
        } else {
            pseudo_header_v4(
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
                spec.proto.number(),
                seg_len as u16,
            )
        };
        let l4_base = combine(pseudo, sum(&bytes[l4_at..]));
        let stamp = spec.stamped.then(|| {
            let at = bytes.len() - STAMP_LEN;
            (at, (at - l4_at) % 2 == 1)
        });
        Template {
            bytes,
            v6: spec.v6,
            udp: spec.proto == Proto::Udp,
            l4_at,
            csum_at,
            ip_base,
            l4_base,
            stamp,
        }
    }

    /// The frame's length.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the frame is empty (never: it holds at least the headers).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether frames of this template carry a latency stamp.
    pub fn stamped(&self) -> bool {
        self.stamp.is_some()
    }

    /// Writes the frame for `t` (and `stamp`, if the template has room for
    /// one) into `buf`, which must be exactly [`Template::len`] bytes long.
    #[inline(always)]
    pub fn write(&self, buf: &mut [u8], t: &Tuple, stamp: Option<Stamp>) {
        buf.copy_from_slice(&self.bytes);
        let mut l4 = self.l4_base;
        if self.v6 {
            buf[IP_AT + 8..IP_AT + 24].copy_from_slice(&t.src.to_be_bytes());
            buf[IP_AT + 24..IP_AT + 40].copy_from_slice(&t.dst.to_be_bytes());
            l4 += words128(t.src) + words128(t.dst);
        } else {
            let (s, d) = (t.src as u32, t.dst as u32);
            buf[IP_AT + 12..IP_AT + 16].copy_from_slice(&s.to_be_bytes());
            buf[IP_AT + 16..IP_AT + 20].copy_from_slice(&d.to_be_bytes());
            let a = words32(s) + words32(d);
            buf[IP_AT + 10..IP_AT + 12].copy_from_slice(&fold(self.ip_base + a).to_be_bytes());
            l4 += a;
        }
        buf[self.l4_at..self.l4_at + 2].copy_from_slice(&t.sport.to_be_bytes());
        buf[self.l4_at + 2..self.l4_at + 4].copy_from_slice(&t.dport.to_be_bytes());
        l4 += u32::from(t.sport) + u32::from(t.dport);
        if let (Some((at, odd)), Some(s)) = (self.stamp, stamp) {
            buf[at..at + STAMP_LEN].copy_from_slice(&s.bytes());
            let words = s.word_sum();
            // A run of bytes at an odd offset adds its even-offset sum with
            // the bytes of each word swapped (RFC 1071: 2^8 * x mod 0xFFFF).
            l4 += if odd {
                u32::from(fold16(words).swap_bytes())
            } else {
                words
            };
        }
        let mut c = fold(l4);
        if self.udp && c == 0 {
            c = 0xffff; // RFC 768: a computed zero is sent as all ones
        }
        buf[self.csum_at..self.csum_at + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// Folds a sum to 16 bits with end-around carry.
#[inline(always)]
fn fold16(x: u32) -> u16 {
    let x = (x & 0xffff) + (x >> 16);
    let x = (x & 0xffff) + (x >> 16);
    x as u16
}

//! Encapsulation toward backends: per backend and inner address family, the
//! outer headers are written once on the slow path into a template; per
//! packet, the template is copied in front of the inner IP packet and a few
//! fields are patched (lengths, IPv4 checksum, flow entropy, MACs, and the
//! UDP checksum over IPv6).
//!
//! Layouts (outer Ethernet always first, toward the next hop):
//! - IP-in-IP: `Eth | IPv4 (proto 4/41) or IPv6 (next header 4/41) | inner IP`
//! - GUE variant 1: `Eth | IP | UDP (dst gue port) | inner IP` (no GUE header)
//! - VXLAN: `Eth | IP | UDP (dst 4789) | VXLAN (VNI) | inner Eth (dst inner_mac) | inner IP`
//! - GRE: `Eth | IP (proto 47) | GRE (0x0800/0x86DD, optional key) | inner IP`
//!
//! Flow entropy: the outer UDP source port (49152 + 14 bits of the flow
//! hash) and, with an IPv6 outer header, the flow label (20 bits).

use std::net::IpAddr;

use dnlb_model::Tunnel;
use dnlb_wire::checksum;
use dnlb_wire::ethernet::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use dnlb_wire::ip::{IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP};
use dnlb_wire::ipv4::Ipv4Header;
use dnlb_wire::ipv6::Ipv6Header;
use dnlb_wire::tunnel::{GreHeader, VxlanHeader, GRE_PROTO_IPV4, GRE_PROTO_IPV6};
use dnlb_wire::udp::UdpHeader;

use crate::verdict::DropReason;
use dnlb_wire::buf::PacketBuf;

/// Longest template: Eth 14 + IPv6 40 + UDP 8 + VXLAN 8 + inner Eth 14.
pub const MAX_TEMPLATE: usize = 84;

/// Outer source addresses, next hop and TTL: what every template shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    /// Source toward IPv4 backends.
    pub source_v4: Option<std::net::Ipv4Addr>,
    /// Source toward IPv6 backends.
    pub source_v6: Option<std::net::Ipv6Addr>,
    /// Destination MAC (the next hop).
    pub next_hop_mac: [u8; 6],
    /// TTL / hop limit.
    pub ttl: u8,
}

/// Copies the first `hdr.len()` bytes of a template (at least 32: an
/// Ethernet and an IP header) with two or three fixed-size copies that may
/// overlap, instead of a copy of variable length (a call to `memcpy`).
#[inline(always)]
fn copy_template(hdr: &mut [u8], bytes: &[u8; MAX_TEMPLATE]) {
    const CHUNK: usize = 32;
    let len = hdr.len();
    debug_assert!((CHUNK..=MAX_TEMPLATE).contains(&len));
    hdr[..CHUNK].copy_from_slice(&bytes[..CHUNK]);
    if len > 2 * CHUNK {
        hdr[CHUNK..2 * CHUNK].copy_from_slice(&bytes[CHUNK..2 * CHUNK]);
    }
    hdr[len - CHUNK..].copy_from_slice(&bytes[len - CHUNK..len]);
}

/// The outer UDP source port of a flow: 49152 + 14 bits of its hash.
#[inline(always)]
fn udp_source_port(entropy: u64) -> u16 {
    UDP_SPORT_BASE | ((entropy >> 20) as u16 & 0x3fff)
}

/// Makes room in `pkt` (a 14-byte Ethernet header and an `ip_len`-byte IP
/// packet) for a fixed `LEN`-byte header in place of its Ethernet header:
/// Ethernet padding trimmed, the rest prepended.
#[inline(always)]
fn make_room<P: PacketBuf, const LEN: usize>(pkt: &mut P, ip_len: usize) -> Result<(), DropReason> {
    // Ethernet padding trimmed in line, as in the general code (through a
    // function returning a `Result`, 4 instructions more a packet).
    let extra = pkt.len() - ETH - ip_len;
    if extra > 0 {
        pkt.trim(extra as u16).ok_or(DropReason::MalformedL3)?;
    }
    pkt.prepend((LEN - ETH) as u16)
        .ok_or(DropReason::NoHeadroom)?;
    Ok(())
}

/// Writes the source port and length of the UDP header at `UDP_AT` of a
/// fixed `LEN`-byte header carrying an `ip_len`-byte inner packet, and
/// returns them.
#[inline(always)]
fn write_udp<const LEN: usize, const UDP_AT: usize>(
    h: &mut [u8; LEN],
    ip_len: usize,
    entropy: u64,
) -> (u16, u16) {
    let udp_len = (LEN - UDP_AT + ip_len) as u16;
    let sport = udp_source_port(entropy);
    h[UDP_AT..UDP_AT + 2].copy_from_slice(&sport.to_be_bytes());
    h[UDP_AT + 4..UDP_AT + 6].copy_from_slice(&udp_len.to_be_bytes());
    (udp_len, sport)
}

/// The first `N` bytes of `b` as an array (a template is never shorter
/// than its outer headers, so this never fails where it is used).
#[inline(always)]
fn first_chunk<const N: usize>(b: &mut [u8]) -> Result<&mut [u8; N], DropReason> {
    b.first_chunk_mut().ok_or(DropReason::NoHeadroom)
}

/// The egress port's MAC, as [`EncapTemplate::apply`] writes it: in the
/// low six bytes of a word whose top two hold IPv4's EtherType, so that the
/// source MAC and the EtherType after it take one 8-byte store (a 6-byte
/// array is two stores, and the compiler splits it into bytes). Made once
/// a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceMac(u64);

impl SourceMac {
    /// The word of `mac`.
    #[inline(always)]
    pub const fn new(mac: [u8; 6]) -> Self {
        let [m0, m1, m2, m3, m4, m5] = mac;
        let [t0, t1] = ETHERTYPE_IPV4.to_be_bytes();
        SourceMac(u64::from_le_bytes([m0, m1, m2, m3, m4, m5, t0, t1]))
    }

    /// The MAC's bytes.
    #[inline(always)]
    pub fn bytes(self) -> [u8; 6] {
        let [m0, m1, m2, m3, m4, m5, _, _] = self.0.to_le_bytes();
        [m0, m1, m2, m3, m4, m5]
    }

    /// The one's complement sum of the MAC's three 16-bit words (at most
    /// 3 × 0xffff), for checksums that cover it.
    #[inline(always)]
    fn sum(self) -> u32 {
        let [m0, m1, m2, m3, m4, m5] = self.bytes();
        u32::from(u16::from_be_bytes([m0, m1]))
            + u32::from(u16::from_be_bytes([m2, m3]))
            + u32::from(u16::from_be_bytes([m4, m5]))
    }

    /// The MAC's bytes followed by EtherType `ethertype`.
    #[inline(always)]
    fn with_type(self, ethertype: u16) -> [u8; 8] {
        let [t0, t1] = ethertype.to_be_bytes();
        (self.0 & 0xffff_ffff_ffff | u64::from_le_bytes([0, 0, 0, 0, 0, 0, t0, t1])).to_le_bytes()
    }
}

impl From<[u8; 6]> for SourceMac {
    fn from(mac: [u8; 6]) -> Self {
        SourceMac::new(mac)
    }
}

/// Prebuilt outer headers for one backend and one inner address family.
#[derive(Clone, PartialEq, Eq)]
pub struct EncapTemplate {
    bytes: [u8; MAX_TEMPLATE],
    len: u8,
    outer_v6: bool,
    /// Offset of the outer UDP header, if any.
    udp_at: u8,
    /// Offset of the inner Ethernet source MAC (VXLAN), if any.
    inner_src_mac_at: u8,
    /// IPv4 outer: the one's complement sum (16 bits, folded) of the
    /// header with total length 0 and checksum 0, to patch; in wire byte
    /// order (the sum's big-endian bytes read as a native `u16`).
    /// IPv6 outer with UDP: the pseudo-header sum of the addresses and
    /// next header (length added per packet).
    base_sum: u32,
    /// IPv6 outer with UDP: the sum of the template's bytes from the UDP
    /// header on, its source port 0 (length, checksum and an inner source
    /// MAC are 0 in the template): a packet's checksum adds what it writes
    /// there instead of reading the header back (loads of bytes just
    /// stored wait for the stores).
    udp_tail_sum: u32,
    /// The layout, if [`EncapTemplate::apply`] writes it with fixed sizes.
    shape: Shape,
    /// The longest inner IP packet that fits the egress MTU once
    /// encapsulated ([`EncapTemplate::fit_to`]; 0 until then). Kept here,
    /// next to what the packet path reads anyway.
    max_ip_len: u16,
}

/// Layouts that [`EncapTemplate::apply`] writes with sizes and offsets
/// known at compile time (constant copies, no branches on the template's
/// fields): about half the instructions of the general code, which handles
/// the rest (an L2 header other than Ethernet's 14 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Not built yet (or a layout without constants here).
    General,
    /// `Eth | IPv4 | inner IP` (IP-in-IP).
    IpIp4,
    /// `Eth | IPv4 | GRE | inner IP` (no key).
    Gre4,
    /// `Eth | IPv4 | GRE with key | inner IP`.
    GreKey4,
    /// `Eth | IPv4 | UDP | inner IP` (GUE variant 1).
    Gue4,
    /// `Eth | IPv4 | UDP | VXLAN | inner Eth | inner IPv4`.
    Vxlan4,
    /// `Eth | IPv4 | UDP | VXLAN | inner Eth | inner IPv6`.
    Vxlan4In6,
    /// `Eth | IPv6 | inner IP`.
    IpIp6,
    /// `Eth | IPv6 | GRE | inner IP` (no key).
    Gre6,
    /// `Eth | IPv6 | GRE with key | inner IP`.
    GreKey6,
    /// `Eth | IPv6 | UDP | inner IP` (GUE variant 1).
    Gue6,
    /// `Eth | IPv6 | UDP | VXLAN | inner Eth | inner IPv4`.
    Vxlan6,
    /// `Eth | IPv6 | UDP | VXLAN | inner Eth | inner IPv6`.
    Vxlan6In6,
}

// Each fixed shape's template length, and the offsets of its UDP header and
// inner source MAC (Eth 14, IPv4 20, GRE 4 or 8, UDP 8, VXLAN 8, Eth 14).
const IPIP4_LEN: usize = 34;
const GRE4_LEN: usize = 38;
const GRE_KEY4_LEN: usize = 42;
const GUE4_LEN: usize = 42;
const UDP4_AT: usize = 34;
const VXLAN4_LEN: usize = 64;
const VXLAN4_MAC_AT: usize = 56;
// The same with an outer IPv6 header (40 bytes).
const IPIP6_LEN: usize = 54;
const GRE6_LEN: usize = 58;
const GRE_KEY6_LEN: usize = 62;
const GUE6_LEN: usize = 62;
const UDP6_AT: usize = 54;
const VXLAN6_LEN: usize = 84;
const VXLAN6_MAC_AT: usize = 76;

impl std::fmt::Debug for EncapTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncapTemplate")
            .field("bytes", &&self.bytes[..self.len as usize])
            .field("outer_v6", &self.outer_v6)
            .finish()
    }
}

const ETH: usize = ethernet::HEADER_LEN;
const UDP_SPORT_BASE: u16 = 49152;

impl EncapTemplate {
    /// A template of nothing, for an id without a backend
    /// ([`crate::snapshot::BackendRoute`], which never applies it).
    pub const UNBUILT: EncapTemplate = EncapTemplate {
        bytes: [0; MAX_TEMPLATE],
        len: 0,
        outer_v6: false,
        udp_at: 0,
        inner_src_mac_at: 0,
        base_sum: 0,
        udp_tail_sum: 0,
        shape: Shape::General,
        max_ip_len: 0,
    };

    /// The template for `tunnel` to `backend`, carrying inner packets of the
    /// given family. `None` if the gateway has no source address of the
    /// backend's family (config validation prevents that).
    pub fn build(backend: IpAddr, tunnel: Tunnel, inner_v6: bool, outer: &Outer) -> Option<Self> {
        let mut t = EncapTemplate {
            bytes: [0; MAX_TEMPLATE],
            len: 0,
            outer_v6: backend.is_ipv6(),
            udp_at: 0,
            inner_src_mac_at: 0,
            base_sum: 0,
            udp_tail_sum: 0,
            shape: Shape::General,
            max_ip_len: 0,
        };
        let ip_len = if t.outer_v6 {
            Ipv6Header::LEN
        } else {
            Ipv4Header::LEN
        };
        let (proto, after_ip): (u8, usize) = match tunnel {
            Tunnel::IpIp => (if inner_v6 { IPPROTO_IPV6 } else { IPPROTO_IPIP }, 0),
            Tunnel::Gue { .. } => (IPPROTO_UDP, UdpHeader::LEN),
            Tunnel::Vxlan { .. } => (IPPROTO_UDP, UdpHeader::LEN + VxlanHeader::LEN + ETH),
            Tunnel::Gre { key } => (IPPROTO_GRE, GreHeader { protocol: 0, key }.len()),
        };
        let len = ETH + ip_len + after_ip;
        t.len = len as u8;
        t.write_outer_ip(backend, proto, outer)?;
        let b = &mut t.bytes;
        let l4 = ETH + ip_len;
        match tunnel {
            Tunnel::IpIp => {}
            Tunnel::Gue { port } => {
                t.udp_at = l4 as u8;
                UdpHeader {
                    src_port: UDP_SPORT_BASE,
                    dst_port: port,
                    length: 0,
                    checksum: 0,
                }
                .write(&mut b[l4..])
                .ok()?;
            }
            Tunnel::Vxlan {
                vni,
                inner_mac,
                port,
            } => {
                t.udp_at = l4 as u8;
                UdpHeader {
                    src_port: UDP_SPORT_BASE,
                    dst_port: port,
                    length: 0,
                    checksum: 0,
                }
                .write(&mut b[l4..])
                .ok()?;
                let vx = l4 + UdpHeader::LEN;
                VxlanHeader { vni }.write(&mut b[vx..]).ok()?;
                let inner = vx + VxlanHeader::LEN;
                let inner_type = if inner_v6 {
                    ETHERTYPE_IPV6
                } else {
                    ETHERTYPE_IPV4
                };
                ethernet::write_header(&mut b[inner..], inner_mac, [0; 6], inner_type).ok()?;
                t.inner_src_mac_at = (inner + 6) as u8;
            }
            Tunnel::Gre { key } => {
                let protocol = if inner_v6 {
                    GRE_PROTO_IPV6
                } else {
                    GRE_PROTO_IPV4
                };
                GreHeader { protocol, key }.write(&mut b[l4..]).ok()?;
            }
        }
        if t.outer_v6 && t.udp_at != 0 {
            let mut tail = t.bytes[usize::from(t.udp_at)..len].to_vec();
            tail[..2].fill(0);
            t.udp_tail_sum = checksum::sum(&tail);
        }
        t.shape = t.fixed_shape();
        Some(t)
    }

    /// Writes the outer Ethernet header (source MAC 0) and IP header
    /// (lengths and checksum 0), and the sum the per-packet patch starts
    /// from.
    /// `None` without a source address of the backend's family.
    fn write_outer_ip(&mut self, backend: IpAddr, proto: u8, outer: &Outer) -> Option<()> {
        let ethertype = if self.outer_v6 {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        let mac = outer.next_hop_mac;
        ethernet::write_header(&mut self.bytes, mac, [0; 6], ethertype).ok()?;
        match backend {
            IpAddr::V4(dst) => {
                Ipv4Header {
                    src: outer.source_v4?,
                    dst,
                    protocol: proto,
                    ttl: outer.ttl,
                    tos: 0,
                    ident: 0,
                    dont_fragment: true,
                    payload_len: 0,
                }
                .write(&mut self.bytes[ETH..])
                .ok()?;
                // Checksum as written covers total length 20; remove it so the
                // per-packet patch adds the real total length.
                let written = u16::from_be_bytes([self.bytes[ETH + 10], self.bytes[ETH + 11]]);
                // Kept as the header's sum with total length 0 (what
                // `checksum::update_16(c, 0, total)` starts from), so that a
                // packet adds its total length and folds.
                let zero_len = checksum::update_16(written, Ipv4Header::LEN as u16, 0);
                // RFC 1624's ~HC + ~m with m = 0, folded now: a packet's
                // sum (≤ 0xffff + 0xffff) then needs one fold, not a loop.
                // Kept in wire byte order (see `ipv4_checksum`).
                let sum = !checksum::fold(u32::from(!zero_len) + 0xffff);
                self.base_sum = u32::from(sum.to_be());
            }
            IpAddr::V6(dst) => {
                let src = outer.source_v6?;
                Ipv6Header {
                    src,
                    dst,
                    next_header: proto,
                    hop_limit: outer.ttl,
                    traffic_class: 0,
                    flow_label: 0,
                    payload_len: 0,
                }
                .write(&mut self.bytes[ETH..])
                .ok()?;
                self.base_sum = checksum::pseudo_header_v6(src, dst, IPPROTO_UDP, 0);
            }
        }
        Some(())
    }

    /// The [`Shape`] whose constants describe this template exactly, or
    /// [`Shape::General`].
    fn fixed_shape(&self) -> Shape {
        let (len, udp, mac) = (
            usize::from(self.len),
            usize::from(self.udp_at),
            usize::from(self.inner_src_mac_at),
        );
        let inner_type = match mac {
            0 => 0,
            at => u16::from_be_bytes([self.bytes[at + 6], self.bytes[at + 7]]),
        };
        let (v4, v6) = (inner_type == ETHERTYPE_IPV4, inner_type == ETHERTYPE_IPV6);
        if self.outer_v6 {
            return match (len, udp, mac) {
                (IPIP6_LEN, 0, 0) => Shape::IpIp6,
                (GRE6_LEN, 0, 0) => Shape::Gre6,
                (GRE_KEY6_LEN, 0, 0) => Shape::GreKey6,
                (GUE6_LEN, UDP6_AT, 0) => Shape::Gue6,
                (VXLAN6_LEN, UDP6_AT, VXLAN6_MAC_AT) if v4 => Shape::Vxlan6,
                (VXLAN6_LEN, UDP6_AT, VXLAN6_MAC_AT) if v6 => Shape::Vxlan6In6,
                _ => Shape::General,
            };
        }
        match (len, udp, mac) {
            (IPIP4_LEN, 0, 0) => Shape::IpIp4,
            (GRE4_LEN, 0, 0) => Shape::Gre4,
            (GRE_KEY4_LEN, 0, 0) => Shape::GreKey4,
            (GUE4_LEN, UDP4_AT, 0) => Shape::Gue4,
            (VXLAN4_LEN, UDP4_AT, VXLAN4_MAC_AT) if v4 => Shape::Vxlan4,
            (VXLAN4_LEN, UDP4_AT, VXLAN4_MAC_AT) if v6 => Shape::Vxlan4In6,
            _ => Shape::General,
        }
    }

    /// The outer IPv4 header's checksum field (its bytes) for total length
    /// `total`: `base_sum` is the header's sum with total length 0, folded
    /// to 16 bits, so adding a 16-bit length carries at most once. Summed
    /// in wire byte order (a one's complement sum is the same in either,
    /// RFC 1071 §2): the total length's wire form is what the header gets
    /// anyway, and the result needs no swap.
    #[inline(always)]
    fn ipv4_checksum(&self, total: u16) -> [u8; 2] {
        let s = self.base_sum + u32::from(total.to_be());
        (!(((s & 0xffff) + (s >> 16)) as u16)).to_ne_bytes()
    }

    /// Bytes added in front of the inner IP packet, outer Ethernet included.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Always false: a template has at least an Ethernet and an IP header.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Length of the outer IP header.
    #[inline(always)]
    fn ip_header_len(&self) -> usize {
        if self.outer_v6 {
            Ipv6Header::LEN
        } else {
            Ipv4Header::LEN
        }
    }

    /// This template for an egress MTU of `mtu`: the longest inner IP
    /// packet that fits once encapsulated is `mtu` less
    /// [`EncapTemplate::ip_overhead`] (0 if the overhead alone exceeds it).
    pub fn fit_to(mut self, mtu: u16) -> Self {
        self.max_ip_len = mtu.saturating_sub(self.ip_overhead() as u16);
        self
    }

    /// The longest inner IP packet that fits the MTU given to
    /// [`EncapTemplate::fit_to`].
    #[inline(always)]
    pub fn max_ip_len(&self) -> u16 {
        self.max_ip_len
    }

    /// Bytes added to the IP packet that count against the egress MTU.
    #[inline(always)]
    pub fn ip_overhead(&self) -> usize {
        self.len as usize - ETH
    }

    /// The template bytes (source MACs zero).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Encapsulates `pkt`, whose inner IP packet starts at `l2_len` and is
    /// `ip_len` bytes long (anything after it, such as Ethernet padding, is
    /// trimmed). `entropy` is the flow hash; `src_mac` the egress port's MAC.
    /// Inlined into the processor's one caller per packet type: a call
    /// cost ~20 of its ~100 instructions (saving registers, arguments).
    #[inline(always)]
    pub fn apply<P: PacketBuf>(
        &self,
        pkt: &mut P,
        l2_len: usize,
        ip_len: usize,
        entropy: u64,
        src_mac: SourceMac,
    ) -> Result<(), DropReason> {
        if l2_len != ETH {
            return self.apply_general(pkt, l2_len, ip_len, entropy, src_mac);
        }
        let (p, e, mac) = (pkt, entropy, src_mac);
        match self.shape {
            Shape::Vxlan4 => self
                .apply_v4::<_, VXLAN4_LEN, UDP4_AT, VXLAN4_MAC_AT, ETHERTYPE_IPV4>(
                    p, ip_len, e, mac,
                ),
            Shape::Vxlan4In6 => self
                .apply_v4::<_, VXLAN4_LEN, UDP4_AT, VXLAN4_MAC_AT, ETHERTYPE_IPV6>(
                    p, ip_len, e, mac,
                ),
            Shape::Gue4 => self.apply_v4::<_, GUE4_LEN, UDP4_AT, 0, 0>(p, ip_len, e, mac),
            Shape::IpIp4 => self.apply_v4::<_, IPIP4_LEN, 0, 0, 0>(p, ip_len, e, mac),
            Shape::Gre4 => self.apply_v4::<_, GRE4_LEN, 0, 0, 0>(p, ip_len, e, mac),
            Shape::GreKey4 => self.apply_v4::<_, GRE_KEY4_LEN, 0, 0, 0>(p, ip_len, e, mac),
            Shape::Vxlan6 => self
                .apply_v6::<_, VXLAN6_LEN, UDP6_AT, VXLAN6_MAC_AT, ETHERTYPE_IPV4>(
                    p, ip_len, e, mac,
                ),
            Shape::Vxlan6In6 => self
                .apply_v6::<_, VXLAN6_LEN, UDP6_AT, VXLAN6_MAC_AT, ETHERTYPE_IPV6>(
                    p, ip_len, e, mac,
                ),
            Shape::Gue6 => self.apply_v6::<_, GUE6_LEN, UDP6_AT, 0, 0>(p, ip_len, e, mac),
            Shape::IpIp6 => self.apply_v6::<_, IPIP6_LEN, 0, 0, 0>(p, ip_len, e, mac),
            Shape::Gre6 => self.apply_v6::<_, GRE6_LEN, 0, 0, 0>(p, ip_len, e, mac),
            Shape::GreKey6 => self.apply_v6::<_, GRE_KEY6_LEN, 0, 0, 0>(p, ip_len, e, mac),
            Shape::General => self.apply_general(p, ETH, ip_len, e, mac),
        }
    }

    /// [`EncapTemplate::apply`] of a [`Shape`] with an outer IPv4 header to a
    /// frame with a 14-byte Ethernet header: the template is `LEN` bytes,
    /// its UDP header at `UDP_AT` and its inner source MAC at `MAC_AT` (0:
    /// none), followed by EtherType `INNER_TYPE`. What the general code
    /// writes, with constant sizes.
    #[inline(always)]
    fn apply_v4<
        P: PacketBuf,
        const LEN: usize,
        const UDP_AT: usize,
        const MAC_AT: usize,
        const INNER_TYPE: u16,
    >(
        &self,
        pkt: &mut P,
        ip_len: usize,
        entropy: u64,
        src_mac: SourceMac,
    ) -> Result<(), DropReason> {
        make_room::<P, LEN>(pkt, ip_len)?;
        let h: &mut [u8; LEN] = first_chunk(pkt.data_mut())?;
        self.write_template::<LEN, MAC_AT, INNER_TYPE>(h, src_mac, ETHERTYPE_IPV4);
        let total = (LEN - ETH + ip_len) as u16;
        h[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        h[ETH + 10..ETH + 12].copy_from_slice(&self.ipv4_checksum(total));
        if UDP_AT != 0 {
            write_udp::<LEN, UDP_AT>(h, ip_len, entropy);
        }
        Ok(())
    }

    /// Copies the `LEN`-byte template into `h` and writes the source
    /// MACs: the outer one followed by `outer_type`, one at `MAC_AT` (0:
    /// none) by `INNER_TYPE` (each MAC and its EtherType one store).
    #[inline(always)]
    fn write_template<const LEN: usize, const MAC_AT: usize, const INNER_TYPE: u16>(
        &self,
        h: &mut [u8; LEN],
        src_mac: SourceMac,
        outer_type: u16,
    ) {
        h.copy_from_slice(&self.bytes[..LEN]);
        h[6..14].copy_from_slice(&src_mac.with_type(outer_type));
        if MAC_AT != 0 {
            const { assert!(MAC_AT == 0 || MAC_AT + 8 == LEN) };
            h[MAC_AT..MAC_AT + 8].copy_from_slice(&src_mac.with_type(INNER_TYPE));
        }
    }

    /// [`EncapTemplate::apply_v4`] for a [`Shape`] with an outer IPv6
    /// header: its payload length and flow label, and over UDP the
    /// checksum IPv6 requires (what the general code writes).
    #[inline(always)]
    fn apply_v6<
        P: PacketBuf,
        const LEN: usize,
        const UDP_AT: usize,
        const MAC_AT: usize,
        const INNER_TYPE: u16,
    >(
        &self,
        pkt: &mut P,
        ip_len: usize,
        entropy: u64,
        src_mac: SourceMac,
    ) -> Result<(), DropReason> {
        make_room::<P, LEN>(pkt, ip_len)?;
        let (h, inner) = pkt
            .data_mut()
            .split_first_chunk_mut::<LEN>()
            .ok_or(DropReason::NoHeadroom)?;
        self.write_template::<LEN, MAC_AT, INNER_TYPE>(h, src_mac, ETHERTYPE_IPV6);
        let payload = (LEN - ETH - Ipv6Header::LEN + ip_len) as u16;
        h[ETH + 4..ETH + 6].copy_from_slice(&payload.to_be_bytes());
        // Traffic class 0 in the template: its low bits share the byte.
        let label = (entropy as u32) & 0xf_ffff;
        h[ETH + 1..ETH + 4].copy_from_slice(&label.to_be_bytes()[1..]);
        if UDP_AT != 0 {
            let (udp_len, sport) = write_udp::<LEN, UDP_AT>(h, ip_len, entropy);
            let mac = if MAC_AT != 0 { src_mac.sum() } else { 0 };
            let c = self.udp6_checksum(udp_len, sport, mac, inner);
            h[UDP_AT + 6..UDP_AT + 8].copy_from_slice(&c.to_be_bytes());
        }
        Ok(())
    }

    /// The outer UDP checksum over IPv6 (mandatory there) of a packet of
    /// UDP length `udp_len` from source port `sport`, whose template bytes
    /// after the UDP header hold a MAC whose words sum to `mac_sum` (0:
    /// none), carrying `inner`: the template's sums (pseudo header; its
    /// bytes from the UDP header on) and the fields the packet wrote (the
    /// length twice: pseudo header and UDP header), not the header read
    /// back (loads of bytes just stored wait for the stores); the inner
    /// packet's words from the frame. Each term is at most 0xffff (three
    /// for the MAC): no overflow.
    #[inline(always)]
    fn udp6_checksum(&self, udp_len: u16, sport: u16, mac_sum: u32, inner: &[u8]) -> u16 {
        let s = self.base_sum
            + self.udp_tail_sum
            + 2 * u32::from(udp_len)
            + u32::from(sport)
            + mac_sum
            + checksum::sum(inner);
        match checksum::fold(s) {
            0 => 0xffff,
            c => c,
        }
    }

    /// [`EncapTemplate::apply`] for any template and L2 header length.
    #[inline(always)]
    fn apply_general<P: PacketBuf>(
        &self,
        pkt: &mut P,
        l2_len: usize,
        ip_len: usize,
        entropy: u64,
        src_mac: SourceMac,
    ) -> Result<(), DropReason> {
        let mac = src_mac.bytes();
        let extra = pkt.len() - l2_len - ip_len;
        if extra > 0 {
            pkt.trim(extra as u16).ok_or(DropReason::MalformedL3)?;
        }
        // Grow the headroom side by (template - old L2 header) in one step.
        let len = self.len as usize;
        if len >= l2_len {
            pkt.prepend((len - l2_len) as u16)
                .ok_or(DropReason::NoHeadroom)?;
        } else {
            pkt.adj((l2_len - len) as u16)
                .ok_or(DropReason::MalformedL2)?;
        }
        let data = pkt.data_mut();
        let (hdr, inner) = data.split_at_mut(len);
        copy_template(hdr, &self.bytes);
        if self.inner_src_mac_at != 0 {
            let at = self.inner_src_mac_at as usize;
            hdr[at..at + 6].copy_from_slice(&mac);
        }
        // The IP header's place is fixed: write through a fixed-size view
        // (no bounds checks). Lengths in the template are 0.
        let payload = len - ETH - self.ip_header_len() + ip_len;
        if self.outer_v6 {
            let h: &mut [u8; ETH + Ipv6Header::LEN] = first_chunk(hdr)?;
            h[6..12].copy_from_slice(&mac);
            h[ETH + 4..ETH + 6].copy_from_slice(&(payload as u16).to_be_bytes());
            let label = (entropy as u32) & 0xf_ffff;
            h[ETH + 1] = (label >> 16) as u8; // traffic class 0 in the template
            h[ETH + 2] = (label >> 8) as u8;
            h[ETH + 3] = label as u8;
        } else {
            let h: &mut [u8; ETH + Ipv4Header::LEN] = first_chunk(hdr)?;
            h[6..12].copy_from_slice(&mac);
            let total = (Ipv4Header::LEN + payload) as u16;
            h[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
            h[ETH + 10..ETH + 12].copy_from_slice(&self.ipv4_checksum(total));
        }
        if self.udp_at != 0 {
            let u = self.udp_at as usize;
            let udp_len = (len - u + ip_len) as u16;
            let sport = udp_source_port(entropy);
            let h: &mut [u8; UdpHeader::LEN] = first_chunk(&mut hdr[u..])?;
            h[..2].copy_from_slice(&sport.to_be_bytes());
            h[4..6].copy_from_slice(&udp_len.to_be_bytes());
            if self.outer_v6 {
                let mac_sum = if self.inner_src_mac_at != 0 {
                    src_mac.sum()
                } else {
                    0
                };
                let c = self.udp6_checksum(udp_len, sport, mac_sum, inner);
                hdr[u + 6..u + 8].copy_from_slice(&c.to_be_bytes());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    /// The patched IPv4 checksum equals a checksum computed over the whole
    /// header, for every total length, with addresses whose sums carry.
    #[test]
    fn the_patched_ipv4_checksum_is_the_headers_checksum_for_every_length() {
        let sources = [
            Ipv4Addr::new(192, 0, 2, 254),
            Ipv4Addr::new(255, 255, 255, 254),
            Ipv4Addr::new(0, 0, 0, 1),
        ];
        let backends = [
            Ipv4Addr::new(10, 1, 0, 1),
            Ipv4Addr::new(255, 255, 255, 255),
            Ipv4Addr::new(0, 0, 0, 0),
        ];
        let tunnels = [
            Tunnel::IpIp,
            Tunnel::Gue { port: 6080 },
            Tunnel::Gre { key: Some(7) },
        ];
        for (src, (dst, tunnel)) in sources.iter().zip(backends.iter().zip(tunnels)) {
            let outer = Outer {
                source_v4: Some(*src),
                source_v6: None,
                next_hop_mac: [2, 0, 0, 0, 0, 1],
                ttl: 64,
            };
            let t = EncapTemplate::build(IpAddr::V4(*dst), tunnel, false, &outer).unwrap();
            let mut h: [u8; Ipv4Header::LEN] =
                t.bytes[ETH..ETH + Ipv4Header::LEN].try_into().unwrap();
            for total in Ipv4Header::LEN as u16..=u16::MAX {
                h[2..4].copy_from_slice(&total.to_be_bytes());
                h[10..12].copy_from_slice(&t.ipv4_checksum(total));
                assert_eq!(checksum::checksum(&h), 0, "{src} → {dst}, total {total}");
            }
        }
    }

    /// Every fixed shape writes what the general code writes: the same
    /// bytes and the same result, for each tunnel and inner family, short
    /// and long packets, Ethernet padding, too little headroom and an L2
    /// header other than 14 bytes (which takes the general code). Outer
    /// IPv4 templates must have a fixed shape, or the test proves nothing.
    #[test]
    fn fixed_shapes_write_what_the_general_code_writes() {
        use dnlb_testkit::VecPacket;
        let outer = Outer {
            source_v4: Some(Ipv4Addr::new(192, 0, 2, 254)),
            source_v6: Some("2001:db8::fe".parse().unwrap()),
            next_hop_mac: [2, 0, 0, 0, 0, 0xfe],
            ttl: 64,
        };
        let tunnels = [
            Tunnel::IpIp,
            Tunnel::Gue { port: 6080 },
            Tunnel::Vxlan {
                vni: 0x12_3456,
                inner_mac: [2, 0, 10, 1, 0, 1],
                port: 4789,
            },
            Tunnel::Gre { key: None },
            Tunnel::Gre { key: Some(7) },
        ];
        let backends: [IpAddr; 2] = [
            Ipv4Addr::new(10, 1, 0, 1).into(),
            "2001:db8:1::1".parse().unwrap(),
        ];
        let mac = SourceMac::new([2, 0, 0, 0, 0, 1]);
        let mut fixed = 0;
        for (backend, tunnel) in backends.iter().flat_map(|b| tunnels.map(|t| (*b, t))) {
            for inner_v6 in [false, true] {
                let t = EncapTemplate::build(backend, tunnel, inner_v6, &outer).unwrap();
                assert_ne!(t.shape, Shape::General, "{tunnel:?} to {backend}");
                fixed += usize::from(t.shape != Shape::General);
                let cases = [20, 46, 1400, 1500].into_iter().flat_map(|ip| {
                    [(14, 0, 128), (14, 7, 128), (14, 0, 40), (18, 3, 128)]
                        .map(|(l2, pad, room)| (ip, l2, pad, room))
                });
                for (ip_len, l2, pad, room) in cases {
                    let frame: Vec<u8> = (0..l2 + ip_len + pad)
                        .map(|i| (i * 7 + ip_len) as u8)
                        .collect();
                    let (mut a, mut b) = (
                        VecPacket::with_headroom(&frame, room),
                        VecPacket::with_headroom(&frame, room),
                    );
                    let ra = t.apply(&mut a, l2, ip_len, 0xdead_beef_cafe, mac);
                    let rb = t.apply_general(&mut b, l2, ip_len, 0xdead_beef_cafe, mac);
                    let what = format!("{tunnel:?} to {backend}, inner v6 {inner_v6}, IP {ip_len}, L2 {l2}, padding {pad}, headroom {room}");
                    assert_eq!(ra, rb, "{what}");
                    if ra.is_ok() {
                        assert_eq!(a.data(), b.data(), "{what}");
                    }
                }
            }
        }
        assert_eq!(fixed, 20);
    }
}

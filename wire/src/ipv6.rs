//! IPv6 (RFC 8200): a packet view with a bounded extension-header walk, and a header writer.
//!
//! ```text
//!  0       4               12                                   31
//! +-------+---------------+-------------------------------------+
//! |version| traffic class |              flow label             |
//! +-------+---------------+-------+-------------+---------------+
//! |        payload length         | next header |   hop limit   |
//! +-------------------------------+-------------+---------------+
//! |                  source address (16 bytes)                  |
//! |               destination address (16 bytes)                |
//! ```
//!
//! Jumbograms (payload length 0 with a hop-by-hop jumbo option, RFC 2675) are not
//! supported: a payload length of 0 means an empty payload.

use core::net::Ipv6Addr;

use crate::bytes::{get_array, get_u16, get_u32, set_u16, set_u32};
use crate::ip::{IPPROTO_AH, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ROUTING};
use crate::WireError;

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// The most extension headers [`Ipv6Packet::upper_layer`] walks before giving up with
/// [`WireError::TooManyExtensionHeaders`].
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Field offsets of the IPv6 header and of its extension headers.
mod field {
    use core::ops::Range;

    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub(super) const VER_TC_FLOW: usize = 0;
    /// Payload length: bytes after the fixed header, extension headers included.
    pub(super) const LENGTH: usize = 4;
    /// Next header (first extension header or upper-layer protocol).
    pub(super) const NXT_HDR: usize = 6;
    /// Hop limit.
    pub(super) const HOP_LIMIT: usize = 7;
    /// Source address.
    pub(super) const SRC_ADDR: Range<usize> = 8..24;
    /// Destination address.
    pub(super) const DST_ADDR: Range<usize> = 24..40;
    /// Start of the payload.
    pub(super) const PAYLOAD: usize = 40;

    /// Mask of the flow label in the first 32-bit word.
    pub(super) const FLOW_MASK: u32 = 0x000F_FFFF;

    /// In every extension header: the next header.
    pub(super) const EXT_NEXT: usize = 0;
    /// In hop-by-hop, routing, destination options (8-byte units, not counting the first 8)
    /// and AH (4-byte units, minus 2): the header length.
    pub(super) const EXT_LEN: usize = 1;
    /// In a fragment header: offset (13 bits, 8-byte units, upper bits), 2 reserved bits and
    /// the M flag (lowest bit).
    pub(super) const FRAG_OFF_M: usize = 2;
    /// In a fragment header: identification.
    pub(super) const FRAG_IDENT: usize = 4;
    /// Length of a fragment header.
    pub(super) const FRAG_LEN: usize = 8;
    /// Offset bits of the fragment offset/M word; being the top 13 bits of a value in
    /// 8-byte units, masking yields the offset in bytes.
    pub(super) const FRAG_OFFSET_MASK: u16 = 0xFFF8;
    /// More-fragments bit of the fragment offset/M word.
    pub(super) const FRAG_MORE: u16 = 0x0001;
}

/// A view of an IPv6 packet.
///
/// `new_checked` accepts buffers longer than `40 + payload_len` (Ethernet padding);
/// [`payload`](Self::payload) stops at the payload length. See the [crate docs](crate) for
/// the checked/unchecked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<B> {
    buffer: B,
}

/// The IPv6 fragment header found while walking extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Fragment {
    /// Offset of this fragment's data in the original packet, in bytes.
    pub offset: u16,
    /// The more-fragments flag.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the upper-layer (transport) header of an IPv6 packet is, per
/// [`Ipv6Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// Protocol number of what follows the extension headers (TCP, UDP, ICMPv6, ESP, no next
    /// header, ...; see [`crate::ip`]).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, if one was walked. If there were several (RFC 8200 allows one),
    /// the first that makes the packet a fragment (a non-zero offset or the more-fragments
    /// flag), else the last: an atomic fragment header after a real one cannot make a
    /// fragment look like a whole packet.
    pub fragment: Option<Ipv6Fragment>,
}

impl UpperLayer {
    /// Whether the upper-layer header is present at [`offset`](Self::offset): true unless the
    /// packet is a fragment other than the first.
    #[inline]
    pub fn header_present(&self) -> bool {
        !matches!(self.fragment, Some(f) if f.offset != 0)
    }
}

impl<B: AsRef<[u8]>> Ipv6Packet<B> {
    /// Wraps `buffer` without any check; accessors may panic on an invalid header.
    pub const fn new_unchecked(buffer: B) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after checking that it holds the 40-byte header (else
    /// [`WireError::Truncated`]), that the version is 6 (else [`WireError::BadVersion`]) and
    /// that it holds the payload length (else [`WireError::Truncated`]).
    pub fn new_checked(buffer: B) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        let header = bytes.get(..HEADER_LEN).ok_or(WireError::Truncated)?;
        if header[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(WireError::BadVersion);
        }
        let payload_len = usize::from(get_u16(header, field::LENGTH));
        if bytes.len() < HEADER_LEN + payload_len {
            return Err(WireError::Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> B {
        self.buffer
    }

    /// The version field (6 after `new_checked`).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// The traffic class (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (get_u32(self.buffer.as_ref(), field::VER_TC_FLOW) >> 20) as u8
    }

    /// The flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & field::FLOW_MASK
    }

    /// The payload length field: bytes after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The next-header field of the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), field::SRC_ADDR.start))
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), field::DST_ADDR.start))
    }

    /// End of the packet: `40 + payload_len`.
    #[inline]
    fn end(&self) -> usize {
        field::PAYLOAD + usize::from(self.payload_len())
    }

    /// The payload: extension headers and upper-layer data, up to the payload length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..self.end()]
    }

    /// The bytes from `upper.offset` to the end of the payload: the upper-layer header and
    /// its data. Empty if `upper` does not describe this packet.
    #[inline]
    pub fn upper_layer_payload(&self, upper: &UpperLayer) -> &[u8] {
        self.buffer
            .as_ref()
            .get(upper.offset..self.end())
            .unwrap_or(&[])
    }

    /// Walks the extension headers to the upper-layer header.
    ///
    /// Follows hop-by-hop options (0), routing (43), fragment (44), destination options (60)
    /// and authentication (51) headers, in any order, and stops at any other next-header
    /// value (ESP 50, no next header 59, TCP, UDP, ...), which it returns with its offset.
    /// The walk also stops right after a fragment header with a non-zero offset, since what
    /// follows is the middle of the original packet (see [`UpperLayer::header_present`]).
    ///
    /// Errors: [`WireError::TooManyExtensionHeaders`] when a ninth extension header is
    /// reached ([`MAX_EXTENSION_HEADERS`]), [`WireError::Truncated`] when an extension
    /// header runs past the payload length.
    pub fn upper_layer(&self) -> Result<UpperLayer, WireError> {
        let packet = &self.buffer.as_ref()[..self.end()];
        let mut protocol = self.next_header();
        let mut offset = field::PAYLOAD;
        let mut fragment = None;
        let mut count = 0;
        loop {
            let len = match protocol {
                IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                    let len = packet
                        .get(offset + field::EXT_LEN)
                        .ok_or(WireError::Truncated)?;
                    (usize::from(*len) + 1) * 8
                }
                IPPROTO_AH => {
                    let len = packet
                        .get(offset + field::EXT_LEN)
                        .ok_or(WireError::Truncated)?;
                    (usize::from(*len) + 2) * 4
                }
                IPPROTO_FRAGMENT => field::FRAG_LEN,
                _ => break,
            };
            if count == MAX_EXTENSION_HEADERS {
                return Err(WireError::TooManyExtensionHeaders);
            }
            count += 1;
            let header = packet
                .get(offset..offset + len)
                .ok_or(WireError::Truncated)?;
            let this = protocol;
            protocol = header[field::EXT_NEXT];
            offset += len;
            if this == IPPROTO_FRAGMENT {
                let off_m = get_u16(header, field::FRAG_OFF_M);
                let frag = Ipv6Fragment {
                    offset: off_m & field::FRAG_OFFSET_MASK,
                    more: off_m & field::FRAG_MORE != 0,
                    ident: get_u32(header, field::FRAG_IDENT),
                };
                if !fragment.is_some_and(|f: Ipv6Fragment| f.offset != 0 || f.more) {
                    fragment = Some(frag);
                }
                if frag.offset != 0 {
                    break;
                }
            }
        }
        Ok(UpperLayer {
            protocol,
            offset,
            fragment,
        })
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<B> {
    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    /// Sets the next-header field of the fixed header.
    #[inline]
    pub fn set_next_header(&mut self, next_header: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = next_header;
    }

    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, traffic_class: u8) {
        let bytes = self.buffer.as_mut();
        let word = get_u32(bytes, field::VER_TC_FLOW);
        let word = (word & 0xF00F_FFFF) | (u32::from(traffic_class) << 20);
        set_u32(bytes, field::VER_TC_FLOW, word);
    }

    /// Sets the flow label; bits above the low 20 are ignored.
    #[inline]
    pub fn set_flow_label(&mut self, flow_label: u32) {
        let bytes = self.buffer.as_mut();
        let word = get_u32(bytes, field::VER_TC_FLOW);
        let word = (word & !field::FLOW_MASK) | (flow_label & field::FLOW_MASK);
        set_u32(bytes, field::VER_TC_FLOW, word);
    }

    /// Sets the source address. (IPv6 has no header checksum; a TCP/UDP/ICMPv6 checksum
    /// covering the address needs [`crate::checksum::update_addr_v6`].)
    #[inline]
    pub fn set_src(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address (see [`set_src`](Self::set_src) about checksums).
    #[inline]
    pub fn set_dst(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// The payload, mutably (see [`payload`](Ipv6Packet::payload)).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.end();
        &mut self.buffer.as_mut()[field::PAYLOAD..end]
    }
}

/// A fixed IPv6 header, to be written with [`Ipv6Header::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header (see [`crate::ip`]).
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class (DSCP and ECN).
    pub traffic_class: u8,
    /// Flow label; must fit in 20 bits.
    pub flow_label: u32,
    /// Length of everything after this header, in bytes.
    pub payload_len: u16,
}

impl Ipv6Header {
    /// Length of the written header.
    pub const LEN: usize = HEADER_LEN;

    /// Writes the header to the start of `buf`; returns [`Self::LEN`].
    ///
    /// Errors: [`WireError::BufferTooSmall`] if `buf` is shorter than 40 bytes,
    /// [`WireError::ValueOutOfRange`] if the flow label does not fit in 20 bits.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if self.flow_label & !field::FLOW_MASK != 0 {
            return Err(WireError::ValueOutOfRange);
        }
        let header = buf.get_mut(..Self::LEN).ok_or(WireError::BufferTooSmall)?;
        let word = (6 << 28) | (u32::from(self.traffic_class) << 20) | self.flow_label;
        set_u32(header, field::VER_TC_FLOW, word);
        set_u16(header, field::LENGTH, self.payload_len);
        header[field::NXT_HDR] = self.next_header;
        header[field::HOP_LIMIT] = self.hop_limit;
        header[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        header[field::DST_ADDR].copy_from_slice(&self.dst.octets());
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::{IPPROTO_ESP, IPPROTO_NONE, IPPROTO_TCP, IPPROTO_UDP};

    /// IPv6 header for 2001:db8::1 -> 2001:db8::2 with the given next header and payload
    /// length, followed by `rest`.
    fn packet(next_header: u8, payload_len: u16, rest: &[u8]) -> std::vec::Vec<u8> {
        #[rustfmt::skip]
        let mut bytes = std::vec![
            0x6a, 0xb1, 0x23, 0x45,          // version 6, TC 0xab, flow label 0x12345
            0x00, 0x00,                      // payload length (set below)
            next_header,                     // next header
            0x40,                            // hop limit 64
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src 2001:db8::1
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst 2001:db8::2
        ];
        bytes[4..6].copy_from_slice(&payload_len.to_be_bytes());
        bytes.extend_from_slice(rest);
        bytes
    }

    #[test]
    fn fixed_header() {
        let bytes = packet(IPPROTO_UDP, 8, &[1, 2, 3, 4, 5, 6, 7, 8, 0xee, 0xee]);
        let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xab);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), IPPROTO_UDP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        let upper = p.upper_layer().unwrap();
        assert_eq!(
            upper,
            UpperLayer {
                protocol: IPPROTO_UDP,
                offset: 40,
                fragment: None
            }
        );
        assert!(upper.header_present());
        assert_eq!(p.upper_layer_payload(&upper), &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn malformed() {
        let bytes = packet(IPPROTO_UDP, 8, &[0; 8]);
        for len in 0..40 {
            assert_eq!(
                Ipv6Packet::new_checked(&bytes[..len]),
                Err(WireError::Truncated)
            );
        }
        // Payload length 8 but 7 bytes.
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..47]),
            Err(WireError::Truncated)
        );
        let mut bad = bytes.clone();
        bad[0] = 0x4a;
        assert_eq!(
            Ipv6Packet::new_checked(&bad[..]),
            Err(WireError::BadVersion)
        );
    }

    #[test]
    fn extension_headers() {
        #[rustfmt::skip]
        let rest = [
            // hop-by-hop: next = routing, len 0 (8 bytes), PadN
            IPPROTO_ROUTING, 0, 1, 4, 0, 0, 0, 0,
            // routing: next = AH, len 1 (16 bytes), type 0, segments left 0, 12 bytes data
            IPPROTO_AH, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            // AH: next = fragment, payload len 2 -> (2 + 2) * 4 = 16 bytes
            IPPROTO_FRAGMENT, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xa, 0xb, 0xc, 0xd,
            // fragment: next = dst options, offset 0, M = 1, ident 0xdeadbeef
            IPPROTO_DSTOPTS, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef,
            // destination options: next = TCP, len 0
            IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0,
            // TCP starts here (offset 40 + 56 = 96)
            0xaa, 0xbb,
        ];
        let bytes = packet(0, rest.len() as u16, &rest);
        let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        let upper = p.upper_layer().unwrap();
        assert_eq!(upper.protocol, IPPROTO_TCP);
        assert_eq!(upper.offset, 96);
        assert_eq!(
            upper.fragment,
            Some(Ipv6Fragment {
                offset: 0,
                more: true,
                ident: 0xdead_beef
            })
        );
        assert!(upper.header_present());
        assert_eq!(p.upper_layer_payload(&upper), &[0xaa, 0xbb]);

        // Every cut inside the extension headers is caught (payload length shrunk with it).
        for cut in 0..56 {
            let bytes = packet(0, cut as u16, &rest[..cut]);
            let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(p.upper_layer(), Err(WireError::Truncated), "cut at {cut}");
        }
    }

    #[test]
    fn non_first_fragment_stops_the_walk() {
        #[rustfmt::skip]
        let rest = [
            // fragment: next = UDP, offset 185 * 8 = 1480, M = 0, ident 7
            IPPROTO_UDP, 0, 0x05, 0xc8, 0, 0, 0, 7,
            // middle of the original packet; looks like a hop-by-hop header but is data
            0, 0xff, 0, 0,
        ];
        let bytes = packet(IPPROTO_FRAGMENT, rest.len() as u16, &rest);
        let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        let upper = p.upper_layer().unwrap();
        assert_eq!(upper.protocol, IPPROTO_UDP);
        assert_eq!(upper.offset, 48);
        assert_eq!(
            upper.fragment,
            Some(Ipv6Fragment {
                offset: 1480,
                more: false,
                ident: 7
            })
        );
        assert!(!upper.header_present());
    }

    #[test]
    fn a_later_atomic_fragment_header_does_not_hide_a_fragment() {
        #[rustfmt::skip]
        let first_then_atomic = [
            // fragment: next = fragment, offset 0, M = 1, ident 1
            IPPROTO_FRAGMENT, 0, 0x00, 0x01, 0, 0, 0, 1,
            // fragment: next = UDP, offset 0, M = 0 (atomic), ident 2
            IPPROTO_UDP, 0, 0x00, 0x00, 0, 0, 0, 2,
            0xaa, 0xbb,
        ];
        let bytes = packet(
            IPPROTO_FRAGMENT,
            first_then_atomic.len() as u16,
            &first_then_atomic,
        );
        let upper = Ipv6Packet::new_checked(&bytes[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((upper.protocol, upper.offset), (IPPROTO_UDP, 56));
        assert_eq!(
            upper.fragment,
            Some(Ipv6Fragment {
                offset: 0,
                more: true,
                ident: 1
            })
        );
        // The other order: the atomic one first, the real one counts.
        let mut atomic_then_first = first_then_atomic;
        atomic_then_first[3] = 0x00;
        atomic_then_first[11] = 0x01;
        let bytes = packet(
            IPPROTO_FRAGMENT,
            atomic_then_first.len() as u16,
            &atomic_then_first,
        );
        let upper = Ipv6Packet::new_checked(&bytes[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(
            upper.fragment,
            Some(Ipv6Fragment {
                offset: 0,
                more: true,
                ident: 2
            })
        );
    }

    #[test]
    fn walk_stops_at_esp_and_no_next_header() {
        for stop in [IPPROTO_ESP, IPPROTO_NONE] {
            let rest = [stop, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
            let bytes = packet(IPPROTO_DSTOPTS, rest.len() as u16, &rest);
            let upper = Ipv6Packet::new_checked(&bytes[..])
                .unwrap()
                .upper_layer()
                .unwrap();
            assert_eq!((upper.protocol, upper.offset), (stop, 48));
        }
    }

    #[test]
    fn extension_header_limit() {
        let chain = |n: usize| {
            let mut rest = std::vec::Vec::new();
            for i in 0..n {
                let next = if i + 1 == n {
                    IPPROTO_TCP
                } else {
                    IPPROTO_DSTOPTS
                };
                rest.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
            packet(IPPROTO_DSTOPTS, rest.len() as u16, &rest)
        };
        let eight = chain(8);
        let upper = Ipv6Packet::new_checked(&eight[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((upper.protocol, upper.offset), (IPPROTO_TCP, 40 + 64));
        let nine = chain(9);
        assert_eq!(
            Ipv6Packet::new_checked(&nine[..]).unwrap().upper_layer(),
            Err(WireError::TooManyExtensionHeaders)
        );
    }

    #[test]
    fn setters_and_writer() {
        let mut bytes = packet(IPPROTO_UDP, 2, &[9, 9]);
        let mut p = Ipv6Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_hop_limit(1);
        p.set_next_header(IPPROTO_TCP);
        p.set_traffic_class(0x12);
        p.set_flow_label(0xFFFF_FFFF);
        let a: Ipv6Addr = "fe80::1".parse().unwrap();
        let b: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
        p.set_src(a);
        p.set_dst(b);
        p.payload_mut()[1] = 7;
        assert_eq!(p.version(), 6);
        assert_eq!(p.hop_limit(), 1);
        assert_eq!(p.next_header(), IPPROTO_TCP);
        assert_eq!(p.traffic_class(), 0x12);
        assert_eq!(p.flow_label(), 0xFFFFF);
        assert_eq!((p.src(), p.dst()), (a, b));
        assert_eq!(p.payload(), &[9, 7]);

        let header = Ipv6Header {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            next_header: IPPROTO_UDP,
            hop_limit: 64,
            traffic_class: 0xab,
            flow_label: 0x12345,
            payload_len: 8,
        };
        let mut buf = [0u8; 40];
        assert_eq!(header.write(&mut buf), Ok(40));
        assert_eq!(buf[..], packet(IPPROTO_UDP, 8, &[])[..]);
        assert_eq!(header.write(&mut buf[..39]), Err(WireError::BufferTooSmall));
        let bad = Ipv6Header {
            flow_label: 0x100000,
            ..header
        };
        assert_eq!(bad.write(&mut buf), Err(WireError::ValueOutOfRange));
    }
}

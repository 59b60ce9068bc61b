//! IPv4 (RFC 791): a packet view and a header writer.
//!
//! ```text
//!  0       4       8              16      19             31
//! +-------+-------+---------------+-------------------------+
//! |version|  IHL  |      TOS      |       total length      |
//! +-------+-------+---------------+-----+-------------------+
//! |        identification         |flags| fragment offset   |
//! +---------------+---------------+-----+-------------------+
//! |      TTL      |   protocol    |     header checksum     |
//! +---------------+---------------+-------------------------+
//! |                      source address                     |
//! |                   destination address                   |
//! |                 options (IHL > 5) ...                   |
//! ```

use core::net::Ipv4Addr;

use crate::bytes::{get_array, get_u16, set_u16};
use crate::{checksum, WireError};

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Field offsets of the IPv4 header.
mod field {
    use core::ops::Range;

    /// Version (high nibble) and IHL in 32-bit words (low nibble).
    pub(super) const VER_IHL: usize = 0;
    /// Type of service: DSCP (6 bits) and ECN (2 bits).
    pub(super) const TOS: usize = 1;
    /// Total length of header and payload, in bytes.
    pub(super) const LENGTH: usize = 2;
    /// Identification, for reassembly.
    pub(super) const IDENT: usize = 4;
    /// Flags (3 bits: reserved, DF, MF) and fragment offset (13 bits, 8-byte units).
    pub(super) const FLG_OFF: usize = 6;
    /// Time to live.
    pub(super) const TTL: usize = 8;
    /// Protocol of the payload.
    pub(super) const PROTOCOL: usize = 9;
    /// Header checksum.
    pub(super) const CHECKSUM: usize = 10;
    /// Source address.
    pub(super) const SRC_ADDR: Range<usize> = 12..16;
    /// Destination address.
    pub(super) const DST_ADDR: Range<usize> = 16..20;
    /// Start of the options.
    pub(super) const OPTIONS: usize = 20;

    /// Don't-fragment bit of the flags/offset word.
    pub(super) const FLAG_DF: u16 = 0x4000;
    /// More-fragments bit of the flags/offset word.
    pub(super) const FLAG_MF: u16 = 0x2000;
    /// Fragment offset bits of the flags/offset word.
    pub(super) const OFFSET_MASK: u16 = 0x1FFF;
}

/// A view of an IPv4 packet.
///
/// `new_checked` accepts buffers longer than the total length (Ethernet padding);
/// [`payload`](Self::payload) stops at the total length. See the [crate docs](crate) for the
/// checked/unchecked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<B> {
    buffer: B,
}

impl<B: AsRef<[u8]>> Ipv4Packet<B> {
    /// Wraps `buffer` without any check; accessors may panic on an invalid header.
    pub const fn new_unchecked(buffer: B) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole IPv4 packet.
    ///
    /// Errors, in the order checked: [`WireError::Truncated`] (under 20 bytes),
    /// [`WireError::BadVersion`] (not 4), [`WireError::BadHeaderLength`] (IHL < 5),
    /// [`WireError::Truncated`] (header with options longer than the buffer),
    /// [`WireError::BadTotalLength`] (total length smaller than the header),
    /// [`WireError::Truncated`] (total length longer than the buffer).
    pub fn new_checked(buffer: B) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        let header = bytes.get(..MIN_HEADER_LEN).ok_or(WireError::Truncated)?;
        if header[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let header_len = usize::from(header[field::VER_IHL] & 0x0F) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if bytes.len() < header_len {
            return Err(WireError::Truncated);
        }
        let total_len = usize::from(get_u16(header, field::LENGTH));
        if total_len < header_len {
            return Err(WireError::BadTotalLength);
        }
        if bytes.len() < total_len {
            return Err(WireError::Truncated);
        }
        Ok(Ipv4Packet { buffer })
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> B {
        self.buffer
    }

    /// The version field (4 after `new_checked`).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Length of the header including options, in bytes (20..=60).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0F) * 4
    }

    /// The total length field: header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The type-of-service byte (DSCP and ECN).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// The differentiated services code point (high 6 bits of the TOS byte).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// The explicit congestion notification bits (low 2 bits of the TOS byte).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    fn flags_offset(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLG_OFF)
    }

    /// The don't-fragment flag.
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.flags_offset() & field::FLAG_DF != 0
    }

    /// The more-fragments flag.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.flags_offset() & field::FLAG_MF != 0
    }

    /// The fragment offset, in bytes (the field is in 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & field::OFFSET_MASK) * 8
    }

    /// Whether this packet is a fragment (more-fragments set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (field::FLAG_MF | field::OFFSET_MASK) != 0
    }

    /// Whether this packet is the first fragment of a fragmented packet (more-fragments set,
    /// offset 0). False for unfragmented packets.
    ///
    /// The transport header is present when `frag_offset() == 0` (unfragmented packets and
    /// first fragments).
    #[inline]
    pub fn is_first_fragment(&self) -> bool {
        self.flags_offset() & (field::FLAG_MF | field::OFFSET_MASK) == field::FLAG_MF
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol number of the payload (see [`crate::ip`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum field.
    #[inline]
    pub fn header_checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), field::SRC_ADDR.start))
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), field::DST_ADDR.start))
    }

    /// The options (bytes 20..header_len; empty without options).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// The payload: bytes from the end of the header to the total length (padding after the
    /// total length is excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<B> {
    /// Replaces the 16-bit header word at `at` and updates the header checksum.
    #[inline]
    fn replace_word(&mut self, at: usize, new: u16) {
        let bytes = self.buffer.as_mut();
        let old = get_u16(bytes, at);
        let sum = checksum::update_16(get_u16(bytes, field::CHECKSUM), old, new);
        set_u16(bytes, at, new);
        set_u16(bytes, field::CHECKSUM, sum);
    }

    /// Sets the time to live, updating the header checksum.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        let word = u16::from_be_bytes([ttl, self.protocol()]);
        self.replace_word(field::TTL, word);
    }

    /// Sets the protocol number, updating the header checksum.
    #[inline]
    pub fn set_protocol(&mut self, protocol: u8) {
        let word = u16::from_be_bytes([self.ttl(), protocol]);
        self.replace_word(field::TTL, word);
    }

    /// Sets the type-of-service byte, updating the header checksum.
    #[inline]
    pub fn set_tos(&mut self, tos: u8) {
        let word = u16::from_be_bytes([self.buffer.as_ref()[field::VER_IHL], tos]);
        self.replace_word(field::VER_IHL, word);
    }

    /// Sets the source address, updating the header checksum. (A TCP/UDP checksum covering
    /// the address through the pseudo-header needs [`checksum::update_addr_v4`].)
    #[inline]
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        let old = self.src();
        let sum = checksum::update_addr_v4(self.header_checksum(), old, addr);
        let bytes = self.buffer.as_mut();
        bytes[field::SRC_ADDR].copy_from_slice(&addr.octets());
        set_u16(bytes, field::CHECKSUM, sum);
    }

    /// Sets the destination address, updating the header checksum.
    #[inline]
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        let old = self.dst();
        let sum = checksum::update_addr_v4(self.header_checksum(), old, addr);
        let bytes = self.buffer.as_mut();
        bytes[field::DST_ADDR].copy_from_slice(&addr.octets());
        set_u16(bytes, field::CHECKSUM, sum);
    }

    /// Sets the header checksum field to `value`.
    #[inline]
    pub fn set_header_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_header_checksum(0);
        let header_len = self.header_len();
        let sum = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_header_checksum(sum);
    }

    /// The payload, mutably (see [`payload`](Ipv4Packet::payload)).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// An IPv4 header without options, to be written with [`Ipv4Header::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number of the payload (see [`crate::ip`]).
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Type-of-service byte (DSCP and ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Whether to set the don't-fragment flag.
    pub dont_fragment: bool,
    /// Length of the payload after this header, in bytes; the total length written is
    /// `LEN + payload_len`.
    pub payload_len: u16,
}

impl Ipv4Header {
    /// Length of the written header.
    pub const LEN: usize = MIN_HEADER_LEN;

    /// Writes the header, with its checksum, to the start of `buf`; returns [`Self::LEN`].
    ///
    /// Errors: [`WireError::BufferTooSmall`] if `buf` is shorter than 20 bytes,
    /// [`WireError::PayloadTooLarge`] if `20 + payload_len` exceeds 65535.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let total_len = self
            .payload_len
            .checked_add(Self::LEN as u16)
            .ok_or(WireError::PayloadTooLarge)?;
        let header = buf.get_mut(..Self::LEN).ok_or(WireError::BufferTooSmall)?;
        header[field::VER_IHL] = 0x45;
        header[field::TOS] = self.tos;
        set_u16(header, field::LENGTH, total_len);
        set_u16(header, field::IDENT, self.ident);
        let flags = if self.dont_fragment {
            field::FLAG_DF
        } else {
            0
        };
        set_u16(header, field::FLG_OFF, flags);
        header[field::TTL] = self.ttl;
        header[field::PROTOCOL] = self.protocol;
        set_u16(header, field::CHECKSUM, 0);
        header[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        header[field::DST_ADDR].copy_from_slice(&self.dst.octets());
        let sum = checksum::checksum(header);
        set_u16(header, field::CHECKSUM, sum);
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4 + UDP, 28 bytes of packet, then 4 bytes of Ethernet padding.
    #[rustfmt::skip]
    const PACKET: [u8; 32] = [
        0x45,                   // version 4, IHL 5
        0xb8,                   // TOS: DSCP 46 (EF), ECN 0
        0x00, 0x1c,             // total length 28
        0x12, 0x34,             // identification
        0x40, 0x00,             // flags DF, offset 0
        0x40,                   // TTL 64
        0x11,                   // protocol UDP
        0x13, 0xe3,             // header checksum
        0x0a, 0x00, 0x00, 0x01, // src 10.0.0.1
        0x0a, 0x00, 0x00, 0x02, // dst 10.0.0.2
        0x30, 0x39, 0x00, 0x35, // UDP ports 12345 -> 53
        0x00, 0x08, 0x00, 0x00, // UDP length 8, no checksum
        0x00, 0x00, 0x00, 0x00, // Ethernet padding
    ];

    #[test]
    fn fields() {
        let p = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.tos(), 0xb8);
        assert_eq!(p.dscp(), 46);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_fragment());
        assert!(!p.more_fragments());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert!(!p.is_first_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.header_checksum(), 0x13e3);
        assert!(p.verify_checksum());
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload(), &PACKET[20..28]);
    }

    #[test]
    fn options_and_fragments() {
        #[rustfmt::skip]
        let mut packet = [
            0x46,                   // version 4, IHL 6
            0x00, 0x00, 0x20,       // TOS, total length 32
            0xab, 0xcd,             // identification
            0x20, 0x03,             // MF, offset 3 (24 bytes)
            0x05, 0x06, 0x00, 0x00, // TTL 5, TCP, checksum (filled below)
            192, 0, 2, 1,           // src
            198, 51, 100, 7,        // dst
            0x01, 0x01, 0x01, 0x00, // options: NOP NOP NOP EOL
            1, 2, 3, 4, 5, 6, 7, 8, // payload
        ];
        let mut p = Ipv4Packet::new_checked(&mut packet[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(p.more_fragments());
        assert_eq!(p.frag_offset(), 24);
        assert!(p.is_fragment());
        assert!(!p.is_first_fragment());
        packet[7] = 0; // offset 0, MF still set: first fragment
        let p = Ipv4Packet::new_checked(&packet[..]).unwrap();
        assert!(p.is_fragment());
        assert!(p.is_first_fragment());
        packet[6] = 0; // MF clear, offset 0: not a fragment
        let p = Ipv4Packet::new_checked(&packet[..]).unwrap();
        assert!(!p.is_fragment());
        assert!(!p.is_first_fragment());
        packet[6] = 0x1f; // max offset: 8191 * 8
        packet[7] = 0xff;
        assert_eq!(Ipv4Packet::new_unchecked(&packet[..]).frag_offset(), 65528);
    }

    #[test]
    fn malformed() {
        let check = |bytes: &[u8]| Ipv4Packet::new_checked(bytes).map(|_| ());
        for len in 0..20 {
            assert_eq!(check(&PACKET[..len]), Err(WireError::Truncated));
        }
        // Total length 28 but only 27 bytes.
        assert_eq!(check(&PACKET[..27]), Err(WireError::Truncated));
        assert_eq!(check(&PACKET[..28]), Ok(()));

        let mut p = PACKET;
        p[0] = 0x65; // version 6
        assert_eq!(check(&p), Err(WireError::BadVersion));
        p[0] = 0x44; // IHL 4
        assert_eq!(check(&p), Err(WireError::BadHeaderLength));
        p[0] = 0x4f; // IHL 15 = 60 bytes > 32
        assert_eq!(check(&p), Err(WireError::Truncated));
        p[0] = 0x45;
        p[3] = 19; // total length below the header
        assert_eq!(check(&p), Err(WireError::BadTotalLength));
        p[3] = 33; // total length beyond the buffer
        assert_eq!(check(&p), Err(WireError::Truncated));
    }

    #[test]
    fn setters_keep_checksum() {
        let mut packet = PACKET;
        let mut p = Ipv4Packet::new_checked(&mut packet[..]).unwrap();
        p.set_ttl(63);
        assert!(p.verify_checksum());
        p.set_tos(0x02);
        assert!(p.verify_checksum());
        p.set_protocol(6);
        assert!(p.verify_checksum());
        p.set_src(Ipv4Addr::new(172, 16, 254, 1));
        assert!(p.verify_checksum());
        p.set_dst(Ipv4Addr::new(255, 255, 255, 255));
        assert!(p.verify_checksum());
        assert_eq!(
            (p.ttl(), p.tos(), p.protocol(), p.src(), p.dst()),
            (
                63,
                2,
                6,
                Ipv4Addr::new(172, 16, 254, 1),
                Ipv4Addr::BROADCAST
            )
        );
        let incremental = p.header_checksum();
        p.fill_checksum();
        assert_eq!(p.header_checksum(), incremental);
        p.payload_mut()[0] = 0xff;
        assert_eq!(packet[20], 0xff);
    }

    #[test]
    fn writer() {
        let header = Ipv4Header {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: 17,
            ttl: 64,
            tos: 0xb8,
            ident: 0x1234,
            dont_fragment: true,
            payload_len: 8,
        };
        let mut buf = [0u8; 28];
        assert_eq!(header.write(&mut buf), Ok(20));
        assert_eq!(buf[..20], PACKET[..20]);
        assert_eq!(header.write(&mut buf[..19]), Err(WireError::BufferTooSmall));
        let too_big = Ipv4Header {
            payload_len: 65516,
            ..header
        };
        assert_eq!(too_big.write(&mut buf), Err(WireError::PayloadTooLarge));
        let max = Ipv4Header {
            payload_len: 65515,
            ..header
        };
        assert_eq!(max.write(&mut buf), Ok(20));
        assert_eq!(Ipv4Packet::new_unchecked(&buf[..]).total_len(), 65535);
    }
}

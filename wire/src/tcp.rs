//! TCP (RFC 9293): a segment view.
//!
//! ```text
//!  0                   16                                  31
//! +---------------------+-----------------------------------+
//! |     source port     |          destination port         |
//! +---------------------+-----------------------------------+
//! |                    sequence number                      |
//! |                 acknowledgment number                   |
//! +------+-----+--------+-----------------------------------+
//! | doff | rsv | flags  |              window               |
//! +------+-----+--------+-----------------------------------+
//! |      checksum       |          urgent pointer           |
//! |                 options (doff > 5) ...                  |
//! ```
//!
//! The view's buffer is the whole segment (header and data), as given by
//! [`crate::ipv4::Ipv4Packet::payload`] or [`crate::ipv6::Ipv6Packet::upper_layer_payload`]:
//! the checksum methods cover all of it.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::bytes::{get_u16, get_u32, set_u16};
use crate::ip::IPPROTO_TCP;
use crate::{checksum, WireError};

/// Length of a TCP header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Field offsets of the TCP header.
mod field {
    /// Source port.
    pub(super) const SRC_PORT: usize = 0;
    /// Destination port.
    pub(super) const DST_PORT: usize = 2;
    /// Sequence number.
    pub(super) const SEQ_NUM: usize = 4;
    /// Acknowledgment number.
    pub(super) const ACK_NUM: usize = 8;
    /// Data offset (high nibble, in 32-bit words), reserved bits, NS flag (lowest bit); the
    /// 16-bit word from here holds the data offset and all nine flags.
    pub(super) const DATA_OFF: usize = 12;
    /// Window size.
    pub(super) const WIN_SIZE: usize = 14;
    /// Checksum.
    pub(super) const CHECKSUM: usize = 16;
    /// Urgent pointer.
    pub(super) const URGENT: usize = 18;
    /// Start of the options.
    pub(super) const OPTIONS: usize = 20;

    /// Flag bits of the data-offset/flags word.
    pub(super) const FLAGS_MASK: u16 = 0x01FF;
}

/// The nine TCP flags, as the low bits of the data-offset/flags word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// FIN: no more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// SYN: synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// RST: reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// PSH: push.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// ACK: the acknowledgment number is significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// URG: the urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECE: ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// CWR: congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// NS: ECN nonce (RFC 3540, historic).
    pub const NS: TcpFlags = TcpFlags(0x100);

    /// Flags from their bits (bits above the nine flags are dropped).
    #[inline]
    pub const fn from_bits(bits: u16) -> TcpFlags {
        TcpFlags(bits & field::FLAGS_MASK)
    }

    /// The flag bits.
    #[inline]
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// FIN is set.
    #[inline]
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }

    /// SYN is set.
    #[inline]
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }

    /// RST is set.
    #[inline]
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }

    /// PSH is set.
    #[inline]
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }

    /// ACK is set.
    #[inline]
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }

    /// URG is set.
    #[inline]
    pub const fn urg(self) -> bool {
        self.contains(Self::URG)
    }

    /// ECE is set.
    #[inline]
    pub const fn ece(self) -> bool {
        self.contains(Self::ECE)
    }

    /// CWR is set.
    #[inline]
    pub const fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }

    /// NS is set.
    #[inline]
    pub const fn ns(self) -> bool {
        self.contains(Self::NS)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;

    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

/// A view of a TCP segment.
///
/// See the [crate docs](crate) for the checked/unchecked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<B> {
    buffer: B,
}

impl<B: AsRef<[u8]>> TcpPacket<B> {
    /// Wraps `buffer` without any check; accessors may panic on an invalid header.
    pub const fn new_unchecked(buffer: B) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after checking that it holds the 20-byte header (else
    /// [`WireError::Truncated`]), that the data offset is at least 5 (else
    /// [`WireError::BadHeaderLength`]) and that it holds the options (else
    /// [`WireError::Truncated`]).
    pub fn new_checked(buffer: B) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        let header = bytes.get(..MIN_HEADER_LEN).ok_or(WireError::Truncated)?;
        let header_len = usize::from(header[field::DATA_OFF] >> 4) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if bytes.len() < header_len {
            return Err(WireError::Truncated);
        }
        Ok(TcpPacket { buffer })
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> B {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length including options, in bytes (20..=60).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flags.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits(get_u16(self.buffer.as_ref(), field::DATA_OFF))
    }

    /// Window size.
    #[inline]
    pub fn window(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_pointer(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The options (bytes 20..header_len).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// The data after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Whether the checksum is correct for a segment carried in IPv4 from `src` to `dst`.
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::transport_v4(src, dst, IPPROTO_TCP, self.buffer.as_ref()) == 0
    }

    /// Whether the checksum is correct for a segment carried in IPv6 from `src` to `dst`.
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::transport_v6(src, dst, IPPROTO_TCP, self.buffer.as_ref()) == 0
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<B> {
    /// Replaces the 16-bit word at `at` and updates the checksum.
    #[inline]
    fn replace_word(&mut self, at: usize, new: u16) {
        let bytes = self.buffer.as_mut();
        let old = get_u16(bytes, at);
        let sum = checksum::update_16(get_u16(bytes, field::CHECKSUM), old, new);
        set_u16(bytes, at, new);
        set_u16(bytes, field::CHECKSUM, sum);
    }

    /// Sets the source port, updating the checksum.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        self.replace_word(field::SRC_PORT, port);
    }

    /// Sets the destination port, updating the checksum.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        self.replace_word(field::DST_PORT, port);
    }

    /// Sets the checksum field to `value` (for example after
    /// [`checksum::update_addr_v4`] for a rewritten IP address).
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes the checksum from scratch for a segment carried in IPv4 from `src` to `dst`.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let sum = checksum::transport_v4(src, dst, IPPROTO_TCP, self.buffer.as_ref());
        self.set_checksum(sum);
    }

    /// Computes the checksum from scratch for a segment carried in IPv6 from `src` to `dst`.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let sum = checksum::transport_v6(src, dst, IPPROTO_TCP, self.buffer.as_ref());
        self.set_checksum(sum);
    }

    /// The data after the header, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// A SYN from 10.0.0.1:40000 to 10.0.0.2:80 with an MSS option.
    #[rustfmt::skip]
    const SYN: [u8; 24] = [
        0x9c, 0x40,             // src port 40000
        0x00, 0x50,             // dst port 80
        0x01, 0x02, 0x03, 0x04, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0x60,                   // data offset 6 (24 bytes)
        0x02,                   // flags SYN
        0xfa, 0xf0,             // window 64240
        0xe8, 0x9c,             // checksum
        0x00, 0x00,             // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // option MSS 1460
    ];

    #[test]
    fn fields() {
        let t = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!(t.src_port(), 40000);
        assert_eq!(t.dst_port(), 80);
        assert_eq!(t.seq_number(), 0x0102_0304);
        assert_eq!(t.ack_number(), 0);
        assert_eq!(t.header_len(), 24);
        let flags = t.flags();
        assert!(flags.syn() && !flags.ack() && !flags.fin() && !flags.rst());
        assert_eq!(flags, TcpFlags::SYN);
        assert_eq!(t.window(), 64240);
        assert_eq!(t.checksum(), 0xe89c);
        assert_eq!(t.urgent_pointer(), 0);
        assert_eq!(t.options(), &[2, 4, 5, 0xb4]);
        assert_eq!(t.payload(), &[] as &[u8]);
        assert!(t.verify_checksum_v4(SRC, DST));
        assert!(!t.verify_checksum_v4(DST, DST));
    }

    #[test]
    fn all_flags() {
        let mut seg = SYN;
        seg[12] = 0x61; // data offset 6, NS
        seg[13] = 0xff;
        let flags = TcpPacket::new_checked(&seg[..]).unwrap().flags();
        assert_eq!(flags.bits(), 0x1ff);
        assert!(flags.fin() && flags.syn() && flags.rst() && flags.psh() && flags.ack());
        assert!(flags.urg() && flags.ece() && flags.cwr() && flags.ns());
        assert!(flags.contains(TcpFlags::SYN | TcpFlags::ACK));
        assert_eq!(TcpFlags::from_bits(0xffff).bits(), 0x1ff);
    }

    #[test]
    fn malformed() {
        for len in 0..20 {
            assert_eq!(
                TcpPacket::new_checked(&SYN[..len]),
                Err(WireError::Truncated)
            );
        }
        // Data offset 6 needs 24 bytes.
        for len in 20..24 {
            assert_eq!(
                TcpPacket::new_checked(&SYN[..len]),
                Err(WireError::Truncated)
            );
        }
        let mut seg = SYN;
        seg[12] = 0x40; // data offset 4
        assert_eq!(
            TcpPacket::new_checked(&seg[..]),
            Err(WireError::BadHeaderLength)
        );
        seg[12] = 0xf0; // data offset 15 = 60 bytes
        assert_eq!(TcpPacket::new_checked(&seg[..]), Err(WireError::Truncated));
    }

    #[test]
    fn setters_keep_checksum() {
        let mut seg = [0u8; 27];
        seg[..24].copy_from_slice(&SYN);
        seg[24..].copy_from_slice(b"abc");
        let mut t = TcpPacket::new_checked(&mut seg[..]).unwrap();
        t.fill_checksum_v4(SRC, DST);
        assert!(t.verify_checksum_v4(SRC, DST));
        t.set_src_port(1);
        t.set_dst_port(65535);
        assert!(t.verify_checksum_v4(SRC, DST));
        assert_eq!((t.src_port(), t.dst_port()), (1, 65535));
        t.payload_mut()[0] = b'x';
        assert_eq!(t.payload(), b"xbc");

        // NAT of the destination address through the pseudo-header.
        t.fill_checksum_v4(SRC, DST);
        let new_dst = Ipv4Addr::new(192, 168, 7, 9);
        t.set_checksum(checksum::update_addr_v4(t.checksum(), DST, new_dst));
        assert!(t.verify_checksum_v4(SRC, new_dst));

        let (a, b): (Ipv6Addr, Ipv6Addr) = ("2001:db8::1".parse().unwrap(), "::2".parse().unwrap());
        t.fill_checksum_v6(a, b);
        assert!(t.verify_checksum_v6(a, b));
        t.set_dst_port(8080);
        assert!(t.verify_checksum_v6(a, b));
    }
}

//! UDP (RFC 768): a datagram view, a header writer and checksum helpers.
//!
//! ```text
//!  0                   16                  31
//! +--------------------+--------------------+
//! |    source port     |  destination port  |
//! +--------------------+--------------------+
//! |       length       |      checksum      |
//! +--------------------+--------------------+
//! ```
//!
//! Over IPv4 a checksum field of 0 means "no checksum"; over IPv6 the checksum is mandatory
//! (RFC 8200 section 8.1). A computed checksum of 0 is sent as `0xFFFF` in both.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::bytes::{get_u16, set_u16};
use crate::ip::IPPROTO_UDP;
use crate::{checksum, WireError};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// Field offsets of the UDP header.
mod field {
    /// Source port.
    pub(super) const SRC_PORT: usize = 0;
    /// Destination port.
    pub(super) const DST_PORT: usize = 2;
    /// Length of header and data, in bytes.
    pub(super) const LENGTH: usize = 4;
    /// Checksum.
    pub(super) const CHECKSUM: usize = 6;
}

/// A view of a UDP datagram.
///
/// `new_checked` accepts buffers longer than the length field; [`payload`](Self::payload)
/// and the checksum methods stop at the length field. See the [crate docs](crate) for the
/// checked/unchecked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<B> {
    buffer: B,
}

impl<B: AsRef<[u8]>> UdpPacket<B> {
    /// Wraps `buffer` without any check; accessors may panic on an invalid header.
    pub const fn new_unchecked(buffer: B) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after checking that it holds the 8-byte header (else
    /// [`WireError::Truncated`]), that the length field is at least 8 (else
    /// [`WireError::BadLength`]) and that the buffer holds that length (else
    /// [`WireError::Truncated`]).
    pub fn new_checked(buffer: B) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        let header = bytes.get(..HEADER_LEN).ok_or(WireError::Truncated)?;
        let len = usize::from(get_u16(header, field::LENGTH));
        if len < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if bytes.len() < len {
            return Err(WireError::Truncated);
        }
        Ok(UdpPacket { buffer })
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

    /// The length field: header plus data, in bytes.
    #[inline]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the datagram carries no data (length field 8).
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The data after the header, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// The datagram, header and data, up to the length field.
    #[inline]
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// Whether the checksum is correct for a datagram carried in IPv4 from `src` to `dst`;
    /// true for a checksum field of 0 ("no checksum").
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || checksum::transport_v4(src, dst, IPPROTO_UDP, self.datagram()) == 0
    }

    /// Whether the checksum is correct for a datagram carried in IPv6 from `src` to `dst`;
    /// false for a checksum field of 0 (the checksum is mandatory in IPv6).
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.checksum() != 0 && checksum::transport_v6(src, dst, IPPROTO_UDP, self.datagram()) == 0
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<B> {
    /// Replaces the 16-bit word at `at`, updating the checksum unless it is 0 (no checksum).
    #[inline]
    fn replace_word(&mut self, at: usize, new: u16) {
        let bytes = self.buffer.as_mut();
        let old = get_u16(bytes, at);
        set_u16(bytes, at, new);
        let sum = get_u16(bytes, field::CHECKSUM);
        if sum != 0 {
            let sum = match checksum::update_16(sum, old, new) {
                0 => 0xFFFF,
                sum => sum,
            };
            set_u16(bytes, field::CHECKSUM, sum);
        }
    }

    /// Sets the source port, updating the checksum if there is one.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        self.replace_word(field::SRC_PORT, port);
    }

    /// Sets the destination port, updating the checksum if there is one.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        self.replace_word(field::DST_PORT, port);
    }

    /// Sets the checksum field to `value`.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes the checksum for a datagram carried in IPv4 from `src` to `dst`.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let len = usize::from(self.len());
        fill_checksum(&mut self.buffer.as_mut()[..len], |d| {
            checksum::transport_v4(src, dst, IPPROTO_UDP, d)
        });
    }

    /// Computes the checksum for a datagram carried in IPv6 from `src` to `dst`.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let len = usize::from(self.len());
        fill_checksum(&mut self.buffer.as_mut()[..len], |d| {
            checksum::transport_v6(src, dst, IPPROTO_UDP, d)
        });
    }

    /// The data after the header, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }
}

/// Zeroes the checksum of `datagram` (at least 8 bytes), computes it with `compute` and
/// writes it, sending 0 as `0xFFFF`.
#[inline]
fn fill_checksum(datagram: &mut [u8], compute: impl FnOnce(&[u8]) -> u16) {
    set_u16(datagram, field::CHECKSUM, 0);
    let sum = match compute(datagram) {
        0 => 0xFFFF,
        sum => sum,
    };
    set_u16(datagram, field::CHECKSUM, sum);
}

/// Checks that `datagram` can be checksummed as a whole UDP datagram.
#[inline]
fn check_datagram(datagram: &[u8]) -> Result<(), WireError> {
    if datagram.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    if datagram.len() > usize::from(u16::MAX) {
        return Err(WireError::PayloadTooLarge);
    }
    Ok(())
}

/// Computes and writes the checksum of the UDP datagram `datagram` (header and data, exactly;
/// its length field is not consulted) carried in IPv4 from `src` to `dst`.
///
/// Errors: [`WireError::Truncated`] under 8 bytes, [`WireError::PayloadTooLarge`] over 65535.
pub fn fill_udp_checksum_v4(
    datagram: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<(), WireError> {
    check_datagram(datagram)?;
    fill_checksum(datagram, |d| {
        checksum::transport_v4(src, dst, IPPROTO_UDP, d)
    });
    Ok(())
}

/// Computes and writes the checksum of the UDP datagram `datagram` carried in IPv6 from `src`
/// to `dst`; see [`fill_udp_checksum_v4`].
pub fn fill_udp_checksum_v6(
    datagram: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
) -> Result<(), WireError> {
    check_datagram(datagram)?;
    fill_checksum(datagram, |d| {
        checksum::transport_v6(src, dst, IPPROTO_UDP, d)
    });
    Ok(())
}

/// A UDP header, to be written with [`UdpHeader::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of header and data, in bytes.
    pub length: u16,
    /// Checksum: 0 to fill later (with [`fill_udp_checksum_v4`] or [`fill_udp_checksum_v6`]
    /// once the data is in place) or, over IPv4, to send none.
    pub checksum: u16,
}

impl UdpHeader {
    /// Length of the written header.
    pub const LEN: usize = HEADER_LEN;

    /// Writes the header to the start of `buf`; returns [`Self::LEN`], or
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than 8 bytes.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let header = buf.get_mut(..Self::LEN).ok_or(WireError::BufferTooSmall)?;
        set_u16(header, field::SRC_PORT, self.src_port);
        set_u16(header, field::DST_PORT, self.dst_port);
        set_u16(header, field::LENGTH, self.length);
        set_u16(header, field::CHECKSUM, self.checksum);
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// 10.0.0.1:12345 -> 10.0.0.2:53, data "dns", then one byte beyond the length field.
    #[rustfmt::skip]
    const DATAGRAM: [u8; 12] = [
        0x30, 0x39,     // src port 12345
        0x00, 0x35,     // dst port 53
        0x00, 0x0b,     // length 11
        0xe3, 0xf8,     // checksum
        b'd', b'n', b's',
        0xee,           // not part of the datagram
    ];

    #[test]
    fn fields() {
        let u = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(u.src_port(), 12345);
        assert_eq!(u.dst_port(), 53);
        assert_eq!(u.len(), 11);
        assert!(!u.is_empty());
        assert_eq!(u.checksum(), 0xe3f8);
        assert_eq!(u.payload(), b"dns");
        assert!(u.verify_checksum_v4(SRC, DST));
        assert!(!u.verify_checksum_v4(SRC, Ipv4Addr::new(10, 0, 0, 3)));
    }

    #[test]
    fn malformed() {
        for len in 0..8 {
            assert_eq!(
                UdpPacket::new_checked(&DATAGRAM[..len]),
                Err(WireError::Truncated)
            );
        }
        for len in 8..11 {
            assert_eq!(
                UdpPacket::new_checked(&DATAGRAM[..len]),
                Err(WireError::Truncated)
            );
        }
        let mut d = DATAGRAM;
        d[5] = 7;
        assert_eq!(UdpPacket::new_checked(&d[..]), Err(WireError::BadLength));
        d[5] = 8;
        assert!(UdpPacket::new_checked(&d[..]).unwrap().is_empty());
    }

    #[test]
    fn checksums() {
        let mut d = DATAGRAM;
        let mut u = UdpPacket::new_checked(&mut d[..]).unwrap();
        u.set_checksum(0);
        assert!(u.verify_checksum_v4(SRC, DST), "0 is no checksum over IPv4");
        // Ports change with no checksum: it stays 0.
        u.set_src_port(1);
        assert_eq!(u.checksum(), 0);
        u.fill_checksum_v4(SRC, DST);
        assert!(u.verify_checksum_v4(SRC, DST));
        u.set_dst_port(5353);
        u.set_src_port(12345);
        assert!(u.verify_checksum_v4(SRC, DST));
        u.payload_mut().copy_from_slice(b"DNS");
        u.fill_checksum_v4(SRC, DST);
        assert!(u.verify_checksum_v4(SRC, DST));

        let (a, b): (Ipv6Addr, Ipv6Addr) = ("fe80::1".parse().unwrap(), "fe80::2".parse().unwrap());
        u.set_checksum(0);
        assert!(!u.verify_checksum_v6(a, b), "0 is invalid over IPv6");
        u.fill_checksum_v6(a, b);
        assert!(u.verify_checksum_v6(a, b));
        u.set_dst_port(9);
        assert!(u.verify_checksum_v6(a, b));
        // The byte after the length field is not covered.
        d[11] = 0x12;
        assert!(UdpPacket::new_checked(&d[..])
            .unwrap()
            .verify_checksum_v6(a, b));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose the data word so that the checksum computes to 0.
        let mut d = [0x00, 0x01, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00];
        fill_udp_checksum_v4(&mut d, SRC, DST).unwrap();
        let c = u16::from_be_bytes([d[6], d[7]]);
        // Putting the checksum into the data word instead makes the total sum 0xFFFF.
        d[8..10].copy_from_slice(&c.to_be_bytes());
        fill_udp_checksum_v4(&mut d, SRC, DST).unwrap();
        assert_eq!(u16::from_be_bytes([d[6], d[7]]), 0xFFFF);
        assert!(UdpPacket::new_checked(&d[..])
            .unwrap()
            .verify_checksum_v4(SRC, DST));
    }

    #[test]
    fn writer_and_free_functions() {
        let header = UdpHeader {
            src_port: 12345,
            dst_port: 53,
            length: 11,
            checksum: 0,
        };
        let mut buf = [0u8; 11];
        assert_eq!(header.write(&mut buf), Ok(8));
        buf[8..].copy_from_slice(b"dns");
        fill_udp_checksum_v4(&mut buf, SRC, DST).unwrap();
        assert_eq!(buf[..], DATAGRAM[..11]);
        assert_eq!(header.write(&mut buf[..7]), Err(WireError::BufferTooSmall));
        assert_eq!(
            fill_udp_checksum_v4(&mut buf[..7], SRC, DST),
            Err(WireError::Truncated)
        );
        let (a, b) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
        fill_udp_checksum_v6(&mut buf, a, b).unwrap();
        assert!(UdpPacket::new_checked(&buf[..])
            .unwrap()
            .verify_checksum_v6(a, b));
        let mut big = std::vec![0u8; 65536];
        assert_eq!(
            fill_udp_checksum_v6(&mut big, a, b),
            Err(WireError::PayloadTooLarge)
        );
    }
}

//! Tunnel encapsulations: VXLAN (RFC 7348), GRE (RFC 2784 with RFC 2890 key and sequence
//! number) and GUE variant 1 (draft-ietf-intarea-gue, direct IP-in-UDP).
//!
//! IP-in-IP needs no header of its own: the outer IP protocol is
//! [`IPPROTO_IPIP`](crate::ip::IPPROTO_IPIP) or [`IPPROTO_IPV6`](crate::ip::IPPROTO_IPV6).
//!
//! ```text
//! VXLAN (8 bytes, in UDP to port 4789):
//! +--------+--------------------------+
//! | flags  |        reserved          |   flags: 0x08 (I bit: VNI valid)
//! +--------+-----------------+--------+
//! |     VNI (24 bits)        |reserved|
//! +--------------------------+--------+
//! |     inner Ethernet frame ...      |
//!
//! GRE (4 to 16 bytes, IP protocol 47):
//! +-+-+-+-+--------------+-----+------------------+
//! |C| |K|S|   reserved0  | ver |  protocol type   |
//! +-+-+-+-+--------------+-----+------------------+
//! | checksum (if C)      |  reserved1 (if C)      |
//! | key (if K)                                    |
//! | sequence number (if S)                        |
//! ```

use crate::bytes::{get_u16, get_u32, set_u16, set_u32};
use crate::{checksum, WireError};

/// The IANA UDP port of VXLAN.
pub const VXLAN_PORT: u16 = 4789;

/// GRE protocol type of IPv4 (an EtherType).
pub const GRE_PROTO_IPV4: u16 = 0x0800;
/// GRE protocol type of IPv6.
pub const GRE_PROTO_IPV6: u16 = 0x86DD;
/// GRE protocol type of transparent Ethernet bridging (an inner Ethernet frame).
pub const GRE_PROTO_TEB: u16 = 0x6558;

/// Field offsets of the VXLAN header.
mod vxlan_field {
    /// Flags; only the I bit is defined.
    pub(super) const FLAGS: usize = 0;
    /// The 24-bit VNI sits in the high three bytes of the second word.
    pub(super) const VNI_WORD: usize = 4;
    /// Start of the inner Ethernet frame.
    pub(super) const PAYLOAD: usize = 8;
    /// The I flag: the VNI is valid.
    pub(super) const FLAG_I: u8 = 0x08;
}

/// The largest VXLAN network identifier (24 bits).
pub const VXLAN_MAX_VNI: u32 = 0x00FF_FFFF;

/// A VXLAN header, to be written with [`VxlanHeader::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VxlanHeader {
    /// The VXLAN network identifier; must fit in 24 bits.
    pub vni: u32,
}

impl VxlanHeader {
    /// Length of the written header.
    pub const LEN: usize = 8;

    /// Writes the header (flags with the I bit, the VNI, zero reserved fields) to the start of
    /// `buf`; returns [`Self::LEN`].
    ///
    /// Errors: [`WireError::BufferTooSmall`] if `buf` is shorter than 8 bytes,
    /// [`WireError::ValueOutOfRange`] if the VNI does not fit in 24 bits.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if self.vni > VXLAN_MAX_VNI {
            return Err(WireError::ValueOutOfRange);
        }
        let header = buf.get_mut(..Self::LEN).ok_or(WireError::BufferTooSmall)?;
        set_u32(
            header,
            vxlan_field::FLAGS,
            u32::from(vxlan_field::FLAG_I) << 24,
        );
        set_u32(header, vxlan_field::VNI_WORD, self.vni << 8);
        Ok(Self::LEN)
    }
}

/// A view of a VXLAN packet (the UDP payload): header and inner Ethernet frame.
///
/// See the [crate docs](crate) for the checked/unchecked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanPacket<B> {
    buffer: B,
}

impl<B: AsRef<[u8]>> VxlanPacket<B> {
    /// Wraps `buffer` without any check; accessors may panic on a buffer under 8 bytes.
    pub const fn new_unchecked(buffer: B) -> Self {
        VxlanPacket { buffer }
    }

    /// Wraps `buffer` after checking that it holds the 8-byte header (else
    /// [`WireError::Truncated`]). The flags are not checked; see
    /// [`flags_valid`](Self::flags_valid).
    pub fn new_checked(buffer: B) -> Result<Self, WireError> {
        if buffer.as_ref().len() < VxlanHeader::LEN {
            return Err(WireError::Truncated);
        }
        Ok(VxlanPacket { buffer })
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> B {
        self.buffer
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[vxlan_field::FLAGS]
    }

    /// Whether the I flag is set (RFC 7348: it must be; the other bits are ignored).
    #[inline]
    pub fn flags_valid(&self) -> bool {
        self.flags() & vxlan_field::FLAG_I != 0
    }

    /// The VXLAN network identifier (24 bits).
    #[inline]
    pub fn vni(&self) -> u32 {
        get_u32(self.buffer.as_ref(), vxlan_field::VNI_WORD) >> 8
    }

    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[vxlan_field::PAYLOAD..]
    }
}

/// Field offsets and flag bits of the GRE header.
mod gre_field {
    /// Flags (C, K, S and reserved bits) and version.
    pub(super) const FLAGS_VER: usize = 0;
    /// Protocol type of the payload (an EtherType).
    pub(super) const PROTOCOL: usize = 2;
    /// End of the fixed part; optional fields follow in the order checksum, key, sequence.
    pub(super) const OPTIONAL: usize = 4;

    /// Checksum present (RFC 2784).
    pub(super) const FLAG_C: u16 = 0x8000;
    /// Key present (RFC 2890).
    pub(super) const FLAG_K: u16 = 0x2000;
    /// Sequence number present (RFC 2890).
    pub(super) const FLAG_S: u16 = 0x1000;
    /// RFC 1701 bits a receiver must reject (RFC 2784 section 2.3): routing present,
    /// strict source route, and the high bit of the recursion control.
    pub(super) const REJECTED: u16 = 0x4000 | 0x0800 | 0x0400;
    /// Version bits.
    pub(super) const VERSION: u16 = 0x0007;
}

/// A GRE header with an optional key, to be written with [`GreHeader::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GreHeader {
    /// Protocol type of the payload ([`GRE_PROTO_IPV4`], [`GRE_PROTO_IPV6`],
    /// [`GRE_PROTO_TEB`]).
    pub protocol: u16,
    /// The RFC 2890 key, if any.
    pub key: Option<u32>,
}

impl GreHeader {
    /// Length of the written header: 4, or 8 with a key.
    #[allow(clippy::len_without_is_empty)] // a header is never empty
    #[inline]
    pub const fn len(&self) -> usize {
        if self.key.is_some() {
            8
        } else {
            4
        }
    }

    /// Writes the header (version 0, no checksum, no sequence number) to the start of `buf`;
    /// returns [`len`](Self::len), or [`WireError::BufferTooSmall`].
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let header = buf.get_mut(..self.len()).ok_or(WireError::BufferTooSmall)?;
        let flags = if self.key.is_some() {
            gre_field::FLAG_K
        } else {
            0
        };
        set_u16(header, gre_field::FLAGS_VER, flags);
        set_u16(header, gre_field::PROTOCOL, self.protocol);
        if let Some(key) = self.key {
            set_u32(header, gre_field::OPTIONAL, key);
        }
        Ok(self.len())
    }
}

/// A view of a GRE packet (the IP payload): header and payload.
///
/// See the [crate docs](crate) for the checked/unchecked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrePacket<B> {
    buffer: B,
}

impl<B: AsRef<[u8]>> GrePacket<B> {
    /// Wraps `buffer` without any check; accessors may panic on an invalid header.
    pub const fn new_unchecked(buffer: B) -> Self {
        GrePacket { buffer }
    }

    /// Wraps `buffer` after checking it: [`WireError::Truncated`] under 4 bytes,
    /// [`WireError::BadVersion`] if the version is not 0, [`WireError::BadGreFlags`] if
    /// RFC 1701 routing, strict source route or recursion bits are set,
    /// [`WireError::Truncated`] if the optional fields the flags announce do not fit.
    pub fn new_checked(buffer: B) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        let header = bytes
            .get(..gre_field::OPTIONAL)
            .ok_or(WireError::Truncated)?;
        let flags = get_u16(header, gre_field::FLAGS_VER);
        if flags & gre_field::VERSION != 0 {
            return Err(WireError::BadVersion);
        }
        if flags & gre_field::REJECTED != 0 {
            return Err(WireError::BadGreFlags);
        }
        if bytes.len() < header_len(flags) {
            return Err(WireError::Truncated);
        }
        Ok(GrePacket { buffer })
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> B {
        self.buffer
    }

    #[inline]
    fn flags(&self) -> u16 {
        get_u16(self.buffer.as_ref(), gre_field::FLAGS_VER)
    }

    /// The version (0 after `new_checked`).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags() & gre_field::VERSION) as u8
    }

    /// Protocol type of the payload.
    #[inline]
    pub fn protocol(&self) -> u16 {
        get_u16(self.buffer.as_ref(), gre_field::PROTOCOL)
    }

    /// Header length including the optional fields: 4, 8, 12 or 16.
    #[inline]
    pub fn header_len(&self) -> usize {
        header_len(self.flags())
    }

    /// Offset of the optional field announced by `flag`, if present.
    #[inline]
    fn optional_at(&self, flag: u16) -> Option<usize> {
        let flags = self.flags();
        if flags & flag == 0 {
            return None;
        }
        // Optional fields come in flag order C, K, S; count those before `flag`.
        let before = [gre_field::FLAG_C, gre_field::FLAG_K, gre_field::FLAG_S]
            .iter()
            .filter(|&&f| f > flag && flags & f != 0)
            .count();
        Some(gre_field::OPTIONAL + 4 * before)
    }

    /// The checksum field, if the C bit is set.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        let at = self.optional_at(gre_field::FLAG_C)?;
        Some(get_u16(self.buffer.as_ref(), at))
    }

    /// The key, if the K bit is set.
    #[inline]
    pub fn key(&self) -> Option<u32> {
        let at = self.optional_at(gre_field::FLAG_K)?;
        Some(get_u32(self.buffer.as_ref(), at))
    }

    /// The sequence number, if the S bit is set.
    #[inline]
    pub fn sequence(&self) -> Option<u32> {
        let at = self.optional_at(gre_field::FLAG_S)?;
        Some(get_u32(self.buffer.as_ref(), at))
    }

    /// Whether the checksum (over the GRE header and payload) is correct; true when the
    /// packet carries no checksum.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        self.checksum().is_none() || checksum::checksum(self.buffer.as_ref()) == 0
    }

    /// The payload after the header and its optional fields.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// GRE header length for the given flags/version word.
#[inline]
fn header_len(flags: u16) -> usize {
    let optional = [gre_field::FLAG_C, gre_field::FLAG_K, gre_field::FLAG_S]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count();
    gre_field::OPTIONAL + 4 * optional
}

/// GUE variant 1 (direct IP encapsulation): there is no GUE header, and the UDP payload's
/// first byte is the inner IP header's first byte. Returns the IP version (4 or 6) it
/// announces, or `None` if it is neither (a variant 0 GUE header or anything else).
#[inline]
pub const fn gue_v1_inner_version(first_byte: u8) -> Option<u8> {
    match first_byte >> 4 {
        4 => Some(4),
        6 => Some(6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_round_trip() {
        let mut buf = [0u8; 10];
        assert_eq!(VxlanHeader { vni: 0x12_3456 }.write(&mut buf), Ok(8));
        #[rustfmt::skip]
        assert_eq!(buf, [
            0x08, 0, 0, 0,          // flags I, reserved
            0x12, 0x34, 0x56, 0,    // VNI, reserved
            0, 0,                   // (inner frame)
        ]);
        buf[8] = 0xaa;
        let v = VxlanPacket::new_checked(&buf[..]).unwrap();
        assert!(v.flags_valid());
        assert_eq!(v.flags(), 0x08);
        assert_eq!(v.vni(), 0x12_3456);
        assert_eq!(v.payload(), &[0xaa, 0]);
        assert_eq!(
            VxlanHeader { vni: 0x100_0000 }.write(&mut buf),
            Err(WireError::ValueOutOfRange)
        );
        assert_eq!(
            VxlanHeader { vni: 1 }.write(&mut buf[..7]),
            Err(WireError::BufferTooSmall)
        );
        buf[0] = 0x00;
        assert!(!VxlanPacket::new_checked(&buf[..]).unwrap().flags_valid());
        for len in 0..8 {
            assert_eq!(
                VxlanPacket::new_checked(&buf[..len]),
                Err(WireError::Truncated)
            );
        }
    }

    #[test]
    fn gre_all_optional_fields() {
        #[rustfmt::skip]
        let mut pkt = [
            0xb0, 0x00,             // C, K, S; version 0
            0x08, 0x00,             // protocol IPv4
            0x00, 0x00, 0x00, 0x00, // checksum, reserved1
            0x00, 0x00, 0x00, 0x2a, // key 42
            0x00, 0x00, 0x01, 0x00, // sequence 256
            0x45, 0x00,             // payload
        ];
        let sum = checksum::checksum(&pkt);
        pkt[4..6].copy_from_slice(&sum.to_be_bytes());
        let g = GrePacket::new_checked(&pkt[..]).unwrap();
        assert_eq!(g.version(), 0);
        assert_eq!(g.protocol(), GRE_PROTO_IPV4);
        assert_eq!(g.header_len(), 16);
        assert_eq!(g.checksum(), Some(sum));
        assert!(g.verify_checksum());
        assert_eq!(g.key(), Some(42));
        assert_eq!(g.sequence(), Some(256));
        assert_eq!(g.payload(), &[0x45, 0x00]);
        for len in 0..16 {
            assert_eq!(
                GrePacket::new_checked(&pkt[..len]),
                Err(WireError::Truncated)
            );
        }
    }

    #[test]
    fn gre_key_only_and_sequence_only() {
        let mut buf = [0u8; 9];
        let header = GreHeader {
            protocol: GRE_PROTO_TEB,
            key: Some(0xdead_beef),
        };
        assert_eq!(header.len(), 8);
        assert_eq!(header.write(&mut buf), Ok(8));
        assert_eq!(buf[..8], [0x20, 0x00, 0x65, 0x58, 0xde, 0xad, 0xbe, 0xef]);
        let g = GrePacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (g.protocol(), g.key(), g.checksum(), g.sequence()),
            (0x6558, Some(0xdead_beef), None, None)
        );
        assert!(g.verify_checksum());
        assert_eq!(g.payload(), &[0]);

        let seq_only = [0x10, 0x00, 0x86, 0xdd, 0, 0, 0, 9];
        let g = GrePacket::new_checked(&seq_only[..]).unwrap();
        assert_eq!((g.key(), g.sequence(), g.header_len()), (None, Some(9), 8));

        let plain = GreHeader {
            protocol: GRE_PROTO_IPV6,
            key: None,
        };
        assert_eq!(plain.len(), 4);
        assert_eq!(plain.write(&mut buf[..3]), Err(WireError::BufferTooSmall));
        assert_eq!(plain.write(&mut buf), Ok(4));
        assert_eq!(buf[..4], [0, 0, 0x86, 0xdd]);
        assert_eq!(
            GrePacket::new_checked(&buf[..4]).unwrap().payload(),
            &[] as &[u8]
        );
    }

    #[test]
    fn gre_rejects() {
        // Version 1 (PPTP).
        assert_eq!(
            GrePacket::new_checked(&[0x00, 0x01, 0x08, 0x00][..]),
            Err(WireError::BadVersion)
        );
        // RFC 1701 routing present, strict source route, recursion.
        for first in [0x40, 0x08, 0x04] {
            assert_eq!(
                GrePacket::new_checked(&[first, 0x00, 0x08, 0x00][..]),
                Err(WireError::BadGreFlags)
            );
        }
        // Reserved bits 6..12 are ignored.
        assert!(GrePacket::new_checked(&[0x03, 0xf8, 0x08, 0x00][..]).is_ok());
    }

    #[test]
    fn gue_v1() {
        assert_eq!(gue_v1_inner_version(0x45), Some(4));
        assert_eq!(gue_v1_inner_version(0x60), Some(6));
        assert_eq!(gue_v1_inner_version(0x00), None); // GUE variant 0 header
        assert_eq!(gue_v1_inner_version(0x50), None);
    }
}

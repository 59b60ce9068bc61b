//! Ethernet II frames, with up to two 802.1Q / 802.1ad VLAN tags.
//!
//! ```text
//!  0      6      12        14
//! +------+------+---------+---------
//! | dst  | src  | type    | payload          untagged (header 14 bytes)
//! +------+------+---------+---------
//! | dst  | src  | 0x8100  | TCI | type | payload     one tag (18 bytes)
//! | dst  | src  | 0x88A8  | TCI | 0x8100 | TCI | type | payload   two tags (22 bytes)
//! ```
//!
//! The frame check sequence is not part of the buffer (NICs strip it).

use crate::bytes::{get_array, get_u16, set_u16};
use crate::WireError;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType (TPID) of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType (TPID) of an 802.1ad service tag (QinQ outer tag).
pub const ETHERTYPE_QINQ: u16 = 0x88A8;

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag (TPID is counted in the preceding header: TCI plus next type).
pub const VLAN_TAG_LEN: usize = 4;
/// The most VLAN tags [`EthernetFrame::new_checked`] follows.
pub const MAX_VLAN_TAGS: usize = 2;

/// Field offsets of the Ethernet II header.
mod field {
    use core::ops::Range;

    /// Destination MAC address.
    pub(super) const DST: Range<usize> = 0..6;
    /// Source MAC address.
    pub(super) const SRC: Range<usize> = 6..12;
    /// EtherType, or the TPID of the first VLAN tag.
    pub(super) const ETHERTYPE: usize = 12;
    /// Within a VLAN tag that starts right after a TPID: the tag control information
    /// (PCP 3 bits, DEI 1 bit, VLAN id 12 bits).
    pub(super) const TAG_TCI: usize = 0;
    /// Mask of the VLAN id in a TCI.
    pub(super) const VID_MASK: u16 = 0x0FFF;
}

/// Whether `ethertype` is a VLAN tag protocol identifier this module follows.
#[inline]
pub const fn is_vlan_tpid(ethertype: u16) -> bool {
    matches!(ethertype, ETHERTYPE_VLAN | ETHERTYPE_QINQ)
}

/// Offset of the innermost EtherType field, following at most [`MAX_VLAN_TAGS`] tags whose
/// fields lie inside `bytes`. Never panics; `None` if the EtherType field itself is missing.
#[inline]
fn find_inner_type(bytes: &[u8]) -> Option<usize> {
    let mut at = field::ETHERTYPE;
    for _ in 0..MAX_VLAN_TAGS {
        let ethertype = match bytes.get(at..at + 2) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => return None,
        };
        if !is_vlan_tpid(ethertype) {
            return Some(at);
        }
        at += VLAN_TAG_LEN;
    }
    if bytes.len() < at + 2 {
        return None;
    }
    Some(at)
}

/// A view of an Ethernet II frame: header (with VLAN tags) and payload.
///
/// The VLAN tags are walked once, when the view is made; the view remembers where the
/// innermost EtherType is. See the [crate docs](crate) for the checked/unchecked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<B> {
    buffer: B,
    /// Offset of the innermost EtherType field: 12, 16 or 20.
    type_at: usize,
}

impl<B: AsRef<[u8]>> EthernetFrame<B> {
    /// Wraps `buffer` without checking its length; accessors may panic on a short buffer.
    ///
    /// VLAN tags are followed only if the buffer holds them all; otherwise the frame is
    /// taken as untagged.
    pub fn new_unchecked(buffer: B) -> Self {
        let bytes = buffer.as_ref();
        let type_at = find_inner_type(bytes).unwrap_or(field::ETHERTYPE);
        EthernetFrame { buffer, type_at }
    }

    /// Wraps `buffer` after checking that it holds the 14-byte header and every VLAN tag the
    /// header announces (up to [`MAX_VLAN_TAGS`]; a third tag is left in the payload and
    /// reported by [`ethertype`](Self::ethertype) as a TPID).
    pub fn new_checked(buffer: B) -> Result<Self, WireError> {
        let type_at = find_inner_type(buffer.as_ref()).ok_or(WireError::Truncated)?;
        Ok(EthernetFrame { buffer, type_at })
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> B {
        self.buffer
    }

    /// Offset of the innermost EtherType field (12, 16 or 20).
    #[inline]
    fn inner_type_at(&self) -> usize {
        self.type_at
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst(&self) -> [u8; 6] {
        get_array(self.buffer.as_ref(), field::DST.start)
    }

    /// Source MAC address.
    #[inline]
    pub fn src(&self) -> [u8; 6] {
        get_array(self.buffer.as_ref(), field::SRC.start)
    }

    /// The EtherType of the payload, after any VLAN tags.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), self.inner_type_at())
    }

    /// Number of VLAN tags followed (0, 1 or 2).
    #[inline]
    pub fn vlan_count(&self) -> usize {
        (self.inner_type_at() - field::ETHERTYPE) / VLAN_TAG_LEN
    }

    /// The VLAN id (12 bits) of the outermost tag, if the frame is tagged.
    #[inline]
    pub fn vlan(&self) -> Option<u16> {
        self.vlan_id(0)
    }

    /// The VLAN id of the inner tag of a double-tagged (QinQ) frame.
    #[inline]
    pub fn inner_vlan(&self) -> Option<u16> {
        self.vlan_id(1)
    }

    /// The VLAN id of tag `index` (0 = outermost), if there is such a tag.
    #[inline]
    fn vlan_id(&self, index: usize) -> Option<u16> {
        if index < self.vlan_count() {
            let tag = field::ETHERTYPE + 2 + index * VLAN_TAG_LEN;
            Some(get_u16(self.buffer.as_ref(), tag + field::TAG_TCI) & field::VID_MASK)
        } else {
            None
        }
    }

    /// Length of the header including VLAN tags: 14, 18 or 22.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.inner_type_at() + 2
    }

    /// The bytes after the header (including any Ethernet padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let start = self.header_len();
        &self.buffer.as_ref()[start..]
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<B> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac);
    }

    /// Sets the EtherType of the payload (the field after the VLAN tags this view found).
    ///
    /// The view keeps its header length whatever the value (a TPID written here is not
    /// followed until the buffer is wrapped again).
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        let at = self.inner_type_at();
        set_u16(self.buffer.as_mut(), at, ethertype);
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// Writes an untagged 14-byte Ethernet II header at the start of `buf`.
///
/// Returns the number of bytes written (14), or [`WireError::BufferTooSmall`] if `buf` is
/// shorter than that.
pub fn write_header(
    buf: &mut [u8],
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: u16,
) -> Result<usize, WireError> {
    let header = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
    header[field::DST].copy_from_slice(&dst);
    header[field::SRC].copy_from_slice(&src);
    set_u16(header, field::ETHERTYPE, ethertype);
    Ok(HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    const UNTAGGED: [u8; 16] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x08, 0x00,                         // ethertype IPv4
        0x45, 0x00,                         // payload
    ];

    #[rustfmt::skip]
    const QINQ: [u8; 24] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst broadcast
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x88, 0xa8,                         // TPID 802.1ad
        0xe0, 0x64,                         // TCI: PCP 7, VID 100
        0x81, 0x00,                         // TPID 802.1Q
        0x00, 0xc8,                         // TCI: VID 200
        0x86, 0xdd,                         // ethertype IPv6
        0x60, 0x00,                         // payload
    ];

    #[test]
    fn untagged() {
        let frame = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(frame.dst(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(frame.src(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(frame.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(frame.vlan(), None);
        assert_eq!(frame.inner_vlan(), None);
        assert_eq!(frame.vlan_count(), 0);
        assert_eq!(frame.header_len(), 14);
        assert_eq!(frame.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn double_tagged() {
        let frame = EthernetFrame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(frame.ethertype(), ETHERTYPE_IPV6);
        assert_eq!(frame.vlan(), Some(100));
        assert_eq!(frame.inner_vlan(), Some(200));
        assert_eq!(frame.vlan_count(), 2);
        assert_eq!(frame.header_len(), 22);
        assert_eq!(frame.payload(), &[0x60, 0x00]);
    }

    #[test]
    fn single_tag_and_third_tag_left_in_payload() {
        #[rustfmt::skip]
        let frame = [
            0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, // dst, src
            0x81, 0x00, 0x00, 0x0a,             // 802.1Q, VID 10
            0x81, 0x00, 0x00, 0x0b,             // 802.1Q, VID 11
            0x81, 0x00, 0x00, 0x0c,             // third tag: not followed
            0x08, 0x00,
        ];
        // Cut after the first tag: the second TPID announces a tag that is missing.
        assert_eq!(
            EthernetFrame::new_checked(&frame[..18]),
            Err(WireError::Truncated)
        );
        #[rustfmt::skip]
        let single = [
            0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, // dst, src
            0x81, 0x00, 0x20, 0x0a,             // 802.1Q, PCP 1, VID 10
            0x08, 0x06,                         // ARP
        ];
        let view = EthernetFrame::new_checked(&single[..]).unwrap();
        assert_eq!(view.vlan(), Some(10));
        assert_eq!(view.inner_vlan(), None);
        assert_eq!(view.ethertype(), ETHERTYPE_ARP);
        assert_eq!(view.header_len(), 18);
        assert_eq!(view.payload(), &[] as &[u8]);
        let view = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(view.ethertype(), ETHERTYPE_VLAN);
        assert_eq!(view.header_len(), 22);
        assert_eq!(view.payload(), &frame[22..]);
    }

    #[test]
    fn truncated() {
        for len in 0..14 {
            assert_eq!(
                EthernetFrame::new_checked(&UNTAGGED[..len]),
                Err(WireError::Truncated)
            );
        }
        assert!(EthernetFrame::new_checked(&UNTAGGED[..14]).is_ok());
        // A tag announced but cut short: the outer tag needs 18 bytes, the inner 22.
        for len in 14..22 {
            assert_eq!(
                EthernetFrame::new_checked(&QINQ[..len]),
                Err(WireError::Truncated)
            );
        }
        assert!(EthernetFrame::new_checked(&QINQ[..22]).is_ok());
    }

    #[test]
    fn setters_and_writer() {
        let mut frame = QINQ;
        let mut view = EthernetFrame::new_checked(&mut frame[..]).unwrap();
        view.set_dst([1, 2, 3, 4, 5, 6]);
        view.set_src([7, 8, 9, 10, 11, 12]);
        view.set_ethertype(ETHERTYPE_IPV4);
        view.payload_mut()[0] = 0x45;
        assert_eq!(view.dst(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(view.src(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(view.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(view.vlan(), Some(100));
        assert_eq!(frame[20..23], [0x08, 0x00, 0x45]);

        let mut buf = [0u8; 16];
        assert_eq!(
            write_header(&mut buf, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 0x0800),
            Ok(14)
        );
        assert_eq!(buf[..14], UNTAGGED[..14]);
        assert_eq!(
            write_header(&mut buf[..13], [0; 6], [0; 6], 0),
            Err(WireError::BufferTooSmall)
        );
    }
}

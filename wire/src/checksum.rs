//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! A checksum is computed in two steps: partial sums ([`sum`], [`pseudo_header_v4`],
//! [`pseudo_header_v6`]), added with [`combine`], then [`fold`]ed into the 16-bit value that
//! goes into the checksum field. Partial sums are kept folded to 16 bits (`0..=0xFFFF` in a
//! `u32`), so a handful of them may also be added with `+` before folding.
//!
//! When a sum is split over several buffers, every buffer except the last must have an even
//! length (an odd trailing byte is padded with a zero byte, as the RFC says for the end of the
//! data).
//!
//! ```
//! use dnlb_wire::checksum;
//! // The example from RFC 1071 section 3.
//! let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
//! assert_eq!(checksum::sum(&data), 0xddf2);
//! assert_eq!(checksum::fold(checksum::sum(&data)), !0xddf2);
//! ```

use core::net::{Ipv4Addr, Ipv6Addr};

/// Folds a 64-bit accumulator of 16-bit words into 16 bits with end-around carry.
#[inline]
fn fold_carries(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    // The loop leaves at most 0xFFFF.
    acc as u16
}

/// Adds the eight bytes of `word` (read in native byte order) as two 32-bit halves.
#[inline]
fn add_native(acc: u64, word: [u8; 8]) -> u64 {
    let w = u64::from_ne_bytes(word);
    acc + (w & 0xFFFF_FFFF) + (w >> 32)
}

/// The ones'-complement sum of `data` taken as big-endian 16-bit words, folded to 16 bits.
///
/// An odd final byte is taken as the high byte of a word whose low byte is zero. The result
/// is a partial sum in `0..=0xFFFF`; pass it (possibly [`combine`]d with other sums) to
/// [`fold`] to get a checksum field value.
///
/// The loop reads eight bytes at a time in native byte order and swaps the folded result
/// once at the end (RFC 1071 section 2(B): the sum is byte-order independent).
pub fn sum(data: &[u8]) -> u32 {
    // Each step adds at most 2 * 0xFFFF_FFFF, so a u64 cannot overflow below 16 GiB of data.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        acc = add_native(acc, word);
    }
    // The last 0-7 bytes as big-endian words, added after the swap: a
    // partial word assembled in memory would take a call to `memcpy` (its
    // length varies) and a load that waits for the bytes' stores.
    let tail: u64 = chunks
        .remainder()
        .chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum();
    u32::from(fold_carries(
        u64::from(u16::from_be(fold_carries(acc))) + tail,
    ))
}

/// Adds two partial sums with end-around carry; the result is again folded to 16 bits.
#[inline]
pub fn combine(a: u32, b: u32) -> u32 {
    u32::from(fold_carries(u64::from(a) + u64::from(b)))
}

/// Finishes a checksum: folds the carries of `sum` and complements it.
///
/// The result is what goes into a checksum field (for UDP, a result of 0 is sent as
/// `0xFFFF`; see [`crate::udp`]). Verifying a received header is `fold(sum(header)) == 0`.
#[inline]
pub fn fold(sum: u32) -> u16 {
    !fold_carries(u64::from(sum))
}

/// The Internet checksum of `data`: `fold(sum(data))`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum(data))
}

/// Sums big-endian 16-bit words given as bytes.
#[inline]
fn sum_words(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum()
}

/// The partial sum of the IPv4 pseudo-header (RFC 768, RFC 9293): source, destination, zero,
/// protocol, and the transport length (`length`, header plus payload, in bytes).
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let acc = sum_words(&src.octets())
        + sum_words(&dst.octets())
        + u64::from(protocol)
        + u64::from(length);
    u32::from(fold_carries(acc))
}

/// The partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source, destination,
/// 32-bit upper-layer packet length, three zero bytes and the next-header value.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u32 {
    let acc = sum_words(&src.octets())
        + sum_words(&dst.octets())
        + u64::from(length >> 16)
        + u64::from(length & 0xFFFF)
        + u64::from(next_header);
    u32::from(fold_carries(acc))
}

/// Updates `checksum` for a change of the covered 16-bit word `old` to `new` (RFC 1624
/// equation 3: `HC' = ~(~HC + ~m + m')`).
///
/// The word must lie at an even offset of the checksummed data. A correct checksum stays
/// correct; an incorrect one stays incorrect by the same amount.
#[inline]
pub fn update_16(checksum: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!checksum) + u64::from(!old) + u64::from(new);
    !fold_carries(acc)
}

/// Updates `checksum` for a change of the covered 32-bit value `old` to `new` (two
/// [`update_16`] steps). The value must start at an even offset.
#[inline]
pub fn update_32(checksum: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!checksum)
        + u64::from(!(old >> 16) & 0xFFFF)
        + u64::from(!old & 0xFFFF)
        + (u64::from(new) >> 16)
        + (u64::from(new) & 0xFFFF);
    !fold_carries(acc)
}

/// Updates `checksum` for a covered IPv4 address changed from `old` to `new` (IPv4 header
/// checksum, or a TCP/UDP checksum through the pseudo-header).
#[inline]
pub fn update_addr_v4(checksum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update_32(checksum, old.to_bits(), new.to_bits())
}

/// Updates `checksum` for a covered IPv6 address changed from `old` to `new` (a TCP, UDP or
/// ICMPv6 checksum through the pseudo-header).
#[inline]
pub fn update_addr_v6(checksum: u16, old: Ipv6Addr, new: Ipv6Addr) -> u16 {
    let old_words = fold_carries(sum_words(&old.octets()));
    let acc = u64::from(!checksum) + u64::from(!old_words) + sum_words(&new.octets());
    !fold_carries(acc)
}

/// The checksum of a transport segment (TCP, UDP, ICMPv6-style) over IPv4: pseudo-header
/// plus `segment`, finished with [`fold`].
///
/// With the segment's checksum field zeroed this is the value to write; with the field in
/// place it is 0 for a correct segment. `segment` must be the whole segment; lengths over
/// 65535 (impossible inside IPv4) are taken as 65535.
#[inline]
pub fn transport_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8]) -> u16 {
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    fold(combine(
        pseudo_header_v4(src, dst, protocol, len),
        sum(segment),
    ))
}

/// The checksum of a transport segment over IPv6: pseudo-header plus `segment`, finished with
/// [`fold`]; see [`transport_v4`].
#[inline]
pub fn transport_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, segment: &[u8]) -> u16 {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    fold(combine(
        pseudo_header_v6(src, dst, next_header, len),
        sum(segment),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook definition: big-endian words, odd byte padded, end-around carry.
    fn reference_sum(data: &[u8]) -> u32 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            acc += u32::from(word);
            acc = (acc & 0xFFFF) + (acc >> 16);
        }
        acc
    }

    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    #[test]
    fn empty_and_odd() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(fold(0), 0xFFFF);
        assert_eq!(sum(&[0xAB]), 0xAB00);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic example header (Wikipedia "IPv4 header checksum"): checksum 0xb861.
        let mut header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header), 0xb861);
        header[10] = 0xb8;
        header[11] = 0x61;
        assert_eq!(checksum(&header), 0);
    }

    #[test]
    fn pseudo_headers_match_byte_layout() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(192, 168, 1, 200);
        let mut bytes = [0u8; 12];
        bytes[0..4].copy_from_slice(&src.octets());
        bytes[4..8].copy_from_slice(&dst.octets());
        bytes[9] = 17;
        bytes[10..12].copy_from_slice(&1234u16.to_be_bytes());
        assert_eq!(pseudo_header_v4(src, dst, 17, 1234), sum(&bytes));

        let src6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst6: Ipv6Addr = "fe80::ffff:1:2:3".parse().unwrap();
        let mut bytes = [0u8; 40];
        bytes[0..16].copy_from_slice(&src6.octets());
        bytes[16..32].copy_from_slice(&dst6.octets());
        bytes[32..36].copy_from_slice(&70_000u32.to_be_bytes());
        bytes[39] = 58;
        assert_eq!(pseudo_header_v6(src6, dst6, 58, 70_000), sum(&bytes));
    }

    proptest! {
        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(sum(&data), reference_sum(&data));
        }

        #[test]
        fn sum_splits_at_even_offsets(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            cut in 0usize..100,
        ) {
            let cut = (cut * 2).min(data.len() & !1);
            let (a, b) = data.split_at(cut);
            prop_assert_eq!(combine(sum(a), sum(b)), sum(&data));
        }

        #[test]
        fn incremental_updates_match_recomputation(
            mut data in proptest::collection::vec(any::<u8>(), 20..64),
            at in 0usize..8,
            new16 in any::<u16>(),
            new32 in any::<u32>(),
            new6 in any::<[u8; 16]>(),
        ) {
            // Checksum lives in bytes 0..2; modified fields are at even offsets after it.
            // Byte 19 is never modified and kept non-zero: all-zero data sums to +0, which
            // no real header does and which makes 0x0000 and 0xFFFF differ (RFC 1624 s. 3).
            data[19] |= 1;
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            prop_assert_eq!(checksum(&data), 0);

            let at = 2 + 2 * at;
            let old16 = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new16.to_be_bytes());
            let c = update_16(u16::from_be_bytes([data[0], data[1]]), old16, new16);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            prop_assert_eq!(checksum(&data), 0);

            let old32 = u32::from_be_bytes([data[2], data[3], data[4], data[5]]);
            data[2..6].copy_from_slice(&new32.to_be_bytes());
            let c = update_addr_v4(c, Ipv4Addr::from(old32), Ipv4Addr::from(new32));
            data[0..2].copy_from_slice(&c.to_be_bytes());
            prop_assert_eq!(checksum(&data), 0);

            let mut old6 = [0u8; 16];
            old6.copy_from_slice(&data[2..18]);
            data[2..18].copy_from_slice(&new6);
            let c = update_addr_v6(c, Ipv6Addr::from(old6), Ipv6Addr::from(new6));
            data[0..2].copy_from_slice(&c.to_be_bytes());
            prop_assert_eq!(checksum(&data), 0);
        }
    }
}

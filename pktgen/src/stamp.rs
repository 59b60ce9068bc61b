//! The latency stamp: 16 bytes at the very end of a frame's L4 payload —
//! a magic number, a sequence number and the TSC at transmission, all
//! big-endian. At the end rather than at a fixed offset from the start, so
//! it is found again after a forwarder put an encapsulation in front (dnlb's
//! VXLAN adds 50 bytes) or rewrote headers.

/// Bytes a stamp takes.
pub const STAMP_LEN: usize = 16;

/// "dnlb" in ASCII: marks a stamped frame.
pub const MAGIC: u32 = 0x646e_6c62;

/// What a stamp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The stamp's sequence number (0, 1, 2, ... per run).
    pub seq: u32,
    /// The sender's TSC when it built the frame.
    pub tsc: u64,
}

impl Stamp {
    /// The stamp's bytes.
    #[inline(always)]
    pub fn bytes(&self) -> [u8; STAMP_LEN] {
        let mut b = [0u8; STAMP_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&self.seq.to_be_bytes());
        b[8..16].copy_from_slice(&self.tsc.to_be_bytes());
        b
    }

    /// The sum of the stamp's big-endian 16-bit words (not folded; at most
    /// eight words of 0xFFFF), as it adds into an Internet checksum when the
    /// stamp starts at an even offset of the checksummed data.
    #[inline(always)]
    pub fn word_sum(&self) -> u32 {
        words32(MAGIC) + words32(self.seq) + words64(self.tsc)
    }

    /// The stamp at the end of `frame`, if it ends with one.
    #[inline(always)]
    pub fn read(frame: &[u8]) -> Option<Stamp> {
        let at = frame.len().checked_sub(STAMP_LEN)?;
        let t = &frame[at..];
        let magic = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
        if magic != MAGIC {
            return None;
        }
        Some(Stamp {
            seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
            tsc: u64::from_be_bytes([t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]]),
        })
    }
}

/// The sum of the two 16-bit words of `x`.
#[inline(always)]
pub fn words32(x: u32) -> u32 {
    (x >> 16) + (x & 0xffff)
}

/// The sum of the four 16-bit words of `x`.
#[inline(always)]
pub fn words64(x: u64) -> u32 {
    words32((x >> 32) as u32) + words32(x as u32)
}

/// The sum of the eight 16-bit words of `x`.
#[inline(always)]
pub fn words128(x: u128) -> u32 {
    words64((x >> 64) as u64) + words64(x as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_at_the_end_of_a_frame() {
        let s = Stamp {
            seq: 7,
            tsc: 0x0123_4567_89ab_cdef,
        };
        let mut frame = vec![0xaa; 80];
        frame[64..].copy_from_slice(&s.bytes());
        assert_eq!(Stamp::read(&frame), Some(s));
        assert_eq!(Stamp::read(&frame[..79]), None);
        assert_eq!(Stamp::read(&frame[..10]), None);
    }

    #[test]
    fn word_sum_matches_the_checksum_sum_of_the_bytes() {
        let s = Stamp {
            seq: 0xffff_fffe,
            tsc: u64::MAX - 3,
        };
        let folded = dnlb_wire::checksum::fold(s.word_sum());
        assert_eq!(folded, dnlb_wire::checksum::checksum(&s.bytes()));
    }
}

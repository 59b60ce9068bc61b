//! The burst's first pass: a fast, unvalidated read of a frame's 5-tuple,
//! only to find (and start loading) its flow-table bucket early so the
//! cache misses of a whole burst overlap. It changes nothing and decides
//! nothing; [`super::parse`] does the real, validated parse, and debug
//! builds check the two agree on every frame.

use dnlb_wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use dnlb_wire::ip::{IPPROTO_TCP, IPPROTO_UDP};

use crate::flow_table::{fingerprint_v4, fingerprint_v6};

/// The flow fingerprint (keyed by `seed`) of a TCP/UDP frame that is not a
/// fragment, read without validation; `None` for anything else.
#[inline]
pub fn fingerprint(seed: u64, d: &[u8]) -> Option<u64> {
    let &[t0, t1] = d.get(12..14)? else {
        return None;
    };
    let (ethertype, l3) = match u16::from_be_bytes([t0, t1]) {
        0x8100 | 0x88a8 => match d.get(16..18) {
            Some(&[a, b]) => (u16::from_be_bytes([a, b]), 18),
            _ => return None,
        },
        t => (t, 14),
    };
    match ethertype {
        ETHERTYPE_IPV4 => {
            let ip = d.get(l3..l3 + 20)?;
            let ihl = (ip[0] & 0x0f) as usize * 4;
            let proto = ip[9];
            if ip[6] & 0x3f != 0 || ip[7] != 0 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
                return None;
            }
            let p = d.get(l3 + ihl..l3 + ihl + 4)?;
            Some(fingerprint_v4(
                seed,
                [ip[12], ip[13], ip[14], ip[15]],
                [ip[16], ip[17], ip[18], ip[19]],
                proto,
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            ))
        }
        ETHERTYPE_IPV6 => {
            let ip = d.get(l3..l3 + 44)?;
            let proto = ip[6];
            if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
                return None;
            }
            let (Ok(src), Ok(dst)) = (
                <[u8; 16]>::try_from(&ip[8..24]),
                <[u8; 16]>::try_from(&ip[24..40]),
            ) else {
                return None;
            };
            Some(fingerprint_v6(
                seed,
                src,
                dst,
                proto,
                u16::from_be_bytes([ip[40], ip[41]]),
                u16::from_be_bytes([ip[42], ip[43]]),
            ))
        }
        _ => None,
    }
}

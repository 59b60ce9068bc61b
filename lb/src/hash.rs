//! The flow hash: which Maglev slot (and so which backend) a packet maps to.
//!
//! Every gateway must pick the same backend for the same flow, so these
//! functions are a **wire-compatibility contract between gateways**: their
//! output must be identical on every machine, CPU and crate version. They are
//! written out here with fixed constants instead of using `std`'s hasher or
//! `ahash` (both may change between releases or depend on the CPU), and the
//! tests pin literal output values. Changing any output is a breaking change
//! for a mixed-version fleet.
//!
//! All functions take the tuple in the client → VIP direction (`src` is the
//! client, `dst` is the VIP). Addresses are in network byte order (as on the
//! wire); ports are host-order integers.
//!
//! # Algorithm (normative)
//!
//! The construction is the multiply-fold ("mum") mixer of wyhash:
//! `mum(a, b)` is the full 128-bit product of the `u64`s `a` and `b`, with its
//! low and high 64-bit halves XORed together. All arithmetic is modulo 2^64;
//! `be64`/`be32` read 8/4 bytes as a big-endian integer. Constants:
//!
//! ```text
//! S0 = 0xa0761d6478bd642f  S1 = 0xe7037ed1a0b428db  S2 = 0x8ebc6af09c88c6e3
//! S3 = 0x589965cc75374cc3  S4 = 0x9e3779b97f4a7c15  S5 = 0xff51afd7ed558ccd
//! S6 = 0xc4ceb9fe1a85ec53
//! finish(h) = mum(h ^ S3, S4)
//! ```
//!
//! A domain tag in bits 40..48 keeps the functions apart (the same addresses
//! give unrelated values in `flow_hash_v4` and `addr_hash_v4`):
//! flow v4 = 1, addr v4 = 2, src v4 = 3, flow v6 = 4, addr v6 = 5, src v6 = 6.
//!
//! IPv4 (`a` carries the client's side, `b` the VIP's side):
//!
//! ```text
//! flow_hash_v4: a = be32(src) | sport << 32 | dport << 48
//!               b = be32(dst) | proto << 32 | 1 << 40
//! addr_hash_v4: a = be32(src),  b = be32(dst) | proto << 32 | 2 << 40
//! src_hash_v4:  a = be32(src),  b = 3 << 40
//! result = finish(mum(a ^ S0, b ^ S1))
//! ```
//!
//! IPv6:
//!
//! ```text
//! h1 = mum(be64(src[0..8]) ^ S0, be64(src[8..16]) ^ S1)
//! h2 = mum(be64(dst[0..8]) ^ S2, be64(dst[8..16]) ^ S3)
//! flow_hash_v6: p = sport | dport << 16 | proto << 32 | 4 << 40
//! addr_hash_v6: p = proto << 32 | 5 << 40
//! src_hash_v6:  p = 6 << 40, and h2 = 0 (dst is not an input)
//! result = finish(mum(h1 ^ p ^ S5, h2 ^ S6))
//! ```
//!
//! Flow entropy for outer headers ([`crate::encap`]: the UDP source port, the
//! IPv6 flow label) is the flow hash's value before `finish`, its *mix*:
//! `flow_mix_v4 = mum(a ^ S0, b ^ S1)` and `flow_mix_v6 = mum(h1 ^ p ^ S5,
//! h2 ^ S6)` with the `flow_hash` inputs above, so `flow_hash = finish(mix)`.
//! A packet of an established flow needs its entropy but not its scheduler
//! hash: one multiply fewer (IPv4). Outer headers are part of the contract
//! too (two gateways send a flow's packets alike), but a change to them
//! only moves a flow to another receive queue of its backend.
//!
//! Cost: two (IPv4) or four (IPv6) 64×64→128-bit multiplies, a few ns. The
//! hash is not keyed: anyone can compute which backend a tuple maps to, which
//! is inherent to stateless consistent hashing. Use
//! [`crate::flow_table::fingerprint_v4`] (keyed) where attacker-chosen
//! collisions matter.
//!
//! Reduce a hash to a table index with [`reduce`] (what
//! [`crate::maglev::MaglevTable::lookup`] does); it uses the high bits, so
//! callers that need independent entropy (e.g. an outer UDP source port) can
//! take the low bits.

const S0: u64 = 0xa076_1d64_78bd_642f;
const S1: u64 = 0xe703_7ed1_a0b4_28db;
const S2: u64 = 0x8ebc_6af0_9c88_c6e3;
const S3: u64 = 0x5899_65cc_7537_4cc3;
const S4: u64 = 0x9e37_79b9_7f4a_7c15;
const S5: u64 = 0xff51_afd7_ed55_8ccd;
const S6: u64 = 0xc4ce_b9fe_1a85_ec53;

const TAG_FLOW_V4: u64 = 1 << 40;
const TAG_ADDR_V4: u64 = 2 << 40;
const TAG_SRC_V4: u64 = 3 << 40;
const TAG_FLOW_V6: u64 = 4 << 40;
const TAG_ADDR_V6: u64 = 5 << 40;
const TAG_SRC_V6: u64 = 6 << 40;

/// 64×64→128-bit multiply, folded to 64 bits by XORing the halves.
#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn finish(h: u64) -> u64 {
    mum(h ^ S3, S4)
}

#[inline(always)]
fn v4(a: u64, b: u64) -> u64 {
    finish(mum(a ^ S0, b ^ S1))
}

/// The scheduler's flow hash of a flow whose mix ([`flow_mix_v4`],
/// [`flow_mix_v6`]) is `mix`: `finish(mix)`.
#[inline(always)]
pub fn flow_hash_of_mix(mix: u64) -> u64 {
    finish(mix)
}

#[inline(always)]
fn half(x: &[u8; 16], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&x[i * 8..i * 8 + 8]);
    u64::from_be_bytes(w)
}

#[inline(always)]
fn v6(h1: u64, h2: u64, p: u64) -> u64 {
    finish(mum(h1 ^ p ^ S5, h2 ^ S6))
}

#[inline(always)]
fn h1_v6(src: &[u8; 16]) -> u64 {
    mum(half(src, 0) ^ S0, half(src, 1) ^ S1)
}

#[inline(always)]
fn h2_v6(dst: &[u8; 16]) -> u64 {
    mum(half(dst, 0) ^ S2, half(dst, 1) ^ S3)
}

/// Hash of an IPv4 5-tuple (client → VIP direction): the default Maglev key.
///
/// `src`/`dst` in network byte order, `proto` the IP protocol number, ports in
/// host order. Stable across machines and versions (see the module docs).
#[inline]
pub fn flow_hash_v4(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> u64 {
    finish(flow_mix_v4(src, dst, proto, sport, dport))
}

/// The mix of an IPv4 5-tuple: [`flow_hash_v4`] before its last round, the
/// flow's entropy for outer headers (see the module docs).
#[inline]
pub fn flow_mix_v4(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> u64 {
    let a = u64::from(u32::from_be_bytes(src)) | u64::from(sport) << 32 | u64::from(dport) << 48;
    let b = u64::from(u32::from_be_bytes(dst)) | u64::from(proto) << 32 | TAG_FLOW_V4;
    mum(a ^ S0, b ^ S1)
}

/// Hash of an IPv6 5-tuple (client → VIP direction): the default Maglev key.
///
/// `src`/`dst` in network byte order, `proto` the upper-layer protocol number,
/// ports in host order. Stable across machines and versions.
#[inline]
pub fn flow_hash_v6(src: [u8; 16], dst: [u8; 16], proto: u8, sport: u16, dport: u16) -> u64 {
    finish(flow_mix_v6(src, dst, proto, sport, dport))
}

/// The mix of an IPv6 5-tuple: [`flow_hash_v6`] before its last round, the
/// flow's entropy for outer headers (see the module docs).
#[inline]
pub fn flow_mix_v6(src: [u8; 16], dst: [u8; 16], proto: u8, sport: u16, dport: u16) -> u64 {
    flow_mix_v6_with(src, flow_mix_v6_dst(dst), proto, sport, dport)
}

/// The destination's part of [`flow_mix_v6`] (`h2` in the module docs):
/// the same for every packet to one address, so a burst's packets to one
/// VIP can share it.
#[inline]
pub fn flow_mix_v6_dst(dst: [u8; 16]) -> u64 {
    h2_v6(&dst)
}

/// [`flow_mix_v6`] of a destination whose part ([`flow_mix_v6_dst`]) is
/// `dst_part`.
#[inline]
pub fn flow_mix_v6_with(src: [u8; 16], dst_part: u64, proto: u8, sport: u16, dport: u16) -> u64 {
    let p = u64::from(sport) | u64::from(dport) << 16 | u64::from(proto) << 32 | TAG_FLOW_V6;
    mum(h1_v6(&src) ^ p ^ S5, dst_part ^ S6)
}

/// Hash of IPv4 addresses and protocol only (no ports), for fragments: every
/// fragment of a datagram carries the same addresses, while only the first
/// carries the ports.
#[inline]
pub fn addr_hash_v4(src: [u8; 4], dst: [u8; 4], proto: u8) -> u64 {
    let a = u64::from(u32::from_be_bytes(src));
    let b = u64::from(u32::from_be_bytes(dst)) | u64::from(proto) << 32 | TAG_ADDR_V4;
    v4(a, b)
}

/// Hash of IPv6 addresses and protocol only (no ports), for fragments.
#[inline]
pub fn addr_hash_v6(src: [u8; 16], dst: [u8; 16], proto: u8) -> u64 {
    let p = u64::from(proto) << 32 | TAG_ADDR_V6;
    v6(h1_v6(&src), h2_v6(&dst), p)
}

/// Hash of an IPv4 client address only, for the source-IP scheduler (session
/// persistence without state: every connection of a client maps alike).
#[inline]
pub fn src_hash_v4(src: [u8; 4]) -> u64 {
    v4(u64::from(u32::from_be_bytes(src)), TAG_SRC_V4)
}

/// Hash of an IPv6 client address only, for the source-IP scheduler.
#[inline]
pub fn src_hash_v6(src: [u8; 16]) -> u64 {
    v6(h1_v6(&src), 0, TAG_SRC_V6)
}

/// The keyed hash behind [`crate::flow_table::fingerprint_v4`] and
/// [`crate::flow_table::fingerprint_v6`]: a flow's mix ([`flow_mix_v4`],
/// [`flow_mix_v6`]) through one multiply-fold keyed by `seed` (wyhash's
/// last round: both operands carry the key). Tuples of equal mix get equal
/// fingerprints, so an attacker who crafts them gains two flows that share
/// an entry and, having equal scheduler hashes too, a backend: nothing a
/// spoofed packet of either tuple could not do. Not a gateway contract: only
/// compared within one table.
///
/// The multiplier is the seed's own multiply-fold (the same for every
/// packet, so the compiler hoists it out of a burst's loop): seeds that
/// differ in a few bits give unrelated buckets.
#[inline(always)]
pub(crate) fn keyed_mix(seed: u64, mix: u64) -> u64 {
    mum(mix ^ seed ^ S3, mum(seed ^ S5, S6) ^ S4)
}

/// Maps a hash onto `0..n` with the multiply-shift ("fast range") reduction:
/// `(hash * n) >> 64` computed in 128 bits.
///
/// This is the index rule of [`crate::maglev::MaglevTable::lookup`] and part of
/// the gateway contract. It uses the hash's high bits and costs one multiply
/// (no division). Returns 0 when `n` is 0.
#[inline(always)]
pub fn reduce(hash: u64, n: u32) -> u32 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    use dnlb_testkit::SplitMix64 as Rng;

    const C4: [u8; 4] = [192, 0, 2, 1];
    const V4: [u8; 4] = [198, 51, 100, 10];
    const C6: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ];
    const V6: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
    ];

    /// Pinned outputs. These values are the cross-gateway contract: if this
    /// test fails, the change breaks consistent hashing in a mixed fleet.
    /// They were checked against an independent implementation of the
    /// algorithm in the module docs (Python big integers).
    #[test]
    fn pinned_vectors() {
        let cases: [(u64, u64); 16] = [
            (flow_hash_v4(C4, V4, 6, 40000, 443), 0x6aba_162b_8954_2918),
            (flow_hash_v4(C4, V4, 17, 40000, 443), 0xe45f_a476_4018_f692),
            (flow_hash_v4(C4, V4, 6, 40001, 443), 0x2fe2_ed9e_2627_4d32),
            (flow_hash_v4([0; 4], [0; 4], 0, 0, 0), 0x9e9c_2f44_5b8f_bb71),
            (
                flow_hash_v4([255; 4], [255; 4], 255, 65535, 65535),
                0x78ef_9eeb_0af0_e8ad,
            ),
            (addr_hash_v4(C4, V4, 6), 0xe7a8_4089_f6ef_5283),
            (addr_hash_v4(C4, V4, 17), 0xb6ea_650f_9aab_58a2),
            (src_hash_v4(C4), 0x141e_188b_bd97_3559),
            (src_hash_v4([0; 4]), 0x628d_01cd_7f03_4bb0),
            (flow_hash_v6(C6, V6, 6, 40000, 443), 0x028f_4583_3a36_43fa),
            (flow_hash_v6(C6, V6, 17, 40000, 443), 0x5b92_b170_5396_272b),
            (
                flow_hash_v6([0; 16], [0; 16], 0, 0, 0),
                0x3631_9145_0b79_7eb9,
            ),
            (
                flow_hash_v6([255; 16], [255; 16], 255, 65535, 65535),
                0x6274_7919_16ae_5b44,
            ),
            (addr_hash_v6(C6, V6, 6), 0x1315_4ad7_671b_088e),
            (src_hash_v6(C6), 0x444d_cdaa_6b2c_bd89),
            (src_hash_v6([0; 16]), 0x51e2_60ed_956b_f469),
        ];
        for (i, (got, want)) in cases.iter().enumerate() {
            assert_eq!(got, want, "vector {i}: got {got:#018x}");
        }
    }

    /// The flow entropy of outer headers (the mix) is pinned too, and the
    /// flow hash is its finish (checked independently, as above).
    #[test]
    fn pinned_mixes() {
        let m4 = flow_mix_v4(C4, V4, 6, 40000, 443);
        let m6 = flow_mix_v6(C6, V6, 6, 40000, 443);
        assert_eq!(m4, 0x3a63_7eb1_feaf_37c7, "got {m4:#018x}");
        assert_eq!(m6, 0x08fb_c2f9_ed1a_cfcc, "got {m6:#018x}");
        assert_eq!(flow_hash_of_mix(m4), flow_hash_v4(C4, V4, 6, 40000, 443));
        assert_eq!(flow_hash_of_mix(m6), flow_hash_v6(C6, V6, 6, 40000, 443));
    }

    #[test]
    fn pinned_reduce() {
        assert_eq!(reduce(0, 65537), 0);
        assert_eq!(reduce(u64::MAX, 65537), 65536);
        assert_eq!(reduce(1 << 63, 65537), 32768);
        assert_eq!(reduce(u64::MAX, 0), 0);
        assert_eq!(reduce(flow_hash_v4(C4, V4, 6, 40000, 443), 65537), 27322);
    }

    #[test]
    fn functions_are_separated_by_domain() {
        assert_ne!(flow_hash_v4(C4, V4, 6, 0, 0), addr_hash_v4(C4, V4, 6));
        assert_ne!(addr_hash_v4(C4, [0; 4], 0), src_hash_v4(C4));
        assert_ne!(flow_hash_v6(C6, V6, 6, 0, 0), addr_hash_v6(C6, V6, 6));
        assert_ne!(addr_hash_v6(C6, [0; 16], 0), src_hash_v6(C6));
        // Direction matters: the reply direction is a different flow key.
        assert_ne!(
            flow_hash_v4(C4, V4, 6, 40000, 443),
            flow_hash_v4(V4, C4, 6, 443, 40000)
        );
        assert_ne!(
            flow_hash_v6(C6, V6, 6, 40000, 443),
            flow_hash_v6(V6, C6, 6, 443, 40000)
        );
    }

    /// Pearson chi-square of `counts` against a uniform expectation; returns
    /// how many standard deviations (sqrt(2 df)) it lies from df.
    fn chi_square_sigmas(counts: &[u32]) -> f64 {
        let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        let e = total as f64 / counts.len() as f64;
        let chi: f64 = counts.iter().map(|&c| (f64::from(c) - e).powi(2) / e).sum();
        let df = (counts.len() - 1) as f64;
        (chi - df) / (2.0 * df).sqrt()
    }

    fn buckets(hashes: impl Iterator<Item = u64>, n: u32) -> Vec<u32> {
        let mut c = vec![0u32; n as usize];
        for h in hashes {
            c[reduce(h, n) as usize] += 1;
        }
        c
    }

    #[test]
    fn random_tuples_spread_over_maglev_slots() {
        let mut r = Rng(1);
        let vip4 = V4;
        let s = chi_square_sigmas(&buckets(
            (0..100_000).map(|_| {
                let x = r.next();
                flow_hash_v4(r.v4(), vip4, 6, x as u16, 443)
            }),
            65537,
        ));
        assert!(s.abs() < 6.0, "v4 chi-square {s} sigmas");
        let s = chi_square_sigmas(&buckets(
            (0..100_000).map(|_| {
                let x = r.next();
                flow_hash_v6(r.v6(), V6, 17, x as u16, 53)
            }),
            65537,
        ));
        assert!(s.abs() < 6.0, "v6 chi-square {s} sigmas");
        let s = chi_square_sigmas(&buckets((0..100_000).map(|_| src_hash_v4(r.v4())), 65537));
        assert!(s.abs() < 6.0, "src v4 chi-square {s} sigmas");
        let s = chi_square_sigmas(&buckets((0..100_000).map(|_| src_hash_v6(r.v6())), 65537));
        assert!(s.abs() < 6.0, "src v6 chi-square {s} sigmas");
    }

    #[test]
    fn sequential_ports_and_addresses_spread_evenly() {
        // One client opening connections from every source port.
        let all_ports = || 0..=u16::MAX;
        for n in [16u32, 1009, 65537] {
            let c = buckets(all_ports().map(|p| flow_hash_v4(C4, V4, 6, p, 80)), n);
            let s = chi_square_sigmas(&c);
            assert!(s.abs() < 6.0, "v4 sports into {n}: {s} sigmas");
            let c = buckets(all_ports().map(|p| flow_hash_v6(C6, V6, 6, p, 80)), n);
            let s = chi_square_sigmas(&c);
            assert!(s.abs() < 6.0, "v6 sports into {n}: {s} sigmas");
        }
        // Max/min over 16 buckets: expected 4096 each, sd 62.
        let c = buckets(all_ports().map(|p| flow_hash_v4(C4, V4, 17, p, 53)), 16);
        let (min, max) = (c.iter().min().unwrap(), c.iter().max().unwrap());
        assert!(*min > 3700 && *max < 4500, "{min}..{max}");
        // Sequential destination ports (all-port listeners) and sequential
        // client addresses (a /16 of clients).
        let c = buckets(all_ports().map(|p| flow_hash_v4(C4, V4, 6, 1234, p)), 1009);
        assert!(chi_square_sigmas(&c).abs() < 6.0);
        let c = buckets(
            (0..65536u32).map(|i| src_hash_v4((0x0a00_0000 + i).to_be_bytes())),
            1009,
        );
        assert!(chi_square_sigmas(&c).abs() < 6.0);
        let c = buckets(
            (0..65536u128)
                .map(|i| src_hash_v6((u128::from_be_bytes(C6) + (i << 64)).to_be_bytes())),
            1009,
        );
        assert!(chi_square_sigmas(&c).abs() < 6.0);
        let c = buckets(
            (0..65536u32).map(|i| addr_hash_v4((0x0a00_0000 + i).to_be_bytes(), V4, 17)),
            1009,
        );
        assert!(chi_square_sigmas(&c).abs() < 6.0);
        // The low 16 bits too (usable as outer UDP source port entropy).
        let mut c = vec![0u32; 4096];
        for p in all_ports() {
            c[(flow_hash_v4(C4, V4, 6, p, 80) & 4095) as usize] += 1;
        }
        assert!(chi_square_sigmas(&c).abs() < 6.0);
    }

    /// Flipping any single input bit flips every output bit with probability
    /// close to 1/2.
    fn avalanche(input_bits: usize, f: impl Fn(&[u8]) -> u64) {
        const SAMPLES: u32 = 3000;
        let bytes = input_bits / 8;
        let mut r = Rng(7);
        let mut flips = vec![[0u32; 64]; input_bits];
        let mut x = vec![0u8; bytes];
        for _ in 0..SAMPLES {
            for b in x.iter_mut() {
                *b = r.next() as u8;
            }
            let h = f(&x);
            for (bit, row) in flips.iter_mut().enumerate() {
                x[bit / 8] ^= 1 << (bit % 8);
                let d = h ^ f(&x);
                x[bit / 8] ^= 1 << (bit % 8);
                for (o, cnt) in row.iter_mut().enumerate() {
                    *cnt += (d >> o) as u32 & 1;
                }
            }
        }
        // sd of a proportion is 0.009 here; 0.06 is > 6 sd.
        for (bit, row) in flips.iter().enumerate() {
            for (o, &cnt) in row.iter().enumerate() {
                let p = f64::from(cnt) / f64::from(SAMPLES);
                assert!(
                    (p - 0.5).abs() < 0.06,
                    "input bit {bit} -> output bit {o}: {p}"
                );
            }
        }
    }

    #[test]
    fn avalanche_v4() {
        avalanche(104, |x| {
            flow_hash_v4(
                [x[0], x[1], x[2], x[3]],
                [x[4], x[5], x[6], x[7]],
                x[8],
                u16::from_be_bytes([x[9], x[10]]),
                u16::from_be_bytes([x[11], x[12]]),
            )
        });
    }

    #[test]
    fn avalanche_v6() {
        avalanche(296, |x| {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&x[0..16]);
            d.copy_from_slice(&x[16..32]);
            flow_hash_v6(
                s,
                d,
                x[32],
                u16::from_be_bytes([x[33], x[34]]),
                u16::from_be_bytes([x[35], x[36]]),
            )
        });
    }
}

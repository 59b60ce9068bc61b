//! Listener access lists on the hot path: a source address in, allow or
//! deny and the rule that decided out, without allocation.
//!
//! A list's prefixes (allow and deny, IPv4 and IPv6) are flattened on the
//! slow path into sorted, disjoint address intervals, each labelled with the
//! longest prefix that covers it (or none: the default action). A lookup
//! finds the interval containing the address by binary search; for IPv4
//! lists with many intervals a 65,536-entry index on the top 16 bits first
//! narrows the search to one /16 (a few intervals), so thousands of
//! prefixes cost about what a handful do. IPv6 lists get the same kind of
//! index on the 16 bits after the prefix all their bounds share (IPv6
//! prefixes crowd into 2000::/3, or one operator's /32, where the top 16
//! bits would tell little).

use std::sync::atomic::{AtomicU64, Ordering};

use dnlb_model::{Acl, AclAction, Cidr};

/// The rule index [`AclMatch::rule`] reports when no prefix covers the
/// address (the default action decided).
pub const DEFAULT_RULE: u16 = u16::MAX;

/// Most rules a list may have (rule indexes are `u16`, one reserved).
pub const MAX_RULES: usize = DEFAULT_RULE as usize;

/// IPv4 lists with more intervals than this get the /16 index.
const INDEX_FROM_INTERVALS: usize = 64;

/// What a lookup decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclMatch {
    /// Whether the source may open flows.
    pub allow: bool,
    /// The deciding rule's index in [`Acl::rules`], or [`DEFAULT_RULE`].
    pub rule: u16,
}

/// What a lookup decided, as the hot path keeps it: the deciding rule's
/// counter index (the rule's index, or the rule count for the default)
/// shifted left once, and the action in the low bit (1: allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclCode(u32);

impl AclCode {
    /// The code as one word (never 0 when it allows).
    #[inline(always)]
    pub fn raw(self) -> u32 {
        self.0
    }

    /// The code of [`AclCode::raw`] `raw`.
    #[inline(always)]
    pub fn from_raw(raw: u32) -> Self {
        AclCode(raw)
    }

    /// Whether the source may send.
    #[inline(always)]
    pub fn allow(self) -> bool {
        self.0 & 1 != 0
    }

    #[inline(always)]
    fn counter(self) -> usize {
        (self.0 >> 1) as usize
    }
}

/// Sorted disjoint intervals of one family: `starts[i]..starts[i + 1]` has
/// code `codes[i]`; `starts[0]` is 0.
#[derive(Debug, Clone)]
struct Intervals<T> {
    starts: Vec<T>,
    codes: Vec<AclCode>,
}

impl<T: Copy + Ord> Intervals<T> {
    /// The code of the interval containing `a`, searching `lo..hi`.
    #[inline(always)]
    fn code_in(&self, a: T, lo: usize, hi: usize) -> AclCode {
        let i = lo + self.starts[lo..hi].partition_point(|&s| s <= a);
        // `starts[0]` is 0, so some start is <= a and i >= 1.
        self.codes[i.saturating_sub(1)]
    }

    /// Rules flattened by [`flatten`] as codes.
    fn coded(starts: Vec<T>, rules: &[u16], actions: &[bool], default: bool) -> Self {
        let codes = rules
            .iter()
            .map(|&r| {
                let (counter, allow) = match actions.get(r as usize) {
                    Some(&a) => (r as u32, a),
                    None => (actions.len() as u32, default),
                };
                AclCode(counter << 1 | allow as u32)
            })
            .collect();
        Intervals { starts, codes }
    }
}

/// An access list, compiled, with its per-rule hit counters.
///
/// The counters live in the table, one row per worker (each row on its own
/// cache lines, written only by its worker with plain relaxed stores), so
/// they belong to exactly this list: a snapshot that keeps the list keeps
/// counting on, a changed list starts from zero, and the control plane
/// reads them from the snapshot it holds.
#[derive(Debug)]
pub struct AclTable {
    v4: Intervals<u32>,
    /// `index[h]`: the interval containing `h << 16`; `index[65536]` the
    /// interval count. None when the list is short. (An array, so that no
    /// lookup needs a bounds check.)
    v4_index: Option<Box<[u32; 65537]>>,
    v6: Intervals<u128>,
    v6_index: Option<V6Index>,
    /// Rules in the list (the default's counter comes after them).
    rules: usize,
    /// `hits[w * stride + r]`: packets worker `w` decided by rule `r`
    /// (`r == actions.len()`: the default).
    hits: Box<[AtomicU64]>,
    stride: usize,
}

/// A prefix as an inclusive range in a `bits`-wide space.
fn range(c: &Cidr) -> (u128, u128, u32) {
    let (a, bits) = match c.addr {
        std::net::IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        std::net::IpAddr::V6(a) => (u128::from(a), 128),
    };
    let host = bits - u32::from(c.len);
    let mask = if host == 0 {
        0
    } else {
        u128::MAX >> (128 - host)
    };
    (a & !mask, a | mask, bits)
}

/// Flattens nested or disjoint prefixes (start, end, rule) of a space whose
/// largest address is `max` into sorted intervals labelled with the longest
/// covering prefix's rule.
fn flatten(mut prefixes: Vec<(u128, u128, u16)>, max: u128) -> Flat {
    // Wider first among equal starts, so nested ones come after their parent;
    // among identical prefixes the later rule wins (it is pushed last).
    prefixes.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out = Flat {
        starts: Vec::new(),
        rules: Vec::new(),
    };
    let mut emit = |start: u128, rule: u16| {
        if out.rules.last() == Some(&rule) {
            return;
        }
        if out.starts.last() == Some(&start) {
            out.rules.pop();
            out.starts.pop();
            if out.rules.last() == Some(&rule) {
                return;
            }
        }
        out.starts.push(start);
        out.rules.push(rule);
    };
    let mut stack: Vec<(u128, u16)> = Vec::new(); // (end, rule)
    emit(0, DEFAULT_RULE);
    for (start, end, rule) in prefixes {
        // Close the prefixes that end before this one starts.
        while let Some(&(e, _)) = stack.last() {
            if e >= start {
                break;
            }
            stack.pop();
            let outer = stack.last().map_or(DEFAULT_RULE, |t| t.1);
            emit(e + 1, outer);
        }
        emit(start, rule);
        stack.push((end, rule));
    }
    while let Some((e, _)) = stack.pop() {
        if e == max {
            break;
        }
        let outer = stack.last().map_or(DEFAULT_RULE, |t| t.1);
        emit(e + 1, outer);
    }
    out
}

/// An index on IPv6 intervals: the bounds but the first (0) share their
/// top `common` bits, `prefix`; the next `bits` bits (at most 16) of an
/// address with that prefix select `first[h]..=first[h + 1]`, the intervals
/// to search. An address below the prefix is in the first interval, one
/// above it in the last.
#[derive(Debug)]
struct V6Index {
    common: u32,
    prefix: u128,
    bits: u32,
    first: Vec<u32>,
}

impl V6Index {
    /// The index of `starts` (sorted, `starts[0]` = 0, at least two).
    fn build(starts: &[u128]) -> V6Index {
        let (lo, hi) = (starts[1], starts[starts.len() - 1]);
        let common = (lo ^ hi).leading_zeros();
        let bits = (128 - common).min(16);
        let prefix = if common == 0 { 0 } else { lo >> (128 - common) };
        let base = if common == 0 {
            0
        } else {
            prefix << (128 - common)
        };
        let shift = 128 - common - bits;
        let first = (0..=(1u128 << bits))
            .map(|h| {
                if h == 1 << bits {
                    starts.len() as u32
                } else {
                    let a = base | h << shift;
                    (starts.partition_point(|&s| s <= a) - 1) as u32
                }
            })
            .collect();
        V6Index {
            common,
            prefix,
            bits,
            first,
        }
    }

    /// The intervals to search for `a` (`lo..hi`).
    #[inline(always)]
    fn range(&self, a: u128, len: usize) -> (usize, usize) {
        let top = if self.common == 0 {
            0
        } else {
            a >> (128 - self.common)
        };
        if top != self.prefix {
            let i = if top < self.prefix { 0 } else { len - 1 };
            return (i, i + 1);
        }
        let h = ((a >> (128 - self.common - self.bits)) & ((1 << self.bits) - 1)) as usize;
        let lo = self.first[h] as usize;
        (lo, (self.first[h + 1] as usize + 1).min(len))
    }
}

/// Flattened prefixes: `starts[i]..starts[i + 1]` has rule `rules[i]`.
struct Flat {
    starts: Vec<u128>,
    rules: Vec<u16>,
}

impl AclTable {
    /// Compiles `acl` (at most [`MAX_RULES`] rules), with hit counters for
    /// `workers` workers.
    pub fn build(acl: &Acl, workers: usize) -> AclTable {
        let (mut p4, mut p6) = (Vec::new(), Vec::new());
        for (i, (cidr, _)) in acl.rules.iter().take(MAX_RULES).enumerate() {
            let (start, end, bits) = range(cidr);
            if bits == 32 {
                p4.push((start, end, i as u16));
            } else {
                p6.push((start, end, i as u16));
            }
        }
        let actions: Vec<bool> = acl
            .rules
            .iter()
            .take(MAX_RULES)
            .map(|(_, a)| *a == AclAction::Allow)
            .collect();
        let default = acl.default == AclAction::Allow;
        let f4 = flatten(p4, u128::from(u32::MAX));
        let starts4 = f4.starts.iter().map(|&s| s as u32).collect();
        let v4 = Intervals::coded(starts4, &f4.rules, &actions, default);
        let f6 = flatten(p6, u128::MAX);
        let v6 = Intervals::coded(f6.starts, &f6.rules, &actions, default);
        // Rules and the default, rounded up to whole 128-byte lines.
        let stride = (acl.rules.len().min(MAX_RULES) + 1).next_multiple_of(16);
        let v4_index = (v4.starts.len() > INDEX_FROM_INTERVALS).then(|| {
            let mut index: Box<[u32; 65537]> = vec![0u32; 65537]
                .into_boxed_slice()
                .try_into()
                .expect("65537 long");
            for (h, slot) in index.iter_mut().enumerate() {
                *slot = if h == 65536 {
                    v4.starts.len() as u32
                } else {
                    let a = (h << 16) as u32;
                    (v4.starts.partition_point(|&s| s <= a) - 1) as u32
                };
            }
            index
        });
        let v6_index = (v6.starts.len() > INDEX_FROM_INTERVALS).then(|| V6Index::build(&v6.starts));
        AclTable {
            v4,
            v4_index,
            v6,
            v6_index,
            rules: actions.len(),
            hits: (0..stride * workers.max(1))
                .map(|_| AtomicU64::new(0))
                .collect(),
            stride,
        }
    }

    /// Counts a packet worker `worker` decided with `code` (a worker beyond
    /// the ones the table was built for is not counted).
    #[inline(always)]
    pub fn count(&self, worker: usize, code: AclCode) {
        if let Some(h) = self.hits.get(worker * self.stride + code.counter()) {
            // One writer per counter: no read-modify-write needed.
            h.store(h.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Packets decided by rule `rule` (`None`: the default), all workers.
    pub fn hits(&self, rule: Option<usize>) -> u64 {
        let r = rule.unwrap_or(self.rules);
        self.hits
            .chunks(self.stride)
            .filter_map(|row| row.get(r))
            .map(|h| h.load(Ordering::Relaxed))
            .sum()
    }

    /// A hot-path code as the rule it names.
    fn decode(&self, code: AclCode) -> AclMatch {
        let c = code.counter();
        AclMatch {
            allow: code.allow(),
            rule: if c == self.rules {
                DEFAULT_RULE
            } else {
                c as u16
            },
        }
    }

    /// What decides IPv4 source `src` (the hot path's form).
    #[inline(always)]
    pub fn code_v4(&self, src: [u8; 4]) -> AclCode {
        let a = u32::from_be_bytes(src);
        let Some(index) = &self.v4_index else {
            return self.v4.code_in(a, 0, self.v4.starts.len());
        };
        let h = (a >> 16) as usize;
        let (lo, hi) = (index[h] as usize, index[h + 1] as usize);
        if lo == hi {
            // One interval covers the whole /16 (the common case).
            return self.v4.codes[lo];
        }
        // The containing interval is lo or a later one starting in this
        // /16 (all before `hi`, or `hi` itself when it starts at a).
        self.v4.code_in(a, lo, (hi + 1).min(self.v4.starts.len()))
    }

    /// What decides IPv6 source `src` (the hot path's form).
    #[inline(always)]
    pub fn code_v6(&self, src: [u8; 16]) -> AclCode {
        let a = u128::from_be_bytes(src);
        let len = self.v6.starts.len();
        let (lo, hi) = match &self.v6_index {
            Some(index) => index.range(a, len),
            None => (0, len),
        };
        self.v6.code_in(a, lo, hi)
    }

    /// The decision for IPv4 source `src`.
    pub fn check_v4(&self, src: [u8; 4]) -> AclMatch {
        self.decode(self.code_v4(src))
    }

    /// The decision for IPv6 source `src`.
    pub fn check_v6(&self, src: [u8; 16]) -> AclMatch {
        self.decode(self.code_v6(src))
    }

    /// Address intervals in the compiled form (IPv4, IPv6): what a list
    /// costs.
    pub fn intervals(&self) -> (usize, usize) {
        (self.v4.starts.len(), self.v6.starts.len())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn cidr(s: &str) -> Cidr {
        let (a, l) = s.split_once('/').unwrap();
        let addr: IpAddr = a.parse().unwrap();
        let len: u8 = l.parse().unwrap();
        let c = Cidr { addr, len };
        let (start, _, _) = range(&c);
        Cidr {
            addr: match addr {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(start as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(start)),
            },
            len,
        }
    }

    /// The meaning: the longest matching prefix's action (the later of
    /// identical ones), else the default.
    fn naive(acl: &Acl, a: IpAddr) -> AclMatch {
        let mut best: Option<(u8, usize)> = None;
        for (i, (c, _)) in acl.rules.iter().enumerate() {
            let (s, e, bits) = range(c);
            let (v, vb) = match a {
                IpAddr::V4(x) => (u128::from(u32::from(x)), 32),
                IpAddr::V6(x) => (u128::from(x), 128),
            };
            if bits == vb && s <= v && v <= e && best.is_none_or(|(l, _)| c.len >= l) {
                best = Some((c.len, i));
            }
        }
        match best {
            Some((_, i)) => AclMatch {
                allow: acl.rules[i].1 == AclAction::Allow,
                rule: i as u16,
            },
            None => AclMatch {
                allow: acl.default == AclAction::Allow,
                rule: DEFAULT_RULE,
            },
        }
    }

    fn check(t: &AclTable, a: IpAddr) -> AclMatch {
        match a {
            IpAddr::V4(x) => t.check_v4(x.octets()),
            IpAddr::V6(x) => t.check_v6(x.octets()),
        }
    }

    #[test]
    fn the_longest_prefix_decides_and_the_rest_take_the_default() {
        let acl = Acl {
            default: AclAction::Deny,
            rules: vec![
                (cidr("10.0.0.0/8"), AclAction::Allow),
                (cidr("2001:db8::/32"), AclAction::Allow),
                (cidr("10.1.0.0/16"), AclAction::Deny),
                (cidr("10.1.2.3/32"), AclAction::Allow),
                (cidr("0.0.0.0/0"), AclAction::Deny),
            ],
        };
        let t = AclTable::build(&acl, 1);
        let at = |s: &str| check(&t, s.parse().unwrap());
        assert_eq!(
            at("10.9.9.9"),
            AclMatch {
                allow: true,
                rule: 0
            }
        );
        assert_eq!(
            at("10.1.9.9"),
            AclMatch {
                allow: false,
                rule: 2
            }
        );
        assert_eq!(
            at("10.1.2.3"),
            AclMatch {
                allow: true,
                rule: 3
            }
        );
        assert_eq!(
            at("10.1.2.4"),
            AclMatch {
                allow: false,
                rule: 2
            }
        );
        assert_eq!(
            at("11.0.0.0"),
            AclMatch {
                allow: false,
                rule: 4
            }
        );
        assert_eq!(
            at("255.255.255.255"),
            AclMatch {
                allow: false,
                rule: 4
            }
        );
        assert_eq!(
            at("2001:db8::1"),
            AclMatch {
                allow: true,
                rule: 1
            }
        );
        assert_eq!(
            at("2001:db9::1"),
            AclMatch {
                allow: false,
                rule: DEFAULT_RULE
            }
        );
        assert_eq!(
            at("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            AclMatch {
                allow: false,
                rule: DEFAULT_RULE
            }
        );
    }

    #[test]
    fn edges_of_the_address_space() {
        let acl = Acl {
            default: AclAction::Allow,
            rules: vec![
                (cidr("255.255.255.255/32"), AclAction::Deny),
                (cidr("0.0.0.0/32"), AclAction::Deny),
                (cidr("::/128"), AclAction::Deny),
                (
                    cidr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"),
                    AclAction::Deny,
                ),
            ],
        };
        let t = AclTable::build(&acl, 1);
        for (a, allow) in [
            ("255.255.255.255", false),
            ("255.255.255.254", true),
            ("0.0.0.0", false),
            ("0.0.0.1", true),
            ("::", false),
            ("::1", true),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:feff", true),
        ] {
            assert_eq!(check(&t, a.parse().unwrap()).allow, allow, "{a}");
        }
    }

    /// A list of `rules` (true: allow).
    fn list(rules: Vec<(Cidr, bool)>, deny_default: bool) -> Acl {
        let action = |allow| {
            if allow {
                AclAction::Allow
            } else {
                AclAction::Deny
            }
        };
        Acl {
            default: action(!deny_default),
            rules: rules.into_iter().map(|(c, a)| (c, action(a))).collect(),
        }
    }

    /// `extra`, and each rule's first and last address and their
    /// neighbours (within the rule's family).
    fn around_bounds(acl: &Acl, extra: impl Iterator<Item = IpAddr>) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = extra.collect();
        for (c, _) in &acl.rules {
            let (s, e, bits) = range(c);
            let max = if bits == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
            for x in [s, e, s.wrapping_sub(1) & max, e.wrapping_add(1) & max] {
                out.push(if bits == 32 {
                    IpAddr::V4(Ipv4Addr::from(x as u32))
                } else {
                    IpAddr::V6(Ipv6Addr::from(x))
                });
            }
        }
        out
    }

    fn any_v4_prefix() -> impl Strategy<Value = Cidr> {
        // Few distinct high bits, so prefixes nest and collide often.
        (0u32..16, 0u8..=32).prop_map(|(hi, len)| {
            let a = (hi << 28) | ((hi * 0x0101_0101) & 0x0fff_ffff);
            let c = Cidr {
                addr: IpAddr::V4(Ipv4Addr::from(a)),
                len,
            };
            let (s, _, _) = range(&c);
            Cidr {
                addr: IpAddr::V4(Ipv4Addr::from(s as u32)),
                len,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The compiled list agrees with the meaning, with and without the
        /// /16 index (many or few rules).
        #[test]
        fn compiled_lists_agree_with_longest_prefix_match(
            rules in prop::collection::vec((any_v4_prefix(), any::<bool>()), 0..200),
            deny_default in any::<bool>(),
            probes in prop::collection::vec(any::<u32>(), 8),
        ) {
            let acl = list(rules, deny_default);
            let t = AclTable::build(&acl, 1);
            let extra = probes.into_iter().map(|p| IpAddr::V4(Ipv4Addr::from(p)));
            for a in around_bounds(&acl, extra) {
                prop_assert_eq!(check(&t, a), naive(&acl, a), "{}", a);
            }
        }
    }

    fn any_v6_prefix() -> impl Strategy<Value = Cidr> {
        // Inside one operator's 2001:db8::/32 (the bounds share 32 bits or
        // more), few distinct values below it, so prefixes nest often.
        (0u128..8, 0u128..4, 32u8..=128).prop_map(|(a, b, len)| {
            let addr = 0x2001_0db8u128 << 96 | a << 80 | b << 40 | (a * b);
            let c = Cidr {
                addr: IpAddr::V6(Ipv6Addr::from(addr)),
                len,
            };
            let (s, _, _) = range(&c);
            Cidr {
                addr: IpAddr::V6(Ipv6Addr::from(s)),
                len,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The same for IPv6 lists, whose index works on the bits after the
        /// prefix all bounds share; probes inside and outside that prefix.
        #[test]
        fn compiled_v6_lists_agree_with_longest_prefix_match(
            rules in prop::collection::vec((any_v6_prefix(), any::<bool>()), 0..200),
            deny_default in any::<bool>(),
            probes in prop::collection::vec(any::<u128>(), 8),
        ) {
            let acl = list(rules, deny_default);
            let t = AclTable::build(&acl, 1);
            let extra = probes
                .into_iter()
                .flat_map(|p| [p, 0x2001_0db8u128 << 96 | p >> 32])
                .map(|p| IpAddr::V6(Ipv6Addr::from(p)));
            for a in around_bounds(&acl, extra) {
                prop_assert_eq!(check(&t, a), naive(&acl, a), "{}", a);
            }
        }
    }

    #[test]
    fn each_worker_counts_in_its_own_row_and_reads_sum_them() {
        let acl = Acl {
            default: AclAction::Deny,
            rules: vec![(cidr("10.0.0.0/8"), AclAction::Allow)],
        };
        let t = AclTable::build(&acl, 2);
        let m = t.code_v4([10, 1, 2, 3]);
        t.count(0, m);
        t.count(1, m);
        t.count(1, m);
        t.count(2, m); // no such worker: not counted
        t.count(0, t.code_v4([11, 0, 0, 1]));
        assert_eq!((t.hits(Some(0)), t.hits(None)), (3, 1));
    }
}

//! Ranges of addresses and ports, as users write them on the command line,
//! and the odometer that walks the product of four of them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A contiguous range of IPv4 or IPv6 addresses: `first` and the `count`
/// addresses from it (at least one, at most `u64::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    first: IpAddr,
    count: u64,
}

/// What is wrong with a range written on the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?}: {why}")]
pub struct RangeError {
    input: String,
    why: &'static str,
}

fn err(input: &str, why: &'static str) -> RangeError {
    RangeError {
        input: input.to_string(),
        why,
    }
}

impl AddrRange {
    /// `count` addresses from `first`; `None` if `count` is 0 or the range
    /// runs past the last address of its family.
    pub fn new(first: IpAddr, count: u64) -> Option<AddrRange> {
        if count == 0 {
            return None;
        }
        let last = u128::from(count - 1);
        let fits = match first {
            IpAddr::V4(a) => u128::from(a.to_bits()) + last <= u128::from(u32::MAX),
            IpAddr::V6(a) => a.to_bits().checked_add(last).is_some(),
        };
        fits.then_some(AddrRange { first, count })
    }

    /// A single address.
    pub fn single(a: IpAddr) -> AddrRange {
        AddrRange { first: a, count: 1 }
    }

    /// The first address.
    pub fn first(&self) -> IpAddr {
        self.first
    }

    /// How many addresses.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the addresses are IPv6.
    pub fn is_v6(&self) -> bool {
        self.first.is_ipv6()
    }

    /// The `i`-th address (`i < count`) as an integer (IPv4 in the low 32
    /// bits).
    #[inline(always)]
    pub fn nth_bits(&self, i: u64) -> u128 {
        debug_assert!(i < self.count);
        match self.first {
            IpAddr::V4(a) => u128::from(a.to_bits()) + u128::from(i),
            IpAddr::V6(a) => a.to_bits() + u128::from(i),
        }
    }

    /// The `i`-th address.
    pub fn nth(&self, i: u64) -> IpAddr {
        let b = self.nth_bits(i);
        match self.first {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from_bits(b as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from_bits(b)),
        }
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 1 {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.nth(self.count - 1))
        }
    }
}

/// Parses `A` (one address), `A-B` (inclusive), `A/LEN` (every address of
/// the prefix; host bits of `A` must be zero) or `A+N` (N addresses from A).
impl FromStr for AddrRange {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let addr = |t: &str| {
            t.trim()
                .parse::<IpAddr>()
                .map_err(|_| err(s, "not an IPv4 or IPv6 address"))
        };
        if let Some((a, b)) = s.split_once('-') {
            let (a, b) = (addr(a)?, addr(b)?);
            let count = match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) if b >= a => {
                    u64::from(b.to_bits() - a.to_bits()) + 1
                }
                (IpAddr::V6(a), IpAddr::V6(b)) if b >= a => {
                    u64::try_from(b.to_bits() - a.to_bits())
                        .ok()
                        .and_then(|d| d.checked_add(1))
                        .ok_or_else(|| err(s, "more than 2^64-1 addresses"))?
                }
                (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => {
                    return Err(err(s, "both ends must be of one address family"))
                }
                _ => return Err(err(s, "the last address is below the first")),
            };
            return AddrRange::new(a, count).ok_or_else(|| err(s, "empty range"));
        }
        if let Some((a, len)) = s.split_once('/') {
            let a = addr(a)?;
            let len: u32 = len.parse().map_err(|_| err(s, "bad prefix length"))?;
            let bits = if a.is_ipv4() { 32 } else { 128 };
            if len > bits {
                return Err(err(s, "prefix length too long"));
            }
            let host = bits - len;
            if host >= 64 {
                return Err(err(
                    s,
                    "more than 2^64-1 addresses (use /65 or longer, or A+N)",
                ));
            }
            let a_bits = match a {
                IpAddr::V4(v) => u128::from(v.to_bits()),
                IpAddr::V6(v) => v.to_bits(),
            };
            if a_bits & ((1u128 << host) - 1) != 0 {
                return Err(err(s, "host bits set: write the prefix's first address"));
            }
            return AddrRange::new(a, 1u64 << host).ok_or_else(|| err(s, "empty range"));
        }
        if let Some((a, n)) = s.split_once('+') {
            let a = addr(a)?;
            let n: u64 = n.parse().map_err(|_| err(s, "bad address count"))?;
            return AddrRange::new(a, n)
                .ok_or_else(|| err(s, "count is 0 or runs past the last address"));
        }
        Ok(AddrRange::single(addr(s)?))
    }
}

/// An inclusive range of TCP/UDP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// `first..=last`; `None` if `last < first`.
    pub fn new(first: u16, last: u16) -> Option<PortRange> {
        (last >= first).then_some(PortRange { first, last })
    }

    /// One port.
    pub fn single(p: u16) -> PortRange {
        PortRange { first: p, last: p }
    }

    /// How many ports.
    pub fn count(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// The `i`-th port (`i < count`).
    #[inline(always)]
    pub fn nth(&self, i: u64) -> u16 {
        debug_assert!(i < self.count());
        self.first + i as u16
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Parses `P` or `P-Q` (inclusive).
impl FromStr for PortRange {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = |t: &str| t.trim().parse::<u16>().map_err(|_| err(s, "not a port"));
        match s.split_once('-') {
            Some((a, b)) => PortRange::new(port(a)?, port(b)?)
                .ok_or_else(|| err(s, "the last port is below the first")),
            None => Ok(PortRange::single(port(s)?)),
        }
    }
}

/// Indices into four dimensions (source address, source port, destination
/// address, destination port), stepped like an odometer with the source
/// address turning fastest: consecutive packets differ in source address,
/// which is what spreads them over RSS queues and backends. Stepping walks
/// every combination once before repeating.
#[derive(Debug, Clone)]
pub struct Odometer {
    idx: [u64; 4],
    len: [u64; 4],
    wraps: u64,
}

impl Odometer {
    /// An odometer over dimensions of the given sizes (each at least 1).
    pub fn new(len: [u64; 4]) -> Odometer {
        assert!(len.iter().all(|&l| l > 0), "empty odometer dimension");
        Odometer {
            idx: [0; 4],
            len,
            wraps: 0,
        }
    }

    /// The current indices.
    #[inline(always)]
    pub fn get(&self) -> [u64; 4] {
        self.idx
    }

    /// Moves to the next combination.
    #[inline(always)]
    pub fn step(&mut self) {
        for d in 0..4 {
            self.idx[d] += 1;
            if self.idx[d] < self.len[d] {
                return;
            }
            self.idx[d] = 0;
        }
        self.wraps += 1;
    }

    /// How many combinations there are (may exceed `u64`).
    pub fn combinations(&self) -> u128 {
        self.len.iter().map(|&l| u128::from(l)).product()
    }

    /// How many times every combination was walked through and the walk
    /// started over.
    pub fn wraps(&self) -> u64 {
        self.wraps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> AddrRange {
        s.parse().unwrap()
    }

    #[test]
    fn address_range_forms() {
        assert_eq!(r("10.0.0.1").count(), 1);
        assert_eq!(r("10.0.0.1-10.0.1.0").count(), 256);
        assert_eq!(r("10.0.0.0/8").count(), 1 << 24);
        assert_eq!(r("0.0.0.0/0").count(), 1 << 32);
        assert_eq!(
            r("198.18.0.0+1000").nth(999),
            "198.18.3.231".parse::<IpAddr>().unwrap()
        );
        assert_eq!(r("2001:db8::/96").count(), 1 << 32);
        assert_eq!(
            r("2001:db8::1+3").nth(2),
            "2001:db8::3".parse::<IpAddr>().unwrap()
        );
        assert_eq!(r("2001:db8::ffff-2001:db8::1:1").count(), 3);
        assert_eq!(r("10.0.0.0-10.0.0.9").to_string(), "10.0.0.0-10.0.0.9");
        assert_eq!(r("255.255.255.255+1").count(), 1);
    }

    #[test]
    fn bad_address_ranges_are_refused() {
        for bad in [
            "10.0.0.1/24",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-2001:db8::1",
            "255.255.255.255+2",
            "10.0.0.1+0",
            "2001:db8::/64",
            "10.0.0.0/33",
            "nonsense",
            "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(bad.parse::<AddrRange>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn port_ranges() {
        let p: PortRange = "1024-65535".parse().unwrap();
        assert_eq!(p.count(), 64512);
        assert_eq!(p.nth(64511), 65535);
        assert_eq!("80".parse::<PortRange>().unwrap().count(), 1);
        assert!("90-80".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
    }

    #[test]
    fn odometer_walks_every_combination_once_per_wrap() {
        let mut o = Odometer::new([3, 2, 1, 2]);
        assert_eq!(o.combinations(), 12);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..12 {
            assert!(seen.insert(o.get()));
            o.step();
        }
        assert_eq!(o.wraps(), 1);
        assert_eq!(o.get(), [0, 0, 0, 0]);
        assert_eq!(seen.len(), 12);
    }
}

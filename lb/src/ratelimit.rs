//! Rate limiting driven by a caller-supplied clock: [`Pace`], the generic
//! cell rate algorithm (one `u64` of state per limiter, the parameters
//! apart, so a snapshot can carry them and thousands of hashed per-source
//! limiters fit in a worker's cache), and [`WideClock`], which extends the
//! workers' wrapping millisecond clock to nanoseconds that never wrap.

/// Nanoseconds per second.
const NS_PER_SEC: u64 = 1_000_000_000;

/// A rate as the generic cell rate algorithm applies it: the time between
/// two events and how far ahead of that schedule a burst may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    interval_ns: u64,
    tolerance_ns: u64,
}

impl Pace {
    /// `per_sec` events per second, `burst` at once (both at least 1).
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let interval_ns = (NS_PER_SEC / u64::from(per_sec.max(1))).max(1);
        Pace {
            interval_ns,
            tolerance_ns: interval_ns * (u64::from(burst.max(1)) - 1),
        }
    }

    /// One worker's share of a gateway-wide rate: `1/workers` of the rate
    /// and of the burst, rounded up.
    pub fn share(rate: dnlb_model::Rate, workers: usize) -> Self {
        let w = workers.max(1) as u32;
        Pace::new(rate.per_sec.div_ceil(w), rate.burst.div_ceil(w))
    }

    /// Whether one more event may happen at `now_ns`, given the limiter's
    /// state `tat` (the theoretical arrival time of the next event; 0 for a
    /// new limiter); if so, the state moves on.
    #[inline]
    pub fn admit(self, tat: &mut u64, now_ns: u64) -> bool {
        let t = (*tat).max(now_ns);
        if t - now_ns > self.tolerance_ns {
            return false;
        }
        *tat = t + self.interval_ns;
        true
    }
}

/// A nanosecond clock that never wraps, extended from a wrapping
/// millisecond one (steps backwards are ignored). It starts at its first
/// reading.
#[derive(Debug, Clone, Default)]
pub struct WideClock {
    last_ms: Option<u32>,
    ns: u64,
}

impl WideClock {
    /// The time at wrapping millisecond `now_ms`, in nanoseconds since the
    /// clock's first reading.
    #[inline]
    pub fn at(&mut self, now_ms: u32) -> u64 {
        if self.last_ms == Some(now_ms) {
            return self.ns; // most calls: the same millisecond as the last
        }
        let d = now_ms.wrapping_sub(*self.last_ms.get_or_insert(now_ms));
        if d < 1 << 31 {
            self.ns += u64::from(d) * 1_000_000;
            self.last_ms = Some(now_ms);
        }
        self.ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_admits_the_burst_then_the_rate() {
        let p = Pace::new(1000, 5);
        let mut tat = 0;
        let ms = 1_000_000;
        assert_eq!((0..20).filter(|_| p.admit(&mut tat, 0)).count(), 5);
        // One per millisecond afterwards, whatever is asked.
        let mut got = 0;
        for t in 1..=1000u64 {
            got += (0..10).filter(|_| p.admit(&mut tat, t * ms)).count();
        }
        assert_eq!(got, 1000);
        // Idle for a while: the burst is back, not more.
        assert_eq!((0..20).filter(|_| p.admit(&mut tat, 5000 * ms)).count(), 5);
    }

    #[test]
    fn a_share_rounds_up_and_the_wide_clock_crosses_the_wrap() {
        let s = Pace::share(
            dnlb_model::Rate {
                per_sec: 10,
                burst: 3,
            },
            4,
        );
        assert_eq!(s, Pace::new(3, 1));
        let mut c = WideClock::default();
        assert_eq!(c.at(u32::MAX - 1), 0);
        assert_eq!(c.at(2), 4_000_000, "across the wrap");
        assert_eq!(c.at(1), 4_000_000, "no step back");
        assert_eq!(c.at(2 + (1 << 30)), (4 + (1 << 30)) * 1_000_000);
    }
}

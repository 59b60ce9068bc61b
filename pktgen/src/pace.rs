//! Sending at a target rate on the TSC clock: how many packets are due now.
//! Time is passed in (TSC readings), so tests drive it.

/// Paces packets at `rate` per second of a `hz` clock (0: no limit).
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: u64,
    hz: u64,
    start: u64,
    credited: u64,
    max_backlog: u64,
}

impl Pacer {
    /// A pacer whose clock starts at `start`. After a stall (the core taken
    /// away by the scheduler, a slow peer) at most `max(32, rate / 100)`
    /// packets — 10 ms worth — are owed and sent at full speed to catch up;
    /// the rest are skipped. Enough to ride out a shared core's time
    /// slices, while a long stall does not turn into a long burst.
    pub fn new(rate: u64, hz: u64, start: u64) -> Pacer {
        Pacer {
            rate,
            hz: hz.max(1),
            start,
            credited: 0,
            max_backlog: (rate / 100).max(32),
        }
    }

    /// How many of `want` packets may be sent at TSC `now`.
    #[inline]
    pub fn due(&mut self, now: u64, want: usize) -> usize {
        if self.rate == 0 {
            return want;
        }
        let elapsed = now.saturating_sub(self.start);
        let allowed = (u128::from(elapsed) * u128::from(self.rate) / u128::from(self.hz)) as u64;
        let mut due = allowed.saturating_sub(self.credited);
        if due > self.max_backlog {
            self.credited = allowed - self.max_backlog;
            due = self.max_backlog;
        }
        due.min(want as u64) as usize
    }

    /// Counts `n` packets as sent.
    #[inline]
    pub fn sent(&mut self, n: usize) {
        self.credited += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_gives_what_is_asked() {
        let mut p = Pacer::new(0, 1000, 0);
        assert_eq!(p.due(0, 32), 32);
    }

    #[test]
    fn paces_to_the_rate_over_a_simulated_second() {
        // 1 MHz clock, 100k pps: one packet every 10 ticks.
        let mut p = Pacer::new(100_000, 1_000_000, 5);
        let mut total = 0;
        for now in (5..1_000_005).step_by(7) {
            let n = p.due(now, 32);
            p.sent(n);
            total += n;
        }
        assert!((99_990..=100_000).contains(&total), "{total}");
    }

    #[test]
    fn a_stall_catches_up_by_at_most_ten_milliseconds() {
        let mut p = Pacer::new(1_000_000, 1_000_000, 0);
        // nothing sent for half a second
        let mut burst = 0;
        loop {
            let n = p.due(500_000, 32);
            if n == 0 {
                break;
            }
            p.sent(n);
            burst += n;
        }
        assert_eq!(burst, 10_000);
        assert_eq!(p.due(500_001, 32), 1);
    }
}

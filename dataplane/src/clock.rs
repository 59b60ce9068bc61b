//! Time for the data plane: wrapping milliseconds, read once per burst.

use std::time::Instant;

/// A source of wrapping millisecond ticks.
pub trait Clock {
    /// Milliseconds since some start, wrapping at 2^32.
    fn now_ms(&self) -> u32;

    /// The time at time-stamp counter reading `tsc` (a reading the worker
    /// took anyway, so the clock costs no second one); clocks not made
    /// from the counter ignore it and read themselves.
    #[inline(always)]
    fn at(&self, tsc: u64) -> u32 {
        let _ = tsc;
        self.now_ms()
    }
}

/// The monotonic clock (vDSO `clock_gettime`, no syscall), read per burst.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    start: Instant,
}

impl Default for MonotonicClock {
    #[allow(clippy::disallowed_methods, reason = "made on the control thread")]
    fn default() -> Self {
        MonotonicClock {
            start: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now_ms(&self) -> u32 {
        self.start.elapsed().as_millis() as u32
    }
}

/// Milliseconds from the CPU's time-stamp counter, which DPDK itself relies
/// on (invariant TSC): one instruction and a multiply per burst instead of
/// a call into the vDSO. Wraps at 2^32 ms like [`MonotonicClock`].
#[derive(Debug, Clone, Copy)]
pub struct TscClock {
    start: u64,
    /// 2^64 / ticks per millisecond.
    ms_per_tick: u64,
}

impl TscClock {
    /// A clock starting now, for a counter of `tsc_hz` ticks a second (from
    /// EAL, which measures it at start).
    ///
    /// # Panics
    /// If `tsc_hz` is below 2 kHz (no counter runs that slowly).
    pub fn new(tsc_hz: u64) -> Self {
        let ticks_per_ms = tsc_hz / 1000;
        assert!(ticks_per_ms >= 2, "TSC at {tsc_hz} Hz");
        TscClock {
            start: dpdk_bindings::rdtsc(),
            ms_per_tick: ((1u128 << 64) / u128::from(ticks_per_ms)) as u64,
        }
    }

    /// Milliseconds after `ticks` counter ticks.
    #[inline(always)]
    fn ms(&self, ticks: u64) -> u32 {
        ((u128::from(ticks) * u128::from(self.ms_per_tick)) >> 64) as u32
    }
}

impl Clock for TscClock {
    #[inline(always)]
    fn now_ms(&self) -> u32 {
        self.at(dpdk_bindings::rdtsc())
    }

    #[inline(always)]
    fn at(&self, tsc: u64) -> u32 {
        self.ms(tsc.wrapping_sub(self.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_ticks_become_milliseconds() {
        let c = TscClock {
            start: 0,
            ms_per_tick: ((1u128 << 64) / 3_000_000) as u64,
        };
        assert_eq!(c.ms(0), 0);
        assert_eq!(c.ms(2_999_999), 0);
        // Exact, or a millisecond late (the multiplier is rounded down).
        for ms in [1u64, 1000, 60_000, 86_400_000, 1 << 31] {
            let got = u64::from(c.ms(3_000_000 * ms));
            assert!(got == ms || got + 1 == ms, "{ms} ms read as {got}");
        }
        // wraps like the monotonic clock, at 2^32 ms
        assert!(c.ms(3_000_000 * ((1u64 << 32) + 5)) <= 5);
    }

    #[test]
    fn the_tsc_clock_reads_a_given_counter_value_like_its_own() {
        let c = TscClock {
            start: 1_000,
            ms_per_tick: ((1u128 << 64) / 3_000_000) as u64,
        };
        assert_eq!(c.at(1_000), 0);
        assert_eq!(c.at(1_000 + 3_000_000 * 7 + 1), 7);
        // Clocks not made from the counter ignore the reading.
        let m = MonotonicClock::default();
        assert!(m.at(u64::MAX) < 1000);
    }

    #[test]
    fn the_tsc_clock_moves_with_real_time() {
        let c = TscClock::new(3_000_000_000);
        let t = c.now_ms();
        assert!(c.now_ms().wrapping_sub(t) < 1000);
    }
}

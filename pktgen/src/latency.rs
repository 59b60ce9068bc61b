//! Round-trip latency samples from returned stamps: each sequence number
//! counted once (a bitmap), samples kept in room reserved before the run,
//! statistics computed at the end.

use serde::Serialize;

use crate::stamp::Stamp;

/// Collects round-trip times of returned stamps. No allocation after `new`.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    seen: Vec<u64>,
    samples: Vec<u64>,
    capacity: u32,
    duplicates: u64,
    invalid: u64,
}

/// Latency figures of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Stamped packets sent.
    pub stamps_sent: u64,
    /// Stamps that came back (each counted once).
    pub samples: u64,
    /// Stamps sent that did not come back.
    pub lost: u64,
    /// Stamps that came back more than once (counted after the first).
    pub duplicates: u64,
    /// Frames ending with a stamp that was never sent (a sequence number
    /// not handed out, or a time in the future).
    pub invalid: u64,
    /// Shortest round trip, TSC cycles.
    pub min_cycles: u64,
    /// Median round trip, TSC cycles.
    pub median_cycles: u64,
    /// 99th percentile (nearest rank), TSC cycles.
    pub p99_cycles: u64,
    /// Longest round trip, TSC cycles.
    pub max_cycles: u64,
    /// Shortest round trip, µs.
    pub min_us: f64,
    /// Median round trip, µs.
    pub median_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Longest round trip, µs.
    pub max_us: f64,
}

impl LatencyRecorder {
    /// Room for stamps with sequence numbers `0..capacity`.
    pub fn new(capacity: u32) -> LatencyRecorder {
        LatencyRecorder {
            seen: vec![0; (capacity as usize).div_ceil(64)],
            samples: Vec::with_capacity(capacity as usize),
            capacity,
            duplicates: 0,
            invalid: 0,
        }
    }

    /// Records stamp `s` seen at TSC `now`, when `sent` stamps have been
    /// handed out so far.
    #[inline]
    pub fn record(&mut self, s: Stamp, now: u64, sent: u32) {
        if s.seq >= sent || s.seq >= self.capacity || s.tsc > now {
            self.invalid += 1;
            return;
        }
        let (w, bit) = ((s.seq / 64) as usize, 1u64 << (s.seq % 64));
        if self.seen[w] & bit != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[w] |= bit;
        self.samples.push(now - s.tsc);
    }

    /// Samples so far.
    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    /// The figures, with cycles converted at `tsc_hz`. Sorts the samples.
    pub fn summary(&mut self, stamps_sent: u32, tsc_hz: u64) -> LatencySummary {
        self.samples.sort_unstable();
        let n = self.samples.len();
        let at = |q_num: usize, q_den: usize| -> u64 {
            if n == 0 {
                return 0;
            }
            // nearest rank: the ceil(q * n)-th smallest
            let rank = (q_num * n).div_ceil(q_den).max(1);
            self.samples[rank - 1]
        };
        let (min, median, p99) = (at(0, 1), at(1, 2), at(99, 100));
        let max = self.samples.last().copied().unwrap_or(0);
        let us = |c: u64| {
            if tsc_hz == 0 {
                0.0
            } else {
                c as f64 * 1e6 / tsc_hz as f64
            }
        };
        LatencySummary {
            stamps_sent: u64::from(stamps_sent),
            samples: n as u64,
            lost: u64::from(stamps_sent).saturating_sub(n as u64),
            duplicates: self.duplicates,
            invalid: self.invalid,
            min_cycles: min,
            median_cycles: median,
            p99_cycles: p99,
            max_cycles: max,
            min_us: us(min),
            median_us: us(median),
            p99_us: us(p99),
            max_us: us(max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seq: u32, tsc: u64) -> Stamp {
        Stamp { seq, tsc }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut r = LatencyRecorder::new(1000);
        for i in 0..100u32 {
            // round trips 1..=100 cycles, recorded out of order
            let rtt = u64::from((i * 37) % 100 + 1);
            r.record(stamp(i, 1000), 1000 + rtt, 100);
        }
        let s = r.summary(120, 1_000_000);
        assert_eq!(s.samples, 100);
        assert_eq!(s.lost, 20);
        assert_eq!(
            (s.min_cycles, s.median_cycles, s.p99_cycles, s.max_cycles),
            (1, 50, 99, 100)
        );
        assert_eq!(s.median_us, 50.0);
    }

    #[test]
    fn duplicates_and_forgeries_are_not_samples() {
        let mut r = LatencyRecorder::new(64);
        r.record(stamp(3, 10), 20, 10);
        r.record(stamp(3, 10), 25, 10);
        r.record(stamp(10, 10), 20, 10); // never handed out
        r.record(stamp(4, 30), 20, 10); // from the future
        r.record(stamp(64, 10), 20, 100); // beyond the room
        let s = r.summary(10, 1000);
        assert_eq!((s.samples, s.duplicates, s.invalid, s.lost), (1, 1, 3, 9));
        assert_eq!(s.min_cycles, 10);
    }

    #[test]
    fn no_samples_is_all_zero() {
        let s = LatencyRecorder::new(0).summary(0, 1000);
        assert_eq!((s.samples, s.min_cycles, s.p99_cycles), (0, 0, 0));
    }
}

//! Per-worker counters. Bytes per port come from the driver's counters;
//! bytes per listener and backend are counted by the pipeline that parses
//! packets. Workers keep plain integers and publish them with
//! relaxed stores once per loop iteration (no read-modify-write atomics on
//! the packet path); readers sum over workers at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

pub use dnlb_lb::verdict::DropReason;

/// A worker's counters, plain integers owned by the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets handed to a TX queue.
    pub tx_packets: u64,
    /// Drops by reason.
    pub drops: [u64; DropReason::COUNT],
    /// Polls of all RX queues that returned nothing.
    pub empty_polls: u64,
    /// Idle back-off sleeps.
    pub idle_sleeps: u64,
    /// Time-stamp counter cycles of the loop iterations that received
    /// packets (busy time): over an interval, divided by the TSC rate it
    /// is the worker's load, divided by the packets received its cycles per
    /// packet, whatever rate it was offered.
    pub busy_cycles: u64,
}

impl Counters {
    /// Total drops.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Drops for one reason.
    pub fn drops_for(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// Adds another worker's counters.
    pub fn add(&mut self, o: &Counters) {
        self.rx_packets += o.rx_packets;
        self.tx_packets += o.tx_packets;
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
        self.empty_polls += o.empty_polls;
        self.idle_sleeps += o.idle_sleeps;
        self.busy_cycles += o.busy_cycles;
    }
}

const FIXED: usize = 5;
const SLOTS: usize = FIXED + DropReason::COUNT;

/// Where a worker publishes its counters for the control thread. One per
/// worker, on its own cache lines; only that worker writes it.
#[derive(Debug)]
#[repr(align(128))]
pub struct PublishedCounters {
    slots: [AtomicU64; SLOTS],
}

impl Default for PublishedCounters {
    fn default() -> Self {
        PublishedCounters {
            slots: [const { AtomicU64::new(0) }; SLOTS],
        }
    }
}

impl PublishedCounters {
    /// Publishes `c` (called by the owning worker only: plain stores).
    ///
    /// Straight-line stores (two fixed-length loops the compiler unrolls):
    /// the worker calls this every iteration, and a chained iterator over
    /// the slots cost ~300 instructions an iteration, ~10 a packet.
    #[inline]
    pub fn publish(&self, c: &Counters) {
        let (fixed, drops) = self.slots.split_at(FIXED);
        let vals = [
            c.rx_packets,
            c.tx_packets,
            c.empty_polls,
            c.idle_sleeps,
            c.busy_cycles,
        ];
        for (s, v) in fixed.iter().zip(vals) {
            s.store(v, Ordering::Relaxed);
        }
        for (s, v) in drops.iter().zip(c.drops) {
            s.store(v, Ordering::Relaxed);
        }
    }

    /// Reads the last published values.
    pub fn read(&self) -> Counters {
        let v: Vec<u64> = self
            .slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        let mut drops = [0; DropReason::COUNT];
        drops.copy_from_slice(&v[FIXED..]);
        Counters {
            rx_packets: v[0],
            tx_packets: v[1],
            empty_polls: v[2],
            idle_sleeps: v[3],
            busy_cycles: v[4],
            drops,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_every_field() {
        let c = Counters {
            rx_packets: 1,
            tx_packets: 3,
            drops: {
                let mut d = [0; DropReason::COUNT];
                d[DropReason::TxRefused as usize] = 5;
                d[DropReason::NonContiguous as usize] = 6;
                d
            },
            empty_polls: 7,
            idle_sleeps: 8,
            busy_cycles: 9,
        };
        let p = PublishedCounters::default();
        p.publish(&c);
        assert_eq!(p.read(), c);
        let mut sum = c;
        sum.add(&c);
        assert_eq!(sum.dropped(), 22);
        assert_eq!(sum.drops_for(DropReason::NonContiguous), 12);
    }
}

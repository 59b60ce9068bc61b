//! On-demand publication of workers' load-balancing counters (per listener
//! and backend, flow-table occupancy). Those tables are too large to store
//! to shared memory every loop iteration like [`super::PublishedCounters`],
//! so the control thread asks: it bumps a request number, and each worker,
//! which checks it once per loop iteration (one relaxed load), copies its
//! counters into its slot and acknowledges. Nothing happens per packet; the
//! copy happens once per scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dnlb_lb::processor::LbCounters;

/// A worker's load-balancing state as last published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbStats {
    /// Counters.
    pub counters: LbCounters,
    /// Flows in the flow table.
    pub flows: usize,
    /// Flow-table capacity.
    pub flow_capacity: usize,
}

impl LbStats {
    /// Adds another worker's stats.
    pub fn add(&mut self, o: &LbStats) {
        self.counters.add(&o.counters);
        self.flows += o.flows;
        self.flow_capacity += o.flow_capacity;
    }
}

#[derive(Debug, Default)]
struct Slot {
    served: AtomicU64,
    data: Mutex<LbStats>,
}

/// Where workers publish [`LbStats`] when asked. One slot per worker.
#[derive(Debug)]
pub struct LbStatsBoard {
    request: AtomicU64,
    slots: Vec<Slot>,
}

impl LbStatsBoard {
    /// A board for `workers` workers.
    pub fn new(workers: usize) -> Arc<Self> {
        Arc::new(LbStatsBoard {
            request: AtomicU64::new(0),
            slots: (0..workers).map(|_| Slot::default()).collect(),
        })
    }

    /// The publishing end for worker `index`.
    pub fn publisher(self: &Arc<Self>, index: usize) -> LbStatsPublisher {
        assert!(index < self.slots.len());
        LbStatsPublisher {
            board: self.clone(),
            index,
            last: 0,
        }
    }

    /// Asks every worker for fresh stats, waits up to `timeout` for them
    /// (a worker in idle back-off answers after its sleep), and returns the
    /// sum and whether every worker answered (else some values are from an
    /// earlier request).
    pub fn collect(&self, timeout: Duration) -> (LbStats, bool) {
        let r = self.request.fetch_add(1, Ordering::AcqRel) + 1;
        let deadline = Instant::now() + timeout;
        let mut fresh = false;
        while Instant::now() < deadline {
            if self
                .slots
                .iter()
                .all(|s| s.served.load(Ordering::Acquire) >= r)
            {
                fresh = true;
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        (self.read(), fresh)
    }

    /// The sum of what workers last published, without asking.
    pub fn read(&self) -> LbStats {
        let mut total = LbStats::default();
        for s in &self.slots {
            total.add(&s.data.lock().unwrap_or_else(|e| e.into_inner()));
        }
        total
    }
}

/// A worker's end of the [`LbStatsBoard`].
#[derive(Debug)]
pub struct LbStatsPublisher {
    board: Arc<LbStatsBoard>,
    index: usize,
    last: u64,
}

impl LbStatsPublisher {
    /// Called once per loop iteration: when the control thread asked since
    /// the last call, `fill` writes fresh stats into the slot.
    #[inline]
    pub fn poll(&mut self, fill: impl FnOnce(&mut LbStats)) {
        let r = self.board.request.load(Ordering::Relaxed);
        if r != self.last {
            self.publish(r, fill);
        }
    }

    /// Publishes now (when the worker stops).
    pub fn publish_now(&mut self, fill: impl FnOnce(&mut LbStats)) {
        let r = self.board.request.load(Ordering::Acquire);
        self.publish(r, fill);
    }

    #[cold]
    fn publish(&mut self, r: u64, fill: impl FnOnce(&mut LbStats)) {
        let slot = &self.board.slots[self.index];
        fill(&mut slot.data.lock().unwrap_or_else(|e| e.into_inner()));
        slot.served.store(r, Ordering::Release);
        self.last = r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_publish_only_when_asked_and_the_sum_is_fresh() {
        let board = LbStatsBoard::new(2);
        let mut w = [board.publisher(0), board.publisher(1)];
        let mut calls = 0;
        w[0].poll(|_| calls += 1);
        assert_eq!(calls, 0, "nobody asked");
        let b = board.clone();
        let asker = std::thread::spawn(move || b.collect(Duration::from_secs(10)));
        // Workers keep polling until they have answered.
        let start = Instant::now();
        while !asker.is_finished() && start.elapsed() < Duration::from_secs(10) {
            for (i, p) in w.iter_mut().enumerate() {
                p.poll(|s| {
                    s.flows = 10 * (i + 1);
                    s.counters.new_flows = i as u64 + 1;
                });
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        let (sum, fresh) = asker.join().unwrap();
        assert!(fresh);
        assert_eq!(sum.flows, 30);
        assert_eq!(sum.counters.new_flows, 3);
        // Asked once: answered once.
        let mut again = 0;
        w[0].poll(|_| again += 1);
        assert_eq!(again, 0);
    }

    #[test]
    fn a_silent_worker_makes_the_answer_stale_not_stuck() {
        let board = LbStatsBoard::new(1);
        let (_, fresh) = board.collect(Duration::from_millis(5));
        assert!(!fresh);
    }
}

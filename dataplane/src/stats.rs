//! On-demand publication of workers' load-balancing counters (per listener
//! and backend, flow-table occupancy). Those tables are too large to store
//! to shared memory every loop iteration like [`crate::PublishedCounters`],
//! so the control thread asks: it bumps a request number, and each worker,
//! which checks it once per loop iteration (one relaxed load), copies its
//! counters into its slot and acknowledges. Nothing happens per packet; the
//! copy happens once per scrape.
//!
//! A slot is a seqlock over words the control thread allocated: the worker
//! writes with plain (relaxed) stores between two sequence stores, takes no
//! lock and allocates nothing; the control thread reads until it sees the
//! same even sequence before and after. When a worker's tables outgrew its
//! slot (new listeners or backends), it writes what fits and says how much
//! it needs; the control thread gives the slot more room and asks again.

use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
#[allow(
    clippy::disallowed_types,
    reason = "control thread only: retired storage"
)]
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dnlb_lb::policing::HostClass;
use dnlb_lb::processor::{HostCount, LbCounters, SyncCounters, Traffic};
use dnlb_lb::verdict::DropReason;

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

/// Words before the tables: six flow counters, flows, capacity, the number
/// of listener and backend rows, passed/dropped per exception-path class,
/// and the sync counters.
const HEADER: usize = SYNC_AT + SyncCounters::WORDS;
/// Where the exception-path words start.
const HOST_AT: usize = 10;
/// Where the sync counters start.
const SYNC_AT: usize = HOST_AT + 2 * HostClass::COUNT;
/// Words per listener or backend row: packets, bytes, drops by reason.
const ROW: usize = 2 + DropReason::COUNT;
/// Room a new slot has, in rows.
const INITIAL_ROWS: usize = 64;

#[derive(Debug)]
struct Storage {
    words: Box<[AtomicU64]>,
}

impl Storage {
    #[allow(clippy::disallowed_methods, reason = "control thread")]
    fn with_rows(rows: usize) -> Arc<Storage> {
        Arc::new(Storage {
            words: (0..HEADER + rows * ROW)
                .map(|_| AtomicU64::new(0))
                .collect(),
        })
    }

    fn rows(&self) -> usize {
        (self.words.len() - HEADER) / ROW
    }
}

#[derive(Debug)]
struct Slot {
    /// The request this slot answers.
    served: AtomicU64,
    /// Seqlock sequence: odd while the worker writes.
    seq: AtomicU64,
    /// Rows the worker needed at its last write.
    needed: AtomicUsize,
    storage: ArcSwap<Storage>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            served: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            needed: AtomicUsize::new(0),
            storage: ArcSwap::new(Storage::with_rows(INITIAL_ROWS)),
        }
    }
}

/// Where workers publish [`LbStats`] when asked. One slot per worker.
#[derive(Debug)]
pub struct LbStatsBoard {
    request: AtomicU64,
    slots: Vec<Slot>,
    /// Storage replaced by larger storage, kept until no worker holds it
    /// (so a worker never frees one).
    #[allow(clippy::disallowed_types, reason = "control thread only")]
    retired: Mutex<Vec<Arc<Storage>>>,
}

impl LbStatsBoard {
    /// A board for `workers` workers.
    #[allow(
        clippy::disallowed_methods,
        clippy::disallowed_types,
        reason = "control thread"
    )]
    pub fn new(workers: usize) -> Arc<Self> {
        Arc::new(LbStatsBoard {
            request: AtomicU64::new(0),
            slots: (0..workers).map(|_| Slot::default()).collect(),
            retired: Mutex::default(),
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
    /// sum and whether every worker answered with all of its rows (else some
    /// values are from an earlier request). A slot that was too small is
    /// grown and asked again once.
    #[allow(clippy::disallowed_methods, reason = "control thread only")]
    pub fn collect(&self, timeout: Duration) -> (LbStats, bool) {
        let deadline = Instant::now() + timeout;
        let mut fresh = self.ask(deadline);
        if self.grow() {
            fresh = self.ask(deadline);
        }
        let complete = self
            .slots
            .iter()
            .all(|s| s.needed.load(Ordering::Acquire) <= s.storage.load().rows());
        (self.read(), fresh && complete)
    }

    /// One request; whether every worker answered by `deadline`.
    #[allow(clippy::disallowed_methods, reason = "control thread only")]
    fn ask(&self, deadline: Instant) -> bool {
        let r = self.request.fetch_add(1, Ordering::AcqRel) + 1;
        loop {
            if self
                .slots
                .iter()
                .all(|s| s.served.load(Ordering::Acquire) >= r)
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Gives slots whose worker needed more rows twice what it needed;
    /// returns whether any grew.
    fn grow(&self) -> bool {
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        // Storage no worker holds any more is freed here.
        retired.retain(|s| Arc::strong_count(s) > 1);
        let mut grew = false;
        for s in &self.slots {
            let needed = s.needed.load(Ordering::Acquire);
            if needed > s.storage.load().rows() {
                retired.push(s.storage.swap(Storage::with_rows(needed * 2)));
                grew = true;
            }
        }
        grew
    }

    /// The sum of what workers last published, without asking.
    pub fn read(&self) -> LbStats {
        let mut total = LbStats::default();
        for s in &self.slots {
            total.add(&read_slot(s));
        }
        total
    }
}

/// A consistent copy of one slot (retried while the worker writes; a worker
/// stuck mid-write cannot hang the control thread: after a bounded number
/// of tries the last copy is taken as it is).
fn read_slot(s: &Slot) -> LbStats {
    const TRIES: u32 = 100_000;
    let storage = s.storage.load();
    let w = &storage.words;
    let mut stats = LbStats::default();
    for _ in 0..TRIES {
        let before = s.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        stats = decode(w);
        fence(Ordering::Acquire);
        if s.seq.load(Ordering::Relaxed) == before {
            break;
        }
    }
    stats
}

fn decode(w: &[AtomicU64]) -> LbStats {
    let get = |i: usize| w[i].load(Ordering::Relaxed);
    let rows = (w.len() - HEADER) / ROW;
    let (nl, nb) = (get(8) as usize, get(9) as usize);
    let (nl, nb) = (nl.min(rows), nb.min(rows - nl.min(rows)));
    let row = |r: usize| {
        let at = HEADER + r * ROW;
        let t = Traffic {
            packets: get(at),
            bytes: get(at + 1),
        };
        let mut d = [0u64; DropReason::COUNT];
        for (k, x) in d.iter_mut().enumerate() {
            *x = get(at + 2 + k);
        }
        (t, d)
    };
    let (listeners, listener_drops) = (0..nl).map(row).unzip();
    let (backends, backend_drops) = (nl..nl + nb).map(row).unzip();
    LbStats {
        counters: LbCounters {
            listeners,
            listener_drops,
            backends,
            backend_drops,
            new_flows: get(0),
            flow_table_full: get(1),
            flows_rescheduled: get(2),
            icmp_errors_forwarded: get(3),
            too_big_sent: get(4),
            echo_replies: get(5),
            host: std::array::from_fn(|i| HostCount {
                passed: get(HOST_AT + 2 * i),
                dropped: get(HOST_AT + 2 * i + 1),
            }),
            sync: SyncCounters::from_words(std::array::from_fn(|i| get(SYNC_AT + i))),
        },
        flows: get(6) as usize,
        flow_capacity: get(7) as usize,
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
    /// the last call, writes `counters` and the flow-table occupancy into
    /// the slot.
    #[inline]
    pub fn poll(&mut self, counters: &LbCounters, flows: usize, capacity: usize) {
        let r = self.board.request.load(Ordering::Relaxed);
        if r != self.last {
            self.publish(r, counters, flows, capacity);
        }
    }

    /// Whether the control thread asked for counters this worker has not
    /// published yet (one relaxed load).
    #[inline]
    pub fn requested(&self) -> bool {
        self.board.request.load(Ordering::Relaxed) != self.last
    }

    /// Touches the slot once, so the lock-free structures' one-time
    /// per-thread set-up happens when the worker starts.
    pub fn prime(&self) {
        let _ = self.board.slots[self.index].storage.load();
    }

    /// Publishes now (when the worker stops).
    pub fn publish_now(&mut self, counters: &LbCounters, flows: usize, capacity: usize) {
        let r = self.board.request.load(Ordering::Acquire);
        self.publish(r, counters, flows, capacity);
    }

    #[cold]
    fn publish(&mut self, r: u64, c: &LbCounters, flows: usize, capacity: usize) {
        let slot = &self.board.slots[self.index];
        let storage = slot.storage.load();
        let w = &storage.words;
        let rows = storage.rows();
        let (nl, nb) = (c.listeners.len(), c.backends.len());
        slot.needed.store(nl + nb, Ordering::Release);
        let fit_l = nl.min(rows);
        let fit_b = nb.min(rows - fit_l);
        let seq = slot.seq.load(Ordering::Relaxed);
        slot.seq.store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let put = |i: usize, v: u64| w[i].store(v, Ordering::Relaxed);
        for (i, v) in [
            c.new_flows,
            c.flow_table_full,
            c.flows_rescheduled,
            c.icmp_errors_forwarded,
            c.too_big_sent,
            c.echo_replies,
            flows as u64,
            capacity as u64,
            fit_l as u64,
            fit_b as u64,
        ]
        .into_iter()
        .enumerate()
        {
            put(i, v);
        }
        for (i, h) in c.host.iter().enumerate() {
            put(HOST_AT + 2 * i, h.passed);
            put(HOST_AT + 2 * i + 1, h.dropped);
        }
        for (i, v) in c.sync.words().into_iter().enumerate() {
            put(SYNC_AT + i, v);
        }
        let rows_in = c
            .listeners
            .iter()
            .zip(&c.listener_drops)
            .take(fit_l)
            .chain(c.backends.iter().zip(&c.backend_drops).take(fit_b));
        for (r, (t, d)) in rows_in.enumerate() {
            let at = HEADER + r * ROW;
            put(at, t.packets);
            put(at + 1, t.bytes);
            for (k, x) in d.iter().enumerate() {
                put(at + 2 + k, *x);
            }
        }
        slot.seq.store(seq + 2, Ordering::Release);
        slot.served.store(r, Ordering::Release);
        self.last = r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(listeners: usize, backends: usize, k: u64) -> LbCounters {
        let mut c = LbCounters {
            listeners: vec![Traffic::default(); listeners],
            listener_drops: vec![[0; DropReason::COUNT]; listeners],
            backends: vec![Traffic::default(); backends],
            backend_drops: vec![[0; DropReason::COUNT]; backends],
            new_flows: k,
            echo_replies: 2 * k,
            sync: SyncCounters::from_words(std::array::from_fn(|i| k * 10 + i as u64)),
            ..LbCounters::default()
        };
        for (i, t) in c
            .listeners
            .iter_mut()
            .chain(c.backends.iter_mut())
            .enumerate()
        {
            t.packets = k * 1000 + i as u64;
            t.bytes = 64 * t.packets;
        }
        if let Some(d) = c.backend_drops.last_mut() {
            d[DropReason::TooBig as usize] = k;
        }
        c
    }

    /// Runs `workers` until `asker` finishes, each publishing `c[i]`.
    fn answer(
        w: &mut [LbStatsPublisher],
        c: &[LbCounters],
        asker: &std::thread::JoinHandle<(LbStats, bool)>,
    ) {
        let start = Instant::now();
        while !asker.is_finished() && start.elapsed() < Duration::from_secs(60) {
            for (i, p) in w.iter_mut().enumerate() {
                p.poll(&c[i], 10 * (i + 1), 100);
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    #[test]
    fn workers_publish_only_when_asked_and_the_sum_is_fresh() {
        let board = LbStatsBoard::new(2);
        let mut w = [board.publisher(0), board.publisher(1)];
        let c = [counters(2, 3, 1), counters(2, 3, 2)];
        w[0].poll(&c[0], 10, 100);
        assert_eq!(board.read(), LbStats::default(), "nobody asked");
        let b = board.clone();
        let asker = std::thread::spawn(move || b.collect(Duration::from_secs(60)));
        answer(&mut w, &c, &asker);
        let (sum, fresh) = asker.join().unwrap();
        assert!(fresh);
        let mut want = LbStats {
            counters: c[0].clone(),
            flows: 10,
            flow_capacity: 100,
        };
        want.add(&LbStats {
            counters: c[1].clone(),
            flows: 20,
            flow_capacity: 100,
        });
        assert_eq!(sum, want, "every field round-trips");
    }

    #[test]
    fn a_slot_too_small_grows_and_the_second_answer_is_whole() {
        let board = LbStatsBoard::new(1);
        let mut w = [board.publisher(0)];
        let c = [counters(3, INITIAL_ROWS + 10, 7)];
        let b = board.clone();
        let asker = std::thread::spawn(move || b.collect(Duration::from_secs(60)));
        answer(&mut w, &c, &asker);
        let (sum, fresh) = asker.join().unwrap();
        assert!(fresh, "asked again after growing");
        assert_eq!(sum.counters, c[0]);
        assert!(board.slots[0].storage.load().rows() >= INITIAL_ROWS + 13);
    }

    #[test]
    fn a_silent_worker_makes_the_answer_stale_not_stuck() {
        let board = LbStatsBoard::new(1);
        let (_, fresh) = board.collect(Duration::from_millis(5));
        assert!(!fresh);
    }
}

//! One-flow capture: workers copy the packets that match a filter — as
//! received, and as they leave with the decision taken — into a bounded
//! ring of their own; the control thread drains the rings (and writes
//! pcapng, in the forwarder).
//!
//! The control thread publishes a [`CaptureFilter`] under a sequence
//! number (a seqlock: odd while it writes); a worker loads the sequence
//! once per burst ([`CaptureTap::armed`]) and, only when a capture is
//! armed, peeks at each received frame. A match takes a ring slot for the
//! received frame (at most [`SNAP_LEN`] bytes) before the packet is
//! processed, and another for the frame that leaves afterwards; both are
//! published together with one release store. Each ring is single
//! producer (its worker), single consumer (the control thread), with
//! preallocated slots of plain atomic words: when it is full a matching
//! packet is counted as dropped, never waited for. Nothing is allocated,
//! locked or formatted on a worker.

mod filter;
mod ring;

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

use dnlb_lb::ids::BackendId;
use dnlb_lb::verdict::{Action, DropReason};

use filter::FILTER_WORDS;
pub use filter::{CaptureFilter, Prefix};
use ring::Ring;
pub use ring::{Record, RING_SLOTS, SNAP_LEN};

use crate::io::PortIndex;
use crate::pipeline::Verdict;

/// Which way a captured frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// As received.
    In,
    /// As it left (encapsulated, the reply, or passed on unchanged).
    Out,
}

/// What the worker did with a captured packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Encapsulated toward this backend.
    Backend(BackendId),
    /// Turned into a reply to its sender (echo reply, "too big").
    Reply,
    /// Not for a VIP: passed on to this port unchanged.
    Passed(PortIndex),
    /// Dropped, counted under this reason.
    Drop(DropReason),
}

impl Decision {
    /// The decision of a processor's `action` that ended in `verdict`.
    #[inline]
    pub fn of(action: Action, verdict: Verdict) -> Self {
        match (action, verdict) {
            (_, Verdict::Drop(r)) => Decision::Drop(r),
            (Action::Encapsulated(b), _) => Decision::Backend(b),
            (Action::Reply, _) => Decision::Reply,
            (_, Verdict::Forward(o)) => Decision::Passed(o),
        }
    }

    fn encode(self) -> (u64, u64) {
        match self {
            Decision::Backend(b) => (1, u64::from(b.0)),
            Decision::Reply => (2, 0),
            Decision::Passed(p) => (3, u64::from(p.0)),
            Decision::Drop(r) => (4, r as u64),
        }
    }

    fn decode(kind: u64, value: u64) -> Option<Self> {
        Some(match kind {
            1 => Decision::Backend(BackendId(value as u32)),
            2 => Decision::Reply,
            3 => Decision::Passed(PortIndex(value as u16)),
            4 => Decision::Drop(*DropReason::ALL.get(value as usize)?),
            _ => return None,
        })
    }
}

/// Where the control thread arms a capture and workers leave what they
/// captured. One ring per worker.
#[derive(Debug)]
pub struct CaptureBoard {
    /// Seqlock over `filter` and `armed`: odd while the control thread
    /// writes them. Each arming and disarming takes a new even value.
    seq: AtomicU64,
    filter: [AtomicU64; FILTER_WORDS],
    /// 1 while a capture is armed.
    armed: AtomicU64,
    rings: Vec<Ring>,
}

impl CaptureBoard {
    /// A board for `workers` workers, its rings allocated here (on the
    /// control thread): [`RING_SLOTS`] slots of [`SNAP_LEN`] bytes each.
    #[allow(clippy::disallowed_methods, reason = "control thread")]
    pub fn new(workers: usize) -> Arc<Self> {
        Arc::new(CaptureBoard {
            seq: AtomicU64::new(0),
            filter: Default::default(),
            armed: AtomicU64::new(0),
            rings: (0..workers).map(|_| Ring::new()).collect(),
        })
    }

    /// Worker `index`'s end.
    pub fn tap(self: &Arc<Self>, index: usize) -> CaptureTap {
        assert!(index < self.rings.len());
        CaptureTap {
            board: self.clone(),
            index,
            seen: 0,
            filter: None,
            armed_at: 0,
            head: 0,
            tail: 0,
            dropped: 0,
            pending_len: 0,
        }
    }

    /// How many workers (rings) there are.
    pub fn workers(&self) -> usize {
        self.rings.len()
    }

    fn publish(&self, words: [u64; FILTER_WORDS], armed: bool) -> u64 {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (w, v) in self.filter.iter().zip(words) {
            w.store(v, Ordering::Relaxed);
        }
        self.armed.store(u64::from(armed), Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
        s + 2
    }

    /// Arms a capture of what matches `f` (replacing any other) and
    /// returns its sequence number: the records made under it carry it.
    /// Called by one thread (the control thread).
    pub fn arm(&self, f: &CaptureFilter) -> u64 {
        self.publish(f.encode(), true)
    }

    /// Disarms the capture; workers stop copying from their next burst.
    pub fn disarm(&self) -> u64 {
        self.publish([0; FILTER_WORDS], false)
    }

    /// Matching packets worker `worker` could not record (its ring was
    /// full), since it started.
    pub fn dropped(&self, worker: usize) -> u64 {
        self.rings[worker].dropped.load(Ordering::Relaxed)
    }

    /// The sequence number worker `worker` last took (it captures under
    /// it, or has stopped if it was a disarming).
    pub fn taken(&self, worker: usize) -> u64 {
        self.rings[worker].taken.load(Ordering::Acquire)
    }

    /// Moves the records worker `worker` published into `out`, oldest
    /// first, and frees their slots.
    pub fn drain(&self, worker: usize, out: &mut Vec<Record>) {
        self.rings[worker].drain(out);
    }
}

/// Whether `n` more slots are free after `head` (reading the consumer's
/// position again only when the last one read says no).
#[inline]
fn room(ring: &Ring, head: u64, tail: &mut u64, n: u64) -> bool {
    if head + n - *tail > RING_SLOTS as u64 {
        *tail = ring.tail.load(Ordering::Acquire);
    }
    head + n - *tail <= RING_SLOTS as u64
}

/// Counts a matching packet not recorded (a plain store: one writer).
fn count_drop(ring: &Ring, dropped: &mut u64) {
    *dropped += 1;
    ring.dropped.store(*dropped, Ordering::Relaxed);
}

/// A worker's end of the [`CaptureBoard`]: its ring's producer side.
#[derive(Debug)]
pub struct CaptureTap {
    board: Arc<CaptureBoard>,
    index: usize,
    /// The last sequence number taken.
    seen: u64,
    /// The armed capture's filter.
    filter: Option<CaptureFilter>,
    /// The worker's clock when it took the capture (records carry the
    /// milliseconds since).
    armed_at: u32,
    /// Records written (the ring's head, published per packet).
    head: u64,
    /// The consumer's position, as last read.
    tail: u64,
    /// Matching packets not recorded.
    dropped: u64,
    /// The received frame's length of the record being written.
    pending_len: u32,
}

impl CaptureTap {
    /// Whether a capture is armed: one relaxed load per burst; takes a new
    /// filter when the control thread published one.
    #[inline]
    pub fn armed(&mut self, now: u32) -> bool {
        if self.board.seq.load(Ordering::Relaxed) != self.seen {
            self.take(now);
        }
        self.filter.is_some()
    }

    #[cold]
    fn take(&mut self, now: u32) {
        let b = &*self.board;
        let s = b.seq.load(Ordering::Acquire);
        if s % 2 == 1 {
            return;
        }
        let words = std::array::from_fn(|i| b.filter[i].load(Ordering::Relaxed));
        let armed = b.armed.load(Ordering::Relaxed) != 0;
        fence(Ordering::Acquire);
        if b.seq.load(Ordering::Relaxed) != s {
            return;
        }
        self.filter = armed.then(|| CaptureFilter::decode(words));
        self.seen = s;
        self.armed_at = now;
        b.rings[self.index].taken.store(s, Ordering::Release);
    }

    /// Before a packet is processed: if the capture keeps the received
    /// `frame`, copies it into the next slot and returns the ticket for
    /// [`CaptureTap::after`]. Call only when [`CaptureTap::armed`].
    #[inline]
    pub fn before(&mut self, frame: &[u8]) -> Option<u64> {
        if !self.filter.as_ref()?.matches(frame) {
            return None;
        }
        let ring = &self.board.rings[self.index];
        if !room(ring, self.head, &mut self.tail, 1) {
            count_drop(ring, &mut self.dropped);
            return None;
        }
        ring.write_data(self.head, frame);
        self.pending_len = frame.len() as u32;
        Some(self.head)
    }

    /// After the packet of ticket `at` was processed into `frame` with
    /// `decision` (received on `rx`): completes the received frame's record,
    /// adds the frame that leaves (unless dropped) and publishes both.
    #[inline]
    pub fn after(&mut self, at: u64, rx: PortIndex, frame: &[u8], decision: Decision, now: u32) {
        let ring = &self.board.rings[self.index];
        let ms = now.wrapping_sub(self.armed_at);
        let meta = ring::Meta {
            seq: self.seen,
            direction: Direction::In,
            port: rx,
            decision,
            ms,
            orig_len: self.pending_len,
        };
        ring.write_meta(at, &meta);
        self.head = at + 1;
        let out = match decision {
            Decision::Drop(_) => None,
            Decision::Passed(o) => Some(o),
            Decision::Backend(_) | Decision::Reply => Some(rx),
        };
        if let Some(port) = out {
            if room(ring, self.head, &mut self.tail, 1) {
                ring.write_data(self.head, frame);
                let meta = ring::Meta {
                    direction: Direction::Out,
                    port,
                    orig_len: frame.len() as u32,
                    ..meta
                };
                ring.write_meta(self.head, &meta);
                self.head += 1;
            } else {
                count_drop(ring, &mut self.dropped);
            }
        }
        ring.head.store(self.head, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;

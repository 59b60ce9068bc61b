//! A worker's capture ring: single producer (the worker), single consumer
//! (the control thread), [`RING_SLOTS`] preallocated slots of plain atomic
//! words (relaxed stores are plain moves), published by the producer's
//! release store of `head` and freed by the consumer's of `tail`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Decision, Direction};
use crate::io::PortIndex;

/// Bytes of a frame kept (the rest is cut off; its length is kept).
pub const SNAP_LEN: usize = 512;
const SNAP_WORDS: usize = SNAP_LEN / 8;
/// Slots per worker's ring (a packet takes two: received and leaving).
pub const RING_SLOTS: usize = 1024;

#[derive(Debug)]
struct Slot {
    meta: [AtomicU64; 3],
    data: [AtomicU64; SNAP_WORDS],
}

/// A record's fields but its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    pub seq: u64,
    pub direction: Direction,
    pub port: PortIndex,
    pub decision: Decision,
    pub ms: u32,
    pub orig_len: u32,
}

/// A captured frame, as the control thread drains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The sequence number of the capture it was made under.
    pub seq: u64,
    /// Received or leaving.
    pub direction: Direction,
    /// The port it came in by (received) or leaves by.
    pub port: PortIndex,
    /// What the worker did with the packet.
    pub decision: Decision,
    /// Milliseconds from when the worker took the capture.
    pub ms: u32,
    /// The frame's whole length.
    pub orig_len: u32,
    /// Its first [`SNAP_LEN`] bytes at most.
    pub data: Vec<u8>,
}

/// One worker's ring.
#[derive(Debug)]
pub(super) struct Ring {
    /// Records published (producer).
    pub head: AtomicU64,
    /// Records consumed (consumer).
    pub tail: AtomicU64,
    /// Matching packets not recorded (producer).
    pub dropped: AtomicU64,
    /// The capture sequence the producer took last.
    pub taken: AtomicU64,
    slots: Box<[Slot]>,
}

impl Ring {
    pub fn new() -> Self {
        Ring {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            slots: (0..RING_SLOTS)
                .map(|_| Slot {
                    meta: Default::default(),
                    data: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
        }
    }

    fn slot(&self, at: u64) -> &Slot {
        &self.slots[at as usize % RING_SLOTS]
    }

    /// Copies the first [`SNAP_LEN`] bytes of `frame` into slot `at`.
    #[inline]
    pub fn write_data(&self, at: u64, frame: &[u8]) {
        let d = &self.slot(at).data;
        let kept = &frame[..frame.len().min(SNAP_LEN)];
        let mut chunks = kept.chunks_exact(8);
        for (w, c) in d.iter().zip(&mut chunks) {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            w.store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            d[kept.len() / 8].store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
    }

    /// Writes slot `at`'s record fields.
    #[inline]
    pub fn write_meta(&self, at: u64, m: &Meta) {
        let (kind, value) = m.decision.encode();
        let m0 = u64::from(m.orig_len)
            | u64::from(m.direction == Direction::Out) << 32
            | kind << 33
            | u64::from(m.port.0) << 40;
        let m1 = value | u64::from(m.ms) << 32;
        let w = &self.slot(at).meta;
        w[0].store(m0, Ordering::Relaxed);
        w[1].store(m1, Ordering::Relaxed);
        w[2].store(m.seq, Ordering::Relaxed);
    }

    fn read(&self, at: u64) -> Option<Record> {
        let s = self.slot(at);
        let [m0, m1, seq] = std::array::from_fn(|i| s.meta[i].load(Ordering::Relaxed));
        let orig_len = m0 as u32;
        let kept = (orig_len as usize).min(SNAP_LEN);
        let mut data = Vec::with_capacity(kept);
        for w in &s.data[..kept.div_ceil(8)] {
            data.extend_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
        }
        data.truncate(kept);
        Some(Record {
            seq,
            direction: if m0 >> 32 & 1 != 0 {
                Direction::Out
            } else {
                Direction::In
            },
            port: PortIndex((m0 >> 40) as u16),
            decision: Decision::decode(m0 >> 33 & 0x7f, m1 & 0xffff_ffff)?,
            ms: (m1 >> 32) as u32,
            orig_len,
            data,
        })
    }

    /// Moves the published records into `out` and frees their slots.
    pub fn drain(&self, out: &mut Vec<Record>) {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        out.extend((tail..head).filter_map(|at| self.read(at)));
        self.tail.store(head, Ordering::Release);
    }
}

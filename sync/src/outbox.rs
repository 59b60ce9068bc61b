//! What waits to be sent: a bounded queue of exceptions and withdrawals in
//! the order the caller gave them, and a token bucket of bytes.
//!
//! Every peer gets the same messages (unicast fan-out), so one bucket paces
//! the stream to every peer: a message of `n` bytes takes `n` tokens, and
//! the bucket fills at the per-peer byte rate, up to one batch interval's
//! worth (at least one largest message, so a full message can always go).
//! What does not fit waits for a later batch; past `max_queued` entries new
//! ones are dropped and counted.

use std::collections::VecDeque;

use crate::entry::FlowException;
use crate::wire::{message_len, Kind, MAX_ENTRIES, MAX_MESSAGE_LEN};

/// A queue of entries to send, and the bytes the stream may still send.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<(Kind, FlowException)>,
    max_queued: usize,
    rate: u64,
    capacity: u64,
    tokens: u64,
    /// When the bucket was last filled (ms).
    filled_at: u64,
}

/// One message's worth of entries, all of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// [`Kind::Exceptions`] or [`Kind::Withdraw`].
    pub kind: Kind,
    /// 1 to [`MAX_ENTRIES`] entries.
    pub entries: Vec<FlowException>,
}

impl Outbox {
    /// An empty outbox sending at most `rate` bytes per second per peer,
    /// batches every `batch_ms`. The bucket starts full.
    pub fn new(max_queued: usize, rate: u64, batch_ms: u64, now: u64) -> Outbox {
        let capacity = (rate.saturating_mul(batch_ms) / 1000).max(MAX_MESSAGE_LEN as u64);
        Outbox {
            queue: VecDeque::new(),
            max_queued,
            rate,
            capacity,
            tokens: capacity,
            filled_at: now,
        }
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues `entries` as `kind`; how many fit (the rest are dropped).
    pub fn push(&mut self, kind: Kind, entries: &[FlowException]) -> usize {
        let room = self.max_queued.saturating_sub(self.queue.len());
        let n = entries.len().min(room);
        self.queue.extend(entries[..n].iter().map(|e| (kind, *e)));
        n
    }

    /// Fills the bucket for the time since the last fill.
    fn fill(&mut self, now: u64) {
        let ms = now.saturating_sub(self.filled_at);
        if ms == 0 {
            return;
        }
        let add = self.rate.saturating_mul(ms) / 1000;
        if add > 0 || self.tokens >= self.capacity {
            self.tokens = self.tokens.saturating_add(add).min(self.capacity);
            self.filled_at = now;
        }
    }

    /// Takes the batches the bucket allows at `now`, in queue order; each
    /// holds one run of one kind, at most [`MAX_ENTRIES`] entries.
    pub fn take(&mut self, now: u64) -> Vec<Batch> {
        self.fill(now);
        let mut out = Vec::new();
        while let Some(&(kind, _)) = self.queue.front() {
            let run = self
                .queue
                .iter()
                .take(MAX_ENTRIES)
                .take_while(|(k, _)| *k == kind)
                .count();
            let mut n = run;
            while n > 0 && message_len(kind, n) as u64 > self.tokens {
                n -= 1;
            }
            if n == 0 {
                break;
            }
            self.tokens -= message_len(kind, n) as u64;
            let entries = self.queue.drain(..n).map(|(_, e)| e).collect();
            out.push(Batch { kind, entries });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(flow: u64) -> FlowException {
        FlowException {
            listener: 1,
            flow,
            backend: 1,
            remaining_ms: 1,
            flags: 0,
        }
    }

    fn entries(from: u64, n: u64) -> Vec<FlowException> {
        (from..from + n).map(e).collect()
    }

    #[test]
    fn runs_of_one_kind_in_order() {
        let mut o = Outbox::new(1000, 1_000_000, 100, 0);
        o.push(Kind::Exceptions, &entries(0, 50));
        o.push(Kind::Withdraw, &entries(50, 2));
        o.push(Kind::Exceptions, &entries(52, 1));
        let b = o.take(0);
        let shape: Vec<(Kind, usize)> = b.iter().map(|b| (b.kind, b.entries.len())).collect();
        assert_eq!(
            shape,
            [
                (Kind::Exceptions, 41),
                (Kind::Exceptions, 9),
                (Kind::Withdraw, 2),
                (Kind::Exceptions, 1)
            ]
        );
        let flows: Vec<u64> = b
            .iter()
            .flat_map(|b| b.entries.iter().map(|e| e.flow))
            .collect();
        assert_eq!(flows, (0..53).collect::<Vec<_>>());
        assert!(o.is_empty());
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut o = Outbox::new(10, 1_000_000, 100, 0);
        assert_eq!(o.push(Kind::Exceptions, &entries(0, 8)), 8);
        assert_eq!(o.push(Kind::Exceptions, &entries(8, 8)), 2);
        assert_eq!(o.push(Kind::Withdraw, &entries(16, 1)), 0);
        assert_eq!(o.len(), 10);
    }

    #[test]
    fn the_bucket_paces_bytes() {
        // 14000 B/s, 100 ms batches: 1400 bytes per batch, one full message.
        let mut o = Outbox::new(10_000, 14_000, 100, 0);
        o.push(Kind::Exceptions, &entries(0, 200));
        let full = message_len(Kind::Exceptions, 41) as u64;
        let first = o.take(0);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].entries.len(), 41);
        // 4 bytes left: nothing more now.
        assert!(o.take(0).is_empty());
        // 100 ms later: 1400 more bytes, one more full message.
        let second = o.take(100);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].entries.len(), 41);
        // Over 10 s at most 10 s of bytes (plus the starting bucket) go.
        let mut sent = 2 * full;
        for t in 1..=100 {
            for b in o.take(100 + t * 100) {
                sent += message_len(b.kind, b.entries.len()) as u64;
            }
        }
        assert!(sent <= 14_000 * 10 + 1400 + full, "{sent}");
        assert!(o.is_empty(), "200 entries fit in 10 s at this rate");
    }

    #[test]
    fn a_small_budget_sends_a_smaller_message() {
        let mut o = Outbox::new(100, 1400, 100, 0);
        o.push(Kind::Exceptions, &entries(0, 41));
        assert_eq!(o.take(0)[0].entries.len(), 41);
        o.push(Kind::Exceptions, &entries(41, 41));
        // 500 ms at 1400 B/s: 700 bytes, (700 - 84) / 32 = 19 entries.
        let b = o.take(500);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].entries.len(), 19);
    }
}

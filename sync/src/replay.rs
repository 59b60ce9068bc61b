//! Replay protection: per sender, the newest epoch seen and, within it, a
//! sliding window of sequence numbers.
//!
//! A message from an older epoch than the newest seen from its sender is a
//! replay of an earlier run ([`Reject::StaleEpoch`]). A newer epoch (the
//! sender restarted) starts a new window. Within an epoch, a window of
//! [`WINDOW`] sequence numbers below the highest seen accepts messages that
//! arrive out of order once each; a duplicate, or one older than the window,
//! is [`Reject::Replayed`]. Senders are authenticated before they reach
//! this table, and it holds at most [`MAX_SENDERS`] of them.

use std::collections::HashMap;

use crate::Reject;

/// Sequence numbers below the highest seen that are still accepted once.
pub const WINDOW: u64 = 1024;
/// The most senders remembered (authenticated gateways of one fleet).
pub const MAX_SENDERS: usize = 4096;

const WORDS: usize = (WINDOW / 64) as usize;

/// Which of the last [`WINDOW`] sequence numbers were seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    highest: u64,
    /// Bit `d` is sequence `highest - d`.
    seen: [u64; WORDS],
}

impl Window {
    /// A window whose first message is `seq`.
    pub fn new(seq: u64) -> Window {
        let mut seen = [0; WORDS];
        seen[0] = 1;
        Window { highest: seq, seen }
    }

    /// The highest sequence seen.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `seq` would be accepted (without recording it).
    pub fn check(&self, seq: u64) -> Result<(), Reject> {
        if seq > self.highest {
            return Ok(());
        }
        let d = self.highest - seq;
        if d >= WINDOW || self.bit(d) {
            return Err(Reject::Replayed);
        }
        Ok(())
    }

    /// Accepts `seq` once: records it, or says why not.
    pub fn accept(&mut self, seq: u64) -> Result<(), Reject> {
        self.check(seq)?;
        if seq > self.highest {
            self.shift(seq - self.highest);
            self.highest = seq;
            self.seen[0] |= 1;
        } else {
            let d = self.highest - seq;
            self.seen[(d / 64) as usize] |= 1 << (d % 64);
        }
        Ok(())
    }

    fn bit(&self, d: u64) -> bool {
        self.seen[(d / 64) as usize] & (1 << (d % 64)) != 0
    }

    /// Moves every bit `by` places older; bits past the window fall off.
    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        for i in (0..WORDS).rev() {
            let lo = i.checked_sub(words).map_or(0, |j| self.seen[j]);
            let carry = match i.checked_sub(words + 1) {
                Some(j) if bits > 0 => self.seen[j] >> (64 - bits),
                _ => 0,
            };
            self.seen[i] = (lo << bits) | carry;
        }
    }
}

/// One sender's newest epoch and its window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sender {
    epoch: u64,
    window: Window,
}

/// Every sender's replay state.
#[derive(Debug, Default)]
pub struct Senders {
    by_id: HashMap<u64, Sender>,
}

impl Senders {
    /// Senders remembered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no sender is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Accepts message `seq` of `sender`'s `epoch` once, or says why not.
    pub fn accept(&mut self, sender: u64, epoch: u64, seq: u64) -> Result<(), Reject> {
        let full = self.by_id.len() >= MAX_SENDERS;
        match self.by_id.get_mut(&sender) {
            None if full => Err(Reject::TooManySenders),
            None => {
                self.by_id.insert(
                    sender,
                    Sender {
                        epoch,
                        window: Window::new(seq),
                    },
                );
                Ok(())
            }
            Some(s) if epoch < s.epoch => Err(Reject::StaleEpoch),
            Some(s) if epoch > s.epoch => {
                *s = Sender {
                    epoch,
                    window: Window::new(seq),
                };
                Ok(())
            }
            Some(s) => s.window.accept(seq),
        }
    }

    /// Whether `epoch` is not older than the newest seen from `sender` (a
    /// fetch's answer, checked for staleness without using the window).
    pub fn current_epoch(&self, sender: u64, epoch: u64) -> Result<(), Reject> {
        match self.by_id.get(&sender) {
            Some(s) if epoch < s.epoch => Err(Reject::StaleEpoch),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn in_order_reordered_duplicate_and_too_old() {
        let mut w = Window::new(10);
        assert_eq!(w.accept(10), Err(Reject::Replayed));
        assert_eq!(w.accept(12), Ok(()));
        assert_eq!(w.accept(11), Ok(()));
        assert_eq!(w.accept(11), Err(Reject::Replayed));
        assert_eq!(w.accept(12 + WINDOW), Ok(()));
        // 12 is now exactly WINDOW below the highest: out of the window.
        assert_eq!(w.accept(12), Err(Reject::Replayed));
        assert_eq!(w.accept(13), Ok(()));
        assert_eq!(w.accept(13), Err(Reject::Replayed));
        assert_eq!(w.highest(), 12 + WINDOW);
    }

    #[test]
    fn epochs() {
        let mut s = Senders::default();
        assert_eq!(s.accept(1, 100, 5), Ok(()));
        assert_eq!(s.accept(1, 100, 5), Err(Reject::Replayed));
        assert_eq!(s.accept(1, 99, 6), Err(Reject::StaleEpoch));
        assert_eq!(s.current_epoch(1, 99), Err(Reject::StaleEpoch));
        assert_eq!(s.current_epoch(1, 100), Ok(()));
        // A restart: sequences start again.
        assert_eq!(s.accept(1, 101, 1), Ok(()));
        assert_eq!(s.accept(1, 100, 6), Err(Reject::StaleEpoch));
        assert_eq!(s.accept(2, 1, 1), Ok(()));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn the_sender_table_is_bounded() {
        let mut s = Senders::default();
        for id in 0..MAX_SENDERS as u64 {
            assert_eq!(s.accept(id, 1, 1), Ok(()));
        }
        assert_eq!(s.accept(u64::MAX, 1, 1), Err(Reject::TooManySenders));
        // Known senders go on.
        assert_eq!(s.accept(0, 1, 2), Ok(()));
    }

    proptest! {
        /// Against a model (the set of every sequence accepted): a sequence
        /// is accepted iff it was never accepted and is within the window
        /// below the highest accepted.
        #[test]
        fn window_matches_a_set(first in 0u64..5000, seqs in prop::collection::vec(0u64..5000, 1..400)) {
            let mut w = Window::new(first);
            let mut seen = std::collections::BTreeSet::from([first]);
            for s in seqs {
                let highest = *seen.iter().next_back().unwrap();
                let want = !seen.contains(&s) && (s > highest || highest - s < WINDOW);
                prop_assert_eq!(w.accept(s).is_ok(), want, "seq {}", s);
                if want {
                    seen.insert(s);
                }
            }
        }
    }
}

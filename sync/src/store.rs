//! A bounded store of entries keyed by (listener, flow), each expiring
//! `remaining_ms` after it was stored (a newer entry for the key refreshes
//! it). When full, new keys are refused and counted: a live entry is never
//! evicted. Time is passed in (milliseconds on a monotonic clock).
//!
//! Expiry is by a min-heap of (expiry, key) with lazy deletion: a refreshed
//! entry leaves its old heap item behind, which is skipped when it comes up,
//! and the heap is rebuilt from the map when such items outnumber the
//! entries, so it stays within twice the map plus a constant.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::entry::{FlowException, FlowKey};

/// What storing an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new key.
    Added,
    /// An existing key, replaced and its expiry refreshed.
    Refreshed,
    /// A new key, but the store is full of live entries.
    Refused,
    /// Nothing to keep: `remaining_ms` was 0 (an entry under the key is
    /// removed).
    Expired,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    entry: FlowException,
    expires: u64,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    max: usize,
    map: HashMap<FlowKey, Held>,
    heap: BinaryHeap<Reverse<(u64, FlowKey)>>,
}

impl Store {
    /// An empty store that keeps at most `max` entries.
    pub fn new(max: usize) -> Store {
        Store {
            max,
            map: HashMap::new(),
            heap: BinaryHeap::new(),
        }
    }

    /// Entries stored (some may have expired since the last
    /// [`Store::expire`]).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The most entries kept.
    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Stores `e` at time `now`, expiring at `now + e.remaining_ms`.
    pub fn insert(&mut self, e: FlowException, now: u64) -> Stored {
        let key = e.key();
        if e.remaining_ms == 0 {
            self.map.remove(&key);
            return Stored::Expired;
        }
        let expires = now.saturating_add(u64::from(e.remaining_ms));
        let held = Held { entry: e, expires };
        let result = match self.map.get_mut(&key) {
            Some(h) => {
                *h = held;
                Stored::Refreshed
            }
            None => {
                if self.map.len() >= self.max {
                    self.expire(now);
                }
                if self.map.len() >= self.max {
                    return Stored::Refused;
                }
                self.map.insert(key, held);
                Stored::Added
            }
        };
        self.heap.push(Reverse((expires, key)));
        if self.heap.len() > 2 * self.map.len() + 1024 {
            self.rebuild_heap();
        }
        result
    }

    /// Removes the entry under `e`'s key if it names the same backend (a
    /// late withdrawal from one gateway does not remove a newer entry that
    /// names another backend). Whether it removed one.
    pub fn withdraw(&mut self, e: &FlowException) -> bool {
        match self.map.get(&e.key()) {
            Some(h) if h.entry.backend == e.backend => {
                self.map.remove(&e.key());
                true
            }
            _ => false,
        }
    }

    /// The live entry under `key`, its `remaining_ms` counted down to `now`.
    pub fn get(&self, key: FlowKey, now: u64) -> Option<FlowException> {
        self.map.get(&key).and_then(|h| live(h, now))
    }

    /// Removes every entry that expired by `now`; how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut removed = 0;
        while let Some(Reverse((expires, key))) = self.heap.peek().copied() {
            if expires > now {
                break;
            }
            self.heap.pop();
            // Only the item of the entry's current expiry removes it.
            if self.map.get(&key).is_some_and(|h| h.expires == expires) {
                self.map.remove(&key);
                removed += 1;
            }
        }
        removed
    }

    /// Every live entry, `remaining_ms` counted down to `now`.
    pub fn snapshot(&self, now: u64) -> Vec<FlowException> {
        self.map.values().filter_map(|h| live(h, now)).collect()
    }

    fn rebuild_heap(&mut self) {
        self.heap = self
            .map
            .iter()
            .map(|(k, h)| Reverse((h.expires, *k)))
            .collect();
    }
}

fn live(h: &Held, now: u64) -> Option<FlowException> {
    let left = h.expires.checked_sub(now).filter(|&l| l > 0)?;
    Some(FlowException {
        // Never more than the entry's own remaining_ms (a u32).
        remaining_ms: u32::try_from(left).unwrap_or(u32::MAX),
        ..h.entry
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn e(flow: u64, backend: u64, remaining_ms: u32) -> FlowException {
        FlowException {
            listener: 1,
            flow,
            backend,
            remaining_ms,
            flags: 0,
        }
    }

    #[test]
    fn expiry_refresh_and_count_down() {
        let mut s = Store::new(10);
        assert_eq!(s.insert(e(1, 5, 100), 0), Stored::Added);
        assert_eq!(s.get((1, 1), 40).unwrap().remaining_ms, 60);
        assert_eq!(s.insert(e(1, 6, 100), 50), Stored::Refreshed);
        assert_eq!(
            s.expire(100),
            0,
            "refreshed: the old expiry does not remove it"
        );
        assert_eq!(s.get((1, 1), 100).unwrap().backend, 6);
        assert_eq!(s.get((1, 1), 150), None, "expired, even before a sweep");
        assert_eq!(s.expire(150), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn full_refuses_new_keys_but_refreshes_old_ones() {
        let mut s = Store::new(2);
        assert_eq!(s.insert(e(1, 1, 1000), 0), Stored::Added);
        assert_eq!(s.insert(e(2, 1, 10), 0), Stored::Added);
        assert_eq!(s.insert(e(3, 1, 1000), 5), Stored::Refused);
        assert_eq!(s.insert(e(1, 2, 1000), 5), Stored::Refreshed);
        // Once an entry expired, its room is taken.
        assert_eq!(s.insert(e(3, 1, 1000), 10), Stored::Added);
        assert_eq!(s.len(), 2);
        assert_eq!(s.get((1, 2), 10), None);
    }

    #[test]
    fn withdraw_needs_the_same_backend() {
        let mut s = Store::new(10);
        s.insert(e(1, 5, 1000), 0);
        assert!(!s.withdraw(&e(1, 6, 0)));
        assert!(s.withdraw(&e(1, 5, 0)));
        assert!(!s.withdraw(&e(1, 5, 0)));
        assert_eq!(s.insert(e(2, 5, 0), 0), Stored::Expired);
        assert!(s.is_empty());
    }

    proptest! {
        /// Against a model map: after any operations, `get` agrees and the
        /// heap stays bounded.
        #[test]
        fn matches_a_model(ops in prop::collection::vec((0u8..3, 0u64..20, 0u64..3, 0u32..50, 0u64..10), 1..300)) {
            let mut s = Store::new(8);
            let mut model: HashMap<u64, (u64, u64)> = HashMap::new(); // flow -> (backend, expires)
            let mut now = 0u64;
            for (op, flow, backend, rem, dt) in ops {
                now += dt;
                model.retain(|_, (_, exp)| *exp > now);
                match op {
                    0 => {
                        let r = s.insert(e(flow, backend, rem), now);
                        if rem == 0 {
                            model.remove(&flow);
                        } else if model.contains_key(&flow) || model.len() < 8 {
                            model.insert(flow, (backend, now + u64::from(rem)));
                            prop_assert!(matches!(r, Stored::Added | Stored::Refreshed));
                        } else {
                            prop_assert_eq!(r, Stored::Refused);
                        }
                    }
                    1 => {
                        let had = model.get(&flow).is_some_and(|(b, _)| *b == backend);
                        // A removed-but-expired entry may still be in the map.
                        let did = s.withdraw(&e(flow, backend, 0));
                        prop_assert!(did || !had);
                        if had {
                            model.remove(&flow);
                        }
                    }
                    _ => {
                        s.expire(now);
                    }
                }
                for f in 0..20 {
                    let got = s.get((1, f), now).map(|x| (x.backend, now + u64::from(x.remaining_ms)));
                    prop_assert_eq!(got, model.get(&f).copied(), "flow {}", f);
                }
                prop_assert!(s.heap.len() <= 2 * s.map.len() + 1024 + 1);
                prop_assert!(s.len() <= 8);
            }
        }
    }
}

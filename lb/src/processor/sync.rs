//! Flow-exception sync, the worker's part: finding the flows whose backend
//! is not what the (current or staged) Maglev table picks, so the control
//! plane can tell peer gateways about them, and holding what peers told us
//! ("learned" entries) for the flows ECMP may move here.
//!
//! Every gateway picks the same backend for a flow while every gateway uses
//! the same table. A flow is an *exception* when its backend differs from
//! what the table picks: it began under an older table (a backend was added,
//! re-weighted or came back) or while a new version was staged. Only
//! exceptions need sharing; a peer that gets a packet of one (because its
//! gateway went away) and has no entry for it asks its learned entries
//! before the table.
//!
//! Pure like the rest of the processor: the worker drains [`SyncState::drain`]
//! after a burst and feeds [`LearnOp`]s in; no I/O here. The flow table must
//! keep each flow's scheduler hash ([`FlowTable::with_aux`]), since a
//! fingerprint cannot be turned back into anything a peer understands.

use crate::flow_table::{Aux, FlowTable, TableFull, Walked, WAYS};
use crate::ids::BackendId;
use crate::snapshot::Snapshot;

use super::value::{BACKEND_BITS, CLOSING, PINNED};

/// A flow to tell peers about, as the worker knows it (the control plane
/// turns slot and backend id into names peers share).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    /// The listener's counter slot.
    pub listener_slot: u16,
    /// The listener scheduler's hash of the flow.
    pub hash: u64,
    /// Its backend.
    pub backend: BackendId,
    /// Milliseconds it lives without packets.
    pub remaining_ms: u32,
    /// The client closed it (FIN or RST seen).
    pub closing: bool,
}

/// What the control plane tells a worker about peers' exceptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnOp {
    /// A peer's flow of listener `listener_slot` with scheduler hash `hash`
    /// goes to `backend`, for `remaining_ms` without packets.
    Add {
        /// The listener's counter slot (in this gateway's snapshot).
        listener_slot: u16,
        /// The listener scheduler's hash of the flow.
        hash: u64,
        /// The backend (in this gateway's snapshot).
        backend: BackendId,
        /// How long to keep it.
        remaining_ms: u32,
        /// The client closed it.
        closing: bool,
    },
    /// A peer's flow ended or is no exception any more.
    Remove {
        /// The listener's counter slot.
        listener_slot: u16,
        /// The listener scheduler's hash of the flow.
        hash: u64,
    },
}

/// Sync counters of one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounters {
    /// Exceptions handed to the control plane (walks and new flows).
    pub exceptions: u64,
    /// Exceptions not handed over because the pending list was full (a
    /// later walk finds them again).
    pub exceptions_dropped: u64,
    /// Whole walks of the flow table finished.
    pub walks: u64,
    /// Learned entries stored.
    pub learned: u64,
    /// Learned entries refused: the learned table was full.
    pub learned_full: u64,
    /// Packets of flows this worker did not track that a learned entry
    /// sent to its backend (the flow then takes an entry here).
    pub learned_used: u64,
    /// SYNs stored because a staged table would move them.
    pub pinned: u64,
    /// Learned entries held now (live or not yet swept).
    pub learned_entries: u64,
}

impl SyncCounters {
    /// How many counters there are ([`SyncCounters::words`]).
    pub const WORDS: usize = 8;

    /// The counters in a fixed order (for publication as plain words).
    pub fn words(&self) -> [u64; Self::WORDS] {
        [
            self.exceptions,
            self.exceptions_dropped,
            self.walks,
            self.learned,
            self.learned_full,
            self.learned_used,
            self.pinned,
            self.learned_entries,
        ]
    }

    /// The counters from [`SyncCounters::words`]' order.
    pub fn from_words(w: [u64; Self::WORDS]) -> Self {
        SyncCounters {
            exceptions: w[0],
            exceptions_dropped: w[1],
            walks: w[2],
            learned: w[3],
            learned_full: w[4],
            learned_used: w[5],
            pinned: w[6],
            learned_entries: w[7],
        }
    }

    /// Adds another worker's.
    pub fn add(&mut self, o: &SyncCounters) {
        self.exceptions += o.exceptions;
        self.exceptions_dropped += o.exceptions_dropped;
        self.walks += o.walks;
        self.learned += o.learned;
        self.learned_full += o.learned_full;
        self.learned_used += o.learned_used;
        self.pinned += o.pinned;
        self.learned_entries += o.learned_entries;
    }
}

/// A worker's sync state: the learned entries, the pending exceptions and
/// where the walk of the flow table is.
pub struct SyncState {
    /// Learned entries by [`learned_key`]; value: backend id, `CLOSING`.
    learned: FlowTable,
    /// Exceptions found and not yet taken by the worker (bounded: never
    /// grows past its capacity).
    pending: Vec<Exception>,
    /// Next bucket of the walk.
    walk_at: usize,
    /// Buckets left in the current walk (0: no walk running).
    walk_left: usize,
    /// Counters.
    pub counters: SyncCounters,
}

impl std::fmt::Debug for SyncState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncState")
            .field("learned", &self.learned.len())
            .field("pending", &self.pending.len())
            .field("walk_left", &self.walk_left)
            .finish_non_exhaustive()
    }
}

/// The learned table's key for a listener's flow: its scheduler hash mixed
/// with the listener slot (the same hash may be another listener's flow).
#[inline(always)]
pub fn learned_key(listener_slot: u16, hash: u64) -> u64 {
    hash ^ (u64::from(listener_slot) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl SyncState {
    /// State for up to `learned_flows` learned entries and `pending`
    /// exceptions awaiting the worker (at least 4; all memory allocated
    /// here).
    pub fn new(learned_flows: usize, pending: usize) -> Self {
        SyncState {
            learned: FlowTable::new(learned_flows),
            pending: Vec::with_capacity(pending.max(WAYS)),
            walk_at: 0,
            walk_left: 0,
            counters: SyncCounters::default(),
        }
    }

    /// The counters, with the learned table's occupancy.
    pub fn counters(&self) -> SyncCounters {
        SyncCounters {
            learned_entries: self.learned.len() as u64,
            ..self.counters
        }
    }

    /// The learned backend of listener `slot`'s flow with scheduler hash
    /// `hash`, with its `CLOSING` bit, if a live entry exists.
    #[inline]
    pub(super) fn recall(&self, slot: u16, hash: u64, now: u32) -> Option<u32> {
        if self.learned.is_empty() {
            return None;
        }
        self.learned.peek(learned_key(slot, hash), now)
    }

    /// [`SyncState::recall`] with the entry's remaining lifetime (for
    /// `dnlb explain`).
    pub(super) fn recall_remaining(&self, slot: u16, hash: u64, now: u32) -> Option<(u32, u32)> {
        self.learned.peek_remaining(learned_key(slot, hash), now)
    }

    /// Applies what a peer said.
    pub fn learn(&mut self, op: LearnOp, now: u32) {
        match op {
            LearnOp::Add {
                listener_slot,
                hash,
                backend,
                remaining_ms,
                closing,
            } => {
                let value = (backend.0 & BACKEND_BITS) | if closing { CLOSING } else { 0 };
                let key = learned_key(listener_slot, hash);
                match self
                    .learned
                    .insert(key, value, now, remaining_ms.clamp(1, 1 << 30))
                {
                    Ok(()) => self.counters.learned += 1,
                    Err(TableFull) => self.counters.learned_full += 1,
                }
            }
            LearnOp::Remove {
                listener_slot,
                hash,
            } => {
                self.learned.remove(learned_key(listener_slot, hash));
            }
        }
    }

    /// Frees expired learned entries in the next `max_buckets` buckets.
    pub fn sweep(&mut self, now: u32, max_buckets: usize) -> usize {
        self.learned.sweep(now, max_buckets)
    }

    /// Queues an exception; counts it as dropped when the list is full.
    #[inline]
    pub(super) fn share(&mut self, e: Exception) {
        if self.pending.len() < self.pending.capacity() {
            self.pending.push(e);
            self.counters.exceptions += 1;
        } else {
            self.counters.exceptions_dropped += 1;
        }
    }

    /// Takes the exceptions found since the last call, for the worker to
    /// hand on (the list keeps its memory).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Exception> {
        self.pending.drain(..)
    }

    /// Takes the first `n` exceptions found (all if fewer); the rest stay.
    pub fn drain_first(&mut self, n: usize) -> std::vec::Drain<'_, Exception> {
        let n = n.min(self.pending.len());
        self.pending.drain(..n)
    }

    /// How many exceptions are waiting to be taken.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Starts a walk over the whole flow table (from wherever the last one
    /// stopped), dropping one under way: call it when a new snapshot or a
    /// staged version arrives, and every so often to refresh what peers
    /// hold before it expires.
    pub fn restart_walk(&mut self, flows: &FlowTable) {
        self.walk_left = flows.buckets();
    }

    /// Whether a walk is under way.
    pub fn walking(&self) -> bool {
        self.walk_left > 0
    }

    /// Continues the walk over at most `max_buckets` buckets of `flows`,
    /// sharing every live flow whose backend is not what its listener's
    /// target table ([`crate::snapshot::ListenerState::target_table`])
    /// picks. Stops early, to resume at the next bucket, when the pending
    /// list has no room for a whole bucket's entries. Returns whether the
    /// walk is finished.
    pub fn walk(
        &mut self,
        flows: &FlowTable,
        snap: &Snapshot,
        now: u32,
        max_buckets: usize,
    ) -> bool {
        if self.walk_left == 0 {
            return true;
        }
        let n = max_buckets.min(self.walk_left);
        // Whole buckets only, each while the pending list has room for all
        // of its entries: a walk that stopped within a bucket would find
        // its first exceptions again on resuming, and never pass it while
        // the list drains slowly.
        let mut visited = 0;
        let mut found = 0;
        let pending = &mut self.pending;
        while visited < n && pending.capacity() - pending.len() >= WAYS {
            self.walk_at = flows.walk(self.walk_at, 1, now, |e: Walked| {
                if let Some(x) = exception(snap, e, now) {
                    pending.push(x);
                    found += 1;
                }
                true
            });
            visited += 1;
        }
        self.counters.exceptions += found;
        self.walk_left -= visited;
        if self.walk_left == 0 {
            self.counters.walks += 1;
        }
        self.walk_left == 0
    }
}

/// Flow entry `e` as an exception, if its backend is not what its
/// listener's target table picks (and both are still in `snap`; a pinned
/// SYN is not shared before its first ACK).
fn exception(snap: &Snapshot, e: Walked, now: u32) -> Option<Exception> {
    if e.value & PINNED != 0 {
        return None;
    }
    let Aux {
        hash,
        listener_slot,
        ..
    } = e.aux;
    let l = snap.listener_at_slot(listener_slot)?;
    let backend = BackendId(e.value & BACKEND_BITS);
    let b = snap.backend(backend)?;
    if !b.usable || b.group != l.group || !l.is_exception(hash, backend, b.zone_tag) {
        return None;
    }
    Some(Exception {
        listener_slot,
        hash,
        backend,
        remaining_ms: e.expiry.wrapping_sub(now),
        closing: e.value & CLOSING != 0,
    })
}

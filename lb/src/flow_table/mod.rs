//! Per-worker connection tracking: flow fingerprint → value (a backend id),
//! with idle expiry.
//!
//! Each worker owns one [`FlowTable`]; nothing is shared, so there are no
//! locks or atomics. All memory is allocated by [`FlowTable::new`]; no method
//! allocates afterwards.
//!
//! # Layout
//!
//! An entry is 16 bytes: a 64-bit flow fingerprint (0 marks an empty slot), a
//! `u32` value and a `u32` expiry tick. Four entries make a bucket, one 64-byte
//! cache line. Every fingerprint has two candidate buckets, chosen by
//! independent bits of the fingerprint (bits 0..32 and 32..64); an insert
//! takes the first free slot of the first bucket, then of the second, and only
//! if both are full of live entries does it search (breadth-first, over at
//! most 40 slots, on a stack array) for an entry that can move to its other
//! bucket, directly or by moving one more (cuckoo displacement, as in DPDK's
//! `rte_hash`). So most flows sit in their first bucket (a hit usually reads
//! one cache line), and with random fingerprints the first [`TableFull`] comes
//! at about 85% of the slots, 1.7× the nominal capacity. The bucket count is a
//! power of two sized so that the requested number of flows fills at most
//! half the slots.
//!
//! # Overflow counts
//!
//! Beside the buckets, one byte per bucket counts the entries whose first
//! bucket it is but that sit in their second (as F14 and Swiss tables keep
//! per group). While a bucket's count is 0, a flow absent from it is absent
//! from the table: a lookup that misses there is final, so a new flow reads
//! one bucket line instead of two (and its count, 64 buckets to a line, in
//! an array 1/64 of the table's size). Every write of a slot keeps the
//! counts exact: an entry placed in its second bucket adds one, an entry
//! freed or overwritten there (expired, removed, swept, moved back by a
//! displacement) takes one off. A count that reaches 255 stays there (a
//! bucket that popular is read twice until [`FlowTable::clear`]).
//!
//! # Cost
//!
//! A lookup in a cache-resident table costs a couple of ns; in a 1M-flow table
//! (32 MiB) every lookup is a cache and TLB miss, about 25 ns on the
//! development machine. [`FlowTable::lookup_burst`] (or
//! [`FlowTable::prefetch`] before a burst of lookups) overlaps those misses
//! and gains about 10% there; backing the table with huge pages would remove
//! the TLB misses.
//!
//! # Fingerprints
//!
//! The table stores a fingerprint, not the 5-tuple, and treats equal
//! fingerprints as the same flow. Compute it with [`fingerprint_v4`] /
//! [`fingerprint_v6`]: the full 5-tuple's mix (the 64-bit multiply-fold the
//! scheduler's hash finishes) through a hash keyed by a 64-bit seed. Give
//! every worker its own random seed: then an attacker who does not know the
//! seed cannot aim for one bucket. Tuples of equal mix share a fingerprint,
//! but they share the scheduler's backend too, and two crafted tuples that
//! share an entry can do nothing a spoofed packet of either could not. Chance
//! collisions are negligible (64 bits: P(any collision among 10^6 flows) ≈
//! 10^12 / 2^65 ≈ 3·10^-8). A fingerprint of 0 is stored as 1 (0 marks empty
//! slots); every method applies that mapping, so callers need not.
//!
//! # Time
//!
//! There is no clock here: `now` is a `u32` tick count supplied by the caller,
//! in a unit of its choosing (seconds, milliseconds, …). An entry refreshed or
//! inserted at `now` with `timeout` lives while `now' < now + timeout`,
//! compared with wrapping arithmetic (`(expiry - now') as i32 > 0`), so the
//! tick counter may wrap around `u32::MAX`. Hence:
//!
//! - timeouts must be below 2^31 ticks (and at least 1: a timeout of 0 makes
//!   an entry that is already expired);
//! - an expired entry that is never looked up, reused or swept would appear
//!   live again 2^31 ticks after it expired, so the caller must sweep the
//!   whole table (see [`FlowTable::sweep`], [`FlowTable::buckets`]) well
//!   within every 2^31 − (largest timeout) ticks.
//!
//! Expired entries are reclaimed lazily: a lookup that finds one frees it, an
//! insert reuses it, and [`FlowTable::sweep`] frees them incrementally.
//!
//! # What a flow was scheduled by
//!
//! A table made with [`FlowTable::with_aux`] also keeps, beside each slot, a
//! 16-byte [`Aux`]: the scheduler hash and listener slot of the flow (what
//! [`FlowTable::insert_with`] was given), in a separate array that only
//! inserts write and [`FlowTable::walk`] reads, so lookups touch the same
//! one cache line as without it. That is what lets a worker re-examine its
//! flows under a new Maglev table (flow-exception sync) although a
//! fingerprint cannot be turned back into a 5-tuple.

use crate::hugepage::HugeArray;
use core::fmt;

mod insert;

/// Entries per bucket.
pub const WAYS: usize = 4;

/// Slots the displacement search of [`FlowTable::insert`] may visit: the 8 of
/// the two candidate buckets and the 32 of their entries' other buckets, so a
/// chain moves at most 2 entries and a failing insert reads at most 42
/// buckets. Measured with random fingerprints at 1M flows (2^21 slots):
///
/// | nodes | first `TableFull` at | cost of a failing insert |
/// | ---: | ---: | ---: |
/// | 8 (one move) | 56% of slots | 0.34 µs |
/// | **40** | 84–86% | 1.6 µs |
/// | 168 | 93% | 5.4 µs |
///
/// 40 keeps a full table cheap to bounce off during a flood of new flows
/// while still filling to about 1.7× the nominal capacity.
const BFS_NODES: usize = 40;

/// After this many displacement searches in a row found no room, the table
/// is taken to be full: of the next [`SATURATED_RETRY`] inserts that would
/// search, only the last does; the others fail at once, for the cost of
/// scanning their two buckets (about what a hit costs), so a flood of new
/// flows into a full table cannot slow the worker. The state ends
/// [`SATURATED_MS`] after it began (entries may have expired since); a
/// search that finds room halves the count of failures.
const SATURATED_AFTER: u32 = 8;
/// See [`SATURATED_AFTER`].
const SATURATED_RETRY: u32 = 256;
/// See [`SATURATED_AFTER`].
const SATURATED_MS: u32 = 50;

/// Flows tracked above which [`FlowTable::worth_prefetching`]: 8192 flows
/// touch at most 16384 buckets of 64 bytes (1 MiB, within a server core's
/// L2 cache). Below, a burst's prefetch pass only re-reads every frame
/// (about 65 instructions a packet in the LB worker-loop bench).
pub const PREFETCH_MIN_FLOWS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Entry {
    /// 0 = empty slot.
    fp: u64,
    value: u32,
    expiry: u32,
}

impl Entry {
    const EMPTY: Entry = Entry {
        fp: 0,
        value: 0,
        expiry: 0,
    };
}

#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    e: [Entry; WAYS],
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        e: [Entry::EMPTY; WAYS],
    };

    /// The first free (empty or expired) way at `now`, from a mask of the
    /// ways rather than a branch on each way's expiry: which way is free is
    /// random, and the mispredicted branches cost a new flow ~8 % of its
    /// time (the test for an empty way stays a branch: once the table has
    /// filled it is nearly always false).
    #[inline(always)]
    fn free_way(&self, now: u32) -> Option<usize> {
        let mut free = 0u32;
        for (w, e) in self.e.iter().enumerate() {
            free |= u32::from(e.fp == 0 || !live(e.expiry, now)) << w;
        }
        (free != 0).then(|| free.trailing_zeros() as usize % WAYS)
    }
}

/// What a flow was scheduled by, kept beside its slot in tables made with
/// [`FlowTable::with_aux`] (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Aux {
    /// The listener scheduler's hash of the flow (the Maglev table index
    /// comes from it; the same on every gateway).
    pub hash: u64,
    /// The listener's counter slot (stable for a name across reloads).
    pub listener_slot: u16,
    /// Free for the caller's flags.
    pub flags: u16,
}

const _: () = assert!(core::mem::size_of::<Aux>() == 16);

/// A live entry as [`FlowTable::walk`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// The (normalised) fingerprint.
    pub fp: u64,
    /// The stored value.
    pub value: u32,
    /// When it expires (ticks).
    pub expiry: u32,
    /// What it was scheduled by.
    pub aux: Aux,
}

const _: () = assert!(core::mem::size_of::<Entry>() == 16);
const _: () = assert!(core::mem::size_of::<Bucket>() == 64);
const _: () = assert!(core::mem::align_of::<Bucket>() == 64);

/// Whether an entry with `expiry` is still live at `now` (wrapping compare).
#[inline(always)]
fn live(expiry: u32, now: u32) -> bool {
    (expiry.wrapping_sub(now) as i32) > 0
}

/// Fingerprint 0 marks an empty slot; it is stored as 1.
#[inline(always)]
fn norm(fp: u64) -> u64 {
    fp | u64::from(fp == 0)
}

/// What [`FlowTable::probe`] looked for: the fingerprint as the table keeps
/// it, kept between a burst's two passes. Its buckets are not kept: the
/// first is the fingerprint masked (what indexing a bucket does anyway),
/// and the second is worked out only when the first does not hold the flow
/// (8 bytes instead of 16, and none of the second bucket's arithmetic for
/// a tracked flow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    /// The fingerprint as the table keeps it (never 0; the same entry as
    /// the fingerprint given).
    pub fp: u64,
}

/// [`FlowTable::insert`] found no free or expired slot for a new flow; no live
/// entry was evicted. The caller falls back to the stateless hash and counts
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flow table full")
    }
}

impl std::error::Error for TableFull {}

/// A fixed-size table of flows with idle expiry, owned by one worker. See the
/// module docs for layout, fingerprints and the time rules.
pub struct FlowTable {
    buckets: HugeArray<Bucket>,
    /// Per bucket, the entries whose first bucket it is that sit in their
    /// second (see the module docs; 255 sticks).
    overflow: HugeArray<u8>,
    /// One [`Aux`] per slot (bucket `b`, way `w` at `b * WAYS + w`), for
    /// tables made with [`FlowTable::with_aux`]; empty otherwise.
    aux: Option<HugeArray<Aux>>,
    /// Occupied slots: live entries plus expired ones not yet reclaimed.
    len: usize,
    /// Next bucket [`FlowTable::sweep`] visits.
    cursor: usize,
    /// The (normalised) fingerprint of the last [`FlowTable::lookup`] that
    /// missed, until the next insert (0: none). Only an insert adds entries,
    /// so this flow is known to be absent: an insert of it (a new flow,
    /// stored right after its lookup missed) skips the search for its entry.
    last_miss: u64,
    /// Recent displacement searches that found no room (at most
    /// [`SATURATED_AFTER`]; halved by one that did).
    failed_searches: u32,
    /// Inserts still to fail without a search (see [`SATURATED_AFTER`]).
    skip_searches: u32,
    /// When the table was last found full (milliseconds).
    saturated_at: u32,
    /// Displacement searches made (for tests and diagnostics).
    searches: u64,
}

impl fmt::Debug for FlowTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowTable")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("buckets", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

impl FlowTable {
    /// A table for `capacity_flows` flows at about 50% load: the number of
    /// 4-slot buckets is the power of two at or above `capacity_flows / 2`
    /// (at least 2). All memory is allocated here (65 bytes per bucket, its
    /// line and its overflow count: 32.5 MiB for 1,000,000 flows).
    ///
    /// # Panics
    ///
    /// If the table would need more than 2^32 buckets (256 GiB).
    pub fn new(capacity_flows: usize) -> FlowTable {
        let slots = capacity_flows
            .max(1)
            .checked_mul(2)
            .expect("flow table too large");
        let n = slots
            .div_ceil(WAYS)
            .checked_next_power_of_two()
            .expect("flow table too large")
            .max(2);
        assert!(n as u64 <= 1 << 32, "flow table too large");
        FlowTable {
            buckets: HugeArray::filled(n, Bucket::EMPTY),
            overflow: HugeArray::filled(n, 0),
            aux: None,
            len: 0,
            cursor: 0,
            last_miss: 0,
            failed_searches: 0,
            skip_searches: 0,
            saturated_at: 0,
            searches: 0,
        }
    }

    /// A table like [`FlowTable::new`]'s that also keeps an [`Aux`] per
    /// slot (16 bytes more per slot: 64 MiB in all for 1,000,000 flows).
    pub fn with_aux(capacity_flows: usize) -> FlowTable {
        let mut t = FlowTable::new(capacity_flows);
        t.aux = Some(HugeArray::filled(t.buckets.len() * WAYS, Aux::default()));
        t
    }

    /// The bucket index mask: the number of buckets (a power of two) less
    /// one. The buckets' own, so that indexing a bucket masked with it
    /// again costs nothing.
    #[inline(always)]
    fn mask(&self) -> usize {
        self.buckets.mask()
    }

    /// The first candidate bucket of a (normalised) fingerprint.
    #[inline(always)]
    fn first(&self, fp: u64) -> usize {
        fp as usize & self.mask()
    }

    /// The two candidate buckets of a (normalised) fingerprint; always
    /// distinct.
    #[inline(always)]
    fn candidates(&self, fp: u64) -> (usize, usize) {
        let b1 = self.first(fp);
        let b2 = (fp >> 32) as usize & self.mask();
        (b1, b2 ^ usize::from(b1 == b2))
    }

    /// Bucket `b` of [`FlowTable::candidates`] (already within the mask;
    /// the table's length is a power of two): without a bounds check on the
    /// packet path.
    #[inline(always)]
    fn bucket(&self, b: usize) -> &Bucket {
        debug_assert!(b <= self.mask());
        self.buckets.masked(b)
    }

    /// [`FlowTable::bucket`], mutable.
    #[inline(always)]
    fn bucket_mut(&mut self, b: usize) -> &mut Bucket {
        debug_assert!(b <= self.mask());
        self.buckets.masked_mut(b)
    }

    /// The backend stored for `fp` if its entry is live at `now`; a hit
    /// refreshes the entry to expire at `now + refresh_timeout`. An expired
    /// entry is a miss (and its slot is freed).
    ///
    /// A miss is remembered (see [`FlowTable::last_miss`]), so that an insert
    /// of the same flow right after it need not look for the flow again.
    #[inline]
    pub fn lookup(&mut self, fp: u64, now: u32, refresh_timeout: u32) -> Option<u32> {
        self.lookup_in(norm(fp), now, refresh_timeout)
    }

    /// [`FlowTable::lookup`] of normalised `fp`: its first bucket, then,
    /// if that bucket has overflowed (its index worked out only now), its
    /// second.
    #[inline(always)]
    fn lookup_in(&mut self, fp: u64, now: u32, refresh_timeout: u32) -> Option<u32> {
        let b1 = self.first(fp);
        if let Some(found) = self.lookup_bucket(b1, fp, now, refresh_timeout) {
            return found;
        }
        if *self.overflow.masked(b1) != 0 {
            let (_, b2) = self.candidates(fp);
            if let Some(found) = self.lookup_bucket(b2, fp, now, refresh_timeout) {
                return found;
            }
        }
        self.last_miss = fp;
        None
    }

    /// Counts entry `fp` placed in bucket `b` (see the module docs on
    /// overflow counts).
    #[inline(always)]
    fn note_placed(&mut self, b: usize, fp: u64) {
        let first = self.first(fp);
        if first != b {
            let c = self.overflow.masked_mut(first);
            *c = c.saturating_add(1);
        }
    }

    /// Counts entry `fp` (0: an empty slot, nothing) gone from bucket `b`.
    #[inline(always)]
    fn note_freed(&mut self, b: usize, fp: u64) {
        let first = self.first(fp);
        if fp != 0 && first != b {
            let c = self.overflow.masked_mut(first);
            if *c != u8::MAX {
                *c -= 1;
            }
        }
    }

    /// [`FlowTable::lookup_in`] of bucket `b`: `None` if it does not hold
    /// `fp`, else what the lookup returns (an expired entry is freed there).
    #[inline(always)]
    fn lookup_bucket(
        &mut self,
        b: usize,
        fp: u64,
        now: u32,
        refresh_timeout: u32,
    ) -> Option<Option<u32>> {
        for e in self.bucket_mut(b).e.iter_mut() {
            if e.fp == fp {
                if live(e.expiry, now) {
                    e.expiry = now.wrapping_add(refresh_timeout);
                    return Some(Some(e.value));
                }
                *e = Entry::EMPTY;
                self.len -= 1;
                self.last_miss = fp;
                self.note_freed(b, fp);
                return Some(None);
            }
        }
        None
    }

    /// The first free (empty or expired) slot of bucket `b1`, else of `b2`:
    /// where [`insert`](Self::insert) puts a flow that is absent.
    #[inline(always)]
    fn free_slot(&self, b1: usize, b2: usize, now: u32) -> Option<(usize, usize)> {
        [b1, b2]
            .into_iter()
            .find_map(|b| self.bucket(b).free_way(now).map(|w| (b, w)))
    }

    /// Starts loading what a lookup of `fp` reads first into the cache: its
    /// first bucket and that bucket's overflow count (a hint; call it for a
    /// whole burst before looking any of it up).
    #[inline(always)]
    pub fn prefetch_fp(&self, fp: u64) {
        self.probe(fp);
    }

    /// [`FlowTable::prefetch_fp`], keeping where it looked: a
    /// [`FlowTable::lookup_probe`] of the same flow later in the burst
    /// starts from there.
    #[inline(always)]
    pub fn probe(&self, fp: u64) -> Probe {
        self.probe_with::<true>(fp)
    }

    /// [`FlowTable::probe`], starting to load the first bucket's overflow
    /// count only if `BOTH`: a tracked flow is nearly always in its first
    /// bucket (an insert takes the first free slot of the first bucket,
    /// then of the second), so traffic of tracked flows need not load
    /// more; a new flow misses there and reads the count, and the second
    /// bucket only if the count is not 0 (not loaded ahead: a new flow
    /// rarely reads it at the load the table is sized for).
    #[inline(always)]
    pub fn probe_with<const BOTH: bool>(&self, fp: u64) -> Probe {
        let fp = norm(fp);
        let b1 = self.first(fp);
        crate::prefetch::prefetch(self.bucket(b1));
        if BOTH {
            crate::prefetch::prefetch(self.overflow.masked(b1));
        }
        Probe { fp }
    }

    /// [`FlowTable::lookup`] of the flow `p` probed (in this table, which
    /// has not been resized since: its buckets are a function of the
    /// fingerprint and the table's size only).
    #[inline(always)]
    pub fn lookup_probe(&mut self, p: Probe, now: u32, refresh_timeout: u32) -> Option<u32> {
        // `probe` normalized the fingerprint (0, the empty slot's, is never
        // looked up).
        debug_assert_ne!(p.fp, 0);
        self.lookup_in(p.fp, now, refresh_timeout)
    }

    /// The value stored for `fp` if its entry is live at `now`, without
    /// refreshing it (e.g. for an ICMP error about the flow, which must not
    /// keep the flow alive). Changes nothing.
    #[inline]
    pub fn peek(&self, fp: u64, now: u32) -> Option<u32> {
        self.peek_remaining(fp, now).map(|(value, _)| value)
    }

    /// [`peek`](Self::peek) with the entry's remaining lifetime at `now`
    /// (milliseconds until it expires without another packet): what a
    /// diagnostic shows. Changes nothing.
    pub fn peek_remaining(&self, fp: u64, now: u32) -> Option<(u32, u32)> {
        let fp = norm(fp);
        let (b1, b2) = self.candidates(fp);
        [b1, b2].into_iter().find_map(|b| {
            self.bucket(b)
                .e
                .iter()
                .find(|e| e.fp == fp)
                .and_then(|e| live(e.expiry, now).then(|| (e.value, e.expiry.wrapping_sub(now))))
        })
    }

    /// Prefetches the first bucket and overflow count of every fingerprint
    /// in `fps` ([`FlowTable::prefetch_fp`]), so
    /// the cache misses of a burst overlap instead of being paid one after
    /// another by the lookups that follow.
    #[inline]
    pub fn prefetch(&self, fps: &[u64]) {
        for &fp in fps {
            self.prefetch_fp(fp);
        }
    }

    /// [`lookup`](Self::lookup) for a burst: `out[i] = lookup(fps[i], now,
    /// timeouts[i])`, after [`prefetch`](Self::prefetch)ing every bucket if
    /// the table tracks more flows than the caches hold
    /// ([`FlowTable::worth_prefetching`]; below, the extra pass only costs
    /// time).
    ///
    /// # Panics
    ///
    /// If `timeouts` or `out` is shorter than `fps`.
    pub fn lookup_burst(
        &mut self,
        fps: &[u64],
        now: u32,
        timeouts: &[u32],
        out: &mut [Option<u32>],
    ) {
        assert!(timeouts.len() >= fps.len() && out.len() >= fps.len());
        if self.worth_prefetching() {
            self.prefetch(fps);
        }
        for ((&fp, &t), o) in fps.iter().zip(timeouts).zip(out.iter_mut()) {
            *o = self.lookup(fp, now, t);
        }
    }

    /// Stores `value` for `fp`, live until `now + timeout`.
    ///
    /// If `fp` is already present (live or expired) its value and expiry are
    /// replaced. Otherwise the flow takes an empty or expired slot in one of
    /// its two buckets, possibly after moving up to 2 live entries to their
    /// other buckets. A live entry is never evicted: when no slot can be found the
    /// table is unchanged and this returns [`TableFull`].
    #[inline]
    pub fn insert(&mut self, fp: u64, value: u32, now: u32, timeout: u32) -> Result<(), TableFull> {
        self.insert_inner(fp, value, now, timeout, None)
    }

    /// [`insert`](Self::insert), also recording what the flow was scheduled
    /// by (kept only by tables made with [`FlowTable::with_aux`]; an entry
    /// already present gets the new `aux`).
    #[inline]
    pub fn insert_with(
        &mut self,
        fp: u64,
        value: u32,
        now: u32,
        timeout: u32,
        aux: Aux,
    ) -> Result<(), TableFull> {
        self.insert_inner(fp, value, now, timeout, Some(aux))
    }

    /// Removes `fp`'s entry, returning its value whether or not it had expired
    /// (`None` if there was none, e.g. because an expired entry was already
    /// reclaimed).
    pub fn remove(&mut self, fp: u64) -> Option<u32> {
        let fp = norm(fp);
        let (b1, b2) = self.candidates(fp);
        for b in [b1, b2] {
            for e in self.bucket_mut(b).e.iter_mut() {
                if e.fp == fp {
                    let v = e.value;
                    *e = Entry::EMPTY;
                    self.len -= 1;
                    self.note_freed(b, fp);
                    return Some(v);
                }
            }
        }
        None
    }

    /// Frees the expired entries of the next `max_buckets` buckets (from a
    /// cursor that wraps around the table) and returns how many it freed.
    ///
    /// Call it every poll or every tick with a small `max_buckets` so the
    /// whole table is visited well within 2^31 ticks (see the module docs);
    /// `buckets()` calls cover the whole table.
    pub fn sweep(&mut self, now: u32, max_buckets: usize) -> usize {
        let mut freed = 0;
        for _ in 0..max_buckets.min(self.buckets.len()) {
            let b = self.cursor;
            for w in 0..WAYS {
                let e = self.buckets[b].e[w];
                if e.fp != 0 && !live(e.expiry, now) {
                    self.buckets[b].e[w] = Entry::EMPTY;
                    self.note_freed(b, e.fp);
                    freed += 1;
                }
            }
            self.cursor = (b + 1) & self.mask();
        }
        self.len -= freed;
        freed
    }

    /// Calls `f` with every entry live at `now` in the `max_buckets` buckets
    /// from bucket `start` (wrapping around the table), with its [`Aux`]
    /// (all zero in a table without them), until `f` returns false. Returns
    /// the bucket to start the next call at: after the last bucket visited
    /// whole (a bucket is visited again if `f` stopped within it). Changes
    /// nothing, so it may run interleaved with lookups and inserts; an entry
    /// moved meanwhile by an insert's displacement may be seen twice or not
    /// at all in one pass.
    pub fn walk(
        &self,
        start: usize,
        max_buckets: usize,
        now: u32,
        mut f: impl FnMut(Walked) -> bool,
    ) -> usize {
        let mut b = start & self.mask();
        for _ in 0..max_buckets.min(self.buckets.len()) {
            for (w, e) in self.buckets[b].e.iter().enumerate() {
                if e.fp == 0 || !live(e.expiry, now) {
                    continue;
                }
                let aux = self
                    .aux
                    .as_ref()
                    .map_or(Aux::default(), |a| a[b * WAYS + w]);
                let seen = Walked {
                    fp: e.fp,
                    value: e.value,
                    expiry: e.expiry,
                    aux,
                };
                if !f(seen) {
                    return b;
                }
            }
            b = (b + 1) & self.mask();
        }
        b
    }

    /// Empties the table (keeps its memory).
    pub fn clear(&mut self) {
        self.buckets.fill(Bucket::EMPTY);
        self.overflow.fill(0);
        self.len = 0;
        self.cursor = 0;
    }

    /// Occupied slots: live entries plus expired entries not yet reclaimed.
    /// Exact.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether prefetching a burst's buckets before looking them up pays:
    /// only when the flows tracked no longer fit the caches (more than
    /// [`PREFETCH_MIN_FLOWS`]); with fewer, their buckets are in cache.
    #[inline(always)]
    pub fn worth_prefetching(&self) -> bool {
        self.len > PREFETCH_MIN_FLOWS
    }

    /// Whether no slot is occupied.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total slots (4 per bucket): the most entries the table can hold; about
    /// twice the `capacity_flows` given to [`new`](Self::new). Inserts start
    /// to fail somewhat before `len()` reaches it.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Number of buckets (what one full [`sweep`](Self::sweep) visits).
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Bytes of memory the table holds (its bucket array, 64 bytes per
    /// bucket, their overflow counts, a byte each, and its aux array if it
    /// has one).
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val::<[Bucket]>(&self.buckets)
            + self.overflow.len()
            + self
                .aux
                .as_ref()
                .map_or(0, |a| core::mem::size_of_val::<[Aux]>(a))
    }
}

/// The flow fingerprint of an IPv4 5-tuple, keyed by `seed`; never 0.
///
/// [`fingerprint_of_mix`] of the tuple's [`crate::hash::flow_mix_v4`].
#[inline]
pub fn fingerprint_v4(
    seed: u64,
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    sport: u16,
    dport: u16,
) -> u64 {
    fingerprint_of_mix(
        seed,
        crate::hash::flow_mix_v4(src, dst, proto, sport, dport),
    )
}

/// The flow fingerprint of an IPv6 5-tuple, keyed by `seed`; never 0.
///
/// [`fingerprint_of_mix`] of the tuple's [`crate::hash::flow_mix_v6`].
#[inline]
pub fn fingerprint_v6(
    seed: u64,
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    sport: u16,
    dport: u16,
) -> u64 {
    fingerprint_of_mix(
        seed,
        crate::hash::flow_mix_v6(src, dst, proto, sport, dport),
    )
}

/// The flow fingerprint of a flow whose mix ([`crate::hash::flow_mix_v4`],
/// [`crate::hash::flow_mix_v6`]) is `mix`, keyed by `seed`; never 0.
///
/// The mix goes through one multiply-fold keyed by the seed (about 1 ns:
/// the packet path computes the mix anyway, for the outer headers' entropy,
/// so a fingerprint costs one multiply more). Use one random `seed` per
/// worker (or per process), chosen at start-up, so fingerprints and bucket
/// choices cannot be predicted from outside. Fingerprints are only compared
/// within one table, so they need not agree between workers, gateways or
/// versions.
#[inline(always)]
pub fn fingerprint_of_mix(seed: u64, mix: u64) -> u64 {
    norm(crate::hash::keyed_mix(seed, mix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use dnlb_testkit::SplitMix64 as Rng;

    #[test]
    fn sizes() {
        let t = FlowTable::new(1_000_000);
        assert_eq!(t.buckets(), 1 << 19);
        assert_eq!(t.capacity(), 1 << 21);
        assert_eq!(t.memory_bytes(), (32 << 20) + (1 << 19));
        let t = FlowTable::new(0);
        assert_eq!((t.buckets(), t.capacity(), t.len()), (2, 8, 0));
        assert!(t.is_empty());
        assert_eq!(FlowTable::new(1000).capacity(), 2048);
        assert_eq!(
            format!("{t:?}"),
            "FlowTable { len: 0, capacity: 8, buckets: 2, .. }"
        );
    }

    #[test]
    fn insert_lookup_refresh_expire() {
        let mut t = FlowTable::new(100);
        let now = 1000;
        t.insert(42, 7, now, 10).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(42, now + 9, 10), Some(7)); // refreshed to 1019
        assert_eq!(t.lookup(42, now + 18, 10), Some(7)); // refreshed to 1028
        assert_eq!(t.lookup(43, now + 18, 10), None);
        assert_eq!(t.lookup(42, now + 28, 10), None); // expired at 1028
        assert_eq!(t.len(), 0, "an expired hit is reclaimed");
        assert_eq!(t.lookup(42, now + 28, 10), None);
        // A lookup with a short refresh timeout shortens the life too.
        t.insert(5, 1, now, 100).unwrap();
        assert_eq!(t.lookup(5, now + 1, 1), Some(1));
        assert_eq!(t.lookup(5, now + 2, 1), None);
        // Timeout 0 is already expired.
        t.insert(6, 1, now, 0).unwrap();
        assert_eq!(t.lookup(6, now, 0), None);
    }

    #[test]
    fn peek_does_not_refresh() {
        let mut t = FlowTable::new(100);
        t.insert(42, 7, 0, 10).unwrap();
        assert_eq!(t.peek(42, 9), Some(7));
        assert_eq!(t.peek(43, 9), None);
        assert_eq!(t.peek(42, 10), None);
        assert_eq!(t.len(), 1, "peek reclaims nothing");
        assert_eq!(t.lookup(42, 9, 10), Some(7));
        assert_eq!(t.peek(42, 18), Some(7));
        assert_eq!(t.peek_remaining(42, 18), Some((7, 1)));
        assert_eq!(t.peek_remaining(42, 19), None);
        assert_eq!(t.peek_remaining(43, 18), None);
    }

    #[test]
    fn insert_updates_an_existing_flow() {
        let mut t = FlowTable::new(100);
        t.insert(42, 7, 0, 10).unwrap();
        t.insert(42, 8, 5, 100).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(42, 50, 10), Some(8));
        // Also when the old entry has expired but is still stored.
        t.insert(42, 9, 100, 10).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(42, 105, 10), Some(9));
    }

    #[test]
    fn fingerprint_zero_is_stored_as_one() {
        let mut t = FlowTable::new(10);
        t.insert(0, 3, 0, 10).unwrap();
        assert_eq!(t.lookup(1, 1, 10), Some(3));
        assert_eq!(t.lookup(0, 1, 10), Some(3));
        assert_eq!(t.remove(0), Some(3));
        assert!(t.is_empty());
    }

    #[test]
    fn wrapping_time() {
        let mut t = FlowTable::new(100);
        let now = u32::MAX - 5;
        t.insert(1, 11, now, 10).unwrap(); // expires at 4 (wrapped)
        assert_eq!(t.lookup(1, now.wrapping_add(9), 1), Some(11)); // at 3, expires at 4
        assert_eq!(t.lookup(1, 3, 1), Some(11));
        assert_eq!(t.lookup(1, 4, 1), None);
        // Sweep across the wrap.
        t.insert(4, 44, now, 3).unwrap();
        t.insert(5, 55, now, 30).unwrap();
        assert_eq!(t.sweep(now.wrapping_add(10), t.buckets()), 1);
        assert_eq!(t.lookup(5, now.wrapping_add(10), 1), Some(55));
        // The largest allowed timeout, across the wrap.
        let max = (1u32 << 31) - 1;
        t.insert(2, 22, now, max).unwrap();
        t.insert(3, 33, now, max).unwrap();
        assert_eq!(t.lookup(2, now.wrapping_add(max - 1), max), Some(22));
        assert_eq!(t.lookup(3, now.wrapping_add(max), max), None);
        assert_eq!(t.lookup(2, now.wrapping_add(max), max), Some(22));
    }

    #[test]
    fn remove_and_clear() {
        let mut t = FlowTable::new(100);
        for fp in 1..=50u64 {
            t.insert(fp * 0x1234_5678_9abc, fp as u32, 0, 10).unwrap();
        }
        assert_eq!(t.len(), 50);
        assert_eq!(t.remove(7 * 0x1234_5678_9abc), Some(7));
        assert_eq!(t.remove(7 * 0x1234_5678_9abc), None);
        assert_eq!(t.len(), 49);
        // Remove returns an expired entry's value too.
        assert_eq!(t.remove(8 * 0x1234_5678_9abc), Some(8));
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.lookup(9 * 0x1234_5678_9abc, 1, 10), None);
    }

    #[test]
    fn sweep_reclaims_incrementally() {
        let mut t = FlowTable::new(1000);
        let mut r = Rng(3);
        let fps: Vec<u64> = (0..1000).map(|_| r.next()).collect();
        for (i, &fp) in fps.iter().enumerate() {
            // Even ones expire at 10, odd ones at 1000.
            t.insert(fp, i as u32, 0, if i % 2 == 0 { 10 } else { 1000 })
                .unwrap();
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.sweep(5, t.buckets()), 0);
        let half = t.buckets() / 2;
        let a = t.sweep(20, half);
        let b = t.sweep(20, half);
        assert_eq!(a + b, 500);
        assert!(a > 0 && b > 0);
        assert_eq!(t.len(), 500);
        assert_eq!(t.sweep(20, usize::MAX), 0);
        for (i, &fp) in fps.iter().enumerate() {
            assert_eq!(t.lookup(fp, 20, 1000), (i % 2 == 1).then_some(i as u32));
        }
        assert_eq!(t.sweep(5000, 0), 0);
        assert_eq!(t.sweep(5000, usize::MAX), 500);
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_keeps_live_entries_and_reuses_expired_ones() {
        let mut t = FlowTable::new(64); // 32 buckets, 128 slots
        let mut r = Rng(9);
        let mut stored = Vec::new();
        let mut failures = 0;
        for i in 0..400u32 {
            let fp = r.next();
            match t.insert(fp, i, 0, 100) {
                Ok(()) => stored.push((fp, i)),
                Err(TableFull) => {
                    assert!(t.full_for(fp, 0));
                    failures += 1;
                }
            }
            assert_eq!(t.len(), stored.len());
        }
        assert!(failures > 0);
        // Two-choice placement plus displacement fills most slots.
        assert!(stored.len() > t.capacity() * 80 / 100, "{}", stored.len());
        for &(fp, v) in &stored {
            assert_eq!(t.lookup(fp, 50, 50), Some(v), "live entry lost");
        }
        // Refreshed until 100. Afterwards new flows reuse expired slots.
        for i in 0..100u32 {
            t.insert(r.next(), i, 100, 100).unwrap();
        }
        assert!(t.len() <= t.capacity());
        assert_eq!(t.sweep(100, usize::MAX), stored.len() - 100);
    }

    #[test]
    fn a_full_table_stops_searching_for_room_until_a_search_finds_some() {
        let mut t = FlowTable::new(1024);
        let mut r = Rng(11);
        // Fill it with live entries until inserts fail.
        let mut stored = 0;
        while t.searches() < 200 {
            stored += t.insert(r.next(), 1, 0, 1000).is_ok() as usize;
        }
        assert!(stored > t.capacity() * 80 / 100, "{stored}");
        // A flood of new flows: few of the failing inserts search.
        let before = t.searches();
        let mut failed = 0;
        for _ in 0..10_000 {
            failed += t.insert(r.next(), 2, 1, 1000).is_err() as u32;
        }
        let searched = t.searches() - before;
        assert!(failed > 9_000, "{failed}");
        assert!(
            searched * 50 <= u64::from(failed),
            "{searched} searches for {failed} failing inserts: more than 2 %"
        );
        // Live entries are all still there, and once they expire new flows
        // take their slots again.
        assert!(t.len() >= stored);
        for i in 0..100 {
            assert!(t.insert(r.next(), i, 2000, 1000).is_ok());
        }
    }

    #[test]
    fn overflow_counts_follow_every_write_of_a_slot() {
        // A small table churned near full: entries placed in their second
        // bucket, displaced both ways, expired, swept, removed, reused;
        // after each step the kept counts equal a recount, and every live
        // flow is still found (a count too low would hide one).
        let mut t = FlowTable::new(64);
        let mut r = Rng(5);
        // Live flows and when they expire.
        let mut live: Vec<(u64, u32)> = Vec::new();
        let mut now = 0u32;
        // Steps after which the counts' total rose, fell.
        let (mut rose, mut fell, mut last_total) = (0, 0, 0);
        for step in 0..20_000 {
            let timeout = 100 + (r.next() % 400) as u32;
            match r.next() % 16 {
                0..=5 => {
                    let fp = norm(r.next());
                    if t.insert(fp, 1, now, timeout).is_ok() {
                        live.push((fp, now + timeout));
                    }
                }
                6..=8 => {
                    // A packet of a new flow, as the fast path stores it.
                    let fp = norm(r.next());
                    assert_eq!(t.lookup(fp, now, timeout), None);
                    if t.insert_probed(&Probe { fp }, 1, now, timeout).is_ok() {
                        live.push((fp, now + timeout));
                    }
                }
                9 if !live.is_empty() => {
                    let (fp, _) = live.swap_remove(r.next() as usize % live.len());
                    assert_eq!(t.remove(fp), Some(1));
                }
                10 if !live.is_empty() => {
                    // A packet of a tracked flow (found wherever it sits).
                    let i = r.next() as usize % live.len();
                    assert_eq!(t.lookup(live[i].0, now, timeout), Some(1), "step {step}");
                    live[i].1 = now + timeout;
                }
                11 => {
                    t.sweep(now, 3);
                }
                _ => {
                    now += 1;
                    live.retain(|&(_, expiry)| expiry > now);
                }
            }
            if let Err(e) = t.overflow_counts_hold() {
                panic!("step {step}: {e}");
            }
            let total: u32 = t.overflow.iter().map(|&c| u32::from(c)).sum();
            if total > last_total {
                rose += 1;
            } else if total < last_total {
                fell += 1;
            }
            last_total = total;
        }
        for &(fp, _) in &live {
            assert_eq!(t.lookup(fp, now, 1), Some(1), "a live flow lost");
        }
        assert!(
            t.searches() > 100,
            "displacement ran {} times",
            t.searches()
        );
        assert!(
            rose > 500 && fell > 500,
            "counts rose {rose} and fell {fell} times"
        );
    }

    #[test]
    fn burst_lookup_matches_single_lookups() {
        // Below and above the occupancy where lookup_burst starts to prefetch.
        for (capacity, n) in [(1000, 600), (40_000, 2 * PREFETCH_MIN_FLOWS + 600)] {
            let mut a = FlowTable::new(capacity);
            let mut b = FlowTable::new(capacity);
            let mut r = Rng(5);
            let fps: Vec<u64> = (0..n).map(|_| r.next()).collect();
            for (i, &fp) in fps.iter().enumerate().step_by(2) {
                a.insert(fp, i as u32, 0, 10 + (i as u32 % 7)).unwrap();
                b.insert(fp, i as u32, 0, 10 + (i as u32 % 7)).unwrap();
            }
            let timeouts: Vec<u32> = (0..32).map(|i| 5 + i).collect();
            for now in [0u32, 8, 12, 14] {
                for chunk in fps.chunks(32) {
                    let mut out = [None; 32];
                    a.lookup_burst(chunk, now, &timeouts, &mut out);
                    for (i, &fp) in chunk.iter().enumerate() {
                        assert_eq!(out[i], b.lookup(fp, now, timeouts[i]));
                    }
                }
                assert_eq!(a.len(), b.len());
            }
        }
    }

    /// The sizing goal: 1M flows per worker in <= 64 MiB, with the
    /// fingerprints of structured tuples (16 clients × 62,500 source ports),
    /// so this also checks that those fingerprints neither collide (len would
    /// fall short) nor crowd buckets.
    #[test]
    fn one_million_flows() {
        let mut t = FlowTable::new(1_000_000);
        assert!(t.memory_bytes() <= 64 << 20);
        let seed = 0x5eed_0000_0000_0001;
        let mut full = 0;
        for client in 0..16u8 {
            for port in 0..62_500u16 {
                let fp = fingerprint_v4(seed, [10, 0, 0, client], [192, 0, 2, 1], 6, port, 443);
                if t.insert(fp, u32::from(port), 0, 1000).is_err() {
                    full += 1;
                }
            }
        }
        assert_eq!(full, 0, "TableFull for {full} of 1M flows");
        assert_eq!(t.len(), 1_000_000);
        // How far past the nominal capacity it goes before the first failure.
        let mut r = Rng(1);
        let mut extra = 0usize;
        while t.insert(r.next(), 0, 0, 1000).is_ok() {
            extra += 1;
        }
        println!(
            "first TableFull after {} flows ({:.1}% of {} slots)",
            1_000_000 + extra,
            (1_000_000 + extra) as f64 * 100.0 / t.capacity() as f64,
            t.capacity()
        );
        assert!(1_000_000 + extra > t.capacity() * 80 / 100);
    }

    /// Structured IPv6 tuples do not collide either.
    #[test]
    fn ipv6_fingerprints_do_not_collide() {
        let mut t = FlowTable::new(200_000);
        let vip = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
        for client in 0..4u8 {
            let mut src = [0u8; 16];
            src[..4].copy_from_slice(&[0x20, 1, 0xd, 0xb8]);
            src[15] = client;
            for port in 0..50_000u16 {
                let fp = fingerprint_v6(42, src, vip, 17, port, 53);
                t.insert(fp, 0, 0, 10).unwrap();
            }
        }
        assert_eq!(t.len(), 200_000);
    }

    #[test]
    fn fingerprints() {
        let src = [10, 0, 0, 1];
        let dst = [10, 0, 0, 2];
        let a = fingerprint_v4(1, src, dst, 6, 1000, 80);
        assert_ne!(a, fingerprint_v4(2, src, dst, 6, 1000, 80));
        assert_ne!(a, fingerprint_v4(1, src, dst, 6, 1001, 80));
        assert_ne!(a, fingerprint_v4(1, src, dst, 17, 1000, 80));
        assert_ne!(a, fingerprint_v4(1, dst, src, 6, 80, 1000));
        assert_eq!(a, fingerprint_v4(1, src, dst, 6, 1000, 80));
        let s6 = [1u8; 16];
        let d6 = [2u8; 16];
        let b = fingerprint_v6(1, s6, d6, 6, 1000, 80);
        assert_ne!(b, fingerprint_v6(2, s6, d6, 6, 1000, 80));
        assert_ne!(b, fingerprint_v6(1, s6, d6, 6, 1000, 81));
        assert_ne!(b, fingerprint_v6(1, d6, s6, 6, 80, 1000));
        // Sequential source ports spread over the buckets of a 2k table.
        let mut t = FlowTable::new(2000);
        for p in 0..2000u16 {
            t.insert(fingerprint_v4(7, src, dst, 6, p, 80), 1, 0, 10)
                .unwrap();
        }
        assert_eq!(t.len(), 2000);
    }

    /// The fingerprint is the keyed hash of the flow's mix, and which
    /// bucket a flow lands in follows the seed: the same 4096 tuples under
    /// another seed share their first bucket (of 4096) about as often as
    /// random ones would (1 in 4096), and their second (bits 32..) too.
    #[test]
    fn buckets_follow_the_seed() {
        let (src, dst) = ([10, 0, 0, 1], [192, 0, 2, 1]);
        let mix = crate::hash::flow_mix_v4(src, dst, 17, 5000, 53);
        assert_eq!(
            fingerprint_v4(9, src, dst, 17, 5000, 53),
            fingerprint_of_mix(9, mix)
        );
        let mask = 4095u64;
        let (mut first, mut second) = (0, 0);
        for seed in [1u64, 0x5eed, u64::MAX] {
            for p in 0..4096u16 {
                let a = fingerprint_v4(seed, src, dst, 17, p, 53);
                let b = fingerprint_v4(seed.wrapping_add(1), src, dst, 17, p, 53);
                first += usize::from(a & mask == b & mask);
                second += usize::from((a >> 32) & mask == (b >> 32) & mask);
            }
        }
        // 3 × 4096 pairs: ~3 expected each; 20 would be a bias.
        assert!(first < 20 && second < 20, "{first} {second}");
    }

    mod model {
        use super::super::*;
        use super::HashMap;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Insert {
                k: u8,
                value: u32,
                timeout: u32,
            },
            Lookup {
                k: u8,
                timeout: u32,
            },
            /// A packet of a flow that takes an entry: lookup, and insert
            /// if that missed.
            Packet {
                k: u8,
                value: u32,
                timeout: u32,
            },
            Peek {
                k: u8,
            },
            Remove {
                k: u8,
            },
            Advance {
                dt: u32,
            },
            Sweep {
                buckets: usize,
            },
        }

        fn op(keys: u8) -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..keys, any::<u32>(), 1..60u32).prop_map(|(k, value, timeout)| Op::Insert { k, value, timeout }),
                4 => (0..keys, 1..60u32).prop_map(|(k, timeout)| Op::Lookup { k, timeout }),
                3 => (0..keys, any::<u32>(), 1..60u32).prop_map(|(k, value, timeout)| Op::Packet { k, value, timeout }),
                1 => (0..keys).prop_map(|k| Op::Peek { k }),
                1 => (0..keys).prop_map(|k| Op::Remove { k }),
                2 => (0..30u32).prop_map(|dt| Op::Advance { dt }),
                1 => (0..10usize).prop_map(|buckets| Op::Sweep { buckets }),
            ]
        }

        /// Key k's fingerprint: 0 and 1 alias (both stored as 1), the rest
        /// spread over 64 bits.
        fn fp(k: u8) -> u64 {
            match k {
                0 => 0,
                1 => 1,
                _ => u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            }
        }

        /// Insert into the table and the model (and into `twin`, which
        /// forgets its last miss first, so it always searches for the entry;
        /// with `probed`, right after its lookup missed, `twin` inserts as the
        /// packet path does, through the flow's probe).
        fn insert(
            t: &mut FlowTable,
            twin: &mut FlowTable,
            m: &mut HashMap<u64, (u32, u64)>,
            (f, value, timeout, probed): (u64, u32, u32, bool),
            (now, abs): (u32, u64),
        ) -> Result<(), TestCaseError> {
            let was_live = m.get(&f).is_some_and(|e| abs < e.1);
            let r = t.insert_with(f, value, now, timeout, aux_of(value));
            let r2 = if probed {
                twin.insert_probed(&twin.probe(f), value, now, timeout)
            } else {
                twin.last_miss = 0;
                twin.insert(f, value, now, timeout)
            };
            prop_assert_eq!(r, r2);
            match r {
                Ok(()) => {
                    m.insert(f, (value, abs + u64::from(timeout)));
                }
                Err(TableFull) => {
                    prop_assert!(!was_live, "insert of a present flow failed");
                    prop_assert!(t.full_for(f, now));
                }
            }
            Ok(())
        }

        /// Lookup in the table, `twin` and the model.
        fn lookup(
            t: &mut FlowTable,
            twin: &mut FlowTable,
            m: &mut HashMap<u64, (u32, u64)>,
            (k, timeout): (u8, u32),
            (now, abs): (u32, u64),
        ) -> Result<Option<u32>, TestCaseError> {
            let f = norm(fp(k));
            // The table looks up through a probe (as the fast path's second
            // pass does), its twin directly: the same answer, the same slots.
            let got = t.lookup_probe(t.probe(fp(k)), now, timeout);
            prop_assert_eq!(got, twin.lookup(fp(k), now, timeout));
            match m.get_mut(&f) {
                Some(e) if abs < e.1 => {
                    prop_assert_eq!(got, Some(e.0));
                    e.1 = abs + u64::from(timeout);
                }
                Some(_) => {
                    prop_assert_eq!(got, None);
                    m.remove(&f);
                }
                None => prop_assert_eq!(got, None),
            }
            Ok(got)
        }

        /// The aux the model's inserts give a value.
        fn aux_of(value: u32) -> Aux {
            Aux {
                hash: u64::from(value).wrapping_mul(0x2545_f491_4f6c_dd1d),
                listener_slot: value as u16,
                flags: (value >> 16) as u16,
            }
        }

        /// A whole walk of `t` (from a bucket `start`, in chunks of
        /// `chunk` buckets) shows exactly the model's live entries, each
        /// with the aux its insert gave.
        fn walk_matches(
            t: &FlowTable,
            m: &HashMap<u64, (u32, u64)>,
            (now, abs): (u32, u64),
            (start, chunk): (usize, usize),
        ) -> Result<(), TestCaseError> {
            let mut seen = HashMap::new();
            let mut at = start;
            let mut visited = 0;
            while visited < t.buckets() {
                let n = chunk.min(t.buckets() - visited);
                at = t.walk(at, n, now, |e| {
                    seen.insert(e.fp, (e.value, e.aux));
                    true
                });
                visited += n;
            }
            let want: HashMap<u64, (u32, Aux)> = m
                .iter()
                .filter(|(_, e)| abs < e.1)
                .map(|(&f, e)| (f, (e.0, aux_of(e.0))))
                .collect();
            prop_assert_eq!(seen, want);
            Ok(())
        }

        /// Runs `ops` against the table and a `HashMap` model whose clock is a
        /// `u64` that never wraps, while the table's `u32` clock starts 300
        /// ticks before it wraps. A twin table that never uses its last miss
        /// (and keeps no aux) must hold exactly the same entries in the same
        /// slots; a walk of the table (which keeps aux) must show the model's
        /// live entries with their aux, however displacement moved them.
        fn check(capacity: usize, ops: &[Op]) -> Result<(), TestCaseError> {
            let mut t = FlowTable::with_aux(capacity);
            let mut twin = FlowTable::new(capacity);
            let mut m: HashMap<u64, (u32, u64)> = HashMap::new();
            let start = u32::MAX - 300;
            let mut abs: u64 = 0;
            for op in ops {
                let now = start.wrapping_add(abs as u32);
                match *op {
                    Op::Insert { k, value, timeout } => {
                        let f = norm(fp(k));
                        let op = (f, value, timeout, false);
                        insert(&mut t, &mut twin, &mut m, op, (now, abs))?;
                    }
                    Op::Lookup { k, timeout } => {
                        lookup(&mut t, &mut twin, &mut m, (k, timeout), (now, abs))?;
                    }
                    Op::Packet { k, value, timeout } => {
                        let got = lookup(&mut t, &mut twin, &mut m, (k, timeout), (now, abs))?;
                        if got.is_none() {
                            let f = norm(fp(k));
                            let op = (f, value, timeout, true);
                            insert(&mut t, &mut twin, &mut m, op, (now, abs))?;
                        }
                    }
                    Op::Peek { k } => {
                        let want = m.get(&norm(fp(k))).filter(|e| abs < e.1).map(|e| e.0);
                        prop_assert_eq!(t.peek(fp(k), now), want);
                    }
                    Op::Remove { k } => {
                        let f = norm(fp(k));
                        let got = t.remove(fp(k));
                        prop_assert_eq!(got, twin.remove(fp(k)));
                        match m.remove(&f) {
                            Some(e) if abs < e.1 => prop_assert_eq!(got, Some(e.0)),
                            Some(e) => prop_assert!(got.is_none() || got == Some(e.0)),
                            None => prop_assert_eq!(got, None),
                        }
                    }
                    Op::Advance { dt } => abs += u64::from(dt),
                    Op::Sweep { buckets } => {
                        prop_assert_eq!(t.sweep(now, buckets), twin.sweep(now, buckets));
                        if buckets >= t.buckets() {
                            m.retain(|_, e| abs < e.1);
                            prop_assert_eq!(t.len(), m.len());
                        }
                    }
                }
                prop_assert!(
                    t.buckets
                        .iter()
                        .zip(twin.buckets.iter())
                        .all(|(a, b)| a.e == b.e),
                    "the last miss placed an entry elsewhere"
                );
                for table in [&t, &twin] {
                    if let Err(e) = table.overflow_counts_hold() {
                        return Err(TestCaseError::fail(format!("after {op:?}: {e}")));
                    }
                }
                let now = start.wrapping_add(abs as u32);
                walk_matches(&t, &m, (now, abs), (abs as usize, 1 + (abs as usize % 5)))?;
                let live = m.values().filter(|e| abs < e.1).count();
                prop_assert!(
                    live <= t.len() && t.len() <= m.len(),
                    "live {} len {} model {}",
                    live,
                    t.len(),
                    m.len()
                );
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// A roomy table (no TableFull expected in practice).
            #[test]
            fn matches_model_roomy(ops in prop::collection::vec(op(40), 1..300)) {
                check(256, &ops)?;
            }

            /// A tiny table (8 buckets, 32 slots, 40 keys): TableFull happens
            /// and must be legitimate.
            #[test]
            fn matches_model_tight(ops in prop::collection::vec(op(40), 1..300)) {
                check(16, &ops)?;
            }
        }
    }
}

//! Where a new flow goes: the first free (empty or expired) slot of its two
//! buckets, else a slot made by moving up to two live entries to their other
//! buckets (a breadth-first search over at most [`BFS_NODES`] slots, as in
//! DPDK's `rte_hash`), and the back-off after searches that found nothing
//! while the table stays saturated.

use super::*;

impl FlowTable {
    #[inline(always)]
    pub(super) fn insert_inner(
        &mut self,
        fp: u64,
        value: u32,
        now: u32,
        timeout: u32,
        aux: Option<Aux>,
    ) -> Result<(), TableFull> {
        let fp = norm(fp);
        let new = Entry {
            fp,
            value,
            expiry: now.wrapping_add(timeout),
        };
        let (b1, b2) = self.candidates(fp);
        let free = if core::mem::take(&mut self.last_miss) == fp {
            // The lookup just before missed it: absent (only an insert adds
            // entries). Only the first free slot is to be found.
            self.free_slot(b1, b2, now)
        } else {
            let mut free = None;
            for b in [b1, b2] {
                for (w, e) in self.bucket_mut(b).e.iter_mut().enumerate() {
                    if e.fp == fp {
                        *e = new;
                        self.set_aux(b, w, aux);
                        return Ok(());
                    }
                    if free.is_none() && (e.fp == 0 || !live(e.expiry, now)) {
                        free = Some((b, w));
                    }
                }
            }
            free
        };
        if let Some((b, w)) = free {
            self.place(b, w, new);
            self.set_aux(b, w, aux);
            return Ok(());
        }
        // Both buckets hold only live entries: make room by moving entries
        // to their other buckets, unless the table is known to be full.
        if self.skip_searches > 0 && now.wrapping_sub(self.saturated_at) < SATURATED_MS {
            self.skip_searches -= 1;
            return Err(TableFull);
        }
        self.make_room(b1, b2, new, aux, now)
    }

    /// [`insert`](Self::insert) of the flow `p` probed, right after its
    /// [`lookup_probe`](Self::lookup_probe) missed: the flow is absent and
    /// its buckets are known, so only the first free slot is looked for
    /// (the packet path's new flow; the same table as `insert` makes).
    #[inline(always)]
    pub fn insert_probed(
        &mut self,
        p: &Probe,
        value: u32,
        now: u32,
        timeout: u32,
    ) -> Result<(), TableFull> {
        if self.insert_probed_first(p, value, now, timeout) {
            return Ok(());
        }
        self.insert_second(p, value, now, timeout)
    }

    /// [`insert_probed`](Self::insert_probed) into the first bucket only
    /// (the usual case): `false`, having changed nothing, if it holds live
    /// entries only. Then [`insert_second`](Self::insert_second) goes on.
    #[inline(always)]
    pub fn insert_probed_first(&mut self, p: &Probe, value: u32, now: u32, timeout: u32) -> bool {
        debug_assert_eq!(self.last_miss, p.fp, "not right after its lookup missed");
        self.put_probed(self.first(p.fp), p, value, now, timeout)
    }

    /// The flow `p` (absent) into the first free way of bucket `b`, if it
    /// has one: `free_slot` and `place` in one pass.
    #[inline(always)]
    fn put_probed(&mut self, b: usize, p: &Probe, value: u32, now: u32, timeout: u32) -> bool {
        let bucket = self.buckets.masked_mut(b);
        let Some(w) = bucket.free_way(now) else {
            return false;
        };
        let e = &mut bucket.e[w];
        let old = e.fp;
        *e = Entry {
            fp: p.fp,
            value,
            expiry: now.wrapping_add(timeout),
        };
        self.len += usize::from(old == 0);
        self.last_miss = 0;
        self.note_replaced(b, old, p.fp);
        true
    }

    /// Counts the entry `fp` written over `old` (0: an empty slot) in
    /// bucket `b`.
    #[inline(always)]
    fn note_replaced(&mut self, b: usize, old: u64, fp: u64) {
        self.note_freed(b, old);
        self.note_placed(b, fp);
    }

    /// [`insert_probed`](Self::insert_probed) when the first bucket holds
    /// live entries only: the second bucket, else as `insert` goes on. Out
    /// of line and cold, so that the usual insert needs no stack frame.
    #[cold]
    #[inline(never)]
    pub fn insert_second(
        &mut self,
        p: &Probe,
        value: u32,
        now: u32,
        timeout: u32,
    ) -> Result<(), TableFull> {
        if self.put_probed(self.candidates(p.fp).1, p, value, now, timeout) {
            return Ok(());
        }
        // Both buckets hold live entries only: as `insert` goes on.
        self.insert_inner(p.fp, value, now, timeout, None)
    }

    /// Records `aux` for slot (`b`, `w`) if this table keeps them.
    #[inline(always)]
    fn set_aux(&mut self, b: usize, w: usize, aux: Option<Aux>) {
        if let (Some(a), Some(all)) = (aux, &mut self.aux) {
            all[b * WAYS + w] = a;
        }
    }

    /// Moves the entry (and its aux) of slot `from` to slot `to`, whose
    /// content is lost (already counted gone); the entry is counted in its
    /// new bucket, and the copy left in `from` is taken to be gone too
    /// (the caller writes over it next).
    #[inline]
    fn move_slot(&mut self, from: (usize, usize), to: (usize, usize)) {
        let e = self.buckets[from.0].e[from.1];
        self.buckets[to.0].e[to.1] = e;
        self.note_freed(from.0, e.fp);
        self.note_placed(to.0, e.fp);
        if let Some(all) = &mut self.aux {
            all[to.0 * WAYS + to.1] = all[from.0 * WAYS + from.1];
        }
    }

    /// The displacement search of [`insert`](Self::insert), and what it
    /// tells of the table's saturation.
    #[cold]
    fn make_room(
        &mut self,
        b1: usize,
        b2: usize,
        new: Entry,
        aux: Option<Aux>,
        now: u32,
    ) -> Result<(), TableFull> {
        self.searches += 1;
        let r = self.displace(b1, b2, new, aux, now);
        if r.is_ok() {
            // Room, this time: search more, but a full table soon says so again.
            self.failed_searches /= 2;
        } else {
            self.failed_searches = (self.failed_searches + 1).min(SATURATED_AFTER);
            if self.failed_searches == SATURATED_AFTER {
                self.skip_searches = SATURATED_RETRY - 1;
                self.saturated_at = now;
            }
        }
        r
    }

    /// Displacement searches made so far.
    pub fn searches(&self) -> u64 {
        self.searches
    }

    /// Cuckoo displacement for `new`, whose buckets `b1`, `b2` hold only live
    /// entries: a breadth-first search, over at most [`BFS_NODES`] slots, for
    /// a chain of entries that can each move to their other bucket, ending in
    /// a free slot. The chain is then shifted along (last entry first) and
    /// `new` takes the slot freed in `b1` or `b2`. Nothing moves if no chain
    /// is found. Breadth-first finds a shortest chain, so it never visits a
    /// slot twice.
    #[cold]
    fn displace(
        &mut self,
        b1: usize,
        b2: usize,
        new: Entry,
        aux: Option<Aux>,
        now: u32,
    ) -> Result<(), TableFull> {
        const ROOT: u16 = u16::MAX;
        // (bucket, way, index of the parent node or ROOT); no allocation.
        let mut q = [(0usize, 0u8, ROOT); BFS_NODES];
        let mut tail = 0;
        for b in [b1, b2] {
            for w in 0..WAYS {
                q[tail] = (b, w as u8, ROOT);
                tail += 1;
            }
        }
        let mut head = 0;
        while head < tail {
            let (b, w, _) = q[head];
            let fp = self.buckets[b].e[usize::from(w)].fp;
            let (m1, m2) = self.candidates(fp);
            let other = if m1 == b { m2 } else { m1 };
            if let Some(fw) = self.bucket(other).free_way(now) {
                // Shift the chain: the last entry into the free slot, each
                // parent's entry into its child's old slot, `new` into the
                // root slot.
                let (mut db, mut dw) = (other, fw);
                // The free slot's expired entry, if any, is gone.
                match self.buckets[db].e[dw].fp {
                    0 => self.len += 1,
                    gone => self.note_freed(db, gone),
                }
                let mut cur = head;
                loop {
                    let (b, w, parent) = q[cur];
                    let w = usize::from(w);
                    self.move_slot((b, w), (db, dw));
                    (db, dw) = (b, w);
                    if parent == ROOT {
                        break;
                    }
                    cur = usize::from(parent);
                }
                self.buckets[db].e[dw] = new;
                self.note_placed(db, new.fp);
                self.set_aux(db, dw, aux);
                return Ok(());
            }
            if tail + WAYS <= BFS_NODES {
                for w in 0..WAYS {
                    q[tail] = (other, w as u8, head as u16);
                    tail += 1;
                }
            }
            head += 1;
        }
        Err(TableFull)
    }

    /// Writes `entry` into a free way, keeping `len` and the overflow
    /// counts exact.
    #[inline]
    fn place(&mut self, b: usize, w: usize, entry: Entry) {
        let slot = &mut self.buckets.masked_mut(b).e[w];
        let old = slot.fp;
        *slot = entry;
        self.len += usize::from(old == 0);
        self.note_replaced(b, old, entry.fp);
    }

    /// Test helper: the overflow counts recounted from the buckets, next
    /// to the kept ones: equal, but for a kept count stuck at 255.
    #[cfg(test)]
    pub(super) fn overflow_counts_hold(&self) -> Result<(), String> {
        let mut want = vec![0usize; self.buckets.len()];
        for (b, bucket) in self.buckets.iter().enumerate() {
            for e in bucket.e.iter().filter(|e| e.fp != 0) {
                if self.first(e.fp) != b {
                    want[self.first(e.fp)] += 1;
                }
            }
        }
        for (b, (&kept, &want)) in self.overflow.iter().zip(&want).enumerate() {
            if usize::from(kept) != want && !(kept == u8::MAX && want >= 255) {
                return Err(format!("bucket {b}: overflow count {kept}, entries {want}"));
            }
        }
        Ok(())
    }

    /// Test helper: whether inserting `fp` at `now` may legitimately fail:
    /// `fp` is absent and both its buckets hold only live entries.
    #[cfg(test)]
    pub(super) fn full_for(&self, fp: u64, now: u32) -> bool {
        let fp = norm(fp);
        let (b1, b2) = self.candidates(fp);
        [b1, b2].iter().all(|&b| {
            self.buckets[b]
                .e
                .iter()
                .all(|e| e.fp != 0 && e.fp != fp && live(e.expiry, now))
        })
    }
}

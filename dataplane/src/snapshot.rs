//! Publishing a new load-balancing snapshot to running workers, RCU-style,
//! without a lock or an allocation on the worker's side.
//!
//! The control thread builds a snapshot on the slow path and publishes it:
//! it becomes the current one (an [`ArcSwap`]) and a generation counter is
//! bumped. A worker checks the generation with one atomic load per burst;
//! only when it changed does it take the new snapshot (a lock-free load and
//! one reference-count increment, once per reload) and put the one it used
//! into its own hand-back slot. Workers never free a snapshot: the control
//! thread empties the slots in [`Publisher::reclaim`] and drops the last
//! reference there, after every worker has passed a quiescent point (the
//! burst boundary where it switched) and let go of it. A worker whose slot
//! is still full (two reloads within one control tick) keeps its snapshot
//! for a few more bursts and then jumps straight to the newest one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
#[allow(
    clippy::disallowed_types,
    reason = "control thread only: reader registry"
)]
use std::sync::Mutex;

use arc_swap::{ArcSwap, ArcSwapOption};
use dnlb_lb::snapshot::Snapshot;

/// One reader's hand-back slots: the snapshot it let go of at a switch
/// (`[0]`) and the one it held when it was dropped (`[1]`), until the
/// control thread takes them.
type Slot = Arc<[ArcSwapOption<Snapshot>; 2]>;

#[derive(Debug)]
struct Shared {
    generation: AtomicU64,
    current: ArcSwap<Snapshot>,
}

/// The control thread's side.
#[derive(Debug, Clone)]
pub struct Publisher {
    shared: Arc<Shared>,
    /// Every reader's slot (control side only: readers are made and slots
    /// emptied here).
    #[allow(clippy::disallowed_types, reason = "control thread only")]
    slots: Arc<Mutex<Vec<Slot>>>,
}

impl Publisher {
    /// Starts with `first` as the current snapshot (generation 1).
    #[allow(clippy::disallowed_methods, reason = "control thread")]
    pub fn new(first: Arc<Snapshot>) -> Self {
        Publisher {
            shared: Arc::new(Shared {
                generation: AtomicU64::new(1),
                current: ArcSwap::new(first),
            }),
            slots: Arc::default(),
        }
    }

    /// A reader for one worker, starting at the current snapshot.
    pub fn reader(&self) -> Reader {
        let slot = Slot::default();
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot.clone());
        let seen = self.shared.generation.load(Ordering::Acquire);
        Reader {
            shared: self.shared.clone(),
            local: self.current(),
            seen,
            slot,
        }
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        self.shared.current.load_full()
    }

    /// Makes `next` current; returns the new generation. The previous one
    /// is dropped here unless workers still use it (they hand it back).
    pub fn publish(&self, next: Arc<Snapshot>) -> u64 {
        self.shared.current.store(next);
        self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The published generation.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Takes the snapshots workers handed back and drops them (call from the
    /// control thread: a snapshot no one else holds is freed here); returns
    /// how many of them are still held elsewhere.
    pub fn reclaim(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .flat_map(|s| s.iter())
            .filter_map(|s| s.swap(None))
            .filter(|s| Arc::strong_count(s) > 1)
            .count()
    }
}

/// One worker's side: its current snapshot, the generation it has seen and
/// its hand-back slot.
#[derive(Debug)]
pub struct Reader {
    shared: Arc<Shared>,
    local: Arc<Snapshot>,
    seen: u64,
    slot: Slot,
}

impl Reader {
    /// Once per burst: switches to a newly published snapshot if there is
    /// one and the hand-back slot is free (returns true then). One atomic
    /// load when nothing changed; no lock, no allocation, no free.
    #[inline]
    pub fn refresh(&mut self) -> bool {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g == self.seen {
            return false;
        }
        self.switch(g)
    }

    #[cold]
    fn switch(&mut self, g: u64) -> bool {
        if self.slot[0].load().is_some() {
            // The control thread has not taken the last one back yet.
            return false;
        }
        let next = self.shared.current.load_full();
        let old = std::mem::replace(&mut self.local, next);
        // The slot is empty (only this reader fills it), so nothing is
        // dropped here: the control thread frees `old`.
        self.slot[0].store(Some(old));
        self.seen = g;
        true
    }

    /// Touches the lock-free structures once, so their one-time per-thread
    /// set-up happens when the worker starts, not at its first switch.
    pub fn prime(&self) {
        let _ = self.slot[0].load();
        let _ = self.shared.current.load();
    }

    /// The snapshot to use for this burst.
    #[inline(always)]
    pub fn get(&self) -> &Snapshot {
        &self.local
    }

    /// The generation in use.
    pub fn generation(&self) -> u64 {
        self.seen
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // A stopping worker hands its snapshot back too (its own parting
        // slot, which nothing else fills).
        self.slot[1].store(Some(self.local.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnlb_lb::snapshot::BackendRegistry;
    use std::sync::Weak;

    fn snap(generation: u64) -> Arc<Snapshot> {
        let text = "[gateway]\nname = \"t\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
                    [encap]\nsource_v4 = \"192.0.2.1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
                    [[listener]]\nname = \"l\"\nvips = [\"192.0.2.10\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g\"\n\
                    [[target_group]]\nname = \"g\"\n[[target_group.backend]]\naddress = \"192.0.2.20\"\ntunnel = \"ipip\"\n";
        let cfg = dnlb_config::parse(std::path::Path::new("t.toml"), text).unwrap();
        Arc::new(Snapshot::build(&cfg, generation, &mut BackendRegistry::default()).unwrap())
    }

    #[test]
    fn readers_switch_at_refresh_and_only_the_control_side_frees() {
        let first = snap(1);
        let weak_first: Weak<Snapshot> = Arc::downgrade(&first);
        let p = Publisher::new(first);
        let mut r1 = p.reader();
        let mut r2 = p.reader();
        assert!(!r1.refresh(), "nothing new yet");
        assert_eq!(p.publish(snap(2)), 2);
        assert_eq!(
            r1.get().generation,
            1,
            "a reader keeps its snapshot until its next refresh"
        );
        // Retired but still in use by both readers: reclaiming must not free it.
        p.reclaim();
        assert!(weak_first.upgrade().is_some());
        assert!(r1.refresh());
        assert_eq!((r1.get().generation, r1.generation()), (2, 2));
        p.reclaim();
        assert!(weak_first.upgrade().is_some(), "reader 2 still holds it");
        assert!(r2.refresh());
        // The last reader let go of it, but only into the retired list:
        assert!(
            weak_first.upgrade().is_some(),
            "a reader never frees a snapshot"
        );
        assert_eq!(p.reclaim(), 0);
        assert!(weak_first.upgrade().is_none(), "the control side freed it");
        // Two publications within one reclaim: a reader with a full slot
        // waits, then jumps to the newest.
        let weak_second = Arc::downgrade(&p.current());
        p.publish(snap(3));
        assert!(r1.refresh(), "switched to 3, 2 handed back");
        p.publish(snap(4));
        assert!(!r1.refresh(), "slot full: keeps 3 for now");
        assert_eq!(r1.get().generation, 3);
        assert_eq!(p.reclaim(), 1, "2 is still r2's");
        assert!(r1.refresh());
        assert_eq!((r1.get().generation, r1.generation()), (4, 4));
        assert!(r2.refresh());
        assert_eq!(r2.get().generation, 4, "straight to the newest");
        p.reclaim();
        assert!(
            weak_second.upgrade().is_none(),
            "2 freed by the control side"
        );
        // A stopping reader hands its snapshot back too.
        let weak_fourth = Arc::downgrade(&p.current());
        p.publish(snap(5));
        drop(r1);
        drop(r2);
        assert!(weak_fourth.upgrade().is_some(), "not freed by the readers");
        p.reclaim();
        assert!(weak_fourth.upgrade().is_none());
    }
}

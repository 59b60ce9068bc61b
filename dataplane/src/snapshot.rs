//! Publishing a new load-balancing snapshot to running workers, RCU-style.
//!
//! The control thread builds a snapshot on the slow path and publishes it:
//! it replaces the current one and bumps a generation counter. A worker
//! checks the generation with one atomic load per burst; only when it
//! changed does it take the new snapshot (a lock, once per reload) and hand
//! its old one back. Workers never free a snapshot: the old one goes to a
//! retired list that the control thread empties, so the last reference — and
//! the free — is always on the control thread, after every worker has passed
//! a quiescent point (between two bursts) and let go of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dnlb_lb::snapshot::Snapshot;

#[derive(Debug)]
struct Shared {
    generation: AtomicU64,
    current: Mutex<Arc<Snapshot>>,
    retired: Mutex<Vec<Arc<Snapshot>>>,
}

/// The control thread's side.
#[derive(Debug, Clone)]
pub struct Publisher {
    shared: Arc<Shared>,
}

impl Publisher {
    /// Starts with `first` as the current snapshot (generation 1).
    pub fn new(first: Arc<Snapshot>) -> Self {
        Publisher {
            shared: Arc::new(Shared {
                generation: AtomicU64::new(1),
                current: Mutex::new(first),
                retired: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A reader for one worker, starting at the current snapshot.
    pub fn reader(&self) -> Reader {
        let generation = self.shared.generation.load(Ordering::Acquire);
        let local = self.current();
        Reader {
            shared: self.shared.clone(),
            local,
            seen: generation,
        }
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        self.shared
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes `next` current; returns the new generation. The previous one is
    /// retired (workers hand theirs back when they switch).
    pub fn publish(&self, next: Arc<Snapshot>) -> u64 {
        let old = std::mem::replace(
            &mut *self
                .shared
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            next,
        );
        self.retire(old);
        self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The published generation.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    fn retire(&self, s: Arc<Snapshot>) {
        self.shared
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
    }

    /// Frees retired snapshots that no worker holds any more (call from the
    /// control thread); returns how many are still held by workers.
    pub fn reclaim(&self) -> usize {
        let mut r = self
            .shared
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Dropping our reference frees the snapshot only if it is the last
        // one; those still held come back later through the workers.
        let still_held = r.iter().filter(|s| Arc::strong_count(s) > 1).count();
        r.clear();
        still_held
    }
}

/// One worker's side: its current snapshot and the generation it has seen.
#[derive(Debug)]
pub struct Reader {
    shared: Arc<Shared>,
    local: Arc<Snapshot>,
    seen: u64,
}

impl Reader {
    /// Once per burst: switches to a newly published snapshot if there is
    /// one (returns true then). One atomic load when nothing changed.
    #[inline]
    pub fn refresh(&mut self) -> bool {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g == self.seen {
            return false;
        }
        let next = self
            .shared
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let old = std::mem::replace(&mut self.local, next);
        // Never freed here: the control thread drops it.
        self.shared
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(old);
        self.seen = g;
        true
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
        // A stopping worker hands its snapshot back too.
        let s = self.local.clone();
        self.shared
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
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
        // A stopping reader hands its snapshot back too.
        let weak_second = Arc::downgrade(&p.current());
        p.publish(snap(3));
        drop(r1);
        drop(r2);
        assert!(weak_second.upgrade().is_some());
        p.reclaim();
        assert!(weak_second.upgrade().is_none());
    }
}

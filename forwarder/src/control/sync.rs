//! Flow-exception sync, the control plane's part: the bridge between the
//! workers' queues ([`SyncLink`]) and the gateway's sync endpoint
//! ([`dnlb_sync::Endpoint`]).
//!
//! Workers name flows by listener slot and backend id, which are this
//! gateway's own; peers name them by keys every gateway with the same
//! config computes ([`ListenerState::sync_key`], [`BackendState::sync_key`]).
//! The bridge translates both ways with maps built from the snapshot
//! workers run, on the control thread, once per tick: what workers found
//! goes to the endpoint, what peers said goes to every worker.
//!
//! [`ListenerState::sync_key`]: dnlb_lb::snapshot::ListenerState::sync_key
//! [`BackendState::sync_key`]: dnlb_lb::snapshot::BackendState::sync_key

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use dnlb_config::ExceptionSync;
use dnlb_dataplane::sync::SyncLink;
use dnlb_lb::ids::BackendId;
use dnlb_lb::processor::{Exception, LearnOp};
use dnlb_lb::snapshot::Snapshot;
use dnlb_sync::{Delivery, Endpoint, FetchReport, FlowException, Keys, Settings, SyncStats};
use tokio::runtime::Handle;

/// Entries peers sent that wait for the next tick; more are dropped and
/// counted (the endpoint's held store keeps them for fetches anyway).
const INBOX: usize = 1 << 16;
/// Found exceptions taken from each worker per tick at most.
const TAKE_PER_TICK: usize = 1 << 14;

/// The bridge's own counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeCounters {
    /// Exceptions workers found and the bridge queued for peers.
    pub shared: u64,
    /// Entries from peers handed to workers (counted once, not per worker).
    pub learned: u64,
    /// Withdrawals from peers handed to workers.
    pub withdrawn: u64,
    /// Entries from peers dropped: the bridge's inbox was full.
    pub inbox_dropped: u64,
    /// Ops dropped because a worker's queue was full (per worker).
    pub worker_queue_full: u64,
    /// Entries from peers naming a listener or backend this gateway does
    /// not have (another config version).
    pub unknown: u64,
}

/// What the sink pushes into, from the runtime's threads.
#[derive(Debug)]
struct Inbox {
    queue: ArrayQueue<(bool, FlowException)>,
    dropped: AtomicU64,
}

/// The names both ways, for one snapshot.
#[derive(Debug, Default)]
struct Names {
    /// The generation of the snapshot they were built from (0: none).
    generation: u64,
    listener_slot: HashMap<u64, u16>,
    listener_key: HashMap<u16, u64>,
    backend_id: HashMap<u64, BackendId>,
    backend_key: HashMap<u32, u64>,
}

impl Names {
    fn of(snap: &Snapshot, generation: u64) -> Names {
        let mut n = Names {
            generation,
            ..Names::default()
        };
        for l in &snap.listeners {
            n.listener_slot.insert(l.sync_key, l.slot);
            n.listener_key.insert(l.slot, l.sync_key);
        }
        for b in snap.backends.iter().flatten() {
            n.backend_id.insert(b.sync_key, b.id);
            n.backend_key.insert(b.id.0, b.sync_key);
        }
        n
    }

    /// A worker's exception as peers name it.
    fn outward(&self, e: &Exception) -> Option<FlowException> {
        Some(FlowException {
            listener: *self.listener_key.get(&e.listener_slot)?,
            flow: e.hash,
            backend: *self.backend_key.get(&e.backend.0)?,
            remaining_ms: e.remaining_ms,
            flags: if e.closing {
                dnlb_sync::FLAG_CLOSING
            } else {
                0
            },
        })
    }

    /// A peer's entry as workers name it.
    fn inward(&self, added: bool, e: &FlowException) -> Option<LearnOp> {
        let listener_slot = *self.listener_slot.get(&e.listener)?;
        if !added {
            return Some(LearnOp::Remove {
                listener_slot,
                hash: e.flow,
            });
        }
        Some(LearnOp::Add {
            listener_slot,
            hash: e.flow,
            backend: *self.backend_id.get(&e.backend)?,
            remaining_ms: e.remaining_ms,
            closing: e.closing(),
        })
    }
}

/// The bridge (see the module docs).
pub struct SyncBridge {
    endpoint: Endpoint,
    links: Vec<SyncLink>,
    inbox: Arc<Inbox>,
    names: Names,
    counters: BridgeCounters,
}

impl std::fmt::Debug for SyncBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncBridge")
            .field("workers", &self.links.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SyncBridge {
    /// Starts the endpoint of `cfg` for gateway `gateway` on `handle` and
    /// bridges it to the workers' `links`.
    pub fn start(
        cfg: &ExceptionSync,
        gateway: &str,
        links: Vec<SyncLink>,
        handle: &Handle,
    ) -> Result<SyncBridge, String> {
        let keys = Keys::from_files(&cfg.key_file, cfg.previous_key_file.as_deref())
            .map_err(|e| format!("sync: {e}"))?;
        let settings = Settings::from_model(cfg, dnlb_sync::sender_id(gateway));
        let inbox = Arc::new(Inbox {
            queue: ArrayQueue::new(INBOX),
            dropped: AtomicU64::new(0),
        });
        let sink = {
            let inbox = inbox.clone();
            move |d: Delivery<'_>| {
                let (added, entries) = match d {
                    Delivery::Exceptions { entries, .. } => (true, entries),
                    Delivery::Withdrawn { entries, .. } => (false, entries),
                };
                for e in entries {
                    if inbox.queue.push((added, *e)).is_err() {
                        inbox.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        let endpoint = Endpoint::start(settings, keys, sink, handle)
            .map_err(|e| format!("sync: cannot listen on {}: {e}", cfg.listen))?;
        Ok(SyncBridge {
            endpoint,
            links,
            inbox,
            names: Names::default(),
            counters: BridgeCounters::default(),
        })
    }

    /// Asks the peers for what they hold (before this gateway announces its
    /// VIPs) and hands it to the workers, named as in `snap`.
    pub fn fetch(&mut self, handle: &Handle, snap: &Snapshot, generation: u64) -> FetchReport {
        let report = handle.block_on(self.endpoint.fetch());
        self.rename(snap, generation);
        for e in &report.entries {
            self.hand_to_workers(true, e);
        }
        report
    }

    /// One tick: what workers found goes to the peers, what peers said goes
    /// to the workers; `snap` is what the workers run, `generation` its
    /// generation.
    pub fn tick(&mut self, snap: &Snapshot, generation: u64) {
        self.rename(snap, generation);
        self.endpoint.set_generation(generation);
        let mut out = Vec::new();
        for link in &self.links {
            for _ in 0..TAKE_PER_TICK {
                let Some(e) = link.found.pop() else { break };
                match self.names.outward(&e) {
                    Some(x) => out.push(x),
                    None => self.counters.unknown += 1,
                }
            }
        }
        if !out.is_empty() {
            self.counters.shared += self.endpoint.queue_exceptions(&out) as u64;
        }
        while let Some((added, e)) = self.inbox.queue.pop() {
            self.hand_to_workers(added, &e);
        }
        self.counters.inbox_dropped = self.inbox.dropped.load(Ordering::Relaxed);
    }

    /// Rebuilds the names when the workers' snapshot changed.
    fn rename(&mut self, snap: &Snapshot, generation: u64) {
        if self.names.generation != generation {
            self.names = Names::of(snap, generation);
        }
    }

    /// Hands a peer's entry to every worker.
    fn hand_to_workers(&mut self, added: bool, e: &FlowException) {
        let Some(op) = self.names.inward(added, e) else {
            self.counters.unknown += 1;
            return;
        };
        if added {
            self.counters.learned += 1;
        } else {
            self.counters.withdrawn += 1;
        }
        for link in &self.links {
            if link.learn.push(op).is_err() {
                self.counters.worker_queue_full += 1;
            }
        }
    }

    /// The endpoint's and the bridge's counters.
    pub fn stats(&self) -> (SyncStats, BridgeCounters) {
        (self.endpoint.stats(), self.counters)
    }

    /// The endpoint (peers, keys on reload).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

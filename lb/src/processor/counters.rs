//! A worker's load-balancing counters: plain integers owned by the worker,
//! sized on the slow path, counted without allocation on the packet path.

use super::sync::SyncCounters;
use crate::ids::BackendId;
use crate::policing::HostClass;
use crate::snapshot::Snapshot;
use crate::verdict::DropReason;

/// Packets and bytes (of the inner IP packet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Traffic {
    /// Counts one packet of `bytes`: two scalar additions to memory. (Left
    /// to itself the compiler packs them into one SSE load, shuffle, add
    /// and store, six instructions; the fence, which emits nothing, keeps
    /// the two apart.)
    #[inline(always)]
    pub fn count(&mut self, bytes: u64) {
        self.packets += 1;
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::Release);
        self.bytes += bytes;
    }

    /// Adds another count.
    pub fn add(&mut self, o: &Traffic) {
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

/// A worker's load-balancing counters (plain integers, owned by the worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbCounters {
    /// Per listener counter slot ([`crate::snapshot::ListenerState::slot`]):
    /// packets sent to a backend.
    pub listeners: Vec<Traffic>,
    /// Per listener counter slot: drops after the listener was found, by
    /// reason (no backend, too big, ...).
    pub listener_drops: Vec<[u64; DropReason::COUNT]>,
    /// Per backend id: packets sent to it.
    pub backends: Vec<Traffic>,
    /// Per backend id: drops after the backend was chosen, by reason (too
    /// big, ICMP rate limit, no headroom).
    pub backend_drops: Vec<[u64; DropReason::COUNT]>,
    /// Flows added to the flow table.
    pub new_flows: u64,
    /// New flows that found the flow table full (served by the stateless hash).
    pub flow_table_full: u64,
    /// Established flows moved because their backend became unusable.
    pub flows_rescheduled: u64,
    /// ICMP errors about VIP flows forwarded to their backend.
    pub icmp_errors_forwarded: u64,
    /// Fragmentation-needed / packet-too-big messages sent to clients.
    pub too_big_sent: u64,
    /// Echo replies sent.
    pub echo_replies: u64,
    /// The exception path by [`crate::policing::HostClass`]: frames passed
    /// to the host and dropped by its policer.
    pub host: [HostCount; HostClass::COUNT],
    /// Flow-exception sync (a copy of the sync state's, made when counters
    /// are published; zero without sync).
    pub sync: SyncCounters,
}

/// Frames of one exception-path class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCount {
    /// Passed to the host.
    pub passed: u64,
    /// Dropped beyond the class's rate.
    pub dropped: u64,
}

/// Listener slots and backend ids counters have room for from the start, so
/// adopting a snapshot within these bounds allocates nothing on the worker.
pub const RESERVED_LISTENERS: usize = 256;
/// See [`RESERVED_LISTENERS`].
pub const RESERVED_BACKENDS: usize = 4096;

impl LbCounters {
    /// Counters with room for [`RESERVED_LISTENERS`] and
    /// [`RESERVED_BACKENDS`] (slow path).
    pub fn reserved() -> Self {
        LbCounters {
            listeners: Vec::with_capacity(RESERVED_LISTENERS),
            listener_drops: Vec::with_capacity(RESERVED_LISTENERS),
            backends: Vec::with_capacity(RESERVED_BACKENDS),
            backend_drops: Vec::with_capacity(RESERVED_BACKENDS),
            ..LbCounters::default()
        }
    }

    /// Grows the tables to what `snap` needs (at a snapshot switch; within
    /// the reserved room it does not allocate).
    pub fn size_for(&mut self, snap: &Snapshot) {
        let slots = snap.listener_slots();
        if self.listeners.len() < slots {
            self.listeners.resize(slots, Traffic::default());
            self.listener_drops.resize(slots, [0; DropReason::COUNT]);
        }
        let ids = snap.backends.len();
        if self.backends.len() < ids {
            self.backends.resize(ids, Traffic::default());
            self.backend_drops.resize(ids, [0; DropReason::COUNT]);
        }
    }

    /// A drop after listener `slot` was found.
    #[inline]
    pub(crate) fn listener_drop(&mut self, slot: u16, reason: DropReason) {
        if let Some(d) = self.listener_drops.get_mut(slot as usize) {
            d[reason as usize] += 1;
        }
    }

    /// A drop after `backend` was chosen.
    #[inline]
    pub(crate) fn backend_drop(&mut self, backend: BackendId, reason: DropReason) {
        if let Some(d) = self.backend_drops.get_mut(backend.0 as usize) {
            d[reason as usize] += 1;
        }
    }

    /// A packet of `bytes` sent through listener `slot` to `backend`.
    #[inline(always)]
    pub(crate) fn sent(&mut self, slot: u16, backend: BackendId, bytes: u64) {
        if let Some(c) = self.listeners.get_mut(slot as usize) {
            c.count(bytes);
        }
        if let Some(c) = self.backends.get_mut(backend.0 as usize) {
            c.count(bytes);
        }
    }

    /// Adds another worker's counters (the tables grow to the longer one).
    pub fn add(&mut self, o: &LbCounters) {
        for (mine, theirs) in [
            (&mut self.listeners, &o.listeners),
            (&mut self.backends, &o.backends),
        ] {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), Traffic::default());
            }
            for (a, b) in mine.iter_mut().zip(theirs) {
                a.add(b);
            }
        }
        for (mine, theirs) in [
            (&mut self.listener_drops, &o.listener_drops),
            (&mut self.backend_drops, &o.backend_drops),
        ] {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), [0; DropReason::COUNT]);
            }
            for (a, b) in mine.iter_mut().zip(theirs) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
        }
        self.new_flows += o.new_flows;
        self.flow_table_full += o.flow_table_full;
        self.flows_rescheduled += o.flows_rescheduled;
        self.icmp_errors_forwarded += o.icmp_errors_forwarded;
        self.too_big_sent += o.too_big_sent;
        self.echo_replies += o.echo_replies;
        for (a, b) in self.host.iter_mut().zip(&o.host) {
            a.passed += b.passed;
            a.dropped += b.dropped;
        }
        self.sync.add(&o.sync);
    }
}

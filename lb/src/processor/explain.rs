//! `dnlb explain`: where a flow's packets go and why, read without changing
//! anything.
//!
//! Two parts. [`explain_table`] is what any gateway computes from a
//! [`Snapshot`] alone: the listener (or why none), the access list's word,
//! the scheduler's hash, the table slot and its backend, and a staged
//! version's answer. [`Processor::explain`] is one worker's part: its flow
//! table's entry for the flow and, with flow-exception sync, its learned
//! entry (the processor computes its own fingerprint with its seed; it
//! `peek`s, never looks up, so nothing is refreshed or reclaimed).
//! [`verdict`] puts them together the way [`super::policy::pick`] decides
//! for a packet of an established flow (not a SYN).
//!
//! Called on request, never per packet: the worker answers from its poll
//! loop (see `dnlb-dataplane`'s `explain`), and nothing here allocates but
//! [`verdict`], which runs on the control thread.

use std::net::IpAddr;

use dnlb_model::Scheduler;

use super::parse::{Family, Tuple, V4, V6};
use super::policy::schedule_hash;
use super::value::{BACKEND_BITS, CLOSING, PINNED};
use super::Processor;
use crate::flow_table::fingerprint_of_mix;
use crate::ids::{BackendId, ListenerId};
use crate::snapshot::{ListenerState, Snapshot, ZoneRule};
use crate::vip::VipMatch;

/// A flow to explain: a packet from `src`:`sport` to `dst`:`dport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowQuery {
    /// Client address.
    pub src: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Destination (a VIP, or not).
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
}

/// Which listener a flow matches, or why none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Source and destination are of different IP families.
    MixedFamilies,
    /// The destination is not a VIP: the packet is left to the host.
    NotVip,
    /// A VIP, but no listener for this protocol and port: dropped.
    NoListener,
    /// The listener's access list denies the source: dropped.
    AclDenied(ListenerId),
    /// The listener takes it.
    Listener(ListenerId),
}

/// The stateless part: what the listener's table says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TablePick {
    /// The listener's scheduler.
    pub scheduler: Scheduler,
    /// The scheduler's hash of the flow (5-tuple or client address).
    pub hash: u64,
    /// The table slot the hash selects.
    pub slot: u32,
    /// The table's size.
    pub table_size: u32,
    /// The backend in that slot (`None`: no backend takes new flows).
    pub backend: Option<BackendId>,
    /// While a version is staged (flow-exception sync): its table's
    /// backend for the flow.
    pub staged: Option<Option<BackendId>>,
}

/// One snapshot's answer for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableAnswer {
    /// The snapshot's generation.
    pub generation: u64,
    /// The listener, or why none.
    pub matched: Match,
    /// The table's choice, when a listener takes the flow.
    pub pick: Option<TablePick>,
}

/// An entry a worker holds for the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// Its backend.
    pub backend: BackendId,
    /// The client closed the connection (FIN or RST seen): it lives only
    /// the closing timeout.
    pub closing: bool,
    /// A SYN pinned while a version is staged (sync).
    pub pinned: bool,
    /// Milliseconds it lives without another packet.
    pub remaining_ms: u32,
    /// Its backend is usable for the flow's listener in the worker's
    /// snapshot (else the next packet is scheduled anew).
    pub usable: bool,
}

/// One worker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerAnswer {
    /// The generation of the snapshot the worker runs.
    pub generation: u64,
    /// Its flow table's entry for the flow.
    pub flow: Option<Tracked>,
    /// Its learned entry (flow-exception sync) for the flow.
    pub learned: Option<Tracked>,
    /// Whether the worker takes part in flow-exception sync.
    pub sync: bool,
}

/// Why a flow goes where it goes (or nowhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Source and destination are of different IP families.
    MixedFamilies,
    /// Not a VIP: left to the host.
    NotVip,
    /// A VIP without a listener for this protocol and port.
    NoListener,
    /// The listener's access list denies the source.
    AclDenied,
    /// A worker tracks the flow and its backend is usable: it stays there.
    FlowTable,
    /// A worker tracks the flow but its backend is no longer usable: the
    /// next packet is scheduled anew.
    FlowBackendUnusable,
    /// An entry learned from a peer gateway (sync) sends it there.
    Learned,
    /// Maglev on the 5-tuple.
    Maglev,
    /// Maglev on the client address (source-IP scheduler).
    SourceIp,
    /// The group prefers the gateway's zone: the table holds only its
    /// backends.
    OwnZone,
    /// The group prefers the gateway's zone, but none of its backends
    /// there takes new flows: every zone's do.
    ZoneFallback,
    /// Every backend of the group is down and it fails open.
    FailOpen,
    /// No backend takes new flows: dropped.
    NoBackend,
    /// A staged version (sync) would send new flows of this kind elsewhere.
    Staged,
}

impl Reason {
    /// A short name (JSON).
    pub fn name(self) -> &'static str {
        match self {
            Reason::MixedFamilies => "mixed_families",
            Reason::NotVip => "not_a_vip",
            Reason::NoListener => "no_listener",
            Reason::AclDenied => "acl_denied",
            Reason::FlowTable => "flow_table_hit",
            Reason::FlowBackendUnusable => "flow_backend_unusable",
            Reason::Learned => "learned_entry",
            Reason::Maglev => "maglev",
            Reason::SourceIp => "source_ip",
            Reason::OwnZone => "own_zone",
            Reason::ZoneFallback => "zone_fallback",
            Reason::FailOpen => "fail_open",
            Reason::NoBackend => "no_backend",
            Reason::Staged => "staged_version",
        }
    }

    /// What it means, in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::MixedFamilies => "source and destination are of different IP families",
            Reason::NotVip => "the destination is not a VIP: the packet is left to the host",
            Reason::NoListener => "the VIP has no listener for this protocol and port: dropped",
            Reason::AclDenied => "the listener's access list denies the source: dropped",
            Reason::FlowTable => "a worker tracks this flow: it stays on its backend",
            Reason::FlowBackendUnusable => {
                "a worker tracks this flow, but its backend is no longer usable: scheduled anew"
            }
            Reason::Learned => "a peer gateway shared this flow (sync): its backend is kept",
            Reason::Maglev => "Maglev on the 5-tuple",
            Reason::SourceIp => "Maglev on the client address (source-IP scheduler)",
            Reason::OwnZone => {
                "the group prefers this gateway's zone: only its backends take new flows"
            }
            Reason::ZoneFallback => {
                "no backend in this gateway's zone takes new flows: every zone's do (fallback)"
            }
            Reason::FailOpen => "every backend of the group is down and the group fails open",
            Reason::NoBackend => "no backend takes new flows: dropped",
            Reason::Staged => "a staged version would send new flows elsewhere",
        }
    }
}

/// Where the next packet of the flow (not a SYN) goes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The backend (`None`: not forwarded to one).
    pub backend: Option<BackendId>,
    /// Why, the deciding reason first.
    pub reasons: Vec<Reason>,
}

/// The flow as family `F` sees it, if both addresses are of that family.
fn tuple<F: Family>(
    q: &FlowQuery,
    addr: impl Fn(IpAddr) -> Option<F::Addr>,
) -> Option<Tuple<F::Addr>> {
    Some(Tuple {
        src: addr(q.src)?,
        dst: addr(q.dst)?,
        proto: q.proto,
        sport: q.sport,
        dport: q.dport,
    })
}

fn v4(a: IpAddr) -> Option<[u8; 4]> {
    match a {
        IpAddr::V4(a) => Some(a.octets()),
        IpAddr::V6(_) => None,
    }
}

fn v6(a: IpAddr) -> Option<[u8; 16]> {
    match a {
        IpAddr::V6(a) => Some(a.octets()),
        IpAddr::V4(_) => None,
    }
}

/// The listener and scheduler hash of `t` in `snap`, without the access
/// list.
fn listener<'a, F: Family>(
    snap: &'a Snapshot,
    t: &Tuple<F::Addr>,
) -> Result<(&'a ListenerState, u64), Match> {
    match F::listener(&snap.vips, t.dst, t.proto, t.dport) {
        VipMatch::NotVip => Err(Match::NotVip),
        VipMatch::NoListener => Err(Match::NoListener),
        VipMatch::Listener(id) => {
            let l = &snap.listeners[id.0 as usize];
            Ok((l, schedule_hash::<F>(l, t)))
        }
    }
}

fn table_of<F: Family>(snap: &Snapshot, t: &Tuple<F::Addr>) -> TableAnswer {
    let answer = |matched, pick| TableAnswer {
        generation: snap.generation,
        matched,
        pick,
    };
    let (l, hash) = match listener::<F>(snap, t) {
        Ok(x) => x,
        Err(m) => return answer(m, None),
    };
    if let Some(acl) = &l.acl {
        if !F::acl(acl, t.src).allow() {
            return answer(Match::AclDenied(l.id), None);
        }
    }
    let pick = TablePick {
        scheduler: l.scheduler,
        hash,
        slot: l.table.slot(hash),
        table_size: l.table.size(),
        backend: l.table.lookup(hash),
        staged: l.next_table.as_ref().map(|n| n.lookup(hash)),
    };
    answer(Match::Listener(l.id), Some(pick))
}

/// What snapshot `snap` says of flow `q` (no worker state).
pub fn explain_table(snap: &Snapshot, q: &FlowQuery) -> TableAnswer {
    if let Some(t) = tuple::<V4>(q, v4) {
        return table_of::<V4>(snap, &t);
    }
    if let Some(t) = tuple::<V6>(q, v6) {
        return table_of::<V6>(snap, &t);
    }
    TableAnswer {
        generation: snap.generation,
        matched: Match::MixedFamilies,
        pick: None,
    }
}

/// An entry's value and remaining time as [`Tracked`] for listener `l`.
fn tracked(snap: &Snapshot, l: Option<&ListenerState>, (v, remaining_ms): (u32, u32)) -> Tracked {
    let backend = BackendId(v & BACKEND_BITS);
    Tracked {
        backend,
        closing: v & CLOSING != 0,
        pinned: v & PINNED != 0,
        remaining_ms,
        usable: l.is_some_and(|l| {
            snap.backend(backend)
                .is_some_and(|b| b.usable && b.group == l.group)
        }),
    }
}

impl Processor {
    /// This worker's answer for flow `q` under `snap` (the snapshot it
    /// runs) at `now`: its flow-table entry and its learned entry, read
    /// without refreshing or reclaiming anything.
    pub fn explain(&self, snap: &Snapshot, q: &FlowQuery, now: u32) -> WorkerAnswer {
        if let Some(t) = tuple::<V4>(q, v4) {
            return self.explain_in::<V4>(snap, &t, now);
        }
        if let Some(t) = tuple::<V6>(q, v6) {
            return self.explain_in::<V6>(snap, &t, now);
        }
        WorkerAnswer {
            generation: snap.generation,
            sync: self.sync.is_some(),
            ..WorkerAnswer::default()
        }
    }

    fn explain_in<F: Family>(&self, snap: &Snapshot, t: &Tuple<F::Addr>, now: u32) -> WorkerAnswer {
        let found = listener::<F>(snap, t).ok();
        let l = found.map(|(l, _)| l);
        let fp = fingerprint_of_mix(self.seed, F::flow_mix(t));
        let flow = self
            .flows
            .peek_remaining(fp, now)
            .map(|e| tracked(snap, l, e));
        let learned = match (self.sync.as_deref(), found) {
            (Some(s), Some((l, hash))) => s
                .recall_remaining(l.slot, hash, now)
                .map(|e| tracked(snap, Some(l), e)),
            _ => None,
        };
        WorkerAnswer {
            generation: snap.generation,
            flow,
            learned,
            sync: self.sync.is_some(),
        }
    }
}

/// Where the next packet of the flow (one that is not a SYN) goes and why,
/// from the current snapshot's answer `table` and the workers' answers,
/// decided as the packet path decides: a tracked flow with a usable
/// backend keeps it; else a usable learned entry; else the table.
pub fn verdict(snap: &Snapshot, table: &TableAnswer, workers: &[WorkerAnswer]) -> Verdict {
    let mut reasons = Vec::new();
    let pick = match (table.matched, table.pick) {
        (Match::Listener(id), Some(p)) => (id, p),
        (m, _) => {
            reasons.push(match m {
                Match::MixedFamilies => Reason::MixedFamilies,
                Match::NotVip => Reason::NotVip,
                Match::NoListener => Reason::NoListener,
                Match::AclDenied(_) | Match::Listener(_) => Reason::AclDenied,
            });
            return Verdict {
                backend: None,
                reasons,
            };
        }
    };
    let (id, p) = pick;
    let staged = p.staged.is_some_and(|s| s != p.backend);
    let flows = workers.iter().filter_map(|w| w.flow);
    if let Some(f) = flows.clone().find(|f| f.usable) {
        reasons.push(Reason::FlowTable);
        reasons.extend(staged.then_some(Reason::Staged));
        return Verdict {
            backend: Some(f.backend),
            reasons,
        };
    }
    let rescheduled = flows.clone().next().is_some();
    if rescheduled {
        reasons.push(Reason::FlowBackendUnusable);
    }
    let learned = workers.iter().filter_map(|w| w.learned).find(|e| e.usable);
    if let (false, Some(e)) = (rescheduled, learned) {
        reasons.push(Reason::Learned);
        reasons.extend(staged.then_some(Reason::Staged));
        return Verdict {
            backend: Some(e.backend),
            reasons,
        };
    }
    reasons.push(match p.scheduler {
        Scheduler::Maglev => Reason::Maglev,
        Scheduler::SourceIp => Reason::SourceIp,
    });
    let group = snap
        .listeners
        .get(id.0 as usize)
        .and_then(|l| snap.groups.get(l.group as usize));
    if let Some(g) = group {
        match g.zone_rule {
            ZoneRule::OwnZone => reasons.push(Reason::OwnZone),
            ZoneRule::FellBack => reasons.push(Reason::ZoneFallback),
            ZoneRule::Any => {}
        }
        if g.fail_open {
            reasons.push(Reason::FailOpen);
        }
    }
    if p.backend.is_none() {
        reasons.push(Reason::NoBackend);
    }
    if staged {
        reasons.push(Reason::Staged);
    }
    Verdict {
        backend: p.backend,
        reasons,
    }
}

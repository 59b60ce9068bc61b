//! `dnlb explain`: where a flow's packets go and why, as the admin API
//! answers it (`GET /v1/explain`) and `dnlb explain` prints it.
//!
//! The control thread computes the stateless part from the current, the
//! previous and a staged snapshot (`dnlb_lb::processor::explain_table`) and
//! asks every worker for its flow-table and learned entries through the
//! [`dnlb_dataplane::ExplainBoard`] (answered from the workers' poll loops,
//! without locks); [`dnlb_lb::processor::verdict`] puts them together.

use std::net::IpAddr;
use std::time::Duration;

use dnlb_lb::ids::BackendId;
use dnlb_lb::processor::{
    explain_table, verdict, FlowQuery, Match, TableAnswer, Tracked, WorkerAnswer,
};
use dnlb_lb::snapshot::Snapshot;
use serde::{Deserialize, Serialize};

use super::plane::ControlPlane;

/// How long the control thread waits for workers' answers.
const WORKER_TIMEOUT: Duration = Duration::from_millis(500);

/// The flow asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSpec {
    /// Client address.
    pub src: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

/// A backend as `dnlb explain` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendRef {
    /// Its id (stable across snapshots while it is configured).
    pub id: u32,
    /// Target group (`None`: the id is not in that snapshot any more).
    pub target_group: Option<String>,
    /// Tunnel endpoint address.
    pub address: Option<IpAddr>,
    /// Zone.
    pub zone: Option<String>,
    /// Usable (healthy or failing open, not drained).
    pub usable: bool,
    /// Takes new flows (in the listeners' tables).
    pub takes_new_flows: bool,
}

/// What one snapshot's table says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableView {
    /// The snapshot's generation.
    pub generation: u64,
    /// `listener`, `not_a_vip`, `no_listener`, `acl_denied` or
    /// `mixed_families`.
    pub matched: String,
    /// The listener (matched or denying).
    pub listener: Option<String>,
    /// `maglev` or `source_ip`.
    pub scheduler: Option<String>,
    /// The scheduler's hash (hex).
    pub hash: Option<String>,
    /// The table slot.
    pub slot: Option<u32>,
    /// The table size.
    pub table_size: Option<u32>,
    /// The backend in that slot.
    pub backend: Option<BackendRef>,
}

/// An entry a worker holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    /// Its backend.
    pub backend: BackendRef,
    /// The client closed the connection (FIN or RST).
    pub closing: bool,
    /// A SYN pinned while a version is staged.
    pub pinned: bool,
    /// Milliseconds it lives without another packet.
    pub remaining_ms: u32,
    /// Its backend is usable for the listener (else the flow is scheduled
    /// anew).
    pub usable: bool,
}

/// One worker's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    /// Worker index.
    pub worker: usize,
    /// Its lcore.
    pub lcore: u32,
    /// Whether it answered in time (else the rest is empty).
    pub answered: bool,
    /// The generation it runs.
    pub generation: Option<u64>,
    /// Its flow table's entry.
    pub flow: Option<EntryView>,
    /// Its learned entry (flow-exception sync).
    pub learned: Option<EntryView>,
    /// Whether it takes part in sync.
    pub sync: bool,
}

/// A reason, by name and in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonView {
    /// Short name (`flow_table_hit`, `maglev`, ...).
    pub reason: String,
    /// In a sentence.
    pub text: String,
}

/// A staged version (flow-exception sync) and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedView {
    /// Milliseconds until it is used.
    pub due_in_ms: u64,
    /// What its table says.
    pub table: TableView,
}

/// `GET /v1/explain`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The flow.
    pub flow: FlowSpec,
    /// Where its next packet (not a SYN) goes: `None` when nowhere.
    pub backend: Option<BackendRef>,
    /// Why, the deciding reason first.
    pub reasons: Vec<ReasonView>,
    /// The current snapshot's table.
    pub current_table: TableView,
    /// The previous snapshot's table (`None`: no change since the start).
    pub previous_table: Option<TableView>,
    /// A version staged, not yet used.
    pub staged: Option<StagedView>,
    /// Every worker's answer.
    pub workers: Vec<WorkerView>,
    /// Lcores of workers that did not answer in time.
    pub unanswered: Vec<u32>,
}

fn backend_ref(snap: &Snapshot, id: BackendId) -> BackendRef {
    let b = snap.backend(id);
    BackendRef {
        id: id.0,
        target_group: b.and_then(|b| snap.groups.get(b.group as usize).map(|g| g.name.clone())),
        address: b.map(|b| b.address),
        zone: b.and_then(|b| b.zone.clone()),
        usable: b.is_some_and(|b| b.usable),
        takes_new_flows: b.is_some_and(|b| b.takes_new_flows),
    }
}

fn table_view(snap: &Snapshot, t: &TableAnswer) -> TableView {
    let (matched, listener) = match t.matched {
        Match::MixedFamilies => ("mixed_families", None),
        Match::NotVip => ("not_a_vip", None),
        Match::NoListener => ("no_listener", None),
        Match::AclDenied(id) => ("acl_denied", Some(id)),
        Match::Listener(id) => ("listener", Some(id)),
    };
    let p = t.pick;
    TableView {
        generation: t.generation,
        matched: matched.into(),
        listener: listener
            .and_then(|id| snap.listeners.get(id.0 as usize))
            .map(|l| l.name.clone()),
        scheduler: p.map(|p| p.scheduler.name().to_string()),
        hash: p.map(|p| format!("{:#018x}", p.hash)),
        slot: p.map(|p| p.slot),
        table_size: p.map(|p| p.table_size),
        backend: p.and_then(|p| p.backend).map(|id| backend_ref(snap, id)),
    }
}

fn entry_view(snap: &Snapshot, e: Tracked) -> EntryView {
    EntryView {
        backend: backend_ref(snap, e.backend),
        closing: e.closing,
        pinned: e.pinned,
        remaining_ms: e.remaining_ms,
        usable: e.usable,
    }
}

/// The protocol's name (`tcp`, `udp`, else the number).
fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        n => n.to_string(),
    }
}

/// Explains flow `q` on this gateway: `None` without listeners (the
/// gateway only forwards).
pub fn explain(plane: &ControlPlane, q: &FlowQuery) -> Option<Explanation> {
    let snap = plane.snapshot()?;
    let current = explain_table(&snap, q);
    let answers = plane.explain_board().ask(q, WORKER_TIMEOUT);
    let lcores = plane.workers().iter().map(|(l, _)| *l);
    let answered: Vec<WorkerAnswer> = answers.iter().flatten().copied().collect();
    let v = verdict(&snap, &current, &answered);
    let workers = answers
        .iter()
        .zip(lcores)
        .enumerate()
        .map(|(worker, (a, lcore))| WorkerView {
            worker,
            lcore,
            answered: a.is_some(),
            generation: a.map(|a| a.generation),
            flow: a.and_then(|a| a.flow).map(|e| entry_view(&snap, e)),
            learned: a.and_then(|a| a.learned).map(|e| entry_view(&snap, e)),
            sync: a.is_some_and(|a| a.sync),
        })
        .collect::<Vec<_>>();
    let previous = plane.previous_snapshot();
    Some(Explanation {
        flow: FlowSpec {
            src: q.src,
            sport: q.sport,
            dst: q.dst,
            dport: q.dport,
            proto: proto_name(q.proto),
        },
        backend: v.backend.map(|id| backend_ref(&snap, id)),
        reasons: v
            .reasons
            .iter()
            .map(|r| ReasonView {
                reason: r.name().into(),
                text: r.describe().into(),
            })
            .collect(),
        current_table: table_view(&snap, &current),
        previous_table: previous.map(|p| table_view(&p, &explain_table(&p, q))),
        staged: plane.staged().map(|(s, due)| StagedView {
            due_in_ms: due.as_millis() as u64,
            table: table_view(&s, &explain_table(&s, q)),
        }),
        unanswered: workers
            .iter()
            .filter(|w| !w.answered)
            .map(|w| w.lcore)
            .collect(),
        workers,
    })
}

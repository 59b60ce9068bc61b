//! Which backend a packet goes to: the listener's scheduler, the worker's
//! flow table (an established flow keeps its backend while it is usable),
//! TCP closing, and the listener of a fragment. It updates the flow table
//! and says what happened ([`Picked`]); counting is the caller's.

use dnlb_model::{FragmentPolicy, Scheduler};
use dnlb_wire::ip::IPPROTO_TCP;
use dnlb_wire::tcp::TcpFlags;

use super::parse::{Family, Tuple};
use super::sync::SyncState;
use super::value::{BACKEND_BITS, CLOSING, PINNED, PIN_TIMEOUT_MS};
use crate::flow_table::{Aux, FlowTable};
use crate::ids::BackendId;
use crate::snapshot::{ListenerState, Snapshot};
use crate::verdict::DropReason;
use crate::vip::FragmentTarget;

/// The scheduler's hash of a flow (5-tuple, or the client address).
#[inline(always)]
pub(super) fn schedule_hash<F: Family>(l: &ListenerState, t: &Tuple<F::Addr>) -> u64 {
    hash_from_mix::<F>(l.scheduler, F::flow_mix(t), t.src)
}

/// [`schedule_hash`] for a listener with `scheduler`, given the flow's mix
/// ([`Family::flow_mix`], which the Maglev scheduler's hash finishes) and
/// client address `src`.
#[inline(always)]
pub(super) fn hash_from_mix<F: Family>(scheduler: Scheduler, mix: u64, src: F::Addr) -> u64 {
    match scheduler {
        Scheduler::Maglev => crate::hash::flow_hash_of_mix(mix),
        Scheduler::SourceIp => F::src_hash(src),
    }
}

/// A TCP/UDP packet's flow as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct FlowKey {
    /// Flow-table fingerprint.
    pub fp: u64,
    /// Scheduler hash.
    pub hash: u64,
    /// IP protocol.
    pub proto: u8,
    /// TCP flags (none for UDP).
    pub tcp_flags: TcpFlags,
}

/// The backend chosen for a flow, and what choosing it did to the flow
/// table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Picked {
    /// The backend, or why there is none.
    pub backend: Result<BackendId, DropReason>,
    /// The flow was tracked, but its backend became unusable.
    pub rescheduled: bool,
    /// A new entry was stored (`Some(true)`) or found the table full
    /// (`Some(false)`); `None`: no new entry was due.
    pub inserted: Option<bool>,
    /// Flow-exception sync: the flow must be shared with peers now (a
    /// pinned handshake's first ACK, or a new flow a staged table moves).
    pub share: bool,
    /// Flow-exception sync: a peer's learned entry chose the backend.
    pub learned: bool,
    /// Flow-exception sync: a SYN was pinned.
    pub pinned: bool,
}

impl Picked {
    /// `backend`, nothing else happened.
    #[inline(always)]
    fn just(backend: Result<BackendId, DropReason>, rescheduled: bool) -> Self {
        Picked {
            backend,
            rescheduled,
            inserted: None,
            share: false,
            learned: false,
            pinned: false,
        }
    }
}

/// The backend of a TCP/UDP flow: the flow table's if it is still usable
/// for this listener, else the listener's table (and remember it).
/// A packet that would open a flow (a bare TCP SYN, a UDP datagram of an
/// untracked flow; not a tracked flow moving off an unusable backend) must
/// first pass `opening` (the new-flow limits).
///
/// With flow-exception sync (`SYNC`, and `sync` given): an untracked flow's packet
/// other than a SYN first asks the entries peers shared (a flow that ECMP
/// moved here from another gateway); while a version is staged
/// (`l.next_table`), a SYN whose backend the staged table would change is
/// stored (pinned) so its handshake ends where it began, and a new flow the
/// staged table would move is marked for sharing.
///
/// Always inlined into the processor's flow step (one call site per IP
/// family and sync mode), so that [`FlowKey`] and [`Picked`] never go
/// through memory. `SYNC` makes two copies: without sync, the packet path
/// has none of its tests and writes no [`Aux`].
#[inline(always)]
pub(super) fn pick<const SYNC: bool>(
    flows: &mut FlowTable,
    snap: &Snapshot,
    l: &ListenerState,
    k: FlowKey,
    now: u32,
    sync: Option<&SyncState>,
    opening: impl FnOnce() -> Result<(), DropReason>,
) -> Picked {
    let tcp = k.proto == IPPROTO_TCP;
    let timeout = if tcp {
        snap.params.tcp_timeout_ms
    } else {
        snap.params.udp_timeout_ms
    };
    // The client's FIN or RST: the connection is ending. Its entry then
    // lives only the closing timeout past its last packet, until a new SYN
    // on the same 5-tuple opens a connection again.
    let flags = k.tcp_flags;
    let fin_rst = tcp && (flags.contains(TcpFlags::FIN) || flags.contains(TcpFlags::RST));
    let syn = tcp && flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK);
    let closing_timeout = snap.params.tcp_closing_timeout_ms;
    let aux = Aux {
        hash: k.hash,
        listener_slot: l.slot,
        flags: 0,
    };
    let mut rescheduled = false;
    if let Some(v) = flows.lookup(k.fp, now, timeout) {
        let id = BackendId(v & BACKEND_BITS);
        match snap.backend(id) {
            Some(b) if b.usable && b.group == l.group => {
                let mut p = Picked::just(Ok(id), false);
                p.share = on_hit::<SYNC>(
                    flows,
                    k.fp,
                    v,
                    (syn, fin_rst),
                    (timeout, closing_timeout),
                    now,
                );
                return p;
            }
            _ => rescheduled = true,
        }
    }
    // A flow this worker does not track, moved here by ECMP from a gateway
    // that shared it: its backend, if still usable here.
    let learned = match (SYNC, sync) {
        (true, Some(s)) if !syn && !rescheduled => learned(s, snap, l, k.hash, now),
        _ => None,
    };
    if let Some((id, closing)) = learned {
        let (value, t) = entry(id, closing || fin_rst, (timeout, closing_timeout));
        let mut p = Picked::just(Ok(id), false);
        p.learned = true;
        if !tcp || flags.contains(TcpFlags::ACK) || fin_rst {
            p.inserted = Some(flows.insert_with(k.fp, value, now, t, aux).is_ok());
        }
        return p;
    }
    if !rescheduled && (syn || !tcp) {
        if let Err(reason) = opening() {
            return Picked::just(Err(reason), rescheduled);
        }
    }
    let Some(id) = l.table.lookup(k.hash) else {
        return Picked::just(Err(DropReason::NoBackend), rescheduled);
    };
    debug_assert!(id.0 & !BACKEND_BITS == 0, "backend ids stay below 2^30");
    // While a version is staged: whether it would move this flow (a SYN
    // is then pinned). Whether some table in the fleet sends it elsewhere:
    // that one, another zone's under `prefer_own`, or the one the fleet
    // would use after losing a zone other than its backend's (shared at
    // once).
    let staged_moves = SYNC
        && l.next_table
            .as_ref()
            .is_some_and(|n| n.lookup(k.hash) != Some(id));
    let moved = SYNC && (staged_moves || fleet_disagrees(snap, l, k.hash, id));
    // Only a TCP segment that acknowledges something (ACK, no SYN, no RST)
    // can belong to an established connection, so only it takes an entry.
    // A bare SYN opens nothing yet (every gateway answers it alike from the
    // table, and the handshake's first ACK makes the entry; unless a staged
    // version would move it: see PINNED); a RST ends
    // what was not tracked; segments without ACK (null, FIN and xmas scans)
    // or a client's SYN+ACK belong to no connection. None of them is
    // stored, so floods of them from any number of sources never fill the
    // table, and cost what a hit costs.
    let stateful = !tcp
        || (flags.contains(TcpFlags::ACK)
            && !flags.contains(TcpFlags::SYN)
            && !flags.contains(TcpFlags::RST));
    if !stateful {
        let mut p = Picked::just(Ok(id), rescheduled);
        if syn && staged_moves {
            // Pinned, so the handshake's next packets (here or, once
            // shared, anywhere) keep this backend after the switch.
            p.inserted = Some(
                flows
                    .insert_with(k.fp, id.0 | PINNED, now, PIN_TIMEOUT_MS, aux)
                    .is_ok(),
            );
            p.pinned = true;
        }
        return p;
    }
    let (value, t) = entry(id, fin_rst, (timeout, closing_timeout));
    let mut p = Picked::just(Ok(id), rescheduled);
    let r = if SYNC {
        flows.insert_with(k.fp, value, now, t, aux)
    } else {
        flows.insert(k.fp, value, now, t)
    };
    p.inserted = Some(r.is_ok());
    p.share = moved;
    p
}

/// With sync: whether another zone's table, or the table after losing a
/// zone other than `id`'s, sends a flow with scheduler hash `hash`
/// elsewhere than `id` (then it is shared as it starts).
#[inline(always)]
fn fleet_disagrees(snap: &Snapshot, l: &ListenerState, hash: u64, id: BackendId) -> bool {
    (!l.peer_tables.is_empty() || !l.loss_tables.is_empty())
        && l.is_exception(hash, id, snap.backend(id).map_or(0, |b| b.zone_tag))
}

/// A new entry's value and timeout for backend `id`: closing (the client's
/// FIN or RST) or not.
#[inline(always)]
fn entry(id: BackendId, closing: bool, (timeout, closing_timeout): (u32, u32)) -> (u32, u32) {
    if closing {
        (id.0 | CLOSING, closing_timeout)
    } else {
        (id.0, timeout)
    }
}

/// What a packet of a tracked flow (value `v`, backend usable) does to its
/// entry: the client's FIN or RST makes it closing; a packet after a
/// closing one (not a SYN) keeps it closing, a new SYN on the tuple opens it
/// again; with sync, a pinned SYN retransmitted stays pinned (not refreshed
/// for long) and its handshake's first ACK makes it a flow like any other.
/// Returns whether the flow must be shared now (that first ACK).
#[inline(always)]
fn on_hit<const SYNC: bool>(
    flows: &mut FlowTable,
    fp: u64,
    v: u32,
    (syn, fin_rst): (bool, bool),
    (timeout, closing_timeout): (u32, u32),
    now: u32,
) -> bool {
    let id = v & BACKEND_BITS;
    let was_closing = v & CLOSING != 0;
    if fin_rst || (was_closing && !syn) {
        // Replaces the entry in place (it is there).
        let _ = flows.insert(fp, id | CLOSING, now, closing_timeout);
    } else if SYNC && v & PINNED != 0 {
        let (value, t) = if syn {
            (v, PIN_TIMEOUT_MS)
        } else {
            (id, timeout)
        };
        let _ = flows.insert(fp, value, now, t);
        return !syn;
    } else if was_closing {
        let _ = flows.insert(fp, id, now, timeout);
    }
    false
}

/// The backend a peer shared for listener `l`'s flow with scheduler hash
/// `hash` (and whether it was closing), if it is usable here.
#[inline(always)]
fn learned(
    s: &SyncState,
    snap: &Snapshot,
    l: &ListenerState,
    hash: u64,
    now: u32,
) -> Option<(BackendId, bool)> {
    let v = s.recall(l.slot, hash, now)?;
    let id = BackendId(v & BACKEND_BITS);
    snap.backend(id)
        .is_some_and(|b| b.usable && b.group == l.group)
        .then_some((id, v & CLOSING != 0))
}

/// For ICMP errors: the flow's backend if this worker tracks the flow, else
/// the stateless choice (what any gateway would pick).
#[inline]
pub(super) fn existing_or_table(
    flows: &FlowTable,
    snap: &Snapshot,
    l: &ListenerState,
    fp: u64,
    hash: u64,
    now: u32,
) -> Result<BackendId, DropReason> {
    if let Some(v) = flows.peek(fp, now) {
        let id = BackendId(v & BACKEND_BITS);
        if snap
            .backend(id)
            .is_some_and(|b| b.usable && b.group == l.group)
        {
            return Ok(id);
        }
    }
    l.table.lookup(hash).ok_or(DropReason::NoBackend)
}

/// The listener a fragment to VIP `key` belongs to, if its policy hashes
/// fragments.
pub(super) fn fragment_listener(
    snap: &Snapshot,
    key: u128,
    proto: u8,
) -> Result<&ListenerState, DropReason> {
    match snap.vips.fragment_target(key, proto) {
        Some(FragmentTarget::One(id)) => {
            let l = &snap.listeners[id.0 as usize];
            match l.fragments {
                FragmentPolicy::Drop => Err(DropReason::Fragment),
                FragmentPolicy::HashAddresses => Ok(l),
            }
        }
        Some(FragmentTarget::Ambiguous) => Err(DropReason::FragmentAmbiguous),
        Some(FragmentTarget::None) | None => Err(DropReason::NoListener),
    }
}

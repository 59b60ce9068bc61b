//! Which backend a packet goes to: the listener's scheduler, the worker's
//! flow table (an established flow keeps its backend while it is usable),
//! TCP closing, and the listener of a fragment. It updates the flow table
//! and says what happened ([`Picked`]); counting is the caller's.

use dnlb_model::{FragmentPolicy, Scheduler};
use dnlb_wire::ip::IPPROTO_TCP;
use dnlb_wire::tcp::TcpFlags;

use super::parse::{Family, Tuple};
use crate::flow_table::FlowTable;
use crate::ids::BackendId;
use crate::snapshot::{ListenerState, Snapshot};
use crate::verdict::DropReason;
use crate::vip::FragmentTarget;

/// Flow-table value bit: the client closed the TCP connection (FIN or RST);
/// the entry lives only the closing timeout past its last packet.
pub(super) const CLOSING: u32 = 1 << 31;

/// The scheduler's hash of a flow (5-tuple, or the client address).
#[inline(always)]
pub(super) fn schedule_hash<F: Family>(l: &ListenerState, t: &Tuple<F::Addr>) -> u64 {
    match l.scheduler {
        Scheduler::Maglev => F::flow_hash(t),
        Scheduler::SourceIp => F::src_hash(t.src),
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
}

/// The backend of a TCP/UDP flow: the flow table's if it is still usable
/// for this listener, else the listener's table (and remember it).
/// A packet that would open a flow (a bare TCP SYN, a UDP datagram of an
/// untracked flow; not a tracked flow moving off an unusable backend) must
/// first pass `opening` (the new-flow limits).
/// Always inlined into the processor's flow step (one call site per IP
/// family), so that [`FlowKey`] and [`Picked`] never go through memory.
#[inline(always)]
pub(super) fn pick(
    flows: &mut FlowTable,
    snap: &Snapshot,
    l: &ListenerState,
    k: FlowKey,
    now: u32,
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
    let mut rescheduled = false;
    if let Some(v) = flows.lookup(k.fp, now, timeout) {
        let id = BackendId(v & !CLOSING);
        match snap.backend(id) {
            Some(b) if b.usable && b.group == l.group => {
                let was_closing = v & CLOSING != 0;
                if fin_rst || (was_closing && !syn) {
                    // Replaces the entry in place (it is there).
                    let _ = flows.insert(k.fp, id.0 | CLOSING, now, closing_timeout);
                } else if was_closing {
                    let _ = flows.insert(k.fp, id.0, now, timeout);
                }
                return Picked {
                    backend: Ok(id),
                    rescheduled: false,
                    inserted: None,
                };
            }
            _ => rescheduled = true,
        }
    }
    if !rescheduled && (syn || !tcp) {
        if let Err(reason) = opening() {
            return Picked {
                backend: Err(reason),
                rescheduled,
                inserted: None,
            };
        }
    }
    let Some(id) = l.table.lookup(k.hash) else {
        return Picked {
            backend: Err(DropReason::NoBackend),
            rescheduled,
            inserted: None,
        };
    };
    debug_assert!(id.0 & CLOSING == 0, "backend ids stay below 2^31");
    // Only a TCP segment that acknowledges something (ACK, no SYN, no RST)
    // can belong to an established connection, so only it takes an entry.
    // A bare SYN opens nothing yet (every gateway answers it alike from the
    // table, and the handshake's first ACK makes the entry); a RST ends
    // what was not tracked; segments without ACK (null, FIN and xmas scans)
    // or a client's SYN+ACK belong to no connection. None of them is
    // stored, so floods of them from any number of sources never fill the
    // table, and cost what a hit costs.
    let stateful = !tcp
        || (flags.contains(TcpFlags::ACK)
            && !flags.contains(TcpFlags::SYN)
            && !flags.contains(TcpFlags::RST));
    if !stateful {
        return Picked {
            backend: Ok(id),
            rescheduled,
            inserted: None,
        };
    }
    let (value, t) = if fin_rst {
        (id.0 | CLOSING, closing_timeout)
    } else {
        (id.0, timeout)
    };
    Picked {
        backend: Ok(id),
        rescheduled,
        inserted: Some(flows.insert(k.fp, value, now, t).is_ok()),
    }
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
        let id = BackendId(v & !CLOSING);
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

//! The usual packet in few steps: a TCP segment that acknowledges (ACK,
//! no SYN, FIN or RST) or a UDP datagram, to a listener without an access
//! list, of a flow the worker tracks on a usable backend or that it starts
//! tracking now, encapsulated within the MTU. That is nearly every packet a
//! gateway sees; [`Processor::process_fast`] handles it without the general
//! step's plumbing (its out-of-line call, the `Result`s carried through
//! every stage, the sync, limit, closing and ICMP cases) and declines
//! everything else, having changed nothing the general step would not
//! change the same way, so that the caller then runs
//! [`Processor::process_hinted`]. What it does is what the general step
//! does for the same packet (a differential test runs both on random
//! streams and compares frames, actions, counters and the flow table).

use dnlb_wire::buf::PacketBuf;
use dnlb_wire::ip::IPPROTO_TCP;
use dnlb_wire::tcp::TcpFlags;

use super::parse::{self, Family, Frame, Tuple, V4, V6};
use super::policy::schedule_hash;
use super::value::BACKEND_BITS;
use super::Processor;
use crate::ids::BackendId;
use crate::snapshot::Snapshot;
use crate::verdict::Action;
use crate::vip::VipMatch;

/// TCP flags a segment of an established connection carries among these:
/// ACK alone.
const OPEN_MASK: u16 =
    TcpFlags::SYN.bits() | TcpFlags::FIN.bits() | TcpFlags::RST.bits() | TcpFlags::ACK.bits();

impl Processor {
    /// Handles the usual packet (see the module's documentation) and
    /// returns its action, or `None`: then nothing was changed that
    /// [`Processor::process_hinted`], which the caller runs next, would not
    /// change alike (a flow entry it would refresh or drop as expired).
    /// `hint` is what [`Processor::prepare`] returned for this frame.
    #[inline(always)]
    pub fn process_fast<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        src_mac: [u8; 6],
        now: u32,
        hint: Option<u64>,
    ) -> Option<Action> {
        if self.sync.is_some() {
            return None;
        }
        if let Some((frame, p)) = parse::fast_v4(pkt.data()) {
            let flags = p.tcp_flags;
            return self.fast_flow::<V4, P>(snap, pkt, frame, p.t, flags, (src_mac, now, hint));
        }
        let (frame, p) = parse::fast_v6(pkt.data())?;
        let flags = p.tcp_flags;
        self.fast_flow::<V6, P>(snap, pkt, frame, p.t, flags, (src_mac, now, hint))
    }

    /// [`Processor::process_fast`] of a parsed TCP/UDP packet.
    #[inline(always)]
    fn fast_flow<F: Family, P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        f: Frame,
        t: Tuple<F::Addr>,
        flags: TcpFlags,
        (src_mac, now, hint): ([u8; 6], u32, Option<u64>),
    ) -> Option<Action> {
        let tcp = t.proto == IPPROTO_TCP;
        if tcp && flags.bits() & OPEN_MASK != TcpFlags::ACK.bits() {
            return None;
        }
        let VipMatch::Listener(id) = F::listener(&snap.vips, t.dst, t.proto, t.dport) else {
            return None;
        };
        let l = snap.listeners.get(id.0 as usize)?;
        if l.acl.is_some() {
            return None;
        }
        let fp = match hint {
            Some(fp) => fp,
            None => F::fingerprint(self.seed, &t),
        };
        let hash = schedule_hash::<F>(l, &t);
        let p = &snap.params;
        let timeout = if tcp {
            p.tcp_timeout_ms
        } else {
            p.udp_timeout_ms
        };
        let (backend, new) = match self.flows.lookup(fp, now, timeout) {
            // Flag bits (closing, pinned) take the general step.
            Some(v) if v & !BACKEND_BITS != 0 => return None,
            Some(v) => (BackendId(v), false),
            // A datagram of an untracked flow opens one: new-flow limits.
            None if !tcp && l.limits.any() => return None,
            None => (l.table.lookup(hash)?, true),
        };
        let b = snap.backend(backend)?;
        if !b.usable || b.group != l.group {
            return None;
        }
        let tpl = &b.encap[f.v6 as usize];
        if tpl.ip_overhead() + f.ip_len > p.mtu as usize {
            return None;
        }
        if new {
            let c = &mut self.counters;
            match self.flows.insert(fp, backend.0, now, timeout) {
                Ok(_) => c.new_flows += 1,
                Err(_) => c.flow_table_full += 1,
            }
        }
        if let Err(reason) = tpl.apply(pkt, f.l2, f.ip_len, hash, src_mac) {
            self.counters.backend_drop(backend, reason);
            self.counters.listener_drop(l.slot, reason);
            return Some(Action::Drop(reason));
        }
        self.counters.sent(l.slot, backend, f.ip_len as u64);
        Some(Action::Encapsulated(backend))
    }
}

//! The per-worker load-balancing step: one packet in, one [`Action`] out.
//!
//! Pure: no I/O; time (`now_ms`, wrapping milliseconds) is passed in. The
//! worker owns one `Processor` (its flow table, counters and ICMP rate
//! limiter) and passes the current [`Snapshot`] with each burst. The step is
//! split into units: [`peek`] (the burst's unvalidated first pass that
//! prefetches flow-table buckets), [`parse`] (the validated parse into a
//! value), [`policy`] (which backend, and the flow table's part in it),
//! [`counters`] (what is counted), and the actions here (encapsulate,
//! answer, drop).

mod counters;
mod explain;
mod fast;
mod host;
mod parse;
mod peek;
mod policy;
mod sync;
mod value;

use dnlb_model::{EchoPolicy, TooBigPolicy};
use dnlb_wire::buf::PacketBuf;
use dnlb_wire::ethernet::ETHERTYPE_IPV4;
use dnlb_wire::ip::IPPROTO_TCP;
use dnlb_wire::tcp::TcpFlags;

pub use counters::{HostCount, LbCounters, Traffic, RESERVED_BACKENDS, RESERVED_LISTENERS};
pub use explain::{
    explain_table, verdict, FlowQuery, Match, Reason, TableAnswer, TablePick, Tracked, Verdict,
    WorkerAnswer,
};
pub use fast::{ListenerMemo, Staged};
use parse::{Family, Frame, Icmp, Parsed, Tuple, L4, V4, V6};
use policy::FlowKey;
pub use sync::{learned_key, Exception, LearnOp, SyncCounters, SyncState};

use crate::encap::SourceMac;
use crate::flow_table::{fingerprint_of_mix, FlowTable};
use crate::ids::BackendId;
use crate::policing::Limiters;
use crate::reply;
use crate::snapshot::{ListenerState, Snapshot};
use crate::verdict::{Action, DropReason};
use crate::vip::VipMatch;

/// The per-worker state.
#[derive(Debug)]
pub struct Processor {
    flows: FlowTable,
    seed: u64,
    /// Rate limiters (rates come with each snapshot).
    limits: Limiters,
    /// This worker's index (its row of the access lists' counters).
    worker: usize,
    /// Flow-exception sync, when enabled ([`Processor::with_sync`]).
    sync: Option<Box<SyncState>>,
    /// Counters.
    pub counters: LbCounters,
    /// Bare SYNs of untracked flows the fast path sent on (not stored, so
    /// not new flows, but as new to the caches: see
    /// [`Processor::opening_flows`]).
    untracked_syns: u64,
    /// [`LbCounters::new_flows`] and `untracked_syns` when
    /// [`Processor::opening_flows`] last looked.
    new_flows_mark: u64,
}

/// What one call handles a packet with: the snapshot, the MAC of the port
/// the packet will leave by, the time, and the fingerprint the burst's
/// first pass computed for this very packet, if any.
///
/// Passed by value to methods that are all inlined into
/// [`Processor::process_hinted`] (the cold `echo` and `icmp_error` forced
/// with `#[inline(always)]`): an out-of-line callee taking a `Ctx` makes it
/// a stack value written at the start of every packet. The same goes for
/// `policy::pick` (its `FlowKey` and `Picked` through memory) and `send`.
/// Forcing more than that (`flow`, `fragment` and the `ipv4`/`ipv6` methods
/// too) made the function so large that the compiler stopped inlining the
/// small header accessors and hashes (591 instead of 544 Ir per packet).
/// Measured with callgrind on the pipeline bench; see the commit history.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    snap: &'a Snapshot,
    src_mac: [u8; 6],
    now: u32,
    hint: Option<u64>,
}

/// Where a packet goes once its backend is known: the listener whose
/// counters it counts under, the backend, and the entropy for the outer
/// headers (a flow's mix, [`parse::Family::flow_mix`]; a fragment's address
/// hash).
#[derive(Clone, Copy)]
struct Target {
    slot: u16,
    backend: BackendId,
    entropy: u64,
}

/// Whether listener `l`'s access list (if any) lets source `src` in;
/// counts the deciding rule for `worker`.
#[inline(always)]
fn admitted<F: Family>(l: &ListenerState, src: F::Addr, worker: usize) -> bool {
    match &l.acl {
        None => true,
        Some(acl) => {
            let code = F::acl(acl, src);
            acl.count(worker, code);
            code.allow()
        }
    }
}

/// Whether listener `l`'s new-flow limits let one more flow from `src` in
/// (called only for packets that would open a flow).
#[inline(always)]
fn within_limits<F: Family>(
    limits: &mut Limiters,
    seed: u64,
    l: &ListenerState,
    src: F::Addr,
    now_ms: u32,
) -> Result<(), DropReason> {
    if !l.limits.any() {
        return Ok(());
    }
    let now = limits.clock.at(now_ms);
    if let Some(pace) = l.limits.source {
        if !pace.admit(limits.source(seed, l.slot, F::src_key(src)), now) {
            return Err(DropReason::SourceRateLimited);
        }
    }
    if let Some(pace) = l.limits.listener {
        let admitted = limits
            .listeners
            .get_mut(l.slot as usize)
            .is_none_or(|tat| pace.admit(tat, now));
        if !admitted {
            return Err(DropReason::ListenerRateLimited);
        }
    }
    Ok(())
}

/// Counts what [`policy::pick`] did for sync, and queues the flow if it must
/// be shared.
#[inline(always)]
fn note_sync(
    s: &mut SyncState,
    p: &policy::Picked,
    l: &ListenerState,
    k: FlowKey,
    snap: &Snapshot,
) {
    if p.learned {
        s.counters.learned_used += 1;
    }
    if p.pinned {
        s.counters.pinned += 1;
    }
    if let (true, Ok(backend)) = (p.share, p.backend) {
        let remaining_ms = if k.proto == IPPROTO_TCP {
            snap.params.tcp_timeout_ms
        } else {
            snap.params.udp_timeout_ms
        };
        s.share(Exception {
            listener_slot: l.slot,
            hash: k.hash,
            backend,
            remaining_ms,
            closing: false,
        });
    }
}

impl Processor {
    /// A processor with a flow table for `flow_capacity` flows. `seed` keys
    /// the flow fingerprints and the per-source limiters (use a random value
    /// per worker). Rates come with each snapshot.
    pub fn new(flow_capacity: usize, seed: u64) -> Self {
        Processor {
            flows: FlowTable::new(flow_capacity),
            seed,
            limits: Limiters::new(RESERVED_LISTENERS),
            worker: 0,
            sync: None,
            counters: LbCounters::reserved(),
            untracked_syns: 0,
            new_flows_mark: 0,
        }
    }

    /// This processor with flow-exception sync (see [`SyncState`]): its flow
    /// table (emptied) also keeps each flow's scheduler hash, and it holds up
    /// to `learned_flows` entries learned from peers and `pending`
    /// exceptions between two [`SyncState::drain`]s.
    pub fn with_sync(mut self, learned_flows: usize, pending: usize) -> Self {
        self.flows = FlowTable::with_aux(self.flows.capacity() / 2);
        self.sync = Some(Box::new(SyncState::new(learned_flows, pending)));
        self
    }

    /// The sync state, if sync is enabled.
    pub fn sync(&mut self) -> Option<&mut SyncState> {
        self.sync.as_deref_mut()
    }

    /// Copies the sync state's counters into [`Processor::counters`] (for
    /// publication; nothing without sync).
    pub fn copy_sync_counters(&mut self) {
        if let Some(s) = self.sync.as_deref() {
            self.counters.sync = s.counters();
        }
    }

    /// Starts a walk of the flow table for exceptions (sync enabled; else
    /// nothing): see [`SyncState::restart_walk`].
    pub fn restart_sync_walk(&mut self) {
        if let Some(s) = self.sync.as_deref_mut() {
            s.restart_walk(&self.flows);
        }
    }

    /// Continues the walk for exceptions over at most `max_buckets` buckets
    /// (see [`SyncState::walk`]); true when no walk is under way.
    pub fn sync_walk(&mut self, snap: &Snapshot, now_ms: u32, max_buckets: usize) -> bool {
        match self.sync.as_deref_mut() {
            Some(s) => s.walk(&self.flows, snap, now_ms, max_buckets),
            None => true,
        }
    }

    /// The processor of worker `index` (0 by default): which row of the
    /// access lists' hit counters it writes.
    pub fn for_worker(mut self, index: usize) -> Self {
        self.worker = index;
        self
    }

    /// Sizes the counters and limiters for `snap` (call when a new snapshot
    /// is adopted, before its first packet; within [`RESERVED_LISTENERS`]
    /// and [`RESERVED_BACKENDS`] this allocates nothing).
    pub fn adopt(&mut self, snap: &Snapshot) {
        self.counters.size_for(snap);
        let slots = snap.listener_slots();
        if self.limits.listeners.len() < slots {
            self.limits.listeners.resize(slots, 0);
        }
    }

    /// Whether a frame bound for the host's own stack (the exception path)
    /// is within its class's rate; counts it either way.
    pub fn police_host(&mut self, snap: &Snapshot, frame: &[u8], now_ms: u32) -> bool {
        let class = host::class(snap, frame);
        let now = self.limits.clock.at(now_ms);
        let i = class as usize;
        let ok = snap.params.limits.host[i].admit(&mut self.limits.host[i], now);
        let c = &mut self.counters.host[i];
        if ok {
            c.passed += 1;
        } else {
            c.dropped += 1;
        }
        ok
    }

    /// The flow table (for occupancy reports and sweeping).
    pub fn flows(&mut self) -> &mut FlowTable {
        &mut self.flows
    }

    /// Whether a burst's first pass ([`Processor::prepare`]) pays (see
    /// [`FlowTable::worth_prefetching`]).
    #[inline(always)]
    pub fn wants_prefetch(&self) -> bool {
        self.flows.worth_prefetching()
    }

    /// First pass over a burst: finds where the frame's flow would be in the
    /// flow table and starts loading it, so the cache misses of a whole
    /// burst overlap. A hint only: it reads headers without validating them
    /// and changes nothing; [`Processor::process`] does the real work.
    /// Returns the fingerprint it computed (a TCP/UDP frame that is not a
    /// fragment), which [`Processor::process_hinted`] can reuse.
    #[inline]
    pub fn prepare<P: PacketBuf>(&self, pkt: &P) -> Option<u64> {
        let fp = peek::fingerprint(self.seed, pkt.data())?;
        self.flows.prefetch_fp(fp);
        Some(fp)
    }

    /// Handles one frame. `src_mac` is the MAC of the port it will leave by.
    #[inline]
    pub fn process<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        src_mac: [u8; 6],
        now_ms: u32,
    ) -> Action {
        self.process_hinted(snap, pkt, src_mac, now_ms, None)
    }

    /// [`Processor::process`] with the fingerprint [`Processor::prepare`]
    /// returned for this very frame (it parses the same headers the same
    /// way, so the value is reused instead of computed again; debug builds
    /// check that they agree).
    #[inline]
    pub fn process_hinted<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        src_mac: [u8; 6],
        now_ms: u32,
        hint: Option<u64>,
    ) -> Action {
        let cx = Ctx {
            snap,
            src_mac,
            now: now_ms,
            hint,
        };
        // The usual TCP/UDP frame first, in few steps; the rest (and
        // whatever the quick parse declines) through the general parse.
        if self.sync.is_some() {
            return self.process_synced(cx, pkt);
        }
        if let Some((frame, p)) = parse::fast_v4(pkt.data()) {
            return self
                .flow::<V4, P, false>(cx, pkt, frame, p.t, p.tcp_flags)
                .unwrap_or_else(Action::Drop);
        }
        if let Some((frame, p)) = parse::fast_v6(pkt.data()) {
            return self
                .flow::<V6, P, false>(cx, pkt, frame, p.t, p.tcp_flags)
                .unwrap_or_else(Action::Drop);
        }
        self.general(cx, pkt)
    }

    /// [`Processor::process_hinted`] with flow-exception sync: the same
    /// steps with sync's (out of line, so the path without sync keeps its
    /// size and has none of them).
    #[inline(never)]
    fn process_synced<P: PacketBuf>(&mut self, cx: Ctx<'_>, pkt: &mut P) -> Action {
        if let Some((frame, p)) = parse::fast_v4(pkt.data()) {
            return self
                .flow::<V4, P, true>(cx, pkt, frame, p.t, p.tcp_flags)
                .unwrap_or_else(Action::Drop);
        }
        if let Some((frame, p)) = parse::fast_v6(pkt.data()) {
            return self
                .flow::<V6, P, true>(cx, pkt, frame, p.t, p.tcp_flags)
                .unwrap_or_else(Action::Drop);
        }
        self.general(cx, pkt)
    }

    /// Every frame the quick parse declines (VLAN tags, IPv4 options, IPv6
    /// extension headers, fragments, ICMP, other protocols, anything
    /// malformed), out of line so the usual path stays small.
    #[inline(never)]
    fn general<P: PacketBuf>(&mut self, cx: Ctx<'_>, pkt: &mut P) -> Action {
        let r = match parse::frame(pkt.data()) {
            Ok(Some((ETHERTYPE_IPV4, l2))) => self.ipv4(cx, pkt, l2),
            Ok(Some((_, l2))) => self.ipv6(cx, pkt, l2),
            Ok(None) => Ok(Action::NotForVip),
            Err(reason) => Err(reason),
        };
        r.unwrap_or_else(Action::Drop)
    }

    /// An IPv4 packet at `l2`.
    fn ipv4<P: PacketBuf>(
        &mut self,
        cx: Ctx<'_>,
        pkt: &mut P,
        l2: usize,
    ) -> Result<Action, DropReason> {
        let (frame, parsed) = parse::ipv4(pkt.data(), l2)?;
        self.handle::<V4, P>(cx, pkt, frame, parsed)
    }

    /// An IPv6 packet at `l2`.
    fn ipv6<P: PacketBuf>(
        &mut self,
        cx: Ctx<'_>,
        pkt: &mut P,
        l2: usize,
    ) -> Result<Action, DropReason> {
        let (frame, parsed) = parse::ipv6(pkt.data(), l2)?;
        self.handle::<V6, P>(cx, pkt, frame, parsed)
    }

    /// What to do with a parsed IP packet.
    #[inline(always)]
    fn handle<F: Family, P: PacketBuf>(
        &mut self,
        cx: Ctx<'_>,
        pkt: &mut P,
        frame: Frame,
        p: Parsed<F::Addr>,
    ) -> Result<Action, DropReason> {
        match p.l4 {
            L4::Ports if self.sync.is_some() => {
                self.flow::<F, P, true>(cx, pkt, frame, p.t, p.tcp_flags)
            }
            L4::Ports => self.flow::<F, P, false>(cx, pkt, frame, p.t, p.tcp_flags),
            L4::Host => Ok(Action::NotForVip),
            _ if !cx.snap.vips.is_vip(F::key(p.t.dst)) => Ok(Action::NotForVip),
            L4::Fragment => self.fragment::<F, P>(cx, pkt, frame, p.t),
            L4::Icmp => match F::icmp(pkt.data(), &frame, p.l4_at)? {
                Icmp::EchoRequest { icmp_at } => self.echo(cx, pkt, frame, icmp_at),
                // An error about a packet a backend sent from the VIP is
                // addressed to the VIP: to anything else it is forged.
                Icmp::Error(quoted) if F::key(quoted.src) != F::key(p.t.dst) => {
                    Err(DropReason::IcmpQuoteMismatch)
                }
                Icmp::Error(quoted) => {
                    self.icmp_error::<F, P>(cx, pkt, frame, Tuple::of_quoted(&quoted))
                }
            },
            L4::Other => Err(DropReason::NoListener),
        }
    }

    /// A fragment to a VIP: the stateless choice on its addresses, if its
    /// listener hashes fragments.
    fn fragment<F: Family, P: PacketBuf>(
        &mut self,
        cx: Ctx<'_>,
        pkt: &mut P,
        frame: Frame,
        t: Tuple<F::Addr>,
    ) -> Result<Action, DropReason> {
        let l = policy::fragment_listener(cx.snap, F::key(t.dst), t.proto)?;
        if !admitted::<F>(l, t.src, self.worker) {
            return self.count_listener_drop(l, Err(DropReason::AclDenied));
        }
        let hash = F::addr_hash(t.src, t.dst, t.proto);
        let r = match l.table.lookup(hash) {
            Some(backend) => self.send(
                cx,
                pkt,
                frame,
                Target {
                    slot: l.slot,
                    backend,
                    entropy: hash,
                },
            ),
            None => Err(DropReason::NoBackend),
        };
        self.count_listener_drop(l, r)
    }

    /// A TCP or UDP packet of flow `t`: listener, backend, send (`SYNC`:
    /// with flow-exception sync).
    #[inline(always)]
    fn flow<F: Family, P: PacketBuf, const SYNC: bool>(
        &mut self,
        cx: Ctx<'_>,
        pkt: &mut P,
        frame: Frame,
        t: Tuple<F::Addr>,
        tcp_flags: TcpFlags,
    ) -> Result<Action, DropReason> {
        let id = match F::listener(&cx.snap.vips, t.dst, t.proto, t.dport) {
            VipMatch::NotVip => return Ok(Action::NotForVip),
            VipMatch::NoListener => return Err(DropReason::NoListener),
            VipMatch::Listener(id) => id,
        };
        let l = &cx.snap.listeners[id.0 as usize];
        if !admitted::<F>(l, t.src, self.worker) {
            return self.count_listener_drop(l, Err(DropReason::AclDenied));
        }
        let mix = F::flow_mix(&t);
        let fp = match cx.hint {
            Some(fp) => {
                debug_assert_eq!(
                    fp,
                    fingerprint_of_mix(self.seed, mix),
                    "prepare and process disagree"
                );
                fp
            }
            None => fingerprint_of_mix(self.seed, mix),
        };
        let key = FlowKey {
            fp,
            hash: policy::hash_from_mix::<F>(l.scheduler, mix, t.src),
            proto: t.proto,
            tcp_flags,
        };
        let (limits, seed) = (&mut self.limits, self.seed);
        let opening = || within_limits::<F>(limits, seed, l, t.src, cx.now);
        let picked = policy::pick::<SYNC>(
            &mut self.flows,
            cx.snap,
            l,
            key,
            cx.now,
            self.sync.as_deref(),
            opening,
        );
        if SYNC {
            if let Some(s) = self.sync.as_deref_mut() {
                note_sync(s, &picked, l, key, cx.snap);
            }
        }
        let c = &mut self.counters;
        if picked.rescheduled {
            c.flows_rescheduled += 1;
        }
        match picked.inserted {
            Some(true) => c.new_flows += 1,
            Some(false) => c.flow_table_full += 1,
            None => {}
        }
        let r = picked.backend.and_then(|backend| {
            let to = Target {
                slot: l.slot,
                backend,
                entropy: mix,
            };
            self.send(cx, pkt, frame, to)
        });
        self.count_listener_drop(l, r)
    }

    /// An ICMP error about a packet a backend sent from a VIP to a client
    /// (direct server return), for client → VIP flow `t`: to the backend
    /// that owns the flow.
    #[inline(always)]
    fn icmp_error<F: Family, P: PacketBuf>(
        &mut self,
        cx: Ctx<'_>,
        pkt: &mut P,
        frame: Frame,
        t: Tuple<F::Addr>,
    ) -> Result<Action, DropReason> {
        let id = match F::listener(&cx.snap.vips, t.dst, t.proto, t.dport) {
            VipMatch::Listener(id) => id,
            _ => return Err(DropReason::IcmpUnsupported),
        };
        let l = &cx.snap.listeners[id.0 as usize];
        let mix = F::flow_mix(&t);
        let hash = policy::hash_from_mix::<F>(l.scheduler, mix, t.src);
        let fp = fingerprint_of_mix(self.seed, mix);
        let now = self.limits.clock.at(cx.now);
        let within = cx
            .snap
            .params
            .limits
            .icmp_forward
            .admit(&mut self.limits.icmp_forward, now);
        let r = if within {
            policy::existing_or_table(&self.flows, cx.snap, l, fp, hash, cx.now)
        } else {
            Err(DropReason::IcmpForwardRateLimited)
        };
        let r = r.and_then(|backend| {
            self.counters.icmp_errors_forwarded += 1;
            let to = Target {
                slot: l.slot,
                backend,
                entropy: mix,
            };
            self.send(cx, pkt, frame, to)
        });
        self.count_listener_drop(l, r)
    }

    /// An echo request to a VIP: answered in place, or dropped by policy.
    #[inline(always)]
    fn echo<P: PacketBuf>(
        &mut self,
        cx: Ctx<'_>,
        pkt: &mut P,
        frame: Frame,
        icmp_at: usize,
    ) -> Result<Action, DropReason> {
        if cx.snap.params.icmp_echo == EchoPolicy::Drop {
            return Err(DropReason::EchoDropped);
        }
        let now = self.limits.clock.at(cx.now);
        if !cx.snap.params.limits.echo.admit(&mut self.limits.echo, now) {
            return Err(DropReason::EchoRateLimited);
        }
        let answered = if frame.v6 {
            reply::echo_reply_v6(pkt, frame.l2, icmp_at, cx.src_mac)
        } else {
            reply::echo_reply_v4(pkt, frame.l2, cx.src_mac)
        };
        answered.ok_or(DropReason::MalformedL4)?;
        self.counters.echo_replies += 1;
        Ok(Action::Reply)
    }

    /// Counts a drop against the listener it happened on.
    #[inline]
    fn count_listener_drop(
        &mut self,
        l: &ListenerState,
        r: Result<Action, DropReason>,
    ) -> Result<Action, DropReason> {
        if let Err(reason) = r {
            self.counters.listener_drop(l.slot, reason);
        }
        r
    }

    /// Encapsulates toward the target backend, or answers "too big"; counts
    /// a drop against the backend.
    #[inline(always)]
    fn send<P: PacketBuf>(
        &mut self,
        cx: Ctx<'_>,
        pkt: &mut P,
        f: Frame,
        to: Target,
    ) -> Result<Action, DropReason> {
        let r = self.deliver(cx, pkt, f, to);
        if let Err(reason) = r {
            self.counters.backend_drop(to.backend, reason);
        }
        r
    }

    /// [`Processor::send`] without counting its drops.
    #[inline(always)]
    fn deliver<P: PacketBuf>(
        &mut self,
        cx: Ctx<'_>,
        pkt: &mut P,
        f: Frame,
        to: Target,
    ) -> Result<Action, DropReason> {
        let params = &cx.snap.params;
        let r = cx.snap.route(to.backend).filter(|r| r.present());
        let r = r.ok_or(DropReason::NoBackend)?;
        let t = &r.encap[f.v6 as usize];
        let max_ip_len = t.max_ip_len();
        if f.ip_len > usize::from(max_ip_len) {
            let mtu = u32::from(max_ip_len);
            if params.too_big == TooBigPolicy::Drop || !f.df {
                return Err(DropReason::TooBig);
            }
            let now = self.limits.clock.at(cx.now);
            if !params.limits.too_big.admit(&mut self.limits.too_big, now) {
                return Err(DropReason::IcmpRateLimited);
            }
            let ok = if f.v6 {
                reply::packet_too_big_v6(pkt, f.l2, f.ip_len, mtu, cx.src_mac)
            } else {
                reply::frag_needed_v4(pkt, f.l2, f.ip_len, mtu as u16, cx.src_mac)
            };
            ok.ok_or(DropReason::NoHeadroom)?;
            self.counters.too_big_sent += 1;
            return Ok(Action::Reply);
        }
        t.apply(pkt, f.l2, f.ip_len, to.entropy, SourceMac::new(cx.src_mac))?;
        self.counters.sent(to.slot, to.backend, f.ip_len as u64);
        Ok(Action::Encapsulated(to.backend))
    }
}

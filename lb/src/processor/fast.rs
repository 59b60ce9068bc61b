//! The usual packet in few steps: a TCP segment that acknowledges (ACK,
//! no SYN, FIN or RST) or a UDP datagram, to a listener (whose access list,
//! if it has one, lets the source in), of a flow the worker tracks on a
//! usable backend or that it starts tracking now, encapsulated within the
//! MTU; and a bare SYN (no ACK, FIN or RST) to such a listener, which is
//! sent on the same way but never stored (a handshake's first ACK makes the
//! entry: a SYN flood from any number of sources costs a lookup and the
//! scheduler's table, and fills nothing). That is nearly every packet a
//! gateway sees (with flow-exception sync, only a tracked flow's: an
//! untracked one may be a flow a peer shared, or one to share, which is
//! the general step's business); [`Processor::process_fast`] handles it
//! without the general step's plumbing (its out-of-line call, the
//! `Result`s carried through every stage, the sync, limit, closing and
//! ICMP cases) and declines everything else, having changed nothing the
//! general step would not change the same way, so that the caller then
//! runs [`Processor::process_hinted`]. What it does is what the general step
//! does for the same packet (a differential test runs both on random
//! streams and compares frames, actions, counters and the flow table).
//!
//! It runs in two stages over a burst, as vector packet processors do:
//! [`Processor::stage`] parses each frame, finds its listener, computes its
//! hashes and starts loading its flow-table buckets; [`Processor::finish`]
//! then decides and encapsulates. The bucket loads of a whole burst overlap
//! (the receive path streams frames through the caches and evicts the
//! table's lines between two packets of a flow), and nothing is parsed twice.
//! Between the two, a burst that met a listener with an access list stages
//! those packets whose source the list lets in
//! ([`Processor::stage_listed`]), and after the second counts the rules of
//! those it took ([`Processor::count_listed`]; the general step counts the
//! others): the loops of a burst without such listeners carry nothing of
//! it.

use dnlb_model::Scheduler;
use dnlb_wire::buf::PacketBuf;
use dnlb_wire::ip::IPPROTO_TCP;
use dnlb_wire::tcp::TcpFlags;

use super::parse::{self, Family, Frame, Tuple, V4, V6};
use super::value::BACKEND_BITS;
use super::Processor;
use crate::acl::AclCode;
use crate::encap::SourceMac;
use crate::flow_table::{fingerprint_of_mix, Probe};
use crate::hash::{flow_hash_of_mix, reduce};
use crate::ids::{BackendId, ListenerId};
use crate::snapshot::Snapshot;
use crate::verdict::Action;
use crate::vip::VipMatch;

/// TCP flags a segment of an established connection carries among these:
/// ACK alone; a bare SYN, SYN alone.
const OPEN_MASK: u16 =
    TcpFlags::SYN.bits() | TcpFlags::FIN.bits() | TcpFlags::RST.bits() | TcpFlags::ACK.bits();

/// What [`Processor::stage`] found for one frame: all [`Processor::finish`]
/// needs besides the frame (32 bytes; `Default`: not the usual packet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Staged {
    /// Flow-table fingerprint (its buckets follow from it).
    probe: Probe,
    /// The flow's mix ([`Family::flow_mix`]): the outer headers' entropy,
    /// and for a Maglev listener what its scheduler hash finishes (a new
    /// flow's only).
    mix: u64,
    /// Length of the IP packet in bits 0..32; with [`LISTED`], what the
    /// listener's access list said of the source in bits 32..64
    /// ([`crate::acl::AclCode::raw`]: an allowing rule), counted once the
    /// second stage takes the packet ([`Processor::count_listed`]). One
    /// word: the first stage stores the length zero-extended.
    len_code: u64,
    /// Its listener, and what kind of packet it is.
    who: Who,
}

/// A packet's listener as the second stage needs it, and the packet's kind,
/// in one word (its listener index, counter slot and target group in bits
/// 0..48, [`Who::bits`] in the top byte, whose top bit is [`USUAL`]: a
/// sign test): the [`ListenerMemo`] keeps it ready (with
/// [`USUAL`] and the listener's bits set) to copy with one move for the
/// next packet to the same listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Who(u64);

impl Who {
    /// The word of `listener`, `slot`, `group` and `bits`.
    const fn new(listener: u16, slot: u16, group: u16, bits: u8) -> Self {
        Who(listener as u64 | (slot as u64) << 16 | (group as u64) << 32 | (bits as u64) << 56)
    }
    /// The listener's index in the snapshot.
    #[inline(always)]
    fn listener(self) -> u16 {
        self.0 as u16
    }
    /// Its counter slot.
    #[inline(always)]
    fn slot(self) -> u16 {
        (self.0 >> 16) as u16
    }
    /// Its target group.
    #[inline(always)]
    fn group(self) -> u16 {
        (self.0 >> 32) as u16
    }
    /// [`USUAL`], [`TCP`], [`IPV6`], [`LIMITED`], [`HINTED`], [`SOURCE_IP`],
    /// [`SYN`], [`LISTED`].
    #[inline(always)]
    fn bits(self) -> u8 {
        (self.0 >> 56) as u8
    }
    /// With `bits` set too.
    #[inline(always)]
    fn with(self, bits: u8) -> Self {
        Who(self.0 | u64::from(bits) << 56)
    }
}

/// [`Who::bits`]: the usual packet ([`Processor::finish`] may take it); the
/// word's sign bit.
const USUAL: u8 = 0x80;
/// [`Who::bits`]: TCP (else UDP).
const TCP: u8 = 2;
/// [`Who::bits`]: IPv6 (else IPv4).
const IPV6: u8 = 4;
/// [`Who::bits`]: the listener limits new flows.
const LIMITED: u8 = 8;
/// [`Who::bits`]: not the usual packet, but [`Staged::probe`] holds the
/// fingerprint [`Processor::prepare`] found (a table larger than the
/// caches), for the general step.
const HINTED: u8 = 16;
/// [`Who::bits`]: the listener schedules by client address (a new
/// flow's hash is the source's, read again from the frame).
const SOURCE_IP: u8 = 32;
/// [`Who::bits`]: a bare TCP SYN (sent on, never stored).
const SYN: u8 = 64;
/// [`Who::bits`]: the listener has an access list, which let the source in
/// ([`Staged::len_code`]). The first stage leaves such a packet to
/// [`Processor::stage_listed`], which asks the list.
const LISTED: u8 = 1;

/// New flows a burst opened from which the next burst's first stage also
/// starts loading each packet's Maglev slot ([`Processor::opening_flows`]).
const OPENING_BURST: u64 = 4;

/// The listener of the last destination (address, protocol, port)
/// [`Processor::stage`] looked up, and what it needs of it. A burst's
/// packets mostly go to one listener: the next packet to the same
/// destination skips the VIP table and the listener's record (~25 of the
/// first stage's instructions). Valid under one snapshot only: the worker
/// makes a new memo for each burst.
#[derive(Debug, Clone, Copy)]
pub struct ListenerMemo<'s> {
    /// [`Family::memo_key`] of the destination; `u64::MAX`: none yet.
    key: u64,
    /// [`Family::memo_addr`] of the destination (IPv6's address).
    addr: u128,
    /// [`Family::dst_mix`] of the destination: its part of each flow's mix
    /// (IPv6: a multiply a packet saved).
    dst_mix: u64,
    /// What it found, with the bits the destination's protocol and family
    /// decide ([`TCP`], [`IPV6`]; not [`SYN`], the packet's own); no
    /// [`USUAL`] bit: not the usual packet's listener (none), or with
    /// [`LISTED`] not until its access list let the source in.
    who: Who,
    /// The listener's Maglev slots ([`crate::maglev::MaglevTable::entries`]), whose slot
    /// for a flow the first stage starts loading (empty: none).
    slots: &'s [BackendId],
    /// Whether a listener with an access list was looked up since the memo
    /// was made: then some staged packets may be [`Staged::is_listed`].
    listed: bool,
}

impl ListenerMemo<'_> {
    /// An empty memo (the next lookup fills it).
    pub const fn new() -> Self {
        ListenerMemo {
            key: u64::MAX,
            addr: 0,
            dst_mix: 0,
            who: Who(0),
            slots: &[],
            listed: false,
        }
    }

    /// Whether a packet staged with it may be [`Staged::is_listed`].
    #[inline(always)]
    pub fn listed(&self) -> bool {
        self.listed
    }
}

impl Default for ListenerMemo<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl Staged {
    /// Whether [`Processor::finish`] may take the frame.
    #[inline(always)]
    pub fn is_usual(&self) -> bool {
        self.who.bits() & USUAL != 0
    }

    /// Whether its listener's access list was asked (and let the source
    /// in): [`Processor::count_listed`] counts the rule if the second stage
    /// takes the packet.
    #[inline(always)]
    pub fn is_listed(&self) -> bool {
        self.who.bits() & LISTED != 0
    }

    /// Forgets that the access list was asked: the packet takes the general
    /// step, which asks it again and counts the rule.
    #[inline(always)]
    pub fn unlist(&mut self) {
        self.who = Who(self.who.0 & !(u64::from(LISTED) << 56));
    }

    /// The flow-table fingerprint the first stage found, if any (the hint
    /// [`Processor::process_hinted`] takes).
    #[inline(always)]
    pub fn hint(&self) -> Option<u64> {
        (self.who.bits() & (USUAL | HINTED) != 0).then_some(self.probe.fp)
    }
}

impl Processor {
    /// [`Processor::stage`] then [`Processor::finish`]: handles the usual
    /// packet (see the module's documentation) and returns its action, or
    /// `None`: then nothing was changed that [`Processor::process_hinted`],
    /// which the caller runs next, would not change alike (a flow entry it
    /// would refresh or drop as expired).
    #[inline(always)]
    pub fn process_fast<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        src_mac: [u8; 6],
        now: u32,
    ) -> Option<Action> {
        let mut memo = ListenerMemo::new();
        let mut s = self.stage(snap, pkt, &mut memo);
        if memo.listed() {
            let (pkts, staged) = (std::slice::from_ref(&*pkt), std::slice::from_mut(&mut s));
            self.stage_listed::<false, P>(snap, pkts, staged, &mut memo);
        }
        let action = self.finish(snap, pkt, &s, SourceMac::new(src_mac), now)?;
        self.count_listed(snap, &s);
        Some(action)
    }

    /// Counts the access-list rule that let in the packet `s` staged
    /// (nothing unless [`Staged::is_listed`]), once [`Processor::finish`]
    /// took it: the first stage asks the list without counting, so a
    /// declined packet is counted once, by the general step. Out of line:
    /// a burst calls it for each listed packet after its second stage.
    #[inline(never)]
    pub fn count_listed(&self, snap: &Snapshot, s: &Staged) {
        if !s.is_listed() {
            return;
        }
        let acl = snap
            .listeners
            .get(usize::from(s.who.listener()))
            .and_then(|l| l.acl.as_deref());
        if let Some(acl) = acl {
            acl.count(self.worker, AclCode::from_raw((s.len_code >> 32) as u32));
        }
    }

    /// Called once a burst, before its first stage: whether the last burst
    /// opened 4 flows or more (`OPENING_BURST`), bare SYNs of untracked
    /// flows counted as opening (a flood of new flows or SYNs, a peer
    /// gateway's flows arriving after it failed, a service of short UDP
    /// exchanges). Then the first stage had better start loading each
    /// packet's Maglev slot too ([`Processor::stage_with`]): a new flow
    /// reads it right after its lookup missed, and waited for it there
    /// (~13 % of a new flow's samples in a profile); an established flow's
    /// packet never reads it, and would pay 12 or more instructions for
    /// the load.
    #[inline]
    pub fn opening_flows(&mut self) -> bool {
        let n = self.counters.new_flows.wrapping_add(self.untracked_syns);
        let opened = n.wrapping_sub(self.new_flows_mark);
        self.new_flows_mark = n;
        opened >= OPENING_BURST
    }

    /// The first stage: whether `pkt` is the usual packet, and if so its
    /// listener and hashes; starts loading its flow-table buckets. Any
    /// other frame, when the table is larger than the caches
    /// ([`Processor::wants_prefetch`]), gets its fingerprint alone
    /// ([`Processor::prepare`], buckets loading the same way) for the
    /// general step. A packet to a listener with an access list is not the
    /// usual packet here: [`Processor::stage_listed`] (which `memo` calls
    /// for: [`ListenerMemo::listed`]) stages it if the list lets it in.
    /// Changes nothing but `memo`, which must be new or have been used
    /// under `snap` only.
    #[inline(always)]
    pub fn stage<'s, P: PacketBuf>(
        &self,
        snap: &'s Snapshot,
        pkt: &P,
        memo: &mut ListenerMemo<'s>,
    ) -> Staged {
        self.stage_with::<false, P>(snap, pkt, memo)
    }

    /// [`Processor::stage`], starting to load the usual packet's Maglev
    /// slot too if `SLOTS` (see [`Processor::opening_flows`]).
    #[inline(always)]
    pub fn stage_with<'s, const SLOTS: bool, P: PacketBuf>(
        &self,
        snap: &'s Snapshot,
        pkt: &P,
        memo: &mut ListenerMemo<'s>,
    ) -> Staged {
        let s = self.stage_usual::<SLOTS, false, P>(snap, pkt, memo);
        if s.is_usual() || !self.wants_prefetch() {
            return s;
        }
        match self.prepare(pkt) {
            Some(fp) => Staged {
                probe: Probe { fp },
                who: Who::new(0, 0, 0, HINTED),
                ..Staged::default()
            },
            None => s,
        }
    }

    /// [`Processor::stage`] of the usual packet (or the default record);
    /// `LISTS`: one whose listener's access list lets it in too.
    #[inline(always)]
    fn stage_usual<'s, const SLOTS: bool, const LISTS: bool, P: PacketBuf>(
        &self,
        snap: &'s Snapshot,
        pkt: &P,
        memo: &mut ListenerMemo<'s>,
    ) -> Staged {
        if let Some((frame, p)) = parse::fast_v4(pkt.data()) {
            return self.stage_flow::<SLOTS, LISTS, V4>(snap, frame, p.t, p.tcp_flags, memo);
        }
        match parse::fast_v6(pkt.data()) {
            Some((frame, p)) => {
                self.stage_flow::<SLOTS, LISTS, V6>(snap, frame, p.t, p.tcp_flags, memo)
            }
            None => Staged::default(),
        }
    }

    /// The usual packet's listener for destination `t`: from `memo` if it
    /// holds that destination, else looked up (and kept there).
    /// Without [`USUAL`]: not the usual packet's.
    #[inline(always)]
    fn usual_listener<'s, F: Family>(
        snap: &'s Snapshot,
        t: &Tuple<F::Addr>,
        memo: &mut ListenerMemo<'s>,
    ) -> (Who, &'s [BackendId], u64) {
        let key = F::memo_key(t.dst, t.proto, t.dport);
        if key == memo.key && (F::MEMO_KEY_EXACT || F::memo_addr(t.dst) == memo.addr) {
            return (memo.who, memo.slots, memo.dst_mix);
        }
        Self::remember_usual::<F>(snap, (t.dst, t.proto, t.dport), key, memo)
    }

    /// [`Processor::usual_listener`] when `memo` does not hold the
    /// destination: looked up, and kept there under `key`. Out of
    /// line and cold (once a burst): the memo's hit keeps its registers.
    #[cold]
    #[inline(never)]
    fn remember_usual<'s, F: Family>(
        snap: &'s Snapshot,
        dst: (F::Addr, u8, u16),
        key: u64,
        memo: &mut ListenerMemo<'s>,
    ) -> (Who, &'s [BackendId], u64) {
        let (who, slots) = Self::look_up_usual::<F>(snap, dst).unwrap_or_default();
        // The packet's own bits that the destination decides (its protocol
        // and family are in the key): kept in the memo, not set a packet.
        let tcp = if dst.1 == IPPROTO_TCP { TCP } else { 0 };
        let who = who.with(tcp | if F::IS_V6 { IPV6 } else { 0 });
        let (addr, dst_mix) = (F::memo_addr(dst.0), F::dst_mix(dst.0));
        *memo = ListenerMemo {
            key,
            addr,
            dst_mix,
            who,
            slots,
            listed: memo.listed || who.bits() & LISTED != 0,
        };
        (who, slots, dst_mix)
    }

    /// [`Processor::usual_listener`] without the memo: the listener's word
    /// and its Maglev slots.
    #[inline(always)]
    fn look_up_usual<F: Family>(
        snap: &Snapshot,
        (addr, proto, port): (F::Addr, u8, u16),
    ) -> Option<(Who, &[BackendId])> {
        let VipMatch::Listener(ListenerId(id)) = F::listener(&snap.vips, addr, proto, port) else {
            return None;
        };
        let l = snap.listeners.get(usize::from(id))?;
        let listed = if l.acl.is_some() { LISTED } else { 0 };
        let limited = if l.limits.any() { LIMITED } else { 0 };
        let source_ip = if l.scheduler == Scheduler::SourceIp {
            SOURCE_IP
        } else {
            0
        };
        // A listed listener's packet is usual once its list let it in
        // (`Processor::stage_listed`).
        let usual = if listed != 0 { 0 } else { USUAL };
        let who = Who::new(id, l.slot, l.group, usual | listed | limited | source_ip);
        Some((who, l.table.entries()))
    }

    /// [`Processor::stage`] of a parsed TCP/UDP packet (`LISTS`: see
    /// [`Processor::stage_usual`]).
    #[inline(always)]
    fn stage_flow<'s, const SLOTS: bool, const LISTS: bool, F: Family>(
        &self,
        snap: &'s Snapshot,
        f: Frame,
        t: Tuple<F::Addr>,
        flags: TcpFlags,
        memo: &mut ListenerMemo<'s>,
    ) -> Staged {
        let tcp = t.proto == IPPROTO_TCP;
        // Of the flags in OPEN_MASK (at most 0x17), ACK alone or SYN alone:
        // one bit test (UDP has none).
        let open = flags.bits() & OPEN_MASK;
        const TAKEN: u32 = 1 << TcpFlags::ACK.bits() | 1 << TcpFlags::SYN.bits();
        if tcp && (1u32 << open) & TAKEN == 0 {
            return Staged::default();
        }
        let (who, slots, dst_mix) = Self::usual_listener::<F>(snap, &t, memo);
        let (who, code) = if LISTS {
            // An access list's listener too: its list asked (in the pass
            // for such packets alone).
            match Self::listed::<F>(snap, who, t.src) {
                Some(w) => w,
                None => return Staged::default(),
            }
        } else {
            if who.bits() & USUAL == 0 {
                return Staged::default();
            }
            (who, 0)
        };
        // A SYN's flag, moved to the word's bit (not set for ACK or UDP).
        const _: () = assert!(SYN == (TcpFlags::SYN.bits() as u8) << 5);
        let syn = (open & TcpFlags::SYN.bits()) as u8;
        let who = who.with(syn << 5);
        let mix = F::flow_mix_with(&t, dst_mix);
        if SLOTS {
            // Where a new flow reads its Maglev slot (an address in the
            // slots or one past them: the hint never faults).
            let slot = reduce(flow_hash_of_mix(mix), slots.len() as u32) as usize;
            crate::prefetch::prefetch_at(slots.as_ptr().wrapping_add(slot));
        }
        Staged {
            // The first bucket's overflow count too when flows are
            // opening (a new flow misses in its first bucket and reads
            // the count; a tracked one is nearly always found there).
            probe: self
                .flows
                .probe_with::<SLOTS>(fingerprint_of_mix(self.seed, mix)),
            mix,
            len_code: u64::from(code) << 32 | f.ip_len as u64,
            who,
        }
    }

    /// Between the two stages of a burst whose first stage met a listener
    /// with an access list ([`ListenerMemo::listed`]): each packet the
    /// first stage did not take staged again, now also if its listener's
    /// list lets the source in (the rule's code kept for
    /// [`Processor::count_listed`]; counted by neither). A source the list
    /// turns away stays with the general step, which asks again, counts and
    /// drops. Out of line and after the first stage's loop: a burst without
    /// such listeners pays nothing for it. `memo` must have been used under
    /// `snap` only.
    #[inline(never)]
    pub fn stage_listed<'s, const SLOTS: bool, P: PacketBuf>(
        &self,
        snap: &'s Snapshot,
        pkts: &[P],
        staged: &mut [Staged],
        memo: &mut ListenerMemo<'s>,
    ) {
        for (p, s) in pkts.iter().zip(staged.iter_mut()) {
            if s.is_usual() || !p.is_contiguous() {
                continue;
            }
            let listed = self.stage_usual::<SLOTS, true, P>(snap, p, memo);
            if listed.is_usual() {
                *s = listed;
            }
        }
    }

    /// The usual packet's `who` (and 0), or for a listener with an access
    /// list that lets `src` in, its `who` made usual and the rule's code;
    /// `None`: not the usual packet.
    #[inline(always)]
    fn listed<F: Family>(snap: &Snapshot, who: Who, src: F::Addr) -> Option<(Who, u32)> {
        if who.bits() & USUAL != 0 {
            return Some((who, 0));
        }
        if who.bits() & LISTED == 0 {
            return None;
        }
        match Self::allowed::<F>(snap, who.listener(), src) {
            0 => None,
            code => Some((who.with(USUAL), code)),
        }
    }

    /// What listener `listener`'s access list says of source `src`: the
    /// code of the rule that lets it in ([`crate::acl::AclCode::raw`]), or
    /// 0 if it does not (or there is no list). Counts nothing.
    #[inline(always)]
    fn allowed<F: Family>(snap: &Snapshot, listener: u16, src: F::Addr) -> u32 {
        let acl = snap
            .listeners
            .get(usize::from(listener))
            .and_then(|l| l.acl.as_deref());
        match acl.map(|acl| F::acl(acl, src)) {
            Some(code) if code.allow() => code.raw(),
            _ => 0,
        }
    }

    /// Starts tracking the new flow `p` (whose lookup just missed) on
    /// `backend`, counted. Out of line: the established flow's path keeps
    /// its registers (inlined, the insert's values cost it ~7 instructions
    /// of spills).
    #[inline(never)]
    fn track(&mut self, p: &Probe, backend: BackendId, now: u32, timeout: u32) {
        if self.flows.insert_probed_first(p, backend.0, now, timeout) {
            self.counters.new_flows += 1;
        } else {
            self.track_crowded(p, backend, now, timeout);
        }
    }

    /// [`Processor::track`] when the flow's first bucket holds live
    /// entries only. Out of line and cold: `track` keeps no value across
    /// a call, so it needs no stack frame.
    #[cold]
    #[inline(never)]
    fn track_crowded(&mut self, p: &Probe, backend: BackendId, now: u32, timeout: u32) {
        let c = &mut self.counters;
        match self.flows.insert_second(p, backend.0, now, timeout) {
            Ok(_) => c.new_flows += 1,
            Err(_) => c.flow_table_full += 1,
        }
    }

    /// The second stage: decides and encapsulates the frame `s` staged, or
    /// returns `None` (see [`Processor::process_fast`]). `pkt` must be the
    /// frame [`Processor::stage`] saw, unchanged, under the same snapshot.
    #[inline(always)]
    pub fn finish<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        s: &Staged,
        src_mac: SourceMac,
        now: u32,
    ) -> Option<Action> {
        if !s.is_usual() {
            return None;
        }
        let tcp = s.who.bits() & TCP != 0;
        let syn = s.who.bits() & SYN != 0;
        let p = &snap.params;
        let timeout = if tcp {
            p.tcp_timeout_ms
        } else {
            p.udp_timeout_ms
        };
        // Whether the packet starts tracking its flow (a miss, not a SYN).
        let (backend, new) = match self.flows.lookup_probe(s.probe, now, timeout) {
            // Flag bits (closing, pinned) take the general step (a SYN
            // reopens a closing flow there).
            Some(v) if v & !BACKEND_BITS != 0 => return None,
            Some(v) => (BackendId(v), false),
            // With sync, an untracked flow may be one a peer shared, or
            // one to share, and a SYN one to pin.
            None if self.sync.is_some() => return None,
            // A datagram of an untracked flow or a SYN would open one:
            // new-flow limits.
            None if (!tcp || syn) && s.who.bits() & LIMITED != 0 => return None,
            None => {
                let l = snap.listeners.get(usize::from(s.who.listener()))?;
                let hash = if s.who.bits() & SOURCE_IP == 0 {
                    flow_hash_of_mix(s.mix)
                } else {
                    parse::src_hash_at(pkt.data(), s.who.bits() & IPV6 != 0)?
                };
                let backend = l.table.lookup(hash)?;
                self.untracked_syns += u64::from(syn);
                (backend, !syn)
            }
        };
        let r = snap.route(backend)?;
        if !r.admits(s.who.group()) {
            return None;
        }
        let v6 = usize::from(s.who.bits() & IPV6 != 0);
        let ip_len = s.len_code as u32 as usize;
        let tpl = &r.encap[v6];
        if ip_len > usize::from(tpl.max_ip_len()) {
            return None;
        }
        // A new flow is tracked last (whatever becomes of its packet, as
        // in the general step): nothing after the call needs this packet's
        // values in registers.
        if let Err(reason) = tpl.apply(pkt, 14, ip_len, s.mix, src_mac) {
            self.counters.backend_drop(backend, reason);
            self.counters.listener_drop(s.who.slot(), reason);
            if new {
                self.track(&s.probe, backend, now, timeout);
            }
            return Some(Action::Drop(reason));
        }
        self.counters.sent(s.who.slot(), backend, ip_len as u64);
        if new {
            self.track(&s.probe, backend, now, timeout);
        }
        Some(Action::Encapsulated(backend))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_who_word_keeps_each_field_apart() {
        assert_eq!(Who::new(0, 0, 0, SYN | USUAL).bits(), SYN | USUAL);
        let w = Who::new(0xfff1, 0xfff2, 0xfff3, USUAL | LIMITED);
        assert_eq!(
            (w.listener(), w.slot(), w.group()),
            (0xfff1, 0xfff2, 0xfff3)
        );
        assert_eq!(w.bits(), USUAL | LIMITED);
        let w = w.with(TCP | IPV6);
        assert_eq!(w.bits(), USUAL | LIMITED | TCP | IPV6);
        assert_eq!(
            (w.listener(), w.slot(), w.group()),
            (0xfff1, 0xfff2, 0xfff3)
        );
        assert_eq!(Who::new(0, 0, 0, SOURCE_IP).bits(), SOURCE_IP);
    }

    #[test]
    fn slots_load_after_a_burst_that_opened_flows() {
        let mut p = Processor::new(64, 7);
        assert!(!p.opening_flows(), "nothing opened yet");
        p.counters.new_flows += OPENING_BURST - 1;
        assert!(!p.opening_flows(), "too few to matter");
        p.counters.new_flows += OPENING_BURST;
        assert!(p.opening_flows());
        assert!(!p.opening_flows(), "each burst counts its own");
        p.counters.new_flows = u64::MAX;
        p.opening_flows();
        p.counters.new_flows = p.counters.new_flows.wrapping_add(OPENING_BURST);
        assert!(p.opening_flows(), "across the counter's wrap");
        p.untracked_syns += OPENING_BURST;
        assert!(p.opening_flows(), "SYNs of untracked flows open too");
        assert!(!p.opening_flows());
    }
}

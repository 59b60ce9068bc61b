//! The per-worker load-balancing step: one packet in, one [`Action`] out.
//!
//! Pure: no I/O; time (`now_ms`, wrapping milliseconds) is passed in. The
//! worker owns one `Processor` (its flow table, counters and ICMP rate
//! limiter) and passes the current [`Snapshot`] with each burst.

use dnlb_model::{EchoPolicy, FragmentPolicy, Scheduler, TooBigPolicy};
use dnlb_wire::ethernet::{EthernetFrame, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use dnlb_wire::icmp;
use dnlb_wire::ip::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use dnlb_wire::ipv4::Ipv4Packet;
use dnlb_wire::ipv6::Ipv6Packet;
use dnlb_wire::tcp::TcpFlags;

use crate::flow_table::{fingerprint_v4, fingerprint_v6, FlowTable};
use crate::hash;
use crate::ids::BackendId;
use crate::ratelimit::TokenBucket;
use crate::reply;
use crate::snapshot::{ListenerState, Snapshot};
use crate::verdict::{Action, DropReason};
use crate::vip::{addr_key_v4, addr_key_v6, FragmentTarget, VipMatch};
use dnlb_wire::buf::PacketBuf;

/// Packets and bytes (of the inner IP packet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// A worker's load-balancing counters (plain integers, owned by the worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbCounters {
    /// Per listener counter slot ([`ListenerState::slot`]): packets sent to
    /// a backend.
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
}

impl Traffic {
    /// Adds another count.
    pub fn add(&mut self, o: &Traffic) {
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

impl LbCounters {
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
    }
}

/// The per-worker state.
#[derive(Debug)]
pub struct Processor {
    flows: FlowTable,
    seed: u64,
    icmp: TokenBucket,
    /// Counters.
    pub counters: LbCounters,
    /// The fingerprint `prepare` computed for the frame being processed.
    hint: Option<u64>,
}

/// Addresses, ports and lengths of the packet being handled.
#[derive(Debug, Clone, Copy)]
struct Tuple<A> {
    src: A,
    dst: A,
    proto: u8,
    sport: u16,
    dport: u16,
}

/// What differs between IPv4 and IPv6 flows: address type and the hash,
/// fingerprint and table-key functions over it.
trait Family {
    type Addr: Copy;
    fn key(a: Self::Addr) -> u128;
    fn flow_hash(t: &Tuple<Self::Addr>) -> u64;
    fn src_hash(a: Self::Addr) -> u64;
    fn fingerprint(seed: u64, t: &Tuple<Self::Addr>) -> u64;
}

struct V4;
struct V6;

impl Family for V4 {
    type Addr = [u8; 4];
    #[inline(always)]
    fn key(a: [u8; 4]) -> u128 {
        addr_key_v4(a)
    }
    #[inline(always)]
    fn flow_hash(t: &Tuple<[u8; 4]>) -> u64 {
        hash::flow_hash_v4(t.src, t.dst, t.proto, t.sport, t.dport)
    }
    #[inline(always)]
    fn src_hash(a: [u8; 4]) -> u64 {
        hash::src_hash_v4(a)
    }
    #[inline(always)]
    fn fingerprint(seed: u64, t: &Tuple<[u8; 4]>) -> u64 {
        fingerprint_v4(seed, t.src, t.dst, t.proto, t.sport, t.dport)
    }
}

impl Family for V6 {
    type Addr = [u8; 16];
    #[inline(always)]
    fn key(a: [u8; 16]) -> u128 {
        addr_key_v6(a)
    }
    #[inline(always)]
    fn flow_hash(t: &Tuple<[u8; 16]>) -> u64 {
        hash::flow_hash_v6(t.src, t.dst, t.proto, t.sport, t.dport)
    }
    #[inline(always)]
    fn src_hash(a: [u8; 16]) -> u64 {
        hash::src_hash_v6(a)
    }
    #[inline(always)]
    fn fingerprint(seed: u64, t: &Tuple<[u8; 16]>) -> u64 {
        fingerprint_v6(seed, t.src, t.dst, t.proto, t.sport, t.dport)
    }
}

/// The scheduler's hash of a flow (5-tuple, or the client address).
#[inline(always)]
fn schedule_hash<F: Family>(l: &ListenerState, t: &Tuple<F::Addr>) -> u64 {
    match l.scheduler {
        Scheduler::Maglev => F::flow_hash(t),
        Scheduler::SourceIp => F::src_hash(t.src),
    }
}

/// Where the inner IP packet is in the frame.
#[derive(Debug, Clone, Copy)]
struct Frame {
    l2: usize,
    ip_len: usize,
    v6: bool,
    /// IPv4 DF bit (IPv6: always true: routers never fragment).
    df: bool,
    /// TCP flags (none for anything else).
    tcp_flags: TcpFlags,
}

/// Flow-table value bit: the client closed the TCP connection (FIN or RST);
/// the entry lives only the closing timeout past its last packet.
const CLOSING: u32 = 1 << 31;

impl Processor {
    /// A processor with a flow table for `flow_capacity` flows. `seed` keys
    /// the flow fingerprints (use a random value per worker); `now_ms` starts
    /// the ICMP rate limiter.
    pub fn new(flow_capacity: usize, seed: u64, icmp_rate_per_sec: u32, now_ms: u32) -> Self {
        Processor {
            flows: FlowTable::new(flow_capacity),
            seed,
            icmp: TokenBucket::new(icmp_rate_per_sec, icmp_rate_per_sec, now_ms),
            counters: LbCounters::default(),
            hint: None,
        }
    }

    /// Sizes the counters for `snap` (slow path: call when a new snapshot is
    /// adopted, before its first packet).
    pub fn adopt(&mut self, snap: &Snapshot) {
        let slots = snap.listener_slots();
        if self.counters.listeners.len() < slots {
            self.counters.listeners.resize(slots, Traffic::default());
            self.counters
                .listener_drops
                .resize(slots, [0; DropReason::COUNT]);
        }
        if self.counters.backends.len() < snap.backends.len() {
            self.counters
                .backends
                .resize(snap.backends.len(), Traffic::default());
            self.counters
                .backend_drops
                .resize(snap.backends.len(), [0; DropReason::COUNT]);
        }
    }

    /// The flow table (for occupancy reports and sweeping).
    pub fn flows(&mut self) -> &mut FlowTable {
        &mut self.flows
    }

    /// First pass over a burst: finds where the frame's flow would be in the
    /// flow table and starts loading it, so the cache misses of a whole
    /// burst overlap. A hint only: it reads headers without validating them
    /// and changes nothing; [`Processor::process`] does the real work.
    /// Returns the fingerprint it computed (a TCP/UDP frame that is not a
    /// fragment), which [`Processor::process_hinted`] can reuse.
    #[inline]
    pub fn prepare<P: PacketBuf>(&self, pkt: &P) -> Option<u64> {
        let d = pkt.data();
        let &[t0, t1] = d.get(12..14)? else {
            return None;
        };
        let (ethertype, l3) = match u16::from_be_bytes([t0, t1]) {
            0x8100 | 0x88a8 => match d.get(16..18) {
                Some(&[a, b]) => (u16::from_be_bytes([a, b]), 18),
                _ => return None,
            },
            t => (t, 14),
        };
        let fp = match ethertype {
            ETHERTYPE_IPV4 => {
                let ip = d.get(l3..l3 + 20)?;
                let ihl = (ip[0] & 0x0f) as usize * 4;
                let proto = ip[9];
                if ip[6] & 0x3f != 0 || ip[7] != 0 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
                {
                    return None;
                }
                let p = d.get(l3 + ihl..l3 + ihl + 4)?;
                fingerprint_v4(
                    self.seed,
                    [ip[12], ip[13], ip[14], ip[15]],
                    [ip[16], ip[17], ip[18], ip[19]],
                    proto,
                    u16::from_be_bytes([p[0], p[1]]),
                    u16::from_be_bytes([p[2], p[3]]),
                )
            }
            ETHERTYPE_IPV6 => {
                let ip = d.get(l3..l3 + 44)?;
                let proto = ip[6];
                if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
                    return None;
                }
                let (Ok(src), Ok(dst)) = (
                    <[u8; 16]>::try_from(&ip[8..24]),
                    <[u8; 16]>::try_from(&ip[24..40]),
                ) else {
                    return None;
                };
                fingerprint_v6(
                    self.seed,
                    src,
                    dst,
                    proto,
                    u16::from_be_bytes([ip[40], ip[41]]),
                    u16::from_be_bytes([ip[42], ip[43]]),
                )
            }
            _ => return None,
        };
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
        self.hint = hint;
        let a = self.dispatch(snap, pkt, src_mac, now_ms);
        self.hint = None;
        a
    }

    #[inline]
    fn dispatch<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        src_mac: [u8; 6],
        now_ms: u32,
    ) -> Action {
        let (l2, ethertype) = match EthernetFrame::new_checked(pkt.data()) {
            Ok(e) => (e.header_len(), e.ethertype()),
            Err(_) => return Action::Drop(DropReason::MalformedL2),
        };
        let r = match ethertype {
            ETHERTYPE_IPV4 => self.ipv4(snap, pkt, l2, src_mac, now_ms),
            ETHERTYPE_IPV6 => self.ipv6(snap, pkt, l2, src_mac, now_ms),
            _ => Ok(Action::NotForVip),
        };
        r.unwrap_or_else(Action::Drop)
    }

    fn ipv4<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        l2: usize,
        src_mac: [u8; 6],
        now: u32,
    ) -> Result<Action, DropReason> {
        let ip = Ipv4Packet::new_checked(&pkt.data()[l2..]).map_err(|_| DropReason::MalformedL3)?;
        let (src, dst, proto) = (ip.src().octets(), ip.dst().octets(), ip.protocol());
        let mut frame = Frame {
            l2,
            ip_len: ip.total_len() as usize,
            v6: false,
            df: ip.dont_fragment(),
            tcp_flags: TcpFlags::default(),
        };
        let key = addr_key_v4(dst);
        if ip.is_fragment() {
            if !snap.vips.is_vip(key) {
                return Ok(Action::NotForVip);
            }
            let l = fragment_listener(snap, key, proto)?;
            let h = hash::addr_hash_v4(src, dst, proto);
            return self.fragment(snap, pkt, frame, l, h, src_mac, now);
        }
        let l4 = ip.payload();
        match proto {
            IPPROTO_TCP | IPPROTO_UDP => {
                let (sport, dport, flags) = ports(l4, proto)?;
                frame.tcp_flags = flags;
                let t = Tuple {
                    src,
                    dst,
                    proto,
                    sport,
                    dport,
                };
                self.flow::<V4, P>(snap, pkt, frame, t, src_mac, now)
            }
            IPPROTO_ICMP => {
                if !snap.vips.is_vip(key) {
                    return Ok(Action::NotForVip);
                }
                let m = icmp::Icmpv4Packet::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
                match m.msg_type() {
                    icmp::ICMPV4_ECHO_REQUEST => match snap.params.icmp_echo {
                        EchoPolicy::Drop => Err(DropReason::EchoDropped),
                        EchoPolicy::Reply => {
                            reply::echo_reply_v4(pkt, l2, src_mac)
                                .ok_or(DropReason::MalformedL4)?;
                            self.counters.echo_replies += 1;
                            Ok(Action::Reply)
                        }
                    },
                    icmp::ICMPV4_DEST_UNREACHABLE
                    | icmp::ICMPV4_TIME_EXCEEDED
                    | icmp::ICMPV4_PARAMETER_PROBLEM => {
                        let inner =
                            reply::inner_v4(m.payload()).ok_or(DropReason::IcmpUnsupported)?;
                        self.icmp_error::<V4, P>(snap, pkt, frame, inner, src_mac, now)
                    }
                    _ => Err(DropReason::IcmpUnsupported),
                }
            }
            _ if snap.vips.is_vip(key) => Err(DropReason::NoListener),
            _ => Ok(Action::NotForVip),
        }
    }

    fn ipv6<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        l2: usize,
        src_mac: [u8; 6],
        now: u32,
    ) -> Result<Action, DropReason> {
        let ip = Ipv6Packet::new_checked(&pkt.data()[l2..]).map_err(|_| DropReason::MalformedL3)?;
        let (src, dst) = (ip.src().octets(), ip.dst().octets());
        let key = addr_key_v6(dst);
        let upper = ip.upper_layer().map_err(|_| DropReason::MalformedL3)?;
        let proto = upper.protocol;
        let mut frame = Frame {
            l2,
            ip_len: 40 + ip.payload_len() as usize,
            v6: true,
            df: true,
            tcp_flags: TcpFlags::default(),
        };
        if let Some(f) = upper.fragment {
            if f.offset != 0 || f.more {
                if !snap.vips.is_vip(key) {
                    return Ok(Action::NotForVip);
                }
                let l = fragment_listener(snap, key, proto)?;
                let h = hash::addr_hash_v6(src, dst, proto);
                return self.fragment(snap, pkt, frame, l, h, src_mac, now);
            }
        }
        let l4 = ip.upper_layer_payload(&upper);
        match proto {
            IPPROTO_TCP | IPPROTO_UDP => {
                let (sport, dport, flags) = ports(l4, proto)?;
                frame.tcp_flags = flags;
                let t = Tuple {
                    src,
                    dst,
                    proto,
                    sport,
                    dport,
                };
                self.flow::<V6, P>(snap, pkt, frame, t, src_mac, now)
            }
            IPPROTO_ICMPV6 => {
                let m = icmp::Icmpv6Packet::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
                let t = m.msg_type();
                // Neighbour discovery and router messages are the host's.
                if (133..=137).contains(&t) || !snap.vips.is_vip(key) {
                    return Ok(Action::NotForVip);
                }
                match t {
                    icmp::ICMPV6_ECHO_REQUEST => match snap.params.icmp_echo {
                        EchoPolicy::Drop => Err(DropReason::EchoDropped),
                        EchoPolicy::Reply => {
                            let icmp_at = l2 + upper.offset;
                            reply::echo_reply_v6(pkt, l2, icmp_at, src_mac)
                                .ok_or(DropReason::MalformedL4)?;
                            self.counters.echo_replies += 1;
                            Ok(Action::Reply)
                        }
                    },
                    icmp::ICMPV6_DEST_UNREACHABLE
                    | icmp::ICMPV6_PACKET_TOO_BIG
                    | icmp::ICMPV6_TIME_EXCEEDED
                    | icmp::ICMPV6_PARAMETER_PROBLEM => {
                        let inner =
                            reply::inner_v6(m.payload()).ok_or(DropReason::IcmpUnsupported)?;
                        self.icmp_error::<V6, P>(snap, pkt, frame, inner, src_mac, now)
                    }
                    _ => Err(DropReason::IcmpUnsupported),
                }
            }
            _ if snap.vips.is_vip(key) => Err(DropReason::NoListener),
            _ => Ok(Action::NotForVip),
        }
    }

    /// A TCP or UDP packet of flow `t` to a VIP: listener, backend, send.
    #[inline]
    fn flow<F: Family, P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        frame: Frame,
        t: Tuple<F::Addr>,
        src_mac: [u8; 6],
        now: u32,
    ) -> Result<Action, DropReason> {
        let id = match snap.vips.lookup(F::key(t.dst), t.proto, t.dport) {
            VipMatch::NotVip => return Ok(Action::NotForVip),
            VipMatch::NoListener => return Err(DropReason::NoListener),
            VipMatch::Listener(id) => id,
        };
        let l = &snap.listeners[id.0 as usize];
        let h = schedule_hash::<F>(l, &t);
        let fp = match self.hint.take() {
            Some(fp) => {
                debug_assert_eq!(
                    fp,
                    F::fingerprint(self.seed, &t),
                    "prepare and process disagree"
                );
                fp
            }
            None => F::fingerprint(self.seed, &t),
        };
        let r = self
            .pick(snap, l, fp, h, t.proto, frame.tcp_flags, now)
            .and_then(|b| self.send(snap, pkt, frame, l.slot, b, h, src_mac, now));
        self.count_listener_drop(l, r)
    }

    /// A fragment of a listener that hashes fragments on addresses: the
    /// stateless choice for hash `h` (every fragment of a datagram agrees).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn fragment<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        frame: Frame,
        l: &ListenerState,
        h: u64,
        src_mac: [u8; 6],
        now: u32,
    ) -> Result<Action, DropReason> {
        let r = l
            .table
            .lookup(h)
            .ok_or(DropReason::NoBackend)
            .and_then(|id| self.send(snap, pkt, frame, l.slot, id, h, src_mac, now));
        self.count_listener_drop(l, r)
    }

    /// Counts a drop against the listener it happened on.
    #[inline]
    fn count_listener_drop(
        &mut self,
        l: &ListenerState,
        r: Result<Action, DropReason>,
    ) -> Result<Action, DropReason> {
        if let Err(reason) = r {
            if let Some(d) = self.counters.listener_drops.get_mut(l.slot as usize) {
                d[reason as usize] += 1;
            }
        }
        r
    }

    /// An ICMP error about a packet a backend sent from a VIP to a client
    /// (direct server return): to the backend that owns the flow.
    #[inline]
    fn icmp_error<F: Family, P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        frame: Frame,
        inner: reply::Quoted<F::Addr>,
        src_mac: [u8; 6],
        now: u32,
    ) -> Result<Action, DropReason> {
        // The quoted packet went VIP -> client; the flow is client -> VIP.
        let t = Tuple {
            src: inner.dst,
            dst: inner.src,
            proto: inner.proto,
            sport: inner.dport,
            dport: inner.sport,
        };
        let id = match snap.vips.lookup(F::key(t.dst), t.proto, t.dport) {
            VipMatch::Listener(id) => id,
            _ => return Err(DropReason::IcmpUnsupported),
        };
        let l = &snap.listeners[id.0 as usize];
        let h = schedule_hash::<F>(l, &t);
        let fp = F::fingerprint(self.seed, &t);
        let r = self.existing_or_table(snap, l, fp, h, now).and_then(|b| {
            self.counters.icmp_errors_forwarded += 1;
            self.send(snap, pkt, frame, l.slot, b, h, src_mac, now)
        });
        self.count_listener_drop(l, r)
    }

    /// The backend of a TCP/UDP flow: the flow table's if it is still usable
    /// for this listener, else the listener's table (and remember it).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn pick(
        &mut self,
        snap: &Snapshot,
        l: &ListenerState,
        fp: u64,
        h: u64,
        proto: u8,
        tcp_flags: TcpFlags,
        now: u32,
    ) -> Result<BackendId, DropReason> {
        let tcp = proto == IPPROTO_TCP;
        let timeout = if tcp {
            snap.params.tcp_timeout_ms
        } else {
            snap.params.udp_timeout_ms
        };
        // The client's FIN or RST: the connection is ending. Its entry then
        // lives only the closing timeout past its last packet, until a new
        // SYN on the same 5-tuple opens a connection again.
        let fin_rst =
            tcp && (tcp_flags.contains(TcpFlags::FIN) || tcp_flags.contains(TcpFlags::RST));
        let syn = tcp && tcp_flags.contains(TcpFlags::SYN) && !tcp_flags.contains(TcpFlags::ACK);
        let closing_timeout = snap.params.tcp_closing_timeout_ms;
        if let Some(v) = self.flows.lookup(fp, now, timeout) {
            let id = BackendId(v & !CLOSING);
            match snap.backend(id) {
                Some(b) if b.usable && b.group == l.group => {
                    let was_closing = v & CLOSING != 0;
                    if fin_rst || (was_closing && !syn) {
                        // Replaces the entry in place (it is there).
                        let _ = self.flows.insert(fp, id.0 | CLOSING, now, closing_timeout);
                    } else if was_closing {
                        let _ = self.flows.insert(fp, id.0, now, timeout);
                    }
                    return Ok(id);
                }
                _ => self.counters.flows_rescheduled += 1,
            }
        }
        let id = l.table.lookup(h).ok_or(DropReason::NoBackend)?;
        debug_assert!(id.0 & CLOSING == 0, "backend ids stay below 2^31");
        let (value, t) = if fin_rst {
            (id.0 | CLOSING, closing_timeout)
        } else {
            (id.0, timeout)
        };
        match self.flows.insert(fp, value, now, t) {
            Ok(()) => self.counters.new_flows += 1,
            Err(_) => self.counters.flow_table_full += 1,
        }
        Ok(id)
    }

    /// For ICMP errors: the flow's backend if this worker tracks the flow,
    /// else the stateless choice (what any gateway would pick).
    #[inline]
    fn existing_or_table(
        &mut self,
        snap: &Snapshot,
        l: &ListenerState,
        fp: u64,
        h: u64,
        now: u32,
    ) -> Result<BackendId, DropReason> {
        if let Some(v) = self.flows.peek(fp, now) {
            let id = BackendId(v & !CLOSING);
            if snap
                .backend(id)
                .is_some_and(|b| b.usable && b.group == l.group)
            {
                return Ok(id);
            }
        }
        l.table.lookup(h).ok_or(DropReason::NoBackend)
    }

    /// Encapsulates toward `backend`, or answers "too big".
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn send<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        f: Frame,
        listener_slot: u16,
        backend: BackendId,
        h: u64,
        src_mac: [u8; 6],
        now: u32,
    ) -> Result<Action, DropReason> {
        let r = self.deliver(snap, pkt, f, listener_slot, backend, h, src_mac, now);
        if let Err(reason) = r {
            if let Some(d) = self.counters.backend_drops.get_mut(backend.0 as usize) {
                d[reason as usize] += 1;
            }
        }
        r
    }

    /// [`Processor::send`] without counting its drops.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn deliver<P: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        pkt: &mut P,
        f: Frame,
        listener_slot: u16,
        backend: BackendId,
        h: u64,
        src_mac: [u8; 6],
        now: u32,
    ) -> Result<Action, DropReason> {
        let b = snap.backend(backend).ok_or(DropReason::NoBackend)?;
        let t = &b.encap[f.v6 as usize];
        if t.ip_overhead() + f.ip_len > snap.params.mtu as usize {
            let mtu = (snap.params.mtu as usize - t.ip_overhead()) as u32;
            if snap.params.too_big == TooBigPolicy::Drop || !f.df {
                return Err(DropReason::TooBig);
            }
            if !self.icmp.take(now) {
                return Err(DropReason::IcmpRateLimited);
            }
            let ok = if f.v6 {
                reply::packet_too_big_v6(pkt, f.l2, f.ip_len, mtu, src_mac)
            } else {
                reply::frag_needed_v4(pkt, f.l2, f.ip_len, mtu as u16, src_mac)
            };
            ok.ok_or(DropReason::NoHeadroom)?;
            self.counters.too_big_sent += 1;
            return Ok(Action::Reply);
        }
        t.apply(pkt, f.l2, f.ip_len, h, src_mac)?;
        let bytes = f.ip_len as u64;
        if let Some(c) = self.counters.listeners.get_mut(listener_slot as usize) {
            c.packets += 1;
            c.bytes += bytes;
        }
        if let Some(c) = self.counters.backends.get_mut(backend.0 as usize) {
            c.packets += 1;
            c.bytes += bytes;
        }
        Ok(Action::Encapsulated(backend))
    }
}

fn fragment_listener(snap: &Snapshot, key: u128, proto: u8) -> Result<&ListenerState, DropReason> {
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

/// Source and destination ports of a TCP or UDP header, validated, and the
/// TCP flags (none for UDP).
#[inline]
fn ports(l4: &[u8], proto: u8) -> Result<(u16, u16, TcpFlags), DropReason> {
    let flags = if proto == IPPROTO_TCP {
        dnlb_wire::tcp::TcpPacket::new_checked(l4)
            .map_err(|_| DropReason::MalformedL4)?
            .flags()
    } else {
        dnlb_wire::udp::UdpPacket::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
        TcpFlags::default()
    };
    Ok((
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
        flags,
    ))
}

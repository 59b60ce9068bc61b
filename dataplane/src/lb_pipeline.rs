//! The load-balancing pipeline: each packet goes through the per-worker
//! [`Processor`] against the current snapshot (see [`super::snapshot`]); encapsulated packets and
//! replies leave by the port they came in on (one-armed), frames not for a
//! VIP go to the port's `forward_to` or the host port, frames from the host
//! port go out unprocessed.

use dnlb_lb::encap::SourceMac;
use dnlb_lb::processor::{ListenerMemo, Processor, Staged};
use dnlb_lb::snapshot::Snapshot;
use dnlb_lb::verdict::{Action, DropReason};

use crate::capture::{CaptureTap, Decision};
use crate::clock::Clock;
use crate::explain::ExplainResponder;
use dnlb_wire::buf::PacketBuf;

use crate::io::{PortIndex, BURST};
use crate::pipeline::{BurstVerdict, Pipeline, Verdict};
use crate::snapshot::Reader;
use crate::stats::LbStatsPublisher;
use crate::sync::{SyncLink, WorkerSync};

/// Per-port routing the pipeline needs.
#[derive(Debug, Clone)]
pub struct PortPlan {
    /// MAC address of each port (source MAC of what leaves by it).
    pub macs: Vec<[u8; 6]>,
    /// Where frames not for a VIP go, per ingress port.
    pub non_vip: Vec<Option<PortIndex>>,
    /// The exception-path port.
    pub host_port: Option<PortIndex>,
}

/// The pipeline one worker runs.
#[derive(Debug)]
pub struct LbPipeline<C: Clock> {
    processor: Processor,
    snapshot: Reader,
    ports: PortPlan,
    clock: C,
    /// The time-stamp counter at the start of the worker's iteration
    /// ([`Pipeline::on_iteration`]), which [`LbPipeline::now`] reads the
    /// clock at.
    tsc: u64,
    stats: Option<LbStatsPublisher>,
    /// Poll iterations, for the flow-table sweep's pace.
    polls: u32,
    /// What the burst's first stage found for each frame.
    staged: [Staged; BURST],
    /// Flow-exception sync, when enabled.
    sync: Option<WorkerSync>,
    /// A snapshot was adopted since sync last looked.
    adopted: bool,
    /// Answers `dnlb explain` when the control thread asks.
    explain: Option<ExplainResponder>,
    /// Copies the packets of an armed capture.
    capture: Option<CaptureTap>,
}

/// The flow table (and sync's learned-entry table) is swept every this
/// many poll iterations (a power of two)...
const SWEEP_EVERY_POLLS: u32 = 64;
/// ...this many buckets (64 bytes each) at a time. A 1M-flow table (2^19
/// buckets) is visited whole every 4M polls: a few seconds under traffic,
/// a minute or two idle with back-off; far within the 2^31 ms (24.8 days)
/// after which an expired entry nobody touched would look live again.
const SWEEP_BUCKETS: usize = 8;

impl<C: Clock> LbPipeline<C> {
    /// The time of the worker's current iteration, in the clock's
    /// milliseconds.
    #[inline(always)]
    fn now(&self) -> u32 {
        self.clock.at(self.tsc)
    }

    /// A pipeline reading published snapshots through `snapshot`.
    pub fn new(mut processor: Processor, snapshot: Reader, ports: PortPlan, clock: C) -> Self {
        processor.adopt(snapshot.get());
        LbPipeline {
            processor,
            snapshot,
            ports,
            clock,
            tsc: dpdk_bindings::rdtsc(),
            stats: None,
            polls: 0,
            staged: [Staged::default(); BURST],
            sync: None,
            adopted: false,
            explain: None,
            capture: None,
        }
    }

    /// Copies matching packets when the control thread arms a capture
    /// through `capture` (checked once per burst).
    pub fn with_capture(mut self, capture: CaptureTap) -> Self {
        self.capture = Some(capture);
        self
    }

    /// Answers the control thread's `dnlb explain` questions through
    /// `explain` (checked once per loop iteration).
    pub fn with_explain(mut self, explain: ExplainResponder) -> Self {
        self.explain = Some(explain);
        self
    }

    /// Takes part in flow-exception sync through `link` (the processor must
    /// have been made [`Processor::with_sync`]).
    pub fn with_sync(mut self, link: SyncLink) -> Self {
        self.sync = Some(WorkerSync::new(link));
        self
    }

    /// Publishes counters and flow-table occupancy through `stats` when the
    /// control thread asks.
    pub fn with_stats(mut self, stats: LbStatsPublisher) -> Self {
        self.stats = Some(stats);
        self
    }

    /// The snapshot generation in use.
    pub fn generation(&self) -> u64 {
        self.snapshot.generation()
    }

    /// The processor (counters, flow table).
    pub fn processor(&mut self) -> &mut Processor {
        &mut self.processor
    }
}

impl<C: Clock> Pipeline for LbPipeline<C> {
    fn on_start(&mut self) {
        self.snapshot.prime();
        if let Some(stats) = &self.stats {
            stats.prime();
        }
    }

    #[inline(always)]
    fn on_iteration(&mut self, tsc: u64) {
        self.tsc = tsc;
    }

    #[inline]
    fn on_poll(&mut self) {
        // Reclaim expired flows (and learned entries) a few buckets at a
        // time, at the iteration's time (also when idle: the wrap must
        // never catch an entry).
        let now = self.now();
        self.polls = self.polls.wrapping_add(1);
        let sweep = self.polls & (SWEEP_EVERY_POLLS - 1) == 0;
        if sweep {
            self.processor.flows().sweep(now, SWEEP_BUCKETS);
        }
        if let Some(sync) = &mut self.sync {
            // Snapshots are adopted between bursts; an idle worker takes
            // them here, so its walk starts too.
            if self.snapshot.refresh() {
                self.processor.adopt(self.snapshot.get());
                self.adopted = true;
            }
            let adopted = std::mem::take(&mut self.adopted);
            sync.poll(
                &mut self.processor,
                self.snapshot.get(),
                now,
                adopted,
                sweep,
            );
        }
        if let Some(ex) = &mut self.explain {
            if ex.requested() {
                // Answered against the snapshot the next packet would see
                // (an idle worker takes a new one here: a quiescent point).
                if self.snapshot.refresh() {
                    self.processor.adopt(self.snapshot.get());
                    self.adopted = true;
                }
                ex.answer(&self.processor, self.snapshot.get(), now);
            }
        }
        if let Some(stats) = &mut self.stats {
            let p = &mut self.processor;
            if self.sync.is_some() && stats.requested() {
                p.copy_sync_counters();
            }
            let (flows, capacity) = (p.flows().len(), p.flows().capacity());
            stats.poll(&p.counters, flows, capacity);
        }
    }

    fn on_stop(&mut self) {
        if let Some(stats) = &mut self.stats {
            let p = &mut self.processor;
            p.copy_sync_counters();
            let (flows, capacity) = (p.flows().len(), p.flows().capacity());
            stats.publish_now(&p.counters, flows, capacity);
        }
    }

    #[inline]
    fn process<P: PacketBuf>(
        &mut self,
        port: PortIndex,
        pkts: &mut [P],
        verdicts: &mut [Verdict; BURST],
    ) -> BurstVerdict {
        let non_vip = self.ports.non_vip[port.get()];
        if self.ports.host_port == Some(port) {
            return BurstVerdict::Uniform(match non_vip {
                Some(o) => Verdict::Forward(o),
                None => Verdict::Drop(DropReason::NotForVip),
            });
        }
        // Quiescent point: between bursts a newly published snapshot is taken
        // (one atomic load when there is none).
        if self.snapshot.refresh() {
            self.processor.adopt(self.snapshot.get());
            self.adopted = true;
        }
        let now = self.now();
        let mac = self.ports.macs[port.get()];
        let snap = self.snapshot.get();
        // First stage: each frame's listener and hashes, its flow-table
        // buckets starting to load (all the burst's loads overlap).
        // After a burst that opened flows, each packet's Maglev slot
        // starts loading too.
        let listed = if self.processor.opening_flows() {
            stage_burst::<P, true>(&self.processor, snap, pkts, &mut self.staged)
        } else {
            stage_burst::<P, false>(&self.processor, snap, pkts, &mut self.staged)
        };
        if let Some(tap) = &mut self.capture {
            if tap.armed(now) {
                return self.process_captured((port, mac, now), pkts, verdicts);
            }
        }
        let (processor, ports, staged) = (&mut self.processor, &self.ports, &mut self.staged);
        let at = (port, mac, now);
        if !listed {
            return finish_burst::<P, false>(processor, snap, ports, at, pkts, staged, verdicts);
        }
        let verdict = finish_burst::<P, true>(processor, snap, ports, at, pkts, staged, verdicts);
        count_listed(processor, snap, &staged[..pkts.len().min(BURST)]);
        verdict
    }
}

/// The first stage over a burst ([`Processor::stage`] of each frame), out
/// of line: a loop of its own keeps its values in registers; then, if it
/// met listeners with access lists, [`Processor::stage_listed`]. Whether a
/// staged packet may be [`Staged::is_listed`] (the rule to count if the
/// second stage takes it).
#[inline(never)]
fn stage_burst<P: PacketBuf, const SLOTS: bool>(
    processor: &Processor,
    snap: &Snapshot,
    pkts: &[P],
    staged: &mut [Staged; BURST],
) -> bool {
    let mut memo = ListenerMemo::new();
    for (p, s) in pkts.iter().zip(staged.iter_mut()) {
        *s = if p.is_contiguous() {
            processor.stage_with::<SLOTS, P>(snap, p, &mut memo)
        } else {
            Staged::default()
        };
    }
    if !memo.listed() {
        return false;
    }
    // The packets of listeners with access lists, staged if their lists
    // let them in.
    let n = pkts.len().min(BURST);
    processor.stage_listed::<SLOTS, P>(snap, &pkts[..n], &mut staged[..n], &mut memo);
    true
}

/// Counts the access-list rules of the burst's listed packets the second
/// stage took (those it declined were unlisted: the general step counted
/// them), after the burst: the second stage's loop does not carry them.
#[cold]
#[inline(never)]
fn count_listed(processor: &Processor, snap: &Snapshot, staged: &[Staged]) {
    for s in staged {
        processor.count_listed(snap, s);
    }
}

/// The second stage over a burst ([`Processor::finish`], else the general
/// step, of each frame) and the burst's verdict, out of line like
/// [`stage_burst`]. `LISTED`: some packets may be [`Staged::is_listed`]
/// (a copy of its own, so that the usual burst's loop is not changed by
/// them).
#[inline(never)]
fn finish_burst<P: PacketBuf, const LISTED: bool>(
    processor: &mut Processor,
    snap: &Snapshot,
    ports: &PortPlan,
    (port, mac, now): (PortIndex, [u8; 6], u32),
    pkts: &mut [P],
    staged: &mut [Staged; BURST],
    verdicts: &mut [Verdict; BURST],
) -> BurstVerdict {
    // Whether every packet leaves by the port it came in on (a gateway's
    // usual burst): then the worker sends the burst as it is, without
    // sorting packets by verdict, and `verdicts` is not read. So only a
    // packet the general step decided gets its verdict written, and a bit
    // in `others` when it leaves otherwise; the encapsulated packets'
    // verdicts are filled in at the end if one did.
    let forward = Verdict::Forward(port);
    let n = pkts.len().min(BURST);
    const _: () = assert!(BURST <= 32, "a burst's packets are bits of a u32");
    let mut others = 0u32;
    let mut decided = 0u32;
    let src_mac = SourceMac::new(mac);
    for i in 0..n {
        let (p, s) = (&mut pkts[i], &mut staged[i]);
        let verdict = match processor.finish(snap, p, s, src_mac, now) {
            // The second stage only encapsulates (or drops).
            Some(Action::Drop(r)) => Verdict::Drop(r),
            Some(_) => continue,
            None => {
                if LISTED {
                    // The general step counts the access list's rule itself.
                    s.unlist();
                }
                decide(processor, snap, ports, port, p, mac, now, s.hint()).1
            }
        };
        decided |= 1 << i;
        if verdict != forward {
            others |= 1 << i;
        }
        verdicts[i] = verdict;
    }
    if others == 0 {
        return BurstVerdict::Uniform(forward);
    }
    for (i, v) in verdicts[..n].iter_mut().enumerate() {
        if decided & 1 << i == 0 {
            *v = forward;
        }
    }
    BurstVerdict::PerPacket
}

impl<C: Clock> LbPipeline<C> {
    /// [`Pipeline::process`] while a capture is armed: the same decisions,
    /// and each matching packet copied as received and as it leaves.
    #[cold]
    #[inline(never)]
    fn process_captured<P: PacketBuf>(
        &mut self,
        (port, mac, now): (PortIndex, [u8; 6], u32),
        pkts: &mut [P],
        verdicts: &mut [Verdict; BURST],
    ) -> BurstVerdict {
        let snap = self.snapshot.get();
        let Some(tap) = &mut self.capture else {
            return BurstVerdict::PerPacket;
        };
        for (i, (p, v)) in pkts.iter_mut().zip(verdicts.iter_mut()).enumerate() {
            let hint = self.staged[i].hint();
            let ticket = tap.before(p.data());
            let (action, verdict) = decide(
                &mut self.processor,
                snap,
                &self.ports,
                port,
                p,
                mac,
                now,
                hint,
            );
            *v = verdict;
            if let Some(at) = ticket {
                tap.after(at, port, p.data(), Decision::of(action, verdict), now);
            }
        }
        BurstVerdict::PerPacket
    }
}

/// One packet's action and verdict: the processor's decision, and where a
/// frame not for a VIP goes.
#[inline(always)]
#[allow(clippy::too_many_arguments, reason = "the hot loop's state, inlined")]
fn decide<P: PacketBuf>(
    processor: &mut Processor,
    snap: &Snapshot,
    ports: &PortPlan,
    port: PortIndex,
    p: &mut P,
    mac: [u8; 6],
    now: u32,
    hint: Option<u64>,
) -> (Action, Verdict) {
    if !p.is_contiguous() {
        // Headers past the first segment cannot be read in place.
        let r = DropReason::NonContiguous;
        return (Action::Drop(r), Verdict::Drop(r));
    }
    let action = processor.process_hinted(snap, p, mac, now, hint);
    let verdict = match action {
        Action::Encapsulated(_) | Action::Reply => Verdict::Forward(port),
        Action::NotForVip => match ports.non_vip[port.get()] {
            // The host's own traffic, policed by class so that a flood of
            // one kind cannot starve routing or neighbour discovery.
            Some(o)
                if Some(o) == ports.host_port && !processor.police_host(snap, p.data(), now) =>
            {
                Verdict::Drop(DropReason::HostPoliced)
            }
            Some(o) => Verdict::Forward(o),
            None => Verdict::Drop(DropReason::NotForVip),
        },
        Action::Drop(r) => Verdict::Drop(r),
    };
    (action, verdict)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
    use dnlb_testkit::VecPacket;

    use super::*;
    use crate::snapshot::Publisher;
    use crate::testing::ManualClock;

    /// A packet that claims to span several segments.
    struct Chained(VecPacket);

    impl PacketBuf for Chained {
        fn data(&self) -> &[u8] {
            PacketBuf::data(&self.0)
        }
        fn data_mut(&mut self) -> &mut [u8] {
            PacketBuf::data_mut(&mut self.0)
        }
        fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
            PacketBuf::prepend(&mut self.0, len)
        }
        fn adj(&mut self, len: u16) -> Option<()> {
            PacketBuf::adj(&mut self.0, len)
        }
        fn trim(&mut self, len: u16) -> Option<()> {
            PacketBuf::trim(&mut self.0, len)
        }
        fn is_contiguous(&self) -> bool {
            false
        }
    }

    fn pipeline(host_port: Option<PortIndex>) -> LbPipeline<ManualClock> {
        pipeline_with(host_port, ManualClock::default())
    }

    fn pipeline_with(host_port: Option<PortIndex>, clock: ManualClock) -> LbPipeline<ManualClock> {
        pipeline_of(host_port, clock, "")
    }

    /// The test pipeline, with `listeners` (TOML) beside listener l.
    fn pipeline_of(
        host_port: Option<PortIndex>,
        clock: ManualClock,
        listeners: &str,
    ) -> LbPipeline<ManualClock> {
        let text = format!("[gateway]\nname = \"t\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
                    [encap]\nsource_v4 = \"192.0.2.1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
                    [[listener]]\nname = \"l\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"g\"\n\
                    {listeners}\
                    [[target_group]]\nname = \"g\"\n[[target_group.backend]]\naddress = \"192.0.2.20\"\ntunnel = \"ipip\"\n");
        let cfg = dnlb_config::parse(std::path::Path::new("t.toml"), &text).unwrap();
        let snap = Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap();
        let publisher = Publisher::new(Arc::new(snap));
        let plan = PortPlan {
            macs: vec![[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]],
            non_vip: vec![host_port, Some(PortIndex(0))],
            host_port,
        };
        LbPipeline::new(Processor::new(1024, 1), publisher.reader(), plan, clock)
    }

    #[test]
    fn the_poll_loop_sweeps_expired_flows_so_the_clock_wrap_never_revives_one() {
        use std::sync::atomic::Ordering;
        let clock = ManualClock::default();
        let mut pl = pipeline_with(None, clock.clone());
        let mut vip = dnlb_testkit::frame(&dnlb_testkit::FlowMix::default(), 0, 0);
        vip[30..34].copy_from_slice(&[192, 0, 2, 10]);
        let mut v = [Verdict::Drop(DropReason::TxRefused); BURST];
        let mut send = |pl: &mut LbPipeline<ManualClock>| {
            let burst = pl.process(PortIndex(0), &mut [VecPacket::new(&vip)], &mut v);
            assert_eq!(burst, BurstVerdict::Uniform(Verdict::Forward(PortIndex(0))));
        };
        send(&mut pl);
        assert_eq!(pl.processor().counters.new_flows, 1);
        assert_eq!(pl.processor().flows().len(), 1);
        // Idle past the UDP timeout: the poll loop reclaims the flow.
        let expiry = pl.snapshot.get().params.udp_timeout_ms;
        clock.0.store(expiry + 1, Ordering::Relaxed);
        let sweep = pl.processor().flows().buckets() / SWEEP_BUCKETS + 1;
        for _ in 0..sweep as u32 * SWEEP_EVERY_POLLS {
            pl.on_poll();
        }
        assert_eq!(pl.processor().flows().len(), 0, "swept");
        // 2^31 ms later the stale entry's expiry would compare as live
        // again (wrapping); it is gone, so the flow is new.
        clock.0.store(
            expiry.wrapping_add(1 << 31).wrapping_add(1000),
            Ordering::Relaxed,
        );
        send(&mut pl);
        assert_eq!(
            pl.processor().counters.new_flows,
            2,
            "a flow past the wrap is new"
        );
    }

    /// A listener with an access list: the sources it lets in take the fast
    /// path, and every packet's rule is counted once, whichever stage
    /// decides it (a packet too big for the fast path, a source turned
    /// away and a burst mixed with another listener's packets included).
    #[test]
    fn access_list_rules_are_counted_once_a_packet() {
        let mix = dnlb_testkit::FlowMix::default();
        let to_81 = |flow: u32, len: usize| {
            let mut f = dnlb_testkit::frame(
                &dnlb_testkit::FlowMix {
                    frame_len: len,
                    ..mix
                },
                flow,
                0,
            );
            f[30..34].copy_from_slice(&[192, 0, 2, 10]);
            f[36..38].copy_from_slice(&81u16.to_be_bytes());
            // The IPv4 checksum again, for the new destination.
            f[24..26].copy_from_slice(&[0, 0]);
            let sum = dnlb_wire::checksum::checksum(&f[14..34]);
            f[24..26].copy_from_slice(&sum.to_be_bytes());
            f
        };
        let (ok, turned_away) = (to_81(0, 60), to_81(1, 60));
        let a = &turned_away[26..30];
        let denied = format!("{}.{}.{}.{}/32", a[0], a[1], a[2], a[3]);
        let acl = format!(
            "[[listener]]\nname = \"a\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 81\n\
             target_group = \"g\"\n[listener.acl]\ndeny = [\"{denied}\"]\n"
        );
        let mut pl = pipeline_of(None, ManualClock::default(), &acl);
        let mut to_80 = dnlb_testkit::frame(&mix, 2, 0);
        to_80[30..34].copy_from_slice(&[192, 0, 2, 10]);
        let big = to_81(3, 1514);
        let burst = [&ok, &to_80, &turned_away, &ok, &big, &to_80, &ok];
        let mut pkts: Vec<VecPacket> = burst.iter().map(|f| VecPacket::new(f)).collect();
        let mut v = [Verdict::Drop(DropReason::TxRefused); BURST];
        pl.process(PortIndex(0), &mut pkts, &mut v);
        let fwd = Verdict::Forward(PortIndex(0));
        assert_eq!(v[0], fwd);
        assert_eq!(v[2], Verdict::Drop(DropReason::AclDenied));
        let snap = pl.snapshot.get().clone();
        let list = snap
            .listeners
            .iter()
            .find_map(|l| l.acl.as_deref())
            .unwrap();
        assert_eq!(list.hits(Some(0)), 1, "the rule that turned a source away");
        assert_eq!(list.hits(None), 4, "the default that let the others in");
        // The same burst again: now every allowed flow is tracked.
        let mut pkts: Vec<VecPacket> = burst.iter().map(|f| VecPacket::new(f)).collect();
        pl.process(PortIndex(0), &mut pkts, &mut v);
        assert_eq!((list.hits(Some(0)), list.hits(None)), (2, 8));
    }

    #[test]
    fn multi_segment_packets_are_dropped_and_counted() {
        let mut pl = pipeline(None);
        let frame = dnlb_testkit::frame(&dnlb_testkit::FlowMix::default(), 0, 0);
        let mut pkts = [Chained(VecPacket::new(&frame))];
        let mut v = [Verdict::Drop(DropReason::TxRefused); BURST];
        assert_eq!(
            pl.process(PortIndex(0), &mut pkts, &mut v),
            BurstVerdict::PerPacket
        );
        assert_eq!(v[0], Verdict::Drop(DropReason::NonContiguous));
    }

    #[test]
    fn vip_traffic_leaves_by_its_port_and_the_rest_by_the_host_route() {
        let mut pl = pipeline(Some(PortIndex(1)));
        let mix = dnlb_testkit::FlowMix::default();
        let mut vip = dnlb_testkit::frame(&mix, 0, 0);
        vip[30..34].copy_from_slice(&[192, 0, 2, 10]); // to the VIP
        let other = dnlb_testkit::arp_request([198, 18, 0, 1].into(), [192, 0, 2, 1].into());
        let mut pkts = [VecPacket::new(&vip), VecPacket::new(&other)];
        let mut v = [Verdict::Drop(DropReason::TxRefused); BURST];
        pl.process(PortIndex(0), &mut pkts, &mut v);
        assert_eq!(
            &v[..2],
            &[
                Verdict::Forward(PortIndex(0)),
                Verdict::Forward(PortIndex(1))
            ]
        );
        // Verdicts of packets before and after one that leaves otherwise
        // (those before are written once it is known).
        let mut mixed = [
            VecPacket::new(&vip),
            VecPacket::new(&vip),
            VecPacket::new(&other),
            VecPacket::new(&vip),
        ];
        assert_eq!(
            pl.process(PortIndex(0), &mut mixed, &mut v),
            BurstVerdict::PerPacket
        );
        let (fwd, host) = (
            Verdict::Forward(PortIndex(0)),
            Verdict::Forward(PortIndex(1)),
        );
        assert_eq!(&v[..4], &[fwd, fwd, host, fwd]);
        // A burst whose every packet leaves by its own port is sent whole.
        let mut both = [VecPacket::new(&vip), VecPacket::new(&vip)];
        assert_eq!(
            pl.process(PortIndex(0), &mut both, &mut v),
            BurstVerdict::Uniform(Verdict::Forward(PortIndex(0)))
        );
        // What the kernel sends on the host port goes out unprocessed.
        let mut from_host = [VecPacket::new(&other)];
        assert_eq!(
            pl.process(PortIndex(1), &mut from_host, &mut v),
            BurstVerdict::Uniform(Verdict::Forward(PortIndex(0)))
        );
    }
}

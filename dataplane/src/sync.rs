//! Flow-exception sync between a worker and the control plane: two bounded
//! queues per worker, and the worker's side of the schedule (take what peers
//! said, walk the flow table for exceptions when a snapshot arrives and every
//! [`REFRESH_MS`], hand over what it found).
//!
//! The queues are lock-free and bounded (`crossbeam_queue::ArrayQueue`);
//! the worker touches them once per poll, never per packet. Nothing blocks:
//! a full outbound queue pauses the walk (it resumes where it stopped), a
//! full inbound queue makes the control plane count the op as dropped.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use dnlb_lb::processor::{Exception, LearnOp, Processor};
use dnlb_lb::snapshot::Snapshot;

/// A worker walks its flow table for exceptions at least this often, so
/// what peers hold is refreshed before it expires there (a flow's entry is
/// shared with its remaining lifetime).
pub const REFRESH_MS: u32 = 10_000;
/// Flow-table buckets walked per poll while a walk runs (64 bytes each,
/// 16 KiB a poll): a 1M-flow table (2^19 buckets) in 2048 polls, within a
/// staged version's second even with idle back-off.
pub const WALK_BUCKETS: usize = 256;
/// Learned-entry ops applied per poll at most.
pub const LEARN_PER_POLL: usize = 256;
/// Learned-table buckets swept at a time, at the flow table's pace (every
/// 64 polls: the default 262144 learned entries, 65536 buckets, are visited
/// whole every 512k polls, a second or two under traffic, minutes idle).
/// Lookups check expiry themselves; the sweep keeps the count of held
/// entries true and the wrap away. (Sweeping every poll streamed the 4 MiB
/// table through the caches and cost 6 % of a loaded worker.)
pub const LEARNED_SWEEP_BUCKETS: usize = 8;

/// The two queues between one worker and the control plane.
#[derive(Debug, Clone)]
pub struct SyncLink {
    /// Exceptions the worker found, for the control plane to share.
    pub found: Arc<ArrayQueue<Exception>>,
    /// What peers said, for the worker's learned table.
    pub learn: Arc<ArrayQueue<LearnOp>>,
}

impl SyncLink {
    /// Queues for `found` exceptions and `learn` ops (made on the control
    /// thread).
    #[allow(clippy::disallowed_methods, reason = "control thread")]
    pub fn new(found: usize, learn: usize) -> Self {
        SyncLink {
            found: Arc::new(ArrayQueue::new(found.max(1))),
            learn: Arc::new(ArrayQueue::new(learn.max(1))),
        }
    }
}

/// The worker's side: where its walk schedule stands.
#[derive(Debug)]
pub struct WorkerSync {
    link: SyncLink,
    /// When the last walk started (ms).
    walk_started: u32,
    /// Whether a walk has ever started.
    started: bool,
}

impl WorkerSync {
    /// The worker's end of `link`.
    pub fn new(link: SyncLink) -> Self {
        WorkerSync {
            link,
            walk_started: 0,
            started: false,
        }
    }

    /// One poll's worth of sync work for `p` (which must have sync enabled;
    /// otherwise nothing): apply learned ops, start a walk when `adopted` a
    /// new snapshot or [`REFRESH_MS`] after the last one started, continue
    /// it, and hand what was found to the control plane; when `sweep` (the
    /// pipeline's sweep is due), sweep the learned table a little.
    pub fn poll(
        &mut self,
        p: &mut Processor,
        snap: &Snapshot,
        now: u32,
        adopted: bool,
        sweep: bool,
    ) {
        let Some(s) = p.sync() else {
            return;
        };
        for _ in 0..LEARN_PER_POLL {
            match self.link.learn.pop() {
                Some(op) => s.learn(op, now),
                None => break,
            }
        }
        if sweep {
            s.sweep(now, LEARNED_SWEEP_BUCKETS);
        }
        let due = !self.started || now.wrapping_sub(self.walk_started) >= REFRESH_MS;
        if adopted || (due && !s.walking()) {
            self.walk_started = now;
            self.started = true;
            p.restart_sync_walk();
        }
        p.sync_walk(snap, now, WALK_BUCKETS);
        if let Some(s) = p.sync() {
            self.hand_over(s);
        }
    }

    /// Moves found exceptions to the outbound queue while it has room; the
    /// rest stay pending (the walk pauses when the pending list is full).
    fn hand_over(&mut self, s: &mut dnlb_lb::processor::SyncState) {
        let room = self.link.found.capacity() - self.link.found.len();
        for e in s.drain_first(room) {
            // Cannot fail: only this worker pushes, and there was room.
            let _ = self.link.found.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use dnlb_lb::snapshot::BackendRegistry;
    use dnlb_lb::verdict::DropReason;
    use dnlb_testkit::{FlowMix, VecPacket};
    use dnlb_wire::buf::PacketBuf;

    use super::*;
    use crate::io::{PortIndex, BURST};
    use crate::lb_pipeline::{LbPipeline, PortPlan};
    use crate::pipeline::{Pipeline, Verdict};
    use crate::snapshot::Publisher;
    use crate::testing::ManualClock;

    const FLOWS: u32 = 500;

    fn snapshot(reg: &mut BackendRegistry, backends: u8) -> Snapshot {
        let mut text = String::from(
            "[gateway]\nname = \"t\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
             [encap]\nsource_v4 = \"192.0.2.1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
             [[listener]]\nname = \"l\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"g\"\n\
             [[target_group]]\nname = \"g\"\n",
        );
        for i in 1..=backends {
            text += &format!(
                "[[target_group.backend]]\naddress = \"192.0.2.{}\"\ntunnel = \"ipip\"\n",
                20 + i
            );
        }
        let cfg = dnlb_config::parse(std::path::Path::new("t.toml"), &text).unwrap();
        Snapshot::build(&cfg, u64::from(backends), reg).unwrap()
    }

    /// UDP flow `i` to the VIP.
    fn frame(i: u32) -> Vec<u8> {
        let mut f = dnlb_testkit::frame(&FlowMix::default(), i, 0);
        f[30..34].copy_from_slice(&[192, 0, 2, 10]);
        f
    }

    fn pipeline(
        publisher: &Publisher,
        clock: ManualClock,
        seed: u64,
    ) -> (LbPipeline<ManualClock>, SyncLink) {
        let plan = PortPlan {
            macs: vec![[2, 0, 0, 0, 0, 1]],
            non_vip: vec![None],
            host_port: None,
        };
        let link = SyncLink::new(1024, 1024);
        let p = Processor::new(1 << 12, seed).with_sync(1 << 12, 256);
        let pl = LbPipeline::new(p, publisher.reader(), plan, clock).with_sync(link.clone());
        (pl, link)
    }

    /// The backend flow `i` went to through `pl`.
    fn send(pl: &mut LbPipeline<ManualClock>, i: u32) -> u32 {
        let mut v = [Verdict::Drop(DropReason::TxRefused); BURST];
        let mut pkt = [VecPacket::new(&frame(i))];
        pl.process(PortIndex(0), &mut pkt, &mut v);
        let out = pkt[0].data();
        // IPIP: the outer destination is the backend.
        u32::from(out[33])
    }

    #[test]
    fn a_staged_table_makes_the_worker_hand_over_the_flows_it_moves_and_peers_keep_them() {
        let mut reg = BackendRegistry::default();
        let old = Arc::new(snapshot(&mut reg, 3));
        let new = Arc::new(snapshot(&mut reg, 4));
        let clock = ManualClock::default();
        let publisher = Publisher::new(old.clone());
        let (mut a, a_link) = pipeline(&publisher, clock.clone(), 1);
        a.on_start();
        let began: Vec<u32> = (0..FLOWS).map(|i| send(&mut a, i)).collect();
        // The first walk (at start) finds nothing: every flow is where the
        // table says.
        for _ in 0..10_000 {
            a.on_poll();
        }
        assert!(a_link.found.is_empty());
        // Stage the new version: the worker walks and hands over the moved
        // flows, although no packet arrives.
        publisher.publish(Arc::new(old.staging(&new)));
        for _ in 0..10_000 {
            a.on_poll();
            publisher.reclaim();
        }
        let mut found = Vec::new();
        while let Some(e) = a_link.found.pop() {
            found.push(e);
        }
        // Which flows does the new table move? Ask a gateway on it alone.
        let other = Publisher::new(new.clone());
        let (mut b, b_link) = pipeline(&other, clock.clone(), 2);
        b.on_start();
        let (mut probe, _) = pipeline(&Publisher::new(new.clone()), clock.clone(), 3);
        let moved = (0..FLOWS)
            .filter(|&i| send(&mut probe, i) != began[i as usize])
            .count();
        assert!(moved > 0);
        assert_eq!(found.len(), moved);
        // B learns them through its queue, then keeps every flow where it
        // began.
        for e in &found {
            b_link
                .learn
                .push(LearnOp::Add {
                    listener_slot: e.listener_slot,
                    hash: e.hash,
                    backend: e.backend,
                    remaining_ms: e.remaining_ms,
                    closing: e.closing,
                })
                .unwrap();
        }
        clock.0.store(5, Ordering::Relaxed);
        b.on_poll();
        assert!(b_link.learn.is_empty());
        for i in 0..FLOWS {
            assert_eq!(send(&mut b, i), began[i as usize], "flow {i}");
        }
        assert_eq!(
            b.processor().sync().unwrap().counters.learned_used,
            moved as u64
        );
    }

    #[test]
    fn a_full_outbound_queue_pauses_the_walk_and_it_resumes() {
        let mut reg = BackendRegistry::default();
        let old = Arc::new(snapshot(&mut reg, 3));
        let new = Arc::new(snapshot(&mut reg, 4));
        let clock = ManualClock::default();
        let publisher = Publisher::new(old.clone());
        let plan = PortPlan {
            macs: vec![[2, 0, 0, 0, 0, 1]],
            non_vip: vec![None],
            host_port: None,
        };
        let link = SyncLink::new(5, 8);
        let p = Processor::new(1 << 12, 1).with_sync(16, 3);
        let mut a =
            LbPipeline::new(p, publisher.reader(), plan, clock.clone()).with_sync(link.clone());
        a.on_start();
        for i in 0..FLOWS {
            send(&mut a, i);
        }
        publisher.publish(Arc::new(old.staging(&new)));
        let mut got = std::collections::HashSet::new();
        for _ in 0..100_000 {
            a.on_poll();
            publisher.reclaim();
            // The control plane takes one now and then.
            if let Some(e) = link.found.pop() {
                got.insert(e.hash);
            }
        }
        let (mut probe, _) = pipeline(&Publisher::new(new.clone()), clock.clone(), 3);
        let (mut before, _) = pipeline(&Publisher::new(old.clone()), clock, 4);
        let moved = (0..FLOWS)
            .filter(|&i| send(&mut probe, i) != send(&mut before, i))
            .count();
        assert_eq!(
            got.len(),
            moved,
            "every moved flow was handed over once the queue had room"
        );
        assert_eq!(a.processor().sync().unwrap().counters.exceptions_dropped, 0);
    }
}

//! The poll-mode worker loop: burst RX on every port, process, burst TX,
//! free and count what TX refused, back off when idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dnlb_model::IdlePolicy;

use crate::counters::{Counters, DropReason, PublishedCounters};
use crate::io::{Burst, PacketIo, PortIndex, BURST};
use crate::pipeline::{BurstVerdict, Pipeline, Verdict};

/// One worker: its queues, its pipeline, its counters.
pub struct Worker<IO: PacketIo, PL: Pipeline> {
    io: IO,
    pipeline: PL,
    rx: IO::Burst,
    tx: Vec<IO::Burst>,
    /// The burst's dropped packets, freed together (one bulk free).
    dropped: IO::Burst,
    verdicts: [Verdict; BURST],
    counters: Counters,
    published: Arc<PublishedCounters>,
    idle: IdlePolicy,
    empty_run: u32,
}

impl<IO: PacketIo, PL: Pipeline> std::fmt::Debug for Worker<IO, PL> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("counters", &self.counters)
            .finish()
    }
}

impl<IO: PacketIo, PL: Pipeline> Worker<IO, PL> {
    /// A worker over `io`, publishing counters to `published`.
    pub fn new(io: IO, pipeline: PL, idle: IdlePolicy, published: Arc<PublishedCounters>) -> Self {
        let ports = io.port_count();
        Worker {
            io,
            pipeline,
            rx: IO::Burst::default(),
            tx: (0..ports).map(|_| IO::Burst::default()).collect(),
            dropped: IO::Burst::default(),
            verdicts: [Verdict::Drop(DropReason::TxRefused); BURST],
            counters: Counters::default(),
            published,
            idle,
            empty_run: 0,
        }
    }

    /// The worker's counters (as of the last poll).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The pipeline (its counters and state).
    pub fn pipeline_mut(&mut self) -> &mut PL {
        &mut self.pipeline
    }

    /// The I/O, for tests that inspect in-memory queues.
    pub fn io_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// Polls every port once; returns the number of packets received.
    #[inline]
    pub fn poll_once(&mut self) -> usize {
        let mut received = 0;
        for p in 0..self.tx.len() {
            let port = PortIndex(p as u16);
            let n = self.io.rx(port, &mut self.rx);
            if n == 0 {
                continue;
            }
            received += n;
            self.counters.rx_packets += n as u64;
            self.handle_rx_burst(port);
        }
        for p in 0..self.tx.len() {
            if !self.tx[p].is_empty() {
                self.flush(PortIndex(p as u16));
            }
        }
        received
    }

    #[inline]
    fn handle_rx_burst(&mut self, port: PortIndex) {
        match self
            .pipeline
            .process(port, self.rx.as_mut_slice(), &mut self.verdicts)
        {
            BurstVerdict::Uniform(Verdict::Forward(out)) if self.tx[out.get()].is_empty() => {
                // Fast path: the whole burst leaves by one port with nothing
                // pending there: send straight from the RX burst.
                flush_burst(&mut self.io, out, &mut self.rx, &mut self.counters);
            }
            BurstVerdict::Uniform(Verdict::Drop(reason)) => {
                // The whole burst is dropped: one bulk free.
                let n = self.rx.free_all();
                self.counters.drops[reason as usize] += n as u64;
            }
            BurstVerdict::Uniform(v) => {
                let n = self.rx.len();
                self.verdicts[..n].fill(v);
                self.dispatch();
            }
            BurstVerdict::PerPacket => self.dispatch(),
        }
    }

    /// Moves each packet of the RX burst to its TX burst or to the dropped
    /// burst, then frees the dropped ones together.
    #[inline]
    fn dispatch(&mut self) {
        let Worker {
            io,
            rx,
            tx,
            dropped,
            verdicts,
            counters,
            ..
        } = self;
        for (i, pkt) in rx.drain().enumerate() {
            let refused = match verdicts[i] {
                Verdict::Forward(out) => {
                    let burst = &mut tx[out.get()];
                    if burst.is_full() {
                        flush_burst(io, out, burst, counters);
                    }
                    // Refused only if the flush left the burst full, which
                    // it never does; never lose count of a packet anyway.
                    burst.push(pkt).err().map(|p| (p, DropReason::TxRefused))
                }
                Verdict::Drop(reason) => Some((pkt, reason)),
            };
            if let Some((pkt, reason)) = refused {
                counters.drops[reason as usize] += 1;
                // At most one RX burst of packets: `dropped` has room.
                if let Err(pkt) = dropped.push(pkt) {
                    drop(pkt);
                }
            }
        }
        dropped.free_all();
    }

    /// Sends port `p`'s pending TX burst; frees and counts what is refused.
    #[inline]
    fn flush(&mut self, port: PortIndex) {
        flush_burst(
            &mut self.io,
            port,
            &mut self.tx[port.get()],
            &mut self.counters,
        );
    }

    /// Publishes counters for the control thread (plain stores).
    #[inline]
    pub fn publish(&self) {
        self.published.publish(&self.counters);
    }

    /// Runs until `stop` is set; publishes counters once per iteration.
    /// An iteration that received packets adds its time-stamp counter
    /// cycles to `busy_cycles` (one counter read per iteration, which is
    /// also the pipeline's time for the next: [`Pipeline::on_iteration`]).
    pub fn run(&mut self, stop: &AtomicBool) {
        self.pipeline.on_start();
        let mut last = dpdk_bindings::rdtsc();
        while !stop.load(Ordering::Relaxed) {
            self.pipeline.on_iteration(last);
            let n = self.poll_once();
            self.pipeline.on_poll();
            let t = dpdk_bindings::rdtsc();
            if n > 0 {
                self.counters.busy_cycles += t.wrapping_sub(last);
            }
            last = t;
            self.publish();
            if n == 0 {
                self.counters.empty_polls += 1;
                if let IdlePolicy::Sleep { polls, sleep } = self.idle {
                    self.empty_run += 1;
                    if self.empty_run >= polls {
                        self.empty_run = 0;
                        self.counters.idle_sleeps += 1;
                        #[allow(clippy::disallowed_methods, reason = "the idle back-off")]
                        std::thread::sleep(sleep);
                        last = dpdk_bindings::rdtsc();
                    }
                }
            } else {
                self.empty_run = 0;
            }
        }
        self.publish();
        self.pipeline.on_stop();
    }
}

/// Sends `burst` on `port`; frees and counts what the queue refused.
#[inline]
fn flush_burst<IO: PacketIo>(
    io: &mut IO,
    port: PortIndex,
    burst: &mut IO::Burst,
    counters: &mut Counters,
) {
    let sent = io.tx(port, burst);
    counters.tx_packets += sent as u64;
    if !burst.is_empty() {
        let refused = burst.free_all();
        counters.drops[DropReason::TxRefused as usize] += refused as u64;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dnlb_wire::buf::PacketBuf;

    use super::*;
    use crate::testing::MemIo;
    use crate::ForwardPipeline;

    const P0: PortIndex = PortIndex(0);
    const P1: PortIndex = PortIndex(1);

    fn worker<PL: Pipeline>(ports: usize, pl: PL) -> Worker<MemIo, PL> {
        Worker::new(MemIo::new(ports), pl, IdlePolicy::BusyPoll, Arc::default())
    }

    fn frame(i: u32) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..4].copy_from_slice(&i.to_be_bytes());
        f
    }

    #[test]
    fn forwards_between_ports_in_order() {
        let mut w = worker(2, ForwardPipeline::new(vec![Some(P1), Some(P0)]));
        for i in 0..100 {
            w.io_mut().inject(P0, &frame(i));
        }
        w.io_mut().inject(P1, &frame(1000));
        let mut polls = 0;
        while w.poll_once() > 0 {
            polls += 1;
        }
        assert_eq!(polls, 4); // 32 + 32 + 32 + (4 + 1)
        let out1 = w.io_mut().take_tx(P1);
        assert_eq!(out1, (0..100).map(frame).collect::<Vec<_>>());
        assert_eq!(w.io_mut().take_tx(P0), vec![frame(1000)]);
        let c = w.counters();
        assert_eq!((c.rx_packets, c.tx_packets, c.dropped()), (101, 101, 0));
    }

    /// Odd first bytes are dropped with `NonContiguous` (an arbitrary reason
    /// for the test), even ones go to port 1 or 0 by their second byte.
    struct Split;
    impl Pipeline for Split {
        fn process<P: PacketBuf>(
            &mut self,
            _port: PortIndex,
            pkts: &mut [P],
            v: &mut [Verdict; BURST],
        ) -> BurstVerdict {
            for (i, p) in pkts.iter_mut().enumerate() {
                let d = p.data();
                v[i] = if d[3] % 2 == 1 {
                    Verdict::Drop(DropReason::NonContiguous)
                } else if d[3] % 4 == 0 {
                    Verdict::Forward(P0)
                } else {
                    Verdict::Forward(P1)
                };
                // Rewrite: prepend a 4-byte tag, like an encapsulation would.
                p.prepend(4).unwrap().copy_from_slice(b"TAG!");
            }
            BurstVerdict::PerPacket
        }
    }

    #[test]
    fn per_packet_verdicts_and_exactly_one_counter_per_drop() {
        let mut w = worker(2, Split);
        for i in 0..200 {
            w.io_mut().inject(P0, &frame(i));
        }
        w.io_mut().set_tx_capacity(P1, 10);
        for _ in 0..20 {
            w.poll_once();
        }
        let to0 = w.io_mut().take_tx(P0);
        let to1 = w.io_mut().take_tx(P1);
        assert_eq!(to0.len(), 50);
        assert_eq!(to1.len(), 10);
        assert!(to0
            .iter()
            .all(|f| &f[..4] == b"TAG!" && f.len() == 64 && f[7] % 4 == 0));
        let c = *w.counters();
        assert_eq!(c.rx_packets, 200);
        assert_eq!(c.tx_packets, 60);
        assert_eq!(c.drops_for(DropReason::NonContiguous), 100);
        assert_eq!(c.drops_for(DropReason::TxRefused), 40);
        // Conservation: every received packet is sent or counted once.
        assert_eq!(c.rx_packets, c.tx_packets + c.dropped());
    }

    #[test]
    fn full_tx_burst_is_flushed_mid_burst() {
        // 32 packets alternating between ports, then 64 to one port: the
        // slow path must flush a full TX burst before pushing more.
        struct ByByte;
        impl Pipeline for ByByte {
            fn process<P: PacketBuf>(
                &mut self,
                _: PortIndex,
                pkts: &mut [P],
                v: &mut [Verdict; BURST],
            ) -> BurstVerdict {
                for (i, p) in pkts.iter().enumerate() {
                    v[i] = Verdict::Forward(PortIndex((p.data()[3] & 1) as u16));
                }
                BurstVerdict::PerPacket
            }
        }
        let mut w = worker(2, ByByte);
        for i in 0..320 {
            w.io_mut().inject(P0, &frame(i));
        }
        while w.poll_once() > 0 {}
        assert_eq!(w.io_mut().take_tx(P0).len(), 160);
        assert_eq!(w.io_mut().take_tx(P1).len(), 160);
        assert_eq!(w.counters().tx_packets, 320);
    }

    /// Runs a sleeping worker with `packets` frames waiting until it has
    /// slept five times; its published counters and its own.
    fn run_until_slept(packets: u32) -> (Counters, Counters) {
        let published = Arc::new(PublishedCounters::default());
        let mut w = Worker::new(
            MemIo::new(1),
            ForwardPipeline::new(vec![Some(P0)]),
            IdlePolicy::Sleep {
                polls: 3,
                sleep: Duration::from_millis(1),
            },
            published.clone(),
        );
        for i in 0..packets {
            w.io_mut().inject(P0, &frame(i));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            w.run(&s2);
            w
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while published.read().idle_sleeps < 5 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, Ordering::Relaxed);
        let w = t.join().unwrap();
        (published.read(), *w.counters())
    }

    #[test]
    fn run_stops_on_flag_and_backs_off_when_idle() {
        let (c, own) = run_until_slept(1);
        assert_eq!(c, own);
        assert_eq!(c.rx_packets, 1);
        assert!(c.idle_sleeps >= 5, "{c:?}");
        // three empty polls per sleep
        assert!(c.empty_polls >= 3 * c.idle_sleeps, "{c:?}");
        assert!(
            c.busy_cycles > 0,
            "the poll that received is busy time: {c:?}"
        );
    }

    #[test]
    fn idle_polls_and_sleeps_are_not_busy_time() {
        let (c, _) = run_until_slept(0);
        assert!(c.idle_sleeps >= 5, "{c:?}");
        assert_eq!(c.busy_cycles, 0, "{c:?}");
    }
}

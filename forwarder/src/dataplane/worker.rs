//! The poll-mode worker loop: burst RX on every port, process, burst TX,
//! free and count what TX refused, back off when idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::counters::{Counters, DropReason, PublishedCounters};
use super::io::{Burst, PacketIo, PortIndex, BURST};
use super::pipeline::{BurstVerdict, Pipeline, Verdict};

/// What a worker does after polls come back empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Keep polling (a whole core).
    BusyPoll,
    /// Sleep `sleep` after `polls` consecutive empty polls.
    Sleep {
        /// Empty polls before sleeping.
        polls: u32,
        /// Sleep duration.
        sleep: Duration,
    },
}

impl From<dnlb_config::IdlePolicy> for Idle {
    fn from(p: dnlb_config::IdlePolicy) -> Self {
        match p {
            dnlb_config::IdlePolicy::BusyPoll => Idle::BusyPoll,
            dnlb_config::IdlePolicy::Sleep { polls, sleep } => Idle::Sleep { polls, sleep },
        }
    }
}

/// One worker: its queues, its pipeline, its counters.
pub struct Worker<IO: PacketIo, PL: Pipeline> {
    io: IO,
    pipeline: PL,
    rx: IO::Burst,
    tx: Vec<IO::Burst>,
    verdicts: [Verdict; BURST],
    counters: Counters,
    published: Arc<PublishedCounters>,
    idle: Idle,
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
    pub fn new(io: IO, pipeline: PL, idle: Idle, published: Arc<PublishedCounters>) -> Self {
        let ports = io.port_count();
        Worker {
            io,
            pipeline,
            rx: IO::Burst::default(),
            tx: (0..ports).map(|_| IO::Burst::default()).collect(),
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
            BurstVerdict::Uniform(v) => {
                let n = self.rx.len();
                self.verdicts[..n].fill(v);
                self.dispatch();
            }
            BurstVerdict::PerPacket => self.dispatch(),
        }
    }

    /// Moves each packet of the RX burst to its TX burst or drops it.
    #[inline]
    fn dispatch(&mut self) {
        let Worker {
            io,
            rx,
            tx,
            verdicts,
            counters,
            ..
        } = self;
        for (i, pkt) in rx.drain().enumerate() {
            match verdicts[i] {
                Verdict::Forward(out) => {
                    let burst = &mut tx[out.get()];
                    if burst.is_full() {
                        flush_burst(io, out, burst, counters);
                    }
                    if let Err(pkt) = burst.push(pkt) {
                        // Unreachable after a flush (it empties the burst),
                        // but never lose count of a packet.
                        drop(pkt);
                        counters.drops[DropReason::TxRefused as usize] += 1;
                    }
                }
                Verdict::Drop(reason) => {
                    counters.drops[reason as usize] += 1;
                    drop(pkt);
                }
            }
        }
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
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let n = self.poll_once();
            self.publish();
            if n == 0 {
                self.counters.empty_polls += 1;
                if let Idle::Sleep { polls, sleep } = self.idle {
                    self.empty_run += 1;
                    if self.empty_run >= polls {
                        self.empty_run = 0;
                        self.counters.idle_sleeps += 1;
                        std::thread::sleep(sleep);
                    }
                }
            } else {
                self.empty_run = 0;
            }
        }
        self.publish();
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

//! The generator's loop on one port and one lcore (the calling thread, the
//! EAL main lcore): allocate a burst of mbufs in bulk, write frames into
//! them, send; poll the same port and count what comes back, with latency
//! from returned stamps; report every interval; stop after a duration, a
//! packet count or a signal, then keep receiving for a drain period.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk_bindings::{
    port_by_name, port_count, port_info, rdtsc, Eal, MbufBurst, Mempool, MempoolConfig, Port,
    PortConfig, PortId, QueueId, RxQueue, TxQueue, BURST_SIZE,
};

use crate::gen::{FlowSpec, Generator};
use crate::latency::LatencyRecorder;
use crate::pace::Pacer;
use crate::report::{emit, Counters, DriverCounters, Line, Second, Start, Summary};
use crate::stamp::Stamp;

/// How the run uses the port and when it stops.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Device name; `None`: the only probed port.
    pub port: Option<String>,
    /// Target packets per second; 0: as fast as possible.
    pub rate_pps: u64,
    /// Stop sending after this long (from link up).
    pub duration: Option<Duration>,
    /// Stop sending after this many packets.
    pub count: Option<u64>,
    /// Packets per TX burst, 1..=32.
    pub burst: usize,
    /// Mbufs in the pool.
    pub pool_mbufs: u32,
    /// RX descriptors.
    pub rx_descriptors: u16,
    /// TX descriptors.
    pub tx_descriptors: u16,
    /// How long to wait for the link (a memif peer) to come up.
    pub link_wait: Duration,
    /// How long to keep receiving after sending stopped.
    pub drain: Duration,
    /// Report interval.
    pub interval: Duration,
    /// After the summary, how long to wait (without polling) for the peer to
    /// close the link before closing the port; 0: close at once.
    pub linger: Duration,
}

/// Errors before or around the loop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A DPDK call failed.
    #[error(transparent)]
    Dpdk(#[from] dpdk_bindings::Error),
    /// No port, or several and none named.
    #[error("{0}")]
    Port(String),
    /// The link did not come up in time.
    #[error("port {0}: link still down after {1:?} (is the peer running?)")]
    LinkDown(String, Duration),
    /// Writing a report failed.
    #[error("writing a report: {0}")]
    Output(#[from] std::io::Error),
}

/// An open port with its one RX and TX queue and the pool behind them.
#[derive(Debug)]
pub struct Session {
    pool: Arc<Mempool>,
    port: Port,
    rx: RxQueue,
    tx: TxQueue,
    driver: String,
    hz: u64,
}

impl Session {
    /// Creates the pool, starts the port with one queue pair.
    pub fn open(eal: &Eal, cfg: &RunConfig) -> Result<Session, RunError> {
        let id = match &cfg.port {
            Some(name) => port_by_name(eal, name)?,
            None => match port_count(eal) {
                1 => PortId(0),
                0 => return Err(RunError::Port("no port: give one with --vdev".into())),
                n => {
                    return Err(RunError::Port(format!(
                        "{n} ports probed: name one with --port"
                    )))
                }
            },
        };
        let info = port_info(eal, id)?;
        let pool = Arc::new(Mempool::new(
            eal,
            &MempoolConfig::new("pktgen_pool", cfg.pool_mbufs),
        )?);
        let pc = PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: cfg.rx_descriptors,
            tx_descriptors: cfg.tx_descriptors,
            rss: false,
            promiscuous: true,
            mtu: None,
        };
        let port = Port::start(eal, id, &pc, pool.clone())?;
        let rx = port.rx_queue(QueueId(0))?;
        let tx = port.tx_queue(QueueId(0))?;
        Ok(Session {
            pool,
            port,
            rx,
            tx,
            driver: info.driver,
            hz: eal.tsc_hz(),
        })
    }

    /// The port's MAC.
    pub fn mac(&self) -> Result<[u8; 6], RunError> {
        Ok(self.port.mac()?)
    }

    /// The port's device name.
    pub fn name(&self) -> &str {
        self.port.name()
    }

    /// The port's driver.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// TSC ticks per second.
    pub fn tsc_hz(&self) -> u64 {
        self.hz
    }

    /// Waits for the link to come up (memif: the peer connected).
    pub fn wait_link(&self, within: Duration) -> Result<(), RunError> {
        let deadline = Instant::now() + within;
        loop {
            if self.port.link()?.up {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RunError::LinkDown(self.name().to_string(), within));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits, without polling the queues, until the link is down (the peer
    /// closed it) or `within` passed; whether it went down.
    ///
    /// A memif peer unmaps the shared rings when the other side disconnects,
    /// from its control thread, while its worker may be in the middle of a
    /// burst on them (DPDK 22.11 does not synchronise the two): whoever
    /// disconnects first should do so while the other side no longer polls.
    /// The generator stops polling, lets the peer stop and close, then closes.
    pub fn linger(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if !self.port.link().map(|l| l.up).unwrap_or(false) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Checks that the pool's mbufs hold frames of `len` bytes.
    pub fn check_room(&self, len: usize) -> Result<(), RunError> {
        let room = self.pool.alloc().map(|m| m.tailroom()).unwrap_or(0);
        if room < len {
            return Err(RunError::Port(format!(
                "mbufs hold {room} bytes, frames need {len}"
            )));
        }
        Ok(())
    }

    fn driver_counters(&self) -> DriverCounters {
        let s = self.port.stats().unwrap_or_default();
        DriverCounters {
            rx_packets: s.rx_packets,
            tx_packets: s.tx_packets,
            rx_missed: s.rx_missed,
            rx_errors: s.rx_errors,
            tx_errors: s.tx_errors,
            rx_no_mbuf: s.rx_no_mbuf,
        }
    }
}

/// Why sending stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Sending,
    Draining(&'static str),
}

/// The loop's state.
struct Loop<'a> {
    s: &'a mut Session,
    gen: &'a mut Generator,
    rec: Option<LatencyRecorder>,
    pacer: Pacer,
    c: Counters,
    txb: MbufBurst,
    rxb: MbufBurst,
    pending_bytes: u64,
    burst: usize,
    count: u64,
}

impl Loop<'_> {
    /// Tops the TX burst up with as many new frames as are due, and sends.
    #[inline(always)]
    fn tx_step(&mut self, now: u64) {
        let left = self
            .count
            .saturating_sub(self.c.tx_packets)
            .min(self.burst as u64) as usize;
        let due = self.pacer.due(now, left);
        let have = self.txb.len();
        let n = due.saturating_sub(have);
        if n > 0 {
            if self.s.pool.alloc_bulk(&mut self.txb, n) {
                for m in &mut self.txb.as_mut_slice()[have..] {
                    let p = self.gen.next(now);
                    // The room was checked before the loop (check_room).
                    if let Some(buf) = m.append(p.len() as u16) {
                        p.write(buf);
                        self.pending_bytes += p.len() as u64;
                    }
                }
            } else {
                self.c.alloc_failures += 1;
            }
        }
        let offered = self.txb.len();
        if offered == 0 {
            return;
        }
        let sent = self.s.tx.tx_burst(&mut self.txb);
        self.pacer.sent(sent);
        self.c.tx_packets += sent as u64;
        if sent == offered {
            self.c.tx_bytes += self.pending_bytes;
            self.pending_bytes = 0;
        } else {
            self.c.tx_partial_bursts += 1;
            let left: u64 = self.txb.as_slice().iter().map(|m| m.len() as u64).sum();
            self.c.tx_bytes += self.pending_bytes - left;
            self.pending_bytes = left;
        }
    }

    /// Receives one burst, counts it, reads stamps, frees it.
    #[inline(always)]
    fn rx_step(&mut self) {
        let k = self.s.rx.rx_burst(&mut self.rxb);
        if k == 0 {
            return;
        }
        self.c.rx_packets += k as u64;
        match &mut self.rec {
            Some(rec) => {
                let now = rdtsc();
                let sent = self.gen.stamps();
                for m in self.rxb.as_slice() {
                    self.c.rx_bytes += u64::from(m.pkt_len());
                    if let Some(st) = Stamp::read(m.data()) {
                        rec.record(st, now, sent);
                    }
                }
            }
            None => {
                for m in self.rxb.as_slice() {
                    self.c.rx_bytes += u64::from(m.pkt_len());
                }
            }
        }
        self.rxb.free_all();
    }
}

/// Runs the generator on an open session until it stops; prints the start
/// line, a line per interval and the summary (also returned).
pub fn run(
    s: &mut Session,
    gen: &mut Generator,
    spec: &FlowSpec,
    cfg: &RunConfig,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<Summary, RunError> {
    let hz = s.hz;
    s.check_room(spec.stamped_len())?;
    s.wait_link(cfg.link_wait)?;
    emit(out, &Line::Start(start_line(s, spec, cfg)?))?;
    let ticks = |d: Duration| (d.as_secs_f64() * hz as f64) as u64;
    // net_null's RX hands out recycled mbufs of the pool, which still hold
    // frames (and stamps) sent moments ago: "latency" there would be the
    // time through the mempool. Frames are still stamped (same TX work).
    let record = spec.stamp_every > 0 && s.driver() != "net_null";
    if spec.stamp_every > 0 && !record {
        eprintln!("dnlb-pktgen: net_null returns no frames of its own: latency not measured");
    }
    let start = rdtsc();
    let mut lp = Loop {
        pacer: Pacer::new(cfg.rate_pps, hz, start),
        rec: record.then(|| LatencyRecorder::new(spec.max_stamps)),
        s,
        gen,
        c: Counters::default(),
        txb: MbufBurst::new(),
        rxb: MbufBurst::new(),
        pending_bytes: 0,
        burst: cfg.burst.clamp(1, BURST_SIZE),
        count: cfg.count.unwrap_or(u64::MAX),
    };
    let tx_end = cfg
        .duration
        .map_or(u64::MAX, |d| start.saturating_add(ticks(d)));
    let interval = ticks(cfg.interval).max(1);
    let (mut next_report, mut last_report, mut last) =
        (start + interval, start, Counters::default());
    let mut phase = Phase::Sending;
    let (mut tx_stopped, mut drain_end) = (u64::MAX, u64::MAX);
    loop {
        let now = rdtsc();
        if now >= next_report {
            let line = second_line(&lp.c, &last, now - last_report, now - start, hz);
            emit(out, &Line::Second(line))?;
            (last, last_report) = (lp.c, now);
            next_report = now + interval;
        }
        if phase == Phase::Sending {
            let why = if now >= tx_end {
                Some("duration")
            } else if lp.c.tx_packets >= lp.count {
                Some("count")
            } else if stop.load(Ordering::Relaxed) {
                Some("signal")
            } else {
                None
            };
            if let Some(why) = why {
                phase = Phase::Draining(why);
                tx_stopped = now;
                drain_end = now.saturating_add(ticks(cfg.drain));
                lp.c.tx_unsent = lp.txb.free_all() as u64;
            } else {
                lp.tx_step(now);
            }
        } else if now >= drain_end {
            break;
        }
        lp.rx_step();
    }
    let Phase::Draining(stopped_by) = phase else {
        unreachable!("the loop ends only while draining")
    };
    let elapsed_s = (tx_stopped - start) as f64 / hz as f64;
    let c = lp.c;
    let per_s = |n: u64| {
        if elapsed_s > 0.0 {
            n as f64 / elapsed_s
        } else {
            0.0
        }
    };
    let summary = Summary {
        stopped_by,
        elapsed_s,
        drain_s: cfg.drain.as_secs_f64(),
        counters: c,
        tx_pps: per_s(c.tx_packets),
        rx_pps: per_s(c.rx_packets),
        new_flow_packets: lp.gen.new_flow_packets(),
        new_flow_wraps: lp.gen.new_flow_wraps(),
        latency: lp.rec.as_mut().map(|r| r.summary(lp.gen.stamps(), hz)),
        driver: lp.s.driver_counters(),
    };
    emit(out, &Line::Summary(summary.clone()))?;
    if !cfg.linger.is_zero() && !lp.s.linger(cfg.linger) {
        eprintln!(
            "dnlb-pktgen: the peer kept the link up for {:?} after the summary; closing",
            cfg.linger
        );
    }
    Ok(summary)
}

fn start_line(s: &Session, spec: &FlowSpec, cfg: &RunConfig) -> Result<Start, RunError> {
    use crate::report::mac_string;
    Ok(Start {
        port: s.name().to_string(),
        driver: s.driver().to_string(),
        src_mac: mac_string(spec.src_mac),
        dst_mac: mac_string(spec.dst_mac),
        proto: match spec.proto {
            crate::frame::Proto::Udp => "udp",
            crate::frame::Proto::Tcp => "tcp",
        },
        ip: if spec.is_v6() { 6 } else { 4 },
        flows: spec.flows(),
        new_flow_tuples: spec.new_flow_tuples(),
        new_flow_fraction: spec.new_flow_fraction,
        frame_len: spec.frame_len,
        stamped_len: spec.stamped_len(),
        stamp_every: spec.stamp_every,
        rate_pps: cfg.rate_pps,
        tsc_hz: s.tsc_hz(),
    })
}

fn second_line(now: &Counters, last: &Counters, ticks: u64, since_start: u64, hz: u64) -> Second {
    let secs = ticks as f64 / hz as f64;
    let rate = |a: u64, b: u64| (a - b) as f64 / secs;
    Second {
        t: since_start as f64 / hz as f64,
        tx_pps: rate(now.tx_packets, last.tx_packets),
        rx_pps: rate(now.rx_packets, last.rx_packets),
        tx_bps: rate(now.tx_bytes, last.tx_bytes) * 8.0,
        rx_bps: rate(now.rx_bytes, last.rx_bytes) * 8.0,
        tx_packets: now.tx_packets,
        rx_packets: now.rx_packets,
    }
}

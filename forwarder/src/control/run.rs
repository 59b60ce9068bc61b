//! Bringing the data plane up from a validated config, supervising it, and
//! taking it down: EAL, mempool, ports, one worker per lcore, counters.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::hash::{BuildHasher, Hasher};
use std::sync::mpsc;

use dnlb_config::{Config, PortSpec};
use dnlb_lb::processor::{LbCounters, Processor};
use dnlb_lb::snapshot::{BackendRegistry, Snapshot, SnapshotError};
use dpdk_bindings::{
    port_by_name, Eal, Launched, LcoreId, Mempool, MempoolConfig, Port, PortConfig, PortStats,
    QueueId,
};

use crate::control::api::{self, ApiServer};
use crate::control::plane::ControlPlane;
use crate::control::status::PortStatus;
use crate::dataplane::dpdk::DpdkIo;
use crate::dataplane::snapshot::Publisher;
use crate::dataplane::{
    Counters, DropReason, ForwardPipeline, Idle, LbPipeline, LbStatsBoard, MonotonicClock,
    Pipeline, PortIndex, PortPlan, PublishedCounters, Worker,
};

/// Why the forwarder could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A DPDK call failed.
    #[error(transparent)]
    Dpdk(#[from] dpdk_bindings::Error),
    /// A configured worker lcore is not enabled in the EAL.
    #[error("worker lcore {0} is not enabled by the EAL arguments (check -l/--lcores in dataplane.eal_args)")]
    LcoreNotEnabled(u32),
    /// The configured main lcore is not EAL's main lcore.
    #[error("EAL's main lcore is {actual}, but dataplane.main_lcore is {configured}")]
    MainLcoreMismatch {
        /// From the config.
        configured: u32,
        /// From EAL.
        actual: u32,
    },
    /// The load-balancing state could not be built from the config.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The admin API could not start.
    #[error("{0}")]
    Admin(std::io::Error),
    /// A worker returned an error code.
    #[error("worker on lcore {lcore} exited with code {code}")]
    WorkerFailed {
        /// The lcore.
        lcore: u32,
        /// Its return code (-1: panicked).
        code: i32,
    },
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print a stats line to stdout this often.
    pub stats_interval: Option<Duration>,
    /// The file the config came from: reloads read it again.
    pub config_path: Option<std::path::PathBuf>,
    /// Set (by SIGHUP) to ask for a reload; cleared when it is handled.
    pub reload: Option<Arc<AtomicBool>>,
    /// Check the config file's modification time this often and reload
    /// when it changed (`None`: only on request).
    pub watch_interval: Option<Duration>,
}

/// What happened while running.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Counters per worker, in lcore order.
    pub workers: Vec<(u32, Counters)>,
    /// Driver counters per port, in config order.
    pub ports: Vec<(String, PortStats)>,
    /// Load-balancing counters summed over workers (`None` without listeners).
    pub lb: Option<LbCounters>,
    /// The snapshot the workers ran with (names for the counters).
    pub snapshot: Option<Arc<Snapshot>>,
}

impl RunReport {
    /// Counters summed over workers.
    pub fn total(&self) -> Counters {
        let mut t = Counters::default();
        for (_, c) in &self.workers {
            t.add(c);
        }
        t
    }
}

fn stats_line(prefix: &str, c: &Counters) -> String {
    let mut s = format!(
        "{prefix} rx_packets={} tx_packets={} dropped={}",
        c.rx_packets,
        c.tx_packets,
        c.dropped()
    );
    for r in DropReason::ALL {
        s.push_str(&format!(" drop_{}={}", r.name(), c.drops_for(r)));
    }
    s
}

fn start_port(
    eal: &Eal,
    spec: &PortSpec,
    workers: u16,
    cfg: &Config,
    pool: &Arc<Mempool>,
) -> Result<Port, RunError> {
    let id = port_by_name(eal, &spec.name)?;
    let pc = PortConfig {
        rx_queues: workers,
        tx_queues: workers,
        rx_descriptors: cfg.dataplane.rx_descriptors,
        tx_descriptors: cfg.dataplane.tx_descriptors,
        rss: spec.rss,
        promiscuous: true,
        mtu: spec.mtu,
    };
    Ok(Port::start(eal, id, &pc, pool.clone())?)
}

/// Where frames that are not for a VIP go, per ingress port: the port's
/// `forward_to`, else the host port, else nowhere (counted as `not_for_vip`).
/// Frames from the host port leave by its `forward_to`.
pub fn non_vip_routes(dp: &dnlb_config::Dataplane) -> Vec<Option<PortIndex>> {
    dp.ports
        .iter()
        .enumerate()
        .map(|(i, p)| match (p.forward_to, dp.host_port) {
            (Some(f), _) => Some(PortIndex(f as u16)),
            (None, Some(h)) if h != i => Some(PortIndex(h as u16)),
            _ => None,
        })
        .collect()
}

/// Runs the forwarder described by `cfg` until `shutdown` becomes true.
///
/// EAL is initialised here, so this can run once per process.
pub fn run(cfg: &Config, opts: &RunOptions, shutdown: &AtomicBool) -> Result<RunReport, RunError> {
    let dp = &cfg.dataplane;
    let eal = Eal::init(dp.full_eal_args())?;
    if eal.main_lcore().0 != dp.main_lcore {
        return Err(RunError::MainLcoreMismatch {
            configured: dp.main_lcore,
            actual: eal.main_lcore().0,
        });
    }
    for &l in &dp.worker_lcores {
        if !eal.lcore_enabled(LcoreId(l)) {
            return Err(RunError::LcoreNotEnabled(l));
        }
    }
    let workers = dp.worker_lcores.len() as u16;
    let pool = Arc::new(Mempool::new(
        &eal,
        &MempoolConfig::new("dnlb_pkt", dp.pool_mbufs),
    )?);
    let ports = dp
        .ports
        .iter()
        .map(|spec| start_port(&eal, spec, workers, cfg, &pool))
        .collect::<Result<Vec<_>, _>>()?;
    let non_vip = non_vip_routes(&cfg.dataplane);
    let mut registry = BackendRegistry::default();
    let publisher = if cfg.listeners.is_empty() {
        None
    } else {
        Some(Publisher::new(Arc::new(Snapshot::build(
            cfg,
            1,
            &mut registry,
        )?)))
    };
    let plan = PortPlan {
        macs: ports
            .iter()
            .map(|p| p.mac())
            .collect::<Result<Vec<_>, _>>()?,
        non_vip: non_vip.clone(),
        host_port: dp.host_port.map(|h| PortIndex(h as u16)),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let board = LbStatsBoard::new(dp.worker_lcores.len());
    let mut published = Vec::new();
    let mut launched = Vec::new();
    for (w, &lcore) in dp.worker_lcores.iter().enumerate() {
        let q = QueueId(w as u16);
        let rx = ports
            .iter()
            .map(|p| p.rx_queue(q))
            .collect::<Result<Vec<_>, _>>()?;
        let tx = ports
            .iter()
            .map(|p| p.tx_queue(q))
            .collect::<Result<Vec<_>, _>>()?;
        let io = DpdkIo::new(rx, tx);
        let counters = Arc::new(PublishedCounters::default());
        published.push((lcore, counters.clone()));
        let idle: Idle = dp.idle.into();
        let h = match &publisher {
            None => {
                let pl = ForwardPipeline::new(non_vip.clone());
                launch(&eal, lcore, io, pl, idle, counters, &stop)
            }
            Some(publisher) => {
                let processor = Processor::new(
                    cfg.flows.capacity_per_worker as usize,
                    random_seed(),
                    cfg.encap.icmp_rate_per_sec,
                    0,
                );
                let clock = MonotonicClock::default();
                let pl = LbPipeline::new(processor, publisher.reader(), plan.clone(), clock)
                    .with_stats(board.publisher(w));
                launch(&eal, lcore, io, pl, idle, counters, &stop)
            }
        };
        match h {
            Ok(h) => launched.push(h),
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(e.into());
            }
        }
    }
    // The admin API, if configured; a port that cannot be bound stops the
    // start (an operator relies on it), after the workers are told to stop.
    let api = match &cfg.admin {
        None => None,
        Some(admin) => match ApiServer::start(admin) {
            Ok(a) => Some(a),
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                for h in launched {
                    h.wait();
                }
                return Err(RunError::Admin(e));
            }
        },
    };
    tracing::info!(
        gateway = %cfg.gateway.name,
        workers = ?dp.worker_lcores,
        ports = ?dp.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        dpdk = %Eal::version(),
        "forwarding"
    );
    let mut plane = ControlPlane::new(
        cfg.clone(),
        opts.config_path.as_deref(),
        registry,
        publisher,
        published.clone(),
        board.clone(),
    );
    if let Some((api, _)) = &api {
        plane.set_api_token(api.token());
        println!("admin: listening on http://{}", api.addr());
    }
    println!(
        "dnlb: ready: gateway {} with {} worker(s) on lcores {:?}, ports {:?}",
        cfg.gateway.name,
        workers,
        dp.worker_lcores,
        dp.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>()
    );
    let _ = std::io::stdout().flush();

    let started = Instant::now();
    let mut last = (started, Counters::default());
    let stamp = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut file_stamp = opts.config_path.as_deref().and_then(stamp);
    let mut last_watch = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        // Wait for an API call, at most one tick.
        if let Some((_, calls)) = &api {
            match calls.recv_timeout(Duration::from_millis(20)) {
                Ok((call, reply, deadline)) => {
                    // The caller gave up (503): do not make a change it was
                    // told did not happen.
                    plane.set_ports(
                        ports
                            .iter()
                            .map(|p| port_status(p.name(), &p.stats().unwrap_or_default()))
                            .collect(),
                    );
                    let answer = if Instant::now() >= deadline {
                        api::ApiReply::error(503, "the control thread was busy; nothing was done")
                    } else {
                        api::serve(&mut plane, call)
                    };
                    let _ = reply.send(answer);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut wanted = opts
            .reload
            .as_ref()
            .is_some_and(|f| f.swap(false, Ordering::SeqCst));
        if let (Some(iv), Some(path)) = (opts.watch_interval, opts.config_path.as_deref()) {
            if last_watch.elapsed() >= iv {
                last_watch = Instant::now();
                let now_stamp = stamp(path);
                if now_stamp.is_some() && now_stamp != file_stamp {
                    tracing::info!(file = %path.display(), "config file changed");
                    wanted = true;
                }
            }
        }
        if wanted {
            // Whatever the outcome, this version of the file has been seen.
            file_stamp = opts.config_path.as_deref().and_then(stamp);
            let _ = plane.reload();
        }
        plane.tick();
        plane.reclaim();
        if let Some(iv) = opts.stats_interval {
            let now = Instant::now();
            if now.duration_since(last.0) >= iv {
                let c = plane.totals();
                let dt = now.duration_since(last.0).as_secs_f64();
                println!(
                    "{} rx_pps={:.0} tx_pps={:.0}",
                    stats_line(
                        &format!("stats: t={:.3}", now.duration_since(started).as_secs_f64()),
                        &c
                    ),
                    (c.rx_packets - last.1.rx_packets) as f64 / dt,
                    (c.tx_packets - last.1.tx_packets) as f64 / dt,
                );
                let _ = std::io::stdout().flush();
                last = (now, c);
            }
        }
    }
    // Withdraw the VIPs first and keep forwarding while routers move the
    // traffic to other gateways.
    if let Some(delay) = plane.withdraw_all() {
        tracing::info!(
            ?delay,
            "VIPs withdrawn; forwarding until routers moved away"
        );
        println!(
            "routes: withdrawn; forwarding for {} ms more",
            delay.as_millis()
        );
        let _ = std::io::stdout().flush();
        std::thread::sleep(delay);
    }
    tracing::info!("shutting down: stopping workers");
    drop(api);
    plane.stop();
    stop.store(true, Ordering::SeqCst);
    let mut failed = None;
    for h in launched {
        let lcore = h.lcore().0;
        let code = h.wait();
        if code != 0 && failed.is_none() {
            failed = Some(RunError::WorkerFailed { lcore, code });
        }
    }
    // Workers published their final counters when they stopped.
    let snapshot = plane.snapshot();
    let lb = snapshot.as_ref().map(|_| {
        let mut c = board.read().counters;
        plane.rebase(&mut c);
        c
    });
    let report = RunReport {
        lb,
        snapshot: snapshot.clone(),
        workers: published.iter().map(|(l, p)| (*l, p.read())).collect(),
        ports: ports
            .iter()
            .map(|p| (p.name().to_string(), p.stats().unwrap_or_default()))
            .collect(),
    };
    for (l, c) in &report.workers {
        println!("{}", stats_line(&format!("worker: lcore={l}"), c));
    }
    for (name, s) in &report.ports {
        println!(
            "port: {name} rx_packets={} tx_packets={} rx_bytes={} tx_bytes={} rx_missed={} rx_errors={} tx_errors={} rx_no_mbuf={}",
            s.rx_packets, s.tx_packets, s.rx_bytes, s.tx_bytes, s.rx_missed, s.rx_errors, s.tx_errors, s.rx_no_mbuf
        );
    }
    if let (Some(lb), Some(snap)) = (&report.lb, &report.snapshot) {
        print_lb(plane.config(), lb, snap);
    }
    println!(
        "reloads: ok={} rejected={} generation={}",
        plane.reloads().ok,
        plane.reloads().rejected,
        plane.generation()
    );
    println!("{}", stats_line("total:", &report.total()));
    // Workers handed their snapshots back when they stopped: free them here.
    plane.reclaim();
    drop(plane);
    // Ports stop and close (flushing pcap output files) as the last handles
    // go; then the pool; the EAL is cleaned up with the last handle.
    drop(ports);
    drop(pool);
    drop(eal);
    tracing::info!("stopped");
    match failed {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

fn print_lb(cfg: &Config, lb: &LbCounters, snap: &Snapshot) {
    for l in &snap.listeners {
        let t = lb
            .listeners
            .get(l.slot as usize)
            .copied()
            .unwrap_or_default();
        println!(
            "listener: {} packets={} bytes={}",
            l.name, t.packets, t.bytes
        );
    }
    for b in snap.backends.iter().flatten() {
        let t = lb
            .backends
            .get(b.id.0 as usize)
            .copied()
            .unwrap_or_default();
        println!(
            "backend: {} group={} packets={} bytes={}",
            b.address, cfg.target_groups[b.group as usize].name, t.packets, t.bytes
        );
    }
    println!(
        "flows: new={} table_full={} rescheduled={} icmp_errors_forwarded={} too_big_sent={} echo_replies={}",
        lb.new_flows,
        lb.flow_table_full,
        lb.flows_rescheduled,
        lb.icmp_errors_forwarded,
        lb.too_big_sent,
        lb.echo_replies
    );
}

fn port_status(name: &str, s: &PortStats) -> PortStatus {
    PortStatus {
        name: name.to_string(),
        rx_packets: s.rx_packets,
        tx_packets: s.tx_packets,
        rx_bytes: s.rx_bytes,
        tx_bytes: s.tx_bytes,
        rx_missed: s.rx_missed,
        rx_errors: s.rx_errors,
        tx_errors: s.tx_errors,
        rx_no_mbuf: s.rx_no_mbuf,
    }
}

/// Launches a worker with pipeline `pl` on `lcore`.
fn launch<PL: Pipeline + Send + 'static>(
    eal: &Eal,
    lcore: u32,
    io: DpdkIo,
    pl: PL,
    idle: Idle,
    counters: Arc<PublishedCounters>,
    stop: &Arc<AtomicBool>,
) -> Result<Launched, dpdk_bindings::Error> {
    let mut worker = Worker::new(io, pl, idle, counters);
    let stop = stop.clone();
    eal.launch(LcoreId(lcore), move || {
        worker.run(&stop);
        0
    })
}

/// A random seed for flow fingerprints (one per worker).
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x646e_6c62);
    h.finish()
}

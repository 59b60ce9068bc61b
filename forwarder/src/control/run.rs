//! Bringing the data plane up from a validated config, supervising it, and
//! taking it down: EAL, mempool, ports, one worker per lcore, counters.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::mpsc;

use dnlb_config::{Config, PortSpec};
use dnlb_lb::processor::{LbCounters, Processor};
use dnlb_lb::snapshot::{BackendRegistry, Snapshot, SnapshotError};
use dpdk_bindings::{
    port_by_name, Eal, Launched, LcoreId, Mempool, MempoolConfig, Port, PortConfig, PortStats,
    QueueId,
};

use crate::control::health::{BackendKey, HealthChecker, HealthState};
use crate::dataplane::dpdk::DpdkIo;
use crate::dataplane::snapshot::Publisher;
use crate::dataplane::{
    Counters, DropReason, ForwardPipeline, Idle, LbPipeline, MonotonicClock, Pipeline, PortIndex,
    PortPlan, PublishedCounters, Worker,
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
    let (lb_tx, lb_rx) = mpsc::channel::<LbCounters>();
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
                launch(&eal, lcore, io, pl, idle, counters, &stop, |_| {})
            }
            Some(publisher) => {
                let processor = Processor::new(
                    cfg.flows.capacity_per_worker as usize,
                    random_seed(),
                    cfg.encap.icmp_rate_per_sec,
                    0,
                );
                let clock = MonotonicClock::default();
                let pl = LbPipeline::new(processor, publisher.reader(), plan.clone(), clock);
                let lb_tx = lb_tx.clone();
                launch(&eal, lcore, io, pl, idle, counters, &stop, move |pl| {
                    let _ = lb_tx.send(pl.processor().counters.clone());
                })
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
    drop(lb_tx);
    tracing::info!(
        gateway = %cfg.gateway.name,
        workers = ?dp.worker_lcores,
        ports = ?dp.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        dpdk = %Eal::version(),
        "forwarding"
    );
    println!(
        "dnlb: ready: gateway {} with {} worker(s) on lcores {:?}, ports {:?}",
        cfg.gateway.name,
        workers,
        dp.worker_lcores,
        dp.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>()
    );
    let _ = std::io::stdout().flush();

    let sum = |published: &[(u32, Arc<PublishedCounters>)]| {
        let mut t = Counters::default();
        for (_, p) in published {
            t.add(&p.read());
        }
        t
    };
    let started = Instant::now();
    let mut last = (started, Counters::default());
    let mut reloads = ReloadCounters::default();
    let mut running_cfg = cfg.clone();
    let mut checker = publisher.as_ref().map(|_| HealthChecker::start(cfg, None));
    let stamp = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut file_stamp = opts.config_path.as_deref().and_then(stamp);
    let mut last_watch = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
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
            let health = checker.as_ref().map(|c| c.states()).unwrap_or_default();
            if let Some(next) = reload(
                &running_cfg,
                opts,
                publisher.as_ref(),
                &mut registry,
                &mut reloads,
                &health,
            ) {
                running_cfg = next;
                checker = Some(HealthChecker::start(&running_cfg, checker.take()));
            }
        }
        if let (Some(c), Some(p)) = (&checker, &publisher) {
            if c.take_changed() {
                rebuild_for_health(&running_cfg, p, &mut registry, &c.states());
            }
        }
        if let Some(p) = &publisher {
            p.reclaim();
        }
        if let Some(iv) = opts.stats_interval {
            let now = Instant::now();
            if now.duration_since(last.0) >= iv {
                let c = sum(&published);
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
    tracing::info!("shutting down: stopping workers");
    drop(checker);
    stop.store(true, Ordering::SeqCst);
    let mut failed = None;
    for h in launched {
        let lcore = h.lcore().0;
        let code = h.wait();
        if code != 0 && failed.is_none() {
            failed = Some(RunError::WorkerFailed { lcore, code });
        }
    }
    let snapshot = publisher.as_ref().map(|p| p.current());
    let lb = snapshot.as_ref().map(|_| {
        let mut total = LbCounters::default();
        for c in lb_rx.try_iter() {
            total.add(&c);
        }
        total
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
        print_lb(cfg, lb, snap);
    }
    println!(
        "reloads: ok={} rejected={} generation={}",
        reloads.ok,
        reloads.rejected,
        publisher.as_ref().map_or(0, |p| p.generation())
    );
    println!("{}", stats_line("total:", &report.total()));
    // Workers handed their snapshots back when they stopped: free them here.
    if let Some(p) = &publisher {
        p.reclaim();
    }
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
            .get(l.id.0 as usize)
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

/// Launches a worker with pipeline `pl` on `lcore`; `done` runs on the
/// worker's lcore after it stopped (to hand back final state).
#[allow(clippy::too_many_arguments)]
fn launch<PL: Pipeline + Send + 'static>(
    eal: &Eal,
    lcore: u32,
    io: DpdkIo,
    pl: PL,
    idle: Idle,
    counters: Arc<PublishedCounters>,
    stop: &Arc<AtomicBool>,
    done: impl FnOnce(&mut PL) + Send + 'static,
) -> Result<Launched, dpdk_bindings::Error> {
    let mut worker = Worker::new(io, pl, idle, counters);
    let stop = stop.clone();
    eal.launch(LcoreId(lcore), move || {
        worker.run(&stop);
        done(worker.pipeline_mut());
        0
    })
}

/// A random seed for flow fingerprints (one per worker).
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x646e_6c62);
    h.finish()
}

/// Reload outcomes.
#[derive(Debug, Default, Clone, Copy)]
struct ReloadCounters {
    ok: u64,
    rejected: u64,
}

/// Reads the config file again and publishes a new snapshot built from it.
/// Anything wrong leaves the running configuration untouched: the reason is
/// logged, printed (`reload: rejected: ...`) and counted.
fn reload(
    running: &Config,
    opts: &RunOptions,
    publisher: Option<&Publisher>,
    registry: &mut BackendRegistry,
    counters: &mut ReloadCounters,
    health: &HashMap<BackendKey, HealthState>,
) -> Option<Config> {
    let result = (|| -> Result<(u64, usize, Config), String> {
        let path = opts
            .config_path
            .as_ref()
            .ok_or("no config file to reload from")?;
        let publisher = publisher.ok_or(
            "this gateway started without listeners (frame forwarding only); restart it to add listeners",
        )?;
        let next = dnlb_config::load(path).map_err(|e| e.to_string())?;
        if next.dataplane != running.dataplane || next.gateway != running.gateway {
            return Err(
                "the [gateway] and [dataplane] sections cannot change at run time; restart dnlb"
                    .into(),
            );
        }
        if next.listeners.is_empty() {
            return Err("a reload cannot remove every listener".into());
        }
        // Build on a copy of the registry: a rejected build assigns no ids.
        let mut candidate = registry.clone();
        let generation = publisher.generation() + 1;
        let previous = publisher.current();
        let (snap, rebuilt) = Snapshot::build_with_health(
            &next,
            generation,
            &mut candidate,
            Some(&previous),
            &healthy_in(health),
        )
        .map_err(|e| e.to_string())?;
        *registry = candidate;
        Ok((publisher.publish(Arc::new(snap)), rebuilt, next))
    })();
    let _ = std::io::stdout().flush();
    match result {
        Ok((generation, rebuilt, next)) => {
            counters.ok += 1;
            tracing::info!(generation, rebuilt, "reload: new configuration published");
            println!("reload: ok generation={generation} tables_rebuilt={rebuilt}");
            let _ = std::io::stdout().flush();
            Some(next)
        }
        Err(e) => {
            counters.rejected += 1;
            tracing::error!(error = %e, "reload rejected; the running configuration is unchanged");
            println!("reload: rejected: {}", e.replace('\n', "; "));
            let _ = std::io::stdout().flush();
            None
        }
    }
}

/// A health lookup over the checker's states (absent: healthy).
fn healthy_in(
    states: &HashMap<BackendKey, HealthState>,
) -> impl Fn(&str, &[u8; dnlb_config::Backend::IDENTITY_LEN]) -> bool + '_ {
    move |group, identity| {
        states
            .get(&(group.to_string(), *identity))
            .is_none_or(|s| s.healthy())
    }
}

/// Publishes a snapshot of the running config with the current health.
fn rebuild_for_health(
    cfg: &Config,
    publisher: &Publisher,
    registry: &mut BackendRegistry,
    states: &HashMap<BackendKey, HealthState>,
) {
    let previous = publisher.current();
    let generation = publisher.generation() + 1;
    match Snapshot::build_with_health(
        cfg,
        generation,
        registry,
        Some(&previous),
        &healthy_in(states),
    ) {
        Ok((snap, rebuilt)) => {
            let generation = publisher.publish(Arc::new(snap));
            tracing::info!(
                generation,
                rebuilt,
                "backend health changed: new snapshot published"
            );
            println!("health: published generation={generation} tables_rebuilt={rebuilt}");
            let _ = std::io::stdout().flush();
        }
        Err(e) => tracing::error!(error = %e, "cannot rebuild after a health change"),
    }
}

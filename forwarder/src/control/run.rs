//! Bringing the data plane up from a validated config, supervising it, and
//! taking it down: EAL, mempool, ports, one worker per lcore, counters.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnlb_config::{Config, PortSpec};
use dpdk_bindings::{
    port_by_name, Eal, LcoreId, Mempool, MempoolConfig, Port, PortConfig, PortStats, QueueId,
};

use crate::dataplane::dpdk::DpdkIo;
use crate::dataplane::{
    Counters, DropReason, ForwardPipeline, PortIndex, PublishedCounters, Worker,
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
}

/// What happened while running.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Counters per worker, in lcore order.
    pub workers: Vec<(u32, Counters)>,
    /// Driver counters per port, in config order.
    pub ports: Vec<(String, PortStats)>,
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
    let forward_to: Vec<PortIndex> = dp
        .ports
        .iter()
        .map(|p| PortIndex(p.forward_to as u16))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
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
        let counters = Arc::new(PublishedCounters::default());
        published.push((lcore, counters.clone()));
        let mut worker = Worker::new(
            DpdkIo::new(rx, tx),
            ForwardPipeline::new(forward_to.clone()),
            dp.idle.into(),
            counters,
        );
        let worker_stop = stop.clone();
        let h = eal.launch(LcoreId(lcore), move || {
            worker.run(&worker_stop);
            0
        });
        match h {
            Ok(h) => launched.push(h),
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(e.into());
            }
        }
    }
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
    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
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
    stop.store(true, Ordering::SeqCst);
    let mut failed = None;
    for h in launched {
        let lcore = h.lcore().0;
        let code = h.wait();
        if code != 0 && failed.is_none() {
            failed = Some(RunError::WorkerFailed { lcore, code });
        }
    }
    let report = RunReport {
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
    println!("{}", stats_line("total:", &report.total()));
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

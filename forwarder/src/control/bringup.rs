//! Bringing the data plane up from a validated config and taking it down:
//! EAL, mempool, ports, the first snapshot, one worker per lcore.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dnlb_config::{Config, Dataplane, Device, IdlePolicy, PortSpec};
use dnlb_dataplane::dpdk::DpdkIo;
use dnlb_dataplane::snapshot::Publisher;
use dnlb_dataplane::sync::SyncLink;
use dnlb_dataplane::{
    CaptureBoard, ExplainBoard, ForwardPipeline, LbPipeline, LbStatsBoard, Pipeline, PortIndex,
    PortPlan, PublishedCounters, TscClock, Worker,
};
use dnlb_lb::processor::Processor;
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dpdk_bindings::{
    port_by_name, Eal, Launched, LcoreId, Mempool, MempoolConfig, Port, PortConfig, QueueId,
};

use super::error::RunError;

/// Exceptions a worker keeps between polls (its walk pauses when full).
const SYNC_PENDING: usize = 4096;
/// Exceptions waiting in a worker's queue for the control thread.
const SYNC_FOUND_QUEUE: usize = 1 << 16;

/// A running data plane: workers launched on their lcores, and what they
/// run on. Fields drop in order: ports (stopped and closed), then the pool,
/// then the EAL.
#[derive(Debug)]
pub struct DataPlane {
    /// Launched workers (waited for by [`DataPlane::stop_workers`]).
    launched: Vec<Launched>,
    stop: Arc<AtomicBool>,
    /// Each worker's lcore and published counters.
    pub published: Vec<(u32, Arc<PublishedCounters>)>,
    /// Where workers publish load-balancing counters when asked.
    pub board: Arc<LbStatsBoard>,
    /// Where workers answer `dnlb explain`.
    pub explain: Arc<ExplainBoard>,
    /// Where workers leave captured packets.
    pub capture: Arc<CaptureBoard>,
    /// Snapshot publication (`None`: no listeners, frames are forwarded).
    pub publisher: Option<Publisher>,
    /// Backend ids of the first snapshot.
    pub registry: BackendRegistry,
    /// Each worker's flow-exception sync queues (empty without `[sync]`).
    pub sync_links: Vec<SyncLink>,
    /// The ports, in config order.
    pub ports: Vec<Port>,
    _pool: Arc<Mempool>,
    eal: Eal,
}

impl DataPlane {
    /// Time-stamp counter ticks a second, as EAL measured them.
    pub fn tsc_hz(&self) -> u64 {
        self.eal.tsc_hz()
    }

    /// Initialises EAL (once per process), creates the pool and ports,
    /// builds the first snapshot and launches one worker per configured
    /// lcore. On an error, workers already launched are stopped.
    pub fn start(cfg: &Config) -> Result<DataPlane, RunError> {
        let dp = &cfg.dataplane;
        let eal = Eal::init(dp.full_eal_args())?;
        check_lcores(&eal, dp)?;
        let workers = dp.worker_lcores.len() as u16;
        let pool = Arc::new(Mempool::new(
            &eal,
            &MempoolConfig::new("dnlb_pkt", dp.pool_mbufs),
        )?);
        let ports = dp
            .ports
            .iter()
            .map(|spec| start_port(&eal, spec, workers, dp, &pool))
            .collect::<Result<Vec<_>, _>>()?;
        let mut registry = BackendRegistry::default();
        let publisher = if cfg.listeners.is_empty() {
            None
        } else {
            let first = Snapshot::build(cfg, 1, &mut registry)?;
            Some(Publisher::new(Arc::new(first)))
        };
        let mut plane = DataPlane {
            launched: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            published: Vec::new(),
            board: LbStatsBoard::new(dp.worker_lcores.len()),
            explain: ExplainBoard::new(dp.worker_lcores.len()),
            capture: CaptureBoard::new(dp.worker_lcores.len()),
            publisher,
            registry,
            sync_links: Vec::new(),
            ports,
            _pool: pool,
            eal,
        };
        if let Err(e) = plane.launch_workers(cfg) {
            plane.stop_workers();
            return Err(e);
        }
        Ok(plane)
    }

    /// Launches one worker per `dataplane.worker_lcores` entry, each owning
    /// queue pair `w` on every port.
    fn launch_workers(&mut self, cfg: &Config) -> Result<(), RunError> {
        let dp = &cfg.dataplane;
        let plan = PortPlan {
            macs: self
                .ports
                .iter()
                .map(|p| p.mac())
                .collect::<Result<Vec<_>, _>>()?,
            non_vip: non_vip_routes(dp),
            host_port: dp.host_port.map(|h| PortIndex(h as u16)),
        };
        for (w, &lcore) in dp.worker_lcores.iter().enumerate() {
            let q = QueueId(w as u16);
            let rx = self
                .ports
                .iter()
                .map(|p| p.rx_queue(q))
                .collect::<Result<Vec<_>, _>>()?;
            let tx = self
                .ports
                .iter()
                .map(|p| p.tx_queue(q))
                .collect::<Result<Vec<_>, _>>()?;
            let io = DpdkIo::new(rx, tx);
            let counters = Arc::new(PublishedCounters::default());
            self.published.push((lcore, counters.clone()));
            let launched = match &self.publisher {
                None => {
                    let pl = ForwardPipeline::new(plan.non_vip.clone());
                    self.launch(lcore, io, pl, dp.idle, counters)
                }
                Some(publisher) => {
                    let mut processor =
                        Processor::new(cfg.flows.capacity_per_worker as usize, random_seed())
                            .for_worker(w);
                    if let Some(sync) = &cfg.sync {
                        processor = processor.with_sync(sync.max_held as usize, SYNC_PENDING);
                    }
                    let mut pl = LbPipeline::new(
                        processor,
                        publisher.reader(),
                        plan.clone(),
                        TscClock::new(self.eal.tsc_hz()),
                    )
                    .with_stats(self.board.publisher(w))
                    .with_explain(self.explain.responder(w))
                    .with_capture(self.capture.tap(w));
                    if let Some(sync) = &cfg.sync {
                        let link = SyncLink::new(SYNC_FOUND_QUEUE, sync.max_held as usize);
                        self.sync_links.push(link.clone());
                        pl = pl.with_sync(link);
                    }
                    self.launch(lcore, io, pl, dp.idle, counters)
                }
            };
            self.launched.push(launched?);
        }
        Ok(())
    }

    /// Launches a worker with pipeline `pl` on `lcore`.
    fn launch<PL: Pipeline + Send + 'static>(
        &self,
        lcore: u32,
        io: DpdkIo,
        pl: PL,
        idle: IdlePolicy,
        counters: Arc<PublishedCounters>,
    ) -> Result<Launched, dpdk_bindings::Error> {
        let mut worker = Worker::new(io, pl, idle, counters);
        let stop = self.stop.clone();
        self.eal.launch(LcoreId(lcore), move || {
            worker.run(&stop);
            0
        })
    }

    /// Stops every worker and waits for it; returns the first worker that
    /// failed, if any. Workers publish their final counters as they stop.
    pub fn stop_workers(&mut self) -> Option<RunError> {
        self.stop.store(true, Ordering::SeqCst);
        let mut failed = None;
        for h in self.launched.drain(..) {
            let lcore = h.lcore().0;
            let code = h.wait();
            if code != 0 && failed.is_none() {
                failed = Some(RunError::WorkerFailed { lcore, code });
            }
        }
        failed
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        // Never free queues, ports or the EAL under a running worker.
        self.stop_workers();
    }
}

fn check_lcores(eal: &Eal, dp: &Dataplane) -> Result<(), RunError> {
    if eal.main_lcore().0 != dp.main_lcore {
        return Err(RunError::MainLcoreMismatch {
            configured: dp.main_lcore,
            actual: eal.main_lcore().0,
        });
    }
    match dp
        .worker_lcores
        .iter()
        .find(|&&l| !eal.lcore_enabled(LcoreId(l)))
    {
        Some(&l) => Err(RunError::LcoreNotEnabled(l)),
        None => Ok(()),
    }
}

fn start_port(
    eal: &Eal,
    spec: &PortSpec,
    workers: u16,
    dp: &Dataplane,
    pool: &Arc<Mempool>,
) -> Result<Port, RunError> {
    let id = port_by_name(eal, &spec.name)?;
    let pc = PortConfig {
        rx_queues: workers,
        tx_queues: workers,
        rx_descriptors: dp.rx_descriptors,
        tx_descriptors: dp.tx_descriptors,
        rss: spec.rss,
        promiscuous: true,
        mtu: spec.mtu,
    };
    Port::start(eal, id, &pc, pool.clone()).map_err(|error| RunError::Port {
        name: spec.name.clone(),
        error,
        hint: port_hint(spec),
    })
}

/// What to check when port `spec` does not start, for the devices whose
/// usual cause is known.
fn port_hint(spec: &PortSpec) -> &'static str {
    match &spec.device {
        Device::Virtual { devargs }
            if spec.name.starts_with("net_memif") && devargs.contains("role=client") =>
        {
            " (a memif client connects to its server at start: is the server running, and is the socket path the server's?)"
        }
        Device::Pci => " (is the device bound to vfio-pci or another DPDK-compatible driver?)",
        _ => "",
    }
}

/// Where frames that are not for a VIP go, per ingress port: the port's
/// `forward_to`, else the host port, else nowhere (counted as `not_for_vip`).
/// Frames from the host port leave by its `forward_to`.
pub fn non_vip_routes(dp: &Dataplane) -> Vec<Option<PortIndex>> {
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

/// A random seed for flow fingerprints (one per worker).
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x646e_6c62);
    h.finish()
}

//! Running a gateway: the data plane brought up ([`super::bringup`]), the
//! control loop that serves the admin API, reloads, health changes and
//! drain deadlines, and the ordered shutdown. What happens is told as
//! [`Event`]s.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use dnlb_config::Config;
use dnlb_dataplane::Counters;
use dnlb_lb::processor::LbCounters;
use dnlb_lb::snapshot::Snapshot;
use dpdk_bindings::{Eal, PortStats};

use super::admin::{self, AdminServer, Envelope};
use super::bringup::DataPlane;
pub use super::error::RunError;
use super::events::{Event, Events};
use super::plane::{ControlPlane, DataPlaneParts};
use super::report::{final_report, port_status};
use super::routes::Withdrawal;

/// How long the control loop waits for an API call before its other work.
const TICK: Duration = Duration::from_millis(20);

/// How long shutdown waits for BIRD to take the withdrawal: a BIRD that does
/// not answer (stopped, stuck) must not keep dnlb from stopping.
const WITHDRAW_WAIT: Duration = Duration::from_secs(2);

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Tell worker totals ([`Event::Stats`]) this often.
    pub stats_interval: Option<Duration>,
    /// The file the config came from: reloads read it again.
    pub config_path: Option<std::path::PathBuf>,
    /// Set (by SIGHUP) to ask for a reload; cleared when it is handled.
    pub reload: Option<Arc<AtomicBool>>,
    /// Check the config file's modification time this often and reload
    /// when it changed (`None`: only on request).
    pub watch_interval: Option<Duration>,
    /// Where events go (default: nowhere).
    pub events: Events,
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

/// Runs the forwarder described by `cfg` until `shutdown` becomes true.
///
/// EAL is initialised here, so this can run once per process.
pub fn run(cfg: &Config, opts: &RunOptions, shutdown: &AtomicBool) -> Result<RunReport, RunError> {
    let mut dp = DataPlane::start(cfg)?;
    // The control side's runtime: the admin server's connections live on
    // it; a thread that cannot start is an error, never a panic.
    // Built after EAL init: its threads inherit the main lcore's CPU set.
    let rt = super::runtime::start().map_err(RunError::Runtime)?;
    // The admin API, if configured; a port that cannot be bound stops the
    // start (an operator relies on it); dropping `dp` stops the workers.
    let mut cfg = cfg.clone();
    let api = match &mut cfg.admin {
        None => None,
        Some(admin) => {
            // Writes always need a token: made at first start if missing.
            admin.token = Some(admin::token::ensure(admin).map_err(RunError::Admin)?);
            Some(
                AdminServer::start(admin, admin.token.as_ref(), rt.handle())
                    .map_err(RunError::Admin)?,
            )
        }
    };
    let cfg = &cfg;
    tracing::info!(
        gateway = %cfg.gateway.name,
        workers = ?cfg.dataplane.worker_lcores,
        ports = ?cfg.dataplane.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        dpdk = %Eal::version(),
        "forwarding"
    );
    let mut plane = ControlPlane::new(
        cfg.clone(),
        opts.config_path.as_deref(),
        DataPlaneParts {
            registry: std::mem::take(&mut dp.registry),
            publisher: dp.publisher.take(),
            workers: dp.published.clone(),
            board: dp.board.clone(),
            explain: dp.explain.clone(),
            capture: dp.capture.clone(),
            tsc_hz: dp.tsc_hz(),
            sync_links: std::mem::take(&mut dp.sync_links),
        },
        opts.events.clone(),
        rt.handle().clone(),
    )
    .map_err(|e| RunError::Config(e.to_string()))?;
    plane.announce_first(shutdown);
    if let Some((api, _)) = &api {
        opts.events.emit(Event::AdminListening {
            url: format!("http://{}", api.addr()),
        });
    }
    // The config file's stamp is taken before anyone hears of `ready`: a
    // change made after that is seen.
    let mut supervisor = Supervisor::new(opts);
    opts.events.emit(Event::Ready {
        gateway: cfg.gateway.name.clone(),
        lcores: cfg.dataplane.worker_lcores.clone(),
        ports: cfg.dataplane.ports.iter().map(|p| p.name.clone()).collect(),
    });
    supervisor.run(&mut plane, &dp, api.as_ref(), shutdown);
    withdraw(&mut plane, &opts.events);
    tracing::info!("shutting down: stopping workers");
    drop(api);
    plane.stop();
    let failed = dp.stop_workers();
    let report = run_report(&plane, &dp);
    opts.events.emit(Event::Stopped {
        report: Box::new(final_report(
            &plane,
            &report.workers,
            dp.ports
                .iter()
                .zip(&report.ports)
                .map(|(p, (_, s))| port_status(p.name(), s))
                .collect(),
        )),
    });
    // Workers handed their snapshots back when they stopped: free them here.
    plane.reclaim();
    drop(plane);
    // The admin server stopped and the probes were aborted: nothing on the
    // runtime is worth waiting for long.
    rt.shutdown_timeout(Duration::from_secs(1));
    // Ports stop and close (flushing pcap output files) as the last handles
    // go; then the pool; the EAL is cleaned up with the last handle.
    drop(dp);
    tracing::info!("stopped");
    match failed {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Withdraws the VIPs and keeps forwarding while routers move the traffic
/// to other gateways.
///
/// The forwarding delay is there for routers to converge after BIRD
/// withdrew the routes. When BIRD did not take the withdrawal within
/// [`WITHDRAW_WAIT`] (not running, stopped, stuck), the routes stay where
/// they are whether dnlb waits or not — forwarding longer would not move
/// any traffic away, only delay the stop that an operator or systemd asked
/// for — so dnlb stops at once and says the VIPs may still be announced
/// (the systemd unit's `ExecStopPost` empties the files and reconfigures
/// BIRD once it answers again).
fn withdraw(plane: &mut ControlPlane, events: &Events) {
    match plane.withdraw_all(WITHDRAW_WAIT) {
        None => {}
        Some(Withdrawal::Withdrawn(delay)) => {
            tracing::info!(
                ?delay,
                "VIPs withdrawn; forwarding until routers moved away"
            );
            events.emit(Event::RoutesWithdrawn {
                forwarding_ms: delay.as_millis() as u64,
            });
            std::thread::sleep(delay);
        }
        Some(Withdrawal::NotWithdrawn(error)) => {
            tracing::error!(
                error = %error,
                "BIRD did not take the withdrawal: the VIPs may still be announced; stopping without the withdrawal delay"
            );
            events.emit(Event::RoutesNotWithdrawn { error });
        }
    }
}

/// What the stopped workers counted.
fn run_report(plane: &ControlPlane, dp: &DataPlane) -> RunReport {
    // Workers published their final counters when they stopped.
    let snapshot = plane.snapshot();
    RunReport {
        lb: snapshot.as_ref().map(|_| plane.last_lb_stats().counters),
        snapshot,
        workers: plane
            .workers()
            .iter()
            .map(|(l, p)| (*l, p.read()))
            .collect(),
        ports: dp
            .ports
            .iter()
            .map(|p| (p.name().to_string(), p.stats().unwrap_or_default()))
            .collect(),
    }
}

/// The config file's modification time and length.
type FileStamp = Option<(Option<SystemTime>, u64)>;

fn stamp(p: &Path) -> FileStamp {
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.modified().ok(), m.len()))
}

/// The control loop's own state: when it last looked at the config file and
/// told the stats.
struct Supervisor<'a> {
    opts: &'a RunOptions,
    started: Instant,
    last_stats: (Instant, Counters),
    file_stamp: FileStamp,
    last_watch: Instant,
}

impl<'a> Supervisor<'a> {
    fn new(opts: &'a RunOptions) -> Self {
        let now = Instant::now();
        Supervisor {
            opts,
            started: now,
            last_stats: (now, Counters::default()),
            file_stamp: opts.config_path.as_deref().and_then(stamp),
            last_watch: now,
        }
    }

    /// Until `shutdown`: API calls, reloads (SIGHUP, file change), health
    /// changes and drain deadlines, reclaiming retired snapshots, stats.
    fn run(
        &mut self,
        plane: &mut ControlPlane,
        dp: &DataPlane,
        api: Option<&(AdminServer, mpsc::Receiver<Envelope>)>,
        shutdown: &AtomicBool,
    ) {
        while !shutdown.load(Ordering::Relaxed) {
            match api {
                Some((server, calls)) => serve_one(plane, dp, server, calls),
                None => std::thread::sleep(TICK),
            }
            if self.reload_wanted() {
                // Whatever the outcome, this version of the file has been seen.
                self.file_stamp = self.opts.config_path.as_deref().and_then(stamp);
                let _ = plane.reload();
                if let Some((server, _)) = api {
                    // A reload may have changed the token.
                    server.set_token(plane.admin_token());
                }
            }
            plane.tick();
            plane.reclaim();
            self.stats(plane);
        }
    }

    /// Whether SIGHUP asked for a reload or the config file changed.
    fn reload_wanted(&mut self) -> bool {
        let signalled = self
            .opts
            .reload
            .as_ref()
            .is_some_and(|f| f.swap(false, Ordering::SeqCst));
        let (Some(iv), Some(path)) = (self.opts.watch_interval, self.opts.config_path.as_deref())
        else {
            return signalled;
        };
        if self.last_watch.elapsed() < iv {
            return signalled;
        }
        self.last_watch = Instant::now();
        let now = stamp(path);
        let changed = now.is_some() && now != self.file_stamp;
        if changed {
            tracing::info!(file = %path.display(), "config file changed");
        }
        signalled || changed
    }

    /// Tells worker totals every `stats_interval`.
    fn stats(&mut self, plane: &ControlPlane) {
        let Some(iv) = self.opts.stats_interval else {
            return;
        };
        let now = Instant::now();
        let (then, before) = self.last_stats;
        if now.duration_since(then) < iv {
            return;
        }
        let c = plane.totals();
        let dt = now.duration_since(then).as_secs_f64();
        let (busy, rx) = (
            c.busy_cycles - before.busy_cycles,
            c.rx_packets - before.rx_packets,
        );
        let workers = plane.workers().len().max(1) as f64;
        self.opts.events.emit(Event::Stats {
            uptime_secs: now.duration_since(self.started).as_secs_f64(),
            rx_packets: c.rx_packets,
            tx_packets: c.tx_packets,
            dropped: c.dropped(),
            idle_sleeps: c.idle_sleeps,
            rx_pps: (c.rx_packets - before.rx_packets) as f64 / dt,
            tx_pps: (c.tx_packets - before.tx_packets) as f64 / dt,
            // An iteration counts when it ends and workers publish once per
            // iteration: over a short interval the sum may pass 100 %.
            busy_percent: (100.0 * plane.busy_seconds(busy) / (dt * workers)).min(100.0),
            cycles_per_packet: if rx == 0 {
                0.0
            } else {
                busy as f64 / rx as f64
            },
        });
        self.last_stats = (now, c);
    }
}

/// Waits up to one tick for an API call and answers it.
fn serve_one(
    plane: &mut ControlPlane,
    dp: &DataPlane,
    server: &AdminServer,
    calls: &mpsc::Receiver<Envelope>,
) {
    match calls.recv_timeout(TICK) {
        Ok((call, reply, deadline)) => {
            plane.set_ports(
                dp.ports
                    .iter()
                    .map(|p| port_status(p.name(), &p.stats().unwrap_or_default()))
                    .collect(),
            );
            // The caller gave up (503): do not make a change it was told
            // did not happen.
            let answer = if Instant::now() >= deadline {
                admin::ApiReply::error(503, "the control thread was busy; nothing was done")
            } else {
                admin::serve(plane, call)
            };
            // A reload may have changed the token: in force before the
            // caller hears back.
            server.set_token(plane.admin_token());
            let _ = reply.send(answer);
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
    }
}

//! The control thread's state and every change it makes to the running
//! configuration: reloads (SIGHUP, file change, API), run-time changes from
//! the admin API, health changes and drain deadlines. Each ends the same
//! way: a new snapshot built on the slow path and published to workers, or
//! — when anything is wrong — nothing changes and the reason is reported.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnlb_config::runtime::RuntimeChanges;
use dnlb_config::{Config, Token};
use dnlb_dataplane::snapshot::Publisher;
use dnlb_dataplane::sync::SyncLink;
use dnlb_dataplane::{
    CaptureBoard, Counters, DropReason, ExplainBoard, LbStats, LbStatsBoard, PublishedCounters,
};
use dnlb_lb::ids::BackendId;
use dnlb_lb::processor::{LbCounters, Traffic};
use dnlb_lb::snapshot::{BackendRegistry, BuildTime, Snapshot};
use tokio::runtime::Handle;

use super::capture::Capture;
use super::changes::{Change, ChangeError};
use super::deadlines::Deadlines;
use super::events::{Event, Events, Republish};
use super::health::{self, healthy_in, BackendKey, HealthChecker, HealthState};
use super::routes::{self, Announcer, Withdrawal};
use super::status::{PortStatus, RoutesStatus};
use super::sync::{BridgeCounters, SyncBridge};

/// How long a status request waits for workers to publish fresh counters.
const FRESH_TIMEOUT: Duration = Duration::from_millis(250);

/// A snapshot that was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Its generation.
    pub generation: u64,
    /// Maglev tables built for it (the others were reused).
    pub tables_rebuilt: usize,
}

/// Where the running configuration came from.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    text: String,
    changes: RuntimeChanges,
    runtime_path: PathBuf,
}

/// Reload outcomes.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReloadCounters {
    /// Published.
    pub ok: u64,
    /// Rejected.
    pub rejected: u64,
}

/// What the control plane takes over from the running data plane: the
/// backend-id registry, the snapshot publisher (none without listeners),
/// each worker's published counters and the load-balancing stats board.
#[derive(Debug)]
pub struct DataPlaneParts {
    /// Backend ids of the first snapshot.
    pub registry: BackendRegistry,
    /// Publishes snapshots to workers.
    pub publisher: Option<Publisher>,
    /// Each worker's lcore and counters.
    pub workers: Vec<(u32, Arc<PublishedCounters>)>,
    /// Where workers publish load-balancing counters on request.
    pub board: Arc<LbStatsBoard>,
    /// Where workers answer `dnlb explain`.
    pub explain: Arc<ExplainBoard>,
    /// Where workers leave captured packets.
    pub capture: Arc<CaptureBoard>,
    /// Time-stamp counter ticks a second (workers count busy time in them).
    pub tsc_hz: u64,
    /// Each worker's flow-exception sync queues (empty without `[sync]`).
    pub sync_links: Vec<SyncLink>,
}

/// The control thread's state.
#[derive(Debug)]
pub struct ControlPlane {
    cfg: Config,
    source: Option<Source>,
    stale: Vec<String>,
    registry: BackendRegistry,
    publisher: Option<Publisher>,
    checker: Option<HealthChecker>,
    reloads: ReloadCounters,
    workers: Vec<(u32, Arc<PublishedCounters>)>,
    board: Arc<LbStatsBoard>,
    explain: Arc<ExplainBoard>,
    capture: Capture,
    /// The snapshot workers ran before the current one (`dnlb explain`'s
    /// previous table; a staged version does not count as one).
    previous: Option<Arc<Snapshot>>,
    tsc_hz: u64,
    started: Instant,
    announcer: Option<Announcer>,
    ports: Vec<PortStatus>,
    baselines: Baselines,
    deadlines: Deadlines,
    events: Events,
    /// Flow-exception sync, when configured.
    sync: Option<SyncBridge>,
    /// A new version waiting to be used while its flows are shared
    /// (only with sync; see [`ControlPlane::publish`]).
    staged: Option<Staged>,
}

/// A snapshot staged: workers share the flows its tables move, then use it.
#[derive(Debug)]
struct Staged {
    snap: Arc<Snapshot>,
    /// When it is used.
    due: Instant,
    /// When the first version still waiting was staged (a stream of changes
    /// cannot postpone the switch for ever).
    since: Instant,
}

/// How long a version is staged before use: longer than a handshake's round
/// trip, the config skew between gateways and a sync batch.
const STAGE: Duration = Duration::from_secs(1);
/// The longest a stream of new versions postpones the switch.
const STAGE_MAX: Duration = Duration::from_secs(3);

/// Counter values of reused backend ids at the time of reuse.
#[derive(Debug, Default)]
struct Baselines {
    backends: HashMap<u32, (Traffic, [u64; DropReason::COUNT])>,
}

impl Baselines {
    fn record(&mut self, ids: &[BackendId], c: &LbCounters) {
        for id in ids {
            let i = id.0 as usize;
            let t = c.backends.get(i).copied().unwrap_or_default();
            let d = c.backend_drops.get(i).copied().unwrap_or_default();
            self.backends.insert(id.0, (t, d));
        }
    }

    fn apply(&self, c: &mut LbCounters) {
        for (&id, (t, d)) in &self.backends {
            let i = id as usize;
            if let Some(x) = c.backends.get_mut(i) {
                x.packets = x.packets.saturating_sub(t.packets);
                x.bytes = x.bytes.saturating_sub(t.bytes);
            }
            if let Some(x) = c.backend_drops.get_mut(i) {
                for (a, b) in x.iter_mut().zip(d) {
                    *a = a.saturating_sub(*b);
                }
            }
        }
    }
}

impl ControlPlane {
    /// Takes over a running data plane. `cfg` is the effective config
    /// (config file plus run-time changes) read from `config_path`; what
    /// happens is told to `events`; health probes run on `ctl`, the control
    /// runtime.
    pub fn new(
        cfg: Config,
        config_path: Option<&Path>,
        dp: DataPlaneParts,
        events: Events,
        ctl: Handle,
    ) -> Result<Self, ChangeError> {
        let DataPlaneParts {
            registry,
            publisher,
            workers,
            board,
            explain,
            capture,
            tsc_hz,
            sync_links,
        } = dp;
        let mut stale = Vec::new();
        let source = match config_path {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ChangeError::Invalid(format!("{}: cannot read: {e}", path.display()))
                })?;
                let runtime_path = dnlb_config::runtime::runtime_path(path);
                // A damaged changes file stops the start: taken as "no
                // changes", it would be overwritten by the next change.
                let changes = RuntimeChanges::load(&runtime_path)
                    .map_err(|e| ChangeError::Invalid(e.to_string()))?;
                if let Ok((_, s)) = changes.apply(path, &text, &runtime_path) {
                    stale = s;
                }
                Some(Source {
                    path: path.to_path_buf(),
                    text,
                    changes,
                    runtime_path,
                })
            }
        };
        for s in &stale {
            tracing::warn!(change = %s, "a run-time change no longer applies");
        }
        let checker = publisher
            .as_ref()
            .map(|_| HealthChecker::start(&cfg, ctl.clone(), &events));
        let announcer = cfg
            .routing
            .clone()
            .map(|r| Announcer::start(r, events.clone()));
        let mut plane = ControlPlane {
            cfg,
            source,
            stale,
            registry,
            publisher,
            checker,
            reloads: ReloadCounters::default(),
            workers,
            board,
            explain,
            capture: Capture::new(capture),
            previous: None,
            tsc_hz,
            started: Instant::now(),
            announcer,
            ports: Vec::new(),
            baselines: Baselines::default(),
            deadlines: Deadlines::default(),
            events,
            sync: None,
            staged: None,
        };
        plane.deadlines.update(&plane.cfg);
        if let (Some(sync), Some(snap)) = (plane.cfg.sync.clone(), plane.snapshot()) {
            // Before the VIPs are announced: what the peers hold (this
            // gateway's own flows of a previous run among them).
            let mut bridge = SyncBridge::start(&sync, &plane.cfg.gateway.name, sync_links, &ctl)
                .map_err(ChangeError::Invalid)?;
            let report = bridge.fetch(&ctl, &snap, plane.generation());
            let answered = report.peers.iter().filter(|p| p.result.is_ok()).count();
            tracing::info!(
                peers = report.peers.len(),
                answered,
                entries = report.entries.len(),
                "sync: fetched what the peers hold"
            );
            plane.sync = Some(bridge);
        }
        Ok(plane)
    }

    /// The first announcement of the VIPs, once the gateway may serve
    /// them: with `[routing]`, after every checked backend had its first
    /// probe (at most [`health::first_round_budget`]; not at all if `stop`
    /// is set meanwhile) and what the probes found is published. Routers
    /// then send a starting gateway traffic only once its tables leave out
    /// the backends that are down (its peers left them out long ago). The
    /// probes started with the checker, in [`ControlPlane::new`], so its
    /// sync fetch overlapped them.
    pub fn announce_first(&mut self, stop: &AtomicBool) {
        if self.announcer.is_none() {
            return;
        }
        if !self.first_health_round(stop) {
            return;
        }
        self.announce();
    }

    /// [`ControlPlane::announce_first`]'s wait; false if `stop` was set.
    fn first_health_round(&mut self, stop: &AtomicBool) -> bool {
        let Some(checker) = &self.checker else {
            return true;
        };
        let budget = health::first_round_budget(&self.cfg);
        let started = Instant::now();
        let done = checker.wait_first_round(started + budget, stop);
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        if done {
            tracing::info!(
                waited_ms = started.elapsed().as_millis() as u64,
                "health: every checked backend probed once; announcing"
            );
        } else {
            tracing::warn!(
                budget_ms = budget.as_millis() as u64,
                "health: not every checked backend answered its first probe in time; announcing with those presumed healthy"
            );
        }
        if checker.take_changed() {
            self.republish(Republish::Health);
        }
        true
    }

    /// The ports' driver counters, for the next status (the control loop
    /// owns the ports and refreshes these before answering the API).
    pub fn set_ports(&mut self, ports: Vec<PortStatus>) {
        self.ports = ports;
    }

    /// The bearer token the running config asks the admin API to require.
    pub fn admin_token(&self) -> Option<&Token> {
        self.cfg.admin.as_ref().and_then(|a| a.token.as_ref())
    }

    /// Tells the BIRD worker which VIPs to announce now: those of listeners
    /// with a backend that takes new flows. Never waits for BIRD.
    fn announce(&mut self) {
        let wanted = match self.snapshot() {
            Some(snap) => routes::wanted(&self.cfg, &snap),
            None => Default::default(),
        };
        if let Some(a) = &self.announcer {
            a.set(wanted);
        }
    }

    /// Withdraws every VIP (shutdown), waiting at most `within` for BIRD to
    /// take it (`None`: no `[routing]`).
    pub fn withdraw_all(&mut self, within: Duration) -> Option<Withdrawal> {
        Some(self.announcer.as_ref()?.withdraw_all(within))
    }

    /// BIRD's state as the BIRD worker last saw it (`None`: no `[routing]`).
    pub fn routes_status(&self) -> Option<RoutesStatus> {
        self.announcer.as_ref().map(Announcer::status)
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The generation workers run (0 without listeners).
    pub fn generation(&self) -> u64 {
        self.publisher.as_ref().map_or(0, |p| p.generation())
    }

    /// Reload outcomes so far.
    pub fn reloads(&self) -> ReloadCounters {
        self.reloads
    }

    /// The snapshot workers run.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.publisher.as_ref().map(|p| p.current())
    }

    /// Frees snapshots workers handed back.
    pub fn reclaim(&self) {
        if let Some(p) = &self.publisher {
            p.reclaim();
        }
    }

    /// Stops health checking (probes in flight are aborted, not waited
    /// for) and the BIRD worker.
    pub fn stop(&mut self) {
        if let Some(c) = self.checker.take() {
            c.stop();
        }
        self.announcer = None;
    }

    /// The checked backends whose health is only presumed: no probe of
    /// them has ended since the gateway started (or since their group
    /// gained its health check).
    pub fn presumed_healthy(&self) -> HashSet<BackendKey> {
        let health = self.health().into_iter();
        health
            .filter(|(_, s)| s.presumed())
            .map(|(k, _)| k)
            .collect()
    }

    fn health(&self) -> HashMap<BackendKey, HealthState> {
        self.checker
            .as_ref()
            .map(|c| c.states())
            .unwrap_or_default()
    }

    /// Builds a snapshot of `cfg` with the current health on a copy of the
    /// registry (a failed build assigns no ids) and publishes it.
    fn publish(&mut self, cfg: &Config) -> Result<Published, ChangeError> {
        let publisher = self.publisher.as_ref().ok_or(ChangeError::ForwardingOnly)?;
        let health = self.health();
        let checked = |g: &str| self.checker.as_ref().is_some_and(|c| c.checks(g));
        let mut candidate = self.registry.clone();
        let previous = publisher.current();
        self.deadlines.update(cfg);
        let deadlines = &self.deadlines;
        let (mut snap, rebuilt) = Snapshot::build_with_health(
            cfg,
            publisher.generation() + 1,
            &mut candidate,
            Some(&previous),
            &healthy_in(&health, &checked),
            &BuildTime {
                now: Instant::now(),
                deadline: &|t| deadlines.get(t),
            },
        )
        .map_err(|e| ChangeError::Invalid(e.to_string()))?;
        // A reused backend id: workers' counters for it still hold the old
        // backend's totals (frozen: it left the config long ago); note them
        // before any packet goes to the new one, and count from there.
        let reused = candidate.take_reused();
        if !reused.is_empty() {
            let (lb, _) = self.board.collect(FRESH_TIMEOUT);
            self.baselines.record(&reused, &lb.counters);
        }
        self.registry = candidate;
        let current = publisher.current();
        if self.sync.is_some() && current.moves_flows(&snap) {
            // Staged first: workers share the flows the new tables move
            // before any gateway uses them, and pin the handshakes they
            // would break; the version itself follows (see `tick`).
            // (The staging snapshot has the current tables: not a
            // previous version of its own.)
            let g = publisher.publish(Arc::new(current.staging(&snap)));
            snap.generation = g + 1;
            let now = Instant::now();
            let since = self.staged.as_ref().map_or(now, |s| s.since);
            self.staged = Some(Staged {
                snap: Arc::new(snap),
                due: (now + STAGE).min(since + STAGE_MAX),
                since,
            });
            return Ok(Published {
                generation: g + 1,
                tables_rebuilt: rebuilt,
            });
        }
        // A version that moves no flow replaces a staged one at once.
        self.staged = None;
        self.previous = Some(current);
        Ok(Published {
            generation: publisher.publish(Arc::new(snap)),
            tables_rebuilt: rebuilt,
        })
    }

    /// Sync's periodic work: a staged version whose time came is used; what
    /// workers found goes to peers and what peers said to workers.
    fn tick_sync(&mut self) {
        if self
            .staged
            .as_ref()
            .is_some_and(|s| Instant::now() >= s.due)
        {
            if let (Some(s), Some(publisher)) = (self.staged.take(), &self.publisher) {
                self.previous = Some(publisher.current());
                let g = publisher.publish(s.snap);
                tracing::info!(generation = g, "staged version now in use");
            }
        }
        let generation = self.generation();
        if let (Some(bridge), Some(snap)) =
            (&mut self.sync, self.publisher.as_ref().map(|p| p.current()))
        {
            bridge.tick(&snap, generation);
        }
    }

    /// Whether a new version is staged (sync).
    pub fn is_staging(&self) -> bool {
        self.staged.is_some()
    }

    /// The version staged (sync), and how long until it is used.
    pub fn staged(&self) -> Option<(Arc<Snapshot>, Duration)> {
        let s = self.staged.as_ref()?;
        Some((
            s.snap.clone(),
            s.due.saturating_duration_since(Instant::now()),
        ))
    }

    /// The snapshot workers ran before the current one, if any.
    pub fn previous_snapshot(&self) -> Option<Arc<Snapshot>> {
        self.previous.clone()
    }

    /// The packet capture (`/v1/capture`).
    pub fn capture(&mut self) -> &mut Capture {
        &mut self.capture
    }

    /// Where workers answer `dnlb explain`.
    pub fn explain_board(&self) -> &ExplainBoard {
        &self.explain
    }

    /// Flow-exception sync's counters (endpoint and bridge), if configured.
    pub fn sync_stats(&self) -> Option<(dnlb_sync::SyncStats, BridgeCounters)> {
        self.sync.as_ref().map(SyncBridge::stats)
    }

    /// Counters as reported: those of reused backend ids counted from the
    /// reuse.
    pub fn rebase(&self, c: &mut LbCounters) {
        self.baselines.apply(c);
    }

    /// Checks that `next` can replace the running config at run time.
    pub(crate) fn replaceable(&self, next: &Config) -> Result<(), ChangeError> {
        // The admin token may change (it is re-read on reload); where the
        // API listens may not.
        let listen = |c: &Config| c.admin.as_ref().map(|a| a.listen);
        if next.dataplane != self.cfg.dataplane
            || next.gateway != self.cfg.gateway
            || listen(next) != listen(&self.cfg)
            || next.routing != self.cfg.routing
            || next.sync != self.cfg.sync
        {
            return Err(ChangeError::Invalid(
                "the [gateway], [dataplane], [routing], [sync] sections and admin.listen cannot change at run time; restart dnlb"
                    .into(),
            ));
        }
        if next.listeners.is_empty() {
            return Err(ChangeError::Invalid(
                "a reload cannot remove every listener".into(),
            ));
        }
        Ok(())
    }

    /// Reads the config file again (with the run-time changes) and publishes
    /// it. Anything wrong leaves the running configuration untouched: the
    /// reason is logged, told as an event and counted.
    pub fn reload(&mut self) -> Result<Published, ChangeError> {
        match self.try_reload() {
            Ok(p) => {
                self.reloads.ok += 1;
                tracing::info!(
                    generation = p.generation,
                    rebuilt = p.tables_rebuilt,
                    "reload: new configuration published"
                );
                self.events.emit(Event::Reloaded {
                    generation: p.generation,
                    tables_rebuilt: p.tables_rebuilt,
                });
                Ok(p)
            }
            Err(e) => {
                self.reloads.rejected += 1;
                tracing::error!(error = %e, "reload rejected; the running configuration is unchanged");
                self.events.emit(Event::ReloadRejected {
                    error: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// [`ControlPlane::reload`] without the counting and telling.
    fn try_reload(&mut self) -> Result<Published, ChangeError> {
        let src = self.source.as_ref().ok_or(ChangeError::NoConfigFile)?;
        let text = std::fs::read_to_string(&src.path).map_err(|e| {
            ChangeError::Invalid(format!("{}: cannot read: {e}", src.path.display()))
        })?;
        // The run-time changes file too: an operator may have edited it.
        let changes = RuntimeChanges::load(&src.runtime_path)
            .map_err(|e| ChangeError::Invalid(e.to_string()))?;
        let (next, stale) = changes
            .apply(&src.path, &text, &src.runtime_path)
            .map_err(|e| ChangeError::Invalid(e.to_string()))?;
        self.replaceable(&next)?;
        let published = self.publish(&next)?;
        self.adopt(next, stale);
        if let Some(src) = &mut self.source {
            src.text = text;
            src.changes = changes;
        }
        Ok(published)
    }

    /// Makes `next` the running config and has health checking follow it
    /// (without waiting for any probe).
    fn adopt(&mut self, next: Config, stale: Vec<String>) {
        for s in stale.iter().filter(|s| !self.stale.contains(s)) {
            tracing::warn!(change = %s, "a run-time change no longer applies");
        }
        self.stale = stale;
        self.cfg = next;
        if let Some(c) = &mut self.checker {
            c.update(&self.cfg);
        }
        self.announce();
    }

    /// Applies a run-time change: it is recorded in a copy of the run-time
    /// changes (checked against the config file's own config and the running
    /// one), validated with the config file, built, persisted beside the
    /// config and published — or nothing changes.
    pub fn change(&mut self, change: &Change) -> Result<Published, ChangeError> {
        let src = self.source.as_ref().ok_or(ChangeError::NoConfigFile)?;
        if self.publisher.is_none() {
            return Err(ChangeError::ForwardingOnly);
        }
        let base = dnlb_config::parse(&src.path, &src.text)
            .map_err(|e| ChangeError::ConfigFileInvalid(e.to_string()))?;
        let mut changes = src.changes.clone();
        change.record(&mut changes, &base, &self.cfg)?;
        let (next, stale) = changes
            .apply(&src.path, &src.text, &src.runtime_path)
            .map_err(|e| ChangeError::Invalid(e.to_string()))?;
        self.replaceable(&next)?;
        // Persist first: a change that could not be saved would be lost on
        // restart, so it is not made at all.
        let runtime_path = src.runtime_path.clone();
        let previous = src.changes.clone();
        changes
            .save(&runtime_path)
            .map_err(|e| ChangeError::NotSaved {
                path: runtime_path.display().to_string(),
                error: e.to_string(),
            })?;
        let published = match self.publish(&next) {
            Ok(p) => p,
            Err(e) => {
                // Put the file back as it was.
                let _ = previous.save(&runtime_path);
                return Err(e);
            }
        };
        if let Some(src) = &mut self.source {
            src.changes = changes;
        }
        self.adopt(next, stale);
        tracing::info!(
            change = %change,
            generation = published.generation,
            rebuilt = published.tables_rebuilt,
            "run-time change published"
        );
        self.events.emit(Event::Changed {
            change: change.to_string(),
            generation: published.generation,
            tables_rebuilt: published.tables_rebuilt,
        });
        Ok(published)
    }

    /// Periodic work: a health change or a drain deadline that passed
    /// publishes a new snapshot; sync's work. (BIRD retries are the BIRD
    /// worker's own.)
    pub fn tick(&mut self) {
        self.tick_sync();
        self.capture.tick();
        let health_changed = self.checker.as_ref().is_some_and(|c| c.take_changed());
        let deadline_passed = self
            .snapshot()
            .and_then(|s| s.next_deadline)
            .is_some_and(|d| Instant::now() >= d);
        if !(health_changed || deadline_passed) {
            return;
        }
        self.republish(if health_changed {
            Republish::Health
        } else {
            Republish::Drain
        });
    }

    /// Rebuilds the snapshot of the running config (with the current
    /// health and deadlines), publishes it and tells the BIRD worker.
    fn republish(&mut self, cause: Republish) {
        let cfg = self.cfg.clone();
        match self.publish(&cfg) {
            Ok(p) => {
                self.announce();
                tracing::info!(
                    generation = p.generation,
                    rebuilt = p.tables_rebuilt,
                    why = cause.name(),
                    "new snapshot published"
                );
                self.events.emit(Event::Republished {
                    cause,
                    generation: p.generation,
                    tables_rebuilt: p.tables_rebuilt,
                });
            }
            Err(e) => tracing::error!(error = %e, why = cause.name(), "cannot rebuild"),
        }
    }

    /// Worker counters summed.
    pub fn totals(&self) -> Counters {
        let mut t = Counters::default();
        for (_, p) in &self.workers {
            t.add(&p.read());
        }
        t
    }

    /// Workers' load-balancing counters, fresh (asked for, waiting a
    /// little) and counted from the reuse for reused backend ids; and
    /// whether every worker answered.
    pub fn lb_stats(&self) -> (LbStats, bool) {
        let (mut lb, fresh) = self.board.collect(FRESH_TIMEOUT);
        self.baselines.apply(&mut lb.counters);
        (lb, fresh)
    }

    /// What workers last published (after they stopped: their final
    /// counters), counted like [`ControlPlane::lb_stats`].
    pub fn last_lb_stats(&self) -> LbStats {
        let mut lb = self.board.read();
        self.baselines.apply(&mut lb.counters);
        lb
    }

    /// Each worker's lcore and published counters.
    pub fn workers(&self) -> &[(u32, Arc<PublishedCounters>)] {
        &self.workers
    }

    /// Seconds of busy time in `cycles` time-stamp counter ticks.
    pub fn busy_seconds(&self, cycles: u64) -> f64 {
        cycles as f64 / self.tsc_hz.max(1) as f64
    }

    /// The ports' driver counters as last set.
    pub fn ports(&self) -> &[PortStatus] {
        &self.ports
    }

    /// Backend ids.
    pub fn registry(&self) -> &BackendRegistry {
        &self.registry
    }

    /// Time since the control plane took over.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The config file, if dnlb runs from one.
    pub fn config_file(&self) -> Option<&Path> {
        self.source.as_ref().map(|s| s.path.as_path())
    }

    /// The run-time changes file and what it holds, if dnlb runs from a
    /// config file.
    pub fn runtime_changes(&self) -> Option<(&Path, &RuntimeChanges)> {
        self.source
            .as_ref()
            .map(|s| (s.runtime_path.as_path(), &s.changes))
    }

    /// Run-time changes that no longer apply to the config file.
    pub fn stale_changes(&self) -> &[String] {
        &self.stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_id_counts_from_its_reuse() {
        let mut c = LbCounters {
            backends: vec![
                Traffic {
                    packets: 5,
                    bytes: 500,
                },
                Traffic {
                    packets: 7,
                    bytes: 700,
                },
            ],
            backend_drops: vec![[0; DropReason::COUNT]; 2],
            ..Default::default()
        };
        c.backend_drops[1][DropReason::TooBig as usize] = 3;
        let mut b = Baselines::default();
        b.record(&[BackendId(1)], &c);
        // The new backend behind id 1 gets 2 packets and a drop.
        c.backends[1].packets += 2;
        c.backends[1].bytes += 20;
        c.backend_drops[1][DropReason::TooBig as usize] += 1;
        b.apply(&mut c);
        assert_eq!(
            c.backends[0],
            Traffic {
                packets: 5,
                bytes: 500
            },
            "others untouched"
        );
        assert_eq!(
            c.backends[1],
            Traffic {
                packets: 2,
                bytes: 20
            }
        );
        assert_eq!(c.backend_drops[1][DropReason::TooBig as usize], 1);
    }
}

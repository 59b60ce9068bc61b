//! The control thread's state and every change it makes to the running
//! configuration: reloads (SIGHUP, file change, API), run-time changes from
//! the admin API, health changes and drain deadlines. Each ends the same
//! way: a new snapshot built on the slow path and published to workers, or
//! — when anything is wrong — nothing changes and the reason is reported.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dnlb_config::runtime::{BackendRef, RuntimeChanges};
use dnlb_config::{Backend, Config, Protocol, Tunnel};
use dnlb_lb::ids::BackendId;
use dnlb_lb::processor::{LbCounters, Traffic};
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};

use super::health::{BackendKey, HealthChecker, HealthState};
use super::routes::{self, Announcer};
use super::status::{BackendStatus, FlowStatus, ListenerStatus, PortStatus, Status, WorkerStatus};
use crate::dataplane::snapshot::Publisher;
use crate::dataplane::{Counters, DropReason, LbStatsBoard, PublishedCounters};

/// How long a status request waits for workers to publish fresh counters.
const FRESH_TIMEOUT: Duration = Duration::from_millis(250);

/// An API-level failure: an HTTP status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeError {
    /// HTTP status code (404: no such thing, 409: not possible now, 422:
    /// invalid, 500: could not persist).
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl ChangeError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        ChangeError {
            status,
            message: message.into(),
        }
    }
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
    started: Instant,
    announcer: Option<Announcer>,
    api_token: Option<super::api::TokenHandle>,
    ports: Vec<PortStatus>,
    baselines: Baselines,
}

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

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

impl ControlPlane {
    /// Takes over a running data plane. `cfg` is the effective config
    /// (config file plus run-time changes) read from `config_path`.
    pub fn new(
        cfg: Config,
        config_path: Option<&Path>,
        registry: BackendRegistry,
        publisher: Option<Publisher>,
        workers: Vec<(u32, Arc<PublishedCounters>)>,
        board: Arc<LbStatsBoard>,
    ) -> Self {
        let mut stale = Vec::new();
        let source = config_path.and_then(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let runtime_path = dnlb_config::runtime::runtime_path(path);
            let changes = RuntimeChanges::load(&runtime_path).unwrap_or_default();
            if let Ok((_, s)) = changes.apply(path, &text, &runtime_path) {
                stale = s;
            }
            Some(Source {
                path: path.to_path_buf(),
                text,
                changes,
                runtime_path,
            })
        });
        for s in &stale {
            tracing::warn!(change = %s, "a run-time change no longer applies");
        }
        let checker = publisher.as_ref().map(|_| HealthChecker::start(&cfg, None));
        let announcer = cfg.routing.clone().map(Announcer::new);
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
            started: Instant::now(),
            announcer,
            api_token: None,
            ports: Vec::new(),
            baselines: Baselines::default(),
        };
        plane.announce();
        plane
    }

    /// The ports' driver counters, for the next status (the control loop
    /// owns the ports and refreshes these before answering the API).
    pub fn set_ports(&mut self, ports: Vec<PortStatus>) {
        self.ports = ports;
    }

    /// Keeps the admin API's token in step with the running config.
    pub fn set_api_token(&mut self, token: super::api::TokenHandle) {
        self.api_token = Some(token);
    }

    /// Tells BIRD which VIPs to announce now: those of listeners with a
    /// backend that takes new flows.
    fn announce(&mut self) {
        let wanted = match self.snapshot() {
            Some(snap) => routes::wanted(&self.cfg, &snap),
            None => Default::default(),
        };
        if let Some(a) = &mut self.announcer {
            a.set(wanted);
        }
    }

    /// Withdraws every VIP (shutdown); returns how long to keep forwarding
    /// while routers move traffic away.
    pub fn withdraw_all(&mut self) -> Option<Duration> {
        let a = self.announcer.as_mut()?;
        a.set(Default::default());
        Some(a.withdraw_delay())
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

    /// Stops health checking.
    pub fn stop(&mut self) {
        self.checker = None;
    }

    fn health(&self) -> HashMap<BackendKey, HealthState> {
        self.checker
            .as_ref()
            .map(|c| c.states())
            .unwrap_or_default()
    }

    /// Builds a snapshot of `cfg` with the current health on a copy of the
    /// registry (a failed build assigns no ids) and publishes it.
    fn publish(&mut self, cfg: &Config) -> Result<(u64, usize), String> {
        let publisher = self.publisher.as_ref().ok_or(
            "this gateway started without listeners (frame forwarding only); restart it to add listeners",
        )?;
        let health = self.health();
        let checked = |g: &str| self.checker.as_ref().is_some_and(|c| c.checks(g));
        let mut candidate = self.registry.clone();
        let previous = publisher.current();
        let (snap, rebuilt) = Snapshot::build_with_health(
            cfg,
            publisher.generation() + 1,
            &mut candidate,
            Some(&previous),
            &healthy_in(&health, &checked),
            SystemTime::now(),
        )
        .map_err(|e| e.to_string())?;
        // A reused backend id: workers' counters for it still hold the old
        // backend's totals (frozen: it left the config long ago); note them
        // before any packet goes to the new one, and count from there.
        let reused = candidate.take_reused();
        if !reused.is_empty() {
            let (lb, _) = self.board.collect(FRESH_TIMEOUT);
            self.baselines.record(&reused, &lb.counters);
        }
        self.registry = candidate;
        Ok((publisher.publish(Arc::new(snap)), rebuilt))
    }

    /// Counters as reported: those of reused backend ids counted from the
    /// reuse.
    pub fn rebase(&self, c: &mut LbCounters) {
        self.baselines.apply(c);
    }

    /// Checks that `next` can replace the running config at run time.
    fn replaceable(&self, next: &Config) -> Result<(), String> {
        // The admin token may change (it is re-read on reload); where the
        // API listens may not.
        let listen = |c: &Config| c.admin.as_ref().map(|a| a.listen);
        if next.dataplane != self.cfg.dataplane
            || next.gateway != self.cfg.gateway
            || listen(next) != listen(&self.cfg)
            || next.routing != self.cfg.routing
        {
            return Err(
                "the [gateway], [dataplane], [routing] sections and admin.listen cannot change at run time; restart dnlb"
                    .into(),
            );
        }
        if next.listeners.is_empty() {
            return Err("a reload cannot remove every listener".into());
        }
        Ok(())
    }

    /// Reads the config file again (with the run-time changes) and publishes
    /// it. Anything wrong leaves the running configuration untouched: the
    /// reason is logged, printed (`reload: rejected: ...`) and counted.
    pub fn reload(&mut self) -> Result<(u64, usize), String> {
        let result = (|| {
            let src = self
                .source
                .as_ref()
                .ok_or("no config file to reload from")?;
            let text = std::fs::read_to_string(&src.path)
                .map_err(|e| format!("{}: cannot read: {e}", src.path.display()))?;
            // The run-time changes file too: an operator may have edited it.
            let changes = RuntimeChanges::load(&src.runtime_path).map_err(|e| e.to_string())?;
            let (next, stale) = changes
                .apply(&src.path, &text, &src.runtime_path)
                .map_err(|e| e.to_string())?;
            self.replaceable(&next)?;
            let published = self.publish(&next)?;
            Ok::<_, String>((published, next, text, stale, changes))
        })();
        match result {
            Ok(((generation, rebuilt), next, text, stale, changes)) => {
                self.reloads.ok += 1;
                self.adopt(next, stale);
                if let Some(src) = &mut self.source {
                    src.text = text;
                    src.changes = changes;
                }
                tracing::info!(generation, rebuilt, "reload: new configuration published");
                say(&format!(
                    "reload: ok generation={generation} tables_rebuilt={rebuilt}"
                ));
                Ok((generation, rebuilt))
            }
            Err(e) => {
                self.reloads.rejected += 1;
                tracing::error!(error = %e, "reload rejected; the running configuration is unchanged");
                say(&format!("reload: rejected: {}", e.replace('\n', "; ")));
                Err(e)
            }
        }
    }

    /// Makes `next` the running config and restarts health checking for it.
    fn adopt(&mut self, next: Config, stale: Vec<String>) {
        for s in stale.iter().filter(|s| !self.stale.contains(s)) {
            tracing::warn!(change = %s, "a run-time change no longer applies");
        }
        self.stale = stale;
        if let Some(t) = &self.api_token {
            let new = next.admin.as_ref().and_then(|a| a.token.as_ref());
            *t.lock().unwrap_or_else(|e| e.into_inner()) = new.map(|t| t.0.as_str().into());
        }
        self.cfg = next;
        self.checker = Some(HealthChecker::start(&self.cfg, self.checker.take()));
        self.announce();
    }

    /// Applies a run-time change: `edit` changes a copy of the run-time
    /// changes (it may look at the config file's own config and the running
    /// one); the result is validated with the config file, built, persisted
    /// beside the config and published — or nothing changes.
    pub fn change(
        &mut self,
        what: &str,
        edit: impl FnOnce(&mut RuntimeChanges, &Config, &Config) -> Result<(), ChangeError>,
    ) -> Result<u64, ChangeError> {
        let src = self.source.as_ref().ok_or_else(|| {
            ChangeError::new(
                409,
                "dnlb was started without a config file: nothing to change",
            )
        })?;
        if self.publisher.is_none() {
            return Err(ChangeError::new(
                409,
                "this gateway started without listeners (frame forwarding only)",
            ));
        }
        let base = dnlb_config::parse(&src.path, &src.text).map_err(|e| {
            ChangeError::new(
                409,
                format!("the running config file no longer validates: {e}"),
            )
        })?;
        let mut changes = src.changes.clone();
        edit(&mut changes, &base, &self.cfg)?;
        let (next, stale) = changes
            .apply(&src.path, &src.text, &src.runtime_path)
            .map_err(|e| ChangeError::new(422, e.to_string()))?;
        self.replaceable(&next)
            .map_err(|e| ChangeError::new(422, e))?;
        // Persist first: a change that could not be saved would be lost on
        // restart, so it is not made at all.
        let runtime_path = src.runtime_path.clone();
        let previous = src.changes.clone();
        changes.save(&runtime_path).map_err(|e| {
            ChangeError::new(500, format!("cannot save {}: {e}", runtime_path.display()))
        })?;
        match self.publish(&next) {
            Ok((generation, rebuilt)) => {
                if let Some(src) = &mut self.source {
                    src.changes = changes;
                }
                self.adopt(next, stale);
                tracing::info!(
                    change = what,
                    generation,
                    rebuilt,
                    "run-time change published"
                );
                say(&format!(
                    "api: {what}: generation={generation} tables_rebuilt={rebuilt}"
                ));
                Ok(generation)
            }
            Err(e) => {
                // Put the file back as it was.
                let _ = previous.save(&runtime_path);
                Err(ChangeError::new(422, e))
            }
        }
    }

    /// Periodic work: a health change or a drain deadline that passed
    /// publishes a new snapshot.
    pub fn tick(&mut self) {
        if let Some(a) = &mut self.announcer {
            a.retry();
        }
        let health_changed = self.checker.as_ref().is_some_and(|c| c.take_changed());
        let deadline_passed = self
            .snapshot()
            .and_then(|s| s.next_deadline)
            .is_some_and(|d| SystemTime::now() >= d);
        if !(health_changed || deadline_passed) {
            return;
        }
        let why = if health_changed { "health" } else { "drain" };
        let cfg = self.cfg.clone();
        match self.publish(&cfg) {
            Ok((generation, rebuilt)) => {
                self.announce();
                tracing::info!(generation, rebuilt, why, "new snapshot published");
                say(&format!(
                    "{why}: published generation={generation} tables_rebuilt={rebuilt}"
                ));
            }
            Err(e) => tracing::error!(error = %e, why, "cannot rebuild"),
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

    /// Everything the admin API reports, with counters fresh from workers.
    pub fn status(&self) -> Status {
        let (mut lb, fresh) = self.board.collect(FRESH_TIMEOUT);
        self.baselines.apply(&mut lb.counters);
        let workers: Vec<WorkerStatus> = self
            .workers
            .iter()
            .map(|(lcore, p)| {
                let c = p.read();
                WorkerStatus {
                    lcore: *lcore,
                    rx_packets: c.rx_packets,
                    tx_packets: c.tx_packets,
                    dropped: c.dropped(),
                }
            })
            .collect();
        let totals = self.totals();
        let drops = DropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), totals.drops_for(*r)))
            .collect();
        let c = &lb.counters;
        let flows = FlowStatus {
            entries: lb.flows as u64,
            capacity: lb.flow_capacity as u64,
            created: c.new_flows,
            table_full: c.flow_table_full,
            rescheduled: c.flows_rescheduled,
            icmp_errors_forwarded: c.icmp_errors_forwarded,
            too_big_sent: c.too_big_sent,
            echo_replies: c.echo_replies,
        };
        let snap = self.snapshot();
        let changes = self.source.as_ref().map(|s| &s.changes);
        let mut listeners = Vec::new();
        let mut backends = Vec::new();
        if let Some(snap) = &snap {
            for (l, ls) in self.cfg.listeners.iter().zip(&snap.listeners) {
                let slot = ls.slot as usize;
                let t = c.listeners.get(slot).copied().unwrap_or_default();
                let d = c.listener_drops.get(slot).copied().unwrap_or_default();
                listeners.push(ListenerStatus {
                    name: l.name.clone(),
                    vips: l.vips.iter().map(IpAddr::to_string).collect(),
                    elastic_ip: l.elastic_ip.map(|a| a.to_string()),
                    protocol: match l.protocol {
                        Protocol::Tcp => "tcp".into(),
                        Protocol::Udp => "udp".into(),
                    },
                    port: l.port,
                    target_group: self.cfg.target_groups[l.target_group].name.clone(),
                    backends_taking_new_flows: snap
                        .backends
                        .iter()
                        .flatten()
                        .filter(|b| b.group as usize == l.target_group && b.takes_new_flows)
                        .count(),
                    packets: t.packets,
                    bytes: t.bytes,
                    drops: nonzero(&d),
                });
            }
            for (gi, g) in self.cfg.target_groups.iter().enumerate() {
                for b in &g.backends {
                    let Some(s) = self
                        .registry
                        .get(&g.name, &b.identity())
                        .and_then(|id| snap.backend(id))
                        .filter(|s| s.group as usize == gi)
                    else {
                        continue;
                    };
                    let t = c.backends.get(s.id.0 as usize).copied().unwrap_or_default();
                    let d = c
                        .backend_drops
                        .get(s.id.0 as usize)
                        .copied()
                        .unwrap_or_default();
                    backends.push(BackendStatus {
                        target_group: g.name.clone(),
                        address: b.address.to_string(),
                        port: b.port,
                        kind: format!("{:?}", b.kind).to_lowercase(),
                        zone: b.zone.clone(),
                        tunnel: tunnel_name(&b.tunnel).into(),
                        weight: b.weight,
                        healthy: s.healthy,
                        usable: s.usable,
                        takes_new_flows: s.takes_new_flows,
                        drain_until: b
                            .drain_until
                            .map(|t| dnlb_config::time::from_system_time(t).to_string()),
                        runtime: changes.is_some_and(|ch| touched(ch, &g.name, b)),
                        packets: t.packets,
                        bytes: t.bytes,
                        drops: nonzero(&d),
                    });
                }
            }
        }
        Status {
            gateway: self.cfg.gateway.name.clone(),
            zone: self.cfg.gateway.zone.clone(),
            config_file: self.source.as_ref().map(|s| s.path.display().to_string()),
            uptime_secs: self.started.elapsed().as_secs_f64(),
            generation: self.generation(),
            reloads_ok: self.reloads.ok,
            reloads_rejected: self.reloads.rejected,
            counters_fresh: fresh,
            workers,
            ports: self.ports.clone(),
            drops,
            flows,
            listeners,
            backends,
            runtime_changes: changes.map(RuntimeChanges::describe).unwrap_or_default(),
            stale_changes: self.stale.clone(),
            runtime_file: self
                .source
                .as_ref()
                .map(|s| s.runtime_path.display().to_string()),
        }
    }
}

/// Drop counts by reason name, leaving out reasons without drops.
fn nonzero(d: &[u64; DropReason::COUNT]) -> std::collections::BTreeMap<String, u64> {
    DropReason::ALL
        .iter()
        .filter(|r| d[**r as usize] > 0)
        .map(|r| (r.name().to_string(), d[*r as usize]))
        .collect()
}

/// Whether a run-time change names backend `b` of group `group`.
fn touched(ch: &RuntimeChanges, group: &str, b: &Backend) -> bool {
    ch.register
        .iter()
        .filter_map(|r| r.reference())
        .any(|r| r.names(group, b))
        || ch.weight.iter().any(|w| w.backend.names(group, b))
        || ch.drain.iter().any(|d| d.backend.names(group, b))
}

fn tunnel_name(t: &Tunnel) -> &'static str {
    match t {
        Tunnel::IpIp => "ipip",
        Tunnel::Gue { .. } => "gue",
        Tunnel::Vxlan { .. } => "vxlan",
        Tunnel::Gre { .. } => "gre",
    }
}

/// A health lookup over the checker's states. A backend without a state is
/// healthy unless its group is one the checker already checks (`checked`):
/// then it is new, not probed yet, and takes no new flows until it passes.
pub fn healthy_in<'a>(
    states: &'a HashMap<BackendKey, HealthState>,
    checked: &'a dyn Fn(&str) -> bool,
) -> impl Fn(&str, &[u8; Backend::IDENTITY_LEN]) -> bool + 'a {
    move |group, identity| match states.get(&(group.to_string(), *identity)) {
        Some(s) => s.healthy(),
        None => !checked(group),
    }
}

/// The backends of the running config that `r` names; 404 when none.
pub fn named<'a>(cfg: &'a Config, r: &BackendRef) -> Result<Vec<&'a Backend>, ChangeError> {
    let gi = cfg
        .group_index(&r.target_group)
        .ok_or_else(|| ChangeError::new(404, format!("no target group {:?}", r.target_group)))?;
    let found: Vec<&Backend> = cfg.target_groups[gi]
        .backends
        .iter()
        .filter(|b| r.names(&r.target_group, b))
        .collect();
    if found.is_empty() {
        return Err(ChangeError::new(404, format!("no {r}")));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprobed_backends_of_checked_groups_take_no_new_flows() {
        let states = HashMap::new();
        let checked = |g: &str| g == "web";
        let h = healthy_in(&states, &checked);
        assert!(
            !h("web", &[1; Backend::IDENTITY_LEN]),
            "new in a checked group"
        );
        assert!(
            h("db", &[1; Backend::IDENTITY_LEN]),
            "no health check: healthy"
        );
    }

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

//! Active health checking of backends (slow path, on the control runtime).
//!
//! One prober for every checked target group: a task per backend on the
//! control plane's tokio runtime probes it every interval ([`probe`]: one
//! deadline for the whole probe) and feeds the result to its
//! [`HealthState`]. At most [`MAX_PROBES_IN_FLIGHT`] probes run at once, so
//! sockets stay bounded. A change of state is reported through a flag the
//! control loop polls (it then rebuilds the snapshot with the unhealthy
//! backends left out of the Maglev tables) and told as an
//! [`Event::Health`], outside any lock and off the runtime's threads.
//!
//! [`HealthChecker::update`] follows a new config without waiting for any
//! probe: only the probers of backends that are new, left, or whose check
//! changed are started or aborted; the state of a backend that left is
//! forgotten.

mod probe;
mod state;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dnlb_config::{Config, HealthCheck};
use dnlb_lb::maglev::{backend_identity, Identity};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::events::{Event, Events};
pub use probe::{probe, ProbeError};
pub use state::HealthState;

/// A backend's key: target group name and identity.
pub type BackendKey = (String, Identity);

/// At most this many probes in flight at once; the others wait their turn.
pub const MAX_PROBES_IN_FLIGHT: usize = 256;

/// The longest a first round of probes of `cfg`'s checked backends may
/// take: the longest probe deadline, once for each
/// [`MAX_PROBES_IN_FLIGHT`] backends (probes beyond that wait their turn),
/// plus [`FIRST_ROUND_SLACK`]; at most [`FIRST_ROUND_MAX`].
pub fn first_round_budget(cfg: &Config) -> Duration {
    let checked = cfg.target_groups.iter().filter_map(|g| {
        g.health_check
            .as_ref()
            .map(|c| (c.timeout, g.backends.len()))
    });
    let (longest, backends) =
        checked.fold((Duration::ZERO, 0), |(t, n), (ct, cn)| (t.max(ct), n + cn));
    let waves = backends.div_ceil(MAX_PROBES_IN_FLIGHT).max(1) as u32;
    (longest * waves + FIRST_ROUND_SLACK).min(FIRST_ROUND_MAX)
}

/// What [`first_round_budget`] adds for scheduling.
pub const FIRST_ROUND_SLACK: Duration = Duration::from_millis(500);

/// The most [`first_round_budget`] gives.
pub const FIRST_ROUND_MAX: Duration = Duration::from_secs(30);

/// A backend's state and the prober that may change it.
#[derive(Debug)]
struct Entry {
    state: HealthState,
    /// Whether a probe of its current prober has ended (passed or failed).
    probed: bool,
    /// Which prober owns the state: a prober aborted while it was recording
    /// (its backend left, or its check changed) cannot touch a later one.
    owner: u64,
}

/// What probers and the control thread share.
#[derive(Debug, Default)]
struct Shared {
    states: Mutex<HashMap<BackendKey, Entry>>,
    changed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<BackendKey, Entry>> {
        // Nothing panics while holding it; a poisoned map is still whole.
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a result of prober `owner`; the new health if it flipped.
    fn record(&self, key: &BackendKey, owner: u64, ok: bool, target: &Target) -> Option<bool> {
        let mut states = self.lock();
        let e = states.get_mut(key).filter(|e| e.owner == owner)?;
        e.probed = true;
        let flipped = if Instant::now() < target.grace_until {
            e.state.record_in_grace(ok, &target.check)
        } else {
            e.state.record(ok, &target.check)
        };
        if !flipped {
            return None;
        }
        self.changed.store(true, Ordering::Release);
        Some(e.state.healthy())
    }
}

/// What one backend's prober probes.
#[derive(Debug, Clone)]
struct Target {
    check: HealthCheck,
    addr: SocketAddr,
    /// The end of the group's start-up grace.
    grace_until: Instant,
}

/// A running prober.
#[derive(Debug)]
struct Prober {
    check: HealthCheck,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

/// A change of health to tell.
#[derive(Debug)]
struct Flip {
    group: String,
    backend: IpAddr,
    healthy: bool,
}

/// The running health checker.
#[derive(Debug)]
pub struct HealthChecker {
    handle: Handle,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    flips: mpsc::UnboundedSender<Flip>,
    /// The checked target groups, and since when (the grace counts from it).
    groups: HashMap<String, Instant>,
    probers: HashMap<BackendKey, Prober>,
    next_owner: u64,
}

impl HealthChecker {
    /// Starts probing every backend of every target group with a health
    /// check, on `handle`'s runtime; health changes are told to `events`.
    /// Every backend starts presumed healthy ([`HealthState`]): a fresh
    /// gateway serves at once, and a backend's first failed probe takes it
    /// out.
    pub fn start(cfg: &Config, handle: Handle, events: &Events) -> HealthChecker {
        let (flips, rx) = mpsc::unbounded_channel();
        // Ends by itself when the checker and its probers are gone.
        handle.spawn(tell(rx, events.clone()));
        let mut checker = HealthChecker {
            handle,
            shared: Arc::default(),
            limit: Arc::new(Semaphore::new(MAX_PROBES_IN_FLIGHT)),
            flips,
            groups: HashMap::new(),
            probers: HashMap::new(),
            next_owner: 0,
        };
        checker.update(cfg);
        checker
    }

    /// Follows a new config, without waiting for any probe. Backends whose
    /// check is unchanged keep their state and their prober; a backend whose
    /// check changed keeps its state and is probed anew; a backend that left
    /// (or whose group lost its check) is forgotten.
    ///
    /// A new backend in a group that was checked already starts
    /// [`HealthState::initial`] (no new flows until it passes its checks),
    /// and a change is flagged so a snapshot without it is published; in a
    /// group that gains its health check every backend starts healthy.
    pub fn update(&mut self, cfg: &Config) {
        let now = Instant::now();
        let mut groups = HashMap::new();
        let mut wanted = HashMap::new();
        for g in &cfg.target_groups {
            let Some(check) = &g.health_check else {
                continue;
            };
            let since = *self.groups.get(&g.name).unwrap_or(&now);
            groups.insert(g.name.clone(), since);
            for b in &g.backends {
                let target = Target {
                    check: check.clone(),
                    addr: SocketAddr::new(b.address, check.port),
                    grace_until: since + check.startup_grace,
                };
                wanted.insert((g.name.clone(), backend_identity(b)), target);
            }
        }
        // Aborted, not waited for: a probe in flight just ends.
        self.probers.retain(|key, p| {
            let keep = wanted
                .get(key)
                .is_some_and(|t| t.check == p.check && t.addr == p.addr);
            if !keep {
                p.task.abort();
            }
            keep
        });
        let mut start = Vec::new();
        {
            let mut states = self.shared.lock();
            states.retain(|key, _| wanted.contains_key(key));
            for (key, target) in wanted {
                if self.probers.contains_key(&key) {
                    continue;
                }
                self.next_owner += 1;
                let owner = self.next_owner;
                let checked_before = self.groups.contains_key(&key.0);
                let entry = states.entry(key.clone()).or_insert_with(|| {
                    let state = if checked_before {
                        self.shared.changed.store(true, Ordering::Release);
                        HealthState::initial()
                    } else {
                        HealthState::default()
                    };
                    Entry {
                        state,
                        owner,
                        probed: false,
                    }
                });
                entry.owner = owner;
                entry.probed = false;
                start.push((key, target, owner));
            }
        }
        for (key, target, owner) in start {
            let prober = Prober {
                check: target.check.clone(),
                addr: target.addr,
                task: self.handle.spawn(watch(
                    key.clone(),
                    target,
                    owner,
                    self.shared.clone(),
                    self.limit.clone(),
                    self.flips.clone(),
                )),
            };
            self.probers.insert(key, prober);
        }
        self.groups = groups;
    }

    /// Whether it checks target group `group`.
    pub fn checks(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// Whether any backend changed state since the last call (a change is
    /// kept across [`HealthChecker::update`] until it is taken).
    pub fn take_changed(&self) -> bool {
        self.shared.changed.swap(false, Ordering::AcqRel)
    }

    /// Whether every checked backend's prober has finished a probe (passed
    /// or failed: its health is known, not presumed for want of an answer).
    pub fn first_round_done(&self) -> bool {
        self.shared.lock().values().all(|e| e.probed)
    }

    /// Waits until [`HealthChecker::first_round_done`], but not past
    /// `until` nor once `stop` is set; whether the round was done. Blocks
    /// the calling thread (the probes run on the runtime's).
    pub fn wait_first_round(&self, until: Instant, stop: &AtomicBool) -> bool {
        loop {
            if self.first_round_done() {
                return true;
            }
            let now = Instant::now();
            if now >= until || stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(5)));
        }
    }

    /// The health of every checked backend.
    pub fn states(&self) -> HashMap<BackendKey, HealthState> {
        self.shared
            .lock()
            .iter()
            .map(|(k, e)| (k.clone(), e.state))
            .collect()
    }

    /// Stops probing (probes in flight are aborted, not waited for);
    /// returns the last states.
    pub fn stop(self) -> HashMap<BackendKey, HealthState> {
        self.states()
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        for p in self.probers.values() {
            p.task.abort();
        }
    }
}

/// A health lookup over the checker's states. A backend without a state is
/// healthy unless its group is one the checker already checks (`checked`):
/// then it is new, not probed yet, and takes no new flows until it passes.
pub fn healthy_in<'a>(
    states: &'a HashMap<BackendKey, HealthState>,
    checked: &'a dyn Fn(&str) -> bool,
) -> impl Fn(&str, &Identity) -> bool + 'a {
    move |group, identity| match states.get(&(group.to_string(), *identity)) {
        Some(s) => s.healthy(),
        None => !checked(group),
    }
}

/// Probes `target` every interval, for ever (until aborted).
async fn watch(
    key: BackendKey,
    target: Target,
    owner: u64,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    flips: mpsc::UnboundedSender<Flip>,
) {
    let mut ticks = tokio::time::interval(target.check.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = match limit.acquire().await {
            Ok(_permit) => probe(target.addr, &target.check.probe, target.check.timeout).await,
            // Closed: never (the checker does not close it).
            Err(_) => return,
        };
        if let Err(e) = &result {
            tracing::debug!(group = %key.0, backend = %target.addr, error = %e, "probe failed");
        }
        if let Some(healthy) = shared.record(&key, owner, result.is_ok(), &target) {
            let _ = flips.send(Flip {
                group: key.0.clone(),
                backend: target.addr.ip(),
                healthy,
            });
        }
    }
}

/// Tells health changes, in order, as they come.
async fn tell(mut flips: mpsc::UnboundedReceiver<Flip>, events: Events) {
    while let Some(f) = flips.recv().await {
        let events = events.clone();
        // The sink may block (a slow stdout): not on the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || {
            let state = if f.healthy { "up" } else { "down" };
            tracing::warn!(group = %f.group, backend = %f.backend, state, "backend health changed");
            events.emit(Event::Health {
                group: f.group,
                backend: f.backend.to_string(),
                healthy: f.healthy,
            });
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnlb_lb::maglev::IDENTITY_LEN;

    #[test]
    fn unprobed_backends_of_checked_groups_take_no_new_flows() {
        let states = HashMap::new();
        let checked = |g: &str| g == "web";
        let h = healthy_in(&states, &checked);
        assert!(!h("web", &[1; IDENTITY_LEN]), "new in a checked group");
        assert!(h("db", &[1; IDENTITY_LEN]), "no health check: healthy");
    }
}

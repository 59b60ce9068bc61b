//! Active health checking of backends (slow path, its own threads).
//!
//! Each target group with a `[target_group.health_check]` gets a thread that
//! probes all of the group's backends once per interval (in parallel, each
//! probe bounded by the timeout) and feeds the results to a per-backend
//! state machine with healthy/unhealthy thresholds. Backends start healthy,
//! so a fresh gateway serves at once. A change of state is reported through
//! a flag the control loop polls; it then rebuilds the snapshot with the
//! unhealthy backends left out of the Maglev tables.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dnlb_config::{Config, HealthCheck, Probe};
use dnlb_lb::maglev::{backend_identity, Identity};

use super::events::{Event, Events};

/// A backend's key: target group name and identity.
pub type BackendKey = (String, Identity);

/// Health of one backend: pure, driven by probe results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthState {
    healthy: bool,
    /// Consecutive results disagreeing with `healthy`.
    streak: u8,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            healthy: true,
            streak: 0,
        }
    }
}

impl HealthState {
    /// A backend added to a checked group at run time: it takes no new
    /// flows until `healthy_threshold` probes in a row pass.
    pub fn initial() -> Self {
        HealthState {
            healthy: false,
            streak: 0,
        }
    }

    /// Whether the backend counts as healthy.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Records one probe result; returns true when the state flipped.
    pub fn record(&mut self, ok: bool, check: &HealthCheck) -> bool {
        if ok == self.healthy {
            self.streak = 0;
            return false;
        }
        self.streak = self.streak.saturating_add(1);
        let need = if ok {
            check.healthy_threshold
        } else {
            check.unhealthy_threshold
        };
        if self.streak >= need {
            self.healthy = ok;
            self.streak = 0;
            true
        } else {
            false
        }
    }
}

/// Runs one probe against `addr`; true if the backend answered as healthy
/// within `timeout`.
pub fn probe(addr: SocketAddr, probe: &Probe, timeout: Duration) -> bool {
    match probe {
        Probe::Tcp => TcpStream::connect_timeout(&addr, timeout).is_ok(),
        Probe::Http {
            path,
            expected_status,
        } => http_status(addr, path, timeout).is_some_and(|s| expected_status.contains(&s)),
        Probe::Udp { payload } => udp_reply(addr, payload, timeout),
    }
}

fn http_status(addr: SocketAddr, path: &str, timeout: Duration) -> Option<u16> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    let left = deadline.checked_duration_since(Instant::now())?;
    s.set_read_timeout(Some(left)).ok()?;
    s.set_write_timeout(Some(left)).ok()?;
    let host = match addr.ip() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: dnlb-health\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    // Read just the status line ("HTTP/1.1 200 ...").
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let line = std::str::from_utf8(&buf[..n]).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

fn udp_reply(addr: SocketAddr, payload: &[u8], timeout: Duration) -> bool {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let Ok(sock) = UdpSocket::bind(local) else {
        return false;
    };
    if sock.connect(addr).is_err() || sock.set_read_timeout(Some(timeout)).is_err() {
        return false;
    }
    if sock.send(payload).is_err() {
        return false;
    }
    let mut buf = [0u8; 1500];
    // A reply of any content is healthy; "port unreachable" shows up as an
    // error here, silence as a timeout.
    sock.recv(&mut buf).is_ok()
}

#[derive(Debug, Default)]
struct Shared {
    states: Mutex<HashMap<BackendKey, HealthState>>,
    changed: AtomicBool,
    stop: AtomicBool,
}

/// The running health checker.
#[derive(Debug)]
pub struct HealthChecker {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The target groups it checks.
    groups: HashSet<String>,
}

impl HealthChecker {
    /// Starts one thread per target group with a health check. `previous`
    /// carries states over a reload, and a change it saw that nobody took
    /// yet (a probe round that ended while it stopped), so that change is
    /// still published.
    ///
    /// Every checked backend has a state from the start: at the first start
    /// (no `previous`) and in a group that gains its health check, healthy,
    /// so a fresh gateway serves at once; a backend added later to a group
    /// that was already checked starts [`HealthState::initial`] and gets new
    /// flows only once it passes its checks.
    pub fn start(cfg: &Config, previous: Option<HealthChecker>, events: &Events) -> HealthChecker {
        let checked_before = previous
            .as_ref()
            .map(|p| p.groups.clone())
            .unwrap_or_default();
        let (mut states, mut changed) = previous.map(|p| p.stop_all()).unwrap_or_default();
        let mut groups = HashSet::new();
        for g in cfg
            .target_groups
            .iter()
            .filter(|g| g.health_check.is_some())
        {
            groups.insert(g.name.clone());
            for b in &g.backends {
                states
                    .entry((g.name.clone(), backend_identity(b)))
                    .or_insert_with(|| {
                        if checked_before.contains(&g.name) {
                            changed = true;
                            HealthState::initial()
                        } else {
                            HealthState::default()
                        }
                    });
            }
        }
        let shared = Arc::new(Shared {
            states: Mutex::new(states),
            changed: AtomicBool::new(changed),
            ..Shared::default()
        });
        let mut threads = Vec::new();
        for g in &cfg.target_groups {
            let Some(check) = g.health_check.clone() else {
                continue;
            };
            let targets: Vec<(BackendKey, SocketAddr)> = g
                .backends
                .iter()
                .map(|b| {
                    (
                        (g.name.clone(), backend_identity(b)),
                        SocketAddr::new(b.address, check.port),
                    )
                })
                .collect();
            let shared = shared.clone();
            let name = format!("dnlb-health-{}", g.name);
            let group = g.name.clone();
            let events = events.clone();
            let spawned = std::thread::Builder::new()
                .name(name)
                .spawn(move || run_group(&group, &check, &targets, &shared, &events));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    tracing::error!(group = %g.name, error = %e, "cannot start health checks")
                }
            }
        }
        HealthChecker {
            shared,
            threads,
            groups,
        }
    }

    /// Whether it checks target group `group`.
    pub fn checks(&self, group: &str) -> bool {
        self.groups.contains(group)
    }

    /// Whether any backend changed state since the last call.
    pub fn take_changed(&self) -> bool {
        self.shared.changed.swap(false, Ordering::AcqRel)
    }

    /// The health of every backend checked so far (absent: healthy).
    pub fn states(&self) -> HashMap<BackendKey, HealthState> {
        self.shared
            .states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the threads; returns the last states.
    pub fn stop(self) -> HashMap<BackendKey, HealthState> {
        self.stop_all().0
    }

    /// Stops the threads; returns the last states and whether a change is
    /// still untaken.
    fn stop_all(mut self) -> (HashMap<BackendKey, HealthState>, bool) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        (self.states(), self.take_changed())
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn run_group(
    group: &str,
    check: &HealthCheck,
    targets: &[(BackendKey, SocketAddr)],
    shared: &Shared,
    events: &Events,
) {
    while !shared.stop.load(Ordering::Relaxed) {
        let round = Instant::now();
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|(_, addr)| s.spawn(move || probe(*addr, &check.probe, check.timeout)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(false))
                .collect()
        });
        let mut flipped = Vec::new();
        {
            let mut states = shared.states.lock().unwrap_or_else(|e| e.into_inner());
            for ((key, addr), ok) in targets.iter().zip(results) {
                let st = states.entry(key.clone()).or_default();
                if st.record(ok, check) {
                    flipped.push((addr.ip(), st.healthy()));
                    shared.changed.store(true, Ordering::Release);
                }
            }
        }
        // Told after the lock is released: a slow sink never holds up the
        // control thread's reads of the states.
        for (backend, healthy) in flipped {
            let state = if healthy { "up" } else { "down" };
            tracing::warn!(group, %backend, state, "backend health changed");
            events.emit(Event::Health {
                group: group.to_string(),
                backend: backend.to_string(),
                healthy,
            });
        }
        // Sleep out the interval in small steps, to stop promptly.
        while round.elapsed() < check.interval && !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10).min(check.interval));
        }
    }
}

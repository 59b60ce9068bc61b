//! The BIRD worker: a thread of its own that keeps BIRD's view of this
//! gateway's VIPs equal to the wanted set, so the control thread never
//! waits on BIRD.
//!
//! The control thread only records what it wants ([`Announcer::set`]: the
//! latest set wins) and reads what happened ([`Announcer::status`]); both
//! take a lock the worker never holds across I/O. The worker writes the VIP
//! files and sends `configure`, each attempt bounded by the command
//! deadline; a failure is retried with back-off (1 s, doubling to 5 s) and
//! told at most once per 30 s after the first, with a count, and once more
//! when BIRD takes a change again.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use dnlb_config::Routing;

use super::super::events::{Event, Events};
use super::super::status::RoutesStatus;
use super::bird::BIRD_TIMEOUT;

/// The worker's deadlines and rates.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// One attempt (connect, greeting, `configure`, reply) takes at most this.
    pub command: Duration,
    /// The first retry after a failure waits this long...
    pub first_retry: Duration,
    /// ...doubling up to this.
    pub max_retry: Duration,
    /// After the first failure of a run, at most one warning this often.
    pub warn_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            command: BIRD_TIMEOUT,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(5),
            warn_every: Duration::from_secs(30),
        }
    }
}

impl Timing {
    /// How long to wait after the `n`th failure in a row (n >= 1).
    fn backoff(&self, n: u64) -> Duration {
        let doublings = n.saturating_sub(1).min(16) as u32;
        self.first_retry
            .saturating_mul(1 << doublings)
            .min(self.max_retry)
    }
}

/// What shutdown's withdrawal came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawal {
    /// BIRD took the empty set: keep forwarding this long while routers
    /// move the traffic away.
    Withdrawn(Duration),
    /// BIRD did not take it in time (why): the VIPs may still be announced.
    NotWithdrawn(String),
}

/// What the control thread and the worker share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled on every change of `state` (new wanted set, an attempt's
    /// outcome, stop).
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
struct State {
    /// What the control thread wants announced (the latest set).
    wanted: BTreeSet<IpAddr>,
    /// What BIRD last confirmed it took (`None`: nothing yet).
    announced: Option<BTreeSet<IpAddr>>,
    /// Whether BIRD and the VIP files are known to hold `announced`: false
    /// after a failed attempt, which may have rewritten the files (they are
    /// then written again even if the wanted set goes back to `announced`).
    synced: bool,
    /// Try now, whatever the back-off says (shutdown's withdrawal).
    urgent: bool,
    /// The worker is to end.
    stop: bool,
    /// No attempt before this (back-off after a failure).
    retry_at: Option<Instant>,
    /// The last attempt succeeded.
    up: bool,
    attempts: u64,
    failures: u64,
    consecutive_failures: u64,
    last_error: Option<(String, SystemTime)>,
    last_ok: Option<SystemTime>,
}

impl State {
    fn needs_work(&self) -> bool {
        !self.synced || self.announced.as_ref() != Some(&self.wanted)
    }

    fn withdrawn(&self) -> bool {
        self.wanted.is_empty() && !self.needs_work()
    }
}

/// What one attempt came to, to be told outside the lock.
enum Outcome {
    Announced {
        vips: Vec<String>,
        /// Failures in a row before this success.
        after_failures: u64,
    },
    Failed {
        error: String,
        /// Failures in a row, this one included.
        consecutive: u64,
    },
}

/// Keeps BIRD's view of this gateway's VIPs up to date, from a worker
/// thread of its own. Dropping it stops the worker (without waiting for an
/// attempt in progress, which ends by its deadline).
#[derive(Debug)]
pub struct Announcer {
    shared: Arc<Shared>,
    socket: String,
    withdraw_delay: Duration,
    thread: Option<JoinHandle<()>>,
}

impl Announcer {
    /// Starts the worker; it announces nothing until told what to, and
    /// tells what BIRD took (or did not) to `events`.
    pub fn start(cfg: Routing, events: Events) -> Self {
        Self::with_timing(cfg, events, Timing::default())
    }

    /// [`Announcer::start`] with other deadlines (tests).
    pub fn with_timing(cfg: Routing, events: Events, timing: Timing) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let socket = cfg.bird_socket.display().to_string();
        let withdraw_delay = cfg.withdraw_delay;
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("dnlb-bird".into())
            .spawn(move || work(&s, &cfg, &events, timing));
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "routes: cannot start the BIRD worker; VIPs are not announced");
                shared.lock().last_error = Some((
                    format!("cannot start the BIRD worker thread: {e}"),
                    SystemTime::now(),
                ));
                None
            }
        };
        Announcer {
            shared,
            socket,
            withdraw_delay,
            thread,
        }
    }

    /// The withdrawal delay on shutdown.
    pub fn withdraw_delay(&self) -> Duration {
        self.withdraw_delay
    }

    /// Wants exactly `vips` announced: recorded (the latest set wins) and
    /// handed to the worker; never waits for BIRD.
    pub fn set(&self, vips: BTreeSet<IpAddr>) {
        let mut st = self.shared.lock();
        if st.wanted != vips {
            st.wanted = vips;
            self.shared.changed.notify_all();
        }
    }

    /// BIRD's state as the worker last saw it; never waits for BIRD.
    pub fn status(&self) -> RoutesStatus {
        let st = self.shared.lock();
        let list =
            |s: &BTreeSet<IpAddr>| -> Vec<String> { s.iter().map(IpAddr::to_string).collect() };
        let at = |t: SystemTime| dnlb_config::time::from_system_time(t).to_string();
        RoutesStatus {
            bird_socket: self.socket.clone(),
            up: st.up,
            announced: st.announced.as_ref().map(list),
            wanted: list(&st.wanted),
            pending: st.needs_work(),
            attempts: st.attempts,
            failures: st.failures,
            consecutive_failures: st.consecutive_failures,
            last_error: st.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: st.last_error.as_ref().map(|(_, t)| at(*t)),
            last_ok_at: st.last_ok.map(at),
        }
    }

    /// Asks for every VIP to be withdrawn now (no back-off) and waits at
    /// most `within` for BIRD to take it.
    pub fn withdraw_all(&self, within: Duration) -> Withdrawal {
        let deadline = Instant::now() + within;
        let mut st = self.shared.lock();
        st.wanted.clear();
        st.urgent = true;
        self.shared.changed.notify_all();
        loop {
            if st.withdrawn() {
                return Withdrawal::Withdrawn(self.withdraw_delay);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.thread.is_none() {
                let why = match &st.last_error {
                    Some((e, _)) if !st.up => e.clone(),
                    _ => format!("BIRD did not take the withdrawal within {within:?}"),
                };
                return Withdrawal::NotWithdrawn(why);
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        // A worker between attempts ends at once; one in an attempt ends by
        // the command deadline, on its own (detached).
        if let Some(t) = self.thread.take() {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// The worker: waits for work, makes one attempt at a time, records and
/// tells its outcome, until stopped.
fn work(shared: &Shared, cfg: &Routing, events: &Events, timing: Timing) {
    let mut log = FailureLog::default();
    while let Some(target) = next_attempt(shared) {
        let result = super::apply(cfg, &target, timing.command);
        let Some(outcome) = record(shared, target, result.map_err(|e| e.to_string()), &timing)
        else {
            return;
        };
        tell(events, &mut log, outcome, &timing);
    }
}

/// Waits until there is something to do and the back-off allows it;
/// returns the set to apply (`None`: stop).
fn next_attempt(shared: &Shared) -> Option<BTreeSet<IpAddr>> {
    let mut st = shared.lock();
    loop {
        if st.stop {
            return None;
        }
        if st.needs_work() {
            let now = Instant::now();
            match st.retry_at {
                Some(t) if t > now && !st.urgent => {
                    st = shared
                        .changed
                        .wait_timeout(st, t - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                _ => {
                    st.urgent = false;
                    st.attempts += 1;
                    return Some(st.wanted.clone());
                }
            }
        } else {
            st = shared
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Records an attempt's result; `None` when the worker is to stop (nothing
/// more is told after that).
fn record(
    shared: &Shared,
    target: BTreeSet<IpAddr>,
    result: Result<(), String>,
    timing: &Timing,
) -> Option<Outcome> {
    let mut st = shared.lock();
    if st.stop {
        return None;
    }
    let outcome = match result {
        Ok(()) => {
            let after_failures = std::mem::take(&mut st.consecutive_failures);
            let vips = target.iter().map(IpAddr::to_string).collect();
            st.announced = Some(target);
            st.synced = true;
            st.up = true;
            st.retry_at = None;
            st.last_ok = Some(SystemTime::now());
            Outcome::Announced {
                vips,
                after_failures,
            }
        }
        Err(error) => {
            st.synced = false;
            st.up = false;
            st.failures += 1;
            st.consecutive_failures += 1;
            st.retry_at = Some(Instant::now() + timing.backoff(st.consecutive_failures));
            st.last_error = Some((error.clone(), SystemTime::now()));
            Outcome::Failed {
                error,
                consecutive: st.consecutive_failures,
            }
        }
    };
    shared.changed.notify_all();
    Some(outcome)
}

/// Rate-limits what a run of failures tells: its first failure, then at
/// most one line per `warn_every`.
#[derive(Debug, Default)]
struct FailureLog {
    last_told: Option<Instant>,
    /// Failures since the last line.
    untold: u64,
}

impl FailureLog {
    /// Whether to tell this failure (the `consecutive`th in a row); with
    /// how many failures the line stands for.
    fn failed(&mut self, consecutive: u64, now: Instant, every: Duration) -> Option<u64> {
        self.untold += 1;
        let due = consecutive == 1 || !matches!(self.last_told, Some(t) if now - t < every);
        if !due {
            return None;
        }
        self.last_told = Some(now);
        Some(std::mem::take(&mut self.untold))
    }

    fn recovered(&mut self) {
        *self = FailureLog::default();
    }
}

/// Logs an outcome and tells it as an event (failures rate-limited).
fn tell(events: &Events, log: &mut FailureLog, outcome: Outcome, timing: &Timing) {
    match outcome {
        Outcome::Announced {
            vips,
            after_failures,
        } => {
            if after_failures > 0 {
                tracing::info!(
                    failures = after_failures,
                    "routes: BIRD recovered and took the change"
                );
                log.recovered();
            }
            tracing::info!(vips = ?vips, "routes: BIRD announces");
            events.emit(Event::RoutesAnnounced { vips });
        }
        Outcome::Failed { error, consecutive } => {
            let Some(told) = log.failed(consecutive, Instant::now(), timing.warn_every) else {
                return;
            };
            if consecutive == 1 {
                tracing::warn!(error = %error, "routes: BIRD did not take the change; retrying with back-off");
            } else {
                tracing::warn!(
                    error = %error,
                    failures = consecutive,
                    since_last_warning = told,
                    "routes: BIRD still does not take the change; retrying"
                );
            }
            events.emit(Event::RoutesFailed {
                error,
                failures: consecutive,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn routing(dir: &Path) -> Routing {
        Routing {
            bird_socket: dir.join("bird.ctl"),
            vips4_file: Some(dir.join("vips4.conf")),
            vips6_file: Some(dir.join("vips6.conf")),
            withdraw_delay: Duration::from_millis(300),
        }
    }

    fn vips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// Polls `f` until it holds (a generous deadline: a slow machine slows
    /// the test, it does not fail it).
    fn until(what: &str, f: impl Fn() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A BIRD that answers `configure` (or refuses it while `refuse`).
    struct FakeBird {
        stop: Arc<AtomicBool>,
        refuse: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl FakeBird {
        fn start(path: &Path) -> FakeBird {
            let l = UnixListener::bind(path).unwrap();
            l.set_nonblocking(true).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let refuse = Arc::new(AtomicBool::new(false));
            let (st, rf) = (stop.clone(), refuse.clone());
            let thread = std::thread::spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    let Ok((mut s, _)) = l.accept() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    s.set_nonblocking(false).unwrap();
                    let _ = s.write_all(b"0001 BIRD 2.0.12 ready.\n");
                    let mut line = String::new();
                    let _ = BufReader::new(&s).read_line(&mut line);
                    let reply: &[u8] = if rf.load(Ordering::Relaxed) {
                        b"8002 Reconfiguration rejected\n"
                    } else {
                        b"0003 Reconfigured\n"
                    };
                    let _ = s.write_all(reply);
                }
            });
            FakeBird {
                stop,
                refuse,
                thread: Some(thread),
            }
        }
    }

    impl Drop for FakeBird {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn recording() -> (Events, Arc<Mutex<Vec<Event>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (Events::to(move |e| s.lock().unwrap().push(e.clone())), seen)
    }

    fn failed_events(seen: &Mutex<Vec<Event>>) -> usize {
        let seen = seen.lock().unwrap();
        seen.iter()
            .filter(|e| matches!(e, Event::RoutesFailed { .. }))
            .count()
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn set_and_status_return_at_once_while_bird_hangs_and_shutdown_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = routing(dir.path());
        // Listens and never accepts nor answers: every attempt hangs until
        // the command deadline, here far longer than anything below.
        let _mute = UnixListener::bind(&cfg.bird_socket).unwrap();
        let timing = Timing {
            command: Duration::from_secs(120),
            ..Timing::default()
        };
        let a = Announcer::with_timing(cfg, Events::default(), timing);
        a.set(vips(&["192.0.2.10"]));
        until("the worker is in an attempt", || a.status().attempts == 1);
        let start = Instant::now();
        a.set(vips(&["192.0.2.10", "192.0.2.11"]));
        let s = a.status();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "set/status waited on BIRD"
        );
        assert_eq!(s.wanted, ["192.0.2.10", "192.0.2.11"]);
        assert!(s.pending);
        assert_eq!(s.announced, None);
        assert!(!s.up);
        let start = Instant::now();
        let w = a.withdraw_all(Duration::from_millis(500));
        assert_eq!(
            w,
            Withdrawal::NotWithdrawn("BIRD did not take the withdrawal within 500ms".into())
        );
        drop(a);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "withdrawal and stop waited on BIRD"
        );
    }

    #[test]
    fn failures_back_off_are_told_once_and_recovery_converges() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = routing(dir.path());
        let (events, seen) = recording();
        let timing = Timing {
            first_retry: Duration::from_millis(10),
            max_retry: Duration::from_millis(40),
            warn_every: Duration::from_secs(3600),
            ..Timing::default()
        };
        let a = Announcer::with_timing(cfg.clone(), events, timing);
        // No BIRD yet: retried, told once.
        a.set(vips(&["192.0.2.10", "2001:db8::10"]));
        until("five failures", || a.status().failures >= 5);
        let s = a.status();
        assert!(!s.up && s.pending, "{s:?}");
        assert!(s.consecutive_failures >= 5, "{s:?}");
        assert!(
            s.last_error
                .as_deref()
                .unwrap()
                .starts_with("BIRD control socket"),
            "{s:?}"
        );
        assert!(s.last_error_at.is_some());
        assert_eq!(failed_events(&seen), 1, "one event for a run of failures");
        // The files were written by every attempt anyway.
        assert!(read(cfg.vips4_file.as_ref().unwrap()).contains("route 192.0.2.10/32 blackhole;"));

        let _bird = FakeBird::start(&cfg.bird_socket);
        until("BIRD took the set", || !a.status().pending);
        let s = a.status();
        assert!(s.up, "{s:?}");
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(
            s.announced.as_deref(),
            Some(&["192.0.2.10".to_string(), "2001:db8::10".to_string()][..])
        );
        assert_eq!(s.attempts, s.failures + 1, "{s:?}");
        assert!(s.last_ok_at.is_some());
        let last = seen.lock().unwrap().last().cloned();
        assert_eq!(
            last,
            Some(Event::RoutesAnnounced {
                vips: vec!["192.0.2.10".into(), "2001:db8::10".into()]
            })
        );
        assert!(
            read(cfg.vips6_file.as_ref().unwrap()).contains("route 2001:db8::10/128 blackhole;")
        );

        // Shutdown: the empty set, taken; the files say so.
        assert_eq!(
            a.withdraw_all(Duration::from_secs(60)),
            Withdrawal::Withdrawn(Duration::from_millis(300))
        );
        assert!(!read(cfg.vips4_file.as_ref().unwrap()).contains("route"));
        assert!(!read(cfg.vips6_file.as_ref().unwrap()).contains("route"));
    }

    #[test]
    fn files_a_failed_attempt_rewrote_are_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = routing(dir.path());
        let bird = FakeBird::start(&cfg.bird_socket);
        let timing = Timing {
            first_retry: Duration::from_millis(10),
            max_retry: Duration::from_millis(20),
            ..Timing::default()
        };
        let a = Announcer::with_timing(cfg.clone(), Events::default(), timing);
        let v4 = cfg.vips4_file.clone().unwrap();
        a.set(vips(&["192.0.2.10"]));
        until("announced", || !a.status().pending);
        // BIRD refuses the next change, which the files already hold...
        bird.refuse.store(true, Ordering::Relaxed);
        a.set(vips(&["192.0.2.10", "192.0.2.11"]));
        until("a refusal", || a.status().failures >= 1);
        assert!(read(&v4).contains("192.0.2.11"));
        // ...and the wanted set goes back to what BIRD has: the files are
        // still rewritten (and BIRD told), not left saying .11.
        a.set(vips(&["192.0.2.10"]));
        let s = a.status();
        assert!(s.pending, "BIRD has .10 but the files say .11: {s:?}");
        bird.refuse.store(false, Ordering::Relaxed);
        until("in sync", || !a.status().pending);
        assert!(!read(&v4).contains("192.0.2.11"), "{}", read(&v4));
        assert!(a.status().up);
    }

    #[test]
    fn back_off_doubles_to_its_cap_and_warnings_are_rate_limited() {
        let t = Timing::default();
        let waits: Vec<u64> = (1..=6).map(|n| t.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5, 5]);
        assert_eq!(t.backoff(u64::MAX), Duration::from_secs(5));

        let mut log = FailureLog::default();
        let t0 = Instant::now();
        let every = Duration::from_secs(30);
        assert_eq!(log.failed(1, t0, every), Some(1), "the first is told");
        assert_eq!(log.failed(2, t0 + Duration::from_secs(1), every), None);
        assert_eq!(log.failed(3, t0 + Duration::from_secs(29), every), None);
        assert_eq!(
            log.failed(4, t0 + Duration::from_secs(30), every),
            Some(3),
            "then one line for the three since"
        );
        log.recovered();
        assert_eq!(log.failed(1, t0 + Duration::from_secs(31), every), Some(1));
    }
}

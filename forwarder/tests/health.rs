//! Health checks against real servers on loopback: TCP, HTTP and UDP
//! services go down and come back, and the checker sees it; a trickling
//! target fails at the probe's deadline; reloads never wait for a probe;
//! states are kept, restarted or forgotten as the config changes; the
//! start-up grace; a backend presumed healthy at start goes down at its
//! first failed probe; the first round of probes; bounded probes; probes
//! without file descriptors. Tests
//! wait for each state with a generous deadline; they never assert how fast,
//! except that a config update returns within 200 ms (the bound on
//! control-thread time per reload).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use dnlb_config::Probe;
use dnlb_forwarder::control::health::{
    first_round_budget, probe, HealthChecker, HealthState, ProbeError, FIRST_ROUND_SLACK,
    MAX_PROBES_IN_FLIGHT,
};
use dnlb_forwarder::control::runtime::start as control_runtime;
use dnlb_forwarder::control::{Event, Events};
use rusty_fork::rusty_fork_test;

mod common;

/// A `[[target_group]]` named `name` with a health check (`check`: the
/// keys after `[target_group.health_check]`) and backends at `addrs`.
fn group(name: &str, check: &str, addrs: &[&str]) -> String {
    let mut t =
        format!("[[target_group]]\nname = \"{name}\"\n[target_group.health_check]\n{check}");
    for a in addrs {
        t += &format!("[[target_group.backend]]\naddress = \"{a}\"\ntunnel = \"ipip\"\n");
    }
    t
}

/// A config with `groups` (no listeners: the checker needs none).
fn config_of(groups: &[String]) -> dnlb_config::Config {
    let text = format!(
        "[gateway]\nname = \"h\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n{}",
        groups.concat()
    );
    dnlb_config::parse(Path::new("health.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

/// Check keys: `kind` probe on `port`, 50 ms interval, 40 ms timeout,
/// thresholds 2, and `extra`.
fn fast(kind: &str, port: u16, extra: &str) -> String {
    format!(
        "type = \"{kind}\"\nport = {port}\ninterval_ms = 50\ntimeout_ms = 40\n\
         healthy_threshold = 2\nunhealthy_threshold = 2\n{extra}"
    )
}

fn config(tcp: u16, http: u16, udp: u16) -> dnlb_config::Config {
    config_of(&[
        group("tcp", &fast("tcp", tcp, ""), &["127.0.0.1"]),
        group(
            "http",
            &fast(
                "http",
                http,
                "path = \"/healthz\"\nexpected_status = [200]\n",
            ),
            &["127.0.0.1"],
        ),
        group(
            "udp",
            &fast("udp", udp, "udp_payload = \"are you there\"\n"),
            &["127.0.0.1"],
        ),
    ])
}

/// Stops a server thread when dropped.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn spawn(f: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        Server {
            stop,
            thread: Some(std::thread::spawn(move || f(s))),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accepts connections on `l` until stopped, handing each to `f`.
fn accept_loop(l: TcpListener, stop: &AtomicBool, mut f: impl FnMut(TcpStream)) {
    l.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                f(s)
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// An HTTP server answering every request with the current status; it
/// keeps every request's head.
struct Http {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    _server: Server,
}

impl Http {
    fn start(ip: &str, port: u16, status: Arc<AtomicU16>) -> Http {
        let l = TcpListener::bind((ip, port)).unwrap();
        let port = l.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let server = Server::spawn(move |stop| {
            accept_loop(l, &stop, |mut s| {
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let mut head = Vec::new();
                let mut buf = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let code = status.load(Ordering::Relaxed);
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            })
        });
        Http {
            port,
            heads,
            _server: server,
        }
    }

    fn requests(&self) -> usize {
        self.heads.lock().unwrap().len()
    }
}

/// A UDP server echoing datagrams.
struct Udp {
    port: u16,
    _server: Server,
}

impl Udp {
    fn start(port: u16) -> Udp {
        let s = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let port = s.local_addr().unwrap().port();
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let server = Server::spawn(move |stop| {
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(&buf[..n], from);
                }
            }
        });
        Udp {
            port,
            _server: server,
        }
    }
}

/// An HTTP "server" that answers every connection one byte per 100 ms, for
/// ever: a status line that would say 200, then a header that never ends.
fn trickling_http() -> (u16, Server) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = Server::spawn(move |stop| {
        accept_loop(l, &stop.clone(), |mut s| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Answer only once the request is in (an answer before the
                // request is a protocol error to the client, not a trickle).
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let bytes = b"HTTP/1.1 200 OK\r\nX-Slow: "
                    .iter()
                    .chain(std::iter::repeat(&b'a'));
                for b in bytes {
                    if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        })
    });
    (port, server)
}

/// Waits (up to [`common::EVENT_DEADLINE`]) until `cond` holds.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < common::EVENT_DEADLINE, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The health of `group`'s backend at `addr`, if it has a state.
fn healthy(checker: &HealthChecker, group: &str, addr: &str) -> Option<bool> {
    let b = dnlb_config::Backend {
        address: addr.parse().unwrap(),
        port: 0,
        kind: dnlb_config::BackendKind::Vm,
        weight: 100,
        zone: None,
        rack: None,
        tunnel: dnlb_config::Tunnel::IpIp,
        drain_until: None,
    };
    checker
        .states()
        .get(&(group.to_string(), dnlb_lb::maglev::backend_identity(&b)))
        .map(|s| s.healthy())
}

/// Waits until `group`'s backend at `addr` has that health.
fn wait_health(checker: &HealthChecker, group: &str, addr: &str, want: bool) {
    wait_for(&format!("{group} {addr} healthy={want}"), || {
        healthy(checker, group, addr) == Some(want)
    });
}

#[test]
fn tcp_http_and_udp_backends_going_down_and_up_are_seen() {
    let rt = control_runtime().unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let status = Arc::new(AtomicU16::new(200));
    let http = Http::start("127.0.0.1", 0, status.clone());
    let udp = Udp::start(0);
    let checker = HealthChecker::start(
        &config(tcp_port, http.port, udp.port),
        rt.handle().clone(),
        &Events::default(),
    );

    // All up: rounds of successes keep them healthy.
    wait_for("a few HTTP probes", || http.requests() >= 3);
    for g in ["tcp", "http", "udp"] {
        wait_health(&checker, g, "127.0.0.1", true);
    }
    assert!(!checker.take_changed(), "nothing changed yet");
    let head = http.heads.lock().unwrap()[0].to_lowercase();
    assert!(head.starts_with("get /healthz http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nhost: 127.0.0.1:{}\r\n", http.port)),
        "{head}"
    );

    // Down: listener closed, HTTP answers 503, UDP server gone.
    drop(tcp);
    status.store(503, Ordering::Relaxed);
    let udp_port = udp.port;
    drop(udp);
    for g in ["tcp", "http", "udp"] {
        wait_health(&checker, g, "127.0.0.1", false);
    }
    assert!(checker.take_changed());

    // Up again.
    let _tcp = TcpListener::bind(("127.0.0.1", tcp_port)).unwrap();
    status.store(200, Ordering::Relaxed);
    let _udp = Udp::start(udp_port);
    for g in ["tcp", "http", "udp"] {
        wait_health(&checker, g, "127.0.0.1", true);
    }
    assert!(checker.take_changed());
    // An HTTP server that is gone entirely is down too.
    drop(http);
    wait_health(&checker, "http", "127.0.0.1", false);
    let states = checker.stop();
    assert_eq!(states.len(), 3);
}

#[test]
fn thresholds_need_consecutive_results() {
    let cfg = config(1, 2, 3);
    let check = cfg.target_groups[0].health_check.clone().unwrap();
    let mut s = HealthState::default();
    assert!(s.healthy());
    assert!(!s.record(true, &check)); // confirmed: thresholds apply
    assert!(!s.record(false, &check));
    assert!(!s.record(true, &check)); // streak broken
    assert!(!s.record(false, &check));
    assert!(s.record(false, &check)); // two in a row: down
    assert!(!s.healthy());
    assert!(!s.record(true, &check));
    assert!(s.record(true, &check));
    assert!(s.healthy());
}

#[test]
fn probes_say_why_they_failed_and_send_host_with_ipv6_brackets() {
    let rt = control_runtime().unwrap();
    let http = |path: &str| Probe::Http {
        path: path.into(),
        expected_status: vec![200],
    };
    let long = Duration::from_secs(10);
    // IPv6: Host is "[::1]:port".
    let status = Arc::new(AtomicU16::new(204));
    let v6 = Http::start("::1", 0, status.clone());
    let addr: SocketAddr = ([0u16, 0, 0, 0, 0, 0, 0, 1], v6.port).into();
    let r = rt.block_on(probe(addr, &http("/x?y=1"), long));
    assert!(matches!(r, Err(ProbeError::Status(204))), "{r:?}");
    status.store(200, Ordering::Relaxed);
    let r = rt.block_on(probe(addr, &http("/x?y=1"), long));
    assert!(r.is_ok(), "{r:?}");
    let head = v6.heads.lock().unwrap()[0].to_lowercase();
    assert!(head.starts_with("get /x?y=1 http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nhost: [::1]:{}\r\n", v6.port)),
        "{head}"
    );
    // UDP to a closed port: the ICMP port unreachable is the answer.
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let r = rt.block_on(probe(
        addr,
        &Probe::Udp {
            payload: b"x".to_vec(),
        },
        long,
    ));
    assert!(
        matches!(&r, Err(ProbeError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{r:?}"
    );
}

#[test]
fn a_trickling_http_target_fails_at_the_probe_deadline() {
    let rt = control_runtime().unwrap();
    let (port, _server) = trickling_http();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // Every byte comes well within the timeout; the whole answer never does.
    let timeout = Duration::from_millis(300);
    let p = Probe::Http {
        path: "/".into(),
        expected_status: vec![200],
    };
    let r = rt.block_on(probe(addr, &p, timeout));
    assert!(
        matches!(r, Err(ProbeError::Timeout(t)) if t == timeout),
        "{r:?}"
    );
    // The checker takes it down after its threshold.
    let check = "type = \"http\"\nport = PORT\ninterval_ms = 500\ntimeout_ms = 300\n\
                 healthy_threshold = 2\nunhealthy_threshold = 2\n"
        .replace("PORT", &port.to_string());
    let cfg = config_of(&[group("slow", &check, &["127.0.0.1"])]);
    let checker = HealthChecker::start(&cfg, rt.handle().clone(), &Events::default());
    wait_health(&checker, "slow", "127.0.0.1", false);
}

#[test]
fn reloads_never_wait_for_a_probe_in_flight() {
    let rt = control_runtime().unwrap();
    let (slow_port, _server) = trickling_http();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    // Two versions of the trickling group's check (the path differs), so
    // every update restarts its prober while a probe is in flight.
    let cfg = |path: &str| {
        let check = format!(
            "type = \"http\"\nport = {slow_port}\npath = \"{path}\"\ninterval_ms = 1000\ntimeout_ms = 900\n\
             healthy_threshold = 2\nunhealthy_threshold = 2\n"
        );
        config_of(&[
            group("slow", &check, &["127.0.0.1", "127.0.0.2"]),
            group("tcp", &fast("tcp", tcp_port, ""), &["127.0.0.1"]),
        ])
    };
    let (a, b) = (cfg("/a"), cfg("/b"));
    let mut checker = HealthChecker::start(&a, rt.handle().clone(), &Events::default());
    let mut longest = Duration::ZERO;
    for i in 0..50 {
        // A probe of the trickling target is in flight by now.
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        checker.update(if i % 2 == 0 { &b } else { &a });
        longest = longest.max(started.elapsed());
    }
    assert!(
        longest < Duration::from_millis(200),
        "an update took {longest:?}"
    );
    // And the checker still works: the trickling target goes down, the TCP
    // one stays up.
    wait_health(&checker, "slow", "127.0.0.1", false);
    wait_health(&checker, "slow", "127.0.0.2", false);
    wait_health(&checker, "tcp", "127.0.0.1", true);
}

/// A TCP-checked group `web` with backends at `addrs` (all probed on
/// `port`), and a group `later`, TCP-checked if `later_checked`.
fn added_config(addrs: &[&str], port: u16, later_checked: bool) -> dnlb_config::Config {
    let mut later = "[[target_group]]\nname = \"later\"\n".to_string();
    if later_checked {
        later += &format!("[target_group.health_check]\n{}", fast("tcp", port, ""));
    }
    later += "[[target_group.backend]]\naddress = \"127.0.0.9\"\ntunnel = \"ipip\"\n";
    config_of(&[group("web", &fast("tcp", port, ""), addrs), later])
}

#[test]
fn a_backend_added_at_run_time_takes_flows_only_once_it_passes() {
    let rt = control_runtime().unwrap();
    // 127.0.0.1 and 127.0.0.2 listen on the probed port; 127.0.0.3 does not.
    // 127.0.0.9 (`later`'s) does too: its probes pass, so its state, which
    // starts healthy, cannot have flipped by the time the test reads it (it
    // did once in CI when nothing listened: two refused probes 50 ms apart
    // came before a loaded machine ran the assertion).
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l1.local_addr().unwrap().port();
    let _l2 = TcpListener::bind(("127.0.0.2", port)).unwrap();
    let _l9 = TcpListener::bind(("127.0.0.9", port)).unwrap();
    let mut checker = HealthChecker::start(
        &added_config(&["127.0.0.1"], port, false),
        rt.handle().clone(),
        &Events::default(),
    );
    // At the first start every backend is healthy at once.
    assert_eq!(healthy(&checker, "web", "127.0.0.1"), Some(true));
    assert_eq!(healthy(&checker, "later", "127.0.0.9"), None, "unchecked");
    assert!(!checker.take_changed());
    // A reload adds two backends to the checked group and a check to `later`.
    checker.update(&added_config(
        &["127.0.0.1", "127.0.0.2", "127.0.0.3"],
        port,
        true,
    ));
    assert_eq!(
        healthy(&checker, "web", "127.0.0.2"),
        Some(false),
        "new: not yet"
    );
    assert_eq!(healthy(&checker, "web", "127.0.0.3"), Some(false));
    assert_eq!(
        healthy(&checker, "web", "127.0.0.1"),
        Some(true),
        "kept its state"
    );
    assert_eq!(
        healthy(&checker, "later", "127.0.0.9"),
        Some(true),
        "a group that gains its check starts healthy"
    );
    assert!(
        checker.take_changed(),
        "a snapshot without the new ones is due"
    );
    // The one that answers comes up after its threshold; the other stays out.
    wait_health(&checker, "web", "127.0.0.2", true);
    assert_eq!(healthy(&checker, "web", "127.0.0.3"), Some(false));
    // A group that loses its check forgets its states.
    checker.update(&added_config(&["127.0.0.1"], port, false));
    assert_eq!(healthy(&checker, "later", "127.0.0.9"), None);
    assert!(!checker.checks("later"));
    drop(l1);
}

#[test]
fn a_removed_and_re_added_backend_starts_unhealthy() {
    let rt = control_runtime().unwrap();
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l1.local_addr().unwrap().port();
    let l2 = TcpListener::bind(("127.0.0.2", port)).unwrap();
    let both = added_config(&["127.0.0.1", "127.0.0.2"], port, false);
    let mut checker = HealthChecker::start(&both, rt.handle().clone(), &Events::default());
    assert_eq!(healthy(&checker, "web", "127.0.0.2"), Some(true));
    // Its target stops answering and it leaves: its state is forgotten...
    drop(l2);
    checker.update(&added_config(&["127.0.0.1"], port, false));
    assert_eq!(healthy(&checker, "web", "127.0.0.2"), None, "pruned");
    // ... so back at the same address it is new: no flows until it passes.
    checker.update(&both);
    assert_eq!(healthy(&checker, "web", "127.0.0.2"), Some(false));
    assert!(checker.take_changed());
    // It fails its probes and stays out, while its neighbour keeps serving.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(healthy(&checker, "web", "127.0.0.2"), Some(false));
    assert_eq!(healthy(&checker, "web", "127.0.0.1"), Some(true));
    // Its target answers again: it comes up by passing probes.
    let _l2 = TcpListener::bind(("127.0.0.2", port)).unwrap();
    wait_health(&checker, "web", "127.0.0.2", true);
    drop(l1);
}

#[test]
fn unchanged_checks_keep_their_probers_and_changed_checks_restart() {
    let rt = control_runtime().unwrap();
    // `steady`: probed once a minute, so a prober restarted would probe
    // again at once. `moved`: its check points at a closed port first.
    let steady = Http::start("127.0.0.1", 0, Arc::new(AtomicU16::new(200)));
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let steady_check = format!(
        "type = \"http\"\nport = {}\ninterval_ms = 60000\ntimeout_ms = 2000\n",
        steady.port
    );
    let cfg = |moved_port: u16, extra: &str| {
        config_of(&[
            group("steady", &steady_check, &["127.0.0.1"]),
            group("moved", &fast("tcp", moved_port, ""), &["127.0.0.1"]),
            group(
                "other",
                &fast("tcp", open_port, extra),
                &["127.0.0.1", "127.0.0.2"],
            ),
        ])
    };
    let mut checker = HealthChecker::start(
        &cfg(closed_port, ""),
        rt.handle().clone(),
        &Events::default(),
    );
    wait_for("steady's first probe", || steady.requests() == 1);
    wait_health(&checker, "moved", "127.0.0.1", false);
    wait_health(&checker, "other", "127.0.0.2", false);
    // Updates that change only `other`: `steady` is not probed again and
    // `moved` stays down (its state is kept, not restarted as healthy).
    for i in 0..5 {
        let grace = format!("startup_grace_ms = {}\n", 10 + i);
        checker.update(&cfg(closed_port, &grace));
        assert_eq!(healthy(&checker, "moved", "127.0.0.1"), Some(false));
        assert_eq!(healthy(&checker, "other", "127.0.0.2"), Some(false));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(steady.requests(), 1, "steady's prober was restarted");
    assert_eq!(healthy(&checker, "steady", "127.0.0.1"), Some(true));
    // `moved`'s check changes: its prober restarts with the new port, and
    // its kept state (down) comes up by passing probes there.
    checker.update(&cfg(open_port, ""));
    assert_eq!(healthy(&checker, "moved", "127.0.0.1"), Some(false));
    wait_health(&checker, "moved", "127.0.0.1", true);
    assert_eq!(steady.requests(), 1, "steady's prober was restarted");
    drop(open);
}

#[test]
fn failing_backends_stay_up_during_the_startup_grace() {
    let rt = control_runtime().unwrap();
    let failing = Http::start("127.0.0.1", 0, Arc::new(AtomicU16::new(503)));
    let grace = Duration::from_secs(5);
    let check = fast(
        "http",
        failing.port,
        &format!("startup_grace_ms = {}\n", grace.as_millis()),
    );
    let started = Instant::now();
    let checker = HealthChecker::start(
        &config_of(&[group("web", &check, &["127.0.0.1"])]),
        rt.handle().clone(),
        &Events::default(),
    );
    // More failed probes than the threshold, within the grace: still up.
    wait_for("4 failed probes", || failing.requests() >= 4);
    let up = healthy(&checker, "web", "127.0.0.1");
    assert!(
        started.elapsed() < grace,
        "the machine is too slow for this test: 4 probes took over {grace:?}"
    );
    assert_eq!(up, Some(true), "taken down during the grace");
    assert!(!checker.take_changed());
    // After the grace, failures count: down.
    wait_health(&checker, "web", "127.0.0.1", false);
    assert!(started.elapsed() >= grace);
    assert!(checker.take_changed());
}

#[test]
fn a_dead_backend_is_down_at_its_first_failed_probe_after_start() {
    let rt = control_runtime().unwrap();
    let failing = Http::start("127.0.0.1", 0, Arc::new(AtomicU16::new(503)));
    let working = Http::start("127.0.0.1", 0, Arc::new(AtomicU16::new(200)));
    // Probes 10 s apart, 3 failures in a row to go down once confirmed.
    let slow = |port| {
        format!(
            "type = \"http\"\nport = {port}\ninterval_ms = 10000\ntimeout_ms = 2000\n\
             healthy_threshold = 2\nunhealthy_threshold = 3\n"
        )
    };
    let checker = HealthChecker::start(
        &config_of(&[
            group("dead", &slow(failing.port), &["127.0.0.1"]),
            group("live", &slow(working.port), &["127.0.0.1"]),
        ]),
        rt.handle().clone(),
        &Events::default(),
    );
    wait_health(&checker, "dead", "127.0.0.1", false);
    // One failed probe did it (the threshold would have needed three, 20 s
    // apart at least).
    assert!(
        failing.requests() < 3,
        "{} probes before down",
        failing.requests()
    );
    assert!(checker.take_changed());
    // The working one was confirmed by its first probe and stays up.
    wait_for("the live backend probed", || working.requests() >= 1);
    assert!(checker.wait_first_round(
        Instant::now() + common::EVENT_DEADLINE,
        &AtomicBool::new(false)
    ));
    assert_eq!(healthy(&checker, "live", "127.0.0.1"), Some(true));
    let states = checker.stop();
    assert!(states.values().all(|s| !s.presumed()), "{states:?}");
}

#[test]
fn the_first_round_ends_when_every_backend_answered_or_failed() {
    let rt = control_runtime().unwrap();
    let (port, accepted, _peak, _server) = holding_server("0.0.0.0:0");
    let working = Http::start("127.0.0.1", 0, Arc::new(AtomicU16::new(200)));
    // The holding server never answers: its probe fails at the deadline.
    let hold = format!("type = \"http\"\nport = {port}\ninterval_ms = 60000\ntimeout_ms = 3000\n");
    let cfg = config_of(&[
        group("held", &hold, &["127.0.0.1"]),
        group("live", &fast("http", working.port, ""), &["127.0.0.1"]),
    ]);
    // One wave of probes: the longest deadline plus the slack.
    assert_eq!(
        first_round_budget(&cfg),
        Duration::from_secs(3) + FIRST_ROUND_SLACK
    );
    let started = Instant::now();
    let checker = HealthChecker::start(&cfg, rt.handle().clone(), &Events::default());
    wait_for("the held probe connected", || {
        accepted.load(Ordering::Relaxed) >= 1
    });
    // While the held probe waits for its answer, the round is not done,
    // whatever the other backend said; a stop ends the wait at once.
    let no_stop = AtomicBool::new(false);
    let held_open =
        !checker.wait_first_round(Instant::now() + Duration::from_millis(200), &no_stop);
    let stopped = !checker.wait_first_round(
        Instant::now() + common::EVENT_DEADLINE,
        &AtomicBool::new(true),
    );
    if started.elapsed() < Duration::from_secs(3) {
        assert!(held_open, "the round ended before the held probe did");
        assert!(stopped, "the round ended before the held probe did");
    }
    assert!(checker.wait_first_round(Instant::now() + common::EVENT_DEADLINE, &no_stop));
    // Failed at its deadline: presumed healthy no more, down.
    assert_eq!(healthy(&checker, "held", "127.0.0.1"), Some(false));
    assert_eq!(healthy(&checker, "live", "127.0.0.1"), Some(true));
}

#[test]
fn the_first_round_budget_counts_waves_of_probes_and_has_a_ceiling() {
    let addrs: Vec<String> = (0..MAX_PROBES_IN_FLIGHT + 1)
        .map(|i| format!("10.0.{}.{}", i / 250, 1 + i % 250))
        .collect();
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let check = |timeout: u32| {
        format!("type = \"tcp\"\nport = 80\ninterval_ms = 60000\ntimeout_ms = {timeout}\n")
    };
    // Two waves of 256 at most.
    let cfg = config_of(&[group("many", &check(1000), &addrs)]);
    assert_eq!(
        first_round_budget(&cfg),
        Duration::from_secs(2) + FIRST_ROUND_SLACK
    );
    let cfg = config_of(&[group("many", &check(50000), &addrs)]);
    assert_eq!(
        first_round_budget(&cfg),
        dnlb_forwarder::control::health::FIRST_ROUND_MAX
    );
    // Nothing checked: only the slack.
    assert_eq!(first_round_budget(&config_of(&[])), FIRST_ROUND_SLACK);
}

/// A server on `addr` that accepts and holds connections without a word
/// (until it stops: then it closes them); it counts them and the most it
/// held open at once.
fn holding_server(addr: &str) -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>, Server) {
    let l = TcpListener::bind(addr).unwrap();
    let port = l.local_addr().unwrap().port();
    let (accepted, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, p) = (accepted.clone(), peak.clone());
    let server = Server::spawn(move |stop| {
        l.set_nonblocking(true).unwrap();
        let mut held: Vec<TcpStream> = Vec::new();
        let mut buf = [0u8; 1024];
        // Closed by the peer: EOF (the request was read already).
        let mut closed = |s: &mut TcpStream| loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let mut new = 0;
            while let Ok((s, _)) = l.accept() {
                s.set_nonblocking(true).unwrap();
                held.push(s);
                new += 1;
            }
            a.fetch_add(new, Ordering::Relaxed);
            // Give a close that came before these connects time to arrive,
            // then count what is still open.
            std::thread::sleep(Duration::from_millis(20));
            held.retain_mut(|s| !closed(s));
            p.fetch_max(held.len(), Ordering::Relaxed);
        }
    });
    (port, accepted, peak, server)
}

#[test]
fn probes_in_flight_are_bounded() {
    let rt = control_runtime().unwrap();
    let (port, accepted, peak, _server) = holding_server("0.0.0.0:0");
    // More backends than probes may run at once, each on its own loopback
    // address; every probe waits out its timeout.
    let n = MAX_PROBES_IN_FLIGHT + 44;
    let addrs: Vec<String> = (0..n)
        .map(|i| format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250))
        .collect();
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let check = format!("type = \"http\"\nport = {port}\ninterval_ms = 10000\ntimeout_ms = 2000\n");
    let checker = HealthChecker::start(
        &config_of(&[group("many", &check, &addrs)]),
        rt.handle().clone(),
        &Events::default(),
    );
    // Every backend is probed in the end (the others waited their turn).
    wait_for("every backend probed", || {
        accepted.load(Ordering::Relaxed) >= n
    });
    let most = peak.load(Ordering::Relaxed);
    assert!(most <= MAX_PROBES_IN_FLIGHT, "{most} probes at once");
    assert!(most > MAX_PROBES_IN_FLIGHT / 2, "only {most} at once");
    drop(checker);
}

#[test]
fn health_events_are_told_outside_locks() {
    let rt = control_runtime().unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    // A sink that blocks until the test lets it go.
    let (seen_tx, seen) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Mutex::new(go);
    let events = Events::to(move |e: &Event| {
        let _ = seen_tx.send(e.clone());
        let _ = go.lock().unwrap().recv();
    });
    let cfg = config_of(&[group("web", &fast("tcp", port, ""), &["127.0.0.1"])]);
    let mut checker = HealthChecker::start(&cfg, rt.handle().clone(), &events);
    let e = seen.recv_timeout(common::EVENT_DEADLINE).unwrap();
    match e {
        Event::Health {
            group,
            backend,
            healthy,
        } => assert_eq!(
            (group.as_str(), backend.as_str(), healthy),
            ("web", "127.0.0.1", false)
        ),
        other => panic!("{other:?}"),
    }
    // The sink is stuck; the checker answers and follows the config.
    assert_eq!(healthy(&checker, "web", "127.0.0.1"), Some(false));
    checker.update(&config_of(&[group(
        "web",
        &fast("tcp", port, ""),
        &["127.0.0.2"],
    )]));
    assert_eq!(healthy(&checker, "web", "127.0.0.2"), Some(false));
    drop(go_tx);
}

/// TCP and UDP probes fail while the process has no free file descriptor,
/// and succeed again, from the same probers, once it has some.
fn no_descriptors() {
    use std::os::fd::AsRawFd;
    let rt = control_runtime().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let udp = Udp::start(0);
    let cfg = config_of(&[
        group("tcp", &fast("tcp", port, ""), &["127.0.0.1"]),
        group("udp", &fast("udp", udp.port, ""), &["127.0.0.1"]),
    ]);
    // Fill every free descriptor number below the limit we set: holes first,
    // then spares on top.
    let mut spares = Vec::new();
    for _ in 0..64 {
        spares.push(std::fs::File::open("/dev/null").unwrap());
    }
    let top = spares.iter().map(|f| f.as_raw_fd()).max().unwrap();
    let ok = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={}:", top + 1),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "prlimit failed");
    assert!(
        std::fs::File::open("/dev/null").is_err(),
        "a descriptor is still free"
    );
    let checker = HealthChecker::start(&cfg, rt.handle().clone(), &Events::default());
    // No socket can be opened: the probes fail, the backends go down.
    wait_health(&checker, "tcp", "127.0.0.1", false);
    wait_health(&checker, "udp", "127.0.0.1", false);
    // Descriptors again: the same probers bring them back.
    spares.clear();
    wait_health(&checker, "tcp", "127.0.0.1", true);
    wait_health(&checker, "udp", "127.0.0.1", true);
    drop(l);
}

rusty_fork_test! {
    #[test]
    fn a_probe_without_file_descriptors_fails_and_its_prober_lives_on() {
        no_descriptors();
    }
}

/// A running dnlb with an admin API, one worker replaying a UDP pcap to
/// 192.0.2.10:80 (for ever, busy-polling, or once, then idle), whose
/// listener's group has the health check `check` (the body of
/// `[target_group.health_check]`) and a GUE backend at each of `backends`.
/// Bind `_dir` when taking it apart: the directory holds the config and the
/// admin token, and goes with it.
struct CheckedGateway {
    child: common::ChildGuard,
    events: common::Events,
    url: String,
    cfg: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn checked_gateway(tag: &str, forever: bool, check: &str, backends: &[&str]) -> CheckedGateway {
    let dir = common::tempdir();
    let pcap = dir.path().join("vip.pcap");
    dnlb_testkit::write_pcap(
        &pcap,
        &dnlb_testkit::frames(&dnlb_testkit::FlowMix::default()),
    )
    .unwrap();
    let mut eal = common::eal_args(tag);
    eal.push("--lcores=0@0,1@1".into());
    let (idle, replay) = if forever {
        ("", ",infinite_rx=1")
    } else {
        ("idle_polls_before_sleep = 64\nidle_sleep_us = 1000\n", "")
    };
    let backends: String = backends
        .iter()
        .map(|a| format!("[[target_group.backend]]\naddress = \"{a}\"\ntunnel = \"gue\"\n"))
        .collect();
    let text = format!(
        "[gateway]\nname = \"h\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n{idle}\
         [[dataplane.ports]]\nname = \"net_pcap0\"\ndevargs = \"rx_pcap={}{replay}\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"web\"\n\
         [[target_group]]\nname = \"web\"\n[target_group.health_check]\n{check}{backends}\
         [admin]\nlisten = \"127.0.0.1:0\"\n",
        common::toml_list(&eal),
        pcap.display()
    );
    let cfg = dir.path().join("dnlb.toml");
    std::fs::write(&cfg, text).unwrap();
    let cfg_arg = cfg.to_str().unwrap().to_string();
    let (child, events) =
        common::spawn_dnlb(&["run", "--watch-config-ms", "0", "--config", &cfg_arg]);
    // The admin server is told after the first round of probes, and a
    // backend's health can change before that: the events before it are
    // kept for the test.
    let (admin, events) = common::wait_keeping_the_rest(events, "admin_listening");
    let url = admin["url"].as_str().unwrap().to_string();
    CheckedGateway {
        child,
        events,
        url,
        cfg,
        _dir: dir,
    }
}

#[test]
fn an_unhealthy_backend_leaves_the_running_forwarder() {
    // Two backends on loopback addresses; only the first one listens on the
    // health port.
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = up.local_addr().unwrap().port();
    let check = format!(
        "type = \"tcp\"\nport = {port}\n\
         interval_ms = 50\ntimeout_ms = 40\nhealthy_threshold = 2\nunhealthy_threshold = 2\n"
    );
    let CheckedGateway {
        mut child,
        events,
        url,
        _dir,
        ..
    } = checked_gateway("health", true, &check, &["127.0.0.1", "127.0.0.2"]);
    let down = common::wait_event(&events, "health", |e| e["backend"] == "127.0.0.2");
    assert_eq!(down["healthy"], false, "{down}");
    common::wait_event(&events, "republished", |e| e["cause"] == "health");
    // Packets per backend, fresh from the workers.
    let packets = || {
        let v: serde_json::Value = serde_json::from_str(&get(&url, "/v1/backends")).unwrap();
        let of = |a: &str| {
            v.as_array()
                .and_then(|bs| bs.iter().find(|b| b["address"] == a))
                .map(|b| common::num(&b["packets"]))
                .unwrap_or_else(|| panic!("no backend {a} in {v}"))
        };
        (of("127.0.0.1"), of("127.0.0.2"))
    };
    // Once the worker has answered after the new snapshot was published, it
    // runs on it: traffic grows on the healthy backend and stops on the dead
    // one.
    let grown = |from: u64| {
        let start = Instant::now();
        loop {
            let (a, b) = packets();
            if a > from + 10_000 {
                return (a, b);
            }
            assert!(
                start.elapsed() < common::EVENT_DEADLINE,
                "no traffic to 127.0.0.1"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (a0, _) = packets();
    let (a1, b1) = grown(a0);
    let (_, b2) = grown(a1);
    assert_eq!(
        b1, b2,
        "the dead backend got packets after it was seen down"
    );
    common::signal(&child, "-TERM");
    let report = common::final_report(&events);
    assert!(child.0.wait().unwrap().success());
    assert!(common::num(&report["flows"]["rescheduled"]) > 0, "{report}");
    assert_eq!(report["total"]["dropped"], 0, "{report}");
    drop(up);
}

/// The body of a GET of `path` from the admin API at `url`.
fn get(url: &str, path: &str) -> String {
    ureq::get(&format!("{url}{path}"))
        .timeout(Duration::from_secs(20))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

/// One backend of the running gateway's status, by address.
fn backend_status(url: &str, address: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&get(url, "/v1/backends")).unwrap();
    v.as_array()
        .and_then(|bs| bs.iter().find(|b| b["address"] == address))
        .cloned()
}

/// `(healthy, takes_new_flows)` of a backend in the status.
fn serving(url: &str, address: &str) -> Option<(bool, bool)> {
    let b = backend_status(url, address)?;
    Some((
        b["healthy"].as_bool().unwrap(),
        b["takes_new_flows"].as_bool().unwrap(),
    ))
}

#[test]
fn a_removed_and_re_added_backend_takes_new_flows_only_after_passing_probes() {
    let one = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = one.local_addr().unwrap().port();
    let mut two = Some(TcpListener::bind(("127.0.0.2", port)).unwrap());
    // Going down takes 10 failures a second apart: a backend that is still
    // healthy right after its target closed has kept an old state.
    let check = format!(
        "type = \"tcp\"\nport = {port}\n\
         interval_ms = 1000\ntimeout_ms = 500\nhealthy_threshold = 2\nunhealthy_threshold = 10\n"
    );
    let CheckedGateway {
        mut child,
        events,
        url,
        cfg,
        _dir,
    } = checked_gateway("readd", false, &check, &["127.0.0.1"]);
    common::wait_event(&events, "ready", |_| true);
    // Writes carry the token dnlb created beside its config.
    let token = common::admin_token(&cfg);
    let bearer = format!("Bearer {token}");
    let call = |method: &str, path: &str, body: Option<serde_json::Value>| {
        let req = ureq::request(method, &format!("{url}{path}"))
            .timeout(Duration::from_secs(20))
            .set("Authorization", &bearer);
        let r = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        assert_eq!(
            r.map(|r| r.status())
                .unwrap_or_else(|e| panic!("{method} {path}: {e}")),
            200
        );
    };
    let register = || {
        call(
            "POST",
            "/v1/target_groups/web/backends",
            Some(serde_json::json!({"address": "127.0.0.2", "tunnel": "gue"})),
        )
    };
    // Registered, it passes its probes and takes new flows.
    register();
    let start = Instant::now();
    while serving(&url, "127.0.0.2") != Some((true, true)) {
        assert!(
            start.elapsed() < common::EVENT_DEADLINE,
            "127.0.0.2 never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    common::wait_event(&events, "health", |e| {
        e["backend"] == "127.0.0.2" && e["healthy"] == true
    });
    // Its target stops answering; it is deregistered and registered again.
    two.take();
    call("DELETE", "/v1/target_groups/web/backends/127.0.0.2", None);
    assert_eq!(serving(&url, "127.0.0.2"), None);
    register();
    // New again: no new flows until it passes, however long it waits.
    assert_eq!(serving(&url, "127.0.0.2"), Some((false, false)));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(serving(&url, "127.0.0.2"), Some((false, false)));
    assert_eq!(serving(&url, "127.0.0.1"), Some((true, true)));
    // Its target answers: it passes two probes and takes new flows.
    let _two = TcpListener::bind(("127.0.0.2", port)).unwrap();
    let up = common::wait_event(&events, "health", |e| e["backend"] == "127.0.0.2");
    assert_eq!(up["healthy"], true, "{up}");
    let start = Instant::now();
    while serving(&url, "127.0.0.2") != Some((true, true)) {
        assert!(
            start.elapsed() < common::EVENT_DEADLINE,
            "127.0.0.2 never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    common::signal(&child, "-TERM");
    common::final_report(&events);
    assert!(child.0.wait().unwrap().success());
    drop(one);
}

#[test]
fn the_status_shows_which_backends_are_only_presumed_healthy() {
    // 127.0.0.1 answers its probe at once; 127.0.0.2 holds it (for up to
    // 30 s) until the test stops its server.
    let answering = Http::start("127.0.0.1", 0, Arc::new(AtomicU16::new(200)));
    let port = answering.port;
    let (_, held, _, holding) = holding_server(&format!("127.0.0.2:{port}"));
    let check = format!(
        "type = \"http\"\nport = {port}\n\
         interval_ms = 60000\ntimeout_ms = 30000\nhealthy_threshold = 2\nunhealthy_threshold = 2\n"
    );
    let CheckedGateway {
        mut child,
        url,
        _dir,
        ..
    } = checked_gateway("presumed", false, &check, &["127.0.0.1", "127.0.0.2"]);
    let presumed = |a: &str| {
        let b = backend_status(&url, a).unwrap_or_else(|| panic!("no backend {a}"));
        (
            b["healthy"].as_bool().unwrap(),
            b["health_presumed"].as_bool().unwrap(),
        )
    };
    // The answered probe confirms 127.0.0.1; the held one leaves 127.0.0.2
    // presumed healthy (serving, but no probe has said so).
    wait_for("127.0.0.1 confirmed healthy", || {
        presumed("127.0.0.1") == (true, false)
    });
    wait_for("127.0.0.2's probe held", || {
        held.load(Ordering::Relaxed) >= 1
    });
    assert_eq!(presumed("127.0.0.2"), (true, true));
    // The same in the metrics.
    let gauge = |a: &str| {
        let m = get(&url, "/metrics");
        let series = format!("dnlb_backend_health_presumed{{target_group=\"web\",backend=\"{a}\"");
        m.lines()
            .find(|l| l.starts_with(&series))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {series} in\n{m}"))
    };
    assert_eq!(
        (gauge("127.0.0.1"), gauge("127.0.0.2")),
        ("0".into(), "1".into())
    );
    assert_eq!(answering.requests(), 1, "one probe each: 60 s apart");
    // Its probe fails when the server closes the connection: down at the
    // first failure, presumed no more.
    drop(holding);
    wait_for("127.0.0.2 down", || presumed("127.0.0.2") == (false, false));
    assert_eq!(presumed("127.0.0.1"), (true, false));
    common::signal(&child, "-TERM");
    assert!(child.0.wait().unwrap().success());
}

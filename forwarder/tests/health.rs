//! Health checks against real servers on loopback: TCP, HTTP and UDP
//! services go down and come back, and the checker sees it. Tests wait for
//! each state with a generous deadline; they never assert how fast.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnlb_forwarder::control::health::HealthChecker;
use dnlb_forwarder::control::Events;

mod common;

fn config(tcp: u16, http: u16, udp: u16) -> dnlb_config::Config {
    let group = |name: &str, kind: &str, port: u16, extra: &str| {
        format!(
            "[[target_group]]\nname = \"{name}\"\n[target_group.health_check]\ntype = \"{kind}\"\nport = {port}\n\
             interval_ms = 50\ntimeout_ms = 40\nhealthy_threshold = 2\nunhealthy_threshold = 2\n{extra}\
             [[target_group.backend]]\naddress = \"127.0.0.1\"\ntunnel = \"ipip\"\n"
        )
    };
    let text = format!(
        "[gateway]\nname = \"h\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n{}{}{}",
        group("tcp", "tcp", tcp, ""),
        group("http", "http", http, "path = \"/healthz\"\nexpected_status = [200]\n"),
        group("udp", "udp", udp, "udp_payload = \"are you there\"\n"),
    );
    dnlb_config::parse(Path::new("health.toml"), &text).unwrap()
}

/// An HTTP server answering every request with the current status.
struct Http {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Http {
    fn start(port: u16, status: Arc<AtomicU16>) -> Http {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp) = (status.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stp.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(200)))
                            .unwrap();
                        let mut buf = [0u8; 512];
                        let n = s.read(&mut buf).unwrap_or(0);
                        assert!(buf[..n].starts_with(b"GET /healthz HTTP/1.1\r\n"));
                        let code = st.load(Ordering::Relaxed);
                        let _ = write!(
                            s,
                            "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Http {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u16 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.port
    }
}

/// A UDP server echoing datagrams.
struct Udp {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Udp {
    fn start(port: u16) -> Udp {
        let s = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let port = s.local_addr().unwrap().port();
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stp = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stp.load(Ordering::Relaxed) {
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(&buf[..n], from);
                }
            }
        });
        Udp {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u16 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.port
    }
}

/// Waits (up to [`common::EVENT_DEADLINE`]) until `group`'s backend has
/// that state.
fn wait_until(checker: &HealthChecker, group: &str, healthy: bool) {
    let start = Instant::now();
    loop {
        let states = checker.states();
        let st = states
            .iter()
            .find(|(k, _)| k.0 == group)
            .map(|(_, s)| s.healthy());
        if st == Some(healthy) {
            return;
        }
        assert!(
            start.elapsed() < common::EVENT_DEADLINE,
            "{group} never became healthy={healthy}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn tcp_http_and_udp_backends_going_down_and_up_are_seen() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let status = Arc::new(AtomicU16::new(200));
    let http = Http::start(0, status.clone());
    let udp = Udp::start(0);
    let checker = HealthChecker::start(
        &config(tcp_port, http.port, udp.port),
        None,
        &Events::default(),
    );

    // All up: two rounds of successes keep them healthy.
    std::thread::sleep(Duration::from_millis(200));
    for g in ["tcp", "http", "udp"] {
        wait_until(&checker, g, true);
    }
    assert!(!checker.take_changed(), "nothing changed yet");

    // Down: listener closed, HTTP answers 503, UDP server gone.
    drop(tcp);
    status.store(503, Ordering::Relaxed);
    let udp_port = udp.stop();
    for g in ["tcp", "http", "udp"] {
        wait_until(&checker, g, false);
    }
    assert!(checker.take_changed());

    // Up again.
    let _tcp = TcpListener::bind(("127.0.0.1", tcp_port)).unwrap();
    status.store(200, Ordering::Relaxed);
    let _udp = Udp::start(udp_port);
    for g in ["tcp", "http", "udp"] {
        wait_until(&checker, g, true);
    }
    assert!(checker.take_changed());
    // An HTTP server that is gone entirely is down too.
    let _ = http.stop();
    wait_until(&checker, "http", false);
    let states = checker.stop();
    assert_eq!(states.len(), 3);
}

#[test]
fn thresholds_need_consecutive_results() {
    use dnlb_forwarder::control::health::HealthState;
    let cfg = config(1, 2, 3);
    let check = cfg.target_groups[0].health_check.clone().unwrap();
    let mut s = HealthState::default();
    assert!(s.healthy());
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
fn an_unhealthy_backend_leaves_the_running_forwarder() {
    let dir = common::tempdir();
    let pcap = dir.path().join("vip.pcap");
    dnlb_testkit::write_pcap(
        &pcap,
        &dnlb_testkit::frames(&dnlb_testkit::FlowMix::default()),
    )
    .unwrap();
    // Two backends on loopback addresses; only the first one listens on the
    // health port.
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = up.local_addr().unwrap().port();
    let mut eal = common::eal_args("health");
    eal.push("--lcores=0@0,1@1".into());
    let text = format!(
        "[gateway]\nname = \"h\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         [[dataplane.ports]]\nname = \"net_pcap0\"\ndevargs = \"rx_pcap={},infinite_rx=1\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"web\"\n\
         [[target_group]]\nname = \"web\"\n[target_group.health_check]\ntype = \"tcp\"\nport = {port}\n\
         interval_ms = 50\ntimeout_ms = 40\nhealthy_threshold = 2\nunhealthy_threshold = 2\n\
         [[target_group.backend]]\naddress = \"127.0.0.1\"\ntunnel = \"gue\"\n\
         [[target_group.backend]]\naddress = \"127.0.0.2\"\ntunnel = \"gue\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n",
        common::toml_list(&eal),
        pcap.display()
    );
    let cfg = dir.path().join("dnlb.toml");
    std::fs::write(&cfg, text).unwrap();
    let cfg_arg = cfg.to_str().unwrap().to_string();
    let (mut child, events) =
        common::spawn_dnlb(&["run", "--watch-config-ms", "0", "--config", &cfg_arg]);
    let url = common::wait_event(&events, "admin_listening", |_| true)["url"]
        .as_str()
        .unwrap()
        .to_string();
    let down = common::wait_event(&events, "health", |e| e["backend"] == "127.0.0.2");
    assert_eq!(down["healthy"], false, "{down}");
    common::wait_event(&events, "republished", |e| e["cause"] == "health");
    // Packets per backend, fresh from the workers.
    let packets = || {
        let body = ureq::get(&format!("{url}/v1/backends"))
            .timeout(Duration::from_secs(20))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
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

/// A TCP-checked group `web` with backends at `addrs` (all probed on
/// `port`), and optionally a group `later` without a check.
fn added_config(addrs: &[&str], port: u16, later_checked: bool) -> dnlb_config::Config {
    let mut t = format!(
        "[gateway]\nname = \"h\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [[target_group]]\nname = \"web\"\n[target_group.health_check]\ntype = \"tcp\"\nport = {port}\n\
         interval_ms = 50\ntimeout_ms = 40\nhealthy_threshold = 2\nunhealthy_threshold = 2\n"
    );
    for a in addrs {
        t += &format!("[[target_group.backend]]\naddress = \"{a}\"\ntunnel = \"ipip\"\n");
    }
    t += "[[target_group]]\nname = \"later\"\n";
    if later_checked {
        t += &format!("[target_group.health_check]\ntype = \"tcp\"\nport = {port}\ninterval_ms = 50\ntimeout_ms = 40\n");
    }
    t += "[[target_group.backend]]\naddress = \"127.0.0.9\"\ntunnel = \"ipip\"\n";
    dnlb_config::parse(Path::new("added.toml"), &t).unwrap_or_else(|e| panic!("{e}"))
}

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

#[test]
fn a_backend_added_at_run_time_takes_flows_only_once_it_passes() {
    // 127.0.0.1 and 127.0.0.2 listen on the probed port; 127.0.0.3 does not.
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l1.local_addr().unwrap().port();
    let _l2 = TcpListener::bind(("127.0.0.2", port)).unwrap();
    let first = HealthChecker::start(
        &added_config(&["127.0.0.1"], port, false),
        None,
        &Events::default(),
    );
    // At the first start every backend is healthy at once.
    assert_eq!(healthy(&first, "web", "127.0.0.1"), Some(true));
    assert!(!first.take_changed());
    // A reload adds two backends to the checked group and a check to `later`.
    let cfg = added_config(&["127.0.0.1", "127.0.0.2", "127.0.0.3"], port, true);
    let checker = HealthChecker::start(&cfg, Some(first), &Events::default());
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
    let start = Instant::now();
    while healthy(&checker, "web", "127.0.0.2") != Some(true) {
        assert!(
            start.elapsed() < common::EVENT_DEADLINE,
            "127.0.0.2 never came up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(healthy(&checker, "web", "127.0.0.3"), Some(false));
}

//! Route announcements through a real BIRD: dnlb announces a VIP while one
//! of its listeners has a backend taking new flows and withdraws it when
//! that ends, when the listener leaves the config, when the elastic IP is
//! detached, and on shutdown; a BIRD that is not running yet is retried.
//! A BIRD that stops answering (SIGSTOP) while dnlb forwards traffic stops
//! nothing: the admin API answers, health changes are published, SIGTERM
//! ends dnlb within 5 s; once BIRD runs again the routes converge. A
//! starting gateway announces only what its first health probes allow.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use dnlb_forwarder::control::routes::bird_command;
use dnlb_testkit::{frames, write_pcap, FlowMix};
use serde_json::Value;

fn bird_conf(dir: &Path) -> String {
    format!(
        "router id 192.0.2.1;\nlog \"{d}/bird.log\" all;\nprotocol device {{}}\n\
         protocol static vips4 {{\n    ipv4;\n    include \"{d}/vips4.conf\";\n}}\n\
         protocol static vips6 {{\n    ipv6;\n    include \"{d}/vips6.conf\";\n}}\n",
        d = dir.display()
    )
}

fn config(eal: &[String], dir: &Path, second_listener: bool) -> String {
    let mut t = format!(
        "[gateway]\nname = \"routes\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         idle_polls_before_sleep = 16\nidle_sleep_us = 1000\n\
         [[dataplane.ports]]\nname = \"net_ring0\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [routing]\nbird_socket = \"bird.ctl\"\nvips4_file = \"vips4.conf\"\nvips6_file = \"vips6.conf\"\nwithdraw_delay_ms = 300\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\", \"2001:db8::10\"]\nelastic_ip = \"198.51.100.77\"\n\
         protocol = \"tcp\"\nport = 80\ntarget_group = \"web\"\n",
        common::toml_list(eal),
    );
    if second_listener {
        t += "[[listener]]\nname = \"dns\"\nvips = [\"192.0.2.11\"]\nprotocol = \"udp\"\nport = 53\ntarget_group = \"web\"\n";
    }
    t += "[[target_group]]\nname = \"web\"\n[[target_group.backend]]\naddress = \"10.1.0.1\"\ntunnel = \"gue\"\n";
    let _ = dir;
    t
}

/// The routes BIRD has, as "prefix" strings.
fn bird_routes(sock: &Path) -> BTreeSet<String> {
    // BIRD's listen backlog is small and dnlb talks to it too: a connection
    // refused for a full backlog is tried again.
    let deadline = Instant::now() + common::EVENT_DEADLINE;
    let reply = loop {
        match bird_command(sock, "show route") {
            Ok(r) => break r,
            Err(e) => {
                assert!(Instant::now() < deadline, "BIRD never answered: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    reply
        .iter()
        .filter_map(|(_, l)| {
            l.split_whitespace()
                .next()
                .filter(|p| p.contains('/'))
                .map(String::from)
        })
        .collect()
}

/// A gateway forwarding a pcap replayed from memory, whose one backend
/// (127.0.0.1) is health-checked on `health_port`; a group with no healthy
/// backend drops, so its VIP is withdrawn.
fn traffic_config(eal: &[String], pcap: &Path, health_port: u16) -> String {
    format!(
        "[gateway]\nname = \"birdstop\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         idle_polls_before_sleep = 64\nidle_sleep_us = 200\n\
         [[dataplane.ports]]\nname = \"net_pcap0\"\ndevargs = \"rx_pcap={},infinite_rx=1\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [routing]\nbird_socket = \"bird.ctl\"\nvips4_file = \"vips4.conf\"\nvips6_file = \"vips6.conf\"\nwithdraw_delay_ms = 300\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"web\"\n\
         [[target_group]]\nname = \"web\"\nall_down = \"drop\"\n\
         [target_group.health_check]\ntype = \"tcp\"\nport = {health_port}\ninterval_ms = 100\ntimeout_ms = 80\n\
         healthy_threshold = 2\nunhealthy_threshold = 2\n\
         [[target_group.backend]]\naddress = \"127.0.0.1\"\ntunnel = \"gue\"\n",
        common::toml_list(eal),
        pcap.display(),
    )
}

/// A directory with BIRD's config, empty VIP files and a pcap of traffic
/// to the VIP (its path).
fn traffic_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = common::tempdir();
    let d = dir.path();
    std::fs::write(d.join("bird.conf"), bird_conf(d)).unwrap();
    std::fs::write(d.join("vips4.conf"), "").unwrap();
    std::fs::write(d.join("vips6.conf"), "").unwrap();
    let pcap = d.join("vip.pcap");
    write_pcap(&pcap, &frames(&FlowMix::default())).unwrap();
    (dir, pcap)
}

/// Starts BIRD on `d`'s config with control socket `sock`, and waits until
/// it answers.
fn start_bird(d: &Path, sock: &Path) -> common::ChildGuard {
    let bird = std::process::Command::new("bird")
        .args(["-f", "-c"])
        .arg(d.join("bird.conf"))
        .arg("-s")
        .arg(sock)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("bird (Debian package bird2; scripts/test.sh installs it)");
    let bird = common::ChildGuard::new(bird);
    let start = Instant::now();
    while bird_command(sock, "show status").is_err() {
        assert!(
            start.elapsed() < common::EVENT_DEADLINE,
            "BIRD never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    bird
}

/// A forwarding gateway with BIRD and a healthy backend, its VIP announced.
struct Stage {
    dir: tempfile::TempDir,
    sock: std::path::PathBuf,
    bird: common::ChildGuard,
    dnlb: common::ChildGuard,
    lines: std::sync::mpsc::Receiver<Value>,
    base: String,
    health: Option<TcpListener>,
    health_port: u16,
}

impl Stage {
    fn start(tag: &str) -> Stage {
        let (dir, pcap) = traffic_dir();
        let d = dir.path();
        let health = TcpListener::bind("127.0.0.1:0").unwrap();
        let health_port = health.local_addr().unwrap().port();
        let mut eal = common::eal_args(tag);
        eal.push("--lcores=0@0,1@1".into());
        let cfg_path = d.join("gw.toml");
        std::fs::write(&cfg_path, traffic_config(&eal, &pcap, health_port)).unwrap();
        let sock = d.join("bird.ctl");
        let bird = start_bird(d, &sock);
        let cfg_arg = cfg_path.to_str().unwrap().to_string();
        let (dnlb, lines) =
            common::spawn_dnlb(&["run", "--watch-config-ms", "0", "--config", &cfg_arg]);
        // Routes may be told before the admin server is.
        let (l, lines) = common::wait_keeping_the_rest(lines, "admin_listening");
        let base = l["url"].as_str().unwrap().to_string();
        // The backend passes its checks: the VIP is announced.
        common::wait_event(&lines, "routes_announced", |e| {
            e["vips"] == serde_json::json!(["192.0.2.10"])
        });
        until_routes(&sock, &set(&["192.0.2.10/32"]));
        Stage {
            dir,
            sock,
            bird,
            dnlb,
            lines,
            base,
            health: Some(health),
            health_port,
        }
    }

    fn status(&self) -> Value {
        let r = ureq::get(&format!("{}/v1/status", self.base))
            .timeout(Duration::from_secs(20))
            .call()
            .expect("the admin API answers");
        serde_json::from_str(&r.into_string().unwrap()).unwrap()
    }

    /// Polls the status until `f` holds for its `routes`.
    fn until_routes_status(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let s = self.status();
            if f(&s["routes"]) {
                return s;
            }
            assert!(
                start.elapsed() < common::EVENT_DEADLINE,
                "never {what}: {}",
                s["routes"]
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn bird_signal(&self, sig: &str) {
        common::signal(&self.bird, sig);
    }

    /// The backend's service goes away: its health check fails, the group
    /// has no backend left, the VIP is to be withdrawn.
    fn backend_down(&mut self) {
        drop(self.health.take());
        common::wait_event(&self.lines, "republished", |e| e["cause"] == "health");
    }

    fn rx_packets(&self) -> u64 {
        common::num(&self.status()["workers"][0]["rx_packets"])
    }

    /// `dnlb status` as a table.
    fn status_table(&self) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dnlb"))
            .args(["status", "--api", &self.base])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn until_routes(sock: &Path, want: &BTreeSet<String>) {
    let start = Instant::now();
    loop {
        let got = bird_routes(sock);
        if &got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "BIRD has {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The gateway's admin token (writes need it), read once it started.
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn api(base: &str, method: &str, path: &str, body: Option<serde_json::Value>) {
    let token = TOKEN.get().map_or("", |t| t.as_str());
    let req = ureq::request(method, &format!("{base}{path}"))
        .timeout(Duration::from_secs(10))
        .set("Authorization", &format!("Bearer {token}"));
    let r = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    assert!(r.is_ok(), "{method} {path}: {r:?}");
}

#[test]
fn vips_are_announced_while_served_and_withdrawn_otherwise() {
    let dir = common::tempdir();
    let d = dir.path();
    std::fs::write(d.join("bird.conf"), bird_conf(d)).unwrap();
    std::fs::write(d.join("vips4.conf"), "").unwrap();
    std::fs::write(d.join("vips6.conf"), "").unwrap();
    let mut eal = common::eal_args("routes");
    eal.push("--lcores=0@0,1@0".into());
    let cfg_path = d.join("gw.toml");
    std::fs::write(&cfg_path, config(&eal, d, true)).unwrap();
    let sock = d.join("bird.ctl");

    // dnlb first: BIRD is not there yet, so the announcement is retried.
    let cfg_arg = cfg_path.to_str().unwrap().to_string();
    let (child, lines) =
        common::spawn_dnlb(&["run", "--watch-config-ms", "0", "--config", &cfg_arg]);
    // The failed announcement may be told before the admin server is.
    let (l, lines) = common::wait_keeping_the_rest(lines, "admin_listening");
    let base = l["url"].as_str().unwrap().to_string();
    let token = common::admin_token(&cfg_path);
    TOKEN.get_or_init(|| token);
    let l = common::next_of(&lines, &["routes_failed", "routes_announced"]);
    assert_eq!(l["event"], "routes_failed", "{l}");
    assert!(
        l["error"]
            .as_str()
            .unwrap()
            .starts_with("BIRD control socket"),
        "{l}"
    );

    let bird = std::process::Command::new("bird")
        .args(["-f", "-c"])
        .arg(d.join("bird.conf"))
        .arg("-s")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("bird (Debian package bird2; scripts/test.sh installs it)");
    let _bird = common::ChildGuard::new(bird);
    let l = common::wait_event(&lines, "routes_announced", |_| true);
    assert_eq!(
        l["vips"],
        serde_json::json!(["192.0.2.10", "192.0.2.11", "198.51.100.77", "2001:db8::10"])
    );
    let all = set(&[
        "192.0.2.10/32",
        "192.0.2.11/32",
        "198.51.100.77/32",
        "2001:db8::10/128",
    ]);
    until_routes(&sock, &all);

    // No backend takes new flows: every VIP of the group is withdrawn.
    api(
        &base,
        "PUT",
        "/v1/target_groups/web/backends/10.1.0.1/weight",
        Some(serde_json::json!({"weight": 0})),
    );
    until_routes(&sock, &BTreeSet::new());
    api(
        &base,
        "PUT",
        "/v1/target_groups/web/backends/10.1.0.1/weight",
        Some(serde_json::json!({"weight": 100})),
    );
    until_routes(&sock, &all);

    // Elastic IP detached: withdrawn; attached again: announced.
    api(&base, "DELETE", "/v1/listeners/web/elastic_ip", None);
    until_routes(
        &sock,
        &set(&["192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128"]),
    );
    api(
        &base,
        "PUT",
        "/v1/listeners/web/elastic_ip",
        Some(serde_json::json!({"address": "198.51.100.78"})),
    );
    until_routes(
        &sock,
        &set(&[
            "192.0.2.10/32",
            "192.0.2.11/32",
            "198.51.100.78/32",
            "2001:db8::10/128",
        ]),
    );

    // A listener removed from the config: its VIP is withdrawn.
    std::fs::write(&cfg_path, config(&eal, d, false)).unwrap();
    common::signal(&child, "-HUP");
    until_routes(
        &sock,
        &set(&["192.0.2.10/32", "198.51.100.78/32", "2001:db8::10/128"]),
    );

    // Shutdown: withdrawn first, forwarding continues for the delay.
    common::signal(&child, "-TERM");
    let l = common::wait_event(&lines, "routes_withdrawn", |_| true);
    assert_eq!(l["forwarding_ms"], 300, "{l}");
    until_routes(&sock, &BTreeSet::new());
    let mut child = child;
    assert!(child.0.wait().unwrap().success());
}

/// BIRD stopped (SIGSTOP) for 30 s under traffic: the admin API answers, a
/// health change and a reload are still published, the status shows BIRD
/// down with the withdrawal pending, and SIGTERM ends dnlb within 5 s
/// without the withdrawal delay.
#[test]
fn a_stopped_bird_stops_nothing_and_sigterm_still_ends_dnlb() {
    let mut st = Stage::start("birdstop");
    st.bird_signal("-STOP");
    let stopped = Instant::now();
    st.backend_down();
    let s = st.until_routes_status("BIRD down with the withdrawal pending", |r| {
        r["up"] == false && r["pending"] == true && r["consecutive_failures"].as_u64() >= Some(1)
    });
    let r = &s["routes"];
    assert_eq!(r["wanted"], serde_json::json!([]), "{r}");
    assert_eq!(r["announced"], serde_json::json!(["192.0.2.10"]), "{r}");
    assert!(
        r["last_error"]
            .as_str()
            .unwrap()
            .starts_with("BIRD control socket"),
        "{r}"
    );
    // A reload goes through too.
    common::signal(&st.dnlb, "-HUP");
    let l = common::next_of(&st.lines, &["reloaded", "reload_rejected"]);
    assert_eq!(l["event"], "reloaded", "{l}");
    // Thirty seconds of a stopped BIRD (its backlog long full of retries):
    // the API keeps answering and the worker keeps forwarding.
    let rx = st.rx_packets();
    while stopped.elapsed() < Duration::from_secs(30) {
        assert_eq!(st.status()["gateway"], "birdstop");
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        st.rx_packets() > rx,
        "traffic flowed while BIRD was stopped"
    );
    let metrics = ureq::get(&format!("{}/metrics", st.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(metrics.contains("dnlb_bird_up 0\n"), "{metrics}");
    assert!(
        metrics.contains("dnlb_bird_change_pending 1\n"),
        "{metrics}"
    );
    assert!(st.status_table().contains("routes: BIRD DOWN"));

    let asked = Instant::now();
    common::signal(&st.dnlb, "-TERM");
    let exit = loop {
        if let Some(e) = st.dnlb.0.try_wait().unwrap() {
            break e;
        }
        assert!(
            asked.elapsed() < common::EVENT_DEADLINE,
            "dnlb never stopped"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = asked.elapsed();
    assert!(exit.success(), "{exit:?}");
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    let l = common::next_of(&st.lines, &["routes_withdrawn", "routes_not_withdrawn"]);
    assert_eq!(l["event"], "routes_not_withdrawn", "{l}");
    common::final_report(&st.lines);
    st.bird_signal("-CONT");
}

/// BIRD stopped while the VIP is to be withdrawn, then resumed: BIRD, the
/// VIP file and dnlb's status all come to the wanted set, and later
/// changes go through as before.
#[test]
fn routes_converge_after_a_stopped_bird_resumes() {
    let mut st = Stage::start("birdcont");
    st.bird_signal("-STOP");
    st.backend_down();
    st.until_routes_status("two failures", |r| {
        r["pending"] == true && r["consecutive_failures"].as_u64() >= Some(2)
    });
    let table = st.status_table();
    assert!(table.contains("waiting for BIRD to announce []"), "{table}");
    st.bird_signal("-CONT");
    until_routes(&st.sock, &BTreeSet::new());
    let s = st.until_routes_status("in sync", |r| r["pending"] == false);
    let r = &s["routes"];
    assert_eq!(r["up"], true, "{r}");
    assert_eq!(r["announced"], serde_json::json!([]), "{r}");
    assert_eq!(r["consecutive_failures"], 0, "{r}");
    let vips4 = std::fs::read_to_string(st.dir.path().join("vips4.conf")).unwrap();
    assert!(!vips4.contains("route "), "{vips4}");

    // The backend comes back: announced again, as before BIRD stopped.
    st.health = Some(TcpListener::bind(("127.0.0.1", st.health_port)).unwrap());
    common::wait_event(&st.lines, "routes_announced", |e| {
        e["vips"] == serde_json::json!(["192.0.2.10"])
    });
    until_routes(&st.sock, &set(&["192.0.2.10/32"]));
    let vips4 = std::fs::read_to_string(st.dir.path().join("vips4.conf")).unwrap();
    assert!(vips4.contains("route 192.0.2.10/32 blackhole;"), "{vips4}");
    assert!(st.status_table().contains("routes: BIRD up"));

    common::signal(&st.dnlb, "-TERM");
    let l = common::wait_event(&st.lines, "routes_withdrawn", |_| true);
    assert_eq!(l["forwarding_ms"], 300, "{l}");
    until_routes(&st.sock, &BTreeSet::new());
    assert!(st.dnlb.0.wait().unwrap().success());
}

#[test]
fn a_starting_gateway_announces_a_vip_only_if_its_first_probes_find_a_backend() {
    let (dir, pcap) = traffic_dir();
    let d = dir.path();
    // The backend's service is not there (nothing listens on the port), as
    // on a gateway restarted while its one backend is dead.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let health_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut eal = common::eal_args("routes-first");
    eal.push("--lcores=0@0,1@1".into());
    let cfg_path = d.join("gw.toml");
    // Probes 5 s apart: the thresholds (two failures) would take 5 s.
    let text = traffic_config(&eal, &pcap, health_port).replace(
        "interval_ms = 100\ntimeout_ms = 80",
        "interval_ms = 5000\ntimeout_ms = 1000",
    );
    assert!(text.contains("interval_ms = 5000"));
    std::fs::write(&cfg_path, text).unwrap();
    let sock = d.join("bird.ctl");
    let _bird = start_bird(d, &sock);
    let cfg_arg = cfg_path.to_str().unwrap().to_string();
    let (_dnlb, lines) =
        common::spawn_dnlb(&["run", "--watch-config-ms", "0", "--config", &cfg_arg]);
    // The first probe failed before the first announcement: the snapshot
    // without the backend was published, and the VIP is not announced.
    let l = common::wait_event(&lines, "routes_announced", |_| true);
    assert_eq!(
        l["vips"],
        serde_json::json!([]),
        "announced before probing: {l}"
    );
    assert!(bird_routes(&sock).is_empty());
    // The backend's service comes up: announced.
    let health = TcpListener::bind(("127.0.0.1", health_port)).unwrap();
    let l = common::wait_event(&lines, "routes_announced", |e| {
        e["vips"] == serde_json::json!(["192.0.2.10"])
    });
    drop(l);
    until_routes(&sock, &set(&["192.0.2.10/32"]));
    drop(health);
}

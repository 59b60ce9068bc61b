//! The web console in a real browser (Debian's headless Chromium over
//! WebDriver) against a running `dnlb` with traffic through its DPDK worker
//! (a pcap replayed from memory) and real HTTP health targets (Python's
//! `http.server` on 127.0.0.1 and 127.0.0.2):
//!
//! - the page loads from the gateway with its security headers and shows
//!   its listeners and its backends grouped by zone;
//! - its charts move as traffic flows;
//! - without the token the page is read-only and the server refuses a
//!   write sent anyway; with it, a drain started from the page (confirmed
//!   in its dialog) reaches the gateway and its run-time changes file;
//! - the dry run shows a new config's plan diff, and the errors of a bad one;
//! - a health target that is killed turns its backend down on the page.
//!
//! Screenshots of each step are kept in `target/console-screenshots/`.
//! Every wait has a generous deadline; nothing asserts how fast.

#[path = "../common/mod.rs"]
mod common;
mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dnlb_testkit::{write_pcap, CLIENT_MAC, GATEWAY_MAC};
use etherparse::PacketBuilder;
use serde_json::{json, Value};
use webdriver::Browser;

const TOKEN: &str = "console-test-token";
/// How long a test waits for the page to show something.
const WAIT_SECS: u64 = 90;

/// 400 UDP flows to the VIP.
fn traffic(path: &Path) {
    let frames: Vec<Vec<u8>> = (0..400u16)
        .map(|f| {
            let b = PacketBuilder::ethernet2(CLIENT_MAC, GATEWAY_MAC)
                .ipv4([198, 18, (f >> 8) as u8, f as u8], [192, 0, 2, 10], 64)
                .udp(1024 + f, 80);
            let mut v = Vec::new();
            b.write(&mut v, &[0u8; 18]).unwrap();
            v
        })
        .collect();
    write_pcap(path, &frames).unwrap();
}

/// Where screenshots are kept: `target/console-screenshots/TEST/`.
fn shots(test: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("console-screenshots").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Python HTTP server on `ip:port`: a real health target, killed by PID
/// when dropped.
fn http_target(ip: &str, port: u16, dir: &Path) -> common::ChildGuard {
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", ip])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting python3 -m http.server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect((ip, port)).is_err() {
        assert!(Instant::now() < deadline, "{ip}:{port} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    common::ChildGuard::new(child)
}

/// A running gateway with its health targets.
struct Gateway {
    targets: Vec<common::ChildGuard>,
    _child: common::ChildGuard,
    url: String,
    cfg: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Group `web` with backends 127.0.0.1 (zone a) and 127.0.0.2 (zone
    /// b), each checked over HTTP (every 500 ms, 2 failures: down).
    fn start(tag: &str) -> Gateway {
        let dir = common::tempdir();
        let pcap = dir.path().join("traffic.pcap");
        traffic(&pcap);
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let targets = vec![
            http_target("127.0.0.1", port, dir.path()),
            http_target("127.0.0.2", port, dir.path()),
        ];
        let mut eal = common::eal_args(tag);
        eal.push("--lcores=0@0,1@1".into());
        let text = format!(
            "[gateway]\nname = \"console\"\nzone = \"a\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
             idle_polls_before_sleep = 64\nidle_sleep_us = 200\n\
             [[dataplane.ports]]\nname = \"net_pcap0\"\ndevargs = \"rx_pcap={},infinite_rx=1\"\n\
             [admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n\
             [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
             [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"web\"\n\
             [[target_group]]\nname = \"web\"\n\
             [target_group.health_check]\ntype = \"http\"\nport = {port}\npath = \"/\"\n\
             interval_ms = 500\ntimeout_ms = 400\nhealthy_threshold = 2\nunhealthy_threshold = 2\n\
             [[target_group.backend]]\naddress = \"127.0.0.1\"\ntunnel = \"gue\"\nzone = \"a\"\n\
             [[target_group.backend]]\naddress = \"127.0.0.2\"\ntunnel = \"gue\"\nzone = \"b\"\n",
            common::toml_list(&eal),
            pcap.display(),
            token.display(),
        );
        let cfg = dir.path().join("gw.toml");
        std::fs::write(&cfg, text).unwrap();
        let (child, events) = common::spawn_dnlb(&[
            "run",
            "--watch-config-ms",
            "0",
            "--config",
            cfg.to_str().unwrap(),
        ]);
        let url = format!("http://{}", common::admin_addr(&events));
        // The events are not needed past this point; dropping the receiver
        // lets dnlb's reader thread end.
        drop(events);
        Gateway {
            targets,
            _child: child,
            url,
            cfg,
            _dir: dir,
        }
    }

    fn status(&self) -> Value {
        ureq::get(&format!("{}/v1/status", self.url))
            .timeout(Duration::from_secs(30))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    fn backend(&self, address: &str) -> Value {
        self.status()["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["address"] == address)
            .cloned()
            .unwrap_or_else(|| panic!("no backend {address}"))
    }
}

/// The `data-last` rate and the points of the chart line `name` in chart
/// `chart`.
fn line(b: &Browser, chart: &str, name: &str) -> Option<(f64, String)> {
    let v = b.eval(
        "const l = document.querySelector('#chart-' + arguments[0] + ' polyline[data-name=\"' + arguments[1] + '\"]');\
         return l ? [Number(l.dataset.last), l.getAttribute('points')] : null;",
        json!([chart, name]),
    );
    Some((v[0].as_f64()?, v[1].as_str()?.to_string()))
}

/// The page's state word of backend `key`'s row (`web/127.0.0.2`).
fn page_state(b: &Browser, id: &str) -> Option<String> {
    b.text(&format!("#{id}-state"))
}

/// A write from the page's own origin, with or without the token; the
/// HTTP status the server answered.
fn fetch_status(b: &Browser, method: &str, path: &str, body: Value, token: Option<&str>) -> u64 {
    let v = b.eval_async(
        "const [m, p, body, tok, done] = arguments;\
         const h = {'Content-Type': 'application/json'};\
         if (tok) h.Authorization = 'Bearer ' + tok;\
         fetch(p, {method: m, headers: h, body: JSON.stringify(body)}).then(r => done(r.status), e => done(String(e)));",
        json!([method, path, body, token]),
    );
    v.as_u64().unwrap_or_else(|| panic!("fetch failed: {v}"))
}

#[test]
fn console_shows_the_gateway_moves_with_traffic_and_drains_a_backend() {
    let gw = Gateway::start("console");
    let shots = shots("drain");
    let b = Browser::start();

    // The page and its assets come from the gateway with the policy.
    let page = ureq::get(&format!("{}/", gw.url)).call().unwrap();
    assert!(page.content_type().starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap().to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));

    b.goto(&format!("{}/", gw.url));
    assert_eq!(b.eval("return document.title", json!([])), "dnlb console");
    // Listeners and backends, grouped by zone.
    b.wait_for(
        "the listener and both backends on the page",
        WAIT_SECS,
        |b| {
            let l = b.text("#listeners")?;
            let g = b.text("#groups")?;
            (l.contains("web")
                && l.contains("192.0.2.10")
                && g.contains("127.0.0.1")
                && g.contains("127.0.0.2")
                && g.contains("Zone a")
                && g.contains("Zone b"))
            .then_some(())
        },
    );
    assert!(b.text("#summary").unwrap().contains("Config generation 1"));
    b.wait_for("both backends up", WAIT_SECS, |b| {
        (page_state(b, "b-web_127_0_0_1")? == "up" && page_state(b, "b-web_127_0_0_2")? == "up")
            .then_some(())
    });
    b.screenshot(&shots.join("1-loaded.png"));

    // The charts move: rates above zero, and the lines change from one
    // second to the next.
    let (rate, points) = b.wait_for("packets/s of listener web above 0", WAIT_SECS, |b| {
        line(b, "listener-packets", "web").filter(|(r, _)| *r > 0.0)
    });
    let bytes = b.wait_for("bytes/s of listener web above 0", WAIT_SECS, |b| {
        line(b, "listener-bytes", "web").filter(|(r, _)| *r > 0.0)
    });
    b.wait_for("the packets/s line to move", WAIT_SECS, |b| {
        line(b, "listener-packets", "web").filter(|(_, p)| *p != points)
    });
    b.wait_for("a backend's packets/s above 0", WAIT_SECS, |b| {
        let one = line(b, "backend-packets", "web/127.0.0.1")?.0;
        let two = line(b, "backend-packets", "web/127.0.0.2")?.0;
        (one + two > 0.0).then_some(())
    });
    eprintln!("listener web: {rate:.0} packets/s, {:.0} bytes/s", bytes.0);
    b.eval(
        "document.getElementById('traffic-h').scrollIntoView()",
        json!([]),
    );
    b.screenshot(&shots.join("2-traffic.png"));
    b.eval("window.scrollTo(0, 0)", json!([]));

    // Read-only without the token: buttons disabled, and the server
    // refuses a write the page sends anyway.
    let drain = "#b-web_127_0_0_2-drain";
    assert_eq!(
        b.eval(
            "return document.querySelector(arguments[0]).disabled",
            json!([drain])
        ),
        true
    );
    let path = "/v1/target_groups/web/backends/127.0.0.2/drain";
    assert_eq!(
        fetch_status(&b, "PUT", path, json!({"deadline_secs": 600}), None),
        401
    );
    assert_eq!(
        fetch_status(
            &b,
            "PUT",
            path,
            json!({"deadline_secs": 600}),
            Some("wrong")
        ),
        401
    );
    assert!(gw.backend("127.0.0.2")["drain_until"].is_null());

    // With the token typed in: drain 127.0.0.2 from the page, confirmed in
    // its dialog.
    b.type_into("#token", TOKEN);
    b.click("#token-use");
    b.wait_for("the drain button enabled", WAIT_SECS, |b| {
        (b.eval(
            "return !document.querySelector(arguments[0]).disabled",
            json!([drain]),
        ) == true)
            .then_some(())
    });
    assert_eq!(
        b.eval("return sessionStorage.getItem('dnlb-token')", json!([])),
        TOKEN
    );
    b.click(drain);
    assert_eq!(
        b.eval("return document.getElementById('confirm').open", json!([])),
        true
    );
    assert_eq!(
        b.eval("return document.activeElement.id", json!([])),
        "cf-secs",
        "the dialog takes the focus"
    );
    b.type_into("#cf-secs", "600");
    let what = b.text("#confirm-what").unwrap();
    assert!(
        what.contains("PUT /v1/target_groups/web/backends/127.0.0.2/drain {\"deadline_secs\":600}"),
        "{what}"
    );
    assert!(
        gw.backend("127.0.0.2")["drain_until"].is_null(),
        "nothing sent before confirming"
    );
    b.screenshot(&shots.join("3-confirm-drain.png"));
    b.click("#confirm-ok");

    // It reaches the gateway, its run-time changes file and the page.
    let until = b.wait_for("the drain on the gateway", WAIT_SECS, |_| {
        gw.backend("127.0.0.2")["drain_until"]
            .as_str()
            .map(str::to_string)
    });
    let runtime = std::fs::read_to_string(gw.cfg.with_file_name("gw.runtime.toml")).unwrap();
    assert!(
        runtime.contains("127.0.0.2") && runtime.contains(&until),
        "{runtime}"
    );
    b.wait_for("the backend draining on the page", WAIT_SECS, |b| {
        (page_state(b, "b-web_127_0_0_2")? == "draining").then_some(())
    });
    b.wait_for("the drain in the page's events", WAIT_SECS, |b| {
        let e = b.text("#events")?;
        (e.contains("Drain web/127.0.0.2: done") && e.contains("up → draining")).then_some(())
    });
    assert!(b.text("#gateway").unwrap().contains("drain"));
    b.screenshot(&shots.join("4-drained.png"));

    // The dry run: a new backend is a diff line; a bad tunnel is an error
    // naming the file and line. Nothing is applied.
    let mut text = std::fs::read_to_string(&gw.cfg).unwrap();
    text.push_str(
        "[[target_group.backend]]\naddress = \"10.9.9.9\"\ntunnel = \"ipip\"\nzone = \"b\"\n",
    );
    let generation = gw.status()["generation"].clone();
    b.type_into("#check-text", &text);
    b.click("#check-run");
    let out = b.wait_for("the dry run's answer", WAIT_SECS, |b| {
        b.text("#check-out").filter(|t| t.starts_with("Valid"))
    });
    assert!(
        out.contains("\n- target group web: 2 backend(s)\n+ target group web: 3 backend(s)"),
        "{out}"
    );
    assert!(
        out.contains("\n+   10.9.9.9 port 0 vm weight 100 zone b tunnel ipip"),
        "{out}"
    );
    assert_eq!(
        out.matches("\n+ ").count() + out.matches("\n- ").count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("127.0.0.2 port 0 vm weight 100 zone b tunnel gue port 6080 draining until"),
        "{out}"
    );
    b.eval(
        "document.getElementById('check-out').scrollIntoView()",
        json!([]),
    );
    b.screenshot(&shots.join("5-dry-run.png"));
    b.type_into("#check-text", &text.replace("\"ipip\"", "\"nope\""));
    b.click("#check-run");
    let out = b.wait_for("the dry run's errors", WAIT_SECS, |b| {
        b.text("#check-out").filter(|t| t.starts_with("Invalid"))
    });
    assert!(out.contains("gw.toml:") && out.contains("nope"), "{out}");
    assert_eq!(
        gw.status()["generation"],
        generation,
        "a dry run changes nothing"
    );
    assert!(!gw.status()["backends"].to_string().contains("10.9.9.9"));
}

#[test]
fn console_shows_a_killed_health_target_down() {
    let mut gw = Gateway::start("console-health");
    let shots = shots("health");
    let b = Browser::start();
    b.goto(&format!("{}/console/", gw.url));
    b.wait_for("both backends up", WAIT_SECS, |b| {
        (page_state(b, "b-web_127_0_0_1")? == "up" && page_state(b, "b-web_127_0_0_2")? == "up")
            .then_some(())
    });
    b.screenshot(&shots.join("1-up.png"));

    // Kill 127.0.0.2's HTTP server: 2 failed probes 500 ms apart (each
    // failing within its 400 ms timeout) turn it down.
    let killed = Instant::now();
    gw.targets.pop();
    b.wait_for("127.0.0.2 down on the page", WAIT_SECS, |b| {
        (page_state(b, "b-web_127_0_0_2")? == "down").then_some(())
    });
    eprintln!(
        "127.0.0.2 down on the page {:.1} s after its server was killed \
         (thresholds: 2 failures, 500 ms interval, 400 ms timeout, page polls every 1 s)",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(page_state(&b, "b-web_127_0_0_1").as_deref(), Some("up"));
    assert_eq!(gw.backend("127.0.0.2")["healthy"], false);
    b.wait_for("the change in the page's events", WAIT_SECS, |b| {
        b.text("#events")?
            .contains("web/127.0.0.2: up → down")
            .then_some(())
    });
    assert_eq!(
        b.eval(
            "return document.querySelector('#b-web_127_0_0_2').dataset.state",
            json!([])
        ),
        "down"
    );
    b.screenshot(&shots.join("2-down.png"));
}

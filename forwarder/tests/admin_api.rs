//! The admin API against a running `dnlb` with traffic through its DPDK
//! worker (a pcap replayed from memory): status, register/deregister,
//! weights, drains with a deadline, elastic IP attach/detach, reload, the
//! bearer token, the Prometheus endpoint (checked by `promtool`), `dnlb
//! status`, run-time changes persisted beside the config and kept across a
//! restart, and races between API changes, SIGHUPs and file changes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use dnlb_testkit::{write_pcap, CLIENT_MAC, GATEWAY_MAC};
use etherparse::PacketBuilder;
use serde_json::{json, Value};

const ELASTIC: [u8; 4] = [198, 51, 100, 77];
const TOKEN: &str = "s3cret-token";

/// 400 UDP flows to the VIP and 400 to the elastic IP.
fn traffic(path: &Path) {
    let mut frames = Vec::new();
    for dst in [[192, 0, 2, 10], ELASTIC] {
        for f in 0..400u16 {
            let b = PacketBuilder::ethernet2(CLIENT_MAC, GATEWAY_MAC)
                .ipv4([198, 18, (f >> 8) as u8, f as u8], dst, 64)
                .udp(1024 + f, 80);
            let mut v = Vec::new();
            b.write(&mut v, &[0u8; 18]).unwrap();
            frames.push(v);
        }
    }
    write_pcap(path, &frames).unwrap();
}

fn config(eal: &[String], pcap: &Path, token_file: &Path, extra: &str) -> String {
    format!(
        "[gateway]\nname = \"api\"\nzone = \"a\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         idle_polls_before_sleep = 64\nidle_sleep_us = 200\n\
         [[dataplane.ports]]\nname = \"net_pcap0\"\ndevargs = \"rx_pcap={},infinite_rx=1\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"web\"\n\
         [[target_group]]\nname = \"web\"\n\
         [[target_group.backend]]\naddress = \"10.1.0.1\"\ntunnel = \"gue\"\nzone = \"a\"\n\
         [[target_group.backend]]\naddress = \"10.1.0.2\"\ntunnel = \"gue\"\nzone = \"b\"\n{extra}",
        common::toml_list(eal),
        pcap.display(),
        token_file.display(),
    )
}

struct Api {
    base: String,
}

impl Api {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, body, Some(TOKEN))
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut req =
            ureq::request(method, &format!("{}{path}", self.base)).timeout(Duration::from_secs(20));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let r = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let (code, resp) = match r {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(c, r)) => (c, r),
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let text = resp.into_string().unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (code, v) = self.call(method, path, body);
        assert_eq!(code, 200, "{method} {path}: {v}");
        v
    }

    fn status(&self) -> Value {
        self.ok("GET", "/v1/status", None)
    }

    fn backend(&self, address: &str) -> Option<Value> {
        self.status()["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["address"] == address)
            .cloned()
    }

    fn not_for_vip(&self) -> u64 {
        self.status()["drops"]["not_for_vip"].as_u64().unwrap()
    }
}

type Events = std::sync::mpsc::Receiver<serde_json::Value>;

fn start(cfg_path: &Path) -> (common::ChildGuard, Events, Api) {
    let cfg = cfg_path.to_str().unwrap().to_string();
    let (child, lines) = common::spawn_dnlb(&["run", "--watch-config-ms", "0", "--config", &cfg]);
    let base = admin_url(&lines);
    (child, lines, Api { base })
}

/// The admin API's URL, once the gateway is ready.
fn admin_url(lines: &Events) -> String {
    let l = common::wait_event(lines, "admin_listening", |_| true);
    common::wait_event(lines, "ready", |_| true);
    l["url"].as_str().unwrap().to_string()
}

/// Polls `probe` every 50 ms until `done` holds for what it returns (and
/// returns that), failing with the last value seen after
/// [`common::EVENT_DEADLINE`].
fn wait_until<T: std::fmt::Debug>(
    what: &str,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + common::EVENT_DEADLINE;
    loop {
        let seen = probe();
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the counter `f` reads grows (the workers keep counting; a
/// worker that is descheduled answers late, and its counters stay stale
/// meanwhile).
fn wait_growth(api: &Api, what: &str, f: impl Fn(&Api) -> u64) {
    let a = f(api);
    wait_until(&format!("{what} to grow from {a}"), || f(api), |&b| b > a);
}

/// Whether the counter `f` reads grows within 300 ms. To tell that a change
/// stopped it, call it once the worker runs that change
/// ([`wait_adopted`]).
fn grows(api: &Api, f: impl Fn(&Api) -> u64) -> bool {
    let a = f(api);
    std::thread::sleep(Duration::from_millis(300));
    f(api) > a
}

/// Waits until the worker runs generation `generation` or a later one (it
/// answers `dnlb explain` with the one it runs). A change is published
/// when the API answers; the worker takes it at its next burst, and until
/// then counts packets by the one before.
fn wait_adopted(api: &Api, generation: &Value) {
    let g = generation.as_u64().unwrap();
    let path = "/v1/explain?src=198.18.0.1&sport=1025&dst=192.0.2.10&dport=80&proto=udp";
    wait_until(
        &format!("the worker to run generation {g}"),
        || api.ok("GET", path, None)["workers"].clone(),
        |w| w[0]["generation"].as_u64() >= Some(g),
    );
}

#[test]
fn admin_api_changes_the_running_gateway_and_persists_them() {
    let dir = common::tempdir();
    let pcap = dir.path().join("traffic.pcap");
    traffic(&pcap);
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let mut eal = common::eal_args("api");
    eal.push("--lcores=0@0,1@1".into());
    let cfg_path = dir.path().join("gw.toml");
    std::fs::write(&cfg_path, config(&eal, &pcap, &token, "")).unwrap();
    let (child, lines, api) = start(&cfg_path);

    // A client that never finishes its request holds up only itself.
    let mut slow = std::net::TcpStream::connect(api.base.trim_start_matches("http://")).unwrap();
    use std::io::Write;
    write!(
        slow,
        "POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n0123456789"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(api.status()["gateway"], "api");

    // Reads on loopback are open; writes need the token; a wrong token is
    // refused even for reads.
    let (code, v) = api.call_with("GET", "/v1/status", None, None);
    assert_eq!(code, 200, "{v}");
    let (code, v) = api.call_with("POST", "/v1/reload", None, None);
    assert_eq!(code, 401, "{v}");
    let (code, _) = api.call_with("GET", "/metrics", None, Some("wrong"));
    assert_eq!(code, 401);

    let s = api.status();
    assert_eq!(s["gateway"], "api");
    assert_eq!(s["generation"], 1);
    assert_eq!(s["backends"].as_array().unwrap().len(), 2);
    assert_eq!(s["listeners"][0]["name"], "web");
    // The elastic IP is not attached: its traffic is not for a VIP.
    wait_growth(&api, "not_for_vip", Api::not_for_vip);

    // Attach the elastic IP: its traffic is balanced too.
    let v = api.ok(
        "PUT",
        "/v1/listeners/web/elastic_ip",
        Some(json!({"address": "198.51.100.77"})),
    );
    assert_eq!(v["generation"], 2);
    common::wait_event(&lines, "changed", |e| {
        e["change"] == "attach 198.51.100.77 to listener web"
    });
    wait_adopted(&api, &v["generation"]);
    assert!(
        !grows(&api, Api::not_for_vip),
        "attached: all traffic is for a VIP"
    );
    assert_eq!(api.status()["listeners"][0]["elastic_ip"], "198.51.100.77");

    // Register a backend: it takes traffic (new flows only: existing flows
    // stay where they are, so look at its counters moving at all).
    let v = api.ok(
        "POST",
        "/v1/target_groups/web/backends",
        Some(json!({"address": "10.1.0.3", "tunnel": "gue", "zone": "b", "weight": 100})),
    );
    assert_eq!(v["generation"], 3);
    let b3 = api.backend("10.1.0.3").expect("registered");
    assert_eq!(b3["runtime"], true);
    assert_eq!(b3["takes_new_flows"], true);

    // Bad changes are refused and change nothing.
    let (code, v) = api.call(
        "POST",
        "/v1/target_groups/nope/backends",
        Some(json!({"address": "10.1.0.9", "tunnel": "gue"})),
    );
    assert_eq!(code, 404, "{v}");
    let (code, v) = api.call(
        "POST",
        "/v1/target_groups/web/backends",
        Some(json!({"address": "10.1.0.9", "tunnel": "vxlan"})),
    );
    assert_eq!(code, 422, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("a VXLAN backend needs a vni"),
        "{v}"
    );
    let (code, _) = api.call(
        "PUT",
        "/v1/target_groups/web/backends/10.9.9.9/weight",
        Some(json!({"weight": 5})),
    );
    assert_eq!(code, 404);
    let (code, _) = api.call(
        "PUT",
        "/v1/listeners/web/elastic_ip",
        Some(json!({"address": "192.0.2.10"})),
    );
    assert_eq!(code, 422, "the elastic IP may not repeat a VIP");
    assert_eq!(api.status()["generation"], 3);

    // Weight 0: no new flows, established flows stay (their packets keep
    // coming: the replay repeats the same flows).
    api.ok(
        "PUT",
        "/v1/target_groups/web/backends/10.1.0.1/weight",
        Some(json!({"weight": 0})),
    );
    let b1 = api.backend("10.1.0.1").unwrap();
    assert_eq!(
        (b1["usable"].clone(), b1["takes_new_flows"].clone()),
        (json!(true), json!(false))
    );
    wait_growth(&api, "10.1.0.1's packets", |a| {
        a.backend("10.1.0.1").unwrap()["packets"].as_u64().unwrap()
    });

    // Drain with a deadline: established flows stay until it, then move.
    api.ok(
        "PUT",
        "/v1/target_groups/web/backends/10.1.0.2/drain",
        Some(json!({"deadline_secs": 2})),
    );
    let b2 = api.backend("10.1.0.2").unwrap();
    assert_eq!(b2["usable"], true);
    assert!(b2["drain_until"].is_string(), "{b2}");
    wait_growth(&api, "10.1.0.2's packets", |a| {
        a.backend("10.1.0.2").unwrap()["packets"].as_u64().unwrap()
    });
    let drained = common::wait_event(&lines, "republished", |e| e["cause"] == "drain");
    let b2 = api.backend("10.1.0.2").unwrap();
    assert_eq!(b2["usable"], false, "{b2}");
    wait_adopted(&api, &drained["generation"]);
    assert!(!grows(&api, |a| a.backend("10.1.0.2").unwrap()["packets"]
        .as_u64()
        .unwrap()));
    // Counted by the worker, read fresh when it answers in time.
    wait_until(
        "flows rescheduled",
        || api.status()["flows"].clone(),
        |f| f["rescheduled"].as_u64().unwrap() > 0,
    );

    // Deregister the one we registered: gone.
    api.ok("DELETE", "/v1/target_groups/web/backends/10.1.0.3", None);
    assert!(api.backend("10.1.0.3").is_none());

    // Reload through the API: nothing changed, nothing rebuilt.
    let v = api.ok("POST", "/v1/reload", None);
    assert_eq!(v["tables_rebuilt"], 0, "{v}");

    // The Prometheus endpoint passes promtool.
    let (code, metrics) = api.call("GET", "/metrics", None);
    assert_eq!(code, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    for want in [
        "dnlb_listener_packets_total{listener=\"web\"}",
        "dnlb_backend_healthy{target_group=\"web\",backend=\"10.1.0.1\"",
        "dnlb_flow_table_entries",
        "dnlb_reloads_total{result=\"ok\"} 1",
        "dnlb_config_generation",
        "dnlb_port_received_packets_total{port=\"net_pcap0\"}",
        "dnlb_port_rx_missed_packets_total{port=\"net_pcap0\"}",
    ] {
        assert!(metrics.contains(want), "{want} missing:\n{metrics}");
    }
    promtool_check(&metrics);

    // `dnlb status` renders the same state as a table.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dnlb"))
        .args([
            "status",
            "--api",
            &api.base,
            "--token-file",
            token.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "gateway api (zone a)",
        "LISTENER",
        "198.51.100.77 (elastic)",
        "10.1.0.1",
        "standby",
        "drained",
        "run-time changes (kept in",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }

    // Stop; the changes are in the file beside the config...
    common::signal(&child, "-TERM");
    drop(child);
    let runtime = dir.path().join("gw.runtime.toml");
    let kept = std::fs::read_to_string(&runtime).unwrap();
    assert!(
        kept.contains("[[weight]]")
            && kept.contains("[[drain]]")
            && kept.contains("[[elastic_ip]]"),
        "{kept}"
    );
    assert!(
        !kept.contains("10.1.0.3"),
        "deregistered: forgotten\n{kept}"
    );
    // ...`dnlb check` shows them...
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dnlb"))
        .args(["check", cfg_path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("run-time changes from"), "{text}");
    assert!(
        text.contains("weight: target group \"web\" backend 10.1.0.1 = 0"),
        "{text}"
    );
    assert!(
        text.contains("listener web: 192.0.2.10, 198.51.100.77"),
        "{text}"
    );
    // ...and a restart keeps them.
    let (child, _lines, api) = start(&cfg_path);
    let b1 = api.backend("10.1.0.1").unwrap();
    assert_eq!(
        (b1["weight"].clone(), b1["runtime"].clone()),
        (json!(0), json!(true))
    );
    assert_eq!(
        api.backend("10.1.0.2").unwrap()["usable"],
        false,
        "still drained"
    );
    assert_eq!(api.status()["listeners"][0]["elastic_ip"], "198.51.100.77");
    // Detach the elastic IP: its traffic is no longer for a VIP.
    api.ok("DELETE", "/v1/listeners/web/elastic_ip", None);
    wait_growth(&api, "not_for_vip", Api::not_for_vip);

    // A hand edit of the run-time changes file takes effect on reload: drop
    // the [[weight]] entry, and 10.1.0.1 is back to its configured weight.
    let kept = std::fs::read_to_string(&runtime).unwrap();
    let start = kept.find("[[weight]]").expect("a weight entry");
    let end = kept[start + 1..]
        .find("\n[[")
        .map_or(kept.len(), |i| start + 1 + i + 1);
    std::fs::write(&runtime, format!("{}{}", &kept[..start], &kept[end..])).unwrap();
    api.ok("POST", "/v1/reload", None);
    assert_eq!(api.backend("10.1.0.1").unwrap()["weight"], 100);
    assert_eq!(
        api.backend("10.1.0.2").unwrap()["usable"],
        false,
        "other changes stay"
    );

    // The token is re-read on reload: rotate it.
    std::fs::write(&token, "rotated-token\n").unwrap();
    api.ok("POST", "/v1/reload", None);
    let (code, _) = api.call("GET", "/v1/status", None);
    assert_eq!(code, 401, "the old token no longer works");
    let (code, v) = api.call_with("GET", "/v1/status", None, Some("rotated-token"));
    assert_eq!(code, 200, "{v}");
    common::signal(&child, "-TERM");
}

/// Runs `promtool check metrics` on `text`.
fn promtool_check(text: &str) {
    use std::io::Write;
    let mut p = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// API changes, SIGHUPs and config-file rewrites at once, under traffic:
/// every change is applied or refused cleanly, and no packet is lost.
/// What the race tests share: a scratch directory with the traffic (all
/// for the VIP or its elastic IP, replayed forever) and the token.
struct RaceBed {
    dir: tempfile::TempDir,
    eal: Vec<String>,
}

impl RaceBed {
    fn new(tag: &str) -> Self {
        let dir = common::tempdir();
        traffic(&dir.path().join("traffic.pcap"));
        std::fs::write(dir.path().join("token"), TOKEN).unwrap();
        let mut eal = common::eal_args(tag);
        eal.push("--lcores=0@0,1@1".into());
        RaceBed { dir, eal }
    }

    /// The config with the elastic IP (so all traffic is for a listener)
    /// and `extra` appended.
    fn config(&self, extra: &str) -> String {
        let d = self.dir.path();
        config(&self.eal, &d.join("traffic.pcap"), &d.join("token"), extra).replace(
            "vips = [\"192.0.2.10\"]",
            "vips = [\"192.0.2.10\"]\nelastic_ip = \"198.51.100.77\"",
        )
    }
}

/// Stops the gateway and returns its final totals: received, transmitted,
/// dropped, and the report.
fn stop_for_totals(child: common::ChildGuard, lines: &Events) -> (u64, u64, u64, Value) {
    common::signal(&child, "-TERM");
    let total = common::final_report(lines)["total"].clone();
    let mut child = child;
    assert!(child.0.wait().unwrap().success());
    (
        common::num(&total["rx_packets"]),
        common::num(&total["tx_packets"]),
        common::num(&total["dropped"]),
        total,
    )
}

/// `n` SIGHUPs to process `pid`, 25 ms apart.
fn sighups(pid: &str, n: u32) {
    for _ in 0..n {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", pid])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `n` atomic rewrites of the config file `path` with `text(i)`, 35 ms
/// apart (a watcher reloads it).
fn rewrites(path: &Path, n: u8, text: impl Fn(u8) -> String) {
    let tmp = path.with_extension("toml.tmp");
    for i in 0..n {
        std::fs::write(&tmp, text(i)).unwrap();
        std::fs::rename(&tmp, path).unwrap();
        std::thread::sleep(Duration::from_millis(35));
    }
}

#[test]
fn reload_races_lose_no_packet() {
    let bed = RaceBed::new("race");
    let dir = &bed.dir;
    let cfg_path = dir.path().join("gw.toml");
    let cfg = |w: u8| {
        bed.config(&format!(
            "[[target_group.backend]]\naddress = \"10.1.0.4\"\ntunnel = \"gue\"\nweight = {w}\n"
        ))
    };
    std::fs::write(&cfg_path, cfg(100)).unwrap();
    let path = cfg_path.to_str().unwrap().to_string();
    let (child, lines) = common::spawn_dnlb(&["run", "--watch-config-ms", "30", "--config", &path]);
    let api = Api {
        base: admin_url(&lines),
    };
    let pid = child.0.id().to_string();
    std::thread::scope(|s| {
        // API: flip a weight, register and deregister, drain and undrain.
        s.spawn(|| {
            for i in 0..20u32 {
                let w = if i % 2 == 0 { 0 } else { 100 };
                api.ok(
                    "PUT",
                    "/v1/target_groups/web/backends/10.1.0.1/weight",
                    Some(json!({"weight": w})),
                );
                api.ok(
                    "POST",
                    "/v1/target_groups/web/backends",
                    Some(json!({"address": "10.1.0.9", "tunnel": "gue"})),
                );
                api.ok(
                    "PUT",
                    "/v1/target_groups/web/backends/10.1.0.2/drain",
                    Some(json!({"deadline_secs": 60})),
                );
                api.ok("DELETE", "/v1/target_groups/web/backends/10.1.0.9", None);
                api.ok(
                    "DELETE",
                    "/v1/target_groups/web/backends/10.1.0.2/drain",
                    None,
                );
                api.ok("POST", "/v1/reload", None);
            }
        });
        s.spawn(|| sighups(&pid, 40));
        s.spawn(|| rewrites(&cfg_path, 40, |i| cfg(if i % 2 == 0 { 50 } else { 100 })));
    });
    let s = api.status();
    assert_eq!(s["reloads_rejected"], 0, "{s}");
    let generation = s["generation"].as_u64().unwrap();
    assert!(
        generation > 100,
        "every change published a generation: {generation}"
    );
    // The API's view and the file agree after the dust settles.
    let runtime = std::fs::read_to_string(dir.path().join("gw.runtime.toml")).unwrap();
    assert!(runtime.contains("weight = 100"), "{runtime}");
    assert!(
        !runtime.contains("10.1.0.9"),
        "deregistered last: {runtime}"
    );
    assert!(!runtime.contains("until"), "undrained last: {runtime}");
    let (rx, tx, dropped, total) = stop_for_totals(child, &lines);
    assert!(rx > 10_000, "traffic flowed during the races: {total}");
    assert_eq!(dropped, 0, "{total}");
    assert_eq!(rx, tx, "{total}");
}

/// Access lists changed through the API, SIGHUPs and file rewrites while
/// traffic flows: no change ever denies the traffic's sources, and no
/// allowed packet is lost. Then a deny rule for half of them: those are
/// dropped as `acl_denied` and the rule's counter rises, in the status and
/// in `/metrics`; a broken list is refused with the running one kept; and
/// removing the list lets everyone in again.
#[test]
fn acl_changes_under_traffic_lose_no_allowed_packet_and_rules_count() {
    let bed = RaceBed::new("aclrace");
    let dir = &bed.dir;
    let cfg_path = dir.path().join("gw.toml");
    // Every list lets 198.18.0.0/16 (the traffic's sources) in.
    let cfg = |i: u8| {
        bed.config("")
            .replace(
                "target_group = \"web\"\n",
                &format!("target_group = \"web\"\n[listener.acl]\ndefault = \"deny\"\nallow = [\"198.18.0.0/16\", \"10.{i}.0.0/16\"]\n"),
            )
    };
    std::fs::write(&cfg_path, cfg(0)).unwrap();
    let path = cfg_path.to_str().unwrap().to_string();
    let (child, lines) = common::spawn_dnlb(&["run", "--watch-config-ms", "30", "--config", &path]);
    let api = Api {
        base: admin_url(&lines),
    };
    let pid = child.0.id().to_string();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..30u32 {
                let acl = if i % 2 == 0 {
                    json!({"default": "deny", "allow": ["198.18.0.0/16"], "deny": [format!("198.19.{i}.0/24"), "203.0.113.0/24"]})
                } else {
                    json!({"default": "allow", "deny": [format!("10.{i}.0.0/16"), "198.17.0.0/16"]})
                };
                api.ok("PUT", "/v1/listeners/web/acl", Some(acl));
            }
        });
        s.spawn(|| sighups(&pid, 30));
        s.spawn(|| rewrites(&cfg_path, 30, cfg));
    });
    let s = api.status();
    assert_eq!(s["reloads_rejected"], 0, "{s}");
    assert_eq!(s["drops"]["acl_denied"], 0, "{s}");
    // Deny half of the sources (198.18.1.0/24 of 198.18.0.0 - 198.18.1.143).
    let deny = json!({"default": "allow", "deny": ["198.18.1.0/24"]});
    api.ok("PUT", "/v1/listeners/web/acl", Some(deny));
    let rule =
        "dnlb_acl_rule_packets_total{listener=\"web\",rule=\"198.18.1.0/24\",action=\"deny\"} ";
    let scrape = || {
        let (_, m) = api.call("GET", "/metrics", None);
        let m = m.as_str().unwrap().to_string();
        m.lines()
            .find_map(|l| l.strip_prefix(rule))
            .map_or(0, |v| v.parse::<u64>().unwrap())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let first = loop {
        let n = scrape();
        if n > 0 {
            break n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the deny rule never counted"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while scrape() <= first {
        assert!(std::time::Instant::now() < deadline, "the counter stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = api.status();
    let web = &s["listeners"][0];
    assert_eq!(web["acl"]["default"], "allow", "{web}");
    assert_eq!(web["acl"]["rules"][0]["prefix"], "198.18.1.0/24", "{web}");
    assert!(web["acl"]["rules"][0]["packets"].as_u64().unwrap() > 0);
    assert!(web["acl"]["default_packets"].as_u64().unwrap() > 0, "{web}");
    assert!(web["drops"]["acl_denied"].as_u64().unwrap() > 0, "{web}");
    // A broken list is refused; the running one stays.
    let (code, v) = api.call(
        "PUT",
        "/v1/listeners/web/acl",
        Some(json!({"deny": ["198.18.1.1/24"]})),
    );
    assert_eq!(code, 422, "{v}");
    assert!(v.to_string().contains("did you mean"), "{v}");
    let (code, _) = api.call(
        "PUT",
        "/v1/listeners/nope/acl",
        Some(json!({"deny": ["198.18.1.0/24"]})),
    );
    assert_eq!(code, 404);
    assert_eq!(
        api.status()["listeners"][0]["acl"]["rules"][0]["prefix"],
        "198.18.1.0/24"
    );
    // Kept beside the config; removing the list lets everyone in.
    let runtime = std::fs::read_to_string(dir.path().join("gw.runtime.toml")).unwrap();
    assert!(
        runtime.contains("[[acl]]") && runtime.contains("198.18.1.0/24"),
        "{runtime}"
    );
    let v = api.ok("DELETE", "/v1/listeners/web/acl", None);
    let s = api.status();
    assert!(s["listeners"][0].get("acl").is_none(), "{s}");
    // The worker denies by the old list until its next burst: the count
    // settles once it runs the new one.
    wait_adopted(&api, &v["generation"]);
    let s = api.status();
    let denied = s["drops"]["acl_denied"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        api.status()["drops"]["acl_denied"],
        denied,
        "no more denials"
    );
    let (rx, tx, dropped, total) = stop_for_totals(child, &lines);
    assert!(rx > 10_000, "traffic flowed: {total}");
    assert_eq!(dropped, denied, "only the denied sources' packets: {total}");
    assert_eq!(rx, tx + dropped, "{total}");
}

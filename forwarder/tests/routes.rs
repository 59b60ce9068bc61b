//! Route announcements through a real BIRD: dnlb announces a VIP while one
//! of its listeners has a backend taking new flows and withdraws it when
//! that ends, when the listener leaves the config, when the elastic IP is
//! detached, and on shutdown; a BIRD that is not running yet is retried.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use dnlb_forwarder::control::routes::bird_command;

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
    bird_command(sock, "show route")
        .unwrap()
        .iter()
        .filter_map(|(_, l)| {
            l.split_whitespace()
                .next()
                .filter(|p| p.contains('/'))
                .map(String::from)
        })
        .collect()
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
    let l = common::wait_event(&lines, "admin_listening", |_| true);
    let base = l["url"].as_str().unwrap().to_string();
    let token = std::fs::read_to_string(d.join("gw.admin-token")).unwrap();
    TOKEN.get_or_init(|| token.trim().to_string());
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
    let _bird = common::ChildGuard(bird);
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

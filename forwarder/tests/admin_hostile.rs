//! The admin API against clients that misbehave, on a real `dnlb` forwarding
//! a pcap replayed from memory: thousands of idle connections and clients
//! that trickle their headers while the process may open only 512 files;
//! DNS-rebinding `Host`s, cross-origin and `text/plain` POSTs and writes
//! without the token; a reader of the event stream that goes away (`dnlb run
//! | head -1`). The gateway must stay up, keep forwarding and answer once the
//! clients are gone.

mod common;

use std::io::{BufRead, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use dnlb_testkit::{write_pcap, CLIENT_MAC, GATEWAY_MAC};
use etherparse::PacketBuilder;

/// UDP flows to the VIP.
fn traffic(path: &Path) {
    let frames: Vec<Vec<u8>> = (0..256u16)
        .map(|f| {
            let b = PacketBuilder::ethernet2(CLIENT_MAC, GATEWAY_MAC)
                .ipv4([198, 18, 0, f as u8], [192, 0, 2, 10], 64)
                .udp(1024 + f, 80);
            let mut v = Vec::new();
            b.write(&mut v, &[0u8; 18]).unwrap();
            v
        })
        .collect();
    write_pcap(path, &frames).unwrap();
}

fn config(dir: &Path) -> std::path::PathBuf {
    let pcap = dir.join("traffic.pcap");
    traffic(&pcap);
    let text = format!(
        "[gateway]\nname = \"hostile\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         idle_polls_before_sleep = 64\nidle_sleep_us = 200\n\
         [[dataplane.ports]]\nname = \"net_pcap0\"\ndevargs = \"rx_pcap={},infinite_rx=1\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\nsocket = \"admin.sock\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"web\"\n\
         [[target_group]]\nname = \"web\"\n\
         [[target_group.backend]]\naddress = \"10.1.0.1\"\ntunnel = \"gue\"\n",
        common::toml_list(&common::eal_args("hostile")),
        pcap.display(),
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Received and sent packets from the next stats event.
fn rx_tx(events: &common::Events) -> (u64, u64) {
    let s = common::wait_event(events, "stats", |_| true);
    (common::num(&s["rx_packets"]), common::num(&s["tx_packets"]))
}

/// Raises this process's own open-file limit (the test opens thousands of
/// sockets; the gateway's limit is set apart).
fn raise_own_fd_limit(n: u64) {
    let ok = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={n}:{n}"),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "prlimit failed");
}

#[test]
fn thousands_of_idle_and_slow_clients_on_a_512_fd_gateway() {
    raise_own_fd_limit(8192);
    let dir = common::tempdir();
    let cfg = config(dir.path());
    let (mut child, events) = common::spawn_dnlb_via(
        &["prlimit", "--nofile=512:512", "--"],
        &[
            "run",
            "--watch-config-ms",
            "0",
            "--stats-interval-ms",
            "200",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let addr = common::admin_addr(&events);
    let (rx0, _) = rx_tx(&events);

    // 200 clients that will send a request head a byte per 100 ms (the
    // first ones take every connection the gateway serves)...
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // ...and 2000 connections that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..2000 {
        match TcpStream::connect(&addr) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect #{}: {e}", idle.len()),
        }
    }
    let head = b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for byte in head.iter().take(70) {
        for s in &mut slow {
            // The server may have closed it already (cap or timeout).
            let _ = s.write_all(&[*byte]);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the gateway died under the connections"
    );
    // It kept forwarding meanwhile.
    let (rx1, _) = rx_tx(&events);
    assert!(rx1 > rx0, "no packets forwarded during the flood");

    drop(idle);
    drop(slow);
    // Once they are gone, a status request is answered within 2 s.
    let asked = Instant::now();
    let (code, body) = common::http_raw(
        &addr,
        &common::http_request("GET", "/v1/status", &["Host: 127.0.0.1"], ""),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"gateway\": \"hostile\""), "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "status took {:?} after the clients left",
        asked.elapsed()
    );

    common::signal(&child, "-TERM");
    let report = common::final_report(&events);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
    // Every packet received was sent or counted as dropped.
    for w in report["workers"].as_array().unwrap() {
        assert_eq!(
            common::num(&w["rx_packets"]),
            common::num(&w["tx_packets"]) + common::num(&w["dropped"]),
            "{w}"
        );
    }
}

#[test]
fn rebinding_cross_origin_and_tokenless_writes_are_refused() {
    let dir = common::tempdir();
    let cfg = config(dir.path());
    let (child, events) = common::spawn_dnlb(&[
        "run",
        "--watch-config-ms",
        "0",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let addr = common::admin_addr(&events);
    // The token was created at first start, readable by its owner only.
    let token_file = dir.path().join("gw.admin-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 64);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let bearer = format!("Authorization: Bearer {token}");
    let weight = "{\"weight\": 5}";
    let path = "/v1/target_groups/web/backends/10.1.0.1/weight";
    let ask = |method: &str, path: &str, headers: &[&str], body: &str| {
        common::http_raw(&addr, &common::http_request(method, path, headers, body))
    };

    // A page elsewhere whose name now resolves to 127.0.0.1.
    let (code, body) = ask("GET", "/v1/status", &["Host: rebind.example:9100"], "");
    assert_eq!(code, 403, "{body}");
    // A browser's cross-origin "simple" POST: text/plain, no token.
    let (code, body) = ask(
        "PUT",
        path,
        &[
            "Host: 127.0.0.1",
            "Origin: http://attacker.example",
            "Content-Type: text/plain",
        ],
        weight,
    );
    assert!(code == 403 || code == 401, "{code} {body}");
    // The same with the token but from another origin, and with the token
    // but as text/plain.
    let (code, body) = ask(
        "PUT",
        path,
        &[
            "Host: 127.0.0.1",
            "Origin: http://attacker.example",
            &bearer,
            "Content-Type: application/json",
        ],
        weight,
    );
    assert_eq!(code, 403, "{body}");
    let (code, body) = ask(
        "PUT",
        path,
        &["Host: 127.0.0.1", &bearer, "Content-Type: text/plain"],
        weight,
    );
    assert_eq!(code, 415, "{body}");
    // A write without the token; the refusal names no file.
    let (code, body) = ask(
        "PUT",
        path,
        &["Host: 127.0.0.1", "Content-Type: application/json"],
        weight,
    );
    assert_eq!(code, 401, "{body}");
    assert!(!body.contains(dir.path().to_str().unwrap()), "{body}");
    // Nothing above changed the weight.
    let (_, status) = ask("GET", "/v1/backends", &["Host: localhost"], "");
    assert!(status.contains("\"weight\": 100"), "{status}");
    // The owner's call goes through.
    let (code, body) = ask(
        "PUT",
        path,
        &["Host: localhost", &bearer, "Content-Type: application/json"],
        weight,
    );
    assert_eq!(code, 200, "{body}");
    let (_, status) = ask("GET", "/v1/backends", &["Host: localhost"], "");
    assert!(status.contains("\"weight\": 5"), "{status}");
    // The Unix socket (mode 0600) takes writes without the token.
    let sock = dir.path().join("admin.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let via_socket = {
        use std::io::Read;
        let mut u = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        u.write_all(
            common::http_request(
                "PUT",
                path,
                &["Host: localhost", "Content-Type: application/json"],
                "{\"weight\": 7}",
            )
            .as_bytes(),
        )
        .unwrap();
        let mut text = String::new();
        u.read_to_string(&mut text).unwrap();
        text
    };
    assert!(via_socket.starts_with("HTTP/1.1 200"), "{via_socket}");
    let (_, status) = ask("GET", "/v1/backends", &["Host: localhost"], "");
    assert!(status.contains("\"weight\": 7"), "{status}");
    // Headers past the limit.
    let big = format!("X-Big: {}", "a".repeat(32 * 1024));
    let (code, _) = ask("GET", "/v1/status", &["Host: localhost", &big], "");
    assert_eq!(code, 431);
    drop(child);
}

#[test]
fn a_closed_event_reader_does_not_stop_the_gateway() {
    let dir = common::tempdir();
    let cfg = config(dir.path());
    // As `dnlb run ... | head -1`: read one line, then close the pipe.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dnlb"))
        .args([
            "run",
            "--events",
            "json",
            "--stats-interval-ms",
            "50",
            "--watch-config-ms",
            "0",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = serde_json::from_str::<serde_json::Value>(&first).unwrap()["url"]
        .as_str()
        .expect("the first event names the admin URL")
        .trim_start_matches("http://")
        .to_string();
    drop(out);
    let child = common::ChildGuard(
        child,
        common::dpdk_runtime_dir(&["--config", cfg.to_str().unwrap()]),
    );
    // Events keep coming (stats every 50 ms) into the closed pipe; the
    // gateway keeps running and answering.
    let deadline = Instant::now() + common::EVENT_DEADLINE;
    let mut answered = 0;
    while answered < 20 {
        assert!(Instant::now() < deadline, "the gateway stopped answering");
        let (code, _) = common::http_raw(
            &addr,
            &common::http_request("GET", "/v1/status", &["Host: localhost"], ""),
        );
        if code == 200 {
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut child = child;
    assert!(child.0.try_wait().unwrap().is_none(), "the gateway exited");
    common::signal(&child, "-TERM");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
}

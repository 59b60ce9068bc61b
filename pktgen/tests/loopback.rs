//! The real `dnlb-pktgen` binary for a few seconds against virtual ports:
//! a `net_ring` loopback (every frame comes back), `net_null` (a sink and
//! a source), and `dpdk-testpmd` as a memif peer in another process (when
//! testpmd is installed). Deadlines are generous and nothing asserts a
//! rate: the machine may be busy.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PKTGEN: &str = env!("CARGO_BIN_EXE_dnlb-pktgen");

/// A DPDK file prefix for this test process; its runtime directory (which
/// DPDK leaves in /var/run/dpdk after exit) is removed on drop.
struct Prefix(String);

impl Prefix {
    fn new(tag: &str) -> Prefix {
        Prefix(format!("pktgen-test-{tag}-{}", std::process::id()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.0));
    }
}

fn eal(prefix: &Prefix, vdev: &str) -> Vec<String> {
    [
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--no-telemetry",
        "--log-level",
        "lib.eal:error",
        "-l",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--file-prefix={}", prefix.0),
        format!("--vdev={vdev}"),
    ])
    .collect()
}

/// Runs the generator to completion (at most 60 s); its JSON lines.
fn run(eal: &[String], app: &[&str]) -> Vec<Value> {
    let mut child = Command::new(PKTGEN)
        .args(eal)
        .arg("--")
        .args(app)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting dnlb-pktgen");
    let lines = read_lines(&mut child);
    let status = wait(&mut child, Duration::from_secs(60));
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default();
    assert!(status, "dnlb-pktgen failed; stderr:\n{err}");
    lines
}

fn read_lines(child: &mut Child) -> Vec<Value> {
    BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every stdout line is JSON"))
        .collect()
}

/// Waits for `child` to exit within `limit` (killed after); whether it
/// exited with status 0.
fn wait(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == t).collect()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn summary(lines: &[Value]) -> &Value {
    let s = of_type(lines, "summary");
    assert_eq!(s.len(), 1, "one summary line: {lines:?}");
    assert_eq!(of_type(lines, "start").len(), 1, "one start line");
    s[0]
}

fn check_latency(s: &Value) {
    let l = &s["latency"];
    assert!(n(&l["samples"]) > 0, "latency samples: {l}");
    let (min, med, p99, max) = (
        n(&l["min_cycles"]),
        n(&l["median_cycles"]),
        n(&l["p99_cycles"]),
        n(&l["max_cycles"]),
    );
    assert!(0 < min && min <= med && med <= p99 && p99 <= max, "{l}");
    assert!(l["median_us"].as_f64().unwrap() > 0.0);
    assert_eq!(n(&l["invalid"]), 0);
    assert_eq!(n(&l["duplicates"]), 0);
}

#[test]
fn ring_loopback_returns_every_frame_with_latency() {
    let lines = run(
        &eal(&Prefix::new("ring"), "net_ring0"),
        &[
            "--duration",
            "2",
            "--rate",
            "200000",
            "--latency-every",
            "100",
            "--proto",
            "tcp",
            "--syn-fraction",
            "0.1",
            "--interval-ms",
            "500",
        ],
    );
    let s = summary(&lines);
    assert!(!of_type(&lines, "second").is_empty(), "per-interval lines");
    assert_eq!(s["stopped_by"], "duration");
    let tx = n(&s["tx_packets"]);
    assert!(tx > 0);
    // A ring gives back exactly what was sent.
    assert_eq!(n(&s["rx_packets"]), tx);
    assert_eq!(n(&s["rx_bytes"]), n(&s["tx_bytes"]));
    assert_eq!(n(&s["driver"]["tx_packets"]), tx);
    let new_flows = n(&s["new_flow_packets"]);
    assert!(new_flows > 0 && new_flows < tx);
    check_latency(s);
    assert_eq!(n(&s["latency"]["lost"]), 0);
    assert_eq!(n(&s["latency"]["stamps_sent"]), tx.div_ceil(100));
}

#[test]
fn count_stops_sending_exactly() {
    let lines = run(
        &eal(&Prefix::new("count"), "net_ring0"),
        &[
            "--count",
            "10000",
            "--duration",
            "0",
            "--ip",
            "6",
            "--frame-len",
            "200",
        ],
    );
    let s = summary(&lines);
    assert_eq!(s["stopped_by"], "count");
    assert_eq!(n(&s["tx_packets"]), 10000);
    assert_eq!(n(&s["rx_packets"]), 10000);
    assert_eq!(n(&s["tx_bytes"]), 10000 * 200);
}

#[test]
fn null_port_sends_and_receives() {
    let lines = run(
        &eal(&Prefix::new("null"), "net_null0"),
        &["--duration", "1", "--mode", "new-flows", "--proto", "tcp"],
    );
    let s = summary(&lines);
    let tx = n(&s["tx_packets"]);
    assert!(tx > 0 && n(&s["rx_packets"]) > 0);
    assert_eq!(n(&s["new_flow_packets"]), tx);
    assert_eq!(n(&s["new_flow_wraps"]), 0);
    // net_null's RX hands out recycled buffers: no latency from them
    assert!(s["latency"].is_null());
}

#[test]
fn bad_options_fail_before_dpdk_starts() {
    let out = Command::new(PKTGEN)
        .args(["--", "--frame-len", "40"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frame length 40"));
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Kills a child on drop (the test may fail half-way).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn memif_peer_in_another_process_forwards_back() {
    if Command::new("dpdk-testpmd")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("dpdk-testpmd not installed: skipping the memif test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("memif.sock");
    let sock = sock.to_str().unwrap();
    let server = format!("net_memif0,role=server,socket={sock},socket-abstract=no");
    let (gen_prefix, tp_prefix) = (Prefix::new("memif"), Prefix::new("tp"));
    // --linger: after its summary the generator stops polling and waits for
    // the peer to go; the peer is stopped then, so neither side unmaps
    // memif rings the other is still polling.
    let mut gen = Command::new(PKTGEN)
        .args(eal(&gen_prefix, &server))
        .args([
            "--",
            "--duration",
            "3",
            "--rate",
            "100000",
            "--latency-every",
            "100",
        ])
        .args(["--link-wait", "60", "--linger", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Path::new(sock), Duration::from_secs(30)),
        "memif socket"
    );
    let testpmd = Reaped(
        Command::new("dpdk-testpmd")
            .args([
                "--no-huge",
                "--no-pci",
                "-m",
                "512",
                "--no-telemetry",
                "-l",
                "0,1",
            ])
            .arg(format!("--file-prefix={}", tp_prefix.0))
            .arg(format!(
                "--vdev=net_memif0,role=client,socket={sock},socket-abstract=no"
            ))
            .args(["--", "--forward-mode=io", "--port-topology=loop"])
            // --stats-period keeps testpmd running without a terminal (it
            // exits at once on an empty stdin otherwise)
            .args(["--total-num-mbufs=4096", "--stats-period", "1", "-a"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = Vec::new();
    for l in BufReader::new(gen.stdout.take().unwrap()).lines() {
        let v: Value = serde_json::from_str(&l.unwrap()).expect("every stdout line is JSON");
        let done = v["type"] == "summary";
        lines.push(v);
        if done {
            break;
        }
    }
    drop(testpmd);
    let ok = wait(&mut gen, Duration::from_secs(90));
    let err = std::io::read_to_string(gen.stderr.take().unwrap()).unwrap_or_default();
    assert!(ok, "dnlb-pktgen failed; stderr:\n{err}");
    assert!(
        !err.contains("kept the link up"),
        "the generator saw the peer go: {err}"
    );
    let s = summary(&lines);
    assert_eq!(of_type(&lines, "start")[0]["driver"], "net_memif");
    let (tx, rx) = (n(&s["tx_packets"]), n(&s["rx_packets"]));
    assert!(tx > 0 && rx > 0 && rx <= tx, "tx {tx} rx {rx}");
    check_latency(s);
}

//! Shared by the DPDK tests. EAL initialises once per process, so each test
//! runs in a child process of its own (rusty-fork) or runs the `dnlb`
//! binary; each uses its own `--file-prefix` so tests can run in parallel.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod veth;

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// EAL arguments for tests: no hugepages, no PCI, private runtime files
/// (unique per call, so tests in one process or in parallel never clash).
pub fn eal_args(tag: &str) -> Vec<String> {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    vec![
        "--no-huge".into(),
        "--no-pci".into(),
        "-m".into(),
        "256".into(),
        "--no-telemetry".into(),
        "--log-level=lib.eal:error".into(),
        format!("--file-prefix=dnlb-{tag}-{}-{n}", std::process::id()),
    ]
}

/// A TOML list of strings.
pub fn toml_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A fresh temporary directory (removed when dropped).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dnlb-test-")
        .tempdir()
        .unwrap()
}

/// Path inside `dir`, as a string for devargs.
pub fn path_str(dir: &Path, name: &str) -> String {
    let p: PathBuf = dir.join(name);
    p.to_str().unwrap().to_string()
}

/// A child process killed (by PID) and reaped when dropped, so a failing
/// test never leaves a busy-polling forwarder behind. A `dnlb` child's DPDK
/// runtime directory (second field) goes too: the process removes it when it
/// stops cleanly, not when it is killed.
pub struct ChildGuard(pub std::process::Child, pub Option<PathBuf>);

impl ChildGuard {
    /// Guards a child that has no DPDK runtime directory (BIRD, servers).
    pub fn new(child: std::process::Child) -> ChildGuard {
        ChildGuard(child, None)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(dir) = &self.1 {
            // A successor on the same prefix (a restart test) holds the lock
            // on `config` and keeps its directory.
            if !dpdk_config_locked(&dir.join("config")) {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// Whether a running DPDK primary holds the write lock EAL takes on its
/// runtime directory's `config` file.
fn dpdk_config_locked(config: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(config)
    else {
        return false;
    };
    // SAFETY: F_GETLK fills the zeroed `flock` we pass; the fd is open.
    unsafe {
        let mut l: libc::flock = std::mem::zeroed();
        l.l_type = libc::F_WRLCK as _;
        l.l_whence = libc::SEEK_SET as _;
        libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut l) == 0
            && i32::from(l.l_type) != libc::F_UNLCK
    }
}

/// The DPDK runtime directory of a `dnlb` started with `args`: its
/// `--file-prefix` from the arguments or from the `--config` file.
pub fn dpdk_runtime_dir(args: &[&str]) -> Option<PathBuf> {
    const FLAG: &str = "--file-prefix=";
    let from = |text: &str| -> Option<String> {
        let at = text.find(FLAG)? + FLAG.len();
        let rest = &text[at..];
        let end = rest
            .find(|c: char| c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(rest.len());
        Some(rest[..end].to_string())
    };
    let prefix = args.iter().find_map(|a| from(a)).or_else(|| {
        let at = args.iter().position(|a| *a == "--config")?;
        from(&std::fs::read_to_string(args.get(at + 1)?).ok()?)
    })?;
    Some(Path::new("/var/run/dpdk").join(prefix))
}

/// Starts the `dnlb` binary with `args` (`run` gets `--events json`),
/// its stdout read by a thread into a channel of events (a line that is not
/// JSON arrives as a JSON string), stderr dropped. The process is killed
/// when the guard goes.
pub fn spawn_dnlb(args: &[&str]) -> (ChildGuard, std::sync::mpsc::Receiver<serde_json::Value>) {
    spawn_dnlb_via(&[], args)
}

/// [`spawn_dnlb`] through a command that execs it, e.g.
/// `["prlimit", "--nofile=512:512", "--"]` (same process, same PID).
pub fn spawn_dnlb_via(
    wrapper: &[&str],
    args: &[&str],
) -> (ChildGuard, std::sync::mpsc::Receiver<serde_json::Value>) {
    use std::io::BufRead;
    let mut all: Vec<&str> = wrapper.to_vec();
    all.push(env!("CARGO_BIN_EXE_dnlb"));
    let cmd = all.remove(0);
    let at = all.len();
    all.extend_from_slice(args);
    if all.get(at) == Some(&"run") {
        all.splice(at + 1..at + 1, ["--events", "json"]);
    }
    let mut child = std::process::Command::new(cmd)
        .args(&all)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting dnlb");
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let v = serde_json::from_str(&l).unwrap_or(serde_json::Value::String(l));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (ChildGuard(child, dpdk_runtime_dir(args)), rx)
}

/// The events of a running `dnlb`, as JSON.
pub type Events = std::sync::mpsc::Receiver<serde_json::Value>;

/// How long a test waits for an event before it fails: generous, so a
/// loaded machine slows a test down instead of failing it.
pub const EVENT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits for an event of kind `kind` (its `event` field) satisfying `pred`;
/// other events are skipped.
pub fn wait_event(
    events: &std::sync::mpsc::Receiver<serde_json::Value>,
    kind: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + EVENT_DEADLINE;
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(e) if e["event"] == kind && pred(&e) => return e,
            Ok(_) => {}
            Err(err) => panic!("waiting for a {kind} event: {err}"),
        }
    }
}

/// Waits for the first event of kind `kind` and returns it with a receiver
/// of every other event, in order: those that came before it too (which
/// [`wait_event`] would have skipped).
pub fn wait_keeping_the_rest(events: Events, kind: &str) -> (serde_json::Value, Events) {
    let (tx, rest) = std::sync::mpsc::channel();
    let deadline = std::time::Instant::now() + EVENT_DEADLINE;
    let found = loop {
        match events.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(e) if e["event"] == kind => break e,
            Ok(e) => tx.send(e).unwrap(),
            Err(err) => panic!("waiting for a {kind} event: {err}"),
        }
    };
    // Until the gateway's output ends or the test drops `rest`.
    std::thread::spawn(move || {
        for e in events {
            if tx.send(e).is_err() {
                break;
            }
        }
    });
    (found, rest)
}

/// Waits for the next event whose kind is one of `kinds`.
pub fn next_of(
    events: &std::sync::mpsc::Receiver<serde_json::Value>,
    kinds: &[&str],
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + EVENT_DEADLINE;
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(e) if kinds.iter().any(|k| e["event"] == *k) => return e,
            Ok(_) => {}
            Err(err) => panic!("waiting for one of {kinds:?}: {err}"),
        }
    }
}

/// The final report of a stopping forwarder (its `stopped` event).
pub fn final_report(events: &std::sync::mpsc::Receiver<serde_json::Value>) -> serde_json::Value {
    wait_event(events, "stopped", |_| true)["report"].clone()
}

/// The report's entry of listener or backend `name` in `list`
/// (`"listeners"` or `"backends"`).
pub fn traffic<'a>(report: &'a serde_json::Value, list: &str, name: &str) -> &'a serde_json::Value {
    report[list]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in the report's {list}: {report}"))
}

/// A JSON number as u64.
pub fn num(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Sends `sig` (e.g. "-TERM") to the process, by PID.
pub fn signal(child: &ChildGuard, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.0.id().to_string()])
        .status()
        .expect("running kill")
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Sends `request` (raw HTTP/1.1 text) to `addr` and returns the reply's
/// status and body; the connection closes after one request.
pub fn http_raw(addr: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connecting to the admin API");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// A one-request HTTP/1.1 text: `METHOD PATH` with `headers` (each
/// `Name: value`) and `body`, asking to close afterwards.
pub fn http_request(method: &str, path: &str, headers: &[&str], body: &str) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if !body.is_empty() {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

/// The gateway's admin address (`host:port`) from its `admin_listening`
/// event, once it is ready.
pub fn admin_addr(events: &std::sync::mpsc::Receiver<serde_json::Value>) -> String {
    let l = wait_event(events, "admin_listening", |_| true);
    wait_event(events, "ready", |_| true);
    l["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string()
}

/// The admin token a gateway run from config file `cfg` created beside it
/// at first start (writes need it).
pub fn admin_token(cfg: &Path) -> String {
    let file = dnlb_config::validate::default_token_file(cfg);
    let t = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    t.trim().to_string()
}

/// Runs end-to-end script `scripts/NAME` against the dnlb under test with
/// topology prefix `topo` (no installs: the test suite did them) and
/// checks its verdict: the last line "N passed, 0 failed" with at least
/// `min_passed` checks, and no namespace of the topology left behind.
pub fn run_e2e_script(name: &str, topo: &str, min_passed: u32) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name);
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env("DNLB_BIN", env!("CARGO_BIN_EXE_dnlb"))
        .env("E2E_NO_INSTALL", "1")
        .env("TOPO", topo)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout.lines().last().unwrap_or("");
    let ns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ns.stdout).contains(&format!("{topo}-")),
        "namespaces left behind"
    );
    assert!(
        out.status.success() && summary.ends_with(" passed, 0 failed"),
        "{name} failed: {summary}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let passed: u32 = summary.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed >= min_passed, "{summary}");
}

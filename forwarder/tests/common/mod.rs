//! Shared by the DPDK tests. EAL initialises once per process, so each test
//! runs in a child process of its own (rusty-fork) or runs the `dnlb`
//! binary; each uses its own `--file-prefix` so tests can run in parallel.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

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
/// test never leaves a busy-polling forwarder behind.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the `dnlb` binary with `args`, stdout piped into a channel of
/// lines (read by a thread), stderr dropped. The process is killed when the
/// guard goes.
pub fn spawn_dnlb(args: &[&str]) -> (ChildGuard, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dnlb"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting dnlb");
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    (ChildGuard(child), rx)
}

/// Waits (at most 20 s) for a line satisfying `pred`.
pub fn wait_line(
    lines: &std::sync::mpsc::Receiver<String>,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(l) if pred(&l) => return l,
            Ok(_) => {}
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
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

/// The number after `key=` in a `key=value ...` line.
pub fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key} in {line:?}: {e}"))
}

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

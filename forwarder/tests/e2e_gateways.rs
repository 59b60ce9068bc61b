//! The multi-gateway end-to-end and failure tests: `scripts/e2e-gateways.sh`
//! run against the binary under test. Three gateways (net_af_packet,
//! net_af_xdp with a VIP-only XDP program, net_af_xdp with a net_tap
//! exception path) behind an ECMP router, BIRD on every gateway driven by
//! dnlb, three kernel-VXLAN backends in two zones with direct server return.
//! The script checks: HTTP through every gateway with the client's address
//! seen by the backend; elastic IP attach/detach; reloads under requests;
//! 50 long-lived connections surviving a gateway's SIGKILL; a backend's
//! death (health thresholds, only its connections fail); a whole zone lost;
//! the VIP withdrawn on shutdown. Each check prints ok/FAIL; the script's
//! last line counts them.

use std::path::Path;
use std::process::Command;

#[test]
fn gateways_fail_over_and_connections_survive() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/e2e-gateways.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("DNLB_BIN", env!("CARGO_BIN_EXE_dnlb"))
        .env("E2E_NO_INSTALL", "1")
        .env("TOPO", "dnlbe")
        .output()
        .expect("running scripts/e2e-gateways.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout.lines().last().unwrap_or("");
    assert!(
        out.status.success() && summary.ends_with(" passed, 0 failed"),
        "e2e failed: {summary}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let passed: u32 = summary.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed >= 30, "{summary}");
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ns.stdout).contains("dnlbe-"),
        "namespaces left behind"
    );
}

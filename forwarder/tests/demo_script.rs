//! The README's main command, `scripts/demo.sh`, run against the binary
//! under test: three gateways behind an ECMP router with BIRD, kernel VXLAN
//! backends, real HTTP; a backend and a gateway fail on the way. Its own
//! exit status says whether every request was answered through dnlb.

use std::path::Path;
use std::process::Command;

#[test]
fn demo_script_answers_every_request_through_dnlb() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("DNLB_BIN", env!("CARGO_BIN_EXE_dnlb"))
        .output()
        .expect("running scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("demo: 24 of 24 HTTP requests answered through dnlb"),
        "{stdout}"
    );
    // The backends saw the client's own address, not a gateway's.
    assert!(
        stdout.contains("which saw the client as 198.18.0.1:"),
        "{stdout}"
    );
    // dnlb status rendered the gateway's tables.
    assert!(
        stdout.contains("LISTENER") && stdout.contains("GROUP"),
        "{stdout}"
    );
    // Namespaces are gone afterwards.
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ns.stdout).contains("dnlb-demo-"));
}

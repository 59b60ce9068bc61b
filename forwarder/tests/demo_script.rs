//! The README's main command, `scripts/demo.sh`, run against the binary
//! under test: namespaces, veth, DPDK net_af_packet ports, a real HTTP
//! server and client. Its own exit status says whether every request was
//! answered through dnlb.

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
        stdout.contains("demo: 5 of 5 HTTP requests answered through dnlb"),
        "{stdout}"
    );
    // The server saw the client's own address, not the gateway's.
    assert!(stdout.contains("you are 198.18.0.1:"), "{stdout}");
    // Namespaces are gone afterwards.
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ns.stdout).contains("dnlb-demo-"));
}

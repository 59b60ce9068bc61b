//! The `dnlb` binary as users run it: started by the test, fed by a pcap
//! fixture, stopped by a signal, exit status and output frames checked.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{final_report, num, wait_event};

use dnlb_testkit::{frames, read_pcap, write_pcap, FlowMix};

const DNLB: &str = env!("CARGO_BIN_EXE_dnlb");

fn pcap_config(dir: &Path) -> std::path::PathBuf {
    let mut eal = common::eal_args("proc");
    eal.push("--lcores=0@0,1@0".into());
    let text = format!(
        "[gateway]\nname = \"proc\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         idle_polls_before_sleep = 100\nidle_sleep_us = 200\n\
         [[dataplane.ports]]\nname = \"net_pcap0\"\nforward_to = \"net_pcap0\"\ndevargs = \"rx_pcap={},tx_pcap={}\"\n",
        common::toml_list(&eal),
        common::path_str(dir, "in.pcap"),
        common::path_str(dir, "out.pcap"),
    );
    let p = dir.join("dnlb.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Waits (at most 30 s) for the process to exit; its exit code.
fn wait_exit(child: &mut std::process::Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "dnlb did not exit after the signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn forward_and_stop_with(sig: i32) {
    let dir = common::tempdir();
    let input = frames(&FlowMix {
        flows: 1000,
        packets_per_flow: 2,
        ..FlowMix::default()
    });
    write_pcap(&dir.path().join("in.pcap"), &input).unwrap();
    let cfg = pcap_config(dir.path());
    let cfg = cfg.to_str().unwrap();
    let (mut dnlb, lines) =
        common::spawn_dnlb(&["run", "--stats-interval-ms", "50", "--config", cfg]);
    wait_event(&lines, "ready", |_| true);
    let n = input.len() as u64;
    wait_event(&lines, "stats", |e| e["tx_packets"] == n);
    common::signal(&dnlb, &format!("-{sig}"));
    let code = wait_exit(&mut dnlb.0);
    assert_eq!(code, 0, "exit status after signal {sig}");
    let total = &final_report(&lines)["total"];
    assert_eq!(num(&total["rx_packets"]), n);
    assert_eq!(num(&total["tx_packets"]), n);
    assert_eq!(num(&total["dropped"]), 0);
    // The output pcap is complete after dnlb closed the port.
    assert_eq!(read_pcap(&dir.path().join("out.pcap")).unwrap(), input);
}

#[test]
fn sigterm_stops_cleanly_with_all_frames_forwarded() {
    forward_and_stop_with(15);
}

#[test]
fn sigint_stops_cleanly_with_all_frames_forwarded() {
    forward_and_stop_with(2);
}

#[test]
fn check_prints_the_plan_or_the_errors() {
    let dir = common::tempdir();
    let cfg = pcap_config(dir.path());
    let out = Command::new(DNLB).arg("check").arg(&cfg).output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("--vdev=net_pcap0,rx_pcap="), "{s}");
    assert!(s.contains("workers on lcores [1]"), "{s}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[gateway]\nname = \"x\"\n[dataplane]\nworker_lcores = [0]\nports = []\n",
    )
    .unwrap();
    for sub in [&["check"][..], &["run", "--config"][..]] {
        let out = Command::new(DNLB).args(sub).arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{sub:?}");
        let e = String::from_utf8(out.stderr).unwrap();
        assert!(
            e.contains("bad.toml:4:18: dataplane.worker_lcores[0]: lcore 0 is the main lcore"),
            "{e}"
        );
        assert!(
            e.contains("bad.toml:5:9: dataplane.ports: at least one port is needed"),
            "{e}"
        );
    }
}

#[test]
fn failing_bring_up_exits_non_zero_with_the_reason() {
    let dir = common::tempdir();
    let mut eal = common::eal_args("procfail");
    eal.push("--lcores=0@0,1@0".into());
    let text = format!(
        "[gateway]\nname = \"f\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         [[dataplane.ports]]\nname = \"net_ring0\"\n[[dataplane.ports]]\nname = \"net_ring1\"\nmtu = 9000\n",
        common::toml_list(&eal)
    );
    let p = dir.path().join("f.toml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(DNLB)
        .args(["run", "--config"])
        .arg(&p)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    // net_ring cannot set an MTU: the run fails with the port and the DPDK
    // call named.
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("dnlb: port net_ring1: rte_eth_dev_set_mtu failed"),
        "{e}"
    );
}

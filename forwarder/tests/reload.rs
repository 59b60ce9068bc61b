//! Reloads under traffic: 100 SIGHUPs alternating two tables while a worker
//! forwards a pcap replayed from memory. Every received packet is sent or
//! counted under a drop reason, and no drop reason has anything to do with
//! reloading; a broken config is rejected and changes nothing.

mod common;

use std::path::Path;

use dnlb_testkit::{frames, write_pcap, FlowMix};

fn config(eal: &[String], pcap: &Path, weights: [u8; 4]) -> String {
    let mut t = format!(
        "[gateway]\nname = \"reload\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         [[dataplane.ports]]\nname = \"net_pcap0\"\ndevargs = \"rx_pcap={},infinite_rx=1\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"web\"\n\
         [[target_group]]\nname = \"web\"\n",
        common::toml_list(eal),
        pcap.display()
    );
    for (i, w) in weights.iter().enumerate() {
        t += &format!(
            "[[target_group.backend]]\naddress = \"10.1.0.{}\"\ntunnel = \"gue\"\nweight = {w}\n",
            i + 1
        );
    }
    t
}

/// Reloads published, rejected, and the last generation, from a final report.
fn reloads(report: &serde_json::Value) -> (u64, u64, u64) {
    let n = |k: &str| common::num(&report[k]);
    (n("reloads_ok"), n("reloads_rejected"), n("generation"))
}

#[test]
fn hundred_reloads_under_traffic_lose_no_packet() {
    let dir = common::tempdir();
    let pcap = dir.path().join("vip.pcap");
    write_pcap(&pcap, &frames(&FlowMix::default())).unwrap();
    let mut eal = common::eal_args("reload");
    eal.push("--lcores=0@0,1@1".into());
    let cfg_path = dir.path().join("dnlb.toml");
    let tables = [[100, 100, 100, 100], [100, 0, 50, 100]];
    std::fs::write(&cfg_path, config(&eal, &pcap, tables[0])).unwrap();

    let cfg_arg = cfg_path.to_str().unwrap().to_string();
    let (mut child, lines) =
        common::spawn_dnlb(&["run", "--watch-config-ms", "0", "--config", &cfg_arg]);
    let signal = |sig: &str| common::signal(&child, sig);
    common::wait_event(&lines, "ready", |_| true);
    let reload = || common::next_of(&lines, &["reloaded", "reload_rejected"]);
    for i in 1..=100u64 {
        // Replace the file atomically, as a config manager would.
        let tmp = dir.path().join("dnlb.toml.tmp");
        std::fs::write(&tmp, config(&eal, &pcap, tables[(i % 2) as usize])).unwrap();
        std::fs::rename(&tmp, &cfg_path).unwrap();
        signal("-HUP");
        let got = reload();
        assert_eq!(
            got,
            serde_json::json!({"event": "reloaded", "generation": i + 1, "tables_rebuilt": 1})
        );
    }
    // A broken config is rejected and changes nothing.
    std::fs::write(
        &cfg_path,
        config(&eal, &pcap, tables[0]).replace("weight = 100", "weight = 101"),
    )
    .unwrap();
    signal("-HUP");
    let r = reload();
    assert_eq!(r["event"], "reload_rejected", "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(error.contains("weight: must be between 0 and 100"), "{r}");
    // The data plane may not change at run time.
    std::fs::write(
        &cfg_path,
        config(&eal, &pcap, tables[0]).replace("worker_lcores = [1]", "worker_lcores = [1, 2]"),
    )
    .unwrap();
    signal("-HUP");
    let r = reload();
    assert_eq!(r["event"], "reload_rejected", "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("cannot change at run time"),
        "{r}"
    );
    signal("-TERM");
    let report = common::final_report(&lines);
    let status = child.0.wait().unwrap();
    assert!(status.success());
    assert_eq!(reloads(&report), (100, 2, 101));
    let total = &report["total"];
    let (rx, txp, dropped) = (
        common::num(&total["rx_packets"]),
        common::num(&total["tx_packets"]),
        common::num(&total["dropped"]),
    );
    assert!(rx > 100_000, "traffic flowed during the reloads: {total}");
    // Nothing lost: every packet received was encapsulated and sent.
    assert_eq!(dropped, 0, "{total}");
    assert_eq!(rx, txp, "{total}");
    let web = common::traffic(&report, "listeners", "web");
    assert_eq!(common::num(&web["packets"]), rx, "{web}");
}

#[test]
fn a_changed_config_file_is_reloaded_without_a_signal() {
    let dir = common::tempdir();
    let pcap = dir.path().join("vip.pcap");
    write_pcap(&pcap, &frames(&FlowMix::default())).unwrap();
    let mut eal = common::eal_args("watch");
    eal.push("--lcores=0@0,1@0".into());
    let cfg_path = dir.path().join("dnlb.toml");
    std::fs::write(&cfg_path, config(&eal, &pcap, [100; 4])).unwrap();
    let text = config(&eal, &pcap, [100; 4]).replace("infinite_rx=1", "infinite_rx=0");
    std::fs::write(&cfg_path, &text).unwrap();
    let cfg_arg = cfg_path.to_str().unwrap().to_string();
    let (mut child, lines) =
        common::spawn_dnlb(&["run", "--watch-config-ms", "50", "--config", &cfg_arg]);
    common::wait_event(&lines, "ready", |_| true);
    // The new text has another length, so the watcher sees it whatever the
    // file system's time resolution.
    std::fs::write(
        &cfg_path,
        text.replace(
            "weight = 100\n[[target_group.backend]]\naddress = \"10.1.0.2\"",
            "weight = 0\n[[target_group.backend]]\naddress = \"10.1.0.2\"",
        ),
    )
    .unwrap();
    let reload = || common::next_of(&lines, &["reloaded", "reload_rejected"]);
    let r = reload();
    assert_eq!(
        r,
        serde_json::json!({"event": "reloaded", "generation": 2, "tables_rebuilt": 1})
    );
    std::fs::write(&cfg_path, "[gateway]\nname = \"x\"\n").unwrap();
    let r = reload();
    assert_eq!(r["event"], "reload_rejected", "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("missing field `dataplane`"),
        "{r}"
    );
    common::signal(&child, "-TERM");
    let report = common::final_report(&lines);
    assert!(child.0.wait().unwrap().success());
    assert_eq!(reloads(&report), (1, 1, 2));
}

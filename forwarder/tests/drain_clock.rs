//! Drains count down on the monotonic clock: a real `dnlb` whose wall clock
//! is stepped two hours forward (libfaketime, driven through a timestamp
//! file while it runs) keeps a one-hour drain going, while a five-second
//! drain still ends on time.

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

fn config(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        "[gateway]\nname = \"clock\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         idle_polls_before_sleep = 64\nidle_sleep_us = 500\n\
         [[dataplane.ports]]\nname = \"net_null0\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"web\"\n\
         [[target_group]]\nname = \"web\"\n\
         [[target_group.backend]]\naddress = \"10.1.0.1\"\ntunnel = \"gue\"\n\
         [[target_group.backend]]\naddress = \"10.1.0.2\"\ntunnel = \"gue\"\n\
         [[target_group.backend]]\naddress = \"10.1.0.3\"\ntunnel = \"gue\"\n",
        common::toml_list(&common::eal_args("clock")),
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn backend(addr: &str, address: &str) -> Value {
    let (code, body) = common::http_raw(
        addr,
        &common::http_request("GET", "/v1/backends", &["Host: localhost"], ""),
    );
    assert_eq!(code, 200, "{body}");
    let all: Value = serde_json::from_str(&body).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|b| b["address"] == address)
        .cloned()
        .unwrap()
}

#[test]
fn a_wall_clock_step_forward_does_not_end_a_drain() {
    assert!(
        Path::new(FAKETIME_LIB).exists(),
        "{FAKETIME_LIB} missing: scripts/lib/deps.sh installs Debian's faketime"
    );
    let dir = common::tempdir();
    let cfg = config(dir.path());
    let offset = dir.path().join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    let (child, events) = common::spawn_dnlb_via(
        &[
            "env",
            &format!("LD_PRELOAD={FAKETIME_LIB}"),
            &format!("FAKETIME_TIMESTAMP_FILE={}", offset.display()),
            "FAKETIME_NO_CACHE=1",
            "FAKETIME_DONT_FAKE_MONOTONIC=1",
        ],
        &[
            "run",
            "--watch-config-ms",
            "0",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let addr = common::admin_addr(&events);
    let token = common::admin_token(&cfg);
    let drain = |address: &str, secs: u64| {
        let body = format!("{{\"deadline_secs\": {secs}}}");
        let (code, reply) = common::http_raw(
            &addr,
            &common::http_request(
                "PUT",
                &format!("/v1/target_groups/web/backends/{address}/drain"),
                &[
                    "Host: localhost",
                    &format!("Authorization: Bearer {token}"),
                    "Content-Type: application/json",
                ],
                &body,
            ),
        );
        assert_eq!(code, 200, "{reply}");
    };
    drain("10.1.0.1", 3600);
    drain("10.1.0.2", 5);
    // The wall clock jumps two hours ahead.
    std::fs::write(&offset, "+2h\n").unwrap();
    // The five-second drain ends on the monotonic clock...
    let e = common::wait_event(&events, "republished", |e| e["cause"] == "drain");
    assert!(e["generation"].as_u64().unwrap() >= 4, "{e}");
    let short = backend(&addr, "10.1.0.2");
    assert_eq!(short["usable"], false, "the 5 s drain ended: {short}");
    // ...and the one-hour drain goes on: established flows stay, no new
    // ones, for another hour of monotonic time.
    std::thread::sleep(Duration::from_millis(500));
    let long = backend(&addr, "10.1.0.1");
    assert_eq!(long["usable"], true, "the 1 h drain ended early: {long}");
    assert_eq!(long["takes_new_flows"], false, "{long}");
    drop(child);
}

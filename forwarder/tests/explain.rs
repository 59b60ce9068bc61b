//! `dnlb explain` against a running gateway: 1000 flows (TCP and UDP, IPv4
//! and IPv6) sent through its DPDK worker (`net_pcap`: received from a veth
//! the test writes frames into, sent to a pcap file), each flow's backend
//! read from the outer destination of its encapsulated packets, and
//! `GET /v1/explain` asked for every flow: all agree. Then a backend is
//! registered (the table changes), the same flows are sent again with
//! new ones: established flows stay where they were and explain says
//! "flow table hit" with that backend (while the current table differs
//! for some), new flows go where the current table says. `dnlb explain`
//! prints the same.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dnlb_testkit::{frame, read_pcap, FlowMix, IpVersion, Proto};
use serde_json::{json, Value};

const TOKEN: &str = "explain-token";
/// Flows per (IP version, protocol) mix.
const PER_MIX: u32 = 250;

/// A flow: (src, sport, dst, dport, protocol number).
type Flow = (IpAddr, u16, IpAddr, u16, u8);

/// The flow and outer destination of an encapsulated frame (IP-in-IP over
/// IPv4: 4in4 or 6in4).
fn outer_and_flow(f: &[u8]) -> Option<(Flow, IpAddr)> {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let outer = IpAddr::from(<[u8; 4]>::try_from(&f[30..34]).unwrap());
    let inner = &f[14 + usize::from(f[14] & 0x0f) * 4..];
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = match f[23] {
        4 => (
            IpAddr::from(<[u8; 4]>::try_from(&inner[12..16]).unwrap()),
            IpAddr::from(<[u8; 4]>::try_from(&inner[16..20]).unwrap()),
            inner[9],
            &inner[usize::from(inner[0] & 0x0f) * 4..],
        ),
        41 => (
            IpAddr::from(<[u8; 16]>::try_from(&inner[8..24]).unwrap()),
            IpAddr::from(<[u8; 16]>::try_from(&inner[24..40]).unwrap()),
            inner[6],
            &inner[40..],
        ),
        _ => return None,
    };
    let port = |at: usize| u16::from_be_bytes([l4[at], l4[at + 1]]);
    Some(((src, port(0), dst, port(2), proto), outer))
}

fn mixes() -> Vec<FlowMix> {
    let mut v = Vec::new();
    for ip in [IpVersion::V4, IpVersion::V6] {
        for proto in [Proto::Tcp, Proto::Udp] {
            v.push(FlowMix {
                flows: PER_MIX,
                packets_per_flow: if proto == Proto::Tcp { 2 } else { 1 },
                proto,
                ip,
                ..FlowMix::default()
            });
        }
    }
    v
}

/// Frames of flows `from..to` of every mix (TCP: a SYN, then an ACK).
fn frames(from: u32, to: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for m in mixes() {
        for seq in 0..m.packets_per_flow {
            out.extend((from..to).map(|f| frame(&m, f, seq)));
        }
    }
    out
}

fn get(base: &str, path: &str) -> Value {
    let r = ureq::get(&format!("{base}{path}"))
        .timeout(Duration::from_secs(20))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    serde_json::from_str(&r.into_string().unwrap()).unwrap()
}

fn explain(base: &str, f: &Flow) -> Value {
    let proto = if f.4 == 6 { "tcp" } else { "udp" };
    get(
        base,
        &format!(
            "/v1/explain?src={}&sport={}&dst={}&dport={}&proto={proto}",
            f.0, f.1, f.2, f.3
        ),
    )
}

/// Waits until the worker has sent `n` packets (stats events).
fn wait_tx(lines: &common::Events, n: u64) {
    common::wait_event(lines, "stats", |e| e["tx_packets"].as_u64() >= Some(n));
}

/// Each flow's backends in the output pcap, from frame `skip` on.
fn sent(dir: &Path, skip: usize) -> HashMap<Flow, Vec<IpAddr>> {
    let mut m: HashMap<Flow, Vec<IpAddr>> = HashMap::new();
    let out = read_pcap(&dir.join("out.pcap")).unwrap();
    for (flow, outer) in out[skip..].iter().filter_map(|f| outer_and_flow(f)) {
        m.entry(flow).or_default().push(outer);
    }
    m
}

fn address(v: &Value) -> IpAddr {
    v["address"].as_str().unwrap().parse().unwrap()
}

#[test]
fn explain_agrees_with_where_1000_flows_went_also_after_a_table_change() {
    let gw = common::veth::start_gateway("dxe", "explain", TOKEN);
    let (dir, tx_if, base) = (&gw.dir, gw.tx_if.clone(), gw.base.clone());

    // Phase 1: 1000 flows.
    let first = frames(0, PER_MIX);
    common::veth::inject(&tx_if, &first, dir.path());
    wait_tx(&gw.events, first.len() as u64);
    let went = sent(dir.path(), 0);
    assert_eq!(
        went.len(),
        4 * PER_MIX as usize,
        "every flow went somewhere"
    );
    let started = Instant::now();
    for (flow, to) in &went {
        assert!(to.iter().all(|a| a == &to[0]), "{flow:?} kept its backend");
        let e = explain(&base, flow);
        assert_eq!(address(&e["backend"]), to[0], "{flow:?}: {e}");
        assert_eq!(
            address(&e["current_table"]["backend"]),
            to[0],
            "{flow:?}: {e}"
        );
        assert_eq!(e["reasons"][0]["reason"], "flow_table_hit", "{flow:?}: {e}");
        assert_eq!(e["reasons"].as_array().unwrap().len(), 1, "{e}");
        let w = &e["workers"][0];
        assert_eq!(address(&w["flow"]["backend"]), to[0], "{e}");
        assert_eq!(w["flow"]["closing"], false);
        assert!(w["flow"]["remaining_ms"].as_u64().unwrap() > 0);
        assert_eq!(e["previous_table"], Value::Null, "no change yet");
        assert_eq!(e["unanswered"], json!([]));
    }
    eprintln!("1000 explains in {:?}", started.elapsed());

    // The table changes: a fifth backend.
    let r = ureq::post(&format!("{base}/v1/target_groups/g/backends"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .send_json(json!({"address": "10.9.0.5", "tunnel": "ipip"}))
        .unwrap();
    let generation =
        serde_json::from_str::<Value>(&r.into_string().unwrap()).unwrap()["generation"].clone();
    let probe = *went.keys().next().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while explain(&base, &probe)["workers"][0]["generation"] != generation {
        assert!(
            Instant::now() < deadline,
            "the worker never adopted {generation}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Phase 2: the same flows again, and 1000 new ones.
    let again = frames(0, 2 * PER_MIX);
    common::veth::inject(&tx_if, &again, dir.path());
    wait_tx(&gw.events, (first.len() + again.len()) as u64);
    let now = sent(dir.path(), first.len());
    assert_eq!(now.len(), 8 * PER_MIX as usize);
    let mut table_moved = 0;
    for (flow, to) in &now {
        let e = explain(&base, flow);
        assert_eq!(e["current_table"]["generation"], generation);
        let current = address(&e["current_table"]["backend"]);
        assert_eq!(address(&e["backend"]), to[0], "{flow:?}: {e}");
        assert_eq!(e["reasons"][0]["reason"], "flow_table_hit", "{e}");
        match went.get(flow) {
            Some(before) => {
                assert!(to.iter().all(|a| *a == before[0]), "{flow:?} stayed");
                assert_eq!(address(&e["previous_table"]["backend"]), before[0], "{e}");
                table_moved += usize::from(current != before[0]);
            }
            None => {
                assert!(to.iter().all(|a| *a == current), "{flow:?}: {e}");
            }
        }
    }
    // About a fifth of the flows would go to the new backend now.
    assert!(
        table_moved > 100,
        "only {table_moved} flows differ from the current table"
    );
    eprintln!("{table_moved} established flows kept a backend the current table no longer picks");

    // The CLI says the same, IPv6 in brackets.
    let (v6, to) = now
        .iter()
        .find(|(f, _)| f.0.is_ipv6() && f.4 == 17)
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dnlb"))
        .args([
            "explain", "--api", &base, "--config", &gw.config, "--proto", "udp",
        ])
        .arg(format!("[{}]:{}", v6.0, v6.1))
        .arg(format!("[{}]:{}", v6.2, v6.3))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("dnlb explain says:\n{text}");
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("udp [{}]:{} -> [{}]:80", v6.0, v6.1, v6.2)),
        "{text}"
    );
    assert!(
        text.contains(&format!("goes to   {} (g, id", to[0])),
        "{text}"
    );
    assert!(text.contains("flow_table_hit"), "{text}");
    assert!(text.contains("listener  dns"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_dnlb"))
        .args([
            "explain",
            "--api",
            &base,
            "--json",
            "198.51.100.7:5555",
            "192.0.2.99:80",
        ])
        .output()
        .unwrap();
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["reasons"][0]["reason"], "not_a_vip");
    assert_eq!(e["backend"], Value::Null);
}

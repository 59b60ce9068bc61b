//! One-flow capture against a running gateway: many flows (TCP and UDP,
//! IPv4 and IPv6) go through its DPDK worker (`net_pcap`: received from a
//! veth the test writes frames into, sent to a pcap file) while `dnlb
//! capture` captures one TCP flow by its 5-tuple; tshark reads the pcapng
//! and finds exactly that flow's packets: each as received (interface
//! `rx`) and encapsulated as it left (interface `tx`, the inner 5-tuple the
//! filter's, the outer destination its backend, the bytes those of the
//! frame the gateway really sent), the decision in each comment, and
//! nothing else.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dnlb_testkit::{frame, read_pcap, FlowMix, IpVersion, Proto};
use serde_json::Value;

const TOKEN: &str = "capture-token";
/// Flows per (IP version, protocol) mix.
const PER_MIX: u32 = 100;
/// Packets of each flow (TCP: a SYN, then ACKs).
const PER_FLOW: u32 = 3;

fn mixes() -> Vec<FlowMix> {
    let mut v = Vec::new();
    for ip in [IpVersion::V4, IpVersion::V6] {
        for proto in [Proto::Tcp, Proto::Udp] {
            v.push(FlowMix {
                flows: PER_MIX,
                packets_per_flow: PER_FLOW,
                proto,
                ip,
                frame_len: 120,
                ..FlowMix::default()
            });
        }
    }
    v
}

/// Every flow's packets, flows interleaved.
fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for seq in 0..PER_FLOW {
        for f in 0..PER_MIX {
            for m in mixes() {
                out.push(frame(&m, f, seq));
            }
        }
    }
    out
}

fn status(base: &str) -> Value {
    let r = ureq::get(&format!("{base}/v1/capture")).call().unwrap();
    serde_json::from_str(&r.into_string().unwrap()).unwrap()
}

/// tshark's fields of every frame of `file`, one `Vec` per frame.
fn tshark(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec![
        "-r",
        file.to_str().unwrap(),
        "-T",
        "fields",
        "-E",
        "separator=|",
    ];
    for f in fields {
        args.extend(["-e", f]);
    }
    let out = Command::new("tshark")
        .args(&args)
        .output()
        .expect("tshark (Debian package tshark; scripts/lib/deps.sh installs it)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('|').map(String::from).collect())
        .collect()
}

#[test]
fn a_capture_of_one_flow_holds_exactly_its_packets_in_and_out() {
    let gw = common::veth::start_gateway("dxc", "capture", TOKEN);
    let (dir, tx_if, base) = (&gw.dir, gw.tx_if.clone(), gw.base.clone());
    // Reading the file needs the token, even on loopback.
    let anonymous = ureq::get(&format!("{base}/v1/capture/pcapng")).call();
    assert!(
        matches!(anonymous, Err(ureq::Error::Status(401, _))),
        "{anonymous:?}"
    );

    // The captured flow: flow 7 of the IPv4 TCP mix, 198.18.0.7:1031 ->
    // 192.0.2.10:80 (flow 7 of the UDP mix has the same addresses and ports).
    let pcapng = dir.path().join("flow.pcapng");
    let cli = std::thread::spawn({
        let (base, token, out) = (base.clone(), dir.path().join("token"), pcapng.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_dnlb"))
                .args(["capture", "--api", &base, "--token-file"])
                .arg(&token)
                .args([
                    "--src",
                    "198.18.0.7",
                    "--sport",
                    "1031",
                    "--dst",
                    "192.0.2.10/32",
                ])
                .args(["--dport", "80", "--proto", "tcp", "--seconds", "5", "-w"])
                .arg(&out)
                .output()
                .unwrap()
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&base)["armed"] != true {
        assert!(Instant::now() < deadline, "the capture was never armed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let all = frames();
    common::veth::inject(&tx_if, &all, dir.path());
    common::wait_event(&gw.events, "stats", |e| {
        e["tx_packets"].as_u64() >= Some(all.len() as u64)
    });
    let out = cli.join().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "dnlb capture says: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    assert!(said.contains("3 packets (6 frames)"), "{said}");
    let st = status(&base);
    assert_eq!(
        (st["armed"].clone(), st["ended"].clone()),
        (Value::Bool(false), "seconds".into())
    );
    assert_eq!(st["dropped"], 0);

    // What tshark sees: three packets in, the same three out, encapsulated.
    let rows = tshark(
        &pcapng,
        &[
            "frame.interface_name",
            "ip.src",
            "ip.dst",
            "tcp.srcport",
            "tcp.dstport",
            "frame.comment",
            "tcp.flags.syn",
        ],
    );
    eprintln!("tshark:");
    for r in &rows {
        eprintln!("  {}", r.join(" | "));
    }
    assert_eq!(rows.len(), 2 * PER_FLOW as usize, "{rows:?}");
    let sent = read_pcap(&dir.path().join("out.pcap")).unwrap();
    assert_eq!(sent.len(), all.len());
    // The flow's frames the gateway sent (IP-in-IP: the inner header at
    // 34): the UDP flow of the same addresses and ports is not one of them.
    let mine: Vec<&Vec<u8>> = sent
        .iter()
        .filter(|f| {
            f[34 + 9] == 6
                && f[34 + 12..34 + 16] == [198, 18, 0, 7]
                && f[34 + 20..34 + 22] == 1031u16.to_be_bytes()
        })
        .collect();
    assert_eq!(mine.len(), PER_FLOW as usize);
    let backend =
        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&mine[0][30..34]).unwrap()).to_string();
    for (i, pair) in rows.chunks(2).enumerate() {
        let syn = if i == 0 { "1" } else { "0" };
        assert_eq!(
            pair[0][..5],
            ["rx", "198.18.0.7", "192.0.2.10", "1031", "80"],
            "{pair:?}"
        );
        let flag = if pair[0][6] == "True" || pair[0][6] == "1" {
            "1"
        } else {
            "0"
        };
        assert_eq!(flag, syn, "{pair:?}");
        assert_eq!(pair[1][0], "tx");
        assert_eq!(
            pair[1][1], "192.0.2.254,198.18.0.7",
            "outer and inner source"
        );
        assert_eq!(
            pair[1][2],
            format!("{backend},192.0.2.10"),
            "outer and inner destination"
        );
        assert_eq!(pair[1][3..5], ["1031", "80"]);
        for r in pair {
            assert!(r[5].contains(": backend "), "{r:?}");
            assert!(
                r[5].contains(&backend),
                "the decision names the backend: {r:?}"
            );
        }
        assert!(pair[0][5].contains(" in: ") && pair[1][5].contains(" out: "));
    }
    // The captured leaving frames are the frames the gateway sent.
    let raw = tshark(&pcapng, &["frame.interface_name", "frame.protocols"]);
    assert!(
        raw.iter().all(|r| r[1].starts_with("eth:ethertype:ip:")),
        "{raw:?}"
    );
    let mut reader =
        pcap_file::pcapng::PcapNgReader::new(std::fs::File::open(&pcapng).unwrap()).unwrap();
    let mut out_frames = Vec::new();
    while let Some(b) = reader.next_block() {
        if let pcap_file::pcapng::Block::EnhancedPacket(p) = b.unwrap() {
            if p.interface_id == 1 {
                out_frames.push(p.data.to_vec());
            }
        }
    }
    assert_eq!(out_frames, mine.into_iter().cloned().collect::<Vec<_>>());
}

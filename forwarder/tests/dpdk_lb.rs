//! The load-balancing pipeline through DPDK: the `dnlb` binary with
//! listeners, a `net_pcap` data port fed a mix of VIP and non-VIP frames,
//! and a `net_pcap` host port. Encapsulated frames come out of the data port
//! exactly as the pure pipeline makes them; ARP and traffic to the host's
//! own address come out of the host port; malformed frames are counted.

mod common;

use std::path::Path;

use dnlb_lb::processor::Processor;
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dnlb_lb::verdict::Action;
use dnlb_testkit::VecPacket;
use dnlb_testkit::{arp_request, frames, read_pcap, write_pcap, FlowMix, IpVersion, Proto};
use dnlb_wire::buf::PacketBuf;

fn config(dir: &Path) -> String {
    let mut eal = common::eal_args("lb");
    eal.push("--lcores=0@0,1@0".into());
    format!(
        r#"[gateway]
name = "lb-test"
[dataplane]
eal_args = {eal}
worker_lcores = [1]
idle_polls_before_sleep = 100
idle_sleep_us = 200
host_port = "net_pcap1"
[[dataplane.ports]]
name = "net_pcap0"
devargs = "rx_pcap={input},tx_pcap={out}"
[[dataplane.ports]]
name = "net_pcap1"
devargs = "rx_pcap={empty},tx_pcap={host}"
[encap]
source_v4 = "192.0.2.254"
source_v6 = "2001:db8:a::1"
next_hop_mac = "02:00:00:00:00:fe"
[[listener]]
name = "web"
vips = ["192.0.2.10", "2001:db8::10"]
protocol = "tcp"
port = 80
target_group = "web"
[[listener]]
name = "dns"
vips = ["192.0.2.10", "2001:db8::10"]
protocol = "udp"
port = 80
target_group = "dns"
[[target_group]]
name = "web"
[[target_group.backend]]
address = "10.1.0.1"
tunnel = "vxlan"
vni = 100
inner_mac = "02:be:00:00:00:01"
[[target_group.backend]]
address = "10.1.0.2"
tunnel = "vxlan"
vni = 100
inner_mac = "02:be:00:00:00:02"
[[target_group.backend]]
address = "2001:db8:b::3"
tunnel = "ipip"
[[target_group]]
name = "dns"
[[target_group.backend]]
address = "10.1.0.4"
tunnel = "gue"
[[target_group.backend]]
address = "10.1.0.5"
tunnel = "gre"
gre_key = 9
"#,
        eal = common::toml_list(&eal),
        input = common::path_str(dir, "in.pcap"),
        out = common::path_str(dir, "out.pcap"),
        empty = common::path_str(dir, "empty.pcap"),
        host = common::path_str(dir, "host.pcap"),
    )
}

#[test]
fn vip_frames_leave_encapsulated_and_the_rest_goes_to_the_host() {
    let dir = common::tempdir();
    let mut input = Vec::new();
    for (proto, ip) in [
        (Proto::Tcp, IpVersion::V4),
        (Proto::Udp, IpVersion::V4),
        (Proto::Tcp, IpVersion::V6),
        (Proto::Udp, IpVersion::V6),
    ] {
        input.extend(frames(&FlowMix {
            flows: 50,
            packets_per_flow: 2,
            proto,
            ip,
            frame_len: 100,
            dst_port: 80,
        }));
    }
    let vip_frames = input.len();
    // Not for a VIP: ARP, and TCP to the gateway's own address.
    let mut host_frames = Vec::new();
    for i in 0..10u8 {
        host_frames.push(arp_request([198, 18, 0, i].into(), [192, 0, 2, 254].into()));
        let mut f = frames(&FlowMix {
            flows: 1,
            ..FlowMix::default()
        })
        .remove(0);
        f[30..34].copy_from_slice(&[192, 0, 2, 254]); // IPv4 destination: the gateway
        host_frames.push(f);
    }
    // Malformed: truncated IPv4 headers.
    let malformed: Vec<Vec<u8>> = (0..5).map(|_| input[0][..20].to_vec()).collect();
    let mut all = input.clone();
    // Interleave so the bursts are mixed.
    for (i, h) in host_frames.iter().enumerate() {
        all.insert(i * 7, h.clone());
    }
    all.extend(malformed.iter().cloned());
    write_pcap(&dir.path().join("in.pcap"), &all).unwrap();
    write_pcap(&dir.path().join("empty.pcap"), &[]).unwrap();
    let cfg_path = dir.path().join("dnlb.toml");
    std::fs::write(&cfg_path, config(dir.path())).unwrap();

    let cfg_arg = cfg_path.to_str().unwrap().to_string();
    let (mut child, rx) =
        common::spawn_dnlb(&["run", "--stats-interval-ms", "50", "--config", &cfg_arg]);
    let want_rx = all.len() as u64;
    common::wait_event(&rx, "stats", |e| e["rx_packets"] == want_rx);
    common::signal(&child, "-TERM");
    let report = common::final_report(&rx);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "dnlb exit status {status:?}");

    // Data port: exactly what the pure pipeline produces for the VIP frames.
    let out = read_pcap(&dir.path().join("out.pcap")).unwrap();
    assert_eq!(
        out.len(),
        vip_frames,
        "one encapsulated frame per VIP frame"
    );
    let port_mac: [u8; 6] = out[0][6..12].try_into().unwrap();
    let cfg = dnlb_config::parse(&cfg_path, &config(dir.path())).unwrap();
    let snap = Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).unwrap();
    let mut p = Processor::new(4096, 1);
    p.adopt(&snap);
    for (i, (f, got)) in input.iter().zip(&out).enumerate() {
        let mut pkt = VecPacket::new(f);
        let a = p.process(&snap, &mut pkt, port_mac, 0);
        assert!(matches!(a, Action::Encapsulated(_)), "frame {i}: {a:?}");
        assert_eq!(pkt.data(), &got[..], "frame {i} differs");
    }
    // Host port: the non-VIP frames, untouched, in order.
    assert_eq!(
        read_pcap(&dir.path().join("host.pcap")).unwrap(),
        host_frames
    );
    // Counters: malformed frames counted, nothing else dropped.
    let total = &report["total"];
    assert_eq!(total["drops"]["malformed_l3"], 5, "{total}");
    assert_eq!(total["dropped"], 5, "{total}");
    let web = common::traffic(&report, "listeners", "web");
    assert_eq!(web["packets"], 200, "{web}");
    assert_eq!(report["flows"]["created"], 200, "{report}");
}

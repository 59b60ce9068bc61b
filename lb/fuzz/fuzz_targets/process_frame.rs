//! Any frame through the load-balancing step, against listeners of every
//! kind (TCP/UDP, one port and all ports, IPv4/IPv6 VIPs, fragments dropped
//! or hashed, an access list and new-flow limits) and backends of every
//! tunnel type, and the exception path's policer for frames not for a VIP:
//! the step never panics, an
//! encapsulated packet leaves toward the next hop in an outer IP header, and the
//! same frame gets the same verdict from a second worker (gateways agree).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use dnlb_testkit::VecPacket;
use dnlb_wire::buf::PacketBuf;
use dnlb_lb::processor::Processor;
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dnlb_lb::verdict::Action;
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[gateway]
name = "fuzz"
[dataplane]
worker_lcores = [1]
[[dataplane.ports]]
name = "net_ring0"
[encap]
source_v4 = "192.0.2.1"
source_v6 = "2001:db8::1"
next_hop_mac = "02:00:00:00:00:fe"
mtu = 1400
[[listener]]
name = "web"
vips = ["192.0.2.10", "2001:db8:1::10"]
protocol = "tcp"
port = 80
target_group = "mixed"
[listener.acl]
default = "allow"
allow = ["10.0.0.0/8", "2001:db8:c::/48"]
deny = ["10.1.0.0/16", "198.51.100.0/24", "2001:db8:c:1::/64"]
[listener.limits]
new_flows_per_sec = 1000
source_new_flows_per_sec = 10
[[listener]]
name = "dns"
vips = ["192.0.2.10", "2001:db8:1::10"]
protocol = "udp"
all_ports = true
fragments = "hash_addresses"
target_group = "mixed"
[[listener]]
name = "other"
vips = ["192.0.2.11"]
protocol = "tcp"
port = 443
scheduler = "source_ip"
table_size = 251
target_group = "v6"
[protection.host]
routing_peers = ["192.0.2.254"]
[[target_group]]
name = "mixed"
[[target_group.backend]]
address = "10.1.0.1"
tunnel = "ipip"
[[target_group.backend]]
address = "10.1.0.2"
tunnel = "gue"
[[target_group.backend]]
address = "10.1.0.3"
tunnel = "vxlan"
vni = 5
inner_mac = "02:00:00:00:00:05"
[[target_group.backend]]
address = "10.1.0.4"
tunnel = "gre"
gre_key = 9
[[target_group]]
name = "v6"
[[target_group.backend]]
address = "2001:db8:2::1"
tunnel = "ipip"
[[target_group.backend]]
address = "2001:db8:2::2"
tunnel = "vxlan"
vni = 6
inner_mac = "02:00:00:00:00:06"
"#;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn snapshot() -> &'static Snapshot {
    static S: OnceLock<Snapshot> = OnceLock::new();
    S.get_or_init(|| {
        let cfg = dnlb_config::parse(Path::new("fuzz.toml"), CONFIG).expect("valid");
        Snapshot::build(&cfg, 1, &mut BackendRegistry::default()).expect("builds")
    })
}

fuzz_target!(|data: &[u8]| {
    let snap = snapshot();
    let mut a = Processor::new(1024, 7);
    let mut b = Processor::new(1024, 8);
    a.adopt(snap);
    b.adopt(snap);
    let mut pa = VecPacket::new(data);
    let mut pb = VecPacket::new(data);
    // One worker as the pipeline runs it (prepare's fingerprint reused; debug
    // assertions check it equals process's own), one without the hint.
    let hint = a.prepare(&pa);
    let va = a.process_hinted(snap, &mut pa, MAC, 1, hint);
    let vb = b.process(snap, &mut pb, MAC, 1);
    assert_eq!(va, vb, "two workers disagree");
    assert_eq!(pa.data(), pb.data());
    if va == Action::NotForVip {
        // The exception path classifies anything without panicking, alike
        // on both workers.
        let (ha, hb) = (a.police_host(snap, data, 1), b.police_host(snap, data, 1));
        assert_eq!(ha, hb);
        assert_eq!(a.counters.host, b.counters.host);
    }
    if let Action::Encapsulated(_) = va {
        // An outer IPv4 or IPv6 header follows (trailing bytes beyond the
        // IP packet's own length are not carried, so it may be shorter).
        assert!(matches!(&pa.data()[12..14], [0x08, 0x00] | [0x86, 0xdd]));
        assert_eq!(&pa.data()[..6], &[2, 0, 0, 0, 0, 0xfe]);
        assert_eq!(&pa.data()[6..12], &MAC);
    }
});

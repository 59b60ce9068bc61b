//! Table of broken configs, each with the error it must produce.

use std::path::Path;

use dnlb_config::{parse, Device, IdlePolicy};

const GOOD: &str = r#"
[gateway]
name = "gw1"
zone = "az-a"

[dataplane]
eal_args = ["--no-huge", "--no-pci", "-m", "512"]
worker_lcores = [1]

[[dataplane.ports]]
name = "net_pcap0"
devargs = "rx_pcap=in.pcap,tx_pcap=out.pcap"

[[dataplane.ports]]
name = "net_ring0"
forward_to = "net_pcap0"
"#;

#[test]
fn good_config_validates_with_defaults() {
    let c = parse(Path::new("good.toml"), GOOD).unwrap();
    assert_eq!(c.gateway.name, "gw1");
    assert_eq!(c.gateway.zone.as_deref(), Some("az-a"));
    let d = &c.dataplane;
    assert_eq!(d.worker_lcores, vec![1]);
    assert_eq!(d.main_lcore, 0);
    assert_eq!(d.pool_mbufs, 8191);
    assert_eq!(d.idle, IdlePolicy::BusyPoll);
    assert_eq!(d.ports[0].forward_to, None);
    assert_eq!(d.ports[1].forward_to, Some(0));
    assert_eq!(d.host_port, None);
    assert!(c.listeners.is_empty());
    assert!(
        matches!(&d.ports[0].device, Device::Virtual { devargs } if devargs == "rx_pcap=in.pcap,tx_pcap=out.pcap")
    );
    assert_eq!(
        d.full_eal_args(),
        [
            "--no-huge",
            "--no-pci",
            "-m",
            "512",
            "-l",
            "0,1",
            "--main-lcore=0",
            "--vdev=net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap",
            "--vdev=net_ring0"
        ]
    );
}

#[test]
fn user_lcore_option_is_kept() {
    let t = GOOD.replace(r#""-m", "512"]"#, r#""-m", "512", "--lcores=0@0,1@0"]"#);
    let c = parse(Path::new("x.toml"), &t).unwrap();
    let a = c.dataplane.full_eal_args();
    assert!(a.contains(&"--lcores=0@0,1@0".to_string()));
    assert!(!a.contains(&"-l".to_string()));
}

/// (name, edit of GOOD, expected "line:col: key: message" fragment)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "unknown key",
        "zone = \"az-a\"",
        "zone = \"az-a\"\ncolour = 1",
        "unknown field `colour`",
    ),
    (
        "bad gateway name",
        "name = \"gw1\"",
        "name = \"gw 1\"",
        "3:8: gateway.name: \"gw 1\" is not a valid name",
    ),
    (
        "no workers",
        "worker_lcores = [1]",
        "worker_lcores = []",
        "8:17: dataplane.worker_lcores: at least one worker lcore",
    ),
    (
        "worker is main",
        "worker_lcores = [1]",
        "worker_lcores = [0]",
        "8:18: dataplane.worker_lcores[0]: lcore 0 is the main lcore",
    ),
    (
        "duplicate worker",
        "worker_lcores = [1]",
        "worker_lcores = [1, 1]",
        "8:21: dataplane.worker_lcores[1]: lcore 1 is listed twice",
    ),
    (
        "lcore too big",
        "worker_lcores = [1]",
        "worker_lcores = [500]",
        "dataplane.worker_lcores[0]: lcore 500 is out of range",
    ),
    (
        "vdev in eal args",
        "\"512\"]",
        "\"512\", \"--vdev=net_null0\"]",
        "dataplane.eal_args: declare virtual devices",
    ),
    (
        "duplicate port",
        "name = \"net_ring0\"",
        "name = \"net_pcap0\"",
        "dataplane.ports[1].name: port \"net_pcap0\" is declared twice",
    ),
    (
        "bad forward_to",
        "forward_to = \"net_pcap0\"",
        "forward_to = \"net_tap9\"",
        "dataplane.ports[1].forward_to: no port named \"net_tap9\"",
    ),
    (
        "bad device name",
        "name = \"net_ring0\"",
        "name = \"eth0\"",
        "dataplane.ports[1].name: \"eth0\" is neither a virtual device",
    ),
    (
        "pci with no-pci",
        "name = \"net_ring0\"",
        "name = \"0000:03:00.0\"",
        "dataplane.ports[1].name: a PCI port cannot be used with --no-pci",
    ),
    (
        "descriptors not power of two",
        "worker_lcores = [1]",
        "worker_lcores = [1]\nrx_descriptors = 1000",
        "dataplane.rx_descriptors: 1000 is not a power of two",
    ),
    (
        "idle sleep range",
        "worker_lcores = [1]",
        "worker_lcores = [1]\nidle_sleep_us = 0",
        "dataplane.idle_sleep_us: must be between 1 and 100000",
    ),
    (
        "mtu range",
        "forward_to = \"net_pcap0\"",
        "forward_to = \"net_pcap0\"\nmtu = 20",
        "dataplane.ports[1].mtu: must be between 68 and 9600",
    ),
    (
        "wrong type",
        "worker_lcores = [1]",
        "worker_lcores = \"1\"",
        "invalid type",
    ),
    (
        "missing section",
        "[gateway]\nname = \"gw1\"\nzone = \"az-a\"\n",
        "",
        "missing field `gateway`",
    ),
    (
        "pool too small",
        "worker_lcores = [1]",
        "worker_lcores = [1]\npool_mbufs = 10",
        "dataplane.pool_mbufs: must be between 256",
    ),
    (
        "whitespace in devargs",
        "tx_pcap=out.pcap\"",
        "tx_pcap=out.pcap \"",
        "dataplane.ports[0].devargs: device arguments must not contain whitespace",
    ),
];

#[test]
fn broken_configs_name_line_column_and_key() {
    let mut failures = Vec::new();
    for (name, from, to, want) in CASES {
        assert!(
            GOOD.contains(from),
            "case {name}: edit anchor {from:?} not in GOOD"
        );
        let text = GOOD.replacen(from, to, 1);
        match parse(Path::new("bad.toml"), &text) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) => {
                let s = e.to_string();
                if !s.contains(want) || !s.starts_with("bad.toml") {
                    failures.push(format!("{name}: got {s:?}, want {want:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = GOOD
        .replace("name = \"gw1\"", "name = \"\"")
        .replace("worker_lcores = [1]", "worker_lcores = [0]")
        .replace("forward_to = \"net_pcap0\"", "forward_to = \"nope\"");
    let e = parse(Path::new("bad.toml"), &text).unwrap_err();
    assert_eq!(e.errors().len(), 3, "{e}");
}

#[test]
fn unreadable_file_is_an_error() {
    let e = dnlb_config::load(Path::new("/nonexistent/dnlb.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/dnlb.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn documented_example_validates() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/dnlb.toml");
    let c = dnlb_config::load(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.dataplane.worker_lcores, vec![1, 2]);
    assert_eq!(c.dataplane.ports.len(), 2);
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(
        c.target_groups
            .iter()
            .map(|g| g.backends.len())
            .sum::<usize>(),
        6
    );
    assert!(c.target_groups[0].backends[3].drain_until.is_some());
    assert_eq!(
        c.admin.map(|a| a.listen),
        Some("127.0.0.1:9100".parse().unwrap())
    );
}

const LB: &str = r#"
[gateway]
name = "gw1"

[dataplane]
eal_args = ["--no-huge"]
worker_lcores = [1]
host_port = "net_tap0"

[[dataplane.ports]]
name = "net_pcap0"

[[dataplane.ports]]
name = "net_tap0"

[encap]
source_v4 = "192.0.2.1"
source_v6 = "2001:db8::1"
next_hop_mac = "02:00:00:00:00:fe"
mtu = 1500

[flows]
capacity_per_worker = 4096
udp_idle_timeout_secs = 30

[[listener]]
name = "web"
vips = ["198.51.100.10", "2001:db8:1::10"]
elastic_ip = "203.0.113.10"
protocol = "tcp"
port = 80
target_group = "web"

[[listener]]
name = "dns"
vips = ["198.51.100.10"]
protocol = "udp"
all_ports = true
scheduler = "source_ip"
fragments = "hash_addresses"
table_size = 251
target_group = "web"

[[target_group]]
name = "web"
all_down = "drop"

[target_group.health_check]
type = "http"
port = 8080
path = "/healthz"
expected_status = [200, 204]
interval_ms = 500
timeout_ms = 200
healthy_threshold = 2
unhealthy_threshold = 3
startup_grace_ms = 3000

[[target_group.backend]]
address = "10.1.0.1"
tunnel = "vxlan"
vni = 100
inner_mac = "02:00:00:00:01:01"
zone = "a"

[[target_group.backend]]
address = "2001:db8:2::1"
tunnel = "ipip"
weight = 0
kind = "container"

[[target_group.backend]]
address = "10.1.0.3"
tunnel = "gue"

[[target_group.backend]]
address = "10.1.0.4"
tunnel = "gre"
gre_key = 7
"#;

#[test]
fn load_balancing_sections_validate() {
    use dnlb_config::{FragmentPolicy, Protocol, Scheduler, Tunnel};
    let c = parse(Path::new("lb.toml"), LB).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.dataplane.host_port, Some(1));
    assert_eq!(c.dataplane.ports[1].forward_to, Some(0));
    assert_eq!(c.encap.next_hop_mac, [2, 0, 0, 0, 0, 0xfe]);
    assert_eq!(c.flows.udp_idle_timeout.as_secs(), 30);
    assert_eq!(c.flows.tcp_idle_timeout.as_secs(), 900);
    assert_eq!(c.listeners.len(), 2);
    let web = &c.listeners[0];
    assert_eq!(
        (web.protocol, web.port, web.table_size),
        (Protocol::Tcp, Some(80), 65537)
    );
    assert_eq!(web.addresses().count(), 3);
    let dns = &c.listeners[1];
    assert_eq!(
        (dns.port, dns.scheduler, dns.fragments),
        (None, Scheduler::SourceIp, FragmentPolicy::HashAddresses)
    );
    let b = &c.target_groups[0].backends;
    assert_eq!(b.len(), 4);
    assert!(matches!(
        b[0].tunnel,
        Tunnel::Vxlan {
            vni: 100,
            port: 4789,
            ..
        }
    ));
    assert_eq!(b[1].weight, 0);
    assert_eq!(b[2].tunnel, Tunnel::Gue { port: 6080 });
    assert_eq!(b[3].tunnel, Tunnel::Gre { key: Some(7) });
    let g = &c.target_groups[0];
    assert_eq!(g.all_down, dnlb_config::AllDownPolicy::Drop);
    let h = g.health_check.as_ref().unwrap();
    assert_eq!(
        h.probe,
        dnlb_config::Probe::Http {
            path: "/healthz".into(),
            expected_status: vec![200, 204]
        }
    );
    assert_eq!(
        (h.port, h.interval.as_millis(), h.timeout.as_millis()),
        (8080, 500, 200)
    );
    assert_eq!((h.healthy_threshold, h.unhealthy_threshold), (2, 3));
    assert_eq!(h.startup_grace, std::time::Duration::from_millis(3000));
    assert_ne!(
        dnlb_lb::maglev::backend_identity(&b[0]),
        dnlb_lb::maglev::backend_identity(&b[2])
    );
}

#[test]
fn health_check_defaults_include_no_startup_grace() {
    // Everything but the required keys removed from LB's health check.
    let minimal = LB.replacen(
        "path = \"/healthz\"\nexpected_status = [200, 204]\ninterval_ms = 500\ntimeout_ms = 200\n\
         healthy_threshold = 2\nunhealthy_threshold = 3\nstartup_grace_ms = 3000\n",
        "",
        1,
    );
    assert_ne!(minimal, LB, "the edit applies");
    let c = parse(Path::new("lb.toml"), &minimal).unwrap_or_else(|e| panic!("{e}"));
    let h = c.target_groups[0].health_check.as_ref().unwrap();
    assert_eq!(
        (h.interval.as_millis(), h.timeout.as_millis()),
        (5000, 2000)
    );
    assert_eq!((h.healthy_threshold, h.unhealthy_threshold), (3, 3));
    assert_eq!(h.startup_grace, std::time::Duration::ZERO);
}

/// (name, edit of LB, expected message fragment)
const LB_CASES: &[(&str, &str, &str, &str)] = &[
    ("bad next hop mac", "next_hop_mac = \"02:00:00:00:00:fe\"", "next_hop_mac = \"02:00:00:00:00\"", "encap.next_hop_mac: \"02:00:00:00:00\" is not a MAC address"),
    ("source_v4 not v4", "source_v4 = \"192.0.2.1\"", "source_v4 = \"2001:db8::1\"", "encap.source_v4: \"2001:db8::1\" is not an IPv4 address"),
    ("missing v6 source", "source_v6 = \"2001:db8::1\"\n", "", "target_group[0].backend[1].address: backend 2001:db8:2::1 is IPv6, but encap.source_v6 is not set"),
    ("mtu too small", "mtu = 1500", "mtu = 1000", "encap.mtu: must be between 1280 and 9600"),
    ("too_big unknown", "mtu = 1500", "mtu = 1500\ntoo_big = \"fragment\"", "encap.too_big: \"fragment\" is not one of \"icmp\", \"drop\""),
    ("flow capacity", "capacity_per_worker = 4096", "capacity_per_worker = 10", "flows.capacity_per_worker: must be between 1024 and 16777216"),
    ("timeout zero", "udp_idle_timeout_secs = 30", "udp_idle_timeout_secs = 0", "flows.udp_idle_timeout_secs: must be between 1 and 86400"),
    ("closing timeout too long", "udp_idle_timeout_secs = 30", "udp_idle_timeout_secs = 30\ntcp_closing_timeout_secs = 100000", "flows.tcp_closing_timeout_secs: must be between 1 and 86400"),
    ("listener unknown group", "port = 80\ntarget_group = \"web\"", "port = 80\ntarget_group = \"api\"", "listener[0].target_group: no target group named \"api\""),
    ("listener duplicate name", "name = \"dns\"", "name = \"web\"", "listener[1].name: listener \"web\" is defined twice"),
    ("listener bad protocol", "protocol = \"tcp\"", "protocol = \"sctp\"", "listener[0].protocol: \"sctp\" is not one of \"tcp\", \"udp\""),
    ("listener port and all_ports", "all_ports = true", "all_ports = true\nport = 53", "listener[1].port: give either port or all_ports = true, not both"),
    ("listener no port", "port = 80\n", "", "listener[0].port: give a port, or all_ports = true"),
    ("listener port zero", "port = 80", "port = 0", "listener[0].port: must be between 1 and 65535"),
    ("table size not prime", "table_size = 251", "table_size = 65536", "listener[1].table_size: 65536 is not a prime"),
    ("bad vip", "vips = [\"198.51.100.10\", \"2001:db8:1::10\"]", "vips = [\"198.51.100.300\"]", "listener[0].vips[0]: \"198.51.100.300\" is not an IP address"),
    ("no vips", "vips = [\"198.51.100.10\", \"2001:db8:1::10\"]", "vips = []", "listener[0].vips: at least one VIP is needed"),
    ("multicast vip", "elastic_ip = \"203.0.113.10\"", "elastic_ip = \"224.0.0.1\"", "listener[0].elastic_ip: 224.0.0.1 cannot be a VIP"),
    ("overlap same port", "protocol = \"udp\"\nall_ports = true", "protocol = \"tcp\"\nport = 80", "listener[1].vips[0]: 198.51.100.10 overlaps listener \"web\" (198.51.100.10 tcp port 80)"),
    ("overlap all ports", "protocol = \"udp\"", "protocol = \"tcp\"", "listener[1].vips[0]: 198.51.100.10 overlaps listener \"web\""),
    ("elastic ip is a vip", "elastic_ip = \"203.0.113.10\"", "elastic_ip = \"198.51.100.10\"", "listener[0].elastic_ip: 198.51.100.10 is listed twice in this listener"),
    ("unknown scheduler", "scheduler = \"source_ip\"", "scheduler = \"round_robin\"", "listener[1].scheduler: \"round_robin\" is not one of"),
    ("unknown fragment policy", "fragments = \"hash_addresses\"", "fragments = \"reassemble\"", "listener[1].fragments: \"reassemble\" is not one of"),
    ("vxlan without vni", "vni = 100\n", "", "target_group[0].backend[0].vni: a VXLAN backend needs a vni"),
    ("vxlan vni too big", "vni = 100", "vni = 16777216", "target_group[0].backend[0].vni: must be between 0 and 16777215"),
    ("vxlan without inner mac", "inner_mac = \"02:00:00:00:01:01\"\n", "", "target_group[0].backend[0].inner_mac: a VXLAN backend needs inner_mac"),
    ("vni on ipip", "tunnel = \"ipip\"", "tunnel = \"ipip\"\nvni = 5", "target_group[0].backend[1].vni: only for tunnel = \"vxlan\", not \"ipip\""),
    ("gre key on gue", "tunnel = \"gue\"", "tunnel = \"gue\"\ngre_key = 1", "target_group[0].backend[2].gre_key: only for tunnel = \"gre\", not \"gue\""),
    ("unknown tunnel", "tunnel = \"gre\"", "tunnel = \"mpls\"\n", "target_group[0].backend[3].tunnel: \"mpls\" is not one of"),
    ("weight over 100", "weight = 0", "weight = 101", "target_group[0].backend[1].weight: must be between 0 and 100"),
    ("duplicate backend", "address = \"10.1.0.4\"\ntunnel = \"gre\"\ngre_key = 7", "address = \"10.1.0.3\"\ntunnel = \"gue\"", "target_group[0].backend[3]: same address, port and tunnel as backend[2]"),
    ("bad backend address", "address = \"10.1.0.3\"", "address = \"backend-3\"", "target_group[0].backend[2].address: \"backend-3\" is not an IP address"),
    ("duplicate group", "[[target_group]]\nname = \"web\"", "[[target_group]]\nname = \"web\"\n[[target_group]]\nname = \"web\"", "target_group[1].name: target_group \"web\" is defined twice"),
    ("bad kind", "kind = \"container\"", "kind = \"pod\"", "target_group[0].backend[1].kind: \"pod\" is not one of \"vm\", \"container\""),
    ("bad zone name", "zone = \"a\"", "zone = \"zone a\"", "target_group[0].backend[0].zone: \"zone a\" is not a valid name"),
    ("unknown host port", "host_port = \"net_tap0\"", "host_port = \"net_tap1\"", "dataplane.host_port: no port named \"net_tap1\""),
    ("listeners without encap", "[encap]\nsource_v4", "[not_encap]\nsource_v4", "unknown field `not_encap`"),
    ("unknown health check type", "type = \"http\"", "type = \"icmp\"", "target_group[0].health_check.type: \"icmp\" is not one of"),
    ("timeout not below interval", "timeout_ms = 200", "timeout_ms = 500", "target_group[0].health_check.timeout_ms: the timeout (500 ms) must be shorter than the interval (500 ms)"),
    ("interval too short", "interval_ms = 500", "interval_ms = 5", "target_group[0].health_check.interval_ms: must be between 50 and 300000"),
    ("threshold zero", "healthy_threshold = 2", "healthy_threshold = 0", "target_group[0].health_check.healthy_threshold: must be between 1 and 10"),
    ("bad status", "expected_status = [200, 204]", "expected_status = [700]", "target_group[0].health_check.expected_status: give one or more HTTP status codes"),
    ("relative path", "path = \"/healthz\"", "path = \"healthz\"", "target_group[0].health_check.path: \"healthz\" is not an absolute path"),
    ("payload on http", "path = \"/healthz\"", "path = \"/healthz\"\nudp_payload = \"x\"", "target_group[0].health_check.udp_payload: only for type = \"udp\", not \"http\""),
    ("grace too long", "startup_grace_ms = 3000", "startup_grace_ms = 600001", "target_group[0].health_check.startup_grace_ms: must be between 0 and 600000"),
    ("grace negative", "startup_grace_ms = 3000", "startup_grace_ms = -1", "invalid value: integer `-1`, expected u32"),
    ("health port zero", "port = 8080", "port = 0", "target_group[0].health_check.port: must be between 1 and 65535"),
    ("unknown all_down", "all_down = \"drop\"", "all_down = \"panic\"", "target_group[0].all_down: \"panic\" is not one of \"fail_open\", \"drop\""),
    ("unknown listener key", "scheduler = \"source_ip\"", "scheduler = \"source_ip\"\nstickiness = true", "unknown field `stickiness`"),
    ("unknown zone affinity", "all_down = \"drop\"", "all_down = \"drop\"\nzone_affinity = \"nearest\"", "target_group[0].zone_affinity: \"nearest\" is not one of \"none\", \"prefer_own\""),
    ("prefer own zone without a gateway zone", "all_down = \"drop\"", "all_down = \"drop\"\nzone_affinity = \"prefer_own\"", "target_group[0].zone_affinity: \"prefer_own\" needs the gateway's zone (gateway.zone)"),
    ("drain without offset", "gre_key = 7", "gre_key = 7\ndrain_until = 2026-11-24T08:00:00", "target_group[0].backend[3].drain_until: 2026-11-24T08:00:00 is not a date-time with an offset"),
    ("drain is a date only", "gre_key = 7", "gre_key = 7\ndrain_until = 2026-11-24", "target_group[0].backend[3].drain_until: 2026-11-24 is not a date-time"),
    ("drain as a string", "gre_key = 7", "gre_key = 7\ndrain_until = \"soon\"", "invalid type: string \"soon\", expected a TOML datetime"),
    ("admin listen not an address", "[flows]", "[admin]\nlisten = \"localhost\"\n\n[flows]", "admin.listen: \"localhost\" is not an address and port"),
    ("vip is ipv4-mapped", "vips = [\"198.51.100.10\", \"2001:db8:1::10\"]", "vips = [\"198.51.100.10\", \"::ffff:198.51.100.10\"]", "listener[0].vips[1]: ::ffff:198.51.100.10 cannot be a VIP"),
    ("acl prefix with host bits", "port = 80\ntarget_group = \"web\"\n", "port = 80\ntarget_group = \"web\"\n[listener.acl]\nallow = [\"10.1.2.3/8\"]\n", "listener[0].acl.allow[0]: \"10.1.2.3/8\" has bits set past its /8: did you mean \"10.0.0.0/8\"?"),
    ("acl prefix in both lists", "port = 80\ntarget_group = \"web\"\n", "port = 80\ntarget_group = \"web\"\n[listener.acl]\nallow = [\"10.0.0.0/8\"]\ndeny = [\"10.0.0.0/8\"]\n", "listener[0].acl.deny[0]: 10.0.0.0/8 is already in listener[0].acl.allow"),
    ("acl default unknown", "port = 80\ntarget_group = \"web\"\n", "port = 80\ntarget_group = \"web\"\n[listener.acl]\ndefault = \"reject\"\n", "listener[0].acl.default: \"reject\" is not one of \"allow\", \"deny\""),
    ("acl prefix length", "port = 80\ntarget_group = \"web\"\n", "port = 80\ntarget_group = \"web\"\n[listener.acl]\ndeny = [\"2001:db8::/129\"]\n", "listener[0].acl.deny[0]: \"2001:db8::/129\": the prefix length must be 0 to 128"),
    ("limit rate zero", "port = 80\ntarget_group = \"web\"\n", "port = 80\ntarget_group = \"web\"\n[listener.limits]\nnew_flows_per_sec = 0\n", "listener[0].limits.new_flows_per_sec: must be between 1 and 100000000"),
    ("limit burst without rate", "port = 80\ntarget_group = \"web\"\n", "port = 80\ntarget_group = \"web\"\n[listener.limits]\nsource_new_flows_burst = 10\n", "listener[0].limits.source_new_flows_burst: a burst needs its rate (source_new_flows_per_sec is not set)"),
    ("limit burst zero", "port = 80\ntarget_group = \"web\"\n", "port = 80\ntarget_group = \"web\"\n[listener.limits]\nsource_new_flows_per_sec = 10\nsource_new_flows_burst = 0\n", "listener[0].limits.source_new_flows_burst: must be between 1 and 100000000"),
    ("limit unknown key", "port = 80\ntarget_group = \"web\"\n", "port = 80\ntarget_group = \"web\"\n[listener.limits]\nconnections_per_sec = 10\n", "unknown field `connections_per_sec`"),
    ("echo rate zero", "[flows]", "[protection]\necho_replies_per_sec = 0\n\n[flows]", "protection.echo_replies_per_sec: must be between 1 and 10000000"),
    ("forwarded icmp rate too high", "[flows]", "[protection]\nicmp_errors_forwarded_per_sec = 20000000\n\n[flows]", "protection.icmp_errors_forwarded_per_sec: must be between 1 and 10000000"),
    ("host class rate zero", "[flows]", "[protection.host]\nrouting_pps = 0\n\n[flows]", "protection.host.routing_pps: must be between 1 and 10000000"),
    ("routing peer not an address", "[flows]", "[protection.host]\nrouting_peers = [\"router1\"]\n\n[flows]", "protection.host.routing_peers[0]: \"router1\" is not an IP address"),
    ("host class unknown", "[flows]", "[protection.host]\nbgp_pps = 10\n\n[flows]", "unknown field `bgp_pps`"),
    ("admin connections zero", "[flows]", "[admin]\nmax_connections = 0\n\n[flows]", "admin.max_connections: give 1 to 4096"),
    ("admin token file missing", "[flows]", "[admin]\ntoken_file = \"/nonexistent/dnlb-token\"\n\n[flows]", "admin.token_file: cannot read /nonexistent/dnlb-token"),
    ("routing without files", "[flows]", "[routing]\nbird_socket = \"/run/bird/bird.ctl\"\n\n[flows]", "routing: give vips4_file and/or vips6_file"),
    ("routing same file twice", "[flows]", "[routing]\nbird_socket = \"/run/bird/bird.ctl\"\nvips4_file = \"/run/dnlb/vips.conf\"\nvips6_file = \"/run/dnlb/vips.conf\"\n\n[flows]", "routing.vips6_file: must differ from vips4_file"),
    ("routing delay too long", "[flows]", "[routing]\nbird_socket = \"/run/bird/bird.ctl\"\nvips4_file = \"v4.conf\"\nwithdraw_delay_ms = 700000\n\n[flows]", "routing.withdraw_delay_ms: must be between 0 and 600000"),
    ("routing without a socket", "[flows]", "[routing]\nvips4_file = \"v4.conf\"\n\n[flows]", "missing field `bird_socket`"),
    ("admin unknown key", "[flows]", "[admin]\nport = 9100\n\n[flows]", "unknown field `port`, expected one of `listen`, `token_file`, `socket`, `max_connections`"),
];

#[test]
fn broken_load_balancing_configs_name_the_key() {
    let mut failures = Vec::new();
    for (name, from, to, want) in LB_CASES {
        assert!(
            LB.contains(from),
            "case {name}: edit anchor {from:?} not in LB"
        );
        let text = LB.replacen(from, to, 1);
        match parse(Path::new("lb.toml"), &text) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) => {
                let s = e.to_string();
                if !s.contains(want) {
                    failures.push(format!("{name}: got {s:?}, want {want:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn protection_and_limits_validate_with_defaults() {
    let c = parse(Path::new("lb.toml"), LB).unwrap();
    assert_eq!(c.protection, dnlb_config::model::Protection::default());
    assert_eq!(c.listeners[0].limits, Default::default(), "no limits");
    let text = LB
        .replacen(
            "port = 80\ntarget_group = \"web\"\n",
            "port = 80\ntarget_group = \"web\"\n[listener.limits]\nnew_flows_per_sec = 5000\nsource_new_flows_per_sec = 20\nsource_new_flows_burst = 40\n",
            1,
        )
        .replace(
            "[flows]",
            "[protection]\necho_replies_per_sec = 50\n[protection.host]\nother_pps = 700\n\n[flows]",
        );
    let c = parse(Path::new("lb.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    use dnlb_config::model::Rate;
    let l = &c.listeners[0].limits;
    assert_eq!(
        l.listener,
        Some(Rate {
            per_sec: 5000,
            burst: 5000
        })
    );
    assert_eq!(
        l.source,
        Some(Rate {
            per_sec: 20,
            burst: 40
        })
    );
    assert_eq!(c.protection.echo_replies, Rate::per_sec(50));
    assert_eq!(c.protection.host.other, Rate::per_sec(700));
    let d = dnlb_config::model::Protection::default();
    assert_eq!(c.protection.host.routing, d.host.routing);
    assert_eq!(c.protection.icmp_errors_forwarded, d.icmp_errors_forwarded);
}

/// A `[sync]` section appended to GOOD, in a directory holding the key files
/// it names (`good.key` 32 bytes, `old.key` 40, `short.key` 8, `big.key`
/// 5000).
fn sync_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [
        ("good.key", 32),
        ("old.key", 40),
        ("short.key", 8),
        ("big.key", 5000),
    ] {
        std::fs::write(dir.path().join(name), vec![7u8; len]).unwrap();
    }
    dir
}

const SYNC: &str = r#"
[sync]
listen = "10.0.0.1:7946"
peers = ["10.0.0.2:7946", "10.0.0.3:7946"]
key_file = "good.key"
"#;

#[test]
fn sync_section_validates_with_defaults() {
    let dir = sync_dir();
    let file = dir.path().join("gw.toml");
    assert_eq!(parse(&file, GOOD).unwrap().sync, None);
    let c = parse(&file, &format!("{GOOD}{SYNC}")).unwrap();
    let s = c.sync.unwrap();
    assert_eq!(s.listen, "10.0.0.1:7946".parse().unwrap());
    assert_eq!(
        s.peers,
        [
            "10.0.0.2:7946".parse().unwrap(),
            "10.0.0.3:7946".parse().unwrap()
        ]
    );
    assert_eq!(s.key_file, dir.path().join("good.key"));
    assert_eq!(s.previous_key_file, None);
    assert_eq!(s.batch_interval, std::time::Duration::from_millis(100));
    assert_eq!(s.max_bytes_per_sec_per_peer, 1_000_000);
    assert_eq!(s.max_queued, 100_000);
    assert_eq!(s.max_held, 262_144);
    assert_eq!(s.fetch_timeout, std::time::Duration::from_millis(2000));
    let all = format!(
        "{GOOD}{SYNC}previous_key_file = \"old.key\"\nbatch_ms = 50\n\
         max_bytes_per_sec_per_peer = 20000\nmax_queued = 10\nmax_held = 20\n\
         fetch_timeout_ms = 500\n"
    );
    let s = parse(&file, &all).unwrap().sync.unwrap();
    assert_eq!(s.previous_key_file, Some(dir.path().join("old.key")));
    assert_eq!(s.batch_interval, std::time::Duration::from_millis(50));
    assert_eq!(
        (s.max_bytes_per_sec_per_peer, s.max_queued, s.max_held),
        (20_000, 10, 20)
    );
    assert_eq!(s.fetch_timeout, std::time::Duration::from_millis(500));
    let v6 = SYNC.replace("10.0.0.1:7946", "[2001:db8::1]:7946").replace(
        "\"10.0.0.2:7946\", \"10.0.0.3:7946\"",
        "\"[2001:db8::2]:7946\"",
    );
    assert!(parse(&file, &format!("{GOOD}{v6}")).is_ok());
}

#[rustfmt::skip]
const SYNC_CASES: &[(&str, &str, &str, &str)] = &[
    // (name, edit from, edit to, expected error substring)
    ("listen not an address", "listen = \"10.0.0.1:7946\"", "listen = \"gw1:7946\"", "sync.listen: \"gw1:7946\" is not an address and port"),
    ("listen without a port", "listen = \"10.0.0.1:7946\"", "listen = \"10.0.0.1:0\"", "sync.listen: give a port"),
    ("no peers", "peers = [\"10.0.0.2:7946\", \"10.0.0.3:7946\"]", "peers = []", "sync.peers: give at least one peer"),
    ("peer not an address", "\"10.0.0.3:7946\"", "\"gw3\"", "sync.peers[1]: \"gw3\" is not an address and port"),
    ("peer twice", "\"10.0.0.3:7946\"", "\"10.0.0.2:7946\"", "sync.peers[1]: 10.0.0.2:7946 is listed twice"),
    ("peer is me", "\"10.0.0.3:7946\"", "\"10.0.0.1:7946\"", "sync.peers[1]: 10.0.0.1:7946 is this gateway's own sync.listen"),
    ("peer of another family", "\"10.0.0.3:7946\"", "\"[2001:db8::3]:7946\"", "sync.peers[1]: [2001:db8::3]:7946 must be of sync.listen's address family"),
    ("peer without a port", "\"10.0.0.3:7946\"", "\"10.0.0.3:0\"", "sync.peers[1]: 10.0.0.3:0 is not an address to send to"),
    ("peer unspecified", "\"10.0.0.3:7946\"", "\"0.0.0.0:7946\"", "sync.peers[1]: 0.0.0.0:7946 is not an address to send to"),
    ("key file missing", "key_file = \"good.key\"", "key_file = \"none.key\"", "sync.key_file: cannot read "),
    ("key too short", "key_file = \"good.key\"", "key_file = \"short.key\"", "short.key is 8 bytes; a key is at least 32 random bytes"),
    ("key too long", "key_file = \"good.key\"", "key_file = \"big.key\"", "big.key is 5000 bytes; a key is at most 4096"),
    ("key file empty path", "key_file = \"good.key\"", "key_file = \"\"", "sync.key_file: give a path"),
    ("previous key too short", "key_file = \"good.key\"", "key_file = \"good.key\"\nprevious_key_file = \"short.key\"", "sync.previous_key_file: "),
    ("previous key is the key", "key_file = \"good.key\"", "key_file = \"good.key\"\nprevious_key_file = \"good.key\"", "sync.previous_key_file: must differ from key_file"),
    ("batch too short", "key_file = \"good.key\"", "key_file = \"good.key\"\nbatch_ms = 5", "sync.batch_ms: must be between 10 and 10000"),
    ("rate below a message", "key_file = \"good.key\"", "key_file = \"good.key\"\nmax_bytes_per_sec_per_peer = 1000", "sync.max_bytes_per_sec_per_peer: must be between 1400 and 1000000000"),
    ("queue zero", "key_file = \"good.key\"", "key_file = \"good.key\"\nmax_queued = 0", "sync.max_queued: must be between 1 and 4194304"),
    ("held too many", "key_file = \"good.key\"", "key_file = \"good.key\"\nmax_held = 5000000", "sync.max_held: must be between 1 and 4194304"),
    ("fetch timeout too long", "key_file = \"good.key\"", "key_file = \"good.key\"\nfetch_timeout_ms = 60001", "sync.fetch_timeout_ms: must be between 100 and 60000"),
    ("without a key file", "key_file = \"good.key\"", "", "missing field `key_file`"),
    ("unknown key", "key_file = \"good.key\"", "key_file = \"good.key\"\nmulticast = true", "unknown field `multicast`"),
];

#[test]
fn broken_sync_sections_name_the_key() {
    let dir = sync_dir();
    let file = dir.path().join("gw.toml");
    let mut failures = Vec::new();
    for (name, from, to, want) in SYNC_CASES {
        assert!(
            SYNC.contains(from),
            "case {name}: edit anchor {from:?} not in SYNC"
        );
        let text = format!("{GOOD}{}", SYNC.replacen(from, to, 1));
        match parse(&file, &text) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) => {
                let s = e.to_string();
                if !s.contains(want) || !s.contains("gw.toml:") {
                    failures.push(format!("{name}: got {s:?}, want {want:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

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
    assert_eq!(d.ports[0].forward_to, 0);
    assert_eq!(d.ports[1].forward_to, 0);
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
}

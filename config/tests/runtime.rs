//! Run-time changes (what the admin API changes) persisted beside the
//! config, applied over it and validated with it.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use dnlb_config::runtime::{self, BackendRef, RuntimeChanges};

const BASE: &str = r#"
[gateway]
name = "gw1"
zone = "a"

[dataplane]
worker_lcores = [1]

[[dataplane.ports]]
name = "net_ring0"

[encap]
source_v4 = "192.0.2.1"
next_hop_mac = "02:00:00:00:00:fe"

[[listener]]
name = "web"
vips = ["198.51.100.10"]
protocol = "tcp"
port = 80
target_group = "web"

[[target_group]]
name = "web"

[[target_group.backend]]
address = "10.1.0.1"
port = 80
tunnel = "ipip"
zone = "a"

[[target_group.backend]]
address = "10.1.0.2"
port = 80
tunnel = "ipip"
zone = "b"
"#;

fn table(s: &str) -> toml::Table {
    toml::from_str(s).unwrap()
}

fn r(address: &str, port: Option<u16>) -> BackendRef {
    BackendRef {
        target_group: "web".into(),
        address: address.parse().unwrap(),
        port,
    }
}

fn files() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gw.toml");
    std::fs::write(&cfg, BASE).unwrap();
    (dir, cfg)
}

#[test]
fn runtime_file_sits_beside_the_config() {
    assert_eq!(
        runtime::runtime_path(std::path::Path::new("/etc/dnlb/gw1.toml")),
        std::path::Path::new("/etc/dnlb/gw1.runtime.toml")
    );
}

#[test]
fn changes_survive_a_restart_and_apply_over_the_config() {
    let (_dir, cfg) = files();
    let mut ch = RuntimeChanges::default();
    ch.register(
        "web",
        table("address = \"10.1.0.3\"\nport = 80\ntunnel = \"ipip\"\nzone = \"b\"\nweight = 40"),
    );
    ch.deregister(&r("10.1.0.1", None), true);
    ch.set_weight(&r("10.1.0.2", Some(80)), 7, true);
    let until: toml::value::Datetime = "2030-01-01T00:00:00Z".parse().unwrap();
    ch.set_drain(&r("10.1.0.2", Some(80)), Some(until), true);
    ch.set_elastic_ip("web", Some("203.0.113.7".parse().unwrap()));
    let path = runtime::runtime_path(&cfg);
    ch.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# Run-time changes"), "{text}");

    // As after a restart.
    let loaded = runtime::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.changes, ch);
    assert!(loaded.stale.is_empty(), "{:?}", loaded.stale);
    let c = &loaded.config;
    let g = &c.target_groups[0];
    let addrs: Vec<IpAddr> = g.backends.iter().map(|b| b.address).collect();
    assert_eq!(
        addrs,
        [
            "10.1.0.2".parse::<IpAddr>().unwrap(),
            "10.1.0.3".parse().unwrap()
        ]
    );
    assert_eq!(g.backends[0].weight, 7);
    assert_eq!(
        g.backends[0].drain_until,
        Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    );
    assert_eq!(g.backends[1].weight, 40);
    assert_eq!(
        c.listeners[0].elastic_ip,
        Some("203.0.113.7".parse().unwrap())
    );
    let described = ch.describe().join("\n");
    for want in [
        "register: target group \"web\" backend 10.1.0.3 port 80 tunnel ipip weight 40",
        "deregister: target group \"web\" backend 10.1.0.1",
        "weight: target group \"web\" backend 10.1.0.2 port 80 = 7",
        "drain: target group \"web\" backend 10.1.0.2 port 80 until 2030-01-01T00:00:00Z",
        "elastic_ip: listener \"web\" attached 203.0.113.7",
    ] {
        assert!(described.contains(want), "{described}\nwant {want}");
    }
}

#[test]
fn changes_to_registered_backends_edit_the_registration() {
    let (_dir, cfg) = files();
    let mut ch = RuntimeChanges::default();
    ch.register("web", table("address = \"10.1.0.3\"\ntunnel = \"ipip\""));
    ch.set_weight(&r("10.1.0.3", None), 0, false);
    assert!(ch.weight.is_empty());
    assert_eq!(ch.register[0].backend["weight"].as_integer(), Some(0));
    // Registering it again replaces the first registration.
    ch.register(
        "web",
        table("address = \"10.1.0.3\"\ntunnel = \"ipip\"\nweight = 9"),
    );
    assert_eq!(ch.register.len(), 1);
    // Deregistering a registered backend forgets it: nothing to record.
    ch.deregister(&r("10.1.0.3", None), false);
    assert!(ch.is_empty(), "{ch:?}");
    let path = runtime::runtime_path(&cfg);
    std::fs::write(&path, "x").unwrap();
    ch.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# Run-time changes"), "{text}");
    assert_eq!(
        RuntimeChanges::load(&path).unwrap(),
        RuntimeChanges::default()
    );
}

#[test]
fn changes_that_no_longer_apply_are_reported_and_skipped() {
    let (_dir, cfg) = files();
    let mut ch = RuntimeChanges::default();
    ch.register("api", table("address = \"10.1.0.3\"\ntunnel = \"ipip\""));
    ch.set_weight(&r("10.9.9.9", None), 1, true);
    ch.set_elastic_ip("mail", None);
    ch.deregister(&r("10.9.9.8", None), true);
    let (c, stale) = ch
        .apply(&cfg, BASE, &runtime::runtime_path(&cfg))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.target_groups[0].backends.len(), 2);
    assert_eq!(stale.len(), 4, "{stale:?}");
    assert!(
        stale.iter().any(|s| s.contains("no target group \"api\"")),
        "{stale:?}"
    );
    assert!(stale.iter().any(|s| s.contains("no listener \"mail\"")));
}

#[test]
fn an_invalid_combination_is_rejected_naming_the_runtime_file() {
    let (_dir, cfg) = files();
    let rt = runtime::runtime_path(&cfg);
    let mut ch = RuntimeChanges::default();
    ch.register(
        "web",
        table("address = \"10.1.0.1\"\nport = 80\ntunnel = \"ipip\""),
    );
    ch.register("web", table("address = \"10.1.0.5\"\ntunnel = \"vxlan\""));
    let e = ch.apply(&cfg, BASE, &rt).unwrap_err().to_string();
    assert!(e.contains("gw.runtime.toml: target_group[0].backend[2]: with the run-time changes applied: same address, port and tunnel as backend[0]"), "{e}");
    assert!(e.contains("target_group[0].backend[3].vni: with the run-time changes applied: a VXLAN backend needs a vni"), "{e}");
    // A broken config file is reported with its own positions.
    let broken = BASE.replace("port = 80\ntarget_group", "port = 0\ntarget_group");
    let e = ch.apply(&cfg, &broken, &rt).unwrap_err().to_string();
    assert!(
        e.contains("gw.toml:20:8: listener[0].port: must be between 1 and 65535"),
        "{e}"
    );
}

#[test]
fn a_broken_runtime_file_names_its_line() {
    let (_dir, cfg) = files();
    std::fs::write(runtime::runtime_path(&cfg), "[[weight]]\nbackend = 3\n").unwrap();
    let e = runtime::load(&cfg).unwrap_err().to_string();
    assert!(e.contains("gw.runtime.toml:2:11"), "{e}");
}

#[test]
fn a_change_without_a_port_reaches_config_and_registered_backends_alike() {
    let (_dir, cfg) = files();
    let mut ch = RuntimeChanges::default();
    // 10.1.0.1 port 80 is in the config; port 8080 is registered.
    ch.register(
        "web",
        table("address = \"10.1.0.1\"\nport = 8080\ntunnel = \"ipip\""),
    );
    ch.set_weight(&r("10.1.0.1", None), 3, true);
    let (c, stale) = ch.apply(&cfg, BASE, &runtime::runtime_path(&cfg)).unwrap();
    assert!(stale.is_empty(), "{stale:?}");
    let at: Vec<(u16, u8)> = c.target_groups[0]
        .backends
        .iter()
        .filter(|b| b.address.to_string() == "10.1.0.1")
        .map(|b| (b.port, b.weight))
        .collect();
    assert_eq!(at, [(80, 3), (8080, 3)]);
}

#[test]
fn registering_does_not_undo_another_ports_deregistration() {
    let (_dir, cfg) = files();
    let mut ch = RuntimeChanges::default();
    ch.deregister(&r("10.1.0.1", Some(80)), true);
    ch.register(
        "web",
        table("address = \"10.1.0.1\"\nport = 9090\ntunnel = \"ipip\""),
    );
    let (c, _) = ch.apply(&cfg, BASE, &runtime::runtime_path(&cfg)).unwrap();
    let at: Vec<u16> = c.target_groups[0]
        .backends
        .iter()
        .filter(|b| b.address.to_string() == "10.1.0.1")
        .map(|b| b.port)
        .collect();
    assert_eq!(at, [9090], "port 80 stays deregistered");
}

#[test]
fn a_damaged_changes_file_is_an_error_naming_it_never_no_changes() {
    let (_dir, cfg) = files();
    let path = runtime::runtime_path(&cfg);
    let mut ch = RuntimeChanges::default();
    ch.set_weight(&r("10.1.0.2", None), 7, true);
    ch.save(&path).unwrap();
    ch.set_weight(&r("10.1.0.2", None), 8, true);
    ch.save(&path).unwrap();
    // Torn to nothing: an error naming the file and the kept version.
    std::fs::write(&path, "").unwrap();
    let e = RuntimeChanges::load(&path).unwrap_err().to_string();
    assert!(e.contains(&path.display().to_string()), "{e}");
    assert!(e.contains("empty"), "{e}");
    assert!(e.contains(".runtime.toml.prev"), "{e}");
    // Torn mid-line: the same.
    std::fs::write(&path, "[[weight]]\ntarget_group = \"we").unwrap();
    let e = RuntimeChanges::load(&path).unwrap_err().to_string();
    assert!(e.contains(&path.display().to_string()), "{e}");
    // The kept version is the one before the last save.
    let prev = dnlb_config::durable::previous_path(&path);
    let kept = RuntimeChanges::load(&prev).unwrap();
    assert!(
        kept.describe().iter().any(|d| d.ends_with("= 7")),
        "{kept:?}"
    );
}

/// Found by the runtime_changes fuzzer (its input, kept as is): a
/// hand-edited stale registration whose tables nest deeply loads (it is
/// skipped as stale), but written out it would nest past what the TOML
/// reader accepts, and the next start would stop on a "damaged" file.
/// Saving refuses instead; the file on disk stays as it was.
#[test]
fn changes_that_would_not_read_back_are_never_written() {
    let text = include_str!("data/runtime-nested-stale-register.toml");
    let changes: dnlb_config::runtime::RuntimeChanges = toml::from_str(text).unwrap();
    let err = changes.to_text().unwrap_err();
    assert!(err.contains("would not read back"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.runtime.toml");
    std::fs::write(&path, "# before\n").unwrap();
    assert!(changes.save(&path).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# before\n");
}

//! Any text given as a run-time changes file, applied over a valid config:
//! the result is a validated config (with stale changes listed) or errors,
//! never a panic; an accepted set of changes survives a save/load round trip
//! (or is refused by the save: dnlb never writes a file it cannot read).
#![no_main]

use std::path::Path;

use dnlb_config::runtime::RuntimeChanges;
use libfuzzer_sys::fuzz_target;

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
source_v6 = "2001:db8::1"
next_hop_mac = "02:00:00:00:00:fe"
[[listener]]
name = "web"
vips = ["198.51.100.10", "2001:db8:1::10"]
protocol = "tcp"
port = 80
target_group = "web"
[[target_group]]
name = "web"
[[target_group.backend]]
address = "10.1.0.1"
port = 80
tunnel = "ipip"
[[target_group.backend]]
address = "10.1.0.2"
tunnel = "vxlan"
vni = 7
inner_mac = "02:00:00:00:00:07"
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(changes) = toml::from_str::<RuntimeChanges>(text) else {
        return;
    };
    let (file, runtime) = (Path::new("gw.toml"), Path::new("gw.runtime.toml"));
    if changes.apply(file, BASE, runtime).is_ok() {
        // What dnlb would write is what it reads back, or it refuses to
        // write (to_text checks): either way no unreadable file.
        if let Ok(text) = changes.to_text() {
            let again: RuntimeChanges = toml::from_str(&text).expect("round trip");
            assert_eq!(again, changes);
        }
    }
});

//! A veth pair for tests that feed a real gateway (net_pcap or af_packet
//! on one end) and the frames written into it.

use std::path::Path;
use std::process::Command;

/// A veth pair (both ends in this namespace, no IPv6, up), deleted when
/// dropped.
pub struct Veth(String);

impl Veth {
    /// A pair named `PREFIX<pid>a` / `PREFIX<pid>b` (`prefix`: a few
    /// letters per test binary, so binaries running at once never clash).
    pub fn new(prefix: &str) -> (Veth, String, String) {
        let n = std::process::id() % 100_000;
        let (a, b) = (format!("{prefix}{n}a"), format!("{prefix}{n}b"));
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().unwrap().success();
            assert!(ok, "ip {args:?}");
        };
        let _ = Command::new("ip").args(["link", "del", &a]).output();
        ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        let guard = Veth(a.clone());
        for i in [&a, &b] {
            let _ = Command::new("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{i}.disable_ipv6=1")])
                .output();
            ip(&["link", "set", i, "up"]);
        }
        (guard, a, b)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

/// Writes `frames` into interface `ifname` (an AF_PACKET socket, from
/// Python), paced a little so that the capture keeps up.
pub fn inject(ifname: &str, frames: &[Vec<u8>], dir: &Path) {
    let file = dir.join("inject.bin");
    let mut bytes = Vec::new();
    for f in frames {
        bytes.extend_from_slice(&(f.len() as u32).to_le_bytes());
        bytes.extend_from_slice(f);
    }
    std::fs::write(&file, bytes).unwrap();
    let script = "import socket, struct, sys, time\n\
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
        s.bind((sys.argv[1], 0))\n\
        d = open(sys.argv[2], 'rb').read()\n\
        i = n = 0\n\
        while i < len(d):\n\
        \x20   (l,) = struct.unpack('<I', d[i:i + 4])\n\
        \x20   s.send(d[i + 4:i + 4 + l])\n\
        \x20   i += 4 + l\n\
        \x20   n += 1\n\
        \x20   if n % 50 == 0:\n\
        \x20       time.sleep(0.002)\n";
    let ok = Command::new("python3")
        .args(["-c", script, ifname, file.to_str().unwrap()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "injecting frames");
}

/// A gateway's config for tests fed through a veth pair: one worker,
/// `net_pcap` reading interface `rx` and writing `dir/out.pcap`, the admin
/// API on a free loopback port with `token`, TCP and UDP listeners on port
/// 80 of 192.0.2.10 and 2001:db8::10, four IP-in-IP backends 10.9.0.1-4.
/// `tag` names the EAL prefix and the gateway.
pub fn gateway_config(dir: &Path, tag: &str, token: &str, rx: &str) -> std::path::PathBuf {
    let mut eal = super::eal_args(tag);
    eal.push("--lcores=0@0,1@0".into());
    let token_file = dir.join("token");
    std::fs::write(&token_file, token).unwrap();
    let mut text = format!(
        "[gateway]\nname = \"{tag}\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         idle_polls_before_sleep = 64\nidle_sleep_us = 200\n\
         [[dataplane.ports]]\nname = \"net_pcap0\"\ndevargs = \"rx_iface_in={rx},tx_pcap={}\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n",
        super::toml_list(&eal),
        super::path_str(dir, "out.pcap"),
        token_file.display(),
    );
    for (name, proto) in [("web", "tcp"), ("dns", "udp")] {
        text += &format!(
            "[[listener]]\nname = \"{name}\"\nvips = [\"192.0.2.10\", \"2001:db8::10\"]\n\
             protocol = \"{proto}\"\nport = 80\ntarget_group = \"g\"\n"
        );
    }
    text += "[[target_group]]\nname = \"g\"\n";
    for i in 1..=4 {
        text += &format!("[[target_group.backend]]\naddress = \"10.9.0.{i}\"\ntunnel = \"ipip\"\n");
    }
    let p = dir.join("dnlb.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A gateway running on [`gateway_config`], fed through a veth pair.
/// Fields drop in order: the gateway stops before its veth and directory go.
pub struct FedGateway {
    /// The running `dnlb run`.
    pub dnlb: super::ChildGuard,
    /// Its JSON events (`ready` already read).
    pub events: std::sync::mpsc::Receiver<serde_json::Value>,
    /// The admin API's base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    /// The interface to write frames into ([`inject`]).
    pub tx_if: String,
    /// The config file.
    pub config: String,
    /// The pair.
    pub veth: Veth,
    /// The config, token file and `out.pcap`.
    pub dir: tempfile::TempDir,
}

/// Starts a gateway on [`gateway_config`] (`prefix` names the veth pair,
/// `tag` the gateway) and waits until it is ready.
pub fn start_gateway(prefix: &str, tag: &str, token: &str) -> FedGateway {
    let dir = super::tempdir();
    let (veth, tx_if, rx_if) = Veth::new(prefix);
    let config = gateway_config(dir.path(), tag, token, &rx_if);
    let config = config.to_str().unwrap().to_string();
    let args = [
        "run",
        "--stats-interval-ms",
        "50",
        "--watch-config-ms",
        "0",
        "--config",
        &config,
    ];
    let (dnlb, events) = super::spawn_dnlb(&args);
    let base = format!("http://{}", super::admin_addr(&events));
    FedGateway {
        dnlb,
        events,
        base,
        tx_if,
        config,
        veth,
        dir,
    }
}

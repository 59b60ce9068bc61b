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

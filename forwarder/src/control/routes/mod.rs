//! Route announcements through BIRD. dnlb does not speak BGP itself: it
//! writes the VIPs it can serve as `route A/32 blackhole;` lines into files
//! that BIRD's config includes in a `protocol static` (exported to BGP), and
//! asks BIRD to reconfigure through its control socket. BIRD reconfigures a
//! static protocol in place, so adding or removing a VIP never bounces a BGP
//! session. A VIP is announced while the gateway forwards and one of its
//! listeners has a backend that takes new flows; it is withdrawn otherwise,
//! on removal from the config, on elastic IP detach and on shutdown.
//!
//! - [`bird`]: the control socket, every exchange bounded by a deadline.
//! - [`announcer`]: the worker thread that talks to BIRD, so the control
//!   thread never waits on it, with back-off and rate-limited reporting.

pub mod announcer;
pub mod bird;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use dnlb_config::durable::replace;
use dnlb_config::{Config, Routing};
use dnlb_lb::snapshot::Snapshot;

pub use announcer::{Announcer, Timing, Withdrawal};
pub use bird::{bird_command, bird_command_within, BirdError, BIRD_TIMEOUT};

/// The VIPs (and elastic IPs) this gateway should announce: those of
/// listeners with a backend that takes new flows.
pub fn wanted(cfg: &Config, snap: &Snapshot) -> BTreeSet<IpAddr> {
    cfg.listeners
        .iter()
        .zip(&snap.listeners)
        .filter(|(_, s)| !s.table.is_empty())
        .flat_map(|(l, _)| l.addresses())
        .collect()
}

/// The content of a VIP file.
fn file_text(vips: &BTreeSet<IpAddr>, v6: bool) -> String {
    let mut t = String::from(
        "# Written by dnlb: the VIPs this gateway announces. Do not edit; dnlb rewrites it.\n",
    );
    for a in vips.iter().filter(|a| a.is_ipv6() == v6) {
        let len = if v6 { 128 } else { 32 };
        t.push_str(&format!("route {a}/{len} blackhole;\n"));
    }
    t
}

/// Writes the VIP files for `vips` and asks BIRD to reconfigure, within
/// `timeout` for BIRD.
fn apply(cfg: &Routing, vips: &BTreeSet<IpAddr>, timeout: Duration) -> Result<(), BirdError> {
    for (file, v6) in [(&cfg.vips4_file, false), (&cfg.vips6_file, true)] {
        let Some(file) = file else { continue };
        // Durably: a crash leaves the old or the new file, never a torn one.
        replace(file, file_text(vips, v6).as_bytes(), false).map_err(|error| BirdError::File {
            path: file.display().to_string(),
            error,
        })?;
    }
    bird_command_within(&cfg.bird_socket, "configure", timeout).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_files_by_family() {
        let vips: BTreeSet<IpAddr> = ["203.0.113.10", "2001:db8::10", "198.51.100.7"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let v4 = file_text(&vips, false);
        assert!(
            v4.contains("route 198.51.100.7/32 blackhole;\nroute 203.0.113.10/32 blackhole;\n"),
            "{v4}"
        );
        assert!(!v4.contains("2001"));
        assert!(file_text(&vips, true).contains("route 2001:db8::10/128 blackhole;"));
    }

    #[test]
    fn files_are_replaced_whole_and_leave_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("vips4.conf");
        std::fs::write(&f, "old\n").unwrap();
        replace(&f, b"new\n", false).unwrap();
        replace(&f, b"newer\n", false).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "newer\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["vips4.conf"]);
        // A directory that does not exist: an error, and nothing left.
        let e = replace(&dir.path().join("no/such/vips.conf"), b"x", false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}

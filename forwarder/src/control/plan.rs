//! The effective plan of a validated configuration, in words: what `dnlb
//! check` prints and what the admin API's dry run (`POST
//! /v1/config/check`) compares, line by line, with the running config's.

use dnlb_config::{Config, Dataplane, Device, IdlePolicy, ZoneAffinity};

use crate::control::bringup::non_vip_routes;

/// Adds one formatted line to the plan.
macro_rules! outln {
    ($out:expr, $($t:tt)*) => {
        $out.push(format!($($t)*))
    };
}

/// What `cfg` makes a gateway do, one line each.
pub fn lines(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    plan(&mut out, cfg);
    out
}

fn plan(out: &mut Vec<String>, cfg: &Config) {
    outln!(
        out,
        "gateway {} (zone {})",
        cfg.gateway.name,
        cfg.gateway.zone.as_deref().unwrap_or("-")
    );
    print_dataplane(out, &cfg.dataplane);
    print_control(out, cfg);
    if cfg.listeners.is_empty() {
        outln!(out, "no listeners: frames are only forwarded between ports");
        return;
    }
    print_balancing(out, cfg);
}

fn print_dataplane(out: &mut Vec<String>, dp: &Dataplane) {
    outln!(out, "EAL arguments: {}", dp.full_eal_args().join(" "));
    outln!(
        out,
        "main lcore {}, workers on lcores {:?}",
        dp.main_lcore,
        dp.worker_lcores
    );
    match dp.idle {
        IdlePolicy::BusyPoll => outln!(out, "idle workers busy-poll"),
        IdlePolicy::Sleep { polls, sleep } => outln!(
            out,
            "idle workers sleep {} us after {polls} empty polls",
            sleep.as_micros()
        ),
    }
    outln!(
        out,
        "mbuf pool {} mbufs; {} RX / {} TX descriptors per queue",
        dp.pool_mbufs,
        dp.rx_descriptors,
        dp.tx_descriptors
    );
    let routes = non_vip_routes(dp);
    for (i, p) in dp.ports.iter().enumerate() {
        let kind = match &p.device {
            Device::Virtual { devargs } if devargs.is_empty() => "virtual".to_string(),
            Device::Virtual { devargs } => format!("virtual ({devargs})"),
            Device::Pci => "PCI".to_string(),
        };
        let non_vip = match routes[i] {
            Some(o) => format!("frames not for a VIP leave by {}", dp.ports[o.get()].name),
            None => "frames not for a VIP are dropped (counted as not_for_vip)".to_string(),
        };
        let host = if dp.host_port == Some(i) {
            " (host port)"
        } else {
            ""
        };
        let rss = if p.rss && dp.worker_lcores.len() > 1 {
            " with RSS"
        } else {
            ""
        };
        outln!(
            out,
            "port {i} {}{host}: {kind}, {} RX/TX queue pairs{rss}; {non_vip}",
            p.name,
            dp.worker_lcores.len(),
        );
    }
}

fn print_control(out: &mut Vec<String>, cfg: &Config) {
    match &cfg.admin {
        Some(a) => outln!(
            out,
            "admin API on http://{}{}",
            a.listen,
            if a.token.is_some() {
                " (bearer token required)"
            } else {
                ""
            }
        ),
        None => outln!(out, "no admin API (add an [admin] section)"),
    }
    match &cfg.routing {
        Some(r) => outln!(
            out,
            "routes: VIPs announced through BIRD at {} (IPv4 in {}, IPv6 in {}); withdrawn {} ms before shutdown",
            r.bird_socket.display(),
            r.vips4_file.as_ref().map_or("-".into(), |f| f.display().to_string()),
            r.vips6_file.as_ref().map_or("-".into(), |f| f.display().to_string()),
            r.withdraw_delay.as_millis()
        ),
        None => outln!(out, "routes: not announced (no [routing] section)"),
    }
}

fn print_balancing(out: &mut Vec<String>, cfg: &Config) {
    let e = &cfg.encap;
    let m = e.next_hop_mac;
    outln!(
        out,
        "encapsulation: from {} / {} toward next hop {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, MTU {}, too big: {}, echo: {}",
        e.source_v4.map_or("-".to_string(), |a| a.to_string()),
        e.source_v6.map_or("-".to_string(), |a| a.to_string()),
        m[0], m[1], m[2], m[3], m[4], m[5],
        e.mtu,
        e.too_big.name(),
        e.icmp_echo.name()
    );
    let f = &cfg.flows;
    outln!(
        out,
        "flows: {} per worker, idle timeouts TCP {} s UDP {} s, TCP closing {} s",
        f.capacity_per_worker,
        f.tcp_idle_timeout.as_secs(),
        f.udp_idle_timeout.as_secs(),
        f.tcp_closing_timeout.as_secs()
    );
    for l in &cfg.listeners {
        let addrs: Vec<String> = l.addresses().map(|a| a.to_string()).collect();
        outln!(
            out,
            "listener {}: {} {} port {} -> target group {} ({}, table {}, fragments {})",
            l.name,
            addrs.join(", "),
            l.protocol,
            l.port.map_or("all".to_string(), |p| p.to_string()),
            cfg.target_groups[l.target_group].name,
            l.scheduler.name(),
            l.table_size,
            l.fragments.name()
        );
    }
    for g in &cfg.target_groups {
        outln!(
            out,
            "target group {}: {} backend(s)",
            g.name,
            g.backends.len()
        );
        if g.zone_affinity == ZoneAffinity::PreferOwn {
            outln!(
                out,
                "  new flows prefer zone {} while it has a usable backend",
                cfg.gateway.zone.as_deref().unwrap_or("-")
            );
        }
        for b in &g.backends {
            let drain = b.drain_until.map_or(String::new(), |t| {
                format!(" draining until {}", dnlb_config::time::from_system_time(t))
            });
            outln!(
                out,
                "  {} port {} {} weight {} zone {} tunnel {}{drain}",
                b.address,
                b.port,
                b.kind,
                b.weight,
                b.zone.as_deref().unwrap_or("-"),
                b.tunnel
            );
        }
    }
}

/// The lines of `new` against those of `old`, each marked `"  "` (in
/// both), `"- "` (only in `old`) or `"+ "` (only in `new`), in order: a
/// longest-common-subsequence diff (plans are a few hundred lines).
pub fn diff(old: &[String], new: &[String]) -> Vec<String> {
    let (n, m) = (old.len(), new.len());
    // common[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut common = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(n.max(m)));
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            out.push(format!("  {}", old[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            out.push(format!("- {}", old[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", new[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn diff_marks_what_changed() {
        assert_eq!(
            diff(&v(&["a", "b", "c", "d"]), &v(&["a", "c", "x", "d", "e"])),
            v(&["  a", "- b", "  c", "+ x", "  d", "+ e"])
        );
        assert_eq!(diff(&v(&["a"]), &v(&["a"])), v(&["  a"]));
        assert_eq!(diff(&v(&["a"]), &v(&["b"])), v(&["- a", "+ b"]));
        assert_eq!(diff(&[], &v(&["a"])), v(&["+ a"]));
        assert_eq!(diff(&v(&["a"]), &[]), v(&["- a"]));
    }
}

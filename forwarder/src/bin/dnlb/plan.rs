//! `dnlb check`: the effective plan of a validated configuration, in words.

use dnlb_config::{Config, Dataplane, Device, IdlePolicy, ZoneAffinity};
use dnlb_forwarder::control::bringup::non_vip_routes;

/// Prints what `cfg` makes a gateway do.
pub fn print(cfg: &Config) {
    outln!(
        "gateway {} (zone {})",
        cfg.gateway.name,
        cfg.gateway.zone.as_deref().unwrap_or("-")
    );
    print_dataplane(&cfg.dataplane);
    print_control(cfg);
    if cfg.listeners.is_empty() {
        outln!("no listeners: frames are only forwarded between ports");
        return;
    }
    print_balancing(cfg);
}

fn print_dataplane(dp: &Dataplane) {
    outln!("EAL arguments: {}", dp.full_eal_args().join(" "));
    outln!(
        "main lcore {}, workers on lcores {:?}",
        dp.main_lcore,
        dp.worker_lcores
    );
    match dp.idle {
        IdlePolicy::BusyPoll => outln!("idle workers busy-poll"),
        IdlePolicy::Sleep { polls, sleep } => outln!(
            "idle workers sleep {} us after {polls} empty polls",
            sleep.as_micros()
        ),
    }
    outln!(
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
            "port {i} {}{host}: {kind}, {} RX/TX queue pairs{rss}; {non_vip}",
            p.name,
            dp.worker_lcores.len(),
        );
    }
}

fn print_control(cfg: &Config) {
    match &cfg.admin {
        Some(a) => outln!(
            "admin API on http://{}{}",
            a.listen,
            if a.token.is_some() {
                " (bearer token required)"
            } else {
                ""
            }
        ),
        None => outln!("no admin API (add an [admin] section)"),
    }
    match &cfg.routing {
        Some(r) => outln!(
            "routes: VIPs announced through BIRD at {} (IPv4 in {}, IPv6 in {}); withdrawn {} ms before shutdown",
            r.bird_socket.display(),
            r.vips4_file.as_ref().map_or("-".into(), |f| f.display().to_string()),
            r.vips6_file.as_ref().map_or("-".into(), |f| f.display().to_string()),
            r.withdraw_delay.as_millis()
        ),
        None => outln!("routes: not announced (no [routing] section)"),
    }
}

fn print_balancing(cfg: &Config) {
    let e = &cfg.encap;
    let m = e.next_hop_mac;
    outln!(
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
        "flows: {} per worker, idle timeouts TCP {} s UDP {} s, TCP closing {} s",
        f.capacity_per_worker,
        f.tcp_idle_timeout.as_secs(),
        f.udp_idle_timeout.as_secs(),
        f.tcp_closing_timeout.as_secs()
    );
    for l in &cfg.listeners {
        let addrs: Vec<String> = l.addresses().map(|a| a.to_string()).collect();
        outln!(
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
        outln!("target group {}: {} backend(s)", g.name, g.backends.len());
        if g.zone_affinity == ZoneAffinity::PreferOwn {
            outln!(
                "  new flows prefer zone {} while it has a usable backend",
                cfg.gateway.zone.as_deref().unwrap_or("-")
            );
        }
        for b in &g.backends {
            let drain = b.drain_until.map_or(String::new(), |t| {
                format!(" draining until {}", dnlb_config::time::from_system_time(t))
            });
            outln!(
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

//! `[encap]`, `[flows]`, `[[listener]]` and `[[target_group]]`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use toml::Spanned;

use dnlb_lb::maglev::{
    backend_identity, is_prime, Identity, DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE, MAX_WEIGHT,
    MIN_TABLE_SIZE,
};
use dnlb_wire::tunnel::VXLAN_PORT;

use super::fields::{addr, choice, in_range, only_for, parse_mac};
use super::{opt, valid_name, DEFAULT_GUE_PORT};
use crate::error::Collector;
use crate::model::{
    AllDownPolicy, Backend, BackendKind, EchoPolicy, Encap, Flows, FragmentPolicy, Listener,
    Protocol, Scheduler, TargetGroup, TooBigPolicy, Tunnel, ZoneAffinity,
};
use crate::raw::{RawBackend, RawConfig, RawEncap, RawFlows, RawListener, RawTargetGroup};

pub(super) struct Balancing {
    pub encap: Encap,
    pub flows: Flows,
    pub listeners: Vec<Listener>,
    pub target_groups: Vec<TargetGroup>,
}

pub(super) fn balancing(c: &mut Collector<'_>, raw: &RawConfig) -> Balancing {
    let (encap, gue_port) = match &raw.encap {
        Some(e) => encap(c, e.get_ref()),
        None => (Encap::default(), DEFAULT_GUE_PORT),
    };
    let flows = raw
        .flows
        .as_ref()
        .map_or_else(Flows::default, |f| flows(c, f.get_ref()));
    let target_groups = target_groups(c, &raw.target_group, gue_port);
    let listeners = listeners(c, &raw.listener, &raw.target_group);
    if !listeners.is_empty() && raw.encap.is_none() {
        c.push(
            None,
            "encap",
            "listeners need an [encap] section (at least next_hop_mac)",
        );
    }
    // Every backend a listener can reach needs an outer source address of
    // its family.
    if raw.encap.is_some() {
        for (gi, g) in target_groups.iter().enumerate() {
            for (bi, b) in g.backends.iter().enumerate() {
                let missing = match b.address {
                    IpAddr::V4(_) if encap.source_v4.is_none() => Some("encap.source_v4"),
                    IpAddr::V6(_) if encap.source_v6.is_none() => Some("encap.source_v6"),
                    _ => None,
                };
                if let Some(k) = missing {
                    let span = raw.target_group[gi].get_ref().backend[bi]
                        .get_ref()
                        .address
                        .span();
                    c.push(
                        Some(span),
                        format!("target_group[{gi}].backend[{bi}].address"),
                        format!(
                            "backend {} is {}, but {k} is not set",
                            b.address,
                            family(b.address)
                        ),
                    );
                }
            }
        }
    }
    Balancing {
        encap,
        flows,
        listeners,
        target_groups,
    }
}

fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn encap(c: &mut Collector<'_>, e: &RawEncap) -> (Encap, u16) {
    let source_v4 = e
        .source_v4
        .as_ref()
        .and_then(|s| addr::<Ipv4Addr>(c, s, "encap.source_v4".into(), "an IPv4 address"));
    let source_v6 = e
        .source_v6
        .as_ref()
        .and_then(|s| addr::<Ipv6Addr>(c, s, "encap.source_v6".into(), "an IPv6 address"));
    let next_hop_mac = match parse_mac(e.next_hop_mac.get_ref()) {
        Some(m) => m,
        None => {
            c.push(
                Some(e.next_hop_mac.span()),
                "encap.next_hop_mac",
                format!(
                    "{:?} is not a MAC address like \"02:00:00:00:00:fe\"",
                    e.next_hop_mac.get_ref()
                ),
            );
            [0; 6]
        }
    };
    let d = Encap::default();
    let encap = Encap {
        source_v4,
        source_v6,
        next_hop_mac,
        mtu: in_range(c, &e.mtu, "encap.mtu", 1280, 9600, d.mtu),
        too_big: choice(
            c,
            &e.too_big,
            "encap.too_big",
            &[("icmp", TooBigPolicy::Icmp), ("drop", TooBigPolicy::Drop)],
            d.too_big,
        ),
        icmp_rate_per_sec: in_range(
            c,
            &e.icmp_rate_per_sec,
            "encap.icmp_rate_per_sec",
            1,
            1_000_000,
            d.icmp_rate_per_sec,
        ),
        ttl: in_range(c, &e.ttl, "encap.ttl", 1, 255, d.ttl),
        icmp_echo: choice(
            c,
            &e.icmp_echo,
            "encap.icmp_echo",
            &[("reply", EchoPolicy::Reply), ("drop", EchoPolicy::Drop)],
            d.icmp_echo,
        ),
    };
    let gue_port = in_range(c, &e.gue_port, "encap.gue_port", 1, 65535, DEFAULT_GUE_PORT);
    (encap, gue_port)
}

fn flows(c: &mut Collector<'_>, f: &RawFlows) -> Flows {
    let d = Flows::default();
    let secs = |c: &mut Collector<'_>, v: &Option<Spanned<u32>>, key: &str, def: Duration| {
        Duration::from_secs(in_range(c, v, key, 1, 86_400, def.as_secs() as u32) as u64)
    };
    Flows {
        capacity_per_worker: in_range(
            c,
            &f.capacity_per_worker,
            "flows.capacity_per_worker",
            1024,
            1 << 24,
            d.capacity_per_worker,
        ),
        tcp_idle_timeout: secs(
            c,
            &f.tcp_idle_timeout_secs,
            "flows.tcp_idle_timeout_secs",
            d.tcp_idle_timeout,
        ),
        udp_idle_timeout: secs(
            c,
            &f.udp_idle_timeout_secs,
            "flows.udp_idle_timeout_secs",
            d.udp_idle_timeout,
        ),
        tcp_closing_timeout: secs(
            c,
            &f.tcp_closing_timeout_secs,
            "flows.tcp_closing_timeout_secs",
            d.tcp_closing_timeout,
        ),
    }
}

fn names<'a, T>(
    c: &mut Collector<'_>,
    items: &'a [Spanned<T>],
    name: impl Fn(&T) -> &Spanned<String>,
    section: &str,
) -> HashMap<&'a str, usize> {
    let mut index = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        let n = name(it.get_ref());
        let key = format!("{section}[{i}].name");
        if !valid_name(n.get_ref()) {
            c.push(
                Some(n.span()),
                key,
                format!(
                    "{:?} is not a valid name: use 1-64 letters, digits, '-', '_' or '.'",
                    n.get_ref()
                ),
            );
        } else if index.insert(n.get_ref().as_str(), i).is_some() {
            c.push(
                Some(n.span()),
                key,
                format!("{section} {:?} is defined twice", n.get_ref()),
            );
        }
    }
    index
}

fn target_groups(
    c: &mut Collector<'_>,
    raw: &[Spanned<RawTargetGroup>],
    gue_port: u16,
) -> Vec<TargetGroup> {
    names(c, raw, |g| &g.name, "target_group");
    raw.iter()
        .enumerate()
        .map(|(gi, g)| {
            let g = g.get_ref();
            let mut seen: HashMap<Identity, usize> = HashMap::new();
            let mut backends = Vec::new();
            for (bi, b) in g.backend.iter().enumerate() {
                if let Some(be) = backend(c, gi, bi, b.get_ref(), gue_port) {
                    if let Some(first) = seen.insert(backend_identity(&be), bi) {
                        c.push(
                            Some(b.get_ref().address.span()),
                            format!("target_group[{gi}].backend[{bi}]"),
                            format!(
                                "same address, port and tunnel as backend[{first}] of target group {:?}",
                                g.name.get_ref()
                            ),
                        );
                    }
                    backends.push(be);
                }
            }
            TargetGroup {
                name: g.name.get_ref().clone(),
                backends,
                all_down: choice(
                    c,
                    &g.all_down,
                    &format!("target_group[{gi}].all_down"),
                    &[("fail_open", AllDownPolicy::FailOpen), ("drop", AllDownPolicy::Drop)],
                    AllDownPolicy::FailOpen,
                ),
                health_check: g
                    .health_check
                    .as_ref()
                    .map(|h| super::health::health_check(c, gi, h.get_ref())),
                zone_affinity: choice(
                    c,
                    &g.zone_affinity,
                    &format!("target_group[{gi}].zone_affinity"),
                    &[("none", ZoneAffinity::None), ("prefer_own", ZoneAffinity::PreferOwn)],
                    ZoneAffinity::None,
                ),
            }
        })
        .collect()
}

fn backend(
    c: &mut Collector<'_>,
    gi: usize,
    bi: usize,
    b: &RawBackend,
    gue_port: u16,
) -> Option<Backend> {
    let key = |k: &str| format!("target_group[{gi}].backend[{bi}].{k}");
    let address = addr::<IpAddr>(c, &b.address, key("address"), "an IP address");
    let kind = choice(
        c,
        &b.kind,
        &key("kind"),
        &[
            ("vm", BackendKind::Vm),
            ("container", BackendKind::Container),
        ],
        BackendKind::Vm,
    );
    let weight = in_range(c, &b.weight, &key("weight"), 0, MAX_WEIGHT, MAX_WEIGHT);
    for (v, k) in [(&b.zone, "zone"), (&b.rack, "rack")] {
        if let Some(s) = v {
            if !valid_name(s.get_ref()) {
                c.push(
                    Some(s.span()),
                    key(k),
                    format!("{:?} is not a valid name", s.get_ref()),
                );
            }
        }
    }
    let tunnel = tunnel(c, b, &key, gue_port);
    let drain_until = b.drain_until.as_ref().and_then(|d| {
        let t = crate::time::to_system_time(d.get_ref());
        if t.is_none() {
            c.push(
                Some(d.span()),
                key("drain_until"),
                format!(
                    "{} is not a date-time with an offset after 1970, e.g. 2026-11-24T08:00:00Z",
                    d.get_ref()
                ),
            );
        }
        t
    });
    Some(Backend {
        drain_until,
        address: address?,
        port: opt(&b.port, 0),
        kind,
        weight,
        zone: b.zone.as_ref().map(|z| z.get_ref().clone()),
        rack: b.rack.as_ref().map(|z| z.get_ref().clone()),
        tunnel,
    })
}

/// A backend's tunnel: its type and the parameters that type takes (and
/// only those).
fn tunnel(
    c: &mut Collector<'_>,
    b: &RawBackend,
    key: &dyn Fn(&str) -> String,
    gue_port: u16,
) -> Tunnel {
    let ty = b.tunnel.get_ref().as_str();
    if matches!(ty, "ipip" | "gue" | "vxlan" | "gre") {
        for (given, k, allowed) in [
            (b.vni.as_ref().map(|v| v.span()), "vni", &["vxlan"][..]),
            (
                b.inner_mac.as_ref().map(|v| v.span()),
                "inner_mac",
                &["vxlan"][..],
            ),
            (
                b.tunnel_port.as_ref().map(|v| v.span()),
                "tunnel_port",
                &["vxlan", "gue"][..],
            ),
            (
                b.gre_key.as_ref().map(|v| v.span()),
                "gre_key",
                &["gre"][..],
            ),
        ] {
            only_for(c, given, key(k), "tunnel", allowed, ty);
        }
    }
    match ty {
        "ipip" => Tunnel::IpIp,
        "gue" => Tunnel::Gue {
            port: in_range(c, &b.tunnel_port, &key("tunnel_port"), 1, 65535, gue_port),
        },
        "gre" => Tunnel::Gre {
            key: b.gre_key.as_ref().map(|k| *k.get_ref()),
        },
        "vxlan" => {
            let vni = match &b.vni {
                None => {
                    c.push(
                        Some(b.tunnel.span()),
                        key("vni"),
                        "a VXLAN backend needs a vni",
                    );
                    0
                }
                Some(v) if *v.get_ref() > 0xff_ffff => {
                    c.push(Some(v.span()), key("vni"), "must be between 0 and 16777215");
                    0
                }
                Some(v) => *v.get_ref(),
            };
            let inner_mac = match &b.inner_mac {
                None => {
                    c.push(
                        Some(b.tunnel.span()),
                        key("inner_mac"),
                        "a VXLAN backend needs inner_mac, the MAC of its VXLAN device",
                    );
                    [0; 6]
                }
                Some(m) => parse_mac(m.get_ref()).unwrap_or_else(|| {
                    c.push(
                        Some(m.span()),
                        key("inner_mac"),
                        format!("{:?} is not a MAC address", m.get_ref()),
                    );
                    [0; 6]
                }),
            };
            Tunnel::Vxlan {
                vni,
                inner_mac,
                port: in_range(c, &b.tunnel_port, &key("tunnel_port"), 1, 65535, VXLAN_PORT),
            }
        }
        other => {
            c.push(
                Some(b.tunnel.span()),
                key("tunnel"),
                format!("{other:?} is not one of \"ipip\", \"gue\", \"vxlan\", \"gre\""),
            );
            Tunnel::IpIp
        }
    }
}

/// A (port or all ports, listener index) already serving an address.
type Served = (Option<u16>, usize);

fn listeners(
    c: &mut Collector<'_>,
    raw: &[Spanned<RawListener>],
    groups: &[Spanned<RawTargetGroup>],
) -> Vec<Listener> {
    names(c, raw, |l| &l.name, "listener");
    let group_index: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.get_ref().name.get_ref().as_str(), i))
        .collect();
    // (address, protocol) -> (port or None for all, listener index), for overlap checks.
    let mut served: HashMap<(IpAddr, Protocol), Vec<Served>> = HashMap::new();
    let mut out = Vec::new();
    for (li, l) in raw.iter().enumerate() {
        let l = l.get_ref();
        let key = |k: &str| format!("listener[{li}].{k}");
        let protocol = choice(
            c,
            &Some(l.protocol.clone()),
            &key("protocol"),
            &[("tcp", Protocol::Tcp), ("udp", Protocol::Udp)],
            Protocol::Tcp,
        );
        let port = listener_port(c, l, &key);
        let (scheduler, fragments) = policies(c, l, &key);
        let table_size = table_size(c, l, &key);
        let target_group = match group_index.get(l.target_group.get_ref().as_str()) {
            Some(&g) => g,
            None => {
                c.push(
                    Some(l.target_group.span()),
                    key("target_group"),
                    format!("no target group named {:?}", l.target_group.get_ref()),
                );
                0
            }
        };
        if l.vips.get_ref().is_empty() {
            c.push(
                Some(l.vips.span()),
                key("vips"),
                "at least one VIP is needed",
            );
        }
        let mut vips = Vec::new();
        let mut addrs: Vec<(IpAddr, &Spanned<String>, String)> = Vec::new();
        for (vi, v) in l.vips.get_ref().iter().enumerate() {
            if let Some(a) = addr::<IpAddr>(c, v, key(&format!("vips[{vi}]")), "an IP address") {
                vips.push(a);
                addrs.push((a, v, key(&format!("vips[{vi}]"))));
            }
        }
        let elastic_ip = l.elastic_ip.as_ref().and_then(|e| {
            let a = addr::<IpAddr>(c, e, key("elastic_ip"), "an IP address")?;
            addrs.push((a, e, key("elastic_ip")));
            Some(a)
        });
        for (a, span, k) in &addrs {
            if a.is_unspecified()
                || a.is_multicast()
                || matches!(a, IpAddr::V4(v) if v.is_broadcast())
                || matches!(a, IpAddr::V6(v) if v.to_ipv4_mapped().is_some())
            {
                c.push(Some(span.span()), k.clone(), format!("{a} cannot be a VIP"));
                continue;
            }
            let entry = served.entry((*a, protocol)).or_default();
            for &(other_port, other) in entry.iter() {
                let clash = other_port.is_none() || port.is_none() || other_port == port;
                if clash {
                    let what = if other == li {
                        "is listed twice in this listener".to_string()
                    } else {
                        format!(
                            "overlaps listener {:?} ({} {} {})",
                            raw[other].get_ref().name.get_ref(),
                            a,
                            l.protocol.get_ref(),
                            other_port.map_or("all ports".to_string(), |p| format!("port {p}"))
                        )
                    };
                    c.push(Some(span.span()), k.clone(), format!("{a} {what}"));
                    break;
                }
            }
            entry.push((port, li));
        }
        out.push(Listener {
            name: l.name.get_ref().clone(),
            vips,
            elastic_ip,
            protocol,
            port,
            scheduler,
            table_size,
            fragments,
            target_group,
            acl: l
                .acl
                .as_ref()
                .map(|a| super::acl::acl(c, a.get_ref(), &key("acl"))),
            limits: l.limits.as_ref().map_or(Default::default(), |x| {
                super::protection::flow_limits(c, x.get_ref(), &key("limits"))
            }),
        });
    }
    out
}

/// A listener's scheduler and fragment policy.
fn policies(
    c: &mut Collector<'_>,
    l: &RawListener,
    key: &dyn Fn(&str) -> String,
) -> (Scheduler, FragmentPolicy) {
    let scheduler = choice(
        c,
        &l.scheduler,
        &key("scheduler"),
        &[
            ("maglev", Scheduler::Maglev),
            ("source_ip", Scheduler::SourceIp),
        ],
        Scheduler::Maglev,
    );
    let fragments = choice(
        c,
        &l.fragments,
        &key("fragments"),
        &[
            ("drop", FragmentPolicy::Drop),
            ("hash_addresses", FragmentPolicy::HashAddresses),
        ],
        FragmentPolicy::Drop,
    );
    (scheduler, fragments)
}

/// A listener's port: `Some`, or `None` for all ports.
fn listener_port(
    c: &mut Collector<'_>,
    l: &RawListener,
    key: &dyn Fn(&str) -> String,
) -> Option<u16> {
    let all_ports = l.all_ports.as_ref().is_some_and(|a| *a.get_ref());
    match (&l.port, all_ports) {
        (Some(p), false) if *p.get_ref() == 0 => {
            c.push(
                Some(p.span()),
                key("port"),
                "must be between 1 and 65535 (or use all_ports = true)",
            );
            None
        }
        (Some(p), false) => Some(*p.get_ref()),
        (None, true) => None,
        (Some(p), true) => {
            c.push(
                Some(p.span()),
                key("port"),
                "give either port or all_ports = true, not both",
            );
            None
        }
        (None, false) => {
            c.push(
                Some(l.name.span()),
                key("port"),
                "give a port, or all_ports = true",
            );
            None
        }
    }
}

/// A listener's Maglev table size: a prime in the range `dnlb_lb::maglev`
/// builds.
fn table_size(c: &mut Collector<'_>, l: &RawListener, key: &dyn Fn(&str) -> String) -> u32 {
    match &l.table_size {
        Some(t)
            if !(MIN_TABLE_SIZE..=MAX_TABLE_SIZE).contains(t.get_ref())
                || !is_prime(*t.get_ref()) =>
        {
            c.push(
                Some(t.span()),
                key("table_size"),
                format!("{} is not a prime between {MIN_TABLE_SIZE} and {MAX_TABLE_SIZE} (the default is {DEFAULT_TABLE_SIZE})", t.get_ref()),
            );
            DEFAULT_TABLE_SIZE
        }
        v => opt(v, DEFAULT_TABLE_SIZE),
    }
}

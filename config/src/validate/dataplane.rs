//! `[gateway]` and `[dataplane]`.

use std::collections::HashMap;
use std::time::Duration;

use super::{
    opt, valid_name, DEFAULT_DESCRIPTORS, DEFAULT_IDLE_SLEEP_US, DEFAULT_POOL_MBUFS, MAX_LCORE,
};
use crate::error::Collector;
use crate::model::{Dataplane, Device, Gateway, IdlePolicy, PortSpec};
use crate::raw::{RawDataplane, RawGateway, RawPort};

pub(super) fn gateway(c: &mut Collector<'_>, g: &RawGateway) -> Gateway {
    if !valid_name(g.name.get_ref()) {
        c.push(
            Some(g.name.span()),
            "gateway.name",
            format!(
                "{:?} is not a valid name: use 1-64 letters, digits, '-', '_' or '.'",
                g.name.get_ref()
            ),
        );
    }
    if let Some(z) = &g.zone {
        if !valid_name(z.get_ref()) {
            c.push(
                Some(z.span()),
                "gateway.zone",
                format!(
                    "{:?} is not a valid zone name: use 1-64 letters, digits, '-', '_' or '.'",
                    z.get_ref()
                ),
            );
        }
    }
    Gateway {
        name: g.name.get_ref().clone(),
        zone: g.zone.as_ref().map(|z| z.get_ref().clone()),
    }
}

pub(super) fn dataplane(c: &mut Collector<'_>, d: &RawDataplane) -> Dataplane {
    let main_lcore = opt(&d.main_lcore, 0);
    if let Some(m) = &d.main_lcore {
        if *m.get_ref() >= MAX_LCORE {
            c.push(
                Some(m.span()),
                "dataplane.main_lcore",
                format!("must be below {MAX_LCORE}"),
            );
        }
    }
    let lcores = d.worker_lcores.get_ref();
    if lcores.is_empty() {
        c.push(
            Some(d.worker_lcores.span()),
            "dataplane.worker_lcores",
            "at least one worker lcore is needed",
        );
    }
    let mut seen = HashMap::new();
    for (i, l) in lcores.iter().enumerate() {
        let key = format!("dataplane.worker_lcores[{i}]");
        let v = *l.get_ref();
        if v >= MAX_LCORE {
            c.push(
                Some(l.span()),
                key,
                format!("lcore {v} is out of range (0..{MAX_LCORE})"),
            );
        } else if v == main_lcore {
            c.push(
                Some(l.span()),
                key,
                format!("lcore {v} is the main lcore, which runs the control thread; pick another"),
            );
        } else if seen.insert(v, i).is_some() {
            c.push(Some(l.span()), key, format!("lcore {v} is listed twice"));
        }
    }
    let pool_mbufs = opt(&d.pool_mbufs, DEFAULT_POOL_MBUFS);
    if let Some(p) = &d.pool_mbufs {
        if !(256..=16_777_215).contains(p.get_ref()) {
            c.push(
                Some(p.span()),
                "dataplane.pool_mbufs",
                "must be between 256 and 16777215",
            );
        }
    }
    for (name, v) in [
        ("rx_descriptors", &d.rx_descriptors),
        ("tx_descriptors", &d.tx_descriptors),
    ] {
        if let Some(v) = v {
            let n = *v.get_ref();
            if !(32..=16384).contains(&n) || !n.is_power_of_two() {
                c.push(
                    Some(v.span()),
                    format!("dataplane.{name}"),
                    format!("{n} is not a power of two between 32 and 16384"),
                );
            }
        }
    }
    let polls = opt(&d.idle_polls_before_sleep, 0);
    let sleep_us = opt(&d.idle_sleep_us, DEFAULT_IDLE_SLEEP_US);
    if let Some(s) = &d.idle_sleep_us {
        if !(1..=100_000).contains(s.get_ref()) {
            c.push(
                Some(s.span()),
                "dataplane.idle_sleep_us",
                "must be between 1 and 100000 microseconds",
            );
        }
    }
    let idle = if polls == 0 {
        IdlePolicy::BusyPoll
    } else {
        IdlePolicy::Sleep {
            polls,
            sleep: Duration::from_micros(sleep_us as u64),
        }
    };
    for a in &d.eal_args {
        let s = a.get_ref();
        if s.starts_with("--vdev") {
            c.push(
                Some(a.span()),
                "dataplane.eal_args",
                "declare virtual devices as [[dataplane.ports]] with `devargs`, not as --vdev EAL arguments",
            );
        }
    }
    let mut ports = ports(c, d);
    let host_port = host_port(c, d, &mut ports);
    Dataplane {
        eal_args: d.eal_args.iter().map(|a| a.get_ref().clone()).collect(),
        main_lcore,
        worker_lcores: lcores.iter().map(|l| *l.get_ref()).collect(),
        pool_mbufs,
        rx_descriptors: opt(&d.rx_descriptors, DEFAULT_DESCRIPTORS),
        tx_descriptors: opt(&d.tx_descriptors, DEFAULT_DESCRIPTORS),
        idle,
        ports,
        host_port,
    }
}

fn is_pci(name: &str) -> bool {
    // DDDD:BB:DD.F or BB:DD.F
    let parts: Vec<&str> = name.split([':', '.']).collect();
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    match parts.as_slice() {
        [d, b, s, f] => hex(d, 4) && hex(b, 2) && hex(s, 2) && hex(f, 1),
        [b, s, f] => hex(b, 2) && hex(s, 2) && hex(f, 1),
        _ => false,
    }
}

fn ports(c: &mut Collector<'_>, d: &RawDataplane) -> Vec<PortSpec> {
    let raw = d.ports.get_ref();
    if raw.is_empty() {
        c.push(
            Some(d.ports.span()),
            "dataplane.ports",
            "at least one port is needed",
        );
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, p) in raw.iter().enumerate() {
        let name = p.get_ref().name.get_ref().as_str();
        if index.insert(name, i).is_some() {
            c.push(
                Some(p.get_ref().name.span()),
                format!("dataplane.ports[{i}].name"),
                format!("port {name:?} is declared twice"),
            );
        }
    }
    let no_pci = d.eal_args.iter().any(|a| a.get_ref() == "--no-pci");
    raw.iter()
        .enumerate()
        .map(|(i, p)| port(c, i, p.get_ref(), &index, no_pci))
        .collect()
}

/// Resolves `host_port`; a host port without `forward_to` sends what the
/// kernel transmits out of the first other port.
fn host_port(c: &mut Collector<'_>, d: &RawDataplane, ports: &mut [PortSpec]) -> Option<usize> {
    let h = d.host_port.as_ref()?;
    let Some(i) = ports.iter().position(|p| &p.name == h.get_ref()) else {
        c.push(
            Some(h.span()),
            "dataplane.host_port",
            format!("no port named {:?} in dataplane.ports", h.get_ref()),
        );
        return None;
    };
    if ports[i].forward_to.is_none() {
        match (0..ports.len()).find(|&j| j != i) {
            Some(j) => ports[i].forward_to = Some(j),
            None => c.push(
                Some(h.span()),
                "dataplane.host_port",
                "the host port needs another port to send the kernel's frames out of",
            ),
        }
    }
    Some(i)
}

fn port(
    c: &mut Collector<'_>,
    i: usize,
    p: &RawPort,
    index: &HashMap<&str, usize>,
    no_pci: bool,
) -> PortSpec {
    let key = |k: &str| format!("dataplane.ports[{i}].{k}");
    let name = p.name.get_ref();
    let device = if name.starts_with("net_") {
        let devargs = p
            .devargs
            .as_ref()
            .map_or(String::new(), |d| d.get_ref().clone());
        if devargs.chars().any(char::is_whitespace) {
            let span = p.devargs.as_ref().map(|d| d.span());
            c.push(
                span,
                key("devargs"),
                "device arguments must not contain whitespace",
            );
        }
        Device::Virtual { devargs }
    } else if is_pci(name) {
        if let Some(d) = &p.devargs {
            c.push(
                Some(d.span()),
                key("devargs"),
                "devargs are only for virtual devices (names starting with net_)",
            );
        }
        if no_pci {
            c.push(
                Some(p.name.span()),
                key("name"),
                "a PCI port cannot be used with --no-pci in dataplane.eal_args",
            );
        }
        Device::Pci
    } else {
        c.push(
            Some(p.name.span()),
            key("name"),
            format!("{name:?} is neither a virtual device name (net_<driver><n>) nor a PCI address (0000:03:00.0)"),
        );
        Device::Pci
    };
    let forward_to = match &p.forward_to {
        None => None,
        Some(f) => match index.get(f.get_ref().as_str()) {
            Some(&j) => Some(j),
            None => {
                c.push(
                    Some(f.span()),
                    key("forward_to"),
                    format!("no port named {:?} in dataplane.ports", f.get_ref()),
                );
                None
            }
        },
    };
    if let Some(m) = &p.mtu {
        if !(68..=9600).contains(m.get_ref()) {
            c.push(Some(m.span()), key("mtu"), "must be between 68 and 9600");
        }
    }
    PortSpec {
        name: name.clone(),
        device,
        forward_to,
        rss: p.rss.unwrap_or(true),
        mtu: p.mtu.as_ref().map(|m| *m.get_ref()),
    }
}

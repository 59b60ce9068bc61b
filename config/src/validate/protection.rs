//! `[protection]` and `[listener.limits]`: rates checked into
//! [`Protection`] and [`FlowLimits`].

use toml::Spanned;

use std::net::IpAddr;

use super::fields::{addr, in_range};
use crate::error::Collector;
use crate::model::{FlowLimits, HostPolicing, Protection, Rate};
use crate::raw::{RawFlowLimits, RawProtection};

/// Largest gateway-wide rate (`[protection]`).
const MAX_GATEWAY_RATE: u32 = 10_000_000;
/// Largest new-flow rate or burst (`[listener.limits]`).
const MAX_FLOW_RATE: u32 = 100_000_000;

/// A rate with a burst of one second's worth, `default` when unset.
fn rate(c: &mut Collector<'_>, v: &Option<Spanned<u32>>, key: &str, default: Rate) -> Rate {
    Rate::per_sec(in_range(c, v, key, 1, MAX_GATEWAY_RATE, default.per_sec))
}

/// `[protection]` (absent: the defaults).
pub(super) fn protection(c: &mut Collector<'_>, p: Option<&RawProtection>) -> Protection {
    let d = Protection::default();
    let Some(p) = p else { return d };
    let mut host = d.host.clone();
    if let Some(h) = &p.host {
        let k = |n: &str| format!("protection.host.{n}");
        let routing_peers = h
            .routing_peers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                addr::<IpAddr>(c, s, k(&format!("routing_peers[{i}]")), "an IP address")
            })
            .collect();
        host = HostPolicing {
            routing: rate(c, &h.routing_pps, &k("routing_pps"), d.host.routing),
            routing_peers,
            neighbor: rate(c, &h.neighbor_pps, &k("neighbor_pps"), d.host.neighbor),
            backends: rate(c, &h.backends_pps, &k("backends_pps"), d.host.backends),
            other: rate(c, &h.other_pps, &k("other_pps"), d.host.other),
        };
    }
    Protection {
        echo_replies: rate(
            c,
            &p.echo_replies_per_sec,
            "protection.echo_replies_per_sec",
            d.echo_replies,
        ),
        icmp_errors_forwarded: rate(
            c,
            &p.icmp_errors_forwarded_per_sec,
            "protection.icmp_errors_forwarded_per_sec",
            d.icmp_errors_forwarded,
        ),
        host,
    }
}

/// One limit of `[listener.limits]`: `rate` per second, `burst` at once
/// (default: one second's worth; a burst without a rate is an error).
fn limit(
    c: &mut Collector<'_>,
    rate: &Option<Spanned<u32>>,
    burst: &Option<Spanned<u32>>,
    key: &dyn Fn(&str) -> String,
    names: (&str, &str),
) -> Option<Rate> {
    if rate.is_none() {
        if let Some(b) = burst {
            c.push(
                Some(b.span()),
                key(names.1),
                format!("a burst needs its rate ({} is not set)", names.0),
            );
        }
        return None;
    }
    let per_sec = in_range(c, rate, &key(names.0), 1, MAX_FLOW_RATE, 1);
    let burst = in_range(c, burst, &key(names.1), 1, MAX_FLOW_RATE, per_sec);
    Some(Rate { per_sec, burst })
}

/// `[listener.limits]` at `key`.
pub(super) fn flow_limits(c: &mut Collector<'_>, l: &RawFlowLimits, key: &str) -> FlowLimits {
    let k = |n: &str| format!("{key}.{n}");
    FlowLimits {
        listener: limit(
            c,
            &l.new_flows_per_sec,
            &l.new_flows_burst,
            &k,
            ("new_flows_per_sec", "new_flows_burst"),
        ),
        source: limit(
            c,
            &l.source_new_flows_per_sec,
            &l.source_new_flows_burst,
            &k,
            ("source_new_flows_per_sec", "source_new_flows_burst"),
        ),
    }
}

//! `[target_group.health_check]`.

use std::time::Duration;

use super::fields::{in_range, only_for};
use crate::error::Collector;
use crate::model::{HealthCheck, Probe};
use crate::raw::RawHealthCheck;

pub(super) fn health_check(c: &mut Collector<'_>, gi: usize, h: &RawHealthCheck) -> HealthCheck {
    let key = |k: &str| format!("target_group[{gi}].health_check.{k}");
    let probe = probe(c, gi, h);
    if *h.port.get_ref() == 0 {
        c.push(
            Some(h.port.span()),
            key("port"),
            "must be between 1 and 65535",
        );
    }
    let interval = in_range(c, &h.interval_ms, &key("interval_ms"), 50, 300_000, 5000);
    let timeout = in_range(
        c,
        &h.timeout_ms,
        &key("timeout_ms"),
        10,
        300_000,
        2000.min(interval),
    );
    if timeout >= interval {
        let span = h
            .timeout_ms
            .as_ref()
            .or(h.interval_ms.as_ref())
            .map(|v| v.span());
        c.push(
            span,
            key("timeout_ms"),
            format!("the timeout ({timeout} ms) must be shorter than the interval ({interval} ms)"),
        );
    }
    let startup_grace = in_range(
        c,
        &h.startup_grace_ms,
        &key("startup_grace_ms"),
        0,
        600_000,
        0,
    );
    HealthCheck {
        probe,
        port: *h.port.get_ref(),
        interval: Duration::from_millis(interval as u64),
        timeout: Duration::from_millis(timeout as u64),
        healthy_threshold: in_range(c, &h.healthy_threshold, &key("healthy_threshold"), 1, 10, 3),
        unhealthy_threshold: in_range(
            c,
            &h.unhealthy_threshold,
            &key("unhealthy_threshold"),
            1,
            10,
            3,
        ),
        startup_grace: Duration::from_millis(startup_grace as u64),
    }
}

/// The probe: `type` and the keys that only some types take.
fn probe(c: &mut Collector<'_>, gi: usize, h: &RawHealthCheck) -> Probe {
    let key = |k: &str| format!("target_group[{gi}].health_check.{k}");
    let kind = h.kind.get_ref().as_str();
    match kind {
        "tcp" | "http" | "udp" => {
            for (given, k, allowed) in [
                (h.path.as_ref().map(|v| v.span()), "path", "http"),
                (
                    h.expected_status.as_ref().map(|v| v.span()),
                    "expected_status",
                    "http",
                ),
                (
                    h.udp_payload.as_ref().map(|v| v.span()),
                    "udp_payload",
                    "udp",
                ),
            ] {
                only_for(c, given, key(k), "type", &[allowed], kind);
            }
            match kind {
                "tcp" => Probe::Tcp,
                "http" => {
                    let path = h
                        .path
                        .as_ref()
                        .map_or("/".to_string(), |p| p.get_ref().clone());
                    if !path.starts_with('/')
                        || path.chars().any(|ch| ch.is_whitespace() || ch.is_control())
                    {
                        let span = h.path.as_ref().map(|p| p.span());
                        c.push(
                            span,
                            key("path"),
                            format!("{path:?} is not an absolute path without spaces"),
                        );
                    }
                    let expected_status = h
                        .expected_status
                        .as_ref()
                        .map_or(vec![200], |v| v.get_ref().clone());
                    if expected_status.is_empty()
                        || expected_status.iter().any(|s| !(100..=599).contains(s))
                    {
                        let span = h.expected_status.as_ref().map(|v| v.span());
                        c.push(
                            span,
                            key("expected_status"),
                            "give one or more HTTP status codes (100-599)",
                        );
                    }
                    Probe::Http {
                        path,
                        expected_status,
                    }
                }
                _ => Probe::Udp {
                    payload: h
                        .udp_payload
                        .as_ref()
                        .map_or(b"ping".to_vec(), |p| p.get_ref().as_bytes().to_vec()),
                },
            }
        }
        other => {
            c.push(
                Some(h.kind.span()),
                key("type"),
                format!("{other:?} is not one of \"tcp\", \"http\", \"udp\""),
            );
            Probe::Tcp
        }
    }
}

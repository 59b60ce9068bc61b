//! Requests into calls: which method and path ask the control thread for
//! what, with the body checked and turned into a typed [`ApiCall`].

use std::time::{Duration, SystemTime};

use dnlb_config::runtime::{BackendRef, ListenerSection};
use dnlb_lb::maglev::MAX_WEIGHT;
use dnlb_lb::processor::FlowQuery;
use serde_json::{json, Value};

use super::reply::ApiReply;
use crate::control::capture::{CaptureRequest, CaptureSpec};
use crate::control::changes::Change;

/// What a request asks of the control thread.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiCall {
    /// `GET /v1/status`.
    Status,
    /// `GET /v1/listeners`.
    Listeners,
    /// `GET /v1/backends`.
    Backends,
    /// `GET /v1/runtime`.
    Runtime,
    /// `GET /v1/explain?src=IP&sport=N&dst=IP&dport=N&proto=tcp|udp`.
    Explain(FlowQuery),
    /// `GET /metrics`.
    Metrics,
    /// `POST /v1/reload`.
    Reload,
    /// A run-time change.
    Change(Change),
    /// `POST /v1/config/check`: the dry run of a new config file's text.
    CheckConfig(String),
    /// `POST /v1/capture`: arm a capture.
    StartCapture(Box<CaptureSpec>),
    /// `DELETE /v1/capture`: stop it.
    StopCapture,
    /// `GET /v1/capture`.
    CaptureStatus,
    /// `GET /v1/capture/pcapng`.
    CaptureFile,
}

fn body_json(body: &str) -> Result<Value, ApiReply> {
    if body.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(body)
        .map_err(|e| ApiReply::error(400, format!("the body is not JSON: {e}")))
}

fn backend_ref(group: &str, address: &str, query: &str) -> Result<BackendRef, ApiReply> {
    let address = address
        .parse()
        .map_err(|_| ApiReply::error(400, format!("{address:?} is not an IP address")))?;
    let mut port = None;
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some(("port", p)) => {
                port = Some(
                    p.parse()
                        .map_err(|_| ApiReply::error(400, format!("port {p:?} is not a port")))?,
                )
            }
            _ => {
                return Err(ApiReply::error(
                    400,
                    format!("unknown query parameter {kv:?}"),
                ))
            }
        }
    }
    Ok(BackendRef {
        target_group: group.to_string(),
        address,
        port,
    })
}

/// `%XX` escapes decoded (what a client may make of `:` in an IPv6
/// address); anything malformed is left as it is.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /v1/explain`'s query: `src`, `sport`, `dst`, `dport` and `proto`
/// (`tcp` or `udp`; default `tcp`).
fn flow_query(query: &str) -> Result<FlowQuery, ApiReply> {
    let (mut src, mut sport, mut dst, mut dport, mut proto) = (None, None, None, None, 6);
    let bad = |k: &str, v: &str, what: &str| ApiReply::error(400, format!("{k}={v:?}: {what}"));
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = unescape(v);
        let addr = || {
            v.parse::<std::net::IpAddr>()
                .map_err(|_| bad(k, &v, "not an IP address"))
        };
        let port = || v.parse::<u16>().map_err(|_| bad(k, &v, "not a port"));
        match k {
            "src" => src = Some(addr()?),
            "dst" => dst = Some(addr()?),
            "sport" => sport = Some(port()?),
            "dport" => dport = Some(port()?),
            "proto" => {
                proto = match v.to_ascii_lowercase().as_str() {
                    "tcp" => 6,
                    "udp" => 17,
                    _ => return Err(bad(k, &v, "give tcp or udp")),
                }
            }
            _ => {
                return Err(ApiReply::error(
                    400,
                    format!("unknown query parameter {k:?}"),
                ))
            }
        }
    }
    let missing =
        |k: &str| ApiReply::error(400, format!("give {k} (src, sport, dst, dport, proto)"));
    let (src, dst) = (
        src.ok_or_else(|| missing("src"))?,
        dst.ok_or_else(|| missing("dst"))?,
    );
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(ApiReply::error(
            400,
            "src and dst must be of the same IP family",
        ));
    }
    Ok(FlowQuery {
        src,
        sport: sport.ok_or_else(|| missing("sport"))?,
        dst,
        dport: dport.ok_or_else(|| missing("dport"))?,
        proto,
    })
}

/// Whether some method is served on this path.
fn known_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["metrics"]
            | [
                "v1",
                "status" | "listeners" | "backends" | "runtime" | "reload" | "explain"
            ]
            | ["v1", "target_groups", _, "backends"]
            | ["v1", "target_groups", _, "backends", _]
            | ["v1", "target_groups", _, "backends", _, "weight" | "drain"]
            | ["v1", "listeners", _, "elastic_ip" | "acl" | "limits"]
            | ["v1", "config", "check"]
            | ["v1", "capture"]
            | ["v1", "capture", "pcapng"]
    )
}

/// `PUT` (with `body`) or `DELETE` (`None`) of listener `l`'s section `s`
/// (`acl`, `limits`).
fn section_change(l: &str, s: &str, body: Option<&str>) -> Result<Change, ApiReply> {
    let section = if s == "acl" {
        ListenerSection::Acl
    } else {
        ListenerSection::Limits
    };
    let value = match body {
        Some(body) => Some(serde_json::from_value(body_json(body)?).map_err(|e| {
            ApiReply::error(
                422,
                format!("give the section's keys as a JSON object: {e}"),
            )
        })?),
        None => None,
    };
    Ok(Change::Section {
        listener: l.to_string(),
        section,
        value,
    })
}

/// `GET`, `POST` or `DELETE /v1/capture`.
fn capture_call(method: &str, body: &str) -> Result<ApiCall, ApiReply> {
    Ok(match method {
        "GET" => ApiCall::CaptureStatus,
        "DELETE" => ApiCall::StopCapture,
        _ => {
            let r: CaptureRequest = serde_json::from_value(body_json(body)?)
                .map_err(|e| ApiReply::error(422, format!("the capture request: {e}")))?;
            ApiCall::StartCapture(Box::new(r.validate().map_err(|e| ApiReply::error(422, e))?))
        }
    })
}

/// Turns a request into a call (or an error reply).
pub fn route(method: &str, url: &str, body: &str) -> Result<ApiCall, ApiReply> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let put = matches!(method, "PUT" | "POST");
    Ok(match (method, segs.as_slice()) {
        ("GET", ["metrics"]) => ApiCall::Metrics,
        ("GET", ["v1", "status"]) => ApiCall::Status,
        ("GET", ["v1", "listeners"]) => ApiCall::Listeners,
        ("GET", ["v1", "backends"]) => ApiCall::Backends,
        ("GET", ["v1", "runtime"]) => ApiCall::Runtime,
        ("GET", ["v1", "explain"]) => ApiCall::Explain(flow_query(query)?),
        ("POST", ["v1", "reload"]) => ApiCall::Reload,
        ("GET", ["v1", "capture", "pcapng"]) => ApiCall::CaptureFile,
        ("GET" | "POST" | "DELETE", ["v1", "capture"]) => capture_call(method, body)?,
        ("POST", ["v1", "config", "check"]) => match body_json(body)?.get("toml") {
            Some(Value::String(t)) => ApiCall::CheckConfig(t.clone()),
            _ => {
                return Err(ApiReply::error(
                    422,
                    "give {\"toml\": \"the config file's text\"}",
                ))
            }
        },
        ("POST", ["v1", "target_groups", g, "backends"]) => {
            let v = body_json(body)?;
            if !v.is_object() {
                return Err(ApiReply::error(400, "give the backend as a JSON object"));
            }
            let backend = toml::Table::try_from(v).map_err(|e| {
                ApiReply::error(400, format!("the backend cannot be a config table: {e}"))
            })?;
            ApiCall::Change(Change::Register {
                group: g.to_string(),
                backend,
            })
        }
        ("DELETE", ["v1", "target_groups", g, "backends", a]) => {
            ApiCall::Change(Change::Deregister(backend_ref(g, a, query)?))
        }
        (_, ["v1", "target_groups", g, "backends", a, "weight"]) if put => {
            let r = backend_ref(g, a, query)?;
            let w = body_json(body)?
                .get("weight")
                .and_then(Value::as_u64)
                .filter(|w| *w <= u64::from(MAX_WEIGHT))
                .ok_or_else(|| {
                    ApiReply::error(
                        422,
                        format!("give {{\"weight\": N}} with N from 0 to {MAX_WEIGHT}"),
                    )
                })?;
            ApiCall::Change(Change::Weight(r, w as u8))
        }
        (_, ["v1", "target_groups", g, "backends", a, "drain"]) if put => {
            let r = backend_ref(g, a, query)?;
            let v = body_json(body)?;
            let until = match (v.get("until"), v.get("deadline_secs")) {
                (Some(u), None) => u
                    .as_str()
                    .and_then(|s| s.parse::<toml::value::Datetime>().ok())
                    .filter(|d| dnlb_config::time::to_system_time(d).is_some())
                    .ok_or_else(|| {
                        ApiReply::error(
                            422,
                            "until: give an RFC 3339 time with offset, e.g. 2026-11-24T08:00:00Z",
                        )
                    })?,
                (None, s) => {
                    let secs = match s {
                        None => 300,
                        Some(s) => s.as_u64().filter(|s| *s <= 7 * 86_400).ok_or_else(|| {
                            ApiReply::error(422, "deadline_secs: give seconds from 0 to 604800")
                        })?,
                    };
                    dnlb_config::time::from_system_time(
                        SystemTime::now() + Duration::from_secs(secs),
                    )
                }
                (Some(_), Some(_)) => {
                    return Err(ApiReply::error(422, "give either until or deadline_secs"))
                }
            };
            ApiCall::Change(Change::Drain(r, Some(until)))
        }
        ("DELETE", ["v1", "target_groups", g, "backends", a, "drain"]) => {
            ApiCall::Change(Change::Drain(backend_ref(g, a, query)?, None))
        }
        (_, ["v1", "listeners", l, "elastic_ip"]) if put => {
            let a = body_json(body)?;
            let address = a
                .get("address")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ApiReply::error(422, "give {\"address\": \"IP\"}"))?;
            ApiCall::Change(Change::ElasticIp {
                listener: l.to_string(),
                address: Some(address),
            })
        }
        ("DELETE", ["v1", "listeners", l, "elastic_ip"]) => ApiCall::Change(Change::ElasticIp {
            listener: l.to_string(),
            address: None,
        }),
        (_, ["v1", "listeners", l, s @ ("acl" | "limits")]) if put || method == "DELETE" => {
            ApiCall::Change(section_change(l, s, put.then_some(body))?)
        }
        _ if known_path(&segs) => {
            return Err(ApiReply::error(
                405,
                format!("{method} is not allowed on {path}"),
            ))
        }
        _ => {
            return Err(ApiReply::error(
                404,
                format!("no such endpoint: {method} {path}"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/v1/status", ""), Ok(ApiCall::Status));
        assert_eq!(route("GET", "/metrics", ""), Ok(ApiCall::Metrics));
        assert_eq!(
            route(
                "DELETE",
                "/v1/target_groups/web/backends/10.0.0.1?port=80",
                ""
            ),
            Ok(ApiCall::Change(Change::Deregister(BackendRef {
                target_group: "web".into(),
                address: "10.0.0.1".parse().unwrap(),
                port: Some(80)
            })))
        );
        assert!(matches!(
            route(
                "PUT",
                "/v1/target_groups/web/backends/10.0.0.1/weight",
                "{\"weight\": 5}"
            ),
            Ok(ApiCall::Change(Change::Weight(_, 5)))
        ));
        assert_eq!(
            route(
                "PUT",
                "/v1/target_groups/web/backends/10.0.0.1/weight",
                "{\"weight\": 500}"
            )
            .unwrap_err()
            .status,
            422
        );
        let Ok(ApiCall::Change(Change::Drain(_, Some(u)))) = route(
            "PUT",
            "/v1/target_groups/web/backends/10.0.0.1/drain",
            "{\"until\": \"2030-01-01T00:00:00Z\"}",
        ) else {
            panic!()
        };
        assert_eq!(u.to_string(), "2030-01-01T00:00:00Z");
        assert!(matches!(
            route("POST", "/v1/target_groups/web/backends", "{\"address\": \"10.0.0.9\", \"tunnel\": \"ipip\", \"weight\": 3}"),
            Ok(ApiCall::Change(Change::Register { ref backend, .. })) if backend["weight"].as_integer() == Some(3)
        ));
        assert_eq!(
            route(
                "GET",
                "/v1/explain?src=2001:db8::7&sport=5555&dst=2001%3Adb8%3A%3A1&dport=80&proto=udp",
                ""
            ),
            Ok(ApiCall::Explain(FlowQuery {
                src: "2001:db8::7".parse().unwrap(),
                sport: 5555,
                dst: "2001:db8::1".parse().unwrap(),
                dport: 80,
                proto: 17
            }))
        );
        assert!(matches!(
            route(
                "GET",
                "/v1/explain?src=198.51.100.7&sport=1&dst=192.0.2.1&dport=80",
                ""
            ),
            Ok(ApiCall::Explain(FlowQuery { proto: 6, .. }))
        ));
        for bad in [
            "src=198.51.100.7&sport=1&dst=192.0.2.1",
            "src=198.51.100.7&sport=1&dst=2001:db8::1&dport=80",
            "src=nope&sport=1&dst=192.0.2.1&dport=80",
            "src=198.51.100.7&sport=70000&dst=192.0.2.1&dport=80",
            "src=198.51.100.7&sport=1&dst=192.0.2.1&dport=80&proto=sctp",
            "src=198.51.100.7&sport=1&dst=192.0.2.1&dport=80&x=1",
        ] {
            let r = route("GET", &format!("/v1/explain?{bad}"), "");
            assert_eq!(r.unwrap_err().status, 400, "{bad}");
        }
        assert_eq!(route("POST", "/v1/explain", "").unwrap_err().status, 405);
        assert_eq!(
            route("POST", "/v1/config/check", "{\"toml\": \"[gateway]\"}"),
            Ok(ApiCall::CheckConfig("[gateway]".into()))
        );
        assert_eq!(
            route("POST", "/v1/config/check", "{}").unwrap_err().status,
            422
        );
        assert_eq!(
            route("GET", "/v1/config/check", "").unwrap_err().status,
            405
        );
        assert_eq!(route("GET", "/v1/nope", "").unwrap_err().status, 404);
        assert_eq!(route("DELETE", "/v1/status", "").unwrap_err().status, 405);
        assert_eq!(route("GET", "/v1/reload", "").unwrap_err().status, 405);
        assert_eq!(
            route("DELETE", "/v1/target_groups/web/backends/nope", "")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            route("POST", "/v1/target_groups/web/backends", "[1]")
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn capture_routes() {
        assert_eq!(route("GET", "/v1/capture", ""), Ok(ApiCall::CaptureStatus));
        assert_eq!(
            route("GET", "/v1/capture/pcapng", ""),
            Ok(ApiCall::CaptureFile)
        );
        assert_eq!(route("DELETE", "/v1/capture", ""), Ok(ApiCall::StopCapture));
        let Ok(ApiCall::StartCapture(spec)) = route(
            "POST",
            "/v1/capture",
            r#"{"src": "198.51.100.7", "sport": 5555, "proto": "udp", "packets": 5}"#,
        ) else {
            panic!("a capture")
        };
        assert_eq!(
            (spec.filter.sport, spec.filter.proto, spec.packets),
            (Some(5555), Some(17), 5)
        );
        for bad in [r#"{"src": "x"}"#, r#"{"packets": 0}"#, r#"{"what": 1}"#] {
            assert_eq!(
                route("POST", "/v1/capture", bad).unwrap_err().status,
                422,
                "{bad}"
            );
        }
        assert_eq!(
            route("POST", "/v1/capture/pcapng", "").unwrap_err().status,
            405
        );
        assert!(super::super::access::secret("/v1/capture/pcapng"));
        assert!(!super::super::access::secret("/v1/capture"));
    }
}

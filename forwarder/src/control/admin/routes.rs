//! Requests into calls: which method and path ask the control thread for
//! what, with the body checked and turned into a typed [`ApiCall`].

use std::time::{Duration, SystemTime};

use dnlb_config::runtime::{BackendRef, ListenerSection};
use dnlb_lb::maglev::MAX_WEIGHT;
use serde_json::{json, Value};

use super::reply::ApiReply;
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
    /// `GET /metrics`.
    Metrics,
    /// `POST /v1/reload`.
    Reload,
    /// A run-time change.
    Change(Change),
    /// `POST /v1/config/check`: the dry run of a new config file's text.
    CheckConfig(String),
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

/// Whether some method is served on this path.
fn known_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["metrics"]
            | [
                "v1",
                "status" | "listeners" | "backends" | "runtime" | "reload"
            ]
            | ["v1", "target_groups", _, "backends"]
            | ["v1", "target_groups", _, "backends", _]
            | ["v1", "target_groups", _, "backends", _, "weight" | "drain"]
            | ["v1", "listeners", _, "elastic_ip" | "acl" | "limits"]
            | ["v1", "config", "check"]
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
        ("POST", ["v1", "reload"]) => ApiCall::Reload,
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
}

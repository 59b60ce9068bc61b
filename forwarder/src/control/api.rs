//! The admin HTTP API and the Prometheus endpoint.
//!
//! A thread accepts requests (loopback by default; a bearer token when
//! configured), turns each into an [`ApiCall`] and hands it to the control
//! thread, which owns all state and answers with an [`ApiReply`]. So API
//! changes, reloads and health changes are serialised on one thread and
//! never race each other.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v1/status` | everything below, with counters |
//! | GET | `/v1/listeners`, `/v1/backends`, `/v1/runtime` | parts of it |
//! | POST | `/v1/reload` | reload the config file |
//! | POST | `/v1/target_groups/G/backends` | register a backend (JSON: keys of `[[target_group.backend]]`) |
//! | DELETE | `/v1/target_groups/G/backends/ADDR[?port=P]` | deregister |
//! | PUT | `/v1/target_groups/G/backends/ADDR/weight` | `{"weight": N}` |
//! | PUT | `/v1/target_groups/G/backends/ADDR/drain` | `{"deadline_secs": N}` or `{"until": "RFC 3339"}` |
//! | DELETE | `/v1/target_groups/G/backends/ADDR/drain` | cancel a drain |
//! | PUT | `/v1/listeners/L/elastic_ip` | `{"address": "A"}`: attach |
//! | DELETE | `/v1/listeners/L/elastic_ip` | detach |
//! | GET | `/metrics` | Prometheus text format |

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use dnlb_config::runtime::BackendRef;
use dnlb_config::{Admin, Token};
use dnlb_lb::maglev::MAX_WEIGHT;
use serde_json::{json, Value};

use super::changes::{Change, ChangeError};
use super::plane::{ControlPlane, Published};
use super::report;

/// Largest request body accepted.
const MAX_BODY: u64 = 64 * 1024;
/// How long a request waits for the control thread.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests served at once (each on its own thread, so a slow client holds
/// up only itself); more get 503.
const MAX_IN_FLIGHT: usize = 16;

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
}

/// The control thread's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiReply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: String,
    /// Content type.
    pub content_type: &'static str,
}

impl ApiReply {
    fn json(status: u16, v: &impl serde::Serialize) -> Self {
        ApiReply {
            status,
            body: serde_json::to_string_pretty(v)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
            content_type: "application/json",
        }
    }

    /// A JSON error reply.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &json!({ "error": message.into() }))
    }
}

/// The HTTP status of a refused change: 404 no such thing, 409 not
/// possible on this gateway now, 422 invalid, 500 not persisted.
fn http_status(e: &ChangeError) -> u16 {
    match e {
        ChangeError::NoTargetGroup(_) | ChangeError::NoListener(_) | ChangeError::NoBackend(_) => {
            404
        }
        ChangeError::NoConfigFile
        | ChangeError::ForwardingOnly
        | ChangeError::ConfigFileInvalid(_) => 409,
        ChangeError::Invalid(_) => 422,
        ChangeError::NotSaved { .. } => 500,
    }
}

impl From<ChangeError> for ApiReply {
    fn from(e: ChangeError) -> Self {
        ApiReply::error(http_status(&e), e.to_string())
    }
}

/// A call, the channel its reply goes back on, and when the caller stops
/// waiting (a call still queued then is not carried out).
pub type Envelope = (ApiCall, mpsc::Sender<ApiReply>, Instant);

/// The bearer token the API requires now (reloads may change it).
type TokenHandle = Arc<Mutex<Option<Arc<str>>>>;

/// The running API server.
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    token: TokenHandle,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Binds `admin.listen` and starts serving; calls arrive on the
    /// returned receiver.
    pub fn start(admin: &Admin) -> std::io::Result<(ApiServer, mpsc::Receiver<Envelope>)> {
        let server = tiny_http::Server::http(admin.listen)
            .map_err(|e| std::io::Error::other(format!("admin API on {}: {e}", admin.listen)))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("admin API: not an IP listener"))?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let token: TokenHandle = Arc::new(Mutex::new(
            admin.token.as_ref().map(|t| Arc::from(t.0.as_str())),
        ));
        let token_for_thread = token.clone();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("dnlb-api".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(100)) {
                        Ok(Some(req)) => {
                            if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
                                in_flight.fetch_sub(1, Ordering::AcqRel);
                                respond(req, ApiReply::error(503, "too many requests at once"));
                                continue;
                            }
                            let token = token_for_thread
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .clone();
                            let (tx, mine) = (tx.clone(), in_flight.clone());
                            let spawned = std::thread::Builder::new()
                                .name("dnlb-api-req".into())
                                .spawn(move || {
                                    handle(req, token.as_deref(), &tx);
                                    mine.fetch_sub(1, Ordering::AcqRel);
                                });
                            if let Err(e) = spawned {
                                in_flight.fetch_sub(1, Ordering::AcqRel);
                                tracing::warn!(error = %e, "admin API: cannot start a request thread");
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "admin API: accept failed");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })?;
        Ok((
            ApiServer {
                addr,
                token,
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requires `token` from now on (`None`: no token); a reload may change
    /// it.
    pub fn set_token(&self, token: Option<&Token>) {
        let new: Option<Arc<str>> = token.map(|t| t.0.as_str().into());
        let mut current = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if *current != new {
            *current = new;
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Compares without an early exit on the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn handle(mut req: tiny_http::Request, token: Option<&str>, control: &mpsc::Sender<Envelope>) {
    let reply = (|| {
        if let Some(t) = token {
            let given = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .and_then(|h| {
                    let (scheme, cred) = h.value.as_str().trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| cred.trim())
                });
            if !given.is_some_and(|g| same_secret(g.as_bytes(), t.as_bytes())) {
                return ApiReply::error(401, "missing or wrong bearer token");
            }
        }
        let mut body = String::new();
        if req
            .as_reader()
            .take(MAX_BODY + 1)
            .read_to_string(&mut body)
            .is_err()
        {
            return ApiReply::error(400, "the body is not UTF-8 text");
        }
        if body.len() as u64 > MAX_BODY {
            return ApiReply::error(413, format!("the body is larger than {MAX_BODY} bytes"));
        }
        let call = match route(req.method().as_str(), req.url(), &body) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let (tx, rx) = mpsc::channel();
        if control
            .send((call, tx, Instant::now() + CONTROL_TIMEOUT))
            .is_err()
        {
            return ApiReply::error(503, "dnlb is shutting down");
        }
        rx.recv_timeout(CONTROL_TIMEOUT)
            .unwrap_or_else(|_| ApiReply::error(503, "the control thread did not answer"))
    })();
    tracing::debug!(method = %req.method(), url = req.url(), status = reply.status, "admin API");
    respond(req, reply);
}

fn respond(req: tiny_http::Request, reply: ApiReply) {
    let header =
        tiny_http::Header::from_bytes("Content-Type", reply.content_type).expect("static header");
    let mut response = tiny_http::Response::from_string(reply.body)
        .with_status_code(reply.status)
        .with_header(header);
    if reply.status == 401 {
        response.add_header(
            tiny_http::Header::from_bytes("WWW-Authenticate", "Bearer realm=\"dnlb\"")
                .expect("static header"),
        );
    }
    let _ = req.respond(response);
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
            | ["v1", "listeners", _, "elastic_ip"]
    )
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

/// Answers a call on the control thread.
pub fn serve(plane: &mut ControlPlane, call: ApiCall) -> ApiReply {
    let published = |r: Result<Published, ChangeError>| match r {
        Ok(p) => ApiReply::json(
            200,
            &json!({ "ok": true, "generation": p.generation, "tables_rebuilt": p.tables_rebuilt }),
        ),
        Err(e) => e.into(),
    };
    match call {
        ApiCall::Status => ApiReply::json(200, &report::status(plane)),
        ApiCall::Listeners => ApiReply::json(200, &report::status(plane).listeners),
        ApiCall::Backends => ApiReply::json(200, &report::status(plane).backends),
        ApiCall::Runtime => {
            let s = report::status(plane);
            ApiReply::json(
                200,
                &json!({ "file": s.runtime_file, "changes": s.runtime_changes, "stale": s.stale_changes }),
            )
        }
        ApiCall::Metrics => ApiReply {
            status: 200,
            body: super::metrics::render(&report::status(plane)),
            content_type: "text/plain; version=0.0.4",
        },
        // Whatever made a reload fail, the file is what needs fixing.
        ApiCall::Reload => match plane.reload() {
            Ok(p) => published(Ok(p)),
            Err(e) => ApiReply::error(422, e.to_string()),
        },
        ApiCall::Change(change) => published(plane.change(&change)),
    }
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
        assert!(
            same_secret(b"abc", b"abc")
                && !same_secret(b"abc", b"abd")
                && !same_secret(b"ab", b"abc")
        );
    }
}

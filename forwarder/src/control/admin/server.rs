//! The admin HTTP server: hyper on the control side's tokio runtime, with
//! every resource a client could tie up bounded.
//!
//! - At most `admin.max_connections` connections are served at once; a
//!   connection past that is accepted, told 503 in one non-blocking write
//!   and closed, so the listen backlog keeps moving and file descriptors
//!   stay bounded whatever the number of clients.
//! - Request headers must arrive within [`HEADER_TIMEOUT`] and fit in
//!   [`MAX_HEADER_BYTES`]; bodies within [`BODY_TIMEOUT`] and
//!   [`MAX_BODY`]; a connection with no read or write progress for
//!   [`IDLE_TIMEOUT`] is closed.
//! - An accept error (out of file descriptors, say) is logged at most once
//!   per [`LOG_EVERY`] and retried with back-off; the server never stops
//!   accepting for good.
//! - Requests become calls to the control thread, which owns all state; a
//!   call waits at most [`CONTROL_TIMEOUT`] for it.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dnlb_config::{Admin, Token};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};

use super::access::{self, Peer};
use super::console;
use super::reply::ApiReply;
use super::routes::{self, ApiCall};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest request head (request line and headers); more gets 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long a client may take to send a request's head, also between
/// requests on a kept-alive connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send a body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no progress this long is closed. Longer than
/// [`CONTROL_TIMEOUT`]: a request waiting for the control thread is not idle.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request waits for the control thread.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(15);
/// Accept-error back-off, from the first retry to the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));
/// Repeated warnings (refused connections, accept errors) at most this often.
const LOG_EVERY: Duration = Duration::from_secs(30);
/// What a connection past the cap is told before it is closed.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// A call, the channel its reply goes back on, and when the caller stops
/// waiting (a call still queued then is not carried out).
pub type Envelope = (ApiCall, oneshot::Sender<ApiReply>, Instant);

/// What the server counted.
#[derive(Debug, Default)]
pub struct AdminCounters {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub refused: AtomicU64,
    /// Accept calls that failed (e.g. out of file descriptors).
    pub accept_errors: AtomicU64,
}

/// State the server's tasks share.
#[derive(Debug)]
struct Shared {
    token: RwLock<Option<Arc<str>>>,
    control: mpsc::Sender<Envelope>,
    conns: Arc<Semaphore>,
    counters: AdminCounters,
}

impl Shared {
    fn token(&self) -> Option<Arc<str>> {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The running admin server. Dropping it stops it (connections get a
/// moment to finish their request).
#[derive(Debug)]
pub struct AdminServer {
    addr: std::net::SocketAddr,
    socket: Option<PathBuf>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    rt: tokio::runtime::Handle,
}

impl AdminServer {
    /// Binds `admin.listen` (and `admin.socket`) and starts serving on
    /// `rt`, requiring `token` for writes; calls arrive on the returned
    /// receiver.
    pub fn start(
        admin: &Admin,
        token: Option<&Token>,
        rt: &tokio::runtime::Handle,
    ) -> std::io::Result<(AdminServer, mpsc::Receiver<Envelope>)> {
        let named = |e: std::io::Error, what: &str| {
            std::io::Error::new(e.kind(), format!("admin API on {what}: {e}"))
        };
        let _entered = rt.enter();
        let std_listener = std::net::TcpListener::bind(admin.listen)
            .map_err(|e| named(e, &admin.listen.to_string()))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let tcp = tokio::net::TcpListener::from_std(std_listener)?;
        let unix = match &admin.socket {
            None => None,
            Some(p) => Some(bind_unix(p).map_err(|e| named(e, &p.display().to_string()))?),
        };
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            token: RwLock::new(token.map(|t| Arc::from(t.0.as_str()))),
            control: tx,
            conns: Arc::new(Semaphore::new(admin.max_connections as usize)),
            counters: AdminCounters::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![rt.spawn(accept((tcp, addr), shared.clone(), stopped.clone()))];
        if let Some(u) = unix {
            tasks.push(rt.spawn(accept(u, shared.clone(), stopped)));
        }
        Ok((
            AdminServer {
                addr,
                socket: admin.socket.clone(),
                shared,
                stop,
                tasks,
                rt: rt.clone(),
            },
            rx,
        ))
    }

    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// What it counted.
    pub fn counters(&self) -> &AdminCounters {
        &self.shared.counters
    }

    /// Requires `token` from now on (`None`: writes only on the Unix
    /// socket); a reload may change it.
    pub fn set_token(&self, token: Option<&Token>) {
        let new: Option<Arc<str>> = token.map(|t| t.0.as_str().into());
        let mut current = self.shared.token.write().unwrap_or_else(|e| e.into_inner());
        if current.as_deref() != new.as_deref() {
            *current = new;
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        // Bounded: connections are told to finish and are dropped after
        // a second whatever their clients do.
        self.rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(3), async {
                for t in tasks {
                    let _ = t.await;
                }
            })
            .await;
        });
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Binds a Unix socket at `path` (a stale socket file is replaced) that
/// only the owner may use.
fn bind_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(l)
}

/// Rate-limited warnings about something that repeats.
#[derive(Debug, Default)]
struct Repeated {
    last: Option<Instant>,
    since: u64,
}

impl Repeated {
    /// Counts one; returns how many to report now (first, then at most one
    /// report per [`LOG_EVERY`]).
    fn tick(&mut self) -> Option<u64> {
        self.since += 1;
        if self.last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.since))
    }
}

/// What the accept loops share: the cap, the counters and the warnings.
struct Gate {
    shared: Arc<Shared>,
    refused: Repeated,
    errors: Repeated,
    backoff: Duration,
}

impl Gate {
    fn new(shared: Arc<Shared>) -> Self {
        Gate {
            shared,
            refused: Repeated::default(),
            errors: Repeated::default(),
            backoff: BACKOFF.0,
        }
    }

    /// A permit to serve one more connection, or `None` at the cap.
    fn admit(&mut self) -> Option<OwnedSemaphorePermit> {
        self.backoff = BACKOFF.0;
        match self.shared.conns.clone().try_acquire_owned() {
            Ok(p) => {
                self.shared
                    .counters
                    .accepted
                    .fetch_add(1, Ordering::Relaxed);
                Some(p)
            }
            Err(_) => {
                self.shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = self.refused.tick() {
                    tracing::warn!(
                        refused = n,
                        "admin API: at its connection cap (admin.max_connections); closing new connections"
                    );
                }
                None
            }
        }
    }

    /// After a failed accept: log (rarely) and wait a little longer each
    /// time.
    async fn failed(&mut self, e: &std::io::Error) {
        self.shared
            .counters
            .accept_errors
            .fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.errors.tick() {
            tracing::warn!(error = %e, failures = n, "admin API: accept failed; retrying");
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(BACKOFF.1);
    }
}

/// A listener the admin API accepts connections on.
trait Listener: Send + 'static {
    /// The connections it hands out.
    type Conn: AsyncRead + AsyncWrite + Send + 'static;
    /// Where its requests come from.
    fn peer(&self) -> Peer;
    /// The next connection.
    fn next(&self) -> impl std::future::Future<Output = std::io::Result<Self::Conn>> + Send;
    /// Tells a connection past the cap it is refused (one non-blocking write).
    fn refuse(c: &Self::Conn);
}

impl Listener for (tokio::net::TcpListener, std::net::SocketAddr) {
    type Conn = tokio::net::TcpStream;
    fn peer(&self) -> Peer {
        Peer::Tcp(self.1)
    }
    async fn next(&self) -> std::io::Result<Self::Conn> {
        let (s, _) = self.0.accept().await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
    fn refuse(c: &Self::Conn) {
        let _ = c.try_write(BUSY);
    }
}

impl Listener for tokio::net::UnixListener {
    type Conn = tokio::net::UnixStream;
    fn peer(&self) -> Peer {
        Peer::Unix
    }
    async fn next(&self) -> std::io::Result<Self::Conn> {
        Ok(self.accept().await?.0)
    }
    fn refuse(c: &Self::Conn) {
        let _ = c.try_write(BUSY);
    }
}

/// Accepts on `l` until the server stops: each connection served on a
/// task of its own while under the cap, refused past it.
async fn accept<L: Listener>(l: L, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut gate = Gate::new(shared.clone());
    loop {
        let accepted = tokio::select! {
            r = l.next() => r,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok(c) => match gate.admit() {
                Some(permit) => {
                    tokio::spawn(serve(c, l.peer(), shared.clone(), permit, stop.clone()));
                }
                None => L::refuse(&c),
            },
            Err(e) => gate.failed(&e).await,
        }
    }
}

/// Serves one connection until it closes, times out or the server stops.
async fn serve<I>(
    io: I,
    peer: Peer,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut io = tokio_io_timeout::TimeoutStream::new(io);
    io.set_read_timeout(Some(IDLE_TIMEOUT));
    io.set_write_timeout(Some(IDLE_TIMEOUT));
    let io = TokioIo::new(Box::pin(io));
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        async move {
            if let Some(page) = console::serve(req.method(), req.uri().path()) {
                return Ok::<_, Infallible>(page);
            }
            Ok(response(answer(req, peer, &shared).await))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "admin API connection ended");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

/// The reply to one request.
async fn answer(req: Request<Incoming>, peer: Peer, shared: &Shared) -> ApiReply {
    let (parts, body) = req.into_parts();
    let token = shared.token();
    let path = parts.uri.path();
    if let Err(refused) =
        access::check_path(&parts.method, path, &parts.headers, peer, token.as_deref())
    {
        return refused;
    }
    let bytes =
        match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
            Err(_) => return ApiReply::error(408, "the body did not arrive in time"),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return ApiReply::error(413, format!("the body is larger than {MAX_BODY} bytes"))
            }
            Ok(Err(_)) => return ApiReply::error(400, "the body could not be read"),
            Ok(Ok(c)) => c.to_bytes(),
        };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        return ApiReply::error(400, "the body is not UTF-8 text");
    };
    let url = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let call = match routes::route(parts.method.as_str(), url, body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (tx, rx) = oneshot::channel();
    if shared
        .control
        .send((call, tx, Instant::now() + CONTROL_TIMEOUT))
        .is_err()
    {
        return ApiReply::error(503, "dnlb is shutting down");
    }
    let reply = match tokio::time::timeout(CONTROL_TIMEOUT, rx).await {
        Ok(Ok(r)) => r,
        _ => ApiReply::error(503, "the control thread did not answer; nothing was done"),
    };
    tracing::debug!(method = %parts.method, url, status = reply.status, "admin API");
    reply
}

fn response(reply: ApiReply) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(reply.status)
        .header(hyper::header::CONTENT_TYPE, reply.content_type)
        .header(hyper::header::CACHE_CONTROL, "no-store");
    if reply.authenticate {
        b = b.header(hyper::header::WWW_AUTHENTICATE, "Bearer realm=\"dnlb\"");
    }
    b.body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| {
            let mut r = Response::new(Full::new(Bytes::from_static(b"internal error")));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}

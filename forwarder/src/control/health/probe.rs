//! One probe of one backend, async, under one deadline for all of it.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use dnlb_config::Probe;
use http_body_util::Empty;
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UdpSocket};

/// Why a probe failed: only logged (at debug level), every kind is a failure.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No answer (connect, request and answer together) within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// A socket call failed: refused, unreachable, out of file descriptors...
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The HTTP exchange failed (malformed answer, closed early...).
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The HTTP request could not be built (a path that is not a URI).
    #[error("HTTP request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The HTTP status is not an expected one.
    #[error("HTTP status {0}")]
    Status(u16),
}

/// Runs one probe against `addr`: Ok if the backend answered as healthy
/// before `timeout` ran out, counted from the start (connect, send and
/// answer all fit in it, so a backend that trickles its answer fails at the
/// deadline).
pub async fn probe(addr: SocketAddr, probe: &Probe, timeout: Duration) -> Result<(), ProbeError> {
    let run = async {
        match probe {
            Probe::Tcp => TcpStream::connect(addr)
                .await
                .map(drop)
                .map_err(ProbeError::from),
            Probe::Http {
                path,
                expected_status,
            } => {
                let status = http_status(addr, path).await?;
                if expected_status.contains(&status) {
                    Ok(())
                } else {
                    Err(ProbeError::Status(status))
                }
            }
            Probe::Udp { payload } => udp_reply(addr, payload).await,
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or(Err(ProbeError::Timeout(timeout)))
}

/// `GET path` over a fresh connection; the answer's status. The body is not
/// read: the connection is dropped with the status line.
async fn http_status(addr: SocketAddr, path: &str) -> Result<u16, ProbeError> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let req = Request::get(path)
        // `SocketAddr` shows an IPv6 address in brackets, as Host wants.
        .header(HOST, addr.to_string())
        .header(USER_AGENT, "dnlb-health")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())?;
    // The connection is driven here, not in a task of its own, so it goes
    // when the probe ends (or times out).
    let mut conn = std::pin::pin!(conn);
    let mut answer = std::pin::pin!(sender.send_request(req));
    let resp = tokio::select! {
        biased;
        r = &mut answer => r?,
        // The connection ended first (closed, or done with a short answer in
        // the same poll): the answer, if any, is waiting; else an error is.
        _ = &mut conn => answer.await?,
    };
    Ok(resp.status().as_u16())
}

/// Sends `payload` from a fresh socket connected to `addr`; Ok on any reply.
/// An ICMP port unreachable comes back as an error on the connected socket.
async fn udp_reply(addr: SocketAddr, payload: &[u8]) -> Result<(), ProbeError> {
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(addr).await?;
    sock.send(payload).await?;
    let mut buf = [0u8; 1500];
    sock.recv(&mut buf).await?;
    Ok(())
}

//! Who may do what, decided from a request's headers before its body is
//! read:
//!
//! - On the Unix socket (mode 0600: only who can open it) everything is
//!   allowed.
//! - Over TCP, writes (any method but GET and HEAD) need the bearer token;
//!   reads need it too unless the API listens on loopback.
//! - On a loopback listener the `Host` header must name loopback (a page on
//!   another site that rebinds its name to 127.0.0.1 sends its own name),
//!   and a browser's `Origin` must match `Host` (no cross-origin calls).
//! - A write's body must be JSON (`Content-Type: application/json`): a
//!   browser's cross-origin `text/plain` or form POST never reaches a
//!   handler.
//!
//! Refusals name no path or setting of the gateway.

use std::net::{IpAddr, SocketAddr};

use hyper::header::{HeaderMap, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN};
use hyper::Method;
use subtle::ConstantTimeEq;

use super::reply::ApiReply;

/// Where a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The TCP listener at this address.
    Tcp(SocketAddr),
    /// The Unix socket.
    Unix,
}

/// Whether the request may go on; the refusal otherwise.
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    peer: Peer,
    token: Option<&str>,
) -> Result<(), ApiReply> {
    check_path(method, "/", headers, peer, token)
}

/// [`check`] for a request to `path`: reads of a [`secret`] path need the
/// token like writes.
pub fn check_path(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    peer: Peer,
    token: Option<&str>,
) -> Result<(), ApiReply> {
    let write = !matches!(*method, Method::GET | Method::HEAD);
    if let Peer::Tcp(listen) = peer {
        let loopback = listen.ip().is_loopback();
        if loopback {
            host_and_origin(headers)?;
        }
        bearer(headers, token, write || !loopback || secret(path))?;
    }
    if write {
        json_body(headers)?;
    }
    Ok(())
}

/// Whether a read gives out packet contents (a capture file), which need
/// the token even on loopback, like writes.
pub fn secret(path: &str) -> bool {
    path.trim_end_matches('/') == "/v1/capture/pcapng"
}

/// A header's value as text, if it is there and is text.
fn header(headers: &HeaderMap, name: hyper::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The host part of `host[:port]` (brackets kept off IPv6 literals).
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

/// Whether `host` names loopback.
fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

fn host_and_origin(headers: &HeaderMap) -> Result<(), ApiReply> {
    let refused = || ApiReply::error(403, "the Host header does not name this gateway");
    // HTTP/1.0 clients may leave Host out; browsers never do.
    let host = match headers.get(HOST) {
        None => return Ok(()),
        Some(h) => h.to_str().map_err(|_| refused())?,
    };
    if !is_loopback_name(host_of(host)) {
        return Err(refused());
    }
    if let Some(origin) = header(headers, ORIGIN) {
        let authority = origin
            .split_once("://")
            .map_or("", |(_, rest)| rest.trim_end_matches('/'));
        if !authority.eq_ignore_ascii_case(host) {
            return Err(ApiReply::error(403, "cross-origin requests are refused"));
        }
    }
    Ok(())
}

fn bearer(headers: &HeaderMap, token: Option<&str>, needed: bool) -> Result<(), ApiReply> {
    let given = header(headers, AUTHORIZATION).and_then(|v| {
        let (scheme, cred) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| cred.trim())
    });
    let refused = |why: &str| {
        let mut r = ApiReply::error(401, why);
        r.authenticate = true;
        r
    };
    match (given, token) {
        // A wrong token is refused even where none is needed.
        (Some(g), Some(t)) => {
            if bool::from(g.as_bytes().ct_eq(t.as_bytes())) {
                Ok(())
            } else {
                Err(refused("wrong bearer token"))
            }
        }
        (Some(_), None) => Err(refused("wrong bearer token")),
        (None, _) if needed => Err(refused(
            "this request needs the bearer token (Authorization: Bearer TOKEN)",
        )),
        (None, _) => Ok(()),
    }
}

fn json_body(headers: &HeaderMap) -> Result<(), ApiReply> {
    let refused = || ApiReply::error(415, "send the body as Content-Type: application/json");
    match header(headers, CONTENT_TYPE) {
        Some(ct) => {
            let media = ct.split(';').next().unwrap_or("").trim();
            if media.eq_ignore_ascii_case("application/json") {
                Ok(())
            } else {
                Err(refused())
            }
        }
        // No type: only a write without a body (DELETE, POST /v1/reload).
        None => {
            let empty = header(headers, CONTENT_LENGTH).is_none_or(|l| l.trim() == "0")
                && !headers.contains_key(hyper::header::TRANSFER_ENCODING);
            if empty {
                Ok(())
            } else {
                Err(refused())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOP: Peer = Peer::Tcp(SocketAddr::new(
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        9100,
    ));

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn status(method: Method, h: &[(&str, &str)], peer: Peer) -> u16 {
        match check(&method, &headers(h), peer, Some("tok")) {
            Ok(()) => 200,
            Err(r) => r.status,
        }
    }

    #[test]
    fn loopback_reads_are_open_and_writes_need_the_token() {
        let host = ("host", "127.0.0.1:9100");
        assert_eq!(status(Method::GET, &[host], LOOP), 200);
        assert_eq!(status(Method::POST, &[host], LOOP), 401);
        assert_eq!(
            status(Method::POST, &[host, ("authorization", "Bearer tok")], LOOP),
            200
        );
        assert_eq!(
            status(
                Method::POST,
                &[host, ("authorization", "bearer  tok ")],
                LOOP
            ),
            200,
            "scheme case and spaces do not matter"
        );
        assert_eq!(
            status(
                Method::DELETE,
                &[host, ("authorization", "Bearer tok2")],
                LOOP
            ),
            401
        );
        assert_eq!(
            status(Method::GET, &[host, ("authorization", "Bearer nope")], LOOP),
            401,
            "a wrong token is refused even for reads"
        );
    }

    #[test]
    fn off_loopback_reads_need_the_token_and_host_is_not_checked() {
        let public = Peer::Tcp("192.0.2.1:9100".parse().unwrap());
        assert_eq!(status(Method::GET, &[("host", "gw1:9100")], public), 401);
        assert_eq!(
            status(
                Method::GET,
                &[("host", "gw1:9100"), ("authorization", "Bearer tok")],
                public
            ),
            200
        );
    }

    #[test]
    fn the_unix_socket_may_write_without_the_token() {
        assert_eq!(status(Method::POST, &[], Peer::Unix), 200);
        assert_eq!(
            status(Method::POST, &[("content-type", "text/plain")], Peer::Unix),
            415
        );
    }

    #[test]
    fn dns_rebinding_and_cross_origin_calls_are_refused() {
        let auth = ("authorization", "Bearer tok");
        for ok in [
            "localhost",
            "localhost:9100",
            "127.0.0.1",
            "[::1]:9100",
            "127.1.2.3:80",
        ] {
            assert_eq!(status(Method::GET, &[("host", ok)], LOOP), 200, "{ok}");
        }
        for bad in [
            "evil.example:9100",
            "10.0.0.1:9100",
            "[2001:db8::1]:9100",
            "localhost.evil.example",
        ] {
            assert_eq!(status(Method::GET, &[("host", bad)], LOOP), 403, "{bad}");
            assert_eq!(
                status(Method::POST, &[("host", bad), auth], LOOP),
                403,
                "{bad}"
            );
        }
        let host = ("host", "127.0.0.1:9100");
        assert_eq!(
            status(
                Method::GET,
                &[host, ("origin", "http://127.0.0.1:9100")],
                LOOP
            ),
            200,
            "same origin"
        );
        assert_eq!(
            status(
                Method::POST,
                &[host, auth, ("origin", "http://evil.example")],
                LOOP
            ),
            403
        );
    }

    #[test]
    fn writes_carry_json_or_nothing() {
        let h = [("host", "localhost"), ("authorization", "Bearer tok")];
        let with = |extra: &[(&str, &str)]| {
            let mut all = h.to_vec();
            all.extend_from_slice(extra);
            status(Method::POST, &all, LOOP)
        };
        assert_eq!(with(&[]), 200, "no body");
        assert_eq!(with(&[("content-length", "0")]), 200);
        assert_eq!(
            with(&[("content-type", "application/json; charset=utf-8")]),
            200
        );
        assert_eq!(with(&[("content-type", "text/plain")]), 415);
        assert_eq!(
            with(&[("content-type", "application/x-www-form-urlencoded")]),
            415
        );
        assert_eq!(
            with(&[("content-length", "12")]),
            415,
            "a body without a type"
        );
        assert_eq!(
            status(
                Method::POST,
                &[("host", "localhost"), ("content-type", "text/plain")],
                LOOP
            ),
            401,
            "a cross-origin text/plain POST without the token"
        );
    }

    #[test]
    fn refusals_name_no_path() {
        for (m, h) in [
            (Method::POST, vec![("host", "127.0.0.1")]),
            (Method::GET, vec![("host", "evil.example")]),
        ] {
            let r = check(&m, &headers(&h), LOOP, Some("tok")).unwrap_err();
            assert!(
                !r.text().contains('/') || r.text().contains("application/json"),
                "{}",
                r.text()
            );
        }
    }
}

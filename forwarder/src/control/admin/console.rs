//! The web console: a page, its style sheet and its script, embedded in
//! the binary and served by the admin server at `/` (and `/console/`).
//!
//! The assets are static and hold no data: the page reads the JSON API
//! (`/v1/status`) every second and sends changes with the token the
//! operator types into it, so they are served without a token and without
//! a call to the control thread. Every answer carries a strict
//! Content-Security-Policy: scripts, styles and connections from the
//! gateway itself only, no inline code, no frames, no forms posted
//! elsewhere; nothing is fetched from outside.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response};

/// The policy every console asset is served with.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const INDEX: &str = include_str!("console/index.html");
const STYLE: &str = include_str!("console/console.css");
const SCRIPT: &str = include_str!("console/console.js");

/// The asset at `path` and its content type, if there is one.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "/" | "/console" | "/console/" | "/console/index.html" => {
            (INDEX, "text/html; charset=utf-8")
        }
        "/console/console.css" => (STYLE, "text/css; charset=utf-8"),
        "/console/console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return None,
    })
}

/// The answer to a console request (`GET` of a console path), or `None`
/// for anything else, which goes on to the API.
pub fn serve(method: &Method, path: &str) -> Option<Response<Full<Bytes>>> {
    if method != Method::GET {
        return None;
    }
    let (body, content_type) = asset(path)?;
    Response::builder()
        .status(200)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header(hyper::header::CACHE_CONTROL, "no-cache")
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_have_their_types_and_the_policy() {
        for (path, ty) in [
            ("/", "text/html"),
            ("/console/", "text/html"),
            ("/console/console.css", "text/css"),
            ("/console/console.js", "text/javascript"),
        ] {
            let r = serve(&Method::GET, path).unwrap();
            assert_eq!(r.status(), 200);
            let h = r.headers();
            assert!(
                h["content-type"].to_str().unwrap().starts_with(ty),
                "{path}"
            );
            assert_eq!(h["content-security-policy"], CSP);
            assert_eq!(h["x-content-type-options"], "nosniff");
        }
        assert!(serve(&Method::GET, "/console/nope.js").is_none());
        assert!(serve(&Method::POST, "/").is_none());
        assert!(serve(&Method::GET, "/v1/status").is_none());
    }

    #[test]
    fn the_page_loads_nothing_from_outside_and_has_no_inline_code() {
        for (text, _) in ["/", "/console/console.css", "/console/console.js"]
            .iter()
            .filter_map(|p| asset(p))
        {
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
        assert!(!INDEX.contains("<script>") && !INDEX.contains("style="));
        // No inline event handlers (` onclick="`, ...).
        let handler = INDEX.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with("=")
        });
        assert!(!handler);
        assert!(INDEX.contains("src=\"/console/console.js\""));
    }
}

//! `[sync]`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::fields::in_range;
use crate::error::Collector;
use crate::model::{ExceptionSync, SYNC_KEY_MAX_BYTES, SYNC_KEY_MIN_BYTES};
use crate::raw::RawSync;

/// `batch_ms` when not given.
pub const DEFAULT_SYNC_BATCH_MS: u32 = 100;
/// `max_bytes_per_sec_per_peer` when not given.
pub const DEFAULT_SYNC_BYTES_PER_SEC: u32 = 1_000_000;
/// `max_queued` when not given.
pub const DEFAULT_SYNC_MAX_QUEUED: u32 = 100_000;
/// `max_held` when not given.
pub const DEFAULT_SYNC_MAX_HELD: u32 = 262_144;
/// `fetch_timeout_ms` when not given.
pub const DEFAULT_SYNC_FETCH_TIMEOUT_MS: u32 = 2000;

fn path(c: &Collector<'_>, s: &Spanned<String>) -> PathBuf {
    c.file()
        .parent()
        .unwrap_or(Path::new("."))
        .join(s.get_ref())
}

/// Why the key file at `p` cannot be used, if it cannot. Read here, as the
/// admin token file is, so `dnlb check` tells; `dnlb run` reads it again
/// when it starts the sync endpoint.
fn key_problem(p: &Path) -> Option<String> {
    let len = match std::fs::metadata(p) {
        Ok(m) => m.len(),
        Err(e) => return Some(format!("cannot read {}: {e}", p.display())),
    };
    if len > SYNC_KEY_MAX_BYTES as u64 {
        return Some(format!(
            "{} is {len} bytes; a key is at most {SYNC_KEY_MAX_BYTES} (is it the right file?)",
            p.display()
        ));
    }
    match std::fs::read(p) {
        Err(e) => Some(format!("cannot read {}: {e}", p.display())),
        Ok(k) if k.len() < SYNC_KEY_MIN_BYTES => Some(format!(
            "{} is {} bytes; a key is at least {SYNC_KEY_MIN_BYTES} random bytes \
             (e.g. head -c 32 /dev/urandom > FILE)",
            p.display(),
            k.len()
        )),
        Ok(_) => None,
    }
}

fn key_file(c: &mut Collector<'_>, s: &Spanned<String>, key: &str) -> PathBuf {
    if s.get_ref().is_empty() {
        c.push(Some(s.span()), key, "give a path");
        return PathBuf::new();
    }
    let p = path(c, s);
    if let Some(problem) = key_problem(&p) {
        c.push(Some(s.span()), key, problem);
    }
    p
}

fn listen(c: &mut Collector<'_>, s: &Spanned<String>) -> Option<SocketAddr> {
    let Ok(a) = s.get_ref().parse::<SocketAddr>() else {
        c.push(
            Some(s.span()),
            "sync.listen",
            format!(
                "{:?} is not an address and port, e.g. \"10.0.0.1:7946\" or \"[2001:db8::1]:7946\"",
                s.get_ref()
            ),
        );
        return None;
    };
    if a.port() == 0 {
        c.push(
            Some(s.span()),
            "sync.listen",
            "give a port: the peers send to it",
        );
    }
    Some(a)
}

fn peers(
    c: &mut Collector<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
    me: Option<SocketAddr>,
) -> Vec<SocketAddr> {
    if list.get_ref().is_empty() {
        c.push(
            Some(list.span()),
            "sync.peers",
            "give at least one peer (without peers, leave [sync] out)",
        );
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in list.get_ref().iter().enumerate() {
        let key = format!("sync.peers[{i}]");
        let Ok(a) = s.get_ref().parse::<SocketAddr>() else {
            c.push(
                Some(s.span()),
                key,
                format!("{:?} is not an address and port", s.get_ref()),
            );
            continue;
        };
        let problem = if a.port() == 0 || a.ip().is_unspecified() {
            Some("is not an address to send to (no port or no address)".to_string())
        } else if me.is_some_and(|m| m.is_ipv4() != a.is_ipv4()) {
            Some("must be of sync.listen's address family".to_string())
        } else if me == Some(a) {
            Some("is this gateway's own sync.listen".to_string())
        } else if !seen.insert(a) {
            Some("is listed twice".to_string())
        } else {
            None
        };
        match problem {
            Some(p) => c.push(Some(s.span()), key, format!("{a} {p}")),
            None => out.push(a),
        }
    }
    out
}

pub(super) fn sync(c: &mut Collector<'_>, s: &RawSync) -> ExceptionSync {
    let me = listen(c, &s.listen);
    let peers = peers(c, &s.peers, me);
    let key = key_file(c, &s.key_file, "sync.key_file");
    let previous = s
        .previous_key_file
        .as_ref()
        .map(|p| (p.span(), key_file(c, p, "sync.previous_key_file")));
    if let Some((span, p)) = &previous {
        if *p == key {
            c.push(
                Some(span.clone()),
                "sync.previous_key_file",
                "must differ from key_file (it holds the key before the rotation)",
            );
        }
    }
    let batch = in_range(
        c,
        &s.batch_ms,
        "sync.batch_ms",
        10,
        10_000,
        DEFAULT_SYNC_BATCH_MS,
    );
    let rate = in_range(
        c,
        &s.max_bytes_per_sec_per_peer,
        "sync.max_bytes_per_sec_per_peer",
        1400,
        1_000_000_000,
        DEFAULT_SYNC_BYTES_PER_SEC,
    );
    let max_queued = in_range(
        c,
        &s.max_queued,
        "sync.max_queued",
        1,
        4_194_304,
        DEFAULT_SYNC_MAX_QUEUED,
    );
    let max_held = in_range(
        c,
        &s.max_held,
        "sync.max_held",
        1,
        4_194_304,
        DEFAULT_SYNC_MAX_HELD,
    );
    let fetch = in_range(
        c,
        &s.fetch_timeout_ms,
        "sync.fetch_timeout_ms",
        100,
        60_000,
        DEFAULT_SYNC_FETCH_TIMEOUT_MS,
    );
    ExceptionSync {
        listen: me.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        peers,
        key_file: key,
        previous_key_file: previous.map(|(_, p)| p),
        batch_interval: Duration::from_millis(batch.into()),
        max_bytes_per_sec_per_peer: rate,
        max_queued,
        max_held,
        fetch_timeout: Duration::from_millis(fetch.into()),
    }
}

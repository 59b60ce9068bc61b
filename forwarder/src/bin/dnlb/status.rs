//! `dnlb status`: a running gateway's status from its admin API, as
//! tables (or the raw JSON).

use std::path::PathBuf;
use std::time::Duration;

use dnlb_forwarder::control::status::{RoutesStatus, Status, SyncStatus};

/// `dnlb status`: asks a gateway's admin API and prints what it says; with
/// `wait_serving`, first waits (up to that long) until the gateway serves
/// (see [`not_serving`]).
pub fn run(api: ApiArgs, json: bool, wait_serving: Option<Duration>) -> Result<(), String> {
    let (url, token) = endpoint(api)?;
    let body = match wait_serving {
        None => get(&url, "/v1/status", token.as_deref())?,
        Some(limit) => {
            let deadline = std::time::Instant::now() + limit;
            loop {
                let why = match get(&url, "/v1/status", token.as_deref()) {
                    Ok(body) => match serde_json::from_str::<Status>(&body) {
                        Ok(s) => match not_serving(&s) {
                            None => break body,
                            Some(why) => why,
                        },
                        Err(e) => format!("unexpected answer: {e}"),
                    },
                    Err(e) => e,
                };
                if std::time::Instant::now() >= deadline {
                    return Err(format!("not serving after {limit:?}: {why}"));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    if json {
        outln!("{body}");
        return Ok(());
    }
    let s: Status =
        serde_json::from_str(&body).map_err(|e| format!("{url}: unexpected answer: {e}"))?;
    out!("{}", render_table(&s));
    Ok(())
}

/// How the commands that talk to a gateway find its admin API.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The admin API's URL. Default: from --config's [admin] section,
    /// else http://127.0.0.1:9100.
    #[arg(long)]
    pub api: Option<String>,
    /// Configuration file: the API address and token come from its
    /// [admin] section.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// File holding the bearer token (overrides the config's).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// The admin API's URL and bearer token: `api`, else `config`'s [admin]
/// section (loopback for an unspecified address), else
/// http://127.0.0.1:9100; the token from `token_file`, else the config's.
pub fn endpoint(a: ApiArgs) -> Result<(String, Option<String>), String> {
    let ApiArgs {
        api,
        config,
        token_file,
    } = a;
    let cfg = match &config {
        Some(c) => Some(dnlb_config::load(c).map_err(|e| e.to_string())?),
        None => None,
    };
    let admin = cfg.as_ref().and_then(|c| c.admin.clone());
    let url = api
        .or_else(|| {
            admin.as_ref().map(|a| {
                let mut l = a.listen;
                if l.ip().is_unspecified() {
                    l.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{l}")
            })
        })
        .unwrap_or_else(|| "http://127.0.0.1:9100".into());
    let token = match token_file {
        Some(f) => Some(
            std::fs::read_to_string(&f)
                .map_err(|e| format!("{}: {e}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => admin.and_then(|a| a.token).map(|t| t.0),
    };
    Ok((url, token))
}

/// `GET url + path_and_query`'s body.
pub fn get(url: &str, path_and_query: &str, token: Option<&str>) -> Result<String, String> {
    let mut req = ureq::get(&format!("{}{path_and_query}", url.trim_end_matches('/')))
        .timeout(Duration::from_secs(10));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    match req.call() {
        Ok(r) => r.into_string().map_err(|e| e.to_string()),
        Err(ureq::Error::Status(code, r)) => Err(format!(
            "{url}: HTTP {code}: {}",
            r.into_string().unwrap_or_default().trim()
        )),
        Err(e) => Err(format!(
            "{url}: {e} (is dnlb running with an [admin] section?)"
        )),
    }
}

/// Why a gateway does not serve yet (`None`: it does): BIRD has not
/// confirmed every VIP dnlb wants announced, or a new version is still
/// staged (flow-exception sync). What a rolling restart waits for before
/// the next gateway goes (docs/operations.md).
pub fn not_serving(s: &Status) -> Option<String> {
    if let Some(r) = &s.routes {
        if !r.up || r.pending || r.announced.as_deref() != Some(&r.wanted[..]) {
            return Some(format!(
                "BIRD has not confirmed the VIPs ({})",
                routes_line(r).trim_end()
            ));
        }
    }
    if s.sync.as_ref().is_some_and(|y| y.staged) {
        return Some("a new version is staged".into());
    }
    None
}

/// Flow-exception sync in a line.
fn sync_line(y: &SyncStatus) -> String {
    let rejected: u64 = y.rejected.values().sum();
    format!(
        "sync: {}exceptions found {} shared {}; learned {} (held {}, used {}); pinned {}; sent {} msgs, received {}, rejected {}; queue drops {}, held {}\n",
        if y.staged { "STAGED; " } else { "" },
        y.exceptions_found,
        y.shared,
        y.learned,
        y.learned_entries,
        y.learned_used,
        y.pinned,
        y.sent_messages,
        y.received_messages,
        rejected,
        y.queue_drops,
        y.held
    )
}

/// Lays out rows as left-aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// BIRD's state in a line (two when something waits for BIRD).
fn routes_line(r: &RoutesStatus) -> String {
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    let state = match (r.up, r.attempts) {
        (true, _) => "up".to_string(),
        (false, 0) => "not tried yet".to_string(),
        (false, _) => format!("DOWN ({} failures in a row)", r.consecutive_failures),
    };
    let mut out = format!(
        "routes: BIRD {state} at {}; announced {}; {} attempts, {} failed\n",
        r.bird_socket,
        r.announced.as_deref().map_or("nothing yet".into(), list),
        r.attempts,
        r.failures
    );
    if r.pending {
        out.push_str(&format!(
            "  waiting for BIRD to announce {}\n",
            list(&r.wanted)
        ));
    }
    if let (false, Some(e)) = (r.up, &r.last_error) {
        out.push_str(&format!(
            "  last error ({}): {e}\n",
            r.last_error_at.as_deref().unwrap_or("-")
        ));
    }
    out
}

/// `dnlb status`: the status as readable tables.
/// Listeners' access lists and limits, and the exception path's classes:
/// one line each, only what is configured or counted.
fn protection_lines(s: &Status) -> String {
    let mut out = String::new();
    for l in &s.listeners {
        if let Some(acl) = &l.acl {
            let mut parts: Vec<String> = acl
                .rules
                .iter()
                .map(|r| format!("{} {} ({})", r.action, r.prefix, r.packets))
                .collect();
            parts.push(format!("default {} ({})", acl.default, acl.default_packets));
            out.push_str(&format!("acl {}: {}\n", l.name, parts.join(", ")));
        }
        if let Some(lim) = &l.limits {
            let mut parts = Vec::new();
            if let Some(r) = lim.new_flows_per_sec {
                let b = lim.new_flows_burst.unwrap_or(r);
                parts.push(format!("{r} new flows/s (burst {b})"));
            }
            if let Some(r) = lim.source_new_flows_per_sec {
                let b = lim.source_new_flows_burst.unwrap_or(r);
                parts.push(format!("{r} new flows/s per source (burst {b})"));
            }
            out.push_str(&format!("limits {}: {}\n", l.name, parts.join(", ")));
        }
    }
    if !s.flows.host.is_empty() {
        let parts: Vec<String> = s
            .flows
            .host
            .iter()
            .map(|h| format!("{} {} passed {} dropped", h.class, h.passed, h.dropped))
            .collect();
        out.push_str(&format!("exception path: {}\n", parts.join("; ")));
    }
    out
}

pub fn render_table(s: &Status) -> String {
    let mut out = format!(
        "gateway {} (zone {}), config generation {}, up {:.0} s, reloads {} ok / {} rejected\n",
        s.gateway,
        s.zone.as_deref().unwrap_or("-"),
        s.generation,
        s.uptime_secs,
        s.reloads_ok,
        s.reloads_rejected
    );
    for w in &s.workers {
        // Busy time: loop iterations that received packets (a busy-polling
        // worker's CPU use says nothing of its load).
        out.push_str(&format!(
            "worker lcore {}: rx {} tx {} dropped {}; busy {:.1} s ({:.1} % of uptime)\n",
            w.lcore,
            w.rx_packets,
            w.tx_packets,
            w.dropped,
            w.busy_seconds,
            100.0 * w.busy_seconds / s.uptime_secs.max(1e-9)
        ));
    }
    for p in &s.ports {
        out.push_str(&format!(
            "port {}: rx {} tx {} missed {} rx_errors {} tx_errors {} no_mbuf {}\n",
            p.name, p.rx_packets, p.tx_packets, p.rx_missed, p.rx_errors, p.tx_errors, p.rx_no_mbuf
        ));
    }
    let f = &s.flows;
    out.push_str(&format!(
        "flows: {} tracked of {}; created {}, table full {}, rescheduled {}\n",
        f.entries, f.capacity, f.created, f.table_full, f.rescheduled
    ));
    let drops: Vec<String> = s
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r}={n}"))
        .collect();
    if !drops.is_empty() {
        out.push_str(&format!("drops: {}\n", drops.join(" ")));
    }
    if let Some(r) = &s.routes {
        out.push_str(&routes_line(r));
    }
    if let Some(y) = &s.sync {
        out.push_str(&sync_line(y));
    }
    if !s.counters_fresh {
        out.push_str("(some workers did not answer in time: counters may be a little old)\n");
    }
    out.push('\n');
    let mut rows = vec![[
        "LISTENER",
        "ADDRESSES",
        "PROTO",
        "PORT",
        "GROUP",
        "NEW-FLOW BACKENDS",
        "PACKETS",
        "BYTES",
        "DROPS",
    ]
    .map(String::from)
    .to_vec()];
    for l in &s.listeners {
        let mut addrs = l.vips.join(",");
        if let Some(e) = &l.elastic_ip {
            addrs.push_str(&format!(",{e} (elastic)"));
        }
        rows.push(vec![
            l.name.clone(),
            addrs,
            l.protocol.clone(),
            l.port.map_or("all".into(), |p| p.to_string()),
            l.target_group.clone(),
            l.backends_taking_new_flows.to_string(),
            l.packets.to_string(),
            l.bytes.to_string(),
            l.drops
                .iter()
                .map(|(r, n)| format!("{r}={n}"))
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str(&protection_lines(s));
    out.push('\n');
    let mut rows = vec![[
        "GROUP", "BACKEND", "PORT", "ZONE", "TUNNEL", "WEIGHT", "STATE", "PACKETS", "BYTES", "NOTE",
    ]
    .map(String::from)
    .to_vec()];
    for b in &s.backends {
        let mut note = Vec::new();
        if let Some(d) = &b.drain_until {
            note.push(format!("drain until {d}"));
        }
        if b.runtime {
            note.push("changed at run time".to_string());
        }
        rows.push(vec![
            b.target_group.clone(),
            b.address.clone(),
            b.port.to_string(),
            b.zone.clone().unwrap_or_else(|| "-".into()),
            b.tunnel.clone(),
            b.weight.to_string(),
            b.state().to_string(),
            b.packets.to_string(),
            b.bytes.to_string(),
            note.join("; "),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str(&changes_lines(s));
    out
}

/// The run-time changes in effect and the stale ones, if any.
fn changes_lines(s: &Status) -> String {
    let mut out = String::new();
    if !s.runtime_changes.is_empty() || !s.stale_changes.is_empty() {
        out.push_str(&format!(
            "\nrun-time changes (kept in {}):\n",
            s.runtime_file.as_deref().unwrap_or("-")
        ));
        for c in &s.runtime_changes {
            out.push_str(&format!("  {c}\n"));
        }
        for c in &s.stale_changes {
            out.push_str(&format!("  stale: {c}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_serves_once_bird_confirmed_its_vips_and_nothing_is_staged() {
        let mut s = Status::default();
        assert_eq!(not_serving(&s), None, "no [routing], no [sync]");
        s.routes = Some(RoutesStatus {
            up: true,
            announced: None,
            wanted: vec!["192.0.2.10".into()],
            ..Default::default()
        });
        assert!(not_serving(&s).unwrap().contains("BIRD has not confirmed"));
        let r = s.routes.as_mut().unwrap();
        r.announced = Some(vec!["192.0.2.10".into()]);
        assert_eq!(not_serving(&s), None);
        s.routes.as_mut().unwrap().pending = true;
        assert!(not_serving(&s).is_some(), "a change waits for BIRD");
        s.routes.as_mut().unwrap().pending = false;
        s.routes.as_mut().unwrap().up = false;
        assert!(not_serving(&s).is_some(), "BIRD down");
        s.routes.as_mut().unwrap().up = true;
        s.sync = Some(SyncStatus {
            staged: true,
            ..Default::default()
        });
        assert_eq!(not_serving(&s).as_deref(), Some("a new version is staged"));
        s.sync.as_mut().unwrap().staged = false;
        assert_eq!(not_serving(&s), None);
        assert!(render_table(&s).contains("sync: exceptions found 0"));
    }

    #[test]
    fn routes_line_says_whether_bird_is_up_and_what_waits() {
        let mut r = RoutesStatus {
            bird_socket: "/run/bird/bird.ctl".into(),
            up: true,
            announced: Some(vec!["192.0.2.10".into(), "198.51.100.77".into()]),
            wanted: vec!["192.0.2.10".into(), "198.51.100.77".into()],
            attempts: 3,
            ..Default::default()
        };
        assert_eq!(
            routes_line(&r),
            "routes: BIRD up at /run/bird/bird.ctl; announced [192.0.2.10, 198.51.100.77]; 3 attempts, 0 failed\n"
        );
        r.up = false;
        r.pending = true;
        r.wanted = vec![];
        r.attempts = 5;
        r.failures = 2;
        r.consecutive_failures = 2;
        r.last_error =
            Some("BIRD control socket /run/bird/bird.ctl: BIRD did not answer in time".into());
        r.last_error_at = Some("2026-12-06T03:00:00Z".into());
        assert_eq!(
            routes_line(&r),
            "routes: BIRD DOWN (2 failures in a row) at /run/bird/bird.ctl; announced [192.0.2.10, 198.51.100.77]; 5 attempts, 2 failed\n\
             \x20 waiting for BIRD to announce []\n\
             \x20 last error (2026-12-06T03:00:00Z): BIRD control socket /run/bird/bird.ctl: BIRD did not answer in time\n"
        );
        let fresh = RoutesStatus::default();
        assert!(routes_line(&fresh)
            .starts_with("routes: BIRD not tried yet at ; announced nothing yet;"));
    }
}

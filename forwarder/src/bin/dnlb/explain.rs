//! `dnlb explain`: where a running gateway sends a flow and why, from its
//! admin API (`GET /v1/explain`), as readable lines (or the raw JSON).

use std::fmt::Write as _;
use std::net::SocketAddr;

use dnlb_forwarder::control::explain::{BackendRef, EntryView, Explanation, TableView};

/// A flow's transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// `dnlb explain`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The client: ADDR:PORT.
    src: SocketAddr,
    /// The destination (a VIP): ADDR:PORT.
    dst: SocketAddr,
    /// Transport protocol.
    #[arg(long, value_enum, default_value_t = Proto::Tcp)]
    proto: Proto,
    /// How to reach the gateway's admin API.
    #[command(flatten)]
    api: super::status::ApiArgs,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

/// Asks the gateway and prints its answer.
pub fn run(a: Args) -> Result<(), String> {
    let (url, token) = super::status::endpoint(a.api)?;
    let path = format!(
        "/v1/explain?src={}&sport={}&dst={}&dport={}&proto={}",
        a.src.ip(),
        a.src.port(),
        a.dst.ip(),
        a.dst.port(),
        match a.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    );
    let body = super::status::get(&url, &path, token.as_deref())?;
    if a.json {
        outln!("{body}");
        return Ok(());
    }
    let e: Explanation =
        serde_json::from_str(&body).map_err(|e| format!("{url}: unexpected answer: {e}"))?;
    out!("{}", render(&e));
    Ok(())
}

/// `addr:port`, IPv6 in brackets.
fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

fn backend(b: &BackendRef) -> String {
    let mut s = match b.address {
        Some(a) => a.to_string(),
        None => "(no longer configured)".into(),
    };
    let _ = write!(s, " (");
    if let Some(g) = &b.target_group {
        let _ = write!(s, "{g}, ");
    }
    let _ = write!(s, "id {}", b.id);
    if let Some(z) = &b.zone {
        let _ = write!(s, ", zone {z}");
    }
    if !b.usable {
        let _ = write!(s, ", UNUSABLE");
    } else if !b.takes_new_flows {
        let _ = write!(s, ", no new flows");
    }
    s.push(')');
    s
}

fn table(t: &TableView) -> String {
    let mut s = format!("generation {}: ", t.generation);
    match (&t.scheduler, &t.hash, t.slot, t.table_size) {
        (Some(sched), Some(h), Some(slot), Some(size)) => {
            let to = t.backend.as_ref().map_or("no backend".into(), backend);
            let _ = write!(s, "{sched} hash {h}, slot {slot} of {size} -> {to}");
        }
        _ => {
            let _ = write!(s, "{}", t.matched.replace('_', " "));
            if let Some(l) = &t.listener {
                let _ = write!(s, " (listener {l})");
            }
        }
    }
    s
}

fn entry(e: &EntryView) -> String {
    let mut s = format!(
        "{}, {:.1} s left",
        backend(&e.backend),
        f64::from(e.remaining_ms) / 1000.0
    );
    for (on, what) in [
        (e.closing, "closing"),
        (e.pinned, "pinned"),
        (!e.usable, "unusable: scheduled anew"),
    ] {
        if on {
            let _ = write!(s, ", {what}");
        }
    }
    s
}

/// The answer as readable lines.
pub fn render(e: &Explanation) -> String {
    let f = &e.flow;
    let mut s = format!(
        "flow      {} {} -> {}\n",
        f.proto,
        endpoint(f.src, f.sport),
        endpoint(f.dst, f.dport)
    );
    if let Some(l) = &e.current_table.listener {
        let _ = writeln!(s, "listener  {l}");
    }
    let to = e.backend.as_ref().map_or("nowhere".into(), backend);
    let _ = writeln!(s, "goes to   {to}");
    for (i, r) in e.reasons.iter().enumerate() {
        let head = if i == 0 { "because  " } else { "         " };
        let _ = writeln!(s, "{head} {}: {}", r.reason, r.text);
    }
    let _ = writeln!(s, "current   {}", table(&e.current_table));
    if let Some(p) = &e.previous_table {
        let _ = writeln!(s, "previous  {}", table(p));
    }
    if let Some(st) = &e.staged {
        let _ = writeln!(
            s,
            "staged    {} (used in {} ms)",
            table(&st.table),
            st.due_in_ms
        );
    }
    for w in &e.workers {
        let _ = write!(s, "worker {} (lcore {}): ", w.worker, w.lcore);
        if !w.answered {
            let _ = writeln!(s, "did not answer");
            continue;
        }
        let flow = w.flow.as_ref().map_or("not tracked".into(), entry);
        let _ = write!(s, "flow table: {flow}");
        if w.sync {
            let learned = w.learned.as_ref().map_or("none".into(), entry);
            let _ = write!(s, "; learned: {learned}");
        }
        s.push('\n');
    }
    s
}

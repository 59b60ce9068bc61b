//! `dnlb capture`: arms a capture on a running gateway (`POST
//! /v1/capture`), waits until its budget of packets or seconds is spent
//! (`GET /v1/capture`) and writes the pcapng file (`GET
//! /v1/capture/pcapng`).

use std::io::Read as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dnlb_forwarder::control::capture::{CaptureRequest, CaptureStatus};

/// Largest file accepted from the gateway (20000 packets of 512 bytes
/// each way, with room for the blocks' headers and comments).
const MAX_FILE: u64 = 64 << 20;

/// `dnlb capture`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Source address or prefix (198.51.100.7, 198.51.100.0/24, 2001:db8::/32).
    #[arg(long)]
    src: Option<String>,
    /// Destination address or prefix (e.g. a VIP).
    #[arg(long)]
    dst: Option<String>,
    /// Source port.
    #[arg(long)]
    sport: Option<u16>,
    /// Destination port.
    #[arg(long)]
    dport: Option<u16>,
    /// Protocol: tcp, udp, icmp, icmpv6 or a number.
    #[arg(long)]
    proto: Option<String>,
    /// Packets to keep (at most 20000).
    #[arg(long, default_value_t = 1000)]
    packets: u64,
    /// Seconds to run (at most 3600).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The pcapng file to write.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: PathBuf,
    /// How to reach the gateway's admin API.
    #[command(flatten)]
    api: super::status::ApiArgs,
}

fn call(
    req: ureq::Request,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<ureq::Response, String> {
    let req = match token {
        Some(t) => req.set("Authorization", &format!("Bearer {t}")),
        None => req,
    };
    let r = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    match r {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(code, r)) => Err(format!(
            "HTTP {code}: {}",
            r.into_string().unwrap_or_default().trim()
        )),
        Err(e) => Err(format!("{e} (is dnlb running with an [admin] section?)")),
    }
}

fn status(r: ureq::Response) -> Result<CaptureStatus, String> {
    r.into_json().map_err(|e| format!("unexpected answer: {e}"))
}

/// Arms the capture, waits for it and writes the file.
pub fn run(a: Args) -> Result<(), String> {
    let (url, token) = super::status::endpoint(a.api)?;
    let url = url.trim_end_matches('/').to_string();
    let token = token.as_deref();
    let req = CaptureRequest {
        src: a.src,
        dst: a.dst,
        sport: a.sport,
        dport: a.dport,
        proto: a.proto,
        packets: Some(a.packets),
        seconds: Some(a.seconds),
    };
    req.clone().validate()?;
    let body = serde_json::to_string(&req).map_err(|e| e.to_string())?;
    let at = |p: &str| format!("{url}{p}");
    let timeout = Duration::from_secs(10);
    status(call(
        ureq::post(&at("/v1/capture")).timeout(timeout),
        token,
        Some(&body),
    )?)?;
    errln!(
        "dnlb capture: armed on {url} for {} packets or {} s",
        a.packets,
        a.seconds
    );
    // The gateway disarms on its own; the wait ends a little after.
    let deadline = Instant::now() + Duration::from_secs(a.seconds + 5);
    let last = loop {
        std::thread::sleep(Duration::from_millis(200));
        let st = status(call(
            ureq::get(&at("/v1/capture")).timeout(timeout),
            token,
            None,
        )?)?;
        if !st.armed {
            break st;
        }
        if Instant::now() >= deadline {
            break status(call(
                ureq::delete(&at("/v1/capture")).timeout(timeout),
                token,
                None,
            )?)?;
        }
    };
    let r = call(
        ureq::get(&at("/v1/capture/pcapng")).timeout(timeout),
        token,
        None,
    )?;
    let mut file = Vec::new();
    r.into_reader()
        .take(MAX_FILE)
        .read_to_end(&mut file)
        .map_err(|e| format!("reading the capture: {e}"))?;
    std::fs::write(&a.write, &file).map_err(|e| format!("{}: {e}", a.write.display()))?;
    outln!(
        "{} packets ({} frames) written to {}; ended: {}; not recorded (a worker's ring was full): {}",
        last.packets,
        last.frames,
        a.write.display(),
        last.ended.as_deref().unwrap_or("?"),
        last.dropped
    );
    Ok(())
}

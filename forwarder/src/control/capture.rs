//! One-flow capture, the control side: `POST /v1/capture` arms a filter on
//! the workers' [`CaptureBoard`] with a budget of packets and seconds; each
//! control tick drains the workers' rings, keeps the records of this
//! capture up to the budget and disarms when the budget is spent or the
//! time is up; `GET /v1/capture/pcapng` writes what was kept as pcapng:
//! interface 0 (`rx`) holds frames as received, interface 1 (`tx`) frames
//! as they left, each with the decision as a comment and the direction in
//! its flags. Memory is bounded: at most [`MAX_PACKETS`] packets of at most
//! `SNAP_LEN` bytes each way.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dnlb_dataplane::capture::{Decision, Direction, Prefix, Record, SNAP_LEN};
use dnlb_dataplane::{CaptureBoard, CaptureFilter};
use dnlb_lb::ids::BackendId;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use serde::{Deserialize, Serialize};

/// Most packets a capture keeps.
pub const MAX_PACKETS: u64 = 20_000;
/// Longest a capture runs.
pub const MAX_SECONDS: u64 = 3600;
const DEFAULT_PACKETS: u64 = 1000;
const DEFAULT_SECONDS: u64 = 60;

/// `POST /v1/capture`'s body: every filter part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// Source address or prefix (`198.51.100.7`, `198.51.100.0/24`, `2001:db8::/32`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// Destination address or prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    /// Source port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    /// Destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// Packets to keep (default 1000, at most 20000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    /// Seconds to run (default 60, at most 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

/// A checked capture request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    /// As asked, with the budget filled in.
    pub request: CaptureRequest,
    /// What workers match.
    pub filter: CaptureFilter,
    /// Packets to keep.
    pub packets: u64,
    /// Seconds to run.
    pub seconds: u64,
}

fn prefix(key: &str, s: &str) -> Result<Prefix, String> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: std::net::IpAddr = a
        .parse()
        .map_err(|_| format!("{key}: {s:?} is not an address or prefix"))?;
    let len = match len {
        None => {
            if addr.is_ipv4() {
                32
            } else {
                128
            }
        }
        Some(l) => l
            .parse()
            .map_err(|_| format!("{key}: {s:?}: bad prefix length"))?,
    };
    Prefix::new(addr, len).ok_or_else(|| format!("{key}: {s:?}: prefix length too long"))
}

fn protocol(s: &str) -> Result<u8, String> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(6),
        "udp" => Ok(17),
        "icmp" => Ok(1),
        "icmpv6" => Ok(58),
        n => n
            .parse()
            .map_err(|_| format!("proto: {s:?}: give tcp, udp, icmp, icmpv6 or a number")),
    }
}

impl CaptureRequest {
    /// Checks the request into a filter and a budget.
    pub fn validate(mut self) -> Result<CaptureSpec, String> {
        let filter = CaptureFilter {
            src: self.src.as_deref().map(|s| prefix("src", s)).transpose()?,
            dst: self.dst.as_deref().map(|s| prefix("dst", s)).transpose()?,
            sport: self.sport,
            dport: self.dport,
            proto: self.proto.as_deref().map(protocol).transpose()?,
        };
        if let (Some(s), Some(d)) = (filter.src, filter.dst) {
            if s.addr().is_ipv4() != d.addr().is_ipv4() {
                return Err("src and dst must be of the same IP family".into());
            }
        }
        let packets = self.packets.unwrap_or(DEFAULT_PACKETS);
        let seconds = self.seconds.unwrap_or(DEFAULT_SECONDS);
        if !(1..=MAX_PACKETS).contains(&packets) {
            return Err(format!("packets: give 1 to {MAX_PACKETS}"));
        }
        if !(1..=MAX_SECONDS).contains(&seconds) {
            return Err(format!("seconds: give 1 to {MAX_SECONDS}"));
        }
        (self.packets, self.seconds) = (Some(packets), Some(seconds));
        Ok(CaptureSpec {
            request: self,
            filter,
            packets,
            seconds,
        })
    }
}

/// `GET /v1/capture`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureStatus {
    /// Workers are copying matching packets.
    pub armed: bool,
    /// The last capture's request (`None`: none since start).
    pub filter: Option<CaptureRequest>,
    /// Seconds since it was armed.
    pub elapsed_secs: f64,
    /// Packets kept.
    pub packets: u64,
    /// Frames in the file (a packet that left has two).
    pub frames: u64,
    /// Matching packets the workers could not record (a ring was full).
    pub dropped: u64,
    /// Why it ended: `packets` (budget spent), `seconds`, `stopped`.
    pub ended: Option<String>,
}

#[derive(Debug)]
struct Session {
    spec: CaptureSpec,
    seq: u64,
    started: Instant,
    wall: SystemTime,
    records: Vec<(usize, Record)>,
    packets: u64,
    /// Ring drops before it started, per worker.
    dropped_before: Vec<u64>,
    dropped: u64,
    ended: Option<&'static str>,
}

/// The control thread's capture state.
#[derive(Debug)]
pub struct Capture {
    board: Arc<CaptureBoard>,
    session: Option<Session>,
    scratch: Vec<Record>,
}

impl Capture {
    /// Capture through the workers' `board`.
    pub fn new(board: Arc<CaptureBoard>) -> Self {
        Capture {
            board,
            session: None,
            scratch: Vec::new(),
        }
    }

    /// Arms `spec`, replacing any capture (its records are discarded).
    pub fn start(&mut self, spec: CaptureSpec) -> CaptureStatus {
        let workers = self.board.workers();
        for w in 0..workers {
            self.board.drain(w, &mut self.scratch);
        }
        self.scratch.clear();
        let seq = self.board.arm(&spec.filter);
        self.session = Some(Session {
            spec,
            seq,
            started: Instant::now(),
            wall: SystemTime::now(),
            records: Vec::new(),
            packets: 0,
            dropped_before: (0..workers).map(|w| self.board.dropped(w)).collect(),
            dropped: 0,
            ended: None,
        });
        self.status()
    }

    /// Disarms the running capture, keeping what it recorded.
    pub fn stop(&mut self) -> CaptureStatus {
        self.tick();
        self.end("stopped");
        self.status()
    }

    fn end(&mut self, why: &'static str) {
        if let Some(s) = self.session.as_mut().filter(|s| s.ended.is_none()) {
            self.board.disarm();
            s.ended = Some(why);
        }
    }

    /// Drains the rings; ends the capture when its budget is spent.
    pub fn tick(&mut self) {
        let Some(s) = self.session.as_mut().filter(|s| s.ended.is_none()) else {
            return;
        };
        for w in 0..self.board.workers() {
            self.board.drain(w, &mut self.scratch);
            // A leaving frame is kept with its received one.
            let mut kept_in = false;
            for r in self.scratch.drain(..) {
                if r.seq != s.seq {
                    continue;
                }
                let keep = match r.direction {
                    Direction::In => s.packets < s.spec.packets,
                    Direction::Out => kept_in,
                };
                if r.direction == Direction::In {
                    kept_in = keep;
                    s.packets += u64::from(keep);
                }
                if keep {
                    s.records.push((w, r));
                }
            }
        }
        s.dropped = (0..self.board.workers())
            .map(|w| self.board.dropped(w) - s.dropped_before[w])
            .sum();
        if s.packets >= s.spec.packets {
            self.end("packets");
        } else if s.started.elapsed() >= Duration::from_secs(s.spec.seconds) {
            self.end("seconds");
        }
    }

    /// Where the capture is.
    pub fn status(&self) -> CaptureStatus {
        let Some(s) = &self.session else {
            return CaptureStatus::default();
        };
        CaptureStatus {
            armed: s.ended.is_none(),
            filter: Some(s.spec.request.clone()),
            elapsed_secs: s.started.elapsed().as_secs_f64(),
            packets: s.packets,
            frames: s.records.len() as u64,
            dropped: s.dropped,
            ended: s.ended.map(String::from),
        }
    }

    /// The records kept as a pcapng file (`None`: no capture since start);
    /// `backend` names a backend in the comments.
    pub fn pcapng(&self, backend: &dyn Fn(BackendId) -> String) -> Option<Vec<u8>> {
        let s = self.session.as_ref()?;
        let mut order: Vec<&(usize, Record)> = s.records.iter().collect();
        order.sort_by_key(|(_, r)| r.ms);
        write_pcapng(s.wall, &order, backend).ok()
    }
}

fn decision_text(d: Decision, backend: &dyn Fn(BackendId) -> String) -> String {
    match d {
        Decision::Backend(b) => format!("backend {}", backend(b)),
        Decision::Reply => "reply".into(),
        Decision::Passed(p) => format!("passed to port {}", p.0),
        Decision::Drop(r) => format!("drop {}", r.name()),
    }
}

fn write_pcapng(
    wall: SystemTime,
    records: &[&(usize, Record)],
    backend: &dyn Fn(BackendId) -> String,
) -> Result<Vec<u8>, pcap_file::PcapError> {
    let mut w = PcapNgWriter::new(Vec::new())?;
    for (name, what) in [
        ("rx", "frames as dnlb's workers received them"),
        ("tx", "frames as they left dnlb's workers"),
    ] {
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: SNAP_LEN as u32,
            options: vec![
                InterfaceDescriptionOption::IfName(name.into()),
                InterfaceDescriptionOption::IfDescription(what.into()),
                // Timestamps in nanoseconds (what the writer stores).
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        })?;
    }
    let epoch = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    for (worker, r) in records {
        let (iface, flags, dir) = match r.direction {
            Direction::In => (0, 1, "in"),
            Direction::Out => (1, 2, "out"),
        };
        let comment = format!(
            "worker {worker} port {} {dir}: {}",
            r.port.0,
            decision_text(r.decision, backend)
        );
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: iface,
            timestamp: epoch + Duration::from_millis(u64::from(r.ms)),
            original_len: r.orig_len,
            data: Cow::Borrowed(&r.data),
            options: vec![
                EnhancedPacketOption::Comment(comment.into()),
                EnhancedPacketOption::Flags(flags),
            ],
        })?;
    }
    Ok(w.into_inner())
}

#[cfg(test)]
mod tests;

//! Route announcements through BIRD. dnlb does not speak BGP itself: it
//! writes the VIPs it can serve as `route A/32 blackhole;` lines into files
//! that BIRD's config includes in a `protocol static` (exported to BGP), and
//! asks BIRD to reconfigure through its control socket. BIRD reconfigures a
//! static protocol in place, so adding or removing a VIP never bounces a BGP
//! session. A VIP is announced while the gateway forwards and one of its
//! listeners has a backend that takes new flows; it is withdrawn otherwise,
//! on removal from the config, on elastic IP detach and on shutdown.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use dnlb_config::{Config, Routing};
use dnlb_lb::snapshot::Snapshot;

use super::events::{Event, Events};

/// How long one BIRD command may take.
const BIRD_TIMEOUT: Duration = Duration::from_secs(2);
/// Retry a failed announcement this often.
const RETRY: Duration = Duration::from_secs(1);

/// Why BIRD did not take a change.
#[derive(Debug, thiserror::Error)]
pub enum BirdError {
    /// The socket could not be used.
    #[error("BIRD control socket {path}: {error}")]
    Socket {
        /// The socket.
        path: String,
        /// What failed.
        error: std::io::Error,
    },
    /// BIRD answered with an error.
    #[error("BIRD refused `{command}`: {reply}")]
    Refused {
        /// The command.
        command: String,
        /// Its reply.
        reply: String,
    },
    /// A VIP file could not be written.
    #[error("cannot write {path}: {error}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        error: std::io::Error,
    },
}

/// Sends one command to BIRD's control socket and returns the reply lines
/// (code, text). A reply ends with a line whose four-digit code is followed
/// by a space; codes 8xxx and 9xxx are errors.
pub fn bird_command(socket: &Path, command: &str) -> Result<Vec<(u16, String)>, BirdError> {
    let sock_err = |error| BirdError::Socket {
        path: socket.display().to_string(),
        error,
    };
    let stream = UnixStream::connect(socket).map_err(sock_err)?;
    stream
        .set_read_timeout(Some(BIRD_TIMEOUT))
        .map_err(sock_err)?;
    stream
        .set_write_timeout(Some(BIRD_TIMEOUT))
        .map_err(sock_err)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(sock_err)?);
    read_reply(&mut reader).map_err(sock_err)?; // the greeting
    (&stream)
        .write_all(format!("{command}\n").as_bytes())
        .map_err(sock_err)?;
    let reply = read_reply(&mut reader).map_err(sock_err)?;
    if let Some((code, text)) = reply.iter().find(|(c, _)| *c >= 8000) {
        return Err(BirdError::Refused {
            command: command.to_string(),
            reply: format!("{code} {text}"),
        });
    }
    Ok(reply)
}

fn read_reply(r: &mut impl BufRead) -> std::io::Result<Vec<(u16, String)>> {
    let mut lines = Vec::new();
    let mut last_code = 0;
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "BIRD closed the connection mid-reply",
            ));
        }
        let l = l.trim_end_matches('\n');
        let b = l.as_bytes();
        if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && (b[4] == b' ' || b[4] == b'-') {
            last_code = l[..4].parse().unwrap_or(0);
            lines.push((last_code, l[5..].to_string()));
            if b[4] == b' ' {
                return Ok(lines);
            }
        } else {
            // A continuation line (starts with a space) of the last code.
            lines.push((last_code, l.trim_start().to_string()));
        }
    }
}

/// The VIPs (and elastic IPs) this gateway should announce: those of
/// listeners with a backend that takes new flows.
pub fn wanted(cfg: &Config, snap: &Snapshot) -> BTreeSet<IpAddr> {
    cfg.listeners
        .iter()
        .zip(&snap.listeners)
        .filter(|(_, s)| !s.table.is_empty())
        .flat_map(|(l, _)| l.addresses())
        .collect()
}

/// The content of a VIP file.
fn file_text(vips: &BTreeSet<IpAddr>, v6: bool) -> String {
    let mut t = String::from(
        "# Written by dnlb: the VIPs this gateway announces. Do not edit; dnlb rewrites it.\n",
    );
    for a in vips.iter().filter(|a| a.is_ipv6() == v6) {
        let len = if v6 { 128 } else { 32 };
        t.push_str(&format!("route {a}/{len} blackhole;\n"));
    }
    t
}

/// Keeps BIRD's view of this gateway's VIPs up to date.
#[derive(Debug)]
pub struct Announcer {
    cfg: Routing,
    announced: Option<BTreeSet<IpAddr>>,
    pending: Option<BTreeSet<IpAddr>>,
    last_try: Option<Instant>,
    events: Events,
}

impl Announcer {
    /// An announcer that has announced nothing yet; it tells what BIRD took
    /// (or did not) to `events`.
    pub fn new(cfg: Routing, events: Events) -> Self {
        Announcer {
            cfg,
            announced: None,
            pending: None,
            last_try: None,
            events,
        }
    }

    /// The withdrawal delay on shutdown.
    pub fn withdraw_delay(&self) -> Duration {
        self.cfg.withdraw_delay
    }

    /// What BIRD was last told to announce.
    pub fn announced(&self) -> Option<&BTreeSet<IpAddr>> {
        self.announced.as_ref()
    }

    /// Announces exactly `vips` (when that differs from what BIRD has).
    /// A failure is logged and retried by [`Announcer::retry`].
    pub fn set(&mut self, vips: BTreeSet<IpAddr>) {
        // Nothing to do only if the files still say what BIRD has (a failed
        // attempt may have rewritten them since).
        if self.announced.as_ref() == Some(&vips) && self.pending.is_none() {
            return;
        }
        self.pending = Some(vips);
        self.last_try = None;
        self.retry();
    }

    /// Tries again to apply a change BIRD did not take (at most once per
    /// second). Returns whether nothing is pending.
    pub fn retry(&mut self) -> bool {
        let Some(vips) = self.pending.clone() else {
            return true;
        };
        if self.last_try.is_some_and(|t| t.elapsed() < RETRY) {
            return false;
        }
        self.last_try = Some(Instant::now());
        match self.apply(&vips) {
            Ok(()) => {
                let list: Vec<String> = vips.iter().map(IpAddr::to_string).collect();
                tracing::info!(vips = ?list, "routes: BIRD announces");
                self.events.emit(Event::RoutesAnnounced { vips: list });
                self.announced = Some(vips);
                self.pending = None;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "routes: BIRD did not take the change; retrying");
                self.events.emit(Event::RoutesFailed {
                    error: e.to_string(),
                });
                false
            }
        }
    }

    fn apply(&self, vips: &BTreeSet<IpAddr>) -> Result<(), BirdError> {
        for (file, v6) in [(&self.cfg.vips4_file, false), (&self.cfg.vips6_file, true)] {
            let Some(file) = file else { continue };
            let tmp = file.with_extension("tmp");
            let write = std::fs::write(&tmp, file_text(vips, v6))
                .and_then(|()| std::fs::rename(&tmp, file));
            write.map_err(|error| BirdError::File {
                path: file.display().to_string(),
                error,
            })?;
        }
        bird_command(&self.cfg.bird_socket, "configure").map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_end_with_a_spaced_code_and_errors_are_8xxx() {
        let mut r = std::io::Cursor::new(
            "0002-Reading configuration from bird.conf\n0003 Reconfigured\n1007-Table master4:\n 10.0.0.1/32  blackhole\n0000 \n",
        );
        let a = read_reply(&mut r).unwrap();
        assert_eq!(
            a,
            [
                (2, "Reading configuration from bird.conf".into()),
                (3, "Reconfigured".into())
            ]
        );
        let b = read_reply(&mut r).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[1], (1007, "10.0.0.1/32  blackhole".into()));
        assert!(read_reply(&mut r).is_err(), "EOF mid-reply is an error");
    }

    #[test]
    fn vip_files_by_family() {
        let vips: BTreeSet<IpAddr> = ["203.0.113.10", "2001:db8::10", "198.51.100.7"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let v4 = file_text(&vips, false);
        assert!(
            v4.contains("route 198.51.100.7/32 blackhole;\nroute 203.0.113.10/32 blackhole;\n"),
            "{v4}"
        );
        assert!(!v4.contains("2001"));
        assert!(file_text(&vips, true).contains("route 2001:db8::10/128 blackhole;"));
    }
}

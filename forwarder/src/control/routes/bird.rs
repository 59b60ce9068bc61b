//! BIRD's control socket, with deadlines: a BIRD that stops answering costs
//! a caller at most the command deadline, never more.
//!
//! The connect is nonblocking. A Unix stream connect either completes at
//! once (BIRD's listen backlog had room, whether or not BIRD ever accepts)
//! or fails at once: a full backlog — a stopped BIRD that earlier attempts
//! have queued up on — is `EAGAIN`, an error the caller retries, where a
//! blocking connect would wait for room forever. Everything after the
//! connect (the greeting, the command, the reply) shares one deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

/// How long one BIRD command may take, greeting and reply included.
pub const BIRD_TIMEOUT: Duration = Duration::from_secs(2);

/// Why BIRD did not take a change.
#[derive(Debug, thiserror::Error)]
pub enum BirdError {
    /// The socket could not be used (no BIRD, a full backlog, no answer in
    /// time, a closed connection).
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
/// (code, text), within [`BIRD_TIMEOUT`]. A reply ends with a line whose
/// four-digit code is followed by a space; codes 8xxx and 9xxx are errors.
pub fn bird_command(socket: &Path, command: &str) -> Result<Vec<(u16, String)>, BirdError> {
    bird_command_within(socket, command, BIRD_TIMEOUT)
}

/// [`bird_command`] with its own deadline: connecting, reading the greeting,
/// writing the command and reading the reply take at most `timeout`.
pub fn bird_command_within(
    socket: &Path,
    command: &str,
    timeout: Duration,
) -> Result<Vec<(u16, String)>, BirdError> {
    let sock_err = |error| BirdError::Socket {
        path: socket.display().to_string(),
        error,
    };
    let deadline = Instant::now() + timeout;
    let stream = connect(socket).map_err(sock_err)?;
    let conn = Deadlined {
        stream: &stream,
        deadline,
    };
    let mut reader = BufReader::new(conn);
    read_reply(&mut reader).map_err(sock_err)?; // the greeting
    let mut writer = Deadlined {
        stream: &stream,
        deadline,
    };
    writer
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

/// Connects without waiting: a full listen backlog is an error, not a wait.
fn connect(path: &Path) -> std::io::Result<UnixStream> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&SockAddr::unix(path)?) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "its listen backlog is full (BIRD is not accepting connections)",
            ))
        }
        Err(e) => return Err(e),
    }
    // Connected (a Unix stream connect never completes later); the reads
    // and writes below block, each bounded by the deadline.
    socket.set_nonblocking(false)?;
    Ok(UnixStream::from(std::os::fd::OwnedFd::from(socket)))
}

/// A stream whose every read and write ends by one deadline.
struct Deadlined<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl Deadlined<'_> {
    /// Time left, or a timeout error when none is.
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "BIRD did not answer in time",
            ));
        }
        Ok(left)
    }
}

/// A read or write that ran into its timeout says so in words.
fn timed_out(e: std::io::Error) -> std::io::Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "BIRD did not answer in time")
        }
        _ => e,
    }
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        let mut s = self.stream;
        s.read(buf).map_err(timed_out)
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        let mut s = self.stream;
        s.write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads one reply: lines up to the first whose code is followed by a
/// space.
pub(super) fn read_reply(r: &mut impl BufRead) -> std::io::Result<Vec<(u16, String)>> {
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

    fn socket_path(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        (dir, p)
    }

    #[test]
    fn a_bird_that_never_answers_costs_the_deadline_only() {
        let (_dir, path) = socket_path("mute.ctl");
        // Listens, never accepts: the connect succeeds, no greeting comes.
        let _mute = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let start = Instant::now();
        let e = bird_command_within(&path, "configure", Duration::from_millis(300)).unwrap_err();
        assert!(
            e.to_string().ends_with("BIRD did not answer in time"),
            "{e}"
        );
        assert!(start.elapsed() < Duration::from_secs(20), "bounded");
    }

    #[test]
    fn a_full_backlog_is_an_error_at_once() {
        let (_dir, path) = socket_path("full.ctl");
        let l = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        l.bind(&SockAddr::unix(&path).unwrap()).unwrap();
        l.listen(0).unwrap();
        // Backlog 0 holds one connection nobody accepts; the next is refused
        // with EAGAIN (a blocking connect would wait here forever).
        let mut held = Vec::new();
        let e = loop {
            match connect(&path) {
                Ok(s) => held.push(s),
                Err(e) => break e,
            }
            assert!(held.len() < 64, "the backlog never filled");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
        let e = bird_command_within(&path, "configure", Duration::from_secs(60)).unwrap_err();
        assert!(e.to_string().contains("listen backlog is full"), "{e}");
    }

    #[test]
    fn a_bird_that_answers_is_heard_and_its_errors_are_refusals() {
        let (_dir, path) = socket_path("bird.ctl");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            for reply in ["0003 Reconfigured\n", "8001 Parse error\n"] {
                let (mut s, _) = l.accept().unwrap();
                s.write_all(b"0001 BIRD 2.0.12 ready.\n").unwrap();
                let mut line = String::new();
                BufReader::new(&s).read_line(&mut line).unwrap();
                assert_eq!(line, "configure\n");
                s.write_all(reply.as_bytes()).unwrap();
            }
        });
        let ok = bird_command(&path, "configure").unwrap();
        assert_eq!(ok, [(3, "Reconfigured".to_string())]);
        let e = bird_command(&path, "configure").unwrap_err();
        assert_eq!(e.to_string(), "BIRD refused `configure`: 8001 Parse error");
        server.join().unwrap();
    }
}

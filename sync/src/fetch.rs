//! Fetch for restart, over TCP on the sync port: a (re)starting gateway asks
//! every peer for everything it holds before announcing its VIPs.
//!
//! Framing: each message (the same authenticated format as UDP) is preceded
//! by its length, two bytes big-endian, at most [`MAX_MESSAGE_LEN`].
//!
//! The requester sends one `FetchRequest` whose context is a random nonce.
//! The peer answers with `FetchReply` messages (what it holds from its peers
//! and its own announced exceptions, `remaining_ms` counted down) and a
//! `FetchEnd` with the total, each carrying the nonce, then closes. The
//! requester accepts an answer's messages only with the nonce, from one
//! sender, in increasing sequence, from an epoch not older than the newest
//! seen from that sender: a recorded answer cannot be played back into a
//! later fetch. The request itself goes through the peer's replay window.
//!
//! Every peer is asked at once; after `fetch_timeout` the peers still
//! answering are skipped (entries they sent before are kept: each was
//! authenticated). The union keeps, per (listener, flow), the entry with
//! the longest `remaining_ms` (the most recently refreshed), at most
//! `max_held` keys.
//!
//! The server answers at most [`MAX_FETCH_CONNECTIONS`] connections at a
//! time (more are closed at once), each under one deadline of four times
//! `fetch_timeout`, at least [`MIN_SERVE_DEADLINE`].

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::entry::{FlowException, FlowKey};
use crate::shared::Shared;
use crate::store::Stored;
use crate::wire::{Body, Kind, Message, MAX_ENTRIES, MAX_MESSAGE_LEN};
use crate::Reject;

/// Fetch connections served at once.
pub const MAX_FETCH_CONNECTIONS: usize = 8;
/// The shortest time a fetch connection is served for.
pub const MIN_SERVE_DEADLINE: Duration = Duration::from_secs(4);

/// Why a peer's answer was not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No connection (nothing listening, no route).
    #[error("cannot connect: {0}")]
    Connect(io::ErrorKind),
    /// The connection failed, or closed before the answer's end.
    #[error("connection failed: {0}")]
    Io(io::ErrorKind),
    /// Not done by the deadline.
    #[error("no complete answer within the fetch timeout")]
    TimedOut,
    /// A message of the answer was rejected (counted in the stats).
    #[error("answer rejected: {0:?}")]
    Rejected(Reject),
    /// The answer's end told another total than the entries received.
    #[error("the answer ended with a total of {told} entries, {got} were received")]
    Incomplete {
        /// Entries received.
        got: u64,
        /// The total the peer told.
        told: u64,
    },
}

/// A peer's complete answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAnswer {
    /// The peer's sender id.
    pub sender: u64,
    /// Its run's epoch.
    pub epoch: u64,
    /// Its config generation.
    pub generation: u64,
    /// Entries it sent.
    pub entries: u64,
}

/// What one peer gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFetch {
    /// The peer's address.
    pub peer: SocketAddr,
    /// Its answer, or why there is none.
    pub result: Result<PeerAnswer, FetchError>,
}

/// What a fetch gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// Each peer's outcome, in the order of the peer list.
    pub peers: Vec<PeerFetch>,
    /// The union of every entry received, the newest per (listener, flow).
    pub entries: Vec<FlowException>,
    /// Entries left out because the union had `max_held` keys already.
    pub refused: u64,
}

/// Reads one framed message (`None`: the peer closed between messages).
async fn read_frame(s: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::from(u16::from_be_bytes(len));
    // Longer than a message: read no further (the caller counts it).
    if len > MAX_MESSAGE_LEN {
        return Ok(Some(vec![0; MAX_MESSAGE_LEN + 1]));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

async fn write_frame<W: AsyncWriteExt + Unpin>(w: &mut W, msg: &[u8]) -> io::Result<()> {
    // Messages are at most MAX_MESSAGE_LEN (1400) bytes.
    let len = u16::try_from(msg.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(msg).await
}

/// The fetch server: accepts connections and answers each.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let limit = Arc::new(Semaphore::new(MAX_FETCH_CONNECTIONS));
    let deadline = (shared.settings.fetch_timeout * 4).max(MIN_SERVE_DEADLINE);
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            // Out of descriptors, say: wait, without spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            shared.state().stats.fetch_connections_failed += 1;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            let done = tokio::time::timeout(deadline, answer(&shared, &mut stream)).await;
            // Counted before the close, like a served fetch: a client that
            // saw the connection end sees the count.
            if !matches!(done, Ok(Ok(()))) {
                shared.state().stats.fetch_connections_failed += 1;
            }
            drop(stream);
            drop(permit);
        });
    }
}

/// Answers one fetch connection. Rejected requests are counted (`Ok`);
/// the caller closes the connection, after it counted any failure.
async fn answer(shared: &Shared, stream: &mut TcpStream) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let Some(bytes) = read_frame(stream).await? else {
        return Err(io::ErrorKind::UnexpectedEof.into());
    };
    let decoded = Message::decode(&bytes, &shared.keys());
    let now = shared.now_ms();
    let (nonce, entries) = {
        let mut st = shared.state();
        let admitted = decoded.and_then(|m| {
            Shared::admit(&mut st, shared.settings.sender, &m, &[Kind::FetchRequest]).map(|()| m)
        });
        let request = match admitted {
            Ok(m) => m,
            Err(r) => {
                st.stats.rejected.count(r);
                return Ok(());
            }
        };
        // Own exceptions over what peers told (this gateway decided them).
        let mut all: HashMap<FlowKey, FlowException> = st
            .held
            .snapshot(now)
            .into_iter()
            .map(|e| (e.key(), e))
            .collect();
        all.extend(st.own.snapshot(now).into_iter().map(|e| (e.key(), e)));
        (
            request.header.context,
            all.into_values().collect::<Vec<_>>(),
        )
    };
    let keys = shared.keys();
    let mut w = BufWriter::new(&mut *stream);
    for chunk in entries.chunks(MAX_ENTRIES) {
        let m = Message {
            header: shared.next_header(nonce),
            body: Body::FetchReply(chunk.to_vec()),
        };
        let bytes = m
            .encode(keys.current())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        write_frame(&mut w, &bytes).await?;
    }
    let total = entries.len() as u64;
    let end = Message {
        header: shared.next_header(nonce),
        body: Body::FetchEnd { total },
    }
    .encode(keys.current())
    .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    write_frame(&mut w, &end).await?;
    w.flush().await?;
    drop(w);
    // Counted before the close, so a client that has read to the end
    // sees the count (it was counted after the close, and a test read 0).
    {
        let mut st = shared.state();
        st.stats.fetches_served += 1;
        st.stats.fetch_entries_served += total;
    }
    let _ = stream.shutdown().await;
    Ok(())
}

/// The union being gathered, shared by the peers' tasks.
#[derive(Debug)]
struct Union {
    max: usize,
    entries: HashMap<FlowKey, FlowException>,
    refused: u64,
}

impl Union {
    fn add(&mut self, e: FlowException) {
        let full = self.entries.len() >= self.max;
        match self.entries.get_mut(&e.key()) {
            Some(old) if e.remaining_ms > old.remaining_ms => *old = e,
            Some(_) => {}
            None if full => self.refused += 1,
            None => {
                self.entries.insert(e.key(), e);
            }
        }
    }
}

fn lock_union(u: &Mutex<Union>) -> std::sync::MutexGuard<'_, Union> {
    u.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asks every peer, waits until all answered or the deadline, keeps the
/// union in the held store and reports.
pub(crate) async fn fetch(shared: Arc<Shared>) -> FetchReport {
    let peers = shared.peers();
    let deadline = Instant::now() + shared.settings.fetch_timeout;
    let nonce = getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: unique per run and fetch all the same.
        shared.settings.epoch ^ shared.now_ms().rotate_left(32) ^ shared.settings.sender
    });
    let request = Message {
        header: shared.next_header(nonce),
        body: Body::FetchRequest,
    }
    .encode(shared.keys().current());
    let union = Arc::new(Mutex::new(Union {
        max: shared.settings.max_held,
        entries: HashMap::new(),
        refused: 0,
    }));
    let mut results: Vec<Option<Result<PeerAnswer, FetchError>>> = vec![None; peers.len()];
    if let Ok(request) = request {
        let request = Arc::new(request);
        let mut tasks = JoinSet::new();
        for (i, &peer) in peers.iter().enumerate() {
            let (shared, request, union) = (shared.clone(), request.clone(), union.clone());
            tasks.spawn(async move {
                let one = ask(&shared, peer, &request, nonce, &union);
                let r = tokio::time::timeout_at(deadline, one).await;
                (i, r.unwrap_or(Err(FetchError::TimedOut)))
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((i, r)) = done {
                results[i] = Some(r);
            }
        }
    }
    let union = std::mem::replace(
        &mut *lock_union(&union),
        Union {
            max: 0,
            entries: HashMap::new(),
            refused: 0,
        },
    );
    let entries: Vec<FlowException> = union.entries.into_values().collect();
    let peers: Vec<PeerFetch> = peers
        .iter()
        .zip(results)
        .map(|(&peer, r)| PeerFetch {
            peer,
            // A task that did not report (it panicked) did not answer.
            result: r.unwrap_or(Err(FetchError::Io(io::ErrorKind::Other))),
        })
        .collect();
    let now = shared.now_ms();
    let mut st = shared.state();
    st.stats.fetches_made += 1;
    for p in &peers {
        if p.result.is_ok() {
            st.stats.fetch_peers_complete += 1;
        } else {
            st.stats.fetch_peers_failed += 1;
        }
    }
    for e in &entries {
        if st.held.insert(*e, now) == Stored::Refused {
            st.stats.held_refused += 1;
        }
    }
    FetchReport {
        peers,
        entries,
        refused: union.refused,
    }
}

/// Asks one peer; its entries go into `union` as they arrive.
async fn ask(
    shared: &Shared,
    peer: SocketAddr,
    request: &[u8],
    nonce: u64,
    union: &Mutex<Union>,
) -> Result<PeerAnswer, FetchError> {
    let mut s = TcpStream::connect(peer)
        .await
        .map_err(|e| FetchError::Connect(e.kind()))?;
    let _ = s.set_nodelay(true);
    let io_err = |e: io::Error| FetchError::Io(e.kind());
    write_frame(&mut s, request).await.map_err(io_err)?;
    let mut got = 0u64;
    // (sender, epoch, generation, last sequence) of the answer so far.
    let mut from: Option<(u64, u64, u64, u64)> = None;
    loop {
        let Some(bytes) = read_frame(&mut s).await.map_err(io_err)? else {
            return Err(FetchError::Io(io::ErrorKind::UnexpectedEof));
        };
        let m = Message::decode(&bytes, &shared.keys())
            .and_then(|m| check_answer(shared, &m, nonce, from).map(|()| m));
        let m = match m {
            Ok(m) => m,
            Err(r) => {
                shared.state().stats.rejected.count(r);
                return Err(FetchError::Rejected(r));
            }
        };
        let h = m.header;
        from = Some((h.sender, h.epoch, h.generation, h.sequence));
        match m.body {
            Body::FetchReply(entries) => {
                got += entries.len() as u64;
                let mut u = lock_union(union);
                for e in entries {
                    u.add(e);
                }
            }
            Body::FetchEnd { total } if total == got => {
                return Ok(PeerAnswer {
                    sender: h.sender,
                    epoch: h.epoch,
                    generation: h.generation,
                    entries: got,
                });
            }
            Body::FetchEnd { total } => return Err(FetchError::Incomplete { got, told: total }),
            // Refused by check_answer.
            _ => return Err(FetchError::Rejected(Reject::Unexpected)),
        }
    }
}

/// Whether `m` may be the next message of an answer to the fetch `nonce`.
fn check_answer(
    shared: &Shared,
    m: &Message,
    nonce: u64,
    from: Option<(u64, u64, u64, u64)>,
) -> Result<(), Reject> {
    let h = &m.header;
    if h.sender == shared.settings.sender {
        return Err(Reject::Own);
    }
    if !matches!(m.body.kind(), Kind::FetchReply | Kind::FetchEnd) || h.context != nonce {
        return Err(Reject::Unexpected);
    }
    if let Some((sender, epoch, _, seq)) = from {
        if h.sender != sender || h.epoch != epoch || h.sequence <= seq {
            return Err(Reject::Unexpected);
        }
    }
    shared.state().senders.current_epoch(h.sender, h.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(flow: u64, backend: u64, remaining_ms: u32) -> FlowException {
        FlowException {
            listener: 1,
            flow,
            backend,
            remaining_ms,
            flags: 0,
        }
    }

    #[test]
    fn the_union_keeps_the_newest_and_is_bounded() {
        let mut u = Union {
            max: 2,
            entries: HashMap::new(),
            refused: 0,
        };
        u.add(e(1, 1, 100));
        u.add(e(1, 2, 500));
        u.add(e(1, 3, 200));
        u.add(e(2, 1, 100));
        u.add(e(3, 1, 100));
        assert_eq!(u.entries[&(1, 1)].backend, 2);
        assert_eq!(u.entries.len(), 2);
        assert_eq!(u.refused, 1);
    }
}

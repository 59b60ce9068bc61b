//! The endpoint's state and what its tasks do with it: receive a datagram,
//! send a batch. One mutex, never held across an await or a call into the
//! sink.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::net::UdpSocket;

use crate::auth::Keys;
use crate::delivery::{Delivery, Origin, Sink};
use crate::outbox::Outbox;
use crate::replay::Senders;
use crate::settings::Settings;
use crate::stats::SyncStats;
use crate::store::{Store, Stored};
use crate::wire::{Body, Header, Kind, Message};
use crate::Reject;

/// The state behind the endpoint's mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) outbox: Outbox,
    pub(crate) held: Store,
    pub(crate) own: Store,
    pub(crate) senders: Senders,
    pub(crate) stats: SyncStats,
}

/// What the tasks and the caller share.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    keys: Mutex<Arc<Keys>>,
    peers: Mutex<Arc<Vec<SocketAddr>>>,
    generation: AtomicU64,
    sequence: AtomicU64,
    state: Mutex<State>,
    sink: Box<dyn Sink>,
    clock: Instant,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Nothing panics while a lock is held; a poisoned one is still whole.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The state of a new endpoint; batches go every `batch_ms`.
    pub(crate) fn new(
        settings: Settings,
        keys: Keys,
        sink: Box<dyn Sink>,
        batch_ms: u64,
    ) -> Shared {
        let state = State {
            outbox: Outbox::new(
                settings.max_queued,
                settings.max_bytes_per_sec_per_peer,
                batch_ms,
                0,
            ),
            held: Store::new(settings.max_held),
            own: Store::new(settings.max_held),
            senders: Senders::default(),
            stats: SyncStats::default(),
        };
        Shared {
            peers: Mutex::new(Arc::new(settings.peers.clone())),
            settings,
            keys: Mutex::new(Arc::new(keys)),
            generation: AtomicU64::new(0),
            sequence: AtomicU64::new(1),
            state: Mutex::new(state),
            sink,
            clock: Instant::now(),
        }
    }

    pub(crate) fn set_keys(&self, keys: Keys) {
        *lock(&self.keys) = Arc::new(keys);
    }

    pub(crate) fn set_peers(&self, peers: Vec<SocketAddr>) {
        *lock(&self.peers) = Arc::new(peers);
    }

    pub(crate) fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::Relaxed);
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn keys(&self) -> Arc<Keys> {
        lock(&self.keys).clone()
    }

    pub(crate) fn peers(&self) -> Arc<Vec<SocketAddr>> {
        lock(&self.peers).clone()
    }

    /// Milliseconds since the endpoint started (monotonic).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The header of the next message this endpoint sends.
    pub(crate) fn next_header(&self, context: u64) -> Header {
        Header {
            sender: self.settings.sender,
            epoch: self.settings.epoch,
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed),
            generation: self.generation.load(Ordering::Relaxed),
            context,
        }
    }

    /// Checks what every received message must pass after its tag: not
    /// ours, a kind this channel carries, not a replay.
    pub(crate) fn admit(
        st: &mut State,
        own: u64,
        m: &Message,
        kinds: &[Kind],
    ) -> Result<(), Reject> {
        if m.header.sender == own {
            return Err(Reject::Own);
        }
        if !kinds.contains(&m.body.kind()) {
            return Err(Reject::Unexpected);
        }
        st.senders
            .accept(m.header.sender, m.header.epoch, m.header.sequence)
    }

    /// One datagram: authenticate, admit, apply, deliver.
    pub(crate) fn receive(&self, bytes: &[u8], from: SocketAddr) {
        let decoded = Message::decode(bytes, &self.keys());
        let now = self.now_ms();
        let mut st = self.state();
        st.stats.received_datagrams += 1;
        st.stats.received_bytes += bytes.len() as u64;
        let m = match decoded.and_then(|m| {
            let kinds = [Kind::Exceptions, Kind::Withdraw];
            Shared::admit(&mut st, self.settings.sender, &m, &kinds).map(|()| m)
        }) {
            Ok(m) => m,
            Err(r) => {
                st.stats.rejected.count(r);
                return;
            }
        };
        st.stats.received_messages += 1;
        let origin = Origin {
            sender: m.header.sender,
            epoch: m.header.epoch,
            generation: m.header.generation,
            from,
        };
        match m.body {
            Body::Exceptions(entries) => {
                st.stats.received_exceptions += entries.len() as u64;
                for e in &entries {
                    if st.held.insert(*e, now) == Stored::Refused {
                        st.stats.held_refused += 1;
                    }
                }
                drop(st);
                self.sink.deliver(Delivery::Exceptions {
                    origin,
                    entries: &entries,
                });
            }
            Body::Withdraw(entries) => {
                st.stats.received_withdrawals += entries.len() as u64;
                for e in &entries {
                    if st.held.withdraw(e) {
                        st.stats.held_withdrawn += 1;
                    }
                }
                drop(st);
                self.sink.deliver(Delivery::Withdrawn {
                    origin,
                    entries: &entries,
                });
            }
            // Not admitted on this channel.
            Body::FetchRequest | Body::FetchReply(_) | Body::FetchEnd { .. } => {}
        }
    }

    /// One batch: what the bucket allows, to every peer; expired entries
    /// leave the stores.
    pub(crate) async fn tick(&self, socket: &UdpSocket) {
        let now = self.now_ms();
        let batches = {
            let mut st = self.state();
            let expired = st.held.expire(now) as u64;
            st.stats.held_expired += expired;
            st.own.expire(now);
            st.outbox.take(now)
        };
        if batches.is_empty() {
            return;
        }
        let keys = self.keys();
        let peers = self.peers();
        let mut sent = SyncStats::default();
        for b in batches {
            let n = b.entries.len() as u64;
            let body = match b.kind {
                Kind::Withdraw => Body::Withdraw(b.entries),
                _ => Body::Exceptions(b.entries),
            };
            let m = Message {
                header: self.next_header(0),
                body,
            };
            // A batch holds 1 to MAX_ENTRIES entries: always encodes.
            let Ok(bytes) = m.encode(keys.current()) else {
                continue;
            };
            for peer in peers.iter() {
                match socket.send_to(&bytes, peer).await {
                    Ok(_) => {
                        sent.sent_messages += 1;
                        sent.sent_entries += n;
                        sent.sent_bytes += bytes.len() as u64;
                    }
                    Err(_) => sent.send_errors += 1,
                }
            }
        }
        let mut st = self.state();
        st.stats.sent_messages += sent.sent_messages;
        st.stats.sent_entries += sent.sent_entries;
        st.stats.sent_bytes += sent.sent_bytes;
        st.stats.send_errors += sent.send_errors;
    }
}

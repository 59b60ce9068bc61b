//! The endpoint: a UDP socket for the stream of entries and a TCP listener
//! on the same port for fetches, on the control plane's tokio runtime (the
//! host's kernel stack, not DPDK).
//!
//! Three tasks run per endpoint: the receiver (each datagram authenticated,
//! checked against the replay window, applied to the held store, handed to
//! the [`Sink`]), the batcher (every `batch_interval`: what the outbox's
//! bucket allows is sent, one copy per peer; expired entries leave the
//! stores) and the fetch server ([`crate::fetch`]). State is behind one
//! mutex, never held across an await or a call into the sink.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::auth::Keys;
use crate::delivery::Sink;
use crate::entry::{FlowException, FlowKey};
use crate::fetch;
use crate::settings::Settings;
use crate::shared::Shared;
use crate::stats::SyncStats;
use crate::store::Stored;
use crate::wire::{Kind, MAX_MESSAGE_LEN};

/// A running endpoint. Dropping it stops its tasks (a fetch in progress is
/// left to end at its deadline).
#[derive(Debug)]
pub struct Endpoint {
    shared: Arc<Shared>,
    local: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds the UDP socket and the TCP listener on one port.
fn bind(listen: SocketAddr) -> io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let udp = || -> io::Result<std::net::UdpSocket> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(
            Domain::for_address(listen),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        // Room for a burst from many peers; the kernel caps it
        // (net.core.rmem_max), and a smaller buffer still works.
        let _ = s.set_recv_buffer_size(4 << 20);
        s.bind(&listen.into())?;
        Ok(s.into())
    };
    if listen.port() != 0 {
        return Ok((udp()?, std::net::TcpListener::bind(listen)?));
    }
    // Port 0: a free UDP port whose TCP twin is free too (a few tries).
    let mut last = None;
    for _ in 0..32 {
        let u = udp()?;
        let addr = u.local_addr()?;
        match std::net::TcpListener::bind(addr) {
            Ok(t) => return Ok((u, t)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

impl Endpoint {
    /// Binds `settings.listen` (UDP and TCP) and starts the endpoint's tasks
    /// on `handle`'s runtime. Entries received are handed to `sink`.
    pub fn start(
        settings: Settings,
        keys: Keys,
        sink: impl Sink,
        handle: &Handle,
    ) -> io::Result<Endpoint> {
        let _runtime = handle.enter();
        let (udp, tcp) = bind(settings.listen)?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        let local = udp.local_addr()?;
        let udp = Arc::new(UdpSocket::from_std(udp)?);
        let tcp = TcpListener::from_std(tcp)?;
        let batch = settings.batch_interval.max(Duration::from_millis(1));
        let batch_ms = u64::try_from(batch.as_millis()).unwrap_or(u64::MAX);
        let shared = Arc::new(Shared::new(settings, keys, Box::new(sink), batch_ms));
        let receiver = {
            let (shared, udp) = (shared.clone(), udp.clone());
            handle.spawn(async move {
                let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
                loop {
                    match udp.recv_from(&mut buf).await {
                        // A longer datagram is cut to MAX + 1: oversized.
                        Ok((n, from)) => shared.receive(&buf[..n], from),
                        // An error of the socket (e.g. a queued ICMP
                        // error): go on, without spinning.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            })
        };
        let batcher = {
            let shared = shared.clone();
            handle.spawn(async move {
                let mut every = tokio::time::interval(batch);
                every.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    shared.tick(&udp).await;
                }
            })
        };
        let server = handle.spawn(fetch::serve(shared.clone(), tcp));
        Ok(Endpoint {
            shared,
            local,
            tasks: vec![receiver, batcher, server],
        })
    }

    /// The address the endpoint listens on (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Queues exceptions for the peers, in order, and keeps them to answer
    /// fetches until they expire or are withdrawn. How many the queue took
    /// (the rest are dropped and counted).
    pub fn queue_exceptions(&self, entries: &[FlowException]) -> usize {
        let now = self.shared.now_ms();
        let mut st = self.shared.state();
        let n = st.outbox.push(Kind::Exceptions, entries);
        st.stats.queue_drops += (entries.len() - n) as u64;
        for e in entries {
            if st.own.insert(*e, now) == Stored::Refused {
                st.stats.own_refused += 1;
            }
        }
        n
    }

    /// Queues withdrawals (flows that ended or stopped being exceptions),
    /// after any exceptions queued before them. How many the queue took.
    pub fn queue_withdrawals(&self, entries: &[FlowException]) -> usize {
        let mut st = self.shared.state();
        let n = st.outbox.push(Kind::Withdraw, entries);
        st.stats.queue_drops += (entries.len() - n) as u64;
        for e in entries {
            st.own.withdraw(e);
        }
        n
    }

    /// The config generation sent with every later message.
    pub fn set_generation(&self, generation: u64) {
        self.shared.set_generation(generation);
    }

    /// Replaces the keys (a rotation): later messages are sent with the new
    /// current key.
    pub fn set_keys(&self, keys: Keys) {
        self.shared.set_keys(keys);
    }

    /// Replaces the peers: later batches and fetches go to these.
    pub fn set_peers(&self, peers: Vec<SocketAddr>) {
        self.shared.set_peers(peers);
    }

    /// The peers batches and fetches go to.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.shared.peers().to_vec()
    }

    /// The entry held from a peer for (`listener`, `flow`), its
    /// `remaining_ms` counted down to now.
    pub fn held(&self, key: FlowKey) -> Option<FlowException> {
        let now = self.shared.now_ms();
        self.shared.state().held.get(key, now)
    }

    /// Every entry held from peers (a copy, bounded by `max_held`).
    pub fn held_entries(&self) -> Vec<FlowException> {
        let now = self.shared.now_ms();
        self.shared.state().held.snapshot(now)
    }

    /// The counters, and the stores' sizes now.
    pub fn stats(&self) -> SyncStats {
        let st = self.shared.state();
        SyncStats {
            queued: st.outbox.len() as u64,
            held: st.held.len() as u64,
            own: st.own.len() as u64,
            ..st.stats
        }
    }

    /// Asks every peer for what it holds, over TCP, and waits at most
    /// `fetch_timeout` ([`crate::fetch`]). Entries received are kept in the
    /// held store too. Must run on the endpoint's runtime (from the control
    /// thread: `handle.block_on(endpoint.fetch())`).
    pub async fn fetch(&self) -> fetch::FetchReport {
        fetch::fetch(self.shared.clone()).await
    }
}

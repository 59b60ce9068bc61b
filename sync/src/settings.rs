//! How an endpoint runs, and the ids a gateway sends with.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dnlb_model::ExceptionSync;

/// How an endpoint runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// UDP and TCP address to listen on (port 0: a free port, the same for
    /// both; see [`Endpoint::local_addr`]).
    pub listen: SocketAddr,
    /// Where the peers listen (see [`Endpoint::set_peers`]).
    pub peers: Vec<SocketAddr>,
    /// How often queued entries are sent.
    pub batch_interval: Duration,
    /// UDP payload bytes per second sent to each peer.
    pub max_bytes_per_sec_per_peer: u64,
    /// Entries waiting to be sent, at most.
    pub max_queued: usize,
    /// Entries held from peers, at most (and, apart, own exceptions kept
    /// for fetches).
    pub max_held: usize,
    /// How long [`Endpoint::fetch`] waits for its peers.
    pub fetch_timeout: Duration,
    /// This gateway's sender id, unique in the fleet ([`sender_id`]).
    pub sender: u64,
    /// This run's epoch: larger than any earlier run's ([`epoch_now`]).
    pub epoch: u64,
}

impl Settings {
    /// Settings from a validated `[sync]` section, for the gateway whose
    /// sender id is `sender`, with this run's epoch ([`epoch_now`]).
    pub fn from_model(m: &ExceptionSync, sender: u64) -> Settings {
        Settings {
            listen: m.listen,
            peers: m.peers.clone(),
            batch_interval: m.batch_interval,
            max_bytes_per_sec_per_peer: u64::from(m.max_bytes_per_sec_per_peer),
            max_queued: m.max_queued as usize,
            max_held: m.max_held as usize,
            fetch_timeout: m.fetch_timeout,
            sender,
            epoch: epoch_now(),
        }
    }
}

/// A sender id from a gateway's name (unique in the fleet): the first
/// eight bytes of SHA-256 over a label and the name.
pub fn sender_id(gateway_name: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"dnlb-sync sender\0");
    h.update(gateway_name.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The wall clock in milliseconds since 1970: a run's epoch. A restarted
/// gateway must start with a larger one than its last run (peers reject
/// the older epoch's messages as replays), so the clock must not step back
/// across a restart by more than the downtime.
pub fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_the_model() {
        let m = ExceptionSync {
            listen: "10.0.0.1:7946".parse().unwrap(),
            peers: vec!["10.0.0.2:7946".parse().unwrap()],
            key_file: "k".into(),
            previous_key_file: None,
            batch_interval: Duration::from_millis(100),
            max_bytes_per_sec_per_peer: 1_000_000,
            max_queued: 10,
            max_held: 20,
            fetch_timeout: Duration::from_secs(2),
        };
        let before = epoch_now();
        let s = Settings::from_model(&m, sender_id("gw1"));
        assert_eq!(s.listen, m.listen);
        assert_eq!(s.peers, m.peers);
        assert_eq!(s.batch_interval, m.batch_interval);
        assert_eq!(
            (s.max_bytes_per_sec_per_peer, s.max_queued, s.max_held),
            (1_000_000, 10, 20)
        );
        assert_eq!(s.fetch_timeout, m.fetch_timeout);
        assert_eq!(s.sender, sender_id("gw1"));
        assert!(s.epoch >= before && s.epoch > 1_600_000_000_000);
    }

    #[test]
    fn sender_ids_are_pinned_and_differ() {
        assert_eq!(sender_id("gw1"), sender_id("gw1"));
        assert_ne!(sender_id("gw1"), sender_id("gw2"));
        assert_ne!(sender_id(""), 0);
    }
}

//! Counters: a plain struct the control plane copies out
//! ([`crate::Endpoint::stats`]) and renders into metrics and status.

use crate::Reject;

/// Messages rejected, by reason. Each rejected message counts once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejections {
    /// Longer than the largest message.
    pub oversized: u64,
    /// Not a message of this format (magic, version, kind, count, length,
    /// reserved bytes, unknown flags).
    pub malformed: u64,
    /// An unknown key id or a wrong tag.
    pub forged: u64,
    /// From an older run of its sender than one already seen.
    pub stale_epoch: u64,
    /// A duplicate, or older than the replay window.
    pub replayed: u64,
    /// Sent by this endpoint's own sender id (a peer list naming itself, or
    /// two gateways given one id).
    pub own: u64,
    /// Authentic, but a kind this channel does not carry (a fetch over UDP,
    /// a streamed message over a fetch connection), or a fetch answer that
    /// does not follow the request (wrong nonce, out of order).
    pub unexpected: u64,
    /// From a new sender while the sender table is full.
    pub too_many_senders: u64,
}

impl Rejections {
    /// Counts one rejection.
    pub fn count(&mut self, r: Reject) {
        let c = match r {
            Reject::Oversized => &mut self.oversized,
            Reject::Malformed => &mut self.malformed,
            Reject::Forged => &mut self.forged,
            Reject::StaleEpoch => &mut self.stale_epoch,
            Reject::Replayed => &mut self.replayed,
            Reject::Own => &mut self.own,
            Reject::Unexpected => &mut self.unexpected,
            Reject::TooManySenders => &mut self.too_many_senders,
        };
        *c += 1;
    }

    /// Every rejection.
    pub fn total(&self) -> u64 {
        self.oversized
            + self.malformed
            + self.forged
            + self.stale_epoch
            + self.replayed
            + self.own
            + self.unexpected
            + self.too_many_senders
    }
}

/// Everything an endpoint counts, and its stores' sizes now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Messages sent (each copy to each peer counts).
    pub sent_messages: u64,
    /// Entries sent (each copy counts).
    pub sent_entries: u64,
    /// UDP payload bytes sent (each copy counts).
    pub sent_bytes: u64,
    /// Sends the kernel refused (the message to that peer is lost).
    pub send_errors: u64,
    /// Datagrams received, whatever they held.
    pub received_datagrams: u64,
    /// UDP payload bytes received, whatever they held.
    pub received_bytes: u64,
    /// Messages accepted (authentic, in the replay window, streamed kinds).
    pub received_messages: u64,
    /// Exceptions accepted.
    pub received_exceptions: u64,
    /// Withdrawals accepted.
    pub received_withdrawals: u64,
    /// Messages rejected, by reason (UDP and fetch connections).
    pub rejected: Rejections,
    /// Entries waiting to be sent now.
    pub queued: u64,
    /// Entries the caller queued that did not fit the queue.
    pub queue_drops: u64,
    /// Entries held from peers now.
    pub held: u64,
    /// Entries from peers refused because the held store was full.
    pub held_refused: u64,
    /// Held entries that expired.
    pub held_expired: u64,
    /// Held entries removed by a peer's withdrawal.
    pub held_withdrawn: u64,
    /// This gateway's own announced exceptions kept for fetches now.
    pub own: u64,
    /// Own exceptions not kept because that store was full.
    pub own_refused: u64,
    /// Fetches this endpoint answered in full.
    pub fetches_served: u64,
    /// Entries sent in answers to fetches.
    pub fetch_entries_served: u64,
    /// Fetch connections closed at once (too many at a time) or that
    /// failed before the answer's end (I/O error, deadline).
    pub fetch_connections_failed: u64,
    /// Fetches this endpoint made.
    pub fetches_made: u64,
    /// Peers that answered one of its fetches in full.
    pub fetch_peers_complete: u64,
    /// Peers that did not (down, slow, wrong answer).
    pub fetch_peers_failed: u64,
}

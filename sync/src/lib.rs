//! dnlb-sync: flow-exception sync between gateways.
//!
//! Every gateway builds the same Maglev table, so a connection survives a
//! gateway loss only while the table is unchanged. After a backend change,
//! the flows whose backend differs from what the current table picks
//! ("exceptions") are told to the peer gateways, so a peer that receives
//! such a flow (ECMP moved it) sends it to the same backend. This crate
//! carries them; what an entry means is the data path's business (every
//! field of a [`FlowException`] is opaque here).
//!
//! - [`entry`]: the 32-byte entry.
//! - [`wire`]: the message format (header, entries, HMAC-SHA256 tag).
//! - [`auth`]: the shared keys (current and previous, for rotation).
//! - [`replay`]: per-sender epochs and sliding sequence windows.
//! - [`store`]: the bounded, expiring store of held entries.
//! - [`outbox`]: the bounded send queue and its byte-rate bucket.
//! - [`endpoint`]: the UDP endpoint on the control plane's tokio runtime
//!   ([`settings`]: how it runs; [`delivery`]: what it hands the caller).
//! - [`fetch`]: the TCP fetch a restarting gateway makes.
//! - [`stats`]: the counters.
//!
//! A control-plane library: kernel sockets, no DPDK, nothing per packet.
//! See `docs/sync.md`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod delivery;
pub mod endpoint;
pub mod entry;
pub mod fetch;
pub mod outbox;
pub mod replay;
pub mod settings;
mod shared;
pub mod stats;
pub mod store;
pub mod wire;

pub use auth::{Key, KeyError, Keys};
pub use delivery::{Delivery, Origin, Sink};
pub use endpoint::Endpoint;
pub use entry::{FlowException, FlowKey, FLAG_CLOSING, FLAG_PINNED};
pub use fetch::{FetchError, FetchReport, PeerAnswer, PeerFetch};
pub use settings::{epoch_now, sender_id, Settings};
pub use stats::{Rejections, SyncStats};
pub use wire::{Body, Header, Kind, Message, MAX_ENTRIES, MAX_MESSAGE_LEN};

/// Why a received message was ignored. Each is counted
/// ([`Rejections`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// Longer than [`MAX_MESSAGE_LEN`].
    Oversized,
    /// Not a well-formed message of this version.
    Malformed,
    /// An unknown key id, or a tag that does not verify.
    Forged,
    /// From an older run of its sender than one already seen.
    StaleEpoch,
    /// Seen before, or older than the replay window.
    Replayed,
    /// Sent with this endpoint's own sender id.
    Own,
    /// Authentic but out of place (kind, fetch nonce or order).
    Unexpected,
    /// A new sender while the sender table is full.
    TooManySenders,
}

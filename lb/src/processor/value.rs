//! What a flow-table value holds: the backend id and two flag bits.

/// Flow-table value bit: the client closed the TCP connection (FIN or RST);
/// the entry lives only the closing timeout past its last packet.
pub(super) const CLOSING: u32 = 1 << 31;
/// Flow-table value bit: a SYN stored only because a staged table would
/// move its flow (flow-exception sync); its first ACK makes it a flow like
/// any other, shared with peers, and until then it lives [`PIN_TIMEOUT_MS`].
pub(super) const PINNED: u32 = 1 << 30;
/// The backend id in a flow-table value.
pub(super) const BACKEND_BITS: u32 = !(CLOSING | PINNED);
/// How long a pinned SYN waits for its handshake's first ACK.
pub(super) const PIN_TIMEOUT_MS: u32 = 10_000;

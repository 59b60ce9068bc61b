//! The message format: a fixed header, a body, entries, and an HMAC-SHA256
//! tag over everything before it. Big-endian throughout.
//!
//! ```text
//! offset  bytes  field
//!  0       4     magic "DNLS"
//!  4       1     version (1)
//!  5       1     kind: 1 Exceptions, 2 Withdraw, 3 FetchRequest,
//!                      4 FetchReply, 5 FetchEnd
//!  6       2     entry count (1..=41 for Exceptions, Withdraw, FetchReply;
//!                0 for FetchRequest and FetchEnd)
//!  8       4     key id (see `Key::id`)
//! 12       8     sender id
//! 20       8     sender epoch (the sender's wall-clock ms at its start)
//! 28       8     sequence (per sender and epoch, from 1, every message)
//! 36       8     config generation (opaque)
//! 44       8     context: a FetchRequest's nonce, echoed by the FetchReply
//!                and FetchEnd messages that answer it; 0 otherwise
//! 52       8     FetchEnd only: the total of entries the answer carried
//! ..    32 × n   entries (see `FlowException`)
//! end-32  32     HMAC-SHA256 tag over every byte before it
//! ```
//!
//! A message is at most [`MAX_MESSAGE_LEN`] (1400) bytes: 41 entries make
//! 1396, which fits any path MTU of 1500 with IPv6, UDP and a tunnel or
//! two. Decoding checks the length first, then the structure (magic,
//! version, kind, count against the length), then the key id and the tag
//! (in constant time), then the entries (reserved bytes 0, no unknown
//! flag); it never panics, whatever the bytes.

use crate::auth::{Key, Keys, TAG_LEN};
use crate::entry::{FlowException, ENTRY_LEN};
use crate::Reject;

/// The first four bytes of every message.
pub const MAGIC: [u8; 4] = *b"DNLS";
/// The format's version.
pub const VERSION: u8 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 52;
/// The largest message.
pub const MAX_MESSAGE_LEN: usize = 1400;
/// The most entries in one message.
pub const MAX_ENTRIES: usize = (MAX_MESSAGE_LEN - HEADER_LEN - TAG_LEN) / ENTRY_LEN;
/// Bytes of a FetchEnd's body (the total).
const FETCH_END_BODY: usize = 8;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Exceptions streamed to the peers.
    Exceptions,
    /// Entries whose flows ended or stopped being exceptions.
    Withdraw,
    /// A starting gateway asks for everything a peer holds (TCP).
    FetchRequest,
    /// Part of the answer to a fetch (TCP).
    FetchReply,
    /// The end of the answer to a fetch, with its total (TCP).
    FetchEnd,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Exceptions => 1,
            Kind::Withdraw => 2,
            Kind::FetchRequest => 3,
            Kind::FetchReply => 4,
            Kind::FetchEnd => 5,
        }
    }

    fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            1 => Kind::Exceptions,
            2 => Kind::Withdraw,
            3 => Kind::FetchRequest,
            4 => Kind::FetchReply,
            5 => Kind::FetchEnd,
            _ => return None,
        })
    }

    /// Whether this kind carries entries (1 to [`MAX_ENTRIES`]).
    pub fn has_entries(self) -> bool {
        matches!(self, Kind::Exceptions | Kind::Withdraw | Kind::FetchReply)
    }

    fn body_len(self) -> usize {
        if self == Kind::FetchEnd {
            FETCH_END_BODY
        } else {
            0
        }
    }
}

/// The header fields a sender chooses (the magic, version, kind, count and
/// key id follow from the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// Who sent it (unique per gateway).
    pub sender: u64,
    /// The sender's start time (wall-clock ms): larger after a restart.
    pub epoch: u64,
    /// The sender's message counter within the epoch.
    pub sequence: u64,
    /// The sender's config generation (opaque to this crate).
    pub generation: u64,
    /// A fetch's nonce (0 for streamed messages).
    pub context: u64,
}

/// What a message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Streamed exceptions.
    Exceptions(Vec<FlowException>),
    /// Streamed withdrawals.
    Withdraw(Vec<FlowException>),
    /// A fetch request.
    FetchRequest,
    /// Part of a fetch's answer.
    FetchReply(Vec<FlowException>),
    /// The end of a fetch's answer: how many entries it carried.
    FetchEnd {
        /// Entries in the answer's FetchReply messages.
        total: u64,
    },
}

impl Body {
    /// The body's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Exceptions(_) => Kind::Exceptions,
            Body::Withdraw(_) => Kind::Withdraw,
            Body::FetchRequest => Kind::FetchRequest,
            Body::FetchReply(_) => Kind::FetchReply,
            Body::FetchEnd { .. } => Kind::FetchEnd,
        }
    }

    /// The entries carried (none for requests and ends).
    pub fn entries(&self) -> &[FlowException] {
        match self {
            Body::Exceptions(e) | Body::Withdraw(e) | Body::FetchReply(e) => e,
            Body::FetchRequest | Body::FetchEnd { .. } => &[],
        }
    }
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who sent it, when, and in which order.
    pub header: Header,
    /// What it carries.
    pub body: Body,
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Entries out of 1..=[`MAX_ENTRIES`] for a kind that carries them.
    #[error("{0} entries: a message carries 1 to {MAX_ENTRIES}")]
    EntryCount(usize),
}

/// The length of a message of `kind` with `entries` entries.
pub fn message_len(kind: Kind, entries: usize) -> usize {
    HEADER_LEN + kind.body_len() + entries * ENTRY_LEN + TAG_LEN
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

impl Message {
    /// Encodes and tags the message with `key`.
    pub fn encode(&self, key: &Key) -> Result<Vec<u8>, EncodeError> {
        let kind = self.body.kind();
        let entries = self.body.entries();
        if kind.has_entries() && !(1..=MAX_ENTRIES).contains(&entries.len()) {
            return Err(EncodeError::EntryCount(entries.len()));
        }
        let mut out = Vec::with_capacity(message_len(kind, entries.len()));
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(kind.code());
        // At most MAX_ENTRIES (41), checked above.
        out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        out.extend_from_slice(&key.id().to_be_bytes());
        let h = &self.header;
        for v in [h.sender, h.epoch, h.sequence, h.generation, h.context] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        if let Body::FetchEnd { total } = self.body {
            out.extend_from_slice(&total.to_be_bytes());
        }
        let mut b = [0u8; ENTRY_LEN];
        for e in entries {
            e.write(&mut b);
            out.extend_from_slice(&b);
        }
        let tag = key.tag(&out);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decodes and authenticates `bytes` with one of `keys`. Returns
    /// [`Reject::Oversized`], [`Reject::Malformed`] or [`Reject::Forged`]
    /// (unknown key id or wrong tag); never panics.
    pub fn decode(bytes: &[u8], keys: &Keys) -> Result<Message, Reject> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Reject::Oversized);
        }
        if bytes.len() < HEADER_LEN + TAG_LEN || bytes[0..4] != MAGIC || bytes[4] != VERSION {
            return Err(Reject::Malformed);
        }
        let kind = Kind::from_code(bytes[5]).ok_or(Reject::Malformed)?;
        let count = usize::from(u16::from_be_bytes([bytes[6], bytes[7]]));
        let count_ok = if kind.has_entries() {
            (1..=MAX_ENTRIES).contains(&count)
        } else {
            count == 0
        };
        if !count_ok || bytes.len() != message_len(kind, count) {
            return Err(Reject::Malformed);
        }
        let key_id = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let key = keys.find(key_id).ok_or(Reject::Forged)?;
        let (signed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        if !key.verify(signed, tag) {
            return Err(Reject::Forged);
        }
        let header = Header {
            sender: u64_at(bytes, 12),
            epoch: u64_at(bytes, 20),
            sequence: u64_at(bytes, 28),
            generation: u64_at(bytes, 36),
            context: u64_at(bytes, 44),
        };
        let start = HEADER_LEN + kind.body_len();
        let mut entries = Vec::with_capacity(count);
        for chunk in signed[start..].chunks_exact(ENTRY_LEN) {
            let mut b = [0u8; ENTRY_LEN];
            b.copy_from_slice(chunk);
            entries.push(FlowException::read(&b).ok_or(Reject::Malformed)?);
        }
        let body = match kind {
            Kind::Exceptions => Body::Exceptions(entries),
            Kind::Withdraw => Body::Withdraw(entries),
            Kind::FetchRequest => Body::FetchRequest,
            Kind::FetchReply => Body::FetchReply(entries),
            Kind::FetchEnd => Body::FetchEnd {
                total: u64_at(bytes, HEADER_LEN),
            },
        };
        Ok(Message { header, body })
    }
}

#[cfg(test)]
mod tests;

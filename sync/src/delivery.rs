//! What the endpoint hands the caller: authenticated entries as they
//! arrive, through a [`Sink`].

use std::net::SocketAddr;

use crate::entry::FlowException;

/// Where authenticated entries came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The sending gateway's id.
    pub sender: u64,
    /// Its run's epoch.
    pub epoch: u64,
    /// Its config generation when it sent them.
    pub generation: u64,
    /// The address the datagram came from.
    pub from: SocketAddr,
}

/// Entries handed to the caller as they arrive.
#[derive(Debug, Clone, Copy)]
pub enum Delivery<'a> {
    /// A peer's exceptions (also those the held store was too full for).
    Exceptions {
        /// Who sent them.
        origin: Origin,
        /// The entries, in the order sent.
        entries: &'a [FlowException],
    },
    /// A peer's withdrawals.
    Withdrawn {
        /// Who sent them.
        origin: Origin,
        /// The entries, in the order sent.
        entries: &'a [FlowException],
    },
}

/// What receives deliveries. Called on the runtime's threads, outside any
/// lock: it must return quickly and never block (hand the entries to a
/// bounded queue of the caller's, say).
pub trait Sink: Send + Sync + 'static {
    /// Takes one message's entries.
    fn deliver(&self, d: Delivery<'_>);
}

impl<F: Fn(Delivery<'_>) + Send + Sync + 'static> Sink for F {
    fn deliver(&self, d: Delivery<'_>) {
        self(d)
    }
}

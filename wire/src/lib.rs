//! Zero-copy, bounds-checked packet views and header writers for dnlb.
//!
//! Every header has a *view*, a thin wrapper around a byte buffer `B: AsRef<[u8]>` (a `&[u8]`,
//! a `&mut [u8]`, an mbuf's data, ...) that reads fields straight out of the buffer, plus (for
//! the headers dnlb emits) a small *writer* struct that serialises a header into a caller-owned
//! buffer. The layout follows smoltcp's `src/wire/`: each module has a private `field` module
//! naming every field's byte range in one place.
//!
//! # The checked/unchecked contract
//!
//! * `new_checked(buffer)` validates, once, everything the accessors rely on: the buffer is
//!   long enough for the fixed header, version fields are right, and every length field
//!   (IPv4 IHL and total length, IPv6 payload length, TCP data offset, UDP length, GRE flags,
//!   802.1Q tags) is consistent with the buffer. It returns a small [`WireError`] otherwise.
//! * After `new_checked` succeeded, **no accessor or setter panics**, whatever the bytes
//!   were. Setters never change a length field, so the view stays valid after any setter.
//!   Walks that depend on more than the fixed header (such as
//!   [`ipv6::Ipv6Packet::upper_layer`]) bound-check every step and return a `Result`.
//! * `new_unchecked(buffer)` does no validation. It is for buffers the caller has just written
//!   itself (or already checked); accessors on such a view may panic if the buffer is not a
//!   valid header.
//!
//! Views never own more than the buffer they were given and the crate never allocates
//! (it is `no_std`), so views can be used per packet on the hot path. Multi-byte fields are
//! network byte order on the wire and native integers in the API.
//!
//! Setters that change fields covered by a checksum (IPv4 TTL/TOS/addresses, TCP/UDP ports)
//! update that checksum incrementally (RFC 1624), which keeps a correct checksum correct and
//! leaves an incorrect one incorrect. The [`checksum`] module has the primitives for callers
//! that rewrite fields covered by a checksum in another header (NAT of addresses under a TCP
//! or UDP checksum).
//!
//! # Modules
//!
//! * [`ethernet`]: Ethernet II frames with up to two 802.1Q/802.1ad tags.
//! * [`ipv4`], [`ipv6`]: IP headers; IPv6 extension-header walk.
//! * [`tcp`], [`udp`], [`icmp`]: transport headers and their pseudo-header checksums.
//! * [`tunnel`]: VXLAN, GRE and GUE variant 1 (direct IP-in-UDP) encapsulations.
//! * [`checksum`]: the Internet checksum and its incremental update.
//! * [`ip`]: IP protocol numbers.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod buf;
mod bytes;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod icmp;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod tunnel;
pub mod udp;

pub use error::WireError;
pub use ethernet::EthernetFrame;
pub use icmp::{Icmpv4Packet, Icmpv6Packet};
pub use ipv4::{Ipv4Header, Ipv4Packet};
pub use ipv6::{Ipv6Fragment, Ipv6Header, Ipv6Packet, UpperLayer};
pub use tcp::{TcpFlags, TcpPacket};
pub use tunnel::{GreHeader, GrePacket, VxlanHeader, VxlanPacket};
pub use udp::{UdpHeader, UdpPacket};

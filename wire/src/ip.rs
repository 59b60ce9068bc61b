//! IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), used in the IPv4
//! protocol field and the IPv6 next-header fields.

/// IPv6 hop-by-hop options extension header.
pub const IPPROTO_HOPOPTS: u8 = 0;
/// ICMP for IPv4.
pub const IPPROTO_ICMP: u8 = 1;
/// IPv4 encapsulated in IP (IP-in-IP).
pub const IPPROTO_IPIP: u8 = 4;
/// TCP.
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 encapsulated in IP.
pub const IPPROTO_IPV6: u8 = 41;
/// IPv6 routing extension header.
pub const IPPROTO_ROUTING: u8 = 43;
/// IPv6 fragment extension header.
pub const IPPROTO_FRAGMENT: u8 = 44;
/// Generic Routing Encapsulation.
pub const IPPROTO_GRE: u8 = 47;
/// Encapsulating Security Payload (its length is not readable without the SA; a walk stops
/// there).
pub const IPPROTO_ESP: u8 = 50;
/// Authentication Header.
pub const IPPROTO_AH: u8 = 51;
/// ICMP for IPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// IPv6 "no next header".
pub const IPPROTO_NONE: u8 = 59;
/// IPv6 destination options extension header.
pub const IPPROTO_DSTOPTS: u8 = 60;

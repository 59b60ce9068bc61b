//! ICMP for IPv4 (RFC 792) and ICMPv6 (RFC 4443): message views and type constants.
//!
//! Both share the 8-byte layout below; what the "rest of header" word means depends on the
//! type (echo identifier and sequence, next-hop MTU, packet-too-big MTU, pointer, unused).
//! For error messages the payload is the start of the packet that caused the error.
//!
//! ```text
//!  0        8        16                 31
//! +--------+--------+--------------------+
//! |  type  |  code  |      checksum      |
//! +--------+--------+--------------------+
//! |            rest of header            |
//! +--------------------------------------+
//! |   payload (invoking packet, data)    |
//! ```
//!
//! The view's buffer is the whole message, as given by the IP payload: the checksum covers
//! all of it.

use core::net::Ipv6Addr;

use crate::bytes::{get_u16, get_u32, set_u16};
use crate::ip::IPPROTO_ICMPV6;
use crate::{checksum, WireError};

/// Length of the ICMP header (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = 8;

/// ICMPv4 echo reply.
pub const ICMPV4_ECHO_REPLY: u8 = 0;
/// ICMPv4 destination unreachable.
pub const ICMPV4_DEST_UNREACHABLE: u8 = 3;
/// ICMPv4 source quench (deprecated, RFC 6633).
pub const ICMPV4_SOURCE_QUENCH: u8 = 4;
/// ICMPv4 redirect.
pub const ICMPV4_REDIRECT: u8 = 5;
/// ICMPv4 echo request.
pub const ICMPV4_ECHO_REQUEST: u8 = 8;
/// ICMPv4 time exceeded.
pub const ICMPV4_TIME_EXCEEDED: u8 = 11;
/// ICMPv4 parameter problem.
pub const ICMPV4_PARAMETER_PROBLEM: u8 = 12;
/// Code of [`ICMPV4_DEST_UNREACHABLE`]: fragmentation needed and DF set (path MTU discovery,
/// RFC 1191).
pub const ICMPV4_CODE_FRAG_NEEDED: u8 = 4;

/// ICMPv6 destination unreachable.
pub const ICMPV6_DEST_UNREACHABLE: u8 = 1;
/// ICMPv6 packet too big (path MTU discovery, RFC 8201).
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 time exceeded.
pub const ICMPV6_TIME_EXCEEDED: u8 = 3;
/// ICMPv6 parameter problem.
pub const ICMPV6_PARAMETER_PROBLEM: u8 = 4;
/// ICMPv6 echo request.
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 echo reply.
pub const ICMPV6_ECHO_REPLY: u8 = 129;
/// ICMPv6 router solicitation (neighbour discovery, RFC 4861).
pub const ICMPV6_ROUTER_SOLICIT: u8 = 133;
/// ICMPv6 router advertisement (neighbour discovery).
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;
/// ICMPv6 neighbour solicitation (neighbour discovery).
pub const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 neighbour advertisement (neighbour discovery).
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// ICMPv6 redirect (neighbour discovery).
pub const ICMPV6_REDIRECT: u8 = 137;

/// Whether an ICMPv6 type is one of the neighbour discovery messages (133..=137), which a
/// host must answer or pass to its stack rather than forward.
#[inline]
pub const fn is_icmpv6_neighbor_discovery(msg_type: u8) -> bool {
    matches!(msg_type, ICMPV6_ROUTER_SOLICIT..=ICMPV6_REDIRECT)
}

/// Field offsets of the ICMP header (the same for ICMPv4 and ICMPv6).
mod field {
    /// Message type.
    pub(super) const TYPE: usize = 0;
    /// Code.
    pub(super) const CODE: usize = 1;
    /// Checksum.
    pub(super) const CHECKSUM: usize = 2;
    /// Rest of header: type-specific 32 bits.
    pub(super) const REST: usize = 4;
    /// Echo identifier (echo request and reply).
    pub(super) const ECHO_IDENT: usize = 4;
    /// Echo sequence number (echo request and reply).
    pub(super) const ECHO_SEQ: usize = 6;
    /// ICMPv4 "fragmentation needed": next-hop MTU (low 16 bits of the rest of header).
    pub(super) const NEXT_HOP_MTU: usize = 6;
    /// Payload: data, or the invoking packet of an error.
    pub(super) const PAYLOAD: usize = 8;
}

/// Defines the accessors and setters the two ICMP views share.
macro_rules! icmp_common {
    ($view:ident) => {
        impl<B: AsRef<[u8]>> $view<B> {
            /// Wraps `buffer` without any check; accessors may panic on a buffer under 8
            /// bytes.
            pub const fn new_unchecked(buffer: B) -> Self {
                $view { buffer }
            }

            /// Wraps `buffer` after checking that it holds the 8-byte header (else
            /// [`WireError::Truncated`]).
            pub fn new_checked(buffer: B) -> Result<Self, WireError> {
                if buffer.as_ref().len() < HEADER_LEN {
                    return Err(WireError::Truncated);
                }
                Ok($view { buffer })
            }

            /// Consumes the view, returning the buffer.
            pub fn into_inner(self) -> B {
                self.buffer
            }

            /// Message type.
            #[inline]
            pub fn msg_type(&self) -> u8 {
                self.buffer.as_ref()[field::TYPE]
            }

            /// Code.
            #[inline]
            pub fn code(&self) -> u8 {
                self.buffer.as_ref()[field::CODE]
            }

            /// The checksum field.
            #[inline]
            pub fn checksum(&self) -> u16 {
                get_u16(self.buffer.as_ref(), field::CHECKSUM)
            }

            /// The type-specific 32 bits after the checksum.
            #[inline]
            pub fn rest_of_header(&self) -> u32 {
                get_u32(self.buffer.as_ref(), field::REST)
            }

            /// Echo identifier (first half of the rest of header; meaningful for echo
            /// request and reply).
            #[inline]
            pub fn echo_ident(&self) -> u16 {
                get_u16(self.buffer.as_ref(), field::ECHO_IDENT)
            }

            /// Echo sequence number (second half of the rest of header; meaningful for echo
            /// request and reply).
            #[inline]
            pub fn echo_seq(&self) -> u16 {
                get_u16(self.buffer.as_ref(), field::ECHO_SEQ)
            }

            /// The bytes after the 8-byte header: echo data, or for an error message the
            /// invoking packet (its IP header and at least the first 8 bytes after it).
            #[inline]
            pub fn payload(&self) -> &[u8] {
                &self.buffer.as_ref()[field::PAYLOAD..]
            }
        }

        impl<B: AsRef<[u8]> + AsMut<[u8]>> $view<B> {
            /// Sets the message type (the checksum is not updated).
            #[inline]
            pub fn set_msg_type(&mut self, msg_type: u8) {
                self.buffer.as_mut()[field::TYPE] = msg_type;
            }

            /// Sets the code (the checksum is not updated).
            #[inline]
            pub fn set_code(&mut self, code: u8) {
                self.buffer.as_mut()[field::CODE] = code;
            }

            /// Sets the rest of header (the checksum is not updated).
            #[inline]
            pub fn set_rest_of_header(&mut self, value: u32) {
                let bytes = self.buffer.as_mut();
                bytes[field::REST..field::PAYLOAD].copy_from_slice(&value.to_be_bytes());
            }

            /// Sets the checksum field to `value`.
            #[inline]
            pub fn set_checksum(&mut self, value: u16) {
                set_u16(self.buffer.as_mut(), field::CHECKSUM, value);
            }

            /// The bytes after the header, mutably.
            #[inline]
            pub fn payload_mut(&mut self) -> &mut [u8] {
                &mut self.buffer.as_mut()[field::PAYLOAD..]
            }
        }
    };
}

/// A view of an ICMPv4 message.
///
/// See the [crate docs](crate) for the checked/unchecked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<B> {
    buffer: B,
}

icmp_common!(Icmpv4Packet);

impl<B: AsRef<[u8]>> Icmpv4Packet<B> {
    /// Whether this is an error message carrying an invoking packet (destination
    /// unreachable, source quench, redirect, time exceeded, parameter problem).
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            ICMPV4_DEST_UNREACHABLE
                | ICMPV4_SOURCE_QUENCH
                | ICMPV4_REDIRECT
                | ICMPV4_TIME_EXCEEDED
                | ICMPV4_PARAMETER_PROBLEM
        )
    }

    /// For "destination unreachable, fragmentation needed" (type 3 code 4): the next-hop MTU
    /// (low 16 bits of the rest of header; 0 from pre-RFC 1191 routers). `None` for any
    /// other type or code.
    #[inline]
    pub fn next_hop_mtu(&self) -> Option<u16> {
        if self.msg_type() == ICMPV4_DEST_UNREACHABLE && self.code() == ICMPV4_CODE_FRAG_NEEDED {
            Some(get_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU))
        } else {
            None
        }
    }

    /// Whether the checksum (over the whole message) is correct.
    #[inline]
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<B> {
    /// Computes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let sum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(sum);
    }
}

/// A view of an ICMPv6 message.
///
/// See the [crate docs](crate) for the checked/unchecked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<B> {
    buffer: B,
}

icmp_common!(Icmpv6Packet);

impl<B: AsRef<[u8]>> Icmpv6Packet<B> {
    /// Whether this is an error message (types 0..=127), carrying an invoking packet.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    /// Whether this is a neighbour discovery message (types 133..=137).
    #[inline]
    pub fn is_neighbor_discovery(&self) -> bool {
        is_icmpv6_neighbor_discovery(self.msg_type())
    }

    /// For "packet too big" (type 2): the MTU (the whole rest of header). `None` for any
    /// other type.
    #[inline]
    pub fn mtu(&self) -> Option<u32> {
        if self.msg_type() == ICMPV6_PACKET_TOO_BIG {
            Some(self.rest_of_header())
        } else {
            None
        }
    }

    /// Whether the checksum (pseudo-header from `src` to `dst`, then the whole message) is
    /// correct.
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::transport_v6(src, dst, IPPROTO_ICMPV6, self.buffer.as_ref()) == 0
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<B> {
    /// Computes the checksum over the pseudo-header from `src` to `dst` and the whole message.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let sum = checksum::transport_v6(src, dst, IPPROTO_ICMPV6, self.buffer.as_ref());
        self.set_checksum(sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4::Ipv4Packet;

    /// Fragmentation needed, next-hop MTU 1400, quoting an IPv4/TCP packet's first 28 bytes.
    #[rustfmt::skip]
    const FRAG_NEEDED: [u8; 36] = [
        0x03,                   // type 3 destination unreachable
        0x04,                   // code 4 fragmentation needed
        0x00, 0x00,             // checksum (filled in the test)
        0x00, 0x00,             // unused
        0x05, 0x78,             // next-hop MTU 1400
        // invoking packet: IPv4 header
        0x45, 0x00, 0x05, 0xdc, // version 4, IHL 5, TOS 0, total length 1500
        0x00, 0x01, 0x40, 0x00, // ident 1, DF
        0x40, 0x06, 0x00, 0x00, // TTL 64, TCP, checksum not checked here
        10, 0, 0, 1,            // src
        10, 0, 0, 2,            // dst
        // first 8 bytes of TCP: ports 40000 -> 80, sequence number
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04,
    ];

    #[test]
    fn icmpv4_frag_needed() {
        let mut msg = FRAG_NEEDED;
        let mut icmp = Icmpv4Packet::new_checked(&mut msg[..]).unwrap();
        assert!(!icmp.verify_checksum_v4());
        icmp.fill_checksum_v4();
        assert!(icmp.verify_checksum_v4());
        assert_eq!(icmp.msg_type(), ICMPV4_DEST_UNREACHABLE);
        assert_eq!(icmp.code(), ICMPV4_CODE_FRAG_NEEDED);
        assert!(icmp.is_error());
        assert_eq!(icmp.next_hop_mtu(), Some(1400));
        assert_eq!(icmp.rest_of_header(), 1400);
        assert_eq!(icmp.payload(), &FRAG_NEEDED[8..]);
        // The quoted packet is truncated: a full view refuses it, as it should.
        assert_eq!(
            Ipv4Packet::new_checked(icmp.payload()),
            Err(WireError::Truncated)
        );
        icmp.set_code(1); // host unreachable
        assert_eq!(icmp.next_hop_mtu(), None);
        icmp.set_msg_type(ICMPV4_ECHO_REQUEST);
        assert!(!icmp.is_error());
    }

    #[test]
    fn icmpv4_echo() {
        #[rustfmt::skip]
        let mut msg = [
            0x08, 0x00,             // echo request, code 0
            0x00, 0x00,             // checksum
            0x12, 0x34,             // identifier
            0x00, 0x07,             // sequence
            b'p', b'i', b'n', b'g', // data
        ];
        let mut icmp = Icmpv4Packet::new_checked(&mut msg[..]).unwrap();
        icmp.fill_checksum_v4();
        assert_eq!((icmp.echo_ident(), icmp.echo_seq()), (0x1234, 7));
        assert!(!icmp.is_error());
        assert_eq!(icmp.next_hop_mtu(), None);
        assert_eq!(icmp.payload(), b"ping");
        icmp.set_msg_type(ICMPV4_ECHO_REPLY);
        icmp.payload_mut()[0] = b'P';
        icmp.fill_checksum_v4();
        assert!(icmp.verify_checksum_v4());
        assert_eq!(msg[0], 0);
    }

    #[test]
    fn icmpv6_packet_too_big_and_nd() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        #[rustfmt::skip]
        let mut msg = [
            0x02, 0x00,             // packet too big, code 0
            0x00, 0x00,             // checksum
            0x00, 0x00, 0x05, 0x00, // MTU 1280
            0x60, 0x00, 0x00, 0x00, // invoking packet starts (IPv6 header)
        ];
        let mut icmp = Icmpv6Packet::new_checked(&mut msg[..]).unwrap();
        icmp.fill_checksum_v6(src, dst);
        assert!(icmp.verify_checksum_v6(src, dst));
        assert!(!icmp.verify_checksum_v6(src, src));
        assert!(icmp.is_error());
        assert_eq!(icmp.mtu(), Some(1280));
        assert_eq!(icmp.payload(), &[0x60, 0, 0, 0]);
        icmp.set_msg_type(ICMPV6_NEIGHBOR_SOLICIT);
        icmp.set_rest_of_header(0);
        assert!(icmp.is_neighbor_discovery());
        assert!(!icmp.is_error());
        assert_eq!(icmp.mtu(), None);
        assert_eq!(icmp.rest_of_header(), 0);
        for t in [133, 134, 135, 136, 137] {
            assert!(is_icmpv6_neighbor_discovery(t));
        }
        assert!(!is_icmpv6_neighbor_discovery(ICMPV6_ECHO_REQUEST));
        assert!(!is_icmpv6_neighbor_discovery(138));
    }

    #[test]
    fn truncated() {
        for len in 0..8 {
            assert_eq!(
                Icmpv4Packet::new_checked(&FRAG_NEEDED[..len]),
                Err(WireError::Truncated)
            );
            assert_eq!(
                Icmpv6Packet::new_checked(&FRAG_NEEDED[..len]),
                Err(WireError::Truncated)
            );
        }
        let empty = Icmpv6Packet::new_checked(&FRAG_NEEDED[..8]).unwrap();
        assert_eq!(empty.payload(), &[] as &[u8]);
    }
}

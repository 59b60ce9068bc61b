//! The crate's one error type.

use core::fmt;

/// Why a buffer was not accepted as a header, or a header could not be written.
///
/// Small and `Copy` so that the data plane can map it to a drop counter without allocating;
/// [`WireError::name`] gives the counter's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer is shorter than the fixed header, than a header-length field says, or than a
    /// packet-length field (IPv4 total length, IPv6 payload length, UDP length) says.
    Truncated,
    /// The version field is wrong (IPv4 not 4, IPv6 not 6, GRE not 0).
    BadVersion,
    /// A header-length field is smaller than the fixed header (IPv4 IHL < 5, TCP data offset < 5).
    BadHeaderLength,
    /// The IPv4 total length is smaller than the IPv4 header.
    BadTotalLength,
    /// The UDP length field is smaller than the 8-byte UDP header.
    BadLength,
    /// An IPv6 packet has more extension headers than [`crate::ipv6::MAX_EXTENSION_HEADERS`].
    TooManyExtensionHeaders,
    /// A GRE header sets flag bits this crate does not implement (RFC 1701 routing, strict
    /// source route or recursion control).
    BadGreFlags,
    /// The output buffer given to a writer is too small for the header.
    BufferTooSmall,
    /// A writer was asked for a length that does not fit the header's length field.
    PayloadTooLarge,
    /// A writer was given a value wider than its field (an IPv6 flow label over 20 bits, a VXLAN
    /// network identifier over 24 bits).
    ValueOutOfRange,
}

impl WireError {
    /// Every variant, in declaration order; for building counter tables.
    pub const ALL: [WireError; 10] = [
        WireError::Truncated,
        WireError::BadVersion,
        WireError::BadHeaderLength,
        WireError::BadTotalLength,
        WireError::BadLength,
        WireError::TooManyExtensionHeaders,
        WireError::BadGreFlags,
        WireError::BufferTooSmall,
        WireError::PayloadTooLarge,
        WireError::ValueOutOfRange,
    ];

    /// A short, stable `snake_case` name, suitable as a counter name.
    pub const fn name(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::BadVersion => "bad_version",
            WireError::BadHeaderLength => "bad_header_length",
            WireError::BadTotalLength => "bad_total_length",
            WireError::BadLength => "bad_length",
            WireError::TooManyExtensionHeaders => "too_many_extension_headers",
            WireError::BadGreFlags => "bad_gre_flags",
            WireError::BufferTooSmall => "buffer_too_small",
            WireError::PayloadTooLarge => "payload_too_large",
            WireError::ValueOutOfRange => "value_out_of_range",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case() {
        for (i, a) in WireError::ALL.iter().enumerate() {
            assert!(a
                .name()
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c == b'_'));
            assert_eq!(a.to_string(), a.name());
            for b in &WireError::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}

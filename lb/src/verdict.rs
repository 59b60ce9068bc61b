//! What the load-balancing logic decides for a packet, and the one table of
//! drop reasons used by the whole data path (every dropped packet counts
//! under exactly one of them).

use crate::ids::BackendId;

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// The Ethernet header (or a VLAN tag) is truncated.
    MalformedL2 = 0,
    /// The IPv4/IPv6 header is truncated or invalid (version, lengths,
    /// extension-header chain).
    MalformedL3,
    /// The TCP/UDP/ICMP header is truncated or invalid.
    MalformedL4,
    /// Not for a VIP, and neither a host port nor a forward port is
    /// configured (the kernel sees such frames through af_packet/af_xdp).
    NotForVip,
    /// To a VIP, but no listener serves that protocol and port.
    NoListener,
    /// The listener has no backend that can take new flows.
    NoBackend,
    /// An IP fragment on a listener whose policy drops fragments.
    Fragment,
    /// A non-first fragment to a VIP with several port listeners: which
    /// listener it belongs to cannot be told without reassembly.
    FragmentAmbiguous,
    /// Too large after encapsulation and not answerable (policy `drop`, or
    /// IPv4 without DF).
    TooBig,
    /// An ICMP error to send, but the per-worker ICMP rate limit is reached.
    IcmpRateLimited,
    /// ICMP to a VIP that is neither an echo request nor an error about a
    /// VIP flow.
    IcmpUnsupported,
    /// ICMP echo request to a VIP with `icmp_echo = "drop"`.
    EchoDropped,
    /// Not enough headroom in the buffer to prepend the encapsulation.
    NoHeadroom,
    /// The TX queue refused the packet (ring full or link down).
    TxRefused,
    /// The packet spans several buffer segments, which dnlb does not forward.
    NonContiguous,
    /// From a source the listener's access list denies.
    AclDenied,
    /// An ICMP echo request to a VIP beyond the echo-reply rate limit.
    EchoRateLimited,
    /// An ICMP error about a VIP flow of a kind backends have no use for
    /// (time exceeded, parameter problem, redirects, unreachable codes
    /// other than network/host/protocol/port/prohibited).
    IcmpFiltered,
    /// "Fragmentation needed" / "packet too big" announcing an MTU below
    /// the protocol minimum (68 for IPv4, 1280 for IPv6).
    IcmpMtuTooSmall,
    /// An ICMP error whose outer destination is not the source of the
    /// packet it quotes (forged to aim at another flow).
    IcmpQuoteMismatch,
    /// An ICMP error to forward beyond the forwarding rate limit.
    IcmpForwardRateLimited,
    /// A new flow beyond its source's new-flow rate limit.
    SourceRateLimited,
    /// A new flow beyond its listener's new-flow rate limit.
    ListenerRateLimited,
    /// Bound for the host's own stack, beyond its class's rate on the
    /// exception path.
    HostPoliced,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 24;
    /// All reasons, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::MalformedL2,
        DropReason::MalformedL3,
        DropReason::MalformedL4,
        DropReason::NotForVip,
        DropReason::NoListener,
        DropReason::NoBackend,
        DropReason::Fragment,
        DropReason::FragmentAmbiguous,
        DropReason::TooBig,
        DropReason::IcmpRateLimited,
        DropReason::IcmpUnsupported,
        DropReason::EchoDropped,
        DropReason::NoHeadroom,
        DropReason::TxRefused,
        DropReason::NonContiguous,
        DropReason::AclDenied,
        DropReason::EchoRateLimited,
        DropReason::IcmpFiltered,
        DropReason::IcmpMtuTooSmall,
        DropReason::IcmpQuoteMismatch,
        DropReason::IcmpForwardRateLimited,
        DropReason::SourceRateLimited,
        DropReason::ListenerRateLimited,
        DropReason::HostPoliced,
    ];

    /// Metric label.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::MalformedL2 => "malformed_l2",
            DropReason::MalformedL3 => "malformed_l3",
            DropReason::MalformedL4 => "malformed_l4",
            DropReason::NotForVip => "not_for_vip",
            DropReason::NoListener => "no_listener",
            DropReason::NoBackend => "no_backend",
            DropReason::Fragment => "fragment",
            DropReason::FragmentAmbiguous => "fragment_ambiguous",
            DropReason::TooBig => "too_big",
            DropReason::IcmpRateLimited => "icmp_rate_limited",
            DropReason::IcmpUnsupported => "icmp_unsupported",
            DropReason::EchoDropped => "echo_dropped",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::TxRefused => "tx_refused",
            DropReason::NonContiguous => "non_contiguous",
            DropReason::AclDenied => "acl_denied",
            DropReason::EchoRateLimited => "echo_rate_limited",
            DropReason::IcmpFiltered => "icmp_filtered",
            DropReason::IcmpMtuTooSmall => "icmp_mtu_too_small",
            DropReason::IcmpQuoteMismatch => "icmp_quote_mismatch",
            DropReason::IcmpForwardRateLimited => "icmp_forward_rate_limited",
            DropReason::SourceRateLimited => "source_rate_limited",
            DropReason::ListenerRateLimited => "listener_rate_limited",
            DropReason::HostPoliced => "host_policed",
        }
    }

    /// What the counter means (for metric help texts and docs).
    pub fn help(self) -> &'static str {
        match self {
            DropReason::MalformedL2 => "truncated Ethernet header or VLAN tag",
            DropReason::MalformedL3 => {
                "truncated or invalid IPv4/IPv6 header or extension-header chain"
            }
            DropReason::MalformedL4 => "truncated or invalid TCP, UDP or ICMP header",
            DropReason::NotForVip => "not for a VIP and no host or forward port configured",
            DropReason::NoListener => "to a VIP, but no listener for that protocol and port",
            DropReason::NoBackend => "the listener has no backend that can take new flows",
            DropReason::Fragment => "IP fragment on a listener whose fragment policy is drop",
            DropReason::FragmentAmbiguous => {
                "non-first fragment to a VIP with several port listeners"
            }
            DropReason::TooBig => "too large after encapsulation and not answered with ICMP",
            DropReason::IcmpRateLimited => "ICMP error suppressed by the per-worker rate limit",
            DropReason::IcmpUnsupported => {
                "ICMP to a VIP that is neither echo nor an error quoting a VIP flow"
            }
            DropReason::EchoDropped => "ICMP echo to a VIP with icmp_echo = drop",
            DropReason::NoHeadroom => "not enough buffer headroom for the encapsulation",
            DropReason::TxRefused => "the TX queue was full or the port down",
            DropReason::NonContiguous => {
                "multi-segment packet (jumbo frame without scatter support)"
            }
            DropReason::AclDenied => "from a source the listener's access list denies",
            DropReason::EchoRateLimited => "ICMP echo to a VIP beyond the echo-reply rate limit",
            DropReason::IcmpFiltered => {
                "ICMP error of a kind backends do not use (time exceeded, parameter problem, ...)"
            }
            DropReason::IcmpMtuTooSmall => {
                "frag-needed / packet-too-big below the minimum MTU (68 IPv4, 1280 IPv6)"
            }
            DropReason::IcmpQuoteMismatch => {
                "ICMP error whose destination is not the source of the packet it quotes"
            }
            DropReason::IcmpForwardRateLimited => {
                "ICMP error to a backend beyond the forwarding rate limit"
            }
            DropReason::SourceRateLimited => "new flow beyond its source's new-flow rate limit",
            DropReason::ListenerRateLimited => "new flow beyond the listener's new-flow rate limit",
            DropReason::HostPoliced => "to the host's own stack beyond its class's rate",
        }
    }
}

/// The load-balancing decision for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The packet was encapsulated toward this backend: send it out.
    Encapsulated(BackendId),
    /// The packet was turned into a reply to its sender (ICMP echo reply,
    /// fragmentation needed / packet too big): send it out.
    Reply,
    /// Not for a VIP (ARP, ND, routing protocols, traffic to the host's own
    /// addresses): leave it to the host.
    NotForVip,
    /// Drop it, counting this reason.
    Drop(DropReason),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_table_is_complete_and_unique() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        let mut helps: Vec<_> = DropReason::ALL.iter().map(|r| r.help()).collect();
        helps.sort();
        helps.dedup();
        assert_eq!(
            helps.len(),
            DropReason::COUNT,
            "every reason has its own help"
        );
        let ops = include_str!("../../docs/operations.md");
        for r in DropReason::ALL {
            assert!(
                ops.contains(&format!("| `{}` | {} |", r.name(), r.help())),
                "docs/operations.md lacks the row of {r:?}"
            );
        }
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} out of order");
            // Names are metric labels: lowercase words joined by `_`.
            assert!(
                r.name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                "{r:?}"
            );
        }
    }
}

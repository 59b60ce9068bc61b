//! The exception path's classes: which frames bound for the host's own
//! stack carry routing, neighbour discovery, answers from backends, or
//! anything else (see [`crate::policing::HostClass`]). Off the hot path:
//! only frames the processor found not for a VIP are classified.

use dnlb_wire::ethernet::{EthernetFrame, ETHERTYPE_ARP, ETHERTYPE_IPV4};
use dnlb_wire::ip::{IPPROTO_TCP, IPPROTO_UDP};
use dnlb_wire::tcp::TcpFlags;

use super::parse::{self, Parsed, Tuple, L4};
use crate::policing::HostClass;
use crate::snapshot::Snapshot;
use crate::vip::{addr_key_v4, addr_key_v6};

/// BGP's TCP port.
const BGP_PORT: u16 = 179;
/// BFD's UDP ports (single hop, echo, multihop).
const BFD_PORTS: [u16; 3] = [3784, 3785, 4784];

/// The class of `frame`.
pub(super) fn class(snap: &Snapshot, frame: &[u8]) -> HostClass {
    let ethertype = EthernetFrame::new_checked(frame).map(|e| e.ethertype());
    if ethertype == Ok(ETHERTYPE_ARP) {
        return HostClass::Neighbor;
    }
    match parse::frame(frame) {
        Ok(Some((ETHERTYPE_IPV4, l2))) => match parse::ipv4(frame, l2) {
            Ok((_, p)) => of_ip(snap, &p, addr_key_v4(p.t.src)),
            Err(_) => HostClass::Other,
        },
        Ok(Some((_, l2))) => match parse::ipv6(frame, l2) {
            Ok((_, p)) if p.l4 == L4::Host => HostClass::Neighbor,
            Ok((_, p)) => of_ip(snap, &p, addr_key_v6(p.t.src)),
            Err(_) => HostClass::Other,
        },
        _ => HostClass::Other,
    }
}

/// The class of a parsed IP packet whose source has VIP-table key `src`.
/// Routing: BGP or BFD from a configured peer; without peers configured,
/// any BGP segment but a bare SYN (a session is opened rarely, and a flood
/// of SYNs to port 179 must not take routing's share) and any BFD packet.
fn of_ip<A>(snap: &Snapshot, p: &Parsed<A>, src: u128) -> HostClass {
    let routing = p.l4 == L4::Ports
        && routing(&p.t)
        && if snap.routing_peers.is_empty() {
            let f = p.tcp_flags;
            !f.contains(TcpFlags::SYN) || f.contains(TcpFlags::ACK)
        } else {
            snap.routing_peers.binary_search(&src).is_ok()
        };
    if routing {
        HostClass::Routing
    } else if snap.backend_keys.binary_search(&src).is_ok() {
        HostClass::Backends
    } else {
        HostClass::Other
    }
}

/// BGP (either side's port 179) or BFD.
fn routing<A>(t: &Tuple<A>) -> bool {
    match t.proto {
        IPPROTO_TCP => t.sport == BGP_PORT || t.dport == BGP_PORT,
        IPPROTO_UDP => BFD_PORTS.contains(&t.dport),
        _ => false,
    }
}

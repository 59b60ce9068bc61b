//! What the packet path needs of a backend, dense by backend id: its
//! encapsulation templates (with the longest inner packets that fit the
//! MTU), and whether a flow's packet may go to it, in one compare. The rest of
//! [`super::BackendState`] (names, zones, status) stays apart, so a packet
//! touches one aligned record and looks through no `Option`.

use crate::encap::EncapTemplate;

/// [`BackendRoute`]'s gate: a backend of this snapshot has this id.
const PRESENT: u32 = 1 << 17;
/// [`BackendRoute`]'s gate: the backend may be used (see
/// [`super::BackendState::usable`]).
const USABLE: u32 = 1 << 16;

/// The packet path's part of a backend (see the module docs). An id
/// without a backend has one too, which admits nothing.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct BackendRoute {
    /// Templates for inner IPv4 and inner IPv6 packets, fitted to the
    /// egress MTU ([`EncapTemplate::max_ip_len`]).
    pub encap: [EncapTemplate; 2],
    /// [`PRESENT`], [`USABLE`] and the target group's index.
    gate: u32,
}

impl BackendRoute {
    /// The route of a backend of target group `group`.
    pub(super) fn of(group: u16, usable: bool, encap: [EncapTemplate; 2]) -> Self {
        let usable = if usable { USABLE } else { 0 };
        BackendRoute {
            encap,
            gate: PRESENT | usable | u32::from(group),
        }
    }

    /// The route of an id without a backend.
    pub(super) fn absent() -> Self {
        BackendRoute {
            encap: [EncapTemplate::UNBUILT, EncapTemplate::UNBUILT],
            gate: 0,
        }
    }

    /// Whether a backend of the snapshot has this id.
    #[inline(always)]
    pub fn present(&self) -> bool {
        self.gate & PRESENT != 0
    }

    /// Whether a packet of a flow of target group `group` may go to this
    /// backend: it is a usable backend of that group.
    #[inline(always)]
    pub fn admits(&self, group: u16) -> bool {
        self.gate == PRESENT | USABLE | u32::from(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_admits_its_own_group_while_usable() {
        let r = |g, usable| BackendRoute::of(g, usable, [EncapTemplate::UNBUILT; 2]);
        assert!(r(3, true).admits(3));
        assert!(!r(3, true).admits(2));
        assert!(!r(3, true).admits(3 | 1 << 8));
        assert!(!r(3, false).admits(3));
        assert!(r(3, false).present());
        assert!(r(0, true).admits(0));
        assert!(!BackendRoute::absent().present());
        assert!(!BackendRoute::absent().admits(0));
        assert_eq!(std::mem::size_of::<BackendRoute>() % 64, 0);
    }
}

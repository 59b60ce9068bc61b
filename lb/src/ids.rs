//! Identifier newtypes shared by the load-balancing logic.
//!
//! Ids are assigned by the control plane and are distinct types so a backend
//! id can never be passed where a listener id is expected.

/// Stable identifier of a backend across config reloads, assigned by the
/// control plane.
///
/// It is the value stored in Maglev tables ([`crate::maglev::MaglevTable`])
/// and in flow tables ([`crate::flow_table::FlowTable`]), so it must keep
/// naming the same backend for as long as flows may point at it. It is
/// `#[repr(transparent)]` over `u32` so tables of ids are as compact as tables
/// of `u32`.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendId(pub u32);

/// Identifier of a listener (a VIP set + protocol + port), assigned by the
/// control plane.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub u16);

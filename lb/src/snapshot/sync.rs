//! What flow-exception sync needs of a snapshot: the names gateways give
//! listeners and backends, a staged version's tables, and under own-zone
//! preference the tables the group's other zones use.

use std::collections::HashMap;
use std::sync::Arc;

use dnlb_model::{Config, ZoneAffinity};

use super::{
    maglev_input, plan_group, prefer_zone, table_for, BuildTime, MaglevInput, Snapshot,
    SnapshotError,
};
use crate::ids::BackendId;
use crate::maglev::{Identity, MaglevTable};

impl Snapshot {
    /// This snapshot with `next` staged: each listener also carries the
    /// table its namesake (same counter slot) has in `next`, so that workers
    /// can find and share the flows `next` would move before anyone uses it
    /// (flow-exception sync). Workers keep scheduling with the current
    /// tables. A listener absent from `next` stages nothing.
    pub fn staging(&self, next: &Snapshot) -> Snapshot {
        let mut s = self.clone();
        for l in &mut s.listeners {
            let n = next.listener_at_slot(l.slot);
            l.next_table = n.map(|n| n.table.clone());
            l.peer_tables = n.map(|n| n.peer_tables.clone()).unwrap_or_default();
            l.loss_tables = n.map(|n| n.loss_tables.clone()).unwrap_or_default();
        }
        s
    }

    /// Whether using `next` instead of this would send some flow elsewhere:
    /// a listener (by counter slot) of both has a different table in
    /// `next`. (Tables whose input did not change are shared, so this is a
    /// pointer comparison.)
    pub fn moves_flows(&self, next: &Snapshot) -> bool {
        next.listeners.iter().any(|n| {
            self.listener_at_slot(n.slot)
                .is_some_and(|l| !Arc::ptr_eq(&l.table, &n.table))
        })
    }

    /// Whether a version is staged (some listener carries a next table).
    pub fn is_staging(&self) -> bool {
        self.listeners.iter().any(|l| l.next_table.is_some())
    }
}

/// Seed of [`listener_sync_key`].
const LISTENER_KEY_SEED: u64 = 0x6c69_7374_656e_6572;
/// Seed of [`backend_sync_key`].
const BACKEND_KEY_SEED: u64 = 0x6261_636b_656e_6473;

/// How gateways name a listener to each other: xxh64 of its name.
pub fn listener_sync_key(name: &str) -> u64 {
    xxhash_rust::xxh64::xxh64(name.as_bytes(), LISTENER_KEY_SEED)
}

/// How gateways name a backend to each other: xxh64 of its target group's
/// name and its identity.
pub fn backend_sync_key(group: &str, identity: &Identity) -> u64 {
    let mut bytes = Vec::with_capacity(group.len() + 1 + identity.len());
    bytes.extend_from_slice(group.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(identity);
    xxhash_rust::xxh64::xxh64(&bytes, BACKEND_KEY_SEED)
}

/// Under `prefer_own`, what the gateways of the group's other zones (and
/// gateways in a zone without backends) give new flows to: the members
/// (`members[i]` is backend `i`'s id, identity and weight here) with each
/// other zone's preference applied to the weights before any preference.
/// Empty when the group does not prefer its own zone or this gateway has
/// no zone: then every gateway uses the same table.
fn peer_zone_members(
    cfg: &Config,
    g: &dnlb_model::TargetGroup,
    members: &[(BackendId, Identity, u8)],
    healthy: &dyn Fn(&str, &Identity) -> bool,
    at: &BuildTime<'_>,
) -> Vec<Members> {
    let own = match (g.zone_affinity, cfg.gateway.zone.as_deref()) {
        (ZoneAffinity::PreferOwn, Some(own)) => own,
        _ => return Vec::new(),
    };
    let mut zoneless = cfg.clone();
    zoneless.gateway.zone = None;
    let base = plan_group(&zoneless, g, healthy, at, &mut None);
    let mut zones: Vec<Option<&str>> = g
        .backends
        .iter()
        .map(|b| b.zone.as_deref())
        .filter(|z| *z != Some(own))
        .chain([None])
        .collect();
    zones.sort_unstable();
    zones.dedup();
    zones
        .into_iter()
        .map(|z| {
            let mut plan = base.clone();
            prefer_zone(&mut plan, g, z);
            plan.iter()
                .map(|&(bi, _, w)| (members[bi].0, members[bi].1, w))
                .collect()
        })
        .collect()
}

/// A group's members as a table is built from them: id, identity and
/// weight for new flows, per backend.
pub(super) type Members = Vec<(BackendId, Identity, u8)>;

/// What the rest of the fleet would use for a group: other zones' views
/// under own-zone preference, and the views after each zone's loss.
pub(super) struct OtherViews {
    peers: Vec<Members>,
    losses: Vec<(u32, Members)>,
}

impl OtherViews {
    /// The views of group `g`, whose members here are `members`; none
    /// without `[sync]` (nobody would look at them: no tables are built).
    pub(super) fn of(
        cfg: &Config,
        g: &dnlb_model::TargetGroup,
        members: &[(BackendId, Identity, u8)],
        healthy: &dyn Fn(&str, &Identity) -> bool,
        at: &BuildTime<'_>,
    ) -> Self {
        if cfg.sync.is_none() {
            return OtherViews {
                peers: Vec::new(),
                losses: Vec::new(),
            };
        }
        OtherViews {
            peers: peer_zone_members(cfg, g, members, healthy, at),
            losses: zone_loss_members(cfg, g, members, healthy, at),
        }
    }

    /// Listener `l`'s peer tables (other than `own`) and zone-loss tables.
    #[allow(clippy::type_complexity, reason = "two lists of tables")]
    pub(super) fn tables(
        &self,
        tables: &mut HashMap<MaglevInput, Arc<MaglevTable>>,
        built: &mut usize,
        own: &Arc<MaglevTable>,
        l: &dnlb_model::Listener,
    ) -> Result<(Vec<Arc<MaglevTable>>, Vec<(u32, Arc<MaglevTable>)>), SnapshotError> {
        let peers = peer_tables(tables, built, &self.peers, own, l)?;
        let losses = self
            .losses
            .iter()
            .map(|(z, m)| {
                let t = table_for(tables, built, &maglev_input(m, l.table_size), &l.name)?;
                Ok((*z, t))
            })
            .collect::<Result<_, SnapshotError>>()?;
        Ok((peers, losses))
    }
}

/// The zone tag of a zone name: a hash (0 for no zone), so that a worker
/// compares zones without strings.
pub fn zone_tag(zone: Option<&str>) -> u32 {
    zone.map_or(0, |z| {
        (xxhash_rust::xxh64::xxh64(z.as_bytes(), LISTENER_KEY_SEED) as u32) | 1
    })
}

/// For a group whose backends span two zones or more: for each zone Z,
/// the members (as `members[i]` for backend `i`) the fleet would use once
/// zone Z is lost (its backends failed), tagged with Z. Flows on backends
/// outside Z that such a table moves are exceptions in waiting: shared
/// before the loss, they survive it (the simulator's `zone-presync`).
fn zone_loss_members(
    cfg: &Config,
    g: &dnlb_model::TargetGroup,
    members: &[(BackendId, Identity, u8)],
    healthy: &dyn Fn(&str, &Identity) -> bool,
    at: &BuildTime<'_>,
) -> Vec<(u32, Members)> {
    let mut zones: Vec<&str> = g
        .backends
        .iter()
        .filter_map(|b| b.zone.as_deref())
        .collect();
    zones.sort_unstable();
    zones.dedup();
    if zones.len() < 2 {
        return Vec::new();
    }
    let zone_of: HashMap<Identity, Option<&str>> = g
        .backends
        .iter()
        .map(|b| (crate::maglev::backend_identity(b), b.zone.as_deref()))
        .collect();
    zones
        .into_iter()
        .map(|z| {
            let up = |group: &str, id: &Identity| {
                healthy(group, id) && zone_of.get(id).copied().flatten() != Some(z)
            };
            let plan = plan_group(cfg, g, &up, at, &mut None);
            let m = plan
                .iter()
                .map(|&(bi, _, w)| (members[bi].0, members[bi].1, w))
                .collect();
            (zone_tag(Some(z)), m)
        })
        .collect()
}

/// The distinct tables of `peers` (member lists) other than `own`.
fn peer_tables(
    tables: &mut HashMap<MaglevInput, Arc<MaglevTable>>,
    built: &mut usize,
    peers: &[Members],
    own: &Arc<MaglevTable>,
    l: &dnlb_model::Listener,
) -> Result<Vec<Arc<MaglevTable>>, SnapshotError> {
    let mut out: Vec<Arc<MaglevTable>> = Vec::new();
    for m in peers {
        let t = table_for(tables, built, &maglev_input(m, l.table_size), &l.name)?;
        if !Arc::ptr_eq(&t, own) && !out.iter().any(|o| Arc::ptr_eq(o, &t)) {
            out.push(t);
        }
    }
    Ok(out)
}

//! The immutable state workers read: listeners with their Maglev tables,
//! backends with their encapsulation templates, the VIP lookup table and
//! gateway parameters. Built on the slow path from a validated config; a
//! worker reads the current one once per burst.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use dnlb_model::{Config, EchoPolicy, FragmentPolicy, Scheduler, TooBigPolicy, ZoneAffinity};

use crate::encap::{EncapTemplate, Outer};
use crate::ids::{BackendId, ListenerId};
use crate::maglev::{backend_identity, Identity, MaglevBackend, MaglevError, MaglevTable};
use crate::vip::VipTable;

mod route;
mod sync;
pub use route::BackendRoute;
pub use sync::zone_tag;
pub use sync::{backend_sync_key, listener_sync_key};
use sync::{Members, OtherViews};

/// Stable backend ids across snapshots: a backend (target group + identity)
/// keeps its id while it is in the config, so flow-table entries that name
/// it stay meaningful across reloads. An id whose backend has been out of
/// the config for longer than the flows' idle timeouts (no flow entry can
/// still name it) is reused, so ids — and the per-id counters workers keep —
/// stay bounded however many backends come and go.
#[derive(Debug, Default, Clone)]
pub struct BackendRegistry {
    ids: HashMap<(String, Identity), BackendId>,
    next: u32,
    /// Ids free for reuse.
    free: Vec<u32>,
    /// Ids whose backend is not in the config, and since when.
    absent: HashMap<u32, Instant>,
    /// Ids reused since the last [`BackendRegistry::take_reused`].
    reused: Vec<BackendId>,
    /// Listener counter slots by listener name (stable like backend ids, so
    /// per-listener counters survive reloads that reorder listeners).
    listener_slots: HashMap<String, u16>,
}

impl BackendRegistry {
    /// The id of a backend, assigning the next free one if it is new.
    pub fn id(&mut self, group: &str, identity: Identity) -> BackendId {
        let (next, free, reused) = (&mut self.next, &mut self.free, &mut self.reused);
        *self
            .ids
            .entry((group.to_string(), identity))
            .or_insert_with(|| match free.pop() {
                Some(id) => {
                    reused.push(BackendId(id));
                    BackendId(id)
                }
                None => {
                    let id = BackendId(*next);
                    *next += 1;
                    id
                }
            })
    }

    /// After a build: ids not in `present` start (or continue) their time
    /// out of the config; those out for `grace` or longer are freed.
    fn sweep(&mut self, present: &[BackendId], now: Instant, grace: std::time::Duration) {
        let present: std::collections::HashSet<u32> = present.iter().map(|b| b.0).collect();
        let (absent, free) = (&mut self.absent, &mut self.free);
        self.ids.retain(|_, id| {
            if present.contains(&id.0) {
                absent.remove(&id.0);
                return true;
            }
            let since = *absent.entry(id.0).or_insert(now);
            if now.saturating_duration_since(since) >= grace {
                absent.remove(&id.0);
                free.push(id.0);
                false
            } else {
                true
            }
        });
    }

    /// The ids reused for new backends since the last call: workers'
    /// counters for them still hold the old backend's totals.
    pub fn take_reused(&mut self) -> Vec<BackendId> {
        std::mem::take(&mut self.reused)
    }

    /// The id of a backend, if it has one.
    pub fn get(&self, group: &str, identity: &Identity) -> Option<BackendId> {
        self.ids.get(&(group.to_string(), *identity)).copied()
    }

    /// The counter slot of listener `name`, assigning the next free one if
    /// it is new.
    pub fn listener_slot(&mut self, name: &str) -> u16 {
        let next = self.listener_slots.len() as u16;
        *self.listener_slots.entry(name.to_string()).or_insert(next)
    }

    /// One more than the highest id handed out.
    pub fn len(&self) -> usize {
        self.next as usize
    }

    /// Whether no id was handed out.
    pub fn is_empty(&self) -> bool {
        self.next == 0
    }
}

/// What a Maglev table is built from: the backends (sorted by identity) and
/// the table size.
type MaglevInput = Arc<(Vec<MaglevBackend>, u32)>;

/// A listener as workers see it.
#[derive(Debug, Clone)]
pub struct ListenerState {
    /// Id (index in `Snapshot::listeners`).
    pub id: ListenerId,
    /// Name from the config.
    pub name: String,
    /// Where its counters are kept: stable for a name across reloads.
    pub slot: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// Port, `None` = all ports.
    pub port: Option<u16>,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Fragment policy.
    pub fragments: FragmentPolicy,
    /// Target group index.
    pub group: u16,
    /// The Maglev table over the group's backends that take new flows
    /// (shared between listeners and snapshots with the same input).
    pub table: Arc<MaglevTable>,
    /// Who may send to it (`None`: everyone), compiled.
    pub acl: Option<Arc<crate::acl::AclTable>>,
    /// The access list it was compiled from, to reuse it when unchanged.
    acl_input: Option<dnlb_model::Acl>,
    /// This worker's share of its new-flow limits.
    pub limits: crate::policing::ListenerLimits,
    /// What the table was built from (sorted), to reuse it when unchanged.
    maglev_input: MaglevInput,
    /// The table a pending version will use, while it is staged (see
    /// [`Snapshot::staging`]); `None` when none is.
    pub next_table: Option<Arc<MaglevTable>>,
    /// Under `zone_affinity = "prefer_own"`: the other tables gateways of
    /// the fleet use for this listener (those of the group's other zones,
    /// and of gateways in a zone without backends), of the staged version
    /// while one is staged. A flow is an exception if any of them (or
    /// [`ListenerState::target_table`]) sends it elsewhere.
    pub peer_tables: Vec<Arc<MaglevTable>>,
    /// For a group whose backends span two zones or more: per zone (its
    /// [`zone_tag`]), the table the fleet would use once that zone is lost;
    /// a flow on a backend outside that zone which it moves is an exception
    /// (shared before any loss, so it survives one).
    pub loss_tables: Vec<(u32, Arc<MaglevTable>)>,
    /// Names the listener to peer gateways (flow-exception sync): a hash of
    /// its name, the same on every gateway with the same config.
    pub sync_key: u64,
}

impl ListenerState {
    /// The table flows are examined against: the staged one while a
    /// version is staged, else the current one.
    #[inline]
    pub fn target_table(&self) -> &MaglevTable {
        self.next_table.as_deref().unwrap_or(&self.table)
    }

    /// Whether a flow with scheduler hash `hash` on `backend` (in zone
    /// `zone`, a [`zone_tag`]) needs sharing: the target table, a peer
    /// table, or the table of a lost zone other than its own sends it
    /// elsewhere.
    #[inline]
    pub fn is_exception(&self, hash: u64, backend: BackendId, zone: u32) -> bool {
        let moves = |t: &MaglevTable| t.lookup(hash) != Some(backend);
        moves(self.target_table())
            || self.peer_tables.iter().any(|t| moves(t))
            || self.loss_tables.iter().any(|(z, t)| *z != zone && moves(t))
    }
}

/// A backend as workers see it.
#[derive(Debug, Clone)]
pub struct BackendState {
    /// Stable id.
    pub id: BackendId,
    /// Target group index.
    pub group: u16,
    /// Tunnel endpoint address.
    pub address: IpAddr,
    /// Weight (0 = no new flows; existing flows stay).
    pub weight: u8,
    /// Whether it may be used at all: false when it failed its health checks
    /// (unless the whole group is down and fails open). Established flows
    /// leave an unusable backend.
    pub usable: bool,
    /// Whether it passes its health checks (for status).
    pub healthy: bool,
    /// Whether it takes new flows (it is in the listeners' Maglev tables):
    /// usable, weight above 0, not draining, and in the preferred zone.
    pub takes_new_flows: bool,
    /// The drain deadline, if it is draining or drained.
    pub drain_until: Option<SystemTime>,
    /// Zone, for status.
    pub zone: Option<String>,
    /// The zone's [`zone_tag`].
    pub zone_tag: u32,
    /// Names the backend to peer gateways (flow-exception sync): a hash of
    /// its target group's name and its identity.
    pub sync_key: u64,
}

/// Which backends of a target group take new flows, by zone (what
/// `zone_affinity` made of the group at build time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneRule {
    /// Every zone alike (`zone_affinity = "any"`, or the gateway has no
    /// zone).
    Any,
    /// Only the gateway's own zone (`prefer_own`, and a backend there takes
    /// new flows): the table holds no other zone's backends.
    OwnZone,
    /// `prefer_own`, but no backend of the gateway's zone takes new flows:
    /// every zone's backends do.
    FellBack,
}

/// A target group as diagnostics see it (workers never read this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// Name from the config.
    pub name: String,
    /// What zone affinity made of it.
    pub zone_rule: ZoneRule,
    /// Every backend failed its health checks and the group fails open: all
    /// are treated as healthy.
    pub fail_open: bool,
}

/// Gateway-wide parameters.
#[derive(Debug, Clone, Copy)]
pub struct GatewayParams {
    /// Egress MTU.
    pub mtu: u16,
    /// Too-big policy.
    pub too_big: TooBigPolicy,
    /// This worker's share of the gateway's rate limits.
    pub limits: crate::policing::GatewayLimits,
    /// Echo policy.
    pub icmp_echo: EchoPolicy,
    /// TCP idle timeout in milliseconds.
    pub tcp_timeout_ms: u32,
    /// UDP idle timeout in milliseconds.
    pub udp_timeout_ms: u32,
    /// TCP idle timeout after the client's FIN or RST, milliseconds.
    pub tcp_closing_timeout_ms: u32,
}

impl GatewayParams {
    /// This worker's parameters from `cfg`.
    fn of(cfg: &Config) -> Self {
        let ms = |d: std::time::Duration| d.as_millis().min(u32::MAX as u128 / 2) as u32;
        GatewayParams {
            mtu: cfg.encap.mtu,
            too_big: cfg.encap.too_big,
            limits: crate::policing::GatewayLimits::of(cfg),
            icmp_echo: cfg.encap.icmp_echo,
            tcp_timeout_ms: ms(cfg.flows.tcp_idle_timeout),
            udp_timeout_ms: ms(cfg.flows.udp_idle_timeout),
            tcp_closing_timeout_ms: ms(cfg.flows.tcp_closing_timeout),
        }
    }
}

/// Why a snapshot could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// A Maglev table could not be built.
    #[error("listener {listener:?}: Maglev table: {error:?}")]
    Maglev {
        /// Listener name.
        listener: String,
        /// The error.
        error: MaglevError,
    },
    /// No outer source address for a backend's family.
    #[error("target group {group:?}: backend {address} has no outer source address of its family")]
    NoSource {
        /// Group name.
        group: String,
        /// Backend address.
        address: IpAddr,
    },
}

/// Everything a worker needs, immutable.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Config generation this was built from.
    pub generation: u64,
    /// Listeners by id.
    pub listeners: Vec<ListenerState>,
    /// Backends by id (`None`: id not in this config).
    pub backends: Vec<Option<BackendState>>,
    /// What the packet path needs of each backend, by id (as many as
    /// `backends`).
    pub routes: Vec<BackendRoute>,
    /// VIP lookup.
    pub vips: VipTable,
    /// Every backend's address as a VIP-table key, sorted (to tell
    /// health-check answers on the exception path).
    pub backend_keys: Vec<u128>,
    /// The routing peers' addresses as VIP-table keys, sorted (empty: not
    /// configured).
    pub routing_peers: Vec<u128>,
    /// Target groups by index (for `dnlb explain`).
    pub groups: Vec<GroupState>,
    /// Gateway parameters.
    pub params: GatewayParams,
    /// Listener index + 1 by counter slot (0: no listener has that slot).
    by_slot: Vec<u16>,
    /// The earliest drain deadline still ahead when this was built, on the
    /// monotonic clock: a new snapshot is due then (drained backends lose
    /// their flows).
    pub next_deadline: Option<Instant>,
}

/// When a snapshot is built, on the monotonic clock, and how drain
/// deadlines (wall-clock times in the config) map onto it. The control plane
/// converts each deadline once, when it first sees it, so a step of the
/// wall clock neither ends a drain early nor stretches it.
pub struct BuildTime<'a> {
    /// Now.
    pub now: Instant,
    /// A drain deadline on the monotonic clock.
    pub deadline: &'a dyn Fn(SystemTime) -> Instant,
}

impl std::fmt::Debug for BuildTime<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildTime").field("now", &self.now).finish()
    }
}

impl BuildTime<'static> {
    /// Now, with deadlines converted by the wall clock as it reads now.
    pub fn now() -> Self {
        BuildTime {
            now: Instant::now(),
            deadline: &|t| to_monotonic(t, SystemTime::now(), Instant::now()),
        }
    }
}

/// Wall-clock time `t` on the monotonic clock, given that `wall` and `mono`
/// are the same moment. Times past before the monotonic clock's origin are
/// `mono` (already past).
pub fn to_monotonic(t: SystemTime, wall: SystemTime, mono: Instant) -> Instant {
    match t.duration_since(wall) {
        Ok(ahead) => mono + ahead,
        Err(behind) => mono.checked_sub(behind.duration()).unwrap_or(mono),
    }
}

impl Snapshot {
    /// Builds a snapshot from a validated config. `registry` keeps backend
    /// ids stable across builds.
    pub fn build(
        cfg: &Config,
        generation: u64,
        registry: &mut BackendRegistry,
    ) -> Result<Self, SnapshotError> {
        Self::build_from(cfg, generation, registry, None).map(|(s, _)| s)
    }

    /// Like [`Snapshot::build`], reusing the Maglev tables of `previous`
    /// (and of other listeners in this build) whose input — backends,
    /// weights, table size — did not change: only changed listeners' tables
    /// are rebuilt. Returns the snapshot and how many tables were built.
    pub fn build_from(
        cfg: &Config,
        generation: u64,
        registry: &mut BackendRegistry,
        previous: Option<&Snapshot>,
    ) -> Result<(Self, usize), SnapshotError> {
        Self::build_with_health(
            cfg,
            generation,
            registry,
            previous,
            &|_, _| true,
            &BuildTime::now(),
        )
    }

    /// Like [`Snapshot::build_from`], with backend health: `healthy(group,
    /// identity)` says whether a backend passes its health checks. An
    /// unhealthy backend takes no new flows (left out of the Maglev tables)
    /// and loses its established ones. When every backend of a group is
    /// unhealthy, the group's `all_down` policy decides: fail open (treat all
    /// as healthy) or drop (no backend).
    ///
    /// At `at.now`, a draining backend (deadline ahead, on the monotonic
    /// clock as `at` converts it) takes no new flows and keeps its
    /// established ones; past its deadline it loses them. With
    /// `zone_affinity = prefer_own`, only backends in the gateway's zone take
    /// new flows while one of them can; the others keep established flows.
    pub fn build_with_health(
        cfg: &Config,
        generation: u64,
        registry: &mut BackendRegistry,
        previous: Option<&Snapshot>,
        healthy: &dyn Fn(&str, &Identity) -> bool,
        at: &BuildTime<'_>,
    ) -> Result<(Self, usize), SnapshotError> {
        let mut next_deadline: Option<Instant> = None;
        let mut tables: HashMap<MaglevInput, Arc<MaglevTable>> = previous
            .into_iter()
            .flat_map(|p| p.listeners.iter())
            .map(|l| (l.maglev_input.clone(), l.table.clone()))
            .collect();
        let mut built = 0;
        let outer = Outer {
            source_v4: cfg.encap.source_v4,
            source_v6: cfg.encap.source_v6,
            next_hop_mac: cfg.encap.next_hop_mac,
            ttl: cfg.encap.ttl,
        };
        // Backends of every group, with stable ids.
        let mut group_members: Vec<Members> = Vec::new();
        let mut group_views: Vec<OtherViews> = Vec::new();
        let mut backends: Vec<Option<BackendState>> = Vec::new();
        let mut routes: Vec<BackendRoute> = Vec::new();
        let mut groups = Vec::with_capacity(cfg.target_groups.len());
        for (gi, g) in cfg.target_groups.iter().enumerate() {
            let plan = plan_group(cfg, g, healthy, at, &mut next_deadline);
            groups.push(group_state(cfg, g, &plan, healthy));
            let mut members = Vec::new();
            for (bi, usable, new_flows) in plan {
                let b = &g.backends[bi];
                let identity = backend_identity(b);
                let id = registry.id(&g.name, identity);
                let encap = encap_of(b, &g.name, &outer, cfg.encap.mtu)?;
                let state = BackendState {
                    id,
                    group: gi as u16,
                    address: b.address,
                    weight: b.weight,
                    usable,
                    healthy: healthy(&g.name, &identity),
                    takes_new_flows: new_flows > 0,
                    drain_until: b.drain_until,
                    zone: b.zone.clone(),
                    zone_tag: zone_tag(b.zone.as_deref()),
                    sync_key: backend_sync_key(&g.name, &identity),
                };
                if backends.len() <= id.0 as usize {
                    backends.resize(id.0 as usize + 1, None);
                    routes.resize(id.0 as usize + 1, BackendRoute::absent());
                }
                routes[id.0 as usize] = BackendRoute::of(gi as u16, usable, encap);
                backends[id.0 as usize] = Some(state);
                members.push((id, identity, new_flows));
            }
            group_views.push(OtherViews::of(cfg, g, &members, healthy, at));
            group_members.push(members);
        }
        let mut listeners = Vec::with_capacity(cfg.listeners.len());
        for (li, l) in cfg.listeners.iter().enumerate() {
            let maglev_input = maglev_input(&group_members[l.target_group], l.table_size);
            let table = table_for(&mut tables, &mut built, &maglev_input, &l.name)?;
            let views = &group_views[l.target_group];
            let (peer_tables, loss_tables) = views.tables(&mut tables, &mut built, &table, l)?;
            listeners.push(ListenerState {
                id: ListenerId(li as u16),
                slot: registry.listener_slot(&l.name),
                name: l.name.clone(),
                protocol: l.protocol.number(),
                port: l.port,
                scheduler: l.scheduler,
                fragments: l.fragments,
                group: l.target_group as u16,
                table,
                maglev_input,
                acl: acl_for(previous, l, cfg.dataplane.worker_lcores.len()),
                acl_input: l.acl.clone(),
                limits: crate::policing::ListenerLimits::of(&l.limits, cfg),
                next_table: None,
                peer_tables,
                loss_tables,
                sync_key: listener_sync_key(&l.name),
            });
        }
        let by_slot = slot_index(&listeners);
        let present: Vec<BackendId> = backends.iter().flatten().map(|b| b.id).collect();
        registry.sweep(
            &present,
            at.now,
            cfg.flows.tcp_idle_timeout.max(cfg.flows.udp_idle_timeout),
        );
        let backend_keys = sorted_keys(backends.iter().flatten().map(|b| b.address));
        Ok((
            Snapshot {
                generation,
                listeners,
                backends,
                routes,
                vips: VipTable::build(&cfg.listeners),
                backend_keys,
                routing_peers: sorted_keys(cfg.protection.host.routing_peers.iter().copied()),
                groups,
                params: GatewayParams::of(cfg),
                by_slot,
                next_deadline,
            },
            built,
        ))
    }

    /// How many listener counter slots workers need for this snapshot.
    pub fn listener_slots(&self) -> usize {
        self.listeners
            .iter()
            .map(|l| l.slot as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The backend with this id, if it is in this snapshot.
    #[inline(always)]
    pub fn backend(&self, id: BackendId) -> Option<&BackendState> {
        self.backends.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The packet path's part of the backend with this id (see
    /// [`BackendRoute::present`]), if the id is below the highest in use.
    #[inline(always)]
    pub fn route(&self, id: BackendId) -> Option<&BackendRoute> {
        self.routes.get(id.0 as usize)
    }

    /// The listener with counter slot `slot`, if it is in this snapshot.
    #[inline]
    pub fn listener_at_slot(&self, slot: u16) -> Option<&ListenerState> {
        match self.by_slot.get(slot as usize) {
            Some(&i) if i > 0 => self.listeners.get(i as usize - 1),
            _ => None,
        }
    }
}

/// Backend `b`'s (of group `group`) encapsulation templates for inner IPv4
/// and IPv6 packets, fitted to `mtu`.
fn encap_of(
    b: &dnlb_model::Backend,
    group: &str,
    outer: &Outer,
    mtu: u16,
) -> Result<[EncapTemplate; 2], SnapshotError> {
    let template = |inner_v6| {
        let t = EncapTemplate::build(b.address, b.tunnel, inner_v6, outer);
        t.map(|t| t.fit_to(mtu)).ok_or(SnapshotError::NoSource {
            group: group.to_string(),
            address: b.address,
        })
    };
    Ok([template(false)?, template(true)?])
}

/// Listener index + 1 by counter slot (0: none).
fn slot_index(listeners: &[ListenerState]) -> Vec<u16> {
    let mut by_slot = vec![
        0u16;
        listeners
            .iter()
            .map(|l| l.slot as usize + 1)
            .max()
            .unwrap_or(0)
    ];
    for (i, l) in listeners.iter().enumerate() {
        by_slot[l.slot as usize] = i as u16 + 1;
    }
    by_slot
}

/// A listener's Maglev input: its group's members (id, identity, weight
/// for new flows), sorted by identity, and the table size.
fn maglev_input(members: &[(BackendId, Identity, u8)], size: u32) -> MaglevInput {
    let mut input: Vec<MaglevBackend> = members
        .iter()
        .map(|&(id, identity, weight)| MaglevBackend {
            id,
            identity,
            weight,
        })
        .collect();
    input.sort_by_key(|b| b.identity);
    Arc::new((input, size))
}

/// The table for `input`: one already built for the same input (by the
/// previous snapshot or another listener), or a new one (counted in
/// `built`).
fn table_for(
    tables: &mut HashMap<MaglevInput, Arc<MaglevTable>>,
    built: &mut usize,
    input: &MaglevInput,
    listener: &str,
) -> Result<Arc<MaglevTable>, SnapshotError> {
    if let Some(t) = tables.get(input) {
        return Ok(t.clone());
    }
    let t = MaglevTable::build(&input.0, input.1).map_err(|error| SnapshotError::Maglev {
        listener: listener.to_string(),
        error,
    })?;
    *built += 1;
    let t = Arc::new(t);
    tables.insert(input.clone(), t.clone());
    Ok(t)
}

/// Addresses as VIP-table keys, sorted and without repeats (for binary
/// search).
fn sorted_keys(addrs: impl Iterator<Item = IpAddr>) -> Vec<u128> {
    let mut keys: Vec<u128> = addrs.map(crate::vip::addr_key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Listener `l`'s compiled access list: the previous snapshot's when the
/// list did not change (compiling a long list takes milliseconds).
fn acl_for(
    previous: Option<&Snapshot>,
    l: &dnlb_model::Listener,
    workers: usize,
) -> Option<Arc<crate::acl::AclTable>> {
    let acl = l.acl.as_ref()?;
    let reused = previous
        .and_then(|p| p.listeners.iter().find(|x| x.name == l.name))
        .filter(|x| x.acl_input.as_ref() == Some(acl))
        .and_then(|x| x.acl.clone());
    Some(reused.unwrap_or_else(|| Arc::new(crate::acl::AclTable::build(acl, workers))))
}

/// For each backend of group `g` (by index): whether it is usable (healthy,
/// or the group fails open; not drained) and its weight for new flows (0
/// while draining, and outside the gateway's zone under `prefer_own` while
/// that zone has a backend for new flows). Notes the earliest drain deadline
/// still ahead in `next_deadline`.
///
/// Public so that the fleet simulator (`dnlb-sim`) builds its tables by the
/// same rules as a snapshot does.
pub fn plan_group(
    cfg: &Config,
    g: &dnlb_model::TargetGroup,
    healthy: &dyn Fn(&str, &Identity) -> bool,
    at: &BuildTime<'_>,
    next_deadline: &mut Option<Instant>,
) -> Vec<(usize, bool, u8)> {
    let any_healthy = g
        .backends
        .iter()
        .any(|b| healthy(&g.name, &backend_identity(b)));
    // (index in group.backends, usable, weight for new flows)
    let mut plan: Vec<(usize, bool, u8)> = Vec::with_capacity(g.backends.len());
    for (bi, b) in g.backends.iter().enumerate() {
        let up = if any_healthy {
            healthy(&g.name, &backend_identity(b))
        } else {
            g.all_down == dnlb_model::AllDownPolicy::FailOpen
        };
        let deadline = b.drain_until.map(at.deadline);
        let drained = deadline.is_some_and(|t| t <= at.now);
        if let Some(t) = deadline.filter(|&t| t > at.now) {
            *next_deadline = Some(next_deadline.map_or(t, |n| n.min(t)));
        }
        let usable = up && !drained;
        let new_flows = if usable && b.drain_until.is_none() {
            b.weight
        } else {
            0
        };
        plan.push((bi, usable, new_flows));
    }
    prefer_zone(&mut plan, g, cfg.gateway.zone.as_deref());
    plan
}

/// Under `prefer_own`, a gateway in `zone` gives new flows only to that
/// zone's backends while one of them takes new flows.
fn prefer_zone(plan: &mut [(usize, bool, u8)], g: &dnlb_model::TargetGroup, zone: Option<&str>) {
    let (ZoneAffinity::PreferOwn, Some(own)) = (g.zone_affinity, zone) else {
        return;
    };
    let in_own = |bi: usize| g.backends[bi].zone.as_deref() == Some(own);
    if plan.iter().any(|&(bi, _, w)| w > 0 && in_own(bi)) {
        for p in plan.iter_mut().filter(|p| !in_own(p.0)) {
            p.2 = 0;
        }
    }
}

/// What zone affinity and the all-down policy made of group `g`, given its
/// [`plan_group`].
fn group_state(
    cfg: &Config,
    g: &dnlb_model::TargetGroup,
    plan: &[(usize, bool, u8)],
    healthy: &dyn Fn(&str, &Identity) -> bool,
) -> GroupState {
    let zone_rule = match (g.zone_affinity, &cfg.gateway.zone) {
        (ZoneAffinity::PreferOwn, Some(own)) => {
            let own_takes = plan
                .iter()
                .any(|&(bi, _, w)| w > 0 && g.backends[bi].zone.as_ref() == Some(own));
            if own_takes {
                ZoneRule::OwnZone
            } else {
                ZoneRule::FellBack
            }
        }
        _ => ZoneRule::Any,
    };
    let none_healthy = !g
        .backends
        .iter()
        .any(|b| healthy(&g.name, &backend_identity(b)));
    GroupState {
        name: g.name.clone(),
        zone_rule,
        fail_open: !g.backends.is_empty()
            && none_healthy
            && g.all_down == dnlb_model::AllDownPolicy::FailOpen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(weight_b: u8, table_size: u32) -> Config {
        let text = format!(
            "[gateway]\nname = \"t\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
             [encap]\nsource_v4 = \"192.0.2.1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
             [[listener]]\nname = \"a\"\nvips = [\"192.0.2.10\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"ga\"\n\
             [[listener]]\nname = \"a2\"\nvips = [\"192.0.2.10\"]\nprotocol = \"tcp\"\nport = 81\ntarget_group = \"ga\"\n\
             [[listener]]\nname = \"b\"\nvips = [\"192.0.2.11\"]\nprotocol = \"tcp\"\nport = 80\ntable_size = {table_size}\ntarget_group = \"gb\"\n\
             [[target_group]]\nname = \"ga\"\n[[target_group.backend]]\naddress = \"192.0.2.20\"\ntunnel = \"ipip\"\n\
             [[target_group]]\nname = \"gb\"\n[[target_group.backend]]\naddress = \"192.0.2.30\"\ntunnel = \"ipip\"\n\
             [[target_group.backend]]\naddress = \"192.0.2.31\"\ntunnel = \"ipip\"\nweight = {weight_b}\n"
        );
        dnlb_config::parse(std::path::Path::new("t.toml"), &text).unwrap()
    }

    #[test]
    fn only_changed_tables_are_rebuilt_and_equal_inputs_share_one() {
        let mut reg = BackendRegistry::default();
        let (s1, built) = Snapshot::build_from(&config(100, 251), 1, &mut reg, None).unwrap();
        // Listeners a and a2 balance over the same group: one table.
        assert_eq!(built, 2);
        assert!(Arc::ptr_eq(&s1.listeners[0].table, &s1.listeners[1].table));
        // Nothing changed: nothing rebuilt.
        let (s2, built) = Snapshot::build_from(&config(100, 251), 2, &mut reg, Some(&s1)).unwrap();
        assert_eq!(built, 0);
        assert!(Arc::ptr_eq(&s1.listeners[2].table, &s2.listeners[2].table));
        // A weight in group gb changed: only b's table is rebuilt.
        let (s3, built) = Snapshot::build_from(&config(50, 251), 3, &mut reg, Some(&s2)).unwrap();
        assert_eq!(built, 1);
        assert!(Arc::ptr_eq(&s2.listeners[0].table, &s3.listeners[0].table));
        assert!(!Arc::ptr_eq(&s2.listeners[2].table, &s3.listeners[2].table));
        // And the rebuilt table is what a fresh build makes.
        let fresh = Snapshot::build(&config(50, 251), 9, &mut reg).unwrap();
        assert_eq!(*fresh.listeners[2].table, *s3.listeners[2].table);
        // A new table size is a new input.
        let (_, built) = Snapshot::build_from(&config(50, 257), 4, &mut reg, Some(&s3)).unwrap();
        assert_eq!(built, 1);
        // Backend ids stay stable across all of it.
        assert_eq!(
            s1.listeners[2].table.counts(),
            s2.listeners[2].table.counts()
        );
    }
}

#[cfg(test)]
mod health_tests {
    use super::*;

    fn config(all_down: &str) -> Config {
        let text = format!(
            "[gateway]\nname = \"t\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
             [encap]\nsource_v4 = \"192.0.2.1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
             [[listener]]\nname = \"a\"\nvips = [\"192.0.2.10\"]\nprotocol = \"tcp\"\nport = 80\ntable_size = 251\ntarget_group = \"g\"\n\
             [[target_group]]\nname = \"g\"\nall_down = \"{all_down}\"\n\
             [[target_group.backend]]\naddress = \"192.0.2.20\"\ntunnel = \"ipip\"\n\
             [[target_group.backend]]\naddress = \"192.0.2.21\"\ntunnel = \"ipip\"\n"
        );
        dnlb_config::parse(std::path::Path::new("t.toml"), &text).unwrap()
    }

    #[test]
    fn unhealthy_backends_leave_the_table_and_all_down_follows_policy() {
        let cfg = config("fail_open");
        let down = backend_identity(&cfg.target_groups[0].backends[0]);
        let mut reg = BackendRegistry::default();
        let (s, _) = Snapshot::build_with_health(
            &cfg,
            1,
            &mut reg,
            None,
            &|_, id| *id != down,
            &BuildTime::now(),
        )
        .unwrap();
        let t = &s.listeners[0].table;
        assert_eq!(
            t.counts().iter().filter(|(_, n)| *n > 0).count(),
            1,
            "only the healthy one has entries"
        );
        let b0 = s
            .backends
            .iter()
            .flatten()
            .find(|b| b.address.to_string() == "192.0.2.20")
            .unwrap();
        assert!(!b0.usable && !b0.healthy);
        // Everything down, fail open: everyone usable again.
        let (s, _) =
            Snapshot::build_with_health(&cfg, 2, &mut reg, None, &|_, _| false, &BuildTime::now())
                .unwrap();
        assert!(s.backends.iter().flatten().all(|b| b.usable && !b.healthy));
        assert!(!s.listeners[0].table.is_empty());
        // Everything down, drop: no backend.
        let cfg = config("drop");
        let (s, _) =
            Snapshot::build_with_health(&cfg, 3, &mut reg, None, &|_, _| false, &BuildTime::now())
                .unwrap();
        assert!(s.backends.iter().flatten().all(|b| !b.usable));
        assert!(s.listeners[0].table.is_empty());
    }
}

#[cfg(test)]
mod drain_and_zone_tests {
    use std::time::Duration;

    use super::*;

    /// Three backends: .20 and .21 in zone a, .22 in zone b; the gateway is
    /// in zone `gw_zone`.
    fn config(extra_20: &str, affinity: &str, gw_zone: &str) -> Config {
        let text = format!(
            "[gateway]\nname = \"t\"\nzone = \"{gw_zone}\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
             [encap]\nsource_v4 = \"192.0.2.1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
             [[listener]]\nname = \"a\"\nvips = [\"192.0.2.10\"]\nprotocol = \"tcp\"\nport = 80\ntable_size = 251\ntarget_group = \"g\"\n\
             [[target_group]]\nname = \"g\"\nzone_affinity = \"{affinity}\"\n\
             [[target_group.backend]]\naddress = \"192.0.2.20\"\ntunnel = \"ipip\"\nzone = \"a\"\n{extra_20}\n\
             [[target_group.backend]]\naddress = \"192.0.2.21\"\ntunnel = \"ipip\"\nzone = \"a\"\n\
             [[target_group.backend]]\naddress = \"192.0.2.22\"\ntunnel = \"ipip\"\nzone = \"b\"\n"
        );
        dnlb_config::parse(std::path::Path::new("t.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn state(s: &Snapshot, last_octet: u8) -> &BackendState {
        s.backends
            .iter()
            .flatten()
            .find(|b| b.address == IpAddr::from([192, 0, 2, last_octet]))
            .unwrap()
    }

    fn in_table(s: &Snapshot) -> Vec<u8> {
        let mut v: Vec<u8> = s.listeners[0]
            .table
            .counts()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(id, _)| match s.backend(*id).unwrap().address {
                IpAddr::V4(a) => a.octets()[3],
                IpAddr::V6(_) => unreachable!(),
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_draining_backend_keeps_its_flows_until_the_deadline() {
        let cfg = config("drain_until = 2030-01-01T00:00:00Z", "none", "a");
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000);
        let mut reg = BackendRegistry::default();
        // One second before the deadline, by the wall clock then.
        let (wall, mono) = (deadline - Duration::from_secs(1), Instant::now());
        let convert = |t| to_monotonic(t, wall, mono);
        let before = BuildTime {
            now: mono,
            deadline: &convert,
        };
        let (s, _) =
            Snapshot::build_with_health(&cfg, 1, &mut reg, None, &|_, _| true, &before).unwrap();
        let b = state(&s, 20);
        assert!(
            b.usable && !b.takes_new_flows,
            "draining: established flows stay, no new ones"
        );
        assert_eq!(b.drain_until, Some(deadline));
        assert_eq!(in_table(&s), [21, 22]);
        let due = mono + Duration::from_secs(1);
        assert_eq!(
            s.next_deadline,
            Some(due),
            "a rebuild is due at the deadline"
        );
        let at_deadline = BuildTime {
            now: due,
            deadline: &convert,
        };
        let (s, _) =
            Snapshot::build_with_health(&cfg, 2, &mut reg, None, &|_, _| true, &at_deadline)
                .unwrap();
        assert!(!state(&s, 20).usable, "past the deadline its flows move");
        assert_eq!(s.next_deadline, None);
        assert_eq!(in_table(&s), [21, 22]);
    }

    #[test]
    fn weight_zero_takes_no_new_flows_but_stays_usable() {
        let cfg = config("weight = 0", "none", "a");
        let mut reg = BackendRegistry::default();
        let s = Snapshot::build(&cfg, 1, &mut reg).unwrap();
        assert!(state(&s, 20).usable && !state(&s, 20).takes_new_flows);
        assert_eq!(in_table(&s), [21, 22]);
    }

    #[test]
    fn a_failed_zone_leaves_traffic_to_the_others() {
        let cfg = config("", "none", "a");
        let mut reg = BackendRegistry::default();
        let zone_a = [
            backend_identity(&cfg.target_groups[0].backends[0]),
            backend_identity(&cfg.target_groups[0].backends[1]),
        ];
        let now = BuildTime::now();
        let (s, _) =
            Snapshot::build_with_health(&cfg, 1, &mut reg, None, &|_, _| true, &now).unwrap();
        assert_eq!(in_table(&s), [20, 21, 22], "no affinity: every zone");
        let (s, _) = Snapshot::build_with_health(
            &cfg,
            2,
            &mut reg,
            None,
            &|_, id| !zone_a.contains(id),
            &now,
        )
        .unwrap();
        assert_eq!(in_table(&s), [22]);
        assert!(!state(&s, 20).usable && !state(&s, 21).usable);
    }

    #[test]
    fn own_zone_is_preferred_while_it_has_a_usable_backend() {
        let now = BuildTime::now();
        let mut reg = BackendRegistry::default();
        // A gateway in zone b sends new flows only to zone b's backend...
        let cfg = config("", "prefer_own", "b");
        let (s, _) =
            Snapshot::build_with_health(&cfg, 1, &mut reg, None, &|_, _| true, &now).unwrap();
        assert_eq!(in_table(&s), [22]);
        assert!(state(&s, 20).usable, "other zones keep established flows");
        // ...and to every other zone once zone b has none.
        let b22 = backend_identity(&cfg.target_groups[0].backends[2]);
        let (s, _) =
            Snapshot::build_with_health(&cfg, 2, &mut reg, None, &|_, id| *id != b22, &now)
                .unwrap();
        assert_eq!(in_table(&s), [20, 21]);
        // A gateway in zone a uses both of zone a's.
        let cfg = config("", "prefer_own", "a");
        let (s, _) =
            Snapshot::build_with_health(&cfg, 3, &mut reg, None, &|_, _| true, &now).unwrap();
        assert_eq!(in_table(&s), [20, 21]);
        // A gateway in a zone without backends uses all.
        let cfg = config("", "prefer_own", "c");
        let (s, _) =
            Snapshot::build_with_health(&cfg, 4, &mut reg, None, &|_, _| true, &now).unwrap();
        assert_eq!(in_table(&s), [20, 21, 22]);
    }
}

#[cfg(test)]
mod registry_tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn ids_of_backends_gone_longer_than_the_idle_timeouts_are_reused() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(900);
        let mut r = BackendRegistry::default();
        let a = r.id("g", [1; 32]);
        let b = r.id("g", [2; 32]);
        r.sweep(&[a, b], t0, grace);
        // b leaves the config; within the grace period it keeps its id.
        r.sweep(&[a], t0, grace);
        r.sweep(&[a], t0 + Duration::from_secs(899), grace);
        assert_eq!(r.get("g", &[2; 32]), Some(b));
        // b comes back in time: same id, its absence forgotten.
        assert_eq!(r.id("g", [2; 32]), b);
        r.sweep(&[a, b], t0 + Duration::from_secs(899), grace);
        r.sweep(&[a], t0 + Duration::from_secs(1000), grace);
        r.sweep(&[a], t0 + Duration::from_secs(1899), grace);
        assert_eq!(r.get("g", &[2; 32]), Some(b), "absence counted from 1000 s");
        r.sweep(&[a], t0 + Duration::from_secs(1900), grace);
        assert_eq!(r.get("g", &[2; 32]), None, "freed");
        assert!(r.take_reused().is_empty());
        // A new backend takes b's id; the registry says so once.
        let c = r.id("g", [3; 32]);
        assert_eq!(c, b);
        assert_eq!(r.len(), 2, "no new id");
        assert_eq!(r.take_reused(), [c]);
        assert!(r.take_reused().is_empty());
        // Churn: 1000 backends coming and going one at a time use two ids.
        for k in 0..1000u32 {
            let mut ident = [0u8; 32];
            ident[..4].copy_from_slice(&k.to_be_bytes());
            ident[4] = 9;
            let x = r.id("g", ident);
            let now = t0 + Duration::from_secs(10_000 + u64::from(k) * 1000);
            r.sweep(&[a, c, x], now, grace);
            r.sweep(&[a, c], now + grace, grace);
        }
        assert!(r.len() <= 4, "ids stay bounded: {}", r.len());
    }
}

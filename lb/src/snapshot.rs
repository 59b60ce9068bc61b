//! The immutable state workers read: listeners with their Maglev tables,
//! backends with their encapsulation templates, the VIP lookup table and
//! gateway parameters. Built on the slow path from a validated config; a
//! worker reads the current one once per burst.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use dnlb_config::{Config, EchoPolicy, FragmentPolicy, Scheduler, TooBigPolicy};

use crate::encap::{EncapTemplate, Outer};
use crate::ids::{BackendId, ListenerId};
use crate::maglev::{MaglevBackend, MaglevError, MaglevTable};
use crate::vip::VipTable;

/// Stable backend ids across snapshots: a backend (target group + identity)
/// keeps its id for the life of the process, so flow-table entries that
/// name it stay meaningful across reloads.
#[derive(Debug, Default, Clone)]
pub struct BackendRegistry {
    ids: HashMap<(String, [u8; dnlb_config::Backend::IDENTITY_LEN]), BackendId>,
    next: u32,
}

impl BackendRegistry {
    /// The id of a backend, assigning the next free one if it is new.
    pub fn id(
        &mut self,
        group: &str,
        identity: [u8; dnlb_config::Backend::IDENTITY_LEN],
    ) -> BackendId {
        let next = &mut self.next;
        *self
            .ids
            .entry((group.to_string(), identity))
            .or_insert_with(|| {
                let id = BackendId(*next);
                *next += 1;
                id
            })
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

/// A listener as workers see it.
#[derive(Debug, Clone)]
pub struct ListenerState {
    /// Id (index in `Snapshot::listeners`).
    pub id: ListenerId,
    /// Name from the config.
    pub name: String,
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
    /// What the table was built from (sorted), to reuse it when unchanged.
    maglev_input: Arc<(Vec<MaglevBackend>, u32)>,
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
    /// Zone, for status.
    pub zone: Option<String>,
    /// Templates for inner IPv4 and inner IPv6 packets.
    pub encap: [EncapTemplate; 2],
}

/// Gateway-wide parameters.
#[derive(Debug, Clone, Copy)]
pub struct GatewayParams {
    /// Egress MTU.
    pub mtu: u16,
    /// Too-big policy.
    pub too_big: TooBigPolicy,
    /// ICMP errors per second per worker.
    pub icmp_rate_per_sec: u32,
    /// Echo policy.
    pub icmp_echo: EchoPolicy,
    /// TCP idle timeout in milliseconds.
    pub tcp_timeout_ms: u32,
    /// UDP idle timeout in milliseconds.
    pub udp_timeout_ms: u32,
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
    /// VIP lookup.
    pub vips: VipTable,
    /// Gateway parameters.
    pub params: GatewayParams,
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
        Self::build_with_health(cfg, generation, registry, previous, &|_, _| true)
    }

    /// Like [`Snapshot::build_from`], with backend health: `healthy(group,
    /// identity)` says whether a backend passes its health checks. An
    /// unhealthy backend takes no new flows (left out of the Maglev tables)
    /// and loses its established ones. When every backend of a group is
    /// unhealthy, the group's `all_down` policy decides: fail open (treat all
    /// as healthy) or drop (no backend).
    pub fn build_with_health(
        cfg: &Config,
        generation: u64,
        registry: &mut BackendRegistry,
        previous: Option<&Snapshot>,
        healthy: &dyn Fn(&str, &[u8; dnlb_config::Backend::IDENTITY_LEN]) -> bool,
    ) -> Result<(Self, usize), SnapshotError> {
        let mut tables: HashMap<Arc<(Vec<MaglevBackend>, u32)>, Arc<MaglevTable>> = previous
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
        let mut group_members: Vec<Vec<(BackendId, [u8; dnlb_config::Backend::IDENTITY_LEN], u8)>> =
            Vec::new();
        let mut backends: Vec<Option<BackendState>> = Vec::new();
        for (gi, g) in cfg.target_groups.iter().enumerate() {
            let mut members = Vec::new();
            let any_healthy = g.backends.iter().any(|b| healthy(&g.name, &b.identity()));
            for b in &g.backends {
                let identity = b.identity();
                let up = if any_healthy {
                    healthy(&g.name, &identity)
                } else {
                    g.all_down == dnlb_config::AllDownPolicy::FailOpen
                };
                let id = registry.id(&g.name, identity);
                let template = |inner_v6| {
                    EncapTemplate::build(b.address, b.tunnel, inner_v6, &outer).ok_or(
                        SnapshotError::NoSource {
                            group: g.name.clone(),
                            address: b.address,
                        },
                    )
                };
                let state = BackendState {
                    id,
                    group: gi as u16,
                    address: b.address,
                    weight: b.weight,
                    usable: up,
                    healthy: healthy(&g.name, &identity),
                    zone: b.zone.clone(),
                    encap: [template(false)?, template(true)?],
                };
                if backends.len() <= id.0 as usize {
                    backends.resize(id.0 as usize + 1, None);
                }
                backends[id.0 as usize] = Some(state);
                members.push((id, identity, if up { b.weight } else { 0 }));
            }
            group_members.push(members);
        }
        let mut listeners = Vec::with_capacity(cfg.listeners.len());
        for (li, l) in cfg.listeners.iter().enumerate() {
            let mut input: Vec<MaglevBackend> = group_members[l.target_group]
                .iter()
                .map(|&(id, identity, weight)| MaglevBackend {
                    id,
                    identity,
                    weight,
                })
                .collect();
            input.sort_by_key(|b| b.identity);
            let maglev_input = Arc::new((input, l.table_size));
            let table = match tables.get(&maglev_input) {
                Some(t) => t.clone(),
                None => {
                    let t = MaglevTable::build(&maglev_input.0, l.table_size).map_err(|error| {
                        SnapshotError::Maglev {
                            listener: l.name.clone(),
                            error,
                        }
                    })?;
                    built += 1;
                    let t = Arc::new(t);
                    tables.insert(maglev_input.clone(), t.clone());
                    t
                }
            };
            listeners.push(ListenerState {
                id: ListenerId(li as u16),
                name: l.name.clone(),
                protocol: l.protocol.number(),
                port: l.port,
                scheduler: l.scheduler,
                fragments: l.fragments,
                group: l.target_group as u16,
                table,
                maglev_input,
            });
        }
        let ms = |d: std::time::Duration| d.as_millis().min(u32::MAX as u128 / 2) as u32;
        Ok((
            Snapshot {
                generation,
                listeners,
                backends,
                vips: VipTable::build(&cfg.listeners),
                params: GatewayParams {
                    mtu: cfg.encap.mtu,
                    too_big: cfg.encap.too_big,
                    icmp_rate_per_sec: cfg.encap.icmp_rate_per_sec,
                    icmp_echo: cfg.encap.icmp_echo,
                    tcp_timeout_ms: ms(cfg.flows.tcp_idle_timeout),
                    udp_timeout_ms: ms(cfg.flows.udp_idle_timeout),
                },
            },
            built,
        ))
    }

    /// The backend with this id, if it is in this snapshot.
    #[inline(always)]
    pub fn backend(&self, id: BackendId) -> Option<&BackendState> {
        self.backends.get(id.0 as usize).and_then(Option::as_ref)
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
        let down = cfg.target_groups[0].backends[0].identity();
        let mut reg = BackendRegistry::default();
        let (s, _) =
            Snapshot::build_with_health(&cfg, 1, &mut reg, None, &|_, id| *id != down).unwrap();
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
        let (s, _) = Snapshot::build_with_health(&cfg, 2, &mut reg, None, &|_, _| false).unwrap();
        assert!(s.backends.iter().flatten().all(|b| b.usable && !b.healthy));
        assert!(!s.listeners[0].table.is_empty());
        // Everything down, drop: no backend.
        let cfg = config("drop");
        let (s, _) = Snapshot::build_with_health(&cfg, 3, &mut reg, None, &|_, _| false).unwrap();
        assert!(s.backends.iter().flatten().all(|b| !b.usable));
        assert!(s.listeners[0].table.is_empty());
    }
}

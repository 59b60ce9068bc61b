//! The backends and the tables gateways build from them.
//!
//! Every change of the backends (config or health) makes a new *version*.
//! A gateway adopts versions in order, each some time after it is made (the
//! config skew, or health-check detection), and then uses the version's
//! [`View`]: the Maglev table and which backends are usable, built by the
//! real `lb` code — [`dnlb_lb::snapshot::plan_group`] (usable, weight for new
//! flows, drain, zone preference) and [`MaglevTable::build`] over
//! [`backend_identity`] — exactly as a gateway's snapshot would.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dnlb_lb::ids::BackendId;
use dnlb_lb::maglev::{backend_identity, is_prime, Identity, MaglevBackend, MaglevTable};
use dnlb_lb::snapshot::{plan_group, BuildTime};
use dnlb_model as model;

/// The target group's name.
const GROUP: &str = "sim";

/// One backend as the simulator knows it.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// As configured (its identity comes from this).
    pub config: model::Backend,
    /// Its zone index.
    pub zone: u32,
    /// In the config.
    pub present: bool,
    /// Actually serving (false once removed, drained past its deadline, or
    /// its zone is lost).
    pub alive: bool,
    /// What the gateways' health checks report (false during a flap and
    /// after a failure).
    pub healthy: bool,
}

/// What a gateway decides with at one version.
#[derive(Debug)]
pub struct View {
    /// The version.
    pub version: u32,
    /// The Maglev table.
    pub table: MaglevTable,
    /// Per backend id: usable (established flows may stay on it).
    pub usable: Vec<bool>,
}

impl View {
    /// Whether backend `b` may keep established flows.
    #[inline]
    pub fn usable(&self, b: u32) -> bool {
        self.usable.get(b as usize).copied().unwrap_or(false)
    }

    /// Whether backend `b` is in this version's config at all (a gateway
    /// still on an older version does not know a backend added since, and
    /// cannot use what a peer shares about it).
    #[inline]
    pub fn knows(&self, b: u32) -> bool {
        (b as usize) < self.usable.len()
    }

    /// The table's backend for a flow hash.
    #[inline]
    pub fn pick(&self, hash: u64) -> Option<u32> {
        self.table.lookup(hash).map(|b| b.0)
    }
}

/// The backends, their versions and the views built for them.
#[derive(Debug)]
pub struct Fleet {
    /// Every backend ever configured; the index is its [`BackendId`].
    pub backends: Vec<BackendInfo>,
    /// Zone names.
    zones: Vec<String>,
    table_size: u32,
    affinity: model::ZoneAffinity,
    /// The newest version.
    pub version: u32,
    /// Views by version, one per zone (or one for all without zone
    /// preference).
    views: BTreeMap<u32, Vec<Rc<View>>>,
    /// Whether versions also build their zone-loss views.
    loss_tables: bool,
    /// Views by version of the fleet after losing a zone: (the zone lost,
    /// the view of a surviving gateway's zone, or of every zone alike).
    loss: BTreeMap<u32, Vec<(u32, View)>>,
    identities: HashMap<Identity, u32>,
    base: Instant,
    /// Tables built so far.
    pub builds: u32,
}

/// The smallest prime at least `n`.
pub fn prime_at_least(n: u32) -> u32 {
    (n..).find(|&p| is_prime(p)).unwrap_or(n)
}

impl Fleet {
    /// A fleet of `backends` backends over `zones` zones; backend `i`'s weight
    /// is `weights(i)`.
    pub fn new(
        backends: u32,
        zones: u32,
        table_size: u32,
        prefer_own: bool,
        weights: impl Fn(u32) -> u8,
    ) -> Fleet {
        let mut f = Fleet {
            backends: Vec::new(),
            zones: (0..zones).map(|z| format!("z{z}")).collect(),
            table_size,
            affinity: if prefer_own {
                model::ZoneAffinity::PreferOwn
            } else {
                model::ZoneAffinity::None
            },
            version: 0,
            views: BTreeMap::new(),
            loss_tables: false,
            loss: BTreeMap::new(),
            identities: HashMap::new(),
            base: Instant::now(),
            builds: 0,
        };
        for i in 0..backends {
            f.add(i % zones, weights(i));
        }
        f
    }

    /// Number of zones.
    pub fn zones(&self) -> u32 {
        self.zones.len() as u32
    }

    /// From now on, every version also builds, for each zone, the tables
    /// it would have without that zone's backends ([`Fleet::loss_moves`]).
    pub fn build_loss_tables(&mut self) {
        self.loss_tables = true;
    }

    /// The zone of backend `b`.
    #[inline]
    pub fn zone_of(&self, b: u32) -> u32 {
        self.backends[b as usize].zone
    }

    /// Whether some table of `version` does not pick backend `b` for `hash`
    /// (the flow is an exception there).
    pub fn moves(&self, version: u32, hash: u64, b: u32) -> bool {
        self.views[&version].iter().any(|v| v.pick(hash) != Some(b))
    }

    /// Whether, if some zone other than backend `b`'s were lost, the
    /// surviving gateways' table of `version` without that zone's backends
    /// would not pick `b` for `hash` (the flow would become an exception).
    /// False unless [`Fleet::build_loss_tables`] was called.
    pub fn loss_moves(&self, version: u32, hash: u64, b: u32) -> bool {
        let zone = self.zone_of(b);
        self.loss.get(&version).is_some_and(|l| {
            l.iter()
                .any(|(lost, v)| *lost != zone && v.pick(hash) != Some(b))
        })
    }

    /// Whether views differ by the gateway's zone.
    pub fn per_zone(&self) -> bool {
        self.affinity == model::ZoneAffinity::PreferOwn
    }

    /// Adds a backend in `zone` (not yet in a version: call
    /// [`Fleet::publish`]). Returns its id.
    pub fn add(&mut self, zone: u32, weight: u8) -> u32 {
        let id = self.backends.len() as u32;
        // 10.0.0.1 onwards, one address per backend ever configured.
        let addr = Ipv4Addr::from(0x0a00_0001u32 + id);
        let config = model::Backend {
            address: IpAddr::V4(addr),
            port: 0,
            kind: model::BackendKind::Vm,
            weight,
            zone: Some(self.zones[zone as usize].clone()),
            rack: None,
            tunnel: model::Tunnel::IpIp,
            drain_until: None,
        };
        self.identities.insert(backend_identity(&config), id);
        self.backends.push(BackendInfo {
            config,
            zone,
            present: true,
            alive: true,
            healthy: true,
        });
        id
    }

    /// Ids of backends present, alive and not draining.
    pub fn active(&self) -> Vec<u32> {
        (0..self.backends.len() as u32)
            .filter(|&i| {
                let b = &self.backends[i as usize];
                b.present && b.alive && b.healthy && b.config.drain_until.is_none()
            })
            .collect()
    }

    /// Marks backend `id` draining until `deadline_ms`.
    pub fn drain(&mut self, id: u32, deadline_ms: u32) {
        self.backends[id as usize].config.drain_until =
            Some(UNIX_EPOCH + Duration::from_millis(u64::from(deadline_ms)));
    }

    /// Whether backend `b` is serving.
    #[inline]
    pub fn alive(&self, b: u32) -> bool {
        self.backends.get(b as usize).is_some_and(|x| x.alive)
    }

    /// Makes a new version from the backends' current state at `now_ms`,
    /// building its views. Returns the version.
    pub fn publish(&mut self, now_ms: u32) -> u32 {
        self.version += 1;
        let zones: Vec<Option<u32>> = if self.per_zone() {
            (0..self.zones()).map(Some).collect()
        } else {
            vec![None]
        };
        let views = zones
            .into_iter()
            .map(|z| Rc::new(self.build_view(z, now_ms)))
            .collect();
        self.views.insert(self.version, views);
        if self.loss_tables {
            let loss = self.build_loss_views(now_ms);
            self.loss.insert(self.version, loss);
        }
        self.prune();
        self.version
    }

    /// The view of `version` for a gateway in `zone`.
    pub fn view(&self, version: u32, zone: u32) -> Rc<View> {
        let v = &self.views[&version];
        v[if self.per_zone() { zone as usize } else { 0 }].clone()
    }

    /// The views of `version`, one per zone that builds its own.
    pub fn views_of(&self, version: u32) -> &[Rc<View>] {
        &self.views[&version]
    }

    /// Forgets the versions older than every version a gateway uses (a
    /// gateway only moves to newer ones).
    fn prune(&mut self) {
        let oldest = self
            .views
            .iter()
            .find(|(_, views)| views.iter().any(|x| Rc::strong_count(x) > 1))
            .map_or(self.version, |(&v, _)| v);
        self.views.retain(|&v, _| v >= oldest);
        self.loss.retain(|&v, _| v >= oldest);
    }

    /// For each zone `z`, the views of the current backends with `z`'s
    /// marked failed (as a zone loss's health version would have them):
    /// one per surviving zone with zone preference, else one.
    fn build_loss_views(&mut self, now_ms: u32) -> Vec<(u32, View)> {
        let mut out = Vec::new();
        for lost in 0..self.zones() {
            let saved: Vec<bool> = self.backends.iter().map(|b| b.healthy).collect();
            for b in self.backends.iter_mut().filter(|b| b.zone == lost) {
                b.healthy = false;
            }
            let survivors: Vec<Option<u32>> = if self.per_zone() {
                (0..self.zones()).filter(|&z| z != lost).map(Some).collect()
            } else {
                vec![None]
            };
            for z in survivors {
                out.push((lost, self.build_view(z, now_ms)));
            }
            for (b, h) in self.backends.iter_mut().zip(saved) {
                b.healthy = h;
            }
        }
        out
    }

    /// The view a gateway in `zone` (None: every zone alike) builds now.
    fn build_view(&mut self, zone: Option<u32>, now_ms: u32) -> View {
        let mut cfg = skeleton_config();
        cfg.gateway.zone = zone.map(|z| self.zones[z as usize].clone());
        let ids: Vec<u32> = (0..self.backends.len() as u32)
            .filter(|&i| self.backends[i as usize].present)
            .collect();
        let group = model::TargetGroup {
            name: GROUP.into(),
            backends: ids
                .iter()
                .map(|&i| self.backends[i as usize].config.clone())
                .collect(),
            all_down: model::AllDownPolicy::FailOpen,
            health_check: None,
            zone_affinity: self.affinity,
        };
        let healthy = |_: &str, identity: &Identity| {
            self.identities
                .get(identity)
                .is_some_and(|&i| self.backends[i as usize].healthy)
        };
        let base = self.base;
        let deadline = move |t: SystemTime| base + t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let at = BuildTime {
            now: base + Duration::from_millis(u64::from(now_ms)),
            deadline: &deadline,
        };
        let mut next_deadline = None;
        let plan = plan_group(&cfg, &group, &healthy, &at, &mut next_deadline);
        let mut usable = vec![false; self.backends.len()];
        let mut input = Vec::with_capacity(plan.len());
        for (gi, ok, weight) in plan {
            let id = ids[gi];
            usable[id as usize] = ok;
            input.push(MaglevBackend {
                id: BackendId(id),
                identity: backend_identity(&group.backends[gi]),
                weight,
            });
        }
        self.builds += 1;
        let table = MaglevTable::build(&input, self.table_size)
            .expect("prime table size, weights <= 100, distinct identities");
        View {
            version: self.version,
            table,
            usable,
        }
    }
}

/// A config with nothing but what [`plan_group`] reads (the gateway's zone).
fn skeleton_config() -> model::Config {
    model::Config {
        gateway: model::Gateway {
            name: "sim".into(),
            zone: None,
        },
        dataplane: model::Dataplane {
            eal_args: Vec::new(),
            main_lcore: 0,
            worker_lcores: vec![1],
            pool_mbufs: 0,
            rx_descriptors: 0,
            tx_descriptors: 0,
            idle: model::IdlePolicy::BusyPoll,
            ports: Vec::new(),
            host_port: None,
        },
        encap: model::Encap::default(),
        flows: model::Flows::default(),
        listeners: Vec::new(),
        target_groups: Vec::new(),
        admin: None,
        routing: None,
        protection: model::Protection::default(),
        sync: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_follow_health_drain_and_zone_preference() {
        let mut f = Fleet::new(30, 3, 251, true, |_| 100);
        let v1 = f.publish(0);
        // Zone preference: zone 0's table holds only zone 0's backends, but
        // every backend is usable.
        {
            let t = f.view(v1, 0);
            assert!(t.table.entries().iter().all(|b| b.0 % 3 == 0));
            assert!((0..30).all(|b| t.usable(b)));
        }
        // Unhealthy: unusable and out of every table; draining: usable, out
        // of the tables; past the deadline: unusable.
        f.backends[0].healthy = false;
        f.drain(3, 1000);
        let v2 = f.publish(10);
        let t = f.view(v2, 0);
        assert!(!t.usable(0) && t.usable(3));
        assert!(t.table.entries().iter().all(|b| b.0 != 0 && b.0 != 3));
        let v3 = f.publish(1000);
        assert!(!f.view(v3, 0).usable(3));
        // Versions older than every one still held are forgotten.
        f.publish(1001);
        assert_eq!(
            f.views.keys().copied().collect::<Vec<_>>(),
            [v2, v3, v3 + 1]
        );
        drop(t);
        f.publish(1002);
        assert_eq!(f.views.len(), 1);
    }

    #[test]
    fn a_zone_loss_table_is_the_table_after_the_loss() {
        let mut f = Fleet::new(60, 3, 1009, false, |i| 50 + (i % 51) as u8);
        f.build_loss_tables();
        let v1 = f.publish(0);
        assert_eq!(f.loss[&v1].len(), 3);
        // A gateway still uses v1 (so it is kept).
        let now = f.view(v1, 0);
        // Zone 1 fails: the health version's table is the one v1 built for
        // losing zone 1.
        for b in f.backends.iter_mut().filter(|b| b.zone == 1) {
            b.healthy = false;
            b.alive = false;
        }
        let v2 = f.publish(10);
        let after = f.view(v2, 0);
        let (_, predicted) = f.loss[&v1].iter().find(|(z, _)| *z == 1).expect("built");
        assert_eq!(predicted.table.entries(), after.table.entries());
        // The loss moves some flows of surviving backends (Maglev is not
        // perfectly minimal), and `loss_moves` names them.
        let mut moved = 0;
        for h in (0..20_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            let b = now.pick(h).expect("backends");
            let moves = f.zone_of(b) != 1 && after.pick(h) != Some(b);
            if moves {
                moved += 1;
                assert!(f.loss_moves(v1, h, b));
            }
        }
        assert!(moved > 0);
    }
}

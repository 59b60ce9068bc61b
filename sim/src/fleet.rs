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
}

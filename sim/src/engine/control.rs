//! The control side: scenario events, config versions reaching each gateway
//! (with skew), gateways that restart, join or die, and sync batches.

use dnlb_lb::flow_table::FlowTable;

use super::{Action, Conn, Gateway, GwState, Sim, NONE, PENDING};
use crate::rng::mix64;
use crate::scenario::{Amount, Event};
use crate::strategy::Sharing;
use crate::workload::{fingerprint, maglev_hash};

/// Weight of backends the scenario adds.
const NEW_WEIGHT: u8 = 100;

impl Sim<'_> {
    pub(super) fn control_action(&mut self, action: Action) {
        match action {
            Action::Scenario(e) => self.scenario_event(e),
            Action::Apply { gw, version } => self.apply(gw as usize, version),
            Action::Switch { gw, version } => self.switch(gw as usize, version),
            Action::Flush => self.flush(),
            Action::Remove(ids) => {
                self.log_event(format!("drain deadline: {} backends stop", ids.len()));
                for id in ids {
                    let b = &mut self.fleet.backends[id as usize];
                    b.present = false;
                    b.alive = false;
                }
                self.publish(false);
            }
            Action::Recover(ids) => {
                self.log_event(format!("flap ends: {} backends healthy", ids.len()));
                for id in ids {
                    self.fleet.backends[id as usize].healthy = true;
                }
                self.publish(true);
            }
            Action::Stop(g) => self.stop(g as usize),
            Action::Return(g) => self.restart_done(g as usize),
            Action::Scale {
                add,
                drain,
                deadline_ms,
            } => {
                let n = self.fleet.active().len();
                self.log_event(format!("autoscale: +{} -{}", add.of(n), drain.of(n)));
                self.drain_some(drain, deadline_ms);
                self.add_backends(add, None);
                self.publish(false);
            }
        }
    }

    fn scenario_event(&mut self, e: Event) {
        let n = self.fleet.active().len();
        match e {
            Event::BackendAdd { amount, zone } => {
                self.log_event(format!("{} backends added", amount.of(n)));
                self.add_backends(amount, zone);
                self.publish(false);
            }
            Event::BackendRemove { amount } => {
                self.log_event(format!("{} backends removed", amount.of(n)));
                for id in self.pick_backends(amount) {
                    let b = &mut self.fleet.backends[id as usize];
                    b.present = false;
                    b.alive = false;
                }
                self.publish(false);
            }
            Event::BackendDrain { amount, deadline_s } => {
                self.log_event(format!("{} backends drain", amount.of(n)));
                self.drain_some(amount, (deadline_s * 1000.0) as u32);
                self.publish(false);
            }
            Event::BackendReplace { amount, deadline_s } => {
                self.log_event(format!("{} backends replaced", amount.of(n)));
                let old = self.drain_some(amount, (deadline_s * 1000.0) as u32);
                self.add_backends(Amount::Count(old as u32), None);
                self.publish(false);
            }
            Event::BackendReweight { amount, weight } => {
                self.log_event(format!("{} backends re-weighted to {weight}", amount.of(n)));
                for id in self.pick_backends(amount) {
                    self.fleet.backends[id as usize].config.weight = weight;
                }
                self.publish(false);
            }
            Event::HealthFlap { amount, down_s } => {
                self.log_event(format!("{} backends flap", amount.of(n)));
                let ids = self.pick_backends(amount);
                for &id in &ids {
                    self.fleet.backends[id as usize].healthy = false;
                }
                self.publish(true);
                let at = self.now + (down_s * 1000.0) as u32;
                self.schedule(at, Action::Recover(ids));
            }
            other => self.gateway_event(other),
        }
    }

    fn gateway_event(&mut self, e: Event) {
        match e {
            Event::GatewayAdd { count } => {
                self.log_event(format!("{count} gateways added"));
                for _ in 0..count {
                    self.add_gateway();
                }
            }
            Event::GatewayLost { gateway } => {
                if let Some(g) = self.pick_gateway(gateway) {
                    self.log_event(format!("gateway {g} lost"));
                    self.crash(g);
                }
            }
            Event::GatewayRestart { gateway } => {
                if let Some(g) = self.pick_gateway(gateway) {
                    self.log_event(format!("gateway {g} restarts"));
                    self.router.withdraw(g as u16);
                    self.gws[g].state = GwState::Withdrawn;
                    let at = self.now + self.sc.fleet.restart_withdraw_ms;
                    self.schedule(at, Action::Stop(g as u16));
                }
            }
            Event::RollingRestart { spacing_s } => {
                let ids: Vec<u32> = (0..self.gws.len() as u32)
                    .filter(|&g| self.gws[g as usize].state == GwState::Up)
                    .collect();
                for (k, g) in ids.into_iter().enumerate() {
                    let at = self.now + (k as f64 * spacing_s * 1000.0) as u32;
                    let e = Event::GatewayRestart { gateway: Some(g) };
                    self.schedule(at, Action::Scenario(e));
                }
            }
            Event::Autoscale {
                every_s,
                until_s,
                add,
                drain,
                deadline_s,
            } => {
                let mut t = f64::from(self.now) / 1000.0;
                while t < until_s {
                    let deadline_ms = (deadline_s * 1000.0) as u32;
                    let a = Action::Scale {
                        add,
                        drain,
                        deadline_ms,
                    };
                    self.schedule((t * 1000.0) as u32, a);
                    t += every_s.max(0.001);
                }
            }
            Event::ZoneLost { zone } => {
                self.log_event(format!("zone {zone} lost"));
                for b in self.fleet.backends.iter_mut().filter(|b| b.zone == zone) {
                    b.alive = false;
                    b.healthy = false;
                }
                self.publish(true);
                let lost: Vec<usize> = (0..self.gws.len())
                    .filter(|&g| self.gws[g].zone == zone)
                    .collect();
                for g in lost {
                    self.crash(g);
                }
            }
            _ => unreachable!("backend events are handled by scenario_event"),
        }
    }

    /// `amount` backends among those active, chosen at random.
    fn pick_backends(&mut self, amount: Amount) -> Vec<u32> {
        let mut active = self.fleet.active();
        let n = amount.of(active.len());
        self.rng.choose(&mut active, n)
    }

    /// Starts draining `amount` backends; schedules their removal. Returns
    /// how many.
    fn drain_some(&mut self, amount: Amount, deadline_ms: u32) -> usize {
        let ids = self.pick_backends(amount);
        let at = self.now + deadline_ms;
        for &id in &ids {
            self.fleet.drain(id, at);
        }
        let n = ids.len();
        if n > 0 {
            self.schedule(at, Action::Remove(ids));
        }
        n
    }

    fn add_backends(&mut self, amount: Amount, zone: Option<u32>) {
        let n = amount.of(self.fleet.active().len());
        for _ in 0..n {
            let z = zone.unwrap_or_else(|| {
                self.next_zone = (self.next_zone + 1) % self.fleet.zones();
                self.next_zone
            });
            self.fleet.add(z % self.fleet.zones(), NEW_WEIGHT);
        }
    }

    /// The gateway `given`, or a random one that is up.
    fn pick_gateway(&mut self, given: Option<u32>) -> Option<usize> {
        let mut up: Vec<usize> = (0..self.gws.len())
            .filter(|&g| self.gws[g].state == GwState::Up)
            .collect();
        match given {
            Some(g) => up.contains(&(g as usize)).then_some(g as usize),
            None => self.rng.choose(&mut up, 1).first().copied(),
        }
    }

    /// A new config version; each gateway adopts it after the config skew
    /// (plus the health checks' detection time if `health`).
    fn publish(&mut self, health: bool) {
        let version = self.fleet.publish(self.now);
        let base = if health {
            self.sc.fleet.health_detect_ms
        } else {
            0
        };
        for g in 0..self.gws.len() {
            if self.gws[g].state == GwState::Gone {
                continue;
            }
            let at = self.now + base + self.rng.below(self.sc.fleet.config_skew_ms + 1);
            let gw = g as u16;
            self.schedule(at, Action::Apply { gw, version });
        }
    }

    /// Gateway `g` adopts `version` (if it is newer than its own); with
    /// exception sync it then shares the flows it tracks whose backend the
    /// new tables do not pick.
    fn apply(&mut self, g: usize, version: u32) {
        let gw = &self.gws[g];
        if matches!(gw.state, GwState::Down | GwState::Gone) || version <= gw.view.version {
            return;
        }
        if self.strategy.pins() {
            if !matches!(&gw.staged, Some(s) if s.version >= version) {
                self.gws[g].staged = Some(self.fleet.view(version, self.gws[g].zone));
                let at = self.now + self.sc.sync.pin_window_ms;
                self.schedule(
                    at,
                    Action::Switch {
                        gw: g as u16,
                        version,
                    },
                );
                // Share now what the staged tables will not pick, so the
                // peers hold it before any of them switches.
                self.share_mismatches(g, version);
            }
            return;
        }
        self.switch(g, version);
    }

    /// Gateway `g` starts using `version` (see [`Sim::apply`]).
    fn switch(&mut self, g: usize, version: u32) {
        let gw = &mut self.gws[g];
        if matches!(gw.state, GwState::Down | GwState::Gone) || version <= gw.view.version {
            return;
        }
        if gw.staged.as_ref().is_some_and(|s| s.version <= version) {
            gw.staged = None;
        }
        let view = self.fleet.view(version, gw.zone);
        gw.prev = Some(std::mem::replace(&mut gw.view, view));
        if self.strategy.sharing() == Sharing::Exceptions {
            self.share_mismatches(g, version);
        }
        let oldest = self.gws.iter().map(|g| g.view.version).min().unwrap_or(0);
        self.mismatches.retain(|&v, _| v >= oldest);
    }

    /// The connections whose backend some table of `version` does not pick,
    /// or (`zone-presync`) some of its zone-loss tables would not (computed
    /// once per version, extended with later arrivals).
    fn candidates(&mut self, version: u32) -> Vec<u32> {
        let arrived = self.conns.len() as u32;
        let (mut list, from) = self.mismatches.remove(&version).unwrap_or((Vec::new(), 0));
        for c in from..arrived {
            let conn = &self.conns[c as usize];
            if conn.done || conn.backend == NONE {
                continue;
            }
            let (h, b) = (maglev_hash(c), conn.backend);
            if self.fleet.moves(version, h, b) || self.fleet.loss_moves(version, h, b) {
                list.push(c);
            }
        }
        self.mismatches.insert(version, (list.clone(), arrived));
        list
    }

    fn share_mismatches(&mut self, g: usize, version: u32) {
        for c in self.candidates(version) {
            let conn = self.conns[c as usize];
            if conn.done || conn.shared != NONE {
                continue;
            }
            let fp = fingerprint(self.gws[g].seed, c);
            let Some(v) = self.gws[g].flows.peek(fp, self.now) else {
                continue;
            };
            // A flow whose backend the new version makes unusable moves
            // anyway: nothing to share.
            let gw = &self.gws[g];
            if gw.staged.as_ref().unwrap_or(&gw.view).usable(v) {
                self.maybe_share(c, g, v, maglev_hash(c), true);
            }
        }
    }

    /// Every gateway sends what it queued (see [`Sim::send`]).
    fn flush(&mut self) {
        for g in 0..self.gws.len() {
            let pending = std::mem::take(&mut self.gws[g].pending);
            self.send(g, pending);
        }
        let next = self.now + self.sc.sync.batch_interval_ms;
        if next <= self.end {
            self.schedule(next, Action::Flush);
        }
    }

    /// Gateway `g` sends `entries` now: one copy to each peer, in messages
    /// of `entries_per_message`; the entries reach the peers after the
    /// propagation delay.
    pub(super) fn send(&mut self, g: usize, entries: Vec<(u32, bool)>) {
        if entries.is_empty() {
            return;
        }
        let p = &self.sc.sync;
        let peers = self
            .gws
            .iter()
            .filter(|g| matches!(g.state, GwState::Up | GwState::Withdrawn))
            .count()
            .saturating_sub(1) as u64;
        let visible = self.now + p.propagation_ms;
        let second = (self.now / 1000) as usize;
        let n = entries.len() as u64;
        let msgs = n.div_ceil(u64::from(p.entries_per_message));
        let bytes =
            (n * u64::from(p.entry_bytes) + msgs * u64::from(p.message_overhead_bytes)) * peers;
        let gw = &mut self.gws[g];
        gw.sent_bytes += bytes;
        if gw.per_second.len() <= second {
            gw.per_second.resize(second + 1, 0);
        }
        gw.per_second[second] += bytes;
        for (c, presync) in entries {
            let conn = &mut self.conns[c as usize];
            if conn.shared == PENDING {
                conn.shared = visible;
                conn.unsent = false;
                self.stats.shared_entries += 1;
                self.stats.presync_entries += u64::from(presync);
                if !conn.done {
                    self.stats.shared_live += 1;
                }
            }
        }
        self.stats.peak_shared = self.stats.peak_shared.max(self.stats.shared_live);
    }

    /// A new gateway in the router's group, with the current config.
    pub(super) fn add_gateway(&mut self) {
        let id = self.gws.len();
        let zone = id as u32 % self.fleet.zones();
        let view = self.fleet.view(self.fleet.version, zone);
        self.gws.push(Gateway {
            zone,
            seed: mix64(self.sc.seed ^ 0x4757_0000 ^ id as u64),
            flows: FlowTable::new(self.flow_capacity),
            view,
            prev: None,
            staged: None,
            state: GwState::Up,
            pending: Vec::new(),
            sent_bytes: 0,
            per_second: Vec::new(),
        });
        self.fetch();
        self.router.announce(id as u16);
    }

    /// Gateway `g` dies: out of the router, its flows and its unsent batch
    /// lost.
    fn crash(&mut self, g: usize) {
        self.router.withdraw(g as u16);
        self.drop_state(g);
        let gw = &mut self.gws[g];
        gw.state = GwState::Gone;
        gw.flows = FlowTable::new(1);
    }

    /// A withdrawn gateway stops (its flow table and unsent batch lost) and
    /// starts again after the downtime.
    fn stop(&mut self, g: usize) {
        self.drop_state(g);
        self.gws[g].state = GwState::Down;
        let at = self.now + self.sc.fleet.restart_downtime_ms;
        self.schedule(at, Action::Return(g as u16));
    }

    fn drop_state(&mut self, g: usize) {
        let gw = &mut self.gws[g];
        gw.flows.clear();
        gw.prev = None;
        gw.staged = None;
        for (c, _) in std::mem::take(&mut gw.pending) {
            let conn: &mut Conn = &mut self.conns[c as usize];
            if conn.shared == PENDING {
                conn.shared = NONE;
                conn.unsent = true;
            }
        }
    }

    /// A restarted gateway joins at the config generation its peers use
    /// (the oldest among them, so no peer holds flows it has not yet
    /// examined under a newer table), with no previous table; it adopts
    /// newer versions like every gateway; it fetches what its peers share,
    /// and announces.
    fn restart_done(&mut self, g: usize) {
        let version = self
            .gws
            .iter()
            .enumerate()
            .filter(|&(i, p)| i != g && matches!(p.state, GwState::Up | GwState::Withdrawn))
            .map(|(_, p)| p.view.version)
            .min()
            .unwrap_or(self.fleet.version);
        let gw = &mut self.gws[g];
        gw.view = self.fleet.view(version, gw.zone);
        gw.prev = None;
        gw.state = GwState::Up;
        if version < self.fleet.version {
            let at = self.now + self.rng.below(self.sc.fleet.config_skew_ms + 1);
            let newest = self.fleet.version;
            self.schedule(
                at,
                Action::Apply {
                    gw: g as u16,
                    version: newest,
                },
            );
        }
        self.fetch();
        self.router.announce(g as u16);
    }

    /// A (re)starting gateway fetches every shared entry its peers hold.
    fn fetch(&mut self) {
        if self.strategy.sharing() != Sharing::Nothing {
            self.stats.fetch_bytes += self.stats.shared_live * u64::from(self.sc.sync.entry_bytes);
        }
    }
}

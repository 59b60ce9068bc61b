//! The simulation: a fleet of gateways behind a router, backends, and
//! connections whose sampled packets go through the real flow tables and
//! Maglev tables, in simulated time.
//!
//! - `mod.rs`: the state and the event loop.
//! - [`packet`]: one sampled packet through the router and a gateway, under
//!   the run's [`Strategy`].
//! - [`control`]: scenario events, config versions reaching gateways,
//!   gateway restarts and losses, sync batches.

mod control;
mod packet;

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;

use dnlb_lb::flow_table::FlowTable;

use crate::ecmp::Router;
use crate::fleet::{prime_at_least, Fleet, View};
use crate::report::{EventCount, RunResult};
use crate::rng::{mix64, Rng};
use crate::scenario::{Event, Scenario};
use crate::strategy::Strategy;
use crate::workload::Arrivals;

/// Not shared (a connection's `shared` field).
const NONE: u32 = u32::MAX;
/// Queued at the gateway that will share it.
const PENDING: u32 = u32::MAX - 1;
/// TCP idle timeout of the flow tables (dnlb's default, 900 s).
const IDLE_MS: u32 = 900_000;
/// Timeout after the client's FIN (dnlb's default, 30 s).
const CLOSING_MS: u32 = 30_000;

/// One connection's state: 20 bytes.
#[derive(Debug, Clone, Copy)]
struct Conn {
    /// The backend its SYN reached (`NONE` before).
    backend: u32,
    /// When it ends (its FIN), ms.
    end: u32,
    /// The next sampled packet's number (0 = SYN).
    pkt: u32,
    /// `NONE`, `PENDING`, or when its shared entry reaches the peers (ms).
    shared: u32,
    /// Ended: closed, broken, orphaned or refused.
    done: bool,
    /// Its entry was queued at a gateway that died before sending it, and
    /// no gateway has shared it since.
    unsent: bool,
}

/// A gateway's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GwState {
    /// Announcing and forwarding.
    Up,
    /// Routes withdrawn before a planned stop; still sends its batches.
    Withdrawn,
    /// Stopped (restarting).
    Down,
    /// Lost for good.
    Gone,
}

#[derive(Debug)]
struct Gateway {
    zone: u32,
    /// Its flow-table fingerprint seed.
    seed: u64,
    flows: FlowTable,
    view: Rc<View>,
    prev: Option<Rc<View>>,
    /// `sync-pinned`: the next view, used from its switch.
    staged: Option<Rc<View>>,
    state: GwState,
    /// Connections to share at the next batch (and whether only a
    /// zone-loss table moves them).
    pending: Vec<(u32, bool)>,
    /// Sync bytes sent (one copy per peer).
    sent_bytes: u64,
    /// Sync bytes sent per second of simulated time.
    per_second: Vec<u64>,
}

/// What the control queue holds.
#[derive(Debug, Clone)]
enum Action {
    /// A scenario event.
    Scenario(Event),
    /// Gateway adopts a config version.
    Apply { gw: u16, version: u32 },
    /// `sync-pinned`: gateway switches to its staged version.
    Switch { gw: u16, version: u32 },
    /// Every gateway sends its batch.
    Flush,
    /// Drained backends reach their deadline.
    Remove(Vec<u32>),
    /// Flapping backends pass their checks again.
    Recover(Vec<u32>),
    /// A withdrawn gateway stops.
    Stop(u16),
    /// A restarted gateway announces again.
    Return(u16),
    /// Autoscaling: add and drain.
    Scale {
        add: crate::scenario::Amount,
        drain: crate::scenario::Amount,
        deadline_ms: u32,
    },
}

#[derive(Debug)]
struct Timed {
    at: u32,
    seq: u64,
    action: Action,
}

impl PartialEq for Timed {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timed {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Counts of one run.
#[derive(Debug, Default, Clone)]
struct Stats {
    packets: u64,
    no_gateway: u64,
    refused: u64,
    completed: u64,
    broken: u64,
    broken_handshake: u64,
    broken_unsent: u64,
    broken_skew: u64,
    orphaned: u64,
    syns_to_stopped: u64,
    table_full: u64,
    shared_entries: u64,
    presync_entries: u64,
    fetch_bytes: u64,
    shared_live: u64,
    peak_shared: u64,
}

/// One run of a scenario under one strategy.
#[derive(Debug)]
pub struct Sim<'a> {
    sc: &'a Scenario,
    strategy: Strategy,
    fleet: Fleet,
    router: Router,
    gws: Vec<Gateway>,
    conns: Vec<Conn>,
    arrivals: Arrivals,
    /// Sampled packets: `time << 32 | connection`.
    packets: BinaryHeap<Reverse<u64>>,
    control: BinaryHeap<Reverse<Timed>>,
    seq: u64,
    rng: Rng,
    /// Events so far: when, what, connections broken since.
    log: Vec<EventCount>,
    /// Per version: connections whose backend some zone's table of that
    /// version does not pick (or, with `zone-presync`, some zone-loss
    /// table of it would not), and the arrivals then.
    mismatches: HashMap<u32, (Vec<u32>, u32)>,
    next_zone: u32,
    flow_capacity: usize,
    stats: Stats,
    now: u32,
    end: u32,
}

/// Table size for a scenario: as configured, else the smallest prime at
/// least 100 × the initial backend count (and at least 65537), so that a
/// backend holds about 100 slots (dnlb's default 65537 would give 10k
/// backends 6.5 slots each).
pub fn table_size(sc: &Scenario) -> u32 {
    sc.fleet.table_size.unwrap_or_else(|| {
        let want = u64::from(sc.fleet.backends) * 100;
        prime_at_least(want.clamp(65_537, 16_777_000) as u32)
    })
}

impl<'a> Sim<'a> {
    /// The fleet of `sc` at time 0, ready to run under `strategy`.
    pub fn new(sc: &'a Scenario, strategy: Strategy) -> Sim<'a> {
        let f = &sc.fleet;
        let spread = u32::from(f.weight_spread);
        let seed = sc.seed;
        let weights =
            |i: u32| (100 - (mix64(seed ^ u64::from(i)) % u64::from(spread + 1)) as u32) as u8;
        let mut fleet = Fleet::new(
            f.backends,
            f.zones,
            table_size(sc),
            f.prefer_own_zone,
            weights,
        );
        if strategy.presyncs_zone_loss() {
            fleet.build_loss_tables();
        }
        fleet.publish(0);
        // Room for four times a gateway's share of all connections.
        let flow_capacity =
            ((sc.workload.connections as usize * 4) / f.gateways as usize).max(1024);
        let mut sim = Sim {
            sc,
            strategy,
            fleet,
            router: Router::new(f.ecmp),
            gws: Vec::new(),
            conns: Vec::with_capacity(sc.workload.connections as usize),
            arrivals: Arrivals::new(&sc.workload, seed),
            packets: BinaryHeap::new(),
            control: BinaryHeap::new(),
            seq: 0,
            rng: Rng::new(seed ^ 0x434f_4e54_524f_4c00),
            log: Vec::new(),
            mismatches: HashMap::new(),
            next_zone: 0,
            flow_capacity,
            stats: Stats::default(),
            now: 0,
            end: (sc.workload.duration_s * 1000.0) as u32,
        };
        for _ in 0..f.gateways {
            sim.add_gateway();
        }
        for e in &sc.events {
            sim.schedule((e.at_s * 1000.0) as u32, Action::Scenario(e.event.clone()));
        }
        for (at, e) in crate::builtin::random_events(sc) {
            sim.schedule(at, Action::Scenario(e));
        }
        if strategy.sharing() != crate::strategy::Sharing::Nothing {
            sim.schedule(sc.sync.batch_interval_ms, Action::Flush);
        }
        sim
    }

    fn schedule(&mut self, at: u32, action: Action) {
        self.seq += 1;
        self.control.push(Reverse(Timed {
            at,
            seq: self.seq,
            action,
        }));
    }

    fn schedule_packet(&mut self, at: u32, c: u32) {
        self.packets
            .push(Reverse(u64::from(at) << 32 | u64::from(c)));
    }

    /// Runs to the end and reports.
    pub fn run(mut self) -> RunResult {
        let started = std::time::Instant::now();
        loop {
            let tc = self.control.peek().map_or(u32::MAX, |t| t.0.at);
            let ta = self.arrivals.peek().map_or(u32::MAX, |a| a.1);
            let tp = self.packets.peek().map_or(u32::MAX, |p| (p.0 >> 32) as u32);
            let t = tc.min(ta).min(tp);
            if t == u32::MAX || t > self.end {
                break;
            }
            self.now = t;
            if tc == t {
                let Reverse(timed) = self.control.pop().expect("peeked");
                self.control_action(timed.action);
            } else if ta == t {
                let (c, _) = self.arrivals.peek().expect("peeked");
                self.arrivals.advance();
                self.arrive(c);
            } else {
                let Reverse(p) = self.packets.pop().expect("peeked");
                self.packet(p as u32);
            }
        }
        self.result(started.elapsed().as_secs_f64())
    }

    fn arrive(&mut self, c: u32) {
        let shape = crate::workload::shape(&self.sc.workload, self.sc.seed, c);
        debug_assert_eq!(c as usize, self.conns.len());
        self.conns.push(Conn {
            backend: NONE,
            end: self.now.saturating_add(shape.life_ms),
            pkt: 0,
            shared: NONE,
            done: false,
            unsent: false,
        });
        self.packet(c);
    }

    /// Ends connection `c`.
    fn finish(&mut self, c: u32) {
        let conn = &mut self.conns[c as usize];
        if !conn.done {
            conn.done = true;
            if conn.shared < PENDING {
                self.stats.shared_live -= 1;
            }
        }
    }

    /// Records a scenario event (breaks after it are attributed to it).
    fn log_event(&mut self, label: String) {
        self.log.push(EventCount {
            at_s: f64::from(self.now) / 1000.0,
            label,
            broken: 0,
        });
    }

    fn result(self, wall_s: f64) -> RunResult {
        let s = &self.stats;
        let secs = f64::from(self.now.max(1)) / 1000.0;
        let gws = self.gws.len().max(1) as f64;
        let sent: u64 = self.gws.iter().map(|g| g.sent_bytes).sum();
        let peak = self
            .gws
            .iter()
            .flat_map(|g| g.per_second.iter().copied())
            .max()
            .unwrap_or(0);
        let connections = self.conns.len() as u64;
        RunResult {
            scenario: self.sc.name.clone(),
            strategy: self.strategy.name().into(),
            ecmp: self.sc.fleet.ecmp.name().into(),
            gateways: self.sc.fleet.gateways,
            backends: self.sc.fleet.backends,
            table_size: table_size(self.sc),
            connections,
            refused: s.refused,
            completed: s.completed,
            broken: s.broken,
            broken_handshake: s.broken_handshake,
            broken_unsent: s.broken_unsent,
            broken_skew: s.broken_skew,
            orphaned: s.orphaned,
            syns_to_stopped: s.syns_to_stopped,
            broken_fraction: s.broken as f64 / connections.max(1) as f64,
            events: self.log,
            shared_entries: s.shared_entries,
            presync_entries: s.presync_entries,
            sync_bytes_per_s_per_gateway: sent as f64 / gws / secs,
            sync_peak_bytes_per_s: peak,
            fetch_bytes: s.fetch_bytes,
            peak_shared_entries: s.peak_shared,
            table_full: s.table_full,
            packets: s.packets,
            no_gateway_packets: s.no_gateway,
            table_builds: self.fleet.builds,
            sim_seconds: secs,
            wall_seconds: wall_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CLOSING_MS, IDLE_MS};

    /// The simulated flow tables time out as dnlb's do by default.
    #[test]
    fn the_timeouts_are_dnlbs_defaults() {
        let f = dnlb_model::Flows::default();
        assert_eq!(u128::from(IDLE_MS), f.tcp_idle_timeout.as_millis());
        assert_eq!(u128::from(CLOSING_MS), f.tcp_closing_timeout.as_millis());
    }
}

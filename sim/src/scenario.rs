//! A scenario: the fleet, the workload, the sync parameters and the events.
//! Built-in scenarios are in [`crate::builtin`]; others are read from TOML
//! (see `docs/simulator.md` for the format).

use serde::{Deserialize, Serialize};

/// Everything one simulation needs besides the strategy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name in reports and file names.
    pub name: String,
    /// One line on what it shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Gateways, backends, zones, router.
    #[serde(default)]
    pub fleet: FleetParams,
    /// Connections.
    #[serde(default)]
    pub workload: Workload,
    /// Flow sync between gateways.
    #[serde(default)]
    pub sync: SyncParams,
    /// Scripted events.
    #[serde(default)]
    pub events: Vec<TimedEvent>,
    /// Random events added between `random_from_s` and `random_until_s`.
    #[serde(default)]
    pub random_events: u32,
    /// Start of the random events, seconds.
    #[serde(default)]
    pub random_from_s: f64,
    /// End of the random events, seconds.
    #[serde(default)]
    pub random_until_s: f64,
}

fn default_seed() -> u64 {
    1
}

/// How the router spreads flows over the gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EcmpMode {
    /// `hash mod N` over the live gateways: any change of N moves most flows.
    Modulo,
    /// Resilient (consistent) hashing: losing a gateway moves only its flows;
    /// adding one moves only the flows it takes.
    Resilient,
}

impl EcmpMode {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            EcmpMode::Modulo => "modulo",
            EcmpMode::Resilient => "resilient",
        }
    }
}

/// The fleet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetParams {
    /// Gateways at the start (default 64).
    pub gateways: u32,
    /// Backends at the start (default 10,000).
    pub backends: u32,
    /// Availability zones (default 3); backend and gateway `i` are in zone
    /// `i mod zones`.
    pub zones: u32,
    /// Maglev table size (a prime); default: the smallest prime at least
    /// 100 × the largest backend count the scenario reaches, and at least
    /// 65537.
    pub table_size: Option<u32>,
    /// Initial weights are uniform in `[100 - weight_spread, 100]` (default
    /// 50).
    pub weight_spread: u8,
    /// `zone_affinity = prefer_own` on the target group (default false).
    pub prefer_own_zone: bool,
    /// Router hashing (default resilient).
    pub ecmp: EcmpMode,
    /// A config change reaches each gateway within this many ms (uniform,
    /// default 500).
    pub config_skew_ms: u32,
    /// A gateway's health checks see a backend fail (or flap) this many ms
    /// after it happens, plus the config skew (default 3000: 3 probes 1 s
    /// apart).
    pub health_detect_ms: u32,
    /// A planned restart withdraws the gateway's routes this many ms before
    /// it stops (default 2000; flows move to peers meanwhile).
    pub restart_withdraw_ms: u32,
    /// A restarted gateway announces again this many ms after it stopped
    /// (default 3000; it has fetched its peers' shared flows by then).
    pub restart_downtime_ms: u32,
}

impl Default for FleetParams {
    fn default() -> Self {
        FleetParams {
            gateways: 64,
            backends: 10_000,
            zones: 3,
            table_size: None,
            weight_spread: 50,
            prefer_own_zone: false,
            ecmp: EcmpMode::Resilient,
            config_skew_ms: 500,
            health_detect_ms: 3000,
            restart_withdraw_ms: 2000,
            restart_downtime_ms: 3000,
        }
    }
}

/// The connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Connections in the run (default 1,000,000).
    pub connections: u32,
    /// They arrive as a Poisson process over this window, seconds (default
    /// 120).
    pub arrival_window_s: f64,
    /// The run stops at this time, seconds (default 180); connections alive
    /// then count as surviving.
    pub duration_s: f64,
    /// Share of long-lived connections (default 0.3).
    pub long_fraction: f64,
    /// Mean lifetime of a short connection, seconds (default 5).
    pub short_mean_s: f64,
    /// Mean lifetime of a long connection, seconds (default 120).
    pub long_mean_s: f64,
    /// Mean gap between sampled packets, ms (default 1000).
    pub gap_mean_ms: f64,
    /// Mean round trip of the handshake, ms (default 20).
    pub rtt_ms: u32,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            connections: 1_000_000,
            arrival_window_s: 120.0,
            duration_s: 180.0,
            long_fraction: 0.3,
            short_mean_s: 5.0,
            long_mean_s: 120.0,
            gap_mean_ms: 1000.0,
            rtt_ms: 20,
        }
    }
}

impl Workload {
    /// The largest gap between sampled packets: well under the TCP idle
    /// timeout, so flows do not idle out while they live.
    pub fn gap_max_ms(&self) -> u32 {
        (self.gap_mean_ms * 10.0).clamp(1.0, 60_000.0) as u32
    }
}

/// Flow sync between gateways.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncParams {
    /// A gateway sends what it has to share every this many ms (default 100).
    pub batch_interval_ms: u32,
    /// A batch reaches the peers this many ms after it is sent (default 5).
    pub propagation_ms: u32,
    /// Bytes per shared flow on the wire (default 48: a 5-tuple with IPv6
    /// room (37), the backend id (4), the remaining lifetime (4), the
    /// listener and flags (3)).
    pub entry_bytes: u32,
    /// Bytes per message besides its entries (default 96: IPv4+UDP 28,
    /// a sync header 20, a 32-byte HMAC-SHA256 tag, 16 bytes of sequence and
    /// key id).
    pub message_overhead_bytes: u32,
    /// Entries per message (default 28, so a message fits 1400 bytes).
    pub entries_per_message: u32,
    /// `sync-pinned`: how long a new table is staged before it is used, ms
    /// (default 1000; longer than any handshake's round trip).
    pub pin_window_ms: u32,
    /// `sync-pinned`: the timeout of a pinned SYN's entry until its first
    /// ACK refreshes it, ms (default 10000).
    pub pin_timeout_ms: u32,
    /// `zone-presync`: a new flow that only a zone-loss table moves is sent
    /// at once, in a message of its own, instead of with the next batch
    /// (default true; batched, such a flow dies with its gateway's unsent
    /// batch if the zone is lost within a batch of its start).
    pub presync_at_once: bool,
}

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams {
            batch_interval_ms: 100,
            propagation_ms: 5,
            entry_bytes: 48,
            message_overhead_bytes: 96,
            entries_per_message: 28,
            pin_window_ms: 1000,
            pin_timeout_ms: 10_000,
            presync_at_once: true,
        }
    }
}

/// An event at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedEvent {
    /// When, seconds from the start.
    pub at_s: f64,
    /// What.
    pub event: Event,
}

/// How many backends an event touches: a count, or a fraction of the
/// backends present when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    /// This many.
    Count(u32),
    /// This share of those present.
    Fraction(f64),
}

impl Amount {
    /// The number out of `present`.
    pub fn of(self, present: usize) -> usize {
        match self {
            Amount::Count(n) => n as usize,
            Amount::Fraction(f) => ((present as f64) * f).round() as usize,
        }
    }
}

/// What can happen to the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// New backends join the config (round-robin over the zones unless
    /// `zone` is given), weight 100.
    BackendAdd {
        /// How many.
        amount: Amount,
        /// Their zone.
        #[serde(default)]
        zone: Option<u32>,
    },
    /// Backends leave the config and stop at once (their connections are
    /// lost whatever the gateways do: counted as orphaned, not broken).
    BackendRemove {
        /// How many.
        amount: Amount,
    },
    /// Backends drain: no new flows; removed at the deadline.
    BackendDrain {
        /// How many.
        amount: Amount,
        /// Seconds until they are removed.
        deadline_s: f64,
    },
    /// As many new backends join as old ones start draining (an autoscaler
    /// replacing instances).
    BackendReplace {
        /// How many.
        amount: Amount,
        /// Seconds until the old ones are removed.
        deadline_s: f64,
    },
    /// Backends get a new weight.
    BackendReweight {
        /// How many.
        amount: Amount,
        /// The new weight (0..=100).
        weight: u8,
    },
    /// Backends fail their health checks for a while although they keep
    /// serving (a flap): the gateways move their flows away, then back.
    HealthFlap {
        /// How many.
        amount: Amount,
        /// Seconds until their checks pass again.
        down_s: f64,
    },
    /// Gateways join the fleet (and the router's group).
    GatewayAdd {
        /// How many.
        count: u32,
    },
    /// A gateway dies (crash): out of the router at once, its flows and
    /// what it had not yet sent lost. Random among the live ones unless
    /// given.
    GatewayLost {
        /// Which.
        #[serde(default)]
        gateway: Option<u32>,
    },
    /// A planned restart: withdraw, stop, start with an empty flow table,
    /// fetch the peers' shared flows, announce.
    GatewayRestart {
        /// Which (random among the live ones unless given).
        #[serde(default)]
        gateway: Option<u32>,
    },
    /// Every gateway restarts in turn, one every `spacing_s`.
    RollingRestart {
        /// Seconds between two gateways' restarts.
        spacing_s: f64,
    },
    /// Every `every_s` until `until_s`, `add` backends join and `drain`
    /// start draining (deadline `deadline_s`).
    Autoscale {
        /// Period, seconds.
        every_s: f64,
        /// End, seconds from the start.
        until_s: f64,
        /// Backends added each time.
        add: Amount,
        /// Backends drained each time.
        drain: Amount,
        /// Drain deadline, seconds.
        deadline_s: f64,
    },
    /// A zone fails: its backends stop, its gateways die.
    ZoneLost {
        /// Which zone.
        zone: u32,
    },
}

/// Why a scenario file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is not a scenario.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl Scenario {
    /// Reads a scenario from a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: p.clone(),
            source,
        })?;
        let s: Scenario =
            toml::from_str(&text).map_err(|source| ScenarioError::Parse { path: p, source })?;
        s.validate()?;
        Ok(s)
    }

    /// Checks the ranges the simulator relies on.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: &str| Err(ScenarioError::Invalid(format!("{}: {m}", self.name)));
        let f = &self.fleet;
        if f.gateways == 0 || f.gateways > 4096 {
            return bad("fleet.gateways must be 1..=4096");
        }
        if f.zones == 0 || f.zones > 64 {
            return bad("fleet.zones must be 1..=64");
        }
        if f.weight_spread > 99 {
            return bad("fleet.weight_spread must be 0..=99");
        }
        let w = &self.workload;
        if w.duration_s <= 0.0 || w.duration_s > 1.0e6 || w.arrival_window_s < 0.0 {
            return bad("workload times out of range");
        }
        if !(0.0..=1.0).contains(&w.long_fraction) || w.gap_mean_ms < 1.0 {
            return bad("workload.long_fraction must be in 0..=1 and gap_mean_ms >= 1");
        }
        if self.sync.batch_interval_ms == 0 || self.sync.entries_per_message == 0 {
            return bad("sync.batch_interval_ms and entries_per_message must be > 0");
        }
        for e in &self.events {
            if let Event::BackendReweight { weight, .. } = e.event {
                if weight > dnlb_lb::maglev::MAX_WEIGHT {
                    return bad("a weight is above 100");
                }
            }
            if !(0.0..=w.duration_s).contains(&e.at_s) {
                return bad("an event is outside the run");
            }
        }
        Ok(())
    }
}

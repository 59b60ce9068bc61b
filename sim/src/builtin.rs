//! The built-in scenarios, at a chosen size, and random events.

use crate::rng::Rng;
use crate::scenario::{
    Amount, EcmpMode, Event, FleetParams, Scenario, SyncParams, TimedEvent, Workload,
};

/// How big a fleet the built-in scenarios use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Gateways.
    pub gateways: u32,
    /// Backends.
    pub backends: u32,
    /// Connections.
    pub connections: u32,
}

impl Size {
    /// 64 gateways, 10,000 backends, 1,000,000 connections.
    pub const FULL: Size = Size {
        gateways: 64,
        backends: 10_000,
        connections: 1_000_000,
    };
    /// 16 gateways, 1,000 backends, 100,000 connections (seconds).
    pub const SMALL: Size = Size {
        gateways: 16,
        backends: 1_000,
        connections: 100_000,
    };
}

/// Names of the built-in scenarios, in report order.
pub const NAMES: [&str; 5] = [
    "backend-added",
    "backends-replaced",
    "gateway-lost-after-change",
    "rolling-restart-autoscale",
    "zone-lost",
];

fn at(at_s: f64, event: Event) -> TimedEvent {
    TimedEvent { at_s, event }
}

/// The built-in scenario `name` at `size`.
pub fn scenario(name: &str, size: Size, seed: u64) -> Option<Scenario> {
    let fleet = FleetParams {
        gateways: size.gateways,
        backends: size.backends,
        ..FleetParams::default()
    };
    let workload = Workload {
        connections: size.connections,
        ..Workload::default()
    };
    let (description, events) = match name {
        "backend-added" => (
            "one backend joins at 60 s",
            vec![at(
                60.0,
                Event::BackendAdd {
                    amount: Amount::Count(1),
                    zone: None,
                },
            )],
        ),
        "backends-replaced" => (
            "at 60 s 10% of the backends are replaced: as many new ones join, the old ones drain for 30 s",
            vec![at(60.0, replace_10pct())],
        ),
        "gateway-lost-after-change" => (
            "10% of the backends replaced at 60 s, a gateway lost at 61 s",
            vec![
                at(60.0, replace_10pct()),
                at(61.0, Event::GatewayLost { gateway: None }),
            ],
        ),
        "rolling-restart-autoscale" => (
            "from 40 s every gateway restarts in turn (one every 1.5 s) while every 10 s 2% of the backends are added and 2% drained",
            vec![
                at(40.0, Event::RollingRestart { spacing_s: 1.5 }),
                at(
                    35.0,
                    Event::Autoscale {
                        every_s: 10.0,
                        until_s: 150.0,
                        add: Amount::Fraction(0.02),
                        drain: Amount::Fraction(0.02),
                        deadline_s: 30.0,
                    },
                ),
            ],
        ),
        "zone-lost" => (
            "zone 2 (its backends and gateways) fails at 60 s",
            vec![at(60.0, Event::ZoneLost { zone: 2 })],
        ),
        _ => return None,
    };
    Some(Scenario {
        name: name.into(),
        description: description.into(),
        seed,
        fleet,
        workload,
        sync: SyncParams::default(),
        events,
        random_events: 0,
        random_from_s: 0.0,
        random_until_s: 0.0,
    })
}

fn replace_10pct() -> Event {
    Event::BackendReplace {
        amount: Amount::Fraction(0.1),
        deadline_s: 30.0,
    }
}

/// The scenario with its router set to `mode`, named accordingly.
pub fn with_ecmp(mut sc: Scenario, mode: EcmpMode) -> Scenario {
    if sc.fleet.ecmp != mode {
        sc.fleet.ecmp = mode;
        sc.name = format!("{}-{}", sc.name, mode.name());
    }
    sc
}

/// The scenario's random events, when and what (drawn from its seed).
pub fn random_events(sc: &Scenario) -> Vec<(u32, Event)> {
    let mut rng = Rng::new(sc.seed ^ 0x5241_4e44_4f4d_0000);
    let from = (sc.random_from_s * 1000.0) as u32;
    let until = ((sc.random_until_s * 1000.0) as u32).max(from + 1);
    let mut out: Vec<(u32, Event)> = (0..sc.random_events)
        .map(|_| {
            let t = from + rng.below(until - from);
            let e = match rng.below(9) {
                0 => Event::BackendAdd {
                    amount: Amount::Fraction(0.01),
                    zone: None,
                },
                1 => Event::BackendRemove {
                    amount: Amount::Fraction(0.005),
                },
                2 => Event::BackendDrain {
                    amount: Amount::Fraction(0.01),
                    deadline_s: 30.0,
                },
                3 => Event::BackendReweight {
                    amount: Amount::Fraction(0.01),
                    weight: 1 + rng.below(100) as u8,
                },
                4 => Event::HealthFlap {
                    amount: Amount::Fraction(0.005),
                    down_s: 5.0,
                },
                5 => Event::GatewayAdd { count: 1 },
                6 => Event::GatewayLost { gateway: None },
                _ => Event::GatewayRestart { gateway: None },
            };
            (t, e)
        })
        .collect();
    out.sort_by_key(|&(t, _)| t);
    out
}

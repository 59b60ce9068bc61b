//! Whole runs of small fleets: determinism, no breaks without events, what
//! exception sync saves on a gateway loss after a table change, and the
//! router's two hashing modes.

use dnlb_sim::builtin::{self, Size};
use dnlb_sim::scenario::{Amount, EcmpMode, Event, Scenario, TimedEvent};
use dnlb_sim::{run_all, RunResult, Sim, Strategy};

const TINY: Size = Size {
    gateways: 16,
    backends: 20,
    connections: 40_000,
};

/// A small fleet with the given events; a short run.
fn fleet(events: Vec<TimedEvent>, seed: u64) -> Scenario {
    let mut sc = builtin::scenario("backend-added", TINY, seed).expect("built-in");
    sc.name = "test".into();
    sc.events = events;
    sc.workload.arrival_window_s = 60.0;
    sc.workload.duration_s = 90.0;
    sc
}

fn at(at_s: f64, event: Event) -> TimedEvent {
    TimedEvent { at_s, event }
}

fn one_added_then_lost() -> Vec<TimedEvent> {
    vec![
        at(
            40.0,
            Event::BackendAdd {
                amount: Amount::Count(1),
                zone: None,
            },
        ),
        at(41.0, Event::GatewayLost { gateway: None }),
    ]
}

fn by_strategy(runs: &[RunResult], s: Strategy) -> &RunResult {
    runs.iter().find(|r| r.strategy == s.name()).expect("ran")
}

/// The result without its wall-clock time.
fn comparable(r: &RunResult) -> String {
    let mut r = r.clone();
    r.wall_seconds = 0.0;
    r.json()
}

#[test]
fn a_seed_gives_the_same_run() {
    let sc = fleet(one_added_then_lost(), 11);
    for s in [Strategy::Today, Strategy::ExceptionSync] {
        let a = Sim::new(&sc, s).run();
        let b = Sim::new(&sc, s).run();
        assert_eq!(comparable(&a), comparable(&b), "{}", s.name());
        assert!(a.packets > 100_000, "the run simulated packets");
    }
    let other = Sim::new(&fleet(one_added_then_lost(), 12), Strategy::Today).run();
    let first = Sim::new(&sc, Strategy::Today).run();
    assert_ne!(
        comparable(&first),
        comparable(&other),
        "another seed, another run"
    );
}

#[test]
fn without_events_nothing_breaks() {
    let sc = fleet(Vec::new(), 3);
    for r in run_all(&sc, &Strategy::ALL) {
        assert_eq!(r.broken, 0, "{}", r.strategy);
        assert_eq!(r.orphaned, 0, "{}", r.strategy);
        assert_eq!(r.refused, 0, "{}", r.strategy);
        assert_eq!(r.table_full, 0, "{}", r.strategy);
        assert!(
            r.completed > r.connections / 2,
            "{}: most connections end",
            r.strategy
        );
        if r.strategy == Strategy::ExceptionSync.name() {
            assert_eq!(r.shared_entries, 0, "no table change: no exception");
        }
    }
}

#[test]
fn a_backend_added_then_a_gateway_lost_breaks_today_not_with_sync() {
    let sc = fleet(one_added_then_lost(), 5);
    let runs = run_all(&sc, &Strategy::ALL);
    let today = by_strategy(&runs, Strategy::Today);
    let lost = today
        .events
        .iter()
        .find(|e| e.label.contains("lost"))
        .expect("logged");
    assert!(
        lost.broken >= 10,
        "today's strategy loses the connections of the lost gateway whose backend the new table moved: {lost:?}"
    );
    // Exception sync: the gateway loss breaks nothing; what may remain are
    // handshakes whose SYN and first ACK straddled the table change.
    let sync = by_strategy(&runs, Strategy::ExceptionSync);
    assert_eq!(sync.broken - sync.broken_handshake, 0, "{sync:?}");
    assert!(sync.shared_entries > 0 && sync.sync_bytes_per_s_per_gateway > 0.0);
    // With the staged switch, not even those: ≤ 1/100 of today's.
    let pinned = by_strategy(&runs, Strategy::SyncPinned);
    assert!(
        pinned.broken * 100 <= today.broken,
        "{} vs {}",
        pinned.broken,
        today.broken
    );
    // Full sync is the reference, and costs far more.
    let full = by_strategy(&runs, Strategy::FullSync);
    assert_eq!(full.broken - full.broken_handshake, 0);
    assert!(full.sync_bytes_per_s_per_gateway > 10.0 * sync.sync_bytes_per_s_per_gateway);
}

#[test]
fn a_gateway_loss_without_table_change_breaks_nothing_in_either_router_mode() {
    let lost = vec![at(40.0, Event::GatewayLost { gateway: Some(3) })];
    let with_change = one_added_then_lost();
    let mut broken_after_change = Vec::new();
    for mode in [EcmpMode::Modulo, EcmpMode::Resilient] {
        let mut sc = fleet(lost.clone(), 9);
        sc.fleet.ecmp = mode;
        for s in [Strategy::Today, Strategy::ExceptionSync] {
            let r = Sim::new(&sc, s).run();
            assert_eq!(
                r.broken,
                0,
                "{} / {}: every gateway has the same table",
                mode.name(),
                s.name()
            );
        }
        // The same loss after a table change tells the modes apart: modulo
        // moves almost every flow to another gateway, resilient only the
        // lost gateway's.
        let mut sc = fleet(with_change.clone(), 9);
        sc.fleet.ecmp = mode;
        broken_after_change.push(Sim::new(&sc, Strategy::Today).run().broken);
    }
    let (modulo, resilient) = (broken_after_change[0], broken_after_change[1]);
    assert!(
        resilient > 0,
        "resilient: the lost gateway's moved flows break"
    );
    assert!(
        modulo > 5 * resilient,
        "modulo {modulo} vs resilient {resilient}"
    );
}

#[test]
fn a_rolling_restart_with_exception_sync_loses_far_less_than_today() {
    let mut sc = fleet(Vec::new(), 21);
    sc.events = vec![
        at(
            30.0,
            Event::BackendReplace {
                amount: Amount::Fraction(0.2),
                deadline_s: 60.0,
            },
        ),
        at(31.0, Event::RollingRestart { spacing_s: 2.0 }),
    ];
    let today = Sim::new(&sc, Strategy::Today).run();
    let pinned = Sim::new(&sc, Strategy::SyncPinned).run();
    assert!(today.broken > 100, "today: {}", today.broken);
    assert!(
        pinned.broken * 100 <= today.broken,
        "{} vs {}",
        pinned.broken,
        today.broken
    );
    assert!(
        pinned.fetch_bytes > 0,
        "restarted gateways fetched their peers' exceptions"
    );
}

#[test]
fn the_example_file_reads_and_runs() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/example.toml");
    let sc = Scenario::from_file(&path).expect("valid");
    assert_eq!(sc.fleet.gateways, 8);
    assert_eq!(sc.events.len(), 3);
    let r = Sim::new(&sc, Strategy::Today).run();
    assert!(
        r.events.len() >= 4,
        "scripted and random events were logged: {:?}",
        r.events
    );
    // A file with an unknown key is refused.
    let bad = std::env::temp_dir().join(format!("dnlb-sim-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "name = \"x\"\n[fleet]\ngateway = 3\n").expect("write");
    assert!(Scenario::from_file(&bad).is_err());
    let _ = std::fs::remove_file(bad);
}

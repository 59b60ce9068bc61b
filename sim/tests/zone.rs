//! A zone lost: what `zone-presync` saves over today's and `sync-pinned`.

use dnlb_sim::builtin::{self, Size};
use dnlb_sim::scenario::{EcmpMode, Event, Scenario, TimedEvent};
use dnlb_sim::{Sim, Strategy};

/// A small fleet that loses zone 2 at 40 s. Few table slots per backend
/// (about 3: a zone's loss then moves many flows of surviving backends) and
/// sparser packets (more flows idle through the health checks' detection)
/// make today's breaks numerous enough to compare against.
fn zone_lost(mode: EcmpMode) -> Scenario {
    let size = Size {
        gateways: 12,
        backends: 300,
        connections: 100_000,
    };
    let mut sc = builtin::scenario("zone-lost", size, 1).expect("built-in");
    sc.fleet.ecmp = mode;
    sc.fleet.table_size = Some(1009);
    sc.workload.gap_mean_ms = 2000.0;
    sc.workload.arrival_window_s = 60.0;
    sc.workload.duration_s = 90.0;
    sc.events = vec![TimedEvent {
        at_s: 40.0,
        event: Event::ZoneLost { zone: 2 },
    }];
    sc
}

#[test]
fn a_zone_loss_with_zone_presync_breaks_at_most_a_hundredth_of_todays() {
    for mode in [EcmpMode::Resilient, EcmpMode::Modulo] {
        let sc = zone_lost(mode);
        let m = mode.name();
        let today = Sim::new(&sc, Strategy::Today).run();
        let pinned = Sim::new(&sc, Strategy::SyncPinned).run();
        let presync = Sim::new(&sc, Strategy::ZonePresync).run();
        let full = Sim::new(&sc, Strategy::FullSync).run();
        assert!(today.broken >= 100, "{m}: today breaks {}", today.broken);
        // The lost gateways' flows whose backend survives and which the
        // survivors' new table moves: sync-pinned cannot share them (they
        // are no exceptions before the loss, and the lost gateways cannot
        // share after it); zone-presync shared them ahead.
        assert!(
            pinned.broken * 100 > today.broken,
            "{m}: sync-pinned {} vs today {}",
            pinned.broken,
            today.broken
        );
        assert!(
            presync.broken * 100 <= today.broken,
            "{m}: zone-presync {} vs today {}",
            presync.broken,
            today.broken
        );
        assert_eq!(presync.broken_handshake, 0, "{m}: pinned SYNs");
        assert!(presync.presync_entries > 0 && presync.presync_entries <= presync.shared_entries);
        assert!(presync.sync_bytes_per_s_per_gateway < full.sync_bytes_per_s_per_gateway);
        // Staging sends SYNs to the lost zone's backends a second longer,
        // unless (zone-presync) a SYN whose backend the staged version
        // marks unusable takes the staged table's.
        assert!(pinned.syns_to_stopped > today.syns_to_stopped, "{m}");
        assert!(presync.syns_to_stopped <= today.syns_to_stopped, "{m}");
    }
}

/// Batched with the other entries, a new flow's entry dies with its
/// gateway's unsent batch when the zone is lost within a batch of the
/// flow's start; sent at once (the default) it does not.
#[test]
fn zone_presync_sends_new_flows_at_once() {
    let sc = zone_lost(EcmpMode::Modulo);
    let at_once = Sim::new(&sc, Strategy::ZonePresync).run();
    let mut batched = sc.clone();
    batched.sync.presync_at_once = false;
    let batched = Sim::new(&batched, Strategy::ZonePresync).run();
    assert!(
        at_once.broken < batched.broken,
        "at once {} vs batched {}",
        at_once.broken,
        batched.broken
    );
    // The same entries, at more bytes (a message each).
    let (a, b) = (at_once.presync_entries, batched.presync_entries);
    assert!(a.abs_diff(b) * 100 <= b, "{a} vs {b}");
    assert!(at_once.sync_bytes_per_s_per_gateway > batched.sync_bytes_per_s_per_gateway);
}

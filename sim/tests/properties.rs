//! Property tests over small random fleets.

use dnlb_sim::builtin::{self, Size};
use dnlb_sim::scenario::{Amount, EcmpMode, Event, Scenario, TimedEvent};
use dnlb_sim::{Sim, Strategy};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Whatever the fleet, the seed and the router: with no event, no
    /// strategy breaks a connection or refuses one.
    #[test]
    fn no_event_no_break(
        gateways in 1u32..12,
        backends in 1u32..60,
        seed in any::<u64>(),
        modulo in any::<bool>(),
    ) {
        let size = Size { gateways, backends, connections: 3000 };
        let mut sc = builtin::scenario("backend-added", size, seed).unwrap();
        sc.events.clear();
        sc.workload.arrival_window_s = 20.0;
        sc.workload.duration_s = 40.0;
        sc.fleet.ecmp = if modulo { EcmpMode::Modulo } else { EcmpMode::Resilient };
        for s in Strategy::ALL {
            let r = Sim::new(&sc, s).run();
            prop_assert_eq!(r.broken, 0);
            prop_assert_eq!(r.refused, 0);
        }
    }

    /// Full sync never breaks an established connection on a gateway loss,
    /// whatever changed before it, but for three named windows: handshakes
    /// that straddle a table change, connections whose entry the lost
    /// gateway had not sent yet (see
    /// `a_lost_gateway_takes_its_unsent_batch_with_it`), and packets that
    /// reach a gateway whose config does not have their backend yet (see
    /// `a_gateway_behind_on_config_cannot_use_an_entry_for_a_new_backend`).
    #[test]
    fn full_sync_survives_a_gateway_loss(
        seed in any::<u64>(),
        added in 1u32..5,
        gap_ms in 200u32..3000,
    ) {
        let r = Sim::new(&loss_after_add(seed, added, gap_ms), Strategy::FullSync).run();
        prop_assert_eq!(r.broken - r.broken_handshake - r.broken_unsent - r.broken_skew, 0, "{:?}", r);
    }
}

/// 8 gateways, 12 backends: `added` backends join at 15 s, a gateway is
/// lost `gap_ms` later.
fn loss_after_add(seed: u64, added: u32, gap_ms: u32) -> Scenario {
    let size = Size {
        gateways: 8,
        backends: 12,
        connections: 4000,
    };
    let mut sc = builtin::scenario("backend-added", size, seed).unwrap();
    sc.workload.arrival_window_s = 20.0;
    sc.workload.duration_s = 40.0;
    sc.events = vec![
        TimedEvent {
            at_s: 15.0,
            event: Event::BackendAdd {
                amount: Amount::Count(added),
                zone: None,
            },
        },
        TimedEvent {
            at_s: 15.0 + f64::from(gap_ms) / 1000.0,
            event: Event::GatewayLost { gateway: None },
        },
    ];
    sc
}

/// Full sync shares entries in batches (100 ms, then 5 ms on the wire): a
/// connection stored by a gateway that dies before its next batch is known
/// only to that gateway. Found by `full_sync_survives_a_gateway_loss`: a
/// gateway still on the old table (config skew) takes a connection 31 ms
/// before it is lost; the survivors' new table picks another backend.
#[test]
fn a_lost_gateway_takes_its_unsent_batch_with_it() {
    let mut sc = loss_after_add(13_009_639_808_660_539_741, 4, 355);
    let r = Sim::new(&sc, Strategy::FullSync).run();
    assert_eq!(
        (r.broken - r.broken_handshake, r.broken_unsent),
        (1, 1),
        "{r:?}"
    );
    // Sent at once, there is no window.
    sc.sync.batch_interval_ms = 1;
    sc.sync.propagation_ms = 0;
    let r = Sim::new(&sc, Strategy::FullSync).run();
    assert_eq!(r.broken - r.broken_handshake, 0, "{r:?}");
}

/// A gateway uses a peer's entry only for a backend its own config has (as
/// dnlb's sync bridge does: an entry naming an unknown backend is counted
/// `unknown` and dropped). Found by `full_sync_survives_a_gateway_loss`: a
/// connection to a backend added shortly before is shared, its gateway is
/// lost, and its next packet reaches a gateway still on the old config.
/// (Which seed shows it follows `lb`'s fingerprint, which the simulator's
/// router hashes with and its gateways' flow tables keep: this one was
/// found again by searching seeds when the fingerprint became a keyed round
/// of the flow's mix.)
#[test]
fn a_gateway_behind_on_config_cannot_use_an_entry_for_a_new_backend() {
    let mut sc = loss_after_add(4_359_476_490_904_452_175, 4, 317);
    let r = Sim::new(&sc, Strategy::FullSync).run();
    assert_eq!(
        (r.broken - r.broken_handshake, r.broken_skew),
        (1, 1),
        "{r:?}"
    );
    // Every gateway adopts a config at the same moment: no such window.
    sc.fleet.config_skew_ms = 0;
    let r = Sim::new(&sc, Strategy::FullSync).run();
    assert_eq!(r.broken - r.broken_handshake, 0, "{r:?}");
}

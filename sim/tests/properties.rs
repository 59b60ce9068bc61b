//! Property tests over small random fleets.

use dnlb_sim::builtin::{self, Size};
use dnlb_sim::scenario::{Amount, EcmpMode, Event, TimedEvent};
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

    /// Full sync never breaks an established connection on a gateway loss
    /// (only handshakes that straddle a table change may break), whatever
    /// changed before it.
    #[test]
    fn full_sync_survives_a_gateway_loss(
        seed in any::<u64>(),
        added in 1u32..5,
        gap_ms in 200u32..3000,
    ) {
        let size = Size { gateways: 8, backends: 12, connections: 4000 };
        let mut sc = builtin::scenario("backend-added", size, seed).unwrap();
        sc.workload.arrival_window_s = 20.0;
        sc.workload.duration_s = 40.0;
        sc.events = vec![
            TimedEvent { at_s: 15.0, event: Event::BackendAdd { amount: Amount::Count(added), zone: None } },
            TimedEvent { at_s: 15.0 + f64::from(gap_ms) / 1000.0, event: Event::GatewayLost { gateway: None } },
        ];
        let r = Sim::new(&sc, Strategy::FullSync).run();
        prop_assert_eq!(r.broken - r.broken_handshake, 0);
    }
}

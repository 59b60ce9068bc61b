//! Flow-exception sync end to end: `scripts/e2e-sync.sh` run against the
//! binary under test. Three gateways behind an ECMP router, 120 long-lived
//! TCP connections, a fourth backend registered on every gateway, then the
//! gateway carrying the most connections killed: without sync some
//! connections break (checked, or the test would prove nothing), with
//! `[sync]` none do.

mod common;

#[test]
fn connections_survive_a_backend_added_then_a_gateway_lost_with_sync() {
    common::run_e2e_script("e2e-sync.sh", "dnlbs", 10);
}

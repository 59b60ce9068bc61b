//! The multi-gateway end-to-end and failure tests: `scripts/e2e-gateways.sh`
//! run against the binary under test. Three gateways (net_af_packet,
//! net_af_xdp with a VIP-only XDP program, net_af_xdp with a net_tap
//! exception path) behind an ECMP router, BIRD on every gateway driven by
//! dnlb, three kernel-VXLAN backends in two zones with direct server return.
//! The script checks: HTTP through every gateway with the client's address
//! seen by the backend; elastic IP attach/detach; reloads under requests;
//! 50 long-lived connections surviving a gateway's SIGKILL; a backend's
//! death (health thresholds, only its connections fail); a whole zone lost;
//! the VIP withdrawn on shutdown. Each check prints ok/FAIL; the script's
//! last line counts them.

mod common;

#[test]
fn gateways_fail_over_and_connections_survive() {
    common::run_e2e_script("e2e-gateways.sh", "dnlbe", 30);
}

//! The namespace flood test: `scripts/e2e-flood.sh` run against the binary
//! under test. Two gateways (net_af_packet; net_af_xdp with a net_tap
//! exception path, so the gateway's own traffic crosses dnlb) behind the
//! ECMP router, two kernel-VXLAN backends. The script checks that 50 HTTP
//! keep-alive connections (≥ 99.9 % of requests) and new connections (≥ 99 %)
//! keep working while hping3 floods random-source SYNs at the VIP, that the
//! flow tables do not fill, and that SYN and UDP floods at each gateway's own
//! address leave its BGP sessions Established, the VIP announced and its
//! health checks undisturbed. Each check prints ok/FAIL; the script's last
//! line counts them.
//!
//! The figures mean something only for an optimized forwarder: an
//! unoptimized dnlb forwards a fraction of what a release build does, and a
//! flood at hping3's full rate overruns it on this kind of machine. So the
//! test is ignored in debug builds; run it with
//! `cargo test --release -p dnlb-forwarder --test e2e_flood`.

mod common;

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "needs an optimized dnlb: cargo test --release -p dnlb-forwarder --test e2e_flood"
)]
fn floods_leave_connections_and_routing_up() {
    common::run_e2e_script("e2e-flood.sh", "dnlbf", 32);
}

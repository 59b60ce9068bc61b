#!/usr/bin/env bash
# dnlb demo, the README's main command: installs what is missing, builds dnlb,
# brings up a small data centre in network namespaces, sends real traffic
# through the VIP and shows what happened, then tears everything down.
#
#   scripts/demo.sh          # up, traffic, a backend and a gateway fail, report, down
#   scripts/demo.sh --keep   # leave the topology running (remove it with `down`)
#   scripts/demo.sh down     # tear down a kept topology
#   DNLB_BIN=path/to/dnlb scripts/demo.sh   # use a built binary, install nothing
#
#                 ┌── gw1 (zone a): dnlb on net_af_packet            + BIRD ──┐
#   client ── router ─ gw2 (zone b): dnlb on net_af_xdp, VIP-only XDP + BIRD ─┤ VXLAN
#   198.18.0.1  (BGP,  └ gw3 (zone a): dnlb on net_af_xdp + net_tap exception path
#               ECMP)  ── b1, b2 (zone a), b3 (zone b): kernel VXLAN, VIP on lo,
#                         HTTP/UDP servers; replies go straight back to the client
#
# Every gateway runs the same dnlb config: each picks the same backend for a
# flow (Maglev), so the router may send a flow to any of them.
set -euo pipefail
cd "$(dirname "$0")/.."

export TOPO=dnlb-demo TOPO_GATEWAYS=3 TOPO_GW_ZONES="a b a" TOPO_BACKENDS="b1:a b2:a b3:b"
export TOPO_VIPS=203.0.113.10
MODES=(af_packet af_xdp af_xdp_tap)
# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
e2e_args "$@"
[ "${DOWN:-0}" = 1 ] || e2e_binary
# shellcheck source=scripts/lib/topology.sh
. scripts/lib/topology.sh
if [ "${DOWN:-0}" = 1 ]; then topo_down; echo "demo topology removed"; exit 0; fi
e2e_traps

VIP=$TOPO_VIPS
TOTAL=0 OK=0
http() {  # http N [VIP]: N requests through the VIP, shown one per line
    local line
    while IFS= read -r line; do
        TOTAL=$((TOTAL + 1))
        if [[ $line == backend=* ]]; then
            OK=$((OK + 1))
            echo "    $(sed -E 's/^backend=([^ ]*) zone=([^ ]*) proto=tcp client=([^ ]*) vip=([^ ]*)/answered by \1 (zone \2), which saw the client as \3/' <<< "$line")"
        else
            echo "    FAILED: $line"
        fi
    done < <(topo_http "$1" "${2:-$VIP}" 80)
}

section "1. a client, a router, three gateways and three backends in network namespaces"
topo_up
for i in 1 2 3; do
    topo_gw_start "$i" "${MODES[$((i - 1))]}"
    echo "  gw$i (zone $(topo_gw_zone "$i"), $(topo_gw_addr "$i")): dnlb on ${MODES[$((i - 1))]} is forwarding"
done
for j in 1 2 3; do
    echo "  $(topo_backend_name "$j") (zone $(topo_backend_zone "$j"), $(topo_backend_addr "$j")): VXLAN VNI $TOPO_VNI, $VIP on lo, HTTP on :80"
done

section "2. every gateway's dnlb tells its BIRD to announce $VIP; the router spreads flows over them"
check "BGP sessions up" topo_wait_bgp 30
check "the router has an ECMP route with 3 next hops" topo_wait_nexthops "$VIP" 3 20
ip -n "$TOPO-router" route show "$VIP/32" | sed 's/^/    /'

section "3. HTTP requests from the client ($(topo_client_addr)) to the VIP"
http 9
echo "  and to the IPv6 VIP $TOPO_VIPS6 (announced over IPv6 BGP sessions, carried in VXLAN over IPv4):"
http 3 "$TOPO_VIPS6"

section "4. what gateway gw1 sees (dnlb status, from its admin API)"
topo_exec gw1 "$DNLB_BIN" status --api http://127.0.0.1:9100 | sed 's/^/    /'
echo "  (on net_af_packet dnlb also sees the kernel's own frames — ARP, BGP, health probes — and"
echo "   counts them as not_for_vip; the kernel handles them)"

section "5. backend b1 dies: the gateways' health checks take it out"
declare -A SEEN
for i in 1 2 3; do SEEN[$i]=$(wc -l < "$TOPO_STATE/gw$i/dnlb.out"); done
topo_backend_kill 1
# b1_down_everywhere: every gateway's checks took b1 out since the kill.
b1_down_everywhere() {
    local i
    for i in 1 2 3; do
        tail -n +$((SEEN[$i] + 1)) "$TOPO_STATE/gw$i/dnlb.out" |
            grep -q "^health: group=web backend=$(topo_backend_addr 1) down" || return 1
    done
}
# At most 10 s (the thresholds need ~1 s); the requests below tell the rest.
wait_for 10 b1_down_everywhere || true
for i in 1 2 3; do
    tail -n +$((SEEN[$i] + 1)) "$TOPO_STATE/gw$i/dnlb.out" | grep '^health: group' | sed "s/^/    gw$i: /" || true
done
http 6

section "6. gateway gw1 dies (dnlb and BIRD killed): the router drops it, the others carry on"
topo_gw_kill 1
check "the router withdrew gw1 (BGP hold time)" topo_wait_nexthops "$VIP" 2 10
ip -n "$TOPO-router" route show "$VIP/32" | sed 's/^/    /'
http 6

section "7. per gateway: packets each one balanced"
for i in 2 3; do
    echo "    gw$i: $(topo_gw_api "$i" GET /v1/listeners | "$TOPO_PY" -c 'import json,sys; print(", ".join("%s %d packets" % (l["name"], l["packets"]) for l in json.load(sys.stdin)))')"
done

if [ "$KEEP" = 1 ]; then
    echo
    echo "topology kept: try 'ip netns exec $TOPO-client curl http://$VIP/'"
    echo "  and 'ip netns exec $TOPO-gw2 $DNLB_BIN status --api http://127.0.0.1:9100'"
    echo "remove it with: scripts/demo.sh down"
fi
echo
echo "demo: $OK of $TOTAL HTTP requests answered through dnlb"
check "every request answered" [ "$OK" -eq "$TOTAL" ]
e2e_finish

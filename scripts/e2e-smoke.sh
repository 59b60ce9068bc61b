#!/usr/bin/env bash
# End-to-end smoke test of dnlb on several gateways behind an ECMP router
# (scripts/lib/topology.sh): BGP, ECMP, Maglev over VXLAN backends, direct
# server return, TCP and UDP, VIP withdrawal.
#
#   scripts/e2e-smoke.sh                         # 2 gateways on net_af_packet
#   scripts/e2e-smoke.sh --modes "af_packet af_xdp af_xdp_tap"
#                                                # one gateway per mode (gw1, gw2, gw3)
#   scripts/e2e-smoke.sh --keep                  # leave everything running
#   scripts/e2e-smoke.sh down                    # tear a kept topology down
#   DNLB_BIN=path/to/dnlb TOPO=prefix scripts/e2e-smoke.sh
#   E2E_NO_INSTALL=1 …                           # do not apt-get install what is missing
#
# Modes: af_packet (kernel sees every frame), af_xdp (xdp/vip_redirect.c sends
# only VIP traffic to DPDK), af_xdp_tap (DPDK's default XDP program takes every
# frame; dnlb hands what is not for a VIP to the kernel through net_tap).
# Exit status 0 iff every check passed; the last line is "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

MODES="af_packet af_packet"
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
        --modes) MODES=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        down) DOWN=1; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
read -r -a MODE_LIST <<< "$MODES"
export TOPO_GATEWAYS=${#MODE_LIST[@]}
# This test announces by hand (topo_gw_announce), to check BIRD's side alone.
export TOPO_DNLB_ROUTES=0
# shellcheck source=scripts/lib/topology.sh
. scripts/lib/topology.sh

if [ "${DOWN:-0}" = 1 ]; then topo_down; echo "topology $TOPO removed"; exit 0; fi
[ "$(id -u)" -eq 0 ] || { echo "run as root (namespaces, BIRD and DPDK need it)" >&2; exit 1; }
[ "${E2E_NO_INSTALL:-0}" = 1 ] || topo_ensure_deps
for c in bird birdc clang ethtool curl; do
    command -v "$c" >/dev/null || { echo "missing $c (apt-get install -y bird2 clang libbpf-dev ethtool curl)" >&2; exit 1; }
done
[ -x "$DNLB_BIN" ] || { echo "no dnlb binary at $DNLB_BIN (set DNLB_BIN)" >&2; exit 1; }

# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
e2e_traps

VIP=$(echo "$TOPO_VIPS" | awk '{ print $1 }')
VIP2=$(echo "$TOPO_VIPS" | awk '{ print $2 }')
VIP2=${VIP2:-$VIP}  # the VIP withdrawn from gw1 (the second one if there are two)
TCP_PORT=$(echo "$TOPO_TCP_PORTS" | awk '{ print $1 }')
UDP_PORT=$(echo "$TOPO_UDP_PORTS" | awk '{ print $1 }')
NB=$(topo_backend_count)
N=$TOPO_GATEWAYS

section "topology $TOPO: router, client, $N gateway(s) (${MODES}), $NB backend(s)"
topo_up
for i in $(seq "$N"); do
    echo "  gw$i zone $(topo_gw_zone "$i") $(topo_gw_addr "$i") mode ${MODE_LIST[$((i - 1))]}"
done
for j in $(seq "$NB"); do
    echo "  $(topo_backend_name "$j") zone $(topo_backend_zone "$j") $(topo_backend_addr "$j") vxlan inner_mac $(topo_backend_vxmac "$j")"
done

section "dnlb on every gateway"
for i in $(seq "$N"); do
    topo_gw_start "$i" "${MODE_LIST[$((i - 1))]}"
    echo "  gw$i: $(grep '^dnlb: ready' "$TOPO_STATE/gw$i/dnlb.out")"
done

section "BGP and ECMP"
check "every gateway's BGP session is Established" topo_wait_bgp 30
for i in $(seq "$N"); do echo "  router ↔ gw$i: $(topo_bgp_state "$i")"; done
no_route=$(topo_exec client curl -sS --max-time 2 "http://$VIP:$TCP_PORT/" 2>&1 || true)
check "before any announcement the client cannot reach $VIP (${no_route#curl: })" \
    not_answered "$no_route"
for i in $(seq "$N"); do topo_gw_announce "$i" "$TOPO_VIPS"; done
for v in $TOPO_VIPS; do
    check "router's route to $v has $N next hop(s)" topo_wait_nexthops "$v" "$N" 15
done
ip -n "$TOPO-router" route show "$VIP/32" | sed 's/^/  /'

# Counters just before the traffic (stats lines come once a second).
sleep 1.1
declare -A RX0
for i in $(seq "$N"); do RX0[$i]=$(topo_gw_stat "$i" rx_packets); done

section "HTTP through $VIP:$TCP_PORT from the client (60 connections)"
topo_http 60 "$VIP" "$TCP_PORT" > "$TOPO_STATE/http.out"
ok=$(grep -c '^backend=' "$TOPO_STATE/http.out" || true)
check "60 of 60 HTTP requests answered ($ok)" [ "$ok" -eq 60 ]
grep -o 'backend=[^ ]* zone=[^ ]*' "$TOPO_STATE/http.out" | sort | uniq -c | sed 's/^/  /'
nb=$(grep -o 'backend=[^ ]*' "$TOPO_STATE/http.out" | sort -u | wc -l)
check "responses came from several backends ($nb of $NB)" [ "$nb" -ge 2 ]
bad=$(grep '^backend=' "$TOPO_STATE/http.out" | grep -vc "client=$(topo_client_addr):" || true)
check "every backend saw the client's real address $(topo_client_addr) (mismatches: $bad)" [ "$bad" -eq 0 ]
logged=$(for j in $(seq "$NB"); do cat "$TOPO_STATE/$(topo_backend_name "$j")/server.log"; done \
    | grep -c "proto=tcp client=$(topo_client_addr):" || true)
check "backend logs hold the 60 requests from $(topo_client_addr) ($logged)" [ "$logged" -ge 60 ]
pad=$(head -c 1400 /dev/zero | tr '\0' x)
big=$(topo_exec client curl -sS --max-time 5 -H "X-Pad: $pad" "http://$VIP:$TCP_PORT/big" 2>&1 || true)
check "a request with full-size (1500-byte) client packets passes: ${big%% proto=*}" \
    grep -q '^backend=' <<< "$big"

section "UDP through $VIP:$UDP_PORT (20 datagrams, a new source port each)"
topo_udp 20 "$VIP" "$UDP_PORT" > "$TOPO_STATE/udp.out" || true
uok=$(grep -c '^backend=.*proto=udp' "$TOPO_STATE/udp.out" || true)
check "20 of 20 UDP requests answered ($uok)" [ "$uok" -eq 20 ]
grep -o 'backend=[^ ]* zone=[^ ]*' "$TOPO_STATE/udp.out" | sort | uniq -c | sed 's/^/  /'
ubad=$(grep '^backend=' "$TOPO_STATE/udp.out" | grep -vc "client=$(topo_client_addr):" || true)
check "UDP backends saw the client's real address (mismatches: $ubad)" [ "$ubad" -eq 0 ]

section "flows spread over the gateways (rx_packets during the traffic)"
sleep 1.2
for i in $(seq "$N"); do
    rx=$(topo_gw_stat "$i" rx_packets)
    d=$(( ${rx:-0} - ${RX0[$i]:-0} ))
    # Background (BGP keepalives, ARP) is a few frames a second; 80 flows of
    # ~6 frames each over N gateways are far more.
    check "gw$i received VIP traffic (rx +$d)" [ "$d" -ge 40 ]
done

section "host path: the kernel of every gateway still answers (ARP, ICMP)"
for i in $(seq "$N"); do
    check "client pings gw$i's own address $(topo_gw_addr "$i") (${MODE_LIST[$((i - 1))]})" \
        quiet topo_exec client ping -c 2 -i 0.2 -W 1 -q "$(topo_gw_addr "$i")"
done

section "ICMP echo to the VIP (informational: dnlb answers it)"
if topo_exec client ping -c 3 -i 0.2 -W 1 "$VIP" > "$TOPO_STATE/ping.out" 2>&1; then
    echo "  $(grep 'packets transmitted' "$TOPO_STATE/ping.out")"
else
    echo "  no reply: $(grep 'packets transmitted' "$TOPO_STATE/ping.out" || true)"
fi

section "withdraw $VIP2 from gw1 (rewrite the include file, birdc configure)"
before=$(topo_bgp_state 1)
sleep 1.1  # a session restart would show as a later "since" time
topo_gw_announce 1 "$(echo "$TOPO_VIPS" | tr ' ' '\n' | grep -vx "$VIP2" | tr '\n' ' ')"
check "router's route to $VIP2 lost gw1 ($((N - 1)) next hop(s) left)" topo_wait_nexthops "$VIP2" $((N - 1)) 10
if [ "$N" -gt 1 ]; then
    check "gw1 ($(topo_gw_addr 1)) is not a next hop of $VIP2" \
        bash -c "! ip -n $TOPO-router route show $VIP2/32 | grep -q 'via $(topo_gw_addr 1) '"
fi
[ "$VIP" = "$VIP2" ] || check "$VIP still has $N next hop(s)" topo_wait_nexthops "$VIP" "$N" 2
after=$(topo_bgp_state 1)
check "gw1's BGP session did not bounce ($after)" [ "$before" = "$after" ]
if [ "$N" -gt 1 ]; then
    w=$(topo_http 10 "$VIP2" "$TCP_PORT" | grep -c '^backend=' || true)
    check "HTTP to $VIP2 still answered by the other gateways ($w of 10)" [ "$w" -eq 10 ]
fi
topo_gw_announce 1 "$TOPO_VIPS"
check "re-announced: $VIP2 has $N next hop(s) again" topo_wait_nexthops "$VIP2" "$N" 10
after=$(topo_bgp_state 1)
check "gw1's BGP session still did not bounce" [ "$before" = "$after" ]

section "stop dnlb (SIGTERM): per-gateway listener counters"
for i in $(seq "$N"); do
    _topo_kill "$TOPO_STATE/gw$i/dnlb.pid"
    tcp=$(awk -v l="tcp-$TCP_PORT" '$1 == "listener:" && $2 == l { sub("packets=", "", $3); print $3 }' "$TOPO_STATE/gw$i/dnlb.out")
    udp=$(awk -v l="udp-$UDP_PORT" '$1 == "listener:" && $2 == l { sub("packets=", "", $3); print $3 }' "$TOPO_STATE/gw$i/dnlb.out")
    grep -E '^(listener|backend|flows):' "$TOPO_STATE/gw$i/dnlb.out" | sed "s/^/  gw$i /"
    check "gw$i (${MODE_LIST[$((i - 1))]}) balanced TCP packets (${tcp:-none})" [ "${tcp:-0}" -gt 0 ]
    if [ "${MODE_LIST[$((i - 1))]}" = af_xdp ]; then
        nfv=$(grep '^total:' "$TOPO_STATE/gw$i/dnlb.out" | tr ' ' '\n' | awk -F= '$1 == "drop_not_for_vip" { print $2 }')
        check "gw$i: vip_redirect.o sent DPDK only VIP traffic (drop_not_for_vip=${nfv:-?})" [ "${nfv:-1}" -eq 0 ]
    fi
    # 20 UDP flows over N gateways: each should get some unless very unlucky.
    [ "${udp:-0}" -gt 0 ] || echo "  note: gw$i got no UDP flow this time (hash luck)"
done

if [ "$KEEP" = 1 ]; then
    section "--keep: dnlb started again on every gateway"
    for i in $(seq "$N"); do topo_gw_start "$i" "${MODE_LIST[$((i - 1))]}"; done
    echo "  try: ip netns exec $(topo_ns client) curl http://$VIP:$TCP_PORT/"
fi

echo "  topology $TOPO, gateways: $MODES; backends: $TOPO_BACKENDS; VIPs: $TOPO_VIPS"
e2e_finish

#!/usr/bin/env bash
# Multi-gateway end-to-end and failure tests (run by the test suite through
# forwarder/tests/e2e_gateways.rs; runnable alone as root):
#
#   three gateways behind an ECMP router, each running dnlb and BIRD, dnlb
#   announcing the VIP through BIRD:
#     gw1 zone a  net_af_packet
#     gw2 zone b  net_af_xdp with xdp/vip_redirect.c (only VIP traffic to DPDK)
#     gw3 zone a  net_af_xdp taking every frame + net_tap exception path
#   three VXLAN backends with direct server return: b1, b2 (zone a), b3 (zone b)
#
#   1. HTTP and UDP through every gateway, IPv4 and IPv6; backends see the client's address;
#      one flow captured on every gateway (`dnlb capture`) while other requests run: tshark
#      reads exactly that flow's packets, as received and encapsulated
#   2. an elastic IP attached through the admin API: reachable; detached: not;
#      an access list denying the client on every gateway: nothing gets through
#   3. config reloads on every gateway while requests run: no failed request
#   4. 50 long-lived TCP connections; a gateway dies (SIGKILL dnlb and BIRD):
#      every connection keeps working through the others (same Maglev choice)
#   5. a backend dies: it leaves the tables within its health thresholds (and a gateway's
#      web console, rendered by headless Chromium, shows it down), new
#      connections go elsewhere, only its own connections fail
#   5b. gw1 comes back while b1 is still dead, its probes 3 s apart (the thresholds alone would
#      keep b1 in its tables for 6 s): its first probes take b1 out before it announces the VIP,
#      and no new connection through it fails
#   6. zone a is lost (its gateways and last backend): traffic continues
#   7. SIGTERM: the last gateway withdraws the VIP before it stops
#
#   scripts/e2e-gateways.sh            DNLB_BIN=path/to/dnlb (default: build release)
#   scripts/e2e-gateways.sh --keep     leave the topology up; `down` removes it
# The last line is "N passed, N failed"; exit status 0 iff nothing failed.
set -euo pipefail
cd "$(dirname "$0")/.."

export TOPO=${TOPO:-dnlbe} TOPO_GATEWAYS=3 TOPO_GW_ZONES="a b a" TOPO_BACKENDS="b1:a b2:a b3:b"
export TOPO_VIPS=${TOPO_VIPS:-203.0.113.10} TOPO_EIPS=203.0.113.77
MODES=(af_packet af_xdp af_xdp_tap)
# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
e2e_args "$@"
[ "${DOWN:-0}" = 1 ] || e2e_binary
# shellcheck source=scripts/lib/topology.sh
. scripts/lib/topology.sh
if [ "${DOWN:-0}" = 1 ]; then topo_down; echo "topology $TOPO removed"; exit 0; fi
[ "${E2E_NO_INSTALL:-0}" = 1 ] || topo_ensure_deps
e2e_traps

VIP=${TOPO_VIPS%% *} VIP6=${TOPO_VIPS6%% *} EIP=$TOPO_EIPS CLIENT=$(topo_client_addr)
json() { "$TOPO_PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
answered() { grep -c '^backend=' "$1" || true; }
backends_in() { grep -o '^backend=[^ ]*' "$1" | sort | uniq -c | awk '{ printf "%s%s:%s", sep, substr($2, 9), $1; sep=" " }'; }
# live GW…: gateways still running.
LIVE=(1 2 3)
# usable_everywhere J WANT: backend J's "usable" is WANT on every live gateway.
usable_everywhere() {
    local i v
    for i in "${LIVE[@]}"; do
        v=$(topo_gw_api "$i" GET /v1/backends | json "[b['usable'] for b in d if b['address'] == '$(topo_backend_addr "$1")'][0]")
        [ "$v" = "$2" ] || return 1
    done
}
# console_state I ADDR: the state gateway I's web console shows for backend
# ADDR, as headless Chromium renders the page in gateway I's namespace.
console_state() {
    topo_exec "gw$1" chromium --headless=new --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$TOPO_STATE/chromium-gw$1" --virtual-time-budget=4000 --dump-dom \
        http://127.0.0.1:9100/ 2>/dev/null \
        | grep -o "data-state=\"[a-z-]*\"><th scope=\"row\">$2<" | sed 's/^data-state="\([a-z-]*\)".*/\1/'
}
console_shows() { [ "$(console_state "$1" "$2")" = "$3" ]; }  # console_shows I ADDR STATE

section "topology $TOPO: client, ECMP router, 3 gateways, 3 VXLAN backends"
topo_up
for i in 1 2 3; do
    topo_gw_start "$i" "${MODES[$((i - 1))]}"
    echo "  gw$i zone $(topo_gw_zone "$i") $(topo_gw_addr "$i") ${MODES[$((i - 1))]}: $(grep -m1 '^routes:' "$TOPO_STATE/gw$i/dnlb.out" || echo 'routes: -')"
done
for j in 1 2 3; do echo "  $(topo_backend_name "$j") zone $(topo_backend_zone "$j") $(topo_backend_addr "$j")"; done
check "BGP sessions to the three gateways are Established" topo_wait_bgp 30
check "dnlb announced $VIP on every gateway: 3 ECMP next hops" topo_wait_nexthops "$VIP" 3 20
ip -n "$TOPO-router" route show "$VIP/32" | sed 's/^/  /'
check "dnlb announced $VIP6 on every gateway (IPv6 sessions): 3 ECMP next hops" topo_wait_nexthops "$VIP6" 3 20

section "1. HTTP through the VIP via every gateway"
declare -A P0
for i in 1 2 3; do P0[$i]=$(topo_gw_api "$i" GET /v1/listeners | json "[l['packets'] for l in d if l['name'] == 'tcp-80'][0]"); done
topo_http 90 "$VIP" 80 > "$TOPO_STATE/http1.out"
check "90 of 90 requests answered ($(answered "$TOPO_STATE/http1.out"))" [ "$(answered "$TOPO_STATE/http1.out")" -eq 90 ]
grep -v '^backend=' "$TOPO_STATE/http1.out" | sed 's/^/  /' || true
echo "  answered by: $(backends_in "$TOPO_STATE/http1.out")"
check "all three backends answered" [ "$(grep -o '^backend=[^ ]*' "$TOPO_STATE/http1.out" | sort -u | wc -l)" -eq 3 ]
bad=$(grep '^backend=' "$TOPO_STATE/http1.out" | grep -vc "client=$CLIENT:" || true)
check "every backend saw the client's real address $CLIENT (mismatches: $bad)" [ "$bad" -eq 0 ]
for i in 1 2 3; do
    p=$(topo_gw_api "$i" GET /v1/listeners | json "[l['packets'] for l in d if l['name'] == 'tcp-80'][0]")
    check "gw$i (${MODES[$((i - 1))]}) carried some of them (listener tcp-80 +$((p - P0[$i])) packets)" [ $((p - P0[$i])) -gt 0 ]
done

topo_udp 20 "$VIP" 80 > "$TOPO_STATE/udp1.out" || true
u=$(grep -c "^backend=.*proto=udp client=$CLIENT:" "$TOPO_STATE/udp1.out" || true)
check "UDP: 20 of 20 datagrams answered with the client's address ($u; $(backends_in "$TOPO_STATE/udp1.out"))" [ "$u" -eq 20 ]

section "1a. one flow captured on the gateways (dnlb capture) while other requests run"
CAP=$TOPO_STATE/capture SPORT=40123
for i in 1 2 3; do
    topo_exec "gw$i" "$DNLB_BIN" capture --config "$TOPO_STATE/gw$i/dnlb.toml" \
        --token-file "$TOPO_STATE/gw$i/dnlb.admin-token" --src "$CLIENT" --sport "$SPORT" \
        --dst "$VIP" --dport 80 --proto tcp --packets 100 --seconds 6 -w "$CAP-gw$i.pcapng" > "$CAP-gw$i.out" 2>&1 &
    eval "cap$i=\$!"
done
sleep 1.5
topo_http 20 "$VIP" 80 > "$TOPO_STATE/http1a.out" &
others=$!
one=$(topo_exec client curl -gsS --local-port "$SPORT" --max-time 3 "http://$VIP/one-flow" 2>&1 || true)
wait "$others" || true
wait "$cap1" "$cap2" "$cap3" || true
check "the captured flow was answered ($one)" grep -q '^backend=' <<< "$one"
# Each gateway's capture: frames as received (rx) and as they left (tx,
# VXLAN: the inner headers last in each field).
flow_rows() { tshark -r "$1" -T fields -E separator='|' -e frame.interface_name -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport 2>/dev/null; }
rx=0 tx=0 other=0
for i in 1 2 3; do
    [ -s "$CAP-gw$i.pcapng" ] || { echo "  gw$i: $(tail -1 "$CAP-gw$i.out")"; continue; }
    while IFS='|' read -r ifname src sport dst dport; do
        if [ "${src##*,}|${sport##*,}|${dst##*,}|${dport##*,}" != "$CLIENT|$SPORT|$VIP|80" ]; then
            other=$((other + 1))
        elif [ "$ifname" = rx ]; then rx=$((rx + 1))
        elif [ "$ifname" = tx ]; then tx=$((tx + 1))
        else other=$((other + 1)); fi
    done < <(flow_rows "$CAP-gw$i.pcapng")
    echo "  gw$i captured $(flow_rows "$CAP-gw$i.pcapng" | wc -l) frames"
done
check "tshark reads exactly that flow's packets: $rx received, $tx encapsulated out, $other of anything else" \
    bash -c "[ $rx -ge 3 ] && [ $tx -eq $rx ] && [ $other -eq 0 ]"

section "1b. IPv6: HTTP to $VIP6 via every gateway (inner IPv6 in VXLAN over IPv4)"
for i in 1 2 3; do P0[$i]=$(topo_gw_api "$i" GET /v1/listeners | json "[l['packets'] for l in d if l['name'] == 'tcp-80'][0]"); done
topo_http 45 "$VIP6" 80 > "$TOPO_STATE/http6v.out"
check "45 of 45 requests to [$VIP6] answered ($(answered "$TOPO_STATE/http6v.out"); $(backends_in "$TOPO_STATE/http6v.out"))" [ "$(answered "$TOPO_STATE/http6v.out")" -eq 45 ]
grep -v '^backend=' "$TOPO_STATE/http6v.out" | sed 's/^/  /' || true
bad=$(grep '^backend=' "$TOPO_STATE/http6v.out" | grep -vc "client=$(topo_client_addr6):" || true)
check "every backend saw the client's IPv6 address $(topo_client_addr6) (mismatches: $bad)" [ "$bad" -eq 0 ]
for i in 1 2 3; do
    p=$(topo_gw_api "$i" GET /v1/listeners | json "[l['packets'] for l in d if l['name'] == 'tcp-80'][0]")
    check "gw$i (${MODES[$((i - 1))]}) carried IPv6 flows (+$((p - P0[$i])) packets)" [ $((p - P0[$i])) -gt 0 ]
done

section "2. elastic IP $EIP attached, then detached (admin API on every gateway)"
no=$(topo_exec client curl -sS --max-time 2 "http://$EIP/" 2>&1 || true)
check "before: $EIP is not reachable" not_answered "$no"
for i in 1 2 3; do topo_gw_api "$i" PUT /v1/listeners/tcp-80/elastic_ip "{\"address\": \"$EIP\"}" > /dev/null; done
check "attached: announced by every gateway (3 next hops)" topo_wait_nexthops "$EIP" 3 10
topo_http 20 "$EIP" 80 > "$TOPO_STATE/eip.out"
check "attached: 20 of 20 requests to $EIP answered ($(answered "$TOPO_STATE/eip.out"))" [ "$(answered "$TOPO_STATE/eip.out")" -eq 20 ]
grep -v '^backend=' "$TOPO_STATE/eip.out" | sed 's/^/  /' || true
for i in 1 2 3; do topo_gw_api "$i" DELETE /v1/listeners/tcp-80/elastic_ip > /dev/null; done
check "detached: withdrawn everywhere (0 next hops)" topo_wait_nexthops "$EIP" 0 10
topo_http 5 "$EIP" 80 > "$TOPO_STATE/eip2.out"
check "detached: $EIP is not reachable (0 of 5 answered)" [ "$(answered "$TOPO_STATE/eip2.out")" -eq 0 ]

section "2b. an access list denying the client, set through the admin API on every gateway"
for i in 1 2 3; do
    topo_gw_api "$i" PUT /v1/listeners/tcp-80/acl "{\"default\": \"allow\", \"deny\": [\"$CLIENT/32\"]}" > /dev/null
done
# 30 connection attempts at once (3 s each), spread by the router's L4 hash.
for k in $(seq 30); do
    topo_exec client curl -sS --max-time 3 "http://$VIP/acl-$k" > "$TOPO_STATE/acl.$k.out" 2>&1 &
done
wait
denied_ok=$(cat "$TOPO_STATE"/acl.*.out | grep -c '^backend=' || true)
check "denied: 0 of 30 connections from $CLIENT got through any gateway ($denied_ok did)" [ "$denied_ok" -eq 0 ]
for i in 1 2 3; do
    n=$(topo_gw_api "$i" GET /v1/listeners | json "[r['packets'] for l in d if l['name'] == 'tcp-80' for r in l['acl']['rules']][0]")
    check "gw$i counted the deny rule ($n packets)" [ "$n" -gt 0 ]
done
topo_http 10 "$VIP6" 80 > "$TOPO_STATE/acl6.out"
check "the client's IPv6 address is not denied: 10 of 10 answered ($(answered "$TOPO_STATE/acl6.out"))" [ "$(answered "$TOPO_STATE/acl6.out")" -eq 10 ]
for i in 1 2 3; do topo_gw_api "$i" DELETE /v1/listeners/tcp-80/acl > /dev/null; done
topo_http 10 "$VIP" 80 > "$TOPO_STATE/acl2.out"
check "the list removed: 10 of 10 answered ($(answered "$TOPO_STATE/acl2.out"))" [ "$(answered "$TOPO_STATE/acl2.out")" -eq 10 ]

section "3. config reloads on every gateway while 150 requests run"
topo_http 150 "$VIP" 80 > "$TOPO_STATE/reload.out" &
traffic=$!
declare -A R0
for i in 1 2 3; do R0[$i]=$(grep -c '^reload: ok' "$TOPO_STATE/gw$i/dnlb.out" || true); done
for k in 1 2 3 4 5 6; do
    for i in 1 2 3; do
        f=$TOPO_STATE/gw$i/dnlb.toml
        # Alternate b3's weight: every gateway rebuilds the same table.
        if [ $((k % 2)) = 1 ]; then
            sed "s/^inner_mac = \"$(topo_backend_vxmac 3)\"\$/&\nweight = 50/" "$f" > "$f.tmp"
        else
            grep -v '^weight = 50$' "$f" > "$f.tmp"
        fi
        mv "$f.tmp" "$f"
        kill -HUP "$(cat "$TOPO_STATE/gw$i/dnlb.pid")"
    done
    sleep 0.4
done
wait "$traffic" || true
grep -v '^backend=' "$TOPO_STATE/reload.out" | sed 's/^/  /' || true
check "150 of 150 requests answered during the reloads ($(answered "$TOPO_STATE/reload.out"))" [ "$(answered "$TOPO_STATE/reload.out")" -eq 150 ]
for i in 1 2 3; do
    n=$(( $(grep -c '^reload: ok' "$TOPO_STATE/gw$i/dnlb.out" || true) - R0[$i] ))
    # At least one per SIGHUP (the file watcher may reload a version first).
    check "gw$i published the 6 reloads ($n), rejected none" \
        bash -c "[ $n -ge 6 ] && ! grep -q '^reload: rejected' '$TOPO_STATE/gw$i/dnlb.out'"
done

section "4. 50 long-lived TCP connections; gw1 dies (SIGKILL dnlb and BIRD)"
rm -f "$TOPO_STATE/conns.ready"
topo_exec client "$TOPO_PY" "$TOPO_FILES/conn_client.py" "$VIP" "$TOPO_ECHO_PORT" --count 50 \
    --duration 12 --interval 0.2 --timeout 20 --ready-file "$TOPO_STATE/conns.ready" > "$TOPO_STATE/conns.out" 2>&1 &
client=$!
check "50 connections established" wait_for 20 test -s "$TOPO_STATE/conns.ready"
sleep 1
topo_gw_kill 1
LIVE=(2 3)
echo "  gw1 killed at $(date +%T.%N | cut -c1-12)"
check "the router dropped gw1 when the BGP hold time ran out (2 next hops)" topo_wait_nexthops "$VIP" 2 10
wait "$client" || true
summary=$(grep '^conns=' "$TOPO_STATE/conns.out" || echo "no summary: $(tail -3 "$TOPO_STATE/conns.out")")
echo "  $summary"
grep '^failed' "$TOPO_STATE/conns.out" | head -5 | sed 's/^/  /' || true
check "every connection kept working: $summary" grep -q '^conns=50 failed=0 ' "$TOPO_STATE/conns.out"

section "5. backend b1 dies"
rm -f "$TOPO_STATE/conns.ready"
topo_exec client "$TOPO_PY" "$TOPO_FILES/conn_client.py" "$VIP" "$TOPO_ECHO_PORT" --count 30 \
    --duration 5 --interval 0.2 --timeout 5 --ready-file "$TOPO_STATE/conns.ready" > "$TOPO_STATE/conns2.out" 2>&1 &
client=$!
check "30 connections established" wait_for 20 test -s "$TOPO_STATE/conns.ready"
check "gw2's web console (headless Chromium) shows b1 up" console_shows 2 "$(topo_backend_addr 1)" up
start=$(date +%s%N)
topo_backend_kill 1
check "b1 left the tables of gw2 and gw3 within its thresholds (3 x 300 ms + timeout: under 2 s)" \
    wait_for 2 usable_everywhere 1 False
echo "  after $(( ($(date +%s%N) - start) / 1000000 )) ms"
check "gw2's web console shows b1 down" wait_for 20 console_shows 2 "$(topo_backend_addr 1)" down
echo "  on the page $(( ($(date +%s%N) - start) / 1000000 )) ms after the kill (a headless Chromium start included)"
topo_http 30 "$VIP" 80 > "$TOPO_STATE/http5.out"
check "new connections go elsewhere: 30 of 30 answered ($(backends_in "$TOPO_STATE/http5.out"))" [ "$(answered "$TOPO_STATE/http5.out")" -eq 30 ]
check "none of them by b1" bash -c "! grep -q '^backend=b1 ' '$TOPO_STATE/http5.out'"
wait "$client" || true
summary=$(grep '^conns=' "$TOPO_STATE/conns2.out" || echo "no summary")
echo "  $summary"
on_b1=$(sed -n 's/.*backends=[^ ]*b1:\([0-9]*\).*/\1/p' <<< "$summary")
check "only b1's connections failed (${on_b1:-0} on b1): $summary" \
    grep -Eq "^conns=30 failed=${on_b1:-0} .*failed_by_backend=(b1:${on_b1:-0})?$" "$TOPO_STATE/conns2.out"

section "5b. gw1 comes back while b1 is still dead (its checks 3 s apart: 3 failures would take 6 s)"
topo_gw_bird_start 1
TOPO_HEALTH="3000 1000 2 3" topo_gw_start 1 af_packet
LIVE=(1 2 3)
echo "  gw1: $(grep -m1 'every checked backend probed once' "$TOPO_STATE/gw1/dnlb.err" | sed 's/.*INFO [^ ]* //' || echo '-')"
check "gw1 announced $VIP again: 3 next hops" topo_wait_nexthops "$VIP" 3 20
check "b1 is out of every table, gw1's too" usable_everywhere 1 False
topo_http 30 "$VIP" 80 > "$TOPO_STATE/http5b.out"
check "new connections right after gw1's return: $(answered "$TOPO_STATE/http5b.out") of 30 answered ($(backends_in "$TOPO_STATE/http5b.out"))" \
    [ "$(answered "$TOPO_STATE/http5b.out")" -eq 30 ]

section "6. zone a lost: gw1, gw3 and b2 die (b1 already did)"
topo_gw_kill 1
topo_gw_kill 3
topo_backend_kill 2
LIVE=(2)
check "the router keeps only gw2 (zone b)" topo_wait_nexthops "$VIP" 1 10
check "gw2 took b2 out of its table" wait_for 3 usable_everywhere 2 False
topo_http 30 "$VIP" 80 > "$TOPO_STATE/http6.out"
check "traffic continues: 30 of 30 answered ($(backends_in "$TOPO_STATE/http6.out"))" [ "$(answered "$TOPO_STATE/http6.out")" -eq 30 ]
check "all by zone b's b3" [ "$(grep -c '^backend=b3 zone=b ' "$TOPO_STATE/http6.out" || true)" -eq 30 ]

section "7. gw2 stops (SIGTERM): it withdraws the VIP first"
kill -TERM "$(cat "$TOPO_STATE/gw2/dnlb.pid")"
check "the router lost its last route to $VIP" topo_wait_nexthops "$VIP" 0 10
check "gw2 said so: $(grep -m1 '^routes: withdrawn' "$TOPO_STATE/gw2/dnlb.out" || echo '-')" \
    wait_for 5 grep -q '^routes: withdrawn' "$TOPO_STATE/gw2/dnlb.out"

e2e_finish

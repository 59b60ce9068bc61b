#!/usr/bin/env bash
# SYN-flood end-to-end test (run by the test suite through
# forwarder/tests/e2e_flood.rs; runnable alone as root):
#
#   two gateways behind the ECMP router, each running dnlb and BIRD, dnlb
#   announcing the VIP:
#     gw1 zone a  net_af_packet (the kernel keeps the address and sees every frame)
#     gw2 zone b  net_af_xdp taking every frame + net_tap exception path: the
#                 gateway's own traffic (ARP, BGP, the flood below) goes
#                 through dnlb to the kernel and back
#   two VXLAN backends with direct server return: b1 (zone a), b2 (zone b)
#
#   1. HTTP through the VIP works (baseline)
#   2. 50 HTTP keep-alive connections sending requests and a loop of new
#      connections (one request each) run while hping3 floods random-source
#      SYNs at VIP:80 from the client for FLOOD_S seconds: ≥ 99.9 % of the
#      keep-alive requests and ≥ 99 % of the new connections made during the
#      flood succeed; the flood rate is measured (hping3's count and the
#      client link's TX counter); the VIP keeps both next hops, no gateway's
#      health checks or announcements change, the flow tables do not fill
#   3. floods at each gateway's own address (the one its BGP session uses):
#      SYNs to port 179 and UDP to an arbitrary port, random sources, for
#      GW_FLOOD_S seconds each; sampled every second, the router's BGP
#      sessions with that gateway stay Established (never re-established)
#      and the VIP's route keeps that gateway as a next hop, during and
#      after; the gateway's health checks (they use the same path) see no
#      backend change and dnlb changes no announcement
#   Every flood prints the rate hping3 reached and where the packets went
#   (router links, dnlb's ports and drop reasons, the tap's kernel side).
#
#   scripts/e2e-flood.sh            DNLB_BIN=path/to/dnlb (default: build release)
#   scripts/e2e-flood.sh --keep     leave the topology up; `down` removes it
# The last line is "N passed, N failed"; exit status 0 iff nothing failed.
set -euo pipefail
cd "$(dirname "$0")/.."

export TOPO=${TOPO:-dnlbf} TOPO_GATEWAYS=2 TOPO_GW_ZONES="a b" TOPO_BACKENDS="b1:a b2:b"
export TOPO_VIPS=${TOPO_VIPS:-203.0.113.10}
# Health checks timed as production gateways time them (a probe may take
# 1.5 s, three failures in a row — 6 s — mark a backend down), not the 250 ms
# of the other tests, which want a killed backend noticed quickly. On this
# 2-core host the floods overrun gw2's AF_XDP ring whenever its worker is
# descheduled, losing every frame for up to a second or more (health answers
# too; measured: 4 probes of both backends in a row, 1.2 s); a 250 ms probe
# cannot ride out one lost SYN (the kernel's first retransmission is after
# 1 s), so it flapped both backends, and the flap reset keep-alive
# connections. On a gateway whose worker owns its core the loss is not there.
export TOPO_HEALTH=${TOPO_HEALTH:-2000 1500 2 3}
# BGP timed as production sessions are timed too (hold 9 s, keepalive 3 s;
# routers default to 90 s and use BFD for fast failure detection), not the
# 3 s of the other tests, which want a killed gateway noticed quickly. The
# same ring overruns lost gw2's keep-alives for longer than 3 s about once in
# seven runs, and the router reset the session. Nothing here kills a gateway.
export TOPO_BGP_TIMERS=${TOPO_BGP_TIMERS:-9 3}
MODES=(af_packet af_xdp_tap)
FLOOD_S=${FLOOD_S:-12}       # the SYN flood at the VIP
GW_FLOOD_S=${GW_FLOOD_S:-10} # each flood at a gateway's address
KA_CONNS=50
# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
e2e_args "$@"
[ "${DOWN:-0}" = 1 ] || e2e_binary
# shellcheck source=scripts/lib/topology.sh
. scripts/lib/topology.sh
if [ "${DOWN:-0}" = 1 ]; then topo_down; echo "topology $TOPO removed"; exit 0; fi
if [ "${E2E_NO_INSTALL:-0}" != 1 ]; then
    topo_ensure_deps
    dnlb_ensure_apt hping3
fi
command -v hping3 > /dev/null || { echo "hping3 missing (apt-get install -y hping3)" >&2; exit 1; }
e2e_traps

VIP=${TOPO_VIPS%% *}
START=$(date +%s)
json() { "$TOPO_PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
answered() { grep -c '^backend=' "$1" || true; }
now() { date +%s.%N; }
elapsed() { "$TOPO_PY" -c "print(f'{$2 - $1:.2f}')"; }
# tx_packets NODE DEV: DEV's transmitted-packet counter in NODE's namespace.
tx_packets() { ip -n "$TOPO-$1" -s -j link show "$2" | json "d[0]['stats64']['tx']['packets']"; }
# link_counts NODE DEV: DEV's kernel counters as JSON {rx, tx, rx_dropped, tx_dropped}.
link_counts() {
    ip -n "$TOPO-$1" -s -j link show "$2" | json "json.dumps({k: d[0]['stats64'][k[:2]]['packets' if len(k) == 2 else 'dropped'] for k in ('rx', 'tx', 'rx_dropped', 'tx_dropped')})"
}
# link_delta NODE DEV BEFORE_JSON: "rx +N tx +N rx_dropped +N tx_dropped +N" since BEFORE_JSON.
link_delta() {
    local after
    after=$(link_counts "$1" "$2")
    "$TOPO_PY" -c "import json; a, b = json.loads('$after'), json.loads('$3'); print(' '.join('%s +%d' % (k, a[k] - b[k]) for k in a))"
}
# health_changes I: how many backend health changes gateway I has logged.
health_changes() { grep -c 'backend health changed' "$TOPO_STATE/gw$1/dnlb.err" || true; }
# route_changes I: how many announcements or withdrawals dnlb on gateway I has
# made (a withdrawal shorter than the 1 s sampling still counts here).
route_changes() { grep -c '^routes:' "$TOPO_STATE/gw$1/dnlb.out" || true; }
# lost_before_dnlb I ROUTER_BEFORE_JSON: after gw_report, how many of the
# frames the router sent gateway I never reached dnlb's uplink port (lost in
# the veth, AF_XDP or AF_PACKET rings: dnlb's rx_missed does not see these).
lost_before_dnlb() {
    local sent got
    sent=$(( $(link_counts router "gw$1" | json "d['tx']") - $(json "d['tx']" <<< "$2") ))
    got=$(gw_delta "$1" "sum(p['rx_packets'] for p in d['ports'] if p['name'] != 'net_tap0')")
    echo "router sent gw$1 $sent frames, its uplink port received $got: $("$TOPO_PY" -c "print(f'{max(0, $sent - $got) * 100 / max(1, $sent):.1f}')") % lost before dnlb"
}
# hping_sent LOG: the "N packets tramitted" (sic) figure of hping3's summary.
hping_sent() { grep -Eo '^[0-9]+ packets tra' "$1" | awk '{ print $1 }' | tail -1; }
# gw_mark I: remember gateway I's /v1/status (and its tap0's kernel counters
# in af_xdp_tap mode) as the "before" of gw_report and gw_delta.
gw_mark() {
    topo_gw_api "$1" GET /v1/status > "$TOPO_STATE/gw$1/status0.json"
    if [ "${MODES[$(($1 - 1))]}" = af_xdp_tap ]; then link_counts "gw$1" tap0 > "$TOPO_STATE/gw$1/tap0.json"; fi
}
# gw_report I: what gateway I did since gw_mark: its ports, flow table and
# drop reasons from /v1/status, and the kernel's side of its tap0.
gw_report() {
    topo_gw_api "$1" GET /v1/status > "$TOPO_STATE/gw$1/status.json"
    "$TOPO_PY" - "$TOPO_STATE/gw$1/status0.json" "$TOPO_STATE/gw$1/status.json" <<'EOF'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
ports = {p["name"]: p for p in a["ports"]}
out = []
for p in b["ports"]:
    q = ports[p["name"]]
    out.append("%s rx +%d tx +%d missed +%d" % (p["name"], p["rx_packets"] - q["rx_packets"],
               p["tx_packets"] - q["tx_packets"], p["rx_missed"] - q["rx_missed"]))
f, g = b["flows"], a["flows"]
out.append("flows created +%d, entries %d/%d, table_full +%d" % (
    f["created"] - g["created"], f["entries"], f["capacity"], f["table_full"] - g["table_full"]))
drops = {k: v - a["drops"].get(k, 0) for k, v in b["drops"].items() if v - a["drops"].get(k, 0)}
out.append("drops " + (" ".join("%s +%d" % kv for kv in sorted(drops.items())) or "none"))
print("; ".join(out))
EOF
    if [ -e "$TOPO_STATE/gw$1/tap0.json" ]; then
        echo "    tap0, the kernel's side (rx: from dnlb, tx: to dnlb): $(link_delta "gw$1" tap0 "$(cat "$TOPO_STATE/gw$1/tap0.json")")"
    fi
}
# gw_delta I EXPR: EXPR over gateway I's status (d) after gw_report minus before.
gw_delta() {
    echo $(( $(json "$2" < "$TOPO_STATE/gw$1/status.json") - $(json "$2" < "$TOPO_STATE/gw$1/status0.json") ))
}
# flood NAME SECONDS HPING3_ARGS…: hping3 from the client for SECONDS (SIGINT
# makes it print its summary; SIGKILL 3 s later if it does not stop), output
# in $TOPO_STATE/NAME.hping, the time and the client's TX counter at its start
# and end in NAME.start and NAME.end; runs in the background, sets FLOOD_PID.
flood() {
    local name=$1 secs=$2; shift 2
    (
        echo "$(now) $(tx_packets client eth0)" > "$TOPO_STATE/$name.start"
        # On CPU 0: the gateways' workers are pinned to CPU 1 (the
        # generator must not take the forwarder's core on this small host).
        timeout -s INT -k 3 "$secs" ip netns exec "$TOPO-client" taskset -c 0 hping3 -q --flood "$@" \
            > "$TOPO_STATE/$name.hping" 2>&1 || true
        echo "$(now) $(tx_packets client eth0)" > "$TOPO_STATE/$name.end"
    ) &
    FLOOD_PID=$!
}
# unchanged SINCE4 NOW4 SINCE6 NOW6: both sessions still Established since
# the same moment (and the first was known).
unchanged() {
    [ -n "$1" ] && same_since "$1" "$2" && same_since "$3" "$4"
}
# same_since A B: BIRD's two "since" values name the same moment. BIRD
# works the wall-clock time out from its monotonic clock at each query, so
# one moment may read 1 ms apart (14:22:13.602, then 14:22:13.603); a
# restart would read seconds later. Values without a time of day must be
# equal.
same_since() {
    local a b
    a=$(since_ms "$1") b=$(since_ms "$2")
    if [ -z "$a" ] || [ -z "$b" ]; then
        [ "$1" = "$2" ]
        return
    fi
    local d=$(( a > b ? a - b : b - a ))
    [ "$d" -lt 1000 ] || [ "$d" -gt $(( 86400000 - 1000 )) ]
}
# since_ms VALUE: the time of day in VALUE (HH:MM:SS[.mmm]) in milliseconds.
since_ms() {
    grep -oE '[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?' <<< "$1" | tail -1 |
        awk -F'[:.]' '{ printf "%d\n", (($1 * 60 + $2) * 60 + $3) * 1000 + substr($4 "000", 1, 3) }'
}
# bgp_since I [v6]: when the router's session with gateway I (IPv6: v6)
# became Established, as BIRD shows it; asked again (up to 5 times, 1 s
# apart) while a query answers nothing: right after a flood birdc may fail
# once, and an empty answer is not a restart.
bgp_since() {
    local v
    for _ in 1 2 3 4 5; do
        v=$(topo_bgp_state "$1" ${2:-} | cut -f2) || true
        if [ -n "$v" ]; then
            echo "$v"
            return 0
        fi
        sleep 1
    done
}
# flood_report NAME: print the rate flood NAME reached (after it ended).
flood_report() {
    local name=$1 t sent tx t0 t1 tx0 tx1
    read -r t0 tx0 < "$TOPO_STATE/$name.start"
    read -r t1 tx1 < "$TOPO_STATE/$name.end"
    t=$(elapsed "$t0" "$t1")
    sent=$(hping_sent "$TOPO_STATE/$name.hping")
    tx=$((tx1 - tx0))
    echo "  hping3: ${sent:-?} packets in ${t}s = $("$TOPO_PY" -c "print(round(${sent:-0} / $t))") pps;" \
        "client eth0 transmitted $tx = $("$TOPO_PY" -c "print(round($tx / $t))") pps"
}

section "topology $TOPO: client, ECMP router, 2 gateways (${MODES[*]}), 2 VXLAN backends"
topo_up
for i in 1 2; do
    topo_gw_start "$i" "${MODES[$((i - 1))]}"
    echo "  gw$i zone $(topo_gw_zone "$i") $(topo_gw_addr "$i") ${MODES[$((i - 1))]}"
done
check "BGP sessions to both gateways are Established" topo_wait_bgp 30
check "dnlb announced $VIP on both gateways: 2 ECMP next hops" topo_wait_nexthops "$VIP" 2 20

section "1. baseline: HTTP through the VIP"
topo_http 10 "$VIP" 80 > "$TOPO_STATE/http1.out"
check "10 of 10 requests answered ($(answered "$TOPO_STATE/http1.out"))" [ "$(answered "$TOPO_STATE/http1.out")" -eq 10 ]

section "2. SYN flood with random sources at $VIP:80 for ${FLOOD_S}s under $KA_CONNS keep-alive connections and new connections"
for i in 1 2; do gw_mark "$i"; done
FLAG=$TOPO_STATE/flooding
rm -f "$FLAG" "$TOPO_STATE/ka.ready"
# Setup (≤ 2 × 5 s) + 2 s before the flood + the flood + 3 s after it.
topo_exec client "$TOPO_PY" "$TOPO_FILES/keepalive_client.py" "$VIP" 80 --conns "$KA_CONNS" \
    --interval 0.2 --new-workers 4 --new-interval 0.05 --timeout 5 \
    --duration $((FLOOD_S + 8)) --ready-file "$TOPO_STATE/ka.ready" --flood-file "$FLAG" \
    > "$TOPO_STATE/ka.json" 2> "$TOPO_STATE/ka.err" &
client=$!
for k in $(seq 150); do [ -s "$TOPO_STATE/ka.ready" ] && break; sleep 0.1; done
check "$KA_CONNS keep-alive connections open ($(cat "$TOPO_STATE/ka.ready" 2>/dev/null || echo 'not ready'))" \
    grep -qx "ready $KA_CONNS" "$TOPO_STATE/ka.ready"
sleep 2
declare -A LINK0 HEALTH0 ROUTES0
for l in router:cl router:gw1 router:gw2 router:b1 router:b2; do LINK0[$l]=$(link_counts "${l%%:*}" "${l#*:}"); done
for i in 1 2; do HEALTH0[$i]=$(health_changes "$i") ROUTES0[$i]=$(route_changes "$i"); done
touch "$FLAG"
flood vip "$FLOOD_S" --rand-source -S -p 80 "$VIP"
# Sample the VIP's route once a second while the flood runs.
vip_route_bad=0
for s in $(seq "$FLOOD_S"); do
    sleep 1
    [ "$(topo_router_nexthops "$VIP" | wc -l)" -eq 2 ] || vip_route_bad=$((vip_route_bad + 1))
    kill -0 "$FLOOD_PID" 2>/dev/null || break
done
wait "$FLOOD_PID" || true
rm -f "$FLAG"
flood_report vip
for l in router:cl router:gw1 router:gw2 router:b1 router:b2; do
    echo "  ${l%%:*} ${l#*:}: $(link_delta "${l%%:*}" "${l#*:}" "${LINK0[$l]}")"
done
for i in 1 2; do
    echo "  gw$i (${MODES[$((i - 1))]}): $(gw_report "$i")"
    echo "    $(lost_before_dnlb "$i" "${LINK0[router:gw$i]}")"
done
wait "$client" || true
if ! json "d['established']['conns']" < "$TOPO_STATE/ka.json" > /dev/null 2>&1; then
    echo "  keepalive_client.py gave no summary:"; tail -5 "$TOPO_STATE/ka.err" | sed 's/^/  /'
fi
# figures KIND: success, latency and errors of KIND's requests during the flood.
figures() {
    json "(lambda r: '%d of %d (%.3f %%), %d failed, latency p50 %s ms p99 %s ms max %s ms, errors %s' % (r['during']['ok'], r['during']['ok'] + r['during']['failed'], 100.0 * r['during']['ok'] / max(1, r['during']['ok'] + r['during']['failed']), r['during']['failed'], r['during']['latency_ms']['p50'], r['during']['latency_ms']['p99'], r['during']['latency_ms']['max'], r['errors'] or '-'))(d['$1'])" \
        < "$TOPO_STATE/ka.json" 2>/dev/null || echo "no figures"
}
# at_least KIND PERMILLE MIN_COUNT: KIND's success during the flood ≥ PERMILLE/1000, over ≥ MIN_COUNT requests.
at_least() {
    json "(lambda r: int(r['during']['ok'] + r['during']['failed'] >= $3 and r['during']['ok'] * 1000 >= $2 * (r['during']['ok'] + r['during']['failed'])))(d['$1'])" \
        < "$TOPO_STATE/ka.json" 2>/dev/null | grep -qx 1
}
echo "  established, during the flood: $(figures established)"
echo "  new connections, during the flood: $(figures new)"
echo "  whole run: $(json "'established %d ok %d failed, new %d ok %d failed, keep-alive connections per backend %s' % (d['established']['ok'], d['established']['failed'], d['new']['ok'], d['new']['failed'], d['established']['backends'])" < "$TOPO_STATE/ka.json" 2>/dev/null || echo -)"
check "≥ 99.9 % of the keep-alive requests during the flood succeeded" at_least established 999 $((KA_CONNS * FLOOD_S * 2))
check "≥ 99 % of the new connections during the flood succeeded" at_least new 990 50
check "the VIP kept both next hops through the flood ($vip_route_bad bad samples)" [ "$vip_route_bad" -eq 0 ]
for i in 1 2; do
    check "gw$i's health checks saw no backend change during the flood ($(($(health_changes "$i") - HEALTH0[$i])))" \
        [ "$(health_changes "$i")" -eq "${HEALTH0[$i]}" ]
    check "dnlb on gw$i left its announcement alone ($(($(route_changes "$i") - ROUTES0[$i])) changes)" \
        [ "$(route_changes "$i")" -eq "${ROUTES0[$i]}" ]
done
for i in 1 2; do
    full=$(gw_delta "$i" "d['flows']['table_full']") created=$(gw_delta "$i" "d['flows']['created']")
    check "gw$i's flow table did not fill (table_full +$full)" [ "$full" -eq 0 ]
    # The client made ~1000 connections in all; the flood's SYNs take no entry.
    check "gw$i: the flood's SYNs took no flow-table entries (created +$created, at most 5000)" [ "$created" -le 5000 ]
done

# flood_gateway I KIND SECONDS: flood gateway I's address (KIND syn: SYNs to
# the BGP port 179; udp: UDP to port 9) with random sources, sampling once a
# second the router's two BGP sessions with gateway I and the VIP's next hops.
flood_gateway() {
    local i=$1 kind=$2 secs=$3 addr mode since4 since6 bad=0 route_bad=0 s st4 st6 gwst hops
    addr=$(topo_gw_addr "$i") mode=${MODES[$((i - 1))]}
    since4=$(bgp_since "$i") since6=$(bgp_since "$i" v6)
    gw_mark "$i"
    local args=(--rand-source -S -p 179) link0 health0 routes0
    link0=$(link_counts router "gw$i") health0=$(health_changes "$i") routes0=$(route_changes "$i")
    [ "$kind" = udp ] && args=(--rand-source --udp -p 9)
    flood "gw$i-$kind" "$secs" "${args[@]}" "$addr"
    for s in $(seq $((secs + 2))); do
        sleep 1
        # A failed query (no route, birdc refused) is a sample, not an error.
        st4=$(topo_bgp_state "$i" | cut -f1) || true
        st6=$(topo_bgp_state "$i" v6 | cut -f1) || true
        gwst=$(timeout 3 ip netns exec "$TOPO-gw$i" birdc -s "$(topo_gw_sock "$i")" show protocols uplink 2>/dev/null \
            | awk '$1 == "uplink" { print $6 }') || true
        hops=$(topo_router_nexthops "$VIP" | tr '\n' ' ') || true
        local flooding=after
        kill -0 "$FLOOD_PID" 2>/dev/null && flooding=during
        echo "  t+${s}s ($flooding): router↔gw$i ${st4:-?} (IPv6 ${st6:-?}), gw$i's view ${gwst:-?}, $VIP via ${hops:-nothing}"
        [ "$st4" = Established ] && [ "$st6" = Established ] || bad=$((bad + 1))
        grep -qw "$addr" <<< "$hops" || route_bad=$((route_bad + 1))
    done
    wait "$FLOOD_PID" || true
    flood_report "gw$i-$kind"
    echo "  router gw$i: $(link_delta router "gw$i" "$link0")"
    echo "  gw$i: $(gw_report "$i")"
    # In af_packet mode the port also receives the kernel's own outgoing frames.
    if [ "$mode" = af_xdp_tap ]; then echo "    $(lost_before_dnlb "$i" "$link0")"; fi
    check "gw$i ($mode), $kind flood: BGP (IPv4 and IPv6) Established in every sample ($bad bad of $((secs + 2)))" [ "$bad" -eq 0 ]
    local after4 after6
    after4=$(bgp_since "$i") after6=$(bgp_since "$i" v6)
    # The values printed are the values compared (a third query could
    # differ from both, or fail).
    check "gw$i ($mode), $kind flood: the sessions never restarted (Established since $since4 / $since6; now $after4 / $after6)" \
        unchanged "$since4" "$after4" "$since6" "$after6"
    check "gw$i ($mode), $kind flood: $VIP kept gw$i as a next hop in every sample ($route_bad bad)" [ "$route_bad" -eq 0 ]
    check "gw$i ($mode), $kind flood: its health checks saw no backend change ($(($(health_changes "$i") - health0)))" \
        [ "$(health_changes "$i")" -eq "$health0" ]
    check "gw$i ($mode), $kind flood: dnlb left its announcement alone ($(($(route_changes "$i") - routes0)) changes)" \
        [ "$(route_changes "$i")" -eq "$routes0" ]
    # Later floods start from a working topology even if this one broke it.
    if [ "$bad" -ne 0 ] || [ "$route_bad" -ne 0 ]; then
        topo_wait_bgp 15 || true
        topo_wait_nexthops "$VIP" 2 15 || true
    fi
}

section "3a. floods at gw2's own address $(topo_gw_addr 2) (af_xdp_tap: through dnlb's exception path)"
flood_gateway 2 syn "$GW_FLOOD_S"
flood_gateway 2 udp "$GW_FLOOD_S"

section "3b. floods at gw1's own address $(topo_gw_addr 1) (af_packet: the kernel receives them directly)"
flood_gateway 1 syn "$GW_FLOOD_S"
flood_gateway 1 udp "$GW_FLOOD_S"

echo
echo "  run time $(($(date +%s) - START)) s"
e2e_finish

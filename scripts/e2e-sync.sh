#!/usr/bin/env bash
# Flow-exception sync end to end (run by the test suite through
# forwarder/tests/e2e_sync.rs; runnable alone as root):
#
#   three gateways (net_af_packet) behind an ECMP router, BIRD on each, four
#   VXLAN backends of which the gateways' config lists three. Twice, first
#   without sync, then with it ([sync] between the gateways):
#     - 120 long-lived TCP connections through the VIP
#     - the fourth backend is registered on every gateway (admin API) and
#       enters the Maglev tables once healthy: about a quarter of the flows
#       now map to it, but each gateway keeps its connections where they
#       began (flow table)
#     - the gateway carrying the most connections is killed (SIGKILL dnlb
#       and BIRD); the router moves its connections to the others
#   Without sync some connections break (the others pick the new table's
#   backend; the test proves nothing if none do); with sync none do (the
#   others learned the exceptions beforehand).
#   Then, with sync, a rolling restart of every gateway (SIGTERM: withdraw,
#   keep forwarding while the router moves away, stop; start: fetch from the
#   peers, announce) after the backend was added, with hostile datagrams at
#   the sync ports (random, tagged with a wrong key, under an unknown key):
#   no long-lived connection breaks, no HTTP request fails, and every hostile
#   datagram is counted and ignored.
#
#   scripts/e2e-sync.sh            DNLB_BIN=path/to/dnlb (default: build release)
#   scripts/e2e-sync.sh --keep     leave the topology up; `down` removes it
# The last line is "N passed, N failed"; exit status 0 iff nothing failed.
set -euo pipefail
cd "$(dirname "$0")/.."

export TOPO=${TOPO:-dnlbs} TOPO_GATEWAYS=3 TOPO_GW_ZONES="a a a"
export TOPO_BACKENDS="b1:a b2:a b3:a b4:a" TOPO_CONFIG_BACKENDS=3
export TOPO_VIPS=${TOPO_VIPS:-203.0.113.10}
# Health checks that ride out a lost probe on a busy 2-core machine.
export TOPO_HEALTH=${TOPO_HEALTH:-"500 400 2 3"}
CONNS=120
# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
e2e_args "$@"
[ "${DOWN:-0}" = 1 ] || e2e_binary
# shellcheck source=scripts/lib/topology.sh
. scripts/lib/topology.sh
if [ "${DOWN:-0}" = 1 ]; then topo_down; echo "topology $TOPO removed"; exit 0; fi
[ "${E2E_NO_INSTALL:-0}" = 1 ] || topo_ensure_deps
e2e_traps

VIP=${TOPO_VIPS%% *}
json() { "$TOPO_PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
B4=$(topo_backend_addr 4)
# b4_in_use I: gateway I has b4 usable (healthy, in its tables).
b4_in_use() {
    [ "$(topo_gw_api "$1" GET /v1/backends | json "[b['usable'] for b in d if b['address'] == '$B4'] == [True]")" = True ]
}
flows_of() { topo_gw_api "$1" GET /v1/status | json "d['flows']['entries']"; }

# phase NAME SYNC: one run on a fresh topology; sets BROKEN.
phase() {
    local name=$1 sync=$2 i most=0 top=1 n client summary
    export TOPO_SYNC=$sync
    section "$name: topology $TOPO, 3 gateways, backends b1-b3 configured (b4 running, not configured)"
    topo_up
    for i in 1 2 3; do topo_gw_start "$i" af_packet; done
    check "$name: BGP sessions Established" topo_wait_bgp 30
    check "$name: $VIP announced by the three gateways" topo_wait_nexthops "$VIP" 3 20
    rm -f "$TOPO_STATE/conns.ready"
    topo_exec client "$TOPO_PY" "$TOPO_FILES/conn_client.py" "$VIP" "$TOPO_ECHO_PORT" --count "$CONNS" \
        --duration 25 --interval 0.5 --timeout 20 --ready-file "$TOPO_STATE/conns.ready" > "$TOPO_STATE/conns.out" 2>&1 &
    client=$!
    check "$name: $CONNS connections established" wait_for 40 test -s "$TOPO_STATE/conns.ready"
    added_b4 "$name"
    for i in 1 2 3; do
        n=$(flows_of "$i")
        echo "  gw$i tracks $n flows"
        if [ "$n" -gt "$most" ]; then most=$n; top=$i; fi
    done
    topo_gw_kill "$top"
    echo "  gw$top (the most flows: $most) killed at $(date +%T.%N | cut -c1-12)"
    check "$name: the router dropped gw$top (2 next hops)" topo_wait_nexthops "$VIP" 2 15
    wait "$client" || true
    summary=$(grep '^conns=' "$TOPO_STATE/conns.out" || echo "no summary: $(tail -3 "$TOPO_STATE/conns.out")")
    echo "  $summary"
    grep '^failed' "$TOPO_STATE/conns.out" | head -5 | sed 's/^/  /' || true
    BROKEN=$(sed -n 's/^conns=[0-9]* failed=\([0-9]*\) .*/\1/p' "$TOPO_STATE/conns.out")
    check "$name: the client ran to the end with every connection counted" grep -q "^conns=$CONNS " "$TOPO_STATE/conns.out"
    if [ "$sync" = 1 ]; then
        for i in 1 2 3; do
            [ "$i" = "$top" ] && continue
            topo_gw_api "$i" GET /v1/status | json "d.get('sync')" | sed "s/^/  gw$i sync: /"
        done
    fi
    for i in 1 2 3; do [ "$i" = "$top" ] || topo_gw_stop "$i"; done
    topo_down
}

# added_b4 NAME: register b4 on every gateway and wait until it is in every
# table and the staged version has been used.
added_b4() {
    local i
    for i in 1 2 3; do
        topo_gw_api "$i" POST /v1/target_groups/web/backends \
            "{\"address\": \"$B4\", \"zone\": \"a\", \"tunnel\": \"vxlan\", \"vni\": $TOPO_VNI, \"inner_mac\": \"$(topo_backend_vxmac 4)\"}" > /dev/null
    done
    for i in 1 2 3; do
        check "$1: gw$i has b4 in its tables (healthy)" wait_for 15 b4_in_use "$i"
    done
    # The staged version's second, a sync batch, and margin.
    sleep 3
}

# rolling NAME: a rolling restart of the three gateways, with sync, while
# connections and requests run.
rolling() {
    local name=$1 i client http summary rejected fails
    export TOPO_SYNC=1
    section "$name: topology $TOPO, 3 gateways with sync"
    topo_up
    for i in 1 2 3; do topo_gw_start "$i" af_packet; done
    check "$name: BGP sessions Established" topo_wait_bgp 30
    check "$name: $VIP announced by the three gateways" topo_wait_nexthops "$VIP" 3 20
    rm -f "$TOPO_STATE/conns.ready" "$TOPO_STATE/http.stop"
    topo_exec client "$TOPO_PY" "$TOPO_FILES/conn_client.py" "$VIP" "$TOPO_ECHO_PORT" --count "$CONNS" \
        --duration 75 --interval 0.5 --timeout 20 --ready-file "$TOPO_STATE/conns.ready" > "$TOPO_STATE/conns.out" 2>&1 &
    client=$!
    check "$name: $CONNS connections established" wait_for 40 test -s "$TOPO_STATE/conns.ready"
    added_b4 "$name"
    # Requests, each a new connection, until told to stop.
    ( while [ ! -e "$TOPO_STATE/http.stop" ]; do topo_http 5 "$VIP" 80; sleep 0.2; done ) > "$TOPO_STATE/http.out" 2>&1 &
    http=$!
    for i in 1 2 3; do
        topo_exec client "$TOPO_PY" "$TOPO_FILES/sync_forge.py" "$(topo_gw_addr "$i")" "$TOPO_SYNC_PORT" \
            "$TOPO_STATE/sync.key" --count 20 > /dev/null
    done
    for i in 1 2 3; do
        rejected=$(topo_gw_api "$i" GET /v1/status | json "d['sync']['rejected']['forged'] + d['sync']['rejected']['malformed']")
        check "$name: gw$i counted the 60 hostile datagrams and ignored them ($rejected)" [ "$rejected" -ge 60 ]
    done
    for i in 1 2 3; do
        echo "  restarting gw$i at $(date +%T.%N | cut -c1-12)"
        topo_gw_stop "$i"
        check "$name: gw$i withdrew the VIP before it stopped (2 next hops)" topo_wait_nexthops "$VIP" 2 10
        topo_gw_start "$i" af_packet
        check "$name: gw$i serves again (dnlb status --wait-serving)" \
            topo_exec "gw$i" "$DNLB_BIN" status --config "$TOPO_STATE/gw$i/dnlb.toml" --wait-serving 30 > /dev/null
        check "$name: gw$i is back: 3 next hops" topo_wait_nexthops "$VIP" 3 30
        topo_gw_api "$i" GET /v1/status | json "(d['sync']['fetch_peers_complete'], d['sync']['learned_entries'])" \
            | sed "s/^/  gw$i (fetch peers complete, learned entries): /"
        sleep 3
    done
    touch "$TOPO_STATE/http.stop"
    wait "$http" || true
    wait "$client" || true
    summary=$(grep '^conns=' "$TOPO_STATE/conns.out" || echo "no summary: $(tail -3 "$TOPO_STATE/conns.out")")
    echo "  $summary"
    grep '^failed' "$TOPO_STATE/conns.out" | head -5 | sed 's/^/  /' || true
    check "$name: no long-lived connection broke: $summary" grep -q "^conns=$CONNS failed=0 " "$TOPO_STATE/conns.out"
    fails=$(grep -vc '^backend=' "$TOPO_STATE/http.out" || true)
    grep -v '^backend=' "$TOPO_STATE/http.out" | head -5 | sed 's/^/  /' || true
    check "$name: no request failed ($(grep -c '^backend=' "$TOPO_STATE/http.out" || true) answered, $fails failed)" [ "$fails" -eq 0 ]
    for i in 1 2 3; do topo_gw_stop "$i"; done
    topo_down
}

phase "without sync" 0
NOSYNC=${BROKEN:-}
check "without sync, connections broke (${NOSYNC:-?} of $CONNS; the test proves nothing if none do)" \
    [ "${NOSYNC:-0}" -gt 0 ]
phase "with sync" 1
check "with sync, no connection broke (${BROKEN:-?} of $CONNS; without sync: ${NOSYNC:-?})" \
    [ "${BROKEN:-x}" = 0 ]
rolling "rolling restart"
e2e_finish

#!/usr/bin/env bash
# dnlb demo: builds dnlb, brings up a small topology in network namespaces,
# sends real traffic through the DPDK forwarder and shows what happened.
#
#   scripts/demo.sh          # up, traffic, report, tear down
#   scripts/demo.sh --keep   # leave the topology running (tear down with `down`)
#   scripts/demo.sh down     # tear down a kept topology
#   DNLB_BIN=path/to/dnlb scripts/demo.sh   # use a built binary, install nothing
#
# Topology (today: dnlb forwards frames between its two ports, a "wire";
# the load-balancing pipeline and the multi-gateway ECMP topology replace it
# as they land):
#
#   [client ns] cl0 198.18.0.1 ──veth── gwa ┐            ┌ gwb ──veth── sv0 198.18.0.2 [server ns]
#                                            [gateway ns: dnlb on DPDK net_af_packet]
#
# The server answers HTTP with the client address it saw.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh

NS_C=dnlb-demo-client NS_G=dnlb-demo-gw NS_S=dnlb-demo-server
STATE=/run/dnlb-demo
CLIENT=198.18.0.1 SERVER=198.18.0.2 PORT=8080

down() {
    for f in "$STATE"/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$f"
    done
    for ns in $NS_C $NS_G $NS_S; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

if [ "${1:-}" = down ]; then down; echo "demo topology removed"; exit 0; fi
keep=0
[ "${1:-}" = --keep ] && keep=1
[ "$(id -u)" -eq 0 ] || { echo "run as root (namespaces and DPDK need it)" >&2; exit 1; }

if [ -n "${DNLB_BIN:-}" ]; then
    # Used by the test suite: an already-built binary, dependencies present.
    DNLB=$DNLB_BIN
else
    dnlb_ensure_all
    dnlb_log "building dnlb (release)"
    cargo build --release --quiet -p dnlb-forwarder
    DNLB=$PWD/target/release/dnlb
fi

down
mkdir -p "$STATE"
[ "$keep" = 1 ] || trap down EXIT

dnlb_log "creating namespaces $NS_C, $NS_G, $NS_S"
for ns in $NS_C $NS_G $NS_S; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add cl0 netns $NS_C type veth peer name gwa netns $NS_G
ip link add sv0 netns $NS_S type veth peer name gwb netns $NS_G
ip -n $NS_C addr add $CLIENT/24 dev cl0
ip -n $NS_S addr add $SERVER/24 dev sv0
for pair in "$NS_C cl0" "$NS_G gwa" "$NS_G gwb" "$NS_S sv0"; do
    set -- $pair
    ip -n "$1" link set "$2" up
    # Frames cross a user-space forwarder: no checksum or segmentation offload.
    ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
done

dnlb_log "starting an HTTP server in $NS_S that reports the client address it sees"
ip netns exec $NS_S python3 -u -c '
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from the server; you are %s:%d\n" % self.client_address).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *a):
        sys.stderr.write("server saw %s: %s\n" % (self.client_address[0], fmt % a))
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("'$SERVER'", '$PORT'), H).serve_forever()
' 2> "$STATE/server.log" &
echo $! > "$STATE/server.pid"

cat > "$STATE/dnlb.toml" <<TOML
# The demo gateway: two DPDK ports on veth (net_af_packet), frames from one
# leave by the other. Workers back off when idle so the demo does not
# consume a whole core.
[gateway]
name = "demo-gw"
zone = "demo-a"

[dataplane]
eal_args = ["--no-huge", "--no-pci", "-m", "256", "--no-telemetry", "--file-prefix=dnlb-demo", "--lcores=0@0,1@1"]
worker_lcores = [1]
pool_mbufs = 4095
idle_polls_before_sleep = 64
idle_sleep_us = 100

[[dataplane.ports]]
name = "net_af_packet0"
devargs = "iface=gwa,qpairs=1"
forward_to = "net_af_packet1"

[[dataplane.ports]]
name = "net_af_packet1"
devargs = "iface=gwb,qpairs=1"
forward_to = "net_af_packet0"
TOML

dnlb_log "starting dnlb in $NS_G"
"$DNLB" check "$STATE/dnlb.toml" | sed 's/^/    /'
ip netns exec $NS_G "$DNLB" run --config "$STATE/dnlb.toml" --stats-interval-ms 1000 \
    > "$STATE/dnlb.out" 2> "$STATE/dnlb.err" &
echo $! > "$STATE/dnlb.pid"
for _ in $(seq 100); do grep -q '^dnlb: ready' "$STATE/dnlb.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^dnlb: ready' "$STATE/dnlb.out" || { cat "$STATE/dnlb.err" >&2; echo "dnlb did not start" >&2; exit 1; }
sed 's/^/    /' "$STATE/dnlb.out"

dnlb_log "client ($NS_C) → ping and HTTP to the server through dnlb"
ip netns exec $NS_C ping -c 3 -i 0.2 -W 2 $SERVER | sed 's/^/    /'
ok=0
for i in 1 2 3 4 5; do
    if reply=$(ip netns exec $NS_C curl -sS --max-time 5 "http://$SERVER:$PORT/request-$i"); then
        echo "    request $i: $reply"; ok=$((ok + 1))
    else
        echo "    request $i failed"
    fi
done
sleep 1.2

dnlb_log "what the server saw"
sed 's/^/    /' "$STATE/server.log"

dnlb_log "what dnlb counted (last stats line)"
grep '^stats:' "$STATE/dnlb.out" | tail -1 | tr ' ' '\n' | grep -E 'rx_packets|tx_packets|dropped' | sed 's/^/    /'

if [ "$keep" = 1 ]; then
    echo
    echo "topology kept: try 'ip netns exec $NS_C curl http://$SERVER:$PORT/'; remove it with: scripts/demo.sh down"
else
    dnlb_log "stopping dnlb (SIGTERM) and tearing down"
    kill -TERM "$(cat "$STATE/dnlb.pid")"
    for _ in $(seq 100); do kill -0 "$(cat "$STATE/dnlb.pid")" 2>/dev/null || break; sleep 0.1; done
    grep -E '^(port|total):' "$STATE/dnlb.out" | sed 's/^/    /'
fi
echo
echo "demo: $ok of 5 HTTP requests answered through dnlb"
[ "$ok" = 5 ]

# shellcheck shell=bash
# Multi-gateway test topology in network namespaces (sourced, bash).
#
#                        ┌─ gw1 ns (zone a): eth0 198.18.11.2 ── dnlb + BIRD ─┐
#   client ns ── router ns ─ gw2 ns (zone b): eth0 198.18.12.2 ── dnlb + BIRD  │ VXLAN
#   198.18.0.1   (BIRD,   ─ b1 ns (zone a): eth0 198.18.101.2, vx0, VIP on lo ◄┘ (DSR replies
#                 ECMP)   ─ b2, b3 …                                              go router → client)
#
# Everything is named from the prefix TOPO (default dnlbt): namespaces
# "$TOPO-router", "$TOPO-client", "$TOPO-gw1"…, "$TOPO-b1"…, state under
# /run/$TOPO (PID files, logs, BIRD sockets, generated configs). Two
# topologies with different prefixes coexist (their addresses and MACs are the
# same, but each lives in its own namespaces). Interface names inside the
# namespaces are short and fixed: router side "cl", "gw1"…, "b1"…; node side
# "eth0"; backends' VXLAN device "vx0"; the exception-path tap "tap0".
#
# Parameters (environment, read when this file is sourced; set before sourcing):
#   TOPO            prefix                                   (dnlbt)
#   TOPO_GATEWAYS   number of gateways, 1–50                 (2)
#   TOPO_GW_ZONES   zones given to gw1, gw2, … (cycled)      ("a b")
#   TOPO_BACKENDS   "name:zone …", names unique, [a-z0-9_]{1,15}, not
#                   router/client/cl/gwN                     ("b1:a b2:a b3:b")
#   TOPO_VIPS       IPv4 VIPs the listeners serve            ("203.0.113.10 203.0.113.11")
#   TOPO_VIPS6      IPv6 VIPs the listeners serve            ("2001:db8:10::10")
#   TOPO_TCP_PORTS  TCP (HTTP) listener ports                ("80")
#   TOPO_UDP_PORTS  UDP listener ports                       ("80")
#   TOPO_VNI        VXLAN VNI of every backend               (100)
#   TOPO_EIPS       elastic IPs the backends also serve; dnlb attaches them
#                   at run time through its admin API         ("203.0.113.77")
#   TOPO_ECHO_PORT  TCP line-echo listener port (long-lived connections) (7000)
#   TOPO_HEALTH_PORT backends' HTTP health port, probed by dnlb (8080)
#   TOPO_HEALTH     dnlb's health check: "INTERVAL_MS TIMEOUT_MS HEALTHY UNHEALTHY"
#                   (thresholds in probes)                   ("300 250 2 3")
#   TOPO_BGP_TIMERS every BGP session's "HOLD KEEPALIVE" seconds ("3 1": a
#                   killed gateway leaves the router within 3 s)
#   TOPO_SYNC       1: flow-exception sync between the gateways ([sync] on
#                   TOPO_SYNC_PORT, 4790; one key file for all)
#   TOPO_CONFIG_BACKENDS how many of the backends (the first N) the gateways'
#                   config lists (default all; the others can be registered)
#   TOPO_DNLB_ROUTES 1: dnlb announces its VIPs through BIRD ([routing]);
#                   0: the caller does (topo_gw_announce)      (1)
#   DNLB_BIN        the dnlb binary                          (target/release/dnlb)
#
# Addressing (all in 198.18.0.0/15; I = gateway number, J = backend index 1…):
#   client link   client 198.18.0.1/24 (02:dd:00:00:00:02) — router "cl" 198.18.0.254 (02:dd:00:00:00:01)
#   gateway I     gw eth0 198.18.(10+I).2/24 (02:dd:01:II:00:02) — router "gwI" 198.18.(10+I).1 (02:dd:01:II:00:01)
#   backend J     eth0 198.18.(100+J).2/24 (02:dd:02:JJ:00:02) — router "bJ" 198.18.(100+J).1 (02:dd:02:JJ:00:01)
#                 vx0 (VXLAN, VNI $TOPO_VNI, port 4789) MAC 02:dd:03:JJ:00:02
#   (II, JJ: the number in two hex digits.)
# IPv6 (clients reach IPv6 VIPs; the VXLAN underlay stays IPv4): client
# fd18::1/64 — router fd18::fe; gateway I fd18:(10+I)::2/64 — router ::1;
# backend J fd18:(100+J)::2/64 — router ::1 (decimal digits used as hex).
# Each gateway has a second BGP session over IPv6 for its IPv6 VIPs.
# MTU: client link 1500; router↔gateway and router↔backend links 1600 so a
# full 1500-byte client packet still fits once VXLAN-encapsulated (+50);
# backends' vx0 1500 and their default route "mtu 1500" so DSR replies fit the
# client link (an ICMP "fragmentation needed" to a VIP source would go to the
# gateways, not to the backend). dnlb's [encap] mtu = 1600.
# BGP: router AS 65000, every gateway AS 65100 (eBGP), hold 3 s, keepalive 1 s
# (TOPO_BGP_TIMERS).
#
# Gateway dnlb modes (topo_gw_start I MODE):
#   af_packet   port net_af_packet0,iface=eth0; the kernel keeps the address on
#               eth0 and sees every frame (ARP/BGP stay in the kernel).
#   af_xdp      port net_af_xdp0,iface=eth0,xdp_prog=vip_redirect.o compiled
#               with the VIPs: only VIP traffic goes to DPDK, the rest to the kernel.
#   af_xdp_tap  exception path: net_af_xdp0 with DPDK's default program (takes
#               every frame) + host_port net_tap0 (kernel interface "tap0",
#               same MAC as eth0) holding the gateway's address; ARP and BGP go
#               eth0 → dnlb → tap0 → kernel and back.
#
# Every function returns non-zero on failure and prints the reason to stderr.

TOPO=${TOPO:-dnlbt}
TOPO_GATEWAYS=${TOPO_GATEWAYS:-2}
TOPO_GW_ZONES=${TOPO_GW_ZONES:-"a b"}
TOPO_BACKENDS=${TOPO_BACKENDS:-"b1:a b2:a b3:b"}
TOPO_VIPS=${TOPO_VIPS:-"203.0.113.10 203.0.113.11"}
TOPO_VIPS6=${TOPO_VIPS6-"2001:db8:10::10"}
TOPO_TCP_PORTS=${TOPO_TCP_PORTS:-80}
TOPO_UDP_PORTS=${TOPO_UDP_PORTS:-80}
TOPO_VNI=${TOPO_VNI:-100}
TOPO_EIPS=${TOPO_EIPS:-203.0.113.77}
TOPO_ECHO_PORT=${TOPO_ECHO_PORT:-7000}
TOPO_HEALTH_PORT=${TOPO_HEALTH_PORT:-8080}
TOPO_HEALTH=${TOPO_HEALTH:-300 250 2 3}
TOPO_BGP_TIMERS=${TOPO_BGP_TIMERS:-3 1}
TOPO_DNLB_ROUTES=${TOPO_DNLB_ROUTES:-1}
TOPO_SYNC=${TOPO_SYNC:-0}
TOPO_SYNC_PORT=${TOPO_SYNC_PORT:-4790}
TOPO_CONFIG_BACKENDS=${TOPO_CONFIG_BACKENDS:-}
DNLB_BIN=${DNLB_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/dnlb}
TOPO_STATE=/run/$TOPO
TOPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOPO_FILES=$TOPO_ROOT/scripts/topology
TOPO_ROUTER_AS=65000
TOPO_GW_AS=65100
TOPO_FABRIC_MTU=1600
TOPO_PY=$(command -v /usr/bin/python3 || command -v python3)

# shellcheck source=scripts/lib/xdp.sh
. "$TOPO_ROOT/scripts/lib/xdp.sh"

topo_log() { printf '\033[1m==> [%s] %s\033[0m\n' "$TOPO" "$*" >&2; }
topo_die() { echo "topology[$TOPO]: $*" >&2; return 1; }

# ---- names and addresses (pure: print one value) -------------------------

topo_ns()              { echo "$TOPO-$1"; }                     # NODE → namespace (router|client|gwI|bJ)
topo_exec()            { local n=$1; shift; ip netns exec "$TOPO-$n" "$@"; }   # NODE CMD… → run CMD there
topo_hex()             { printf '%02x' "$1"; }
topo_client_addr()     { echo 198.18.0.1; }
topo_client_addr6()    { echo fd18::1; }
topo_gw_addr6()        { echo "fd18:$((10 + $1))::2"; }         # I → gateway IPv6 address (BGP for IPv6 VIPs)
topo_router_gw_addr6() { echo "fd18:$((10 + $1))::1"; }
topo_gw_vips6_file()   { echo "$TOPO_STATE/gw$1/bird-vips6.conf"; }
topo_router_client_addr() { echo 198.18.0.254; }
topo_gw_addr()         { echo "198.18.$((10 + $1)).2"; }        # I → gateway address (BGP, encap source)
topo_gw_mac()          { echo "02:dd:01:$(topo_hex "$1"):00:02"; }
topo_router_gw_addr()  { echo "198.18.$((10 + $1)).1"; }        # I → router address on gateway I's link
topo_router_gw_mac()   { echo "02:dd:01:$(topo_hex "$1"):00:01"; }   # I → dnlb's encap next_hop_mac
topo_gw_zone()         { local z; read -ra z <<< "$TOPO_GW_ZONES"; echo "${z[$(( ($1 - 1) % ${#z[@]} ))]}"; }
topo_gw_sock()         { echo "$TOPO_STATE/gw$1/bird.ctl"; }    # I → gateway BIRD control socket
topo_gw_vips_file()    { echo "$TOPO_STATE/gw$1/bird-vips4.conf"; }  # I → static-route include file
topo_router_sock()     { echo "$TOPO_STATE/router/bird.ctl"; }
topo_backend_count()   { local b; read -ra b <<< "$TOPO_BACKENDS"; echo "${#b[@]}"; }
topo_backend_name()    { local b e; read -ra b <<< "$TOPO_BACKENDS"; e=${b[$(($1 - 1))]}; echo "${e%%:*}"; }  # J → name
topo_backend_zone()    { local b e; read -ra b <<< "$TOPO_BACKENDS"; e=${b[$(($1 - 1))]}; echo "${e#*:}"; }   # J → zone
topo_backend_addr()    { echo "198.18.$((100 + $1)).2"; }       # J → tunnel endpoint (backend.address)
topo_backend_mac()     { echo "02:dd:02:$(topo_hex "$1"):00:02"; }
topo_router_backend_mac() { echo "02:dd:02:$(topo_hex "$1"):00:01"; }
topo_backend_vxmac()   { echo "02:dd:03:$(topo_hex "$1"):00:02"; }   # J → backend.inner_mac

# ---- small helpers ------------------------------------------------------------

# _topo_veth NS_A IF_A MAC_A NS_B IF_B MAC_B MTU: a veth pair, up, offloads off.
_topo_veth() {
    ip link add "$2" address "$3" mtu "$7" netns "$1" type veth \
        peer name "$5" address "$6" mtu "$7" netns "$4" || return 1
    local ns dev ns_dev
    for ns_dev in "$1:$2" "$4:$5"; do
        ns=${ns_dev%%:*} dev=${ns_dev#*:}
        ip -n "$ns" link set "$dev" up
        # User space (dnlb) reads and writes these frames: no partial
        # checksums, no GSO/GRO super-frames.
        ip netns exec "$ns" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    done
}

_topo_sysctl() { local ns=$1; shift; ip netns exec "$ns" sysctl -qw "$@" >/dev/null; }

_topo_ns_add() {
    ip netns add "$1" || return 1
    echo "$1" >> "$TOPO_STATE/namespaces"
    ip -n "$1" link set lo up
}

# _topo_spawn PIDFILE LOG NODE CMD…: start CMD in NODE's namespace in the
# background, stdout+stderr to LOG, PID (of CMD itself) to PIDFILE.
_topo_spawn() {
    local pidf=$1 log=$2 node=$3; shift 3
    ip netns exec "$TOPO-$node" "$@" > "$log" 2>&1 < /dev/null &
    echo $! > "$pidf"
    disown $! 2>/dev/null || true  # no "Killed" job notice when a test kills it
}

# _topo_kill PIDFILE: SIGTERM, wait up to 5 s, then SIGKILL; removes the file.
_topo_kill() {
    local f=$1 pid i
    [ -e "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

# _topo_subst IN OUT KEY=VALUE…: replace @KEY@ in IN.
_topo_subst() {
    local in=$1 out=$2 kv k v; shift 2
    local text
    text=$(cat "$in")
    for kv in "$@"; do
        k=${kv%%=*} v=${kv#*=}
        text=${text//@$k@/$v}
    done
    printf '%s\n' "$text" > "$out"
}

# ---- dependencies -----------------------------------------------------------

# topo_ensure_deps: install what the topology needs (Debian packages bird2,
# clang, libbpf-dev, ethtool, curl, python3 plus dnlb's usual list, only the
# missing ones) and stop/disable the system-wide BIRD service the bird2
# package may have started (each namespace runs its own BIRD).
topo_ensure_deps() {
    # shellcheck source=scripts/lib/deps.sh
    . "$TOPO_ROOT/scripts/lib/deps.sh"
    local fresh=0
    command -v bird >/dev/null 2>&1 || fresh=1
    dnlb_ensure_apt bird2 clang libbpf-dev ethtool curl python3 iproute2 || return 1
    if [ "$fresh" = 1 ]; then
        if [ -d /run/systemd/system ]; then
            systemctl disable --now bird.service >/dev/null 2>&1 || true
        elif [ -x /etc/init.d/bird ]; then
            /etc/init.d/bird stop >/dev/null 2>&1 || true
        fi
    fi
}

# ---- bring up / tear down ---------------------------------------------------

# topo_up: create the whole topology (namespaces, links, sysctls, backends'
# VXLAN devices and servers, router and gateway BIRD). Gateways announce
# nothing yet and no dnlb runs: see topo_gw_start and topo_gw_announce.
# Tears down a previous topology of the same TOPO first.
topo_up() {
    [ "$(id -u)" -eq 0 ] || { topo_die "must run as root"; return 1; }
    local i j n ns
    # Both ends of every BGP session get the same timers.
    local timers=(BGP_HOLD="${TOPO_BGP_TIMERS% *}" BGP_KEEPALIVE="${TOPO_BGP_TIMERS#* }")
    command -v bird >/dev/null || { topo_die "bird not installed (apt-get install -y bird2)"; return 1; }
    if [ "$TOPO_GATEWAYS" -lt 1 ] || [ "$TOPO_GATEWAYS" -gt 50 ]; then topo_die "TOPO_GATEWAYS must be 1–50"; return 1; fi
    n=$(topo_backend_count)
    if [ "$n" -lt 1 ] || [ "$n" -gt 99 ]; then topo_die "TOPO_BACKENDS: 1–99 backends"; return 1; fi
    for j in $(seq "$n"); do
        # A backend's name is also its namespace suffix and the router's interface name toward it.
        case $(topo_backend_name "$j") in
            router|client|cl|gw[0-9]*|*[!a-z0-9_]*|'') topo_die "bad backend name '$(topo_backend_name "$j")' (a-z0-9_, not router/client/cl/gwN)"; return 1 ;;
        esac
        [ "$(topo_backend_name "$j" | wc -c)" -le 16 ] || { topo_die "backend name longer than 15 characters"; return 1; }
    done
    topo_down
    mkdir -p "$TOPO_STATE/router" "$TOPO_STATE/client"
    : > "$TOPO_STATE/namespaces"

    # Router and client.
    local R=$TOPO-router C=$TOPO-client
    _topo_ns_add "$R" || return 1
    _topo_ns_add "$C" || return 1
    _topo_sysctl "$R" net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        net.ipv6.conf.all.forwarding=1 net.ipv6.fib_multipath_hash_policy=1
    _topo_veth "$C" eth0 02:dd:00:00:00:02 "$R" cl 02:dd:00:00:00:01 1500 || return 1
    ip -n "$C" addr add "$(topo_client_addr)/24" dev eth0
    ip -n "$R" addr add "$(topo_router_client_addr)/24" dev cl
    ip -n "$C" route add default via "$(topo_router_client_addr)"
    ip -n "$C" addr add "$(topo_client_addr6)/64" dev eth0 nodad
    ip -n "$R" addr add fd18::fe/64 dev cl nodad
    ip -n "$C" -6 route add default via fd18::fe

    # Backends.
    for j in $(seq "$n"); do
        local name zone B addr
        name=$(topo_backend_name "$j") zone=$(topo_backend_zone "$j")
        B=$TOPO-$name addr=$(topo_backend_addr "$j")
        mkdir -p "$TOPO_STATE/$name"
        _topo_ns_add "$B" || return 1
        _topo_veth "$B" eth0 "$(topo_backend_mac "$j")" "$R" "$name" "$(topo_router_backend_mac "$j")" "$TOPO_FABRIC_MTU" || return 1
        ip -n "$R" addr add "198.18.$((100 + j)).1/24" dev "$name"
        ip -n "$B" addr add "$addr/24" dev eth0
        # Direct server return: replies to clients leave with the VIP as
        # source; keep them within the client link's MTU.
        ip -n "$B" route add default via "198.18.$((100 + j)).1" mtu 1500
        ip -n "$R" addr add "fd18:$((100 + j))::1/64" dev "$name" nodad
        ip -n "$B" addr add "fd18:$((100 + j))::2/64" dev eth0 nodad
        ip -n "$B" -6 route add default via "fd18:$((100 + j))::1" mtu 1500
        ip -n "$B" link add vx0 address "$(topo_backend_vxmac "$j")" mtu 1500 type vxlan \
            id "$TOPO_VNI" dstport 4789 local "$addr" dev eth0 nolearning || return 1
        ip -n "$B" link set vx0 up
        ip netns exec "$B" ethtool -K vx0 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
        local v
        for v in $TOPO_VIPS $TOPO_EIPS; do ip -n "$B" addr add "$v/32" dev lo; done
        for v in $TOPO_VIPS6; do ip -n "$B" addr add "$v/128" dev lo nodad; done
        _topo_sysctl "$B" net.ipv4.ip_forward=0 \
            net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
            net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
            net.ipv4.conf.lo.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.vx0.rp_filter=0
        local args=(--name "$name" --zone "$zone" --echo "$TOPO_ECHO_PORT" --health "$TOPO_HEALTH_PORT")
        for v in $TOPO_VIPS $TOPO_EIPS $TOPO_VIPS6; do args+=(--vip "$v"); done
        for v in $TOPO_TCP_PORTS; do args+=(--tcp "$v"); done
        for v in $TOPO_UDP_PORTS; do args+=(--udp "$v"); done
        _topo_spawn "$TOPO_STATE/$name/server.pid" "$TOPO_STATE/$name/server.log" "$name" \
            "$TOPO_PY" -u "$TOPO_FILES/backend_server.py" "${args[@]}"
    done

    # Gateways.
    local peers=""
    for i in $(seq "$TOPO_GATEWAYS"); do
        local G=$TOPO-gw$i d=$TOPO_STATE/gw$i
        mkdir -p "$d"
        _topo_ns_add "$G" || return 1
        _topo_veth "$G" eth0 "$(topo_gw_mac "$i")" "$R" "gw$i" "$(topo_router_gw_mac "$i")" "$TOPO_FABRIC_MTU" || return 1
        ip -n "$R" addr add "$(topo_router_gw_addr "$i")/24" dev "gw$i"
        ip -n "$R" addr add "$(topo_router_gw_addr6 "$i")/64" dev "gw$i" nodad
        _topo_gw_addr_to eth0 "$i"
        # The kernel must not forward VIP traffic it also sees (af_packet).
        _topo_sysctl "$G" net.ipv4.ip_forward=0
        : > "$(topo_gw_vips_file "$i")"
        : > "$(topo_gw_vips6_file "$i")"
        _topo_subst "$TOPO_FILES/bird-gateway.conf.in" "$d/bird.conf" \
            STATE="$TOPO_STATE" GW="gw$i" GW_ADDR="$(topo_gw_addr "$i")" GW_AS=$TOPO_GW_AS \
            ROUTER_ADDR="$(topo_router_gw_addr "$i")" ROUTER_AS=$TOPO_ROUTER_AS SOCK="$(topo_gw_sock "$i")" \
            ROUTER_ADDR6="$(topo_router_gw_addr6 "$i")" "${timers[@]}"
        peers+="protocol bgp gw$i from gwpeer {
    description \"gateway gw$i zone $(topo_gw_zone "$i")\";
    neighbor $(topo_gw_addr "$i") as $TOPO_GW_AS;
}
protocol bgp gw${i}v6 from gwpeer6 {
    description \"gateway gw$i zone $(topo_gw_zone "$i") (IPv6)\";
    neighbor $(topo_gw_addr6 "$i") as $TOPO_GW_AS;
}
"
    done
    _topo_subst "$TOPO_FILES/bird-router.conf.in" "$TOPO_STATE/router/bird.conf" \
        STATE="$TOPO_STATE" ROUTER_ID="$(topo_router_client_addr)" ROUTER_AS=$TOPO_ROUTER_AS PEERS="$peers" \
        "${timers[@]}"

    # BIRD: the router, then each gateway (each daemonizes and writes its PID file).
    ip netns exec "$R" bird -c "$TOPO_STATE/router/bird.conf" -s "$(topo_router_sock)" \
        -P "$TOPO_STATE/router/bird.pid" || { topo_die "router BIRD did not start"; return 1; }
    for i in $(seq "$TOPO_GATEWAYS"); do topo_gw_bird_start "$i" || return 1; done

    # The backend servers are listening (bounded wait).
    local k name
    for j in $(seq "$n"); do
        name=$(topo_backend_name "$j")
        for k in $(seq 50); do grep -q 'listening on' "$TOPO_STATE/$name/server.log" 2>/dev/null && break; sleep 0.1; done
        grep -q 'listening on' "$TOPO_STATE/$name/server.log" \
            || { cat "$TOPO_STATE/$name/server.log" >&2; topo_die "backend $name did not start"; return 1; }
    done
}

# _topo_gw_addr_to DEV I: put gateway I's address and default route on DEV
# (removing them from eth0 first if DEV is not eth0).
_topo_gw_addr_to() {
    local dev=$1 i=$2 G=$TOPO-gw$2
    if [ "$dev" != eth0 ]; then
        ip -n "$G" addr flush dev eth0
        ip -n "$G" -6 addr flush dev eth0 scope global
    else
        for other in tap0; do
            ip -n "$G" -6 addr flush dev "$other" scope global 2>/dev/null || true
        done
    fi
    ip -n "$G" addr replace "$(topo_gw_addr "$i")/24" dev "$dev"
    ip -n "$G" addr replace "$(topo_gw_addr6 "$i")/64" dev "$dev" nodad
    ip -n "$G" link set "$dev" up
    # For dnlb's health checks (control plane, kernel sockets) toward backends.
    ip -n "$G" route replace default via "$(topo_router_gw_addr "$i")" dev "$dev"
}

# topo_down: stop every process started for TOPO (dnlb, BIRD, servers; by
# PID file), delete its namespaces and its state dir. Safe to call twice.
topo_down() {
    local f ns
    if [ -d "$TOPO_STATE" ]; then
        # dnlb first (it holds the ports), then BIRD and the servers.
        for f in "$TOPO_STATE"/gw*/dnlb.pid; do [ -e "$f" ] && _topo_kill "$f"; done
        while IFS= read -r f; do _topo_kill "$f"; done < <(find "$TOPO_STATE" -name '*.pid' 2>/dev/null)
        if [ -f "$TOPO_STATE/namespaces" ]; then
            while IFS= read -r ns; do
                if [ -n "$ns" ]; then ip netns del "$ns" 2>/dev/null || true; fi
            done < "$TOPO_STATE/namespaces"
        fi
    fi
    # Namespaces of this prefix that a crashed run did not record.
    local nodes="router client" i
    for i in $(seq "$TOPO_GATEWAYS"); do nodes+=" gw$i"; done
    for i in $(seq "$(topo_backend_count)"); do nodes+=" $(topo_backend_name "$i")"; done
    for ns in $nodes; do ip netns del "$TOPO-$ns" 2>/dev/null || true; done
    # DPDK's runtime dirs of our gateways (--file-prefix=$TOPO-gwI).
    for i in $(seq "$TOPO_GATEWAYS"); do rm -rf "/var/run/dpdk/$TOPO-gw$i"; done
    rm -rf "$TOPO_STATE"
}

# ---- BGP / routes -------------------------------------------------------------

# topo_gw_announce I "VIP…": write gateway I's static-route include file with
# one "route VIP/32 blackhole;" per VIP (empty list = announce nothing) and
# apply it with `birdc configure` (no BGP session restart).
topo_gw_announce() {
    local i=$1 vips=${2:-} v f tmp
    f=$(topo_gw_vips_file "$i") tmp=$f.tmp
    : > "$tmp"
    for v in $vips; do echo "route $v/32 blackhole;" >> "$tmp"; done
    mv "$tmp" "$f"
    topo_exec "gw$i" birdc -s "$(topo_gw_sock "$i")" configure > "$TOPO_STATE/gw$i/birdc.out" 2>&1 \
        || { cat "$TOPO_STATE/gw$i/birdc.out" >&2; topo_die "gw$i: birdc configure failed"; return 1; }
    grep -q 'Reconfigured\|Reconfiguration in progress' "$TOPO_STATE/gw$i/birdc.out" \
        || { cat "$TOPO_STATE/gw$i/birdc.out" >&2; topo_die "gw$i: BIRD refused the configuration"; return 1; }
}

# topo_bgp_state I [v6]: the router's BGP state toward gateway I (its IPv6
# session with "v6") (Established,
# Active, Connect, …) and, after a tab, the time it entered that state.
topo_bgp_state() {
    local p=gw$1${2:-}
    topo_exec router birdc -s "$(topo_router_sock)" show protocols "$p" 2>/dev/null \
        | awk -v p="$p" '$1 == p { print $6 "\t" $4 " " $5 }'
}

# topo_wait_bgp [TIMEOUT_S]: wait until every gateway's session is Established.
topo_wait_bgp() {
    local t=${1:-30} i k ok
    for k in $(seq $((t * 5))); do
        ok=1
        for i in $(seq "$TOPO_GATEWAYS"); do
            [ "$(topo_bgp_state "$i" | cut -f1)" = Established ] || { ok=0; break; }
            [ -z "$TOPO_VIPS6" ] || [ "$(topo_bgp_state "$i" v6 | cut -f1)" = Established ] || { ok=0; break; }
        done
        [ "$ok" = 1 ] && return 0
        sleep 0.2
    done
    topo_die "BGP sessions not all Established after ${t}s"
    return 1
}

# topo_router_nexthops VIP: the router's kernel next hops for VIP/32, one
# gateway address per line, sorted (nothing if there is no route).
topo_router_nexthops() {
    case $1 in
        *:*) ip -n "$TOPO-router" -6 route show "$1/128" 2>/dev/null \
                 | grep -o 'via [0-9a-f:]*' | awk '{ print $2 }' | sort ;;
        *) ip -n "$TOPO-router" route show "$1/32" 2>/dev/null \
                 | grep -o 'via [0-9.]*' | awk '{ print $2 }' | sort ;;
    esac
}

# topo_wait_nexthops VIP N [TIMEOUT_S]: wait until VIP's route has N next hops.
topo_wait_nexthops() {
    local vip=$1 n=$2 t=${3:-15} k
    for k in $(seq $((t * 5))); do
        [ "$(topo_router_nexthops "$vip" | wc -l)" -eq "$n" ] && return 0
        sleep 0.2
    done
    topo_die "route to $vip has $(topo_router_nexthops "$vip" | wc -l) next hops, wanted $n (after ${t}s)"
    return 1
}

# ---- dnlb on the gateways -------------------------------------------------------

# topo_gw_config I MODE: write gateway I's dnlb config for MODE (af_packet,
# af_xdp, af_xdp_tap) to $TOPO_STATE/gwI/dnlb.toml and print its path. The
# listeners and target groups are identical on every gateway.
topo_gw_config() {
    local i=$1 mode=$2 d=$TOPO_STATE/gw$1 f v p j
    f=$d/dnlb.toml
    local vips_toml="" sep=""
    for v in $TOPO_VIPS $TOPO_VIPS6; do vips_toml+="$sep\"$v\""; sep=", "; done
    {
        cat <<EOF
# dnlb config of gateway gw$i (mode $mode), generated by scripts/lib/topology.sh.
[gateway]
name = "gw$i"
zone = "$(topo_gw_zone "$i")"

[dataplane]
eal_args = ["--no-huge", "--no-pci", "-m", "256", "--no-telemetry", "--file-prefix=$TOPO-gw$i", "--lcores=0@0,1@1"]
worker_lcores = [1]
# Rings deep enough to ride out a few milliseconds without CPU: every
# gateway's worker shares one core with the others, the backends and the
# clients, and under a flood a worker descheduled for 5 ms has ~500 frames
# waiting.
pool_mbufs = 16383
rx_descriptors = 4096
tx_descriptors = 512
# Two cores shared by every gateway: back off when idle, never busy-poll.
idle_polls_before_sleep = 64
idle_sleep_us = 100
EOF
        case $mode in
            af_packet) cat <<EOF

[[dataplane.ports]]
name = "net_af_packet0"
devargs = "iface=eth0,qpairs=1,framecnt=4096"
EOF
            ;;
            af_xdp) cat <<EOF

# Only VIP traffic reaches DPDK (vip_redirect.o); the kernel keeps the rest.
[[dataplane.ports]]
name = "net_af_xdp0"
devargs = "iface=eth0,start_queue=0,queue_count=1,busy_budget=0,xdp_prog=$d/vip_redirect.o"
EOF
            ;;
            af_xdp_tap) cat <<EOF
host_port = "net_tap0"

# DPDK's default XDP program takes every frame, like a NIC bound to DPDK;
# what is not for a VIP goes to the kernel through the tap, and back.
[[dataplane.ports]]
name = "net_af_xdp0"
devargs = "iface=eth0,start_queue=0,queue_count=1,busy_budget=0"

[[dataplane.ports]]
name = "net_tap0"
devargs = "iface=tap0,mac=$(topo_gw_mac "$i")"
EOF
            ;;
            *) topo_die "unknown gateway mode $mode"; return 1 ;;
        esac
        cat <<EOF

# The admin API, on the gateway namespace's loopback (topo_gw_api).
[admin]
listen = "127.0.0.1:9100"

[encap]
source_v4 = "$(topo_gw_addr "$i")"
next_hop_mac = "$(topo_router_gw_mac "$i")"
mtu = $TOPO_FABRIC_MTU

[flows]
capacity_per_worker = 16384

# The exception path (af_xdp_tap): only the router's BGP packets take the
# routing class, whatever is flooded at the gateway's address.
[protection.host]
routing_peers = ["$(topo_router_gw_addr "$i")", "$(topo_router_gw_addr6 "$i")"]
EOF
        if [ "$TOPO_DNLB_ROUTES" = 1 ]; then cat <<EOF

# dnlb tells this gateway's BIRD which VIPs to announce.
[routing]
bird_socket = "$(topo_gw_sock "$i")"
vips4_file = "$(topo_gw_vips_file "$i")"
vips6_file = "$(topo_gw_vips6_file "$i")"
withdraw_delay_ms = 500
EOF
        fi
        if [ "$TOPO_SYNC" = 1 ]; then
            local peers="" g
            for g in $(seq "$TOPO_GATEWAYS"); do
                [ "$g" = "$i" ] || peers+="${peers:+, }\"$(topo_gw_addr "$g"):$TOPO_SYNC_PORT\""
            done
            [ -s "$TOPO_STATE/sync.key" ] || head -c 32 /dev/urandom > "$TOPO_STATE/sync.key"
            printf '\n# Flow-exception sync with the other gateways.\n[sync]\nlisten = "%s:%s"\npeers = [%s]\nkey_file = "%s"\nfetch_timeout_ms = 1000\n' \
                "$(topo_gw_addr "$i")" "$TOPO_SYNC_PORT" "$peers" "$TOPO_STATE/sync.key"
        fi
        for p in $TOPO_TCP_PORTS; do
            printf '\n[[listener]]\nname = "tcp-%s"\nvips = [%s]\nprotocol = "tcp"\nport = %s\ntarget_group = "web"\n' "$p" "$vips_toml" "$p"
        done
        for p in $TOPO_UDP_PORTS; do
            printf '\n[[listener]]\nname = "udp-%s"\nvips = [%s]\nprotocol = "udp"\nport = %s\ntarget_group = "web"\n' "$p" "$vips_toml" "$p"
        done
        printf '\n[[listener]]\nname = "echo"\nvips = [%s]\nprotocol = "tcp"\nport = %s\ntarget_group = "web"\n' "$vips_toml" "$TOPO_ECHO_PORT"
        printf '\n[[target_group]]\nname = "web"\n'
        local hc
        read -ra hc <<< "$TOPO_HEALTH"
        printf '\n[target_group.health_check]\ntype = "http"\nport = %s\npath = "/health"\ninterval_ms = %s\ntimeout_ms = %s\nhealthy_threshold = %s\nunhealthy_threshold = %s\n' \
            "$TOPO_HEALTH_PORT" "${hc[@]}"
        # af_xdp_tap: the probes leave through tap0, which gets the gateway's
        # address only once dnlb is ready (topo_gw_start); until then they
        # fail, and a backend presumed healthy goes down at its first failure
        # (docs/configuration.md, startup_grace_ms).
        if [ "$mode" = af_xdp_tap ]; then printf 'startup_grace_ms = 1500\n'; fi
        for j in $(seq "${TOPO_CONFIG_BACKENDS:-$(topo_backend_count)}"); do
            printf '\n[[target_group.backend]]\naddress = "%s"\nzone = "%s"\ntunnel = "vxlan"\nvni = %s\ninner_mac = "%s"\n' \
                "$(topo_backend_addr "$j")" "$(topo_backend_zone "$j")" "$TOPO_VNI" "$(topo_backend_vxmac "$j")"
        done
    } > "$f"
    if [ "$mode" = af_xdp ]; then
        xdp_build "$d/vip_redirect.o" "$TOPO_VIPS $TOPO_EIPS $TOPO_VIPS6" || { topo_die "building the XDP program failed"; return 1; }
    fi
    echo "$f"
}

# topo_gw_start I MODE [TIMEOUT_S]: write the config, `dnlb check` it, run
# dnlb in gateway I's namespace (stdout $TOPO_STATE/gwI/dnlb.out with a stats
# line per second, stderr dnlb.err, PID dnlb.pid) and wait for "dnlb: ready".
# af_xdp_tap: moves the gateway's address from eth0 to tap0 once dnlb is up.
# Does not announce VIPs (topo_gw_announce).
topo_gw_start() {
    local i=$1 mode=$2 t=${3:-30} d=$TOPO_STATE/gw$1 f k
    [ -x "$DNLB_BIN" ] || { topo_die "dnlb binary $DNLB_BIN missing"; return 1; }
    f=$(topo_gw_config "$i" "$mode") || return 1
    "$DNLB_BIN" check "$f" > "$d/dnlb.check" 2>&1 || { cat "$d/dnlb.check" >&2; topo_die "gw$i: dnlb check failed"; return 1; }
    case $mode in
        af_packet|af_xdp) _topo_gw_addr_to eth0 "$i" ;;
        af_xdp_tap) ip -n "$TOPO-gw$i" addr flush dev eth0 ;;
    esac
    ip -n "$TOPO-gw$i" link set eth0 xdp off 2>/dev/null || true
    echo "$mode" > "$d/mode"
    ip netns exec "$TOPO-gw$i" "$DNLB_BIN" run --config "$f" --stats-interval-ms 1000 \
        > "$d/dnlb.out" 2> "$d/dnlb.err" < /dev/null &
    echo $! > "$d/dnlb.pid"
    disown $! 2>/dev/null || true
    for k in $(seq $((t * 10))); do
        grep -q '^dnlb: ready' "$d/dnlb.out" 2>/dev/null && break
        kill -0 "$(cat "$d/dnlb.pid")" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^dnlb: ready' "$d/dnlb.out" 2>/dev/null; then
        tail -20 "$d/dnlb.err" >&2
        topo_die "gw$i: dnlb ($mode) did not become ready"
        return 1
    fi
    if [ "$mode" = af_xdp_tap ]; then
        for k in $(seq 50); do ip -n "$TOPO-gw$i" link show tap0 >/dev/null 2>&1 && break; sleep 0.1; done
        ip netns exec "$TOPO-gw$i" ethtool -K tap0 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
        _topo_gw_addr_to tap0 "$i"
    fi
}

# topo_gw_stop I: SIGTERM dnlb (SIGKILL after 5 s), detach any XDP program
# left on eth0 and give the gateway's address back to eth0.
topo_gw_stop() {
    local i=$1 d=$TOPO_STATE/gw$1
    _topo_kill "$d/dnlb.pid"
    ip -n "$TOPO-gw$i" link set eth0 xdp off 2>/dev/null || true
    if [ "$(cat "$d/mode" 2>/dev/null)" = af_xdp_tap ]; then
        _topo_gw_addr_to eth0 "$i"
    fi
    rm -f "$d/mode"
}

# topo_gw_bird_start I: start gateway I's BIRD (at topo_up, or again after
# topo_gw_kill); it daemonizes and writes its PID file.
topo_gw_bird_start() {
    ip netns exec "$TOPO-gw$1" bird -c "$TOPO_STATE/gw$1/bird.conf" -s "$(topo_gw_sock "$1")" \
        -P "$TOPO_STATE/gw$1/bird.pid" || { topo_die "gw$1 BIRD did not start"; return 1; }
}

# topo_gw_kill I: the gateway dies: SIGKILL its dnlb and its BIRD (no
# withdrawal; the router notices when the BGP hold time runs out).
topo_gw_kill() {
    local d=$TOPO_STATE/gw$1 f pid
    for f in "$d/dnlb.pid" "$d/bird.pid"; do
        pid=$(cat "$f" 2>/dev/null) || continue
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$f"
    done
}

# topo_backend_kill J: SIGKILL backend J's server (HTTP, UDP, echo, health).
topo_backend_kill() {
    local f pid
    f=$TOPO_STATE/$(topo_backend_name "$1")/server.pid
    pid=$(cat "$f" 2>/dev/null) || return 0
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
}

# topo_gw_api I METHOD PATH [JSON]: call gateway I's admin API (writes with
# the gateway's token); prints the body, fails on an HTTP error.
topo_gw_api() {
    local i=$1 m=$2 path=$3 body=${4:-}
    local args=(-sS --fail-with-body --max-time 10 -X "$m")
    if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' -d "$body"); fi
    # Writes need the token dnlb created beside its config at first start.
    if [ "$m" != GET ]; then
        args+=(-H "Authorization: Bearer $(cat "$TOPO_STATE/gw$i/dnlb.admin-token")")
    fi
    topo_exec "gw$i" curl "${args[@]}" "http://127.0.0.1:9100$path"
}

# topo_gw_stat I KEY: KEY's value in gateway I's last stats line (e.g.
# rx_packets); empty if none yet.
topo_gw_stat() {
    grep '^stats:' "$TOPO_STATE/gw$1/dnlb.out" 2>/dev/null | tail -1 \
        | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}

# ---- traffic from the client -------------------------------------------------------

# topo_http N VIP [PORT]: N HTTP GETs from the client to VIP:PORT (each a new
# connection, so a new flow), one line per request: the body, or "FAIL …".
topo_http() {
    local n=$1 vip=$2 port=${3:-80} k out
    for k in $(seq "$n"); do
        local host=$vip
        case $vip in *:*) host="[$vip]" ;; esac
        if out=$(topo_exec client curl -gsS --max-time 3 "http://$host:$port/req-$k" 2>&1); then
            echo "$out"
        else
            echo "FAIL $out"
        fi
    done
}

# topo_udp N VIP [PORT]: N UDP requests from the client (fresh source port
# each), one line per request: the reply, "timeout" or "error …".
topo_udp() {
    topo_exec client "$TOPO_PY" "$TOPO_FILES/udp_client.py" "$2" "${3:-80}" --count "$1" --timeout 2
}

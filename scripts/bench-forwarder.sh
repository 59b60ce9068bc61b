#!/usr/bin/env bash
# Whole-forwarder throughput through DPDK, next to dpdk-testpmd on the same
# input, vdev, core and EAL memory settings, runs alternated.
#
# A pcap of N flows to one VIP is replayed from memory (net_pcap,
# infinite_rx=1) into one worker lcore; TX on the same port (net_pcap without
# a TX file frees what it sends). dnlb runs in load-balancing mode: a listener
# on the VIP's port, 8 backends behind the chosen tunnel, and every packet is
# looked up, encapsulated and sent back out (one-armed), as on a gateway.
# `--tunnel none` measures plain forwarding instead (`forward_to`, no
# listener: what testpmd io does). TCP replays ACKs of established flows.
#
# Each run lasts SECONDS (testpmd needs about 5 s to start with --no-huge);
# per-second rates are kept from the second non-zero one on (the first
# covers start-up), and the run's median is its result. Output: one row per
# run (dnlb and each testpmd mode, their order alternated), the medians, and
# dnlb's ratio to each testpmd mode; then each dnlb variant's own cycles per
# packet per run (its stats events' median: the worker's busy TSC cycles over
# its packets, which do not depend on the input's rate), the median and the
# ratio to the first variant.
#
#   scripts/bench-forwarder.sh [--flows 1000] [--frame-len 60] [--proto udp|tcp]
#       [--ip 4|6] [--tunnel vxlan|ipip|gue|gre|none] [--backend-ip 4|6]
#       [--testpmd "5tswap io macswap"] [--runs 5] [--seconds 12] [--hugepages]
#       [--csv FILE]   (appends one line of medians per run of the script)
#       [--dnlb "BIN…"]  dnlb binaries to compare (default target/release/dnlb):
#                      each run alternates all of them with testpmd; ratios of
#                      the first to testpmd, and of each other to the first
#       [--sync]       with flow-exception sync configured (a [sync] section
#                      whose one peer, on loopback, never answers): what a
#                      fleet that keeps connections across gateways runs
#       [--acl N]      the listener with an access list: the clients'
#                      ranges allowed, N other /24s denied (what a cloud
#                      security group makes of a listener)
#       [--tunnel "vxlan gue ipip gre"]  several tunnels: compared the same
#                      way, one dnlb run per tunnel in each run (not with
#                      several binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh
# shellcheck source=lib/bench.sh
. scripts/lib/bench.sh

flows=1000 frame_len=60 proto=udp ip=4 tunnel=vxlan backend_ip='' modes="5tswap io macswap"
runs=5 seconds=12 huge=0 sync=0 csv='' bins=target/release/dnlb acl=''
while [ $# -gt 0 ]; do
    case "$1" in
    --flows) flows=$2; shift 2 ;;
    --frame-len) frame_len=$2; shift 2 ;;
    --proto) proto=$2; shift 2 ;;
    --ip) ip=$2; shift 2 ;;
    --tunnel) tunnel=$2; shift 2 ;;
    --backend-ip) backend_ip=$2; shift 2 ;;
    --testpmd) modes=$2; shift 2 ;;
    --mode) modes=$2; shift 2 ;; # the old name
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --hugepages) huge=1; shift ;;
    --sync) sync=1; shift ;;
    --acl) acl=$2; shift 2 ;;
    --csv) csv=$2; shift 2 ;;
    --dnlb) bins=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
backend_ip=${backend_ip:-$ip}
read -r -a modes <<< "$modes"
read -r -a bins <<< "$bins"
read -r -a tunnels <<< "$tunnel"
if [ "${#bins[@]}" -gt 1 ] && [ "${#tunnels[@]}" -gt 1 ]; then
    echo "compare several binaries or several tunnels, not both" >&2; exit 2
fi
# The dnlb variants each run measures: binary and tunnel, and their labels.
vbin=() vtun=() labels=()
if [ "${#tunnels[@]}" -gt 1 ]; then
    for t in "${tunnels[@]}"; do vbin+=("${bins[0]}"); vtun+=("$t"); labels+=("dnlb_$t"); done
elif [ "${#bins[@]}" -gt 1 ]; then
    for b in "${!bins[@]}"; do vbin+=("${bins[$b]}"); vtun+=("$tunnel"); labels+=("dnlb$((b + 1))"); done
else
    vbin=("${bins[0]}") vtun=("$tunnel") labels=(dnlb)
fi

dnlb_ensure_all
cargo build --release --quiet -p dnlb-forwarder -p dnlb-benches
out=$(mktemp -d /tmp/dnlb-bench.XXXXXX)
cleanup() {
    [ "$huge" = 1 ] && scripts/hugepages.sh release >/dev/null 2>&1 || true
    # testpmd leaves its EAL runtime directory (~13 MB on tmpfs) behind;
    # dnlb removes its own unless it was killed
    rm -rf "$out" "/var/run/dpdk/bench-tp-$$" "/var/run/dpdk/bench-dnlb-$$"
}
trap cleanup EXIT

pcap=$out/flows.pcap
gen=(--flows "$flows" --frame-len "$frame_len" --proto "$proto" --ip "$ip")
[ "$proto" = tcp ] && gen+=(--mid-flow)
target/release/dnlb-pcapgen "${gen[@]}" --out "$pcap" 2>/dev/null

# The pcap PMD preloads every frame of the file into mbufs of the port's pool:
# the pool holds them all plus the working set (rings, bursts in flight).
pool=8191
while [ "$pool" -lt $((flows + 16384)) ]; do pool=$((pool * 2 + 1)); done
# Memory: twice ~2.3 KB per mbuf (a pool this size fails with less), the flow table (32 B per flow at half load,
# allocated by dnlb from the heap, not from EAL memory) aside.
mem_mb=$(( (pool * 2304 / 1048576 * 2 + 512 + 255) / 256 * 256 ))
[ "$mem_mb" -lt 1024 ] && mem_mb=1024
if [ "$huge" = 1 ]; then
    scripts/hugepages.sh reserve $((mem_mb / 2)) >/dev/null
    mem=(-m "$mem_mb" --in-memory)
else
    mem=(--no-huge -m "$mem_mb")
fi
vdev="net_pcap0,rx_pcap=$pcap,infinite_rx=1"

run_dnlb() { # BIN TUNNEL LABEL
    local bin=$1 tunnel=$2 label=$3 cfg=$out/dnlb.toml
    local eal=("${mem[@]}" --no-pci --no-telemetry "--file-prefix=bench-dnlb-$$")
    {
        echo '[gateway]'
        echo 'name = "bench"'
        echo '[dataplane]'
        printf 'eal_args = ['; printf '"%s", ' "${eal[@]}"; echo ']'
        echo 'worker_lcores = [1]'
        echo "pool_mbufs = $pool"
        echo '[[dataplane.ports]]'
        echo "name = \"net_pcap0\""
        echo "devargs = \"rx_pcap=$pcap,infinite_rx=1\""
        if [ "$tunnel" = none ]; then
            echo 'forward_to = "net_pcap0"'
        else
            bench_listener_config "$proto" "$tunnel" "$ip" "$backend_ip" $(( flows * 2 > 65536 ? flows * 2 : 65536 )) "" "$acl"
        fi
        if [ "$sync" = 1 ]; then bench_sync_config "$out"; fi
    } > "$cfg"
    "$bin" run --config "$cfg" --stats-interval-ms 1000 --watch-config-ms 0 \
        > "$out/dnlb.log" 2> "$out/dnlb.err" &
    local pid=$!
    # run_dnlb runs in a command substitution (a subshell): the script's
    # own exit trap never sees this PID, so the subshell stops dnlb itself.
    trap "kill -INT $pid 2>/dev/null || true" EXIT
    sleep "$seconds"
    kill -INT "$pid"; wait "$pid" || true
    if [ "$tunnel" != none ] && ! grep -q 'tx_pps=[1-9]' "$out/dnlb.log"; then
        echo "dnlb sent nothing: see its log" >&2; cat "$out/dnlb.err" >&2; exit 1
    fi
    # dnlb's own cost per packet (TSC cycles of the worker's busy
    # iterations), which does not depend on the generator's rate
    { grep '^stats:' "$out/dnlb.log" || true; } | grep -o 'cycles_per_packet=[0-9]*' | cut -d= -f2 |
        steady | median >> "$out/c.$label"
    { grep '^stats:' "$out/dnlb.log" || true; } | grep -o 'rx_pps=[0-9]*' | cut -d= -f2 | steady | median
}

run_testpmd() { # MODE
    timeout -s INT "$seconds" dpdk-testpmd "${mem[@]}" --no-pci --no-telemetry "--file-prefix=bench-tp-$$" \
        -l 0,1 "--vdev=$vdev" -- --forward-mode="$1" --total-num-mbufs="$pool" --stats-period 1 -a \
        < /dev/null > "$out/testpmd.log" 2>&1 || true
    if ! grep -q 'Rx-pps: *[1-9]' "$out/testpmd.log"; then
        echo "testpmd $1 forwarded nothing in $seconds s:" >&2; tail -5 "$out/testpmd.log" >&2
    fi
    { grep -o 'Rx-pps: *[0-9]*' "$out/testpmd.log" || true; } | awk '{print $2}' | steady | median
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b>0)?a/b:0}'; }
what="flows=$flows frame_len=$frame_len proto=$proto ip=$ip tunnel=$tunnel backend_ip=$backend_ip hugepages=$huge sync=$sync${acl:+ acl=$acl}"
echo "# $(date -u +%FT%TZ) $what runs=$runs seconds=$seconds"
echo "# $(pkg-config --modversion libdpdk | sed 's/^/DPDK /'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
# Columns: each dnlb variant (dnlb; dnlb1, dnlb2… for binaries; dnlb_TUNNEL
# for tunnels), each testpmd mode, the first variant's ratio to each mode,
# each other variant's to the first.
if [ "${#bins[@]}" -gt 1 ]; then
    for b in "${!bins[@]}"; do echo "# dnlb$((b + 1)) = ${bins[$b]}"; done
fi
printf '%-6s' run; for l in "${labels[@]}"; do printf ' %12s' "$l"; done
for m in "${modes[@]}"; do printf ' %12s' "$m"; done
for m in "${modes[@]}"; do printf ' %10s' "÷$m"; done
for l in "${labels[@]:1}"; do printf ' %14s' "$l÷${labels[0]}"; done; echo
for l in "${labels[@]}"; do : > "$out/r.$l"; : > "$out/c.$l"; done; for m in "${modes[@]}"; do : > "$out/r.$m"; done
row() { # LABEL "DNLB_RATES…" RATE...
    local label=$1 d; read -r -a d <<< "$2"; shift 2
    printf '%-6s' "$label"; for t in "${d[@]}" "$@"; do printf ' %12.0f' "$t"; done
    for t in "$@"; do printf ' %10s' "$(ratio "${d[0]}" "$t")"; done
    for t in "${d[@]:1}"; do printf ' %14s' "$(ratio "$t" "${d[0]}")"; done; echo
}
for i in $(seq 1 "$runs"); do
    # alternate which goes first, so drift in machine load hits all alike
    ds=()
    if [ $((i % 2)) = 0 ]; then
        for v in "${!labels[@]}"; do ds[v]=$(run_dnlb "${vbin[$v]}" "${vtun[$v]}" "${labels[$v]}"); done
    fi
    rates=()
    for m in "${modes[@]}"; do t=$(run_testpmd "$m"); echo "$t" >> "$out/r.$m"; rates+=("$t"); done
    if [ $((i % 2)) = 1 ]; then
        for v in $(printf '%s\n' "${!labels[@]}" | tac); do ds[v]=$(run_dnlb "${vbin[$v]}" "${vtun[$v]}" "${labels[$v]}"); done
    fi
    for v in "${!labels[@]}"; do echo "${ds[$v]}" >> "$out/r.${labels[$v]}"; done
    row "$i" "${ds[*]}" "${rates[@]}"
done
meds=(); for m in "${modes[@]}"; do meds+=("$(median < "$out/r.$m")"); done
dms=(); for l in "${labels[@]}"; do dms+=("$(median < "$out/r.$l")"); done
dm=${dms[0]}
row median "${dms[*]}" "${meds[@]}"
if [ "$tunnel" != none ]; then
    # The same runs by dnlb's own cycles per packet (its stats events): each
    # variant's per-run medians, their median, and its ratio to the first.
    c0=$(median < "$out/c.${labels[0]}")
    for l in "${labels[@]}"; do
        c=$(median < "$out/c.$l")
        echo "# cycles/packet $l: $(paste -sd' ' "$out/c.$l") (median $c, ÷${labels[0]} $(ratio "$c" "$c0"))"
    done
fi
if [ -n "$csv" ]; then
    line="$(date -u +%FT%TZ),$flows,$frame_len,$proto,$ip,$tunnel,$backend_ip,$huge,$dm"
    for i in "${!modes[@]}"; do line+=",${modes[$i]}=${meds[$i]},$(ratio "$dm" "${meds[$i]}")"; done
    echo "$line" >> "$csv"
fi

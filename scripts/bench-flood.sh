#!/usr/bin/env bash
# A SYN flood through the whole forwarder, next to established traffic, in
# one run: the dnlb binary in load-balancing mode (one worker, a listener on
# TCP port 80 of 192.0.2.10, eight VXLAN backends, a 65536-flow table)
# replays from memory (net_pcap, infinite_rx=1) either
#   - established: the mid-flow ACKs of N established TCP flows, or
#   - flood: SYNs from S distinct source addresses (10.0.0.0 + i),
# runs alternated; the median rates and flood / established ratio are the
# result (issue 11 asks >= 0.8 with >= 200k sources). dpdk-testpmd (io) on
# the same two files, core and memory settings is the reference: replaying
# 200k distinct mbufs misses the caches whoever forwards them, so the last
# column divides dnlb's ratio by testpmd's.
#
#   scripts/bench-flood.sh [--flows 1000] [--sources 200000] [--runs 3]
#                          [--seconds 10] [--est-frames SOURCES]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh
# shellcheck source=lib/bench.sh
. scripts/lib/bench.sh

flows=1000 sources=200000 runs=3 seconds=10 est_frames=
while [ $# -gt 0 ]; do
    case "$1" in
    --est-frames) est_frames=$2; shift 2 ;;
    --flows) flows=$2; shift 2 ;;
    --sources) sources=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

est_frames=${est_frames:-$sources}
dnlb_ensure_all
cargo build --release --quiet -p dnlb-forwarder -p dnlb-benches
out=$(mktemp -d /tmp/dnlb-flood.XXXXXX)
cleanup() {
    # testpmd leaves its EAL runtime directory (~13 MB on tmpfs) behind
    rm -rf "$out" "/var/run/dpdk/flood-tp-$$" "/var/run/dpdk/flood-$$"
}
trap cleanup EXIT

# The established file holds as many frames as the flood file (each flow's
# ACKs repeated), so that both replays touch the same amount of memory: the
# pcap PMD copies every frame out of its own preloaded mbuf, and 200k of
# those miss the caches whoever forwards them (--est-frames FLOWS replays one
# frame per flow, as the issue's first measurement did).
per_flow=$(( (est_frames + flows - 1) / flows ))
target/release/dnlb-pcapgen --proto tcp --flows "$flows" --mid-flow --packets-per-flow "$per_flow" \
    --out "$out/established.pcap" 2>/dev/null
target/release/dnlb-pcapgen --proto tcp --flows "$sources" --distinct-sources --out "$out/flood.pcap" 2>/dev/null


# run_dnlb NAME: packets/s received while replaying NAME.pcap.
run_dnlb() {
    local pcap=$out/$1.pcap cfg=$out/$1.toml
    {
        echo '[gateway]'
        echo 'name = "flood"'
        echo '[dataplane]'
        echo "eal_args = [\"--no-huge\", \"-m\", \"2048\", \"--no-pci\", \"--no-telemetry\", \"--file-prefix=flood-$$\"]"
        echo 'worker_lcores = [1]'
        echo 'pool_mbufs = 262143'
        echo '[[dataplane.ports]]'
        echo 'name = "net_pcap0"'
        echo "devargs = \"rx_pcap=$pcap,infinite_rx=1\""
        bench_listener_config tcp
    } > "$cfg"
    target/release/dnlb run --config "$cfg" --events json --stats-interval-ms 1000 \
        --watch-config-ms 0 > "$out/$1.log" 2> "$out/$1.err" &
    local pid=$!
    # run in a command substitution (a subshell): it stops its dnlb itself
    trap "kill -INT $pid 2>/dev/null || true" EXIT
    sleep "$seconds"
    kill -INT "$pid"; wait "$pid" || true
    grep '"event":"stats"' "$out/$1.log" | grep -o '"rx_pps":[0-9.]*' | cut -d: -f2 | steady | median
}

# run_testpmd NAME: testpmd io's packets/s on NAME.pcap.
run_testpmd() {
    timeout -s INT "$seconds" dpdk-testpmd --no-huge -m 2048 --no-pci --no-telemetry "--file-prefix=flood-tp-$$" \
        -l 0,1 "--vdev=net_pcap0,rx_pcap=$out/$1.pcap,infinite_rx=1" -- --forward-mode=io \
        --total-num-mbufs=262143 --stats-period 1 -a < /dev/null > "$out/tp-$1.log" 2>&1 || true
    grep -o 'Rx-pps: *[0-9]*' "$out/tp-$1.log" | awk '{print $2}' | steady | median
}

echo "# $(date -u +%FT%TZ) established flows=$flows (frames=$((per_flow * flows))), flood sources=$sources, runs=$runs, seconds=$seconds, --no-huge"
printf '%-4s %14s %14s %7s %14s %14s %7s %10s\n' run dnlb_est dnlb_flood ratio tpmd_est tpmd_flood ratio dnlb/tpmd
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {print (b>0)?a/b:0}'; }
row() { # run e f te tf
    local r=$(ratio "$3" "$2") rt=$(ratio "$5" "$4")
    printf '%-4s %14.0f %14.0f %7.3f %14.0f %14.0f %7.3f %10.3f\n' "$1" "$2" "$3" "$r" "$4" "$5" "$rt" "$(ratio "$r" "$rt")"
}
for k in e f te tf; do : > "$out/$k"; done
for i in $(seq 1 "$runs"); do
    # alternate the order, so drift in machine load hits both alike
    if [ $((i % 2)) = 1 ]; then
        e=$(run_dnlb established); f=$(run_dnlb flood); te=$(run_testpmd established); tf=$(run_testpmd flood)
    else
        tf=$(run_testpmd flood); te=$(run_testpmd established); f=$(run_dnlb flood); e=$(run_dnlb established)
    fi
    for k in e f te tf; do echo "${!k}" >> "$out/$k"; done
    row "$i" "$e" "$f" "$te" "$tf"
done
row median "$(median < "$out/e")" "$(median < "$out/f")" "$(median < "$out/te")" "$(median < "$out/tf")"

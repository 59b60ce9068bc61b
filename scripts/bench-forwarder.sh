#!/usr/bin/env bash
# Whole-forwarder throughput through DPDK, next to dpdk-testpmd on the same
# input, vdev, core and EAL memory settings, runs alternated.
#
# A pcap of N flows is replayed from memory (net_pcap, infinite_rx=1) into
# one worker lcore; TX on the same port (net_pcap without a TX file drops).
# Each run lasts SECONDS (testpmd needs about 5 s to start with --no-huge);
# per-second rates are kept from the second non-zero one on (the first
# covers start-up), and the run's median is its result. Output: per-run medians, the
# median over runs for each, and the ratio dnlb / testpmd.
#
#   scripts/bench-forwarder.sh [--flows 1000] [--frame-len 60] [--runs 5]
#                              [--seconds 12] [--hugepages] [--mode io]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh
# shellcheck source=lib/bench.sh
. scripts/lib/bench.sh

flows=1000 frame_len=60 runs=5 seconds=12 huge=0 mode=io
while [ $# -gt 0 ]; do
    case "$1" in
    --flows) flows=$2; shift 2 ;;
    --frame-len) frame_len=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --hugepages) huge=1; shift ;;
    --mode) mode=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

dnlb_ensure_all
cargo build --release --quiet -p dnlb-forwarder -p dnlb-benches
out=$(mktemp -d /tmp/dnlb-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    [ "$huge" = 1 ] && scripts/hugepages.sh release >/dev/null 2>&1 || true
    rm -rf "$out"
}
trap cleanup EXIT

pcap=$out/flows.pcap
target/release/dnlb-pcapgen --flows "$flows" --frame-len "$frame_len" --out "$pcap"

if [ "$huge" = 1 ]; then
    scripts/hugepages.sh reserve 1024 >/dev/null
    mem=(-m 1024 --in-memory)
else
    mem=(--no-huge -m 1024)
fi
vdev="net_pcap0,rx_pcap=$pcap,infinite_rx=1"


run_dnlb() {
    local cfg=$out/dnlb.toml
    local eal=("${mem[@]}" --no-pci --no-telemetry "--file-prefix=bench-dnlb-$$")
    {
        echo '[gateway]'
        echo 'name = "bench"'
        echo '[dataplane]'
        printf 'eal_args = ['; printf '"%s", ' "${eal[@]}"; echo ']'
        echo 'worker_lcores = [1]'
        echo 'pool_mbufs = 8191'
        echo '[[dataplane.ports]]'
        echo "name = \"net_pcap0\""
        echo "devargs = \"rx_pcap=$pcap,infinite_rx=1\""
        echo 'forward_to = "net_pcap0"'
    } > "$cfg"
    target/release/dnlb run --config "$cfg" --stats-interval-ms 1000 > "$out/dnlb.log" 2> "$out/dnlb.err" &
    local pid=$!
    pids+=("$pid")
    sleep "$seconds"
    kill -INT "$pid"; wait "$pid" || true
    grep '^stats:' "$out/dnlb.log" | grep -o 'rx_pps=[0-9]*' | cut -d= -f2 | steady | median
}

run_testpmd() {
    timeout -s INT "$seconds" dpdk-testpmd "${mem[@]}" --no-pci --no-telemetry "--file-prefix=bench-tp-$$" \
        -l 0,1 "--vdev=$vdev" -- --forward-mode="$mode" --total-num-mbufs=8192 --stats-period 1 -a \
        < /dev/null > "$out/testpmd.log" 2>&1 || true
    grep -o 'Rx-pps: *[0-9]*' "$out/testpmd.log" | awk '{print $2}' | steady | median
}

echo "# $(date -u +%FT%TZ) flows=$flows frame_len=$frame_len runs=$runs seconds=$seconds hugepages=$huge testpmd-mode=$mode"
echo "# $(pkg-config --modversion libdpdk | sed 's/^/DPDK /'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf '%-4s %14s %14s %7s\n' run dnlb_pps testpmd_pps ratio
: > "$out/d"; : > "$out/t"
for i in $(seq 1 "$runs"); do
    # alternate which goes first, so drift in machine load hits both alike
    if [ $((i % 2)) = 1 ]; then d=$(run_dnlb); t=$(run_testpmd); else t=$(run_testpmd); d=$(run_dnlb); fi
    echo "$d" >> "$out/d"; echo "$t" >> "$out/t"
    printf '%-4s %14.0f %14.0f %7.3f\n' "$i" "$d" "$t" "$(awk -v a="$d" -v b="$t" 'BEGIN {print (b>0)?a/b:0}')"
done
dm=$(median < "$out/d"); tm=$(median < "$out/t")
printf '%-4s %14.0f %14.0f %7.3f\n' median "$dm" "$tm" "$(awk -v a="$dm" -v b="$tm" 'BEGIN {print (b>0)?a/b:0}')"

#!/usr/bin/env bash
# Instructions a packet through the whole forwarder, counted by callgrind:
# dnlb and dpdk-testpmd on the same replay, vdev and core, in one run.
#
# The same input as scripts/bench-forwarder.sh (a pcap of N UDP flows to one
# VIP replayed from memory by net_pcap, infinite_rx=1; dnlb in load-balancing
# mode with 8 VXLAN backends), but each program runs under
# `valgrind --tool=callgrind --separate-threads=yes` for SECONDS, and the
# forwarding lcore's instructions are split by where they execute:
#   own     the program's own binary (dnlb: the whole packet path, its shim
#           around rte_eth_rx/tx_burst included; testpmd: its forwarding
#           engine and the inlined ethdev calls)
#   driver  everything else the lcore ran: the pcap PMD (the copy of each
#           frame into a fresh mbuf, the free on TX), the mempool, libc's
#           memcpy/memset, the dynamic loader's TLS lookups
# each divided by the packets received (the PMD's RX calls × 32: with
# infinite_rx every burst is full). Last, testpmd's instructions a packet
# over dnlb's (own + driver): the rate ratio if every instruction cost the
# same time (with hugepages the measured rate ratios came close to it).
#
# Unlike packet rates on this shared 2-core VM (±30 % between runs),
# instruction counts repeat to within ~1 %: the A/B measure for changes to
# the packet path. They do not show cache misses or stalls; rates
# (bench-forwarder.sh) and profiles (perf record -C 1) do.
#
#   scripts/bench-instructions.sh [--flows 1000] [--seconds 60]   (each program's
#                              run, valgrind's slow start of ~20-40 s included;
#                              90 with --sync, whose gateway first waits on
#                              its silent peer)
#       [--testpmd "5tswap"]   testpmd modes to count too ("" for none)
#       [--dnlb "BIN…"]        dnlb binaries (default target/release/dnlb)
#       [--top N]              also each binary's N costliest source files
#       [--ip 4|6]             the flows' (and the VIP's) IP version (dnlb
#                              only: testpmd's count is the same either way
#                              within ~1 %; give --testpmd "" to skip it)
#       [--sync]               dnlb with flow-exception sync configured (a
#                              [sync] section whose one peer never answers,
#                              as in bench-forwarder.sh --sync)
#       [--listing DIR]        also write DIR/LABEL.txt for each program: every
#                              instruction of its own run at least 0.3 times a
#                              packet, with its count, disassembly and the
#                              functions it was inlined from
#                              (scripts/lib/callgrind-listing.py; callgrind
#                              then runs with --dump-instr=yes)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh
# shellcheck source=lib/bench.sh
. scripts/lib/bench.sh

flows=1000 seconds='' modes=5tswap bins=target/release/dnlb top=0 sync=0 listing='' ip=4
while [ $# -gt 0 ]; do
    case "$1" in
    --flows) flows=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --testpmd) modes=$2; shift 2 ;;
    --dnlb) bins=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    --sync) sync=1; shift ;;
    --ip) ip=$2; shift 2 ;;
    --listing) listing=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$seconds" ]; then
    if [ "$sync" = 1 ]; then seconds=90; else seconds=60; fi
fi
read -r -a modes <<< "$modes"
read -r -a bins <<< "$bins"

dnlb_ensure_all
dnlb_ensure_apt valgrind
if [ -n "$listing" ]; then
    dnlb_ensure_apt binutils
    mkdir -p "$listing"
fi
vg=(valgrind --tool=callgrind --separate-threads=yes)
if [ -n "$listing" ]; then vg+=(--dump-instr=yes); fi
cargo build --release --quiet -p dnlb-forwarder -p dnlb-benches
out=$(mktemp -d /tmp/dnlb-instr.XXXXXX)
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $out" >&2; else rm -rf "$out"; fi
    rm -rf "/var/run/dpdk/instr-tp-$$" "/var/run/dpdk/instr-dnlb-$$"
}
trap cleanup EXIT

pcap=$out/flows.pcap
target/release/dnlb-pcapgen --flows "$flows" --frame-len 60 --proto udp --ip "$ip" --out "$pcap" 2>/dev/null
pool=8191
while [ "$pool" -lt $((flows + 16384)) ]; do pool=$((pool * 2 + 1)); done
# Less EAL memory than bench-forwarder.sh: valgrind is slow to touch it.
mem=(--no-huge -m 256)

# rx_bursts FILE: calls of the PMD's RX function from outside the PMD in
# callgrind profile FILE (callgrind_annotate --tree=caller lists each
# function's callers, "< caller (Nx)", above it, "* function").
rx_bursts() {
    callgrind_annotate --tree=caller --threshold=100 "$1" 2>/dev/null | awk '
        /^ *[0-9,]+ .*< / && !/librte_net_pcap/ { calls = $0; next }
        /\* .*librte_net_pcap/ && rx == "" && calls != "" {
            if (match(calls, /\(([0-9,]+)x\)/)) { c = substr(calls, RSTART + 1, RLENGTH - 3); gsub(",", "", c); rx = c }
        }
        { calls = "" }
        END { print rx + 0 }'
}

# count LABEL BIN: the forwarding thread's profile in $out/cg.LABEL* → one
# line "LABEL own driver packets" (Ir a packet), and the top files if asked.
# Own: functions of BIN (callgrind_annotate names the object of every other).
count() {
    local label=$1 bin=$2 f best='' bursts=0 n
    for f in "$out"/cg."$label"-*; do
        n=$(rx_bursts "$f")
        if [ "$n" -gt "$bursts" ]; then bursts=$n best=$f; fi
    done
    [ -n "$best" ] || { echo "$label: no thread called the PMD's RX" >&2; return 1; }
    callgrind_annotate --threshold=100 --show-percs=no --auto=no "$best" > "$out/ann.$label" 2>/dev/null
    awk -v pk=$((bursts * 32)) -v label="$label" -v bin="[$bin]" '
        /PROGRAM TOTALS/ { total = $1; gsub(",", "", total); next }
        /^ *[0-9][0-9,]* +[^ ]/ {
            x = $1; gsub(",", "", x); if (index($0, "[") == 0 || index($0, bin) > 0) own += x
        }
        END { printf "%-12s %8.0f %8.0f %12d\n", label, own / pk, (total - own) / pk, pk }' "$out/ann.$label" |
        tee "$out/row.$label"
    if [ "$top" -gt 0 ]; then
        awk -v pk=$((bursts * 32)) -v bin="[$bin]" '
            /PROGRAM TOTALS/ { next }
            /^ *[0-9][0-9,]* +[^ ]/ && (index($0, "[") == 0 || index($0, bin) > 0) {
                x = $1; gsub(",", "", x); split($2, p, ":"); f[p[1]] += x
            }
            END { for (k in f) printf "    %6.1f %s\n", f[k] / pk, k }' "$out/ann.$label" |
            sort -rn | head -n "$top" | sed 's|/rustc/[0-9a-f]*/library/||'
    fi
    if [ -n "$listing" ]; then
        python3 scripts/lib/callgrind-listing.py "$best" "$bin" $((bursts * 32)) > "$listing/$label.txt"
    fi
}

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) flows=$flows frame_len=60 proto=udp ip=$ip tunnel=vxlan sync=$sync seconds=$seconds (callgrind, --no-huge)"
echo "# DPDK $(pkg-config --modversion libdpdk 2>/dev/null || echo '?'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf '%-12s %8s %8s %12s\n' program own driver packets
k=0
for bin in "${bins[@]}"; do
    k=$((k + 1))
    cfg=$out/dnlb.toml
    {
        echo '[gateway]'; echo 'name = "bench"'; echo '[dataplane]'
        printf 'eal_args = ['; printf '"%s", ' "${mem[@]}" --no-pci --no-telemetry "--file-prefix=instr-dnlb-$$"; echo ']'
        echo 'worker_lcores = [1]'; echo "pool_mbufs = $pool"
        echo '[[dataplane.ports]]'; echo 'name = "net_pcap0"'
        echo "devargs = \"rx_pcap=$pcap,infinite_rx=1\""
        bench_listener_config udp vxlan "$ip" 4 $(( flows * 2 > 65536 ? flows * 2 : 65536 ))
        if [ "$sync" = 1 ]; then bench_sync_config "$out"; fi
    } > "$cfg"
    # Fair scheduling: the busy worker must not starve dnlb's control thread
    # (its stats and shutdown summary) of valgrind's one running thread.
    # (testpmd under it forwarded 15 thousand packets in 60 s instead of
    # millions, so testpmd runs without.)
    timeout -s INT "$seconds" "${vg[@]}" --fair-sched=yes \
        --callgrind-out-file="$out/cg.dnlb$k" "$bin" run --config "$cfg" --stats-interval-ms 5000 \
        --watch-config-ms 0 < /dev/null > "$out/dnlb.log" 2>&1 || true
    grep -q 'tx_packets=[1-9]' "$out/dnlb.log" || { echo "dnlb $bin sent nothing:" >&2; tail -5 "$out/dnlb.log" >&2; exit 1; }
    count "dnlb$k" "$(readlink -f "$bin")"
done
for m in "${modes[@]}"; do
    timeout -s INT "$seconds" "${vg[@]}" \
        --callgrind-out-file="$out/cg.$m" dpdk-testpmd "${mem[@]}" --no-pci --no-telemetry \
        "--file-prefix=instr-tp-$$" -l 0,1 "--vdev=net_pcap0,rx_pcap=$pcap,infinite_rx=1" -- \
        --forward-mode="$m" --total-num-mbufs="$pool" -a < /dev/null > "$out/testpmd.log" 2>&1 || true
    count "$m" "$(readlink -f "$(command -v dpdk-testpmd)")"
done
# Instructions a packet in all (own + driver), testpmd's over dnlb's: what
# the packet-rate ratio would be if every instruction cost the same time.
for k in $(seq "${#bins[@]}"); do
    for m in "${modes[@]}"; do
        awk -v m="$m" -v d="dnlb$k" 'FNR == 1 { t[FILENAME] = $2 + $3 }
            END { for (f in t) if (f ~ /row\.dnlb/) dn = t[f]; else tp = t[f];
                  printf "# dnlb%s ÷ %s in instructions a packet: %.3f (%d vs %d)\n", substr(d, 5), m, tp / dn, tp, dn }' \
            "$out/row.dnlb$k" "$out/row.$m"
    done
done


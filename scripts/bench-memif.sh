#!/usr/bin/env bash
# Two processes over net_memif: dnlb-pktgen as the memif server (one lcore,
# CPU 0) sends flows and counts what comes back; the peer, a memif client
# with its worker on lcore 1 (CPU 1), is either
#   - dpdk-testpmd --forward-mode=io (or macswap): the reference, or
#   - the dnlb binary in load-balancing mode: a UDP listener on
#     192.0.2.10:80 with eight VXLAN backends (as scripts/bench-flood.sh),
#     every packet encapsulated and sent back out of the port it came in by.
# Runs alternate; each run's figure is the median of the generator's
# per-second rx_pps (the first second dropped); the result is the median
# over runs for each peer and the ratio dnlb / testpmd of packets per second
# returned to the generator. Both sides busy-poll (a benchmark), so run it
# on an otherwise quiet 2-core machine. On a shared one, the per-CPU-second
# columns help: packets returned per second of CPU time the peer process
# got while the generator was sending (a busy-polling peer uses all the CPU
# it gets, so this is its rate per core, whatever else ran beside it).
#
#   scripts/bench-memif.sh [--flows 1000] [--frame-len 60] [--runs 3]
#                          [--seconds 10] [--rate 0] [--mode io]
#                          [--dnlb lb|forward] [--proto udp|tcp]
#                          [--syn-fraction F] [--capacity N] [--udp-timeout S]
#
# --proto tcp makes the listener and the flows TCP (ACKs of established
# flows); --syn-fraction F makes that share of the packets new flows (TCP
# SYNs from ever-new sources, 10.0.0.0/8 x 1024-65535; 1: a SYN flood). The
# generator writes every frame afresh into recycled mbufs, so a flood
# touches no more memory than established traffic (unlike a pcap replay of
# as many distinct frames, see bench-flood.sh). With --proto udp the new
# flows are datagrams from ever-new sources, each opening a flow-table entry
# on the fast path: --syn-fraction 1 is the connection rate through the
# whole forwarder. Entries live --udp-timeout seconds (default 60, min 1),
# so the table (--capacity flows per worker, default twice the flows, at
# least 65536; at most 16777216) must hold rate x timeout entries, or new
# flows find it full (counted, served by the stateless hash): the last
# dnlb run's flow counters are printed at the end.
#
# --flows "1000 1000000" (several counts) runs dnlb once per count in every
# run (testpmd with the first) and adds each count's rate relative to the
# first's: how the flow count alone changes dnlb's rate, in one script run.
# With it come dnlb's cycles per packet at each count (its stats events:
# TSC cycles of busy loop iterations per packet received) and the first
# count's cycles over each other's: the relative capacity of a core, which
# holds also when the generator, not dnlb, limits the rate.
#
# DNLB_BIN=path runs another dnlb binary (an A/B of two builds).
#
# --dnlb forward runs dnlb without listeners, every frame sent back out of
# the port unchanged (forward_to itself): the worker loop and memif I/O
# without the load-balancing step, the like of testpmd io.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh
# shellcheck source=lib/bench.sh
. scripts/lib/bench.sh

flows=1000 frame_len=60 runs=3 seconds=10 rate=0 mode=io dnlb=lb proto=udp syn=0 capacity='' udp_timeout=''
while [ $# -gt 0 ]; do
    case "$1" in
    --flows) flows=$2; shift 2 ;;
    --frame-len) frame_len=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --dnlb) dnlb=$2; shift 2 ;;
    --proto) proto=$2; shift 2 ;;
    --syn-fraction) syn=$2; shift 2 ;;
    --capacity) capacity=$2; shift 2 ;;
    --udp-timeout) udp_timeout=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

dnlb_ensure_all
cargo build --release --quiet -p dnlb-pktgen -p dnlb-forwarder
out=$(mktemp -d /tmp/dnlb-memif.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    # DPDK leaves each process's runtime directory behind
    rm -rf "$out" "/var/run/dpdk/memif-gen-$$" "/var/run/dpdk/memif-tp-$$" "/var/run/dpdk/memif-dnlb-$$"
}
trap cleanup EXIT

mem=(--no-huge -m 1024 --no-pci --no-telemetry --log-level=lib.eal:error)

# start_gen NAME: the generator as memif server on lcore 0, in the
# background; waits for its socket. Sets $sock and $gen_pid.
start_gen() {
    sock=$out/$1.sock
    rm -f "$sock" # a stale socket would make the server fail to listen
    target/release/dnlb-pktgen "${mem[@]}" "--file-prefix=memif-gen-$$" -l 0 \
        "--vdev=net_memif0,role=server,socket=$sock,socket-abstract=no" -- \
        --src-ip "198.18.0.0+$flows" --src-port 1024 --dst-ip 192.0.2.10 --dst-port 80 \
        --proto "$proto" --syn-fraction "$syn" --frame-len "$frame_len" --rate "$rate" --duration "$seconds" \
        --link-wait 60 --linger 30 > "$out/$1.gen" 2> "$out/$1.gen.err" &
    gen_pid=$!
    pids+=("$gen_pid")
    local i
    for i in $(seq 1 300); do
        [ -S "$sock" ] && return 0
        kill -0 "$gen_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "dnlb-pktgen did not create $sock:" >&2
    cat "$out/$1.gen.err" >&2
    return 1
}

# cpu_ticks PID: user + system CPU time of a process so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# wait_line NAME TYPE: waits (at most 60 s) for the generator to print a
# line of TYPE, or to exit.
wait_line() {
    local i
    for i in $(seq 1 600); do
        grep -q "\"type\":\"$2\"" "$out/$1.gen" 2>/dev/null && return 0
        kill -0 "$gen_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# peer_run NAME PEER_PID: lets the generator run against the peer, then
# stops both in the order that is safe for memif: the generator prints its
# summary and stops polling (--linger), the peer is stopped and closes its
# side, then the generator closes its own. Writes the CPU seconds the peer
# used from link up to the summary to $out/NAME.cpu.
peer_run() {
    local t0 t1
    wait_line "$1" start || true
    t0=$(cpu_ticks "$2")
    wait_line "$1" summary || true
    t1=$(cpu_ticks "$2")
    kill -INT "$2" 2>/dev/null || true
    local rc=0
    wait "$2" 2>/dev/null || rc=$?
    # 130 is testpmd's answer to SIGINT; a signal number above that (139:
    # SIGSEGV) means the peer died
    if [ "$rc" -gt 130 ]; then echo "# $1 died with status $rc" >&2; fi
    wait "$gen_pid" || { cat "$out/$1.gen.err" >&2; }
    awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {print (b - a) / hz}' > "$out/$1.cpu"
}

# gen_result NAME: median of the steady per-second rx_pps, the summary's
# tx_pps, median round-trip latency, and packets returned per CPU second of
# the peer.
gen_result() {
    local rx tx lat rxn cpu
    rx=$(grep '"type":"second"' "$out/$1.gen" | grep -o '"rx_pps":[0-9.e+]*' | cut -d: -f2 | steady | median)
    tx=$(grep '"type":"second"' "$out/$1.gen" | grep -o '"tx_pps":[0-9.e+]*' | cut -d: -f2 | steady | median)
    lat=$(grep '"type":"summary"' "$out/$1.gen" | grep -o '"median_us":[0-9.e+]*' | cut -d: -f2)
    rxn=$(grep '"type":"summary"' "$out/$1.gen" | grep -o '"rx_packets":[0-9]*' | head -1 | cut -d: -f2)
    cpu=$(cat "$out/$1.cpu")
    echo "$rx $tx ${lat:-0} $(awk -v n="${rxn:-0}" -v c="$cpu" 'BEGIN {printf "%.0f", (c > 0) ? n / c : 0}')"
}

run_testpmd() {
    start_gen testpmd
    dpdk-testpmd "${mem[@]}" "--file-prefix=memif-tp-$$" -l 0,1 \
        "--vdev=net_memif0,role=client,socket=$sock,socket-abstract=no" -- \
        --forward-mode="$mode" --port-topology=loop --total-num-mbufs=8192 --stats-period 1 -a \
        < /dev/null > "$out/testpmd.log" 2>&1 &
    local tp=$!
    pids+=("$tp")
    peer_run testpmd "$tp"
    gen_result testpmd > "$out/testpmd.res"
}

run_dnlb() {
    start_gen dnlb
    local cfg=$out/dnlb.toml
    # a subshell: `exit` ends the file early in forward mode
    (
        echo '[gateway]'
        echo 'name = "memif"'
        echo '[dataplane]'
        printf 'eal_args = ['; printf '"%s", ' "${mem[@]}" "--file-prefix=memif-dnlb-$$"; echo ']'
        echo 'worker_lcores = [1]'
        echo 'pool_mbufs = 8191'
        echo '[[dataplane.ports]]'
        echo 'name = "net_memif0"'
        echo "devargs = \"role=client,socket=$sock,socket-abstract=no\""
        if [ "$dnlb" = forward ]; then
            echo 'forward_to = "net_memif0"'
            exit 0
        fi
        # a flow table with room for every flow at half load, unless given
        bench_listener_config "$proto" vxlan 4 4 "${capacity:-$((flows * 2 > 65536 ? flows * 2 : 65536))}" \
            "$udp_timeout"
    ) > "$cfg"
    "${DNLB_BIN:-target/release/dnlb}" run --config "$cfg" --events json --stats-interval-ms 1000 \
        --watch-config-ms 0 > "$out/dnlb.log" 2> "$out/dnlb.err" &
    local d=$!
    pids+=("$d")
    peer_run dnlb "$d"
    gen_result dnlb > "$out/dnlb.res"
    # dnlb's own cost: the median over its stats events of TSC cycles per
    # packet received (busy time only), whatever rate the generator reached
    { grep '"event":"stats"' "$out/dnlb.log" || true; } | grep -o '"cycles_per_packet":[0-9.e+]*' |
        cut -d: -f2 | steady | median > "$out/dnlb.cpp"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {print (b>0)?a/b:0}'; }
read -r -a counts <<< "$flows"
flows=${counts[0]}
echo "# $(date -u +%FT%TZ) memif, flows=${counts[*]} frame_len=$frame_len runs=$runs seconds=$seconds rate=$rate proto=$proto syn-fraction=$syn testpmd-mode=$mode dnlb=$dnlb, --no-huge"
echo "# $(pkg-config --modversion libdpdk | sed 's/^/DPDK /'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# generator on lcore 0 (memif server), peer worker on lcore 1 (memif client); pps returned to the generator"
# multi_row LABEL: a row of the several-counts table from row, cyc and t.
multi_row() {
    local d c
    printf '%-6s' "$1"; printf ' %12.0f' "${row[@]}"; printf ' %11.0f %9.3f' "$t" "$(ratio "${row[0]}" "$t")"
    for d in "${row[@]:1}"; do printf ' %12.3f' "$(ratio "$d" "${row[0]}")"; done
    printf ' %10.0f' "${cyc[@]}"
    for c in "${cyc[@]:1}"; do printf ' %12.3f' "$(ratio "${cyc[0]}" "$c")"; done; echo
}
if [ "${#counts[@]}" -gt 1 ]; then
    # several flow counts: dnlb's rate at each, testpmd's, and the ratios
    printf '%-6s' run; for f in "${counts[@]}"; do printf ' %12s' "dnlb_$f"; done
    printf ' %11s %9s' tpmd_rx "÷testpmd"; for f in "${counts[@]:1}"; do printf ' %12s' "$f÷${counts[0]}"; done
    for f in "${counts[@]}"; do printf ' %10s' "cyc_$f"; done
    for f in "${counts[@]:1}"; do printf ' %12s' "cap_$f"; done; echo
    for f in "${counts[@]}"; do : > "$out/d.$f"; : > "$out/c.$f"; done; : > "$out/t"
    for i in $(seq 1 "$runs"); do
        order=("${counts[@]}")
        [ $((i % 2)) = 0 ] && mapfile -t order < <(printf "%s\n" "${counts[@]}" | tac)
        for f in "${order[@]}"; do
            flows=$f; run_dnlb
            read -r d _ < "$out/dnlb.res"; echo "$d" >> "$out/d.$f"; cat "$out/dnlb.cpp" >> "$out/c.$f"
        done
        flows=${counts[0]}; run_testpmd; read -r t _ < "$out/testpmd.res"; echo "$t" >> "$out/t"
        row=() cyc=(); for f in "${counts[@]}"; do row+=("$(tail -1 "$out/d.$f")"); cyc+=("$(tail -1 "$out/c.$f")"); done
        multi_row "$i"
    done
    row=() cyc=(); for f in "${counts[@]}"; do row+=("$(median < "$out/d.$f")"); cyc+=("$(median < "$out/c.$f")"); done
    t=$(median < "$out/t")
    multi_row median
    exit 0
fi
printf '%-6s %11s %11s %8s %12s %11s %11s %8s %12s %7s %7s %9s\n' run dnlb_rx dnlb_tx dnlb_us dnlb_per_cpu \
    tpmd_rx tpmd_tx tpmd_us tpmd_per_cpu ratio cpu_ratio dnlb_cyc
: > "$out/d"; : > "$out/t"; : > "$out/dc"; : > "$out/tc"; : > "$out/dcyc"
for i in $(seq 1 "$runs"); do
    # alternate which goes first, so drift in machine load hits both alike
    if [ $((i % 2)) = 1 ]; then run_dnlb; run_testpmd; else run_testpmd; run_dnlb; fi
    read -r d dtx dl dc < "$out/dnlb.res"
    read -r t ttx tl tc < "$out/testpmd.res"
    dcyc=$(cat "$out/dnlb.cpp"); dcyc=${dcyc:-0}
    echo "$d" >> "$out/d"; echo "$t" >> "$out/t"; echo "$dc" >> "$out/dc"; echo "$tc" >> "$out/tc"
    echo "$dcyc" >> "$out/dcyc"
    printf '%-6s %11.0f %11.0f %8.1f %12.0f %11.0f %11.0f %8.1f %12.0f %7.3f %7.3f %9.0f\n' "$i" "$d" "$dtx" "$dl" "$dc" \
        "$t" "$ttx" "$tl" "$tc" "$(ratio "$d" "$t")" "$(ratio "$dc" "$tc")" "$dcyc"
done
dm=$(median < "$out/d"); tm=$(median < "$out/t"); dcm=$(median < "$out/dc"); tcm=$(median < "$out/tc")
printf '%-6s %11.0f %11s %8s %12.0f %11.0f %11s %8s %12.0f %7.3f %7.3f %9.0f\n' median "$dm" - - "$dcm" "$tm" - - "$tcm" \
    "$(ratio "$dm" "$tm")" "$(ratio "$dcm" "$tcm")" "$(median < "$out/dcyc")"
# the last dnlb run's worker counters, to see where packets went
grep '"event":"stopped"' "$out/dnlb.log" | grep -o '"rx_packets":[0-9]*,"tx_packets":[0-9]*,"dropped":[0-9]*' |
    head -1 | sed 's/^/# last dnlb run, worker: /' || true
# and its flow table: flows created, new flows that found it full
grep '"event":"stopped"' "$out/dnlb.log" | grep -o '"created":[0-9]*\|"table_full":[0-9]*\|"capacity":[0-9]*' |
    head -3 | tr '\n' ' ' | sed 's/^/# last dnlb run, flows: /;s/$/\n/' || true

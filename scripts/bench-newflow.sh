#!/usr/bin/env bash
# A new flow against an established one in criterion (issue 12's pair),
# measured as pairs alternated in one run: this VM's speed swings by ±40 %
# from one minute to the next, so each round runs both benches back to back
# and the ratio is taken within the round; the table gives every round, the
# median of the ratios, and each bench's fastest round (the least disturbed).
#
#   scripts/bench-newflow.sh [--rounds 6] [--pair "ESTABLISHED NEW"] [--bin PIPELINE_BENCH]
#   scripts/bench-newflow.sh --interleaved [--rounds 100] [--bin PIPELINE_BENCH]
#   scripts/bench-newflow.sh --instructions [--pair "ESTABLISHED NEW"] [--bin PIPELINE_BENCH]
#       [--case vxlan_v4_tcp]  the benches' case (vxlan_v6_tcp, ipip_v4_tcp…;
#                              `established` has them all, the others
#                              vxlan_v4_tcp only)
#
# --instructions counts instead each bench's instructions a packet under
# callgrind (collecting inside the bench's `burst` only; packets = 32 x the
# bursts, counted by the listener memo's one lookup a burst): what changed
# in the code, free of the machine's noise, not what it costs in time.
#
# --interleaved runs the default pair in one process, alternating blocks of
# 20k bursts (~20 ms) of each: both see the same state of the machine, so
# the ratio holds to about 1 % where criterion's separate runs swing 3-5 %.
#
# Pairs (the default is the first):
#   established_16k_flows new_flow_64k  the same working set: 16k flows' frames
#                                       and a 64k table on both sides
#   established new_flow_64k            1k flows in cache against new flows
#   established_1m_flows new_flow       1M-flow tables
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh
rounds='' pair="established_16k_flows new_flow_64k" bin='' interleaved='' instructions='' case=vxlan_v4_tcp
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --interleaved) interleaved=1; shift ;;
    --instructions) instructions=1; shift ;;
    --pair) pair=$2; shift 2 ;;
    --case) case=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
read -r est new <<< "$pair"
if [ -z "$bin" ]; then
    bin=$(cargo bench -p dnlb-benches --bench pipeline --no-run 2>&1 |
        grep -oE 'target/release/deps/pipeline-[0-9a-f]+' | head -1)
fi
if [ -n "$interleaved" ]; then
    echo "# $(date -u +%FT%TZ) $bin, interleaved blocks, ns per packet (vxlan_v4_tcp)"
    DNLB_NEWFLOW_PAIR="${rounds:-100}" "$bin"
    exit
fi
if [ -n "$instructions" ]; then
    dnlb_ensure_apt valgrind
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    echo "# $(date -u +%FT%TZ) $bin, instructions a packet (callgrind, $case)"
    for b in $est $new; do
        valgrind --tool=callgrind --toggle-collect='*pipeline::burst*' --callgrind-out-file="$tmp/$b.out" \
            "$bin" --bench --profile-time 3 "^pipeline/$b/$case\$" > /dev/null 2>&1
        total=$(callgrind_annotate "$tmp/$b.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
        # Calls of the memo's miss (once a burst): every "calls=" line under its id.
        ids=$(grep -oE '^c?fn=\([0-9]+\) .*remember_usual' "$tmp/$b.out" | grep -oE '\([0-9]+\)' | sort -u)
        bursts=0
        for id in $ids; do
            n=$(grep -A1 -F "cfn=$id" "$tmp/$b.out" | awk -F'[= ]' '/^calls=/ {s += $2} END {print s + 0}')
            bursts=$((bursts + n))
        done
        awk -v b="$b" -v t="$total" -v n="$bursts" 'BEGIN {printf "%-24s %8.1f instructions a packet (%d bursts)\n", b, t / (n * 32), n}'
    done
    exit
fi
rounds=${rounds:-6}
# ns per packet of one bench (bursts of 32 packets)
one() {
    "$bin" --bench --output-format bencher "^pipeline/$1/$case\$" 2>/dev/null |
        awk '/^test/ {printf "%.1f\n", $5 / 32}'
}
echo "# $(date -u +%FT%TZ) $bin, pair: $est / $new, ns per packet ($case)"
printf '%-6s %12s %12s %8s\n' round "$est" "$new" ratio
out=$(mktemp); trap 'rm -f "$out"' EXIT
for i in $(seq 1 "$rounds"); do
    if [ $((i % 2)) = 1 ]; then a=$(one "$est"); b=$(one "$new"); else b=$(one "$new"); a=$(one "$est"); fi
    r=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')
    printf '%-6s %12s %12s %8s\n' "$i" "$a" "$b" "$r"
    echo "$a $b $r" >> "$out"
done
sort -k3 -g "$out" | awk '{r[NR]=$3} END {m = (NR % 2) ? r[(NR+1)/2] : (r[NR/2] + r[NR/2+1]) / 2; printf "median ratio %.3f\n", m}'
awk 'NR==1 || $1<a {a=$1} NR==1 || $2<b {b=$2} END {printf "fastest rounds: %.1f / %.1f ns = %.3f\n", a, b, b/a}' "$out"

#!/usr/bin/env bash
# The whole-forwarder benchmark table of docs/benchmarks.md: runs
# scripts/bench-forwarder.sh (dnlb in load-balancing mode next to
# dpdk-testpmd on the same replay, alternated) for each case below and
# prints one Markdown row per case. Takes about 35 minutes with the
# defaults (1M flows: 30 s runs, start-up loads a million mbufs).
#
#   scripts/bench-matrix.sh [--runs 3] [--seconds 10] [--quick] [--only REGEX]
#                           [--csv FILE]
#
# --quick runs only the first two cases (the issue's headline figure,
# without and with hugepages); --only the cases whose label matches REGEX.
# Nothing else may run on the machine meanwhile: another process on the
# worker's core halves dnlb's figure and not testpmd's.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3 seconds=10 quick=0 csv= only=
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only=$2; shift 2 ;;
    --csv) csv=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
csv=${csv:-$(mktemp /tmp/dnlb-matrix.XXXXXX.csv)}

# label | bench-forwarder.sh arguments
cases=(
    "1k UDP IPv4 VXLAN 64 B|--flows 1000 --testpmd '5tswap io macswap'"
    "1k UDP IPv4 VXLAN 64 B, hugepages|--flows 1000 --hugepages --testpmd '5tswap io macswap'"
    "1k TCP IPv4 VXLAN 64 B|--flows 1000 --proto tcp"
    "1k UDP IPv4 IP-in-IP 64 B|--flows 1000 --tunnel ipip"
    "1k UDP IPv4 GUE 64 B|--flows 1000 --tunnel gue"
    "1k UDP IPv4 GRE 64 B|--flows 1000 --tunnel gre"
    "1k UDP IPv6 VXLAN (IPv4 outer) 78 B|--flows 1000 --ip 6 --backend-ip 4 --frame-len 74"
    "1k TCP IPv6 VXLAN over IPv6 98 B|--flows 1000 --ip 6 --proto tcp --backend-ip 6 --frame-len 94"
    "1k UDP IPv4 VXLAN 1518 B|--flows 1000 --frame-len 1514"
    "100k UDP IPv4 VXLAN 64 B|--flows 100000"
    "1M UDP IPv4 VXLAN 64 B|--flows 1000000 --testpmd io --seconds 30"
    "1M UDP IPv4 VXLAN 64 B, hugepages|--flows 1000000 --hugepages --testpmd io --seconds 30"
    "forward only (no listener) 64 B|--flows 1000 --tunnel none --testpmd io"
)
[ "$quick" = 1 ] && cases=("${cases[@]:0:2}")

echo "| case | dnlb Mpps | testpmd Mpps | dnlb ÷ testpmd |"
echo "|---|---|---|---|"
for c in "${cases[@]}"; do
    label=${c%%|*} args=${c#*|}
    if [ -n "$only" ] && ! [[ $label =~ $only ]]; then continue; fi
    # the case's own arguments last: they may override --seconds
    eval "set -- --runs $runs --seconds $seconds $args"
    before=$(wc -l < "$csv" 2>/dev/null || echo 0)
    scripts/bench-forwarder.sh "$@" --csv "$csv" > /tmp/dnlb-matrix-last.log 2>&1 \
        || { echo "| $label | failed: see /tmp/dnlb-matrix-last.log | | |"; continue; }
    line=$(tail -n +$((before + 1)) "$csv" | tail -1)
    # date,flows,len,proto,ip,tunnel,bip,huge,dnlb,mode=pps,ratio,...
    echo "$line" | awk -F, -v label="$label" '{
        tp = ""; r = "";
        for (i = 10; i < NF; i += 2) { split($i, m, "="); tp = tp sprintf("%s%s %.1f", (tp == "" ? "" : ", "), m[1], m[2] / 1e6); r = r sprintf("%s%s %.2f", (r == "" ? "" : ", "), m[1], $(i + 1)) }
        printf "| %s | %.1f | %s | %s |\n", label, $9 / 1e6, tp, r }'
done
echo "csv: $csv" >&2

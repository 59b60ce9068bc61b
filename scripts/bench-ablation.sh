#!/usr/bin/env bash
# Where the load-balancing path's time goes through the whole forwarder, by
# removal: each variant is the working tree with one part of the packet path
# taken out (wrong on purpose, for measurement only; scripts/lib/ablation.py
# holds the edits and says what each removes). All are run alternately by
# scripts/bench-forwarder.sh on its replay (1k UDP flows, 64 B, VXLAN to 8
# backends, one worker), and each variant's own cycles a packet (the worker's
# busy TSC cycles over its packets) are set against the full build's:
#   full - variant   what the removed part costs (its instructions and the
#                    stalls they cause, overlap with the rest included)
#   variant - noop   for loops, touch, parse and stage: what is left, above
#                    the driver and the worker loop
# A sampling profile spreads a stall's cost over the instructions after it;
# removal does not. This VM has no PMU, so removal is the one way to see
# stalls here. Parts overlap, so the costs need not add up to the total.
#
#   scripts/bench-ablation.sh [--variants "noop loops touch parse stage nolookup noencap nocount nofp noprefetch"]
#       [--runs 3] [--seconds 8] [--hugepages] [--flows 1000] [--testpmd ""]
#
# Builds each variant from a copy of the working tree (uncommitted changes
# included) into target/ablation (~2 min for the first, ~1 min each after).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh

variants="noop loops touch parse stage nolookup noencap nocount nofp noprefetch"
fwd=()
while [ $# -gt 0 ]; do
    case "$1" in
    --variants) variants=$2; shift 2 ;;
    --runs | --seconds | --flows | --testpmd) fwd+=("$1" "$2"); shift 2 ;;
    --hugepages) fwd+=("$1"); shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
# The full build always comes first (the others are compared with it), once.
names=(full)
for v in $variants; do [ "$v" = full ] || names+=("$v"); done
[[ " ${fwd[*]} " == *" --testpmd "* ]] || fwd+=(--testpmd "")
[[ " ${fwd[*]} " == *" --runs "* ]] || fwd+=(--runs 3)
[[ " ${fwd[*]} " == *" --seconds "* ]] || fwd+=(--seconds 8)

dnlb_ensure_all
out=$(mktemp -d /tmp/dnlb-ablation.XXXXXX)
trap 'rm -rf "$out"' EXIT
src=$out/src
mkdir -p "$src"
git ls-files -z | xargs -0 tar cf - | tar xf - -C "$src"
# The files the variants edit, as they are now (each variant starts from these)
mkdir -p "$out/orig"
python3 scripts/lib/ablation.py files > "$out/files"
while read -r f; do mkdir -p "$out/orig/$(dirname "$f")"; cp "$f" "$out/orig/$f"; done < "$out/files"
export CARGO_TARGET_DIR=$PWD/target/ablation
bins=()
for n in "${names[@]}"; do
    while read -r f; do cp "$out/orig/$f" "$src/$f"; done < "$out/files"
    python3 scripts/lib/ablation.py apply "$src" "$n"
    echo "# building $n" >&2
    (cd "$src" && cargo build --release --quiet -p dnlb-forwarder)
    cp "$CARGO_TARGET_DIR/release/dnlb" "$out/dnlb-$n"
    bins+=("$out/dnlb-$n")
done

scripts/bench-forwarder.sh "${fwd[@]}" --dnlb "${bins[*]}" | tee "$out/bench.log"

# Each variant's median cycles a packet, from bench-forwarder's summary lines
# "# cycles/packet dnlbK: … (median M, …)".
declare -A cyc
for i in "${!names[@]}"; do
    cyc[${names[$i]}]=$(sed -n "s/^# cycles\/packet dnlb$((i + 1)): .*(median \([0-9]*\),.*/\1/p" "$out/bench.log")
done
echo
printf '%-11s %8s %13s %14s  %s\n' variant cycles "full-variant" "variant-noop" "removed"
full=${cyc[full]}
noop=${cyc[noop]:-}
for n in "${names[@]}"; do
    c=${cyc[$n]}
    d=$((full - c))
    above=''
    [ -n "$noop" ] && above=$((c - noop))
    printf '%-11s %8s %13s %14s  %s\n' "$n" "$c" "$d" "$above" \
        "$(python3 scripts/lib/ablation.py list | awk -F'\t' -v n="$n" '$1 == n {print $2}')"
done

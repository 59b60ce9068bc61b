#!/usr/bin/env bash
# Builds and runs one of dnlb's libFuzzer targets without cargo-fuzz
# (nightly Rust with SanitizerCoverage, what cargo-fuzz passes itself).
#
#   scripts/fuzz.sh parse_frame 300      # wire: every view and writer on any bytes
#   scripts/fuzz.sh process_frame 300    # lb: the load-balancing step on any frame
#   scripts/fuzz.sh parse_config 300     # config: the validator on any text
#   scripts/fuzz.sh runtime_changes 300  # config: run-time changes over a valid config
#   scripts/fuzz.sh decode_message 300   # sync: any bytes as a received sync message
#
# Runs for the given seconds (default 60) on a scratch copy of the target's
# seed corpus; a crash leaves its input in the current directory (crash-*)
# and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS]} secs=${2:-60}
case $target in
    parse_frame) dir=wire/fuzz ;;
    process_frame) dir=lb/fuzz ;;
    parse_config|runtime_changes) dir=config/fuzz ;;
    decode_message) dir=sync/fuzz ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
esac
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
command -v rustup >/dev/null && rustup toolchain list | grep -q '^nightly' \
    || { dnlb_log "installing the nightly toolchain"; rustup toolchain install nightly --profile minimal; }
triple=$(rustc -vV | awk '/^host:/ { print $2 }')
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
dnlb_log "building $target ($dir)"
(cd "$dir" && RUSTFLAGS="$flags" cargo +nightly build --quiet --release --target "$triple" --bin "$target")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$dir/corpus/$target/." "$work/"
dnlb_log "fuzzing $target for ${secs}s"
"$dir/target/$triple/release/$target" -max_total_time="$secs" -max_len=8192 -print_final_stats=1 "$work"

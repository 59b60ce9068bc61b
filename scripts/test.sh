#!/usr/bin/env bash
# Runs every check and test of dnlb: installs what is missing (Debian
# packages, Rust components), then format, lint, build and the whole test
# suite, including the DPDK tests on virtual devices (run as root; no
# hugepages needed).
#
#   scripts/test.sh            # everything (the namespace flood test again
#                              # in release: it measures an optimized build)
#   scripts/test.sh -- NAME    # only tests whose name matches NAME
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh

filter=()
if [ "${1:-}" = "--" ]; then shift; filter=("$@"); fi

dnlb_ensure_all

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh must run as root: the DPDK and namespace tests need it" >&2
    exit 1
fi

if cargo fmt --version >/dev/null 2>&1; then
    dnlb_log "cargo fmt --check"
    cargo fmt --all -- --check
fi
if cargo clippy --version >/dev/null 2>&1; then
    dnlb_log "cargo clippy"
    cargo clippy --workspace --all-targets --quiet -- -D warnings
fi
dnlb_log "structure: module cycles, file and function length"
python3 scripts/check-structure.py
dnlb_log "scripts/bench-ablation.sh: its source edits still apply"
python3 scripts/lib/ablation.py check
dnlb_log "docs/ARCHITECTURE.md names only paths that exist"
missing=$(grep -o '`[A-Za-z0-9_.-]*/[A-Za-z0-9_./-]*`' docs/ARCHITECTURE.md | tr -d '`' | sort -u |
    while read -r p; do [ -e "$p" ] || echo "$p"; done)
if [ -n "$missing" ]; then
    echo "docs/ARCHITECTURE.md names paths that do not exist:" $missing >&2
    exit 1
fi
dnlb_log "build"
cargo build --workspace --all-targets --quiet
dnlb_log "tests"
# The summary is printed whatever the outcome (set -e must not stop here).
set +e
cargo test --workspace --no-fail-fast -- "${filter[@]}" 2>&1 | tee target/test.log
status=${PIPESTATUS[0]}
# Tests whose figures mean something only for an optimized forwarder (the
# namespace flood: hping3 at full rate against a debug build measures the
# debug build) run again in release; in debug they are ignored.
if [ ${#filter[@]} -eq 0 ] || [[ "e2e_flood floods_leave_connections_and_routing_up" == *"${filter[0]}"* ]]; then
    dnlb_log "release-only tests"
    cargo test --release -p dnlb-forwarder --test e2e_flood 2>&1 | tee -a target/test.log
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
set -e
passed=$(grep -Eo '^test result: .*' target/test.log | awk '{p+=$4; f+=$6} END {print p+0" passed, "f+0" failed"}')
echo "summary: $passed"
exit "$status"

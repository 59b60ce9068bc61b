# shellcheck shell=bash
# Check bookkeeping for the end-to-end scripts (sourced before topology.sh):
# each check prints ok/FAIL, the summary prints "N passed, N failed" and sets
# the exit status; the topology is torn down on exit (unless KEEP=1), and a
# second signal cannot cut the teardown short.

PASS=0 FAIL=0
KEEP=${KEEP:-0}

# check "description" COMMAND…: run COMMAND, record and print the outcome.
check() {
    local what=$1; shift
    if "$@"; then PASS=$((PASS + 1)); printf '  \033[32mok\033[0m    %s\n' "$what"
    else FAIL=$((FAIL + 1)); printf '  \033[31mFAIL\033[0m  %s\n' "$what"; fi
}
not_answered() { ! grep -q '^backend=' <<< "$1"; }
quiet() { "$@" > /dev/null 2>&1; }
section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# wait_for SECONDS COMMAND…: until COMMAND succeeds (polled every 0.1 s);
# fails after SECONDS.
wait_for() {
    local t=$1 _; shift
    for _ in $(seq $((t * 10))); do "$@" && return 0; sleep 0.1; done
    return 1
}

_e2e_cleanup() {
    local rc=$?
    trap '' INT TERM HUP
    trap - EXIT
    if [ "$KEEP" = 1 ]; then
        echo "topology $TOPO kept (state in $TOPO_STATE); remove it with: $0 down"
    else
        topo_down
    fi
    exit "$rc"
}

# e2e_traps: tear the topology down on exit and on INT/TERM/HUP.
e2e_traps() {
    trap _e2e_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
}

# e2e_finish: diagnostics if anything failed, the summary line, exit status.
e2e_finish() {
    if [ "$FAIL" -gt 0 ]; then
        section "diagnostics (BIRD logs, dnlb output tails)"
        local f
        for f in "$TOPO_STATE"/router/bird.log "$TOPO_STATE"/gw*/bird.log "$TOPO_STATE"/gw*/dnlb.err "$TOPO_STATE"/gw*/dnlb.out; do
            [ -e "$f" ] || continue
            echo "  --- $f"; tail -15 "$f" | sed 's/^/  /'
        done
    fi
    section "summary"
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

# e2e_args "$@": --keep sets KEEP=1, down sets DOWN=1; anything else is a
# usage error.
e2e_args() {
    case ${1:-} in
        --keep) KEEP=1 ;;
        down) DOWN=1 ;;
        '') ;;
        *) echo "usage: $0 [--keep|down]" >&2; exit 2 ;;
    esac
}

# e2e_binary: unless DNLB_BIN is given (then nothing is installed), install
# what is missing and build dnlb in release mode; exports DNLB_BIN. Exits
# unless run as root.
e2e_binary() {
    [ "$(id -u)" -eq 0 ] || { echo "run as root (namespaces, BIRD and DPDK need it)" >&2; exit 1; }
    [ -z "${DNLB_BIN:-}" ] || return 0
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    # shellcheck source=scripts/lib/deps.sh
    . "$root/scripts/lib/deps.sh"
    dnlb_ensure_all
    dnlb_log "building dnlb (release)"
    (cd "$root" && cargo build --release --quiet -p dnlb-forwarder)
    export DNLB_BIN=$root/target/release/dnlb
}

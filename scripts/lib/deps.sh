# Idempotent installation of what dnlb needs on Debian 12. Sourced by the
# scripts in scripts/. Installs only what is missing; safe to run every time.

# Debian packages needed to build and test dnlb:
#  - libdpdk-dev (headers, pkg-config libdpdk), dpdk (runtime and PMD plugins),
#    dpdk-dev (dpdk-testpmd, the benchmark reference)
#  - clang, libclang-dev: bindgen; pkg-config; gcc for the C shim
#  - iproute2, procps: namespaces and sysctls for tests and the demo
#  - curl, python3: clients and servers in the demo
#  - prometheus: promtool, which checks the metrics endpoint's output
#  - bird2, libbpf-dev: route announcements and the XDP program in the
#    multi-gateway topology
#  - hping3: SYN and UDP floods in the namespace flood test (e2e-flood.sh)
#  - chromium, chromium-driver: the web console's tests drive headless
#    Chromium over WebDriver (forwarder/tests/console/)
#  - tshark: reads the pcapng files of one-flow captures (forwarder/tests/capture.rs)
DNLB_APT_PACKAGES=(
    build-essential pkg-config clang libclang-dev
    libdpdk-dev dpdk dpdk-dev
    iproute2 procps iputils-ping ethtool curl python3 ca-certificates
    prometheus bird2 libbpf-dev faketime hping3 chromium chromium-driver tshark
)

dnlb_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

dnlb_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

dnlb_ensure_apt() {
    local missing=() p
    for p in "${DNLB_APT_PACKAGES[@]}" "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        dnlb_log "installing Debian packages: ${missing[*]}"
        dnlb_as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive dnlb_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

dnlb_ensure_rust() {
    if [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        dnlb_log "cargo not found: installing Debian's Rust toolchain"
        DNLB_APT_PACKAGES+=(cargo rustc)
        dnlb_ensure_apt
    fi
    if command -v rustup >/dev/null 2>&1; then
        local c
        for c in rustfmt clippy; do
            if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
                dnlb_log "adding Rust component $c"
                rustup component add "$c" >/dev/null 2>&1 || dnlb_log "could not add $c; its checks will be skipped"
            fi
        done
    fi
}

dnlb_check_dpdk() {
    if ! pkg-config --atleast-version=22.11 libdpdk; then
        echo "DPDK >= 22.11 not found by pkg-config (libdpdk-dev)." >&2
        return 1
    fi
    command -v dpdk-testpmd >/dev/null 2>&1 || { echo "dpdk-testpmd missing (package dpdk-dev)" >&2; return 1; }
}

dnlb_ensure_all() {
    dnlb_ensure_apt "$@"
    dnlb_ensure_rust
    dnlb_check_dpdk
}

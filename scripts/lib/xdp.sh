# shellcheck shell=bash
# Build xdp/vip_redirect.c for DPDK's net_af_xdp PMD (devarg xdp_prog=FILE).
# Sourced; needs clang and libbpf-dev (bpf/bpf_helpers.h).
#
#   xdp_build OUT.o "203.0.113.10 203.0.113.11 2001:db8:100::10"
#       compiles the program with those VIPs (IPv4 and/or IPv6) compiled in.
#   xdp_build OUT.o all
#       compiles a program that redirects every frame (DPDK's default behaviour).
# Prints nothing on success; returns clang's status.

XDP_SRC=${XDP_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/xdp/vip_redirect.c}

# IPv6 text address -> "VIP6(0x........,0x........,0x........,0x........)"
_xdp_vip6() {
    python3 - "$1" <<'PY'
import ipaddress, sys
b = ipaddress.IPv6Address(sys.argv[1]).packed
print("VIP6(%s)" % ",".join("0x%08x" % int.from_bytes(b[i:i+4], "big") for i in range(0, 16, 4)))
PY
}

xdp_build() {
    local out=$1 vips=${2:-} v4="" v6="" v
    local -a defs=()
    if [ "$vips" = all ]; then
        defs+=(-DVIP_REDIRECT_ALL)
    else
        for v in $vips; do
            case $v in
                *:*) v6+="$(_xdp_vip6 "$v") " ;;
                *.*.*.*) v4+="VIP4(${v//./,}) " ;;
                *) echo "xdp_build: not an address: $v" >&2; return 1 ;;
            esac
        done
        [ -n "$v4" ] && defs+=("-DVIP4_LIST=$v4")
        [ -n "$v6" ] && defs+=("-DVIP6_LIST=$v6")
    fi
    local inc=()
    [ -d /usr/include/x86_64-linux-gnu ] && inc=(-I/usr/include/x86_64-linux-gnu)
    clang -O2 -g -target bpf "${inc[@]}" "${defs[@]}" -c "$XDP_SRC" -o "$out"
}

# Helpers of the DPDK benchmark scripts (bench-forwarder.sh, bench-flood.sh).

# Drops zero samples and the first non-zero one (start-up), one number a line.
steady() { awk '$1 > 0' | tail -n +2; }

# The median of the numbers on stdin, one a line (0 when there are none).
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {v=0} else if (NR%2) {v=a[(NR+1)/2]} else {v=(a[NR/2]+a[NR/2+1])/2}; printf "%.0f\n", v}'; }

# The load-balancing part of a benchmark config (TOML on stdout): [encap],
# [flows] for CAPACITY flows, one listener on the VIP (192.0.2.10, or
# 2001:db8::10 for IP 6) port 80 for PROTO, and 8 backends behind TUNNEL
# (vxlan, ipip, gue, gre) in family BACKEND_IP (10.1.0.1-8 or 2001:db8:1::1-8).
#   bench_listener_config PROTO [TUNNEL vxlan] [IP 4] [BACKEND_IP 4] [CAPACITY 65536]
#       [UDP_TIMEOUT_SECS]   (empty: the default)
#       [ACL_PREFIXES]       (a number N: the listener gets an access list
#                            allowing the clients' 198.18.0.0/15 and
#                            2001:db8:c1::/48 and denying N other /24s, as
#                            a cloud security group would; empty: none)
bench_listener_config() {
    local proto=$1 tunnel=${2:-vxlan} ip=${3:-4} backend_ip=${4:-4} capacity=${5:-65536} udp_timeout=${6:-}
    local acl=${7:-}
    local vip=192.0.2.10 b
    [ "$ip" = 6 ] && vip=2001:db8::10
    echo '[encap]'
    echo 'source_v4 = "192.0.2.254"'
    echo 'source_v6 = "2001:db8::fe"'
    echo 'next_hop_mac = "02:00:00:00:00:fe"'
    echo '[flows]'
    echo "capacity_per_worker = $capacity"
    if [ -n "$udp_timeout" ]; then echo "udp_idle_timeout_secs = $udp_timeout"; fi
    echo '[[listener]]'
    echo 'name = "bench"'
    echo "vips = [\"$vip\"]"
    echo "protocol = \"$proto\""
    echo 'port = 80'
    echo 'target_group = "bench"'
    if [ -n "$acl" ]; then
        echo '[listener.acl]'
        echo 'allow = ["198.18.0.0/15", "2001:db8:c1::/48"]'
        # N /24s of 100.64.0.0/10 (shared address space), never a client.
        awk -v n="$acl" 'BEGIN {
            printf "deny = ["
            for (i = 0; i < n; i++) printf "%s\"100.%d.%d.0/24\"", (i ? ", " : ""), 64 + int(i / 256) % 64, i % 256
            print "]"
        }'
    fi
    echo '[[target_group]]'
    echo 'name = "bench"'
    for b in 1 2 3 4 5 6 7 8; do
        echo '[[target_group.backend]]'
        if [ "$backend_ip" = 6 ]; then echo "address = \"2001:db8:1::$b\""; else echo "address = \"10.1.0.$b\""; fi
        echo "tunnel = \"$tunnel\""
        case "$tunnel" in
        vxlan) echo 'vni = 100'; echo "inner_mac = \"02:00:0a:01:00:0$b\"" ;;
        gre) echo "gre_key = $b" ;;
        esac
    done
}

# A [sync] section (TOML on stdout) whose one peer, on loopback, never
# answers: flow-exception sync configured as a fleet runs it, with no peer
# traffic. Its key file is DIR/sync.key (made once).
#   bench_sync_config DIR
bench_sync_config() {
    [ -s "$1/sync.key" ] || head -c 32 /dev/urandom > "$1/sync.key"
    echo '[sync]'
    echo "listen = \"127.0.0.1:$(( 20000 + $$ % 20000 ))\""
    echo "peers = [\"127.0.0.1:$(( 20001 + $$ % 20000 ))\"]"
    echo "key_file = \"$1/sync.key\""
    echo 'fetch_timeout_ms = 500'
}

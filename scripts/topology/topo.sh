#!/usr/bin/env bash
# Command-line access to scripts/lib/topology.sh, for tests and by hand:
#
#   scripts/topology/topo.sh up                    # topo_up
#   scripts/topology/topo.sh gw_start 1 af_packet  # topo_gw_start 1 af_packet
#   scripts/topology/topo.sh gw_announce 1 "203.0.113.10"
#   scripts/topology/topo.sh router_nexthops 203.0.113.10
#   scripts/topology/topo.sh exec client curl -s http://203.0.113.10/
#   scripts/topology/topo.sh down
#
# The first argument names a topo_* function (without the prefix); the rest
# are its arguments. The same environment (TOPO, TOPO_GATEWAYS, …) applies.
set -euo pipefail
# shellcheck source=scripts/lib/topology.sh
. "$(dirname "$0")/../lib/topology.sh"
[ $# -ge 1 ] || { sed -n '2,12p' "$0"; exit 2; }
fn=topo_$1; shift
declare -F "$fn" >/dev/null || { echo "no such function: $fn" >&2; exit 2; }
"$fn" "$@"

# Helpers of the DPDK benchmark scripts (bench-forwarder.sh, bench-flood.sh).

# Drops zero samples and the first non-zero one (start-up), one number a line.
steady() { awk '$1 > 0' | tail -n +2; }

# The median of the numbers on stdin, one a line (0 when there are none).
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {v=0} else if (NR%2) {v=a[(NR+1)/2]} else {v=(a[NR/2]+a[NR/2+1])/2}; printf "%.0f\n", v}'; }

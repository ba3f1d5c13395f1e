#!/usr/bin/env bash
# Print each core's idle share once a second (from /proc/stat), with the time:
# run it beside a benchmark to see whether the cores are idle together or one
# at a time (threads queued on one core while the other idles).
#
#   scripts/percore-idle.sh > /tmp/idle.txt & ... ; kill %1
set -euo pipefail
prev=$(grep '^cpu[0-9]' /proc/stat)
while sleep 1; do
	cur=$(grep '^cpu[0-9]' /proc/stat)
	paste <(echo "$prev") <(echo "$cur") | awk -v ts="$(date +%T)" '
		BEGIN { printf "%s", ts }
		{ n = NF / 2; t0 = 0; t1 = 0
		  for (i = 2; i <= n; i++) { t0 += $i; t1 += $(i + n) }
		  idle = ($(5 + n) + $(6 + n)) - ($5 + $6)
		  printf "  %s %3.0f%%", $1, (t1 > t0 ? 100 * idle / (t1 - t0) : 0) }
		END { print "" }'
	prev=$cur
done

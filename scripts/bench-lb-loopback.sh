#!/usr/bin/env bash
# Compare the vmss load balancer (userspace TCP proxy, round-robin) with
# HAProxy (Debian haproxy, TCP mode, roundrobin) and with a direct
# connection to one backend, on loopback addresses only.
#
# Three webapp backends (one process each, as in instances) listen on
# 127.77.1.{1,2,3}:PORT; our LB on 127.77.0.10:PORT; HAProxy on
# 127.77.0.11:PORT. wrk drives each target with keep-alive and without
# (-H 'Connection: close'), REPEAT times, interleaved; the median run of
# each cell is reported (req/s, p50, p99).
#
# Usage: scripts/bench-lb-loopback.sh        (from the repository root)
# Env:   DURATION=10s CONNS=64 THREADS=1 REPEAT=3 PORT=18080
#        PIN=1   pin wrk to CPU 0 and LBs/backends to the other CPUs
#        PROFILE=/tmp/lb.pprof   CPU profile of our LB over the whole run
#        MODES="keepalive close"  which wrk modes to run
# Needs: go, wrk, haproxy. The machine's core count is printed: on a small
# machine the load generator, proxy and backends share the CPUs, so the
# figures compare proxies under equal contention, not their peak.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
REPEAT=${REPEAT:-3}
PORT=${PORT:-18080}
PIN=${PIN:-0}
PROFILE=${PROFILE:-}
MODES=${MODES:-keepalive close}

for tool in go wrk haproxy; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install wrk haproxy)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/vmss-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

ncpu=$(nproc)
wrk_pin=() srv_pin=()
if [[ $PIN == 1 && $ncpu -ge 2 ]]; then
	wrk_pin=(taskset -c 0)
	srv_pin=(taskset -c "1-$((ncpu - 1))")
fi

go build -o "$work/loopbench" ./lb/internal/loopbench

backends=(127.77.1.1 127.77.1.2 127.77.1.3)
for i in "${!backends[@]}"; do
	"${srv_pin[@]}" "$work/loopbench" webapp -addr "${backends[$i]}:$PORT" -name "web00000$i" -id "$i" &
	pids+=($!)
done

cat >"$work/haproxy.cfg" <<EOF
global
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 4m
    timeout server 4m
frontend fe
    bind 127.77.0.11:$PORT
    default_backend be
backend be
    balance roundrobin
    server b0 ${backends[0]}:$PORT
    server b1 ${backends[1]}:$PORT
    server b2 ${backends[2]}:$PORT
EOF
"${srv_pin[@]}" haproxy -q -f "$work/haproxy.cfg" &
pids+=($!)

wait_http() {
	for target in "$@"; do
		for _ in $(seq 100); do
			curl -fsS -o /dev/null "http://$target/" 2>/dev/null && break
			sleep 0.05
		done
		curl -fsS -o /dev/null "http://$target/" || { echo "bench: $target does not answer" >&2; exit 1; }
	done
}
# Backends first, so both balancers see all three healthy from the start.
wait_http "${backends[@]/%/:$PORT}"

prof=()
[[ -n $PROFILE ]] && prof=(-cpuprofile "$PROFILE")
"${srv_pin[@]}" "$work/loopbench" lb -frontend "127.77.0.10:$PORT" -port "$PORT" \
	-backends "$(IFS=,; echo "${backends[*]}")" "${prof[@]}" >"$work/lb.log" &
lbpid=$!
pids+=($lbpid)

wait_http "127.77.0.10:$PORT" "127.77.0.11:$PORT"
sleep 1.5 # our LB's first probes

declare -A targets=([direct]="${backends[0]}:$PORT" [vmss-lb]="127.77.0.10:$PORT" [haproxy]="127.77.0.11:$PORT")
order=(direct vmss-lb haproxy)

# to_ms converts wrk's "812.00us" / "1.20ms" / "1.01s" to milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else printf "%s", v }'
}

run() { # mode name -> "rps p50 p99 errors"
	local mode=$1 name=$2 hdr=()
	[[ $mode == close ]] && hdr=(-H 'Connection: close')
	local out
	out=$("${wrk_pin[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${hdr[@]}" "http://${targets[$name]}/")
	local rps p50 p99 errs
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	errs=$(awk '/Socket errors|Non-2xx/ {print}' <<<"$out" | tr '\n' ' ')
	echo "$rps $p50 $p99 ${errs:-none}"
}

echo "# $(date -u +%FT%TZ) cores=$ncpu wrk -t$THREADS -c$CONNS -d$DURATION repeat=$REPEAT pin=$PIN"
echo "# $(haproxy -v | head -1)"
declare -A results
for mode in $MODES; do
	for rep in $(seq "$REPEAT"); do
		for name in "${order[@]}"; do
			results["$mode $name $rep"]=$(run "$mode" "$name")
			echo "  run $mode $name #$rep: ${results["$mode $name $rep"]}" >&2
		done
	done
done

median() { # mode name -> the run with the median req/s
	local mode=$1 name=$2
	for rep in $(seq "$REPEAT"); do echo "${results["$mode $name $rep"]}"; done | sort -n -k1,1 | sed -n "$(((REPEAT + 1) / 2))p"
}

printf '\n%-10s %-8s %12s %9s %9s  %s\n' mode target req/s p50_ms p99_ms errors
for mode in $MODES; do
	for name in "${order[@]}"; do
		read -r rps p50 p99 errs <<<"$(median "$mode" "$name")"
		printf '%-10s %-8s %12s %9s %9s  %s\n' "$mode" "$name" "$rps" "$p50" "$p99" "$errs"
		eval "rps_${mode}_${name//-/_}=$rps p99_${mode}_${name//-/_}=$p99"
	done
done
echo
for mode in $MODES; do
	ours="rps_${mode}_vmss_lb" theirs="rps_${mode}_haproxy" direct="rps_${mode}_direct"
	p99o="p99_${mode}_vmss_lb" p99h="p99_${mode}_haproxy"
	awk -v m="$mode" -v o="${!ours}" -v h="${!theirs}" -v d="${!direct}" -v po="${!p99o}" -v ph="${!p99h}" 'BEGIN {
		printf "%-10s vmss-lb/haproxy req/s = %.2fx   vmss-lb/direct = %.2fx   p99 vmss-lb %.2f ms vs haproxy %.2f ms\n", m, o / h, o / d, po, ph }'
done

if [[ -n $PROFILE ]]; then
	kill -INT "$lbpid"
	wait "$lbpid" || true
	echo "CPU profile of the vmss LB: $PROFILE (go tool pprof -top $work/loopbench $PROFILE)"
fi

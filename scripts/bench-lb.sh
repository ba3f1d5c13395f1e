#!/usr/bin/env bash
# Benchmark the emulator's load balancer end to end against HAProxy, with the
# same three backends: instances of a scale set running the built-in web app
# (vmss webapp), on this machine, in one run.
#
# Targets (wrk with keep-alive, and without: -H 'Connection: close'):
#   vmss-public   our public frontend (127.x host address, rule 80 → 80):
#                 wrk in the host namespace → proxy → socket in the VNET → backend
#   vmss-internal our internal LB (frontend on a private IP of the subnet):
#                 wrk in the VNET namespace → proxy listening there → backend
#   haproxy       Debian HAProxy, TCP mode, roundrobin, HTTP checks like our probe,
#                 run INSIDE the VNET namespace (backends are reachable only
#                 there) on 127.0.0.1:$PORT of that namespace; wrk in the VNET
#                 namespace too
#   direct        wrk in the VNET namespace straight to one backend (10.0.0.4:80)
#
# Fairness: HAProxy and vmss-internal are the like-for-like pair: client and
# frontend in the same namespace over a local address, the same bridge and
# veths to the same three backend processes, HAProxy with as many threads as
# our proxy has CPUs (both default to every core). vmss-public adds nothing but
# the host-namespace frontend the user curls. Runs are interleaved, REPEAT
# times, and the median run (by req/s) of each cell is reported, so drifting
# background load hits every target alike. On a small machine wrk, the proxy and
# the backends share the CPUs: the figures compare proxies under equal
# contention, not their peak.
#
# proxy_cpu_us is the CPU time (user + system) the proxy process spent per
# request during the run: the daemon for vmss-*, HAProxy for haproxy. It is
# steadier than req/s when other work shares the machine. ctxsw/req is the
# context switches of the proxy's threads per request (from
# /proc/PID/task/*/status): how often it went to sleep and was woken.
# machine_us is the CPU time of the whole machine (every core, from
# /proc/stat, busy = not idle or iowait) per request, and idle% the share of
# the cores' time that was idle during the run: where a proxy spends less
# CPU itself but the machine spends more, the difference is in the kernel
# work and the other processes (wrk, backends) it causes; where the cores
# idle, the rate was bound by waiting, not by the CPUs. backend_us is the
# CPU time of the three backends' processes per request. proxy_wait_us and
# backend_wait_us are the time their threads were runnable but waiting for a
# core (run_delay, /proc/PID/task/*/schedstat), per request.
#
# Then failover: the web app of one instance is killed; the time until the load
# balancer marks it down is measured against interval × threshold of the probe
# (the instance is restarted between rounds).
#
# The script starts its own daemon with its own prefix, state, runtime dir and
# 127.x range, and removes everything at the end (also on Ctrl-C).
#
#   sudo scripts/bench-lb.sh
# Env: DURATION=10s CONNS=64 THREADS=1 REPEAT=3 PORT=18080 MODES="keepalive close"
#      PROBE_SCALE=0.2 (probe interval 5 s × 0.2 = 1 s, threshold 2) ROUNDS=3 (failover)
#      PIN=1 wrk on CPU 0, daemon, backends and HAProxy on the others
#      PROFILE=/tmp/lb.pprof  CPU profile of the daemon (vmss-* runs included)
#      PERF=DIR   record every timed run with perf (all CPUs, call graphs) into
#                 DIR/MODE-TARGET-ROUND.data, for the kernel's and the other
#                 processes' share (perf report -i FILE --sort comm,dso); perf's
#                 sampling slows every target a little and alike;
#                 PERF_ARGS replaces its options (default "-F 999 -a -g"), e.g.
#                 PERF_ARGS="-a -e sched:sched_switch -e sched:sched_wakeup"
#                 for perf sched timehist
#      SYSCALLS=1 after the timed runs, count the proxy's system calls per request
#                 (strace -c on every thread of the daemon and of HAProxy during a
#                 SYSCALLS_DURATION=3s wrk run per mode, vmss-internal and haproxy);
#                 strace slows the proxy, so these runs are not timed
#      ONLY=1     skip the failover rounds
#      DNSLOAD=1  after the timed runs, the rest of the daemon while the loops
#                 are busy: the latency of the VNET's DNS (in the same daemon),
#                 dnsperf at DNS_RATE=500 queries/s for DURATION, alone and
#                 during a keep-alive wrk run against vmss-internal (needs
#                 dnsperf)
#      HAPROXY_THREADS=1  HAProxy's nbthread (default: one thread per core)
#      AA=0       leave out the control: by default a second, identical HAProxy
#                 (haproxy-b, port PORT+1) runs as one more target, and its ratio
#                 to haproxy shows how far two equal proxies differ on this
#                 machine (the resolution of every other ratio in the run)
# Needs: root, go, wrk, haproxy, jq, curl, nsenter (and strace for SYSCALLS=1).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench-lb: needs root: sudo $0" >&2; exit 1; }
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
REPEAT=${REPEAT:-3}
PORT=${PORT:-18080}
MODES=${MODES:-keepalive close}
PROBE_SCALE=${PROBE_SCALE:-0.2}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-0}
PROFILE=${PROFILE:-}
PERF=${PERF:-}
read -ra perf_args <<<"${PERF_ARGS:--F 999 -a -g}"
SYSCALLS=${SYSCALLS:-0}
SYSCALLS_DURATION=${SYSCALLS_DURATION:-3s}
ONLY=${ONLY:-0}
AA=${AA:-1}
DNSLOAD=${DNSLOAD:-0}
DNS_RATE=${DNS_RATE:-500}

for tool in go wrk haproxy jq curl nsenter; do
	command -v "$tool" >/dev/null || { echo "bench-lb: $tool not found (apt-get install wrk haproxy jq curl util-linux)" >&2; exit 1; }
done
if [ -n "$PERF" ]; then
	command -v perf >/dev/null || { echo "bench-lb: PERF=$PERF needs perf (apt-get install linux-perf)" >&2; exit 1; }
	mkdir -p "$PERF"
fi

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
prefix="vmsslb${id}-"
rundir="/run/vmsslb${id}"
range="127.$((100 + 0x${id:0:2} % 100)).$((0x${id:2:2})).0/24"
work=$(mktemp -d /tmp/vmss-bench-lb.XXXXXX)
sock="$work/vmss.sock"
bin="$work/vmss"
daemon="" haproxy_pid="" haproxy_b_pid="" wrk_bg=""

finish() {
	[ -n "$wrk_bg" ] && kill "$wrk_bg" 2>/dev/null
	[ -n "$haproxy_pid" ] && kill "$haproxy_pid" 2>/dev/null && wait "$haproxy_pid" 2>/dev/null || true
	[ -n "$haproxy_b_pid" ] && kill "$haproxy_b_pid" 2>/dev/null && wait "$haproxy_b_pid" 2>/dev/null || true
	if [ -n "$daemon" ]; then
		kill -TERM "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	"$bin" cleanup --force --prefix "$prefix" --state-dir "$work/state" --runtime-dir "$rundir" --socket "$sock" >/dev/null 2>&1 ||
		echo "bench-lb: cleanup failed; run: $bin cleanup --force --prefix $prefix --state-dir $work/state --runtime-dir $rundir" >&2
	[ -n "$PROFILE" ] && [ -f "$PROFILE" ] && echo "CPU profile of the daemon: $PROFILE (go tool pprof -top $PROFILE.bin $PROFILE)"
	rm -rf "$work"
}
trap finish EXIT
trap 'exit 130' INT TERM

ncpu=$(nproc)
wrk_pin=() srv_pin=()
if [[ $PIN == 1 && $ncpu -ge 2 ]]; then
	wrk_pin=(taskset -c 0)
	srv_pin=(taskset -c "1-$((ncpu - 1))")
fi

go build -o "$bin" ./cmd/vmss
[ -n "$PROFILE" ] && cp "$bin" "$PROFILE.bin"
vmss() { "$bin" --socket "$sock" "$@"; }
api() { # method path [body]
	local args=(-fsS --unix-socket "$sock" -X "$1" -H 'Content-Type: application/json')
	[ $# -ge 3 ] && args+=(--data-binary "$3")
	curl "${args[@]}" "http://vmss$2?api-version=2024-03-01"
}

env ${PROFILE:+VMSS_CPUPROFILE=$PROFILE} "${srv_pin[@]}" "$bin" serve --socket "$sock" --state-dir "$work/state" --runtime-dir "$rundir" \
	--prefix "$prefix" --public-ip-range "$range" --metrics-addr off --probe-interval-scale "$PROBE_SCALE" --drain-period 2s \
	>"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { echo "bench-lb: the daemon did not start:" >&2; cat "$work/daemon.log" >&2; exit 1; }

ssh-keygen -q -t ed25519 -N '' -f "$work/key" >/dev/null
vmss create -n web --instance-count 3 --ssh-key-values "$work/key.pub" --lb-rule-port 80 \
	--custom-script 'exec vmss webapp --addr :80' --disable-overprovision -o none
sub=/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers
pub=$(vmss network public-ip show -n webLBPublicIP -o json | jq -r '.ipAddress // .properties.ipAddress')

# Internal load balancer on the same subnet and the same instances.
vmss network lb create -n ilb --vnet-name webVNET --subnet webSubnet --backend-pool-name ipool -o none
vmss network lb probe create --lb-name ilb -n httpProbe --protocol Http --port 80 --path / --interval 5 --probe-threshold 2 -o none
vmss network lb rule create --lb-name ilb -n rule80 --frontend-port 80 --backend-port 80 --probe-name httpProbe -o none
ilb=$(api GET "$sub/Microsoft.Network/loadBalancers/ilb" | jq -r '.properties.frontendIPConfigurations[0].properties.privateIPAddress')
api GET "$sub/Microsoft.Compute/virtualMachineScaleSets/web" |
	jq --arg pool "$sub/Microsoft.Network/loadBalancers/ilb/backendAddressPools/ipool" \
		'.properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations[0].properties.ipConfigurations[0].properties.loadBalancerBackendAddressPools += [{id: $pool}]' \
		>"$work/ss.json"
api PUT "$sub/Microsoft.Compute/virtualMachineScaleSets/web" "@$work/ss.json" >/dev/null

up_count() { # lb -> backends Up on its first rule
	api GET "$sub/Microsoft.Network/loadBalancers/$1/health" | jq '[.rules[0].backends[]? | select(.state == "Up")] | length'
}
wait_up() { # lb count
	for _ in $(seq 600); do
		[ "$(up_count "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	echo "bench-lb: $1 does not have $2 backends up" >&2
	vmss lb show -n "$1" -o table >&2
	exit 1
}
wait_up webLB 3
wait_up ilb 3

vnet=$(ip netns list | awk '{print $1}' | grep "^${prefix%-}vnet-" | head -1)
mapfile -t backends < <(vmss list-instances -n web -o json | jq -r 'sort_by(.instanceId | tonumber) | .[].privateIpAddress')
mapfile -t backend_pids < <(vmss list-instances -n web -o json | jq -r '.[].netns' | xargs -n1 ip netns pids)
innet() { nsenter --net="/run/netns/$vnet" "$@"; }

cat >"$work/haproxy.cfg" <<EOF
global
    maxconn 9000
${HAPROXY_THREADS:+    nbthread $HAPROXY_THREADS}
defaults
    mode tcp
    timeout connect 5s
    timeout client 4m
    timeout server 4m
frontend fe
    bind 127.0.0.1:$PORT
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /
    default-server inter 1s fall 2 rise 2
    server b0 ${backends[0]}:80 check
    server b1 ${backends[1]}:80 check
    server b2 ${backends[2]}:80 check
EOF
start_haproxy() { # config port: starts HAProxy in the VNET namespace ($! is its pid), waits until it answers
	"${srv_pin[@]}" nsenter --net="/run/netns/$vnet" haproxy -q -f "$1" &
	for _ in $(seq 100); do innet curl -fsS -o /dev/null "http://127.0.0.1:$2/" 2>/dev/null && break; sleep 0.05; done
}
start_haproxy "$work/haproxy.cfg" "$PORT"
haproxy_pid=$!
if [[ $AA == 1 ]]; then
	sed "s/bind 127.0.0.1:$PORT\$/bind 127.0.0.1:$((PORT + 1))/" "$work/haproxy.cfg" >"$work/haproxy-b.cfg"
	start_haproxy "$work/haproxy-b.cfg" "$((PORT + 1))"
	haproxy_b_pid=$!
fi
sleep 2.5 # HAProxy's checks: rise 2

# Every target answers, and round-robin is visible.
for t in "$pub:80" ; do curl -fsS "http://$t/" >/dev/null; done
for t in "$ilb:80" "127.0.0.1:$PORT" "${backends[0]}:80"; do innet curl -fsS "http://$t/" >/dev/null; done

declare -A url=([vmss-public]="http://$pub/" [vmss-internal]="http://$ilb/" [haproxy]="http://127.0.0.1:$PORT/" [haproxy-b]="http://127.0.0.1:$((PORT + 1))/" [direct]="http://${backends[0]}/")
declare -A where=([vmss-public]=host [vmss-internal]=vnet [haproxy]=vnet [haproxy-b]=vnet [direct]=vnet)
order=(direct vmss-public vmss-internal haproxy)
proxies=(vmss-public vmss-internal haproxy) # run in a rotated order each round
if [[ $AA == 1 ]]; then
	innet curl -fsS "http://127.0.0.1:$((PORT + 1))/" >/dev/null
	order+=(haproxy-b) proxies+=(haproxy-b)
fi

to_ms() { # wrk's 812.00us / 1.20ms / 1.01s -> ms
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else printf "%s", v }'
}

hz=$(getconf CLK_TCK)
cpu_ticks() { # pid -> user+system clock ticks so far
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
ctx_switches() { # pid -> context switches of all its threads so far
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'
}

backend_ticks() { # -> user+system clock ticks of the backends' processes so far
	local p t=0
	for p in "${backend_pids[@]}"; do [ -r "/proc/$p/stat" ] && t=$((t + $(cpu_ticks "$p"))); done
	echo "$t"
}

run_delay() { # pids -> nanoseconds their threads waited, runnable, for a core
	local p
	for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done | awk '{ n += $2 } END { printf "%.0f\n", n }'
}

machine_ticks() { # -> "busy total" clock ticks of all cores so far
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

run() { # mode target -> "rps p50 p99 cpu_us_per_request ctxsw_per_request machine_us idle% backend_us proxy_wait_us backend_wait_us errors"
	local mode=$1 name=$2 hdr=() ns=() proxy=""
	[[ $mode == close ]] && hdr=(-H 'Connection: close')
	[[ ${where[$name]} == vnet ]] && ns=(nsenter --net="/run/netns/$vnet")
	case $name in vmss-*) proxy=$daemon ;; haproxy) proxy=$haproxy_pid ;; haproxy-b) proxy=$haproxy_b_pid ;; esac
	local out rps p50 p99 errs reqs c0=0 c1=0 cpu=- s0=0 s1=0 csw=- rec=()
	[ -n "$PERF" ] && rec=(perf record -q "${perf_args[@]}" -o "$PERF/$mode-$name-${3:-0}.data" --)
	local m0 m1 b0 b1 mach idle be w0=0 w1=0 wb0 wb1 pw=- bw
	[ -n "$proxy" ] && c0=$(cpu_ticks "$proxy") && s0=$(ctx_switches "$proxy") && w0=$(run_delay "$proxy")
	m0=$(machine_ticks) b0=$(backend_ticks) wb0=$(run_delay "${backend_pids[@]}")
	out=$("${rec[@]}" "${wrk_pin[@]}" "${ns[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${hdr[@]}" "${url[$name]}")
	m1=$(machine_ticks) b1=$(backend_ticks) wb1=$(run_delay "${backend_pids[@]}")
	[ -n "$proxy" ] && w1=$(run_delay "$proxy")
	[ -n "$proxy" ] && c1=$(cpu_ticks "$proxy") && s1=$(ctx_switches "$proxy")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	[ -n "$proxy" ] && cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
	errs=$(awk '/Socket errors|Non-2xx/ {$1=$1; print}' <<<"$out" | tr '\n' ' ')
	[ -n "$proxy" ] && csw=$(awk -v s=$((s1 - s0)) -v n="$reqs" 'BEGIN { printf "%.2f", s / n }')
	read -r mach idle < <(awk -v a="$m0" -v b="$m1" -v hz="$hz" -v n="$reqs" 'BEGIN {
		split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; total = y[2] - x[2]
		printf "%.1f %.1f\n", busy / hz * 1e6 / n, (total > 0 ? 100 * (total - busy) / total : 0) }')
	be=$(awk -v t=$((b1 - b0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
	[ -n "$proxy" ] && pw=$(awk -v t=$((w1 - w0)) -v n="$reqs" 'BEGIN { printf "%.1f", t / 1e3 / n }')
	bw=$(awk -v t=$((wb1 - wb0)) -v n="$reqs" 'BEGIN { printf "%.1f", t / 1e3 / n }')
	echo "$rps $p50 $p99 $cpu $csw $mach $idle $be $pw $bw ${errs:-none}"
}

echo "# $(date -u +%FT%TZ) cores=$ncpu load=$(cut -d' ' -f1-3 /proc/loadavg) wrk -t$THREADS -c$CONNS -d$DURATION repeat=$REPEAT pin=$PIN"
echo "# $(haproxy -v | head -1 | cut -d' ' -f1-3), backends ${backends[*]} (vmss webapp), public $pub, internal $ilb, VNET namespace $vnet"
declare -A results
for mode in $MODES; do
	for rep in $(seq "$REPEAT"); do
		# direct first, then the proxies, each round starting one further
		# along, so no proxy always runs right after another.
		k=$(((rep - 1) % ${#proxies[@]}))
		for name in direct "${proxies[@]:k}" "${proxies[@]:0:k}"; do
			results["$mode $name $rep"]=$(run "$mode" "$name" "$rep")
			echo "  run $mode $name #$rep: ${results["$mode $name $rep"]}" >&2
		done
	done
done

median() { # mode target -> the run with the median req/s
	for rep in $(seq "$REPEAT"); do echo "${results["$1 $2 $rep"]}"; done | sort -n -k1,1 | sed -n "$(((REPEAT + 1) / 2))p"
}

echo "# load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-10s %-14s %12s %9s %9s %11s %9s %10s %6s %10s %13s %15s  %s\n' mode target req/s p50_ms p99_ms proxy_cpu_us ctxsw/req machine_us idle% backend_us proxy_wait_us backend_wait_us errors
declare -A rps p99 cpu
for mode in $MODES; do
	for name in "${order[@]}"; do
		read -r r p5 p9 c sw mu idl be pw bw errs <<<"$(median "$mode" "$name")"
		printf '%-10s %-14s %12s %9s %9s %11s %9s %10s %6s %10s %13s %15s  %s\n' "$mode" "$name" "$r" "$p5" "$p9" "$c" "$sw" "$mu" "$idl" "$be" "$pw" "$bw" "$errs"
		rps["$mode $name"]=$r p99["$mode $name"]=$p9 cpu["$mode $name"]=$c
	done
done
echo
# Paired ratios: each run against the HAProxy run of the same round (next
# to it in time), so a slow stretch of the machine hits both sides.
# The p99 ratio is paired the same way: a single run's p99 swings with the
# machine (keep-alive p99 of one run ranges 15–150 ms for every target).
paired() { # mode target -> "median min max rounds_at_or_above_1 cpu_median p99_median"
	local ratios med
	ratios=$(for rep in $(seq "$REPEAT"); do
		read -r ro _ po co _ <<<"${results["$1 $2 $rep"]}"
		read -r rh _ ph ch _ <<<"${results["$1 haproxy $rep"]}"
		awk -v a="$ro" -v b="$rh" -v c="$co" -v d="$ch" -v p="$po" -v q="$ph" 'BEGIN { printf "%.3f %.3f %.3f\n", a / b, c / d, p / q }'
	done)
	med='{ v[NR] = $1 } END { n = NR; printf "%.3f %.3f %.3f", (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2, v[1], v[n] }'
	read -r m lo hi <<<"$(cut -d' ' -f1 <<<"$ratios" | sort -n | awk "$med")"
	read -r mc _ <<<"$(cut -d' ' -f2 <<<"$ratios" | sort -n | awk "$med")"
	read -r mp _ <<<"$(cut -d' ' -f3 <<<"$ratios" | sort -n | awk "$med")"
	echo "$m $lo $hi $(awk '$1 >= 1 { n++ } END { print n + 0 }' <<<"$ratios") $mc $mp"
}
for mode in $MODES; do
	for name in vmss-internal vmss-public ${haproxy_b_pid:+haproxy-b}; do
		read -r m lo hi up mc mp <<<"$(paired "$mode" "$name")"
		printf '%-10s %-14s paired req/s vs haproxy: median %.2fx, range %.2f–%.2fx, %d of %d rounds ≥ 1.0x; CPU per request median %.2fx; p99 median %.2fx\n' \
			"$mode" "$name" "$m" "$lo" "$hi" "$up" "$REPEAT" "$mc" "$mp"
	done
done
echo
for mode in $MODES; do
	for ours in vmss-internal vmss-public; do
		awk -v m="$mode" -v n="$ours" -v o="${rps["$mode $ours"]}" -v h="${rps["$mode haproxy"]}" -v d="${rps["$mode direct"]}" \
			-v po="${p99["$mode $ours"]}" -v ph="${p99["$mode haproxy"]}" -v co="${cpu["$mode $ours"]}" -v ch="${cpu["$mode haproxy"]}" 'BEGIN {
			printf "%-10s %-14s req/s %.2fx haproxy, %.2fx direct; p99 %.2f ms vs haproxy %.2f ms (%.2fx); CPU per request %.1f µs vs haproxy %.1f µs\n", m, n, o / h, o / d, po, ph, po / ph, co, ch }'
	done
done

# System calls per request: strace -c on every thread of the proxy during a
# short wrk run (not timed: strace slows every call down).
syscalls() { # mode target
	local mode=$1 name=$2 hdr=() proxy tids=() out reqs
	[[ $mode == close ]] && hdr=(-H 'Connection: close')
	case $name in vmss-*) proxy=$daemon ;; haproxy) proxy=$haproxy_pid ;; haproxy-b) proxy=$haproxy_b_pid ;; esac
	for t in /proc/"$proxy"/task/*; do tids+=(-p "${t##*/}"); done
	strace -f -c -o "$work/strace.out" "${tids[@]}" 2>/dev/null &
	local st=$!
	sleep 1
	out=$(nsenter --net="/run/netns/$vnet" wrk -t"$THREADS" -c"$CONNS" -d"$SYSCALLS_DURATION" "${hdr[@]}" "${url[$name]}")
	kill -INT "$st" && wait "$st" 2>/dev/null || true
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	awk -v n="$reqs" -v m="$mode" -v t="$name" '
		$NF == "total" { total = $4 }
		$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { calls[$NF] = $4 }
		END {
			printf "%-10s %-14s syscalls per request %.1f:", m, t, total / n
			for (c in calls) if (calls[c] / n >= 0.05) printf " %s %.2f", c, calls[c] / n
			printf "\n"
		}' "$work/strace.out"
}
if [[ $SYSCALLS == 1 ]]; then
	command -v strace >/dev/null || { echo "bench-lb: SYSCALLS=1 needs strace" >&2; exit 1; }
	echo
	for mode in $MODES; do
		for name in vmss-internal haproxy; do syscalls "$mode" "$name"; done
	done
fi

# The rest of the daemon under load: the event loops hold the Ps while they
# are busy, and the daemon's other goroutines (DNS, probes, the API) run when
# a loop yields. DNS is the one users feel: its latency at a fixed rate, idle
# and while wrk keeps the loops busy.
dns_latency() { # -> "p50_ms p99_ms answered" of a DURATION dnsperf run at DNS_RATE
	innet dnsperf -s 168.63.129.16 -d "$work/queries" -c 4 -q 20 -Q "$DNS_RATE" -l "$secs" -v 2>/dev/null >"$work/dnslat"
	awk '$1 == ">" { print ($2 == "T" ? 5 : $NF) }' "$work/dnslat" | sort -g | awk '{ a[NR] = $1 } END {
		if (NR == 0) { print "nan nan 0"; exit }
		h = int(NR * 0.5); if (h < 1) h = 1; i = int(NR * 0.99); if (i < 1) i = 1
		printf "%.3f %.3f %d\n", a[h] * 1000, a[i] * 1000, NR }'
}
if [[ $DNSLOAD == 1 ]]; then
	command -v dnsperf >/dev/null || { echo "bench-lb: DNSLOAD=1 needs dnsperf (apt-get install dnsperf)" >&2; exit 1; }
	secs=$(awk -v d="$DURATION" 'BEGIN { m = 1; if (d ~ /m$/) m = 60; sub(/[sm]$/, "", d); print int(d * m) }')
	suffix=$(awk '$1 == "search" { print $2; exit }' "/proc/${backend_pids[0]}/root/etc/resolv.conf")
	vmss list-instances -n web -o json | jq -r --arg s "$suffix" '.[] | "\(.osProfile.computerName // .properties.osProfile.computerName).\($s) A"' >"$work/queries"
	innet dig +short @168.63.129.16 "$(head -1 "$work/queries" | cut -d' ' -f1)" | grep -q . ||
		{ echo "bench-lb: the VNET's DNS does not answer $(head -1 "$work/queries")" >&2; exit 1; }
	echo
	read -r i50 i99 in <<<"$(dns_latency)"
	innet wrk -t"$THREADS" -c"$CONNS" -d"$((secs + 2))s" "${url[vmss-internal]}" >/dev/null &
	wrk_bg=$!
	sleep 1
	read -r l50 l99 ln <<<"$(dns_latency)"
	wait "$wrk_bg"
	wrk_bg=""
	printf 'dns at %d q/s: idle p50 %.2f ms p99 %.2f ms (%d answers); during keep-alive wrk on vmss-internal p50 %.2f ms p99 %.2f ms (%d answers)\n' \
		"$DNS_RATE" "$i50" "$i99" "$in" "$l50" "$l99" "$ln"
fi
[[ $ONLY == 1 ]] && exit 0

# Failover detection: kill one instance's web app; time until the probe marks it down.
iv=$(awk -v s="$PROBE_SCALE" 'BEGIN { printf "%.3f", 5 * s }')
echo
echo "failover: probe Http / every ${iv}s (5 s × $PROBE_SCALE), threshold 2 → interval × threshold = $(awk -v i="$iv" 'BEGIN { printf "%.3f", 2 * i }')s"
ns1=$(vmss list-instances -n web -o json | jq -r '.[] | select(.instanceId == "1") | .netns')
state1() { api GET "$sub/Microsoft.Network/loadBalancers/webLB/health" | jq -r --arg n "$ns1" '.rules[0].backends[] | select(.name == $n) | .state'; }
for round in $(seq "$ROUNDS"); do
	pid=$(api GET "$sub/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/1/instanceView" |
		jq -r '.extensions[0].statuses[0].message' | sed -n 's/.*workload, pid \([0-9]*\).*/\1/p')
	[ -n "$pid" ] || { echo "bench-lb: no workload pid for instance 1" >&2; exit 1; }
	t0=$(date +%s.%N)
	# The pid is the workload's in the host's PID namespace (the instance has
	# its own), so the host kills it; the app dies with it (parent-death signal).
	kill "$pid"
	while [ "$(state1)" != Down ]; do sleep 0.01; done
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v i="$iv" -v r="$round" 'BEGIN { printf "  round %d: marked down %.3fs after the kill (%.2f × interval)\n", r, b - a, (b - a) / i }'
	vmss restart -n web --instance-ids 1 -o none
	wait_up webLB 3
done

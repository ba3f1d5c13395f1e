#!/usr/bin/env bash
# SSH into scale-set instances: what the inbound NAT costs, how 50
# concurrent sessions fare, and what the server spends per session.
#
# It starts its own daemon (own prefix, state and runtime directories, and a
# random 127.x.y.0/24 public range), creates a scale set of 2 instances, and
# measures with OpenSSH's client:
#
#   1. `ssh ... true` through the NAT port (public IP:50000 → instance:22)
#      vs the same straight to the instance's private IP:22 from inside the
#      VNET (ssh run under nsenter --net into the VNET's namespace), RUNS
#      times each, interleaved in the same run; median and p95 in ms, and the
#      NAT's share (target: ≤ 10% added at the median);
#   2. 50 concurrent sessions through the NAT ports (each `sleep 1; hostname`):
#      failures and wall time;
#   3. the daemon's CPU time per session (handshake, auth, exec, NAT copy),
#      from /proc over the runs of 1;
#   4. the server-side handshake and handshake+exec cost of the sshd package
#      (go test -bench, target ≤ 10 ms), unless GOBENCH=0.
#
# Usage: sudo scripts/bench-ssh.sh          (from the repository root)
# Env:   RUNS=60 CONCURRENT=50 GOBENCH=1 BENCHTIME=200x
# Needs: root, go, OpenSSH client (ssh, ssh-keygen), nsenter.
# Everything it makes is removed on exit (vmss cleanup with its prefix).
set -euo pipefail

RUNS=${RUNS:-60}
CONCURRENT=${CONCURRENT:-50}
GOBENCH=${GOBENCH:-1}
BENCHTIME=${BENCHTIME:-200x}

[[ $(id -u) == 0 ]] || { echo "bench-ssh: needs root (network namespaces)" >&2; exit 1; }
for tool in go ssh ssh-keygen nsenter awk; do
	command -v "$tool" >/dev/null || { echo "bench-ssh: $tool not found" >&2; exit 1; }
done

id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
prefix="vmssb${id}-"
work=$(mktemp -d /tmp/vmss-bench-ssh.XXXXXX)
state="$work/state"
runtime="/run/vmssb${id}"
sock="$work/vmss.sock"
range="127.$((100 + RANDOM % 150)).$((RANDOM % 256)).0/24"
daemon_pid=""

cleanup() {
	set +e
	if [[ -n $daemon_pid ]]; then
		kill "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	"$work/vmss" cleanup --force --prefix "$prefix" --state-dir "$state" --runtime-dir "$runtime" --socket "$sock" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

echo "bench-ssh: $(nproc) CPUs, $(ssh -V 2>&1), prefix $prefix, public range $range"
go build -o "$work/vmss" ./cmd/vmss
"$work/vmss" serve --socket "$sock" --state-dir "$state" --runtime-dir "$runtime" --prefix "$prefix" \
	--public-ip-range "$range" --metrics-addr off --log-level warn 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 200); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { echo "bench-ssh: daemon did not start:" >&2; cat "$work/daemon.log" >&2; exit 1; }
vmss() { "$work/vmss" --socket "$sock" "$@"; }

ssh-keygen -q -t ed25519 -N '' -f "$work/key"
cat >"$work/ssh_config" <<EOF
Host *
  User azureuser
  IdentityFile $work/key
  IdentitiesOnly yes
  IdentityAgent none
  BatchMode yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  ControlMaster no
  ControlPath none
  LogLevel ERROR
EOF
sshc() { ssh -F "$work/ssh_config" "$@"; }

vmss create -n bench --instance-count 2 --disable-overprovision --ssh-key-values "$work/key.pub" -o none
nat0=$(vmss list-instance-connection-info -n bench -o json | awk -F'"' '/"instance 0"/ {print $4}')
nat1=$(vmss list-instance-connection-info -n bench -o json | awk -F'"' '/"instance 1"/ {print $4}')
priv0=$(vmss list-instances -n bench -o tsv | awk -F'\t' '$1 == "0" {print $4}')
vnetns=$(ip netns list | awk -v p="${prefix%-}vnet-" 'index($1, p) == 1 && !found {print $1; found = 1}')
[[ -n $nat0 && -n $nat1 && -n $priv0 && -n $vnetns ]] || { echo "bench-ssh: setup incomplete (nat0=$nat0 priv0=$priv0 vnet=$vnetns)" >&2; exit 1; }
natHost=${nat0%:*} natPort=${nat0##*:}
direct=(nsenter --net="/run/netns/$vnetns" ssh -F "$work/ssh_config" -p 22 "$priv0" true)
through=(ssh -F "$work/ssh_config" -p "$natPort" "$natHost" true)
"${through[@]}" && "${direct[@]}" || { echo "bench-ssh: ssh does not work" >&2; exit 1; }
echo "NAT: $nat0 → $priv0:22 (instance 0); direct: from inside VNET namespace $vnetns"
# Let the background RSA host keys and the first sessions settle.
for _ in 1 2 3; do "${through[@]}"; "${direct[@]}"; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }
ms_now() { echo "${EPOCHREALTIME/./}"; } # microseconds
: >"$work/nat.ms"
: >"$work/direct.ms"
ticks0=$(cpu_ticks)
for _ in $(seq "$RUNS"); do
	t0=$(ms_now); "${through[@]}"; t1=$(ms_now)
	echo "$(((t1 - t0) / 1000)).$(((t1 - t0) % 1000 / 100))" >>"$work/nat.ms"
	t0=$(ms_now); "${direct[@]}"; t1=$(ms_now)
	echo "$(((t1 - t0) / 1000)).$(((t1 - t0) % 1000 / 100))" >>"$work/direct.ms"
done
ticks1=$(cpu_ticks)
hz=$(getconf CLK_TCK)

stats() { # file -> "median p95 min max"
	sort -n "$1" | awk '{v[NR] = $1} END {
		m = int((NR + 1) / 2); p = int(NR * 0.95 + 0.999)
		printf "%.1f %.1f %.1f %.1f", v[m], v[p], v[1], v[NR] }'
}
read -r nmed np95 nmin nmax <<<"$(stats "$work/nat.ms")"
read -r dmed dp95 dmin dmax <<<"$(stats "$work/direct.ms")"
echo
echo "1. ssh ... true, $RUNS runs each, interleaved (ms)"
printf "   %-28s median %7s   p95 %7s   min %7s   max %7s\n" "through NAT ($nat0)" "$nmed" "$np95" "$nmin" "$nmax"
printf "   %-28s median %7s   p95 %7s   min %7s   max %7s\n" "direct in VNET ($priv0:22)" "$dmed" "$dp95" "$dmin" "$dmax"
awk -v n="$nmed" -v d="$dmed" -v n95="$np95" -v d95="$dp95" 'BEGIN {
	printf "   NAT adds %+.1f ms (%+.1f%%) at the median, %+.1f ms (%+.1f%%) at p95 (target: <= 10%%)\n",
		n - d, 100 * (n - d) / d, n95 - d95, 100 * (n95 - d95) / d95 }'
awk -v t="$((ticks1 - ticks0))" -v hz="$hz" -v n="$((2 * RUNS))" 'BEGIN {
	printf "3. daemon CPU per session (handshake, auth, exec, and the NAT copy for half of them): %.2f ms\n", 1000 * t / hz / n }'

echo
echo "2. $CONCURRENT concurrent sessions through the NAT ports (sleep 1; hostname)"
pids=()
t0=$(ms_now)
for i in $(seq "$CONCURRENT"); do
	ep=$nat0
	((i % 2)) && ep=$nat1
	sshc -p "${ep##*:}" "${ep%:*}" 'sleep 1; hostname' >"$work/c.$i" 2>&1 &
	pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=$((fail + 1)); done
t1=$(ms_now)
ok=$(cat "$work"/c.* | grep -c '^bench00000[01]$' || true)
printf "   %d/%d sessions answered, %d failed, wall time %.2f s (1 s of it is the remote sleep)\n" \
	"$ok" "$CONCURRENT" "$fail" "$(awk -v u="$((t1 - t0))" 'BEGIN {print u / 1e6}')"

if [[ $GOBENCH == 1 ]]; then
	echo
	echo "4. server side, sshd package benchmarks (go test -bench, loopback, program run on the host):"
	go test -run '^$' -bench 'Handshake|Exec$|Concurrent50' -benchtime "$BENCHTIME" ./sshd 2>&1 |
		grep -E '^(Benchmark|goos|cpu)' | sed 's/^/   /'
fi

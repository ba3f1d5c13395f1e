#!/usr/bin/env bash
# Time from `vmss create --instance-count N` to all N instances running with
# internal DNS answering for every computer name, for N = 10, 100, 250 (or the
# counts given as arguments), the daemon's RSS and CPU seconds (user +
# system) per 100 instances over create and DNS (steadier than times on a
# shared machine), and the time from `vmss delete`
# until no instance namespace is left. Runs its own daemon (--lift-limits) with
# its own prefix, state and address range; at the end times `vmss cleanup` of
# everything left and checks that no namespace, link or mount of the prefix
# remains.
#
#   sudo scripts/bench-scale.sh                 # N = 10 100 250
#   sudo scripts/bench-scale.sh 100 1000 4096   # other counts (over 100 uses --single-placement-group false;
#                                               # the subnet is a /24 up to 250, a /20 up to 4,091, else a /19)
#   VMSS_CPUPROFILE=/tmp/vmss.pprof sudo -E scripts/bench-scale.sh 1000   # and a CPU profile of the daemon
#
# cpu_s_100 is split into user_s_100 (the daemon's own code) and sys_s_100
# (the kernel working for it). Then the kernel's floor for the same counts
# (scripts/kernelfloor: a pinned network namespace with its own sysfs, a veth pair on a bridge and a cgroup
# per hierarchy, made one at a time by a program that does nothing else), and
# the daemon's CPU per 100 instances set against it. FLOOR=0 skips it.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root: sudo $0" >&2; exit 1; }
cd "$(dirname "$0")/.."
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(10 100 250)

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d /tmp/vmss-bench-scale.XXXXXX)
prefix="vmssb${id}-"; rundir="/run/vmssb${id}"; sock="$work/vmss.sock"
bin="$work/vmss"
go build -o "$bin" ./cmd/vmss
vmss() { "$bin" --socket "$sock" "$@"; }
pid=""
finish() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  "$bin" cleanup --force --prefix "$prefix" --state-dir "$work/state" --runtime-dir "$rundir" --socket "$sock" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap finish EXIT

"$bin" serve --socket "$sock" --state-dir "$work/state" --runtime-dir "$rundir" --prefix "$prefix" \
  --public-ip-range "127.$((100 + 0x${id:0:2} % 100)).$((0x${id:2:2})).0/24" --metrics-addr off --https-addr off --lift-limits \
  >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1200); do
  [ -S "$sock" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/daemon.log" >&2; exit 1; }
  sleep 0.05
done

rss_kb() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
cpu_ticks() { awk '{print $14 "," $15}' "/proc/$pid/stat"; }   # the daemon's utime,stime
now() { date +%s.%N; }
count_ns() { ip netns list | awk -v p="$prefix" 'index($1, p) == 1' | wc -l; }
printf "%-6s %-10s %-10s %-10s %-11s %-9s %-9s %-9s %-10s %-9s\n" N create_s dns_s total_s inst_per_s rss_MiB delete_s cpu_s_100 user_s_100 sys_s_100
for n in "${counts[@]}"; do
  name="b$n"
  spg=()
  [ "$n" -gt 100 ] && spg=(--single-placement-group false)
  prefixlen=24; [ "$n" -gt 250 ] && prefixlen=20; [ "$n" -gt 4091 ] && prefixlen=19
  c0=$(cpu_ticks)
  t0=$(now)
  vmss create -n "$name" --instance-count "$n" --disable-overprovision --lb none --admin-password 'Bench!pass1' \
    --vnet-address-prefix "10.$((n % 250)).0.0/16" --subnet-address-prefix "10.$((n % 250)).0.0/$prefixlen" "${spg[@]}" -o none
  t1=$(now)
  # DNS: every computer name must resolve, asked from inside the first and
  # the last instance (past 959 instances the last is on a leaf bridge).
  vmss list-instances -n "$name" -o json >"$work/insts.json"
  askers=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); print(i[0]["netns"], i[-1]["netns"])' "$work/insts.json")
  python3 -c 'import json,sys; [print(i["osProfile"]["computerName"]) for i in json.load(open(sys.argv[1]))]' "$work/insts.json" >"$work/names"
  want=$(wc -l <"$work/names")
  deadline=$(( $(date +%s) + 300 ))
  for netns in $askers; do
    while :; do
      got=$(nsenter --net="/run/netns/$netns" dig +short +time=1 +tries=1 @168.63.129.16 -f "$work/names" | grep -c '^10\.' || true)
      [ "$got" -ge "$want" ] && break
      if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "N=$n: after 300 s the internal DNS answered $got of $want names asked from $netns" >&2
        exit 1
      fi
      sleep 0.02
    done
  done
  t2=$(now)
  c2=$(cpu_ticks)
  rss=$(rss_kb)
  base=$(count_ns)
  vmss delete -n "$name"
  # Deleted: every instance namespace gone (the VNET's stays until its own delete).
  while [ "$(count_ns)" -gt $((base - n)) ]; do sleep 0.05; done
  t3=$(now)
  python3 - "$n" "$t0" "$t1" "$t2" "$t3" "$rss" "$c0" "$c2" "$(getconf CLK_TCK)" <<'PY'
import sys
n, t0, t1, t2, t3, rss = int(sys.argv[1]), *map(float, sys.argv[2:6]), int(sys.argv[6])
(u0, s0), (u1, s1) = (map(float, a.split(",")) for a in sys.argv[7:9])
hz = float(sys.argv[9])
user, system = (u1 - u0) / hz, (s1 - s0) / hz  # daemon CPU s, create + DNS
cpu = user + system
print(f"{n:<6} {t1-t0:<10.3f} {t2-t1:<10.3f} {t2-t0:<10.3f} {n/(t2-t0):<11.1f} {rss/1024:<9.1f} {t3-t2:<9.3f} {cpu/n*100:<9.2f} {user/n*100:<10.2f} {system/n*100:<9.2f}")
PY
done | tee "$work/rounds"

kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
t0=$(now)
"$bin" cleanup --force --prefix "$prefix" --state-dir "$work/state" --runtime-dir "$rundir" --socket "$sock" >/dev/null
t1=$(now)
echo "cleanup_s $(python3 -c "print(f'{$t1-$t0:.3f}')")"
left=$(count_ns)
links=$(ip -br link | grep -c "^$prefix" || true)
mounts=$(grep -c "$prefix" /proc/self/mountinfo || true)
echo "left: $left namespaces, $links links, $mounts mounts with prefix $prefix"

[ "${FLOOR:-1}" = 0 ] && exit 0
# The kernel frees the deleted namespaces on a worker of its own, and their
# sysfs superblocks until then still slow every new sysfs mount: wait.
sleep 10
echo
go build -o "$work/kernelfloor" ./scripts/kernelfloor
"$work/kernelfloor" -prefix "vmsskf${id}" -n "$(IFS=,; echo "${counts[*]}")" | tee "$work/floor"
echo
printf "%-6s %-14s %-14s %-14s\n" N daemon_cpu_100 floor_cpu_100 above_floor
awk 'NR == FNR { if ($1 ~ /^[0-9]+$/) d[$1] = $8; next }
  $1 ~ /^[0-9]+$/ && ($1 in d) { f = $2; sub(/s$/, "", f); printf "%-6s %-14.2f %-14.2f %-14.2f\n", $1, d[$1], f, d[$1] - f }' "$work/rounds" "$work/floor"

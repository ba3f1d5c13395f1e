#!/usr/bin/env bash
# CPU the daemon spends with N idle instances, at Azure's pace (--time-scale 1:
# metrics sampled every 15 s, autoscale evaluated every 60 s) and compressed
# (--time-scale 0.02: sampled every 300 ms, evaluated every 1.2 s), with an
# autoscale setting on the scale set. The difference is the cost of metric
# collection and evaluation. Runs its own daemons with their own prefix, state
# and address range, and removes everything at the end.
#
#   sudo scripts/bench-monitor.sh           # N = 100, 20 s per measurement
#   sudo N=250 SECONDS_=30 scripts/bench-monitor.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root: sudo $0" >&2; exit 1; }
cd "$(dirname "$0")/.."
N=${N:-100}
DUR=${SECONDS_:-20}
SCALES=${SCALES:-1 0.02}

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d /tmp/vmss-bench-monitor.XXXXXX)
prefix="vmssm${id}-"; rundir="/run/vmssm${id}"; sock="$work/vmss.sock"
bin="$work/vmss"
go build -o "$bin" ./cmd/vmss
vmss() { "$bin" --socket "$sock" "$@"; }
pid=""
stop() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  pid=""
  "$bin" cleanup --force --prefix "$prefix" --state-dir "$work/state" --runtime-dir "$rundir" --socket "$sock" >/dev/null 2>&1 || true
}
trap 'stop; rm -rf "$work"' EXIT

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
spg=(); [ "$N" -gt 100 ] && spg=(--single-placement-group false)
printf "%-6s %-10s %-14s %-10s\n" N scale daemon_cpu_% rss_MiB
for scale in $SCALES; do
  "$bin" serve --socket "$sock" --state-dir "$work/state" --runtime-dir "$rundir" --prefix "$prefix" \
    --public-ip-range "127.$((100 + 0x${id:0:2} % 100)).$((0x${id:2:2})).0/24" --metrics-addr off --https-addr off --lift-limits \
    --time-scale "$scale" >"$work/daemon.log" 2>&1 &
  pid=$!
  # the daemon may take a while on a loaded machine (making its CA, its disk image)
  for _ in $(seq 1200); do [ -S "$sock" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  [ -S "$sock" ] || { echo "the daemon did not start:" >&2; cat "$work/daemon.log" >&2; exit 1; }
  vmss create -n idle --instance-count "$N" --disable-overprovision --lb none --admin-password 'Bench!pass1' \
    --vnet-address-prefix 10.9.0.0/16 --subnet-address-prefix 10.9.0.0/20 "${spg[@]}" -o none
  vmss monitor autoscale create --resource idle -n idle-as --min-count "$N" --max-count "$N" --count "$N" -o none
  vmss monitor autoscale rule create --autoscale-name idle-as --condition "Percentage CPU > 90 avg 5m" --scale out 1 -o none
  sleep 3 # settle
  a=$(ticks); sleep "$DUR"; b=$(ticks)
  rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  python3 -c "import sys; n,s,a,b,hz,d,r=sys.argv[1:]; print(f'{n:<6} {s:<10} {100*(int(b)-int(a))/int(hz)/float(d):<14.2f} {int(r)/1024:<10.1f}')" "$N" "$scale" "$a" "$b" "$hz" "$DUR" "$rss"
  stop
done

#!/usr/bin/env bash
# Time from `vmss create --instance-count N` to all N instances running with
# internal DNS answering for every computer name, for N = 10, 100, 250 (or the
# counts given as arguments), and the daemon's RSS. Runs its own daemon with its
# own prefix, state and address range, and removes everything at the end.
#
#   sudo scripts/bench-scale.sh            # N = 10 100 250
#   sudo scripts/bench-scale.sh 50 500     # other counts (over 100 uses --single-placement-group false)
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
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

rss_kb() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
now() { date +%s.%N; }
printf "%-6s %-12s %-12s %-12s %-12s %-10s\n" N create_s dns_s total_s inst_per_s rss_MiB
for n in "${counts[@]}"; do
  name="b$n"
  spg=()
  [ "$n" -gt 100 ] && spg=(--single-placement-group false)
  prefixlen=24; [ "$n" -gt 250 ] && prefixlen=20
  t0=$(now)
  vmss create -n "$name" --instance-count "$n" --disable-overprovision --lb none --admin-password 'Bench!pass1' \
    --vnet-address-prefix "10.$((n % 250)).0.0/16" --subnet-address-prefix "10.$((n % 250)).0.0/$prefixlen" "${spg[@]}" -o none
  t1=$(now)
  # DNS: every computer name must resolve, asked from inside the first instance.
  vmss list-instances -n "$name" -o json >"$work/insts.json"
  netns=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["netns"])' "$work/insts.json")
  python3 -c 'import json,sys; [print(i["osProfile"]["computerName"]) for i in json.load(open(sys.argv[1]))]' "$work/insts.json" >"$work/names"
  want=$(wc -l <"$work/names")
  while :; do
    got=$(nsenter --net="/run/netns/$netns" dig +short +time=1 +tries=1 @168.63.129.16 -f "$work/names" | grep -c '^10\.' || true)
    [ "$got" -ge "$want" ] && break
    sleep 0.02
  done
  t2=$(now)
  rss=$(rss_kb)
  python3 - "$n" "$t0" "$t1" "$t2" "$rss" <<'PY'
import sys
n, t0, t1, t2, rss = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5])
print(f"{n:<6} {t1-t0:<12.3f} {t2-t1:<12.3f} {t2-t0:<12.3f} {n/(t2-t0):<12.1f} {rss/1024:<10.1f}")
PY
  vmss delete -n "$name"
done

#!/usr/bin/env bash
# Chaos soak: ROUNDS rounds of template deploy / scale / reimage / delete with
# the daemon killed at random moments (SIGKILL and SIGTERM alternately). After
# each round the model must converge (the redeployed template reaches its
# capacity, every instance running, kernel namespaces matching the model) and,
# once the group is deleted, nothing with the prefix may be left: network
# namespaces, namespace mounts (covered ones included), links, processes in
# the prefix's cgroups, and cgroups. Bounded and run by hand, not in CI; it
# runs its own daemon with its own prefix, state, runtime directory and
# address range, and removes everything at the end.
#
#   sudo scripts/soak.sh              # 20 rounds
#   sudo scripts/soak.sh 100          # ROUNDS
#   SOAK_SEED=42 sudo scripts/soak.sh # repeatable fault timing
#
# Prints one line per round and a summary (rounds, faults injected, leaks,
# convergence failures); exits 1 when anything leaked or did not converge.
set -uo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root: sudo $0" >&2; exit 1; }
cd "$(dirname "$0")/.."
rounds=${1:-20}
RANDOM=${SOAK_SEED:-$$}

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d /tmp/vmss-soak.XXXXXX)
prefix="vmssk${id}-"; vnetprefix="vmssk${id}vnet-"; group="vmssk${id}"
rundir="/run/vmssk${id}"; state="$work/state"; sock="$work/vmss.sock"
piprange="127.$((100 + 0x${id:0:2} % 100)).$((0x${id:2:2})).0/24"
bin="$work/vmss"
go build -o "$bin" ./cmd/vmss || exit 1
tmpl=deploy/testdata/nat.json
rg=soak
pw='Soak-Passw0rd!x'

vmss() { timeout 180 "$bin" --socket "$sock" "$@"; }
pid=""
faults=0 leaks=0 unconverged=0 sig=KILL

start_daemon() {
  "$bin" serve --socket "$sock" --state-dir "$state" --runtime-dir "$rundir" --prefix "$prefix" \
    --public-ip-range "$piprange" --metrics-addr off --probe-interval-scale 0.05 --drain-period 1s \
    --stop-timeout 20s >>"$work/daemon.log" 2>&1 &
  pid=$!
  for _ in $(seq 400); do
    "$bin" --socket "$sock" group list -o none >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "daemon exited at start; log: $work/daemon.log" >&2; tail -20 "$work/daemon.log" >&2; return 1; }
    sleep 0.05
  done
  echo "daemon did not answer; log: $work/daemon.log" >&2
  return 1
}

# fault kills the daemon (SIGKILL or SIGTERM, alternately) and starts it again.
fault() {
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -s "$sig" "$pid" 2>/dev/null
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; waited=$((waited + 1))
    if [ $waited -gt 450 ]; then # 45s: more than --stop-timeout
      echo "  daemon still running 45s after SIG$sig" >&2; unconverged=$((unconverged + 1))
      kill -9 "$pid" 2>/dev/null
    fi
  done
  wait "$pid" 2>/dev/null
  faults=$((faults + 1))
  echo "  fault $faults: SIG$sig at ${1:-?}"
  if [ "$sig" = KILL ]; then sig=TERM; else sig=KILL; fi
  start_daemon
}

# ops runs a sequence of operations; failures are expected while the daemon dies.
ops() {
  local cap1=$1 cap2=$2
  vmss deployment create -g "$rg" --template-file "$tmpl" --parameters setName=soak instanceCount="$cap1" adminPassword="$pw" -o none >/dev/null 2>&1
  local set
  set=$(vmss list -g "$rg" -o json 2>/dev/null | jq -r '.[0].name // empty')
  [ -n "$set" ] || return 0
  vmss scale -g "$rg" -n "$set" --new-capacity "$cap2" -o none >/dev/null 2>&1
  vmss reimage -g "$rg" -n "$set" --instance-ids "$(vmss list-instances -g "$rg" -n "$set" -o json 2>/dev/null | jq -r '.[0].instanceId // "0"')" -o none >/dev/null 2>&1
  return 0
}

# with_faults runs "$@" in the background and injects n faults at random moments.
with_faults() {
  local n=$1; shift
  "$@" &
  local job=$!
  for _ in $(seq "$n"); do
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", (r % 400) / 100 }')" # 0-4 s
    fault "$*"
  done
  wait "$job" 2>/dev/null
}

# converge redeploys the template with capacity cap (after the faults) and
# checks the model and the kernel agree.
converge() {
  local cap=$1 set insts n netns_model netns_kernel
  for attempt in 1 2 3; do
    vmss deployment create -g "$rg" --template-file "$tmpl" --parameters setName=soak instanceCount="$cap" adminPassword="$pw" -o none >/dev/null 2>&1 && break
    sleep 1
  done
  set=$(vmss list -g "$rg" -o json | jq -r '.[0].name // empty')
  for _ in $(seq 300); do
    insts=$(vmss list-instances -g "$rg" -n "$set" -o json 2>/dev/null) || insts='[]'
    n=$(jq '[.[] | select(.powerState == "running" and .provisioningState == "Succeeded")] | length' <<<"$insts")
    total=$(jq length <<<"$insts")
    netns_model=$(jq -r '.[].netns' <<<"$insts" | sort | tr '\n' ' ')
    netns_kernel=$(ls /run/netns 2>/dev/null | grep "^$prefix" | sort | tr '\n' ' ')
    if [ "$n" = "$cap" ] && [ "$total" = "$cap" ] && [ "$netns_model" = "$netns_kernel" ]; then
      return 0
    fi
    sleep 0.2
  done
  echo "  NOT CONVERGED: capacity $cap, running $n of $total; model namespaces [$netns_model], kernel [$netns_kernel]" >&2
  unconverged=$((unconverged + 1))
  return 1
}

# delete_group removes the group and waits until the model has no group.
delete_group() {
  vmss group delete -n "$rg" -o none >/dev/null 2>&1
  return 0
}
wait_group_gone() {
  for _ in $(seq 600); do
    vmss group show -n "$rg" -o none >/dev/null 2>&1 || { [ -z "$(ls /run/netns 2>/dev/null | grep -e "^$prefix" -e "^$vnetprefix")" ] && return 0; }
    vmss group delete -n "$rg" -o none >/dev/null 2>&1
    sleep 0.2
  done
  return 1
}

# leftovers prints every kernel object with the prefix.
leftovers() {
  ls /run/netns 2>/dev/null | grep -e "^$prefix" -e "^$vnetprefix" | sed 's/^/netns /'
  awk -v p="$prefix" -v v="$vnetprefix" -v rd="$rundir/instances/" '{ n = split($5, a, "/")
    if (index(a[n], p) == 1 || index(a[n], v) == 1 || index($5, rd) == 1) print "mount " $5 }' /proc/self/mountinfo
  ip -o link show group 0x766d7373 2>/dev/null | sed 's/^/host link /'
  for f in /proc/[0-9]*/cgroup; do
    grep -q "/$group/" "$f" 2>/dev/null && echo "process ${f//[^0-9]/} $(tr '\0' ' ' <"${f%/cgroup}/cmdline" 2>/dev/null | head -c 80)"
  done
  find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path "*/$group/*" 2>/dev/null | sed 's/^/cgroup /'
}

finish() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  "$bin" cleanup --force --prefix "$prefix" --state-dir "$state" --runtime-dir "$rundir" --socket "$sock" >/dev/null 2>&1
  left=$(leftovers)
  [ -n "$left" ] && { echo "left after the final cleanup:"; echo "$left"; }
  echo "log: $work/daemon.log"
}
trap finish EXIT

start_daemon || exit 1
echo "soak: $rounds rounds, prefix $prefix, work $work"
for r in $(seq "$rounds"); do
  t0=$(date +%s)
  cap1=$((1 + RANDOM % 3)); cap2=$((1 + RANDOM % 3))
  f0=$faults
  with_faults $((1 + RANDOM % 2)) ops "$cap1" "$cap2"
  converge "$cap2"
  if [ "$r" = 1 ]; then # positive control: with instances up, the leak check sees them
    seen=$(leftovers | cut -d' ' -f1 | sort -u | tr '\n' ' ')
    for kind in netns mount process cgroup; do
      [[ " $seen" == *" $kind "* ]] || { echo "the leak check does not see a live instance's $kind (saw: $seen)" >&2; exit 1; }
    done
  fi
  with_faults $((RANDOM % 2)) delete_group
  if ! wait_group_gone; then
    echo "  NOT CONVERGED: group $rg still exists or namespaces remain after its deletion" >&2
    unconverged=$((unconverged + 1))
  fi
  left=$(leftovers)
  if [ -n "$left" ]; then
    echo "  LEAK after round $r:"; echo "$left" | sed 's/^/    /'
    leaks=$((leaks + $(wc -l <<<"$left")))
  fi
  echo "round $r: capacity $cap1 -> $cap2, $((faults - f0)) faults, $(( $(date +%s) - t0 ))s; total faults $faults, leaks $leaks, not converged $unconverged"
done
echo "soak done: rounds $rounds, faults $faults, leaks $leaks, not converged $unconverged"
[ "$leaks" = 0 ] && [ "$unconverged" = 0 ]

#!/usr/bin/env bash
# deploy-templates.sh DIR... — acceptance check of ARM template folders.
#
# For each folder (azuredeploy.json, optionally azuredeploy.parameters.json) it
# fills the GEN-UNIQUE-* and GEN-PASSWORD placeholders (parameters without a
# value are generated from their declarations), starts a private vmss daemon
# (own prefix, state and runtime directories, socket and 127.x address range),
# deploys the template unmodified with `vmss deployment create`, probes what it
# built, tears everything down and prints PASS or FAIL per template.
#
# Probes: every scale set with an inbound NAT pool answers `ssh -p 50000+n`
# with the password and its hostname is the instance's computer name; every VM
# with a public IP (a jumpbox) answers SSH, and from it every instance answers
# by private IP (ssh -J) and by computer name (ssh run on the jumpbox, names
# resolved by the VNET's DNS); load-balancing rules to port 22 answer SSH;
# stored-only resources (autoscale settings) are shown by the API; warnings
# (extensions the emulator does not run) are listed. A folder named
# *scale-existing runs after *linux-nat in the same daemon (its own folder or
# the sibling one): the partial scale set merges, scales, and leaves the
# existing instances untouched.
#
# Needs root, jq and OpenSSH. Environment: VMSS (binary; built from this
# repository when unset), INSTANCE_COUNT (overrides instanceCount/capacity
# parameters), KEEP_LOGS=1 (keep daemon logs), TIMEOUT (seconds for a
# deployment, default 900).
set -uo pipefail

die() { echo "deploy-templates: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (the emulator creates namespaces): run with sudo"
command -v jq >/dev/null || die "needs jq (apt-get install jq)"
command -v ssh >/dev/null || die "needs the OpenSSH client (apt-get install openssh-client)"
[ $# -gt 0 ] || die "usage: $0 TEMPLATE_DIR..."

WORK=$(mktemp -d /tmp/vmss-accept-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if [ -z "${VMSS:-}" ]; then
  ROOT=$(cd "$(dirname "$0")/.." && pwd)
  (cd "$ROOT" && go build -o "$WORK/vmss" ./cmd/vmss) || die "build vmss failed"
  VMSS=$WORK/vmss
fi
TIMEOUT=${TIMEOUT:-900}
SUB=00000000-0000-0000-0000-000000000000
SSHO=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10
      -o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive -o NumberOfPasswordPrompts=1)

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
rnd() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# --- one daemon per template ------------------------------------------------
start_daemon() { # sets ENVDIR PREFIX SOCK V
  local id; id=$(rnd 3)
  ENVDIR=$WORK/env-$id; mkdir -p "$ENVDIR"
  PREFIX=vmsa$id-; SOCK=$ENVDIR/vmss.sock
  RUNDIR=/run/vmsa$id
  local b1=$((100 + 0x$(rnd 1) % 150)) b2=$((0x$(rnd 1)))
  PIPRANGE=127.$b1.$b2.0/24
  "$VMSS" serve --socket "$SOCK" --state-dir "$ENVDIR/state" --runtime-dir "$RUNDIR" --prefix "$PREFIX" \
    --public-ip-range "$PIPRANGE" --metrics-addr off --log-level info >"$ENVDIR/daemon.log" 2>&1 &
  DAEMON=$!
  for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
  [ -S "$SOCK" ] || { echo "daemon did not start:"; tail -20 "$ENVDIR/daemon.log"; return 1; }
  V=("$VMSS" --socket "$SOCK" -g accept)
}

stop_daemon() {
  "${V[@]}" group delete -n accept >/dev/null 2>&1
  kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null
  "$VMSS" cleanup --force --prefix "$PREFIX" --state-dir "$ENVDIR/state" --runtime-dir "$RUNDIR" --socket "$SOCK" >/dev/null 2>&1
  local left; left=$(ip netns list | grep -c "^${PREFIX%-}" || true)
  [ "$left" = 0 ] || echo "    warning: $left namespaces with prefix $PREFIX left behind"
  if [ "${KEEP_LOGS:-}" = 1 ]; then cp "$ENVDIR/daemon.log" "/tmp/$(basename "$ENVDIR").log"; fi
}

# --- parameters -------------------------------------------------------------
# make_params DIR OUT: fills placeholders; declared parameters without value
# or default get generated values.
make_params() {
  local dir=$1 out=$2 uniq; uniq=t$(rnd 4)
  PASSWORD="Aa1!$(rnd 8)"
  if [ -f "$dir/azuredeploy.parameters.json" ]; then
    sed -e "s/GEN-UNIQUE-[0-9]*/$uniq/g" -e "s/GEN-UNIQUE/$uniq/g" -e "s/GEN-PASSWORD/$PASSWORD/g" \
      "$dir/azuredeploy.parameters.json" >"$out"
  else
    echo '{"parameters": {}}' >"$out"
  fi
  local n=${INSTANCE_COUNT:-3}
  jq --arg u "$uniq" --arg pw "$PASSWORD" --arg n "$n" --argjson given "$(jq '.parameters // .' "$out")" --arg override "${INSTANCE_COUNT:-}" '
    .parameters | to_entries | map(
      .key as $k | (.value.type | ascii_downcase) as $t |
      if ($given[$k] != null) and ($override == "" or ($k | test("count$|capacity$"; "i") | not)) then {key: $k, value: $given[$k]}
      elif .value.defaultValue != null and ($k | test("count$|capacity$"; "i") | not) then empty
      elif $t == "securestring" then {key: $k, value: {value: $pw}}
      elif $k | test("count$|capacity$"; "i") then {key: $k, value: {value: (if $t == "int" then ($n | tonumber) else $n end)}}
      elif $k | test("user"; "i") then {key: $k, value: {value: "azureuser"}}
      elif $t == "int" then {key: $k, value: {value: 1}}
      elif $t == "bool" then {key: $k, value: {value: false}}
      else {key: $k, value: {value: $u}} end) | {parameters: from_entries}' "$dir/azuredeploy.json" >"$out.tmp" && mv "$out.tmp" "$out"
  ADMIN=$(jq -r '[.parameters | to_entries[] | select(.key | test("user"; "i")) | .value.value][0] // "azureuser"' "$out")
}

# --- probes -----------------------------------------------------------------
askpass() { # writes an askpass script that prints $1
  printf '#!/bin/sh\nprintf "%%s\\n" "%s"\n' "$1" >"$WORK/askpass.sh"; chmod 700 "$WORK/askpass.sh"
}
sshpw() { # sshpw PORT USER@HOST CMD...
  local port=$1 dest=$2; shift 2
  SSH_ASKPASS=$WORK/askpass.sh SSH_ASKPASS_REQUIRE=force DISPLAY=${DISPLAY:-:0} \
    timeout 30 ssh "${SSHO[@]}" -p "$port" "$dest" "$@" </dev/null
}

# probe_nat SET: every instance answers SSH through its NAT port with its computer name.
probe_nat() {
  local set=$1 info ok=0 total=0 inst id want addr got
  info=$("${V[@]}" list-instance-connection-info -n "$set" -o json 2>/dev/null) || { echo "    $set: no NAT pool"; return 0; }
  inst=$("${V[@]}" list-instances -n "$set" -o json)
  for id in $(jq -r '.[].instanceId' <<<"$inst"); do
    total=$((total + 1))
    want=$(jq -r --arg i "$id" '.[] | select(.instanceId == $i) | .osProfile.computerName' <<<"$inst")
    addr=$(jq -r --arg i "instance $id" '.[$i] // empty' <<<"$info")
    [ -n "$addr" ] || { echo "    FAIL $set instance $id has no NAT endpoint"; continue; }
    got=$(sshpw "${addr##*:}" "$ADMIN@${addr%:*}" hostname 2>&1 | tr -d '\r')
    if [ "$got" = "$want" ]; then ok=$((ok + 1)); else echo "    FAIL ssh -p ${addr##*:} ${addr%:*}: got '$got', want '$want'"; fi
  done
  echo "    $set: $ok/$total instances answer SSH through NAT with their computer name"
  [ "$ok" = "$total" ] && [ "$total" -gt 0 ]
}

# probe_jumpbox VM: SSH to it, then to every instance by private IP and by name.
probe_jumpbox() {
  local vm=$1 show ep host port name fails=0 set inst id ip cname got
  show=$("${V[@]}" vm show -n "$vm" -d -o json)
  ep=$(jq -r '.sshEndpoint // empty' <<<"$show")
  [ -n "$ep" ] || { echo "    $vm: no public SSH endpoint"; return 0; }
  host=${ep%:*}; port=${ep##*:}
  name=$(jq -r '.osProfile.computerName // .properties.osProfile.computerName // empty' <<<"$show")
  got=$(sshpw "$port" "$ADMIN@$host" hostname 2>&1 | tr -d '\r')
  if [ "$got" != "$name" ]; then echo "    FAIL jumpbox $vm at $ep: got '$got', want '$name'"; return 1; fi
  echo "    jumpbox $vm answers SSH on $ep as $name"
  for set in $("${V[@]}" list -o json | jq -r '.[].name'); do
    inst=$("${V[@]}" list-instances -n "$set" -o json)
    local n=0 okip=0 okname=0
    for id in $(jq -r '.[].instanceId' <<<"$inst"); do
      n=$((n + 1))
      ip=$(jq -r --arg i "$id" '.[] | select(.instanceId == $i) | .privateIpAddress' <<<"$inst")
      cname=$(jq -r --arg i "$id" '.[] | select(.instanceId == $i) | .osProfile.computerName' <<<"$inst")
      got=$(SSH_ASKPASS=$WORK/askpass.sh SSH_ASKPASS_REQUIRE=force DISPLAY=${DISPLAY:-:0} timeout 40 \
        ssh "${SSHO[@]}" -o "ProxyCommand=ssh ${SSHO[*]} -p $port -W %h:%p $ADMIN@$host" "$ADMIN@$ip" hostname </dev/null 2>&1 | tr -d '\r')
      if [ "$got" = "$cname" ]; then okip=$((okip + 1)); else echo "    FAIL via jumpbox to $ip: got '$got', want '$cname'"; fails=1; fi
      # By name: ssh runs on the jumpbox, which resolves the name with the VNET's DNS.
      got=$(sshpw "$port" "$ADMIN@$host" "printf '#!/bin/sh\\necho \"\$VMSS_PW\"\\n' > /tmp/.ap-\$\$ && chmod 700 /tmp/.ap-\$\$ &&
        VMSS_PW='$PASSWORD' SSH_ASKPASS=/tmp/.ap-\$\$ SSH_ASKPASS_REQUIRE=force DISPLAY=:0 ssh ${SSHO[*]} $ADMIN@$cname hostname </dev/null; rm -f /tmp/.ap-\$\$" 2>&1 | tr -d '\r')
      if [ "$got" = "$cname" ]; then okname=$((okname + 1)); else echo "    FAIL from jumpbox to $cname by name: got '$got'"; fails=1; fi
    done
    echo "    $set: from the jumpbox $okip/$n instances by private IP, $okname/$n by computer name"
  done
  return $fails
}

# probe_lb: load-balancing rules to port 22 answer SSH on the frontend.
probe_lb() {
  local lbs lb rules
  lbs=$("${V[@]}" network lb list -o json 2>/dev/null || echo '[]')
  for lb in $(jq -r '.[].name' <<<"$lbs"); do
    rules=$(jq -r --arg n "$lb" '.[] | select(.name == $n) | (.properties.loadBalancingRules // []) | length' <<<"$lbs")
    echo "    load balancer $lb: $rules load-balancing rules"
  done
  return 0
}

probe_stored() { # autoscale settings and other stored-only resources are shown
  local ids id
  ids=$("${V[@]}" rest -u "/subscriptions/$SUB/resourceGroups/accept/resources" -o json | jq -r '.value[] | select(.type | test("autoscaleSettings|networkSecurityGroups"; "i")) | .id')
  for id in $ids; do
    local body; body=$("${V[@]}" rest -u "$id" -o json 2>/dev/null)
    jq -e '(.properties // .) | .provisioningState == "Succeeded"' >/dev/null <<<"$body" || { echo "    FAIL $id is not shown"; return 1; }
    echo "    stored and shown: $(basename "$id") $(jq -c '(.properties // .) | {enabled, targetResourceUri: (.targetResourceUri // "" | split("/") | last), profiles: [.profiles[]? | {name, capacity}]}' <<<"$body")"
  done
}

deploy() { # deploy NAME DIR PARAMS [name=value...]
  local name=$1 dir=$2 params=$3; shift 3
  local t0; t0=$(now)
  if ! timeout "$TIMEOUT" "${V[@]}" deployment create -n "$name" --template-file "$dir/azuredeploy.json" --parameters "@$params" "$@" -o json >"$ENVDIR/$name.out" 2>"$ENVDIR/$name.err"; then
    echo "    deployment $name failed after $(since "$t0")s: $(tail -1 "$ENVDIR/$name.err")"
    return 1
  fi
  echo "    deployed $name in $(since "$t0")s ($(jq -r '.outputResources | length' "$ENVDIR/$name.out") resources)"
  jq -r '.diagnostics // [] | .[] | "    warning: \(.code): \(.message)"' "$ENVDIR/$name.out" | sort -u
}

# scale_existing DIR SET: the partial template merges into SET and scales it.
scale_existing() {
  local dir=$1 set=$2 before after cap params=$ENVDIR/scale.params.json
  local admin=$ADMIN pw=$PASSWORD
  make_params "$dir" "$params"
  ADMIN=$admin PASSWORD=$pw
  before=$("${V[@]}" list-instances -n "$set" -o json | jq -c '[.[] | {instanceId, netns, vmId}]')
  cap=$(( $(jq length <<<"$before") + 2 ))
  local pname; pname=$(jq -r '.parameters | keys[] | select(test("name"; "i"))' "$dir/azuredeploy.json" | head -1)
  local cname; cname=$(jq -r '.parameters | keys[] | select(test("capacity$|count$"; "i"))' "$dir/azuredeploy.json" | head -1)
  deploy scale-existing "$dir" "$params" "$pname=$set" "$cname=$cap" || return 1
  after=$("${V[@]}" list-instances -n "$set" -o json | jq -c '[.[] | {instanceId, netns, vmId}]')
  local got; got=$("${V[@]}" show -n "$set" -o json | jq -r '.sku.capacity')
  [ "$got" = "$cap" ] || { echo "    FAIL capacity $got, want $cap"; return 1; }
  [ "$(jq length <<<"$after")" = "$cap" ] || { echo "    FAIL $(jq length <<<"$after") instances, want $cap"; return 1; }
  local kept; kept=$(jq -n --argjson a "$before" --argjson b "$after" '[$a[] | . as $x | select($b | index([$x]))] | length')
  [ "$kept" = "$(jq length <<<"$before")" ] || { echo "    FAIL existing instances changed: before $before after $after"; return 1; }
  echo "    scale-existing merged: capacity $cap, the $kept existing instances unchanged (id, netns, vmId), new ids $(jq -n -c --argjson a "$before" --argjson b "$after" '[$b[].instanceId] - [$a[].instanceId]')"
  probe_nat "$set"
}

run_template() { # run_template DIR [SCALE_DIR]
  local dir=$1 scale=${2:-} name; name=$(basename "$dir")
  [ -f "$dir/azuredeploy.json" ] || { echo "FAIL $name: no azuredeploy.json"; return 1; }
  start_daemon || { echo "FAIL $name: daemon"; return 1; }
  local params=$ENVDIR/params.json ok=0 t0 set vm
  make_params "$dir" "$params"; askpass "$PASSWORD"
  echo "== $name (prefix $PREFIX, public IPs $PIPRANGE)"
  t0=$(now)
  if deploy azuredeploy "$dir" "$params"; then
    for set in $("${V[@]}" list -o json | jq -r '.[].name'); do probe_nat "$set" || ok=1; done
    echo "    all NAT ports answered SSH $(since "$t0")s after the deployment started"
    for vm in $("${V[@]}" vm list -o json | jq -r '.[].name'); do probe_jumpbox "$vm" || ok=1; done
    probe_lb || ok=1
    probe_stored || ok=1
    if [ -n "$scale" ]; then
      echo "  -- $(basename "$scale") after $name"
      set=$("${V[@]}" list -o json | jq -r '.[0].name')
      scale_existing "$scale" "$set" || ok=1
      RESULTS+=("$( [ $ok = 0 ] && echo PASS || echo FAIL ) $(basename "$scale") (after $name)")
    fi
  else
    ok=1
  fi
  local td; td=$(now); stop_daemon; echo "    torn down in $(since "$td")s"
  RESULTS+=("$( [ $ok = 0 ] && echo PASS || echo FAIL ) $name")
  return $ok
}

RESULTS=()
dirs=("$@")
nat="" scale=""
for d in "${dirs[@]}"; do
  case "$(basename "$d")" in
    *scale-existing*) scale=$d ;;
    *linux-nat*) nat=$d ;;
  esac
done
if [ -n "$scale" ] && [ -z "$nat" ]; then
  nat=$(dirname "$scale")/201-vmss-linux-nat
  [ -d "$nat" ] || { RESULTS+=("FAIL $(basename "$scale") (needs a linux-nat folder to run after)"); nat=""; scale=""; }
  [ -n "$nat" ] && { run_template "$nat" "$scale"; scale=""; nat="-"; }
fi
for d in "${dirs[@]}"; do
  d=${d%/}
  case "$(basename "$d")" in
    *scale-existing*) continue ;;
    *linux-nat*) run_template "$d" "$scale" ;;
    *) run_template "$d" ;;
  esac
done
echo
fail=0
for r in "${RESULTS[@]}"; do echo "$r"; case $r in FAIL*) fail=1 ;; esac; done
exit $fail

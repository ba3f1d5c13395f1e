#!/usr/bin/env bash
# Benchmark the VNET's internal DNS against Debian's dnsmasq serving the same
# names, in the same throwaway VNET namespace, driven by dnsperf.
#
# A harness (internal/dnsbench) builds the VNET namespace with the project's
# own vnet package and serves package dns at 168.63.129.16:53 in it with
# RECORDS names (web000000..., A records of their FQDNs). dnsmasq runs in the
# same namespace on 168.63.129.16:$PORT with the same names as a hosts file
# (no upstream, TTL 10 s like ours). dnsperf runs in the namespace too, so all
# traffic stays on that namespace's loopback.
#
# For each of REPEAT rounds, both servers are measured in turn (interleaved,
# so drifting background load hits both alike):
#   - throughput: dnsperf -c CLIENTS -q OUTSTANDING for DURATION seconds;
#     q/s, and CPU µs per answered query from the server's utime+stime in
#     /proc/PID/stat before and after;
#   - latency: dnsperf -Q RATE (fixed queries/s) for DURATION seconds; p99
#     of the per-query latencies dnsperf -v reports.
# The medians over the rounds are printed with the ratios vmss/dnsmasq.
#
#   sudo scripts/bench-dns.sh
# Env: RECORDS=100 DURATION=15 CLIENTS=4 OUTSTANDING=200 RATE=20000 REPEAT=3
#      PORT=5300 DNSBENCH_BIN= (a prebuilt harness, e.g. of an older commit)
# Needs: go, dnsperf, dnsmasq (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root: sudo $0" >&2; exit 1; }
for c in dnsperf dnsmasq ip; do
  command -v "$c" >/dev/null || { echo "$c is missing: run sudo scripts/setup.sh" >&2; exit 1; }
done
RECORDS=${RECORDS:-100} DURATION=${DURATION:-15} CLIENTS=${CLIENTS:-4} OUTSTANDING=${OUTSTANDING:-200}
RATE=${RATE:-20000} REPEAT=${REPEAT:-3} PORT=${PORT:-5300}

tmp=$(mktemp -d /tmp/vmss-bench-dns.XXXXXX)
ns=vmssbench-dns-$$
harness_pid= dnsmasq_pid=
cleanup() {
  set +e
  [ -n "$dnsmasq_pid" ] && kill "$dnsmasq_pid" 2>/dev/null && wait "$dnsmasq_pid" 2>/dev/null
  [ -n "$harness_pid" ] && kill "$harness_pid" 2>/dev/null && wait "$harness_pid" 2>/dev/null
  # The harness deletes its namespace; if it could not, remove ours.
  if ip netns list | grep -qw "^$ns"; then ip netns del "$ns"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=${DNSBENCH_BIN:-}
if [ -z "$bin" ]; then
  bin=$tmp/dnsbench
  go build -o "$bin" ./internal/dnsbench
fi
"$bin" -netns "$ns" -records "$RECORDS" -hosts "$tmp/hosts" -queries "$tmp/queries" >"$tmp/harness.out" 2>"$tmp/harness.err" &
harness_pid=$!
for _ in $(seq 300); do
  grep -q '^ready' "$tmp/harness.out" 2>/dev/null && break
  kill -0 "$harness_pid" 2>/dev/null || { cat "$tmp/harness.err" >&2; exit 1; }
  sleep 0.1
done
grep -q '^ready' "$tmp/harness.out" || { echo "harness not ready" >&2; exit 1; }

# ip netns exec execs dnsmasq: $! is dnsmasq's pid.
ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --addn-hosts="$tmp/hosts" --listen-address=168.63.129.16 --bind-interfaces --port="$PORT" \
  --local-ttl=10 --user=root --group=root --pid-file= --log-facility=- 2>"$tmp/dnsmasq.err" &
dnsmasq_pid=$!
first=$(head -1 "$tmp/queries" | cut -d' ' -f1)
for _ in $(seq 100); do
  ip netns exec "$ns" dig +short +time=1 +tries=1 -p "$PORT" @168.63.129.16 "$first" 2>/dev/null | grep -q . && break
  kill -0 "$dnsmasq_pid" 2>/dev/null || { cat "$tmp/dnsmasq.err" >&2; exit 1; }
  sleep 0.1
done
for p in 53 "$PORT"; do
  got=$(ip netns exec "$ns" dig +short +time=1 +tries=1 -p "$p" @168.63.129.16 "$first")
  [ "$got" = 10.0.0.4 ] || { echo "server on port $p answers $first with '$got', want 10.0.0.4" >&2; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# throughput NAME PID PORT -> "qps us_per_query" (median-ready line)
throughput() {
  local before after out done qps
  before=$(cpu_ticks "$2")
  out=$(ip netns exec "$ns" dnsperf -s 168.63.129.16 -p "$3" -d "$tmp/queries" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" 2>&1)
  after=$(cpu_ticks "$2")
  done=$(awk '/Queries completed:/ {print $3}' <<<"$out")
  qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
  [ -n "$done" ] && [ "$done" -gt 0 ] || { echo "dnsperf against $1 answered nothing:" >&2; echo "$out" >&2; exit 1; }
  awk -v q="$qps" -v t=$((after - before)) -v hz="$hz" -v n="$done" 'BEGIN {printf "%.0f %.2f\n", q, t * 1e6 / hz / n}'
}

# p99 NAME PORT -> p99 latency in ms at RATE queries/s (and the lost count)
p99() {
  ip netns exec "$ns" dnsperf -s 168.63.129.16 -p "$2" -d "$tmp/queries" -c "$CLIENTS" -q "$OUTSTANDING" \
    -Q "$RATE" -l "$DURATION" -v 2>/dev/null >"$tmp/lat"
  # A query that timed out (T) counts as dnsperf's timeout, 5 s.
  awk '$1 == ">" {print ($2 == "T" ? 5 : $NF)}' "$tmp/lat" | sort -g | awk '{a[NR] = $1} END {
    if (NR == 0) { print "nan"; exit }
    i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f\n", a[i] * 1000 }'
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "# $(date -u +%FT%TZ) $(uptime | sed 's/.*load/load/')"
echo "# RECORDS=$RECORDS DURATION=$DURATION CLIENTS=$CLIENTS OUTSTANDING=$OUTSTANDING RATE=$RATE REPEAT=$REPEAT"
printf '%-6s %-8s %10s %12s %10s\n' round server 'q/s' 'cpu_us/q' "p99_ms@$RATE"
for r in $(seq "$REPEAT"); do
  for s in vmss dnsmasq; do
    if [ "$s" = vmss ]; then pid=$harness_pid port=53; else pid=$dnsmasq_pid port=$PORT; fi
    read -r q c < <(throughput "$s" "$pid" "$port")
    l=$(p99 "$s" "$port")
    printf '%-6s %-8s %10s %12s %10s\n' "$r" "$s" "$q" "$c" "$l"
    echo "$s $q $c $l" >>"$tmp/results"
  done
done
for s in vmss dnsmasq; do
  for col in 2 3 4; do
    awk -v s="$s" -v c="$col" '$1 == s {print $c}' "$tmp/results" | median >"$tmp/med.$s.$col"
  done
done
m() { cat "$tmp/med.$1.$2"; }
printf '%-6s %-8s %10s %12s %10s\n' median vmss "$(m vmss 2)" "$(m vmss 3)" "$(m vmss 4)"
printf '%-6s %-8s %10s %12s %10s\n' median dnsmasq "$(m dnsmasq 2)" "$(m dnsmasq 3)" "$(m dnsmasq 4)"
awk -v a="$(m vmss 2)" -v b="$(m dnsmasq 2)" -v c="$(m vmss 3)" -v d="$(m dnsmasq 3)" -v e="$(m vmss 4)" -v f="$(m dnsmasq 4)" \
  'BEGIN {printf "ratio vmss/dnsmasq: q/s %.2fx  cpu/query %.2fx  p99 %.2fx\n", a / b, c / d, e / f}'

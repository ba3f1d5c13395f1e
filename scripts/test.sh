#!/usr/bin/env bash
# The test suite: unit tests, root integration tests with real namespaces, and
# end-to-end tests of the vmss binary with OpenSSH and curl. Installs what the
# tests need first. Run as root (the integration tests create namespaces; they
# only create uniquely named objects and remove them).
#
#   sudo scripts/test.sh              # everything
#   sudo scripts/test.sh ./model/...  # some packages
#   sudo RACE= scripts/test.sh        # without the race detector
#   sudo VMSS_E2E_RACE_DAEMON=1 scripts/test.sh  # the e2e daemon built with -race too
#
# Tests run with the race detector (-race). The daemon the end-to-end tests
# start is built with it only when VMSS_E2E_RACE_DAEMON=1: that makes e2e
# about 5 times slower (a race it reports then fails the test).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root: sudo $0" >&2; exit 1; }
cd "$(dirname "$0")/.."
scripts/setup.sh
GO=$(scripts/go.sh)
export GOFLAGS="${GOFLAGS:-} -count=1"
pkgs=("$@"); [ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
"$GO" vet "${pkgs[@]}"
RACE=${RACE--race}
"$GO" test $RACE -timeout 15m "${pkgs[@]}"
# Capacity tests skip themselves under -race (they would measure the race
# detector); run them without it.
if [ -n "$RACE" ] && [ "${VMSS_E2E_RACE_DAEMON:-}" = 1 ]; then
  for p in "${pkgs[@]}"; do
    case $p in ./...|./e2e|./e2e/...)
      "$GO" test -timeout 5m -run '^TestLBTenThousandConnections$' ./e2e
      break;;
    esac
  done
fi
# The proxy's flows run on event loops by default; its tests run once more
# with a goroutine per direction, the path of connections that are not TCP,
# once with loops that always park in the runtime's poller (as with
# GOMAXPROCS 1), and once with two loops sharing each listener (the daemon's
# GOMAXPROCS on 2 cores, see proxy.SetLoopProcs).
for p in "${pkgs[@]}"; do
  case $p in ./...|./proxy|./proxy/...)
    VMSS_PROXY_LOOPS=0 "$GO" test $RACE -timeout 5m ./proxy
    VMSS_PROXY_HOLD=0 "$GO" test $RACE -timeout 5m ./proxy
    GOMAXPROCS=3 "$GO" test $RACE -timeout 5m ./proxy ./lb ./nat
    break;;
  esac
done

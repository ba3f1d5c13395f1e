#!/usr/bin/env bash
# The demo on a fresh machine: installs what vmss needs, builds it and runs
# `vmss up` (a VNET, a 3-instance scale set with a web app behind a load
# balancer, NAT ports for SSH, and a jumpbox). Ctrl-C removes everything.
# Extra arguments go to `vmss up` (e.g. --public-address 0.0.0.0 in a Vagrant VM).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root: sudo $0" >&2; exit 1; }
cd "$(dirname "$0")/.."
scripts/setup.sh
GO=$(scripts/go.sh)
"$GO" build -o bin/vmss ./cmd/vmss
exec bin/vmss up "$@"

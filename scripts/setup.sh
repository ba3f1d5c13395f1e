#!/usr/bin/env bash
# Installs what vmss needs at run time and in its tests on Debian or Ubuntu:
# iproute2 and util-linux (nsenter), OpenSSH's client (ssh, scp, sftp), curl,
# dig, procps and python3, and gcc and libc6-dev for the tests' race detector
# (go test -race needs cgo). Go 1.26 or later must already be installed.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root: sudo $0" >&2; exit 1; }
pkgs=(iproute2 util-linux openssh-client curl dnsutils procps python3 jq ca-certificates gcc libc6-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

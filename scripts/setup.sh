#!/usr/bin/env bash
# Installs what vmss needs at run time and in its tests on Debian or Ubuntu:
# iproute2, util-linux (nsenter, setpriv, ipcs), mount (mount, umount),
# e2fsprogs (mkfs.ext4 for the instances' filesystem), OpenSSH's client (ssh,
# scp, sftp), curl, dig, procps, ping (iputils-ping: a bridge test floods ARP
# with it), python3, nftables (network security groups),
# the az CLI (Debian's azure-cli, for the tests that drive the HTTPS API with
# it), chromium (the dashboard's browser tests drive it headless), gcc and
# libc6-dev for the tests' race detector (go test -race needs cgo), and
# dnsperf and dnsmasq-base (the dnsmasq program without its system service)
# for scripts/bench-dns.sh. Go 1.26 or later must already be installed.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root: sudo $0" >&2; exit 1; }
pkgs=(iproute2 util-linux mount e2fsprogs openssh-client curl dnsutils procps iputils-ping python3 jq ca-certificates nftables azure-cli chromium gcc libc6-dev dnsperf dnsmasq-base)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

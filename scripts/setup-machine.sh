#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh Debian 12 machine (run as root):
# Debian packages for the real components, podman's engine config for this kernel, and the npm
# dependencies from the lockfile. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for bin in nats-server podman runc ip pgrep unshare nsenter jq curl openssl; do
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$bin")
done
[ -x /lib/systemd/systemd ] || need_apt+=(systemd)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages (missing: ${need_apt[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    nats-server podman runc conmon containernetworking-plugins iproute2 procps util-linux systemd uidmap curl jq openssl >/dev/null
fi

# podman on this kernel: crun and the default rlimits fail, runc with explicit ulimits works (DESIGN.md 9).
conf=/etc/containers/containers.conf
if ! grep -qs 'lanekeeper' "$conf"; then
  mkdir -p /etc/containers
  cat >"$conf" <<'CONF'
# written by lanekeeper scripts/setup-machine.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
CONF
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

#!/usr/bin/env bash
# Removes lanekeeper-agent from this host: stops and disables its unit, removes the unit file and the installed
# agent. Managed lanes are NOT deleted here: drain and remove them from the coordinator first
# (`lanekeeper lanes remove <lane>`), or follow docs/runbook.md "Manual rollback". With --purge, also deletes the
# config, keys and state (the host must then be re-enrolled with new keys).
set -euo pipefail
prefix=/opt/lanekeeper config_dir=/etc/lanekeeper state_dir=/var/lib/lanekeeper unit_dir=/etc/systemd/system purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    --purge) purge=1; shift ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; echo "Options: --prefix --config-dir --state-dir --unit-dir (as given to install-agent.sh), --purge"; exit 0 ;;
    *) echo "uninstall-agent: unknown option $1" >&2; exit 2 ;;
  esac
done
fail() { echo "uninstall-agent: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root"
for d in "$prefix" "$config_dir" "$state_dir" "$unit_dir"; do
  case "$d" in /|/etc|/usr|/var|/var/lib|/opt|"") fail "refusing to work on '$d'";; /*) ;; *) fail "paths must be absolute, got '$d'";; esac
done

lanes=$(find "$unit_dir" -maxdepth 1 -name 'lanekeeper-lane-*.service' 2>/dev/null | wc -l)
if [ "$lanes" -gt 0 ]; then
  echo "uninstall-agent: warning: $lanes lane unit(s) remain in $unit_dir; they keep running." >&2
  echo "  Remove them from the coordinator, or see docs/runbook.md 'Manual rollback'." >&2
fi
for engine in podman docker; do
  if command -v "$engine" >/dev/null 2>&1; then
    n=$("$engine" ps -a --filter label=dev.lanekeeper.lane --format '{{.Names}}' 2>/dev/null | wc -l || echo 0)
    [ "$n" -gt 0 ] && echo "uninstall-agent: warning: $n lane container(s) remain ($engine ps -a --filter label=dev.lanekeeper.lane)." >&2
  fi
done

systemctl disable --now lanekeeper-agent.service >/dev/null 2>&1 || true
rm -f "$unit_dir/lanekeeper-agent.service"
systemctl daemon-reload || true
# Only remove a prefix that holds what install-agent.sh put there.
if [ -d "$prefix/node_modules/@lanekeeper/agent" ] || [ ! -e "$prefix" ]; then
  rm -rf "$prefix"
else
  echo "uninstall-agent: $prefix does not look like an agent install (no node_modules/@lanekeeper/agent); left alone" >&2
fi
if [ "$purge" = 1 ]; then
  rm -rf "$config_dir" "$state_dir"
  echo "purged config, keys and state; enroll the host again (new keys) to use it"
fi
echo "lanekeeper-agent uninstalled"

#!/usr/bin/env bash
# Removes lanekeeper-agent from this host. Managed lanes are NOT deleted here: drain and remove them
# from the coordinator first (`lanekeeper lanes remove <lane>`), or follow docs/runbook.md for manual
# cleanup. With --purge, also deletes the config, keys and state (the host must then be re-enrolled).
set -euo pipefail
prefix=/opt/lanekeeper config_dir=/etc/lanekeeper state_dir=/var/lib/lanekeeper unit_dir=/etc/systemd/system purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    --purge) purge=1; shift ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall-agent: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "uninstall-agent: run as root" >&2; exit 1; }

lanes=$(ls "$unit_dir"/lanekeeper-lane-*.service 2>/dev/null | wc -l)
if [ "$lanes" -gt 0 ]; then
  echo "uninstall-agent: warning: $lanes lane unit(s) remain in $unit_dir; they keep running." >&2
  echo "  Remove them from the coordinator, or see docs/runbook.md 'Manual rollback'." >&2
fi
systemctl disable --now lanekeeper-agent.service >/dev/null 2>&1 || true
rm -f "$unit_dir/lanekeeper-agent.service"
systemctl daemon-reload || true
rm -rf "$prefix"
if [ "$purge" = 1 ]; then
  rm -rf "$config_dir" "$state_dir"
  echo "purged config and state; re-enroll the host to use it again"
fi
echo "lanekeeper-agent uninstalled"

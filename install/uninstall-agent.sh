#!/usr/bin/env bash
# Removes lanekeeper-agent from this host: stops and disables its unit, removes the unit file, the installed
# agent (<prefix>/bin, <prefix>/lib) and its symlink in the bin directory. Managed lanes are NOT deleted here:
# drain and remove them from the coordinator first (`lanekeeper lanes remove <lane>`), or follow docs/runbook.md
# "Manual rollback". Runner distributions (<prefix>/runners) stay. With --purge, also deletes the config, keys
# and state (the host must then be re-enrolled with new keys).
#
#   uninstall-agent.sh [--purge] [--prefix DIR] [--bin-dir DIR] [--config-dir DIR] [--state-dir DIR] [--unit-dir DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib-artifacts.sh
. "$here/lib-artifacts.sh"
usage() {
  usage_header
  cat <<'USAGE'
Options (as given to install-agent.sh):
  --prefix DIR      default /opt/lanekeeper
  --bin-dir DIR     default /usr/local/bin
  --config-dir DIR  default /etc/lanekeeper
  --state-dir DIR   default /var/lib/lanekeeper
  --unit-dir DIR    default /etc/systemd/system
  --purge           also delete config, keys and state
USAGE
}
prefix=/opt/lanekeeper bin_dir=/usr/local/bin config_dir=/etc/lanekeeper state_dir=/var/lib/lanekeeper unit_dir=/etc/systemd/system purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --purge) purge=1; shift; continue ;;
    --*) need_value "$1" "$#" "${2:-}" ;;
  esac
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    *) echo "uninstall-agent: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
fail() { echo "uninstall-agent: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root"
for d in "$prefix" "$bin_dir" "$config_dir" "$state_dir" "$unit_dir"; do
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
# Only what install-agent.sh put there: the symlink (if it points into this prefix), the binary or launcher, the
# bundle. Runner distributions and anything else under the prefix stay.
if [ -L "$bin_dir/lanekeeper-agent" ] && [ "$(readlink "$bin_dir/lanekeeper-agent")" = "$prefix/bin/lanekeeper-agent" ]; then
  rm -f "$bin_dir/lanekeeper-agent"
fi
rm -f "$prefix/bin/lanekeeper-agent" "$prefix/lib/lanekeeper-agent.mjs"
rmdir "$prefix/bin" "$prefix/lib" "$prefix" 2>/dev/null || true
if [ "$purge" = 1 ]; then
  rm -rf "$config_dir" "$state_dir"
  echo "purged config, keys and state; enroll the host again (new keys) to use it"
fi
echo "lanekeeper-agent uninstalled"

#!/usr/bin/env bash
# Installs lanekeeper-agent on this host as a systemd service.
#
#   install-agent.sh --host-id build01 [--nats-url nats://coord:4222] [--tarball lanekeeper-agent.tgz]
#
# Creates the system group `lanekeeper` (may read the status socket) and the user `lk-runner`
# (runs the lanes), the config, state and lane directories with their owners and modes, installs
# the agent from this repository (or from packed tarballs), runs `lanekeeper-agent init` (identity
# and sealing keys, config with control disabled), installs a hardened unit for the agent itself,
# starts it, and prints the enrollment bundle and the next steps. Re-running it keeps the keys.
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  --host-id ID        this host's id ([a-z0-9][a-z0-9-]{0,62}); required
  --nats-url URL      NATS URL the agent connects to (default nats://127.0.0.1:4222)
  --prefix DIR        where the agent is installed (default /opt/lanekeeper)
  --config-dir DIR    default /etc/lanekeeper
  --state-dir DIR     default /var/lib/lanekeeper
  --lane-root DIR     default /var/lib/lanekeeper/lanes
  --unit-dir DIR      where lane units and the agent unit go (default /etc/systemd/system)
  --runner-dist DIR   runner distribution directory (default /opt/actions-runner)
  --tarball FILE      install from packed tarballs (repeatable) instead of this repository
  --no-start          install and enable, but do not start the agent
USAGE
}

host_id="" nats_url="nats://127.0.0.1:4222" prefix=/opt/lanekeeper config_dir=/etc/lanekeeper
state_dir=/var/lib/lanekeeper lane_root="" unit_dir=/etc/systemd/system runner_dist=/opt/actions-runner
start=1 tarballs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --host-id) host_id=$2; shift 2 ;;
    --nats-url) nats_url=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --lane-root) lane_root=$2; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    --runner-dist) runner_dist=$2; shift 2 ;;
    --tarball) tarballs+=("$(realpath "$2")"); shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-agent: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
lane_root=${lane_root:-$state_dir/lanes}

fail() { echo "install-agent: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (it creates users, directories and a systemd unit)"
[[ "$host_id" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || fail "--host-id must match [a-z0-9][a-z0-9-]{0,62}, got '${host_id}'"
node_bin=$(command -v node) || fail "node (>= 20) is required on the host"
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "node >= 20 is required, found $("$node_bin" --version)"
repo=$(cd "$(dirname "$0")/.." && pwd)

echo "==> users and directories"
getent group lanekeeper >/dev/null || groupadd --system lanekeeper
id lk-runner >/dev/null 2>&1 || useradd --system --gid lanekeeper --home-dir "$lane_root" --no-create-home --shell /usr/sbin/nologin lk-runner
install -d -m 0755 -o root -g root "$prefix" "$unit_dir"
install -d -m 0750 -o root -g lanekeeper "$config_dir"
install -d -m 0700 -o root -g root "$state_dir"
install -d -m 0755 -o root -g root "$lane_root"

echo "==> agent into $prefix"
if [ ${#tarballs[@]} -eq 0 ]; then
  [ -f "$repo/packages/agent/dist/index.js" ] || (cd "$repo" && npm run build >/dev/null)
  pack_dir=$(mktemp -d)
  (cd "$repo" && npm pack --silent --pack-destination "$pack_dir" -w @lanekeeper/shared -w @lanekeeper/agent >/dev/null)
  tarballs=("$pack_dir"/*.tgz)
fi
[ -f "$prefix/package.json" ] || echo '{"name":"lanekeeper-install","private":true}' >"$prefix/package.json"
(cd "$prefix" && npm install --omit=dev --no-audit --no-fund --loglevel=error "${tarballs[@]}")
agent="$node_bin $prefix/node_modules/@lanekeeper/agent/bin/lanekeeper-agent.js"

echo "==> identity and config"
if [ -f "$config_dir/agent.yaml" ]; then
  echo "    $config_dir/agent.yaml exists; keeping it and the keys"
else
  $agent init --host-id "$host_id" --config "$config_dir/agent.yaml" --state-dir "$state_dir" \
    --nats-url "$nats_url" --unit-dir "$unit_dir" --lane-root "$lane_root" --runner-dist "$runner_dist" \
    --run-as-user lk-runner --status-socket /run/lanekeeper/agent.sock >"$state_dir/enrollment.yaml"
  chmod 0640 "$config_dir/agent.yaml"; chgrp lanekeeper "$config_dir/agent.yaml"
fi

echo "==> systemd unit"
sed -e "s|@NODE@|$node_bin|g" -e "s|@PREFIX@|$prefix|g" -e "s|@CONFIG_DIR@|$config_dir|g" \
    -e "s|@STATE_DIR@|$state_dir|g" -e "s|@LANE_ROOT@|$lane_root|g" -e "s|@UNIT_DIR@|$unit_dir|g" \
    "$repo/install/lanekeeper-agent.service" >"$unit_dir/lanekeeper-agent.service"
chmod 0644 "$unit_dir/lanekeeper-agent.service"
systemctl daemon-reload
systemctl enable lanekeeper-agent.service >/dev/null 2>&1 || true
[ "$start" = 1 ] && systemctl restart lanekeeper-agent.service

cat <<NEXT

lanekeeper-agent is installed on $host_id (control is DISABLED: it only observes and reports).

Next steps:
  1. On the coordinator, enroll this host with its bundle (public keys only):
       lanekeeper hosts add <(cat $state_dir/enrollment.yaml)   # copy the file over first
  2. Here, allow what lanekeeper may do, in $config_dir/agent.yaml under 'control':
       enabled: true, scopes, pools, backends, actions, images (by digest), maxLanes
     then: systemctl restart lanekeeper-agent
  3. Check: lanekeeper-agent status --socket /run/lanekeeper/agent.sock
  4. Keep the clock synced (chrony): intents expire within two minutes.

Enrollment bundle ($state_dir/enrollment.yaml):
NEXT
cat "$state_dir/enrollment.yaml"

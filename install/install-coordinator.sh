#!/usr/bin/env bash
# Installs the lanekeeper coordinator (`lanekeeper serve`) on this host as a hardened systemd service, from the
# release artifacts (`npm run dist`), or configures the one the lanekeeper Debian package installed (--packaged).
#
#   install-coordinator.sh --from <dist-dir|artifact> --policy lanekeeper.yaml [--key coordinator.key]
#                          [--nats-password-file F | --nats-creds F] [--github-token-file F]
#
# Checks the artifact against the SHA256SUMS beside it (never downloads anything), installs it into --prefix
# with `lanekeeper` linked into --bin-dir, creates the system user `lk-coordinator` (runs the service), puts the
# policy in <config-dir>/lanekeeper.yaml, the coordinator key (and its <key>.keyset.json) where the policy's
# coordinator.keyFile says, the NATS login (the policy's natsCredsFile, or natsPasswordEnv in the service's
# environment file) and the GitHub token (github.auth.tokenEnv) in place, installs the unit and starts it.
# Re-running it (with a newer artifact) upgrades in place; files you do not pass again are kept.
set -euo pipefail
# Files this script writes are owner-only until it sets their mode (the environment file holds secrets).
umask 077
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib-artifacts.sh
. "$here/lib-artifacts.sh"

usage() {
  usage_header
  cat <<'USAGE'
Options:
  --from FILE|DIR          the single executable (lanekeeper-<version>-linux-<arch>), the bundle
                           (lanekeeper-<version>.tar.gz, needs node >= 20.19), or a directory of npm run dist output;
                           SHA256SUMS must be beside it and list it
  --packaged               use /usr/bin/lanekeeper and the unit the lanekeeper Debian package installed (default paths)
  --policy FILE            the policy (required on the first install); installed as <config-dir>/lanekeeper.yaml.
                           Its coordinator.auditFile must be inside --state-dir (the only place the service writes)
  --key FILE               the coordinator signing key (`lanekeeper keys generate` wrote it as coordinator.keyFile),
                           installed at the policy's coordinator.keyFile with FILE.keyset.json beside it. Without
                           it, the key must be there already (made by keys generate after a --no-start install)
  --nats-password-file F   the NATS password, put in the service environment as the policy's coordinator.natsPasswordEnv
  --nats-creds FILE        NATS credentials file, installed at the policy's coordinator.natsCredsFile
  --github-token-file F    the GitHub token, put in the service environment as the policy's github.auth.tokenEnv
  --metrics-port PORT      Prometheus metrics and /healthz on 127.0.0.1:PORT (default: as installed, else 9470)
  --prefix DIR             default /opt/lanekeeper (DIR/bin/lanekeeper)
  --bin-dir DIR            where the lanekeeper symlink goes, a directory on the PATH (default /usr/local/bin)
  --config-dir DIR         default /etc/lanekeeper-coordinator
  --state-dir DIR          the service's only writable directory, mode 0700 (default /var/lib/lanekeeper-coordinator)
  --unit-dir DIR           default /etc/systemd/system
  --no-start               install and enable, but do not start the service
USAGE
}

from="" packaged=0 policy="" key="" nats_password_file="" nats_creds="" github_token_file="" metrics_port=""
prefix=/opt/lanekeeper bin_dir=/usr/local/bin config_dir=/etc/lanekeeper-coordinator state_dir=/var/lib/lanekeeper-coordinator
unit_dir=/etc/systemd/system start=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --no-start) start=0; shift; continue ;;
    --packaged) packaged=1; shift; continue ;;
    --*) need_value "$1" "$#" "${2:-}" ;;
  esac
  case "$1" in
    --from) from=$(realpath "$2"); shift 2 ;;
    --policy) policy=$(realpath "$2"); shift 2 ;;
    --key) key=$(realpath "$2"); shift 2 ;;
    --nats-password-file) nats_password_file=$(realpath "$2"); shift 2 ;;
    --nats-creds) nats_creds=$(realpath "$2"); shift 2 ;;
    --github-token-file) github_token_file=$(realpath "$2"); shift 2 ;;
    --metrics-port) metrics_port=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --state-dir) state_dir=${2%/}; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    *) echo "install-coordinator: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "install-coordinator: $*" >&2; exit 1; }
if [ "$packaged" = 1 ]; then
  [ -z "$from" ] || { echo "install-coordinator: --packaged and --from exclude each other" >&2; exit 2; }
  [ "$config_dir" = /etc/lanekeeper-coordinator ] && [ "$state_dir" = /var/lib/lanekeeper-coordinator ] ||
    fail "--packaged uses the package's paths; do not pass --config-dir or --state-dir"
  [ -x /usr/bin/lanekeeper ] || fail "--packaged: /usr/bin/lanekeeper is missing; install the lanekeeper package first (dpkg -i lanekeeper_<version>_<arch>.deb)"
else
  [ -n "$from" ] || { echo "install-coordinator: --from <dist-dir|artifact> (or --packaged) is required (see --help)" >&2; exit 2; }
fi
[ "$(id -u)" = 0 ] || fail "run as root (it creates a user, directories and a systemd unit)"
# A re-run keeps the port the installed unit (or its drop-in) serves on.
if [ -z "$metrics_port" ]; then
  metrics_port=$(cat "$unit_dir/lanekeeper.service" "$unit_dir/lanekeeper.service.d/metrics-port.conf" 2>/dev/null |
    sed -n 's/^ExecStart=.*--metrics-port \([0-9]*\).*/\1/p' | tail -n1 || true)
  metrics_port=${metrics_port:-9470}
fi
[[ "$metrics_port" =~ ^[0-9]{1,5}$ ]] || fail "--metrics-port must be a port number, got '$metrics_port'"
for d in "$prefix" "$bin_dir" "$config_dir" "$state_dir" "$unit_dir"; do
  [[ "$d" = /* ]] || fail "paths must be absolute, got '$d'"
done
target_policy="$config_dir/lanekeeper.yaml"
[ -n "$policy" ] || [ -f "$target_policy" ] || fail "--policy is required on the first install"
if [ -n "$nats_password_file" ] && [ -n "$nats_creds" ]; then fail "use either --nats-password-file or --nats-creds"; fi
artifact=""
if [ -n "$from" ]; then
  artifact=$(pick_artifact lanekeeper "$from")
  verify_artifact "$artifact"
fi

# policy_value KEY: the value of a block-style `KEY: value` line in the policy (the keys read here occur once
# in a policy), without quotes or a trailing comment.
policy_value() {
  sed -n "s/^[[:space:]]*$1:[[:space:]]*//p" "${policy:-$target_policy}" | head -n1 |
    sed -e 's/[[:space:]]#.*$//' -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}
key_file=$(policy_value keyFile)
audit_file=$(policy_value auditFile)
creds_file=$(policy_value natsCredsFile)
password_env=$(policy_value natsPasswordEnv)
token_env=$(policy_value tokenEnv)
[[ "$key_file" = /* ]] || fail "the policy names no coordinator.keyFile (an absolute path, in block style: 'coordinator:' then '  keyFile: /path')"
case "$audit_file" in
  "$state_dir"/*) ;;
  *) fail "the policy's coordinator.auditFile (${audit_file:-default /var/lib/lanekeeper/audit.jsonl}) must be inside $state_dir, the only directory the service may write: set auditFile: $state_dir/audit.jsonl" ;;
esac
if [ -n "$nats_password_file" ] && [ -z "$password_env" ]; then fail "--nats-password-file: the policy names no coordinator.natsPasswordEnv"; fi
if [ -n "$nats_creds" ] && [[ "$creds_file" != /* ]]; then fail "--nats-creds: the policy names no coordinator.natsCredsFile"; fi
if [ -n "$github_token_file" ] && [ -z "$token_env" ]; then fail "--github-token-file: the policy names no github.auth.tokenEnv"; fi
if [ -z "$key" ] && [ ! -f "$key_file" ] && [ "$start" = 1 ]; then
  fail "no coordinator key at $key_file: pass --key, or install with --no-start, create it with lanekeeper keys generate --root-public-key <root.pub>, and run this again"
fi
if [ -n "$key" ] && [ ! -f "$key.keyset.json" ]; then fail "--key $key: its trust file $key.keyset.json is missing (keys generate writes both)"; fi

echo "==> user and directories"
getent group lk-coordinator >/dev/null || groupadd --system lk-coordinator
id lk-coordinator >/dev/null 2>&1 || useradd --system --gid lk-coordinator --home-dir "$state_dir" --no-create-home --shell /usr/sbin/nologin lk-coordinator
# setgid: files written here later (hosts add rewrites the policy) stay readable by the service's group.
install -d -m 2750 -o root -g lk-coordinator "$config_dir"
install -d -m 0700 -o lk-coordinator -g lk-coordinator "$state_dir"

if [ "$packaged" = 1 ]; then
  lanekeeper=/usr/bin/lanekeeper
else
  install_artifact lanekeeper "$artifact" "$prefix" "$bin_dir"
  lanekeeper="$prefix/bin/lanekeeper"
fi

echo "==> policy, key and logins"
if [ -n "$policy" ]; then install -m 0640 -o root -g lk-coordinator "$policy" "$target_policy"; fi
if [ -n "$key" ]; then
  if [ ! -d "$(dirname "$key_file")" ]; then install -d -m 0700 -o lk-coordinator -g lk-coordinator "$(dirname "$key_file")"; fi
  install -m 0600 -o lk-coordinator -g lk-coordinator "$key" "$key_file"
  install -m 0644 -o lk-coordinator -g lk-coordinator "$key.keyset.json" "$key_file.keyset.json"
fi
# Key files made here by `lanekeeper keys generate` or `keys rotate` (run as root) become the service's: the key,
# its trust file, a next or retired key. The key stays owner-only.
for f in "$key_file" "$key_file".*; do
  if [ -f "$f" ]; then chown lk-coordinator:lk-coordinator "$f"; fi
done
if [ -f "$key_file" ]; then chmod 0600 "$key_file"; fi
if [ -n "$nats_creds" ]; then install -m 0600 -o lk-coordinator -g lk-coordinator "$nats_creds" "$creds_file"; fi
env_file="$config_dir/coordinator.env"
# set_env NAME FILE: NAME=<first line of FILE> in the root-only environment file systemd reads for the service.
set_env() {
  local value
  value=$(head -n1 "$2" | tr -d '\r')
  case "$value" in *[[:cntrl:]]* | *\'* | "") fail "$2 must hold one line without quotes or control characters" ;; esac
  touch "$env_file"
  chmod 0600 "$env_file"
  { grep -v "^$1=" "$env_file" || true; printf "%s='%s'\n" "$1" "$value"; } >"$env_file.new"
  chmod 0600 "$env_file.new"
  mv -f "$env_file.new" "$env_file"
}
if [ -n "$nats_password_file" ]; then set_env "$password_env" "$nats_password_file"; fi
if [ -n "$github_token_file" ]; then set_env "$token_env" "$github_token_file"; fi

echo "==> systemd unit"
unit=lanekeeper.service
if [ "$packaged" = 1 ]; then
  # The package's unit uses the default metrics port; a different one goes in a drop-in.
  if [ "$metrics_port" != 9470 ]; then
    install -d -m 0755 "$unit_dir/$unit.d"
    printf '[Service]\nExecStart=\nExecStart=%s serve --policy %s --metrics-host 127.0.0.1 --metrics-port %s\n' \
      "$lanekeeper" "$target_policy" "$metrics_port" >"$unit_dir/$unit.d/metrics-port.conf"
  fi
else
  sed -e "s|@LANEKEEPER@|$lanekeeper|g" -e "s|@CONFIG_DIR@|$config_dir|g" -e "s|@STATE_DIR@|$state_dir|g" \
      -e "s|@METRICS_PORT@|$metrics_port|g" "$here/lanekeeper.service" >"$unit_dir/.$unit.new"
  chmod 0644 "$unit_dir/.$unit.new"
  mv -f "$unit_dir/.$unit.new" "$unit_dir/$unit"
fi
systemctl daemon-reload
systemctl enable "$unit" >/dev/null 2>&1 || echo "    note: systemctl enable failed; start it with systemctl start lanekeeper" >&2

# serving: the service's process listens on the metrics port, which `serve` opens only once it is connected to NATS
# and holds its leader-lock bucket. Read from /proc/<pid>/net/tcp (the service's own network namespace): the
# installer itself needs no network at all.
serving() {
  local pid hex
  pid=$(systemctl show -p MainPID --value "$unit")
  [ -n "$pid" ] && [ "$pid" != 0 ] || return 1
  hex=$(printf ':%04X' "$metrics_port")
  # Column 2 is local address:port, column 4 the state (0A = LISTEN).
  awk -v p="$hex" '$2 ~ p "$" && $4 == "0A" { found = 1 } END { exit !found }' "/proc/$pid/net/tcp" "/proc/$pid/net/tcp6" 2>/dev/null
}
if [ "$start" = 1 ]; then
  systemctl restart "$unit"
  # Wait until it serves, so a failure (policy, key, NATS login) shows here, not at the first reconcile.
  for _ in $(seq 1 240); do
    if serving; then break; fi
    if systemctl is-failed --quiet "$unit" || [ "$(systemctl show -p ActiveState --value "$unit")" != active ]; then
      systemctl status --no-pager --full "$unit" >&2 || true
      fail "$unit failed to start (see above; journalctl -u lanekeeper)"
    fi
    sleep 0.5
  done
  serving || fail "$unit does not listen on 127.0.0.1:$metrics_port after 2 minutes (systemctl status lanekeeper)"
fi

policy_hint=""
[ "$target_policy" = /etc/lanekeeper-coordinator/lanekeeper.yaml ] || policy_hint=" --policy $target_policy"
cat <<NEXT

lanekeeper serve is installed as $unit ($lanekeeper, policy $target_policy).

Next steps:
  1. Operator commands use the same policy: export LANEKEEPER_POLICY=$target_policy (and the NATS password and
     GitHub token variables the policy names), then: lanekeeper status
  2. Enroll each host (install-agent.sh printed its bundle): lanekeeper hosts add enrollment.yaml --opt-in --capacity 4$policy_hint
     then: systemctl restart lanekeeper
  3. Metrics: curl http://127.0.0.1:$metrics_port/metrics
NEXT

#!/usr/bin/env bash
# Installs lanekeeper-agent on this host as a systemd service, from the release artifacts (`npm run dist`).
#
#   install-agent.sh --from <dist-dir|artifact> --host-id build01 [--nats-url nats://coord:4222]
#                    [--trust-file trust.json --root-public-key root.pub]
#
# Checks the artifact against the SHA256SUMS beside it (never downloads anything, never uses a registry),
# installs it into --prefix with `lanekeeper-agent` linked into --bin-dir, creates the system group `lanekeeper`
# (may read the status socket) and the runner user (runs the lanes), the config, state and lane directories with
# their owners and modes, runs `lanekeeper-agent init` (identity and sealing keys, config with control disabled),
# sets this host's NATS login and any path you override in the config, installs a hardened unit for the agent
# itself, starts it, and prints the enrollment bundle and the next steps. Re-running it (with a newer artifact)
# upgrades in place and keeps keys and config.
set -euo pipefail
# Files this script writes are owner-only until it sets their mode (the config may hold the NATS password).
umask 077
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib-artifacts.sh
. "$here/lib-artifacts.sh"

# The agent's own defaults (packages/shared/src/agent-config.ts): the installer writes a path into the config only
# when you override it, so the two never disagree.
DEFAULT_RUNNER_DIST=/opt/lanekeeper/runners
DEFAULT_RUN_AS_USER=lanekeeper-runner

usage() {
  usage_header
  cat <<USAGE
Options:
  --from FILE|DIR         the single executable (lanekeeper-agent-<version>-linux-<arch>), the bundle
                          (lanekeeper-agent-<version>.tar.gz, needs node >= 20.19), or a directory of npm run dist
                          output (the single executable for this machine is preferred); SHA256SUMS must be beside
                          it and list it. Required.
  --host-id ID            this host's id ([a-z0-9][a-z0-9-]{0,62}); required on the first install
  --nats-url URL          NATS URL the agent connects to (default nats://127.0.0.1:4222)
  --nats-creds FILE       NATS credentials file (JWT + nkey seed); copied next to the config, mode 0600
  --nats-user USER        NATS user for user/password logins (with --nats-password-file)
  --nats-password-file F  file holding the NATS password; the config then becomes mode 0600
  --trust-file FILE       the coordinator's trust file (\`lanekeeper keys generate\` writes it beside the
                          coordinator key as <keyFile>.keyset.json); installed as <config-dir>/trust.json.
                          Without it the agent trusts no coordinator key and refuses every intent.
  --root-public-key FILE  the offline root public key (\`lanekeeper keys root-init\` wrote it as <root-key>.pub),
                          brought here out of band, not with the trust file; required with --trust-file.
                          The install stops unless the trust file pins exactly this root: it is the only key
                          that can ever change what this host trusts.
  --prefix DIR            where the agent is installed: DIR/bin/lanekeeper-agent (default /opt/lanekeeper)
  --bin-dir DIR           where the lanekeeper-agent symlink goes, a directory on the PATH (default /usr/local/bin)
  --config-dir DIR        default /etc/lanekeeper
  --state-dir DIR         keys, replay state, journal, audit log; mode 0700 (default /var/lib/lanekeeper)
  --lane-root DIR         lane directories (default <state-dir>-lanes; never inside the 0700 state dir)
  --unit-dir DIR          where lane units and the agent unit go (default /etc/systemd/system)
  --runner-dist DIR       unpacked runner versions the agent fetches and verifies itself, nothing to stage
                          (default $DEFAULT_RUNNER_DIST, the agent's default)
  --runner-mirror-dir DIR   air-gapped hosts: a directory of actions-runner-linux-<arch>-<version>.tar.gz files
                          the agent takes archives from (runnerDownloads.mirrorDir; checksums still verified)
  --runner-mirror-url URL   air-gapped hosts: an internal prefix ending in /, e.g. https://mirror.example/runners/,
                          the agent fetches <URL><archive> from (runnerDownloads.mirrorUrlPrefix)
  --run-as-user USER      user the lanes run as; created if missing (default $DEFAULT_RUN_AS_USER, the agent's default)
  --status-socket PATH    the agent's read-only status socket (default: the agent's, /run/lanekeeper/<host-id>/agent.sock)
  --no-start              install and enable, but do not start the agent
USAGE
}

from="" host_id="" nats_url="nats://127.0.0.1:4222" nats_creds="" nats_user="" nats_password_file="" trust_file="" root_public_key=""
prefix=/opt/lanekeeper bin_dir=/usr/local/bin config_dir=/etc/lanekeeper state_dir=/var/lib/lanekeeper lane_root="" unit_dir=/etc/systemd/system
runner_dist="" runner_mirror_dir="" runner_mirror_url="" run_as_user="" status_socket="" start=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --no-start) start=0; shift; continue ;;
    --*) need_value "$1" "$#" "${2:-}" ;;
  esac
  case "$1" in
    --from) from=$(realpath "$2"); shift 2 ;;
    --host-id) host_id=$2; shift 2 ;;
    --nats-url) nats_url=$2; shift 2 ;;
    --nats-creds) nats_creds=$(realpath "$2"); shift 2 ;;
    --nats-user) nats_user=$2; shift 2 ;;
    --nats-password-file) nats_password_file=$(realpath "$2"); shift 2 ;;
    --trust-file) trust_file=$(realpath "$2"); shift 2 ;;
    --root-public-key) root_public_key=$(realpath "$2"); shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --lane-root) lane_root=$2; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    --runner-dist) runner_dist=$2; shift 2 ;;
    --runner-mirror-dir) runner_mirror_dir=$2; shift 2 ;;
    --runner-mirror-url) runner_mirror_url=$2; shift 2 ;;
    --run-as-user) run_as_user=$2; shift 2 ;;
    --status-socket) status_socket=$2; shift 2 ;;
    *) echo "install-agent: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
state_dir=${state_dir%/}
lane_root=${lane_root:-${state_dir}-lanes}
config="$config_dir/agent.yaml"

fail() { echo "install-agent: $*" >&2; exit 1; }
[ -n "$from" ] || { echo "install-agent: --from <dist-dir|artifact> is required (see --help)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || fail "run as root (it creates users, directories and a systemd unit)"
if [ -f "$config" ] && [ -z "$host_id" ]; then
  host_id=$(sed -n 's/^hostId:[[:space:]]*["'\'']\{0,1\}\([a-z0-9-]*\).*/\1/p' "$config" | head -n1)
fi
if [ -f "$config" ]; then
  configured=$(sed -n 's/^hostId:[[:space:]]*["'\'']\{0,1\}\([a-z0-9-]*\).*/\1/p' "$config" | head -n1)
  [ "$configured" = "$host_id" ] || fail "$config belongs to host '$configured', not '$host_id': an upgrade keeps the host id (uninstall with --purge to start over)"
fi
[[ "$host_id" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || fail "--host-id must match [a-z0-9][a-z0-9-]{0,62}, got '${host_id}'"
[[ "${run_as_user:-$DEFAULT_RUN_AS_USER}" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || fail "--run-as-user must be a system user name, got '${run_as_user}'"
for d in "$prefix" "$bin_dir" "$config_dir" "$state_dir" "$lane_root" "$unit_dir" "${runner_dist:-/}" "${runner_mirror_dir:-/}" "${status_socket:-/}"; do
  [[ "$d" = /* ]] || fail "paths must be absolute, got '$d'"
done
case "$lane_root/" in "$state_dir"/*) fail "--lane-root must not be inside --state-dir (mode 0700: the runner user could not reach its lane)";; esac
if [ -n "$nats_creds" ] && [ -n "$nats_user" ]; then fail "use either --nats-creds or --nats-user/--nats-password-file"; fi
if [ -n "$nats_user" ] && [ -z "$nats_password_file" ]; then fail "--nats-user needs --nats-password-file"; fi
if [ -z "$nats_user" ] && [ -n "$nats_password_file" ]; then fail "--nats-password-file needs --nats-user"; fi
if [ -n "$trust_file" ] && [ -z "$root_public_key" ]; then fail "--trust-file needs --root-public-key (the root public key from the offline medium, to check the trust file pins it)"; fi
if [ -z "$trust_file" ] && [ -n "$root_public_key" ]; then fail "--root-public-key needs --trust-file"; fi
artifact=$(pick_artifact lanekeeper-agent "$from")
verify_artifact "$artifact"
if [ -n "$trust_file" ]; then
  # Pin check before anything is touched: the trust file's active root keys must be exactly this root (key id =
  # hex SHA-256 of the raw 32-byte Ed25519 public key), so a trust file swapped on the way cannot slip in
  # another root. openssl and awk only: the host may have no node (the single executable carries its own).
  command -v openssl >/dev/null || fail "openssl is needed to check the trust file's root key"
  openssl pkey -pubin -in "$root_public_key" -noout -text 2>/dev/null | head -n1 | grep -qi '^ED25519 Public-Key' ||
    fail "--root-public-key is not an Ed25519 public key in PEM"
  root_id=$(openssl pkey -pubin -in "$root_public_key" -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1)
  # formatTrustFile's layout (JSON, two-space indent): the active keyIds of the one rootKeys array.
  [ "$(grep -c '"rootKeys"' "$trust_file")" = 1 ] || fail "--trust-file is not a trust file written by lanekeeper keys generate (one rootKeys array)"
  roots=$(awk '
    /"rootKeys"[[:space:]]*:/ { inside = 1; next }
    inside && /^  \]/ { inside = 0 }
    inside && /"keyId"/ { id = $0; sub(/.*"keyId"[[:space:]]*:[[:space:]]*"/, "", id); sub(/".*/, "", id) }
    inside && /"status"[[:space:]]*:[[:space:]]*"active"/ { printf "%s%s", sep, id; sep = ", " }
  ' "$trust_file")
  if [ "$roots" != "$root_id" ]; then
    fail "the trust file pins root key(s) [${roots}], not ${root_id} from --root-public-key: get the trust file again from the coordinator (lanekeeper keys generate --root-public-key)"
  fi
  echo "==> root key $root_id pinned by the trust file"
fi

echo "==> users and directories"
getent group lanekeeper >/dev/null || groupadd --system lanekeeper
runner_user=${run_as_user:-$DEFAULT_RUN_AS_USER}
id "$runner_user" >/dev/null 2>&1 || useradd --system --gid lanekeeper --home-dir "$lane_root" --no-create-home --shell /usr/sbin/nologin "$runner_user"
install -d -m 0755 -o root -g root "$unit_dir" "${runner_dist:-$DEFAULT_RUNNER_DIST}"
install -d -m 0750 -o root -g lanekeeper "$config_dir"
install -d -m 0700 -o root -g root "$state_dir"
install -d -m 0755 -o root -g root "$lane_root"

install_artifact lanekeeper-agent "$artifact" "$prefix" "$bin_dir"
agent="$prefix/bin/lanekeeper-agent"

# yaml_string VALUE: VALUE as a double-quoted YAML (and JSON) string.
yaml_string() {
  local s=$1
  case "$s" in *[[:cntrl:]]*) return 1 ;; esac
  s=${s//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}
# set_key FILE KEY TEXT: replaces the top-level KEY (and the lines indented below it) with `KEY:TEXT`.
set_key() {
  awk -v k="$2" 'skip && /^[[:space:]-]/ { next } { skip = 0 } index($0, k ":") == 1 { skip = 1; next } { print }' "$1" >"$1.tmp"
  printf '%s:%s\n' "$2" "$3" >>"$1.tmp"
  mv -f "$1.tmp" "$1"
}

echo "==> identity and config"
if [ -f "$config" ]; then
  echo "    $config exists; keeping it and the keys"
else
  # init takes only the host id and the two paths; it writes an observe-only config (control.enabled: false)
  # and keeps the private keys in the state directory. The rest of this host's settings are set below.
  "$agent" init --host-id "$host_id" --config "$config" --state-dir "$state_dir" >"$state_dir/enrollment.yaml"
  if [ -n "$trust_file" ]; then install -m 0640 -o root -g lanekeeper "$trust_file" "$config_dir/trust.json"; fi
  if [ -n "$nats_creds" ]; then install -m 0600 -o root -g root "$nats_creds" "$config_dir/nats.creds"; fi
  # Edit a copy (owner-only from the start: it may get the NATS password), then move it into place.
  work="$config.new"
  install -m 0600 -o root -g root "$config" "$work"
  nats="$(printf '\n  url: %s' "$(yaml_string "$nats_url")")"
  if [ -n "$nats_creds" ]; then nats+="$(printf '\n  credsFile: %s' "$(yaml_string "$config_dir/nats.creds")")"; fi
  if [ -n "$nats_user" ]; then
    password=$(head -n1 "$nats_password_file" | tr -d '\r')
    quoted=$(yaml_string "$password") || fail "the NATS password in $nats_password_file has control characters"
    nats+="$(printf '\n  user: %s\n  password: %s' "$(yaml_string "$nats_user")" "$quoted")"
  fi
  set_key "$work" nats "$nats"
  if [ -n "$trust_file" ]; then set_key "$work" trustFile " $(yaml_string "$config_dir/trust.json")"; fi
  set_key "$work" unitDir " $(yaml_string "$unit_dir")"
  set_key "$work" laneRoot " $(yaml_string "$lane_root")"
  # Left to the agent's defaults unless overridden, so installer and agent agree on one path.
  if [ -n "$status_socket" ]; then set_key "$work" statusSocket " $(yaml_string "$status_socket")"; fi
  if [ -n "$runner_dist" ]; then set_key "$work" runnerDistPath " $(yaml_string "$runner_dist")"; fi
  if [ -n "$run_as_user" ]; then set_key "$work" runAsUser " $(yaml_string "$run_as_user")"; fi
  # Runner versions are fetched and checksum-verified by the agent; a mirror only changes where from.
  mirror=""
  if [ -n "$runner_mirror_dir" ]; then mirror+="$(printf '\n  mirrorDir: %s' "$(yaml_string "$runner_mirror_dir")")"; fi
  if [ -n "$runner_mirror_url" ]; then mirror+="$(printf '\n  mirrorUrlPrefix: %s' "$(yaml_string "$runner_mirror_url")")"; fi
  if [ -n "$mirror" ]; then set_key "$work" runnerDownloads "$mirror"; fi
  # A password in the file makes it owner-only; otherwise the lanekeeper group may read it.
  if [ -z "$nats_user" ]; then chmod 0640 "$work"; chgrp lanekeeper "$work"; fi
  mv -f "$work" "$config"
  chmod 0644 "$state_dir/enrollment.yaml"
fi

echo "==> systemd unit"
# The status socket's directory must be writable by the unit: the configured socket's (the agent's default
# /run/lanekeeper/<hostId> is inside its RuntimeDirectory).
socket=$(sed -n 's/^statusSocket:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$config" | head -n1)
socket=${socket:-/run/lanekeeper/$host_id/agent.sock}
sed -e "s|@AGENT@|$agent|g" -e "s|@CONFIG_DIR@|$config_dir|g" \
    -e "s|@STATE_DIR@|$state_dir|g" -e "s|@LANE_ROOT@|$lane_root|g" -e "s|@UNIT_DIR@|$unit_dir|g" \
    -e "s|@SOCKET_DIR@|$(dirname "$socket")|g" \
    "$here/lanekeeper-agent.service" >"$unit_dir/.lanekeeper-agent.service.new"
chmod 0644 "$unit_dir/.lanekeeper-agent.service.new"
mv -f "$unit_dir/.lanekeeper-agent.service.new" "$unit_dir/lanekeeper-agent.service"
systemctl daemon-reload
systemctl enable lanekeeper-agent.service >/dev/null 2>&1 || echo "    note: systemctl enable failed; start it with systemctl start lanekeeper-agent" >&2
if [ "$start" = 1 ]; then
  systemctl restart lanekeeper-agent.service
  # Wait for the status socket, so a failure (a bad config value, say) shows here and not at the operator's
  # first `status`.
  for _ in $(seq 1 120); do
    if "$agent" status --config "$config" >/dev/null 2>&1; then break; fi
    if systemctl is-failed --quiet lanekeeper-agent.service; then
      systemctl status --no-pager lanekeeper-agent.service >&2 || true
      fail "lanekeeper-agent.service failed to start"
    fi
    sleep 0.5
  done
  "$agent" status --config "$config" >/dev/null 2>&1 || fail "lanekeeper-agent did not answer on $socket"
fi

status_cmd="lanekeeper-agent status"
[ "$config" = /etc/lanekeeper/agent.yaml ] || status_cmd+=" --config $config"
cat <<NEXT

lanekeeper-agent is installed on $host_id (control is DISABLED: it only observes and reports).

Next steps:
  1. On the coordinator, enroll this host with its bundle (public keys only):
       lanekeeper hosts add enrollment.yaml --opt-in --capacity 4   # copy $state_dir/enrollment.yaml over first
  2. Install the coordinator's trust file here if you did not pass --trust-file (on the coordinator,
     \`lanekeeper keys generate\` wrote it as <keyFile>.keyset.json), after checking its rootKeys name
     the root key id from your offline medium (or re-run this installer with --trust-file --root-public-key):
       install -m 0640 -g lanekeeper trust.json $config_dir/trust.json  (and set trustFile in $config)
  3. Here, allow what lanekeeper may do, in $config under 'control':
       enabled: true, scopes, pools, backends, actions, images (by digest), maxLanes
     Runner versions are downloaded and checksum-verified by the agent: nothing to unpack by hand. A host
     without access to GitHub's release hosts uses a mirror: --runner-mirror-dir or --runner-mirror-url
     here, or runnerDownloads.mirrorDir / mirrorUrlPrefix in $config (docs/agent.md)
     then: systemctl restart lanekeeper-agent
  4. Check: $status_cmd
  5. Keep the clock synced (chrony): intents expire within two minutes.

Enrollment bundle ($state_dir/enrollment.yaml):
NEXT
cat "$state_dir/enrollment.yaml"

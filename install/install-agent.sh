#!/usr/bin/env bash
# Installs lanekeeper-agent on this host as a systemd service.
#
#   install-agent.sh --host-id build01 [--nats-url nats://coord:4222] [--trust-file trust.json --root-public-key root.pub]
#                    [--tarball agent.tgz]
#
# Creates the system group `lanekeeper` (may read the status socket) and the runner user (runs the lanes), the
# config, state and lane directories with their owners and modes, installs the agent from this repository (or
# from packed tarballs) into --prefix, runs `lanekeeper-agent init` (identity and sealing keys, config with
# control disabled), sets this host's paths and NATS login in the config, installs a hardened unit for the agent
# itself, starts it, and prints the enrollment bundle and the next steps. Re-running it keeps keys and config.
set -euo pipefail

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  --host-id ID            this host's id ([a-z0-9][a-z0-9-]{0,62}); required
  --nats-url URL          NATS URL the agent connects to (default nats://127.0.0.1:4222)
  --nats-creds FILE       NATS credentials file (JWT + nkey seed); copied next to the config, mode 0600
  --nats-user USER        NATS user for user/password logins (with --nats-password-file)
  --nats-password-file F  file holding the NATS password; the config then becomes mode 0600
  --trust-file FILE       the coordinator's trust file (`lanekeeper keys generate` writes it beside the
                          coordinator key as <keyFile>.keyset.json); installed as <config-dir>/trust.json.
                          Without it the agent trusts no coordinator key and refuses every intent.
  --root-public-key FILE  the offline root public key (`lanekeeper keys root-init` wrote it as <root-key>.pub),
                          brought here out of band, not with the trust file; required with --trust-file.
                          The install stops unless the trust file pins exactly this root: it is the only key
                          that can ever change what this host trusts.
  --prefix DIR            where the agent is installed (default /opt/lanekeeper)
  --config-dir DIR        default /etc/lanekeeper
  --state-dir DIR         keys, replay state, journal, audit log; mode 0700 (default /var/lib/lanekeeper)
  --lane-root DIR         lane directories (default <state-dir>-lanes; never inside the 0700 state dir)
  --unit-dir DIR          where lane units and the agent unit go (default /etc/systemd/system)
  --runner-dist DIR       runner distributions, one directory per version: DIR/2.330.0/run.sh
                          (default /opt/lanekeeper-runners)
  --run-as-user USER      user the lanes run as; created if missing (default lk-runner)
  --status-socket PATH    the agent's read-only status socket (default /run/lanekeeper/agent.sock)
  --tarball FILE          install from packed tarballs (repeatable: shared and agent) instead of this repository
  --no-start              install and enable, but do not start the agent
USAGE
}

host_id="" nats_url="nats://127.0.0.1:4222" nats_creds="" nats_user="" nats_password_file="" trust_file="" root_public_key=""
prefix=/opt/lanekeeper config_dir=/etc/lanekeeper state_dir=/var/lib/lanekeeper lane_root="" unit_dir=/etc/systemd/system
runner_dist=/opt/lanekeeper-runners run_as_user=lk-runner status_socket=/run/lanekeeper/agent.sock start=1 tarballs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --host-id) host_id=$2; shift 2 ;;
    --nats-url) nats_url=$2; shift 2 ;;
    --nats-creds) nats_creds=$(realpath "$2"); shift 2 ;;
    --nats-user) nats_user=$2; shift 2 ;;
    --nats-password-file) nats_password_file=$(realpath "$2"); shift 2 ;;
    --trust-file) trust_file=$(realpath "$2"); shift 2 ;;
    --root-public-key) root_public_key=$(realpath "$2"); shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --lane-root) lane_root=$2; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    --runner-dist) runner_dist=$2; shift 2 ;;
    --run-as-user) run_as_user=$2; shift 2 ;;
    --status-socket) status_socket=$2; shift 2 ;;
    --tarball) tarballs+=("$(realpath "$2")"); shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-agent: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
state_dir=${state_dir%/}
lane_root=${lane_root:-${state_dir}-lanes}

fail() { echo "install-agent: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (it creates users, directories and a systemd unit)"
[[ "$host_id" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || fail "--host-id must match [a-z0-9][a-z0-9-]{0,62}, got '${host_id}'"
[[ "$run_as_user" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || fail "--run-as-user must be a system user name, got '${run_as_user}'"
for d in "$prefix" "$config_dir" "$state_dir" "$lane_root" "$unit_dir" "$runner_dist" "$status_socket"; do
  [[ "$d" = /* ]] || fail "paths must be absolute, got '$d'"
done
case "$lane_root/" in "$state_dir"/*) fail "--lane-root must not be inside --state-dir (mode 0700: the runner user could not reach its lane)";; esac
if [ -n "$nats_creds" ] && [ -n "$nats_user" ]; then fail "use either --nats-creds or --nats-user/--nats-password-file"; fi
if [ -n "$nats_user" ] && [ -z "$nats_password_file" ]; then fail "--nats-user needs --nats-password-file"; fi
if [ -z "$nats_user" ] && [ -n "$nats_password_file" ]; then fail "--nats-password-file needs --nats-user"; fi
node_bin=$(command -v node) || fail "node (>= 20) is required on the host"
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "node >= 20 is required, found $("$node_bin" --version)"
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "$trust_file" ] && [ -z "$root_public_key" ]; then fail "--trust-file needs --root-public-key (the root public key from the offline medium, to check the trust file pins it)"; fi
if [ -z "$trust_file" ] && [ -n "$root_public_key" ]; then fail "--root-public-key needs --trust-file"; fi
if [ -n "$trust_file" ]; then
  # Pin check before anything is touched: the trust file's active root keys must be exactly this root (key id =
  # hex SHA-256 of the raw 32-byte Ed25519 public key), so a trust file swapped on the way cannot slip in
  # another root.
  LK_TRUST_FILE="$trust_file" LK_ROOT_PUB="$root_public_key" "$node_bin" -e '
    const { createHash, createPublicKey } = require("node:crypto");
    const { readFileSync } = require("node:fs");
    const die = (m) => { console.error(`install-agent: ${m}`); process.exit(1); };
    let raw;
    try {
      const jwk = createPublicKey(readFileSync(process.env.LK_ROOT_PUB, "utf8")).export({ format: "jwk" });
      if (jwk.crv !== "Ed25519") die("--root-public-key is not an Ed25519 public key");
      raw = Buffer.from(jwk.x, "base64url");
    } catch (err) { die(`--root-public-key cannot be read as a PEM public key: ${err.message}`); }
    const rootId = createHash("sha256").update(raw).digest("hex");
    let doc;
    try { doc = JSON.parse(readFileSync(process.env.LK_TRUST_FILE, "utf8")); } catch (err) { die(`--trust-file is not valid JSON: ${err.message}`); }
    const roots = Array.isArray(doc.rootKeys) ? doc.rootKeys.filter((k) => k && k.status === "active").map((k) => k.keyId) : [];
    if (roots.length !== 1 || roots[0] !== rootId) {
      die(`the trust file pins root key(s) [${roots.join(", ")}], not ${rootId} from --root-public-key: get the trust file again from the coordinator (lanekeeper keys generate --root-public-key)`);
    }
    console.log(`==> root key ${rootId} pinned by the trust file`);
  ' || exit 1
fi

echo "==> users and directories"
getent group lanekeeper >/dev/null || groupadd --system lanekeeper
id "$run_as_user" >/dev/null 2>&1 || useradd --system --gid lanekeeper --home-dir "$lane_root" --no-create-home --shell /usr/sbin/nologin "$run_as_user"
install -d -m 0755 -o root -g root "$prefix" "$unit_dir" "$runner_dist"
install -d -m 0750 -o root -g lanekeeper "$config_dir"
install -d -m 0700 -o root -g root "$state_dir"
install -d -m 0755 -o root -g root "$lane_root"

echo "==> agent into $prefix"
if [ ${#tarballs[@]} -eq 0 ]; then
  [ -f "$repo/packages/agent/dist/cli.js" ] || (cd "$repo" && npm run build >/dev/null)
  pack_dir=$(mktemp -d)
  trap 'rm -rf "$pack_dir"' EXIT
  (cd "$repo" && npm pack --silent --pack-destination "$pack_dir" -w @lanekeeper/shared -w @lanekeeper/agent >/dev/null)
  tarballs=("$pack_dir"/*.tgz)
fi
[ -f "$prefix/package.json" ] || echo '{"name":"lanekeeper-install","private":true}' >"$prefix/package.json"
(cd "$prefix" && npm install --omit=dev --no-audit --no-fund --loglevel=error "${tarballs[@]}" >/dev/null)
agent_js="$prefix/node_modules/@lanekeeper/agent/bin/lanekeeper-agent.js"
[ -f "$agent_js" ] || fail "the agent was not installed at $agent_js"

echo "==> identity and config"
config="$config_dir/agent.yaml"
if [ -f "$config" ]; then
  echo "    $config exists; keeping it and the keys"
else
  # init takes only the host id and the two paths; it writes an observe-only config (control.enabled: false)
  # and keeps the private keys in the state directory. The rest of this host's settings are set below.
  "$node_bin" "$agent_js" init --host-id "$host_id" --config "$config" --state-dir "$state_dir" >"$state_dir/enrollment.yaml"
  if [ -n "$trust_file" ]; then install -m 0640 -o root -g lanekeeper "$trust_file" "$config_dir/trust.json"; fi
  if [ -n "$nats_creds" ]; then install -m 0600 -o root -g root "$nats_creds" "$config_dir/nats.creds"; fi
  # Set the paths and the NATS login with the agent's own YAML library, and validate the result with the
  # agent's own config parser before it replaces the file (a bad value fails here, not at the first start).
  LK_CONFIG="$config" LK_PREFIX="$prefix" LK_NATS_URL="$nats_url" LK_NATS_USER="$nats_user" \
  LK_NATS_PASSWORD_FILE="$nats_password_file" LK_NATS_CREDS="${nats_creds:+$config_dir/nats.creds}" \
  LK_TRUST="${trust_file:+$config_dir/trust.json}" LK_UNIT_DIR="$unit_dir" LK_LANE_ROOT="$lane_root" \
  LK_RUNNER_DIST="$runner_dist" LK_RUN_AS="$run_as_user" LK_SOCKET="$status_socket" \
  "$node_bin" --input-type=module -e '
    import { readFileSync, renameSync, writeFileSync } from "node:fs";
    import { createRequire } from "node:module";
    import { join } from "node:path";
    import { pathToFileURL } from "node:url";
    const e = process.env;
    const req = createRequire(join(e.LK_PREFIX, "package.json"));
    const { parseDocument } = req("yaml");
    const shared = await import(pathToFileURL(join(e.LK_PREFIX, "node_modules/@lanekeeper/shared/dist/index.js")).href);
    const doc = parseDocument(readFileSync(e.LK_CONFIG, "utf8"));
    const nats = { url: e.LK_NATS_URL };
    if (e.LK_NATS_CREDS) nats.credsFile = e.LK_NATS_CREDS;
    if (e.LK_NATS_USER) {
      nats.user = e.LK_NATS_USER;
      nats.password = readFileSync(e.LK_NATS_PASSWORD_FILE, "utf8").trim();
    }
    doc.set("nats", doc.createNode(nats));
    if (e.LK_TRUST) doc.set("trustFile", e.LK_TRUST);
    doc.set("statusSocket", e.LK_SOCKET);
    doc.set("unitDir", e.LK_UNIT_DIR);
    doc.set("laneRoot", e.LK_LANE_ROOT);
    doc.set("runnerDistPath", e.LK_RUNNER_DIST);
    doc.set("runAsUser", e.LK_RUN_AS);
    const text = doc.toString();
    shared.parseAgentConfig(text);
    const tmp = `${e.LK_CONFIG}.tmp`;
    // A password in the file makes it owner-only; otherwise the lanekeeper group may read it.
    writeFileSync(tmp, text, { mode: e.LK_NATS_USER ? 0o600 : 0o640 });
    renameSync(tmp, e.LK_CONFIG);
  ' || fail "could not set this host's settings in $config (see above); it holds the observe-only config init wrote: edit it by hand"
  if [ -n "$nats_user" ]; then chmod 0600 "$config"; else chmod 0640 "$config"; chgrp lanekeeper "$config"; fi
  chmod 0644 "$state_dir/enrollment.yaml"
fi

echo "==> systemd unit"
socket_dir=$(dirname "$status_socket")
sed -e "s|@NODE@|$node_bin|g" -e "s|@PREFIX@|$prefix|g" -e "s|@CONFIG_DIR@|$config_dir|g" \
    -e "s|@STATE_DIR@|$state_dir|g" -e "s|@LANE_ROOT@|$lane_root|g" -e "s|@UNIT_DIR@|$unit_dir|g" \
    -e "s|@SOCKET_DIR@|$socket_dir|g" \
    "$repo/install/lanekeeper-agent.service" >"$unit_dir/lanekeeper-agent.service"
chmod 0644 "$unit_dir/lanekeeper-agent.service"
systemctl daemon-reload
systemctl enable lanekeeper-agent.service >/dev/null 2>&1 || echo "    note: systemctl enable failed; start it with systemctl start lanekeeper-agent" >&2
if [ "$start" = 1 ]; then
  systemctl restart lanekeeper-agent.service
  # Wait for the status socket, so a failure shows here and not at the operator's first `status`.
  for _ in $(seq 1 120); do
    if "$node_bin" "$agent_js" status --socket "$status_socket" >/dev/null 2>&1; then break; fi
    if systemctl is-failed --quiet lanekeeper-agent.service; then
      systemctl status --no-pager lanekeeper-agent.service >&2 || true
      fail "lanekeeper-agent.service failed to start"
    fi
    sleep 0.5
  done
  "$node_bin" "$agent_js" status --socket "$status_socket" >/dev/null 2>&1 || fail "lanekeeper-agent did not answer on $status_socket"
fi

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
     then: systemctl restart lanekeeper-agent
  4. Check: $node_bin $agent_js status --socket $status_socket
  5. Keep the clock synced (chrony): intents expire within two minutes.

Enrollment bundle ($state_dir/enrollment.yaml):
NEXT
cat "$state_dir/enrollment.yaml"

#!/usr/bin/env bash
# Builds a local podman image holding the runner emulator, from files on this machine only (no registry):
# the host's `node` binary, bash and a few coreutils with the libraries `ldd` lists (and the dynamic
# loader), /etc/passwd with a `runner` user (uid 1001), and test/harness/runner-emulator at /home/runner,
# laid out like ghcr.io/actions/actions-runner (WORKDIR /home/runner, USER runner, no CMD,
# RUNNER_MANUALLY_TRAP_SIG=1, ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT=1).
#
# The tag is a hash of everything that goes into the image, so a second run with the same inputs finds the
# image and only prints it. Output on stdout, one `key=value` per line:
#   reference=localhost/lanekeeper/runner-emulator:<hash>
#   id=<image id>
#   digest=sha256:<manifest digest>
#   digestReference=localhost/lanekeeper/runner-emulator@sha256:<manifest digest>
#   built=true|false
# Progress goes to stderr. Environment: LK_RUNNER_IMAGE_REPO (default localhost/lanekeeper/runner-emulator),
# LK_RUNNER_EMULATOR_DIR (default ../runner-emulator next to this script), NODE_BIN (default `command -v node`),
# LK_RUNNER_IMAGE_KEEP_OLD (set: keep older tags of the repository; by default a build removes them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
emu_dir="$(cd "${LK_RUNNER_EMULATOR_DIR:-$here/../runner-emulator}" && pwd)"
repo="${LK_RUNNER_IMAGE_REPO:-localhost/lanekeeper/runner-emulator}"
node_bin="$(readlink -f "${NODE_BIN:-$(command -v node)}")"
runner_uid=1001
runner_gid=1001

log() { echo "build-runner-image: $*" >&2; }

for tool in podman ldd tar sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || { log "missing required tool: $tool"; exit 1; }
done
if [ ! -f /etc/containers/containers.conf ] || ! grep -q 'runtime *= *"runc"' /etc/containers/containers.conf; then
  log "warning: /etc/containers/containers.conf does not select runc; run scripts/setup-machine.sh (DESIGN.md 9)"
fi

# Programs in the image. bash runs config.sh/run.sh; env serves the `#!/usr/bin/env node` shebangs; the
# coreutils are what the runner's scripts call (cp, dirname, readlink, sleep...) plus what an operator or a
# drain script expects in a runner image (ps, pgrep, as in ARC's graceful-stop.sh).
tools=(bash env cat cp mv rm mkdir ls id sleep dirname readlink chmod touch stat head tail tr wc grep sed uname ps pgrep)
tool_paths=()
for t in "${tools[@]}"; do
  tool_paths+=("$(command -v "$t")") || { log "missing program for the image: $t"; exit 1; }
done
# Few processes on purpose: the test machine is often loaded, and each fork counts.
mapfile -t programs < <(readlink -f "$node_bin" "${tool_paths[@]}")

# Every shared object a program needs, as the path ldd prints (the loader included). With several files
# ldd prints a "<file>:" header before each list; those lines are skipped.
mapfile -t libs < <(ldd "${programs[@]}" | awk '$1 ~ /:$/ { next } $2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' | sort -u)

# Emulator files: the tracked sources only, never state a local run left behind.
mapfile -t emu_files < <(cd "$emu_dir" && find . -type f \
  ! -name '.runner' ! -name '.credentials*' ! -name '.env' ! -name '.path' ! -name '.service' \
  ! -name 'run-helper.sh' ! -path './_diag/*' ! -path './_work/*' | LC_ALL=C sort)

# Content hash: this script, every program and library (by resolved content), every emulator file with its
# mode, and the uid. Same inputs, same tag.
content_hash="$(
  {
    sha256sum "$here/build-runner-image.sh" | cut -d' ' -f1
    echo "uid=$runner_uid gid=$runner_gid repo=$repo"
    printf '%s\n' "${programs[@]}" "${libs[@]}"
    sha256sum $(readlink -f "${programs[@]}" "${libs[@]}") | cut -d' ' -f1
    cd "$emu_dir" && stat -c '%n %a' "${emu_files[@]}" && sha256sum "${emu_files[@]}"
  } | sha256sum | cut -c1-16
)"
reference="$repo:$content_hash"

print_result() {
  local id digest
  id="$(podman image inspect --format '{{.Id}}' "$reference")"
  digest="$(podman image inspect --format '{{.Digest}}' "$reference")"
  echo "reference=$reference"
  echo "id=$id"
  echo "digest=$digest"
  echo "digestReference=$repo@$digest"
  echo "built=$1"
}

# One build at a time on this machine (parallel test files share the image).
exec 9>/tmp/lk-runner-image.lock
flock 9

if podman image exists "$reference"; then
  log "up to date: $reference"
  print_result false
  exit 0
fi

started=$(date +%s.%N)
work="$(mktemp -d /var/tmp/lk-runner-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

# Merged-/usr layout, as on Debian 12: /bin, /lib, /lib64 and /sbin point into /usr.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,tmp,root,home,var/tmp,dev,proc,sys,run}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 700 "$root/root"

# Copies a file to the same place in the image, following symlinks in its directory and in its name, so
# the file lands under /usr and keeps the name the loader (or a shebang) asks for.
place() {
  local src="$1" dir base
  dir="$(readlink -f "$(dirname "$src")")"
  base="$(basename "$src")"
  mkdir -p "$root$dir"
  cp -L --preserve=mode "$src" "$root$dir/$base"
}
for p in "${programs[@]}"; do place "$p"; done
for l in "${libs[@]}"; do place "$l"; done
ln -sf bash "$root/usr/bin/sh"
# node must be reachable as /usr/bin/node for `#!/usr/bin/env node` with the image's PATH.
[ -e "$root/usr/bin/node" ] || ln -s "$node_bin" "$root/usr/bin/node"

cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/bash
runner:x:$runner_uid:$runner_gid:runner:/home/runner:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<EOF
root:x:0:
runner:x:$runner_gid:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"

mkdir -p "$root/home/runner"
for f in "${emu_files[@]}"; do
  mkdir -p "$root/home/runner/$(dirname "$f")"
  cp --preserve=mode "$emu_dir/$f" "$root/home/runner/$f"
done
chown -R "$runner_uid:$runner_gid" "$root/home/runner"

log "packing rootfs ($(du -sh "$root" | cut -f1))"
tar --numeric-owner --sort=name --mtime=@0 -C "$root" -cf "$work/rootfs.tar" .

log "importing $reference"
podman import \
  --change 'WORKDIR /home/runner' \
  --change 'USER runner' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'ENV HOME=/home/runner' \
  --change 'ENV RUNNER_MANUALLY_TRAP_SIG=1' \
  --change 'ENV ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT=1' \
  --change 'ENV ImageOS=ubuntu24' \
  --change "LABEL org.lanekeeper.runner-emulator.content-hash=$content_hash" \
  --message "lanekeeper runner emulator $content_hash" \
  --quiet "$work/rootfs.tar" "$reference" >/dev/null

log "built $reference in $(echo "$(date +%s.%N) - $started" | bc 2>/dev/null || echo '?') s"

# Every change to the emulator makes a new ~110 MB image; drop this repository's older tags unless asked to
# keep them. `podman rmi` without --force leaves images that containers still use.
if [ -z "${LK_RUNNER_IMAGE_KEEP_OLD:-}" ]; then
  while read -r old; do
    [ "$old" = "$reference" ] && continue
    podman rmi "$old" >/dev/null 2>&1 && log "removed older $old" || true
  done < <(podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repo" 2>/dev/null)
fi

print_result true

# Shared by install-agent.sh and install-coordinator.sh (sourced, not run): picks a release artifact from
# `--from <file|dir>`, checks it against the SHA256SUMS beside it, and installs it into <prefix>/bin (and
# <prefix>/lib for the bundle), with a symlink in the bin directory on the PATH. Never downloads anything.
#
# Callers define fail() first.

# The architecture name `npm run dist` uses in single-executable names (node's process.arch).
artifact_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# pick_artifact CLI FROM: prints the artifact file to install. FROM is the single executable
# (<cli>-<version>-linux-<arch>), the bundle (<cli>-<version>.tar.gz) or a directory of `npm run dist` output,
# where the single executable for this machine wins over the bundle. The version part must start with a digit,
# so `lanekeeper-…` never picks `lanekeeper-agent-…`.
pick_artifact() {
  local cli=$1 from=$2 arch found=()
  if [ -d "$from" ]; then
    arch=$(artifact_arch)
    shopt -s nullglob
    found=("$from/$cli"-[0-9]*-linux-"$arch")
    [ ${#found[@]} -eq 0 ] && found=("$from/$cli"-[0-9]*.tar.gz)
    shopt -u nullglob
    [ ${#found[@]} -eq 0 ] && fail "no $cli artifact in $from (expected $cli-<version>-linux-$arch or $cli-<version>.tar.gz from npm run dist)"
    [ ${#found[@]} -gt 1 ] && fail "several $cli artifacts in $from (${found[*]##*/}); pass the one to install with --from <file>"
    echo "${found[0]}"
  elif [ -f "$from" ]; then
    case "${from##*/}" in
      "$cli"-[0-9]*) echo "$from" ;;
      *) fail "--from $from is not a $cli artifact ($cli-<version>-linux-<arch> or $cli-<version>.tar.gz)" ;;
    esac
  else
    fail "--from $from: no such file or directory"
  fi
}

# verify_artifact FILE: the SHA256SUMS beside FILE must list FILE with its hash. Refuses a missing sums file,
# a file it does not list, and a mismatch.
verify_artifact() {
  local file=$1 dir name sums want got
  dir=$(dirname "$file") name=$(basename "$file") sums="$(dirname "$file")/SHA256SUMS"
  [ -f "$sums" ] || fail "no SHA256SUMS beside $file: copy it with the artifact (npm run dist writes it); refusing to install an unchecked file"
  want=$(awk -v f="$name" '$2 == f || $2 == "*" f { print $1; exit }' "$sums")
  [ -n "$want" ] || fail "$sums does not list $name; refusing to install an unchecked file"
  got=$(sha256sum "$file" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "$name does not match $sums (sha256 $got, expected $want): the file is damaged or not the released one"
  echo "==> $name matches $dir/SHA256SUMS"
}

# install_artifact CLI FILE PREFIX BIN_DIR: installs the checked artifact as PREFIX/bin/CLI (the single
# executable, or the bundle's launcher with PREFIX/lib/CLI.mjs) and links BIN_DIR/CLI to it. Each file is
# written beside its final name and renamed over it, so a running service keeps its old binary until restarted
# and an interrupted upgrade leaves the previous version in place.
install_artifact() {
  local cli=$1 file=$2 prefix=$3 bin_dir=$4 stage
  install -d -m 0755 -o root -g root "$prefix" "$prefix/bin" "$bin_dir"
  stage=$(mktemp -d "$prefix/.install-XXXXXX")
  # shellcheck disable=SC2064 # expand now: the trap must remove this staging directory
  trap "rm -rf '$stage'" EXIT
  case "$file" in
    *.tar.gz)
      tar -xzf "$file" -C "$stage" --no-same-owner --no-same-permissions
      [ -f "$stage/bin/$cli" ] && [ -f "$stage/lib/$cli.mjs" ] || fail "$(basename "$file") holds no bin/$cli and lib/$cli.mjs"
      install -d -m 0755 -o root -g root "$prefix/lib"
      install -m 0644 -o root -g root "$stage/lib/$cli.mjs" "$prefix/lib/.$cli.mjs.new"
      mv -f "$prefix/lib/.$cli.mjs.new" "$prefix/lib/$cli.mjs"
      install -m 0755 -o root -g root "$stage/bin/$cli" "$prefix/bin/.$cli.new"
      ;;
    *)
      install -m 0755 -o root -g root "$file" "$prefix/bin/.$cli.new"
      ;;
  esac
  mv -f "$prefix/bin/.$cli.new" "$prefix/bin/$cli"
  # A single executable replacing a bundle leaves no stale bundle behind.
  case "$file" in *.tar.gz) ;; *) rm -f "$prefix/lib/$cli.mjs"; rmdir "$prefix/lib" 2>/dev/null || true ;; esac
  rm -rf "$stage"
  trap - EXIT
  if [ "$bin_dir" != "$prefix/bin" ]; then ln -sfn "$prefix/bin/$cli" "$bin_dir/$cli"; fi
  "$prefix/bin/$cli" --help >/dev/null 2>&1 || fail "the installed $prefix/bin/$cli does not run; the bundle needs node >= 20.19 on the PATH, the single executable nothing"
  echo "==> $cli $("$prefix/bin/$cli" --version 2>/dev/null | head -n1 || true) in $prefix/bin, linked from $bin_dir"
}

# need_value OPTION ARGC [VALUE]: an option that takes a value must have one (a clear usage error, not bash's
# "unbound variable").
need_value() {
  if [ "$2" -lt 2 ] || [ -z "${3:-}" ]; then
    echo "${0##*/}: $1 needs a value (see --help)" >&2
    exit 2
  fi
}

# usage_header: the script's leading comment block (after the #! line), as its --help text.
usage_header() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  echo
}

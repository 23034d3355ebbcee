#!/bin/bash
# config.sh of the lanekeeper runner emulator: same checks and hand-off as actions/runner's config.sh.

if [ "$EUID" -eq 0 ] && [ -z "$RUNNER_ALLOW_RUNASROOT" ]; then
    echo "Must not run with sudo"
    exit 1
fi

# Resolve the runner root through symlinks, then work from there (the real script does the same).
SOURCE="${BASH_SOURCE[0]}"
while [ -h "$SOURCE" ]; do
    DIR="$( cd -P "$( dirname "$SOURCE" )" && pwd )"
    SOURCE="$(readlink "$SOURCE")"
    [[ $SOURCE != /* ]] && SOURCE="$DIR/$SOURCE"
done
DIR="$( cd -P "$( dirname "$SOURCE" )" && pwd )"
cd "$DIR" || exit 1

# The real script checks the .NET dependencies (libicu, libssl...) here; the emulator needs only node.
if ! command -v node >/dev/null 2>&1; then
    echo "Dependencies is missing for the runner emulator: node is not on PATH"
    exit 1
fi

source ./env.sh

shopt -s nocasematch
if [[ "$1" == "remove" ]]; then
    ./bin/Runner.Listener "$@"
else
    ./bin/Runner.Listener configure "$@"
fi

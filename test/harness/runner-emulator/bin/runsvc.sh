#!/bin/bash
# runsvc.sh (svc.sh install copies it to the runner root): the ExecStart of the systemd unit. It turns
# SIGTERM into SIGINT for RunnerService.js, which stops the listener (and cancels a running job).

# convert SIGTERM signal to SIGINT
trap 'kill -INT $PID' TERM INT

# Work from the runner root whether started as <root>/runsvc.sh or <root>/bin/runsvc.sh.
SOURCE="${BASH_SOURCE[0]}"
DIR="$( cd -P "$( dirname "$SOURCE" )" && pwd )"
[ -x "$DIR/bin/RunnerService.js" ] || DIR="$( cd -P "$DIR/.." && pwd )"
cd "$DIR" || exit 1

if [ -f ".path" ]; then
    # configure
    export PATH=$(<.path)
    echo ".path=${PATH}"
fi

# The real script runs ./externals/node20/bin/node; the emulator uses the node on PATH.
node ./bin/RunnerService.js &
PID=$!
wait $PID
trap - TERM INT
wait $PID

#!/bin/bash
# run.sh of the lanekeeper runner emulator: loops run-helper.sh like actions/runner's run.sh.
#   helper exit 2      -> "Restarting runner..." and run again
#   anything else      -> "Exiting runner..." and exit 0
# With RUNNER_MANUALLY_TRAP_SIG set, the helper runs in its own process group; INT/TERM are forwarded to
# that whole group as SIGINT, and run.sh exits with the helper's code (the container entrypoint mode).

SOURCE="${BASH_SOURCE[0]}"
while [ -h "$SOURCE" ]; do
    DIR="$( cd -P "$( dirname "$SOURCE" )" && pwd )"
    SOURCE="$(readlink "$SOURCE")"
    [[ $SOURCE != /* ]] && SOURCE="$DIR/$SOURCE"
done
DIR="$( cd -P "$( dirname "$SOURCE" )" && pwd )"

copyHelper() {
    # run-helper.sh is re-created from its template on every start, so a self-update could replace it.
    cp -f "$DIR"/run-helper.sh.template "$DIR"/run-helper.sh
}

run() {
    while :;
    do
        copyHelper
        "$DIR"/run-helper.sh "$@"
        returnCode=$?
        if [[ $returnCode -eq 2 ]]; then
            echo "Restarting runner..."
        elif [[ "$ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE" == "1" && $returnCode -eq 7 ]]; then
            echo "Exiting runner..."
            exit 7
        else
            echo "Exiting runner..."
            exit 0
        fi
    done
}

runWithManualTrap() {
    # Job control: the helper gets its own process group, which the trap signals as a whole.
    set -m

    signaled=0
    _trap() {
        kill -INT -$PID
        signaled=1
    }

    trap '_trap' INT TERM

    while :;
    do
        copyHelper
        "$DIR"/run-helper.sh "$@" &
        PID=$!
        wait $PID
        returnCode=$?
        if [ $signaled -eq 1 ]; then
            # The first wait returned because of the trap; wait again for the real exit code.
            wait $PID
            returnCode=$?
        fi

        if [[ $returnCode -eq 2 ]]; then
            echo "Restarting runner..."
        else
            echo "Exiting runner..."
            trap - INT TERM
            wait $PID 2>/dev/null
            exit $returnCode
        fi
    done
}

if [[ -z "$RUNNER_MANUALLY_TRAP_SIG" ]]; then
    run "$@"
else
    runWithManualTrap "$@"
fi

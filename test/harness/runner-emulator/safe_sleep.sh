#!/bin/bash
# safe_sleep.sh: sleeps $1 seconds without a `sleep` binary (the real script busy-waits on $SECONDS).
# `read -t` on a pipe this shell holds open for both reading and writing never sees data or EOF, so it
# simply times out, without burning CPU.
secs="${1:-0}"
if [[ "$secs" == "0" ]]; then
    exit 0
fi
read -r -t "$secs" _ <> <(:)
exit 0

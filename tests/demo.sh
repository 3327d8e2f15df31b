#!/bin/bash
# `make demo`: the daemon end to end. Starts BUILD/evogradd serve on a free
# loopback port with a fresh database in a temporary folder (options from
# the example config systemd/evogradd.conf, the paths overridden), waits
# for /healthz, submits a job spec with evogradctl, follows it with
# `evogradctl watch` to its end, prints the outcome, stops the daemon with
# SIGTERM and exits with watch's status: 0 succeeded, 1 failed, 3 canceled
# (2 when the demo itself could not run).
#
#   tests/demo.sh [BUILD] [SPEC]   defaults: build, schema/examples/rotation.json
cd "$(dirname "$0")/.." || exit 2
build=${1:-build}
spec=${2:-schema/examples/rotation.json}
daemon=$build/evogradd
ctl=$build/evogradctl

say() { echo "demo: $*"; }
for b in "$daemon" "$ctl"; do
    [ -x "$b" ] || { say "$b is not built (make demo builds it)"; exit 2; }
done
[ -r "$spec" ] || { say "no job spec $spec"; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/evograd-demo.XXXXXX") || exit 2
log=$tmp/evogradd.log
pid=""

stop_daemon() {
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping the daemon (SIGTERM)"
        kill -TERM "$pid"
    fi
    wait "$pid"
    local rc=$?
    pid=""
    return $rc
}
cleanup() {
    stop_daemon
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port the kernel reports free (bound to 0 and released), else a random
# one; a port taken in between makes the daemon exit, and the next try
# picks another.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 40000))
}

# Whether GET /healthz answers 200 (bash's /dev/tcp: no curl needed).
healthy() {
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    read -r -t 5 line <&3
    exec 3>&-
    [[ $line == HTTP/1.?" 200"* ]]
}

start_daemon() {
    local try tick
    for try in 1 2 3 4 5; do
        port=$(free_port)
        "$daemon" serve --config systemd/evogradd.conf --listen "127.0.0.1:$port" \
            --db "$tmp/evograd.db" --checkpoint-dir "$tmp/checkpoints" >>"$log" 2>&1 &
        pid=$!
        for tick in $(seq 100); do
            if ! kill -0 "$pid" 2>/dev/null; then
                wait "$pid"
                pid=""
                break
            fi
            healthy "$port" 2>/dev/null && return 0
            sleep 0.1
        done
        [ -n "$pid" ] && { say "the daemon did not answer /healthz within 10 s"; return 1; }
    done
    say "the daemon would not start:"
    tail -n 20 "$log" | sed 's/^/    | /'
    return 1
}

start_daemon || exit 2
export EVOGRAD_URL=http://127.0.0.1:$port
say "evogradd serving on $EVOGRAD_URL (pid $pid, database $tmp/evograd.db)"

read -r id url < <("$ctl" submit "$spec") || true
if [ -z "${id:-}" ]; then
    say "submitting $spec failed"
    exit 2
fi
say "submitted $spec as job $id: $url"

"$ctl" watch "$id"
rc=$?

case $rc in
0) outcome=succeeded ;;
1) outcome=failed ;;
3) outcome=canceled ;;
*) outcome="not followed to its end (evogradctl watch exit $rc)" ;;
esac
if [ "$rc" -ne 0 ]; then
    say "daemon log:"
    tail -n 20 "$log" | sed 's/^/    | /'
fi
stop_daemon || say "the daemon exited with status $?"
say "job $id $outcome"
exit "$rc"

#!/usr/bin/env bash
# Start N app replicas on this host behind HAProxy (sticky sessions, websockets).
#
#   deploy/replicas.sh start 2            # replicas on 127.0.0.1:8081-8082, proxy on :8080
#   deploy/replicas.sh start 4 --port 80  # the proxy on port 80 (as root)
#   deploy/replicas.sh status             # the processes, their memory, replica restarts
#   deploy/replicas.sh pids               # the replicas' process ids
#   deploy/replicas.sh stop
#
# Options of start:
#   --port P        the proxy's port (8080); replica i listens on 127.0.0.1:P+i
#   --addr A        the proxy's address (0.0.0.0: reachable from the class's machines)
#   --profile NAME  EXPLORER_PROFILE of the replicas (hosted)
#   --no-proxy      replicas only
# A supervisor (started by start, stopped by stop) starts a replica whose process is gone
# again on its port within about a second, and logs it to RUN_DIR/supervisor.log.
# Environment: RUN_DIR (pid files, logs, the proxy's config; /tmp/param-explorer-$UID),
# COOKIE_KEY (the sticky cookie's secret; random per start), and what deploy/replica.sh reads.
#
# One replica per CPU core: each is one Python process, and Streamlit runs every script in
# it under one interpreter lock. Each replica gets cores/N PyTorch threads (at least 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUN_DIR="${RUN_DIR:-/tmp/param-explorer-$(id -u)}"
CFG=deploy/haproxy.cfg

die() { echo "replicas.sh: $*" >&2; exit 1; }

pids_of() {  # the pids in RUN_DIR/*.pid, for files matching $1
    local f
    for f in "$RUN_DIR"/$1.pid; do
        [ -e "$f" ] && cat "$f"
    done
    return 0
}

alive() { kill -0 "$1" 2>/dev/null; }

running() {  # pid: alive and not a zombie (a dead child its parent has not reaped yet)
    alive "$1" || return 1
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ "$state" != Z ]
}

note() { echo "$(date '+%F %T') $*"; }

spawn() {  # i port profile threads: replica i on 127.0.0.1:port, in the background
    PORT=$2 ADDRESS=127.0.0.1 EXPLORER_PROFILE=$3 THREADS=$4 \
        nohup bash deploy/replica.sh >>"$RUN_DIR/replica$1.log" 2>&1 &
    echo $! >"$RUN_DIR/replica$1.pid"
}

supervise() {  # n port profile threads: start again each replica whose process is gone
    local n=$1 port=$2 profile=$3 threads=$4 i pid count delay stopping=false
    local -a started=() due=() backoff=()
    trap 'stopping=true' TERM INT
    note "supervisor: watching replicas 1-$n (pid $$)"
    while ! $stopping; do
        for i in $(seq 1 "$n"); do
            pid=$(cat "$RUN_DIR/replica$i.pid" 2>/dev/null || true)
            if $stopping || { [ -n "$pid" ] && running "$pid"; }; then continue; fi
            if [ -z "${due[i]:-}" ]; then  # just found gone
                delay=0
                if [ -n "${started[i]:-}" ] && [ $((SECONDS - started[i])) -lt 30 ]; then
                    # it died within 30 s of the last start: wait 2, 4, ... 60 s between tries
                    delay=$(( ${backoff[i]:-0} * 2 ))
                    [ "$delay" -ge 2 ] || delay=2
                    [ "$delay" -le 60 ] || delay=60
                    note "replica $i (pid $pid) died $((SECONDS - started[i])) s after it" \
                        "was started; next try in $delay s (see $RUN_DIR/replica$i.log)"
                fi
                backoff[i]=$delay due[i]=$((SECONDS + delay))
            fi
            [ "$SECONDS" -ge "${due[i]}" ] || continue
            spawn "$i" $((port + i)) "$profile" "$threads"
            started[i]=$SECONDS; unset 'due[i]'
            count=$(( $(cat "$RUN_DIR/replica$i.restarts" 2>/dev/null || echo 0) + 1 ))
            echo "$count" >"$RUN_DIR/replica$i.restarts"
            note "replica $i (pid $pid) is gone: started again as pid" \
                "$(cat "$RUN_DIR/replica$i.pid") on 127.0.0.1:$((port + i)) (restart $count)"
        done
        sleep 1 &
        wait $! || true  # a TERM ends the wait at once
    done
    note "supervisor: stopped"
}

wait_health() {  # url seconds
    local url=$1 until=$((SECONDS + $2))
    while [ $SECONDS -lt "$until" ]; do
        if [ "$(curl -fsS -m 5 "$url/_stcore/health" 2>/dev/null)" = "ok" ]; then return 0; fi
        sleep 0.5
    done
    return 1
}

start() {
    local n=${1:-}; shift || true
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "start needs a number of replicas, e.g. start 2"
    local port=8080 addr=0.0.0.0 profile=hosted proxy=true
    while [ $# -gt 0 ]; do
        case "$1" in
            --port) port=$2; shift 2 ;;
            --addr) addr=$2; shift 2 ;;
            --profile) profile=$2; shift 2 ;;
            --no-proxy) proxy=false; shift ;;
            *) die "unknown option $1" ;;
        esac
    done
    command -v curl >/dev/null || die "curl is needed for the health checks"
    local haproxy
    haproxy=$(command -v haproxy || { [ -x /usr/sbin/haproxy ] && echo /usr/sbin/haproxy; } || true)
    if $proxy && [ -z "$haproxy" ]; then die "haproxy not found: apt-get install haproxy"; fi
    mkdir -p "$RUN_DIR"
    for pid in $(pids_of '*'); do
        alive "$pid" && die "already running (pid $pid); run: deploy/replicas.sh stop"
    done
    rm -f "$RUN_DIR"/*.pid "$RUN_DIR"/*.restarts

    local cores threads i p servers=""
    cores=$(nproc 2>/dev/null || echo 1)
    threads=$(( cores / n )); [ "$threads" -ge 1 ] || threads=1
    for i in $(seq 1 "$n"); do
        p=$((port + i))
        : >"$RUN_DIR/replica$i.log"
        spawn "$i" "$p" "$profile" "$threads"
        servers+="    server r$i 127.0.0.1:$p check"$'\n'
    done
    for i in $(seq 1 "$n"); do
        wait_health "http://127.0.0.1:$((port + i))" 240 \
            || { stop; die "replica $i did not start; see $RUN_DIR/replica$i.log"; }
    done
    echo "$n replicas on 127.0.0.1:$((port + 1))-$((port + n)) ($threads PyTorch threads each)"
    nohup bash deploy/replicas.sh supervise "$n" "$port" "$profile" "$threads" \
        >"$RUN_DIR/supervisor.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/supervisor.pid"
    echo "supervisor: restarts a replica whose process is gone (log: $RUN_DIR/supervisor.log)"

    if $proxy; then
        # this file's backend, with one server line per local replica
        awk -v servers="$servers" '
            /^[ \t]*server-template / { printf "%s", servers; next }
            /^resolvers docker/ { skip = 1 }
            !skip { print }' "$CFG" >"$RUN_DIR/haproxy.cfg"
        export PROXY_ADDR=$addr PROXY_PORT=$port
        export COOKIE_KEY="${COOKIE_KEY:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
        "$haproxy" -c -q -f "$RUN_DIR/haproxy.cfg" || { stop; die "bad proxy config"; }
        nohup "$haproxy" -db -f "$RUN_DIR/haproxy.cfg" >"$RUN_DIR/haproxy.log" 2>&1 &
        echo $! >"$RUN_DIR/haproxy.pid"
        wait_health "http://127.0.0.1:$port" 30 \
            || { stop; die "haproxy did not start; see $RUN_DIR/haproxy.log"; }
        echo "HAProxy on $addr:$port -> the replicas (sticky cookie EXPLORER_ROUTE)"
    fi
}

stop() {
    local pid
    # the supervisor first, so that it starts nothing while the replicas stop
    for pid in $(pids_of supervisor); do
        alive "$pid" && kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do running "$pid" || break; sleep 0.1; done
    done
    for pid in $(pids_of '*'); do alive "$pid" && kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 60); do
        local left=false
        for pid in $(pids_of '*'); do alive "$pid" && left=true; done
        $left || break
        sleep 0.5
    done
    for pid in $(pids_of '*'); do alive "$pid" && kill -9 "$pid" 2>/dev/null || true; done
    rm -f "$RUN_DIR"/*.pid
}

status() {
    local f pid name n restarts
    for f in "$RUN_DIR"/*.pid; do
        [ -e "$f" ] || { echo "not running"; return 0; }
        pid=$(cat "$f")
        name=$(basename "$f" .pid)
        restarts=""
        if [ -e "$RUN_DIR/$name.restarts" ]; then
            n=$(cat "$RUN_DIR/$name.restarts")
            restarts=", $n restart$([ "$n" = 1 ] || echo s) (see $RUN_DIR/supervisor.log)"
        fi
        if running "$pid"; then
            echo "$name: pid $pid, $(awk '/^VmRSS/ {print $2 / 1024 " MiB"}' /proc/"$pid"/status)$restarts"
        else
            echo "$name: pid $pid, not running$restarts"
        fi
    done
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop ;;
    status) status ;;
    pids) pids_of 'replica*' | tr '\n' ' '; echo ;;
    supervise) shift; supervise "$@" ;;  # run by start
    *) sed -n '2,/^[^#]/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 2 ;;
esac

#!/bin/sh
# bench/relay: end-to-end relay benchmark, bridgehead side by side with
# Postfix configured as the same relay, on the same machine, in the same run:
#
#   smtp-source -> relay (durable queue) -> smtp-sink
#
# For each relay, one after the other (never both at once): start
# smtp-sink -c (it prints a running count), start the relay pointed at it,
# warm up, then for each case send M messages with
#   smtp-source -s S -m M -l L -f a@example.org -t b@partner.test 127.0.0.1:PORT
# and wait until the sink has counted M more arrivals. Throughput is
# M / (time of the last arrival - time the first message was sent).
# Then the latency mode: a steady 200 msgs/s for 20 s from a paced smtplib
# sender (bench/relay_lat.py) to the relay, delivering to an aiosmtpd sink
# (tests/integration/sink.py); median and 99th percentile of the time from
# the relay's final 250 to the arrival at the sink, matched by Subject.
#
#   sh bench/relay.sh [--postfix-only | --bridgehead-only] [--messages M]
#                     [--concurrency N] [--timeout SECS] [--no-latency |
#                     --latency-only] [--rate R] [--seconds S] [--keep]
#
# --messages M: messages per 1 KiB case (default 5000; 100 KiB cases send
# M/5). --concurrency N: bridgehead's connector max_connections and Postfix's
# smtp_destination_concurrency_limit (default 20, Postfix's default).
# --timeout: per case, after which the case reports "no delivery" or
# "partial" and the relay's remaining cases are skipped (default 120).
# --keep: leave the work folder (configs, logs, counts) in /tmp.
# Exit status: 0 when every case of every relay run delivered everything,
# 1 otherwise, 64 on a usage error. Needs root (Postfix, smtp-sink -u).
set -u
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh

usage() {
    sed -n '/^#   sh bench/,/^#  *--latency-only/p' "$SELF" | sed 's/^# \{0,1\}//' >&2
    exit 64
}

RELAYS="bridgehead postfix"
M=5000
CONC=20
TIMEOUT=120
THROUGHPUT=1
LATENCY=1
RATE=200
SECONDS_LAT=20
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --postfix-only) RELAYS=postfix ;;
    --bridgehead-only) RELAYS=bridgehead ;;
    --messages) M=${2:?}; shift ;;
    --concurrency) CONC=${2:?}; shift ;;
    --timeout) TIMEOUT=${2:?}; shift ;;
    --no-latency) LATENCY=0 ;;
    --latency-only) THROUGHPUT=0 ;;
    --rate) RATE=${2:?}; shift ;;
    --keep) KEEP=1 ;;
    --seconds) SECONDS_LAT=${2:?}; shift ;;
    -h | --help) usage ;;
    *) echo "relay.sh: unknown argument $1" >&2; usage ;;
    esac
    shift
done
for v in "$M" "$CONC" "$TIMEOUT" "$RATE" "$SECONDS_LAT"; do
    case "$v" in '' | *[!0-9]*) echo "relay.sh: not a number: $v" >&2; usage ;; esac
done
[ "$(id -u)" -eq 0 ] || { echo "relay.sh: needs root (Postfix, smtp-sink -u)" >&2; exit 1; }
for t in smtp-source smtp-sink; do
    command -v $t >/dev/null || { echo "relay.sh: $t not found (package postfix)" >&2; exit 1; }
done
case " $RELAYS " in *" bridgehead "*)
    [ -x "$BH" ] || { echo "relay.sh: $BH not built (make)" >&2; exit 1; } ;;
esac

PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/bh-bench-relay.XXXXXX)
chmod 755 "$WORK" # the Postfix daemons must reach their queue below it
PFDIRS=""
cleanup_all() {
    for d in $PFDIRS; do sh bench/postfix.sh stop "$d"; done
    if [ "$KEEP" -eq 1 ]; then
        echo "kept $WORK (logs, configs, counts)"
        WORK=""
    fi
    cleanup
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

FAILED=0
# The cases: "sessions size" pairs, as printed in the table.
CASES="50:1024 10:102400 10:1024 50:102400"
WARM=500

# msgs_for SIZE: how many messages a case of that size sends.
msgs_for() { if [ "$1" -gt 1024 ]; then echo $((M / 5)); else echo "$M"; fi; }

forget_pid() { # PID: drop it from the list cleanup kills
    np=""
    for p in $PIDS; do [ "$p" = "$1" ] || np="$np $p"; done
    PIDS=$np
}

# bg_wait CMD...: run CMD in the background and wait for it, so that a
# signal to this script is handled at once (cleanup then kills CMD too).
bg_wait() {
    "$@" &
    BGPID=$!
    PIDS="$PIDS $BGPID"
    wait "$BGPID"
    bgrc=$?
    forget_pid "$BGPID"
    return $bgrc
}

stop_pid() { # PID [SECONDS]: SIGTERM, wait, then SIGKILL
    kill "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt $((${2:-15} * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    forget_pid "$1"
}

# start_relay KIND SINKPORT: start bridgehead or Postfix relaying everything
# to 127.0.0.1:SINKPORT; sets RELAYPORT (and RELAYPID or PFDIR).
start_relay() {
    RELAYPORT=$(free_port)
    RUN=$((${RUN:-0} + 1))
    if [ "$1" = bridgehead ]; then
        d="$WORK/bh.$RUN"
        mkdir -p "$d"
        cat >"$d/bench.yaml" <<YAML
server:
  hostname: bench.example.org
  listen: [ { address: "127.0.0.1:$RELAYPORT" } ]
  max_connections_per_ip: 10000
storage:
  path: queue.db
connectors:
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:$2"]
    tls: { mode: none }
    max_connections: $CONC
    max_messages_per_connection: 1000
YAML
        "$BH" serve -c "$d/bench.yaml" 2>"$d/serve.log" </dev/null &
        RELAYPID=$!
        PIDS="$PIDS $RELAYPID"
        wait_port "$RELAYPORT" || { tail -5 "$d/serve.log" >&2; return 1; }
    else
        PFDIR="$WORK/pf.$RUN"
        PFDIRS="$PFDIRS $PFDIR"
        sh bench/postfix.sh start "$PFDIR" "$RELAYPORT" "$2" "$CONC" || return 1
    fi
}

stop_relay() { # KIND
    if [ "$1" = bridgehead ]; then
        stop_pid "$RELAYPID" 15
    else
        sh bench/postfix.sh stop "$PFDIR"
    fi
}

# start_counter: smtp-sink -c on a free port; sets SINKPORT, SINKPID, COUNTS.
start_counter() {
    SINKPORT=$(free_port)
    COUNTS="$WORK/counts.$SINKPORT"
    smtp-sink -c -u nobody "127.0.0.1:$SINKPORT" 1024 >"$COUNTS" 2>"$COUNTS.err" </dev/null &
    SINKPID=$!
    PIDS="$PIDS $SINKPID"
    wait_port "$SINKPORT"
}

# send_case KIND SESSIONS SIZE COUNT: one timed case. Prints the result
# line; sets RES (msgs/s end to end, or a failure text) and ACC (msgs/s
# accepted); returns 1 when not everything arrived in time.
send_case() {
    base=$($PY bench/relay_lat.py count "$COUNTS")
    t0=$(now)
    bg_wait timeout "$TIMEOUT" smtp-source -s "$2" -m "$4" -l "$3" -f a@example.org \
        -t b@partner.test "127.0.0.1:$RELAYPORT" >"$WORK/source.log" 2>&1
    src=$?
    t1=$(now)
    left=$(echo "$t0 $t1 $TIMEOUT" | awk '{ l = $3 - ($2 - $1); print (l < 1 ? 1 : l) }')
    bg_wait $PY bench/relay_lat.py wait "$COUNTS" $((base + $4)) "$left" >"$WORK/wait.out"
    ok=$?
    out=$(cat "$WORK/wait.out")
    case "$out" in [0-9]*" "[0-9]*) ;; *) out="$base $t1" ok=1 ;; esac
    got=$((${out% *} - base))
    tl=${out#* }
    ACC=$(echo "$t0 $t1 $4" | awk '{ printf "%.0f", $3 / ($2 - $1) }')
    if [ $ok -eq 0 ]; then
        RES=$(echo "$t0 $tl $4" | awk '{ printf "%.0f", $3 / ($2 - $1) }')
        secs=$(echo "$t0 $tl" | awk '{ printf "%.2f", $2 - $1 }')
        printf '  %-10s %3d sessions x %6d B: %6d msgs in %6ss: %6s msgs/s end to end (accepted at %s msgs/s)\n' \
            "$1" "$2" "$3" "$4" "$secs" "$RES" "$ACC"
        return 0
    fi
    if [ "$got" -le 0 ]; then RES="no delivery"; else RES="partial $got/$4"; fi
    printf '  %-10s %3d sessions x %6d B: %s after %ss (smtp-source exit %d)\n' \
        "$1" "$2" "$3" "$RES" "$TIMEOUT" "$src"
    [ $src -ne 0 ] && tail -3 "$WORK/source.log" | sed 's/^/    smtp-source: /'
    return 1
}

# throughput KIND: all cases for one relay; results in R_KIND_I.
throughput() {
    kind=$1
    i=0
    for c in $CASES; do i=$((i + 1)); eval "R_${kind}_$i='not run'"; done
    start_counter || { FAILED=1; return; }
    if ! start_relay "$kind" "$SINKPORT"; then
        echo "  $kind: did not start" >&2
        FAILED=1
        stop_pid "$SINKPID" 2
        return
    fi
    echo "  $kind: warm-up, $WARM messages"
    if ! send_case "$kind" 10 1024 "$WARM"; then
        i=0
        for c in $CASES; do i=$((i + 1)); eval "R_${kind}_$i='no delivery'"; done
        FAILED=1
    else
        i=0
        for c in $CASES; do
            i=$((i + 1))
            s=${c%:*} l=${c#*:}
            if send_case "$kind" "$s" "$l" "$(msgs_for "$l")"; then
                eval "R_${kind}_$i=\$RES"
            else
                eval "R_${kind}_$i=\$RES"
                FAILED=1
                break # what is left in the queue would spoil the next cases
            fi
        done
    fi
    stop_relay "$kind"
    stop_pid "$SINKPID" 2
}

# latency KIND: the paced run against an aiosmtpd sink; result in L_KIND.
latency() {
    kind=$1
    eval "L_$kind='not run'"
    lport=$(free_port)
    lout="$WORK/lat.$kind.jsonl"
    $PY tests/integration/sink.py --port "$lport" --out "$lout" --name lat --no-fsync \
        --max-data 0 >"$WORK/lat.$kind.stdout" 2>"$WORK/lat.$kind.stderr" </dev/null &
    lpid=$!
    PIDS="$PIDS $lpid"
    wait_port "$lport" || { FAILED=1; stop_pid "$lpid" 2; return; }
    if ! start_relay "$kind" "$lport"; then
        FAILED=1
        stop_pid "$lpid" 2
        return
    fi
    LATWAIT=30
    [ "$TIMEOUT" -lt 30 ] && LATWAIT=$TIMEOUT
    # A short warm-up at a lower rate, then the measured run.
    bg_wait $PY bench/relay_lat.py latency --port "$RELAYPORT" --sink-out "$lout" --rate 50 \
        --seconds 1 --wait 10 >/dev/null 2>&1
    bg_wait $PY bench/relay_lat.py latency --port "$RELAYPORT" --sink-out "$lout" \
        --rate "$RATE" --seconds "$SECONDS_LAT" --wait "$LATWAIT" \
        >"$WORK/lat.$kind.out" 2>"$WORK/lat.$kind.err"
    rc=$?
    out=$(cat "$WORK/lat.$kind.out")
    echo "  $kind: $out"
    [ -s "$WORK/lat.$kind.err" ] && sed 's/^/    /' "$WORK/lat.$kind.err"
    if [ $rc -eq 0 ]; then
        eval "L_$kind=\$out"
        sent=$(echo "$out" | sed 's/.*sent=\([0-9]*\).*/\1/')
        arrived=$(echo "$out" | sed 's/.*arrived=\([0-9]*\).*/\1/')
        [ "$sent" = "$arrived" ] || FAILED=1
    else
        eval "L_$kind='no delivery'"
        FAILED=1
    fi
    stop_relay "$kind"
    stop_pid "$lpid" 2
}

field() { echo "$1" | sed -n "s/.*$2=\([^ ]*\).*/\1/p"; }

echo "bench/relay: smtp-source -> relay -> smtp-sink, durable queues, concurrency $CONC," \
    "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $THROUGHPUT -eq 1 ]; then
    for r in $RELAYS; do throughput "$r"; done
fi
if [ $LATENCY -eq 1 ]; then
    echo "latency: $RATE msgs/s for ${SECONDS_LAT}s, relay's 250 -> arrival at the sink"
    for r in $RELAYS; do latency "$r"; done
fi

echo
if [ $THROUGHPUT -eq 1 ]; then
    echo "end-to-end throughput, msgs/s (first message sent -> last one received by the sink)"
    printf '  %-22s %7s %12s %12s %8s\n' case messages bridgehead postfix ratio
    i=0
    for c in $CASES; do
        i=$((i + 1))
        s=${c%:*} l=${c#*:}
        if [ "$l" -gt 1024 ]; then sz="$((l / 1024)) KiB"; else sz="1 KiB"; fi
        b=$(eval "echo \"\${R_bridgehead_$i:-not run}\"")
        p=$(eval "echo \"\${R_postfix_$i:-not run}\"")
        ratio=$(echo "$b $p" | awk 'NF == 2 && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ && $2 > 0 \
            { printf "%.2f", $1 / $2; exit } { print "-" }')
        printf '  %-22s %7d %12s %12s %8s\n' "$sz x $s sessions" "$(msgs_for "$l")" "$b" "$p" "$ratio"
    done
fi
if [ $LATENCY -eq 1 ]; then
    echo "latency at $RATE msgs/s for ${SECONDS_LAT}s, ms (relay's 250 -> arrival at the sink)"
    printf '  %-12s %7s %8s %9s %9s %9s\n' relay sent arrived median p99 max
    for r in bridgehead postfix; do
        o=$(eval "echo \"\${L_$r:-not run}\"")
        case "$o" in
        sent=*) printf '  %-12s %7s %8s %9s %9s %9s\n' "$r" "$(field "$o" sent)" \
            "$(field "$o" arrived)" "$(field "$o" median_ms)" "$(field "$o" p99_ms)" \
            "$(field "$o" max_ms)" ;;
        *) printf '  %-12s %s\n' "$r" "$o" ;;
        esac
    done
fi
exit $FAILED

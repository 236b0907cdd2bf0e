#!/bin/sh
# `make demo`: bridgehead end to end on loopback in a few seconds.
# Starts two SMTP sinks (tests/integration/sink.py), writes a config with two
# connectors and one triggered connector to a temporary folder, starts
# `bridgehead serve`, sends mail with swaks, shows where each message went
# and what waits in the queue, flushes the triggered connector, and stops
# everything it started (also on failure or Ctrl-C).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BRIDGEHEAD:-$ROOT/build/bridgehead}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
DIR=$(mktemp -d "${TMPDIR:-/tmp}/bh-demo.XXXXXX")
PIDS=""

cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null || true
    done
    for p in $PIDS; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # wait_for SECONDS COMMAND...: retry COMMAND until it succeeds
    n=$(( $1 * 10 )); shift
    while ! "$@" >/dev/null 2>&1; do
        n=$((n - 1))
        if [ $n -le 0 ]; then echo "demo: timed out waiting for: $*" >&2; exit 1; fi
        sleep 0.1
    done
}

count_lines() {  # count_lines FILE: messages (not events) in a sink's JSON lines
    c=$(grep -vc '"event"' "$1" 2>/dev/null) || true
    echo "${c:-0}"
}

at_least() {  # at_least FILE N
    [ "$(count_lines "$1")" -ge "$2" ]
}

PORT=$(free_port)
P_PARTNER=$(free_port)
P_INTERNET=$(free_port)

echo "== starting two sinks: partner gateway on 127.0.0.1:$P_PARTNER, internet gateway on 127.0.0.1:$P_INTERNET"
for s in partner:$P_PARTNER internet:$P_INTERNET; do
    name=${s%%:*}; port=${s#*:}
    "$PY" "$ROOT/tests/integration/sink.py" --port "$port" --name "$name" \
        --out "$DIR/$name.jsonl" --no-fsync >/dev/null 2>"$DIR/$name.err" &
    PIDS="$PIDS $!"
done
wait_for 10 "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $P_PARTNER)).close(); socket.create_connection(('127.0.0.1', $P_INTERNET)).close()"

CFG=$DIR/bridgehead.yaml
cat >"$CFG" <<EOF
server:
  hostname: demo.example.org
  listen:
    - address: "127.0.0.1:$PORT"
  accepted_domains: [example.org]
  relay_networks: ["127.0.0.0/8"]

storage:
  path: queue.db

connectors:
  - name: partner              # a partner's domain and its subdomains
    address_spaces: ["*.partner.test"]
    bridgeheads: ["127.0.0.1:$P_PARTNER"]
    tls: { mode: none }

  - name: internet             # everything else
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:$P_INTERNET"]
    tls: { mode: none }

  - name: onsite               # held until ETRN or 'bridgehead queue flush'
    address_spaces: [onsite.test]
    bridgeheads: ["127.0.0.1:$P_PARTNER"]
    triggered: true
    tls: { mode: none }
EOF
echo "== config $CFG"
"$BIN" check -c "$CFG"

echo "== how bridgehead would route four recipients (bridgehead route)"
"$BIN" route -c "$CFG" --from demo@example.org ann@partner.test bob@sales.partner.test carl@elsewhere.test dora@onsite.test

echo "== starting bridgehead serve on 127.0.0.1:$PORT"
"$BIN" serve -c "$CFG" >"$DIR/serve.log" 2>&1 &
PIDS="$PIDS $!"
wait_for 10 "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT)).close()"

send() {  # send RCPT SUBJECT
    swaks --silent 2 --server 127.0.0.1 --port "$PORT" --helo client.example.org \
        --from demo@example.org --to "$1" --header "Subject: $2" --body "demo message for $1" \
        || { echo "demo: swaks failed for $1" >&2; exit 1; }
    echo "   sent to $1"
}

echo "== sending four messages with swaks"
send ann@partner.test "to the partner"
send bob@sales.partner.test "to a partner subdomain"
send carl@elsewhere.test "to the internet"
send dora@onsite.test "to the triggered connector"

wait_for 20 at_least "$DIR/partner.jsonl" 2
wait_for 20 at_least "$DIR/internet.jsonl" 1

show_sinks() {
    for name in partner internet; do
        "$PY" - "$DIR/$name.jsonl" "$name" <<'EOF'
import json, sys
path, name = sys.argv[1], sys.argv[2]
try:
    lines = [json.loads(l) for l in open(path) if l.strip()]
except FileNotFoundError:
    lines = []
msgs = [m for m in lines if "event" not in m]
print(f"   sink {name}: {len(msgs)} message(s)")
for m in msgs:
    print(f"     {', '.join(m['rcpt_tos'])}  subject={m['subject']!r}  tls={m['tls']}")
EOF
    done
}

echo "== what the sinks received"
show_sinks

echo "== the queue (bridgehead queue list): the triggered connector holds its mail"
"$BIN" queue list -c "$CFG"
"$BIN" queue list --json -c "$CFG"

echo "== bridgehead queue flush --connector onsite"
"$BIN" queue flush --connector onsite -c "$CFG"
wait_for 20 at_least "$DIR/partner.jsonl" 3
echo "== after the flush"
show_sinks
wait_for 10 sh -c "[ -z \"\$('$BIN' queue list --json -c '$CFG')\" ]"
echo "   queue is empty"

echo "== delivery log lines"
grep 'status=' "$DIR/serve.log" | sed 's/^/   /'
echo "== demo done"
exit 0

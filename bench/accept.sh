#!/bin/sh
# bench/accept: accept-only throughput of `bridgehead serve` with full
# durability (synchronous=FULL, group commit), driven by Postfix's
# smtp-source; then resident memory per idle connection (plaintext after
# EHLO, and TLS after STARTTLS).
#   sh bench/accept.sh [messages]      (default 20000)
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${1:-20000}
WORK=$(mktemp -d /tmp/bh-bench-accept.XXXXXX)
PORT=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
cat >"$WORK/bench.yaml" <<YAML
server:
  hostname: bench.example.org
  listen: [ { address: "127.0.0.1:$PORT" } ]
  tls: { certificate: cert.pem, key: key.pem }
  max_connections: 12000
  max_connections_per_ip: 10000
storage:
  path: queue.db
connectors:
  - name: partner
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
YAML
ulimit -n 65536 2>/dev/null || true
"$BH" serve -c "$WORK/bench.yaml" 2>"$WORK/serve.log" &
PID=$!
PIDS="$PID"
wait_port "$PORT"

run_source() { # sessions size count
    t0=$(now)
    smtp-source -s "$1" -m "$3" -l "$2" -f a@example.org -t b@partner.test "127.0.0.1:$PORT"
    t1=$(now)
    echo "$t0 $t1 $3" | awk '{ printf "%.0f", $3 / ($2 - $1) }'
}

smtp-source -s 10 -m 2000 -l 1024 -f a@example.org -t b@partner.test "127.0.0.1:$PORT"
echo "accept throughput (msgs/s, best of 3, $N messages each, durable):"
for size in 1024 102400; do
    for s in 1 10 50; do
        n=$N
        [ "$size" -gt 1024 ] && n=$((N / 4))
        [ "$s" -eq 1 ] && n=$((n / 4))
        best=0
        for _ in 1 2 3; do
            r=$(run_source "$s" "$size" "$n")
            [ "$r" -gt "$best" ] && best=$r
        done
        echo "  size=$size sessions=$s messages=$n best=$best msgs/s"
    done
done
grep -c 'event=accepted' "$WORK/serve.log" | sed 's/^/  accepted log lines: /'

echo "idle connections (5000, VmRSS delta / 5000):"
/usr/bin/python3 bench/idle.py "$PID" "$PORT" 5000 plain
/usr/bin/python3 bench/idle.py "$PID" "$PORT" 2000 tls

# Shared helpers for the benchmark scripts (sourced).
BH=${BH:-$(pwd)/build/bridgehead}
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    [ -n "${WORK:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# free_port: print a free TCP port on 127.0.0.1.
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT: wait until something listens on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 1 100); do
        /usr/bin/python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$1)))" && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

now() { date +%s.%N; }

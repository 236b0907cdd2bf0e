#!/bin/sh
# make bench: every benchmark, one after the other (never at once: the
# machine has two cores and the figures would disturb each other).
set -u
cd "$(dirname "$0")/.."
echo "== bench/route"
./build/bench/route
echo "== bench/accept"
sh bench/accept.sh "${BENCH_MESSAGES:-20000}"
if [ -f bench/relay.sh ]; then
    echo "== bench/relay (bridgehead and Postfix, side by side)"
    sh bench/relay.sh
fi
if [ -f bench/scaleout.py ]; then
    echo "== bench/scaleout (SQLite, PostgreSQL, two nodes on one PostgreSQL)"
    /usr/bin/python3 bench/scaleout.py
fi

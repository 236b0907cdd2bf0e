#!/bin/sh
# Run every built libFuzzer target (build/fuzz/<name>) for SECONDS, each on
# a temporary copy of its seed corpus tests/fuzz/corpus/<name>/ (the
# committed corpus is never written). FUZZ_JOBS targets run at a time
# (default: the number of CPUs). Prints one line per target and exits
# non-zero if any target crashed, leaked or hung; the crashing inputs are
# kept in build/fuzz/artifacts/<name>/.
# Usage: sh tests/fuzz/run.sh [SECONDS]
set -u
secs=${1:-60}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/bh-fuzz-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

names=""
for bin in "$root"/build/fuzz/*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    names="$names $(basename "$bin")"
done
if [ -z "$names" ]; then
    echo "no fuzz targets in build/fuzz/ (run make fuzz-build)" >&2
    exit 1
fi

run_one() {
    name=$1
    mkdir -p "$tmp/$name/corpus" "$root/build/fuzz/artifacts/$name"
    if [ -d "$root/tests/fuzz/corpus/$name" ]; then
        cp "$root/tests/fuzz/corpus/$name"/* "$tmp/$name/corpus/" 2>/dev/null
    fi
    ( cd "$tmp/$name" &&
      "$root/build/fuzz/$name" -max_total_time="$secs" -max_len=65536 -timeout=10 \
          -rss_limit_mb=2048 -print_final_stats=1 \
          -artifact_prefix="$root/build/fuzz/artifacts/$name/" corpus \
          >"$tmp/$name.log" 2>&1 )
    echo $? >"$tmp/$name.rc"
}

running=0
for name in $names; do
    run_one "$name" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

failed=0
for name in $names; do
    rc=$(cat "$tmp/$name.rc" 2>/dev/null || echo 1)
    log="$tmp/$name.log"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | sed 's/ft: //')
    if [ "$rc" -eq 0 ]; then
        echo "PASS fuzz_$name: ${runs:-?} runs, ${eps:-?} exec/s, cov ${cov:-?}, ft ${ft:-?} (${secs}s)"
    else
        failed=$((failed + 1))
        echo "FAIL fuzz_$name: exit $rc after ${runs:-?} runs; inputs in build/fuzz/artifacts/$name/; its log:"
        grep -v '^#[0-9]' "$log" | tail -60 | sed 's/^/    /'
    fi
done
[ "$failed" -eq 0 ]

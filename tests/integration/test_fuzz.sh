#!/bin/sh
# Build the libFuzzer targets (make fuzz-build, clang) and run each one
# briefly on its seed corpus: FUZZ_SECONDS each (default 10), two at a time.
set -eu
cd "$(dirname "$0")/../.."
if ! command -v clang >/dev/null 2>&1; then
    echo "SKIP: clang not installed"
    exit 0
fi
make -s -j"$(nproc 2>/dev/null || echo 2)" fuzz-build
# Every input a fuzzer once crashed on (tests/fuzz/crashers/<target>-N)
# is replayed first: a regression fails here with the sanitizer's report.
for f in tests/fuzz/crashers/*; do
    [ -f "$f" ] || continue
    name=$(basename "$f" | sed 's/-[0-9]*$//')
    if ! "build/fuzz/$name" "$f" >/tmp/bh-fuzz-replay.log 2>&1; then
        echo "FAIL crasher $f:"
        tail -30 /tmp/bh-fuzz-replay.log | sed 's/^/    /'
        exit 1
    fi
    echo "PASS crasher $f"
done
sh tests/fuzz/run.sh "${FUZZ_SECONDS:-10}"

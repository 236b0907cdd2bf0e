#!/bin/sh
# make lint: cppcheck and clang-tidy over the whole tree; exits non-zero on
# any finding. The compile flags come from the Makefile (LINT_CFLAGS); the
# clang-tidy checks and their justification are in .clang-tidy.
#
# cppcheck: warning, style, performance and portability, without
# variableScope (declaring at the top of a short block is house style;
# -Wshadow catches the harmful cases). Inline suppressions
# (cppcheck-suppress) each carry their reason on the same line.
set -u
cd "$(dirname "$0")/.."
flags=${LINT_CFLAGS:--D_DEFAULT_SOURCE -I.}
jobs=$(nproc 2>/dev/null || echo 2)
rc=0

echo "lint: cppcheck"
if ! cppcheck --enable=warning,style,performance,portability --suppress=variableScope \
        --std=c11 --inline-suppr --quiet --error-exitcode=1 -j "$jobs" \
        -I. -D_DEFAULT_SOURCE -DBH_VERSION='"lint"' \
        connectors routing storage core cli tests/unit tests/fuzz bench; then
    rc=1
fi

echo "lint: clang-tidy"
out=$(mktemp /tmp/bh-tidy.XXXXXX)
trap 'rm -f "$out"' EXIT
# One file per clang-tidy run, $jobs at a time; -quiet keeps only findings.
# shellcheck disable=SC2086
ls connectors/*.c routing/*.c storage/*.c core/*.c cli/*.c |
    xargs -P "$jobs" -I{} sh -c \
        'clang-tidy -quiet "{}" -- -std=c11 '"$flags"' -DBH_VERSION=\"lint\" 2>/dev/null || echo "clang-tidy failed: {}"' \
    >"$out"
if grep -q . "$out"; then
    cat "$out"
    rc=1
fi
n=$(ls connectors/*.c routing/*.c storage/*.c core/*.c cli/*.c | wc -l)
if [ "$rc" -eq 0 ]; then
    echo "lint: clean ($n files)"
else
    echo "lint: FAILED"
fi
exit "$rc"

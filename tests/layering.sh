#!/bin/sh
# Enforce the include layering of SPEC §1: a directory may include only the
# directories below it. connectors/util.h is the base module everyone may
# use. The protocol state machines include nothing but the C library.
rc=0
allowed() {
    case "$1" in
    cli) echo "cli core routing connectors storage" ;;
    core) echo "core routing connectors storage" ;;
    routing) echo "routing connectors" ;;
    connectors) echo "connectors" ;;
    storage) echo "storage" ;;
    bench|tests) echo "cli core routing connectors storage tests bench" ;;
    esac
}
for f in $(find cli core routing connectors storage -name '*.[ch]' 2>/dev/null); do
    dir=${f%%/*}
    ok=$(allowed "$dir")
    for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
        idir=${inc%%/*}
        [ "$inc" = "connectors/util.h" ] && continue
        case " $ok " in
        *" $idir "*) ;;
        *) echo "layering: $f includes $inc"; rc=1 ;;
        esac
    done
done
# The protocol machines (core/smtp_in*, core/smtp_out*) include only libc
# and their own split-out headers.
for f in core/smtp_in*.[ch] core/smtp_out*.[ch]; do
    [ -f "$f" ] || continue
    base=$(basename "$f" | sed 's/^\(smtp_[a-z]*\).*/\1/')
    if grep -n '^#include "' "$f" | grep -v "\"core/$base[a-z_]*\.h\"" >/dev/null; then
        echo "layering: $f is a protocol machine and may include only libc"; rc=1
    fi
    if grep -nE '^#include <(uv|openssl|sqlite3|yaml)' "$f" >/dev/null; then
        echo "layering: $f includes a library"; rc=1
    fi
done
[ $rc -eq 0 ] && echo "layering: ok"
exit $rc

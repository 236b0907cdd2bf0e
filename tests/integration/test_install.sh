#!/bin/sh
# make install / make uninstall into a temporary DESTDIR with PREFIX=/usr:
# every file in place with its mode, the systemd unit with the prefix filled
# in, bridgehead(8) renders cleanly, the installed binary runs and accepts
# the installed example configs, a second install leaves a modified
# /etc/bridgehead/bridgehead.yaml alone, and uninstall keeps it too.
# Prints one line per check; exits 1 if any failed.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
trap 'exit 1' INT TERM HUP
D=$W/root
PREFIX=/usr
VERSION=$(sed -n 's/^VERSION *= *//p' Makefile)
fails=0
checks=0

ok() { checks=$((checks + 1)); echo "ok   $*"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL $*"; }
# check DESCRIPTION COMMAND...: run the command quietly, ok if it succeeds.
check() {
    what=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}

# Run make without the settings of a calling `make test` (jobserver, level).
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory "$@"
}

install_into() { # $1: log file
    if ! mk install DESTDIR="$D" PREFIX="$PREFIX" >"$1" 2>&1; then
        bad "make install DESTDIR=\$D PREFIX=$PREFIX"
        sed 's/^/    /' "$1"
        exit 1
    fi
    ok "make install DESTDIR=\$D PREFIX=$PREFIX"
}

# file_mode PATH MODE: PATH (under $D) is a regular file with that mode.
file_mode() {
    if [ ! -f "$D$1" ]; then
        bad "$1 is installed"
        return
    fi
    m=$(stat -c %a "$D$1")
    if [ "$m" = "$2" ]; then ok "$1 mode $2"; else bad "$1 mode is $m, not $2"; fi
}

echo "== make install (first time)"
install_into "$W/install1.log"

SBIN=$PREFIX/sbin/bridgehead
MAN=$PREFIX/share/man/man8/bridgehead.8
UNIT=$PREFIX/lib/systemd/system/bridgehead.service
DOC=$PREFIX/share/doc/bridgehead
ETC=/etc/bridgehead/bridgehead.yaml

echo "== files and modes"
file_mode "$SBIN" 755
file_mode "$MAN" 644
file_mode "$UNIT" 644
file_mode "$DOC/README.md" 644
file_mode "$ETC" 644
check "$SBIN is build/bridgehead" cmp -s build/bridgehead "$D$SBIN"
check "$ETC is examples/bridgehead.yaml" cmp -s examples/bridgehead.yaml "$D$ETC"
for f in examples/*.yaml; do
    n=$(basename "$f")
    file_mode "$DOC/examples/$n" 644
    check "$DOC/examples/$n is $f" cmp -s "$f" "$D$DOC/examples/$n"
done

echo "== systemd unit"
u=$D$UNIT
if grep -q '@PREFIX@' "$u"; then bad "unit: @PREFIX@ left in it"; else ok "unit: no @PREFIX@ left"; fi
for line in \
    "Type=simple" \
    "ExecStart=$PREFIX/sbin/bridgehead serve -c /etc/bridgehead/bridgehead.yaml" \
    'ExecReload=/bin/kill -HUP $MAINPID' \
    "User=bridgehead" "Group=bridgehead" "StateDirectory=bridgehead" \
    "WorkingDirectory=/var/lib/bridgehead" \
    "AmbientCapabilities=CAP_NET_BIND_SERVICE" \
    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" \
    "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" \
    "PrivateTmp=yes" "PrivateDevices=yes" "ProtectKernelTunables=yes" \
    "ProtectKernelModules=yes" "ProtectControlGroups=yes" \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
    "RestrictNamespaces=yes" "LockPersonality=yes" "MemoryDenyWriteExecute=yes" \
    "SystemCallArchitectures=native" "LimitNOFILE=65536" "Restart=on-failure" \
    "WantedBy=multi-user.target"; do
    if grep -qxF "$line" "$u"; then ok "unit: $line"; else bad "unit: no line '$line'"; fi
done
for sect in Unit Service Install; do
    if grep -qxF "[$sect]" "$u"; then ok "unit: [$sect]"; else bad "unit: no [$sect] section"; fi
done
# systemd-analyze verify, when it works here: probe it with a trivial unit
# first (it needs systemd's own units), then verify a copy of ours whose
# ExecStart points at the binary under $D (the real /usr/sbin may lack one).
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$W/probe" "$W/verify"
    printf '[Service]\nType=simple\nExecStart=/bin/true\n' >"$W/probe/bhprobe.service"
    if systemd-analyze verify "$W/probe/bhprobe.service" >/dev/null 2>&1; then
        sed "s|^ExecStart=$PREFIX/sbin/bridgehead|ExecStart=$D$SBIN|" "$u" \
            >"$W/verify/bridgehead.service"
        if out=$(MANPATH=$D$PREFIX/share/man systemd-analyze verify \
                 "$W/verify/bridgehead.service" 2>&1) && [ -z "$out" ]; then
            ok "unit: systemd-analyze verify is clean"
        else
            bad "unit: systemd-analyze verify:"
            printf '%s\n' "$out" | sed 's/^/    /'
        fi
    else
        echo "skip systemd-analyze verify (it does not work in this environment)"
    fi
else
    echo "skip systemd-analyze verify (not installed)"
fi

echo "== man page"
m=$D$MAN
if grep -q '@PREFIX@\|@VERSION@' "$m"; then
    bad "man: @PREFIX@ or @VERSION@ left in it"
else
    ok "man: placeholders filled in"
fi
first=$(grep -v '^\.\\"' "$m" | sed -n 1p)
case $first in
    ".TH BRIDGEHEAD 8 "*) ok "man: first line is .TH BRIDGEHEAD 8" ;;
    *) bad "man: first line is not .TH BRIDGEHEAD 8: $first" ;;
esac
check "man: names $DOC/examples" grep -qF "$DOC/examples" "$m"
if command -v man >/dev/null 2>&1; then
    if LC_ALL=C.UTF-8 MANWIDTH=80 MANPAGER=cat PAGER=cat \
        man --warnings -l "$m" >"$W/man.txt" 2>"$W/man.err" && [ ! -s "$W/man.err" ]; then
        ok "man: man -l renders without warnings"
    else
        bad "man: man -l failed or warned:"
        sed 's/^/    /' "$W/man.err"
    fi
    for s in NAME SYNOPSIS DESCRIPTION COMMANDS CONFIGURATION ROUTING SIGNALS \
             FILES "EXIT STATUS" EXAMPLES "SEE ALSO"; do
        if grep -qx "$s" "$W/man.txt"; then ok "man: section $s"; else bad "man: no section $s"; fi
    done
    for w in "bridgehead check" "bridgehead reload" "--log-format" "--priority" \
             "--at" "--json" "list" "show" "flush" "hold" "release" "delete" \
             "stats" "SIGHUP" "SIGTERM" "<storage.path>.sock" " 64 " " 69 " \
             "bridgehead $VERSION"; do
        if grep -qF -e "$w" "$W/man.txt"; then ok "man: mentions '$w'"; else bad "man: does not mention '$w'"; fi
    done
else
    echo "skip man -l render check (man is not installed)"
fi
if command -v mandoc >/dev/null 2>&1; then
    if out=$(mandoc -Tlint -W warning "$m" 2>&1) && [ -z "$out" ]; then
        ok "man: mandoc -Tlint is clean"
    else
        bad "man: mandoc -Tlint:"
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
fi

echo "== installed binary"
v=$("$D$SBIN" version 2>&1) || true
if [ "$v" = "bridgehead $VERSION" ]; then ok "$SBIN version: $v"; else bad "$SBIN version printed '$v'"; fi
for c in "$D$ETC" "$D$DOC"/examples/*.yaml; do
    name=${c#"$D"}
    if out=$("$D$SBIN" check -c "$c" 2>&1); then
        ok "$SBIN check -c $name"
    else
        bad "$SBIN check -c $name:"
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
done
if "$D$SBIN" check -c "$D$ETC" 2>/dev/null | grep -qF "queue /var/lib/bridgehead/queue.db"; then
    ok "$ETC keeps its queue in /var/lib/bridgehead/queue.db"
else
    bad "$ETC does not keep its queue in /var/lib/bridgehead/queue.db"
fi

echo "== second install keeps a modified $ETC"
echo "# changed by the administrator" >>"$D$ETC"
cp "$D$ETC" "$W/etc.saved"
install_into "$W/install2.log"
check "$ETC unchanged by the second install" cmp -s "$W/etc.saved" "$D$ETC"
check "make install says it left $ETC alone" grep -q "left as it is" "$W/install2.log"
file_mode "$SBIN" 755
file_mode "$UNIT" 644

echo "== make uninstall"
if mk uninstall DESTDIR="$D" PREFIX="$PREFIX" >"$W/uninstall.log" 2>&1; then
    ok "make uninstall DESTDIR=\$D PREFIX=$PREFIX"
else
    bad "make uninstall DESTDIR=\$D PREFIX=$PREFIX"
    sed 's/^/    /' "$W/uninstall.log"
fi
for f in "$SBIN" "$MAN" "$UNIT" "$DOC"; do
    if [ -e "$D$f" ]; then bad "uninstall left $f"; else ok "uninstall removed $f"; fi
done
check "uninstall kept the administrator's $ETC" cmp -s "$W/etc.saved" "$D$ETC"

echo "$((checks - fails)) of $checks checks passed"
[ "$fails" -eq 0 ]

#!/bin/sh
# bench/postfix: a throwaway Postfix instance configured as the same relay as
# bridgehead in bench/relay.sh, for a side-by-side comparison.
#
#   sh bench/postfix.sh start DIR LISTEN_PORT SINK_PORT CONCURRENCY
#   sh bench/postfix.sh stop DIR
#
# start: builds DIR/etc (main.cf, master.cf), DIR/spool (queue_directory) and
# DIR/data (data_directory), starts `postfix -c DIR/etc` listening on
# 127.0.0.1:LISTEN_PORT only, relaying everything from 127.0.0.0/8 to
# [127.0.0.1]:SINK_PORT with up to CONCURRENCY parallel deliveries (the same
# as bridgehead's max_connections), and waits until it accepts connections.
# Its log goes to DIR/maillog.
# stop: `postfix -c DIR/etc stop`, then waits for the master (by the PID in its
# pid file) to exit, and kills it if it lingers. The caller removes DIR.
#
# main.cf is the stock Debian main.cf.dist minus the parameters set here, then
# these settings. It never touches the system Postfix (/etc/postfix,
# /var/spool/postfix, port 25). Needs root (the daemons switch to the
# `postfix` user). The queue is durable as Postfix always is: cleanup fsyncs
# each queue file before smtpd answers 250.
set -eu

die() {
    echo "postfix.sh: $*" >&2
    exit 1
}

pf_wait_port() { # PORT
    for _ in $(seq 1 100); do
        /usr/bin/python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$1)))" &&
            return 0
        sleep 0.1
    done
    return 1
}

# pf_run DIR VERB: postfix -c DIR/etc VERB. Postfix says why it failed only on
# a terminal (or to syslog), so on failure run it again under script(1).
pf_run() {
    /usr/sbin/postfix -c "$1/etc" "$2" >"$1/$2.log" 2>&1 && return 0
    script -qec "/usr/sbin/postfix -c $1/etc $2" /dev/null >&2 || true
    die "postfix $2 failed"
}

pf_master_pid() { # DIR
    f="$1/spool/pid/master.pid"
    [ -s "$f" ] && tr -d ' \n' <"$f"
}

pf_overrides() { # DIR LISTEN_PORT SINK_PORT CONCURRENCY
    cat <<EOF
# ---- bridgehead bench/postfix.sh: a throwaway relay instance ----
compatibility_level = 3.6
config_directory = $1/etc
queue_directory = $1/spool
data_directory = $1/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
sendmail_path = /usr/sbin/sendmail
newaliases_path = /usr/bin/newaliases
mailq_path = /usr/bin/mailq
html_directory = no
manpage_directory = /usr/share/man
sample_directory = /etc/postfix
readme_directory = no
mail_owner = postfix
setgid_group = postdrop
myhostname = bench-postfix.bridgehead.test
mydomain = bridgehead.test
myorigin = \$myhostname
mydestination =
local_transport = error:no local delivery
alias_maps =
alias_database =
relayhost = [127.0.0.1]:$3
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
in_flow_delay = 0
smtp_destination_concurrency_limit = $4
default_destination_concurrency_limit = $4
smtp_tls_security_level = none
smtpd_tls_security_level = none
message_size_limit = 26214400
maillog_file_prefixes = /tmp
maillog_file = $1/maillog
syslog_name = bench-postfix
EOF
}

# Only the services a relay needs; chroot off (column 5); smtpd on
# 127.0.0.1:PORT instead of port 25.
pf_master() { # LISTEN_PORT
    cat <<EOF
127.0.0.1:$1 inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

pf_start() { # DIR LISTEN_PORT SINK_PORT CONCURRENCY
    dir=$1
    [ "$(id -u)" -eq 0 ] || die "needs root"
    [ -x /usr/sbin/postfix ] || die "postfix is not installed"
    id postfix >/dev/null 2>&1 || die "no postfix user"
    case "$2" in 25 | '' | *[!0-9]*) die "refusing to listen on port '$2'" ;; esac
    case "$dir" in /tmp/?*) ;; *) die "DIR must be a folder under /tmp, not '$dir'" ;; esac
    mkdir -p "$dir/etc" "$dir/spool" "$dir/data"
    # The daemons run as postfix and must reach the queue through DIR.
    chmod 755 "$dir" "$dir/etc" "$dir/spool"
    chown root:root "$dir/spool"
    chown postfix:postfix "$dir/data"
    chmod 700 "$dir/data"
    base=/usr/share/postfix/main.cf.dist
    [ -r "$base" ] || base=/etc/postfix/main.cf.proto
    pf_overrides "$@" >"$dir/overrides.cf"
    # The stock file minus every parameter set in overrides.cf (and their
    # continuation lines), then overrides.cf.
    awk -v over="$dir/overrides.cf" '
        BEGIN {
            while ((getline l < over) > 0)
                if (l ~ /^[a-z_]+ *=/) { sub(/ *=.*/, "", l); skip[l] = 1 }
        }
        /^[a-z_]+ *=/ { k = $0; sub(/ *=.*/, "", k); drop = (k in skip) }
        /^#/ || /^$/ { drop = 0 }
        drop { next }
        { print }' "$base" >"$dir/etc/main.cf"
    { echo; cat "$dir/overrides.cf"; } >>"$dir/etc/main.cf"
    pf_master "$2" >"$dir/etc/master.cf"
    pf_run "$dir" check
    pf_run "$dir" start
    pf_wait_port "$2" || {
        tail -20 "$dir/maillog" >&2 2>/dev/null || true
        die "postfix does not listen on 127.0.0.1:$2"
    }
}

pf_stop() { # DIR
    dir=$1
    [ -f "$dir/etc/main.cf" ] || return 0
    pid=$(pf_master_pid "$dir" || true)
    # Not running (never started, or stopped already): nothing to do.
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    /usr/sbin/postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
start)
    [ $# -eq 5 ] || die "usage: postfix.sh start DIR LISTEN_PORT SINK_PORT CONCURRENCY"
    shift
    pf_start "$@"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: postfix.sh stop DIR"
    pf_stop "$2"
    ;;
*) die "usage: postfix.sh start DIR LISTEN_PORT SINK_PORT CONCURRENCY | stop DIR" ;;
esac

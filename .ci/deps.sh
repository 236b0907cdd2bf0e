#!/bin/sh
# Install the Debian packages bridgehead needs to build and test, only the
# missing ones. Idempotent; quiet when everything is there.
set -e
PKGS="build-essential pkg-config libuv1-dev libssl-dev libsqlite3-dev libyaml-dev
libcmocka-dev libcrypt-dev tzdata ca-certificates openssl python3 python3-aiosmtpd
swaks postfix dnsmasq-base e2fsprogs util-linux curl faketime man-db
clang libclang-rt-14-dev valgrind cppcheck clang-tidy postgresql libpq-dev"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# postfix asks which configuration to install; we only want its tools.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing >/dev/null

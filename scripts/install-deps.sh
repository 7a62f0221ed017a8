#!/bin/sh
# install-deps.sh — the Debian/Ubuntu packages needed to build, test and
# benchmark pam_apikey.  Installs only what is missing; needs root for that.
set -eu
PKGS="build-essential pkg-config clang libpam0g-dev libssl-dev libsqlite3-dev
libevent-dev libjansson-dev libcmocka-dev zlib1g-dev libcrypt-dev libargon2-dev
libpam-wrapper libpamtest0-dev pamtester sqlite3 curl python3 valgrind wrk hyperfine xxd
nginx-light openssh-server openssh-client sshpass util-linux procps
postgresql libpq-dev chromium"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# node and npm: the OpenAPI 3.1 check (tests/sidecar/openapi) and the
# dashboard's browser test.  A node that came with its own npm (not Debian's
# package) is kept as it is.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing

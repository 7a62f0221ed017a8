#!/bin/sh
# tests/packaging/install-deps.sh — what `make check-packages` needs beyond
# scripts/install-deps.sh: Debian and RPM packaging tools, mmdebstrap for the
# clean root, systemd-nspawn to boot it.  Installs only what is missing
# (as root); kept out of scripts/install-deps.sh so `make check` stays lean.
set -eu
PKGS="dpkg-dev debhelper lintian rpm rpmlint mmdebstrap systemd systemd-container
file binutils curl python3 util-linux"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "check-packages: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing

#!/bin/sh
# packaging/build-rpm.sh OUTDIR — `make rpm`: a source tarball of the tree as
# it is, rpmbuild -bb with packaging/rpm/pam_apikey.spec, the .rpms left in
# OUTDIR.  --nodeps: the BuildRequires name Fedora's -devel packages, which a
# Debian build host has under other names (the build itself needs the same
# libraries as `make`).
set -eu
# a clean build of its own: nothing from a calling make or test (BUILD=, -s, -j)
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES BUILD DESTDIR PREFIX BINDIR SBINDIR MANDIR \
	SYSCONFDIR PAMDIR SAN_FLAGS SYSTEMDUNITDIR SYSUSERSDIR TMPFILESDIR PAMCONFIGDIR
out=${1:?usage: build-rpm.sh OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
spec=$top/packaging/rpm/pam_apikey.spec
command -v rpmbuild >/dev/null || { echo "build-rpm: rpmbuild is missing (apt-get install rpm)" >&2; exit 1; }
name=$(sed -n 's/^Name:[[:space:]]*//p' "$spec")
version=$(sed -n 's/^Version:[[:space:]]*//p' "$spec")
work=$(mktemp -d "${TMPDIR:-/tmp}/apikey-rpm.XXXXXX")
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
mkdir -p "$work/SOURCES" "$out"
"$top/packaging/copy-tree.sh" "$top" "$work/src/$name-$version"
tar -C "$work/src" -czf "$work/SOURCES/$name-$version.tar.gz" "$name-$version"
set -- --define "_topdir $work"
if [ -e /etc/debian_version ]; then
	set -- "$@" --define "__os_install_post $top/packaging/rpm/brp-debian-host.sh"
fi
rpmbuild -bb --nodeps "$@" "$spec" >"$work/build.log" 2>&1 || {
	tail -n 40 "$work/build.log" >&2
	echo "build-rpm: rpmbuild failed (last lines above)" >&2
	exit 1
}
rm -f "$out"/pam_apikey-*.rpm "$out"/apikey-tools-*.rpm "$out"/apikeyd-*.rpm
for f in "$work"/RPMS/*/*.rpm; do
	cp "$f" "$out/"
	echo "  RPM     $out/${f##*/}"
done

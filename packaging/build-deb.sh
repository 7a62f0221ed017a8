#!/bin/sh
# packaging/build-deb.sh OUTDIR [VERSION] — `make deb`: build the binary
# .debs with dpkg-buildpackage -b -uc -us in a scratch copy of the source
# tree (so debian/'s clean step never touches ./build), and leave the .debs,
# .changes and .buildinfo in OUTDIR.  VERSION, when given, replaces the
# newest debian/changelog version in the copy (the packaging test builds a
# "previous" release this way).  SRC= names another source tree to build.
set -eu
# a clean build of its own: nothing from a calling make or test (BUILD=, -s, -j)
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES BUILD DESTDIR PREFIX BINDIR SBINDIR MANDIR \
	SYSCONFDIR PAMDIR SAN_FLAGS SYSTEMDUNITDIR SYSUSERSDIR TMPFILESDIR PAMCONFIGDIR
out=${1:?usage: build-deb.sh OUTDIR [VERSION]}
version=${2:-}
top=$(cd "${SRC:-$(dirname "$0")/..}" && pwd)

for tool in dpkg-buildpackage dh; do
	command -v "$tool" >/dev/null || {
		echo "build-deb: $tool is missing (apt-get install dpkg-dev debhelper)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/apikey-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/pam-apikey
mkdir -p "$out"
"$top/packaging/copy-tree.sh" "$top" "$src"
if [ -n "$version" ]; then
	sed -i "1s/([^)]*)/($version)/" "$src/debian/changelog"
fi
(cd "$src" && dpkg-buildpackage -b -uc -us) >"$work/build.log" 2>&1 || {
	tail -n 40 "$work/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (last lines above)" >&2
	exit 1
}
# only this build's packages in OUTDIR (the tests pick them by name)
rm -f "$out"/apikey-tools*_*.deb "$out"/apikeyd*_*.deb "$out"/libpam-apikey*_*.deb \
	"$out"/pam-apikey_*.changes "$out"/pam-apikey_*.buildinfo
for f in "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo; do
	mv -f "$f" "$out/"
	echo "  DEB     $out/${f##*/}"
done

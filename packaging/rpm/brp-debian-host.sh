#!/bin/bash
# packaging/rpm/brp-debian-host.sh — what rpmbuild's %__os_install_post does
# on an RPM distribution (man pages compressed, binaries stripped, which
# find-debuginfo does there), for builds on a Debian host, whose rpm ships
# brp-compress with a bash-only `read -d` under #!/bin/sh and strips only
# debug sections.  build-rpm.sh uses it on Debian only.
set -eu
root=${RPM_BUILD_ROOT:?}
[ "$root" != / ] || exit 0
find "$root/usr/share/man" -type f ! -name '*.gz' -exec gzip -9 -n {} + 2>/dev/null || true
find "$root" -type f -print0 | while IFS= read -r -d '' f; do
	if file -b "$f" | grep -q '^ELF.*not stripped'; then
		strip --strip-unneeded "$f"
	fi
done

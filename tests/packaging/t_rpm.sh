#!/usr/bin/env bash
# tests/packaging/t_rpm.sh — `make rpm`, rpmlint on the spec and the .rpms,
# and the .rpms' file lists against the .debs' (same split, same files; the
# module in %{_libdir}/security).  The .rpms are not installed: no RPM
# distribution's repositories are reachable from here.
. "$(dirname "$0")/../lib.sh"
cd "$TOP" || exit 1
OUT=$BUILD/packages
diag() { sed 's/^/# /'; }
spec=packaging/rpm/pam_apikey.spec
rpm_version=$(sed -n 's/^Version:[[:space:]]*//p' "$spec")
deb_version=$(dpkg-parsechangelog -S Version)
is "the spec's version is debian/changelog's" "$rpm_version" "$deb_version"

if make -s rpm BUILD="$BUILD" >"$T_TMP/rpm.log" 2>&1; then ok "make rpm builds the .rpms with rpmbuild"
else nok "make rpm builds the .rpms with rpmbuild"; tail -n 30 "$T_TMP/rpm.log" | diag; done_testing; exit 1; fi
rpm_of() { ls "$OUT/$1-$rpm_version"-*.rpm 2>/dev/null | head -n 1; }
for p in pam_apikey apikey-tools apikeyd; do
	check "make rpm leaves $p-$rpm_version-*.rpm in build/packages" test -f "$(rpm_of "$p")"
done
if rpmlint -c packaging/rpm/rpmlint.toml "$spec" "$(rpm_of pam_apikey)" "$(rpm_of apikey-tools)" \
	"$(rpm_of apikeyd)" >"$T_TMP/rpmlint.log" 2>&1 &&
	grep -q ' 0 errors, 0 warnings' "$T_TMP/rpmlint.log"; then
	ok "rpmlint: 0 errors, 0 warnings (filters and reasons: packaging/rpm/rpmlint.toml)"
else
	nok "rpmlint: 0 errors, 0 warnings"; grep -E ': [EW]: |checked' "$T_TMP/rpmlint.log" | diag
fi

# the same files in the same split; documentation differs by convention
# (Debian: /usr/share/doc/PKG with copyright and changelog.gz, lintian
# overrides) and
# /usr/share/pam-configs is Debian's pam-auth-update
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=$(rpm --eval '%{_libdir}')
deb_files() {
	dpkg-deb -c "$(ls "$OUT/${1}_${deb_version}"_*.deb | head -n 1)" | awk '$1 !~ /^d/ {print $6}' |
		sed -e 's|^\./|/|' -e "s|^/lib/$multiarch/security/|$libdir/security/|" \
			-e 's|^/lib/systemd/system/|/usr/lib/systemd/system/|' |
		grep -vE '^/usr/share/(doc|lintian|pam-configs)/' | LC_ALL=C sort
}
rpm_files() {
	rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$(rpm_of "$1")" | awk '$1 !~ /^d/ {print $2}' |
		grep -vE '^/usr/share/doc/|^/usr/lib/\.build-id' | LC_ALL=C sort
}
for pair in libpam-apikey:pam_apikey apikey-tools:apikey-tools apikeyd:apikeyd; do
	d=${pair%%:*} r=${pair#*:}
	if diff <(deb_files "$d") <(rpm_files "$r") >"$T_TMP/d"; then
		ok "$r.rpm holds the same files as $d.deb ($(deb_files "$d" | wc -l) files)"
	else nok "$r.rpm holds the same files as $d.deb"; diag <"$T_TMP/d"; fi
done
is "the .rpm's /var/lib/apikey is root:apikey 2770, as the .deb's postinst makes it" \
	"$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$(rpm_of apikey-tools)" | grep ' /var/lib/apikey$')" \
	"drwxrws--- root:apikey /var/lib/apikey"
is "apikey.conf is %config(noreplace)" \
	"$(rpm -qp --configfiles "$(rpm_of apikey-tools)")" "/etc/apikey/apikey.conf"
like "pam_apikey and apikeyd require apikey-tools of the same version and release" \
	"$(rpm -qp --requires "$(rpm_of pam_apikey)"; rpm -qp --requires "$(rpm_of apikeyd)")" \
	"apikey-tools\(x86-64\) = $rpm_version-1.*apikey-tools\(x86-64\) = $rpm_version-1"

done_testing

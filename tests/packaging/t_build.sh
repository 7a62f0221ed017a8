#!/usr/bin/env bash
# tests/packaging/t_build.sh — `make deb` (and a "previous" build with a
# lower version, for t_deb's upgrade), lintian, what each .deb holds, the
# test shim t_deb needs, and `make install` / `make uninstall`.
. "$(dirname "$0")/../lib.sh"
cd "$TOP" || exit 1
OUT=$BUILD/packages PREV=$BUILD/packages-prev
diag() { sed 's/^/# /'; }

# ---- make deb ---------------------------------------------------------------------
if make -s deb BUILD="$BUILD" >"$T_TMP/deb.log" 2>&1; then ok "make deb builds the .debs with dpkg-buildpackage"
else nok "make deb builds the .debs with dpkg-buildpackage"; tail -n 30 "$T_TMP/deb.log" | diag; done_testing; exit 1; fi
version=$(dpkg-parsechangelog -S Version)
for p in apikey-tools apikeyd libpam-apikey; do
	check "make deb leaves ${p}_${version}_*.deb in build/packages" test -f "$(ls "$OUT/${p}_${version}"_*.deb 2>/dev/null | head -n 1)"
done
changes=$(ls "$OUT"/pam-apikey_"${version}"_*.changes | head -n 1)
if lintian --fail-on error,warning --display-info --pedantic \
	"$changes" >"$T_TMP/lintian.log" 2>&1; then
	ok "lintian: no errors, no warnings ($(grep -c '^[IP]:' "$T_TMP/lintian.log") info/pedantic tags, listed below)"
else
	nok "lintian: no errors, no warnings"
fi
grep -E '^[EWIPX]:' "$T_TMP/lintian.log" | diag

deb_of() { ls "$OUT/${1}_${version}"_*.deb | head -n 1; }
has() {  # PACKAGE PATH: the .deb holds PATH
	dpkg-deb -c "$(deb_of "$1")" | awk '{print $6}' | grep -qxF "./${2#/}"
}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for f in libpam-apikey:/lib/$multiarch/security/pam_apikey.so libpam-apikey:/usr/share/pam-configs/apikey \
	libpam-apikey:/usr/share/man/man8/pam_apikey.8.gz \
	apikeyd:/usr/sbin/apikeyd apikeyd:/lib/systemd/system/apikeyd.service apikeyd:/usr/share/man/man8/apikeyd.8.gz \
	apikeyd:/usr/lib/sysusers.d/apikeyd.conf \
	apikey-tools:/usr/bin/apikeyctl apikey-tools:/etc/apikey/apikey.conf apikey-tools:/usr/lib/sysusers.d/apikey.conf \
	apikey-tools:/usr/lib/tmpfiles.d/apikey.conf apikey-tools:/usr/share/man/man1/apikeyctl.1.gz \
	apikey-tools:/usr/share/man/man5/apikey.conf.5.gz apikey-tools:/usr/share/doc/apikey-tools/packaging.md.gz; do
	check "${f%%:*} holds ${f#*:}" has "${f%%:*}" "${f#*:}"
done
# dependencies come from the binaries (dh_shlibdeps), never a fixed list:
# the module's NEEDED libraries and the package's Depends must agree
tmpx=$T_TMP/x; dpkg-deb -x "$(deb_of libpam-apikey)" "$tmpx"
needed=$(readelf -d "$tmpx/lib/$multiarch/security/pam_apikey.so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
depends=$(dpkg-deb -f "$(deb_of libpam-apikey)" Depends)
missing_dep=
for so in $needed; do
	pkg=$(dpkg -S "/lib/$multiarch/$so" "/usr/lib/$multiarch/$so" 2>/dev/null | head -n 1 | cut -d: -f1)
	[ -n "$pkg" ] && ! grep -q "\b$pkg\b" <<<"$depends" && missing_dep="$missing_dep $so($pkg)"
done
is "libpam-apikey's Depends cover every library pam_apikey.so links (\${shlibs:Depends})" "$missing_dep" ""
# libpq (and with it GSSAPI/LDAP) and libevent stay out of sshd; jansson is
# linked on purpose: the module checks a profile's error template at load
if grep -qE 'libpq|libevent' <<<"$needed"; then
	nok "pam_apikey.so links no libpq or libevent (needs: $needed)"
else ok "pam_apikey.so links no libpq or libevent"; fi

# ---- the previous build, for the upgrade test ------------------------------------------
if packaging/build-deb.sh "$PREV" "${version}~prev1" >"$T_TMP/prev.log" 2>&1; then
	ok "a previous build (${version}~prev1) builds into build/packages-prev"
else nok "a previous build (${version}~prev1) builds into build/packages-prev"; tail -n 20 "$T_TMP/prev.log" | diag; fi

# ---- an older release, for t_deb's upgrade through the store's migrations ------------
# PKG_OLD_REV: the last commit with store schema 3 (before the store watch,
# the host's rate-limit table and fleet mode).  Its own unit tests ran when
# it was current: built with nocheck.
old_rev=${PKG_OLD_REV:-781bd1da73111f18e233491e892e40c6f9abcd28}
if git -C "$TOP" cat-file -e "$old_rev^{commit}" 2>/dev/null; then
	mkdir -p "$T_TMP/old" && git -C "$TOP" archive "$old_rev" | tar -x -C "$T_TMP/old"
	if SRC=$T_TMP/old DEB_BUILD_OPTIONS=nocheck packaging/build-deb.sh "$BUILD/packages-old" "${version}~old1" \
		>"$T_TMP/old.log" 2>&1; then
		ok "an older release (commit ${old_rev:0:10}, as ${version}~old1) builds into build/packages-old"
	else nok "an older release (commit ${old_rev:0:10}) builds into build/packages-old"; tail -n 20 "$T_TMP/old.log" | diag; fi
else
	rm -rf "$BUILD/packages-old"
	skip "an older release: commit ${old_rev:0:10} is not in this tree's history (not a git clone)"
fi

# ---- the LD_PRELOAD shim t_deb holds the module with ----------------------------------
mkdir -p "$BUILD/tests/packaging"
check "the hold_fsync shim builds" \
	cc -shared -fPIC -O2 -Wall -Wextra -o "$BUILD/tests/packaging/hold_fsync.so" tests/packaging/hold_fsync.c -ldl

# ---- make install / make uninstall -----------------------------------------------------
D=$T_TMP/dest
if make -s install BUILD="$BUILD" DESTDIR="$D" >"$T_TMP/install.log" 2>&1; then ok "make install DESTDIR=… installs"
else nok "make install DESTDIR=… installs"; tail "$T_TMP/install.log" | diag; fi
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
want="/etc/apikey/apikey.conf
/lib/$multiarch/security/pam_apikey.so
$unitdir/apikeyd.service
/usr/bin/apikeyctl
/usr/lib/sysusers.d/apikey.conf
/usr/lib/sysusers.d/apikeyd.conf
/usr/lib/tmpfiles.d/apikey.conf
/usr/sbin/apikeyd
/usr/share/man/man1/apikeyctl.1
/usr/share/man/man5/apikey.conf.5
/usr/share/man/man8/apikeyd.8
/usr/share/man/man8/pam_apikey.8
/usr/share/pam-configs/apikey
/usr/share/pam_apikey/profiles/clawgig.conf
/usr/share/pam_apikey/profiles/clawhq.conf
/usr/share/pam_apikey/profiles/clawup.conf
/usr/share/pam_apikey/profiles/hiveclaw.conf
/usr/share/pam_apikey/profiles/workclaw.conf"
is "make install puts every part in place (unit dir from pkg-config: $unitdir)" \
	"$(cd "$D" && find . -type f | sed 's/^\.//' | LC_ALL=C sort)" "$(LC_ALL=C sort <<<"$want")"
is "the module is 0644, the programs 0755" \
	"$(stat -c %a "$D/lib/$multiarch/security/pam_apikey.so" "$D/usr/bin/apikeyctl" "$D/usr/sbin/apikeyd" | tr '\n' ' ')" "644 755 755 "
if make -s uninstall BUILD="$BUILD" DESTDIR="$D" >"$T_TMP/uninstall.log" 2>&1 &&
	[ -z "$(find "$D" -type f)" ]; then
	ok "make uninstall removes every file make install put in place"
else nok "make uninstall removes every file make install put in place"; find "$D" -type f | diag; fi
make -s install BUILD="$BUILD" DESTDIR="$D" >/dev/null 2>&1
echo "# edited" >>"$D/etc/apikey/apikey.conf"
make -s uninstall BUILD="$BUILD" DESTDIR="$D" >/dev/null 2>&1
is "make uninstall keeps an edited apikey.conf, and only it" "$(cd "$D" && find . -type f)" "./etc/apikey/apikey.conf"
rm -rf "$D"

# PREFIX moves the programs, never the module (libpam looks in its own dir);
# SYSTEMDUNITDIR comes from pkg-config when it knows one
mkdir -p "$T_TMP/pc"
cat >"$T_TMP/pc/pkg-config" <<EOF
#!/bin/sh
case "\$*" in *systemdsystemunitdir*) echo /opt/units ;; *) exec pkg-config "\$@" ;; esac
EOF
chmod +x "$T_TMP/pc/pkg-config"
make -s install BUILD="$BUILD" DESTDIR="$D" PREFIX=/opt/apikey PKG_CONFIG="$T_TMP/pc/pkg-config" >/dev/null 2>&1
check "PREFIX=/opt/apikey: apikeyctl in /opt/apikey/bin" test -x "$D/opt/apikey/bin/apikeyctl"
check "PREFIX=/opt/apikey: the module still in /lib/$multiarch/security" test -f "$D/lib/$multiarch/security/pam_apikey.so"
check "SYSTEMDUNITDIR from pkg-config's systemdsystemunitdir" test -f "$D/opt/units/apikeyd.service"
rm -rf "$D"
make -s install BUILD="$BUILD" DESTDIR="$D" SYSTEMDUNITDIR=/srv/units >/dev/null 2>&1
check "SYSTEMDUNITDIR= on the command line wins" test -f "$D/srv/units/apikeyd.service"
rm -rf "$D"

# a part that is missing stops the install (it is not skipped)
P=$T_TMP/partial; mkdir -p "$P"
cp "$BUILD/apikeyctl" "$BUILD/pam_apikey.so" "$P/"
if make -s -o all install BUILD="$P" DESTDIR="$D" >"$T_TMP/partial.log" 2>&1; then
	nok "make install fails when apikeyd was not built"
else
	like "make install fails when apikeyd was not built, naming it" "$(cat "$T_TMP/partial.log")" "apikeyd is missing"
fi

done_testing

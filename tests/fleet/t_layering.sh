#!/usr/bin/env bash
# t_layering.sh — fleet mode's PostgreSQL code lives in a part of its own
# (upstream/ → libapikey_upstream.a) that only apikeyctl and apikeyd link:
# the PAM module, loaded into sshd, neither links libpq nor pulls libpq's
# GSSAPI/Kerberos/LDAP dependencies, and the core library has no libpq
# symbol.  The daemon and the CLI showing them is the positive control: the
# checks can fail.
. "$(dirname "$0")/../lib.sh"

M=$PAM_MODULE CORE=$BUILD/libapikey.a UP=$BUILD/libapikey_upstream.a
for f in "$M" "$CORE" "$UP" "$APIKEYD" "$APIKEYCTL"; do
	[ -e "$f" ] || { nok "$f is built (make)"; done_testing; exit 1; }
done
# ASan builds carry the sanitizer runtime; the checks below are about libpq only.
deps=$(ldd "$M" 2>&1)
check "ldd pam_apikey.so: no libpq" bash -c "! grep -q 'libpq' <<<\"\$1\"" _ "$deps"
check "ldd pam_apikey.so: no GSSAPI, Kerberos or LDAP" \
	bash -c "! grep -qE 'libgssapi|libkrb5|libldap|liblber' <<<\"\$1\"" _ "$deps"
check "nm -D pam_apikey.so: no undefined PQ* symbol" \
	bash -c "! nm -D --undefined-only '$M' | grep -qE ' PQ|pg_'"
check "nm libapikey.a: no PQ* symbol at all" bash -c "! nm '$CORE' 2>/dev/null | grep -qE ' [UT] PQ'"
check "nm libapikey.a: no upstream code in the core" bash -c "! nm '$CORE' 2>/dev/null | grep -q 'apikey_upstream_'"
check "readelf pam_apikey.so: NEEDED has no libpq" bash -c "! readelf -d '$M' | grep NEEDED | grep -q libpq"

# the positive control
check "libapikey_upstream.a defines the writer (apikey_upstream_attach)" \
	bash -c "nm '$UP' | grep -q ' T apikey_upstream_attach'"
check "libapikey_upstream.a uses libpq (undefined PQ*)" bash -c "nm '$UP' | grep -q ' U PQconnectStartParams'"
like "ldd apikeyd: libpq" "$(ldd "$APIKEYD")" "libpq"
like "ldd apikeyctl: libpq" "$(ldd "$APIKEYCTL")" "libpq"
check "nm -D apikeyd: PQ* undefined (resolved from libpq)" bash -c "nm -D --undefined-only '$APIKEYD' | grep -q ' PQ'"
done_testing

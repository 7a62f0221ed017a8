#!/usr/bin/env bash
# t_exports.sh — the module exports only pam_sm_* (its version script), seen
# two ways: the dynamic symbol table (nm -D) and a program that dlopens the
# module and looks symbols up as libpam does (dlsym_check.c).
. "$(dirname "$0")/../lib.sh"

if [ ! -f "$PAM_MODULE" ]; then
	skip "no $PAM_MODULE (make)"
	done_testing
	exit 0
fi
syms=$(nm -D --defined-only "$PAM_MODULE" | awk '$2 ~ /^[TDBRVWiu]$/ { print $3 }' | sort)
is "nm -D: exactly the five pam_sm_* functions are defined and exported" "$(echo $syms)" \
	"pam_sm_acct_mgmt pam_sm_authenticate pam_sm_close_session pam_sm_open_session pam_sm_setcred"
is "nm -D: no apikey_* core symbol leaks out" "$(nm -D --defined-only "$PAM_MODULE" | grep -c apikey_)" 0
like "linked with -z now (BIND_NOW)" "$(readelf -d "$PAM_MODULE")" "BIND_NOW|FLAGS.*NOW"
like "linked with -z relro (GNU_RELRO)" "$(readelf -lW "$PAM_MODULE")" "GNU_RELRO"
# -z nodelete: pam_end's dlclose leaves the module (and libcrypto, libsqlite3)
# loaded, so a long-lived process does not map and initialise them per login
like "linked with -z nodelete" "$(readelf -d "$PAM_MODULE")" "NODELETE"
is "no openlog/exit/abort imported" "$(nm -D --undefined-only "$PAM_MODULE" | grep -cwE 'openlog|exit|_exit|abort')" 0
# libcrypt and libargon2 are loaded only when an imported key of that kind
# is checked (core/hash.c): not in every sshd that loads the module
needed=$(readelf -d "$PAM_MODULE" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
is "not linked with libcrypt or libargon2 (NEEDED: $needed)" "$(grep -cE 'libcrypt\.so|libargon2' <<<"$needed")" 0

# The C check prints its own TAP; renumber it into this script's count.
if [ "${SANITIZE:-}" = 1 ]; then
	pre="$(${CC:-cc} -print-file-name=libasan.so)"
else
	pre=
fi
out=$(LD_PRELOAD="$pre" ASAN_OPTIONS=detect_leaks=0 "$BUILD/tests/pam/dlsym_check" "$PAM_MODULE" 2>&1)
rc=$?
while IFS= read -r line; do
	case "$line" in
	"ok "*) ok "dlopen: ${line#ok * - }" ;;
	"not ok "*) nok "dlopen: ${line#not ok * - }" ;;
	esac
done <<<"$out"
is "dlsym_check exits 0" "$rc" 0

# ... and a login with an imported bcrypt or argon2id key loads them then
. "$(dirname "$0")/pam-lib.sh"
TESTDATA="$BUILD/tests/cli/apikey-testdata"
if [ -n "$PWRAP_LIB" ] && command -v pamtester >/dev/null && [ -x "$TESTDATA" ]; then
	DB=$(new_db keys)
	scratch=$(new_db scratch)
	for alg in bcrypt argon2id; do
		k=$("$APIKEYCTL" --db "$scratch" create --owner daemon --scopes a:b)
		printf '{"hash":"%s","hint":"%s","owner":"daemon","scopes":"pam:apitest"}\n' \
			"$("$TESTDATA" hash "$alg" "$k")" "${k:0:8}" >"$T_TMP/$alg.jsonl"
		"$APIKEYCTL" --db "$DB" import "$T_TMP/$alg.jsonl" >/dev/null
		echo "$k" >>"$PAM_SECRETS"
		svc apitest "auth required $PAM_MODULE db=$DB" "account required $PAM_MODULE db=$DB"
		is "a login with an imported $alg key (the library loaded on demand)" \
			"$(pt apitest daemon "$k" authenticate acct_mgmt)" PAM_SUCCESS
	done
else
	skip "imported-key logins: pamtester, pam_wrapper or apikey-testdata missing"
fi
done_testing

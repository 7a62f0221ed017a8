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
is "no openlog/exit/abort imported" "$(nm -D --undefined-only "$PAM_MODULE" | grep -cwE 'openlog|exit|_exit|abort')" 0

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
done_testing

#!/usr/bin/env bash
# t_http_catalogue.sh — the catalogue of hostile HTTP requests
# (http_cases.txt) against apikeyd with 2 workers: each answered as the
# catalogue says, and a normal client served right after each.  Then: no
# key from a URL path in the access log, nothing but the expected refusals
# in the daemon's log, SIGTERM exits 0.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../sidecar/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
K=$(sc_key alice docs:read --rate-limit 1000000)
"$APIKEYCTL" --db "$DB" account set alice --plan free --active yes >/dev/null
[ "${#K}" = 39 ] || { nok "a 39-character key (the catalogue's /v1/verify body counts on it)"; done_testing; exit 1; }
ACCESS=$T_TMP/access.log
printf 'db=%s\naccess_log=%s\n' "$DB" "$ACCESS" >"$T_TMP/apikey.conf"
sc_start -f "$T_TMP/apikey.conf" --threads 2 || { nok "apikeyd starts"; done_testing; exit 1; }

python3 "$TOP/tests/reliability/http_catalogue.py" "$SC_PORT" "$SC_PID" "$K" \
	"$TOP/tests/reliability/http_cases.txt" | sed '/^1\.\./d' >"$T_TMP/cat.tap"
n=$(grep -c '^ok\|^not ok' "$T_TMP/cat.tap")
# renumber into this script's TAP
while IFS= read -r line; do
	case "$line" in
	"ok "*) ok "${line#ok * - }" ;;
	"not ok "*) nok "${line#not ok * - }" ;;
	esac
done <"$T_TMP/cat.tap"
[ "$n" -ge 60 ] && ok "the catalogue has $n cases (at least 60)" || nok "the catalogue has at least 60 cases (ran $n)"
check "no key reached the access log" bash -c "! grep -qF '$K' '$ACCESS'"
check "no key reached the daemon's log" bash -c "! grep -qF '$K' '$SC_LOG'"
check "no crash, no sanitizer report, no error line" bash -c "! grep -E 'Sanitizer|Assertion|error:' '$SC_LOG'"
sc_stop TERM
is "SIGTERM after the catalogue: exit 0" "$SC_RC" 0
done_testing

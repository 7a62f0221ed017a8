#!/usr/bin/env bash
# t_admin.sh — the admin API over loopback (SPEC §5a), table-driven
# (tests/sidecar/admin_table.py): every endpoint and every authorization
# case (own owner, other owner, admin, keys with only wildcards, escalation
# by create, PATCH, preset and rotate, a revoked admin key), the bad-input
# table, usage counted from /auth, CORS on and off, admin_api=no → 404, a
# rate-limited caller, and no key in any log line.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
ctl() { "$APIKEYCTL" --db "$DB" "$@"; }
"$APIKEYCTL" --db "$DB" preset add docs-reader docs:read >/dev/null || nok "preset docs-reader"

# The callers and the keys they act on: name → key, id.
declare -A KEY ID
mk() {   # mk NAME OWNER SCOPES [create args]
	local n=$1 o=$2 s=$3; shift 3
	KEY[$n]=$(sc_key "$o" "$s" "$@") || { nok "create $n"; return 1; }
	ID[$n]=$(sc_key_id "$o")
}
mk admin root apikey:admin --rate-limit 100000
mk admin2 root apikey:admin
mk admin_revoked root apikey:admin
mk alice_w alice apikey:write,docs:read,docs:write --rate-limit 100000
mk alice_r alice apikey:read --rate-limit 100000
mk bob_w bob apikey:write,docs:read --rate-limit 100000
mk star alice '*'
mk apikey_star alice 'apikey:*'
mk read_star alice '*:read'
mk plain alice docs:read
mk alice_k1 alice docs:read --rate-limit 100000
mk alice_k2 alice docs:read
mk alice_k3 alice docs:read
mk bob_k1 bob docs:read
mk slow root apikey:admin --rate-limit 2
ctl revoke "${ID[admin_revoked]}" >/dev/null
keys_json() {
	local n; { for n in "${!KEY[@]}"; do printf '%s %s %s\n' "$n" "${KEY[$n]}" "${ID[$n]}"; done; } |
		python3 -c 'import json,sys; print(json.dumps({n: {"key": k, "id": i} for n, k, i in (l.split() for l in sys.stdin)}))'
}
SEEN="$T_TMP/seen-keys"
: >"$SEEN"
# table WHICH: run one table of admin_table.py against the running daemon
table() {
	local l
	keys_json | python3 "$TOP/tests/sidecar/admin_table.py" "$SC_PORT" "$1" "$SEEN" >"$T_TMP/table.$1" 2>&1 ||
		nok "table $1 ran to its end (see below)"
	while IFS= read -r l; do
		case $l in "ok - "*) ok "${l#ok - }";; "not ok - "*) nok "${l#not ok - }";; *) echo "# $l";; esac
	done <"$T_TMP/table.$1"
}

ACCESS="$T_TMP/access.log"
printf 'admin_api=yes\nkey_query=api_key\naccess_log=%s\n' "$ACCESS" >"$T_TMP/on.conf"
sc_start -f "$T_TMP/on.conf" --db "$DB" --threads 2 || { nok "apikeyd starts"; done_testing; exit 1; }
table authz
table bad
table cors_off

# usage: three allowed /auth calls and one refused, counted once flushed
for i in 1 2 3; do sc_status "/auth?scope=docs:read" -H "X-API-Key: ${KEY[alice_k1]}" >/dev/null; done
is "/auth refusal for the usage count" "$(sc_status "/auth?scope=billing:read" -H "X-API-Key: ${KEY[alice_k1]}")" 403
for i in $(seq 50); do   # a bounded poll for the 1 s flush
	n=$(ctl usage 2>/dev/null | awk -v id="${ID[alice_k1]}" '$0 ~ id {print; exit}')
	[ -n "$n" ] && grep -q " 3 " <<<"$n" && break
	sleep 0.1
done
sleep 1.2
table usage

# a caller over its rate limit is refused like any client (429 + Retry-After)
for i in 1 2; do sc_status /v1/presets -H "Authorization: Bearer ${KEY[slow]}" >/dev/null; done
curl -s -m 5 -D "$T_TMP/h429" -o "$T_TMP/b429" -H "Authorization: Bearer ${KEY[slow]}" "$SC_URL/v1/presets"
like "third call of a 2/min admin key: 429" "$(head -1 "$T_TMP/h429")" ' 429 '
like "…with Retry-After" "$(sc_header Retry-After "$T_TMP/h429")" '^[0-9]+$'
like "…and code RATE_LIMITED" "$(cat "$T_TMP/b429")" '"code":"RATE_LIMITED"'
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0

# no key, ever, in a log line or the access log: the operator's, and every
# key a 201 handed out
LOGS="$T_TMP/all.log"
cat "$T_TMP"/apikeyd.*.log "$ACCESS" >"$LOGS" 2>/dev/null
check "the access log was written" test -s "$ACCESS"
like "admin writes are logged (by key id)" "$(cat "$LOGS")" "admin: create by ${ID[alice_w]}"
leaked=0
while read -r k; do [ -n "$k" ] && grep -qF "$k" "$LOGS" && leaked=$((leaked + 1)); done < <(printf '%s\n' "${KEY[@]}"; cat "$SEEN")
is "no key in any log line ($(wc -l <"$SEEN") keys issued over HTTP)" "$leaked" 0
check "keys were issued over HTTP" test -s "$SEEN"

# CORS when origins are configured
printf 'admin_api=yes\nadmin_cors_origins=https://ui.example, http://localhost:8000\n' >"$T_TMP/cors.conf"
sc_start -f "$T_TMP/cors.conf" --db "$DB" --threads 1 || nok "apikeyd starts (CORS)"
table cors_on
sc_stop TERM

# admin_api=no (the default): every admin path is 404
sc_start --db "$DB" --threads 1 || nok "apikeyd starts (no admin API)"
table disabled
is "/auth still works" "$(sc_status /auth -H "X-API-Key: ${KEY[alice_k1]}")" 200
sc_stop TERM
done_testing

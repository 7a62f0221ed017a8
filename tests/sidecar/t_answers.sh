#!/usr/bin/env bash
# t_answers.sh — apikeyd answers in a profile's shape (SPEC §10, apikey.conf(5)
# COMPATIBLE ANSWERS): every JSON error it sends (/auth, /v1/whoami, 400, 404,
# 405) is the template's; /v1/verify and the access log keep the true outcome;
# auth_error_body=header and =no; SIGHUP brings new answers; a broken template
# stops apikeyd from starting; /v1/whoami shows the owner's account.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
conf="$T_TMP/apikey.conf"
profile() {  # the shape, then any extra lines
	printf '%s\n' "db=$DB" "access_log=$T_TMP/access.log" \
		'error_template={"success":false,"error":{"code":"${code}","message":"${message}"}}' \
		'error_code.MISSING_KEY=UNAUTHORIZED' 'error_code.MALFORMED_KEY=UNAUTHORIZED' \
		'error_message.MALFORMED_KEY=Clé invalide' \
		'error_code.INSUFFICIENT_SCOPE=FORBIDDEN' \
		'error_message.INSUFFICIENT_SCOPE=API key missing required scope: ${scope}' "$@" >"$conf"
}
profile
K=$("$APIKEYCTL" --db "$DB" create --owner alice --scopes docs:read)
KB=$("$APIKEYCTL" --db "$DB" create --owner bob --scopes docs:read)
"$APIKEYCTL" --db "$DB" account set bob --plan pro >/dev/null

sc_start -f "$conf" --threads 1 || { nok "apikeyd starts"; done_testing; exit 1; }

# req PATH [CURL ARGS...]: sets ST (status), BODY, H (header file)
req() { local p=$1; shift; H="$T_TMP/h"; ST=$(curl -s -m 10 -D "$H" -o "$T_TMP/b" -w '%{http_code}' "$@" "$SC_URL$p"); BODY=$(cat "$T_TMP/b"); }
last_outcome() { tail -n 1 "$T_TMP/access.log" | awk '{ print $6 }'; }

req /auth
is "missing key: the profile's body" "$ST $BODY" '401 {"success":false,"error":{"code":"UNAUTHORIZED","message":"Missing API key"}}'
is "missing key: X-ApiKey-Code is the profile's code" "$(sc_header X-ApiKey-Code "$H")" UNAUTHORIZED
is "missing key: the access log keeps the outcome" "$(last_outcome)" MISSING_KEY
req /auth -H "X-API-Key: ak_junk"
is "malformed: message with UTF-8, as written" "$ST $BODY" '401 {"success":false,"error":{"code":"UNAUTHORIZED","message":"Clé invalide"}}'
req /auth -H "X-API-Key: $K" -H "X-Required-Scope: docs:read" -H "X-Required-Scope: agents:write,z:z"
is "scope: names the first scope missing" "$ST $BODY" \
	'403 {"success":false,"error":{"code":"FORBIDDEN","message":"API key missing required scope: agents:write"}}'
req /v1/whoami
is "/v1/whoami refusal: the same shape" "$ST $BODY" '401 {"success":false,"error":{"code":"UNAUTHORIZED","message":"Missing API key"}}'
req /nowhere
is "404: the profile's shape, our code" "$ST $BODY" '404 {"success":false,"error":{"code":"NOT_FOUND","message":"Not found"}}'
req /v1/verify -X GET
is "405: the profile's shape" "$ST $BODY" '405 {"success":false,"error":{"code":"METHOD_NOT_ALLOWED","message":"Method not allowed"}}'
req /auth -H "X-API-Key: $K" -H "X-Required-Scope: Bad Scope"
is "400: the profile's shape" "$ST $BODY" '400 {"success":false,"error":{"code":"BAD_REQUEST","message":"Bad request: bad required scope"}}'
req /v1/verify -X POST --data-binary '{"key":"ak_junk"}'
is "/v1/verify keeps the precise outcome (compat.md D2)" "$ST $(jq_code() { python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])'; }; jq_code <<<"$BODY")" "200 MALFORMED_KEY"

# /v1/whoami: the owner's account, or null
req /v1/whoami -H "Authorization: Bearer $KB"
is "/v1/whoami: the owner's account" "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["owner"], d["account"])' <<<"$BODY")" \
	"bob {'plan': 'pro', 'active': True}"
req /v1/whoami -H "Authorization: Bearer $K"
is "/v1/whoami: no account recorded is null" "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["account"])' <<<"$BODY")" None

# auth_error_body=header: the body goes in X-ApiKey-Error (ASCII), none is sent
profile auth_error_body=header
kill -HUP "$SC_PID"
for i in $(seq 50); do grep -q "configuration reloaded" "$SC_LOG" && break; sleep 0.1; done
req /auth -H "X-API-Key: ak_junk"
is "header: 401, no body" "$ST $(sc_header Content-Length "$H")" "401 0"
is "header: the rendered body, non-ASCII escaped" "$(sc_header X-ApiKey-Error "$H")" \
	'{"success":false,"error":{"code":"UNAUTHORIZED","message":"Cl\u00e9 invalide"}}'
python3 -c 'import json,sys; assert json.loads(sys.argv[1])["error"]["message"] == "Clé invalide"' \
	"$(sc_header X-ApiKey-Error "$H")" && ok "header: it is the same JSON" || nok "header: not the same JSON"
req /v1/whoami
is "header: only /auth; /v1/whoami keeps its body" "$ST ${BODY:0:10}" '401 {"success"'
# SIGHUP: new answers from the next request on
profile auth_error_body=no 'error_template={"err":"${code}"}'
kill -HUP "$SC_PID"
for i in $(seq 50); do [ "$(grep -c "configuration reloaded" "$SC_LOG")" -ge 2 ] && break; sleep 0.1; done
req /auth
is "auth_error_body=no: no body" "$ST $(sc_header Content-Length "$H") $(sc_header X-ApiKey-Code "$H")" "401 0 UNAUTHORIZED"
req /nowhere
is "SIGHUP: the new template" "$ST $BODY" '404 {"err":"NOT_FOUND"}'
# a broken template on SIGHUP: the running answers stay
printf '%s\n' "db=$DB" 'error_template={"err":${code}}' >"$conf"
kill -HUP "$SC_PID"
for i in $(seq 50); do grep -q "configuration not reloaded" "$SC_LOG" && break; sleep 0.1; done
req /nowhere
is "SIGHUP with a broken template: the running answers stay" "$ST $BODY" '404 {"err":"NOT_FOUND"}'
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0

# the admin API in a profile's shape, under its catalogue and default preset
profile admin_api=yes 'scopes=docs:read,docs:write' 'preset.reader=docs:read' 'default_preset=reader'
MGMT=$("$APIKEYCTL" --conf "$conf" create --owner alice --scopes apikey:admin,docs:read,docs:write)
req_preset_sync=$("$APIKEYCTL" --conf "$conf" preset sync)
is "preset sync installs the profile's preset into the running store" "$req_preset_sync" "preset reader: docs:read (added)"
sc_start -f "$conf" --threads 1 || { nok "apikeyd starts with admin_api=yes"; done_testing; exit 1; }
req /v1/keys -X POST -H "Authorization: Bearer $MGMT" --data-binary '{"owner":"alice","scopes":["docs:raed"]}'
is "admin: a scope outside the catalogue is refused, in the profile's shape" "$ST $BODY" \
	'400 {"success":false,"error":{"code":"BAD_REQUEST","message":"Bad request: scope '"'docs:raed'"' is not in the scope catalogue"}}'
req /v1/keys -X POST -H "Authorization: Bearer $MGMT" --data-binary '{"owner":"alice","name":"x"}'
is "admin: no scopes, the default preset" "$ST $(python3 -c 'import json,sys; print(json.load(sys.stdin)["scopes"])' <<<"$BODY")" \
	"201 ['docs:read']"
req /v1/keys -H "Authorization: Bearer ak_junk"
is "admin: the caller's key refused, the profile's code and shape" "$ST $BODY $(sc_header X-ApiKey-Code "$H")" \
	'401 {"success":false,"error":{"code":"UNAUTHORIZED","message":"Clé invalide"}} UNAUTHORIZED'
is "admin: …counted as its outcome" "$(last_outcome)" MALFORMED_KEY
req /v1/keys/key_0000000000000000 -H "Authorization: Bearer $MGMT"
is "admin: 404 in the profile's shape" "$ST $BODY" '404 {"success":false,"error":{"code":"NOT_FOUND","message":"Not found"}}'
sc_stop TERM

# a broken shape is never served: apikeyd refuses to start, naming the line
printf '%s\n' "db=$DB" 'error_code.MISSING_KEY=X' 'error_template={"e":"${mesage}"}' >"$conf"
out=$(timeout 10 "$APIKEYD" -f "$conf" --listen "127.0.0.1:$(free_port)" 2>&1); rc=$?
is "broken template: apikeyd does not start (exit 1)" "$rc" 1
like "broken template: the line is named" "$out" "apikey.conf:3: error_template: unknown placeholder \\$\\{mesage\\}"
done_testing

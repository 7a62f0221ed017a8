#!/usr/bin/env bash
# t_codes.sh — apikeyd over loopback: every SPEC §3 code through /auth with its
# status, headers and body; both key sources (+ configured header/query) and
# both scope sources; /v1/verify, /v1/whoami, /healthz, /readyz, /metrics, 404;
# UNAVAILABLE (503, /readyz 503) when the store is corrupted at runtime.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
OTHER=$(new_db other)
conf="$T_TMP/apikey.conf"
printf 'db=%s\nkey_header=X-Token\nkey_query=api_key\n' "$DB" >"$conf"

K=$(sc_key alice docs:read,docs:write --rate-limit 1000)
KID=$(sc_key_id alice)
KREV=$(sc_key alice docs:read); "$APIKEYCTL" --db "$DB" revoke "$(sc_key_id alice)" >/dev/null
KEXP=$(sc_key alice docs:read --expires 1s); exp_made=$(date +%s)
KINACT=$(sc_key carol docs:read); "$APIKEYCTL" --db "$DB" account set carol --plan pro --active no >/dev/null
KPLAN=$(sc_key dave docs:read); "$APIKEYCTL" --db "$DB" account set dave --plan free --active yes >/dev/null
KRATE=$(sc_key erin docs:read --rate-limit 1)
KINVALID=$("$APIKEYCTL" --db "$OTHER" create --owner zed --scopes docs:read)

sc_start -f "$conf" --threads 2 || { nok "apikeyd starts"; done_testing; exit 1; }
ok "apikeyd starts on 127.0.0.1:$SC_PORT"

# auth CODE-WANTED STATUS-WANTED DESC CURL-ARGS... : checks status and the JSON body's code
auth() {
	local want=$1 status=$2 desc=$3; shift 3
	local h="$T_TMP/h" b="$T_TMP/b" got code
	got=$(curl -s -m 10 -D "$h" -o "$b" -w '%{http_code}' "$@")
	if [ "$want" = VALID ]; then
		code=VALID; [ -s "$b" ] && code="body:$(head -c 60 "$b")"
	else
		code=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["code"] if d["status"]==int(sys.argv[2]) and d["error"] else "bad")' "$b" "$got" 2>/dev/null)
	fi
	is "$desc: $status $want" "$got $code" "$status $want"
}

auth VALID 200 "Bearer key, scope in query" -H "Authorization: Bearer $K" "$SC_URL/auth?scope=docs:read"
for f in X-ApiKey-Id:$KID X-ApiKey-Owner:alice X-ApiKey-Scopes:docs:read,docs:write RateLimit-Limit:1000 Content-Length:0; do
	is "200 carries ${f%%:*}" "$(sc_header "${f%%:*}" "$T_TMP/h")" "${f#*:}"
done
like "200 carries RateLimit-Remaining" "$(sc_header RateLimit-Remaining "$T_TMP/h")" '^9[0-9][0-9]$'
like "200 carries RateLimit-Reset" "$(sc_header RateLimit-Reset "$T_TMP/h")" '^[0-9]+$'
is "200 has an empty body" "$(stat -c %s "$T_TMP/b")" 0
is "200 has no WWW-Authenticate" "$(sc_header WWW-Authenticate "$T_TMP/h")" ""
auth VALID 200 "X-API-Key, scope in X-Required-Scope" -H "X-API-Key: $K" -H "X-Required-Scope: docs:write" "$SC_URL/auth"
auth VALID 200 "configured key_header X-Token" -H "X-Token: $K" "$SC_URL/auth"
auth VALID 200 "configured key_query api_key" "$SC_URL/auth?api_key=$K&scope=docs:read"
auth VALID 200 "lower-case bearer scheme, extra blanks" -H "authorization:   bearer   $K  " "$SC_URL/auth"
auth VALID 200 "POST /auth (any method)" -X POST -H "X-API-Key: $K" "$SC_URL/auth"
auth VALID 200 "/auth/<original path> (Envoy path_prefix)" -H "X-API-Key: $K" "$SC_URL/auth/api/docs/1?scope=docs:read"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -I -H "X-API-Key: $K" "$SC_URL/auth")
is "HEAD /auth" "$code" 200

auth MISSING_KEY 401 "no key" "$SC_URL/auth"
is "401 carries WWW-Authenticate: Bearer" "$(sc_header WWW-Authenticate "$T_TMP/h")" "Bearer"
is "401 has no RateLimit-* (rate step not reached)" "$(sc_header RateLimit-Limit "$T_TMP/h")" ""
like "error body is JSON" "$(sc_header Content-Type "$T_TMP/h")" '^application/json'
auth MISSING_KEY 401 "Authorization: Basic is not a key" -H "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l" "$SC_URL/auth"
auth MISSING_KEY 401 "empty X-API-Key" -H "X-API-Key;" "$SC_URL/auth"
auth MALFORMED_KEY 401 "malformed key" -H "X-API-Key: ak_notakey" "$SC_URL/auth"
auth MALFORMED_KEY 401 "key with one typo (checksum)" -H "X-API-Key: ${K%?}$( [ "${K: -1}" = A ] && echo B || echo A)" "$SC_URL/auth"
auth INVALID_KEY 401 "well-formed key from another store" -H "X-API-Key: $KINVALID" "$SC_URL/auth"
is "401 INVALID_KEY carries WWW-Authenticate" "$(sc_header WWW-Authenticate "$T_TMP/h")" "Bearer"
auth REVOKED 401 "revoked key" -H "X-API-Key: $KREV" "$SC_URL/auth"
while [ "$(date +%s)" -le $((exp_made + 1)) ]; do sleep 0.2; done
auth EXPIRED 401 "expired key" -H "X-API-Key: $KEXP" "$SC_URL/auth"
auth ACCOUNT_INACTIVE 403 "suspended owner" -H "X-API-Key: $KINACT" "$SC_URL/auth"
auth PLAN_REQUIRED 403 "X-Required-Plan: pro,ultra, owner on free" -H "X-API-Key: $KPLAN" -H "X-Required-Plan: pro,ultra" "$SC_URL/auth"
auth VALID 200 "X-Required-Plan: free,pro, owner on free" -H "X-API-Key: $KPLAN" -H "X-Required-Plan: free,pro" "$SC_URL/auth"
auth INSUFFICIENT_SCOPE 403 "scope not granted (header)" -H "X-API-Key: $K" -H "X-Required-Scope: keys:write" "$SC_URL/auth"
auth INSUFFICIENT_SCOPE 403 "scope not granted (query)" -H "X-API-Key: $K" "$SC_URL/auth?scope=docs:read,keys:write"
auth INSUFFICIENT_SCOPE 403 "header and query scopes add up" -H "X-API-Key: $K" -H "X-Required-Scope: docs:read" "$SC_URL/auth?scope=keys:write"
auth INSUFFICIENT_SCOPE 403 "a repeated scope parameter adds up" -H "X-API-Key: $K" "$SC_URL/auth?scope=docs:read&scope=keys:write"
auth INSUFFICIENT_SCOPE 403 "repeated X-Required-Scope headers add up" -H "X-API-Key: $K" -H "X-Required-Scope: docs:read" -H "X-Required-Scope: keys:write" "$SC_URL/auth"
auth VALID 200 "rate limit 1/min: first request" -H "X-API-Key: $KRATE" "$SC_URL/auth"
auth RATE_LIMITED 429 "rate limit 1/min: second request" -H "X-API-Key: $KRATE" "$SC_URL/auth"
like "429 carries Retry-After" "$(sc_header Retry-After "$T_TMP/h")" '^[1-9][0-9]*$'
is "429 carries RateLimit-Limit" "$(sc_header RateLimit-Limit "$T_TMP/h")" 1
is "429 carries RateLimit-Remaining 0" "$(sc_header RateLimit-Remaining "$T_TMP/h")" 0
like "429 carries RateLimit-Reset" "$(sc_header RateLimit-Reset "$T_TMP/h")" '^[1-9][0-9]*$'
got=$(curl -s -m 5 -o "$T_TMP/b" -w '%{http_code}' -H "X-API-Key: $K" "$SC_URL/auth?scope=Bad%20Scope")
is "a bad required scope is a 400" "$got $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' "$T_TMP/b")" "400 BAD_REQUEST"

# /v1/verify
verify() { curl -s -m 10 -w '\n%{http_code}' -X POST --data-binary "$1" "$SC_URL/v1/verify"; }
field() { python3 -c 'import json,sys
t=sys.stdin.read().rsplit("\n",1); d=json.loads(t[0]); r=eval(sys.argv[1])
print(t[1], *(r if isinstance(r, tuple) else (r,)))' "$1"; }
is "/v1/verify valid" "$(verify "{\"key\":\"$K\",\"scopes\":[\"docs:read\"]}" | field 'd["valid"], d["code"], d["key"]["id"], d["key"]["owner"], d["key"]["scopes"], d["key"]["expires_at"], d["ratelimit"]["limit"]')" \
	"200 True VALID $KID alice ['docs:read', 'docs:write'] None 1000"
is "/v1/verify insufficient scope" "$(verify "{\"key\":\"$K\",\"scopes\":[\"keys:write\"]}" | field 'd["valid"], d["code"], d["key"]["id"], d["ratelimit"]')" \
	"200 False INSUFFICIENT_SCOPE $KID None"
is "/v1/verify unknown key" "$(verify "{\"key\":\"$KINVALID\"}" | field 'd["valid"], d["code"], d["key"], d["ratelimit"]')" "200 False INVALID_KEY None None"
is "/v1/verify no key" "$(verify '{}' | field 'd["valid"], d["code"]')" "200 False MISSING_KEY"
is "/v1/verify bad JSON" "$(verify '{"key":' | field 'd["code"], d["status"]')" "400 BAD_REQUEST 400"
is "/v1/verify key not a string" "$(verify '{"key":42}' | field 'd["code"]')" "400 BAD_REQUEST"
is "/v1/verify scopes not an array" "$(verify "{\"key\":\"$K\",\"scopes\":\"docs:read\"}" | field 'd["code"]')" "400 BAD_REQUEST"
is "/v1/verify duplicate members" "$(verify "{\"key\":\"$KINVALID\",\"key\":\"$K\"}" | field 'd["code"]')" "400 BAD_REQUEST"
is "/v1/verify array body" "$(verify '[1]' | field 'd["code"]')" "400 BAD_REQUEST"
got=$(curl -s -m 5 -D "$T_TMP/h" -o /dev/null -w '%{http_code}' "$SC_URL/v1/verify")
is "GET /v1/verify is 405 with Allow: POST" "$got $(sc_header Allow "$T_TMP/h")" "405 POST"

# /v1/whoami
is "/v1/whoami" "$(curl -s -m 5 -w '\n%{http_code}' -H "Authorization: Bearer $K" "$SC_URL/v1/whoami" | field 'd["id"], d["owner"], d["scopes"], d["expires_at"], d["rate_limit"], d["ratelimit"]["limit"], "hint" in d, "key" in d')" \
	"200 $KID alice ['docs:read', 'docs:write'] None 1000 1000 True False"
is "/v1/whoami without a key" "$(curl -s -m 5 -w '\n%{http_code}' "$SC_URL/v1/whoami" | field 'd["code"], d["status"]')" "401 MISSING_KEY 401"
is "/v1/whoami revoked key" "$(curl -s -m 5 -w '\n%{http_code}' -H "X-API-Key: $KREV" "$SC_URL/v1/whoami" | field 'd["code"]')" "401 REVOKED"
got=$(curl -s -m 5 -D "$T_TMP/h" -o /dev/null -w '%{http_code}' -X POST -H "X-API-Key: $K" "$SC_URL/v1/whoami")
is "POST /v1/whoami is 405 with Allow: GET, HEAD" "$got $(sc_header Allow "$T_TMP/h")" "405 GET, HEAD"

# the rest
is "/healthz" "$(curl -s -m 5 -w ' %{http_code}' "$SC_URL/healthz" | tr -d '\n')" "ok 200"
is "/readyz" "$(curl -s -m 5 -w ' %{http_code}' "$SC_URL/readyz" | tr -d '\n')" "ready 200"
is "unknown path → 404 JSON" "$(curl -s -m 5 -w '\n%{http_code}' "$SC_URL/nope" | field 'd["code"], d["status"]')" "404 NOT_FOUND 404"
is "/authx is not /auth" "$(sc_status /authx -H "X-API-Key: $K")" 404
is "DELETE /healthz is 405" "$(sc_status /healthz -X DELETE)" 405
m=$(curl -s -m 5 -D "$T_TMP/h" "$SC_URL/metrics")
like "/metrics is Prometheus text 0.0.4" "$(sc_header Content-Type "$T_TMP/h")" 'text/plain; version=0\.0\.4'
like "/metrics counts /auth VALID" "$m" 'apikeyd_requests_total\{endpoint="/auth",outcome="VALID"\} [1-9]'
for o in MISSING_KEY MALFORMED_KEY INVALID_KEY REVOKED EXPIRED ACCOUNT_INACTIVE PLAN_REQUIRED INSUFFICIENT_SCOPE RATE_LIMITED BAD_REQUEST; do
	like "/metrics counts /auth $o" "$m" "apikeyd_requests_total\\{endpoint=\"/auth\",outcome=\"$o\"\\} [1-9]"
done
like "/metrics counts /v1/verify" "$m" 'apikeyd_requests_total\{endpoint="/v1/verify",outcome="INVALID_KEY"\} 1'
like "/metrics has the latency histogram" "$m" 'apikeyd_request_duration_seconds_bucket\{le="\+Inf"\} [1-9]'
like "/metrics has cache hits" "$m" 'apikeyd_cache_hits_total [1-9]'
like "/metrics has cache misses, entries, clears" "$m" 'apikeyd_cache_misses_total [1-9].*apikeyd_cache_entries [0-9].*apikeyd_cache_clears_total [0-9]'
like "/metrics has store errors and usage dropped" "$m" 'apikeyd_store_errors_total 0.*apikeyd_usage_dropped_total 0'
check "no log line carries a key" bash -c "! grep -F -e '$K' -e '$KREV' -e '$KRATE' '$SC_LOG'"

# UNAVAILABLE: the store goes bad under a running daemon (db and wal-index
# overwritten, as a failing disk would).  A cached key must not keep passing.
auth VALID 200 "before the store breaks" -H "X-API-Key: $K" "$SC_URL/auth"
dd if=/dev/urandom of="$DB" bs=4096 count=4 conv=notrunc 2>/dev/null
dd if=/dev/urandom of="$DB-shm" bs=4096 count=8 conv=notrunc 2>/dev/null
auth UNAVAILABLE 503 "store corrupted: cached key" -H "X-API-Key: $K" "$SC_URL/auth"
auth UNAVAILABLE 503 "store corrupted: again (other thread)" -H "X-API-Key: $K" "$SC_URL/auth"
is "store corrupted: /readyz 503" "$(sc_status /readyz)$(sc_status /readyz)" "503503"
is "store corrupted: /v1/verify answers UNAVAILABLE" "$(verify "{\"key\":\"$K\"}" | field 'd["valid"], d["code"]')" "200 False UNAVAILABLE"
is "store corrupted: /healthz still 200 (alive)" "$(sc_status /healthz)" 200
like "store corrupted: /metrics counts store errors" "$(curl -s -m 5 "$SC_URL/metrics")" 'apikeyd_store_errors_total [1-9]'
sc_stop TERM
like "SIGTERM with a broken store still stops (exit $SC_RC: 1 if usage was left to flush)" "$SC_RC" '^[01]$'
check "the store error was logged" grep -q "key store unavailable" "$SC_LOG"
done_testing

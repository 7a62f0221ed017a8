#!/usr/bin/env bash
# t_nginx.sh — a private nginx (own prefix and config, 127.0.0.1 high ports,
# stopped by PID) running examples/nginx.conf with its addresses templated,
# auth_request → apikeyd → an echo upstream: allowed requests reach the
# upstream with X-ApiKey-Id; forged identity headers are replaced; 401/403
# pass through; 429 keeps Retry-After; apikeyd down → 5xx (fail closed).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../sidecar/lib_sidecar.sh"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then skip "nginx is not installed"; done_testing; exit 0; fi
if ! "$NGINX" -V 2>&1 | grep -q http_auth_request_module; then skip "nginx lacks auth_request"; done_testing; exit 0; fi

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
K=$(sc_key alice docs:read --rate-limit 100000); KID=$(sc_key_id alice)
KOTHER=$(sc_key bob other:read)
KRATE=$(sc_key erin docs:read --rate-limit 1)
KREV=$(sc_key frank docs:read); "$APIKEYCTL" --db "$DB" revoke "$(sc_key_id frank)" >/dev/null
printf 'db=%s\nauth_error_body=no\n' "$DB" >"$T_TMP/apikey.conf"
sc_start -f "$T_TMP/apikey.conf" --threads 2 || { nok "apikeyd starts"; done_testing; exit 1; }

ng="$T_TMP/nginx"; mkdir -p "$ng/logs" "$ng/tmp"
nport=$(free_port); aport=$(free_port)
# the example, templated: ports, pid and log paths; one worker; an echo
# upstream in the same nginx; temp paths in the prefix
{
	[ "$(id -u)" = 0 ] && echo "user root;"
	sed -e "s|127\.0\.0\.1:8790|127.0.0.1:$SC_PORT|" -e "s|127\.0\.0\.1:8000|127.0.0.1:$aport|" \
	    -e "s|127\.0\.0\.1:8080|127.0.0.1:$nport|" -e "s|^pid .*|pid $ng/nginx.pid;|" \
	    -e "s|^error_log .*|error_log $ng/logs/error.log;|" -e "s|^worker_processes .*|worker_processes 1;|" \
	    -e "s|access_log /var/log/nginx/access.log;|access_log $ng/logs/access.log;\n\tclient_body_temp_path $ng/tmp/body;\n\tproxy_temp_path $ng/tmp/proxy;\n\tfastcgi_temp_path $ng/tmp/fastcgi;\n\tuwsgi_temp_path $ng/tmp/uwsgi;\n\tscgi_temp_path $ng/tmp/scgi;\n\tserver { listen 127.0.0.1:$aport; location / { default_type text/plain; return 200 \"id=\$http_x_apikey_id owner=\$http_x_apikey_owner scopes=\$http_x_apikey_scopes\\\\n\"; } }|" \
	    "$TOP/examples/nginx.conf"
} >"$ng/nginx.conf"
if ! "$NGINX" -p "$ng/" -c "$ng/nginx.conf" -e "$ng/logs/error.log" -t >"$T_TMP/nginx-t.log" 2>&1; then
	nok "nginx accepts the templated examples/nginx.conf"; sed 's/^/# /' "$T_TMP/nginx-t.log"; done_testing; exit 1
fi
ok "nginx accepts the templated examples/nginx.conf"
"$NGINX" -p "$ng/" -c "$ng/nginx.conf" -e "$ng/logs/error.log" -g 'daemon off;' >"$T_TMP/nginx.out" 2>&1 &
npid=$!
at_exit "kill -TERM $npid; sleep 0.3; kill -9 $npid"
for i in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$nport/" && break; sleep 0.1; done
N="http://127.0.0.1:$nport"

body=$(curl -s -m 5 -H "Authorization: Bearer $K" "$N/docs")
is "allowed: the upstream sees X-ApiKey-Id/Owner/Scopes" "$body" "id=$KID owner=alice scopes=docs:read"
body=$(curl -s -m 5 -H "X-API-Key: $K" -H "X-ApiKey-Id: key_forged" -H "x-apikey-owner: root" -H "X-ApiKey-Scopes: *" "$N/docs")
is "client-forged X-ApiKey-* are replaced" "$body" "id=$KID owner=alice scopes=docs:read"
got=$(curl -s -m 5 -D "$T_TMP/h" -o "$T_TMP/b" -w '%{http_code}' -H "X-ApiKey-Id: $KID" -H "X-ApiKey-Owner: alice" "$N/docs")
is "forged identity without a key → 401" "$got" 401
is "401 carries WWW-Authenticate: Bearer" "$(sc_header WWW-Authenticate "$T_TMP/h")" Bearer
like "401 body names the code" "$(cat "$T_TMP/b")" '"code":"MISSING_KEY"'
got=$(curl -s -m 5 -o "$T_TMP/b" -w '%{http_code}' -H "X-API-Key: $KREV" "$N/docs")
is "revoked key → 401 REVOKED" "$got $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' "$T_TMP/b")" "401 REVOKED"
got=$(curl -s -m 5 -o "$T_TMP/b" -w '%{http_code}' -H "X-API-Key: $KOTHER" "$N/docs")
is "key without the service's scope → 403 INSUFFICIENT_SCOPE" "$got $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' "$T_TMP/b")" "403 INSUFFICIENT_SCOPE"
got=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "X-API-Key: $K" -H "X-Required-Scope: admin:all" "$N/docs")
is "a client's own X-Required-Scope is replaced by the proxy's" "$got" 200
is "rate limit 1/min: first → 200" "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "X-API-Key: $KRATE" "$N/docs")" 200
got=$(curl -s -m 5 -D "$T_TMP/h" -o "$T_TMP/b" -w '%{http_code}' -H "X-API-Key: $KRATE" "$N/docs")
is "rate limit 1/min: second → 429 (not nginx's 500)" "$got" 429
like "429 carries Retry-After" "$(sc_header Retry-After "$T_TMP/h")" '^[1-9][0-9]*$'
is "429 carries RateLimit-Remaining: 0" "$(sc_header RateLimit-Remaining "$T_TMP/h")" 0
like "429 body" "$(cat "$T_TMP/b")" '"code":"RATE_LIMITED"'
# keep-alive to apikeyd: many requests, few connections
for i in $(seq 30); do curl -s -m 5 -o /dev/null -H "X-API-Key: $K" "$N/docs"; done
like "apikeyd served them all" "$(curl -s "$SC_URL/metrics")" 'endpoint="/auth",outcome="VALID"\} 3[2-9]'
# established connections to apikeyd's port, from /proc/net/tcp (state 01)
conns=$(python3 -c 'import sys
p = "%04X" % int(sys.argv[1])
print(sum(1 for l in open("/proc/net/tcp").readlines()[1:] if l.split()[2].endswith(":" + p) and l.split()[3] == "01"))' "$SC_PORT")
like "nginx keeps its connections to apikeyd alive (open: $conns)" "$conns" '^[1-4]$'
check "apikeyd never logged a key" bash -c "! grep -F -e '$K' -e '$KRATE' '$SC_LOG'"

sc_stop TERM
is "apikeyd stops: exit 0" "$SC_RC" 0
got=$(curl -s -m 10 -o "$T_TMP/b" -w '%{http_code}' -H "X-API-Key: $K" "$N/docs")
is "apikeyd down → 503 (fail closed)" "$got" 503
check "apikeyd down: the upstream was not reached" bash -c "! grep -q 'id=' '$T_TMP/b'"
kill -TERM "$npid"; wait "$npid"; is "nginx stops on SIGTERM" "$?" 0
done_testing

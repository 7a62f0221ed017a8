#!/usr/bin/env bash
# t_badinput.sh — what a client may not do to apikeyd: crash it, make it allow,
# or hold a connection forever.  Oversized headers/bodies, a 10 kB key, NUL and
# non-ASCII bytes (raw sockets), bad JSON, wrong methods, a stalled request.
# After each, the daemon is still up and answers the next request.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
K=$(sc_key alice docs:read --rate-limit 100000)
sc_start --db "$DB" --threads 2 || { nok "apikeyd starts"; done_testing; exit 1; }

# raw BYTES-AS-PYTHON-LITERAL: send them on a fresh connection, print the
# status code of the answer ("closed" if the server closed without one).
raw() {
	python3 - "$SC_PORT" "$1" <<'PY'
import ast, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(ast.literal_eval(sys.argv[2]))
data = b""
try:
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    print("timeout"); sys.exit()
line = data.split(b"\r\n", 1)[0].split()
print(line[1].decode() if len(line) > 1 else "closed")
PY
}
# after DESC: the daemon still runs and a valid key still passes.
after() {
	if sc_alive && [ "$(sc_status /auth -H "X-API-Key: $K")" = 200 ]; then ok "still up after $1"; else nok "still up after $1"; fi
}

big=$(head -c 20000 /dev/zero | tr '\0' a)
code=$(sc_status /auth -H "X-API-Key: $K" -H "X-Junk: $big")
like "20 kB of headers → 4xx" "$code" '^4[0-9][0-9]$'
after "oversized headers"
code=$(sc_status "/auth?scope=$big" -H "X-API-Key: $K")
like "20 kB request line → 4xx" "$code" '^4[0-9][0-9]$'
after "an oversized request line"
hdrs=(); for i in $(seq 2000); do hdrs+=(-H "X-H$i: $i"); done
code=$(sc_status /auth -H "X-API-Key: $K" "${hdrs[@]}")
like "2000 small headers (over the size limit) → 4xx" "$code" '^4[0-9][0-9]$'
after "many headers"

key10k=ak_$(head -c 10240 /dev/zero | tr '\0' A)
is "a 10 kB key → 401" "$(sc_status /auth -H "Authorization: Bearer $key10k")" 401
is "a 10 kB key in X-API-Key → 401" "$(sc_status /auth -H "X-API-Key: $key10k")" 401
is "a 6 kB key in /v1/verify → MALFORMED_KEY" \
	"$(curl -s -m 5 -X POST --data-binary "{\"key\":\"${key10k:0:6000}\"}" "$SC_URL/v1/verify" | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')" MALFORMED_KEY
after "10 kB keys"
check "the 10 kB key is not in the log" bash -c "! grep -q AAAAAAAAAAAAAAAA '$SC_LOG'"

like "NUL inside X-API-Key → 4xx" "$(raw "b'GET /auth HTTP/1.1\\r\\nHost: x\\r\\nX-API-Key: ak_\\x00$K\\r\\n\\r\\n'")" '^4[0-9][0-9]$|^closed$'
after "a NUL in a header"
like "non-ASCII key → 401" "$(raw "b'GET /auth HTTP/1.1\\r\\nHost: x\\r\\nX-API-Key: ak_\\xff\\xfe\\xc3\\xa9\\x80\\r\\n\\r\\n'")" '^401$'
after "non-ASCII in a header"
like "non-ASCII and control bytes in the path → 4xx" "$(raw "b'GET /au\\xffth\\x01?scope=\\xfe HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'")" '^4[0-9][0-9]$|^closed$'
after "non-ASCII in the path"
is "%00 in the query → 400" "$(sc_status "/auth?scope=docs:read%00x" -H "X-API-Key: $K")" 400
is "%00 anywhere in the query → 400" "$(sc_status "/auth?x=%00" -H "X-API-Key: $K")" 400
like "NUL in a /v1/verify body → 400" "$(raw "b'POST /v1/verify HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 11\\r\\n\\r\\n{\"key\":\"\\x00\"}'")" '^400$'
is "\\u0000 in a JSON key → 400" "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST --data-binary '{"key":"ak_\u0000x"}' "$SC_URL/v1/verify")" 400
like "garbage request line → 4xx" "$(raw "b'\\x00\\x01\\x02 \\xff\\xfe HTTP/9.9\\r\\n\\r\\n'")" '^4[0-9][0-9]$|^closed$'
after "NUL and non-ASCII bytes"

for body in '{' '{"key":"a"' 'null' '"key"' '{"key":"a","scopes":[1]}' '{"key":"a","scopes":["Bad Scope"]}' "$(python3 -c 'print("["*3000 + "]"*3000)')" $'\xff\xfe'; do
	code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST --data-binary "$body" "$SC_URL/v1/verify")
	is "bad JSON ${body:0:20}… → 400" "$code" 400
done
after "bad JSON"

# owner and name are bytes in the store: JSON answers stay valid JSON
KL=$(sc_key "jos$(printf '\xe9')" docs:read --name "caf$(printf '\xe9')")
out=$(curl -s -m 5 -w '\n%{http_code}' -X POST --data-binary "{\"key\":\"$KL\"}" "$SC_URL/v1/verify")
is "non-UTF-8 owner: /v1/verify is 200 with valid JSON" "$(python3 -c 'import json,sys; b,c=sys.stdin.read().rstrip("\n").rsplit("\n",1); d=json.loads(b); print(c, d["code"], d["key"]["owner"])' <<<"$out")" "200 VALID jos?"
out=$(curl -s -m 5 -w '\n%{http_code}' -H "X-API-Key: $KL" "$SC_URL/v1/whoami")
is "non-UTF-8 owner: /v1/whoami is 200 with valid JSON" "$(python3 -c 'import json,sys; b,c=sys.stdin.read().rstrip("\n").rsplit("\n",1); d=json.loads(b); print(c, d["name"])' <<<"$out")" "200 caf?"

is "GET /v1/verify → 405" "$(sc_status /v1/verify)" 405
is "PUT /v1/verify → 405" "$(sc_status /v1/verify -X PUT -d x)" 405
like "TRACE /auth → refused" "$(sc_status /auth -X TRACE -H "X-API-Key: $K")" '^(405|501)$'
like "unknown method BREW → refused" "$(raw "b'BREW /auth HTTP/1.1\\r\\nHost: x\\r\\nX-API-Key: $K\\r\\n\\r\\n'")" '^(400|405|501)$'
after "wrong methods"

code=$(head -c 20000 /dev/zero | tr '\0' ' ' | curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST --data-binary @- "$SC_URL/v1/verify")
is "a 20 kB body → 413" "$code" 413
code=$(head -c 20000 /dev/zero | tr '\0' ' ' | curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -H "Transfer-Encoding: chunked" --data-binary @- "$SC_URL/v1/verify")
is "a 20 kB chunked body → 413" "$code" 413
after "oversized bodies"

# A client that sends half a request and stalls is cut off by the I/O timeout.
t=$(python3 - "$SC_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"GET /auth HTTP/1.1\r\nHost: x\r\nX-API-")
t0 = time.monotonic()
try:
    while s.recv(4096):
        pass
    print("%.1f" % (time.monotonic() - t0))
except socket.timeout:
    print("never")
PY
)
if [[ "$t" =~ ^[0-9.]+$ ]] && python3 -c "import sys; sys.exit(not (2.0 <= float('$t') <= 8.0))"; then
	ok "a stalled half request is closed after the timeout (${t}s)"
else
	nok "a stalled half request is closed after the timeout (got $t)"
fi
after "a stalled client"
# An idle keep-alive connection does not block others while it waits.
python3 - "$SC_PORT" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
time.sleep(3)
PY
idler=$!
is "other clients are served while one idles" "$(sc_status /healthz)" 200
wait "$idler"
check "no worker died (log has no error)" bash -c "! grep -E 'error|Assertion|Sanitizer' '$SC_LOG'"
sc_stop TERM
is "SIGTERM after all that: exit 0" "$SC_RC" 0
done_testing

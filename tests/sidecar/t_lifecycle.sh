#!/usr/bin/env bash
# t_lifecycle.sh — apikeyd as a process: options and exit codes, -n, usage
# flushed every second and at SIGTERM, SIGTERM drains an in-flight request,
# SIGHUP reloads apikey.conf and reopens the access log, unix socket, IPv6,
# several listen addresses, APIKEY_DB / APIKEY_CONF.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
K=$(sc_key alice docs:read --rate-limit 100000); KID=$(sc_key_id alice)
use_count() { "$APIKEYCTL" --db "$DB" list --json | python3 -c 'import json,sys; print([k["use_count"] for k in json.load(sys.stdin) if k["id"]==sys.argv[1]][0])' "$1"; }

# ---- options, -n --------------------------------------------------------------
"$APIKEYD" --threads 0 >/dev/null 2>&1; is "--threads 0 is a usage error" $? 2
"$APIKEYD" --bogus >/dev/null 2>&1; is "an unknown option is a usage error" $? 2
"$APIKEYD" --db "$DB" extra >/dev/null 2>&1; is "a stray argument is a usage error" $? 2
out=$("$APIKEYD" --db "$DB" -n 2>&1); is "-n with a good store: exit 0" "$?" 0
is "-n prints configuration OK" "$out" "configuration OK"
printf 'db=%s\nlisten=127.0.0.1:1\nauth_error_body=no\n' "$DB" >"$T_TMP/good.conf"
out=$("$APIKEYD" -f "$T_TMP/good.conf" -n 2>&1); is "-n -f good.conf" "$? $out" "0 configuration OK"
out=$("$APIKEYD" --conf "$T_TMP/good.conf" -n 2>&1); is "-n --conf good.conf" "$? $out" "0 configuration OK"
out=$(APIKEY_CONF="$T_TMP/good.conf" "$APIKEYD" -n 2>&1); is "-n with APIKEY_CONF" "$? $out" "0 configuration OK"
out=$(APIKEY_DB="$DB" "$APIKEYD" -f /dev/null -n 2>&1); is "-n with APIKEY_DB" "$? $out" "0 configuration OK"
printf 'db=%s\nauth_error_body=maybe\nfrobnicate=1\n' "$DB" >"$T_TMP/bad.conf"
out=$("$APIKEYD" -f "$T_TMP/bad.conf" -n 2>&1); rc=$?
is "-n with a bad config: exit 1" "$rc" 1
like "-n names the bad value" "$out" "auth_error_body: must be yes, no or header"
like "-n names the unknown option" "$out" "unknown option 'frobnicate=1'"
out=$("$APIKEYD" --db "$T_TMP/none.db" -n 2>&1); is "-n with a missing store: exit 1" "$?" 1
like "-n says what is missing" "$out" "none.db"
out=$("$APIKEYD" --db "$DB" --listen 'localhost:http' -n 2>&1); is "-n with a bad listen address: exit 1" "$?" 1
out=$("$APIKEYD" -f "$T_TMP/missing.conf" -n 2>&1); is "-n with a missing explicit config: exit 1" "$?" 1
like "--routes lists /auth" "$("$APIKEYD" --routes)" 'GET,HEAD,POST,PUT,DELETE,OPTIONS,PATCH /auth'

# ---- usage flush: every second, and the rest at SIGTERM --------------------------
conf="$T_TMP/apikey.conf"
printf 'db=%s\naccess_log=%s\n' "$DB" "$T_TMP/access.log" >"$conf"
sc_start -f "$conf" --threads 2 -d || { nok "apikeyd starts"; done_testing; exit 1; }
for i in $(seq 25); do curl -s -m 5 -o /dev/null -H "X-API-Key: $K" "$SC_URL/auth"; done
t0=$(date +%s%N)
for i in $(seq 30); do n=$(use_count "$KID"); [ "$n" = 25 ] && break; sleep 0.1; done
ms=$((($(date +%s%N) - t0) / 1000000))
is "25 requests: use_count 25 in the store without SIGTERM (after ${ms} ms; flush every 1 s)" "$n" 25
like "-d logs debug lines" "$(cat "$SC_LOG")" 'debug: worker 1: serving'

# ---- access log and SIGHUP -------------------------------------------------------
like "access log: one line with method, path, status, outcome, key id" "$(tail -1 "$T_TMP/access.log")" \
	"^20[0-9-]+T[0-9:]+Z 127\.0\.0\.1:[0-9]+ GET \"/auth\" 200 VALID $KID [0-9.]+ms$"
curl -s -m 5 -o /dev/null "$SC_URL/auth?api_key=$K&scope=docs:read"
check "access log never has a key or a query" bash -c "! grep -e '$K' -e 'scope=' '$T_TMP/access.log'"
body=$(curl -s -m 5 "$SC_URL/auth")
like "auth_error_body=yes (default): 401 has a JSON body" "$body" '"code":"MISSING_KEY"'
mv "$T_TMP/access.log" "$T_TMP/access.log.1"
printf 'db=%s\naccess_log=%s\nauth_error_body=no\nkey_header=X-Token\npepper=%s\n' "$DB" "$T_TMP/access.log" "$DB.pepper" >"$conf"
kill -HUP "$SC_PID"
for i in $(seq 50); do grep -q "configuration reloaded" "$SC_LOG" && break; sleep 0.1; done
got=$(curl -s -m 5 -D "$T_TMP/h" -o "$T_TMP/b" -w '%{http_code}' "$SC_URL/auth")
is "after SIGHUP: auth_error_body=no → 401 with an empty body" "$got $(stat -c %s "$T_TMP/b") $(sc_header Content-Length "$T_TMP/h")" "401 0 0"
is "after SIGHUP: key_header=X-Token is read" "$(sc_status /auth -H "X-Token: $K")" 200
is "after SIGHUP: /v1/whoami still has its JSON body" "$(curl -s -m 5 "$SC_URL/v1/whoami" | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')" MISSING_KEY
check "after SIGHUP: the access log was reopened (new file)" test -s "$T_TMP/access.log"
like "SIGHUP: a pepper change is logged as needing a restart" "$(cat "$SC_LOG")" 'db/pepper/key format/busy timeout changed: that needs a restart'
printf 'db=%s\nauth_error_body=perhaps\n' "$DB" >"$conf"
kill -HUP "$SC_PID"
for i in $(seq 50); do grep -q "configuration not reloaded" "$SC_LOG" && break; sleep 0.1; done
like "SIGHUP with a bad config: logged, old settings kept" "$(cat "$SC_LOG")" 'configuration not reloaded'
is "SIGHUP with a bad config: still serving with the old settings" "$(sc_status /auth -H "X-Token: $K")" 200

# ---- SIGTERM drains an in-flight request, refuses new ones, flushes -------------
for i in $(seq 7); do curl -s -m 5 -o /dev/null -H "X-API-Key: $K" "$SC_URL/auth"; done
python3 - "$SC_PORT" "$K" "$SC_PID" >"$T_TMP/drain" <<'PY'
import os, signal, socket, sys, time
port, key, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET /auth HTTP/1.1\r\nHost: x\r\n")
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
time.sleep(0.5)
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    print("new connection: accepted")
except OSError:
    print("new connection: refused")
s.sendall(b"X-API-Key: " + key.encode() + b"\r\n\r\n")
data = b""
while True:
    c = s.recv(4096)
    if not c:
        break
    data += c
head = data.split(b"\r\n\r\n")[0].decode().lower()
print("in-flight: " + head.split()[1] + (" close" if "connection: close" in head else ""))
PY
is "SIGTERM: a new connection is refused while draining" "$(sed -n 1p "$T_TMP/drain")" "new connection: refused"
is "SIGTERM: the in-flight request is answered, with Connection: close" "$(sed -n 2p "$T_TMP/drain")" "in-flight: 200 close"
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0
is "SIGTERM: the last usage was flushed (25 + 2 after HUP + 7 + 1 in flight = 35)" "$(use_count "$KID")" 35

# ---- unix socket, IPv6, several addresses ---------------------------------------
sock="$T_TMP/apikeyd.sock"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$sock"
port2=$(free_port)
sc_start --db "$DB" --threads 2 --listen "unix:$sock" --listen "127.0.0.1:$port2" || nok "apikeyd starts with unix socket"
like "a stale unix socket is removed at start" "$(cat "$SC_LOG")" 'removed stale socket'
is "unix socket answers /auth" "$(curl -s -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$sock" -H "X-API-Key: $K" http://x/auth)" 200
is "unix socket mode 0660" "$(stat -c %a "$sock")" 660
is "first TCP address answers" "$(sc_status /auth -H "X-API-Key: $K")" 200
is "second TCP address answers" "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "X-API-Key: $K" "http://127.0.0.1:$port2/auth")" 200
sc_stop TERM
is "SIGTERM with a unix socket: exit 0" "$SC_RC" 0
check "the socket file is removed at exit" test ! -e "$sock"
: >"$sock"
"$APIKEYD" --db "$DB" --listen "unix:$sock" >"$T_TMP/notsock.log" 2>&1; rc=$?
is "a regular file where the socket goes: refuse to start (exit 1)" "$rc" 1
check "... and the file is left alone" test -f "$sock"
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
	p6=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); print(s.getsockname()[1])')
	"$APIKEYD" --db "$DB" --threads 1 --listen "[::1]:$p6" >"$T_TMP/v6.log" 2>&1 & v6=$!
	at_exit "kill -9 $v6"
	for i in $(seq 50); do curl -s -o /dev/null "http://[::1]:$p6/healthz" && break; sleep 0.1; done
	is "IPv6 [::1]:port answers" "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "X-API-Key: $K" "http://[::1]:$p6/auth")" 200
	kill -TERM "$v6"; wait "$v6"; is "IPv6 daemon: SIGTERM exit 0" "$?" 0
else
	skip "no IPv6 loopback here"
	skip "no IPv6 loopback here"
fi
port3=$(free_port)
# the holder says "ready" once it listens: no race with a loaded machine, and
# apikeyd is bounded in time should it ever bind anyway
mkfifo "$T_TMP/held"
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); open(sys.argv[2],"w").write("ready\n"); time.sleep(30)' "$port3" "$T_TMP/held" & holder=$!
read -r -t 20 _ <"$T_TMP/held"
timeout 20 "$APIKEYD" --db "$DB" --listen "127.0.0.1:$port3" >"$T_TMP/busy.log" 2>&1; rc=$?
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
is "a port already in use: exit 1" "$rc" 1
like "... with the reason" "$(cat "$T_TMP/busy.log")" "listen 127.0.0.1:$port3: Address already in use"
done_testing

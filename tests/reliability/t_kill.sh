#!/usr/bin/env bash
# t_kill.sh — kill -9 under load, KILL_ROUNDS times (default 50): in each
# round apikeyd serves wrk, apikeyctl writers run beside it, one writer (a
# 200,000-line import) is killed mid-write, one key is revoked (and the revoke completes), and then
# apikeyd itself is killed.  After every round: PRAGMA integrity_check says
# ok, and every revocation that apikeyctl reported done still holds — for
# apikeyctl and for the next apikeyd, from its first request.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../sidecar/lib_sidecar.sh"
for t in wrk python3; do command -v $t >/dev/null || { skip "$t missing"; done_testing; exit 0; }; done
ROUNDS=${KILL_ROUNDS:-50}

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
KLOAD=$(sc_key loader docs:read --rate-limit 1000000)
: >"$T_TMP/victims"         # "KEY ID" of every key to revoke, one a round
for i in $(seq "$ROUNDS"); do
	"$APIKEYCTL" --db "$DB" create --owner victim --scopes docs:read --rate-limit 1000000 --json |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["key"], d["id"])' >>"$T_TMP/victims"
done
: >"$T_TMP/revoked"         # keys whose revoke returned 0
# a big import: a writer that is surely in the middle of its work when killed
# (0.1-0.3 s after it starts; imports run at ~5 s a million lines, so 20,000
# lines sometimes finished first)
python3 - "$T_TMP/import.jsonl" <<'PY'
import hashlib, random, string, sys
alpha = string.ascii_letters + string.digits
with open(sys.argv[1], "w") as f:
    for i in range(200000):
        k = "ak_" + "".join(random.choice(alpha) for _ in range(36))
        f.write('{"hash":"sha256:%s","hint":"%s","owner":"imp","scopes":"docs:read"}\n'
                % (hashlib.sha256(k.encode()).hexdigest(), k[:10]))
PY

# still_refused PORT: every key in revoked is 401 REVOKED at apikeyd; prints the bad ones
still_refused() {
	python3 - "$1" "$T_TMP/revoked" <<'PY'
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
bad = []
for key in open(path).read().split():
    s.sendall(b"GET /auth HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key.encode() + b"\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(rest) < n:
        rest += s.recv(4096)
    if b" 401 " not in head.split(b"\r\n")[0] or b"X-ApiKey-Code: REVOKED" not in head:
        bad.append(key[:8])
print(" ".join(bad) or "none")
PY
}

integrity_bad=0 lost=0 daemon_bad=0 writer_kills=0 daemon_kills=0 started=0
for round in $(seq "$ROUNDS"); do
	read -r vkey vid <<<"$(sed -n "${round}p" "$T_TMP/victims")"
	port=$(free_port)
	"$APIKEYD" --db "$DB" --threads 2 --listen "127.0.0.1:$port" >>"$T_TMP/d.log" 2>&1 &
	dpid=$!
	up=no
	for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && { up=yes; break; }; sleep 0.05; done
	[ "$up" = yes ] && started=$((started + 1))
	# the revocations of earlier rounds hold from the first request on
	if [ -s "$T_TMP/revoked" ]; then
		bad=$(still_refused "$port")
		[ "$bad" = none ] || { daemon_bad=$((daemon_bad + 1)); echo "# round $round: apikeyd accepts revoked keys: $bad" >&2; }
	fi
	KEY=$KLOAD timeout 5 wrk -t1 -c8 -d3s -s "$TOP/tests/reliability/phases.lua" "http://127.0.0.1:$port/auth" >/dev/null 2>&1 &
	wpid=$!
	# writers beside the load: creates and account changes, one killed mid-write
	( for _ in 1 2 3 4 5; do "$APIKEYCTL" --db "$DB" create --owner churn --scopes docs:read >/dev/null 2>&1
	      "$APIKEYCTL" --db "$DB" account set churn --plan "p$RANDOM" >/dev/null 2>&1; done ) &
	cpid=$!
	sleep "0.$((RANDOM % 4 + 1))"
	"$APIKEYCTL" --db "$DB" import "$T_TMP/import.jsonl" >/dev/null 2>&1 &
	kpid=$!
	sleep "0.$((RANDOM % 3 + 1))"
	kill -9 "$kpid" 2>/dev/null && writer_kills=$((writer_kills + 1))
	wait "$kpid" 2>/dev/null
	# the revocation of this round: done when apikeyctl says so
	if "$APIKEYCTL" --db "$DB" revoke "$vid" >/dev/null 2>&1; then echo "$vkey" >>"$T_TMP/revoked"; fi
	sleep "0.$((RANDOM % 5))"
	kill -9 "$dpid" 2>/dev/null && daemon_kills=$((daemon_kills + 1))
	wait "$dpid" 2>/dev/null
	wait "$cpid" 2>/dev/null
	kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
	ic=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$DB" 2>&1)
	[ "$ic" = ok ] || { integrity_bad=$((integrity_bad + 1)); echo "# round $round: integrity_check: $ic" >&2; }
	# apikeyctl's view of every revocation reported done
	while read -r k; do
		out=$(printf '%s' "$k" | "$APIKEYCTL" --db "$DB" verify 2>/dev/null)
		[ "$out" = REVOKED ] || { lost=$((lost + 1)); echo "# round $round: a revoked key verifies as $out" >&2; }
	done <"$T_TMP/revoked"
done

is "apikeyd started in every round" "$started" "$ROUNDS"
is "apikeyd was killed -9 under load $ROUNDS times" "$daemon_kills" "$ROUNDS"
is "an apikeyctl writer (an import) was killed -9 mid-write in every round" "$writer_kills" "$ROUNDS"
# a batch is one transaction with its audit event: whatever the kills
# stopped, the keys imported are exactly those the "imported" events count
is "…an import killed at any point leaves whole batches only (keys = what the events count)" \
	"$(python3 - "$DB" <<'PY'
import re, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
keys = db.execute("SELECT count(*) FROM keys WHERE owner = 'imp'").fetchone()[0]
told = sum(int(re.match(r"(\d+) keys", r).group(1))
           for (r,) in db.execute("SELECT reason FROM events WHERE event = 'imported' AND reason LIKE '% keys'"))
print("same" if keys == told else "%d keys, events count %d" % (keys, told))
PY
)" same
is "PRAGMA integrity_check after every round" "$integrity_bad" 0
is "revocations reported done: $(wc -l <"$T_TMP/revoked") of $ROUNDS" "$(wc -l <"$T_TMP/revoked")" "$ROUNDS"
is "no revocation lost (apikeyctl verify, after every round)" "$lost" 0
is "no revocation lost (each new apikeyd, from its first request)" "$daemon_bad" 0
# a last daemon: everything still served and refused as it should be
sc_start --db "$DB" --threads 2 || { nok "apikeyd starts after all that"; done_testing; exit 1; }
is "a last apikeyd: the load key still passes" "$(sc_status /auth -H "X-API-Key: $KLOAD")" 200
is "…and every revoked key is refused" "$(still_refused "$SC_PORT")" none
check "no sanitizer report or crash of apikeyd" bash -c "! grep -E 'Sanitizer|Assertion' '$T_TMP/d.log'"
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0
done_testing

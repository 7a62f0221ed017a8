#!/usr/bin/env bash
# ft_crash.sh — a follower killed with SIGKILL in the middle of applying one
# big upstream transaction (100,000 keys): its replica passes SQLite's
# integrity check and holds either none or all of that transaction (never a
# half-applied state), its position matches its rows, and when it starts
# again it resumes from there and catches up.  A second follower on the same
# replica refuses to start, naming the first.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"
N=${CRASH_KEYS:-100000}

check "fleet initialised" fleet_init
fleet_host c
check "host C follows" fleet_start c
key=$(ctl a create --owner alice --scopes api:read)
for _ in $(seq 100); do [ "$(replica_seq c)" = 1 ] && break; sleep 0.05; done
before=$(sqlite3 "$FLEET_DIR/c/keys.db" "SELECT count(*) FROM keys")
seq0=$(replica_seq c)
is "C has the first key" "$before" 1

# one upstream transaction of N keys (a DBA's bulk insert: logged like any write)
pg_psql -c "INSERT INTO apikey.keys(id, hash, hash_alg, hint, owner, scopes, rate_limit, created_at)
	SELECT 'key_' || lpad(i::text, 16, '0'), sha256(convert_to(i::text, 'UTF8')), 'hmac-sha256',
	       'ak_bulk', 'bulk', 'api:read', 60, 1764000000 FROM generate_series(1, $N) i" >/dev/null
# kill -9 once the follower's transaction is under way: its WAL grows
wal=$FLEET_DIR/c/keys.db-wal
for _ in $(seq 400); do
	[ "$(stat -c %s "$wal" 2>/dev/null || echo 0)" -gt 2000000 ] && break
	sleep 0.01
done
fleet_kill c
mid=$(stat -c %s "$wal" 2>/dev/null || echo 0)
check "the follower was killed with its transaction under way (WAL ${mid} bytes)" test "$mid" -gt 2000000
is "the replica passes SQLite's integrity check" "$(sqlite3 "$FLEET_DIR/c/keys.db" "PRAGMA integrity_check")" ok
is "apikeyctl db check agrees" "$(ctl c db check >/dev/null 2>&1; echo $?)" 0
n=$(sqlite3 "$FLEET_DIR/c/keys.db" "SELECT count(*) FROM keys")
seq=$(replica_seq c)
if [ "$n" = "$before" ] && [ "$seq" = "$seq0" ]; then
	ok "none of the transaction was applied, and the position says so ($n keys, seq $seq)"
elif [ "$n" = $((before + N)) ] && [ "$seq" -gt "$seq0" ]; then
	ok "all of the transaction was applied, and the position says so ($n keys, seq $seq)"
else
	nok "never half-applied: $n keys at seq $seq (before: $before at $seq0, +$N)"
fi
is "a verification on C (a fresh process) still works from the replica" \
	"$(printf '%s' "$key" | ctl c verify --scope api:read 2>/dev/null | head -n 1)" VALID

check "host C starts again" fleet_start c
head=$(pg_psql -c "SELECT seq FROM apikey.log_head")
for _ in $(seq 600); do [ "$(replica_seq c)" = "$head" ] && break; sleep 0.05; done
is "…resumes from its position and applies the rest" "$(replica_seq c)" "$head"
is "…all $((N + 1)) keys are there" "$(sqlite3 "$FLEET_DIR/c/keys.db" "SELECT count(*) FROM keys")" $((N + 1))
like "…without a rebuild or a resync" "$(ctl c status)" "resyncs: +0, rebuilds 0"
is "a bulk key verifies on C (hash from the upstream, HMAC of the fleet)" \
	"$(sqlite3 "$FLEET_DIR/c/keys.db" "SELECT hex(hash) FROM keys WHERE id = 'key_0000000000000042'")" \
	"$(pg_psql -c "SELECT upper(encode(hash, 'hex')) FROM apikey.keys WHERE id = 'key_0000000000000042'")"

# one follower per replica
err=$(APIKEY_CONF=$FLEET_DIR/c/apikey.conf timeout 10 "$APIKEYD" --no-http 2>&1); rc=$?
is "a second follower on the same replica refuses to start" "$rc" 1
like "…naming the first one's pid" "$err" "another follower \(pid $PID_c\) already follows"
# a second apikeyd serving HTTP on the same host: it serves the replica, C's follower keeps it
p2=$(free_port)
APIKEY_CONF=$FLEET_DIR/c/apikey.conf "$APIKEYD" --listen "127.0.0.1:$p2" --threads 1 >"$T_TMP/c2.log" 2>&1 &
c2=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p2/healthz" && break; sleep 0.05; done
is "a second apikeyd on C's replica serves it (without following)" \
	"$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "http://127.0.0.1:$p2/auth")" 200
like "…and says so" "$(cat "$T_TMP/c2.log")" "another process follows .*serving it without following"
kill "$c2"; wait "$c2" 2>/dev/null
done_testing

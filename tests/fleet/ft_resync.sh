#!/usr/bin/env bash
# ft_resync.sh — replicas that cannot simply go on from where they were:
#  - the change log was pruned past a stopped host's position: it resyncs in
#    place (one local transaction) and ends with exactly the upstream's keys,
#    deletions included;
#  - the upstream was restored from an older backup (its history is not the
#    one the replica followed): resync, the keys of the lost history gone;
#  - the replica file is deleted under a running apikeyd: the follower
#    notices, builds a new one from a snapshot and renames it into place;
#  - a corrupt replica: kept aside as <db>.corrupt-<time>, rebuilt.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

same_keys() {   # host: the replica's keys equal the upstream's (ids and revocations)
	local l u
	l=$(sqlite3 "$FLEET_DIR/$1/keys.db" "SELECT id || ':' || coalesce(revoked_at, '-') FROM keys ORDER BY id")
	u=$(pg_psql -c "SELECT id || ':' || coalesce(revoked_at::text, '-') FROM apikey.keys ORDER BY id COLLATE \"C\"")
	[ "$l" = "$u" ]
}
wait_head() {   # host: applied the upstream's head (<= 10 s)
	local head
	head=$(pg_psql -c "SELECT seq FROM apikey.log_head")
	for _ in $(seq 200); do [ "$(replica_seq "$1")" = "$head" ] && return 0; sleep 0.05; done
	return 1
}

check "fleet initialised" fleet_init
fleet_host c
check "host C follows" fleet_start c
out=$(ctl a create --owner alice --scopes api:read --json); k0=$(key_of <<<"$out") id0=$(key_id_of <<<"$out")
out=$(ctl a create --owner alice --scopes api:read --json); k1=$(key_of <<<"$out") id1=$(key_id_of <<<"$out")
check "C has both keys" wait_head c

# ---- the log pruned past a stopped replica ----------------------------------------
fleet_stop c
ctl a revoke "$id0" >/dev/null
ctl a prune --before "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null   # deletes the revoked key (a logged delete)
out=$(ctl a create --owner bob --scopes api:read --json); k2=$(key_of <<<"$out")
ctl a account set bob --plan pro >/dev/null
pruned=$(ctl a upstream prune-log --keep 0)
like "the change log pruned as the writer role" "$pruned" "^pruned [1-9][0-9]* change-log rows"
low=$(pg_psql -c "SELECT low_seq FROM apikey.log_head")
check "…past C's position ($(replica_seq c) + 1 < $low)" test $(( $(replica_seq c) + 1 )) -lt "$low"
check "host C starts again" fleet_start c
check "…and reaches the head" wait_head c
like "…by a resync, not a rebuild" "$(ctl c status)" "resyncs: +1, rebuilds 0"
check "…its keys are exactly the upstream's (the deleted one gone)" same_keys c
is "…the pruned key is unknown on C" "$(auth c "$k0")" 401
is "…the key made while it was away works" "$(auth c "$k2")" 200
is "…the account made while it was away is there" \
	"$(sqlite3 "$FLEET_DIR/c/keys.db" "SELECT plan FROM accounts WHERE owner = 'bob'")" pro
grep -q "resync of .*change log no longer reaches back" "$FLEET_DIR/c/apikeyd.log" &&
	ok "…and its log says why" || nok "…and its log says why"

# ---- the upstream restored from an older backup ------------------------------------------
"$PG_BIN/pg_dump" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -Fc -f "$T_TMP/backup.dump" "$PG_DB"
out=$(ctl a create --owner carol --scopes api:read --json); klost=$(key_of <<<"$out")
check "a key made after the backup reaches C" wait_auth c "$klost" 200
fleet_stop c
pg_psql -d postgres -c "DROP DATABASE $PG_DB WITH (FORCE)" >/dev/null
pg_psql -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null
"$PG_BIN/pg_restore" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d "$PG_DB" "$T_TMP/backup.dump"
check "the upstream restored from the backup" test "$(pg_psql -c "SELECT count(*) FROM apikey.keys WHERE owner = 'carol'")" = 0
# the same seqs again, with another history
out=$(ctl a create --owner dave --scopes api:read --json); kdave=$(key_of <<<"$out") iddave=$(key_id_of <<<"$out")
ctl a create --owner dave --scopes api:write >/dev/null
check "host C starts again" fleet_start c
check "…and reaches the restored upstream's head" wait_head c
like "…by a second resync" "$(ctl c status)" "resyncs: +1, rebuilds 0"
grep -q "history changed" "$FLEET_DIR/c/apikeyd.log" && ok "…because the history changed" ||
	nok "…because the history changed"
check "…its keys are exactly the restored upstream's" same_keys c
is "…the key of the lost history is refused" "$(auth c "$klost")" 401
is "…the new one works" "$(auth c "$kdave")" 200

# ---- the replica file deleted under a running apikeyd ------------------------------------
rm -f "$FLEET_DIR/c/keys.db" "$FLEET_DIR/c/keys.db-wal" "$FLEET_DIR/c/keys.db-shm"
for _ in $(seq 200); do
	[ -f "$FLEET_DIR/c/keys.db" ] && [ "$(status_field c rebuilds)" = 1 ] && break
	sleep 0.05
done
check "the deleted replica is rebuilt by the follower" test -f "$FLEET_DIR/c/keys.db"
check "…from a snapshot: the upstream's keys" same_keys c
is "…with the mode it had" "$(stat -c %a "$FLEET_DIR/c/keys.db")" 640
is "…a key verifies from it (a fresh process)" "$(printf '%s' "$kdave" | ctl c verify 2>/dev/null | head -n 1)" VALID
code=$(auth c "$kdave")
is "…apikeyd answers from it" "$code" 200
[ "$code" = 200 ] || tail -n 8 "$FLEET_DIR/c/apikeyd.log" | sed 's/^/# /'
ctl a revoke "$iddave" >/dev/null
check "…a revoke after the rebuild is refused by apikeyd" wait_auth c "$kdave" 401

# ---- a corrupt replica --------------------------------------------------------------------
fleet_stop c
printf 'this is not a database at all, not even close........................................................' |
	dd of="$FLEET_DIR/c/keys.db" bs=1 seek=0 conv=notrunc 2>/dev/null
rm -f "$FLEET_DIR/c/keys.db-wal" "$FLEET_DIR/c/keys.db-shm"
check "host C starts on a corrupt replica" fleet_start c
check "…the corrupt file is kept aside" compgen -G "$FLEET_DIR/c/keys.db.corrupt-*"
check "…and a new replica built" same_keys c

# ---- a steady stream of changes -------------------------------------------------------------
# 300 upstream transactions a second for 3 s (never 50 ms of quiet): the
# follower applies them in batches and still syncs the replica while the
# stream lasts (a checkpoint writes keys.db within about a second; before,
# only after the stream, and its WAL grew the whole time); at the end the
# replica is the upstream.
sid=$(ctl a create --owner erin --scopes api:read --json | key_id_of)
wait_head c
echo "UPDATE apikey.keys SET name = 'n' || extract(epoch FROM clock_timestamp())::text WHERE id = '$sid';" \
	>"$T_TMP/stream.sql"
db_written() { stat -c %.9Y "$FLEET_DIR/c/keys.db"; }
w0=$(db_written)
t0=$(date +%s.%N)
"$PG_BIN/pgbench" -n -h "$PG_SOCK" -p "$PG_PORT" -U "$PG_SUPERUSER" -R 300 -T 3 -c 1 -f "$T_TMP/stream.sql" "$PG_DB" \
	>"$T_TMP/stream.out" 2>&1 &
pb=$!
sleep 2.2
w1=$(db_written)
check "a stream of 300 changes a second: keys.db is written (checkpointed) while it lasts ($w0 -> $w1, stream from $t0)" \
	python3 -c "import sys; sys.exit(not float('$w1') > float('$t0') + 0.5)"
wait "$pb"
like "…the stream ran" "$(cat "$T_TMP/stream.out")" "number of transactions actually processed: [1-9]"
check "…and the replica reaches the upstream's head" wait_head c
is "…with the stream's last name" "$(sqlite3 "$FLEET_DIR/c/keys.db" "SELECT name FROM keys WHERE id = '$sid'")" \
	"$(pg_psql -c "SELECT name FROM apikey.keys WHERE id = '$sid'")"
like "…followed by fetching, not listening, while it lasted" "$(curl -s "http://127.0.0.1:$PORT_c/metrics")" \
	'apikeyd_fleet_streams_total [1-9]'
# after it C listens again: one revocation alone reaches it at once
out=$(ctl a create --owner erin --scopes api:read --json); kr=$(key_of <<<"$out") ir=$(key_id_of <<<"$out")
wait_auth c "$kr" 200 >/dev/null
sleep 0.5
ctl a revoke "$ir" >/dev/null
ms=$(wait_auth c "$kr" 401)
check "…after the stream a single revocation reaches C within a second (${ms} ms)" \
	python3 -c "import sys; sys.exit(not float('$ms') < 1000)"
done_testing

#!/usr/bin/env bash
# t_store.sh — the key store broken or swapped under a running apikeyd
# (issue 9 item 1, SPEC §6): replaced, restored (.restore and cp), re-made,
# deleted, corrupted, read-only, full disk, a long writer, a wrong pepper.
# Each case checks that nothing is answered from the old file or allowed by
# a broken one once the change is done (a client hammers /auth over
# keep-alive connections: zero 200 for a key the new state refuses), that
# apikeyd recovers without a restart (same process, a key of the new state
# answers 200 within a bounded wait), and that a revoke made on the new file
# is refused from the next request on.
#
# STORE_SHORT=1 runs the cases that need no mount namespace (make check runs
# it so, through tests/sidecar/t_store.sh); the whole file is part of make
# check-reliability.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../sidecar/lib_sidecar.sh"

SHORT=${STORE_SHORT:-0}
CTL() { "$APIKEYCTL" --db "$DB" "$@"; }
auth() { curl -s -m 10 -o /dev/null -w '%{http_code}' -H "X-API-Key: $1" "$SC_URL/auth"; }
key_id() { CTL list --json | python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["name"] == sys.argv[1]][0])' "$1"; }

# setup: a fresh store with keys V (the victim: the new state refuses it) and
# S (in every state), and apikeyd on it with 2 workers.  Extra args: a
# command prefix to run apikeyd with (a mount namespace).
setup() {
	DIR="$T_TMP/case.$RANDOM"; mkdir -p "$DIR"; DB="$DIR/keys.db"
	CTL init >/dev/null || return 1
	S=$(CTL create --owner sam --scopes a:b --name s) || return 1
	V=$(CTL create --owner vic --scopes a:b --name v) || return 1
	sc_start --db "$DB" --threads 2 || return 1
	[ "$(auth "$V")" = 200 ] && [ "$(auth "$S")" = 200 ]
}

# wait_for KEY WANT [SECONDS]: poll /auth until KEY answers WANT.
wait_for() {
	local i
	for i in $(seq $((${3:-5} * 20))); do
		[ "$(auth "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# hammer KEY OUT STOP: keep-alive clients on /auth; "<start time> <status>" lines.
hammer() {
	python3 - "$SC_PORT" "$1" "$2" "$3" <<'PY'
import http.client, os, sys, time
port, key, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(4)]
deadline = time.time() + 30
with open(out, "w") as f:
    i = 0
    while not os.path.exists(stop) and time.time() < deadline:
        c = conns[i % 4]; i += 1
        t = time.time()
        try:
            c.request("GET", "/auth", headers={"X-API-Key": key})
            r = c.getresponse(); r.read(); st = r.status
        except Exception:
            st = "err"; c.close()
        f.write("%.6f %s\n" % (t, st))
PY
}

# during DESC COMMAND...: run COMMAND while V is hammered; after it returns
# no request may be allowed (200), and some must have been answered.
during() {
	local desc=$1; shift
	local out="$T_TMP/h.$RANDOM" stop="$T_TMP/s.$RANDOM" pid t_done rc
	hammer "$V" "$out" "$stop" &
	pid=$!
	for i in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
	sleep 0.2
	"$@" >/dev/null 2>&1; rc=$?
	t_done=$(date +%s.%N)
	sleep 0.6
	touch "$stop"; wait "$pid"
	if [ "$rc" -ne 0 ]; then nok "$desc: the change itself failed (exit $rc)"; return; fi
	python3 - "$out" "$t_done" >"$T_TMP/during.out" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
t = float(sys.argv[2])
before = [s for ts, s in rows if float(ts) < t]
after = [s for ts, s in rows if float(ts) > t]
print("%d %d %d %s" % (before.count("200"), len(after), after.count("200"), ",".join(sorted(set(after)))))
PY
	read -r ok_before n_after allowed_after codes <"$T_TMP/during.out"
	if [ "$ok_before" -gt 0 ] && [ "$n_after" -gt 5 ] && [ "$allowed_after" -eq 0 ]; then
		ok "$desc: no request allowed after it ($n_after answered: $codes)"
	else
		nok "$desc: $ok_before allowed before, $n_after after of which $allowed_after allowed ($codes)"
	fi
}

# recovered DESC KEY: KEY of the new state answers 200 again, same process.
recovered() {
	local t0=$SECONDS
	if wait_for "$2" 200 5 && kill -0 "$SC_PID"; then
		ok "$1: recovered without a restart ($((SECONDS - t0)) s)"
	else
		nok "$1: no 200 within 5 s for a key of the new state"
		sed 's/^/#   /' "$SC_LOG" | tail -5
	fi
}

# revoke_next DESC KEY NAME: revoke KEY (named NAME) on the store as it is now; the very next
# request is refused.
revoke_next() {
	local id
	id=$(key_id "$3") && CTL revoke "$id" >/dev/null || { nok "$1: revoke on the new file failed"; return; }
	is "$1: a revoke on the new file is refused from the next request on" "$(auth "$2")" 401
}

backup() { sqlite3 "$DB" ".backup '$1'"; }

# ---- replaced: a consistent copy (V revoked in it) renamed over the path -----
setup || { nok "setup"; done_testing; exit 1; }
backup "$DIR/new.db"
cp "$DB.pepper" "$DIR/new.db.pepper"
"$APIKEYCTL" --db "$DIR/new.db" revoke "$(key_id v)" >/dev/null
during "replaced (mv over, -wal/-shm removed)" sh -c "mv '$DIR/new.db' '$DB' && rm -f '$DB-wal' '$DB-shm'"
recovered "replaced" "$S"
is "replaced: V answers as the new file says" "$(auth "$V")" 401
revoke_next "replaced" "$S" s
lines=$(grep -c "the file at its path was replaced" "$SC_LOG")
is "replaced: one log line says so" "$lines" 1
sc_stop

# ---- the admin API's writer, right after a replacement: the next write goes to
# the new file.  The writer keeps its connection a while after a write; the
# workers answer 503 until it has let go of the old file (idle close), then
# every connection is reopened on the new one.
DIR="$T_TMP/case.a"; mkdir -p "$DIR"; DB="$DIR/keys.db"
CTL init >/dev/null; A=$(CTL create --owner root --scopes apikey:admin --name admin)
printf 'admin_api=yes\n' >"$DIR/apikey.conf"
sc_start -f "$DIR/apikey.conf" --db "$DB" --threads 2 || nok "admin writer: setup"
create() {
	curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $A" \
		-H 'Content-Type: application/json' -d "{\"name\":\"$1\",\"scopes\":[\"a:b\"]}" "$SC_URL/v1/keys"
}
is "admin writer: a create before the replacement" "$(create before)" 201
backup "$DIR/new.db"; cp "$DB.pepper" "$DIR/new.db.pepper"
mv "$DIR/new.db" "$DB" && rm -f "$DB-wal" "$DB-shm"
st=""; for _ in $(seq 100); do st=$(create after); [ "$st" = 503 ] || break; sleep 0.05; done
is "admin writer: a create right after the replacement succeeds" "$st" 201
like "…and is in the new file" "$(CTL list --json)" '"name": *"after"'
sc_stop

# ---- restored with sqlite3 .restore (same inode; V not in the backup) ----------
DIR="$T_TMP/case.r"; mkdir -p "$DIR"; DB="$DIR/keys.db"
CTL init >/dev/null; S=$(CTL create --owner sam --scopes a:b --name s)
backup "$DIR/b.db"
V=$(CTL create --owner vic --scopes a:b --name v)
sc_start --db "$DB" --threads 2 && [ "$(auth "$V")" = 200 ] || nok "restore: setup"
during "restored (sqlite3 .restore)" sqlite3 "$DB" ".restore '$DIR/b.db'"
recovered "restored" "$S"
revoke_next "restored" "$S" s
sc_stop

# ---- restored by cp over the file (same inode), -wal/-shm removed --------------
DIR="$T_TMP/case.c"; mkdir -p "$DIR"; DB="$DIR/keys.db"
CTL init >/dev/null; S=$(CTL create --owner sam --scopes a:b --name s)
backup "$DIR/b.db"
V=$(CTL create --owner vic --scopes a:b --name v)
sc_start --db "$DB" --threads 2 && [ "$(auth "$V")" = 200 ] || nok "cp: setup"
during "restored (cp over, -wal/-shm removed)" sh -c "cp '$DIR/b.db' '$DB' && rm -f '$DB-wal' '$DB-shm'"
recovered "restored by cp" "$S"
revoke_next "restored by cp" "$S" s
is "restored by cp: integrity" "$(sqlite3 "$DB" 'PRAGMA integrity_check')" ok
sc_stop

# ---- re-initialised: everything removed, apikeyctl init, a new key -------------
setup || nok "re-init: setup"
during "re-initialised (rm, init)" sh -c "rm -f '$DB' '$DB-wal' '$DB-shm' '$DB.pepper' && '$APIKEYCTL' --db '$DB' init"
N=$(CTL create --owner nat --scopes a:b --name n)
recovered "re-initialised" "$N"
is "re-initialised: an old key is unknown" "$(auth "$S")" 401
revoke_next "re-initialised" "$N" n
sc_stop

# ---- deleted: 503 and not ready until a store exists again ---------------------
setup || nok "deleted: setup"
during "deleted" rm -f "$DB" "$DB-wal" "$DB-shm" "$DB.pepper"
is "deleted: /auth answers 503" "$(auth "$S")" 503
is "deleted: /readyz is 503" "$(sc_status /readyz)" 503
CTL init >/dev/null; N=$(CTL create --owner nat --scopes a:b --name n)
recovered "deleted then init" "$N"
is "deleted then init: /readyz" "$(sc_status /readyz)" 200
revoke_next "deleted then init" "$N" n
sc_stop

# ---- wrong pepper: another 32-byte pepper put in place ------------------------
setup || nok "pepper: setup"
cp "$DB.pepper" "$DIR/good.pepper"
head -c 32 /dev/urandom >"$DIR/bad.pepper"; chmod 0600 "$DIR/bad.pepper"
during "wrong pepper" mv "$DIR/bad.pepper" "$DB.pepper"
is "wrong pepper: /readyz is 503" "$(sc_status /readyz)" 503
like "wrong pepper: the log says why" "$(cat "$SC_LOG")" "not the one the key store was made with"
cp "$DIR/good.pepper" "$DIR/p.tmp" && mv "$DIR/p.tmp" "$DB.pepper"
recovered "right pepper back" "$V"
revoke_next "right pepper back" "$V" v
sc_stop

if [ "$SHORT" = 1 ]; then
	done_testing
	exit
fi

# ---- corrupted in place: pages overwritten after a checkpoint ------------------
setup || nok "corrupt: setup"
backup "$DIR/good.db"
sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
pages=$(( $(stat -c %s "$DB") / 4096 ))
during "corrupted (pages overwritten in place)" \
	dd if=/dev/urandom of="$DB" bs=4096 seek=1 count=$((pages - 1)) conv=notrunc status=none
is "corrupted: a key seen before is refused (503)" "$(auth "$S")" 503
during_fix() { cp "$DIR/good.db" "$DB" && rm -f "$DB-wal" "$DB-shm"; }
during_fix
recovered "corrupted, then a good copy put back" "$S"
revoke_next "corrupted then restored" "$S" s
sc_stop

# In a private mount namespace: apikeyd and the tools see the store's folder
# through a bind mount (read-only case) or on a small tmpfs (full disk).
if ! unshare -m true 2>/dev/null; then
	skip "read-only store: no mount namespace (needs root)"
	skip "full disk: no mount namespace (needs root)"
	done_testing
	exit
fi

# ns_start DIR ARGS: apikeyd in a new mount namespace where DIR is a bind
# mount of itself (so it can be remounted read-only there).  NS = its pid.
ns_start() {
	local dir=$1; shift
	SC_PORT=$(free_port); SC_URL="http://127.0.0.1:$SC_PORT"; SC_LOG="$T_TMP/apikeyd.ns.$RANDOM.log"
	unshare -m --propagation private sh -c "$1; exec '$APIKEYD' --listen 127.0.0.1:$SC_PORT --db '$DB' --threads 2" \
		>"$SC_LOG" 2>&1 &
	SC_PID=$!
	at_exit "kill -9 $SC_PID"
	for i in $(seq 100); do curl -fs -o /dev/null "$SC_URL/healthz" && return 0; sleep 0.1; done
	return 1
}
IN_NS() { nsenter -t "$SC_PID" -m "$@"; }

# ---- read-only: apikeyd (as nobody) can read the store, not write it ----------
# A read-only connection has no fast path (SQLite may give it a private copy
# of the WAL-index): it asks PRAGMA data_version on every request, and must
# still see a revoke at once.  Its usage flush fails (logged once) and works
# again when the store becomes writable, without a restart.  The rate-limit
# table stays writable (without it apikeyd cannot enforce limits and does
# not start).
DIR=$(mktemp -d /tmp/apikey-ro.XXXXXX); at_exit "rm -rf '$DIR'"; chmod 0755 "$DIR"; DB="$DIR/keys.db"
CTL init >/dev/null
S=$(CTL create --owner sam --scopes a:b --name s); V=$(CTL create --owner vic --scopes a:b --name v)
chgrp nogroup "$DB" "$DB.pepper" "$DB.rl"; chmod 0640 "$DB" "$DB.pepper"; chmod 0660 "$DB.rl"
# a writer process keeps the store open (so its -wal and -shm exist: SQLite
# gives them the store's owner, group and mode)
python3 -c "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1]); c.execute('select 1 from keys'); time.sleep(60)" "$DB" &
holder=$!; at_exit "kill $holder"
sleep 0.3
SC_PORT=$(free_port); SC_URL="http://127.0.0.1:$SC_PORT"; SC_LOG="$T_TMP/apikeyd.ro.log"
setpriv --reuid nobody --regid nogroup --clear-groups "$APIKEYD" --listen "127.0.0.1:$SC_PORT" --db "$DB" --threads 2 >"$SC_LOG" 2>&1 &
SC_PID=$!; at_exit "kill -9 $SC_PID"
if wait_for "$V" 200 5; then
	ok "read-only: a valid key answers 200"
	auth "$S" >/dev/null; sleep 1.3
	like "read-only: the usage flush says it cannot write" "$(cat "$SC_LOG")" "usage flush failed"
	out=$(printf '%s\n' "$V" | setpriv --reuid nobody --regid nogroup --clear-groups "$APIKEYCTL" --db "$DB" verify 2>/dev/null)
	is "read-only: persisted verification (needs a write) fails closed" "$out" UNAVAILABLE
	revoke_next "read-only" "$V" v
	chgrp nogroup "$DIR"; chmod g+w "$DIR" "$DB" "$DB"-wal "$DB"-shm
	for i in $(seq 40); do grep -q "usage flush works again" "$SC_LOG" && break; auth "$S" >/dev/null; sleep 0.1; done
	like "read-only, then writable: the flush works again" "$(cat "$SC_LOG")" "usage flush works again"
	kill -0 "$SC_PID" && ok "read-only: same process throughout" || nok "read-only: apikeyd died"
else
	nok "read-only: apikeyd as nobody on a read-only store"; sed 's/^/#   /' "$SC_LOG"
fi
kill "$SC_PID" "$holder" 2>/dev/null; wait "$SC_PID" "$holder" 2>/dev/null

# ---- full disk: the store on an 8 MB tmpfs that is filled ---------------------
DIR="$T_TMP/case.full"; mkdir -p "$DIR"; DB="$DIR/keys.db"
if ns_start "$DIR" "mount -t tmpfs -o size=8m tmpfs '$DIR' && '$APIKEYCTL' --db '$DB' init >/dev/null"; then
	S=$(IN_NS "$APIKEYCTL" --db "$DB" create --owner sam --scopes a:b --name s)
	V=$(IN_NS "$APIKEYCTL" --db "$DB" create --owner vic --scopes a:b --name v)
	vid=$(IN_NS "$APIKEYCTL" --db "$DB" list --json | python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["name"] == "v"][0])')
	wait_for "$V" 200 5 || true
	IN_NS dd if=/dev/zero of="$DIR/fill" bs=64k status=none 2>/dev/null
	IN_NS "$APIKEYCTL" --db "$DB" revoke "$vid" >/dev/null 2>&1
	is "full disk: a revoke fails (exit 1)" "$?" 1
	is "full disk: the key stays valid, as the file says" "$(auth "$V")" 200
	for i in 1 2 3; do auth "$S" >/dev/null; done
	sleep 1.2     # a usage flush meets the full disk
	IN_NS rm -f "$DIR/fill"
	IN_NS "$APIKEYCTL" --db "$DB" revoke "$vid" >/dev/null
	is "full disk, space back: a revoke is refused from the next request on" "$(auth "$V")" 401
	is "full disk: /auth still serves the other key" "$(auth "$S")" 200
	is "full disk: integrity" "$(IN_NS sqlite3 "$DB" 'PRAGMA integrity_check')" ok
else
	nok "full disk: apikeyd on a small tmpfs"
fi
kill "$SC_PID" 2>/dev/null; wait "$SC_PID" 2>/dev/null

# ---- a long writer: BEGIN IMMEDIATE held for 3 s --------------------------------
setup || nok "long writer: setup"
python3 - "$DB" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE meta SET value = value WHERE name = 'generation'")
time.sleep(3)
db.execute("ROLLBACK")
PY
writer=$!
sleep 0.3
t0=$(date +%s%N)
st=$(auth "$V")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "long writer: /auth answers while it holds the lock" "$st" 200
[ "$ms" -lt 1000 ] && ok "long writer: within a second (${ms} ms)" || nok "long writer: ${ms} ms"
wait "$writer"
revoke_next "long writer gone" "$V" v
sc_stop

done_testing

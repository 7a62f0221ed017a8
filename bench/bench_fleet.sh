#!/usr/bin/env bash
# bench_fleet.sh — fleet mode through the product, on a throwaway PostgreSQL
# (tests/fleet/pg-lib.sh, fleet-lib.sh), with the bare floor beside it:
#  1. revocation propagation: FLEET_REVOKES (250) revocations with apikeyctl
#     (on a host without a follower), each timed from the command's return to
#     the first 401 on each of FLEET_FOLLOWERS (8) apikeyd hosts
#     (bench/fleet_propagate.c); then fleet-floor propagate, the same shape
#     with nothing of ours;
#  2. initial sync of FLEET_KEYS (1,000,000) keys into an empty replica
#     (apikeyd --no-http), beside fleet-floor initsync (product schema);
#  3. /auth throughput (wrk -t1 -c32, apikeyd --threads 1) while the follower
#     applies FLEET_RATE (1000) upstream changes a second, against the same
#     apikeyd with no upstream; FLEET_ROUNDS (3) interleaved rounds, medians;
#  4. the fleet rate limit: one 600/min key through 3 hosts at 10x for
#     FLEET_RL_SECS (60) s, accepted against one GCRA.
# Prints numbers; asserts nothing.
set -u
: "${TOP:=$(cd "$(dirname "$0")/.." && pwd)}" "${BUILD:=$TOP/build}"
. "$TOP/tests/lib.sh"
. "$TOP/tests/fleet/pg-lib.sh"
. "$TOP/tests/fleet/fleet-lib.sh"
F=${FLEET_FOLLOWERS:-8} N=${FLEET_REVOKES:-250} K=${FLEET_KEYS:-1000000}
RATE=${FLEET_RATE:-1000} ROUNDS=${FLEET_ROUNDS:-3} SECS=${FLEET_SECS:-8} RL=${FLEET_RL_SECS:-60}
PARTS=" ${FLEET_PARTS:-1 2 3 4} "
part() { [[ "$PARTS" == *" $1 "* ]]; }
FF=$BUILD/bench/fleet-floor FP=$BUILD/bench/fleet-propagate
for t in wrk pgbench python3 sqlite3; do command -v $t >/dev/null || { echo "bench_fleet: $t missing"; exit 1; }; done
[ -x "$FF" ] && [ -x "$FP" ] || { echo "bench_fleet: make bench-tools first"; exit 1; }
fleet_init || { echo "bench_fleet: fleet setup failed"; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "PostgreSQL $(pg_psql -c 'SHOW server_version'), $(nproc) cores, load $(load), $(date -u +%Y-%m-%dT%H:%MZ)"
hosts=(b c d e f g h i j k l m n o p q)

# ---- 1. propagation --------------------------------------------------------------
if part 1; then
echo; echo "== 1. revocation propagation: $F followers, $N revocations"
ports=()
for i in $(seq 0 $((F - 1))); do
	h=${hosts[$i]}; fleet_host "$h"
	fleet_start "$h" --threads 1 >/dev/null || { echo "bench_fleet: host $h did not start"; exit 1; }
	eval "ports+=(\$PORT_$h)"
done
: >"$T_TMP/keys.txt"
for i in $(seq "$N"); do
	ctl a create --owner bench --scopes bench:read --rate-limit 1000000 --json |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["id"], d["key"])' >>"$T_TMP/keys.txt"
done
head=$(pg_psql -c "SELECT seq FROM apikey.log_head")
for i in $(seq 0 $((F - 1))); do
	for _ in $(seq 200); do [ "$(replica_seq "${hosts[$i]}")" = "$head" ] && break; sleep 0.05; done
done
echo "load $(load)"
# host a has no follower running: apikeyctl there returns without waiting for a replica
APIKEYCTL=$APIKEYCTL APIKEY_CONF=$FLEET_DIR/a/apikey.conf "$FP" "$T_TMP/keys.txt" "${ports[@]}"
for i in $(seq 0 $((F - 1))); do fleet_stop "${hosts[$i]}"; done
echo "-- the bare floor (fleet-floor propagate: libpq LISTEN + SQLite, no apikeyd), same load"
mkdir -p "$T_TMP/floor"
"$FF" propagate -f "$F" -n "$N" -s normal -m fetch -p 50 "$PG_CONNINFO" "$T_TMP/floor" || echo "floor: failed"
fi

# ---- 2. initial sync --------------------------------------------------------------
if part 2; then
echo; echo "== 2. initial sync of $K keys into an empty replica"
pg_psql -c "ALTER TABLE apikey.keys DISABLE TRIGGER keys_log;
 INSERT INTO apikey.keys(id, hash, hash_alg, hint, owner, name, scopes, metadata, rate_limit, created_at)
   SELECT 'key_' || substr(md5(i::text), 1, 16), sha256(convert_to(i::text, 'UTF8')), 'hmac-sha256',
          'ak_' || substr(md5(i::text), 17, 4), 'user' || (i % 1000), 'key ' || i, 'api:read,api:write',
          '{\"team\":\"bench\"}', 60, 1764000000 + i FROM generate_series(1, $K) i
   ON CONFLICT DO NOTHING;
 ALTER TABLE apikey.keys ENABLE TRIGGER keys_log;
 UPDATE apikey.log_head SET seq = seq + 1;" >/dev/null
pg_psql -c "VACUUM ANALYZE apikey.keys" >/dev/null
"$FF" fill -k "$K" "$PG_CONNINFO" 2>/dev/null
for r in 1 2; do
	echo "round $r, load $(load)"
	fleet_host "s$r"
	t0=$(date +%s%N)
	fleet_start "s$r" --no-http >/dev/null
	echo "  product: apikeyd --no-http start to following: $(( ($(date +%s%N) - t0) / 1000000 )) ms;" \
		"$(grep -o 'built from the upstream: .*' "$FLEET_DIR/s$r/apikeyd.log")"
	fleet_stop "s$r"
	mkdir -p "$T_TMP/floor"; rm -f "$T_TMP/floor"/initsync.db*
	"$FF" initsync -i during -j off -o "$PG_CONNINFO" "$T_TMP/floor" | sed 's/^/  floor: /'
done
fi

# ---- 3. /auth while applying --------------------------------------------------------
if part 3; then
echo; echo "== 3. /auth while the follower applies $RATE changes/s (wrk -t1 -c32 -d${SECS}s, --threads 1)"
# 1000 keys the changes edit (one upstream transaction; replicated like any)
pg_psql -c "INSERT INTO apikey.keys(id, hash, hash_alg, hint, owner, scopes, rate_limit, created_at)
  SELECT 'key_' || substr(md5('w' || i), 1, 16), sha256(convert_to('w' || i, 'UTF8')), 'hmac-sha256',
         'ak_wwww', 'churn', 'api:read', 60, 1764000000 FROM generate_series(1, 1000) i
  ON CONFLICT DO NOTHING" >/dev/null
fleet_host w
# --threads 1 on the command line: fleet_start's own --threads 2 would win over the file
fleet_start w --threads 1 >/dev/null
# A key for each round: one round's two arms (~500k requests) stay within
# the 1,000,000 a minute a key may have, so every answer measured is a 200.
# (One key for every round runs out of its burst after ~2.7M requests in
# the fleet arm; its refusals then cost a lease round each 5 ms.)
caught_up() {
	local head
	head=$(pg_psql -c "SELECT seq FROM apikey.log_head")
	for _ in $(seq 200); do [ "$(replica_seq w)" = "$head" ] && break; sleep 0.05; done
}
wkeys=()
for r in $(seq "$ROUNDS"); do wkeys+=("$(ctl a create --owner bench --scopes bench:read --rate-limit 1000000)"); done
caught_up
# the same store, no upstream: a copy of w's replica, served alone
cp "$FLEET_DIR/w/keys.db.pepper" "$T_TMP/plain.db.pepper"
sqlite3 "$FLEET_DIR/w/keys.db" ".backup '$T_TMP/plain.db'"
sqlite3 "$T_TMP/plain.db" "DELETE FROM fleet"
pport=$(free_port)
"$APIKEYD" --db "$T_TMP/plain.db" --listen "127.0.0.1:$pport" --threads 1 2>/dev/null & plain=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$pport/healthz" && break; sleep 0.05; done
cat >"$T_TMP/change.sql" <<-'EOF'
\set i random(1, 1000)
UPDATE apikey.keys SET name = 'n' || :i || '-' || extract(epoch FROM clock_timestamp())::text WHERE id = 'key_' || substr(md5('w' || :i), 1, 16);
EOF
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# pg_ms: CPU ms of the PostgreSQL processes alive now.  Read before and
# after an arm it counts the long-lived ones: the server's own in both arms,
# the follower's and keeper's backends in the second (pgbench's backends
# exit with it and are not counted in either)
pg_ms() { pgrep -x postgres | sed 's|.*|/proc/&/stat|' | xargs cat 2>/dev/null |
	awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 } END { printf "%.0f", t * 1000 / hz }'; }
# thread_ticks PID NAME: CPU ticks of the process's thread NAME (apikeyd names them)
thread_ticks() {
	local t
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] && { awk '{ print $14 + $15 }' "$t/stat"; return; }
	done
	echo 0
}
# wrk_rps URL PID: "<req/s> <server CPU µs per request> <answers not 200>"
# (the process's threads together: for the follower, applying is part of
# its cost)
wrk_rps() {
	local c0 c1
	c0=$(cpu_ticks "$2")
	wrk -t1 -c32 -d"${SECS}s" -H "Authorization: Bearer ${wkeys[r - 1]}" "$1" >"$T_TMP/wrk.out"
	c1=$(cpu_ticks "$2")
	awk -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '/requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
		/Non-2xx/ { bad = $NF } END { printf "%.0f %.1f %d\n", rps, n ? ticks * 1e6 / hz / n : 0, bad }' "$T_TMP/wrk.out"
}
changes() {   # RATE upstream changes a second for SECS + 1 s, in the background
	pgbench -n -h "$PG_SOCK" -p "$PG_PORT" -U postgres -R "$RATE" -T $((SECS + 1)) -c 2 -f "$T_TMP/change.sql" "$PG_DB" \
		>"$T_TMP/pgbench.out" 2>&1 &
	pb=$!
	sleep 0.5
}
# Both arms run with the same PostgreSQL load (the changes are made in both):
# the fleet apikeyd is paused (SIGSTOP) while the plain one is measured, and
# the other way round, so the difference is what following costs apikeyd.
# Rounds alternate which arm goes first, and each round's ratio is taken
# within the round, so a drift of the machine's load (autovacuum, a
# neighbour) lands in both arms of a round instead of in one arm's median.
arm_plain() {
	local p0
	kill -STOP "$PID_w"
	p0=$(pg_ms)
	changes
	read -r ar ac abad <<<"$(wrk_rps "http://127.0.0.1:$pport/auth" "$plain")"
	wait "$pb"
	pga=$(( $(pg_ms) - p0 ))
	kill -CONT "$PID_w"
	caught_up
}
# metric NAME: apikeyd w's counter NAME (apikeyd_cache_advances_total: the
# follower's commits that dropped only their keys from the cache; one that
# finds the cache at another generation empties it instead, uncounted)
metric() { curl -s "http://127.0.0.1:$PORT_w/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
arm_follow() {
	local s0 f0 p0 c0 t0
	s0=$(replica_seq w) c0=$(metric apikeyd_cache_advances_total) t0=$(metric apikeyd_fleet_streams_total)
	kill -STOP "$plain"
	f0=$(thread_ticks "$PID_w" apikeyd-follow)
	p0=$(pg_ms)
	changes
	read -r br bc bbad <<<"$(wrk_rps "http://127.0.0.1:$PORT_w/auth" "$PID_w")"
	wait "$pb"
	pgb=$(( $(pg_ms) - p0 ))
	kill -CONT "$plain"
	caught_up
	applied=$(( $(replica_seq w) - s0 ))
	commits=$(( $(metric apikeyd_cache_advances_total) - c0 )) streams=$(( $(metric apikeyd_fleet_streams_total) - t0 ))
	fcpu=$(awk -v t=$(( $(thread_ticks "$PID_w" apikeyd-follow) - f0 )) -v hz="$(getconf CLK_TCK)" -v n="$applied" \
		'BEGIN { printf "%.0f", n ? t * 1e6 / hz / n : 0 }')
}
a_list=() b_list=()
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then arm_plain; arm_follow; else arm_follow; arm_plain; fi
	echo "  round $r: no upstream $ar req/s ($ac µs CPU a request); following while applying $br req/s ($bc µs):" \
		"$(awk -v a="$ar" -v b="$br" 'BEGIN { printf "%.3f", b / a }')x;" \
		"applied $applied changes ($(grep -o 'tps = [0-9.]*' "$T_TMP/pgbench.out" | head -n 1)) in $commits local commits (cache advances), $streams streams;" \
		"the follower thread ${fcpu} µs CPU a change;" \
		"PostgreSQL CPU ${pga} / ${pgb} ms; load $(load)"
	[ "$abad$bbad" = 00 ] || echo "  round $r: answers not 200: $abad without upstream, $bbad following (the ratio is not of /auth's work)"
	a_list+=("$ar $ac") b_list+=("$br $bc")
done
python3 - "${a_list[*]}" "${b_list[*]}" <<-'EOF'
import statistics, sys
def split(v):
    x = v.split(); return [float(t) for t in x[0::2]], [float(t) for t in x[1::2]]
ar, ac = split(sys.argv[1]); br, bc = split(sys.argv[2])
rr = [b / a for a, b in zip(ar, br)]
cr = [a / b for a, b in zip(ac, bc)]
print("  median of the rounds' ratios: req/s %.3fx (%.3f-%.3f); throughput of a saturated server (CPU a request) %.3fx (%.3f-%.3f)"
      % (statistics.median(rr), min(rr), max(rr), statistics.median(cr), min(cr), max(cr)))
print("  medians: no upstream %.0f req/s, %.1f us a request; while applying %.0f req/s, %.1f us a request"
      % (statistics.median(ar), statistics.median(ac), statistics.median(br), statistics.median(bc)))
EOF
kill "$plain"; wait "$plain" 2>/dev/null
fleet_stop w
fi

# ---- 4. the fleet rate limit ---------------------------------------------------------
if part 4; then
echo; echo "== 4. one 600/min key through 3 hosts at 10x for ${RL} s (60/30/10 %)"
for h in r1 r2 r3; do fleet_host $h; fleet_start $h >/dev/null; done
sleep 5.5
key=$(ctl a create --owner bench --scopes bench:read --rate-limit 600)
for h in r1 r2 r3; do for _ in $(seq 100); do [ "$(replica_seq $h)" = "$(pg_psql -c 'SELECT seq FROM apikey.log_head')" ] && break; sleep 0.05; done; done
python3 "$TOP/tests/fleet/ratehammer.py" "$key" 600 "$RL" "$PORT_r1:60" "$PORT_r2:30" "$PORT_r3:10"
echo "load $(load)"
fi

#!/usr/bin/env bash
# t_pg_harness.sh — the throwaway PostgreSQL of tests/fleet/pg-lib.sh does
# what the fleet tests will rely on: it starts as an unprivileged user on a
# unix socket only, answers psql, keeps committed data across stop/start and
# a SIGKILL of the postmaster, refuses connections while stopped, and is gone
# (server stopped, folder removed) when the script using it exits — by
# failing, or killed with SIGKILL.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg-lib.sh"

if ! pg_require; then
	nok "PostgreSQL server, psql and libpq-dev are installed (scripts/install-deps.sh)"
	done_testing
	exit 1
fi
ok "PostgreSQL found in $PG_BIN"

check "pg_init: initdb, start, create the database" pg_init
check "the server accepts connections" pg_up

pid=$(head -n 1 "$PG_DATA/postmaster.pid")
if [ "$(id -u)" = 0 ]; then
	is "as root, the server runs as the postgres user" "$(ps -o user= -p "$pid" | tr -d ' ')" postgres
else
	is "the server runs as the invoking user" "$(ps -o user= -p "$pid" | tr -d ' ')" "$(id -un)"
fi
is "no TCP listener (listen_addresses is empty)" "$(pg_psql -c 'SHOW listen_addresses')" ""
check "the unix socket is in the cluster's own folder" test -S "$PG_SOCK/.s.PGSQL.$PG_PORT"
like "the data folder is private" "$(stat -c %a "$PG_DATA")" '^7[05]0$'
is "psql runs on \$PG_DB through the helper" "$(pg_psql -c 'SELECT current_database()')" "$PG_DB"
is "libpq connection string in \$PG_CONNINFO" \
	"$(psql -X -At "$PG_CONNINFO" -c 'SELECT 6 * 7' 2>&1)" 42

pg_psql -c "CREATE TABLE t(v int); INSERT INTO t VALUES (1)"
if pg_psql -c "SELECT nope FROM t" >/dev/null 2>&1; then
	nok "an SQL error makes pg_psql fail"
else
	ok "an SQL error makes pg_psql fail"
fi

check "pg_stop" pg_stop
check "…the server no longer answers" bash -c "! '$PG_BIN/pg_isready' -q -h '$PG_SOCK' -p '$PG_PORT' -t 1"
if pg_psql -c "SELECT 1" >/dev/null 2>&1; then nok "…psql fails while stopped"; else ok "…psql fails while stopped"; fi
check "pg_start again" pg_start
is "…committed rows are still there" "$(pg_psql -c 'SELECT count(*) FROM t')" 1

check "pg_restart" pg_restart
is "…the server answers after a restart" "$(pg_psql -c 'SELECT v FROM t')" 1

pg_psql -c "INSERT INTO t VALUES (2)"
check "pg_kill (SIGKILL of the postmaster)" pg_kill
check "…the server no longer answers" bash -c "! '$PG_BIN/pg_isready' -q -h '$PG_SOCK' -p '$PG_PORT' -t 1"
check "pg_start after the crash (recovery)" pg_start
is "…the commit before the crash survived" "$(pg_psql -c 'SELECT sum(v) FROM t')" 3

# A script that uses the harness and fails: the cluster must not outlive it.
child() (
	exec bash -c '
		. "$TOP/tests/lib.sh"; . "$TOP/tests/fleet/pg-lib.sh"
		pg_init || exit 3
		echo "$PG_DIR $(head -n 1 "$PG_DATA/postmaster.pid") $$"
		'"$1"
)
child 'exit 1' >"$T_TMP/failed.out" 2>/dev/null
read -r dir cpid <"$T_TMP/failed.out"
if [ -n "${dir:-}" ]; then
	check "a failing script: its cluster's folder is removed" test ! -e "$dir"
	if pg_pid_alive "$cpid"; then nok "…and its server is stopped"; else ok "…and its server is stopped"; fi
else
	nok "a failing script: the child harness started"
fi

# SIGKILL (the script's shell replaced by sleep, then killed): no trap
# runs; the watchdog stops and removes the cluster.
out=$T_TMP/killed.out
child 'exec sleep 60' >"$out" 2>/dev/null &
kpid=$!
for _ in $(seq 300); do [ -s "$out" ] && break; sleep 0.1; done
read -r dir cpid spid <"$out"
if [ -n "${dir:-}" ] && kill -0 "$cpid" 2>/dev/null; then
	kill -9 "$spid"     # the script's own shell, now running sleep
	wait "$kpid" 2>/dev/null
	for _ in $(seq 150); do [ -e "$dir" ] || break; sleep 0.1; done
	check "a SIGKILLed script: the watchdog removes its cluster's folder within 15 s" test ! -e "$dir"
	if pg_pid_alive "$cpid"; then nok "…and its server is stopped"; else ok "…and its server is stopped"; fi
else
	nok "a SIGKILLed script: the child harness started"
	[ -n "${kpid:-}" ] && kill -9 "$kpid" 2>/dev/null
fi

done_testing

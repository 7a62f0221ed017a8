# tests/fleet/pg-lib.sh — a throwaway PostgreSQL for the fleet tests and
# benchmarks (sourced after tests/lib.sh).  It installs nothing: it finds the
# server binaries of Debian's `postgresql` package and libpq's headers
# (`libpq-dev`), and says so clearly when either is missing
# (scripts/install-deps.sh installs both).
#
# The cluster lives in its own temporary folder (not in $T_TMP, which is 0700
# root), listens on a unix socket in that folder only (listen_addresses=''),
# and runs as an unprivileged user: PostgreSQL refuses to run as root, so
# under root it runs as the `postgres` user the Debian package creates, via
# runuser.  It is stopped and removed when the script exits, also on failure;
# a watchdog does the same if the script is killed with SIGKILL.
#
#   pg_require               0, or a "# ..." line saying what is missing
#   pg_init [CONF-LINES]     initdb + start + CREATE DATABASE $PG_DB;
#                            sets PG_DIR, PG_DATA, PG_SOCK, PG_PORT, PG_CONNINFO
#   pg_start / pg_stop [MODE] / pg_restart / pg_kill
#                            (MODE: fast (default), immediate, smart)
#   pg_up                    the server accepts connections (no wait)
#   pg_pid_alive PID         PID runs (zombies do not count)
#   pg_psql [PSQL-ARGS...]   psql on $PG_DB as the superuser, unaligned,
#                            tuples only, stops at the first error
#   pg_psql_as ROLE [ARGS...]  the same, connecting as ROLE
#
# Every wait is bounded by PG_WAIT seconds (default 30).
: "${PG_DB:=apikey}" "${PG_SUPERUSER:=postgres}" "${PG_WAIT:=30}" "${PG_PORT:=5432}"
PG_BIN="" PG_DIR="" PG_DATA="" PG_SOCK="" PG_CONNINFO="" PG_RUNAS="" PG_WATCHDOG="" PG_JOB=""

# The newest installed server, or $PG_VERSION's.
pg_find_bin() {
	local d
	if [ -n "${PG_VERSION:-}" ]; then
		d=/usr/lib/postgresql/$PG_VERSION/bin
	else
		d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	fi
	[ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && echo "$d"
}

pg_require() {
	local missing=""
	PG_BIN=$(pg_find_bin) || PG_BIN=""
	[ -n "$PG_BIN" ] || missing="$missing postgresql (initdb, pg_ctl, postgres under /usr/lib/postgresql/*/bin)"
	command -v psql >/dev/null 2>&1 || [ -x "$PG_BIN/psql" ] || missing="$missing postgresql-client (psql)"
	[ -f "$(pg_config --includedir 2>/dev/null)/libpq-fe.h" ] || missing="$missing libpq-dev (libpq-fe.h)"
	if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
		missing="$missing the 'postgres' user (created by the postgresql package)"
	fi
	if [ "$(id -u)" = 0 ] && ! command -v runuser >/dev/null 2>&1; then
		missing="$missing runuser (util-linux)"
	fi
	if [ -n "$missing" ]; then
		echo "# PostgreSQL test harness: missing:$missing — run scripts/install-deps.sh" >&2
		return 1
	fi
	[ "$(id -u)" = 0 ] && PG_RUNAS=postgres
	return 0
}

# pg_as CMD...: CMD as the cluster's owner, from a folder it can read.
pg_as() {
	if [ -n "$PG_RUNAS" ]; then
		(cd / && runuser -u "$PG_RUNAS" -- "$@")
	else
		(cd / && "$@")
	fi
}

pg_ctl_() { pg_as timeout "$((PG_WAIT + 5))" "$PG_BIN/pg_ctl" -D "$PG_DATA" "$@"; }

pg_init() {
	local line
	[ -n "$PG_BIN" ] || pg_require || return 1
	PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/apikey-pg.XXXXXX") || return 1
	PG_DATA=$PG_DIR/data PG_SOCK=$PG_DIR/sock
	mkdir -m 0700 "$PG_SOCK"
	[ -n "$PG_RUNAS" ] && chown -R "$PG_RUNAS" "$PG_DIR"
	pg_watchdog_start
	at_exit "pg_cleanup"
	# --no-sync: a throwaway cluster need not survive a power cut being made.
	if ! pg_as timeout "$PG_WAIT" "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" -A trust \
	        -E UTF8 --no-locale --no-sync >"$PG_DIR/initdb.log" 2>&1; then
		echo "# initdb failed:" >&2
		sed 's/^/#   /' "$PG_DIR/initdb.log" >&2
		return 1
	fi
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$PG_SOCK'"
		echo "unix_socket_permissions = 0700"
		echo "port = $PG_PORT"
		echo "max_connections = 64"
		echo "log_min_messages = warning"
		for line in "$@"; do echo "$line"; done
	} | pg_as tee -a "$PG_DATA/postgresql.conf" >/dev/null
	PG_CONNINFO="host=$PG_SOCK port=$PG_PORT dbname=$PG_DB user=$PG_SUPERUSER"
	export PG_CONNINFO PG_SOCK PG_PORT PG_DB
	pg_start || return 1
	pg_psql -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null
}

# The postmaster runs as a child of this shell (not daemonised by pg_ctl), so
# this shell reaps it: a SIGKILLed postmaster leaves no zombie whose pid in
# postmaster.pid would make the next start refuse ("lock file already exists").
pg_start() {
	local i
	pg_as "$PG_BIN/postgres" -D "$PG_DATA" </dev/null >>"$PG_DIR/server.log" 2>&1 &
	PG_JOB=$!
	for i in $(seq $((PG_WAIT * 20))); do
		pg_up && return 0
		kill -0 "$PG_JOB" 2>/dev/null || break
		sleep 0.05
	done
	echo "# PostgreSQL did not start:" >&2
	tail -n 20 "$PG_DIR/server.log" 2>/dev/null | sed 's/^/#   /' >&2
	return 1
}

pg_stop() {
	pg_ctl_ stop -m "${1:-fast}" -w -t "$PG_WAIT" >/dev/null 2>&1 || return 1
	[ -n "$PG_JOB" ] && wait "$PG_JOB" 2>/dev/null
	return 0
}

pg_restart() { pg_stop "${1:-fast}" && pg_start; }

# pg_kill: SIGKILL the postmaster (a crash: its backends exit when they see
# it gone, and the next pg_start runs crash recovery).  Returns once the
# postmaster is reaped and the server refuses connections.
pg_kill() {
	local pid i
	pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
	kill -9 "$pid" 2>/dev/null
	for i in $(seq $((PG_WAIT * 20))); do
		if ! pg_pid_alive "$pid" && ! pg_up; then
			wait "$PG_JOB" 2>/dev/null
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# pg_pid_alive PID: PID runs (a zombie waiting for a lazy init to reap it
# does not count).
pg_pid_alive() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

pg_up() { "$PG_BIN/pg_isready" -q -h "$PG_SOCK" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

pg_psql_as() {
	local role=$1; shift
	timeout "$PG_WAIT" psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U "$role" \
		-d "$PG_DB" "$@"
}

pg_psql() { pg_psql_as "$PG_SUPERUSER" "$@"; }

# The watchdog outlives a SIGKILLed script: it polls the script's pid and
# stops and removes the cluster when it is gone.  Its output goes nowhere, so
# a caller reading the script's stdout (run-tests.sh) does not wait for it.
pg_watchdog_start() {
	local me=$$ bin=$PG_BIN data=$PG_DATA dir=$PG_DIR runas=$PG_RUNAS
	(
		trap '' HUP INT TERM
		while kill -0 "$me" 2>/dev/null; do sleep 1; done
		if [ -n "$runas" ]; then
			(cd / && runuser -u "$runas" -- "$bin/pg_ctl" -D "$data" stop -m immediate -w -t 10)
		else
			(cd / && "$bin/pg_ctl" -D "$data" stop -m immediate -w -t 10)
		fi
		rm -rf "$dir"
	) </dev/null >/dev/null 2>&1 &
	PG_WATCHDOG=$!
}

pg_cleanup() {
	[ -n "$PG_DIR" ] || return 0
	if [ -f "$PG_DATA/postmaster.pid" ]; then
		pg_ctl_ stop -m immediate -w -t 10 >/dev/null 2>&1
	fi
	[ -n "$PG_WATCHDOG" ] && kill -9 "$PG_WATCHDOG" 2>/dev/null   # it ignores TERM
	rm -rf "$PG_DIR"
	PG_DIR=""
}

# tests/fleet/fleet-lib.sh — a fleet for the fleet-mode tests (sourced after
# tests/lib.sh and tests/fleet/pg-lib.sh): one throwaway PostgreSQL, the
# least-privilege roles of `apikeyctl upstream roles` (the owner runs
# upstream init, apikeyd connects as apikey_follower, apikeyctl as
# apikey_writer), and "hosts": each a folder with its own apikey.conf,
# replica and copy of the fleet's pepper, served by its own apikeyd.
#
#   fleet_init                   PostgreSQL, roles, host "a" (store + pepper), upstream init
#   fleet_host NAME              a host's folder and apikey.conf (the fleet's pepper copied)
#   fleet_start NAME [ARGS...]   apikeyd for NAME (free port; ARGS e.g. --no-http),
#                                waits until it follows; sets PORT_<NAME>, PID_<NAME>
#   fleet_stop NAME              SIGTERM, wait
#   fleet_kill NAME              SIGKILL, wait
#   ctl NAME ARGS...             apikeyctl on host NAME (as apikey_writer)
#   auth NAME KEY [SCOPE]        the HTTP status of GET /auth on host NAME
#   wait_auth NAME KEY CODE [SCOPE]  poll /auth until it answers CODE (<= 5 s);
#                                prints the milliseconds it took
#   status_field NAME FIELD      a field of `apikeyctl status --json`'s follower
#   replica_seq NAME             the replica's applied seq (sqlite3)
set -u
FLEET_DIR=$T_TMP/fleet
mkdir -p "$FLEET_DIR"

fleet_conninfo() { echo "host=$PG_SOCK port=$PG_PORT dbname=$PG_DB"; }

fleet_require() {
	if ! pg_require; then
		nok "PostgreSQL server, psql and libpq-dev are installed (scripts/install-deps.sh)"
		done_testing
		exit 1
	fi
	command -v sqlite3 >/dev/null || { nok "sqlite3 (the CLI) is installed"; done_testing; exit 1; }
	command -v curl >/dev/null || { nok "curl is installed"; done_testing; exit 1; }
}

fleet_host() {
	local n=$1 dir=$FLEET_DIR/$1
	mkdir -p "$dir"
	cat >"$dir/apikey.conf" <<-EOF
	db=$dir/keys.db
	upstream=$(fleet_conninfo) user=apikey_follower
	upstream_writer=$(fleet_conninfo) user=apikey_writer
	EOF
	[ -f "$dir/keys.db.pepper" ] || { [ -f "$FLEET_DIR/a/keys.db.pepper" ] &&
		install -m 0600 "$FLEET_DIR/a/keys.db.pepper" "$dir/keys.db.pepper"; }
	return 0
}

fleet_init() {
	fleet_require
	pg_init "log_min_messages = fatal" || { nok "PostgreSQL started"; done_testing; exit 1; }
	# the owner of the schema: runs upstream init (CREATE on the database, no more)
	pg_psql -c "CREATE ROLE apikey_owner LOGIN; GRANT CREATE ON DATABASE $PG_DB TO apikey_owner" >/dev/null
	fleet_host a
	"$APIKEYCTL" --db "$FLEET_DIR/a/keys.db" init >/dev/null || return 1
	# upstream init, as the owner (upstream_writer names apikey_writer: a
	# configuration for this one command)
	sed 's/user=apikey_writer/user=apikey_owner/' "$FLEET_DIR/a/apikey.conf" >"$FLEET_DIR/owner.conf"
	"$APIKEYCTL" --conf "$FLEET_DIR/owner.conf" upstream init >"$FLEET_DIR/init.out" 2>&1 || {
		cat "$FLEET_DIR/init.out" >&2; return 1; }
	# the roles and grants, as printed for the DBA
	"$APIKEYCTL" upstream roles | pg_psql >/dev/null || return 1
	return 0
}

fleet_start() {
	local n=$1 dir=$FLEET_DIR/$1 port pid i
	shift
	port=$(free_port)
	APIKEY_CONF=$dir/apikey.conf "$APIKEYD" -d --listen "127.0.0.1:$port" --threads 2 "$@" \
		>>"$dir/apikeyd.log" 2>&1 &
	pid=$!
	eval "PORT_$n=$port PID_$n=$pid"
	export "PORT_$n"
	for i in $(seq 300); do
		if ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		if [ "$(status_field "$n" state 2>/dev/null)" = following ]; then
			case " $* " in *" --no-http "*) return 0 ;; esac
			curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
		fi
		sleep 0.05
	done
	return 1
}

fleet_stop() {
	local pid
	eval "pid=\${PID_$1:-}"
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	eval "PID_$1="
}

fleet_kill() {
	local pid
	eval "pid=\${PID_$1:-}"
	[ -n "$pid" ] || return 0
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	eval "PID_$1="
}

fleet_stop_all() {
	local v
	for v in $(compgen -v PID_); do fleet_stop "${v#PID_}"; done
}
at_exit "fleet_stop_all"

ctl() {
	local n=$1
	shift
	APIKEY_CONF=$FLEET_DIR/$n/apikey.conf "$APIKEYCTL" "$@"
}

auth() {
	local port
	eval "port=\$PORT_$1"
	curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" \
		${3:+-H "X-Required-Scope: $3"} "http://127.0.0.1:$port/auth"
}

# wait_auth NAME KEY CODE [SCOPE]: milliseconds until /auth answers CODE,
# or "timeout" (and status 1) after 5 s.
wait_auth() {
	python3 - "$@" <<-'EOF'
	import http.client, sys, time, os
	name, key, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
	scope = sys.argv[4] if len(sys.argv) > 4 else None
	port = int(os.environ["PORT_" + name])
	t0 = time.monotonic()
	c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
	h = {"Authorization": "Bearer " + key}
	if scope:
	    h["X-Required-Scope"] = scope
	while True:
	    c.request("GET", "/auth", headers=h)
	    r = c.getresponse(); r.read()
	    if r.status == want:
	        print("%.1f" % ((time.monotonic() - t0) * 1000)); sys.exit(0)
	    if time.monotonic() - t0 > 5:
	        print("timeout (last %d)" % r.status); sys.exit(1)
	    time.sleep(0.0005)
	EOF
}

status_field() {
	ctl "$1" status --json 2>/dev/null | python3 -c '
import json, sys
o = json.load(sys.stdin); f = o.get("follower") or {}
k = sys.argv[1]
print(o[k] if k in o else f.get(k, ""))' "$2"
}

replica_seq() {
	sqlite3 "$FLEET_DIR/$1/keys.db" "SELECT value FROM fleet WHERE name = 'applied_seq'" 2>/dev/null
}

# the id of a key from its own listing on host NAME (created by ctl create --json)
key_id_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
key_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'; }

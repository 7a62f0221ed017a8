# tests/sidecar/lib_sidecar.sh — helpers for the apikeyd tests (sourced after
# tests/lib.sh): start a daemon on a free port, wait for it, stop it by PID.
SC_PID="" SC_PORT="" SC_URL="" SC_LOG=""

# sc_start [ARGS...]: apikeyd --listen 127.0.0.1:<free port> ARGS in the
# background, logging to $T_TMP/apikeyd.N.log; waits (<= 10 s) for /healthz.
sc_start() {
	local i
	SC_PORT=$(free_port)
	SC_URL="http://127.0.0.1:$SC_PORT"
	SC_LOG="$T_TMP/apikeyd.$RANDOM.log"
	"$APIKEYD" --listen "127.0.0.1:$SC_PORT" "$@" >"$SC_LOG" 2>&1 &
	SC_PID=$!
	at_exit "kill -9 $SC_PID"
	for i in $(seq 100); do
		curl -fs -o /dev/null "$SC_URL/healthz" && return 0
		kill -0 "$SC_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# apikeyd did not start:" >&2
	sed 's/^/#   /' "$SC_LOG" >&2
	return 1
}

# sc_stop [SIGNAL]: signal the daemon and wait (<= 10 s) for it; its exit
# status goes to SC_RC ("hung" if it had to be killed).
sc_stop() {
	local sig=${1:-TERM} i
	kill "-$sig" "$SC_PID" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$SC_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SC_PID" 2>/dev/null; then
		kill -9 "$SC_PID"; wait "$SC_PID" 2>/dev/null; SC_RC=hung; return 1
	fi
	wait "$SC_PID"; SC_RC=$?
}

# sc_alive: the daemon runs and answers /healthz.
sc_alive() { kill -0 "$SC_PID" 2>/dev/null && [ "$(curl -s -m 5 "$SC_URL/healthz")" = ok ]; }

# sc_status URL-PATH [CURL ARGS...]: the HTTP status code only.
sc_status() { local p=$1; shift; curl -s -m 10 -o /dev/null -w '%{http_code}' "$@" "$SC_URL$p"; }

# sc_header NAME FILE: a header's value from a curl -D dump.
sc_header() { tr -d '\r' <"$2" | awk -v n="$(tr 'A-Z' 'a-z' <<<"$1")" -F': ' 'tolower($1) == n { print substr($0, length($1) + 3); exit }'; }

# sc_key OWNER SCOPES [create args]: issue a key, print it.
sc_key() { local o=$1 s=$2; shift 2; "$APIKEYCTL" --db "$DB" create --owner "$o" --scopes "$s" "$@"; }

# sc_key_id KEY-HINT-OWNER: id of the newest key of OWNER.
sc_key_id() {
	"$APIKEYCTL" --db "$DB" list --json | python3 -c '
import json, sys
keys = [k for k in json.load(sys.stdin) if k["owner"] == sys.argv[1]]
print(keys[-1]["id"])' "$1"
}

#!/usr/bin/env bash
# ft_outage.sh — the upstream goes away and comes back.  Stopped: every
# host answers from its replica exactly as before (valid stays valid,
# revoked stays revoked), /readyz stays 200 and says "down" with the
# staleness, `apikeyctl status` shows it, and every write fails with one
# clear line, exit 1, nothing written.  Killed (SIGKILL of the postmaster)
# and restarted: the followers reconnect and catch up by themselves (no
# host restarted), and what is written next reaches every host.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

check "fleet initialised" fleet_init
fleet_host b
fleet_host c
echo "admin_api=yes" >>"$FLEET_DIR/b/apikey.conf"
for h in a b c; do check "host ${h^^} follows" fleet_start $h; done
# the admin API on B writes through the same core functions: upstream too
admin=$(ctl a create --owner root --scopes apikey:admin --rate-limit 1000)
admin_post() {   # prints the status, the body in $T_TMP/admin.out
	curl -s -o "$T_TMP/admin.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $admin" \
		-H 'Content-Type: application/json' -d '{"owner":"frank","scopes":["api:read"]}' \
		"http://127.0.0.1:$PORT_b/v1/keys"
}
wait_auth b "$admin" 200 >/dev/null
is "the admin API on B creates a key (fleet mode)" "$(admin_post)" 201
kf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$T_TMP/admin.out")
check "…it verifies on C (written upstream, not only on B)" wait_auth c "$kf" 200
is "…the upstream holds it, with its source" \
	"$(pg_psql -c "SELECT source FROM apikey.events WHERE event = 'created' AND owner = 'frank'")" http
good=$(ctl a create --owner alice --scopes api:read)
out=$(ctl a create --owner alice --scopes api:read --json)
bad=$(key_of <<<"$out") badid=$(key_id_of <<<"$out")
ctl a revoke "$badid" >/dev/null
for h in b c; do wait_auth $h "$bad" 401 >/dev/null; wait_auth $h "$good" 200 >/dev/null; done

check "PostgreSQL stopped" pg_stop
for h in a b c; do
	is "upstream down: host ${h^^} still accepts the valid key" "$(auth $h "$good")" 200
	is "…and still refuses the revoked one" "$(auth $h "$bad")" 401
done
for _ in $(seq 100); do [ "$(status_field b state)" = down ] && break; sleep 0.05; done
body=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$PORT_b/readyz")
is "/readyz stays ready while the upstream is away" "$(tail -n 1 <<<"$body")" 200
like "…and says the upstream is down" "$body" "upstream: down"
like "…with the staleness" "$body" "staleness_seconds: [0-9]+\.[0-9]+"
like "/metrics: apikeyd_fleet_upstream_up 0" "$(curl -s "http://127.0.0.1:$PORT_b/metrics")" \
	"apikeyd_fleet_upstream_up 0"
like "apikeyctl status on B: follower down" "$(ctl b status)" "follower: +pid [0-9]+, down"

err=$(ctl a create --owner alice --scopes api:read 2>&1 >/dev/null); rc=$?
is "a write while the upstream is away: exit 1" "$rc" 1
is "…one line on stderr" "$(wc -l <<<"$err")" 1
like "…that says the upstream is unreachable, naming host and database" "$err" \
	"^apikeyctl: create: key not created: upstream unreachable \(host .*, database apikey\)"
err=$(ctl b revoke "$(ctl b list --json | python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["status"] == "active"][0])')" 2>&1); rc=$?
is "a revoke while the upstream is away: exit 1" "$rc" 1
like "…not revoked, upstream unreachable" "$err" "not revoked: upstream unreachable"
is "…nothing was written locally: the key still works on B" "$(auth b "$good")" 200
err=$(ctl c account set alice --active no 2>&1); is "account: exit 1 while down" "$?" 1
is "the admin API on B while the upstream is away: 503" "$(admin_post)" 503
like "…UNAVAILABLE, nothing written" "$(cat "$T_TMP/admin.out")" \
	'^\{"error":"upstream unreachable: nothing was written","code":"UNAVAILABLE","status":503\}$' 
err=$(ctl c preset add x a:b 2>&1); is "preset: exit 1 while down" "$?" 1
err=$(ctl c prune 2>&1); is "prune: exit 1 while down" "$?" 1
printf '{"hash":"sha256:%064d","hint":"ak_abc","owner":"bob","scopes":"a:b"}\n' 0 >"$T_TMP/imp.jsonl"
err=$(ctl c import "$T_TMP/imp.jsonl" 2>&1); is "import: exit 1 while down" "$?" 1

# a crash (SIGKILL) while down is no different: start, kill, start again
check "PostgreSQL started" pg_start
check "…killed with SIGKILL (a crash)" pg_kill
check "…and started again (crash recovery)" pg_start
is "nothing of the refused writes reached the upstream" \
	"$(pg_psql -c "SELECT count(*) FROM apikey.keys") $(pg_psql -c "SELECT count(*) FROM apikey.accounts")" "4 0"
for h in a b c; do
	for _ in $(seq 200); do [ "$(status_field $h state)" = following ] && break; sleep 0.05; done
	is "host ${h^^} reconnected by itself" "$(status_field $h state)" following
done
like "/readyz after the catch-up: following, not stale" "$(curl -s "http://127.0.0.1:$PORT_b/readyz")" \
	"upstream: following.*staleness_seconds: 0.000"
out=$(ctl b create --owner carol --scopes api:read --json)
k3=$(key_of <<<"$out")
for h in a c; do
	check "a key created after the restart verifies on ${h^^}" wait_auth $h "$k3" 200
done
ctl c revoke "$(key_id_of <<<"$out")" >/dev/null
for h in a b; do
	check "…and its revoke on C is refused on ${h^^}" wait_auth $h "$k3" 401
done
for h in a b c; do check "host ${h^^} was never restarted" kill -0 "$(eval echo \$PID_$h)"; done
done_testing

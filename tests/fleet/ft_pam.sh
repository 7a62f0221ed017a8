#!/usr/bin/env bash
# ft_pam.sh — a PAM login on host C (a PAM-only host: `apikeyd --no-http`
# keeps its replica) with a key created on host A's CLI; the revoke made on A
# is refused on C's next login; C's logins go on from its replica while the
# upstream is away.  Usage flows up: the logins on C and the requests on B
# show as one fleet total in `apikeyctl list` on A.  The module (real
# libpam: pamtester under pam_wrapper) never links libpq: t_layering.sh.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"
. "$(dirname "$TOP/tests/pam/x")/pam-lib.sh"
pam_require
U=daemon

check "fleet initialised" fleet_init
fleet_host b
fleet_host c
check "host A follows" fleet_start a
check "host B follows (HTTP)" fleet_start b
check "host C follows with --no-http (PAM only)" fleet_start c --no-http
svc login "auth required $PAM_MODULE db=$FLEET_DIR/c/keys.db" "account required $PAM_MODULE db=$FLEET_DIR/c/keys.db"

out=$(ctl a create --owner $U --scopes pam:login,api:read --rate-limit 1000 --json)
key=$(key_of <<<"$out") id=$(key_id_of <<<"$out")
echo "$key" >>"$PAM_SECRETS"
for _ in $(seq 100); do [ "$(replica_seq c)" = "$(replica_seq a)" ] && break; sleep 0.05; done
is "a key created on A logs $U in on C (PAM)" "$(pt login $U "$key" authenticate acct_mgmt)" PAM_SUCCESS
is "…not another user" "$(pt login bin "$key" authenticate)" PAM_AUTH_ERR
for _ in 1 2 3; do pt login $U "$key" authenticate >/dev/null; done
for _ in 1 2 3 4 5; do auth b "$key" api:read >/dev/null; done

# usage: 4 logins on C, 5 requests on B, as one total on A (shipped each second)
total=""
for _ in $(seq 100); do
	total=$(ctl a list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["use_count"])')
	[ "$total" = 9 ] && break
	sleep 0.1
done
is "A lists the fleet's use count of the key (4 PAM logins on C + 5 requests on B)" "$total" 9
is "…the upstream holds one row per replica" \
	"$(pg_psql -c "SELECT string_agg(use_count::text, ',' ORDER BY use_count) FROM apikey.usage WHERE key_id = '$id'")" "4,5"
like "…and the last use" "$(ctl a show "$id")" "last used: +20[0-9-]+T"

check "PostgreSQL stopped" pg_stop
is "upstream down: the login on C still works from its replica" "$(pt login $U "$key" authenticate)" PAM_SUCCESS
check "PostgreSQL started" pg_start
for _ in $(seq 200); do [ "$(status_field c state)" = following ] && break; sleep 0.05; done
ctl a revoke "$id" >/dev/null
for _ in $(seq 100); do [ "$(replica_seq c)" = "$(replica_seq a)" ] && break; sleep 0.05; done
is "revoked on A: the next login on C is refused" "$(pt login $U "$key" authenticate)" PAM_AUTH_ERR
like "…as REVOKED in the module's log" "$(pt_log)" "REVOKED"
# the fleet's audit log: the writer's revoke (on A) and C's refused login, read from any host
for _ in $(seq 50); do
	log=$(ctl b log --key "$id" 2>&1)
	[[ "$log" == *REVOKED* ]] && break
	sleep 0.1
done
like "apikeyctl log on B shows the revoke made on A's CLI" "$log" "revoked +$id +- +cli on "
like "…and the refused PAM login on C (shipped by C's follower)" "$log" "failed +$id +REVOKED +pam:login"
no_secret_logged
done_testing

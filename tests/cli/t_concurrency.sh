#!/usr/bin/env bash
# t_concurrency.sh — 8 processes creating keys while another verifies in a
# loop: every key is there afterwards, and no "busy"/"locked" reaches a user.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/cli-lib.sh"

WRITERS=8 PER=${CLI_CONC_PER:-25}
db=$(new_db conc)
vkey=$("$APIKEYCTL" --db "$db" create --owner watcher --scopes docs:read --rate-limit 1000000)
mkdir -p "$T_TMP/w"

# The verifier: until the writers are done, verify and record each answer.
(
	while [ ! -e "$T_TMP/w/done" ]; do
		printf '%s' "$vkey" | "$APIKEYCTL" --db "$db" verify --scope docs:read 2>>"$T_TMP/w/verify.err"
		echo "rc=$?"
	done >"$T_TMP/w/verify.out"
) &
vpid=$!
at_exit "kill $vpid"

pids=()
for w in $(seq "$WRITERS"); do
	(
		for i in $(seq "$PER"); do
			"$APIKEYCTL" --db "$db" create --owner "writer$w" --name "k$i" --scopes docs:read \
				>>"$T_TMP/w/keys.$w" 2>>"$T_TMP/w/create.err" || echo "fail $i" >>"$T_TMP/w/fail.$w"
		done
	) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
touch "$T_TMP/w/done"
wait "$vpid"

is "every create succeeded" "$(cat "$T_TMP"/w/fail.* 2>/dev/null | wc -l)" 0
is "no create printed an error" "$(wc -l <"$T_TMP/w/create.err") $(head -1 "$T_TMP/w/create.err")" "0 "
is "every key printed once" "$(cat "$T_TMP"/w/keys.* | sort -u | wc -l)" $((WRITERS * PER))
is "every key is in the store" "$(key_count "$db")" $((WRITERS * PER + 1))
is "each writer's keys are there" \
	"$("$APIKEYCTL" --db "$db" list --json | jq_py "sorted(set(sum(1 for k in j if k['owner'] == 'writer%d' % w) for w in range(1, $WRITERS + 1)))")" \
	"[$PER]"
n=$(grep -c '^VALID$' "$T_TMP/w/verify.out")
[ "$n" -gt 0 ] && ok "the verifier ran during the writes ($n answers)" || nok "the verifier never answered"
is "the verifier only ever saw VALID" "$(grep -v '^rc=' "$T_TMP/w/verify.out" | sort -u)" VALID
is "... and exit 0" "$(grep '^rc=' "$T_TMP/w/verify.out" | sort -u)" rc=0
is "no busy/locked error reached a user" "$(cat "$T_TMP"/w/*.err | grep -ciE 'busy|locked')" 0
is "the verifier's uses are all counted" \
	"$("$APIKEYCTL" --db "$db" show "$(key_id "$db" 0)" --json | jq_py "j['use_count']")" "$n"
# every issued key verifies (a sample from each writer)
bad=0
for w in $(seq "$WRITERS"); do
	k=$(tail -1 "$T_TMP/w/keys.$w")
	[ "$(printf '%s' "$k" | "$APIKEYCTL" --db "$db" verify)" = VALID ] || bad=$((bad + 1))
done
is "a key of each writer verifies" "$bad" 0
run --db "$db" db check
is "the store is intact afterwards" "$RC" 0

done_testing

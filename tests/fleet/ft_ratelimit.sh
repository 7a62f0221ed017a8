#!/usr/bin/env bash
# ft_ratelimit.sh — one key's rate limit holds across hosts.  One key (600
# per minute) hammered through three apikeyd hosts at ten times its limit,
# split 60/30/10 % between them, for RL_SECS (20) seconds: the hosts
# together accept at most 1.1 times what one GCRA accepts for the same
# arrivals (the stated bound, docs/design/fleet.md §12), and at least 0.9
# times (a limit that refuses everything fails too).  Every refusal is a 429
# with Retry-After.  With the upstream away each host limits alone to its
# share, and nothing is charged afterwards.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"
SECS=${RL_SECS:-20}

check "fleet initialised" fleet_init
fleet_host b
fleet_host c
for h in a b c; do check "host ${h^^} follows" fleet_start $h; done
key=$(ctl a create --owner alice --scopes api:read --rate-limit 600)
for h in b c; do wait_auth $h "$key" 200 >/dev/null; done
sleep 5.5   # every host's heartbeat has been seen: H = 3
# the probes above took a few tokens: a fresh key for the run
key=$(ctl a create --owner alice --scopes api:read --rate-limit 600)
for h in b c; do for _ in $(seq 100); do [ "$(replica_seq $h)" = "$(replica_seq a)" ] && break; sleep 0.05; done; done
out=$(python3 "$TOP/tests/fleet/ratehammer.py" "$key" 600 "$SECS" "$PORT_a:60" "$PORT_b:30" "$PORT_c:10")
echo "# $out"
ratio=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ratio"])' "$out")
check "three hosts at 10x a 600/min key for ${SECS} s: accepted <= 1.1x one GCRA (got ${ratio}x)" \
	python3 -c "import sys; sys.exit(not $ratio <= 1.1)"
check "…and >= 0.9x (the limit is not just refusing)" python3 -c "import sys; sys.exit(not $ratio >= 0.9)"
is "…every refusal was a 429 with Retry-After" \
	"$(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(o["other"], o["refused_without_retry_after"])' "$out")" "0 0"
like "/metrics: lease rounds and credit" "$(curl -s "http://127.0.0.1:$PORT_a/metrics")" \
	"apikeyd_fleet_rate_rounds_total [1-9]"

# the upstream away: each host alone, limited to its share (600/3 per minute)
key2=$(ctl a create --owner alice --scopes api:read --rate-limit 600)
for h in b c; do wait_auth $h "$key2" 200 >/dev/null; done
check "PostgreSQL stopped" pg_stop
for _ in $(seq 100); do [ "$(status_field a state)" = down ] && break; sleep 0.05; done
out=$(python3 "$TOP/tests/fleet/ratehammer.py" "$key2" 600 3 "$PORT_a:200")
acc=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["accepted"])' "$out")
check "upstream away: one host alone admits about its share (${acc} of 600 tried, share 200 + 10/s)" \
	python3 -c "import sys; sys.exit(not 150 <= $acc <= 260)"
check "PostgreSQL started" pg_start
done_testing

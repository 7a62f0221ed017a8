#!/usr/bin/env bash
# ft_ratelimit.sh — one key's rate limit holds across hosts.  One key (600
# per minute) hammered through three apikeyd hosts at ten times its limit,
# split 60/30/10 % between them, for RL_SECS (20) seconds: the hosts
# together accept at most 1.1 times what one GCRA accepts for the same
# arrivals (the stated bound, docs/design/fleet.md §12), and at least 0.9
# times (a limit that refuses everything fails too).  Every refusal is a 429
# with Retry-After.  A small limit (60/min) lets a quick burst through on
# any host, as one GCRA would, and still holds across the hosts.  With the
# upstream away each host limits alone to its share, and nothing is charged
# afterwards.
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

# a 60/min key, idle, then quick bursts: one GCRA admits a minute's worth
# at once; the fleet must not refuse the second request while its first
# lease is on its way (credit c = min(5, L/H) for a small limit)
burst() {  # HOST KEY N: N requests 2 ms apart on one connection; the codes
	python3 - "$@" <<-'EOF'
	import http.client, os, sys, time
	port, key, n = int(os.environ["PORT_" + sys.argv[1]]), sys.argv[2], int(sys.argv[3])
	c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
	codes = []
	for _ in range(n):
	    c.request("GET", "/auth", headers={"Authorization": "Bearer " + key})
	    r = c.getresponse(); r.read(); codes.append(r.status)
	    time.sleep(0.002)
	print(" ".join(map(str, codes)))
	EOF
}
key60=$(ctl a create --owner alice --scopes api:read --rate-limit 60)
for h in b c; do wait_auth $h "$key60" 200 >/dev/null; done
sleep 1.5   # the probes' tokens given back
is "a 60/min key, idle: 10 quick requests on B are all admitted" "$(burst b "$key60" 10)" "$(printf '200 %.0s' $(seq 10) | sed 's/ $//')"
is "…and 10 more on C" "$(burst c "$key60" 10)" "$(printf '200 %.0s' $(seq 10) | sed 's/ $//')"
sleep 1.5   # what B and C hold and did not spend given back
codes=$(burst a "$key60" 100)
acc=$(( 22 + $(tr ' ' '\n' <<<"$codes" | grep -c '^200$') ))
check "…then 100 more on A: the fleet admitted ${acc} in all (one GCRA: 60 + about 1 a second; bound 60 + 3 hosts x 5 credit)" \
	python3 -c "import sys; sys.exit(not 55 <= $acc <= 80)"

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

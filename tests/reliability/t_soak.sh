#!/usr/bin/env bash
# t_soak.sh — apikeyd at full load for SOAK_SECS (default 600): wrk at full
# speed over 16 kept-alive connections with a day's mix of requests
# (mix.lua), new connections all the time with one hostile request in ten
# (churn.py), and a writer creating and revoking a key every 5 s.  RSS and
# open descriptors are sampled every 10 s: after the first minute RSS stays
# within ±10 % of its level in the second minute, descriptors come back to
# where they started; every revocation holds from the next request; the
# daemon answers everything and exits 0 on SIGTERM.  RSS leaves out the
# host's rate-limit table, which is bounded by its size instead.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../sidecar/lib_sidecar.sh"
for t in wrk python3; do command -v $t >/dev/null || { skip "$t missing"; done_testing; exit 0; }; done
SECS=${SOAK_SECS:-600}
WARM=60                      # the first minute: caches and pools fill
[ "$SECS" -ge 180 ] || WARM=$((SECS / 3))

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
K=$(sc_key soak docs:read --rate-limit 1000000)
KC=$(sc_key churn docs:read --rate-limit 1000000)   # churn.py's own: wrk alone may use up K's limit
KREV=$(sc_key soak docs:read); "$APIKEYCTL" --db "$DB" revoke "$(sc_key_id soak)" >/dev/null
printf 'db=%s\naccess_log=/dev/null\n' "$DB" >"$T_TMP/apikey.conf"
sc_start -f "$T_TMP/apikey.conf" --threads 2 || { nok "apikeyd starts"; done_testing; exit 1; }
# RSS without the host's rate-limit table: <db>.rl (4 MB) is shared with
# every process on the host, and its pages are faulted into apikeyd's
# resident set as keys are charged (the kernel maps neighbouring cached
# pages too), up to the file's size: page cache, not the daemon's memory.
# That part is bounded separately below.
rl_rss() { awk -v f="$DB.rl" '/^[0-9a-f]+-[0-9a-f]+ / { m = ($6 == f) } m && /^Rss:/ { n += $2 } END { print n + 0 }' "/proc/$SC_PID/smaps"; }
rss() { echo $(( $(awk '/^VmRSS/ { print $2 }' "/proc/$SC_PID/status") - $(rl_rss) )); }
fds() { ls "/proc/$SC_PID/fd" | wc -l; }
fd0=$(fds)

KEY=$K REVOKED=$KREV wrk -t1 -c16 -d"${SECS}s" --timeout 5s -s "$TOP/tests/reliability/mix.lua" "$SC_URL" >"$T_TMP/wrk.out" 2>&1 &
wrk_pid=$!
python3 "$TOP/tests/reliability/churn.py" "$SC_PORT" "$KC" 40 "$((SECS - 5))" >"$T_TMP/churn.out" 2>"$T_TMP/churn.err" &
churn_pid=$!
# the writer: a new key, used, revoked, refused from the next request on
(
	end=$(( $(date +%s) + SECS - 5 ))
	while [ "$(date +%s)" -lt "$end" ]; do
		k=$("$APIKEYCTL" --db "$DB" create --owner writer --scopes docs:read --json |
			python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["key"], d["id"])')
		read -r key id <<<"$k"
		a=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "X-API-Key: $key" "$SC_URL/auth")
		"$APIKEYCTL" --db "$DB" revoke "$id" >/dev/null
		b=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "X-API-Key: $key" "$SC_URL/auth")
		echo "$a $b"
		sleep 5
	done
) >"$T_TMP/writer.out" 2>&1 &
writer_pid=$!

: >"$T_TMP/samples"
t=0
while kill -0 "$wrk_pid" 2>/dev/null; do
	sleep 10; t=$((t + 10))
	kill -0 "$SC_PID" 2>/dev/null || break
	echo "$t $(rss) $(fds) $(rl_rss)" >>"$T_TMP/samples"
done
wait "$wrk_pid"; wait "$churn_pid"; wait "$writer_pid"
curl -s -m 5 "$SC_URL/metrics" | grep -E '^apikeyd_(connections|accept|heads|deadline)' | sed 's/^/# metrics: /' >&2
sleep 2
fd1=$(fds)
sed 's/^/# sample (s, RSS kB without the rate-limit table, fds, its own RSS kB): /' "$T_TMP/samples" >&2
grep -E 'Socket|Latency|requests in|Non-2xx' "$T_TMP/wrk.out" | sed 's/^/# wrk: /' >&2

check "apikeyd ran through the soak" kill -0 "$SC_PID"
read -r verdict detail <<<"$(python3 - "$T_TMP/samples" "$WARM" <<'PY'
import statistics, sys
rows = [tuple(map(int, l.split()[:3])) for l in open(sys.argv[1]) if l.strip()]
warm = int(sys.argv[2])
ref = [r for t, r, f in rows if warm <= t < 2 * warm] or [rows[-1][1]]
ref = statistics.median(ref)
late = [r for t, r, f in rows if t >= warm]
lo, hi = min(late), max(late)
ok = lo >= 0.9 * ref and hi <= 1.1 * ref
print("yes" if ok else "no", "ref %d kB, after the first %d s %d..%d kB (%+.1f%% .. %+.1f%%), %d samples"
      % (ref, warm, lo, hi, 100.0 * (lo - ref) / ref, 100.0 * (hi - ref) / ref, len(rows)))
PY
)"
[ "$verdict" = yes ] && ok "RSS flat within ±10 % (the rate-limit table's pages aside): $detail" ||
	nok "RSS flat within ±10 % (the rate-limit table's pages aside): $detail"
rl_kb=$(( $(stat -c %s "$DB.rl") / 1024 ))
maxrl=$(awk '{ if ($4 > m) m = $4 } END { print m + 0 }' "$T_TMP/samples")
[ "$maxrl" -le "$rl_kb" ] && ok "the rate-limit table's resident pages within its size (at most $maxrl kB of $rl_kb)" ||
	nok "the rate-limit table's resident pages within its size (at most $maxrl kB of $rl_kb)"
maxfd=$(awk '{ if ($3 > m) m = $3 } END { print m + 0 }' "$T_TMP/samples")
[ "$maxfd" -le $((fd0 + 16 + 40)) ] && ok "descriptors bounded under load (at most $maxfd; $fd0 idle)" || nok "descriptors bounded under load (at most $maxfd; $fd0 idle)"
[ "$fd1" -le $((fd0 + 2)) ] && ok "descriptors back after the load ($fd0 → $fd1)" || nok "descriptors back after the load ($fd0 → $fd1)"
reqs=$(awk '/requests in/ { print $1 }' "$T_TMP/wrk.out")
like "wrk ran at full speed (${reqs:-?} requests in ${SECS} s)" "${reqs:-0}" '^[1-9][0-9]{4,}$'
errs=$(grep 'Socket errors' "$T_TMP/wrk.out")
[ -z "$errs" ] && ok "wrk saw no socket error or timeout" || nok "wrk saw no socket error or timeout ($errs)"
read -r _ sent _ answered _ unexpected <<<"$(cat "$T_TMP/churn.out")"
[ "${unexpected:-1}" = 0 ] && [ "${sent:-0}" -gt 0 ] \
	&& ok "new connections: $sent requests, every one answered as it must be (hostile ones refused, half ones cut)" \
	|| nok "new connections answered as they must be ($(cat "$T_TMP/churn.out"); $(head -n 3 "$T_TMP/churn.err" | tr '\n' ';'))"
n=$(wc -l <"$T_TMP/writer.out")
[ "$n" -gt 0 ] && ! grep -vq '^200 401$' "$T_TMP/writer.out" \
	&& ok "$n keys created, used (200) and revoked: each refused (401) from the next request" \
	|| nok "revocations hold during the soak: $(sort "$T_TMP/writer.out" | uniq -c | tr '\n' ';')"
check "no error in the daemon's log" bash -c "! grep -E 'Sanitizer|error:|Assertion' '$SC_LOG'"
sc_stop TERM
is "SIGTERM after the soak: exit 0" "$SC_RC" 0
done_testing

#!/usr/bin/env bash
# t_revoke.sh — consistency (SPEC §6): clients loop on /auth over keep-alive
# connections while apikeyd runs with 2 threads; once `apikeyctl revoke`
# (or rotate --grace 0, or account suspension, or an update that takes a
# scope away) returns, every request started after it is refused: zero
# successes after the change.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
sc_start --db "$DB" --threads 2 || { nok "apikeyd starts"; done_testing; exit 1; }

# hammer KEY OUT STOPFILE [SCOPE]: 4 keep-alive connections in turn (each
# request requiring SCOPE if given); one line per request: "<wall-clock
# start> <status>".
hammer() {
	python3 - "$SC_PORT" "$1" "$2" "$3" "${4:-}" <<'PY'
import http.client, os, sys, time
port, key, out, stop, scope = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
headers = {"X-API-Key": key}
if scope:
    headers["X-Required-Scope"] = scope
conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(4)]
deadline = time.time() + 30
with open(out, "w") as f:
    i = 0
    while not os.path.exists(stop) and time.time() < deadline:
        c = conns[i % 4]; i += 1
        t = time.time()
        try:
            c.request("GET", "/auth", headers=headers)
            r = c.getresponse(); r.read(); st = r.status
        except Exception as e:
            st = "err"; c.close()
        f.write("%.6f %s\n" % (t, st))
PY
}

# change DESC WANT-STATUS KEY COMMAND...: run the change while a client
# hammers ($SCOPE, if set, is required by every request).
change() {
	local desc=$1 want=$2 key=$3; shift 3
	local out="$T_TMP/hammer.$RANDOM" stop="$T_TMP/stop.$RANDOM" pid t_done
	hammer "$key" "$out" "$stop" "${SCOPE:-}" &
	pid=$!
	sleep 0.7
	"$@" >/dev/null || echo "not ok 0 - $desc: the command failed"
	t_done=$(date +%s.%N)
	sleep 0.7
	touch "$stop"; wait "$pid"
	python3 - "$out" "$t_done" "$want" "$desc" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
t_done, want, desc = float(sys.argv[2]), sys.argv[3], sys.argv[4]
before = [s for t, s in rows if float(t) < t_done]
after = [s for t, s in rows if float(t) > t_done]
ok_before = before.count("200")
bad_after = [s for s in after if s != want]
print("%s %d - %s: %d requests before (%d allowed), %d after, %d of them not %s%s" % (
    "ok" if ok_before > 0 and len(after) > 20 and not bad_after else "not ok", 0, desc,
    len(before), ok_before, len(after), len(bad_after), want,
    "" if not bad_after else " (" + ",".join(sorted(set(bad_after))) + ")"))
PY
}
# TAP numbering: the python line prints "ok 0 - …": renumber through ok/nok.
report() { local l; while read -r l; do
	case $l in "ok 0 - "*) ok "${l#ok 0 - }";; "not ok 0 - "*) nok "${l#not ok 0 - }";; *) echo "# $l";; esac
done; }

K1=$(sc_key alice docs:read --rate-limit 1000000); ID1=$(sc_key_id alice)
report < <(change "revoke" 401 "$K1" "$APIKEYCTL" --db "$DB" revoke "$ID1")

K2=$(sc_key bob docs:read --rate-limit 1000000); ID2=$(sc_key_id bob)
report < <(change "rotate --grace 0" 401 "$K2" "$APIKEYCTL" --db "$DB" rotate "$ID2" --grace 0)

K3=$(sc_key carol docs:read --rate-limit 1000000)
"$APIKEYCTL" --db "$DB" account set carol --plan pro --active yes >/dev/null
report < <(change "account suspension" 403 "$K3" "$APIKEYCTL" --db "$DB" account set carol --active no)

K4=$(sc_key dave docs:read,docs:write --rate-limit 1000000); ID4=$(sc_key_id dave)
report < <(SCOPE=docs:write change "update takes a scope away" 403 "$K4" \
	"$APIKEYCTL" --db "$DB" update "$ID4" --scopes docs:read)

like "the cache was cleared on changes" "$(curl -s -m 5 "$SC_URL/metrics")" 'apikeyd_cache_clears_total [1-9]'
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0
done_testing

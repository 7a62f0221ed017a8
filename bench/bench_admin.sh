#!/usr/bin/env bash
# bench_admin.sh — does the admin API disturb the request path (issue 10)?
# apikeyd (admin_api=yes, one worker thread, 10k keys) under wrk on /auth,
# in interleaved rounds: idle, then while a client creates keys through
# POST /v1/keys at 50 writes/s (each a synced commit on the writer thread).
# Target: /auth throughput while writing >= 0.95x idle.  Also reported:
# the admin create latency (p50, p99) seen by that client.
set -u
: "${TOP:?}" "${BUILD:?}"
APIKEYCTL=${APIKEYCTL:-$BUILD/apikeyctl} APIKEYD=${APIKEYD:-$BUILD/apikeyd} FILL=${APIKEY_FILL:-$BUILD/bench/apikey-fill}
rounds=${BENCH_ROUNDS:-4} secs=${BENCH_SECS:-5} conns=${BENCH_CONNS:-32} rate=${BENCH_ADMIN_RATE:-50}
for t in wrk curl python3; do command -v $t >/dev/null || { echo "bench_admin: $t missing, skipped"; exit 0; }; done
for f in "$APIKEYD" "$APIKEYCTL" "$FILL"; do [ -x "$f" ] || { echo "bench_admin: $f not built, skipped"; exit 0; }; done
tmp=$(mktemp -d); pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db=$tmp/keys.db
"$APIKEYCTL" --db "$db" init >/dev/null && "$FILL" "$db" 10000 >/dev/null || exit 1
key=$("$APIKEYCTL" --db "$db" create --owner bench --scopes bench:read --rate-limit 1000000)
admin=$("$APIKEYCTL" --db "$db" create --owner root --scopes apikey:admin --rate-limit 1000000)
printf 'admin_api=yes\n' >"$tmp/apikey.conf"
"$APIKEYD" -f "$tmp/apikey.conf" --db "$db" --threads 1 --listen "127.0.0.1:$port" 2>"$tmp/apikeyd.log" & pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
url="http://127.0.0.1:$port/auth"

# writes SECONDS OUT: POST /v1/keys at $rate/s on one keep-alive connection; one latency (ms) a line
writes() {
	python3 - "$port" "$admin" "$rate" "$1" "$2" <<'PY'
import http.client, json, sys, time
port, admin, rate, secs, out = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
body = json.dumps({"owner": "bench-admin", "scopes": ["bench:read"]})
t0 = time.time(); n = 0
with open(out, "w") as f:
    while time.time() - t0 < secs:
        wait = t0 + n / rate - time.time()
        if wait > 0:
            time.sleep(wait)
        s = time.time()
        c.request("POST", "/v1/keys", body=body, headers={"Authorization": "Bearer " + admin})
        r = c.getresponse(); r.read()
        f.write("%.3f %d\n" % ((time.time() - s) * 1000, r.status)); n += 1
PY
}
rps() { wrk -t1 -c"$conns" -d"${secs}s" -H "X-API-Key: $key" "$url" | awk '/Requests\/sec/ { printf "%.0f\n", $2 }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "apikeyd --threads 1 (admin_api=yes, 10k keys): /auth idle vs while POST /v1/keys runs at $rate/s;"
echo "wrk -t1 -c$conns -d${secs}s, $rounds interleaved rounds; $(nproc) CPUs"
wrk -t1 -c"$conns" -d1s -H "X-API-Key: $key" "$url" >/dev/null
: >"$tmp/ratio"; : >"$tmp/lat"
for r in $(seq "$rounds"); do
	idle=$(rps)
	writes "$((secs + 1))" "$tmp/w.$r" & wp=$!
	sleep 0.5
	busy=$(rps)
	wait "$wp"
	cat "$tmp/w.$r" >>"$tmp/lat"
	ratio=$(python3 -c "print('%.3f' % ($busy / $idle))")
	echo "$ratio" >>"$tmp/ratio"
	printf '  round %d: idle %7s req/s | with %s admin writes/s %7s req/s (%d writes, statuses %s) | ratio %s\n' "$r" "$idle" "$rate" \
		"$busy" "$(wc -l <"$tmp/w.$r")" "$(cut -d' ' -f2 "$tmp/w.$r" | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')" "$ratio"
done
echo "  median ratio: $(median <"$tmp/ratio")x (target >= 0.95)"
cut -d' ' -f1 "$tmp/lat" | sort -g | awk '{ a[NR] = $1 } END { printf "  admin create latency over %d writes: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", NR, a[int(NR * 0.5) + 1], a[int(NR * 0.99) + 1], a[NR] }'

#!/usr/bin/env bash
# bench_sidecar.sh — apikeyd against baselines measured in the same run:
#  1. wrk on /auth (valid key, 100k keys in the store) vs a bare libevent
#     server that only answers 200, one worker thread each, interleaved
#     rounds; servers pinned to CPU 0 and wrk to CPU 1 (when there are two);
#     the same with a key revoked every second (each revocation empties the
#     verified-key cache); the floor: the bare server sending what /auth's 200
#     must (its headers), verifying nothing; apikeyd with
#     ratelimit_draft_headers=yes;
#  2. nginx auth_request → apikeyd vs nginx → upstream directly;
#  3. apikeyd's RSS with 1M keys in the store, after some load.
# Targets (issue 13): ≥ 0.90× bare throughput, p99 ≤ 1.25×, also with
# revocations; nginx ≥ 0.90×; RSS ≤ 32 MB (issue 4).
set -u
: "${TOP:?}" "${BUILD:?}"
APIKEYCTL=${APIKEYCTL:-$BUILD/apikeyctl} APIKEYD=${APIKEYD:-$BUILD/apikeyd}
FILL=${APIKEY_FILL:-$BUILD/bench/apikey-fill} BARE=$BUILD/bench/bare-http
dir=${BENCH_DIR:-$BUILD/bench/data}
rounds=${BENCH_ROUNDS:-4} secs=${BENCH_SECS:-5} conns=${BENCH_CONNS:-64}
# One core for the servers, the other for wrk (issue 13's setup), when there are two.
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then SRV="taskset -c 0" CLI="taskset -c 1"; else SRV="" CLI=""; fi
for t in wrk curl python3; do command -v $t >/dev/null || { echo "bench_sidecar: $t missing, skipped"; exit 0; }; done
for f in "$APIKEYD" "$APIKEYCTL" "$FILL" "$BARE"; do [ -x "$f" ] || { echo "bench_sidecar: $f not built, skipped"; exit 0; }; done
mkdir -p "$dir"
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; sleep 0.3; for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "bench_sidecar: $1 did not come up"; exit 1; }
# filled DB of N keys (cached under $dir, shared with bench-core), plus one
# fresh key for this run (printed)
filled() {
	local db="$dir/bench-$1.db"
	if [ ! -f "$db" ]; then
		echo "(filling $db with $1 keys, once)" >&2
		"$APIKEYCTL" --db "$db" init >/dev/null && "$FILL" "$db" "$1" >/dev/null || exit 1
	fi
	"$APIKEYCTL" --db "$db" create --owner bench --scopes bench:read --rate-limit 1000000
}
# cpu_ticks PID: user + system clock ticks the process used so far
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# wrk_run PID URL [wrk args]: prints "<req/s> <p99 ms> <server CPU µs per request>".
# CPU per request is what the load of the other helpers on this shared
# machine disturbs least: throughput of a saturated server is its inverse.
wrk_run() {
	local pid=$1 url=$2 c0 c1; shift 2
	c0=$(cpu_ticks "$pid")
	$CLI wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" "$url" >"$tmp/wrk.out"
	c1=$(cpu_ticks "$pid")
	awk -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
		/requests in/ { n = $1 }
		/Requests\/sec/ { rps = $2 }
		$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } p99 = v }
		END { printf "%.0f %.3f %.1f\n", rps, p99, n ? ticks * 1e6 / hz / n : 0 }' "$tmp/wrk.out"
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

# ---- 1. /auth vs bare libevent ------------------------------------------------
key=$(filled 100000)
db100k="$dir/bench-100000.db"
# /auth with 8 keys in turn: one key's limit (at most 1,000,000 a minute,
# ~16,700 a second) is below what one worker serves, and a 429 is not the
# path measured.  Every arm runs the same wrk script (the bare servers
# ignore the header).
keys=("$key"); for _ in 1 2 3 4 5 6 7; do keys+=("$(filled 100000)"); done
lua=$tmp/auth-keys.lua
{ echo 'local keys = {'; printf '  "%s",\n' "${keys[@]}"; echo '}'
  echo 'local n = 0'
  echo 'request = function() n = n + 1; return wrk.format(nil, nil, { ["X-API-Key"] = keys[n % #keys + 1] }) end'; } >"$lua"
pa=$(port); pb=$(port); pf=$(port); pd=$(port)
printf 'ratelimit_draft_headers=yes\n' >"$tmp/draft.conf"
$SRV "$APIKEYD" --db "$db100k" --threads 1 --listen "127.0.0.1:$pa" 2>"$tmp/apikeyd.log" & pida=$!; pids+=($pida)
$SRV "$BARE" "$pb" & pidb=$!; pids+=($pidb)
$SRV "$BARE" "$pf" auth & pidf=$!; pids+=($pidf)
$SRV "$APIKEYD" -f "$tmp/draft.conf" --db "$db100k" --threads 1 --listen "127.0.0.1:$pd" 2>"$tmp/apikeyd-d.log" & pidd=$!; pids+=($pidd)
wait_up "http://127.0.0.1:$pa/healthz"; wait_up "http://127.0.0.1:$pb/"; wait_up "http://127.0.0.1:$pf/"
wait_up "http://127.0.0.1:$pd/healthz"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $key" "http://127.0.0.1:$pa/auth")" = 200 ] || { echo "bench_sidecar: key not valid"; exit 1; }
echo "apikeyd --threads 1 /auth (8 valid keys in turn, 100k keys) vs bare-http (libevent, 200 only); wrk -t1 -c$conns -d${secs}s, $rounds interleaved rounds${SRV:+, servers on CPU 0, wrk on CPU 1}"
for u in "http://127.0.0.1:$pa/auth" "http://127.0.0.1:$pd/auth" "http://127.0.0.1:$pb/"; do
	$CLI wrk -t1 -c"$conns" -d1s -s "$lua" "$u" >/dev/null; done
# revoker: a throwaway key made and revoked every second (each revoke empties the cache)
revoker() { while [ ! -e "$tmp/stop-revoker" ]; do
	k=$("$APIKEYCTL" --db "$db100k" create --owner churn --scopes bench:read) || break
	id=$("$APIKEYCTL" --db "$db100k" list --json | python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["owner"] == "churn"][-1])')
	"$APIKEYCTL" --db "$db100k" revoke "$id" >/dev/null; sleep 1; done; }
for f in a b r f d ra rb; do : >"$tmp/$f"; done
for r in $(seq "$rounds"); do
	a=$(wrk_run "$pida" "http://127.0.0.1:$pa/auth" -s "$lua"); echo "$a" >>"$tmp/a"
	b=$(wrk_run "$pidb" "http://127.0.0.1:$pb/" -s "$lua"); echo "$b" >>"$tmp/b"
	f=$(wrk_run "$pidf" "http://127.0.0.1:$pf/" -s "$lua"); echo "$f" >>"$tmp/f"
	d=$(wrk_run "$pidd" "http://127.0.0.1:$pd/auth" -s "$lua"); echo "$d" >>"$tmp/d"
	rm -f "$tmp/stop-revoker"; revoker & rpid=$!
	ra=$(wrk_run "$pida" "http://127.0.0.1:$pa/auth" -s "$lua"); echo "$ra" >>"$tmp/ra"
	rb=$(wrk_run "$pidb" "http://127.0.0.1:$pb/" -s "$lua"); echo "$rb" >>"$tmp/rb"
	touch "$tmp/stop-revoker"; wait "$rpid"
	set -- $a $b $f $d
	printf '  round %d: apikeyd %6s req/s p99 %6s ms %5s µs CPU | bare %6s p99 %6s %5s | floor %6s | draft %6s | ratio %s, floor %s, draft %s\n' \
		"$r" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "${10}" "$(ratio "$1" "$4")" "$(ratio "$7" "$4")" "$(ratio "${10}" "$4")"
	echo "$(ratio "$1" "$4") $(ratio "$2" "$5") $(ratio "$7" "$4") $(ratio "${10}" "$4") $(ratio "${ra%% *}" "${rb%% *}") $(ratio "$(echo "$ra" | cut -d' ' -f2)" "$(echo "$rb" | cut -d' ' -f2)")" >>"$tmp/r"
done
m() { cut -d' ' -f"$1" "$tmp/$2" | median; }
echo "  median: apikeyd $(m 1 a) req/s, p99 $(m 2 a) ms, $(m 3 a) µs CPU/req; bare $(m 1 b) req/s, p99 $(m 2 b) ms, $(m 3 b) µs CPU/req"
echo "  throughput ratio $(ratio "$(m 1 a)" "$(m 1 b)")x (median of per-round ratios $(m 1 r)x; target >= 0.90)"
echo "  p99 ratio $(ratio "$(m 2 a)" "$(m 2 b)")x (median of per-round ratios $(m 2 r)x; target <= 1.25)"
echo "  CPU per request: bare/apikeyd = $(ratio "$(m 3 b)" "$(m 3 a)")x (the throughput ratio of a saturated server, insensitive to load from other processes)"
echo "  with a key revoked every second: throughput ratio $(m 5 r)x, p99 ratio $(m 6 r)x (medians of per-round ratios)"
echo "  floor (bare-http sending /auth's headers, no verification): $(m 1 f) req/s, $(m 3 f) µs CPU/req: $(m 3 r)x of bare"
echo "  ratelimit_draft_headers=yes (RateLimit + RateLimit-Policy): $(m 1 d) req/s, $(m 3 d) µs CPU/req: $(m 4 r)x of bare"
curl -s "http://127.0.0.1:$pa/metrics" | grep -E '^apikeyd_(cache_(hits|misses)_total|requests_total\{endpoint="/auth")' | sed 's/^/  /'
kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; pids=()

# ---- 2. nginx auth_request → apikeyd vs nginx auth_request → bare libevent -------
# examples/nginx.conf itself (1 worker, keep-alive to the auth server and to
# an upstream return-200 server block in the same nginx), twice: its auth
# upstream apikeyd in one, bare-http in the other (issue 13's baseline).
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# nginx_conf DIR NGINX-PORT AUTH-PORT APP-PORT: the example with those ports
nginx_conf() {
	local ng=$1 pn=$2 pa=$3 pu=$4
	mkdir -p "$ng/tmp"
	{
		[ "$(id -u)" = 0 ] && echo "user root;"
		sed -e "s|127\.0\.0\.1:8790|127.0.0.1:$pa|" -e "s|127\.0\.0\.1:8000|127.0.0.1:$pu|" \
		    -e "s|127\.0\.0\.1:8080|127.0.0.1:$pn|" -e "s|^pid .*|pid $ng/nginx.pid;|" \
		    -e "s|^error_log .*|error_log $ng/error.log;|" -e "s|^worker_processes .*|worker_processes 1;|" \
		    -e "s|\"docs:read\"|\"bench:read\"|" \
		    -e "s|access_log /var/log/nginx/access.log;|access_log off;\n\tclient_body_temp_path $ng/tmp/body;\n\tproxy_temp_path $ng/tmp/proxy;\n\tfastcgi_temp_path $ng/tmp/fastcgi;\n\tuwsgi_temp_path $ng/tmp/uwsgi;\n\tscgi_temp_path $ng/tmp/scgi;\n\tserver { listen 127.0.0.1:$pu; location / { return 200; } }|" \
		    "$TOP/examples/nginx.conf"
	} >"$ng/nginx.conf"
}
if [ -x "$NGINX" ]; then
	pa=$(port); pb=$(port); pn=$(port); pm=$(port); pu=$(port); pv=$(port)
	printf 'db=%s\nauth_error_body=no\n' "$dir/bench-100000.db" >"$tmp/apikey.conf"
	$SRV "$APIKEYD" -f "$tmp/apikey.conf" --threads 1 --listen "127.0.0.1:$pa" 2>"$tmp/apikeyd2.log" & pida=$!; pids+=($pida)
	$SRV "$BARE" "$pb" & pidb=$!; pids+=($pidb)
	nginx_conf "$tmp/ng-a" "$pn" "$pa" "$pu"; nginx_conf "$tmp/ng-b" "$pm" "$pb" "$pv"
	$SRV "$NGINX" -p "$tmp/ng-a/" -c "$tmp/ng-a/nginx.conf" -e "$tmp/ng-a/error.log" -g 'daemon off;' & pidn=$!; pids+=($pidn)
	$SRV "$NGINX" -p "$tmp/ng-b/" -c "$tmp/ng-b/nginx.conf" -e "$tmp/ng-b/error.log" -g 'daemon off;' & pidm=$!; pids+=($pidm)
	wait_up "http://127.0.0.1:$pa/healthz"; wait_up "http://127.0.0.1:$pn/x"; wait_up "http://127.0.0.1:$pm/x"
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $key" "http://127.0.0.1:$pn/x")
	echo
	echo "nginx (1 worker) auth_request → apikeyd --threads 1 vs the same nginx auth_request → bare-http; wrk -t1 -c$conns -d${secs}s, $rounds rounds (check: $code)"
	: >"$tmp/a"; : >"$tmp/b"; : >"$tmp/r"
	for r in $(seq "$rounds"); do
		a=$(wrk_run "$pidn" "http://127.0.0.1:$pn/x" -s "$lua"); echo "$a" >>"$tmp/a"
		b=$(wrk_run "$pidm" "http://127.0.0.1:$pm/x" -s "$lua"); echo "$b" >>"$tmp/b"
		set -- $a $b
		printf '  round %d: → apikeyd %6s req/s p99 %6s ms | → bare %6s req/s p99 %6s ms | ratio %s\n' "$r" "$1" "$2" "$4" "$5" "$(ratio "$1" "$4")"
		echo "$(ratio "$1" "$4")" >>"$tmp/r"
	done
	ar=$(cut -d' ' -f1 "$tmp/a" | median); br=$(cut -d' ' -f1 "$tmp/b" | median)
	echo "  median: → apikeyd $ar req/s, → bare $br req/s: ratio $(ratio "$ar" "$br")x (median of per-round ratios $(median <"$tmp/r")x; target >= 0.90)"
	kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; pids=()
else
	echo "nginx not installed: nginx benchmark skipped"
fi

# ---- 2b. one limit for three apikeyd processes ---------------------------------
# Three apikeyd on one store, one key at 60,000/min (one a ms, burst 60,000),
# each hammered by its own wrk for the same seconds: the 200s of the three
# together against what one GCRA admits over the same window.
key3=$("$APIKEYCTL" --db "$db100k" create --owner three --scopes bench:read --rate-limit 60000)
ps3=(); p3=()
for i in 1 2 3; do
	p=$(port); p3+=("$p")
	"$APIKEYD" --db "$db100k" --threads 1 --listen "127.0.0.1:$p" 2>"$tmp/apikeyd3$i.log" & ps3+=($!); pids+=($!)
done
for p in "${p3[@]}"; do wait_up "http://127.0.0.1:$p/healthz"; done
t0=$(date +%s.%N)
w3=()
for i in 0 1 2; do
	wrk -t1 -c8 -d"${secs}s" -H "X-API-Key: $key3" "http://127.0.0.1:${p3[$i]}/auth" >"$tmp/wrk3$i.out" &
	w3+=($!)
done
wait "${w3[@]}"      # the wrk runs only: the three apikeyd are this shell's jobs too
t1=$(date +%s.%N)
python3 - "$tmp" "$t0" "$t1" <<'PY'
import re, sys
tmp, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
ok = total = 0
for i in range(3):
    out = open("%s/wrk3%d.out" % (tmp, i)).read()
    n = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total += n; ok += n - (int(bad.group(1)) if bad else 0)
window_ms = (t1 - t0) * 1000
bound = 60000 + int(window_ms) + 1
print("\nthree apikeyd processes on one store, one key at 60,000/min, each hammered %.1f s: %d requests, "
      "%d admitted; one GCRA over the whole window admits at most %d: %.4fx" % (window_ms / 1000, total, ok, bound, ok / bound))
PY
kill "${ps3[@]}" 2>/dev/null; wait "${ps3[@]}" 2>/dev/null

# ---- 3. RSS with 1M keys -------------------------------------------------------
key=$(filled 1000000)
pa=$(port)
"$APIKEYD" --db "$dir/bench-1000000.db" --listen "127.0.0.1:$pa" 2>"$tmp/apikeyd3.log" & pid=$!; pids+=($pid)
wait_up "http://127.0.0.1:$pa/healthz"
# load: the valid key and 5000 well-formed unknown keys (each an index probe)
python3 - "$tmp/keys.lua" "$key" <<'PY'
import random, sys, zlib
chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def key():
    body = "ak_" + "".join(random.choice(chars) for _ in range(30))
    crc, out = zlib.crc32(body.encode()), ""
    for _ in range(6):
        out = chars[crc % 62] + out; crc //= 62
    return body + out
keys = [sys.argv[2]] + [key() for _ in range(5000)]
with open(sys.argv[1], "w") as f:
    f.write("keys = {" + ",".join('"%s"' % k for k in keys) + "}\nn = 0\n")
    f.write("request = function()\n  n = n + 1\n  return wrk.format(nil, '/auth', {['X-API-Key'] = keys[(n % #keys) + 1]})\nend\n")
PY
rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
wrk -t1 -c"$conns" -d"${secs}s" -s "$tmp/keys.lua" "http://127.0.0.1:$pa/auth" >/dev/null
wrk -t1 -c"$conns" -d"${secs}s" -H "X-API-Key: $key" "http://127.0.0.1:$pa/auth" >/dev/null
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status"); hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
echo
echo "apikeyd RSS, 1M keys in the store ($(du -m "$dir/bench-1000000.db" | cut -f1) MB), $(nproc) worker threads:"
echo "  at start $((rss0 / 1024)) MB; after ${secs}s of 5001 distinct keys + ${secs}s of one key: VmRSS $((rss / 1024)) MB, VmHWM $((hwm / 1024)) MB (target <= 32 MB)"

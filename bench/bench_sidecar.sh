#!/usr/bin/env bash
# bench_sidecar.sh — apikeyd against baselines measured in the same run:
#  1. wrk on /auth (valid key, 100k keys in the store) vs a bare libevent
#     server that only answers 200, one worker thread each, interleaved rounds;
#  2. nginx auth_request → apikeyd vs nginx → upstream directly;
#  3. apikeyd's RSS with 1M keys in the store, after some load.
# Targets (SPEC): ≥ 0.90× bare throughput, p99 ≤ 1.25×; nginx ≥ 0.5×; RSS ≤ 32 MB.
set -u
: "${TOP:?}" "${BUILD:?}"
APIKEYCTL=${APIKEYCTL:-$BUILD/apikeyctl} APIKEYD=${APIKEYD:-$BUILD/apikeyd}
FILL=${APIKEY_FILL:-$BUILD/bench/apikey-fill} BARE=$BUILD/bench/bare-http
dir=${BENCH_DIR:-$BUILD/bench/data}
rounds=${BENCH_ROUNDS:-4} secs=${BENCH_SECS:-5} conns=${BENCH_CONNS:-32}
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
	wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" "$url" >"$tmp/wrk.out"
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
pa=$(port); pb=$(port)
"$APIKEYD" --db "$dir/bench-100000.db" --threads 1 --listen "127.0.0.1:$pa" 2>"$tmp/apikeyd.log" & pida=$!; pids+=($pida)
"$BARE" "$pb" & pidb=$!; pids+=($pidb)
wait_up "http://127.0.0.1:$pa/healthz"; wait_up "http://127.0.0.1:$pb/"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $key" "http://127.0.0.1:$pa/auth")" = 200 ] || { echo "bench_sidecar: key not valid"; exit 1; }
echo "apikeyd --threads 1 /auth (valid key, 100k keys) vs bare-http (libevent, 200 only); wrk -t1 -c$conns -d${secs}s, $rounds interleaved rounds"
wrk -t1 -c"$conns" -d1s -H "X-API-Key: $key" "http://127.0.0.1:$pa/auth" >/dev/null
wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$pb/" >/dev/null
: >"$tmp/a"; : >"$tmp/b"; : >"$tmp/r"
for r in $(seq "$rounds"); do
	a=$(wrk_run "$pida" "http://127.0.0.1:$pa/auth" -H "X-API-Key: $key"); echo "$a" >>"$tmp/a"
	b=$(wrk_run "$pidb" "http://127.0.0.1:$pb/"); echo "$b" >>"$tmp/b"
	set -- $a $b
	printf '  round %d: apikeyd %6s req/s p99 %6s ms %5s µs CPU/req | bare %6s req/s p99 %6s ms %5s µs CPU/req | ratio %s\n' \
		"$r" "$1" "$2" "$3" "$4" "$5" "$6" "$(ratio "$1" "$4")"
	echo "$(ratio "$1" "$4") $(ratio "$2" "$5")" >>"$tmp/r"
done
ar=$(cut -d' ' -f1 "$tmp/a" | median); ap=$(cut -d' ' -f2 "$tmp/a" | median); ac=$(cut -d' ' -f3 "$tmp/a" | median)
br=$(cut -d' ' -f1 "$tmp/b" | median); bp=$(cut -d' ' -f2 "$tmp/b" | median); bc=$(cut -d' ' -f3 "$tmp/b" | median)
echo "  median: apikeyd $ar req/s, p99 $ap ms, $ac µs CPU/req; bare $br req/s, p99 $bp ms, $bc µs CPU/req"
echo "  throughput ratio $(ratio "$ar" "$br")x (median of per-round ratios $(cut -d' ' -f1 "$tmp/r" | median)x; target >= 0.90)"
echo "  p99 ratio $(ratio "$ap" "$bp")x (median of per-round ratios $(cut -d' ' -f2 "$tmp/r" | median)x; target <= 1.25)"
echo "  CPU per request: bare/apikeyd = $(ratio "$bc" "$ac")x (the throughput ratio of a saturated server, insensitive to load from other processes)"
curl -s "http://127.0.0.1:$pa/metrics" | grep -E '^apikeyd_(cache_(hits|misses)_total|requests_total\{endpoint="/auth")' | sed 's/^/  /'
kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; pids=()

# ---- 2. nginx auth_request → apikeyd vs nginx → upstream -----------------------
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ -x "$NGINX" ]; then
	pa=$(port); pn=$(port); pu=$(port); ng="$tmp/nginx"; mkdir -p "$ng/tmp"
	printf 'db=%s\nauth_error_body=no\n' "$dir/bench-100000.db" >"$tmp/apikey.conf"
	"$APIKEYD" -f "$tmp/apikey.conf" --threads 1 --listen "127.0.0.1:$pa" 2>"$tmp/apikeyd2.log" & pida=$!; pids+=($pida)
	{
		[ "$(id -u)" = 0 ] && echo "user root;"
		sed -e "s|127\.0\.0\.1:8790|127.0.0.1:$pa|" -e "s|127\.0\.0\.1:8000|127.0.0.1:$pu|" \
		    -e "s|127\.0\.0\.1:8080|127.0.0.1:$pn|" -e "s|^pid .*|pid $ng/nginx.pid;|" \
		    -e "s|^error_log .*|error_log $ng/error.log;|" -e "s|^worker_processes .*|worker_processes 1;|" \
		    -e "s|\"docs:read\"|\"bench:read\"|" \
		    -e "s|access_log /var/log/nginx/access.log;|access_log off;\n\tclient_body_temp_path $ng/tmp/body;\n\tproxy_temp_path $ng/tmp/proxy;\n\tfastcgi_temp_path $ng/tmp/fastcgi;\n\tuwsgi_temp_path $ng/tmp/uwsgi;\n\tscgi_temp_path $ng/tmp/scgi;\n\tserver { listen 127.0.0.1:$pu; location / { return 200 \"ok\\\\n\"; } }|" \
		    -e "s|^\t\tlocation = /_apikey {|\t\tlocation /direct/ {\n\t\t\tproxy_http_version 1.1;\n\t\t\tproxy_set_header Connection \"\";\n\t\t\tproxy_pass http://app;\n\t\t}\n\n&|" \
		    "$TOP/examples/nginx.conf"
	} >"$ng/nginx.conf"
	"$NGINX" -p "$ng/" -c "$ng/nginx.conf" -e "$ng/error.log" -g 'daemon off;' & pidn=$!; pids+=($pidn)
	wait_up "http://127.0.0.1:$pa/healthz"; wait_up "http://127.0.0.1:$pn/direct/"
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $key" "http://127.0.0.1:$pn/x")
	echo
	echo "nginx (1 worker) auth_request → apikeyd --threads 1 → upstream vs nginx → upstream; wrk -t1 -c$conns -d${secs}s, $rounds rounds (check: $code)"
	: >"$tmp/a"; : >"$tmp/b"; : >"$tmp/r"
	for r in $(seq "$rounds"); do
		a=$(wrk_run "$pidn" "http://127.0.0.1:$pn/x" -H "X-API-Key: $key"); echo "$a" >>"$tmp/a"
		b=$(wrk_run "$pidn" "http://127.0.0.1:$pn/direct/"); echo "$b" >>"$tmp/b"
		set -- $a $b
		printf '  round %d: with auth %6s req/s p99 %6s ms | direct %6s req/s p99 %6s ms | ratio %s\n' "$r" "$1" "$2" "$4" "$5" "$(ratio "$1" "$4")"
		echo "$(ratio "$1" "$4")" >>"$tmp/r"
	done
	ar=$(cut -d' ' -f1 "$tmp/a" | median); br=$(cut -d' ' -f1 "$tmp/b" | median)
	echo "  median: with auth $ar req/s, direct $br req/s: ratio $(ratio "$ar" "$br")x (median of per-round ratios $(median <"$tmp/r")x; target >= 0.5)"
	kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; pids=()
else
	echo "nginx not installed: nginx benchmark skipped"
fi

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

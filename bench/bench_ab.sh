#!/usr/bin/env bash
# bench_ab.sh — two apikeyd binaries on /auth in the same run: A (a
# baseline, e.g. main's) and B (this tree's), one worker thread each, the
# same store (100k keys), wrk rounds interleaved A, B, A, B…  Prints each
# round and the medians: throughput, p99, server CPU per request (what load
# from other processes on a shared machine disturbs least), and B/A.
#
#   BUILD=build TOP=. APIKEYD_A=/tmp/base/build/apikeyd bench/bench_ab.sh
#
# A baseline binary from another commit, without touching any worktree:
#   mkdir /tmp/base && git archive main | tar -x -C /tmp/base && make -C /tmp/base -j2 all
set -u
: "${TOP:?}" "${BUILD:?}" "${APIKEYD_A:?the baseline apikeyd}"
APIKEYCTL=${APIKEYCTL:-$BUILD/apikeyctl} APIKEYD_B=${APIKEYD_B:-$BUILD/apikeyd}
FILL=${APIKEY_FILL:-$BUILD/bench/apikey-fill}
dir=${BENCH_DIR:-$BUILD/bench/data}
rounds=${BENCH_ROUNDS:-6} secs=${BENCH_SECS:-5} conns=${BENCH_CONNS:-32}
for t in wrk curl python3; do command -v $t >/dev/null || { echo "bench_ab: $t missing"; exit 1; }; done
for f in "$APIKEYD_A" "$APIKEYD_B" "$APIKEYCTL" "$FILL"; do [ -x "$f" ] || { echo "bench_ab: $f not built"; exit 1; }; done
mkdir -p "$dir"
tmp=$(mktemp -d); pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "bench_ab: $1 did not come up"; exit 1; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
db="$dir/bench-100000.db"
if [ ! -f "$db" ]; then
	echo "(filling $db with 100000 keys, once)" >&2
	"$APIKEYCTL" --db "$db" init >/dev/null && "$FILL" "$db" 100000 >/dev/null || exit 1
fi
key=$("$APIKEYCTL" --db "$db" create --owner bench --scopes bench:read --rate-limit 1000000)
pa=$(port); pb=$(port)
"$APIKEYD_A" --db "$db" --threads 1 --listen "127.0.0.1:$pa" 2>"$tmp/a.log" & pida=$!; pids+=($pida)
"$APIKEYD_B" --db "$db" --threads 1 --listen "127.0.0.1:$pb" 2>"$tmp/b.log" & pidb=$!; pids+=($pidb)
wait_up "http://127.0.0.1:$pa/healthz"; wait_up "http://127.0.0.1:$pb/healthz"
run() {  # PID PORT → "req/s p99ms cpu_us_per_req"
	local c0 c1
	c0=$(cpu_ticks "$1")
	wrk -t1 -c"$conns" -d"${secs}s" --latency -H "X-API-Key: $key" "http://127.0.0.1:$2/auth" >"$tmp/w"
	c1=$(cpu_ticks "$1")
	awk -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
		/requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
		$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) sub(/ms$/, "", v); p = v }
		END { printf "%.0f %.3f %.2f\n", rps, p, n ? ticks * 1e6 / hz / n : 0 }' "$tmp/w"
}
echo "apikeyd A=$APIKEYD_A vs B=$APIKEYD_B: /auth, valid key, 100k keys, --threads 1, wrk -t1 -c$conns -d${secs}s, $rounds interleaved rounds"
wrk -t1 -c"$conns" -d1s -H "X-API-Key: $key" "http://127.0.0.1:$pa/auth" >/dev/null
wrk -t1 -c"$conns" -d1s -H "X-API-Key: $key" "http://127.0.0.1:$pb/auth" >/dev/null
: >"$tmp/a"; : >"$tmp/b"
for r in $(seq "$rounds"); do
	if [ $((r % 2)) = 1 ]; then a=$(run "$pida" "$pa"); b=$(run "$pidb" "$pb"); else b=$(run "$pidb" "$pb"); a=$(run "$pida" "$pa"); fi
	echo "$a" >>"$tmp/a"; echo "$b" >>"$tmp/b"
	printf '  round %d: A %s req/s p99 %s ms %s µs CPU/req | B %s req/s p99 %s ms %s µs CPU/req\n' "$r" $a $b
done
python3 - "$tmp/a" "$tmp/b" <<'PY'
import statistics, sys
a = [list(map(float, l.split())) for l in open(sys.argv[1])]
b = [list(map(float, l.split())) for l in open(sys.argv[2])]
m = lambda rows, i: statistics.median(r[i] for r in rows)
print("  median: A %.0f req/s, p99 %.3f ms, %.2f µs CPU/req; B %.0f req/s, p99 %.3f ms, %.2f µs CPU/req"
      % (m(a, 0), m(a, 1), m(a, 2), m(b, 0), m(b, 1), m(b, 2)))
print("  B/A: throughput %.3fx (median of per-round ratios %.3fx), CPU per request %.3fx"
      % (m(b, 0) / m(a, 0), statistics.median(y[0] / x[0] for x, y in zip(a, b)), m(b, 2) / m(a, 2)))
PY

#!/usr/bin/env bash
# bench_pam.sh — the PAM module (run by bench/run-bench.sh; a benchmark, not
# a test: it prints numbers and ratios, asserts nothing).
#  1. a login as a whole process: pamtester under pam_wrapper, auth + account,
#     the module's stack against the same stack with pam_permit.so, runs
#     interleaved, median of each (target: ratio <= 1.15x);
#  2. in process (bench/bench_pam.c): the pam_start..pam_end cycle at 1k and
#     at 1M keys, next to pam_permit.
# Stores are filled once with apikey-fill and kept in $BENCH_DIR
# (pam-<N>.db and its key in pam-<N>.key).  Keys belong to "daemon", a user
# every Debian system has (the module refuses users unknown to the system).
set -u
: "${BUILD:?}" "${APIKEYCTL:=$BUILD/apikeyctl}" "${APIKEY_FILL:=$BUILD/bench/apikey-fill}"
: "${PAM_MODULE:=$BUILD/pam_apikey.so}"
dir=${BENCH_DIR:-$BUILD/bench/data}
runs=${BENCH_PAM_RUNS:-200}
iters=${BENCH_PAM_ITERS:-2000}
user=daemon
mkdir -p "$dir"
for t in "$PAM_MODULE" "$APIKEYCTL" "$APIKEY_FILL" "$BUILD/bench/bench-pam"; do
	[ -x "$t" ] || [ -f "$t" ] || { echo "bench_pam: missing $t (make bench-tools)"; exit 0; }
done

# store N: a cached store of N keys for $user with scope pam:bench; prints
# its path, leaves the key in <path>.key.
store() {
	local n=$1 db="$dir/pam-$1.db"
	if [ ! -f "$db" ] || [ ! -s "$db.key" ]; then
		rm -f "$db" "$db.pepper" "$db.key" "$db-wal" "$db-shm"
		echo "bench_pam: filling $db with $n keys (once; cached)" >&2
		"$APIKEYCTL" --db "$db" init >/dev/null || return 1
		(umask 077; "$APIKEY_FILL" "$db" "$n" "$user" pam:bench >"$db.key") || return 1
	fi
	echo "$db"
}
small=$(store 1000) && big=$(store 1000000) || { echo "bench_pam: could not fill the stores"; exit 1; }

echo "-- login as a whole process: pamtester under pam_wrapper, auth + account, $runs runs each, interleaved"
echo "   (store: 1,000,000 keys; the module opens it, verifies, records usage with an fsync'd commit)"
svc=$(mktemp -d)
trap 'rm -rf "$svc"' EXIT
printf 'auth required %s db=%s scope=pam:bench\naccount required %s db=%s\n' \
	"$PAM_MODULE" "$big" "$PAM_MODULE" "$big" >"$svc/bench-apikey"
printf 'auth required pam_permit.so\naccount required pam_permit.so\n' >"$svc/bench-permit"
python3 - "$svc" "$user" "$big.key" "$runs" <<'PY'
import os, statistics, subprocess, sys, time
svc, user, keyfile, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
key = open(keyfile).read().strip() + "\n"
env = dict(os.environ, LD_PRELOAD="libpam_wrapper.so", PAM_WRAPPER="1", PAM_WRAPPER_SERVICE_DIR=svc)
times = {"bench-permit": [], "bench-apikey": []}
def once(name):
    t0 = time.perf_counter()
    p = subprocess.run(["pamtester", name, user, "authenticate", "acct_mgmt"], input=key.encode(),
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times[name].append(time.perf_counter() - t0)
    if p.returncode != 0:
        sys.exit(f"bench_pam: {name} failed ({p.returncode})")
for name in times:          # warm up the page cache and pam_wrapper's copies
    once(name)
    times[name].clear()
for i in range(runs):
    order = ["bench-permit", "bench-apikey"] if i % 2 == 0 else ["bench-apikey", "bench-permit"]
    for name in order:
        once(name)
p, a = (statistics.median(times[n]) * 1e3 for n in ("bench-permit", "bench-apikey"))
print(f"   pam_permit.so stack  median {p:7.2f} ms")
print(f"   pam_apikey.so stack  median {a:7.2f} ms")
print(f"   ratio {a / p:.3f}x  (target <= 1.15x)")
PY

echo "-- in process: pam_start_confdir..pam_end with auth + account, median of $iters cycles, best of 3 interleaved rounds"
for db in "$small" "$big"; do
	n=${db##*/pam-}; n=${n%.db}
	echo "   store of $n keys:"
	"$BUILD/bench/bench-pam" "$PAM_MODULE" "$db" "$(cat "$db.key")" "$user" "$iters" | sed 's/^/     /'
done

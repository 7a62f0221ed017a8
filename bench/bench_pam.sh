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
echo "   (store: 1,000,000 keys on disk, no other process on it; pam_unix: a user made for the run, yescrypt)"
svc=$(mktemp -d)
unix_user=""
cleanup() { rm -rf "$svc"; [ -n "$unix_user" ] && userdel "$unix_user" 2>/dev/null; }
trap cleanup EXIT
printf 'auth required %s db=%s scope=pam:bench\naccount required %s db=%s\n' \
	"$PAM_MODULE" "$big" "$PAM_MODULE" "$big" >"$svc/bench-apikey"
printf 'auth required pam_permit.so\naccount required pam_permit.so\n' >"$svc/bench-permit"
printf 'auth required pam_unix.so\naccount required pam_unix.so\n' >"$svc/bench-unix"
# pam_unix needs a user with a password (root only: useradd, removed at exit)
if [ "$(id -u)" = 0 ] && command -v useradd >/dev/null; then
	unix_user=apikeybench$$
	useradd -M -s /usr/sbin/nologin "$unix_user" && echo "$unix_user:bench-password-$$" | chpasswd || unix_user=""
fi
python3 - "$svc" "$user" "$big.key" "$runs" "$unix_user" "bench-password-$$" <<'PY'
import os, statistics, subprocess, sys, time
svc, user, keyfile, runs, unix_user, password = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
key = open(keyfile).read().strip() + "\n"
env = dict(os.environ, LD_PRELOAD="libpam_wrapper.so", PAM_WRAPPER="1", PAM_WRAPPER_SERVICE_DIR=svc)
stacks = {"bench-permit": (user, key), "bench-apikey": (user, key)}
if unix_user:
    stacks["bench-unix"] = (unix_user, password + "\n")
times = {n: [] for n in stacks}
def once(name):
    who, typed = stacks[name]
    t0 = time.perf_counter()
    p = subprocess.run(["pamtester", name, who, "authenticate", "acct_mgmt"], input=typed.encode(),
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times[name].append(time.perf_counter() - t0)
    if p.returncode != 0:
        sys.exit(f"bench_pam: {name} failed ({p.returncode})")
for name in times:          # warm up the page cache and pam_wrapper's copies
    once(name)
    times[name].clear()
names = list(times)
for i in range(runs):
    for name in names[i % len(names):] + names[:i % len(names)]:
        once(name)
m = {n: statistics.median(t) * 1e3 for n, t in times.items()}
print(f"   pam_permit.so stack  median {m['bench-permit']:7.2f} ms")
print(f"   pam_apikey.so stack  median {m['bench-apikey']:7.2f} ms  ({m['bench-apikey'] / m['bench-permit']:.2f}x pam_permit)")
if "bench-unix" in m:
    print(f"   pam_unix.so stack    median {m['bench-unix']:7.2f} ms  ({m['bench-unix'] / m['bench-permit']:.2f}x pam_permit)")
else:
    print("   pam_unix.so: skipped (needs root to make a user)")
PY

echo "-- in process: pam_start_confdir..pam_end with auth + account, median of $iters cycles, best of 3 interleaved rounds"
echo "   (target: pam_permit + 0.5 ms; 'alone': no other process on the store, so each login's close is"
echo "   the last one; 'apikeyd': apikeyd running on the store, as where both are installed)"
for db in "$small" "$big"; do
	n=${db##*/pam-}; n=${n%.db}
	echo "   store of $n keys, alone:"
	"$BUILD/bench/bench-pam" "$PAM_MODULE" "$db" "$(cat "$db.key")" "$user" "$iters" | sed 's/^/     /'
	if [ -x "${APIKEYD:-$BUILD/apikeyd}" ]; then
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		"${APIKEYD:-$BUILD/apikeyd}" --db "$db" --threads 1 --listen "127.0.0.1:$port" 2>/dev/null & apid=$!
		sleep 0.5
		echo "   store of $n keys, apikeyd running on it:"
		"$BUILD/bench/bench-pam" "$PAM_MODULE" "$db" "$(cat "$db.key")" "$user" "$iters" | sed 's/^/     /'
		kill "$apid"; wait "$apid" 2>/dev/null
	fi
done

#!/usr/bin/env bash
# run-bench.sh — every benchmark in one invocation; each prints its ratios
# against a baseline measured in the same run.  Nothing here is a test.
set -u
: "${TOP:?}" "${BUILD:?}"
export APIKEYCTL="$BUILD/apikeyctl" APIKEYD="$BUILD/apikeyd" PAM_MODULE="$BUILD/pam_apikey.so"
export APIKEY_FILL="$BUILD/bench/apikey-fill"
dir=${BENCH_DIR:-$BUILD/bench/data}
mkdir -p "$dir"
echo "== core verify (bench/bench_core.c), ${BENCH_ITERS:-200000} iterations, best of 3 rounds"
"$BUILD/bench/bench-core" "$dir" "${BENCH_ITERS:-200000}"
for b in "$TOP"/bench/bench_*.sh; do
	[ -f "$b" ] || continue
	echo
	echo "== $(basename "$b")"
	BENCH_DIR="$dir" bash "$b"
done

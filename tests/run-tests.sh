#!/usr/bin/env bash
# Runs every test layer and sums their TAP lines into one closing line,
# "N passed, N failed".  Each test program or script prints TAP ("ok N - …",
# "not ok N - …", "ok N # SKIP …"); a program that exits non-zero without
# printing "not ok" counts as one failure, so a crash is never a pass.
set -u
: "${TOP:?}" "${BUILD:?}"
export TOP BUILD
export APIKEYCTL="$BUILD/apikeyctl" APIKEYD="$BUILD/apikeyd" PAM_MODULE="$BUILD/pam_apikey.so"
export CMOCKA_MESSAGE_OUTPUT=TAP
# ASan: leaks are checked by valgrind for the module and by LSan elsewhere.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

pass=0 fail=0 skip=0
log="$BUILD/${TEST_LOG:-test-log.txt}"
: >"$log"

run_one() {  # name, command...
	local name=$1 out rc p f s; shift
	out=$(timeout "${TEST_TIMEOUT:-600}" "$@" 2>>"$log.err"; echo "rc=$?")
	rc=${out##*rc=}; out=${out%rc=*}
	printf '%s\n' "== $name (exit $rc)" "$out" >>"$log"
	p=$(grep -cE '^ok [0-9]+' <<<"$out" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+.*# *SKIP' <<<"$out" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+' <<<"$out" | tr -d ' ')
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited $rc" >>"$log"; fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then f=1; echo "not ok - $name ran no test" >>"$log"; fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	printf '%-44s %4d passed %3d failed %3d skipped\n' "$name" "$p" "$f" "$s"
	if [ "$f" -gt 0 ]; then grep -E '^not ok' <<<"$out" | sed 's/^/    /'; fi
}

: >"$log.err"
# TEST_LAYERS picks the layers and TEST_GLOB the scripts in them (make
# check-reliability: "reliability"; make check-fleet: "fleet", 'ft_*.sh');
# unset, every layer of make check, unit tests first.
layers=${TEST_LAYERS:-unit cli pam sidecar browser profiles fleet fuzz e2e}
for layer in $layers; do
	[ "$layer" = unit ] || continue
	for t in "$BUILD"/tests/unit/test_*; do
		[ -x "$t" ] || continue
		run_one "unit/${t##*/}" "$t"
	done
done
for layer in $layers; do
	[ "$layer" = unit ] && continue
	for t in "$TOP"/tests/$layer/${TEST_GLOB:-t_*.sh}; do
		[ -f "$t" ] || continue
		run_one "$layer/$(basename "$t" .sh)" bash "$t"
	done
done

echo "details: $log (stderr: $log.err)"
if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]

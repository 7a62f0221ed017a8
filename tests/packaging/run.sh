#!/usr/bin/env bash
# tests/packaging/run.sh — `make check-packages`: the packaging tests in
# order (t_build makes what t_rpm and t_deb use), TAP from each, summed into
# the same closing line as `make check`: "N passed, N failed".
set -u
: "${TOP:?}" "${BUILD:?}"
export TOP BUILD
pass=0 fail=0 skip=0
log="$BUILD/check-packages-log.txt"
: >"$log"
start=$(date +%s)
for name in build rpm deb; do
	t=$TOP/tests/packaging/t_$name.sh
	t0=$(date +%s)
	out=$(timeout "${PKG_TEST_TIMEOUT:-1800}" bash "$t" 2>>"$log.err"; echo "rc=$?")
	rc=${out##*rc=}; out=${out%rc=*}
	printf '%s\n' "== packaging/t_$name (exit $rc)" "$out" >>"$log"
	printf '%s\n' "$out" | grep -E '^(not )?ok |^#' | sed "s/^/packaging\/t_$name: /"
	p=$(grep -cE '^ok [0-9]+' <<<"$out"); s=$(grep -cE '^ok [0-9]+.*# *SKIP' <<<"$out")
	f=$(grep -cE '^not ok [0-9]+' <<<"$out"); p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - packaging/t_$name exited $rc"; fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then f=1; echo "not ok - packaging/t_$name ran no test"; fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	printf '%-44s %4d passed %3d failed %3d skipped (%ds)\n' "packaging/t_$name" "$p" "$f" "$s" "$(($(date +%s) - t0))"
done
# the failures again with their diagnostics, where a log's tail shows them
if [ "$fail" -gt 0 ]; then
	echo "== failures"
	awk '/^== packaging\// { t = $2 } /^not ok/ { print t ": " $0; d = 1; next } d && /^#/ { print t ": " $0; next } { d = 0 }' "$log" | head -n 60
fi
echo "details: $log (stderr: $log.err); $(($(date +%s) - start)) s"
if [ "$skip" -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"; else echo "$pass passed, $fail failed"; fi
[ "$fail" -eq 0 ]

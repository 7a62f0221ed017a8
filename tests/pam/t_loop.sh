#!/usr/bin/env bash
# t_loop.sh — many handles in one process (tests/pam/pam_loop.c): 10,000
# pam_start/authenticate/acct_mgmt/pam_end cycles with good and bad keys
# mixed, every answer checked; under SANITIZE=1 this run is the ASan+LSan
# one.  Then the same driver under valgrind with fewer cycles (valgrind
# costs ~20 ms a cycle here, so 10,000 would take minutes): no error, no
# byte definitely or indirectly lost.
# PAM_LOOP_CYCLES / PAM_LOOP_VG_CYCLES override the counts.
. "$(dirname "$0")/../lib.sh"

LOOP=$BUILD/tests/pam/pam_loop
N=${PAM_LOOP_CYCLES:-10000}
NVG=${PAM_LOOP_VG_CYCLES:-1000}
if [ ! -x "$LOOP" ] || [ ! -f "$PAM_MODULE" ]; then
	skip "no $LOOP or $PAM_MODULE (make tests)"
	done_testing
	exit 0
fi

# The store goes on tmpfs when there is one: the loop is about memory and
# answers, not fsync latency (which is 2/3 of a cycle on a disk here).
W=$T_TMP
if [ -d /dev/shm ] && [ -w /dev/shm ] && W=$(mktemp -d /dev/shm/pam-loop.XXXXXX 2>/dev/null); then
	at_exit "rm -rf '$W'"
else
	W=$T_TMP
fi
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
mkdir "$W/plain"
t0=$(date +%s.%N)
out=$("$LOOP" "$PAM_MODULE" "$W/plain" "$N" 2>"$T_TMP/plain.err")
rc=$?
t1=$(date +%s.%N)
is "$N cycles$([ "${SANITIZE:-}" = 1 ] && echo ' under ASan+UBSan+LSan'): every answer as expected (exit 0)" "$rc" 0
like "…all cycles ran" "$out" "^pam_loop: $N cycles, 0 unexpected$"
echo "# $N cycles in $(secs "$t0" "$t1") s"
[ "$rc" = 0 ] || sed 's/^/# /' "$T_TMP/plain.err" | head -20
# The module closes without a checkpoint and keeps the WAL short itself
# (core/store.c close_short_lived, 64 frames): after 10,000 logins with no
# other process on the store, the WAL is still that short.
wal=$(stat -c %s "$W/plain/keys.db-wal" 2>/dev/null || echo 0)
[ "$wal" -le $((65 * 4120)) ] && ok "…the WAL stays bounded without checkpoints on close ($wal bytes)" \
	|| nok "…the WAL grew to $wal bytes"

if [ "${SANITIZE:-}" = 1 ]; then
	skip "valgrind: the module is ASan-built (SANITIZE=1); the run above is the sanitizer run"
elif ! command -v valgrind >/dev/null; then
	skip "valgrind not installed (scripts/install-deps.sh)"
else
	mkdir "$W/vg"
	t0=$(date +%s.%N)
	out=$(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--log-file="$T_TMP/vg.log" "$LOOP" "$PAM_MODULE" "$W/vg" "$NVG" 2>"$T_TMP/vg.err")
	rc=$?
	t1=$(date +%s.%N)
	is "valgrind, $NVG cycles: no error, nothing definitely/indirectly lost (exit 0)" "$rc" 0
	like "…all cycles ran" "$out" "^pam_loop: $NVG cycles, 0 unexpected$"
	is "…valgrind reported nothing" "$(grep -c . "$T_TMP/vg.log")" 0
	echo "# valgrind: $NVG cycles in $(secs "$t0" "$t1") s"
	[ "$rc" = 0 ] || sed 's/^/# /' "$T_TMP/vg.log" | head -40
fi
done_testing

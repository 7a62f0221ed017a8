#!/usr/bin/env bash
# t_fuzz.sh — every fuzz target: with clang, short libFuzzer runs (long runs:
# make fuzz-long); without clang, the replay build runs each seed and corpus
# file once (tests/fuzz/replay.c).  A crash, a hang (-timeout) or an oracle
# violation fails the target; its input is kept in $BUILD/fuzz/artifacts/
# and named in the failure.
. "$(dirname "$0")/../lib.sh"
secs=${FUZZ_SECONDS_SHORT:-15}
export TMPDIR=$T_TMP    # fuzz_pam's store and whatever else a target writes
mkdir -p "$BUILD/fuzz/artifacts"
for t in "$BUILD"/fuzz/fuzz_*; do
	[ -x "$t" ] || continue
	name=${t##*/}
	corpus="$T_TMP/corpus-$name"; mkdir -p "$corpus"
	if "$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$BUILD/fuzz/artifacts/$name-" "$corpus" "$TOP/tests/fuzz/seeds" >"$T_TMP/$name.log" 2>&1; then
		if runs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$T_TMP/$name.log"); then
			ok "$name: ${secs}s of fuzzing, no crash (${runs##* } runs)"
		elif runs=$(grep -Eo '^replay: [0-9]+ inputs' "$T_TMP/$name.log") && [ "$(cut -d' ' -f2 <<<"$runs")" -gt 0 ]; then
			ok "$name: no clang, so no fuzzing: ${runs#replay: } (seeds) replayed, no crash"
		else
			nok "$name: ran nothing ($(tail -1 "$T_TMP/$name.log"))"
		fi
	else
		nok "$name crashed: $(grep -m1 -E 'ORACLE VIOLATION|ERROR|SUMMARY' "$T_TMP/$name.log") (input: $(grep -m1 -Eo "$BUILD/fuzz/artifacts/$name-[a-z-]+[0-9a-f]+" "$T_TMP/$name.log"))"
		grep -E 'ORACLE|^fuzz_pam:|ERROR|SUMMARY|#[0-9]+ ' "$T_TMP/$name.log" | head -20 >&2
	fi
done
[ "$T_N" -gt 0 ] || nok "no fuzz target was built"
done_testing

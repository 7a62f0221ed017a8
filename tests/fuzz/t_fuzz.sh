#!/usr/bin/env bash
# t_fuzz.sh — short libFuzzer runs of every parser target (long runs: make fuzz-long).
. "$(dirname "$0")/../lib.sh"
secs=${FUZZ_SECONDS_SHORT:-15}
for t in "$BUILD"/fuzz/fuzz_*; do
	[ -x "$t" ] || continue
	name=${t##*/}
	corpus="$T_TMP/corpus-$name"; mkdir -p "$corpus"
	if "$t" -max_total_time="$secs" -rss_limit_mb=1024 -print_final_stats=1 "$corpus" "$TOP/tests/fuzz/seeds" >"$T_TMP/$name.log" 2>&1; then
		ok "$name: ${secs}s of fuzzing, no crash ($(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$T_TMP/$name.log" | grep -Eo '[0-9]+' || echo '?') runs)"
	else
		nok "$name crashed: $(grep -m1 -E 'ERROR|SUMMARY' "$T_TMP/$name.log")"
		grep -E 'ERROR|SUMMARY|#[0-9]+ ' "$T_TMP/$name.log" | head -20 >&2
	fi
done
[ "$T_N" -gt 0 ] || nok "no fuzz target was built"
done_testing

#!/usr/bin/env bash
# bench_import.sh — `apikeyctl import` of BENCH_IMPORT_N (default 1,000,000)
# generated sha256 lines into a fresh store, next to the time to generate
# them and to check them alone (--dry-run: parse + core checks, no writes).
# The target is under a minute for a million lines.  Needs apikey-testdata
# (make tests).
set -eu
: "${BUILD:?}"
N=${BENCH_IMPORT_N:-1000000}
dir=${BENCH_DIR:-$BUILD/bench/data}/import
ctl=$BUILD/apikeyctl gen=$BUILD/tests/cli/apikey-testdata
mkdir -p "$dir"
rm -f "$dir"/keys.db*
export APIKEY_CONF=/dev/null
t() { local s=$EPOCHREALTIME; "$@" >/dev/null; awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }'; }
if [ ! -s "$dir/lines-$N.jsonl" ]; then
	echo "generate $N lines: $(t sh -c "'$gen' gen $N '$dir/keys-$N.txt' >'$dir/lines-$N.jsonl'") s"
fi
"$ctl" --db "$dir/keys.db" init >/dev/null
echo "check only (--dry-run): $(t "$ctl" --db "$dir/keys.db" import --dry-run "$dir/lines-$N.jsonl") s"
TIMEFORMAT="import $N lines: %R s wall, %U s user, %S s sys"
{ time "$ctl" --db "$dir/keys.db" import "$dir/lines-$N.jsonl" >/dev/null; } 2>&1
bad=0
while read -r _ k; do
	[ "$(printf '%s' "$k" | "$ctl" --db "$dir/keys.db" verify)" = VALID ] || bad=$((bad + 1))
done < <(head -50 "$dir/keys-$N.txt")
echo "sample verified after import: 50 keys, $bad failed"
echo "store: $(du -h "$dir/keys.db" | cut -f1)"

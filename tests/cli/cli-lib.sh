# tests/cli/cli-lib.sh — helpers of the CLI tests (sourced after ../lib.sh).
# A host's /etc/apikey/apikey.conf must not change what the tests see:
# APIKEY_CONF=/dev/null is an empty configuration (the defaults).
export APIKEY_CONF=/dev/null
unset APIKEY_DB
TESTDATA="$BUILD/tests/cli/apikey-testdata"

# run ARGS...: run apikeyctl with empty stdin; sets OUT, ERR, RC.
run() {
	OUT=$("$APIKEYCTL" "$@" </dev/null 2>"$T_TMP/.err"); RC=$?
	ERR=$(cat "$T_TMP/.err")
}
# runin INPUT ARGS...: the same with INPUT (printf %s) on stdin.
runin() {
	local input=$1; shift
	OUT=$(printf '%s' "$input" | "$APIKEYCTL" "$@" 2>"$T_TMP/.err"); RC=$?
	ERR=$(cat "$T_TMP/.err")
}
# verify_is DESC DB KEY WANT_CODE [ARGS...]: outcome and exit code (0 only for VALID).
verify_is() {
	local d=$1 db=$2 key=$3 want=$4 wrc=1; shift 4
	[ "$want" = VALID ] && wrc=0
	runin "$key" --db "$db" verify "$@"
	if [ "$OUT" = "$want" ] && [ "$RC" = "$wrc" ]; then ok "$d"
	else nok "$d (got '$OUT' exit $RC, want '$want' exit $wrc; stderr: $ERR)"; fi
}
# one_line DESC: ERR is exactly one line starting "apikeyctl: ".
one_line() {
	if [ -n "$ERR" ] && [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] && [[ $ERR == apikeyctl:\ * ]]; then ok "$1"
	else nok "$1 (stderr: '$ERR')"; fi
}
# jq_py EXPR: evaluate a python expression over the JSON on stdin (bound to j).
jq_py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
# key_count DB: number of keys in the store.
key_count() { "$APIKEYCTL" --db "$1" list --json | jq_py 'len(j)'; }
# key_id DB KEY-INDEX: id of the n-th key in creation order (-1 = last).
key_id() { "$APIKEYCTL" --db "$1" list --json | jq_py "j[$2]['id']"; }

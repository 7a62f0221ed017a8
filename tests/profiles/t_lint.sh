#!/usr/bin/env bash
# t_lint.sh — the profiles and their expected answers hold together before any
# runner exists: lint.py checks the .expect format and, with a reference of
# the draft rules (docs/design/compat.md), that each profile loads, that each
# case's body is what its profile renders, and that bad.expect's files are
# refused on the line it names.  Then the part of each profile that today's
# build understands (key shape, header, limits, plans) is loaded by apikeyctl
# and apikeyd -n, and issues a key of the documented shape that verifies.
. "$(dirname "$0")/../lib.sh"
LINT="$TOP/tests/profiles/lint.py"

# lint.py's TAP, renumbered into this script's.
while IFS= read -r line; do
	case $line in
	"ok "*) ok "${line#ok * - }" ;;
	"not ok "*) nok "${line#not ok * - }" ;;
	esac
done < <(python3 "$LINT"; echo "exit $?" >"$T_TMP/lint.rc")
is "lint.py exits 0" "$(cat "$T_TMP/lint.rc")" "exit 0"

# shape NAME REGEX: today's part of packaging/profiles/NAME.conf issues keys
# matching REGEX that verify, and apikeyd -n accepts it.
shape() {
	local name=$1 re=$2 conf="$T_TMP/$1.conf" key
	python3 "$LINT" --today "$TOP/packaging/profiles/$name.conf" >"$conf"
	"$APIKEYCTL" --conf "$conf" --db "$T_TMP/$name.db" init >/dev/null 2>&1
	key=$("$APIKEYCTL" --conf "$conf" --db "$T_TMP/$name.db" create --owner t --scopes api:access 2>"$T_TMP/err")
	like "$name.conf (today's options): issues a documented key" "$key" "$re"
	is "$name.conf (today's options): the key verifies" \
		"$(printf '%s' "$key" | "$APIKEYCTL" --conf "$conf" --db "$T_TMP/$name.db" verify 2>/dev/null)" VALID
	is "$name.conf (today's options): apikeyd -n" \
		"$("$APIKEYD" -n -f "$conf" --db "$T_TMP/$name.db" 2>&1)" "configuration OK"
}
shape clawhq '^clw_[0-9a-z]{32}$'
shape clawup '^cu_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
shape workclaw '^wc_live_[0-9A-Za-z]{20}$'
shape clawgig '^cg_[0-9a-f]{32}$'
shape hiveclaw '^hc_[0-9A-Za-z]{48}$'

done_testing

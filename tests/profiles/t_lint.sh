#!/usr/bin/env bash
# t_lint.sh — the .expect files follow their format (tests/profiles/README.md)
# before t_profiles.sh runs them against the real programs.  lint.py holds
# no rule of the product: a case that lints is not yet a case that passes.
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

done_testing

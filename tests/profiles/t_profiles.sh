#!/usr/bin/env bash
# t_profiles.sh — each profile in packaging/profiles/ answers as the system
# it replaces documents (SPEC §10, docs/design/compat.md): run.py starts one
# real apikeyd per profile on a loopback port, sets up its store with the
# real apikeyctl, and checks every case of tests/profiles/NAME.expect (status,
# headers, body byte for byte, outcome); bad.expect's configurations go to
# apikeyd -n and apikeyctl, which must refuse them on the line named.
. "$(dirname "$0")/../lib.sh"
RUN="$TOP/tests/profiles/run.py"

[ -x "$BUILD/tests/cli/apikey-testdata" ] || { nok "apikey-testdata is built (make tests)"; done_testing; exit; }
while IFS= read -r line; do
	case $line in
	"ok "*) ok "${line#ok * - }" ;;
	"not ok "*) nok "${line#not ok * - }" ;;
	esac
done < <(cd "$TOP" && TMPDIR="$T_TMP" BUILD="$BUILD" APIKEYCTL="$APIKEYCTL" APIKEYD="$APIKEYD" \
	python3 "$RUN"; echo "exit $?" >"$T_TMP/run.rc")
is "run.py exits 0" "$(cat "$T_TMP/run.rc")" "exit 0"

done_testing

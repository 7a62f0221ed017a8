#!/usr/bin/env bash
# t_dashboard.sh — the /ui/ dashboard in a real headless Chromium (Debian's
# chromium, driven by playwright-core from npm over the DevTools protocol;
# dashboard.mjs holds the steps) against apikeyd on loopback with a real
# store.  A missing browser, node or playwright-core is a failure, never a
# skip.  Screenshots go to $BUILD/screenshots/.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../sidecar/lib_sidecar.sh"

HERE=$TOP/tests/browser
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$CHROMIUM" ]; then
	nok "a browser at $CHROMIUM (Debian's chromium: scripts/install-deps.sh installs it)"
	done_testing; exit 1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	nok "node and npm (scripts/install-deps.sh installs them)"
	done_testing; exit 1
fi
# playwright-core as package-lock.json pins it: installed by `npm ci` when
# missing or not that version (never a browser download: it has none).
want=$(node -e 'console.log(require(process.argv[1]).packages["node_modules/playwright-core"].version)' \
       "$HERE/package-lock.json")
have=$(node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("none") }' \
       "$HERE/node_modules/playwright-core/package.json")
if [ "$have" != "$want" ]; then
	if ! (cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error \
	      >"$T_TMP/npm.log" 2>&1); then
		sed 's/^/# /' "$T_TMP/npm.log"
		nok "npm ci in tests/browser (playwright-core $want)"
		done_testing; exit 1
	fi
fi

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
ALICE=$(sc_key alice apikey:read,apikey:write,docs:read,docs:write --name alice-dashboard) &&
ADMIN=$(sc_key ops apikey:admin --name ops-admin) &&
sc_key bob docs:read --name bob-old >/dev/null &&
"$APIKEYCTL" --db "$DB" preset add docs-reader docs:read >/dev/null ||
	{ nok "issue the test keys"; done_testing; exit 1; }
ALICE_ID=$(sc_key_id alice) BOB_ID=$(sc_key_id bob)
printf 'admin_api=yes\n' >"$T_TMP/apikey.conf"
sc_start --conf "$T_TMP/apikey.conf" --db "$DB" --threads 2 || { nok "apikeyd starts"; done_testing; exit 1; }

mkdir -p "$T_TMP/profile" "$BUILD/screenshots"
( umask 077; python3 - "$T_TMP/setup.json" <<PY
import json, sys
json.dump({"url": "$SC_URL", "chromium": "$CHROMIUM", "profile": "$T_TMP/profile",
           "shots": "$BUILD/screenshots",
           "alice": {"key": "$ALICE", "id": "$ALICE_ID"}, "admin": {"key": "$ADMIN"},
           "bob": {"id": "$BOB_ID"}}, open(sys.argv[1], "w"))
PY
)
timeout 300 node "$HERE/dashboard.mjs" "$T_TMP/setup.json" >"$T_TMP/out" 2>"$T_TMP/err"
rc=$?
while IFS= read -r l; do
	case $l in
	"ok - "*) ok "${l#ok - }" ;;
	"not ok - "*) nok "${l#not ok - }" ;;
	"#"*) echo "$l" ;;
	esac
done <"$T_TMP/out"
[ -s "$T_TMP/err" ] && sed 's/^/# stderr: /' "$T_TMP/err" | head -40
is "dashboard.mjs exits 0" "$rc" 0
check "apikeyd survived the run" sc_alive
if grep -qF "$ALICE" "$SC_LOG"; then nok "apikeyd's log holds no key"; else ok "apikeyd's log holds no key"; fi
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0
done_testing

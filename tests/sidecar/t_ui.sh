#!/usr/bin/env bash
# t_ui.sh — how apikeyd serves the /ui/ dashboard's files (what the page does
# in a browser is tests/browser/t_dashboard.sh): only with admin_api=yes;
# every file of sidecar/ui/ byte for byte, with its content type, the strict
# CSP and the other headers on every answer; GET only; nothing but those
# files under /ui/; no key needed and none taken.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }

# admin_api=no (the default): no dashboard
sc_start --db "$DB" --threads 1 || { nok "apikeyd starts"; done_testing; exit 1; }
for p in /ui /ui/ /ui/app.js /ui/app.css /ui/icon.svg; do
	is "admin_api=no: GET $p is 404" "$(sc_status "$p")" 404
done
sc_stop TERM

printf 'admin_api=yes\n' >"$T_TMP/apikey.conf"
sc_start --conf "$T_TMP/apikey.conf" --db "$DB" --threads 1 || { nok "apikeyd starts"; done_testing; exit 1; }

# every header every /ui/ answer carries
headers_ok() {  # DESC HEADER-DUMP
	local f=$2 bad=""
	[ "$(sc_header Content-Security-Policy "$f")" = "$CSP" ] || bad="$bad CSP"
	[ "$(sc_header X-Frame-Options "$f")" = DENY ] || bad="$bad X-Frame-Options"
	[ "$(sc_header Referrer-Policy "$f")" = no-referrer ] || bad="$bad Referrer-Policy"
	[ "$(sc_header Cache-Control "$f")" = no-store ] || bad="$bad Cache-Control"
	[ "$(sc_header X-Content-Type-Options "$f")" = nosniff ] || bad="$bad X-Content-Type-Options"
	[ -z "$(sc_header Set-Cookie "$f")" ] || bad="$bad Set-Cookie"
	if [ -z "$bad" ]; then ok "$1: CSP, X-Frame-Options, Referrer-Policy, Cache-Control, nosniff"
	else nok "$1: wrong or missing:$bad"; fi
}

n=0
for f in "$TOP"/sidecar/ui/*; do
	name=${f##*/} url=/ui/${f##*/}
	[ "$name" = index.html ] && url=/ui/
	case $name in
	*.html) type="text/html; charset=utf-8" ;; *.css) type="text/css; charset=utf-8" ;;
	*.js) type="text/javascript; charset=utf-8" ;; *.svg) type="image/svg+xml" ;; *) type=unknown ;;
	esac
	code=$(curl -s -m 10 -D "$T_TMP/h" -o "$T_TMP/body" -w '%{http_code}' "$SC_URL$url")
	is "GET $url: 200" "$code" 200
	check "GET $url = sidecar/ui/$name, byte for byte" cmp -s "$T_TMP/body" "$f"
	is "GET $url: Content-Type" "$(sc_header Content-Type "$T_TMP/h")" "$type"
	headers_ok "GET $url" "$T_TMP/h"
	n=$((n + 1))
done
check "sidecar/ui/ has the page, its script, style sheet and icon" test "$n" -ge 4
# the routes listed are exactly these files (and /ui)
want=$( (echo "GET /ui"; for f in "$TOP"/sidecar/ui/*; do n=${f##*/}; [ "$n" = index.html ] && n=; echo "GET /ui/$n"; done) | sort)
is "apikeyd --routes lists /ui and each file" "$("$APIKEYD" --routes | grep ' /ui' | sort)" "$want"

# the page needs nothing from elsewhere and no inline script or style
check "index.html: no inline script" bash -c "! grep -Eiq '<script>|<script [^>]*>[^<]|[[:space:]]on[a-z]+=' '$TOP/sidecar/ui/index.html'"
check "index.html: no style attribute or element" bash -c "! grep -Eiq '<style|[[:space:]]style=' '$TOP/sidecar/ui/index.html'"
check "no file refers to another origin" bash -c "! grep -Eq '(src|href)=\"(https?:)?//' '$TOP'/sidecar/ui/*"
check "app.js parses no HTML (innerHTML, outerHTML, insertAdjacentHTML, document.write, eval)" \
	bash -c "! grep -Eq 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function' '$TOP/sidecar/ui/app.js'"
check "app.js keeps the key in sessionStorage only (no localStorage, no cookie)" \
	bash -c "! grep -Eq 'localStorage|document\.cookie|indexedDB' '$TOP/sidecar/ui/app.js'"

# /ui → /ui/, relative
code=$(curl -s -m 10 -D "$T_TMP/h" -o /dev/null -w '%{http_code}' "$SC_URL/ui")
is "GET /ui: 308" "$code" 308
is "GET /ui: Location ui/ (relative: a proxy's prefix stays)" "$(sc_header Location "$T_TMP/h")" "ui/"
headers_ok "GET /ui" "$T_TMP/h"

# GET only
for m in HEAD POST PUT DELETE PATCH OPTIONS; do
	code=$(curl -s -m 10 -X "$m" -D "$T_TMP/h" -o /dev/null -w '%{http_code}' "$SC_URL/ui/" 2>/dev/null)
	[ "$m" = HEAD ] && code=$(curl -s -m 10 -I -D "$T_TMP/h" -o /dev/null -w '%{http_code}' "$SC_URL/ui/")
	is "$m /ui/: 405" "$code" 405
	is "$m /ui/: Allow: GET" "$(sc_header Allow "$T_TMP/h")" GET
done

# nothing else under /ui/: not the page under a second name, no other file,
# no way out of the folder
for p in /ui/index.html /ui/nope.js /ui/app.js/ /ui//app.js /ui/../openapi.json /ui/%2e%2e/openapi.json \
         /ui/./app.js /ui/APP.JS "/ui/app.js%00" /ui/ui/app.js /uiapp.js; do
	is "GET $p: 404" "$(curl -s -m 10 --path-as-is -o /dev/null -w '%{http_code}' "$SC_URL$p")" 404
done
is "GET /ui/?x=1 (a query is ignored): 200" "$(sc_status '/ui/?x=1')" 200

# no key needed; one presented is neither verified nor logged
KEY=$(sc_key alice apikey:read)
is "GET /ui/ with a key: 200" "$(sc_status /ui/ -H "Authorization: Bearer $KEY")" 200
is "… the key was not used (use count 0)" \
	"$("$APIKEYCTL" --db "$DB" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["use_count"])')" 0
check "apikeyd survives" sc_alive
check "the log holds no key" bash -c "! grep -qF '$KEY' '$SC_LOG'"
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0
done_testing

#!/usr/bin/env bash
# t_headers.sh — what /auth's 200 carries (issue 13): a Date apikeyd makes
# once a second (RFC 7231 form, the current second), SPEC §3's
# RateLimit-Limit/-Remaining/-Reset by default, and with
# ratelimit_draft_headers=yes the IETF draft's RateLimit + RateLimit-Policy
# instead (applied by SIGHUP too).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db keys)
K=$("$APIKEYCTL" --db "$DB" create --owner ann --scopes a:b --rate-limit 120)
printf 'db=%s\n' "$DB" >"$T_TMP/apikey.conf"
sc_start -f "$T_TMP/apikey.conf" --threads 1 || { nok "apikeyd starts"; done_testing; exit 1; }
get() { curl -s -m 5 -o /dev/null -D "$T_TMP/h" -H "X-API-Key: $K" "$SC_URL/auth"; }

get
d=$(sc_header Date "$T_TMP/h")
like "200 carries a Date in the HTTP form" "$d" '^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$'
skew=$(python3 -c 'import sys, time, email.utils; print(abs(int(time.time() - email.utils.parsedate_to_datetime(sys.argv[1]).timestamp())))' "$d")
[ "$skew" -le 2 ] && ok "... and it is now (${skew} s off)" || nok "Date is ${skew} s off: $d"
sleep 1.1; get
[ "$(sc_header Date "$T_TMP/h")" != "$d" ] && ok "... a second later, a new one" || nok "the Date did not move"
is "one Date header only" "$(grep -ci '^date:' "$T_TMP/h")" 1
is "default: RateLimit-Limit (SPEC §3)" "$(sc_header RateLimit-Limit "$T_TMP/h")" 120
like "default: RateLimit-Remaining" "$(sc_header RateLimit-Remaining "$T_TMP/h")" '^11[0-9]$'
is "default: no draft field" "$(sc_header RateLimit-Policy "$T_TMP/h")" ""

printf 'db=%s\nratelimit_draft_headers=yes\n' "$DB" >"$T_TMP/apikey.conf"
kill -HUP "$SC_PID"
for i in $(seq 50); do get; [ -n "$(sc_header RateLimit-Policy "$T_TMP/h")" ] && break; sleep 0.1; done
is "draft (after SIGHUP): RateLimit-Policy" "$(sc_header RateLimit-Policy "$T_TMP/h")" '"default";q=120;w=60'
like "draft: RateLimit" "$(sc_header RateLimit "$T_TMP/h")" '^"default";r=11[0-9];t=[0-9]+$'
is "draft: no RateLimit-Limit" "$(sc_header RateLimit-Limit "$T_TMP/h")" ""
sc_stop
done_testing

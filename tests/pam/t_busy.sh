#!/usr/bin/env bash
# t_busy.sh — a writer holding a long transaction on the store must not hold
# up logins: authentication answers within about busy_timeout_ms (here
# PAM_AUTHINFO_UNAVAIL: a charge it cannot record is a login it cannot
# allow), and succeeds again as soon as the writer is gone.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pam-lib.sh"
pam_require

M=$PAM_MODULE
U=daemon
DB=$(new_db keys)
read -r K ID <<<"$(mk_key "$DB" $U pam:busy --rate-limit 1000)"
svc busy "auth required $M db=$DB busy_timeout_ms=500" "account required $M db=$DB"
svc busy_default "auth required $M db=$DB scope=pam:busy"
is "no writer: the key logs in" "$(pt busy $U "$K" authenticate acct_mgmt)" PAM_SUCCESS

# A writer that takes the write lock (BEGIN IMMEDIATE, as apikeyctl does),
# says so, and keeps it for 20 s unless killed first.
python3 - "$DB" >"$T_TMP/writer.out" 2>&1 <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE meta SET value = value WHERE name = 'generation'")
print("locked", flush=True)
time.sleep(20)
db.execute("ROLLBACK")
PY
writer=$!
at_exit "kill $writer"
for _ in $(seq 100); do grep -q locked "$T_TMP/writer.out" && break; sleep 0.1; done
is "the writer holds the write lock" "$(cat "$T_TMP/writer.out")" locked

ms() { date +%s%3N; }
t0=$(ms)
got=$(pt busy $U "$K" authenticate)
t1=$(ms)
is "busy_timeout_ms=500 with the writer holding the lock → PAM_AUTHINFO_UNAVAIL" "$got" PAM_AUTHINFO_UNAVAIL
check "…answered in under 3 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 3000
check "…after waiting for the busy timeout, not at once ($((t1 - t0)) ms)" test $((t1 - t0)) -ge 450
like "…logged as unavailable" "$(pt_log)" "outcome=UNAVAILABLE"
t0=$(ms)
got=$(pt busy_default $U "$K" authenticate)
t1=$(ms)
is "default busy timeout (2 s) → PAM_AUTHINFO_UNAVAIL" "$got" PAM_AUTHINFO_UNAVAIL
check "…answered in under 5 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 5000
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
is "writer gone: the same key logs in again" "$(pt busy $U "$K" authenticate)" PAM_SUCCESS
no_secret_logged
done_testing

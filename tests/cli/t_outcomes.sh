#!/usr/bin/env bash
# t_outcomes.sh — every SPEC §3 outcome reachable through `apikeyctl verify`,
# with its exit code (0 only for VALID), and the order of the checks.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/cli-lib.sh"

db=$(new_db keys)
other=$(new_db other)
mk() { "$APIKEYCTL" --db "$db" create "$@"; }

# Keys that must age: made first, checked last (one sleep for both).  Expiry
# is kept in whole seconds, so "3s" means 2-3 s from now: enough headroom for
# the VALID checks below even under ASan on a loaded machine.
exp_key=$(mk --owner alice --scopes a:b --expires 3s)
rot_old=$(mk --owner alice --scopes a:b)
rot_id=$(key_id "$db" -1)
"$APIKEYCTL" --db "$db" rotate "$rot_id" --grace 3s >/dev/null
t0=$(date +%s)
verify_is "VALID: an expiring key before its expiry" "$db" "$exp_key" VALID
verify_is "VALID: a rotated key in its grace period" "$db" "$rot_old" VALID

key=$(mk --owner alice --scopes docs:read,pam:sshd --rate-limit 1000)
verify_is "VALID" "$db" "$key" VALID
verify_is "VALID with a granted scope" "$db" "$key" VALID --scope docs:read
verify_is "VALID with two granted scopes (repeated --scope)" "$db" "$key" VALID --scope docs:read --scope pam:sshd
verify_is "VALID with a comma list" "$db" "$key" VALID --scope docs:read,pam:sshd
verify_is "VALID: a CRLF line ending is stripped" "$db" "$key"$'\r\n' VALID
verify_is "VALID with the right owner" "$db" "$key" VALID --owner alice

# MISSING_KEY
verify_is "MISSING_KEY: empty stdin" "$db" "" MISSING_KEY
verify_is "MISSING_KEY: an empty line" "$db" $'\n' MISSING_KEY
verify_is "MISSING_KEY is answered before the store is needed" "$T_TMP/none.db" "" MISSING_KEY

# MALFORMED_KEY: each kind
verify_is "MALFORMED_KEY: wrong prefix" "$db" "xx_${key:3}" MALFORMED_KEY
verify_is "MALFORMED_KEY: too short" "$db" "${key:0:38}" MALFORMED_KEY
verify_is "MALFORMED_KEY: too long" "$db" "${key}A" MALFORMED_KEY
verify_is "MALFORMED_KEY: a character outside the alphabet" "$db" "${key:0:10}-${key:11}" MALFORMED_KEY
c=${key:10:1}; [ "$c" = A ] && d=B || d=A
verify_is "MALFORMED_KEY: checksum (one character changed)" "$db" "${key:0:10}$d${key:11}" MALFORMED_KEY
verify_is "MALFORMED_KEY: two keys on one line" "$db" "$key $key" MALFORMED_KEY
verify_is "MALFORMED_KEY: a NUL byte inside" "$db" "${key:0:10}"$'\x01'"${key:11}" MALFORMED_KEY
verify_is "MALFORMED_KEY is answered before the store is needed" "$T_TMP/none.db" "xx_${key:3}" MALFORMED_KEY

# INVALID_KEY: well-formed, checksum right, not in this store
stranger=$("$APIKEYCTL" --db "$other" create --owner alice --scopes docs:read)
verify_is "INVALID_KEY: a well-formed key this store never issued" "$db" "$stranger" INVALID_KEY

# REVOKED
rk=$(mk --owner alice --scopes docs:read)
"$APIKEYCTL" --db "$db" revoke "$(key_id "$db" -1)" >/dev/null
verify_is "REVOKED" "$db" "$rk" REVOKED
verify_is "REVOKED comes before a scope check" "$db" "$rk" REVOKED --scope nope:nope

# ACCOUNT_INACTIVE, PLAN_REQUIRED
bk=$(mk --owner bob --scopes docs:read)
"$APIKEYCTL" --db "$db" account set bob --active no >/dev/null
verify_is "ACCOUNT_INACTIVE: a suspended owner" "$db" "$bk" ACCOUNT_INACTIVE
verify_is "ACCOUNT_INACTIVE comes before WRONG_USER and scopes" "$db" "$bk" ACCOUNT_INACTIVE --owner zed --scope x:y
"$APIKEYCTL" --db "$db" account set bob --active yes --plan starter >/dev/null
verify_is "a reactivated owner's key is VALID" "$db" "$bk" VALID
verify_is "PLAN_REQUIRED: plan not in the list" "$db" "$bk" PLAN_REQUIRED --plan pro,ultra
verify_is "PLAN_REQUIRED: an owner without an account has no plan" "$db" "$key" PLAN_REQUIRED --plan pro
"$APIKEYCTL" --db "$db" account set bob --plan ultra >/dev/null
verify_is "VALID: plan in the list" "$db" "$bk" VALID --plan pro,ultra

# WRONG_USER
verify_is "WRONG_USER: another owner's key" "$db" "$key" WRONG_USER --owner bob
verify_is "WRONG_USER comes before scopes" "$db" "$key" WRONG_USER --owner bob --scope x:y

# INSUFFICIENT_SCOPE and wildcards
verify_is "INSUFFICIENT_SCOPE" "$db" "$key" INSUFFICIENT_SCOPE --scope docs:write
verify_is "INSUFFICIENT_SCOPE: every scope must be granted" "$db" "$key" INSUFFICIENT_SCOPE --scope docs:read --scope docs:write
wk=$(mk --owner carol --scopes 'docs:*')
verify_is "resource:* grants any action" "$db" "$wk" VALID --scope docs:delete
verify_is "resource:* grants no other resource" "$db" "$wk" INSUFFICIENT_SCOPE --scope pam:sshd
sk=$(mk --owner carol --scopes '*')
verify_is "* grants everything" "$db" "$sk" VALID --scope pam:sshd --scope anything:else

# RATE_LIMITED: failures are not charged
lk=$(mk --owner dora --scopes docs:read --rate-limit 2)
verify_is "rate limit 2: first request" "$db" "$lk" VALID
verify_is "a failed check is not charged (1)" "$db" "$lk" INSUFFICIENT_SCOPE --scope x:y
verify_is "a failed check is not charged (2)" "$db" "$lk" WRONG_USER --owner bob
verify_is "rate limit 2: second request" "$db" "$lk" VALID
verify_is "RATE_LIMITED: third request within the minute" "$db" "$lk" RATE_LIMITED
run --db "$db" log --key "$(key_id "$db" -1)" --json
is "a RATE_LIMITED failure is audited" "$(jq_py "j[0]['event'] + ' ' + j[0]['reason']" <<<"$OUT")" "failed RATE_LIMITED"
is "use count counts only VALID answers" "$("$APIKEYCTL" --db "$db" show "$(key_id "$db" -1)" --json | jq_py "j['use_count']")" 2

# UNAVAILABLE: missing and corrupt stores, fail closed
verify_is "UNAVAILABLE: no database" "$T_TMP/none.db" "$key" UNAVAILABLE
like "... with one clear error line" "$ERR" "^apikeyctl: verify: cannot open the key store: .*none.db: No such file or directory"
cp "$db" "$T_TMP/corrupt.db"; cp "$db.pepper" "$T_TMP/corrupt.db.pepper"
head -c 8192 /dev/urandom >"$T_TMP/corrupt.db"
verify_is "UNAVAILABLE: a corrupt database" "$T_TMP/corrupt.db" "$key" UNAVAILABLE
one_line "... with one error line"

# EXPIRED: the keys made first
left=$(( 4 - ($(date +%s) - t0) ))
[ "$left" -gt 0 ] && sleep "$left"
verify_is "EXPIRED: past --expires" "$db" "$exp_key" EXPIRED
verify_is "EXPIRED: a rotated key after its grace" "$db" "$rot_old" EXPIRED
verify_is "EXPIRED comes before a scope check" "$db" "$exp_key" EXPIRED --scope nope:nope

done_testing

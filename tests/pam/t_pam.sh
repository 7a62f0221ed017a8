#!/usr/bin/env bash
# t_pam.sh — the module through real libpam (pamtester under pam_wrapper, no
# root, no /etc change): every SPEC §3 outcome with its PAM code, the
# account re-check after a revoke on the same handle, the session
# environment, usage and audit records, and that no key reaches a log line.
# Options have their own script (t_options.sh).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pam-lib.sh"
pam_require

M=$PAM_MODULE
U=daemon          # login users that exist on every Debian system
U2=bin
DB=$(new_db keys)
OTHER_DB=$(new_db other)   # a key from here is well-formed but unknown to DB
A="db=$DB"

svc apitest "auth required $M $A" "account required $M $A" "session required $M $A"

read -r K_GOOD ID_GOOD <<<"$(mk_key "$DB" $U pam:apitest,http:read --rate-limit 1000)"
read -r K_BIN ID_BIN <<<"$(mk_key "$DB" $U2 pam:apitest --rate-limit 1000)"
read -r K_HTTP ID_HTTP <<<"$(mk_key "$DB" $U http:read)"
read -r K_REV ID_REV <<<"$(mk_key "$DB" $U pam:apitest)"
read -r K_EXP ID_EXP <<<"$(mk_key "$DB" $U pam:apitest --expires 1s)"
read -r K_RATE ID_RATE <<<"$(mk_key "$DB" $U pam:apitest --rate-limit 1)"
read -r K_STRANGER _ <<<"$(mk_key "$OTHER_DB" $U pam:apitest)"
"$APIKEYCTL" --db "$DB" revoke "$ID_REV" >/dev/null
t_exp=$(date +%s)
is "the keys were issued" "$(printf '%s\n' "$K_GOOD" "$K_BIN" "$K_HTTP" "$K_REV" "$K_EXP" "$K_RATE" "$K_STRANGER" | grep -c '^ak_')" 7

# ---- VALID: auth, account and session on one handle --------------------------
is "VALID: authenticate + acct_mgmt + open_session" \
	"$(pt apitest $U "$K_GOOD" authenticate acct_mgmt open_session close_session)" PAM_SUCCESS
like "VALID is logged with the key id" "$(pt_log)" "auth: user=$U key=$ID_GOOD outcome=VALID"
like "account re-check is logged" "$(pt_log)" "account: user=$U key=$ID_GOOD outcome=VALID"
like "the prompt is the default one" "$(cat "$PT_OUT")" "API key: "

# ---- each failure with its PAM code -------------------------------------------
is "MISSING_KEY (empty answer) → PAM_AUTH_ERR" "$(pt apitest $U "" authenticate)" PAM_AUTH_ERR
like "MISSING_KEY logged" "$(pt_log)" "outcome=MISSING_KEY"
echo "hunter2-unix-password" >>"$PAM_SECRETS"
is "MALFORMED_KEY (a unix password) → PAM_AUTH_ERR" \
	"$(pt apitest $U "hunter2-unix-password" authenticate)" PAM_AUTH_ERR
like "MALFORMED_KEY logged" "$(pt_log)" "outcome=MALFORMED_KEY"
typo=${K_GOOD:0:38}X
[ "$typo" = "$K_GOOD" ] && typo=${K_GOOD:0:38}Y
echo "$typo" >>"$PAM_SECRETS"
is "MALFORMED_KEY (a typo: checksum) → PAM_AUTH_ERR" "$(pt apitest $U "$typo" authenticate)" PAM_AUTH_ERR
is "INVALID_KEY (well-formed, never issued here) → PAM_AUTH_ERR" \
	"$(pt apitest $U "$K_STRANGER" authenticate)" PAM_AUTH_ERR
like "INVALID_KEY logged" "$(pt_log)" "key=- outcome=INVALID_KEY"
is "REVOKED → PAM_AUTH_ERR" "$(pt apitest $U "$K_REV" authenticate)" PAM_AUTH_ERR
like "REVOKED logged with its id" "$(pt_log)" "key=$ID_REV outcome=REVOKED"
while [ "$(date +%s)" -le $((t_exp + 1)) ]; do sleep 0.2; done
is "EXPIRED → PAM_AUTH_ERR (auth)" "$(pt apitest $U "$K_EXP" authenticate)" PAM_AUTH_ERR
like "EXPIRED logged" "$(pt_log)" "key=$ID_EXP outcome=EXPIRED"
is "WRONG_USER (another user's key) → PAM_AUTH_ERR" "$(pt apitest $U "$K_BIN" authenticate)" PAM_AUTH_ERR
like "WRONG_USER logged" "$(pt_log)" "key=$ID_BIN outcome=WRONG_USER"
is "INSUFFICIENT_SCOPE: an HTTP-only key cannot log in (default scope pam:apitest) → PAM_PERM_DENIED" \
	"$(pt apitest $U "$K_HTTP" authenticate)" PAM_PERM_DENIED
like "INSUFFICIENT_SCOPE logged" "$(pt_log)" "key=$ID_HTTP outcome=INSUFFICIENT_SCOPE"
svc otherservice "auth required $M $A"
is "default scope follows the service: pam:otherservice is not granted → PAM_PERM_DENIED" \
	"$(pt otherservice $U "$K_GOOD" authenticate)" PAM_PERM_DENIED
like "the scope checked is pam:<service>" "$(pt_log)" "outcome=INSUFFICIENT_SCOPE"
is "RATE_LIMITED: first use of a 1/min key passes" "$(pt apitest $U "$K_RATE" authenticate)" PAM_SUCCESS
is "RATE_LIMITED: the second within the minute → PAM_MAXTRIES" \
	"$(pt apitest $U "$K_RATE" authenticate)" PAM_MAXTRIES
like "RATE_LIMITED logged with retry_after" "$(pt_log)" "key=$ID_RATE outcome=RATE_LIMITED retry_after=[0-9]+"

# accounts: suspended owner, plans
"$APIKEYCTL" --db "$DB" account set $U2 --plan pro --active yes >/dev/null
svc plan "auth required $M $A scope=pam:apitest require_plan=pro,ultra" "account required $M $A"
is "require_plan: an owner on plan pro passes" "$(pt plan $U2 "$K_BIN" authenticate acct_mgmt)" PAM_SUCCESS
is "PLAN_REQUIRED: an owner without the plan → PAM_PERM_DENIED" "$(pt plan $U "$K_GOOD" authenticate)" PAM_PERM_DENIED
like "PLAN_REQUIRED logged" "$(pt_log)" "key=$ID_GOOD outcome=PLAN_REQUIRED"
"$APIKEYCTL" --db "$DB" account set $U2 --active no >/dev/null
is "ACCOUNT_INACTIVE: a suspended owner → PAM_PERM_DENIED" "$(pt apitest $U2 "$K_BIN" authenticate)" PAM_PERM_DENIED
like "ACCOUNT_INACTIVE logged" "$(pt_log)" "key=$ID_BIN outcome=ACCOUNT_INACTIVE"
"$APIKEYCTL" --db "$DB" account set $U2 --active yes >/dev/null

# users
is "a user unknown to the system → PAM_USER_UNKNOWN" "$(pt apitest no-such-user-$$ "$K_GOOD" authenticate)" PAM_USER_UNKNOWN
like "…and the module still asked (a prompt tells nothing)" "$(cat "$PT_OUT")" "API key: "
long=$(printf 'u%.0s' {1..80})
is "a user name too long to own a key → PAM_USER_UNKNOWN" "$(pt apitest "$long" "$K_GOOD" authenticate)" PAM_USER_UNKNOWN

# ---- UNAVAILABLE: missing, unreadable, corrupt store → PAM_AUTHINFO_UNAVAIL ---
svc missing "auth required $M db=$T_TMP/absent.db scope=pam:apitest"
is "UNAVAILABLE: missing store → PAM_AUTHINFO_UNAVAIL" "$(pt missing $U "$K_GOOD" authenticate)" PAM_AUTHINFO_UNAVAIL
like "missing store: a log line names it" "$(pt_log)" "absent.db.*(No such file|unavailable)"
head -c 16384 /dev/urandom >"$T_TMP/corrupt.db"
cp "$DB.pepper" "$T_TMP/corrupt.db.pepper"
svc corrupt "auth required $M db=$T_TMP/corrupt.db scope=pam:apitest"
is "UNAVAILABLE: corrupt store → PAM_AUTHINFO_UNAVAIL" "$(pt corrupt $U "$K_GOOD" authenticate)" PAM_AUTHINFO_UNAVAIL
like "corrupt store: a log line" "$(pt_log)" "corrupt.db unavailable"
cp "$DB" "$T_TMP/nopepper.db"
svc nopepper "auth required $M db=$T_TMP/nopepper.db scope=pam:apitest"
is "UNAVAILABLE: store without its pepper → PAM_AUTHINFO_UNAVAIL" "$(pt nopepper $U "$K_GOOD" authenticate)" PAM_AUTHINFO_UNAVAIL
like "missing pepper: a log line" "$(pt_log)" "pepper"
# Unreadable: root reads anything, so as root run pamtester as nobody.
mkdir -m 0755 "$T_TMP/ro" "$T_TMP/ro/pam.d"
cp "$DB" "$T_TMP/ro/keys.db"
cp "$DB.pepper" "$T_TMP/ro/keys.db.pepper"
printf '%s\n' "auth required $M db=$T_TMP/ro/keys.db scope=pam:apitest" >"$T_TMP/ro/pam.d/unreadable"
printf 'auth required pam_deny.so\n' >"$T_TMP/ro/pam.d/other"
chmod 0644 "$T_TMP/ro/pam.d/"*
if [ "$(id -u)" = 0 ]; then
	chmod 0711 "$T_TMP"
	chmod 0640 "$T_TMP/ro/keys.db"
	as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
	chmod 0000 "$T_TMP/ro/keys.db"
	as_user=()
fi
out=$(printf '%s\n' "$K_GOOD" | (cd / && env LD_PRELOAD="$PAM_PRELOAD" PAM_WRAPPER=1 \
	PAM_WRAPPER_SERVICE_DIR="$T_TMP/ro/pam.d" PAM_WRAPPER_DEBUGLEVEL=2 \
	timeout 30 "${as_user[@]}" pamtester -v unreadable $U authenticate 2>&1))
grep -a 'SYSLOG(' <<<"$out" >>"$PAM_LOG"
is "UNAVAILABLE: unreadable store → PAM_AUTHINFO_UNAVAIL" \
	"$(pam_code "$(grep -a '^pamtester: ' <<<"$out" | tail -n 1)")" PAM_AUTHINFO_UNAVAIL
like "unreadable store: a log line" "$out" "keys.db unavailable"

# ---- account phase ------------------------------------------------------------
# A revoke between auth and account, on the same handle: pam_exec runs
# apikeyctl in the account stack right before the module re-checks.
read -r K_LATE ID_LATE <<<"$(mk_key "$DB" $U pam:apitest)"
printf '#!/bin/sh\nexec %s --db %s revoke %s\n' "$APIKEYCTL" "$DB" "$ID_LATE" >"$T_TMP/revoke.sh"
chmod +x "$T_TMP/revoke.sh"
svc revoke_between "auth required $M $A scope=pam:apitest" \
	"account required pam_exec.so quiet $T_TMP/revoke.sh" "account required $M $A"
is "revoked between auth and account (same handle) → acct_mgmt PAM_PERM_DENIED" \
	"$(pt revoke_between $U "$K_LATE" authenticate acct_mgmt)" PAM_PERM_DENIED
like "…auth had passed" "$(pt_log)" "auth: user=$U key=$ID_LATE outcome=VALID"
like "…account names the revocation" "$(pt_log)" "account: user=$U key=$ID_LATE outcome=REVOKED"

read -r K_SUSP ID_SUSP <<<"$(mk_key "$DB" $U2 pam:apitest)"
printf '#!/bin/sh\nexec %s --db %s account set %s --active no\n' "$APIKEYCTL" "$DB" $U2 >"$T_TMP/suspend.sh"
chmod +x "$T_TMP/suspend.sh"
svc suspend_between "auth required $M $A scope=pam:apitest" \
	"account required pam_exec.so quiet $T_TMP/suspend.sh" "account required $M $A"
is "owner suspended between auth and account → PAM_PERM_DENIED" \
	"$(pt suspend_between $U2 "$K_SUSP" authenticate acct_mgmt)" PAM_PERM_DENIED
"$APIKEYCTL" --db "$DB" account set $U2 --active yes >/dev/null

# expiry is in whole seconds from the next whole one: "5s" leaves 5-6 s for
# auth, however loaded the machine, and the account step comes 6.2 s later
read -r K_SHORT ID_SHORT <<<"$(mk_key "$DB" $U pam:apitest --expires 5s)"
svc expire_between "auth required $M $A scope=pam:apitest" \
	"account required pam_exec.so quiet /bin/sleep 6.2" "account required $M $A"
is "expired between auth and account → PAM_ACCT_EXPIRED" \
	"$(pt expire_between $U "$K_SHORT" authenticate acct_mgmt)" PAM_ACCT_EXPIRED
like "…logged as EXPIRED in account" "$(pt_log)" "account: user=$U key=$ID_SHORT outcome=EXPIRED"

# PAM_USER changed between auth and account (pam_set_items sets it from the
# environment): the key no longer belongs to the user being admitted.
svc user_between "auth required $M $A scope=pam:apitest" \
	"account required $PWRAP_MODULES/pam_set_items.so" "account required $M $A"
is "PAM_USER changed between auth and account → PAM_PERM_DENIED" \
	"$(PAM_USER=$U2 pt user_between $U "$K_GOOD" authenticate acct_mgmt)" PAM_PERM_DENIED
like "…logged as WRONG_USER in account" "$(pt_log)" "account: user=$U2 key=$ID_GOOD outcome=WRONG_USER"

# PAM_IGNORE when this handle did not log in with a key: an ignored module
# lets the stack reach pam_debug, whose distinct answer shows it.
svc acct_ignore "auth required pam_permit.so" \
	"account [ignore=ignore default=die] $M $A" "account required pam_debug.so acct=cred_unavail"
is "account without a key login → PAM_IGNORE" "$(pt acct_ignore $U "" authenticate acct_mgmt)" PAM_CRED_UNAVAIL
# session without a key login: nothing exported, and no failure (sshd opens
# the session in a process where a keyboard-interactive auth left no data)
svc sess_nokey "auth required pam_permit.so" "session required $M $A" \
	"session required pam_exec.so quiet log=$T_TMP/nokey-env.log /usr/bin/env"
is "session without a key login → PAM_SUCCESS" "$(pt sess_nokey $U "" authenticate open_session)" PAM_SUCCESS
is "…and exports nothing" "$(grep -c '^APIKEY_' "$T_TMP/nokey-env.log")" 0

# ---- session environment --------------------------------------------------------
svc env "auth required $M $A scope=pam:apitest" "account required $M $A" \
	"session required $M $A" "session required pam_exec.so quiet log=$T_TMP/env.log /usr/bin/env"
is "session with the environment dumped" "$(pt env $U "$K_GOOD" authenticate acct_mgmt open_session)" PAM_SUCCESS
envlog=$(cat "$T_TMP/env.log" 2>/dev/null)
is "session exports APIKEY_ID" "$(grep -x "APIKEY_ID=.*" <<<"$envlog")" "APIKEY_ID=$ID_GOOD"
is "session exports APIKEY_OWNER" "$(grep -x "APIKEY_OWNER=.*" <<<"$envlog")" "APIKEY_OWNER=$U"
is "session exports APIKEY_SCOPES" "$(grep -x "APIKEY_SCOPES=.*" <<<"$envlog")" "APIKEY_SCOPES=pam:apitest,http:read"
# The values are put at auth too (for sshd's keyboard-interactive child, see
# docs/design/pam.md); to see that the session phase itself exports them,
# pam_env unsets them between auth and the module's session.
printf 'APIKEY_ID\nAPIKEY_OWNER\nAPIKEY_SCOPES\n' >"$T_TMP/unset.conf"
svc env2 "auth required $M $A scope=pam:apitest" \
	"session required pam_env.so readenv=0 user_readenv=0 conffile=$T_TMP/unset.conf" \
	"session required pam_exec.so quiet log=$T_TMP/env-unset.log /usr/bin/env" \
	"session required $M $A" "session required pam_exec.so quiet log=$T_TMP/env2.log /usr/bin/env"
is "session after the auth-time values were unset" "$(pt env2 $U "$K_GOOD" authenticate open_session)" PAM_SUCCESS
is "…pam_env did unset them" "$(grep -c '^APIKEY_' "$T_TMP/env-unset.log")" 0
is "…the session phase exports APIKEY_ID again" "$(grep -x "APIKEY_ID=.*" "$T_TMP/env2.log")" "APIKEY_ID=$ID_GOOD"
# setcred: nothing to establish, and never a failure after a key login
svc cred "auth sufficient $M $A scope=pam:apitest" "auth requisite pam_deny.so"
is "setcred after a key login through 'sufficient' succeeds" "$(pt cred $U "$K_GOOD" authenticate setcred)" PAM_SUCCESS
# later modules get the typed key as PAM_AUTHTOK (pam_get_items copies
# items into the PAM environment, which pam_exec dumps)
svc authtok "auth optional $M $A scope=pam:apitest" \
	"auth required $PWRAP_MODULES/pam_get_items.so" \
	"session required pam_exec.so quiet log=$T_TMP/items.log /usr/bin/env"
echo "typed-for-the-next-module" >>"$PAM_SECRETS"
pt authtok $U "typed-for-the-next-module" authenticate open_session >/dev/null
like "a typed answer is left in PAM_AUTHTOK for later modules" "$(cat "$T_TMP/items.log" 2>/dev/null)" \
	"PAM_AUTHTOK=typed-for-the-next-module"

# ---- usage and audit, in the shared store ----------------------------------------
uses=$(json_get "$DB" list --owner $U -- "[k['use_count'] for k in d if k['id']=='$ID_GOOD'][0]")
like "use_count of the good key counts PAM logins" "$uses" '^[1-9][0-9]*$'
last=$(json_get "$DB" list --owner $U -- "[k['last_used_at'] for k in d if k['id']=='$ID_GOOD'][0]")
like "last_used_at is set" "$last" '^20[0-9][0-9]-'
ev=$(json_get "$DB" log --key "$ID_REV" -- "' '.join((e['event'] or '')+'/'+(e['reason'] or '')+'/'+(e['source'] or '') for e in d)")
like "audit: the revoked key's failed login is recorded with reason and source" "$ev" "failed/REVOKED/pam:apitest"
ev=$(json_get "$DB" log --key "$ID_RATE" -- "' '.join((e['event'] or '')+'/'+(e['reason'] or '') for e in d)")
like "audit: rate-limited login recorded" "$ev" "failed/RATE_LIMITED"
ev=$(json_get "$DB" log --key "$ID_BIN" -- "' '.join((e['event'] or '')+'/'+(e['reason'] or '') for e in d)")
like "audit: wrong-user login recorded" "$ev" "failed/WRONG_USER"

# ---- logs ---------------------------------------------------------------------------
no_secret_logged
done_testing

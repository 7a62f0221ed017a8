#!/usr/bin/env bash
# t_options.sh — every module option through real libpam (pamtester under
# pam_wrapper): db= conf= scope= require_plan= use_first_pass try_first_pass
# prompt= ignore_unknown_user debug, an unknown option (logged, ignored) and
# bad values (logged, never "allow").
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pam-lib.sh"
pam_require

M=$PAM_MODULE
U=daemon
U2=bin
NOKEYS=sys        # a system user who owns no key
MATRIX=$PWRAP_MODULES/pam_matrix.so
SET_ITEMS=$PWRAP_MODULES/pam_set_items.so
DB=$(new_db keys)
A="db=$DB"

read -r K ID <<<"$(mk_key "$DB" $U pam:opt,http:read --rate-limit 1000)"
read -r K_HTTP ID_HTTP <<<"$(mk_key "$DB" $U http:read --rate-limit 1000)"
read -r K_REV ID_REV <<<"$(mk_key "$DB" $U pam:opt)"
"$APIKEYCTL" --db "$DB" revoke "$ID_REV" >/dev/null

# ---- db= ----------------------------------------------------------------------------
svc opt "auth required $M $A" "account required $M $A"
is "db=: the named store is used" "$(pt opt $U "$K" authenticate acct_mgmt)" PAM_SUCCESS
svc opt_nodb "auth required $M db=$T_TMP/elsewhere.db scope=pam:opt"
is "db=: a store that does not exist → PAM_AUTHINFO_UNAVAIL" \
	"$(pt opt_nodb $U "$K" authenticate)" PAM_AUTHINFO_UNAVAIL

# ---- conf= ---------------------------------------------------------------------------
printf '# test configuration\ndb=%s\nscope=pam:opt\n' "$DB" >"$T_TMP/good.conf"
svc conf_only "auth required $M conf=$T_TMP/good.conf"
is "conf=: db and scope come from the file" "$(pt conf_only $U "$K" authenticate)" PAM_SUCCESS
printf 'db=%s/nowhere.db\nscope=http:read\n' "$T_TMP" >"$T_TMP/override.conf"
svc conf_override "auth required $M conf=$T_TMP/override.conf db=$DB scope=pam:opt"
is "module arguments override the conf file" "$(pt conf_override $U "$K" authenticate)" PAM_SUCCESS
svc conf_missing "auth required $M conf=$T_TMP/no-such.conf $A scope=pam:opt"
is "conf= naming a missing file → PAM_AUTHINFO_UNAVAIL (never the defaults)" \
	"$(pt conf_missing $U "$K" authenticate)" PAM_AUTHINFO_UNAVAIL
like "…and it is logged" "$(pt_log)" "no-such.conf"
printf 'db=%s\nscope=pam:opt\nfrobnicate=yes\nbusy_timeout_ms=lots\n' "$DB" >"$T_TMP/bad.conf"
svc conf_bad "auth required $M conf=$T_TMP/bad.conf"
is "a conf file with bad lines still works for its good lines" "$(pt conf_bad $U "$K" authenticate)" PAM_SUCCESS
like "…each bad line is logged with file and line" "$(pt_log)" "bad.conf:3: unknown option"
like "…bad value logged" "$(pt_log)" "bad.conf:4: busy_timeout_ms"

# ---- scope= ----------------------------------------------------------------------------
svc scope_http "auth required $M $A scope=http:read"
is "scope=http:read admits an HTTP key on a PAM service" "$(pt scope_http $U "$K_HTTP" authenticate)" PAM_SUCCESS
svc scope_two "auth required $M $A scope=pam:opt,admin:login"
is "scope= with two scopes needs both → PAM_PERM_DENIED" "$(pt scope_two $U "$K" authenticate)" PAM_PERM_DENIED
svc scope_default "auth required $M $A"
is "no scope=: default pam:<service> is required of the HTTP-only key → PAM_PERM_DENIED" \
	"$(pt scope_default $U "$K_HTTP" authenticate)" PAM_PERM_DENIED
svc scope_bad "auth required $M $A scope=Not-A-Scope!"
is "bad scope= value: logged, falls back to pam:<service> (not to 'no scope')" \
	"$(pt scope_bad $U "$K_HTTP" authenticate)" PAM_PERM_DENIED
like "…logged" "$(pt_log)" "bad option \\(scope: not a valid scope list\\)"
svc scope_empty "auth required $M $A scope="
is "empty scope= does not mean 'no scope required'" "$(pt scope_empty $U "$K_HTTP" authenticate)" PAM_PERM_DENIED
svc 'bad+svc' "auth required $M $A"
is "a service name that cannot form pam:<service> refuses (set scope=)" \
	"$(pt 'bad+svc' $U "$K" authenticate)" PAM_SERVICE_ERR
like "…logged" "$(pt_log)" "not a valid scope part"

# ---- require_plan= ---------------------------------------------------------------------
"$APIKEYCTL" --db "$DB" account set $U --plan basic >/dev/null
svc plan_pro "auth required $M $A scope=pam:opt require_plan=pro"
is "require_plan=pro refuses plan basic → PAM_PERM_DENIED" "$(pt plan_pro $U "$K" authenticate)" PAM_PERM_DENIED
svc plan_list "auth required $M $A scope=pam:opt require_plan=pro,basic"
is "require_plan=pro,basic admits plan basic" "$(pt plan_list $U "$K" authenticate)" PAM_SUCCESS
svc plan_acct "auth required $M $A scope=pam:opt" "account required $M require_plan=pro"
is "require_plan= on the account line is checked there → PAM_PERM_DENIED" \
	"$(pt plan_acct $U "$K" authenticate acct_mgmt)" PAM_PERM_DENIED

# ---- use_first_pass / try_first_pass -----------------------------------------------------
# pam_set_items puts $PAM_AUTHTOK (process environment) into the PAM item, as
# an earlier password module would; pam_matrix is a real password module
# that wipes the token it read once it has checked it.
svc ufp "auth required $SET_ITEMS" "auth required $M $A scope=pam:opt use_first_pass"
is "use_first_pass: the earlier module's token is the key, no prompt" \
	"$(PAM_AUTHTOK=$K pt ufp $U "" authenticate)" PAM_SUCCESS
unlike_prompt=$(grep -c "API key:" "$PT_OUT")
is "…the module did not prompt" "$unlike_prompt" 0
is "use_first_pass: a revoked earlier token fails, no second chance" \
	"$(PAM_AUTHTOK=$K_REV pt ufp $U "$K" authenticate)" PAM_AUTH_ERR
printf '%s:%s:ufp_matrix\n' $U "unix-secret-1" >"$T_TMP/passdb"
echo "unix-secret-1" >>"$PAM_SECRETS"
svc ufp_matrix "auth optional $MATRIX passdb=$T_TMP/passdb" "auth required $M $A scope=pam:opt use_first_pass"
is "use_first_pass after pam_matrix (no usable token left) fails without prompting" \
	"$(pt ufp_matrix $U "$K" authenticate)" PAM_AUTH_ERR
is "…no API key prompt was shown" "$(grep -c "API key:" "$PT_OUT")" 0
svc ufp_none "auth required $M $A scope=pam:opt use_first_pass"
is "use_first_pass with no earlier module → PAM_AUTH_ERR (MISSING_KEY)" \
	"$(pt ufp_none $U "$K" authenticate)" PAM_AUTH_ERR
like "…logged as MISSING_KEY" "$(pt_log)" "outcome=MISSING_KEY"

svc tfp "auth required $SET_ITEMS" "auth required $M $A scope=pam:opt try_first_pass"
is "try_first_pass: a good earlier token is used" "$(PAM_AUTHTOK=$K pt tfp $U "" authenticate)" PAM_SUCCESS
is "…without prompting" "$(grep -c "API key:" "$PT_OUT")" 0
echo "not-a-key-unix-pw" >>"$PAM_SECRETS"
is "try_first_pass: an earlier token that is not a key → prompt, typed key passes" \
	"$(PAM_AUTHTOK=not-a-key-unix-pw pt tfp $U "$K" authenticate)" PAM_SUCCESS
is "…one prompt shown" "$(grep -c "API key:" "$PT_OUT")" 1
is "try_first_pass: a refused earlier key (revoked) → prompt, typed key passes" \
	"$(PAM_AUTHTOK=$K_REV pt tfp $U "$K" authenticate)" PAM_SUCCESS
like "…the earlier key's refusal is logged" "$(pt_log)" "earlier token.*key=$ID_REV outcome=REVOKED"
is "try_first_pass: a bad typed key after a bad earlier one fails" \
	"$(PAM_AUTHTOK=not-a-key-unix-pw pt tfp $U "$K_REV" authenticate)" PAM_AUTH_ERR
svc tfp_matrix "auth optional $MATRIX passdb=$T_TMP/passdb" "auth required $M $A scope=pam:opt try_first_pass"
is "try_first_pass after pam_matrix: prompts and accepts the key" \
	"$(pt tfp_matrix $U "unix-secret-1
$K" authenticate)" PAM_SUCCESS

# ---- prompt= ---------------------------------------------------------------------------------
svc prompt1 "auth required $M $A scope=pam:opt prompt=Key?"
pt prompt1 $U "$K" authenticate >/dev/null
like "prompt= sets the prompt text" "$(cat "$PT_OUT")" "Key\\?"
svc prompt2 "auth required $M $A scope=pam:opt [prompt=Your API key, please: ]"
is "prompt= with spaces ([...] syntax) works" "$(pt prompt2 $U "$K" authenticate)" PAM_SUCCESS
like "…and is shown" "$(cat "$PT_OUT")" "Your API key, please: "

# ---- ignore_unknown_user --------------------------------------------------------------------
# PAM_IGNORE is seen through the stack: ignore lets pam_debug answer.
svc iuu "auth [success=done ignore=ignore default=die] $M $A scope=pam:opt ignore_unknown_user" \
	"auth required pam_debug.so auth=cred_unavail"
is "ignore_unknown_user: a user with no keys → PAM_IGNORE" "$(pt iuu $NOKEYS "$K" authenticate)" PAM_CRED_UNAVAIL
is "…and was not prompted" "$(grep -c "API key:" "$PT_OUT")" 0
is "ignore_unknown_user: a user with keys is still checked (good key)" "$(pt iuu $U "$K" authenticate)" PAM_SUCCESS
is "ignore_unknown_user: a user with keys and a bad key fails, not ignored" \
	"$(pt iuu $U "$K_REV" authenticate)" PAM_AUTH_ERR
svc no_iuu "auth [success=done ignore=ignore default=die] $M $A scope=pam:opt" \
	"auth required pam_debug.so auth=cred_unavail"
is "without ignore_unknown_user: a user with no keys fails" "$(pt no_iuu $NOKEYS "$K" authenticate)" PAM_AUTH_ERR
svc iuu_nodb "auth [success=done ignore=ignore default=die] $M db=$T_TMP/absent.db ignore_unknown_user" \
	"auth required pam_debug.so auth=cred_unavail"
is "ignore_unknown_user with the store unavailable: not ignored → PAM_AUTHINFO_UNAVAIL" \
	"$(pt iuu_nodb $NOKEYS "$K" authenticate)" PAM_AUTHINFO_UNAVAIL

# ---- debug -------------------------------------------------------------------------------------
svc dbg "auth required $M $A scope=pam:opt debug"
pt dbg $U "$K" authenticate >/dev/null
like "debug: LOG_DEBUG lines with the options in effect" "$(pt_log)" "SYSLOG\\(7\\): options: .*db=$DB"
svc nodbg "auth required $M $A scope=pam:opt"
pt nodbg $U "$K" authenticate >/dev/null
is "without debug: no LOG_DEBUG line" "$(pt_log | grep -c 'SYSLOG(7)')" 0

# ---- unknown options and bad values -----------------------------------------------------------
svc unknown "auth required $M $A scope=pam:opt frobnicate=1 use_second_pass"
is "unknown options are ignored (auth still works)" "$(pt unknown $U "$K" authenticate)" PAM_SUCCESS
like "…and logged" "$(pt_log)" "unknown option 'frobnicate=1' ignored"
like "…each of them" "$(pt_log)" "unknown option 'use_second_pass' ignored"
svc badnum "auth required $M $A scope=pam:opt busy_timeout_ms=-5 key_length=5"
is "bad numbers are logged and the defaults kept" "$(pt badnum $U "$K" authenticate)" PAM_SUCCESS
like "…busy_timeout_ms logged" "$(pt_log)" "busy_timeout_ms"
like "…an inconsistent key format falls back to the default profile" "$(pt_log)" "inconsistent"
svc badbad "auth required $M $A scope=pam:opt scope=!!!"
is "a bad value after a good one keeps the good one (never widens)" "$(pt badbad $U "$K_HTTP" authenticate)" PAM_PERM_DENIED
like "…the good scope is what refused" "$(pt_log)" "key=$ID_HTTP outcome=INSUFFICIENT_SCOPE"
svc emptydb "auth required $M db= scope=pam:opt"
check "db= empty: logged, the previous (default) store is kept → never success" \
	test "$(pt emptydb $U "$K" authenticate)" != PAM_SUCCESS
like "…logged" "$(pt_log)" "db: empty path"

# ---- a profile (apikey.conf(5) COMPATIBLE ANSWERS) ----------------------------------------
printf '%s\n' "db=$DB" 'scope=pam:opt' 'error_code.MALFORMED_KEY=INVALID_KEY' \
	'error_template={"e":"${code}"}' 'scopes=pam:*,http:read' >"$T_TMP/profile.conf"
svc profile "auth required $M conf=$T_TMP/profile.conf"
is "profile: the answer is the outcome's, whatever its code name" "$(pt profile $U "ak_junk" authenticate)" PAM_AUTH_ERR
like "…the log line keeps the outcome and adds the profile's code" "$(pt_log)" "key=- outcome=MALFORMED_KEY code=INVALID_KEY"
is "profile: a good key logs in" "$(pt profile $U "$K" authenticate)" PAM_SUCCESS
like "…no code= when the profile does not rename the outcome" "$(pt_log)" "key=$ID outcome=VALID\$"
printf '%s\n' "db=$DB" 'scope=pam:opt' 'error_template={"e":${code}}' >"$T_TMP/badprofile.conf"
svc badprofile "auth required $M conf=$T_TMP/badprofile.conf"
is "a broken template never changes whether a key is accepted" "$(pt badprofile $U "$K" authenticate)" PAM_SUCCESS
like "…it is logged with its line" "$(pt_log)" "badprofile.conf:3: error_template: not valid JSON"

# an imported key without our checksum logs in through its old hash (compat.md D16)
IK="ak_$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 36)"
printf '%s\n' "$IK" >>"$PAM_SECRETS"
printf '{"hash":"%s","hint":"%s","owner":"%s","scopes":"pam:opt"}\n' \
	"$("$BUILD/tests/cli/apikey-testdata" hash sha256 "$IK")" "${IK:0:10}" $U >"$T_TMP/import.jsonl"
"$APIKEYCTL" --db "$DB" import "$T_TMP/import.jsonl" >/dev/null
is "an imported key without our checksum logs in" "$(pt profile $U "$IK" authenticate)" PAM_SUCCESS
is "…and again, once re-hashed" "$(pt profile $U "$IK" authenticate)" PAM_SUCCESS
IKTYPO="${IK:0:38}$([ "${IK: -1}" = 0 ] && echo 1 || echo 0)"
is "…a typo of it is no key (MALFORMED_KEY)" "$(pt profile $U "$IKTYPO" authenticate)" PAM_AUTH_ERR
like "…logged as malformed" "$(pt_log)" "outcome=MALFORMED_KEY"

# ---- stacking with pam_faillock (the man page's example) ------------------------------------
FL="dir=$T_TMP/faillock deny=3 unlock_time=600"
mkdir -m 0700 "$T_TMP/faillock"
svc faillock "auth required pam_faillock.so preauth $FL" \
	"auth [success=1 default=bad] $M $A scope=pam:opt" \
	"auth [default=die] pam_faillock.so authfail $FL" \
	"auth sufficient pam_faillock.so authsucc $FL" \
	"account required pam_faillock.so $FL" "account required $M $A"
is "faillock stack: a good key logs in" "$(pt faillock $U "$K" authenticate acct_mgmt)" PAM_SUCCESS
for i in 1 2 3; do pt faillock $U "$K_REV" authenticate >/dev/null; done
is "faillock stack: three refused keys lock the user" "$(pt faillock $U "$K" authenticate)" PAM_AUTH_ERR
like "…although the key itself is valid: pam_faillock has the last word" "$(pt_log)" "key=$ID outcome=VALID"

no_secret_logged
done_testing

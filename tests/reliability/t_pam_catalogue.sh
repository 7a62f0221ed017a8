#!/usr/bin/env bash
# t_pam_catalogue.sh — the catalogue of hostile logins (pam_cases.txt)
# through the module and real libpam: each answered as the catalogue says,
# logged as it says, and a normal login still working after each.  No key
# and no typed secret in any log line.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../pam/pam-lib.sh"
pam_require

DB=$(new_db keys)
OTHERDB=$(new_db other)
MISSING=$T_TMP/missing/keys.db
read -r KEY _ <<<"$(mk_key "$DB" daemon pam:cat --rate-limit 100000)"
read -r KEY_BIN _ <<<"$(mk_key "$DB" bin pam:cat)"
read -r KEY_REV ID_REV <<<"$(mk_key "$DB" daemon pam:cat)"
read -r KEY_HTTP _ <<<"$(mk_key "$DB" daemon http:read)"
"$APIKEYCTL" --db "$DB" revoke "$ID_REV" >/dev/null
c=${KEY:20:1}; [ "$c" = A ] && r=B || r=A
KEY_TYPO=${KEY:0:20}$r${KEY:21}
echo "$KEY_TYPO" >>"$PAM_SECRETS"
echo "hunter2-pw" >>"$PAM_SECRETS"
svc normal "auth required $PAM_MODULE db=$DB scope=pam:cat" "account required $PAM_MODULE db=$DB"

# One case a record: name, service, args, user, typed, want, log (NUL-separated),
# the macros expanded and the Python literals decoded.
python3 - "$TOP/tests/reliability/pam_cases.txt" "$T_TMP/cases" <<PY
import ast, sys
macros = {"\$KEY_TYPO": "$KEY_TYPO", "\$KEY_BIN": "$KEY_BIN", "\$KEY_REV": "$KEY_REV",
          "\$KEY_HTTP": "$KEY_HTTP", "\$KEY": "$KEY", "\$OTHERDB": "$OTHERDB", "\$MISSING": "$MISSING",
          "\$DB": "$DB"}
def expand(s):
    for m in sorted(macros, key=len, reverse=True):
        s = s.replace(m, macros[m])
    return s
out = open(sys.argv[2], "wb")
for line in open(sys.argv[1], encoding="utf-8"):
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    f = [x.strip() for x in line.rstrip("\n").split(" | ")]
    name, service, args, user, typed, want, log = f
    vals = []
    for lit in (user, typed):
        v = eval(expand(lit), {"__builtins__": {}})   # literals and 'u' * 63
        vals.append(v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape"))
    for field in (name.encode(), service.encode(), expand(args).encode(), vals[0], vals[1],
                  want.encode(), log.encode()):
        out.write(field + b"\0")
PY

n=0
while IFS= read -r -d '' name && IFS= read -r -d '' service && IFS= read -r -d '' args &&
      IFS= read -r -d '' user && IFS= read -r -d '' typed && IFS= read -r -d '' want &&
      IFS= read -r -d '' logre; do
	n=$((n + 1))
	[ "${#typed}" -ge 8 ] && printf '%s\n' "$typed" >>"$PAM_SECRETS"
	svc "$service" "auth required $PAM_MODULE $args" "account required $PAM_MODULE $args"
	got=$(pt "$service" "$user" "$typed" authenticate)
	log=$(pt_log)
	if [ "$logre" = - ] || python3 -c 'import re, sys; sys.exit(not re.search(sys.argv[1], sys.argv[2]))' "$logre" "$log"; then
		logok=yes
	else
		logok=no
	fi
	after=$(pt normal daemon "$KEY" authenticate acct_mgmt)
	if [ "$got" = "$want" ] && [ "$logok" = yes ] && [ "$after" = PAM_SUCCESS ]; then
		ok "$name: $got"
	else
		nok "$name: got $got (want $want), log ${logok/no/does not match /$logre/: $(tr '\n' '|' <<<"$log")}, normal login after: $after"
	fi
done <"$T_TMP/cases"
[ "$n" -ge 20 ] && ok "the catalogue has $n cases (at least 20)" || nok "the catalogue has at least 20 cases (ran $n)"
no_secret_logged
done_testing

#!/usr/bin/env bash
# t_userlog.sh — what the module logs of a user name a client typed: a key
# typed at the user-name prompt is never logged (not even with a typo), a
# newline or an escape sequence cannot forge or colour a log line, and a
# long name is cut.  (The full PAM catalogue is in tests/reliability.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pam-lib.sh"
pam_require

M=$PAM_MODULE
DB=$(new_db keys)
svc ul "auth required $M db=$DB debug" "account required $M db=$DB"
read -r K _ <<<"$(mk_key "$DB" daemon pam:ul)"
typo=${K:0:20}X${K:21}

# the key as the user name, and as the password too (a user who typed it twice)
is "a key typed as the user name → PAM_USER_UNKNOWN" "$(pt ul "$K" "$K" authenticate)" PAM_USER_UNKNOWN
like "the line says a key-like user name was withheld" "$(pt_log)" "user=<key-like user name withheld>"
check "the key is in no log line" bash -c "! grep -qaF -- '$K' '$PAM_LOG'"
echo "$typo" >>"$PAM_SECRETS"
is "a mistyped key as the user name → PAM_USER_UNKNOWN" "$(pt ul "$typo" "x" authenticate)" PAM_USER_UNKNOWN
check "the mistyped key is in no log line" bash -c "! grep -qaF -- '${typo:0:24}' '$PAM_LOG'"

# a newline in the user name would start a forged line
forged=$'bob\nDec  1 00:00:00 host sshd[1]: Accepted password for root'
is "a user name with a newline → PAM_USER_UNKNOWN" "$(pt ul "$forged" "x" authenticate)" PAM_USER_UNKNOWN
like "it is logged escaped, on one line" "$(pt_log)" 'user=bob\\nDec  1 00:00:00 host sshd\[1\]: Accepted'
check "no module line ends at the newline (the rest would be a line of its own)" \
	bash -c "! grep -qa 'SYSLOG(.*user=bob\$' '$PT_OUT'"
esc=$'eve\e[2J\e]0;pwned\a'
is "a user name with terminal escapes → PAM_USER_UNKNOWN" "$(pt ul "$esc" "x" authenticate)" PAM_USER_UNKNOWN
like "the escape bytes are written as \\xHH" "$(pt_log)" 'user=eve\\x1b\[2J\\x1b\]0;pwned\\x07'
check "no raw ESC byte in the module's lines" bash -c "! grep -a 'SYSLOG(' '$PT_OUT' | grep -qaP '\\x1b'"

# a known user with a valid key: the name is logged as it is
is "a normal login still works" "$(pt ul daemon "$K" authenticate acct_mgmt)" PAM_SUCCESS
like "and its user name is logged plainly" "$(pt_log)" "auth: user=daemon key=key_"
no_secret_logged
done_testing

#!/usr/bin/env bash
# t_su.sh — `su` with an API key, from an unprivileged user into a test user.
# su (setuid root) reads /etc/pam.d/su: a private file is bind-mounted over
# it inside `unshare -m`, so the real file is never changed.  su asks on its
# terminal: tests/e2e/pty-drive.py gives it one and types the answer.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pam-e2e.sh"
e2e_require su setpriv

FROM=akF$$     # the unprivileged user running su
TO=akT$$       # the user su switches to, owner of the key
e2e_user "$FROM" && e2e_user "$TO" || { nok "useradd"; done_testing; exit 1; }
read -r K ID <<<"$(e2e_key "$TO" pam:su)"
read -r K_REV ID_REV <<<"$(e2e_key "$TO" pam:su)"
read -r K_OTHER _ <<<"$(e2e_key "$FROM" pam:su)"
read -r K_SSH _ <<<"$(e2e_key "$TO" pam:sshd)"
"$APIKEYCTL" --db "$E2E_DB" revoke "$ID_REV" >/dev/null
e2e_stack "$T_TMP/su.pam" pam:su
chmod 0644 "$T_TMP/su.pam"
cp "$TOP/tests/e2e/pty-drive.py" "$T_TMP/pty-drive.py"
chmod 0755 "$T_TMP/pty-drive.py"
before=$(sha256sum /etc/pam.d/su)

# su_as KEY: su from FROM to TO typing KEY; prints su's output, exits with
# su's status.
su_as() {
	SU_ANSWER=$1 timeout 30 unshare -m --propagation private sh -c \
		'mount --bind "$1" /etc/pam.d/su && exec python3 "$2" "API key:" SU_ANSWER \
		 setpriv --reuid="$3" --regid=nogroup --clear-groups -- \
		 su "$4" -c "echo APIKEY_ID=\$APIKEY_ID; id -un"' \
		sh "$T_TMP/su.pam" "$T_TMP/pty-drive.py" "$FROM" "$TO"
}

out=$(su_as "$K")
is "su with the target user's key succeeds" "$?" 0
like "…the shell runs as the target user" "$out" "(^|[^a-zA-Z])$TO"
like "…and sees APIKEY_ID from the session" "$out" "APIKEY_ID=$ID"
like "…su showed the module's prompt" "$out" "API key:"
out=$(su_as "ak_wrongwrongwrongwrongwrongwrongwrong")
check "su with a wrong key fails" test $? -ne 0
like "…with su's authentication failure" "$out" "Authentication failure"
out=$(su_as "$K_REV")
check "su with a revoked key fails" test $? -ne 0
out=$(su_as "$K_OTHER")
check "su with the calling user's own key (not the target's) fails" test $? -ne 0
out=$(su_as "$K_SSH")
check "su with a key for pam:sshd only (scope pam:su missing) fails" test $? -ne 0
"$APIKEYCTL" --db "$E2E_DB" revoke "$ID" >/dev/null
out=$(su_as "$K")
check "su with the key after 'apikeyctl revoke' fails" test $? -ne 0
is "the real /etc/pam.d/su is unchanged" "$(sha256sum /etc/pam.d/su)" "$before"
done_testing

#!/usr/bin/env bash
# t_storeerrors.sh — a broken store is reported as what is broken: a full
# disk as a full disk (not "missing, unreadable or corrupt"), a missing
# pepper as missing (not only by the mode it must have).  Every front end:
# apikeyctl, the PAM module, apikeyd.  The disk is a small tmpfs (root only).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/cli-lib.sh"
. "$(dirname "$0")/../pam/pam-lib.sh"

# ---- the pepper --------------------------------------------------------------
DB=$(new_db pep)
mv "$DB.pepper" "$T_TMP/pepper.kept"
run --db "$DB" list
like "missing pepper: apikeyctl says it is missing" "$ERR" "pepper missing \\(No such file or directory\\)"
"$APIKEYD" --db "$DB" -n >"$T_TMP/n.out" 2>&1
like "missing pepper: apikeyd -n says it is missing" "$(cat "$T_TMP/n.out")" "pepper missing"
cp "$T_TMP/pepper.kept" "$DB.pepper"
chmod 0644 "$DB.pepper"
run --db "$DB" list
like "a pepper others can read: its mode is named" "$ERR" "pepper has mode 0644: must be 0600 or 0640"
chmod 0600 "$DB.pepper"
run --db "$DB" list
is "the pepper back: the store opens" "$RC" 0

# ---- a full disk ---------------------------------------------------------------
# (room for the store and its 4 MB rate-limit table, which is allocated at
# init, then filled)
FS=$T_TMP/small
mkdir -p "$FS"
if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o size=6m tmpfs "$FS" 2>/dev/null; then
	skip "a full disk: needs root to mount a small tmpfs"
	done_testing
	exit 0
fi
at_exit "umount -l '$FS'"
FDB=$FS/keys.db
"$APIKEYCTL" --db "$FDB" init >/dev/null
read -r KEY KID <<<"$(mk_key "$FDB" daemon pam:full --rate-limit 1000)"
svc full "auth required $PAM_MODULE db=$FDB"
is "before the disk fills: a login works" "$(pt full daemon "$KEY" authenticate)" PAM_SUCCESS
# an empty WAL first: a login's usage commit then needs new blocks (the
# module closes without a checkpoint, so a WAL with room would take it)
python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$FDB"
dd if=/dev/zero of="$FS/filler" bs=64k 2>/dev/null   # until the disk is full
run --db "$FDB" create --owner daemon --scopes pam:full
is "full disk: create fails" "$RC" 1
like "…saying the disk is full" "$ERR" "disk is full|disk full"
check "…not that the store is missing or corrupt" bash -c "! grep -q 'missing, unreadable or corrupt' <<<'$ERR'"
run --db "$FDB" revoke "$KID"
is "full disk: revoke fails (and says so)" "$RC" 1
like "…saying the disk is full" "$ERR" "disk is full|disk full"
is "full disk: a login fails closed" "$(pt full daemon "$KEY" authenticate)" PAM_AUTHINFO_UNAVAIL
like "…and the module logs a full disk" "$(pt_log)" "outcome=UNAVAILABLE \\(key store's disk is full\\)"
check "…not a missing or corrupt store" bash -c "! pt_log_text=\$(grep -a 'SYSLOG(' '$PT_OUT'); ! grep -q 'missing, unreadable or corrupt' <<<\"\$pt_log_text\""
rm -f "$FS/filler"
is "space again: the login works, no restart of anything" "$(pt full daemon "$KEY" authenticate)" PAM_SUCCESS
run --db "$FDB" revoke "$KID"
is "…and the revoke goes through" "$RC" 0
is "…and holds" "$(pt full daemon "$KEY" authenticate)" PAM_AUTH_ERR
no_secret_logged
done_testing

#!/usr/bin/env bash
# ft_pepper.sh — every host must hold the fleet's pepper.  The upstream keeps
# only its fingerprint (HMAC(pepper, label), never the pepper); a host with
# another pepper: apikeyd refuses to follow (exit 1, one line naming the
# pepper file and both fingerprints' first characters) and applies nothing;
# apikeyctl refuses to write; upstream init refuses to record another one.
# Connection strings: password= and plain-text TCP are refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

check "fleet initialised" fleet_init
fp=$(pg_psql -c "SELECT value FROM apikey.meta WHERE name = 'pepper_fp'")
like "the upstream holds a fingerprint of the pepper" "$fp" '^[0-9a-f]{64}$'
check "…which is not the pepper" test "$fp" != "$(xxd -p -c 64 "$FLEET_DIR/a/keys.db.pepper")"
"$PG_BIN/pg_dump" -h "$PG_SOCK" -p "$PG_PORT" -U postgres "$PG_DB" >"$T_TMP/dump.sql"
check "…nor does the upstream hold the pepper anywhere (pg_dump, hex or raw)" python3 -c '
import sys
d = open(sys.argv[1], "rb").read(); p = open(sys.argv[2], "rb").read()
sys.exit(p in d or p.hex().encode() in d.lower())' "$T_TMP/dump.sql" "$FLEET_DIR/a/keys.db.pepper"

# host W: a pepper of its own
fleet_host w
rm -f "$FLEET_DIR/w/keys.db.pepper"
head -c 32 /dev/urandom >"$FLEET_DIR/w/keys.db.pepper"
chmod 0600 "$FLEET_DIR/w/keys.db.pepper"
ctl a create --owner alice --scopes api:read >/dev/null
err=$(APIKEY_CONF=$FLEET_DIR/w/apikey.conf timeout 20 "$APIKEYD" --no-http 2>&1); rc=$?
is "apikeyd with another pepper refuses to follow: exit 1" "$rc" 1
like "…saying so, naming the pepper file and both fingerprints" "$err" \
	"this host's pepper \(.*/w/keys.db.pepper\) does not match the fleet's \(fingerprint [0-9a-f]{8}\.\.\. here, ${fp:0:8}\.\.\. upstream\): refusing to follow"
check "…and built no replica from the fleet" test ! -e "$FLEET_DIR/w/keys.db"
check "…the fingerprint, not the pepper, in its log" bash -c "! grep -q '$(xxd -p "$FLEET_DIR/w/keys.db.pepper" | tr -d '\n' | cut -c1-16)' <<<\"\$1\"" _ "$err"

# a replica made with the wrong pepper cannot be written from either
rm -f "$FLEET_DIR/w/keys.db.pepper"
check "a store with a pepper of its own on host W (apikeyctl init)" "$APIKEYCTL" --db "$FLEET_DIR/w/keys.db" init
err=$(ctl w create --owner mallory --scopes '*' 2>&1); rc=$?
is "apikeyctl with another pepper refuses to write: exit 1" "$rc" 1
like "…saying why" "$err" "does not match the fleet's .*refusing to write"
is "…nothing written upstream" "$(pg_psql -c "SELECT count(*) FROM apikey.keys WHERE owner = 'mallory'")" 0
sed 's/user=apikey_writer/user=apikey_owner/' "$FLEET_DIR/w/apikey.conf" >"$FLEET_DIR/w-owner.conf"
err=$("$APIKEYCTL" --conf "$FLEET_DIR/w-owner.conf" upstream init 2>&1); rc=$?
is "upstream init from a host with another pepper: exit 1" "$rc" 1
is "…the fleet's fingerprint unchanged" "$(pg_psql -c "SELECT value FROM apikey.meta WHERE name = 'pepper_fp'")" "$fp"

# the same pepper (copied): follows
install -m 0600 "$FLEET_DIR/a/keys.db.pepper" "$FLEET_DIR/w/keys.db.pepper"
rm -f "$FLEET_DIR/w/keys.db" "$FLEET_DIR/w/keys.db-wal" "$FLEET_DIR/w/keys.db-shm"
check "with the fleet's pepper copied in, the host follows" fleet_start w --no-http

# connection strings: the libpq way, no secret in apikey.conf, no plain-text TCP
mkdir -p "$T_TMP/cs"
printf 'db=%s\nupstream=host=db.example dbname=apikey password=hunter2\n' "$FLEET_DIR/w/keys.db" >"$T_TMP/cs/pw.conf"
err=$("$APIKEYD" -n -f "$T_TMP/cs/pw.conf" 2>&1); rc=$?
is "password= in apikey.conf: apikeyd -n fails" "$rc" 1
like "…naming passfile instead" "$err" "password= is refused .*passfile"
check "…never echoing the password" bash -c "! grep -q hunter2 <<<\"\$1\"" _ "$err"
printf 'db=%s\nupstream=host=db.example dbname=apikey\n' "$FLEET_DIR/w/keys.db" >"$T_TMP/cs/tcp.conf"
err=$("$APIKEYD" -n -f "$T_TMP/cs/tcp.conf" 2>&1); rc=$?
is "a TCP upstream without sslmode=verify-full: apikeyd -n fails" "$rc" 1
like "…saying what to set" "$err" "sslmode=verify-full"
printf 'db=%s\nupstream=host=db.example dbname=apikey sslmode=verify-full\n' "$FLEET_DIR/w/keys.db" >"$T_TMP/cs/ok.conf"
like "…with sslmode=verify-full it is accepted" "$("$APIKEYD" -n -f "$T_TMP/cs/ok.conf" 2>&1)" "configuration OK"
err=$(APIKEY_CONF=$T_TMP/cs/pw.conf "$APIKEYCTL" --db "$FLEET_DIR/w/keys.db" revoke key_AAAAAAAAAAAAAAAA 2>&1); rc=$?
is "apikeyctl refuses the same string: exit 1" "$rc" 1
check "…never echoing the password" bash -c "! grep -q hunter2 <<<\"\$1\"" _ "$err"
done_testing

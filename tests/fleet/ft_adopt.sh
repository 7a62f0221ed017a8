#!/usr/bin/env bash
# ft_adopt.sh — a host that had keys of its own becomes the first of a fleet
# without losing them: `apikeyctl upstream init --import-local` seeds the
# empty upstream with its keys (digests), accounts and presets; its apikeyd
# then adopts the store as a replica (nothing to change) and a new host
# builds its replica with the same keys.  A store that holds keys the fleet
# does not have is never adopted (that would delete them): apikeyd refuses
# and leaves it as it was.  A second seeding is refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

fleet_require
check "PostgreSQL started" pg_init "log_min_messages = fatal"
pg_psql -c "CREATE ROLE apikey_owner LOGIN; GRANT CREATE ON DATABASE $PG_DB TO apikey_owner" >/dev/null
fleet_host a
"$APIKEYCTL" --db "$FLEET_DIR/a/keys.db" init >/dev/null
# the host's own keys, before fleet mode
k1=$("$APIKEYCTL" --db "$FLEET_DIR/a/keys.db" create --owner alice --scopes api:read)
k2=$("$APIKEYCTL" --db "$FLEET_DIR/a/keys.db" create --owner bob --scopes api:write --expires 30d)
"$APIKEYCTL" --db "$FLEET_DIR/a/keys.db" account set bob --plan pro >/dev/null
"$APIKEYCTL" --db "$FLEET_DIR/a/keys.db" preset add ops ops:read ops:write >/dev/null
sed 's/user=apikey_writer/user=apikey_owner/' "$FLEET_DIR/a/apikey.conf" >"$FLEET_DIR/owner.conf"
out=$("$APIKEYCTL" --conf "$FLEET_DIR/owner.conf" upstream init --import-local 2>&1)
like "upstream init --import-local seeds the upstream with the host's keys" "$out" "imported 2 keys"
"$APIKEYCTL" upstream roles | pg_psql >/dev/null
is "…their digests, accounts and presets are upstream" \
	"$(pg_psql -c "SELECT count(*) FROM apikey.keys WHERE hash IS NOT NULL"):$(pg_psql -c "SELECT plan FROM apikey.accounts WHERE owner = 'bob'"):$(pg_psql -c "SELECT scopes FROM apikey.presets WHERE name = 'ops'")" \
	"2:pro:ops:read,ops:write"
is "…logged like any write (one transaction)" "$(pg_psql -c "SELECT count(DISTINCT seq) FROM apikey.changes")" 1
err=$("$APIKEYCTL" --conf "$FLEET_DIR/owner.conf" upstream init --import-local 2>&1); rc=$?
is "a second seeding is refused: exit 1" "$rc" 1
like "…saying why" "$err" "holds keys already"

check "host A follows: its store adopted as a replica" fleet_start a
like "…with nothing to change" "$(grep 'resync done' "$FLEET_DIR/a/apikeyd.log")" "2 keys compared, 0 changed, 0 deleted"
is "…its keys still work" "$(auth a "$k1" api:read)$(auth a "$k2" api:write)" 200200
fleet_host b
check "host B builds its replica" fleet_start b
is "…with the same keys" "$(auth b "$k1" api:read)$(auth b "$k2" api:write)" 200200

# a store with keys the fleet does not have
fleet_host c
rm -f "$FLEET_DIR/c/keys.db.pepper"
"$APIKEYCTL" --db "$FLEET_DIR/c/keys.db" init >/dev/null
install -m 0600 "$FLEET_DIR/a/keys.db.pepper" "$FLEET_DIR/c/keys.db.pepper"
# the store was made with a pepper of its own: forget that pepper's check
# value (init refuses to use an existing pepper file)
sqlite3 "$FLEET_DIR/c/keys.db" "DELETE FROM meta WHERE name = 'pepper_check'"
"$APIKEYCTL" --db "$FLEET_DIR/c/keys.db" create --owner carol --scopes api:read >/dev/null
before=$(sqlite3 "$FLEET_DIR/c/keys.db" "SELECT group_concat(id) FROM keys")
err=$(APIKEY_CONF=$FLEET_DIR/c/apikey.conf timeout 20 "$APIKEYD" --no-http 2>&1); rc=$?
is "apikeyd on a store with keys the fleet lacks refuses: exit 1" "$rc" 1
like "…saying it would delete them" "$err" "holds 1 keys the fleet does not have: following would delete them"
is "…and leaves the store as it was" "$(sqlite3 "$FLEET_DIR/c/keys.db" "SELECT group_concat(id) FROM keys")" "$before"
done_testing

#!/usr/bin/env bash
# t_verbs.sh — every apikeyctl verb against a temporary store: what it prints,
# what it changes, its exit code; help; configuration lookup.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/cli-lib.sh"

# ---- help -------------------------------------------------------------------
run help
like "help lists the verbs" "$OUT" "verbs:.*init.*create.*import"
is "help exits 0" "$RC" 0
run --help
is "--help exits 0" "$RC" 0
for v in init create list show update revoke rotate verify preset account log usage prune db import help; do
	run "$v" --help
	if [ "$RC" = 0 ] && [[ $OUT == usage:* ]] && [ -z "$ERR" ]; then ok "$v --help: usage on stdout, exit 0"
	else nok "$v --help (exit $RC, out '${OUT:0:40}', err '$ERR')"; fi
done
run help create
like "help VERB shows that verb's usage" "$OUT" "^usage: apikeyctl create"

# ---- init ---------------------------------------------------------------------
db="$T_TMP/keys.db"
run --db "$db" init
is "init exits 0" "$RC" 0
is "init: database mode 0640" "$(stat -c %a "$db")" 640
is "init: pepper mode 0600" "$(stat -c %a "$db.pepper")" 600
is "init: pepper is 32 bytes" "$(stat -c %s "$db.pepper")" 32
pepper_sum=$(sha256sum <"$db.pepper")
run --db "$db" init
is "init refuses to overwrite: exit 1" "$RC" 1
like "init refuses to overwrite: says so" "$ERR" "already exists; refusing to overwrite"
is "init refusing leaves the pepper alone" "$(sha256sum <"$db.pepper")" "$pepper_sum"
touch "$T_TMP/other.db.pepper"
run --db "$T_TMP/other.db" init
is "init refuses when only the pepper exists" "$RC" 1
[ -e "$T_TMP/other.db" ] && nok "init left a database beside a foreign pepper" || ok "no database created beside a foreign pepper"
run --db "$T_TMP/sub/k.db" init
is "init creates a missing parent directory" "$RC" 0
run --db "$T_TMP/no/such/k.db" init
is "init under a missing grandparent: exit 1" "$RC" 1
one_line "... with one error line"

# ---- create -------------------------------------------------------------------
run --db "$db" create --owner alice --scopes docs:read,pam:sshd
is "create exits 0" "$RC" 0
like "create prints only the key" "$OUT" '^ak_[0-9A-Za-z]{36}$'
is "create prints nothing on stderr" "$ERR" ""
key1=$OUT
verify_is "a created key verifies" "$db" "$key1" VALID --scope docs:read

run --db "$db" create --owner bob --name "ci bot" --scopes 'b:write, a:read' --expires 90d \
	--rate-limit 120 --meta '{"team":"infra","n":1}' --json
is "create --json exits 0" "$RC" 0
j=$OUT
is "create --json: key" "$(jq_py "j['key'][:3]" <<<"$j")" ak_
like "create --json: id" "$(jq_py "j['id']" <<<"$j")" '^key_[0-9A-Za-z]{16}$'
is "create --json: owner" "$(jq_py "j['owner']" <<<"$j")" bob
is "create --json: name" "$(jq_py "j['name']" <<<"$j")" "ci bot"
is "create --json: scopes as an array" "$(jq_py "','.join(j['scopes'])" <<<"$j")" "b:write,a:read"
is "create --json: rate limit" "$(jq_py "j['rate_limit']" <<<"$j")" 120
is "create --json: metadata object" "$(jq_py "j['metadata']['team']" <<<"$j")" infra
like "create --json: expires_at is RFC 3339" "$(jq_py "j['expires_at']" <<<"$j")" '^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-9:]{8}Z$'
exp_epoch=$(date -d "$(jq_py "j['expires_at']" <<<"$j")" +%s)
diff=$(( exp_epoch - $(date +%s) - 90 * 86400 ))
[ "${diff#-}" -le 5 ] && ok "--expires 90d is 90 days from now" || nok "--expires 90d off by $diff s"
is "create --json: status" "$(jq_py "j['status']" <<<"$j")" active
is "create --json: no last use yet" "$(jq_py "j['last_used_at']" <<<"$j")" None
key2=$(jq_py "j['key']" <<<"$j")
id2=$(jq_py "j['id']" <<<"$j")
verify_is "the --json key verifies" "$db" "$key2" VALID --scope a:read

run --db "$db" create --owner carol --scopes x:y --expires 2099-01-02T03:04:05Z --json
is "create --expires RFC 3339" "$(jq_py "j['expires_at']" <<<"$OUT")" 2099-01-02T03:04:05Z
run --db "$db" create --owner carol --scopes x:y --expires 2099-01-02T03:04:05+02:00 --json
is "create --expires with an offset" "$(jq_py "j['expires_at']" <<<"$OUT")" 2099-01-02T01:04:05Z
run --db "$db" create --owner dave --preset read-only --json
is "create --preset expands the preset" "$(jq_py "','.join(j['scopes'])" <<<"$OUT")" "*:read"
run --db "$db" create --owner dave --preset no-such-preset
is "create --preset unknown: exit 1" "$RC" 1
like "create --preset unknown: says so" "$ERR" "no preset named 'no-such-preset'"
run --db "$db" create --owner 'bad owner' --scopes a:b
is "create with a bad owner: exit 1" "$RC" 1
one_line "create with a bad owner: one error line"

# ---- list ------------------------------------------------------------------------
run --db "$db" list
is "list exits 0" "$RC" 0
like "list: table header" "$(head -1 <<<"$OUT")" "^ID +HINT +OWNER +NAME +SCOPES +STATUS +EXPIRES +LAST USED"
like "list: a row with id, hint, owner, name" "$OUT" "$id2 +${key2:0:7} +bob +ci bot"
[[ $OUT == *"$key1"* || $OUT == *"$key2"* ]] && nok "list shows a key" || ok "list never shows a key"
is "list: one row per key" "$(($(wc -l <<<"$OUT") - 1))" 5
run --db "$db" list --json
is "list --json: an array of every key" "$(jq_py 'len(j)' <<<"$OUT")" 5
is "list --json: fields" "$(jq_py "sorted(j[1].keys()) == sorted(['id','hint','owner','name','scopes','status','created_at','expires_at','revoked_at','last_used_at','use_count','rate_limit','hash_alg','rotated_from','rotated_to','metadata'])" <<<"$OUT")" True
[[ $OUT == *"$key1"* || $OUT == *"$key2"* ]] && nok "list --json shows a key" || ok "list --json never shows a key"
run --db "$db" list --owner carol --json
is "list --owner filters" "$(jq_py "','.join(k['owner'] for k in j)" <<<"$OUT")" "carol,carol"
run --db "$db" list --owner nobody-here --json
is "list --json of nothing is []" "$(jq_py 'len(j)' <<<"$OUT")" 0

# ---- show --------------------------------------------------------------------------
run --db "$db" show "$id2"
is "show exits 0" "$RC" 0
like "show: text fields" "$OUT" "id: +$id2.*owner: +bob.*rate limit: +120/min.*metadata: +\{\"team\":\"infra\",\"n\":1\}"
run --db "$db" show "$id2" --json
is "show --json" "$(jq_py "j['id'] + ' ' + j['hash_alg']" <<<"$OUT")" "$id2 hmac-sha256"
[[ $OUT == *"$key2"* ]] && nok "show prints the key" || ok "show never prints the key"
run --db "$db" show key_0000000000000000
is "show unknown id: exit 1" "$RC" 1
is "show unknown id: the error line" "$ERR" "apikeyctl: show: no key with id key_0000000000000000"

# ---- usage, log --------------------------------------------------------------------
verify_is "a second use" "$db" "$key2" VALID
run --db "$db" usage --json
is "usage counts successful verifications" "$(jq_py "[k['use_count'] for k in j if k['id'] == '$id2'][0]" <<<"$OUT")" 2
run --db "$db" usage
like "usage table" "$OUT" "$id2 +${key2:0:7} +bob +2 +20"
verify_is "a failing check is audited" "$db" "$key2" INSUFFICIENT_SCOPE --scope zz:top
run --db "$db" log --key "$id2" --json
is "log --key: newest first" "$(jq_py "j[0]['event'] + ' ' + j[0]['reason'] + ' ' + j[0]['source']" <<<"$OUT")" "failed INSUFFICIENT_SCOPE cli"
is "log --key: the creation" "$(jq_py "j[-1]['event']" <<<"$OUT")" created
run --db "$db" log --limit 1
is "log --limit 1: header and one event" "$(wc -l <<<"$OUT")" 2
like "log table" "$OUT" "TIME +EVENT +KEY +REASON +SOURCE"

# ---- revoke -----------------------------------------------------------------------
id1=$(key_id "$db" 0)
run --db "$db" revoke "$id1"
is "revoke exits 0" "$RC" 0
verify_is "a revoked key fails at once" "$db" "$key1" REVOKED
is "revoked status" "$("$APIKEYCTL" --db "$db" show "$id1" --json | jq_py "j['status']")" revoked
first=$("$APIKEYCTL" --db "$db" show "$id1" --json | jq_py "j['revoked_at']")
run --db "$db" revoke "$id1"
is "revoking again is not an error" "$RC" 0
is "revoking again keeps the first time" "$("$APIKEYCTL" --db "$db" show "$id1" --json | jq_py "j['revoked_at']")" "$first"
run --db "$db" revoke key_0000000000000000
is "revoke unknown id: exit 1" "$RC" 1
is "revoke unknown id: the error line" "$ERR" "apikeyctl: revoke: no key with id key_0000000000000000"
run --db "$db" log --key "$id1" --json
is "revoke is audited, once" "$(jq_py "[e['event'] + ':' + e['source'] for e in j]" <<<"$OUT")" "['failed:cli', 'revoked:cli', 'created:cli']"

# ---- rotate -----------------------------------------------------------------------
run --db "$db" rotate "$id2"
is "rotate exits 0" "$RC" 0
like "rotate prints the new key only" "$OUT" '^ak_[0-9A-Za-z]{36}$'
new=$OUT
verify_is "the successor verifies" "$db" "$new" VALID --scope a:read
verify_is "the old key lives through its grace" "$db" "$key2" VALID
old_exp=$("$APIKEYCTL" --db "$db" show "$id2" --json | jq_py "j['expires_at']")
diff=$(( $(date -d "$old_exp" +%s) - $(date +%s) - 86400 ))
[ "${diff#-}" -le 5 ] && ok "default grace is 24h" || nok "default grace off by $diff s"
newid=$(key_id "$db" -1)
run --db "$db" show "$newid" --json
is "successor keeps owner, name, rate limit, metadata" \
	"$(jq_py "' '.join([j['owner'], j['name'], str(j['rate_limit']), j['metadata']['team'], j['rotated_from']])" <<<"$OUT")" \
	"bob ci bot 120 infra $id2"
run --db "$db" rotate "$id2"
is "a rotated key cannot be rotated again: exit 1" "$RC" 1
like "... and says why" "$ERR" "cannot be rotated"
run --db "$db" rotate "$newid" --grace 0 --json
is "rotate --json" "$(jq_py "j['key'][:3] + ' ' + j['rotated_from']" <<<"$OUT")" "ak_ $newid"
verify_is "--grace 0 revokes the old key now" "$db" "$new" REVOKED
run --db "$db" rotate key_0000000000000000
is "rotate unknown id: exit 1" "$RC" 1

# ---- preset -----------------------------------------------------------------------
run --db "$db" preset add deploy deploy:write docs:read
is "preset add" "$RC $OUT" "0 preset deploy: deploy:write,docs:read"
run --db "$db" preset list
like "preset list shows it" "$OUT" "deploy +deploy:write,docs:read"
like "preset list shows the built-in ones" "$OUT" "full-access +\*.*read-only +\*:read"
run --db "$db" preset list --json
is "preset list --json" "$(jq_py "[p['scopes'] for p in j if p['name'] == 'deploy'][0]" <<<"$OUT")" "['deploy:write', 'docs:read']"
run --db "$db" create --owner erin --preset deploy --json
is "create with the new preset" "$(jq_py "','.join(j['scopes'])" <<<"$OUT")" "deploy:write,docs:read"
run --db "$db" preset rm deploy
is "preset rm" "$RC" 0
run --db "$db" preset rm deploy
is "preset rm of a missing preset: exit 1" "$RC" 1
like "... says so" "$ERR" "no preset named 'deploy'"

# ---- account ----------------------------------------------------------------------
run --db "$db" account show bob
is "account show without a record: exit 1" "$RC" 1
run --db "$db" account set bob --plan pro
is "account set" "$RC $OUT" "0 account bob: plan pro, active"
run --db "$db" account set bob --active no
is "account set changes only what is given" "$OUT" "account bob: plan pro, suspended"
run --db "$db" account show bob --json
is "account show --json" "$(jq_py "j['owner'] + ' ' + j['plan'] + ' ' + str(j['active'])" <<<"$OUT")" "bob pro False"
run --db "$db" account show bob
like "account show" "$OUT" "owner: +bob.*plan: +pro.*active: +no"
run --db "$db" account set bob --active yes
is "account reactivated" "$OUT" "account bob: plan pro, active"

# ---- prune, db check ---------------------------------------------------------------
before=$(key_count "$db")
run --db "$db" prune
is "prune with the default cut-off (90d) keeps recent keys" "$RC $(key_count "$db")" "0 $before"
like "prune reports" "$OUT" "^pruned 0 keys and 0 events from before "
run --db "$db" prune --before 2099-01-01T00:00:00Z
is "prune --before exits 0" "$RC" 0
like "prune removes revoked and expired keys" "$OUT" "^pruned [1-9][0-9]* keys and [1-9][0-9]* events"
run --db "$db" show "$id1"
is "a pruned key is gone" "$RC" 1
run --db "$db" db check
is "db check" "$RC $OUT" "0 $db: ok"

# ---- configuration ------------------------------------------------------------------
conf="$T_TMP/apikey.conf"
printf 'db=%s\nkey_prefix=zz_\n' "$T_TMP/conf.db" >"$conf"
APIKEY_CONF=$conf run init
is "the configuration's db= is used" "$RC" 0
[ -f "$T_TMP/conf.db" ] && ok "init made the conf's database" || nok "conf db= not used"
run --conf "$conf" create --owner a --scopes a:b
like "--conf: the key profile comes from the configuration" "$OUT" '^zz_[0-9A-Za-z]{36}$'
zzkey=$OUT
runin "$zzkey" --conf "$conf" verify
is "--conf verify" "$OUT" VALID
runin "$zzkey" --conf "$conf" --db "$db" verify
is "--db overrides the configuration's db" "$OUT" INVALID_KEY
APIKEY_DB="$db" run --conf "$conf" list --json
is "\$APIKEY_DB overrides the configuration's db" "$(jq_py 'len(j)' <<<"$OUT")" "$(key_count "$db")"
APIKEY_DB="$db" run list --json
is "\$APIKEY_DB alone is enough" "$RC" 0
printf 'key_prefix=zz_\nno_such_option=1\nbusy_timeout_ms=0\n' >"$T_TMP/bad.conf"
run --conf "$T_TMP/bad.conf" --db "$db" list
is "a bad configuration: exit 1" "$RC" 1
like "... every problem is named" "$ERR" "no_such_option.*busy_timeout_ms.*nothing done"
run --conf "$T_TMP/missing.conf" --db "$db" list
is "a missing --conf: exit 1" "$RC" 1
like "... says it cannot read it" "$ERR" "missing.conf"
run --conf "$T_TMP/bad.conf" list --help
is "VERB --help needs no configuration" "$RC" 0

done_testing

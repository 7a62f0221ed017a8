#!/usr/bin/env bash
# t_edits.sh — what apikeyctl changes after a key is issued (issue 8): update
# (every field, expiry none, its event, refusals), rotate --expires, verify
# --json with the owner's account, preset sync, and prune with a cut-off in
# the future (which deleted valid keys and the whole audit trail before).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/cli-lib.sh"

db=$(new_db) || { nok "init a store"; done_testing; exit 1; }
D=(--db "$db")

# ---- update --------------------------------------------------------------------
run "${D[@]}" create --owner alice --name ci --scopes docs:read,docs:write --rate-limit 60 --expires 1h --json
k1=$(jq_py "j['key']" <<<"$OUT"); id1=$(jq_py "j['id']" <<<"$OUT")
run "${D[@]}" update "$id1" --name deploy --scopes docs:read --rate-limit 600 --meta '{"t":1}' --expires never --json
is "update exits 0" "$RC" 0
is "update: the record afterwards" "$(jq_py "[j['name'], j['scopes'], j['rate_limit'], j['metadata'], j['expires_at']]" <<<"$OUT")" \
	"['deploy', ['docs:read'], 600, {'t': 1}, None]"
run "${D[@]}" log --key "$id1" --json
is "update: event updated, naming the fields" "$(jq_py "[j[0]['event'], j[0]['reason'], j[0]['source']]" <<<"$OUT")" \
	"['updated', 'name,scopes,rate_limit,expires_at,metadata', 'cli']"
verify_is "update: a scope taken away is refused" "$db" "$k1" INSUFFICIENT_SCOPE --scope docs:write
verify_is "update: the scope kept still works" "$db" "$k1" VALID --scope docs:read
run "${D[@]}" update "$id1" --expires 30d
is "update --expires: a new expiry" "$(run "${D[@]}" show "$id1" --json; jq_py "j['expires_at'] is not None" <<<"$OUT")" True
run "${D[@]}" update "$id1" --name deploy
is "update with nothing to change: exit 0" "$RC" 0
run "${D[@]}" log --key "$id1" --limit 1 --json
is "update with nothing to change: no event" "$(jq_py "j[0]['reason']" <<<"$OUT")" "expires_at"
run "${D[@]}" update "$id1"
is "update without a change: usage error" "$RC" 2
run "${D[@]}" update "$id1" --scopes 'Not A Scope'
is "update --scopes refused: exit 1" "$RC" 1
like "update --scopes refused: says why" "$ERR" "refused: scopes must be a non-empty list"
run "${D[@]}" update "$id1" --preset nosuch
is "update --preset unknown: exit 1" "$RC" 1
like "update --preset unknown: names it" "$ERR" "no preset named 'nosuch'"
run "${D[@]}" update "$id1" --expires 2000-01-01T00:00:00Z
is "update --expires in the past: usage error" "$RC" 2
run "${D[@]}" update key_0000000000000000 --name x
is "update of no such key: exit 1" "$RC" 1
like "update of no such key: says so" "$ERR" "no key with id key_0000000000000000"
run "${D[@]}" revoke "$id1"
run "${D[@]}" update "$id1" --name x
is "update of a revoked key: exit 1" "$RC" 1
like "update of a revoked key: says why" "$ERR" "cannot be edited: it is revoked or rotated"

# ---- rotate --expires --------------------------------------------------------------
run "${D[@]}" create --owner bob --scopes a:b --expires 1h --json
id2=$(jq_py "j['id']" <<<"$OUT")
run "${D[@]}" rotate "$id2" --expires 90d --json
is "rotate --expires exits 0" "$RC" 0
new_exp=$(jq_py "j['expires_at']" <<<"$OUT")
old_exp=$(jq_py "j['old_key_expires_at']" <<<"$OUT")
python3 -c "import sys,datetime as d; f=lambda s: d.datetime.strptime(s,'%Y-%m-%dT%H:%M:%SZ'); sys.exit(not (f('$new_exp') - f('$old_exp')).days >= 89)" \
	&& ok "rotate --expires: the successor's own expiry ($new_exp), the old key's grace ($old_exp)" \
	|| nok "rotate --expires: successor $new_exp, old key $old_exp"
id3=$(jq_py "j['id']" <<<"$OUT")
run "${D[@]}" rotate "$id3" --expires never --json
is "rotate --expires never: no expiry" "$(jq_py "j['expires_at']" <<<"$OUT")" None
run "${D[@]}" rotate "$(jq_py "j['id']" <<<"$OUT")" --expires 1999-01-01T00:00:00Z
is "rotate --expires in the past: usage error" "$RC" 2

# ---- verify --json -------------------------------------------------------------------
run "${D[@]}" create --owner carol --scopes a:b
k4=$OUT
run "${D[@]}" account set carol --plan pro
runin "$k4" "${D[@]}" verify --scope a:b --scope z:z --json
is "verify --json: exit 1 when not valid" "$RC" 1
is "verify --json: code, missing scope, owner's account" \
	"$(jq_py "[j['valid'], j['code'], j['missing_scope'], j['key']['owner'], j['account']]" <<<"$OUT")" \
	"[False, 'INSUFFICIENT_SCOPE', 'z:z', 'carol', {'plan': 'pro', 'active': True}]"
runin "$k4" "${D[@]}" verify --json
is "verify --json: valid, with its rate limit" "$RC $(jq_py "[j['valid'], j['ratelimit']['limit']]" <<<"$OUT")" "0 [True, 60]"
runin "junk" "${D[@]}" verify --json
is "verify --json: a malformed key has no record" "$(jq_py "[j['code'], j['key'], j['account']]" <<<"$OUT")" \
	"['MALFORMED_KEY', None, None]"

# ---- preset sync: the profile's presets into an existing store -----------------------
conf="$T_TMP/profile.conf"
printf 'scopes=docs:read,docs:write\npreset.reader=docs:read\npreset.writer=docs:read,docs:write\n' >"$conf"
run --conf "$conf" "${D[@]}" preset sync
is "preset sync exits 0" "$RC" 0
is "preset sync: says what it did" "$OUT" \
	"$(printf 'preset reader: docs:read (added)\npreset writer: docs:read,docs:write (added)')"
run --conf "$conf" "${D[@]}" preset sync
like "preset sync again: unchanged" "$OUT" "reader: docs:read \\(unchanged\\)"
run "${D[@]}" preset list --json
is "preset sync leaves the others" "$(jq_py "[p['name'] for p in j]" <<<"$OUT")" "['full-access', 'read-only', 'reader', 'writer']"
run "${D[@]}" preset sync
is "preset sync without declared presets: exit 1" "$RC" 1
run --conf "$conf" "${D[@]}" preset add ops docs:write billing:read
is "preset add outside the catalogue: exit 1" "$RC" 1
like "preset add outside the catalogue: names the scope" "$ERR" "scope 'billing:read' is not in the scope catalogue"

# ---- db check: what lies outside a catalogue set later -------------------------------
run "${D[@]}" preset add old zz:top
run --conf "$conf" "${D[@]}" db check
is "db check with a catalogue: exit 0 (notes, not problems)" "$RC" 0
like "db check lists presets outside the catalogue" "$OUT" "outside the scope catalogue: preset old: zz:top"
like "db check lists live keys outside the catalogue" "$OUT" "outside the scope catalogue: key key_[0-9A-Za-z]{16}: a:b"
run "${D[@]}" db check
is "db check without a catalogue: no list" "$(grep -c outside <<<"$OUT")" 0

# ---- prune never removes a key that can still verify ---------------------------------
pdb=$(new_db prune) || nok "init a second store"
P=(--db "$pdb")
run "${P[@]}" create --owner dave --scopes a:b --expires 1h --json
kexp=$(jq_py "j['key']" <<<"$OUT"); idexp=$(jq_py "j['id']" <<<"$OUT")
run "${P[@]}" create --owner dave --scopes a:b --json
idrot=$(jq_py "j['id']" <<<"$OUT"); krot=$(jq_py "j['key']" <<<"$OUT")
run "${P[@]}" rotate "$idrot" --grace 1h
run "${P[@]}" prune --before 2099-01-01T00:00:00Z
is "prune --before (future) exits 0" "$RC" 0
like "prune says what it removed" "$OUT" "^pruned 0 keys and 0 events from before "
is "prune --before (future): every key kept" "$(key_count "$pdb")" 3
verify_is "prune: a key expiring later still verifies" "$pdb" "$kexp" VALID
verify_is "prune: a rotated key within its grace still verifies" "$pdb" "$krot" VALID
run "${P[@]}" log --key "$idexp" --json
is "prune: the history of a kept key is kept" "$(jq_py "[e['event'] for e in j]" <<<"$OUT")" "['created']"
run "${P[@]}" log --json
like "prune: leaves an event saying what it removed" "$(jq_py "j[0]['event'] + ' ' + j[0]['reason']" <<<"$OUT")" \
	"^pruned 0 keys, 0 events before 20[0-9-]+T"

done_testing

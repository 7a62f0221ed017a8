#!/usr/bin/env bash
# t_import.sh — `apikeyctl import`: sha256, bcrypt and argon2id lines import
# and verify, and are re-hashed on first use; bad lines are reported with
# their numbers and leave the store unchanged (all or nothing); stdin,
# --dry-run, a few thousand generated lines, progress only on a terminal.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/cli-lib.sh"

db=$(new_db keys)
src=$(new_db source)       # issues well-formed ak_ keys for the "old system"
mkkey() { "$APIKEYCTL" --db "$src" create --owner x --scopes a:b; }
line() {  # hash hint owner [extra json fields]
	printf '{"hash":"%s","hint":"%s","owner":"%s"%s}\n' "$1" "$2" "$3" "${4:-}"
}
k1=$(mkkey) k2=$(mkkey) k3=$(mkkey) k4=$(mkkey)
h1=$("$TESTDATA" hash sha256 "$k1")
h2=$("$TESTDATA" hash bcrypt "$k2")
h3=$("$TESTDATA" hash argon2id "$k3")
h4=$("$TESTDATA" hash sha256 "$k4")
like "test data: bcrypt hash" "$h2" '^\$2b\$04\$'
like "test data: argon2id hash" "$h3" '^\$argon2id\$'
{
	line "$h1" "${k1:0:10}" alice ',"scopes":["docs:read","pam:sshd"]'
	echo
	line "$h2" "${k2:0:7}" bob ',"scopes":"docs:read, docs:write","name":"ci"'
	line "$h3" "${k3:0:16}" carol ',"scopes":["docs:*"],"expires_at":"2099-01-01T00:00:00Z","rate_limit":30,"metadata":{"from":"legacy","n":[1,2]}'
	line "$h4" "${k4:0:6}" dave ',"scopes":"docs:read","expires_at":"2001-01-01T00:00:00Z","name":null,"metadata":null,"rate_limit":null'
} >"$T_TMP/good.jsonl"

run --db "$db" import "$T_TMP/good.jsonl"
is "import exits 0" "$RC" 0
is "import reports what it did" "$OUT" "imported 4 keys from $T_TMP/good.jsonl (sha256 2, bcrypt 1, argon2id 1)"
is "no progress when stderr is not a terminal" "$ERR" ""
run --db "$db" list --json
j=$OUT
is "imported: hash algorithms" "$(jq_py "[k['hash_alg'] for k in j]" <<<"$j")" "['sha256', 'bcrypt', 'argon2id', 'sha256']"
is "imported: hints, as given" "$(jq_py "[k['hint'] for k in j]" <<<"$j")" "['${k1:0:10}', '${k2:0:7}', '${k3:0:16}', '${k4:0:6}']"
is "imported: owners" "$(jq_py "[k['owner'] for k in j]" <<<"$j")" "['alice', 'bob', 'carol', 'dave']"
is "imported: scopes from an array and from a comma list" "$(jq_py "[','.join(k['scopes']) for k in j][:2]" <<<"$j")" "['docs:read,pam:sshd', 'docs:read,docs:write']"
is "imported: name, expiry, rate limit, metadata" \
	"$(jq_py "[j[1]['name'], j[2]['expires_at'], j[2]['rate_limit'], j[2]['metadata']['from'], j[0]['rate_limit']]" <<<"$j")" \
	"['ci', '2099-01-01T00:00:00Z', 30, 'legacy', 60]"
[[ $j == *"$h1"* || $j == *"$k1"* ]] && nok "list shows a hash or key" || ok "list shows neither key nor hash"
id1=$(jq_py "j[0]['id']" <<<"$j") id2=$(jq_py "j[1]['id']" <<<"$j") id3=$(jq_py "j[2]['id']" <<<"$j")

alg() { "$APIKEYCTL" --db "$db" show "$1" --json | jq_py "j['hash_alg']"; }
verify_is "bcrypt: a failed check does not re-hash" "$db" "$k2" INSUFFICIENT_SCOPE --scope pam:sshd
is "... still bcrypt" "$(alg "$id2")" bcrypt
for n in 1 2 3; do
	eval "k=\$k$n id=\$id$n"
	verify_is "imported key $n verifies" "$db" "$k" VALID --scope docs:read
	is "... and is re-hashed to HMAC-SHA256 on first use" "$(alg "$id")" hmac-sha256
	verify_is "... and verifies again through the HMAC index" "$db" "$k" VALID --scope docs:read
done
run --db "$db" log --key "$id2" --json
is "the re-hash is audited" "$(jq_py "[e['event'] + ':' + e['reason'] for e in j if e['event'] == 'rehashed']" <<<"$OUT")" "['rehashed:bcrypt']"
verify_is "an imported key past its expires_at is EXPIRED" "$db" "$k4" EXPIRED
wrong=$(mkkey)
verify_is "a key sharing no hash is INVALID_KEY" "$db" "$wrong" INVALID_KEY
verify_is "imported scope wildcard docs:* grants docs:write" "$db" "$k3" VALID --scope docs:write

# ---- bad lines: every one reported with its number, nothing imported ------------------
before=$(key_count "$db")
{
	line "$h1" "${k1:0:10}" ok ',"scopes":"a:b"'                                   # 1 good
	printf '{"hint":"ak_abcdef","owner":"x","scopes":"a:b"}\n'                      # 2
	printf 'not json at all\n'                                                      # 3
	echo                                                                            # 4 blank: skipped
	line "$h1" "${k1:0:10}" x ',"scopes":"a:b","expires":"2030-01-01T00:00:00Z"'   # 5
	line "$h1" "ak_" x ',"scopes":"a:b"'                                           # 6
	line "$h1" "${k1:0:10}" x ',"scopes":["a:b","Bad"]'                            # 7
	line "$h1" "${k1:0:10}" x ',"scopes":"a:b","expires_at":"tomorrow"'            # 8
	line "$h1" "${k1:0:10}" x ',"scopes":"a:b","rate_limit":0'                     # 9
	line "$h1" "${k1:0:10}" x ',"scopes":"a:b","metadata":[1]'                     # 10
	line "md5:0123" "${k1:0:10}" x ',"scopes":"a:b"'                               # 11
	line "$h1" "${k1:0:10}" "two words" ',"scopes":"a:b"'                          # 12
	printf '[1,2,3]\n'                                                              # 13
	line "$h1" "${k1:0:10}" x ',"scopes":"a:b","hash":"sha256:00"'                 # 14 duplicate field
	line "$h1" "${k1:0:10}" x ',"scopes":["a:b,c:d"]'                              # 15
	line "$h2" "${k2:0:10}" last ',"scopes":"a:b"'                                  # 16 good
} >"$T_TMP/bad.jsonl"
run --db "$db" import "$T_TMP/bad.jsonl"
is "a file with bad lines: exit 1" "$RC" 1
is "... prints nothing on stdout" "$OUT" ""
expect="apikeyctl: import: line 2: missing hash
apikeyctl: import: line 3: not JSON: .*
apikeyctl: import: line 5: unknown field 'expires'
apikeyctl: import: line 6: hint must be the first 6 to 16 characters of the key
apikeyctl: import: line 7: scopes must be a non-empty list of resource:action scopes
apikeyctl: import: line 8: expires_at is not an RFC 3339 time
apikeyctl: import: line 9: rate_limit must be an integer 1..1000000
apikeyctl: import: line 10: metadata must be a JSON object
apikeyctl: import: line 11: hash is not sha256:<64 hex>, bcrypt .*
apikeyctl: import: line 12: owner must be 1-63 characters without blanks, ':' or ','
apikeyctl: import: line 13: not a JSON object
apikeyctl: import: line 14: not JSON: duplicate object key.*
apikeyctl: import: line 15: scopes: each element must be one scope
apikeyctl: import: 13 bad lines; nothing imported"
like "every bad line is reported with its number and reason" "$ERR" "^$expect\$"
is "all or nothing: the good lines were not imported either" "$(key_count "$db")" "$before"

for i in $(seq 25); do echo "{\"line\":$i}"; done >"$T_TMP/many-bad.jsonl"
run --db "$db" import "$T_TMP/many-bad.jsonl"
is "25 bad lines: 20 reported, then a count" "$(wc -l <<<"$ERR") $(tail -1 <<<"$ERR")" \
	"21 apikeyctl: import: 25 bad lines (5 not shown); nothing imported"
line "$h1" "${k1:0:10}" x ",\"scopes\":\"a:b\",\"name\":\"$(head -c 8200 /dev/zero | tr '\0' n)\"" >"$T_TMP/long.jsonl"
run --db "$db" import "$T_TMP/long.jsonl"
is "an overlong line is refused" "$ERR" "apikeyctl: import: line 1: longer than 8192 bytes
apikeyctl: import: 1 bad line; nothing imported"
run --db "$db" import "$T_TMP/no-such-file"
is "a missing file: exit 1" "$RC" 1
like "... one clear line" "$ERR" "^apikeyctl: import: cannot open .*no-such-file: No such file or directory$"
run --db "$db" import "$T_TMP"
is "a directory: exit 1" "$RC" 1
is "nothing imported by any failure" "$(key_count "$db")" "$before"

# ---- stdin, dry run, empty ------------------------------------------------------------
k5=$(mkkey)
one=$(line "$("$TESTDATA" hash sha256 "$k5")" "${k5:0:8}" erin ',"scopes":"docs:read"')
OUT=$(printf '%s\n' "$one" | "$APIKEYCTL" --db "$db" import --dry-run - 2>&1); RC=$?
is "--dry-run checks and writes nothing" "$RC:$OUT:$(key_count "$db")" "0:stdin: 1 keys, no bad line (dry run: nothing imported):$before"
OUT=$(printf '%s\n' "$one" | "$APIKEYCTL" --db "$db" import - 2>&1); RC=$?
is "import - reads stdin" "$RC:$OUT" "0:imported 1 keys from stdin (sha256 1, bcrypt 0, argon2id 0)"
verify_is "the key imported from stdin verifies" "$db" "$k5" VALID
run --db "$db" import /dev/null
is "an empty file imports nothing" "$RC:$OUT" "0:imported 0 keys from /dev/null (sha256 0, bcrypt 0, argon2id 0)"

# ---- a few thousand generated lines --------------------------------------------------------
N=${CLI_IMPORT_N:-3000}
"$TESTDATA" gen "$N" "$T_TMP/gen.keys" >"$T_TMP/gen.jsonl"
before=$(key_count "$db")
start=$(date +%s%N)
run --db "$db" import "$T_TMP/gen.jsonl"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
is "$N generated lines import (${ms} ms)" "$RC:$OUT" "0:imported $N keys from $T_TMP/gen.jsonl (sha256 $N, bcrypt 0, argon2id 0)"
is "... all of them are in the store" "$(key_count "$db")" $((before + N))
bad=0
while read -r n k; do
	[ "$(printf '%s' "$k" | "$APIKEYCTL" --db "$db" verify --scope pam:login)" = VALID ] || bad=$((bad + 1))
done <"$T_TMP/gen.keys"
is "... a sample of them verifies ($(wc -l <"$T_TMP/gen.keys") keys)" "$bad" 0

# ---- progress on a terminal -------------------------------------------------------------------
if command -v script >/dev/null 2>&1; then
	db2=$(new_db tty)
	script -qec "'$APIKEYCTL' --db '$db2' import '$T_TMP/gen.jsonl'" /dev/null >"$T_TMP/tty.out" 2>&1
	like "on a terminal, progress is shown" "$(tr '\r' '\n' <"$T_TMP/tty.out")" "import: (checking|writing ) +[0-9]+%  [0-9]+ lines  [0-9]+ lines/s"
	like "... and the result line follows" "$(cat "$T_TMP/tty.out")" "imported $N keys"
else
	skip "no script(1) to give import a terminal"
fi

done_testing

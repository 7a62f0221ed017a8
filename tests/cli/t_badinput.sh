#!/usr/bin/env bash
# t_badinput.sh — what apikeyctl does with bad input: usage errors (exit 2,
# one line), malformed and oversized keys on stdin, corrupt, missing and
# foreign databases, unsafe peppers, and read-only stores (nothing changed).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/cli-lib.sh"

db=$(new_db keys)
key=$("$APIKEYCTL" --db "$db" create --owner alice --scopes docs:read)
id=$(key_id "$db" 0)

# ---- usage errors: exit 2 and exactly one line on stderr -----------------------
usage_err() {
	run "$@"
	if [ "$RC" = 2 ] && [ -z "$OUT" ] && [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] && [[ $ERR == apikeyctl:\ * ]]; then
		ok "usage error, exit 2, one line: apikeyctl $(printf '%q ' "$@")"
	else
		nok "apikeyctl $* (exit $RC, stdout '$OUT', stderr '$ERR')"
	fi
}
usage_err
usage_err frob
usage_err --bogus list
usage_err --db
usage_err --db "" list
usage_err list --json=1
D=(--db "$db")
usage_err "${D[@]}" create
usage_err "${D[@]}" create --owner a
usage_err "${D[@]}" create --owner a --scopes a:b --preset read-only
usage_err "${D[@]}" create --owner a --scopes 'Not A Scope'
usage_err "${D[@]}" create --owner a --scopes ,
for n in abc 0 1000001 -5 1e3 ' 5' 5x ''; do
	usage_err "${D[@]}" create --owner a --scopes a:b --rate-limit "$n"
done
for e in soon 2001-01-01T00:00:00Z 0 -1d 90x 2026-13-01T00:00:00Z; do
	usage_err "${D[@]}" create --owner a --scopes a:b --expires "$e"
done
usage_err "${D[@]}" create --owner a --scopes a:b --meta '[1]'
usage_err "${D[@]}" create --owner a --scopes a:b --meta '{bad'
usage_err "${D[@]}" create --owner a --scopes a:b --meta '{"a":1,"a":2}'
usage_err "${D[@]}" create --owner a --scopes a:b extra
usage_err "${D[@]}" list extra
usage_err "${D[@]}" list --owner
usage_err "${D[@]}" show
usage_err "${D[@]}" show not-an-id
usage_err "${D[@]}" show "$id" "$id"
usage_err "${D[@]}" revoke
usage_err "${D[@]}" revoke "$key"
usage_err "${D[@]}" rotate "$id" --grace soon
usage_err "${D[@]}" rotate "$id" --grace -1h
usage_err "${D[@]}" verify "$key"
usage_err "${D[@]}" verify --scope 'NOT VALID'
usage_err "${D[@]}" verify --scope ''
usage_err "${D[@]}" verify --plan ''
usage_err "${D[@]}" preset
usage_err "${D[@]}" preset frob
usage_err "${D[@]}" preset add onlyname
usage_err "${D[@]}" preset add Bad_Name a:b
usage_err "${D[@]}" preset add name 'Bad:Scope'
usage_err "${D[@]}" preset rm
usage_err "${D[@]}" preset list --json extra
usage_err "${D[@]}" account
usage_err "${D[@]}" account set
usage_err "${D[@]}" account frob bob
usage_err "${D[@]}" account set bob --active maybe
usage_err "${D[@]}" account set 'b o b'
usage_err "${D[@]}" log --limit x
usage_err "${D[@]}" log --key not-an-id
usage_err "${D[@]}" prune --before soon
usage_err "${D[@]}" prune extra
usage_err "${D[@]}" db
usage_err "${D[@]}" db frob
usage_err "${D[@]}" import
usage_err "${D[@]}" import a b
usage_err help frob
usage_err help a b
# Errors never echo a key, even one typed where an id belongs or after '='.
# (Each also fails as a usage error with a message: a silent exit would echo
# nothing and prove nothing.)
refused_quietly() {  # DESC: the last run failed with exit 2 and a message without the key
	if [ "$RC" = 2 ] && [[ $ERR == apikeyctl:\ * ]] && [[ $ERR != *"${key:3:20}"* ]]; then ok "$1"
	else nok "$1 (exit $RC, stderr '$ERR')"; fi
}
run "${D[@]}" revoke "$key"
refused_quietly "a key given as an id is not echoed"
run "${D[@]}" list "--frob=$key"
refused_quietly "an unknown --opt=value is named without its value"
for args in "$key" "${D[*]} create --owner a --scopes a:b --rate-limit $key" \
	"${D[*]} create --owner a --scopes a:b --expires $key" "${D[*]} preset frob $key" \
	"${D[*]} preset $key" "${D[*]} list $key" "${D[*]} rotate $id --grace $key" "help $key"; do
	# shellcheck disable=SC2086
	run $args
	refused_quietly "usage error without echoing a key: apikeyctl ${args/$key/KEY}"
done
printf '%s\n' "$key" "{\"$key\": 1}" "{\"hash\": $key}" >"$T_TMP/raw.jsonl"
run "${D[@]}" import "$T_TMP/raw.jsonl"
is "import of a file of raw keys: exit 1" "$RC" 1
[[ $ERR == *"${key:3:20}"* ]] && nok "import echoes a raw key ($ERR)" || ok "import never echoes a raw key"
is "nothing was written by any usage error" "$(key_count "$db")" 1

# ---- keys on stdin -----------------------------------------------------------------
big=$(head -c 10240 /dev/zero | tr '\0' a)
verify_is "a 10 kB line is MALFORMED_KEY" "$db" "$big" MALFORMED_KEY
verify_is "a 10 kB line starting with a valid key is MALFORMED_KEY" "$db" "$key$big" MALFORMED_KEY
OUT=$(head -c 1000000 /dev/urandom | "$APIKEYCTL" --db "$db" verify 2>/dev/null); RC=$?
[ "$RC" = 1 ] && [[ $OUT == MALFORMED_KEY || $OUT == MISSING_KEY ]] && ok "1 MB of random bytes: refused, no crash ($OUT)" \
	|| nok "1 MB of random bytes: exit $RC '$OUT'"
verify_is "the key on the first line counts, the rest is ignored" "$db" "$key"$'\n'"garbage" VALID
verify_is "leading blank is MALFORMED_KEY" "$db" " $key" MALFORMED_KEY
verify_is "a tab inside is MALFORMED_KEY" "$db" "${key:0:5}"$'\t'"${key:6}" MALFORMED_KEY
verify_is "UTF-8 inside is MALFORMED_KEY" "$db" "${key:0:5}é${key:7}" MALFORMED_KEY

# ---- missing, corrupt and foreign databases ----------------------------------------
run --db "$T_TMP/none.db" list
is "a missing database: exit 1" "$RC" 1
like "... says so and how to make one" "$ERR" "^apikeyctl: list: cannot open the key store: .*none.db: No such file or directory \(create it with 'apikeyctl init'\)$"
[ -e "$T_TMP/none.db" ] && nok "list created a database" || ok "list does not create a database"
runin "$key" --db "$T_TMP/none.db" verify
is "verify against a missing database: UNAVAILABLE, exit 1" "$OUT $RC" "UNAVAILABLE 1"
[[ $ERR == *"$key"* ]] && nok "the error line carries the key" || ok "the error line never carries the key"

corrupt="$T_TMP/corrupt.db"
head -c 65536 /dev/urandom >"$corrupt"; cp "$db.pepper" "$corrupt.pepper"
for v in "list" "create --owner a --scopes a:b" "db check" "revoke $id" "log" "usage" "prune" "preset list" "import /dev/null"; do
	# shellcheck disable=SC2086
	run --db "$corrupt" $v
	if [ "$RC" = 1 ] && [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] && [[ $ERR == *"not a database"* ]]; then
		ok "corrupt database: $v fails with one clear line"
	else nok "corrupt database: $v (exit $RC, '$ERR')"; fi
done
verify_is "corrupt database: verify is UNAVAILABLE" "$corrupt" "$key" UNAVAILABLE

# Damaged in the middle: the header is fine, pages are not.
cp "$db" "$T_TMP/damaged.db"; cp "$db.pepper" "$T_TMP/damaged.db.pepper"
"$APIKEYCTL" --db "$T_TMP/damaged.db" create --owner b --scopes a:b >/dev/null
sz=$(stat -c %s "$T_TMP/damaged.db")
dd if=/dev/urandom of="$T_TMP/damaged.db" bs=4096 seek=2 count=$(( sz / 4096 - 3 )) conv=notrunc status=none
run --db "$T_TMP/damaged.db" db check
is "db check on damaged pages: exit 1" "$RC" 1
like "... says the integrity check failed" "$ERR" "apikeyctl: db: integrity check failed: key store missing, unreadable or corrupt\$"

sqlite3 "$T_TMP/foreign.db" "CREATE TABLE t(x); INSERT INTO t VALUES(1);"
cp "$db.pepper" "$T_TMP/foreign.db.pepper"
run --db "$T_TMP/foreign.db" list
is "an SQLite file that is not a key store: exit 1" "$RC" 1
like "... says so" "$ERR" "not an apikey database"
is "... and it is left alone" "$(sqlite3 "$T_TMP/foreign.db" 'SELECT count(*) FROM sqlite_master')" 1

# ---- the pepper ------------------------------------------------------------------------
pdb=$(new_db pep)
pkey=$("$APIKEYCTL" --db "$pdb" create --owner a --scopes a:b)
verify_is "pepper 0600: VALID" "$pdb" "$pkey" VALID
chmod 640 "$pdb.pepper"
verify_is "pepper 0640 (shared with a group): VALID" "$pdb" "$pkey" VALID
for m in 644 604 660 666; do
	chmod "$m" "$pdb.pepper"
	run --db "$pdb" list
	is "pepper mode $m is refused: exit 1" "$RC" 1
	like "... with one clear line naming the mode" "$ERR" "^apikeyctl: list: cannot open the key store: .*pep.db.pepper: pepper has mode 0$m: must be 0600 or 0640$"
	verify_is "pepper mode $m: verify is UNAVAILABLE" "$pdb" "$pkey" UNAVAILABLE
done
chmod 600 "$pdb.pepper"
mv "$pdb.pepper" "$T_TMP/saved.pepper"
run --db "$pdb" list
is "a missing pepper: exit 1" "$RC" 1
like "... names the pepper, and says it is missing" "$ERR" "pep.db.pepper: pepper missing \\(No such file or directory\\)$"
verify_is "a missing pepper: verify is UNAVAILABLE" "$pdb" "$pkey" UNAVAILABLE
ln -s "$T_TMP/saved.pepper" "$pdb.pepper"
verify_is "a pepper that is a symlink is refused" "$pdb" "$pkey" UNAVAILABLE
rm "$pdb.pepper"
head -c 31 "$T_TMP/saved.pepper" >"$pdb.pepper"; chmod 600 "$pdb.pepper"
verify_is "a short pepper is refused" "$pdb" "$pkey" UNAVAILABLE
head -c 32 /dev/urandom >"$pdb.pepper"
# the store keeps a check value of its pepper: another one is refused and
# named, not read as "every key unknown"
verify_is "another pepper: UNAVAILABLE (not INVALID_KEY for every key)" "$pdb" "$pkey" UNAVAILABLE
like "... and says why" "$ERR" "not the one the key store was made with"
mv "$T_TMP/saved.pepper" "$pdb.pepper"
verify_is "the right pepper back: VALID" "$pdb" "$pkey" VALID
printf 'pepper=%s\n' "$T_TMP/elsewhere.pepper" >"$T_TMP/pep.conf"
run --conf "$T_TMP/pep.conf" --db "$T_TMP/pconf.db" init
is "pepper= from the configuration: init" "$RC" 0
[ -f "$T_TMP/elsewhere.pepper" ] && [ ! -e "$T_TMP/pconf.db.pepper" ] && ok "init wrote the configured pepper path" \
	|| nok "pepper= not honoured"

# ---- read-only stores: clear error, nothing changed ---------------------------------------
# root writes through file modes, so these run as an unprivileged user.
AS=()
if [ "$(id -u)" = 0 ]; then
	if setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null; then
		AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	fi
fi
if [ "$(id -u)" = 0 ] && [ ${#AS[@]} = 0 ]; then
	skip "read-only stores: root ignores file modes and setpriv cannot drop to nobody"
else
	chmod 755 "$T_TMP"    # so nobody can reach its store
	printf '{"hash":"sha256:%s","hint":"ak_abcdef","owner":"x","scopes":"a:b"}\n' \
		"$(printf '%064d' 0)" >"$T_TMP/one.jsonl"
	ro="$T_TMP/ro"
	rodb="$ro/keys.db"
	"$APIKEYCTL" --db "$rodb" init >/dev/null
	rokey=$("$APIKEYCTL" --db "$rodb" create --owner alice --scopes docs:read)
	roid=$(key_id "$rodb" 0)
	[ "$(id -u)" = 0 ] && chown -R nobody:nogroup "$ro"
	chmod 755 "$ro"
	ascli() { OUT=$(printf '%s' "${IN:-}" | "${AS[@]}" "$APIKEYCTL" --db "$rodb" "$@" 2>"$T_TMP/.err"); RC=$?; ERR=$(cat "$T_TMP/.err"); }
	for mode in file dir; do
		if [ $mode = file ]; then chmod 444 "$rodb"; chmod 755 "$ro"; else chmod 644 "$rodb"; chmod 555 "$ro"; fi
		what="read-only $mode"
		before=$(IN= ascli list --json; echo "$OUT"; sha256sum <"$rodb")
		ascli list
		is "$what: reading works" "$RC" 0
		ascli create --owner bob --scopes a:b
		if [ "$RC" = 1 ] && [ -z "$OUT" ] && [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] && [[ $ERR == *read*only* ]]; then
			ok "$what: create fails with one clear line"
		else nok "$what: create (exit $RC, out '$OUT', err '$ERR')"; fi
		ascli revoke "$roid"
		is "$what: revoke fails" "$RC" 1
		like "... saying why" "$ERR" "read.?only"
		ascli rotate "$roid"
		is "$what: rotate fails, prints no key" "$RC:$OUT" "1:"
		ascli preset add p a:b
		is "$what: preset add fails" "$RC" 1
		ascli account set bob --active no
		is "$what: account set fails" "$RC" 1
		ascli import "$T_TMP/one.jsonl"
		is "$what: import fails" "$RC" 1
		IN=$rokey ascli verify
		is "$what: verify fails closed (the rate limit cannot be recorded)" "$OUT:$RC" "UNAVAILABLE:1"
		like "... saying why" "$ERR" "read.?only"
		after=$(IN= ascli list --json; echo "$OUT"; sha256sum <"$rodb")
		is "$what: the store is unchanged" "$after" "$before"
	done
	chmod 755 "$ro"; chmod 644 "$rodb"
fi

done_testing

#!/usr/bin/env bash
# t_formats.sh — the key shapes of SPEC §2 (the seed systems' own formats),
# each issued through a --conf profile, checked by length and alphabet,
# verified, and refused when malformed in each way; the legacy eb_ prefix.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/cli-lib.sh"

# profile NAME CONF-LINES: a configuration file and a store that uses it.
profile() {
	local name=$1; shift
	printf '%s\n' "db=$T_TMP/$name.db" "$@" >"$T_TMP/$name.conf"
	"$APIKEYCTL" --conf "$T_TMP/$name.conf" init >/dev/null 2>&1
}
# vfy NAME KEY: the outcome of verifying KEY with profile NAME.
vfy() { printf '%s' "$2" | "$APIKEYCTL" --conf "$T_TMP/$1.conf" verify 2>/dev/null; }
# A character of the key's alphabet other than c, and one outside it.
other_char() { case $1 in 0) echo 1;; *) echo 0;; esac; }

# shape NAME REGEX LENGTH CHECKSUM ALIEN CONF-LINES...
#   ALIEN: a character that is not in the profile's alphabet
shape() {
	local name=$1 re=$2 len=$3 sum=$4 alien=$5 key k body n p
	shift 5
	profile "$name" "$@"
	key=$("$APIKEYCTL" --conf "$T_TMP/$name.conf" create --owner "$name-user" --scopes api:read)
	like "$name: issued key has the shape" "$key" "$re"
	is "$name: issued key length" "${#key}" "$len"
	is "$name: the key verifies" "$(vfy "$name" "$key")" VALID
	n=0
	for _ in 1 2 3 4 5; do      # a few more draws for the regex
		k=$("$APIKEYCTL" --conf "$T_TMP/$name.conf" create --owner "$name-user" --scopes api:read)
		[[ $k =~ $re ]] && [ "${#k}" = "$len" ] && n=$((n + 1))
	done
	is "$name: five more keys have the shape" "$n" 5
	p=${key%%_*}_      # the prefix up to the first underscore
	[ "$name" = wc ] && p=wc_live_
	body=${key:${#p}}
	is "$name: wrong prefix is MALFORMED_KEY" "$(vfy "$name" "zz_$body")" MALFORMED_KEY
	is "$name: one character short is MALFORMED_KEY" "$(vfy "$name" "${key:0:$((len - 1))}")" MALFORMED_KEY
	is "$name: one character long is MALFORMED_KEY" "$(vfy "$name" "${key}0")" MALFORMED_KEY
	n=$(( ${#p} + 1 ))
	is "$name: a character outside the alphabet is MALFORMED_KEY" \
		"$(vfy "$name" "${key:0:$n}$alien${key:$((n + 1))}")" MALFORMED_KEY
	k="${key:0:$n}$(other_char "${key:$n:1}")${key:$((n + 1))}"
	if [ "$sum" = yes ]; then
		is "$name: checksum mismatch (one character changed) is MALFORMED_KEY" "$(vfy "$name" "$k")" MALFORMED_KEY
	else
		is "$name: without a checksum, a changed character is INVALID_KEY" "$(vfy "$name" "$k")" INVALID_KEY
	fi
	is "$name: a default-profile key is MALFORMED_KEY here" \
		"$(vfy "$name" ak_Wa0TseisIP1hHu1A3T6YD8MLvhX1hx27Qufi)" MALFORMED_KEY
}

# ClawHQ: clw_ + 32 lowercase alphanumerics, 36 in all (checksum inside the 32)
shape clw '^clw_[0-9a-z]{32}$' 36 yes A \
	key_prefix=clw_ key_alphabet=base36lower key_length=32 key_checksum=yes
# ClawUp: cu_ + a UUID (v4, lower case), legacy eb_ accepted
shape cu '^cu_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' 39 no g \
	key_prefix=cu_ key_alphabet=uuid key_checksum=no key_legacy_prefixes=eb_
# WorkClaw: wc_live_ + 20
shape wc '^wc_live_[0-9A-Za-z]{20}$' 28 no - \
	key_prefix=wc_live_ key_alphabet=base62 key_length=20 key_checksum=no
# ClawGig: cg_ + 32 hex
shape cg '^cg_[0-9a-f]{32}$' 35 yes g \
	key_prefix=cg_ key_alphabet=hex key_length=32 key_checksum=yes
# HiveClaw: hc_ + 48
shape hc '^hc_[0-9A-Za-z]{48}$' 51 yes - \
	key_prefix=hc_ key_alphabet=base62 key_length=48 key_checksum=yes

# A UUID key must keep its dashes where a UUID has them.
cu=$("$APIKEYCTL" --conf "$T_TMP/cu.conf" create --owner u --scopes api:read)
is "cu: a dash moved is MALFORMED_KEY" "$(vfy cu "${cu:0:11}${cu:12:1}-${cu:13}")" MALFORMED_KEY
is "cu: upper-case UUID is MALFORMED_KEY (issued lower case)" "$(vfy cu "cu_$(tr a-f A-F <<<"${cu:3}")")" MALFORMED_KEY

# eb_: a legacy prefix is accepted, never issued.  An eb_ key can only come
# from the old system, so it is imported by its sha256 hash and verified.
uuid=$(cat /proc/sys/kernel/random/uuid)
eb="eb_$uuid"
hash=$("$TESTDATA" hash sha256 "$eb")
printf '{"hash":"%s","hint":"%s","owner":"legacy","scopes":["api:read"]}\n' "$hash" "${eb:0:10}" \
	>"$T_TMP/eb.jsonl"
run --conf "$T_TMP/cu.conf" import "$T_TMP/eb.jsonl"
is "cu: import of an eb_ key's hash" "$RC" 0
is "cu: the imported eb_ key verifies" "$(vfy cu "$eb")" VALID
is "cu: eb_ with a changed character is INVALID_KEY" "$(vfy cu "eb_$(cat /proc/sys/kernel/random/uuid)")" INVALID_KEY
printf 'db=%s\nkey_prefix=cu_\nkey_alphabet=uuid\nkey_checksum=no\n' "$T_TMP/cu.db" >"$T_TMP/cu2.conf"
is "cu: the same key is MALFORMED_KEY for a profile without the legacy prefix" "$(vfy cu2 "$eb")" MALFORMED_KEY
n=0
for _ in $(seq 20); do
	k=$("$APIKEYCTL" --conf "$T_TMP/cu.conf" create --owner u --scopes api:read)
	[[ $k == cu_* ]] && n=$((n + 1))
done
is "cu: legacy eb_ is never issued (20 keys, all cu_)" "$n" 20

# A usage error (found before the configuration is read) still hides a value
# that is a key of the configured profile.
clw=$("$APIKEYCTL" --conf "$T_TMP/clw.conf" create --owner u --scopes api:read)
run --conf "$T_TMP/clw.conf" create --owner u --scopes api:read --rate-limit "$clw"
is "a clw_ key given as a flag value: usage error" "$RC" 2
[[ $ERR == *"${clw:4:16}"* ]] && nok "the key is echoed ($ERR)" || ok "the clw_ key is not echoed"

# An inconsistent profile is refused, never used.
profile weak key_prefix=wk_ key_alphabet=hex key_length=8
run --conf "$T_TMP/weak.conf" create --owner a --scopes a:b
is "a profile with too few random bits: exit 1" "$RC" 1
like "... names the problem" "$ERR" "inconsistent"

done_testing

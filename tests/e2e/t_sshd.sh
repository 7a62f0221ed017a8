#!/usr/bin/env bash
# t_sshd.sh — logins with API keys through a real OpenSSH server.
#
# A private sshd on 127.0.0.1 on a free high port, with its own config, host
# key and PID file.  Portable OpenSSH uses its program name as the PAM
# service, so it is started through a symlink named sshd-apikey-e2e, and its
# PAM service file exists only inside a private mount namespace (unshare -m,
# a tmp folder bind-mounted over /etc/pam.d): the system's /etc/pam.d is
# never touched, and the namespace goes away with the sshd.
# Password and keyboard-interactive logins succeed with the user's key (and
# the session sees APIKEY_ID) and fail with a wrong key, another user's key,
# a revoked key, an expired key and a key lacking the scope.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pam-e2e.sh"
SSHD=/usr/sbin/sshd
e2e_require ssh sshpass ssh-keygen "$SSHD"

A=akA$$
B=akB$$
e2e_user "$A" && e2e_user "$B" || { nok "useradd"; done_testing; exit 1; }
read -r K_A ID_A <<<"$(e2e_key "$A" pam:sshd --rate-limit 1000)"
read -r K_B _ <<<"$(e2e_key "$B" pam:sshd)"
read -r K_REV ID_REV <<<"$(e2e_key "$A" pam:sshd)"
read -r K_EXP _ <<<"$(e2e_key "$A" pam:sshd --expires 1s)"
read -r K_HTTP _ <<<"$(e2e_key "$A" http:read)"
"$APIKEYCTL" --db "$E2E_DB" revoke "$ID_REV" >/dev/null
t_exp=$(date +%s)
K_WRONG=${K_A:0:20}${K_B:20}   # a typo'd key: right shape, wrong checksum

W=$T_TMP/sshd
mkdir -p "$W/pam.d"
name=sshd-apikey-e2e
e2e_stack "$W/pam.d/$name" pam:sshd
printf 'auth required pam_deny.so\naccount required pam_deny.so\nsession required pam_deny.so\n' >"$W/pam.d/other"
ln -s "$SSHD" "$W/$name"
ssh-keygen -q -t ed25519 -N '' -f "$W/host_key" || nok "ssh-keygen"
PORT=$(free_port)
cat >"$W/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $W/host_key
PidFile $W/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication yes
PubkeyAuthentication no
AuthorizedKeysFile none
PermitRootLogin no
AllowUsers $A $B
MaxAuthTries 2
LoginGraceTime 20
StrictModes no
PrintMotd no
LogLevel VERBOSE
EOF
# sshd's privilege-separation directory (systemd-tmpfiles makes it at boot
# on a full system). Left in place: another sshd may be using it by now.
[ -d /run/sshd ] || mkdir -m 0755 /run/sshd
"$W/$name" -t -f "$W/sshd_config" 2>"$W/config-test.err"
is "sshd accepts the private configuration" "$?" 0

# Start: inside its own mount namespace, with the private /etc/pam.d.
unshare -m --propagation private sh -c 'mount --bind "$1" /etc/pam.d && exec "$2" -D -f "$3" -E "$4"' \
	sh "$W/pam.d" "$W/$name" "$W/sshd_config" "$W/sshd.log" &
spid=$!
at_exit "kill $spid; [ -f '$W/sshd.pid' ] && kill \$(cat '$W/sshd.pid')"
for _ in $(seq 50); do
	[ -s "$W/sshd.pid" ] && (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done
is "sshd is up (PID file written)" "$(cat "$W/sshd.pid" 2>/dev/null)" "$spid"
is "the system's /etc/pam.d has no file of ours" "$(ls /etc/pam.d | grep -c "$name")" 0

# ssh METHOD USER KEY: one login running a command that prints APIKEY_ID;
# prints its output, exits with ssh's status.
login() {
	local method=$1 user=$2 key=$3 prompt=assword
	[ "$method" = keyboard-interactive ] && prompt="API key"
	SSHPASS=$key timeout 20 sshpass -e -P "$prompt" ssh -p "$PORT" \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=no \
		-o ConnectTimeout=5 -o PreferredAuthentications="$method" -o PubkeyAuthentication=no \
		-o NumberOfPasswordPrompts=1 -o LogLevel=ERROR \
		"$user@127.0.0.1" 'echo "APIKEY_ID=$APIKEY_ID APIKEY_OWNER=$APIKEY_OWNER"' 2>>"$W/ssh.err"
}

while [ "$(date +%s)" -le $((t_exp + 1)) ]; do sleep 0.2; done
for m in password keyboard-interactive; do
	out=$(login $m "$A" "$K_A")
	is "$m: the user's own key logs in" "$?" 0
	is "$m: the session sees APIKEY_ID and APIKEY_OWNER" "$out" "APIKEY_ID=$ID_A APIKEY_OWNER=$A"
	login $m "$A" "$K_WRONG" >/dev/null
	check "$m: a wrong key fails" test $? -ne 0
	login $m "$A" "not-a-key-at-all" >/dev/null
	check "$m: a unix-password-like answer fails" test $? -ne 0
	login $m "$A" "$K_B" >/dev/null
	check "$m: another user's key fails" test $? -ne 0
	login $m "$A" "$K_REV" >/dev/null
	check "$m: a revoked key fails" test $? -ne 0
	login $m "$A" "$K_EXP" >/dev/null
	check "$m: an expired key fails" test $? -ne 0
	login $m "$A" "$K_HTTP" >/dev/null
	check "$m: a key lacking the scope pam:sshd fails" test $? -ne 0
	out=$(login $m "$B" "$K_B")
	is "$m: the other user logs in with their own key" "$?" 0
done
# Revocation reaches the next login at once.
read -r K_NOW ID_NOW <<<"$(e2e_key "$A" pam:sshd)"
login password "$A" "$K_NOW" >/dev/null
is "a fresh key logs in" "$?" 0
"$APIKEYCTL" --db "$E2E_DB" revoke "$ID_NOW" >/dev/null
login password "$A" "$K_NOW" >/dev/null
check "…and not after 'apikeyctl revoke'" test $? -ne 0

uses=$("$APIKEYCTL" --db "$E2E_DB" list --owner "$A" --json |
	python3 -c "import json,sys; print([k['use_count'] for k in json.load(sys.stdin) if k['id']=='$ID_A'][0])")
is "usage counted in the shared store by sshd's processes (2 logins)" "$uses" 2
like "audit: sshd's failures are recorded with source pam:<service> and the client address" \
	"$("$APIKEYCTL" --db "$E2E_DB" log --key "$ID_REV" --json)" "\"source\": *\"pam:$name from 127.0.0.1\""

kill "$(cat "$W/sshd.pid")" 2>/dev/null
wait "$spid" 2>/dev/null
check "sshd stopped" test ! -e "/proc/$spid"
done_testing

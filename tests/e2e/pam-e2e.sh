# tests/e2e/pam-e2e.sh — shared by t_sshd.sh and t_su.sh (sourced after
# tests/lib.sh): the preconditions of a real-client test of the module, test
# users that are removed at exit, and a key store they can log in with.
# The system's PAM files are never changed: each test runs its client under
# `unshare -m` with a private file bind-mounted over the one it reads.

# e2e_require TOOL...: skip the whole script, with the reason, unless we are
# root, the module is a plain build and every tool is there.
e2e_require() {
	local why="" t
	if [ "$(id -u)" != 0 ]; then
		why="needs root (test users, a private mount namespace, a real sshd/su)"
	elif [ "${SANITIZE:-}" = 1 ]; then
		why="SANITIZE=1: an ASan-built module cannot be loaded by the system's sshd/su (setuid, re-exec: no LD_PRELOAD of the ASan runtime); the plain build runs this test"
	elif [ ! -f "$PAM_MODULE" ] || [ ! -x "$APIKEYCTL" ]; then
		why="needs $PAM_MODULE and $APIKEYCTL (make)"
	else
		for t in unshare mount useradd userdel python3 "$@"; do
			command -v "$t" >/dev/null 2>&1 || why="$why $t"
		done
		[ -n "$why" ] && why="missing:$why (scripts/install-deps.sh)"
	fi
	if [ -n "$why" ]; then
		skip "$why"
		done_testing
		exit 0
	fi
	# The store stays in the script's private tmp dir: the module runs as
	# root inside sshd's monitor and setuid su, the users never read it.
	E2E_DB=$T_TMP/keys.db
	"$APIKEYCTL" --db "$E2E_DB" init >/dev/null || { nok "apikeyctl init"; done_testing; exit 1; }
}

# e2e_user NAME: create a system user without a home (removed at exit).
e2e_user() {
	useradd -M -N -g nogroup -s /bin/sh -d / "$1" || return 1
	at_exit "userdel -f '$1'"
}

# e2e_key OWNER SCOPES [create flags]: prints "KEY ID".
e2e_key() {
	local owner=$1 scopes=$2
	shift 2
	"$APIKEYCTL" --db "$E2E_DB" create --owner "$owner" --scopes "$scopes" --json "$@" |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["key"], d["id"])'
}

# e2e_stack FILE: a PAM service file with the module in all three phases,
# as SPEC §4 shows it (plus db=).
e2e_stack() {
	local f=$1 scope=$2
	printf '%s\n' \
		"# written by tests/e2e for one run; seen only inside a private mount namespace" \
		"auth     required $PAM_MODULE db=$E2E_DB scope=$scope" \
		"account  required $PAM_MODULE db=$E2E_DB" \
		"session  required $PAM_MODULE db=$E2E_DB" >"$f"
}

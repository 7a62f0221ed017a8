# tests/pam/pam-lib.sh — helpers for tests/pam/t_*.sh, sourced after
# tests/lib.sh: PAM service files in a private folder, pamtester under
# pam_wrapper (real libpam, no root, no /etc changes), keys from apikeyctl.
# Every line the module logs (pam_wrapper prints pam_syslog as "SYSLOG(n)"
# on stderr) is kept in $PAM_LOG, so a script can check that no key ever
# reaches a log.

PAM_SVC_DIR=$T_TMP/pam.d
PAM_LOG=$T_TMP/pam-syslog.log
PAM_SECRETS=$T_TMP/secrets.list   # every raw key / password typed, one a line
PT_OUT=$T_TMP/pt.out
mkdir -p "$PAM_SVC_DIR"
: >"$PAM_LOG"
: >"$PAM_SECRETS"
# libpam falls back to "other" for an unknown service: deny.
printf 'auth required pam_deny.so\naccount required pam_deny.so\nsession required pam_deny.so\n' \
	>"$PAM_SVC_DIR/other"

# pam_wrapper and its test modules (pam_matrix, pam_get_items, pam_set_items)
PWRAP_LIB=
for d in "/usr/lib/$(${CC:-cc} -print-multiarch 2>/dev/null)" /usr/lib64 /usr/lib; do
	[ -e "$d/libpam_wrapper.so" ] && { PWRAP_LIB=$d/libpam_wrapper.so; break; }
done
PWRAP_MODULES=${PWRAP_LIB%/*}/pam_wrapper

# An ASan-built module can only be loaded by pamtester with the ASan runtime
# first in the library list; leaks are checked by pam_loop, not here.
PAM_PRELOAD=$PWRAP_LIB
if [ "${SANITIZE:-}" = 1 ]; then
	PAM_PRELOAD="$(${CC:-cc} -print-file-name=libasan.so) $PWRAP_LIB"
	export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
fi

# pam_require: skip the whole script (one SKIP line) when a tool is missing.
pam_require() {
	local miss=""
	[ -f "$PAM_MODULE" ] || miss="$miss $PAM_MODULE"
	[ -x "$APIKEYCTL" ] || miss="$miss $APIKEYCTL"
	command -v pamtester >/dev/null || miss="$miss pamtester"
	[ -n "$PWRAP_LIB" ] && [ -e "$PWRAP_MODULES/pam_matrix.so" ] || miss="$miss libpam-wrapper"
	if [ -n "$miss" ]; then
		skip "missing:$miss (scripts/install-deps.sh; make)"
		done_testing
		exit 0
	fi
}

# svc NAME LINE...: write the PAM service file NAME, one stack line each.
svc() { local n=$1; shift; printf '%s\n' "$@" >"$PAM_SVC_DIR/$n"; }

# pam_code TEXT: the PAM_* name of a pam_strerror() text pamtester printed.
pam_code() {
	case "$1" in
	*"Permission denied"*) echo PAM_PERM_DENIED ;;
	*"Authentication failure"*) echo PAM_AUTH_ERR ;;
	*"cannot retrieve authentication info"*) echo PAM_AUTHINFO_UNAVAIL ;;
	*"User not known"*) echo PAM_USER_UNKNOWN ;;
	*"exhausted maximum number of retries"*) echo PAM_MAXTRIES ;;
	*"User account has expired"*) echo PAM_ACCT_EXPIRED ;;
	*"cannot retrieve user credentials"*) echo PAM_CRED_UNAVAIL ;;
	*"Error in service module"*) echo PAM_SERVICE_ERR ;;
	*"Cannot make/remove an entry"*) echo PAM_SESSION_ERR ;;
	*"Failure setting user credentials"*) echo PAM_CRED_ERR ;;
	*"Conversation error"*) echo PAM_CONV_ERR ;;
	*"Memory buffer error"*) echo PAM_BUF_ERR ;;
	*) echo "UNKNOWN($1)" ;;
	esac
}

# pt SERVICE USER INPUT OP...: run pamtester under pam_wrapper with INPUT
# (lines for the prompts) on stdin; print PAM_SUCCESS or the code of the
# operation that failed.  The whole output stays in $PT_OUT; the module's
# log lines are also appended to $PAM_LOG.
pt() {
	local svc=$1 user=$2 input=$3 rc last
	shift 3
	printf '%s\n' "$input" | env LD_PRELOAD="$PAM_PRELOAD" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$PAM_SVC_DIR" PAM_WRAPPER_DEBUGLEVEL=2 \
		timeout 30 pamtester -v "$svc" "$user" "$@" >"$PT_OUT" 2>&1
	rc=$?
	grep -a 'SYSLOG(' "$PT_OUT" >>"$PAM_LOG"
	if [ "$rc" -eq 0 ]; then
		echo PAM_SUCCESS
		return
	fi
	# stderr (the error) and buffered stdout (earlier successes) interleave
	last=$(grep -a '^pamtester: ' "$PT_OUT" |
		grep -av 'invoking\|performing operation\|successfully\|done\.$' | tail -n 1)
	pam_code "${last:-exit $rc}"
}

# pt_log: the module's log lines of the last pt run.
pt_log() { grep -a 'SYSLOG(' "$PT_OUT" | sed 's/^.*SYSLOG/SYSLOG/'; }

# mk_key DB OWNER SCOPES [create flags...]: issue a key; prints "KEY ID".
mk_key() {
	local db=$1 owner=$2 scopes=$3 out
	shift 3
	out=$("$APIKEYCTL" --db "$db" create --owner "$owner" --scopes "$scopes" --json "$@" |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["key"], d["id"])') || return 1
	echo "${out%% *}" >>"$PAM_SECRETS"
	echo "$out"
}

# json_get DB ARGS... -- PYEXPR: run apikeyctl ARGS --json and evaluate a
# python expression over its parsed output (as d).
json_get() {
	local db=$1 args=() expr
	shift
	while [ "$1" != "--" ]; do args+=("$1"); shift; done
	expr=$2
	"$APIKEYCTL" --db "$db" "${args[@]}" --json | python3 -c "import json,sys; d=json.load(sys.stdin); print($expr)"
}

# no_secret_logged: passes when no raw key or typed password appears in any
# line the module logged during the script.
no_secret_logged() {
	local n
	n=$(wc -l <"$PAM_LOG")
	if [ "$n" -eq 0 ]; then
		nok "the module logged nothing at all: the log check would be empty"
	elif grep -qaF -f "$PAM_SECRETS" "$PAM_LOG"; then
		nok "a key or a typed password appears in the module's log lines"
	else
		ok "none of $(wc -l <"$PAM_SECRETS") keys/passwords appears in $n log lines"
	fi
}

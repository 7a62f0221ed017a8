# tests/lib.sh — shared helpers for the shell test layers (sourced).
# Prints TAP; run-tests.sh sums it.  Every script gets a private temporary
# folder that is removed on exit, even on failure.
set -u
: "${TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${BUILD:=$TOP/build}"
: "${APIKEYCTL:=$BUILD/apikeyctl}" "${APIKEYD:=$BUILD/apikeyd}" "${PAM_MODULE:=$BUILD/pam_apikey.so}"
export TOP BUILD APIKEYCTL APIKEYD PAM_MODULE

T_N=0 T_FAILED=0
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/apikey-test.XXXXXX")
T_CLEANUPS=()
t_cleanup() { local c; for c in "${T_CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1; done; rm -rf "$T_TMP"; }
trap t_cleanup EXIT
# at_exit CMD: run CMD (a string) when the script ends, before the tmp dir goes.
at_exit() { T_CLEANUPS=("$1" "${T_CLEANUPS[@]}"); }

ok()   { T_N=$((T_N + 1)); echo "ok $T_N - $*"; }
nok()  { T_N=$((T_N + 1)); T_FAILED=$((T_FAILED + 1)); echo "not ok $T_N - $*"; }
skip() { T_N=$((T_N + 1)); echo "ok $T_N # SKIP $*"; }
# check DESC CMD...: passes when CMD exits 0.
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else nok "$d"; fi; }
# is DESC GOT WANT
is() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', want '$3')"; fi; }
# like DESC GOT REGEX
like() { if [[ "$2" =~ $3 ]]; then ok "$1"; else nok "$1 (got '$2', want /$3/)"; fi; }
done_testing() { echo "1..$T_N"; [ "$T_FAILED" -eq 0 ]; }

# new_db NAME: initialise a fresh store in the tmp dir, print its path.
new_db() { local db="$T_TMP/${1:-keys}.db"; "$APIKEYCTL" --db "$db" init >/dev/null && echo "$db"; }
# free_port: an unused TCP port on 127.0.0.1 (kernel-chosen).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

#!/usr/bin/env bash
# tests/packaging/t_deb.sh — the .debs on a clean system, not this one.
#
# A fresh Debian 12 root (mmdebstrap, this machine's apt sources) gets the
# previous build with apt resolving the dependencies, then: pam-auth-update
# on and off, a key from apikeyctl logging a user in through pamtester,
# apikeyd as its system user serving /auth while the module writes (daemon
# first, module first, module killed mid-commit), an operator (keyops) in the apikey
# group, the hardened unit under systemd (systemd-nspawn), the upgrade to
# the current build, remove and purge.  Runs in its own mount and PID
# namespaces: every process it starts dies with it and no mount outlives it.
# Needs root, the network to the apt mirror, and the packages that
# `make check-packages` builds into $BUILD/packages and $BUILD/packages-prev.
set -u
if [ -z "${APIKEY_PKG_NS:-}" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "not ok 1 - tests/packaging/t_deb.sh needs root (chroot, mmdebstrap)"; echo "1..1"; exit 1
	fi
	exec unshare --mount --pid --fork --kill-child --mount-proc \
		env APIKEY_PKG_NS=1 bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"

CUR=${PKG_CUR:-$BUILD/packages}
PREV=${PKG_PREV:-$BUILD/packages-prev}
HOLD_SO=$BUILD/tests/packaging/hold_fsync.so
R=$T_TMP/root
PKGS="apikey-tools apikeyd libpam-apikey"
STEP_TIMEOUT=${STEP_TIMEOUT:-600}

diag() { sed 's/^/# /'; }
debs_in() { local p; for p in $PKGS; do ls "$1"/"${p}"_*.deb 2>/dev/null | head -n 1; done; }
# in_root CMD...: run CMD inside the root with a clean environment.  In the
# background, `( exec "${ROOT_ENV[@]}" CMD ) &` so that $! is CMD's own pid
# (chroot, env and setpriv all exec).
ROOT_ENV=(chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root
	DEBIAN_FRONTEND=noninteractive)
in_root() { "${ROOT_ENV[@]}" "$@"; }
# wait_pid SECONDS PID: wait for a background PID at most SECONDS (then
# SIGKILL it); its exit status
wait_pid() {
	local n=$(($1 * 10))
	while [ "$n" -gt 0 ] && [ -e "/proc/$2" ] && [ "$(cut -d' ' -f3 "/proc/$2/stat" 2>/dev/null)" != Z ]; do
		sleep 0.1; n=$((n - 1))
	done
	[ "$n" -gt 0 ] || kill -KILL "$2" 2>/dev/null
	wait "$2"
}
in_root_debs() { (cd "$R/tmp/$1" && for f in *.deb; do echo "/tmp/$1/$f"; done); }
apt_in() { in_root timeout "$STEP_TIMEOUT" apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@"; }
# rstat PATH: "mode owner:group" by the root's own passwd and group
rstat() { in_root stat -c '%a %U:%G' "$1" 2>/dev/null || echo missing; }
# wait_for SECONDS CMD...: poll CMD every 0.1 s, at most SECONDS
wait_for() {
	local n=$(($1 * 10)); shift
	while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}
# snapshot FILE: every path of the root with type, mode, owner and content
# hash, leaving out the package manager's own state, logs, caches and the
# virtual file systems
snapshot() {
	(cd "$R" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp \
		-o -path ./run -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache \
		-o -path ./var/log \) -prune -o -printf '%y %m %u:%g %p\n' | sort -k4) >"$1.meta"
	(cd "$R" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp \
		-o -path ./run -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache \
		-o -path ./var/log \) -prune -o -type f -print0 | sort -z | xargs -0 sha256sum) >"$1.sum"
}
# changed A B: the paths whose metadata or content differ between snapshots
changed() {
	{ diff "$1.meta" "$2.meta"; diff "$1.sum" "$2.sum"; } | sed -n 's/^[<>] .* \.\//\//p' | sort -u
}

# ---- packages to test -------------------------------------------------------
cur_debs=$(debs_in "$CUR") prev_debs=$(debs_in "$PREV")
if [ "$(wc -w <<<"$cur_debs")" -ne 3 ] || [ "$(wc -w <<<"$prev_debs")" -ne 3 ]; then
	nok "the current and the previous build's three .debs are in $CUR and $PREV (run make check-packages)"
	done_testing; exit 1
fi
cur_ver=$(dpkg-deb -f "$(head -n 1 <<<"$cur_debs")" Version)
prev_ver=$(dpkg-deb -f "$(head -n 1 <<<"$prev_debs")" Version)
if dpkg --compare-versions "$prev_ver" lt "$cur_ver"; then
	ok "the previous build ($prev_ver) is older than the current one ($cur_ver)"
else
	nok "the previous build ($prev_ver) is older than the current one ($cur_ver)"
fi
[ -f "$HOLD_SO" ] || { nok "the test shim $HOLD_SO is built"; done_testing; exit 1; }

# ---- a fresh Debian 12 root ---------------------------------------------------
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
at_exit "umount -l '$R/proc' 2>/dev/null"
# Valid-Until is not checked: this machine's mirror may be a dated snapshot
# (as on the development machines); the root still verifies signatures.
if timeout "$STEP_TIMEOUT" mmdebstrap --variant=minbase --mode=root \
	--aptopt='Acquire::Check-Valid-Until "false"' --include=pamtester,systemd \
	bookworm "$R" "$sources" >"$T_TMP/mmdebstrap.log" 2>&1; then
	ok "mmdebstrap makes a fresh Debian 12 root from $sources"
else
	nok "mmdebstrap makes a fresh Debian 12 root from $sources"; tail -n 20 "$T_TMP/mmdebstrap.log" | diag
	done_testing; exit 1
fi
mount -t proc proc "$R/proc"
mkdir -p "$R/tmp/prev" "$R/tmp/cur"
cp $prev_debs "$R/tmp/prev/"; cp $cur_debs "$R/tmp/cur/"; cp "$HOLD_SO" "$R/tmp/hold.so"
apt_in update >"$T_TMP/apt.log" 2>&1 || { nok "apt-get update in the root"; tail "$T_TMP/apt.log" | diag; done_testing; exit 1; }
snapshot "$T_TMP/s0"
cp -a "$R/etc/pam.d" "$T_TMP/pam.d-0"
for f in passwd group shadow gshadow; do cp "$R/etc/$f" "$T_TMP/$f-0"; done

# ---- install the previous build ----------------------------------------------
if apt_in install $(in_root_debs prev) >"$T_TMP/install.log" 2>&1; then
	ok "apt installs the previous build's .debs, resolving their dependencies in the root"
else
	nok "apt installs the previous build's .debs, resolving their dependencies in the root"
	tail -n 30 "$T_TMP/install.log" | diag; done_testing; exit 1
fi
is "installed version" "$(in_root dpkg-query -W -f='${Version}' apikey-tools)" "$prev_ver"
is "the apikey group exists" "$(in_root getent group apikey | cut -d: -f1)" "apikey"
is "apikeyd's system user: primary group apikey, home /var/lib/apikey, no shell" \
	"$(in_root sh -c 'u=$(getent passwd apikey); g=$(getent group apikey | cut -d: -f3); echo "$u" | awk -F: -v g="$g" "{print (\$4==g), \$6, \$7}"')" \
	"1 /var/lib/apikey /usr/sbin/nologin"
is "/var/lib/apikey is root:apikey 2770 (setgid)" "$(rstat /var/lib/apikey)" "2770 root:apikey"
is "keys.db is root:apikey 0660" "$(rstat /var/lib/apikey/keys.db)" "660 root:apikey"
is "keys.db.pepper is root:apikey 0640" "$(rstat /var/lib/apikey/keys.db.pepper)" "640 root:apikey"
is "/etc/apikey/apikey.conf is a conffile" \
	"$(in_root dpkg-query -W -f='${Conffiles}' apikey-tools | awk '{print $1}' | tr -d ' \n')" "/etc/apikey/apikey.conf"
if diff -r "$T_TMP/pam.d-0" "$R/etc/pam.d" >"$T_TMP/d" 2>&1; then
	ok "installing leaves /etc/pam.d byte for byte as it was (the profile is off by default)"
else
	nok "installing leaves /etc/pam.d byte for byte as it was (the profile is off by default)"; diag <"$T_TMP/d"
fi
like "the pam-auth-update profile is installed with Default: no" \
	"$(grep -i '^Default:' "$R/usr/share/pam-configs/apikey")" '^Default: no$'
check "apikeyd.service is enabled (deb-systemd-helper)" \
	test -L "$R/etc/systemd/system/multi-user.target.wants/apikeyd.service"
if in_root systemd-analyze verify --man=no apikeyd.service >"$T_TMP/verify.log" 2>&1 && ! [ -s "$T_TMP/verify.log" ]; then
	ok "systemd-analyze verify: the installed apikeyd.service is clean"
else
	nok "systemd-analyze verify: the installed apikeyd.service is clean"; diag <"$T_TMP/verify.log"
fi
exposure=$(in_root systemd-analyze security --offline=yes apikeyd.service 2>/dev/null |
	sed -n 's/.*Overall exposure level for apikeyd.service: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
	ok "systemd-analyze security: exposure $exposure (at most 2.0; docs/design/packaging.md records it)"
else
	nok "systemd-analyze security: exposure '$exposure' (at most 2.0)"
fi

# ---- a key logs a user in through the installed module ------------------------
# system accounts (-r): no subuid ranges, so nothing of theirs outlives userdel
in_root useradd -r -M alice && in_root useradd -r -M -G apikey keyops
KEY=$(in_root apikeyctl create --owner alice --name laptop --scopes pam:login,docs:read 2>"$T_TMP/e")
like "apikeyctl (root) issues a key" "$KEY" '^ak_[0-9A-Za-z]{36}$'
KID=$(in_root apikeyctl list --json | grep '"name":"laptop"' | sed -n 's/.*"id":"\(key_[0-9A-Za-z]*\)".*/\1/p')
like "the key has an id" "$KID" '^key_[0-9A-Za-z]{16}$'
pamtester_key() {  # KEY [extra env...]: pamtester login alice authenticate acct_mgmt
	local k=$1; shift
	printf '%s\n' "$k" | in_root "$@" timeout 60 pamtester login alice authenticate acct_mgmt
}
if pamtester_key "$KEY" >"$T_TMP/p" 2>&1; then
	nok "with the profile off, the key is not a password (pam_unix refuses it)"
else
	ok "with the profile off, the key is not a password (pam_unix refuses it)"
fi
in_root pam-auth-update --enable apikey
cp -a "$R/etc/pam.d" "$T_TMP/pam.d-on"
grep -v pam_apikey "$R/etc/pam.d/common-auth" | sed 's/ try_first_pass$//' >"$T_TMP/auth-rest"
first_auth=$(grep -E '^auth' "$R/etc/pam.d/common-auth" | head -n 1)
if [[ "$first_auth" =~ ^auth[[:space:]]+\[success=2\ default=ignore\][[:space:]]+pam_apikey\.so ]] &&
	cmp -s "$T_TMP/auth-rest" "$T_TMP/pam.d-0/common-auth" &&
	grep -q 'pam_unix.so nullok try_first_pass$' "$R/etc/pam.d/common-auth"; then
	ok "pam-auth-update --enable: pam_apikey first in common-auth, pam_unix then try_first_pass, nothing else changed"
else
	nok "pam-auth-update --enable: pam_apikey first in common-auth, pam_unix then try_first_pass, nothing else changed"
	diff "$T_TMP/pam.d-0/common-auth" "$R/etc/pam.d/common-auth" | diag
fi
for f in account:required session:optional session-noninteractive:optional; do
	file=common-${f%%:*} ctl=${f#*:}
	if grep -qE "^(account|session)[[:space:]]+$ctl[[:space:]]+pam_apikey\.so" "$R/etc/pam.d/$file" &&
		cmp -s <(grep -v pam_apikey "$R/etc/pam.d/$file") "$T_TMP/pam.d-0/$file"; then
		ok "pam-auth-update --enable: $file gains '$ctl pam_apikey.so' and nothing else"
	else
		nok "pam-auth-update --enable: $file gains '$ctl pam_apikey.so' and nothing else"
		diff "$T_TMP/pam.d-0/$file" "$R/etc/pam.d/$file" | diag
	fi
done
if pamtester_key "$KEY" >"$T_TMP/p" 2>&1; then
	ok "a key made with apikeyctl logs alice in through pamtester (login: auth + account)"
else
	nok "a key made with apikeyctl logs alice in through pamtester (login: auth + account)"; diag <"$T_TMP/p"
fi
OTHER=$(in_root apikeyctl create --owner keyops --name other --scopes pam:login 2>/dev/null)
if pamtester_key "$OTHER" >"$T_TMP/p" 2>&1; then
	nok "another user's key does not log alice in"
else
	ok "another user's key does not log alice in"
fi

# imported bcrypt and argon2id keys verify: libcrypt and libargon2 are
# dlopen()ed (core/hash.c), so only the packages' Depends bring them in
TESTDATA="$BUILD/tests/cli/apikey-testdata"
SRC=$(new_db source)
for alg in bcrypt argon2id; do
	k=$("$APIKEYCTL" --db "$SRC" create --owner imp --scopes docs:read)
	printf '{"hash":"%s","hint":"%s","owner":"imp","scopes":"docs:read"}\n' \
		"$("$TESTDATA" hash "$alg" "$k")" "${k:0:10}" >"$R/tmp/import.jsonl"
	if in_root apikeyctl import /tmp/import.jsonl >"$T_TMP/p" 2>&1 &&
	   printf '%s\n' "$k" | in_root apikeyctl verify >"$T_TMP/p" 2>&1; then
		ok "an imported $alg key verifies in the installed packages"
	else
		nok "an imported $alg key verifies in the installed packages"; diag <"$T_TMP/p"
	fi
done

# ---- apikeyd as its system user beside the module, in both orders -------------
PORT=$(free_port)
DPID=
start_daemon() {
	(exec "${ROOT_ENV[@]}" setpriv --reuid=apikey --regid=apikey --init-groups --inh-caps=-all \
		/usr/sbin/apikeyd --listen "127.0.0.1:$PORT") >>"$T_TMP/apikeyd.log" 2>&1 &
	DPID=$!
	wait_for 20 curl -fsS "http://127.0.0.1:$PORT/readyz"
}
stop_daemon() {  # SIGTERM (drains, flushes usage); its exit status
	local rc
	[ -n "$DPID" ] || return 1
	kill -TERM "$DPID" 2>/dev/null
	wait_pid 20 "$DPID"; rc=$?
	DPID=
	return $rc
}
at_exit '[ -n "$DPID" ] && kill -KILL "$DPID"'
auth_code() {  # KEY: the HTTP status of /auth?scope=docs:read
	curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
		"http://127.0.0.1:$PORT/auth?scope=docs:read"
}
uses() { in_root apikeyctl usage --json | grep "\"$KID\"" | sed -n 's/.*"use_count":\([0-9]*\).*/\1/p'; }
# every file beside keys.db: group apikey, group read/write, nothing for
# others; the pepper group read-only.  Catches a future sibling file made
# with the wrong group or mode, not only SQLite's.
check_layout() {  # DESC
	local bad
	bad=$(in_root find /var/lib/apikey -mindepth 1 \( -name keys.db.pepper \
		\( ! -group apikey -o ! -perm 0640 \) -o ! -name keys.db.pepper \
		\( ! -group apikey -o ! -perm -0660 -o -perm /0007 \) \) -printf '%m %u:%g %p\n')
	if [ -z "$bad" ]; then ok "$1: every file in /var/lib/apikey is group apikey, g+rw (pepper g+r), nothing for others"
	else nok "$1: every file in /var/lib/apikey is group apikey, g+rw (pepper g+r), nothing for others"; diag <<<"$bad"; fi
}
# hold CMD...: run CMD in the root (stdin: the key) with the shim holding
# it inside its first commit, the store and its -wal/-shm open; HPID
HPID=
hold() {
	rm -f "$R/tmp/held" "$R/tmp/release"; mkfifo "$R/tmp/release"
	(exec "${ROOT_ENV[@]}" LD_PRELOAD=/tmp/hold.so HOLD_READY=/tmp/held HOLD_RELEASE=/tmp/release \
		"$@") <<<"$KEY" >"$T_TMP/held.log" 2>&1 &
	HPID=$!
	wait_for 20 test -s "$R/tmp/held"
}
release() { timeout 10 sh -c "echo go >'$R/tmp/release'"; wait_pid 30 "$HPID"; local rc=$?; HPID=; return $rc; }
# the module, held: pamtester logs alice in
hold_module() { hold pamtester login alice authenticate acct_mgmt; }
at_exit '[ -n "$HPID" ] && kill -KILL "$HPID"'

# daemon first: apikeyd makes -wal/-shm as apikey; root's module writes them
check "no -wal/-shm before the daemon-first run" test ! -e "$R/var/lib/apikey/keys.db-wal"
before=$(uses)
if start_daemon; then ok "daemon first: apikeyd starts as user apikey (setpriv) and is ready"
else nok "daemon first: apikeyd starts as user apikey (setpriv) and is ready"; diag <"$T_TMP/apikeyd.log"; fi
is "daemon first: apikeyd made keys.db-wal (apikey:apikey 0660)" "$(rstat /var/lib/apikey/keys.db-wal)" "660 apikey:apikey"
is "daemon first: apikeyd made keys.db-shm (apikey:apikey 0660)" "$(rstat /var/lib/apikey/keys.db-shm)" "660 apikey:apikey"
if pamtester_key "$KEY" >"$T_TMP/p" 2>&1; then ok "daemon first: the module (root) logs alice in and writes the store beside apikeyd"
else nok "daemon first: the module (root) logs alice in and writes the store beside apikeyd"; diag <"$T_TMP/p"; fi
is "daemon first: apikeyd serves /auth for the key" "$(auth_code "$KEY")" 200
is "daemon first: /auth names alice" \
	"$(curl -s -D - -o /dev/null -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT/auth?scope=docs:read" | tr -d '\r' | sed -n 's/^[Xx]-[Aa]pi[Kk]ey-[Oo]wner: //p')" alice
if in_root runuser -u keyops -- apikeyctl create --owner alice --name by-keyops --scopes docs:read >/dev/null 2>"$T_TMP/e"; then
	ok "daemon first: an operator (keyops) in the apikey group issues a key with apikeyctl"
else nok "daemon first: an operator (keyops) in the apikey group issues a key with apikeyctl"; diag <"$T_TMP/e"; fi
check_layout "daemon first"
if stop_daemon; then ok "daemon first: apikeyd stops on SIGTERM with status 0 (usage flushed)"
else nok "daemon first: apikeyd stops on SIGTERM with status 0 (usage flushed)"; tail "$T_TMP/apikeyd.log" | diag; fi
is "daemon first: the store counted the module's login and apikeyd's two /auth" "$(uses)" "$((before + 3))"

# module first: root's module makes -wal/-shm mid-commit; apikeyd opens them
check "no -wal/-shm before the module-first run" test ! -e "$R/var/lib/apikey/keys.db-wal"
before=$(uses)
if hold_module; then ok "module first: pamtester holds the module inside its commit"
else nok "module first: pamtester holds the module inside its commit"; diag <"$T_TMP/held.log"; fi
is "module first: the module (root) made keys.db-wal, root:apikey 0660 as SQLite copies keys.db" \
	"$(rstat /var/lib/apikey/keys.db-wal)" "660 root:apikey"
is "module first: the module (root) made keys.db-shm, root:apikey 0660" "$(rstat /var/lib/apikey/keys.db-shm)" "660 root:apikey"
if start_daemon; then ok "module first: apikeyd starts as user apikey on the module's -wal/-shm"
else nok "module first: apikeyd starts as user apikey on the module's -wal/-shm"; diag <"$T_TMP/apikeyd.log"; fi
is "module first: apikeyd serves /auth while the module is mid-commit" "$(auth_code "$KEY")" 200
if release; then ok "module first: released, the module's login succeeds"
else nok "module first: released, the module's login succeeds"; diag <"$T_TMP/held.log"; fi
is "module first: apikeyd still serves /auth" "$(auth_code "$KEY")" 200
check_layout "module first"
if stop_daemon; then ok "module first: apikeyd flushes usage into root's WAL and stops with status 0"
else nok "module first: apikeyd flushes usage into root's WAL and stops with status 0"; tail "$T_TMP/apikeyd.log" | diag; fi
is "module first: the store counted the login and both /auth" "$(uses)" "$((before + 3))"

# module killed mid-commit: root's -wal/-shm stay behind; apikeyd recovers them
before=$(uses)
hold_module
kill -KILL "$HPID"; wait_pid 10 "$HPID" 2>/dev/null; HPID=
is "module killed mid-commit: root's keys.db-wal stays behind (root:apikey 0660)" \
	"$(rstat /var/lib/apikey/keys.db-wal)" "660 root:apikey"
if start_daemon; then ok "module killed: apikeyd starts on the leftover -wal/-shm"
else nok "module killed: apikeyd starts on the leftover -wal/-shm"; diag <"$T_TMP/apikeyd.log"; fi
is "module killed: apikeyd serves /auth" "$(auth_code "$KEY")" 200
if stop_daemon; then ok "module killed: apikeyd flushes and stops with status 0"
else nok "module killed: apikeyd flushes and stops with status 0"; tail "$T_TMP/apikeyd.log" | diag; fi
is "module killed: the store counted apikeyd's /auth (the killed login was never committed)" "$(uses)" "$((before + 1))"
# operator first: keyops (not root, primary group keyops) makes -wal/-shm;
# SQLite does not chown for non-root, the setgid directory gives the group
before=$(uses)
if hold setpriv --reuid=keyops --regid=keyops --init-groups apikeyctl create --owner alice --name held --scopes docs:read; then
	ok "operator first: apikeyctl as keyops is held inside its commit"
else nok "operator first: apikeyctl as keyops is held inside its commit"; diag <"$T_TMP/held.log"; fi
is "operator first: keyops made keys.db-wal, keyops:apikey 0660 (setgid directory)" \
	"$(rstat /var/lib/apikey/keys.db-wal)" "660 keyops:apikey"
is "operator first: keyops made keys.db-shm, keyops:apikey 0660" "$(rstat /var/lib/apikey/keys.db-shm)" "660 keyops:apikey"
if start_daemon; then ok "operator first: apikeyd starts on keyops's -wal/-shm"
else nok "operator first: apikeyd starts on keyops's -wal/-shm"; diag <"$T_TMP/apikeyd.log"; fi
is "operator first: apikeyd serves /auth" "$(auth_code "$KEY")" 200
if release; then ok "operator first: released, apikeyctl issues the key"
else nok "operator first: released, apikeyctl issues the key"; diag <"$T_TMP/held.log"; fi
if stop_daemon; then ok "operator first: apikeyd flushes into keyops's WAL and stops with status 0"
else nok "operator first: apikeyd flushes into keyops's WAL and stops with status 0"; tail "$T_TMP/apikeyd.log" | diag; fi
is "operator first: the store counted apikeyd's /auth" "$(uses)" "$((before + 1))"
if in_root setpriv --reuid=nobody --regid=nogroup --clear-groups apikeyctl list >/dev/null 2>&1; then
	nok "a user outside the apikey group cannot open the store"
else ok "a user outside the apikey group cannot open the store"; fi

# ---- the hardened unit under systemd (systemd-nspawn boots the root) -----------
cp "$R/etc/apikey/apikey.conf" "$T_TMP/apikey.conf.orig"
echo "listen=127.0.0.1:$PORT" >>"$R/etc/apikey/apikey.conf"
before=$(uses)
if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
	nok "before the boot nothing answers on 127.0.0.1:$PORT"
else ok "before the boot nothing answers on 127.0.0.1:$PORT"; fi
umount "$R/proc"
snapshot "$T_TMP/s-preboot"
# --foreground: plain timeout passes a SIGTERM on to its child and again to
# its process group, and a second SIGTERM makes systemd-nspawn kill the
# container at once, apikeyd before its last usage flush
timeout --foreground 120 systemd-nspawn -q -D "$R" --register=no --keep-unit -b >"$T_TMP/nspawn.log" 2>&1 </dev/null &
NPID=$!
at_exit '[ -n "$NPID" ] && kill -KILL "$NPID"'
if wait_for 60 curl -fsS "http://127.0.0.1:$PORT/readyz"; then
	ok "systemd boots the root and starts apikeyd.service (User=apikey, the hardening as shipped)"
else nok "systemd boots the root and starts apikeyd.service (User=apikey, the hardening as shipped)"; tail -n 30 "$T_TMP/nspawn.log" | diag; fi
is "under systemd: apikeyd serves /auth" "$(auth_code "$KEY")" 200
kill -TERM "$NPID"; wait_pid 60 "$NPID"; NPID=
# before any apikeyctl opens the store: the last one to close it removes a -wal/-shm
if [ ! -e "$R/var/lib/apikey/keys.db-wal" ] && [ ! -e "$R/var/lib/apikey/keys.db-shm" ]; then
	ok "under systemd: the container halted and apikeyd closed the store (no -wal/-shm left)"
else nok "under systemd: the container halted and apikeyd closed the store (no -wal/-shm left)"; tail -n 30 "$T_TMP/nspawn.log" | diag; fi
mount -t proc proc "$R/proc"
# what booting the root changed by itself (machine-id, timer stamps, the
# unit's PrivateTmp under /var/tmp): left out of the remove/purge lists below
snapshot "$T_TMP/s-postboot"
boot_changed=$(changed "$T_TMP/s-preboot" "$T_TMP/s-postboot" | grep -v '^/var/lib/apikey' | grep -vxF /etc/apikey/apikey.conf)
diag <<<"booting the root changed: $(tr '\n' ' ' <<<"$boot_changed")"
is "under systemd: apikeyd wrote its usage into the store (ProtectSystem=strict, ReadWritePaths)" "$(uses)" "$((before + 1))"
cp "$T_TMP/apikey.conf.orig" "$R/etc/apikey/apikey.conf"

# ---- upgrade to the current build ------------------------------------------------
keys_before=$(in_root apikeyctl list --json | grep -o '"id": *"key_[^"]*"' | sort)
pepper_before=$(sha256sum <"$R/var/lib/apikey/keys.db.pepper")
if apt_in install $(in_root_debs cur) >"$T_TMP/upgrade.log" 2>&1; then
	ok "apt upgrades $prev_ver to $cur_ver"
else nok "apt upgrades $prev_ver to $cur_ver"; tail -n 30 "$T_TMP/upgrade.log" | diag; fi
is "upgraded version" "$(in_root dpkg-query -W -f='${Version}' apikey-tools)" "$cur_ver"
is "upgrade keeps every key" "$(in_root apikeyctl list --json | grep -o '"id": *"key_[^"]*"' | sort)" "$keys_before"
is "upgrade keeps the pepper" "$(sha256sum <"$R/var/lib/apikey/keys.db.pepper")" "$pepper_before"
check "upgrade leaves the store passing apikeyctl db check" in_root apikeyctl db check
check "upgrade keeps the enabled profile in /etc/pam.d byte for byte" diff -r "$T_TMP/pam.d-on" "$R/etc/pam.d"
if pamtester_key "$KEY" >"$T_TMP/p" 2>&1; then ok "after the upgrade the same key still logs alice in"
else nok "after the upgrade the same key still logs alice in"; diag <"$T_TMP/p"; fi
is "after the upgrade the layout is unchanged" \
	"$(rstat /var/lib/apikey) | $(rstat /var/lib/apikey/keys.db) | $(rstat /var/lib/apikey/keys.db.pepper)" \
	"2770 root:apikey | 660 root:apikey | 640 root:apikey"

# ---- disable, remove, purge ------------------------------------------------------
in_root pam-auth-update --disable apikey
if diff -r "$T_TMP/pam.d-0" "$R/etc/pam.d" >"$T_TMP/d"; then
	ok "pam-auth-update --disable restores /etc/pam.d byte for byte"
else nok "pam-auth-update --disable restores /etc/pam.d byte for byte"; diag <"$T_TMP/d"; fi
in_root pam-auth-update --enable apikey
in_root userdel alice; in_root userdel keyops
if apt_in remove $PKGS >"$T_TMP/remove.log" 2>&1 && apt_in autoremove --purge >>"$T_TMP/remove.log" 2>&1; then
	ok "apt removes the three packages (and autoremoves the libraries it had pulled in)"
else nok "apt removes the three packages (and autoremoves the libraries it had pulled in)"; tail -n 30 "$T_TMP/remove.log" | diag; fi
if diff -r "$T_TMP/pam.d-0" "$R/etc/pam.d" >"$T_TMP/d"; then
	ok "remove takes the enabled module out of /etc/pam.d (pam-auth-update --package --remove): byte for byte as before"
else nok "remove takes the enabled module out of /etc/pam.d: byte for byte as before"; diag <"$T_TMP/d"; fi
snapshot "$T_TMP/s-removed"
not_boot() { grep -vxF -f <(printf '%s\n' "$boot_changed" | sed '/^$/d'; echo /nonexistent); }
# (the store's -wal and -shm stay when its last user closed it without a
# checkpoint, as the PAM module does: part of the store either way)
kept_remove=$(changed "$T_TMP/s0" "$T_TMP/s-removed" | not_boot | grep -vE '/keys\.db-(wal|shm)$' | tr '\n' ' ')
# what stays after remove: the conffile, the store, its pepper and its
# rate-limit table, the user and group, and deb-systemd-helper's enablement
# (a dangling symlink and its state; Debian keeps both until purge so that a
# re-install stays enabled)
is "after remove, what stays is the configuration, the store, the user and group, the unit's enablement" "$kept_remove" \
	"/etc/apikey /etc/apikey/apikey.conf /etc/group /etc/group- /etc/gshadow /etc/gshadow- /etc/passwd /etc/passwd- /etc/shadow /etc/shadow- /etc/systemd/system/multi-user.target.wants/apikeyd.service /var/lib/apikey /var/lib/apikey/keys.db /var/lib/apikey/keys.db.pepper /var/lib/apikey/keys.db.rl /var/lib/systemd/deb-systemd-helper-enabled/apikeyd.service.dsh-also /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/apikeyd.service "
# apt cannot purge what no repository knows once it is removed: dpkg does
if in_root timeout "$STEP_TIMEOUT" dpkg --purge $PKGS >"$T_TMP/purge.log" 2>&1; then
	ok "dpkg --purge purges the three removed packages"
else nok "dpkg --purge purges the three removed packages"; tail -n 30 "$T_TMP/purge.log" | diag; fi
snapshot "$T_TMP/s-purged"
kept_purge=$(changed "$T_TMP/s0" "$T_TMP/s-purged" | not_boot | tr '\n' ' ')
is "after purge, only the user and group entries stay (policy keeps system users)" "$kept_purge" \
	"/etc/group /etc/group- /etc/gshadow /etc/gshadow- /etc/passwd /etc/passwd- /etc/shadow /etc/shadow- "
for f in passwd group shadow gshadow; do
	if cmp -s <(grep -v '^apikey:' "$R/etc/$f") "$T_TMP/$f-0"; then
		ok "after purge, /etc/$f differs from before only by the apikey entry"
	else
		nok "after purge, /etc/$f differs from before only by the apikey entry"
		diff "$T_TMP/$f-0" "$R/etc/$f" | diag
	fi
done

# ---- an upgrade from an older release: the store's migrations run ----------------
# (t_build.sh builds it from an older commit: store schema 3)
OLD=${PKG_OLD:-$BUILD/packages-old}
old_debs=$(debs_in "$OLD")
if [ "$(wc -w <<<"$old_debs")" -ne 3 ]; then
	skip "an upgrade from an older release: no older release built (t_build.sh says why)"
else
	mkdir -p "$R/tmp/old" && cp $old_debs "$R/tmp/old/"
	schema() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA user_version").fetchone()[0])' "$1"; }
	in_root useradd -r -M alice
	if apt_in install $(in_root_debs old) >"$T_TMP/old.log" 2>&1 &&
	   KEY=$(in_root apikeyctl create --owner alice --name old --scopes pam:login 2>"$T_TMP/old.log") &&
	   apt_in install $(in_root_debs cur) >>"$T_TMP/old.log" 2>&1; then
		ok "apt installs the older release, issues a key, upgrades to $cur_ver"
	else nok "apt installs the older release, issues a key, upgrades to $cur_ver"; tail -n 30 "$T_TMP/old.log" | diag; fi
	is "the upgrade migrated the store to the current schema" \
		"$(schema "$R/var/lib/apikey/keys.db")" "$(schema "$(new_db current)")"
	check "…and it passes apikeyctl db check" in_root apikeyctl db check
	in_root pam-auth-update --enable apikey
	if pamtester_key "$KEY" >"$T_TMP/p" 2>&1; then ok "…and the key issued before the upgrade logs alice in"
	else nok "…and the key issued before the upgrade logs alice in"; diag <"$T_TMP/p"; fi
fi

done_testing

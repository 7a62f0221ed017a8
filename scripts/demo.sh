#!/usr/bin/env bash
# demo.sh — the README's main job: install missing build dependencies (as
# root), build, create a demo key store in ./demo, issue a demo key, verify
# it, and start the demo sidecar on 127.0.0.1:8790 with curl lines to try.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
if [ "$(id -u)" = 0 ]; then scripts/install-deps.sh; fi
make -j"$(nproc)"

ctl="$top/build/apikeyctl"
demo="$top/demo"
db="$demo/keys.db"
mkdir -p "$demo"
if [ ! -f "$db" ]; then
	"$ctl" --db "$db" init
	"$ctl" --db "$db" preset add demo-reader docs:read pam:login
fi
key=$("$ctl" --db "$db" create --owner demo --name "demo key" --preset demo-reader --expires 30d)
echo
echo "Demo key store: $db"
echo "Demo key (shown once, stored only as an HMAC): $key"
printf '%s' "$key" | "$ctl" --db "$db" verify --scope docs:read && true
"$ctl" --db "$db" list

if [ -x "$top/build/apikeyd" ]; then
	port=${APIKEYD_PORT:-8790}
	if [ -f "$demo/apikeyd.pid" ] && kill -0 "$(cat "$demo/apikeyd.pid")" 2>/dev/null; then
		kill "$(cat "$demo/apikeyd.pid")"; sleep 0.5
	fi
	"$top/build/apikeyd" --db "$db" --listen "127.0.0.1:$port" >"$demo/apikeyd.log" 2>&1 &
	echo $! >"$demo/apikeyd.pid"
	for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
	cat <<MSG

The demo sidecar is running on http://127.0.0.1:$port (pid $(cat "$demo/apikeyd.pid"), log $demo/apikeyd.log).
Try it:
  curl -i -H "Authorization: Bearer $key" "http://127.0.0.1:$port/auth?scope=docs:read"
  curl -i -H "X-API-Key: $key" -H "X-Required-Scope: keys:write" http://127.0.0.1:$port/auth
  curl -s -X POST -d '{"key":"$key","scopes":["docs:read"]}' http://127.0.0.1:$port/v1/verify
  curl -s -H "Authorization: Bearer $key" http://127.0.0.1:$port/v1/whoami
  curl -s http://127.0.0.1:$port/metrics | head
Revoke it and watch /auth turn 401 on the next request:
  $ctl --db $db revoke \$($ctl --db $db list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
Stop the sidecar: kill \$(cat $demo/apikeyd.pid)
MSG
fi

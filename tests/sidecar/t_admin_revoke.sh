#!/usr/bin/env bash
# t_admin_revoke.sh — admin writes while /auth is under load (SPEC §6,
# issue 10): 4 keep-alive clients loop on /auth with a key while another
# client creates keys through the admin API without pause; then the key is
# revoked (and another rotated with grace 0) through the admin API: every
# /auth request started after the 200/201 came back is refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
ADMIN=$(sc_key root apikey:admin --rate-limit 1000000)
K1=$(sc_key alice docs:read --rate-limit 1000000); ID1=$(sc_key_id alice)
K2=$(sc_key bob docs:read --rate-limit 1000000); ID2=$(sc_key_id bob)
printf 'admin_api=yes\n' >"$T_TMP/apikey.conf"
sc_start -f "$T_TMP/apikey.conf" --db "$DB" --threads 2 || { nok "apikeyd starts"; done_testing; exit 1; }

run() {   # run DESC KEY METHOD PATH WANT
	python3 - "$SC_PORT" "$ADMIN" "$@" <<'PY'
import http.client, json, sys, threading, time
port, admin, desc, key, method, path, want = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
rows, stop, writes = [], threading.Event(), []
def hammer():
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(4)]
    i = 0
    while not stop.is_set():
        c = conns[i % 4]; i += 1
        t = time.time()
        try:
            c.request("GET", "/auth", headers={"X-API-Key": key}); r = c.getresponse(); r.read(); st = r.status
        except Exception:
            st = "err"; c.close()
        rows.append((t, str(st)))
def writer():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        c.request("POST", "/v1/keys", body=json.dumps({"owner": "carol", "scopes": ["docs:read"]}),
                  headers={"Authorization": "Bearer " + admin}); r = c.getresponse(); r.read()
        writes.append(r.status)
ts = [threading.Thread(target=hammer), threading.Thread(target=writer)]
for t in ts: t.start()
deadline = time.time() + 10
while time.time() < deadline and (sum(1 for _, s in rows if s == "200") < 50 or len(writes) < 10):
    time.sleep(0.05)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("POST", path, body=json.dumps({"grace": 0}) if path.endswith("rotate") else None,
          headers={"Authorization": "Bearer " + admin}); r = c.getresponse(); r.read()
t_done = time.time()
status = r.status
time.sleep(0.7)
stop.set()
for t in ts: t.join()
before = [s for t, s in rows if t < t_done]
after = [s for t, s in rows if t > t_done]
bad = [s for s in after if s != want]
ok = status in (200, 201) and before.count("200") > 0 and len(after) > 20 and not bad and writes and set(writes) == {201}
print("%s - %s through the admin API (%d) while %d admin creates ran: %d /auth before (%d allowed), %d after, %d of them not %s%s" % (
    "ok" if ok else "not ok", desc, status, len(writes), len(before), before.count("200"), len(after), len(bad), want,
    "" if not bad else " (" + ",".join(sorted(set(bad))) + ")"))
PY
}
report() { local l; while read -r l; do
	case $l in "ok - "*) ok "${l#ok - }";; "not ok - "*) nok "${l#not ok - }";; *) echo "# $l";; esac
done; }
report < <(run revoke "$K1" POST "/v1/keys/$ID1/revoke" 401)
report < <(run "rotate (grace 0)" "$K2" POST "/v1/keys/$ID2/rotate" 401)
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0
done_testing

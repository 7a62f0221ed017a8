#!/usr/bin/env bash
# t_openapi.sh — /openapi.json is OpenAPI 3.1, byte-identical to
# sidecar/openapi.json, and true: its paths and methods are exactly the routes
# apikeyd serves (apikeyd --routes), each of which answers (not 404/405/501),
# every other method of a documented path is 405, and undocumented paths 404;
# and valid against the official OpenAPI 3.1 JSON schema (tests/sidecar/openapi/,
# npm ci: @seriousme/openapi-schema-validator).  The admin API is on here
# (admin_api=yes) so its routes answer too.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
printf 'admin_api=yes\n' >"$T_TMP/apikey.conf"
sc_start -f "$T_TMP/apikey.conf" --db "$DB" --threads 1 || { nok "apikeyd starts"; done_testing; exit 1; }
curl -s -m 5 -D "$T_TMP/h" -o "$T_TMP/openapi.json" "$SC_URL/openapi.json"
like "served as application/json" "$(sc_header Content-Type "$T_TMP/h")" '^application/json'
check "served document = sidecar/openapi.json" cmp -s "$T_TMP/openapi.json" "$TOP/sidecar/openapi.json"
"$APIKEYD" --routes >"$T_TMP/routes"
check "apikeyd --routes lists routes" test -s "$T_TMP/routes"

# valid OpenAPI 3.1: the validator is pinned in tests/sidecar/openapi (a
# missing node or npm is a failure, never a skip)
V="$TOP/tests/sidecar/openapi"
if [ ! -d "$V/node_modules/@seriousme/openapi-schema-validator" ] && command -v npm >/dev/null; then
	(cd "$V" && npm ci --no-audit --no-fund >/dev/null 2>&1)
fi
if command -v node >/dev/null && out=$(node "$V/validate.mjs" "$TOP/sidecar/openapi.json" 2>&1); then
	ok "sidecar/openapi.json is valid OpenAPI 3.1 ($out)"
else
	nok "sidecar/openapi.json is valid OpenAPI 3.1: ${out:-node or the validator is missing (npm ci in tests/sidecar/openapi)}"
fi

python3 - "$T_TMP/openapi.json" "$T_TMP/routes" "$SC_PORT" <<'PY' >"$T_TMP/result"
import http.client, json, sys
doc = json.load(open(sys.argv[1]))
port = int(sys.argv[3])
def say(ok, msg): print(("ok " if ok else "not ok ") + msg)
say(doc.get("openapi", "").startswith("3.1."), "openapi is 3.1.x (%s)" % doc.get("openapi"))
say(bool(doc.get("info", {}).get("title")) and bool(doc.get("info", {}).get("version")), "info has title and version")
verbs = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
spec = {(p, m.upper()) for p, item in doc["paths"].items() for m in item if m in verbs}
served = set()
for line in open(sys.argv[2]):
    methods, path = line.split()
    served |= {(path, m) for m in methods.split(",")}
say(spec == served, "paths and methods in the document = routes served"
    + ("" if spec == served else " (only documented: %s; only served: %s)" % (sorted(spec - served), sorted(served - spec))))
# every $ref resolves
def refs(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "$ref": yield v
            else: yield from refs(v)
    elif isinstance(o, list):
        for v in o: yield from refs(v)
bad = []
for r in refs(doc):
    node = doc
    for part in r.lstrip("#/").split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None: bad.append(r)
say(not bad, "every $ref resolves" + (" (broken: %s)" % bad if bad else ""))
# every served route answers as a route (not 404/405/501) with each method
def concrete(path):
    return (path.replace("{rest}", "some/original/path").replace("{id}", "key_0000000000000000")
            .replace("{owner}", "alice").replace("{name}", "read-only"))
for path, m in sorted(served):
    url = concrete(path)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(m, url, body=b"{}" if m in ("POST", "PUT", "PATCH") else None)
    st = c.getresponse().status
    c.close()
    say(st not in (404, 405, 501), "%s %s is served (%d)" % (m, url, st))
# every other method on a served path is 405, and Allow names exactly the
# methods the document gives that path
allowed = {}
for path, m in served:
    allowed.setdefault(path, set()).add(m)
for path, ms in sorted(allowed.items()):
    url = concrete(path)
    for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        if m in ms:
            continue
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request(m, url, body=b"{}" if m in ("POST", "PUT", "PATCH") else None)
        r = c.getresponse()
        allow = {a.strip() for a in (r.getheader("Allow") or "").split(",") if a.strip()}
        c.close()
        say(r.status == 405 and allow == ms, "%s %s is 405 with Allow: %s (%d, Allow: %s)"
            % (m, url, ",".join(sorted(ms)), r.status, ",".join(sorted(allow))))
# and a path the document does not have is not served
for url in ("/no-such-route", "/v1", "/v1/verify/extra", "/healthz/x", "/v1/keys/", "/v1/keys//revoke",
            "/v1/keyss", "/v1/presets/read-only/x", "/v1/accounts"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", url); st = c.getresponse().status
    c.close()
    say(st == 404, "GET %s (not documented) is 404 (%d)" % (url, st))
PY
while read -r l; do case $l in "ok "*) ok "${l#ok }";; *) nok "${l#not ok }";; esac; done <"$T_TMP/result"
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0
done_testing

#!/usr/bin/env bash
# t_openapi.sh — /openapi.json is OpenAPI 3.1, byte-identical to
# sidecar/openapi.json, and true: its paths and methods are exactly the routes
# apikeyd serves (apikeyd --routes), each of which answers (not 404/405/501).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib_sidecar.sh"

DB=$(new_db) || { nok "init a store"; done_testing; exit 1; }
sc_start --db "$DB" --threads 1 || { nok "apikeyd starts"; done_testing; exit 1; }
curl -s -m 5 -D "$T_TMP/h" -o "$T_TMP/openapi.json" "$SC_URL/openapi.json"
like "served as application/json" "$(sc_header Content-Type "$T_TMP/h")" '^application/json'
check "served document = sidecar/openapi.json" cmp -s "$T_TMP/openapi.json" "$TOP/sidecar/openapi.json"
"$APIKEYD" --routes >"$T_TMP/routes"
check "apikeyd --routes lists routes" test -s "$T_TMP/routes"

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
say(not any(p.startswith("/v1/keys") for p, _ in spec), "no admin API (/v1/keys) documented: it is not built yet")
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
for path, m in sorted(served):
    url = path.replace("{rest}", "some/original/path")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(m, url, body=b"{}" if m in ("POST", "PUT", "PATCH") else None)
    st = c.getresponse().status
    c.close()
    say(st not in (404, 405, 501), "%s %s is served (%d)" % (m, url, st))
# and a path the document does not have is not served
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/v1/keys"); st = c.getresponse().status
say(st == 404, "GET /v1/keys (not documented) is 404 (%d)" % st)
PY
while read -r l; do case $l in "ok "*) ok "${l#ok }";; *) nok "${l#not ok }";; esac; done <"$T_TMP/result"
sc_stop TERM
is "SIGTERM: exit 0" "$SC_RC" 0
done_testing

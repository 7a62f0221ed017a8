#!/usr/bin/env python3
"""admin_table.py — the admin API's table-driven loopback tests (t_admin.sh).

Each row: who calls (a key's name), method, path, body, and what must come
back (status, code, field, and optionally a check on the JSON).  Prints one
TAP-like line per row ("ok - …" / "not ok - …"); t_admin.sh numbers them.
Keys come from t_admin.sh as JSON on stdin: {"name": {"key":…, "id":…}}."""
import http.client, json, sys

port = int(sys.argv[1])
which = sys.argv[2]
K = json.load(sys.stdin)
seen_keys = []          # every raw key a 201 handed out (t_admin.sh checks the logs)


def call(who, method, path, body=None, headers=None):
    h = dict(headers or {})
    if who is not None:
        h["Authorization"] = "Bearer " + (K[who]["key"] if who in K else who)
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        h.setdefault("Content-Type", "application/json")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        j = json.loads(raw) if raw else None
    except ValueError:
        j = None
    return r.status, j, r, raw


def sub(s):
    """{alice_k1} in a path or body → that key's id."""
    if isinstance(s, str):
        for name, v in K.items():
            s = s.replace("{%s}" % name, v["id"])
        return s
    if isinstance(s, dict):
        return {k: sub(v) for k, v in s.items()}
    if isinstance(s, list):
        return [sub(v) for v in s]
    return s


def row(desc, who, method, path, body=None, status=200, code=None, field=None, check=None, headers=None):
    path = sub(path)
    body = sub(body)
    st, j, r, raw = call(who, method, path, body, headers)
    problems = []
    if st != status:
        problems.append("status %d, want %d" % (st, status))
    if code is not None and (not isinstance(j, dict) or j.get("code") != code):
        problems.append("code %s, want %s" % (j.get("code") if isinstance(j, dict) else raw[:80], code))
    if field is not None and (not isinstance(j, dict) or j.get("field") != field):
        problems.append("field %s, want %s" % (j.get("field") if isinstance(j, dict) else None, field))
    if st >= 400 and st != 413 and isinstance(j, dict):
        if j.get("status") != st or not isinstance(j.get("error"), str):
            problems.append("error body %s" % raw[:120])
    if r.reason in ("", "Error"):      # every status apikeyd sends has its phrase
        problems.append("reason phrase %r" % r.reason)
    if st < 300 and st != 204 and r.getheader("Cache-Control") != "no-store":
        problems.append("no Cache-Control: no-store")
    if isinstance(j, dict) and "key" in j and st != 201:
        problems.append("a key in a %d answer" % st)
    if st == 201 and isinstance(j, dict) and j.get("key"):
        seen_keys.append(j["key"])
    if check and not problems:
        try:
            why = check(j, r)
        except Exception as e:   # a check that cannot read the answer fails
            why = "check raised %r" % e
        if why:
            problems.append(why)
    print(("not ok - " if problems else "ok - ") + "%s: %s %s as %s → %d%s" % (
        desc, method, path, who, st, (" (" + "; ".join(problems) + ")") if problems else ""))
    return j


def owners(j, r=None):
    return sorted({k["owner"] for k in j["keys"]})


def only(*want):
    return lambda j, r: None if owners(j) == sorted(want) else "owners %s, want %s" % (owners(j), list(want))


def has_key_once(j, r):
    if not j.get("key") or not j["key"].startswith("ak_"):
        return "no key in the 201 body"
    if j.get("id", "").startswith("key_") is False:
        return "no id"
    return None


def status_is(s):
    return lambda j, r: None if j.get("status") == s else "status %s, want %s" % (j.get("status"), s)


def authz():
    # ---- list ----------------------------------------------------------------
    row("admin lists every owner", "admin", "GET", "/v1/keys?limit=1000", check=lambda j, r:
        None if {"alice", "bob", "root"} <= set(owners(j)) else "owners %s" % owners(j))
    row("own owner (write) lists its own", "alice_w", "GET", "/v1/keys", check=only("alice"))
    row("own owner (read) lists its own", "alice_r", "GET", "/v1/keys", check=only("alice"))
    row("other owner lists its own", "bob_w", "GET", "/v1/keys", check=only("bob"))
    row("naming another owner", "alice_r", "GET", "/v1/keys?owner=bob", status=403, code="FORBIDDEN", field="owner")
    row("admin names an owner", "admin", "GET", "/v1/keys?owner=bob", check=only("bob"))
    for who in ("star", "apikey_star", "read_star", "plain"):
        row("wildcard or no admin scope: not an admin key", who, "GET", "/v1/keys", status=403, code="INSUFFICIENT_SCOPE")
    row("revoked admin key", "admin_revoked", "GET", "/v1/keys", status=401, code="REVOKED")
    row("no key", None, "GET", "/v1/keys", status=401, code="MISSING_KEY")
    row("malformed key", "ak_nope", "GET", "/v1/keys", status=401, code="MALFORMED_KEY")
    row("key in the query is not read", None, "GET", "/v1/keys?api_key=" + K["admin"]["key"], status=401,
        code="MISSING_KEY")
    # ---- one key ---------------------------------------------------------------
    row("own key", "alice_r", "GET", "/v1/keys/{alice_k1}", check=lambda j, r: None if j["id"] == K["alice_k1"]["id"] else "id")
    row("another owner's key is 404", "bob_w", "GET", "/v1/keys/{alice_k1}", status=404, code="NOT_FOUND")
    row("another owner's key is 404 (write)", "alice_w", "GET", "/v1/keys/{bob_k1}", status=404, code="NOT_FOUND")
    row("admin reads any key", "admin", "GET", "/v1/keys/{bob_k1}")
    row("wildcard key reads nothing", "star", "GET", "/v1/keys/{star}", status=403, code="INSUFFICIENT_SCOPE")
    row("no such key", "admin", "GET", "/v1/keys/key_0000000000000000", status=404, code="NOT_FOUND")
    # ---- create -----------------------------------------------------------------
    row("writer creates for itself", "alice_w", "POST", "/v1/keys", {"name": "laptop", "scopes": ["docs:read"]},
        status=201, check=lambda j, r: has_key_once(j, r) or (None if j["owner"] == "alice" else "owner"))
    row("reader may not create", "alice_r", "POST", "/v1/keys", {"scopes": ["docs:read"]}, status=403, code="INSUFFICIENT_SCOPE")
    row("wildcard key may not create", "star", "POST", "/v1/keys", {"scopes": ["docs:read"]}, status=403, code="INSUFFICIENT_SCOPE")
    row("creating for another owner", "alice_w", "POST", "/v1/keys", {"owner": "bob", "scopes": ["docs:read"]},
        status=403, code="FORBIDDEN", field="owner")
    row("admin creates for another owner", "admin", "POST", "/v1/keys", {"owner": "bob", "scopes": ["*"]},
        status=201, check=has_key_once)
    row("escalation: a scope the caller lacks", "alice_w", "POST", "/v1/keys", {"scopes": ["billing:read"]},
        status=403, code="FORBIDDEN", field="scopes")
    row("escalation: a wildcard", "alice_w", "POST", "/v1/keys", {"scopes": ["*"]}, status=403, code="FORBIDDEN", field="scopes")
    row("escalation: docs:* from docs:read,docs:write", "alice_w", "POST", "/v1/keys", {"scopes": ["docs:*"]},
        status=403, code="FORBIDDEN", field="scopes")
    row("escalation: apikey:admin", "alice_w", "POST", "/v1/keys", {"scopes": ["apikey:admin"]}, status=403,
        code="FORBIDDEN", field="scopes")
    row("escalation: a preset wider than the caller", "alice_w", "POST", "/v1/keys", {"preset": "full-access"},
        status=403, code="FORBIDDEN", field="preset")
    row("a preset within the caller", "alice_w", "POST", "/v1/keys", {"preset": "docs-reader"}, status=201,
        check=lambda j, r: None if j["scopes"] == ["docs:read"] else "scopes %s" % j["scopes"])
    row("a writer may hand on apikey:write itself", "alice_w", "POST", "/v1/keys", {"scopes": ["apikey:write"]},
        status=201, check=has_key_once)
    row("no such preset", "alice_w", "POST", "/v1/keys", {"preset": "nope"}, status=400, code="BAD_REQUEST", field="preset")
    # ---- edit -------------------------------------------------------------------
    row("edit within the caller's scopes", "alice_w", "PATCH", "/v1/keys/{alice_k1}",
        {"name": "renamed", "scopes": ["docs:read", "docs:write"], "rate_limit": 120, "metadata": {"team": "a"}},
        check=lambda j, r: None if (j["name"], j["scopes"], j["rate_limit"], j["metadata"]) ==
        ("renamed", ["docs:read", "docs:write"], 120, {"team": "a"}) else "record %s" % j)
    row("escalation: PATCH widening", "alice_w", "PATCH", "/v1/keys/{alice_k1}", {"scopes": ["billing:read"]},
        status=403, code="FORBIDDEN", field="scopes")
    row("escalation: PATCH to a wide preset", "alice_w", "PATCH", "/v1/keys/{alice_k1}", {"preset": "full-access"},
        status=403, code="FORBIDDEN", field="preset")
    row("PATCH another owner's key", "alice_w", "PATCH", "/v1/keys/{bob_k1}", {"name": "x"}, status=404, code="NOT_FOUND")
    row("PATCH by a reader", "alice_r", "PATCH", "/v1/keys/{alice_k1}", {"name": "x"}, status=403, code="INSUFFICIENT_SCOPE")
    row("PATCH {} changes nothing", "alice_w", "PATCH", "/v1/keys/{alice_k1}", {},
        check=lambda j, r: None if j["name"] == "renamed" else "name %s" % j["name"])
    row("expires_at null removes the expiry", "alice_w", "PATCH", "/v1/keys/{alice_k1}", {"expires_at": "30d"},
        check=lambda j, r: None if j["expires_at"] else "no expiry")
    row("…and null removes it", "alice_w", "PATCH", "/v1/keys/{alice_k1}", {"expires_at": None},
        check=lambda j, r: None if j["expires_at"] is None else "expiry %s" % j["expires_at"])
    # ---- rotate, revoke ------------------------------------------------------------
    row("escalation: rotate another owner's key", "alice_w", "POST", "/v1/keys/{bob_k1}/rotate", {}, status=404, code="NOT_FOUND")
    row("escalation: rotate a key wider than the caller", "alice_w", "POST", "/v1/keys/{star}/rotate", {},
        status=403, code="FORBIDDEN", field="scopes")
    new = row("rotate own key, grace 0", "alice_w", "POST", "/v1/keys/{alice_k2}/rotate", {"grace": 0}, status=201,
              check=lambda j, r: has_key_once(j, r) or (None if j["rotated_from"] == K["alice_k2"]["id"] else "rotated_from"))
    row("the old key is revoked", "alice_w", "GET", "/v1/keys/{alice_k2}", check=status_is("revoked"))
    row("rotate a revoked key: conflict", "alice_w", "POST", "/v1/keys/{alice_k2}/rotate", {}, status=409, code="CONFLICT")
    row("PATCH a revoked key: conflict", "alice_w", "PATCH", "/v1/keys/{alice_k2}", {"name": "x"}, status=409, code="CONFLICT")
    row("rotate with grace keeps the old one rotating", "alice_w", "POST", "/v1/keys/{alice_k3}/rotate", {"grace": "1h"},
        status=201, check=has_key_once)
    row("…rotating", "alice_r", "GET", "/v1/keys/{alice_k3}", check=status_is("rotating"))
    row("revoke another owner's key", "alice_w", "POST", "/v1/keys/{bob_k1}/revoke", status=404, code="NOT_FOUND")
    row("reader may not revoke", "alice_r", "POST", "/v1/keys/{alice_k1}/revoke", status=403, code="INSUFFICIENT_SCOPE")
    row("owner revokes its key", "bob_w", "POST", "/v1/keys/{bob_k1}/revoke", check=status_is("revoked"))
    row("revoking again keeps it revoked", "bob_w", "POST", "/v1/keys/{bob_k1}/revoke", {}, check=status_is("revoked"))
    row("list by status", "alice_r", "GET", "/v1/keys?status=revoked", check=lambda j, r:
        None if [k["id"] for k in j["keys"]] == [K["alice_k2"]["id"]] else "keys %s" % [k["id"] for k in j["keys"]])
    # ---- accounts, presets ----------------------------------------------------------
    row("no account recorded", "alice_r", "GET", "/v1/accounts/alice", status=404, code="NOT_FOUND")
    row("writer may not set an account", "alice_w", "PUT", "/v1/accounts/alice", {"plan": "pro"}, status=403,
        code="INSUFFICIENT_SCOPE")
    row("wildcard may not set an account", "star", "PUT", "/v1/accounts/alice", {"plan": "pro"}, status=403,
        code="INSUFFICIENT_SCOPE")
    row("admin sets an account", "admin", "PUT", "/v1/accounts/alice", {"plan": "pro"},
        check=lambda j, r: None if j == {"owner": "alice", "plan": "pro", "active": True} else "%s" % j)
    row("own account", "alice_r", "GET", "/v1/accounts/alice", check=lambda j, r: None if j["plan"] == "pro" else "%s" % j)
    row("another owner's account", "alice_r", "GET", "/v1/accounts/bob", status=403, code="FORBIDDEN", field="owner")
    row("presets are readable by a reader", "alice_r", "GET", "/v1/presets",
        check=lambda j, r: None if "read-only" in [p["name"] for p in j["presets"]] else "%s" % j)
    row("a preset", "alice_r", "GET", "/v1/presets/read-only", check=lambda j, r: None if j["scopes"] == ["*:read"] else "%s" % j)
    row("writer may not set a preset", "alice_w", "PUT", "/v1/presets/mine", {"scopes": ["docs:read"]}, status=403,
        code="INSUFFICIENT_SCOPE")
    row("admin sets a preset", "admin", "PUT", "/v1/presets/ops", {"scopes": ["ops:read", "ops:write"]},
        check=lambda j, r: None if j == {"name": "ops", "scopes": ["ops:read", "ops:write"]} else "%s" % j)
    row("writer may not remove a preset", "alice_w", "DELETE", "/v1/presets/ops", status=403, code="INSUFFICIENT_SCOPE")
    row("admin removes a preset", "admin", "DELETE", "/v1/presets/ops", status=204)
    row("it is gone", "admin", "GET", "/v1/presets/ops", status=404, code="NOT_FOUND")
    row("removing it again", "admin", "DELETE", "/v1/presets/ops", status=404, code="NOT_FOUND")
    # ---- events, usage ----------------------------------------------------------------
    row("own events only", "alice_r", "GET", "/v1/events", check=lambda j, r:
        None if j["events"] and {e["owner"] for e in j["events"]} == {"alice"} else "owners %s" % {e["owner"] for e in j["events"]})
    row("writes carry source http and the acting key", "alice_r", "GET", "/v1/events?key={alice_k1}", check=lambda j, r:
        None if any(e["event"] == "updated" and e["source"] == "http" and e["actor"] == K["alice_w"]["id"]
                    for e in j["events"]) else "events %s" % j["events"])
    row("another owner's events", "alice_r", "GET", "/v1/events?owner=bob", status=403, code="FORBIDDEN", field="owner")
    row("another owner's key's events", "alice_r", "GET", "/v1/events?key={bob_k1}", status=404, code="NOT_FOUND")
    row("admin reads any owner's events", "admin", "GET", "/v1/events?owner=bob", check=lambda j, r:
        None if j["events"] and {e["owner"] for e in j["events"]} == {"bob"} else "%s" % j)
    row("own key's usage", "alice_r", "GET", "/v1/keys/{alice_k1}/usage?bucket=minute", check=lambda j, r:
        None if j["key_id"] == K["alice_k1"]["id"] and j["bucket"] == "minute" else "%s" % j)
    row("another owner's key's usage", "bob_w", "GET", "/v1/keys/{alice_k1}/usage", status=404, code="NOT_FOUND")
    row("own usage", "alice_r", "GET", "/v1/usage", check=lambda j, r: None if j["owner"] == "alice" else "%s" % j)
    row("another owner's usage", "alice_r", "GET", "/v1/usage?owner=bob", status=403, code="FORBIDDEN", field="owner")
    row("admin reads another owner's usage", "admin", "GET", "/v1/usage?owner=bob")
    # ---- the admin's own key, revoked through the API: refused from the next request on
    row("a second admin works", "admin2", "GET", "/v1/presets")
    row("admin revokes it", "admin", "POST", "/v1/keys/{admin2}/revoke", check=status_is("revoked"))
    row("…refused from the next request on", "admin2", "GET", "/v1/presets", status=401, code="REVOKED")


def usage():
    """After t_admin.sh drove /auth with alice_k1 (3 allowed, 1 refused), once flushed."""
    row("usage per key counts VALID and refusals", "alice_r", "GET", "/v1/keys/{alice_k1}/usage?bucket=day",
        check=lambda j, r: None if j["totals"].get("VALID", 0) >= 3 and j["totals"].get("INSUFFICIENT_SCOPE") == 1
        and j["buckets"] and j["buckets"][0]["counts"] else "usage %s" % j)
    def per_owner(j, r):
        mine = [k for k in j["keys"] if k["id"] == K["alice_k1"]["id"]]
        totals = [sum(k["totals"].values()) for k in j["keys"]]
        if not mine or mine[0]["totals"].get("VALID") != 3 or mine[0]["totals"].get("INSUFFICIENT_SCOPE") != 1:
            return "alice_k1 %s" % mine
        if totals != sorted(totals, reverse=True):
            return "not the most used first: %s" % totals
        if j["totals"].get("INSUFFICIENT_SCOPE") != 1 or j["totals"].get("VALID", 0) < sum(totals) - 1:
            return "totals %s" % j["totals"]
        return None
    # the callers' own keys (alice_w, alice_r) are counted too: they were used
    row("usage per owner: per key, most used first", "alice_r", "GET", "/v1/usage?bucket=minute", check=per_owner)


def bad():
    P = "/v1/keys"
    rows = [
        # body: malformed JSON, wrong types, unknown members, bounds
        ("malformed JSON", "{", "body"), ("not an object", "[]", "body"), ("a string", '"x"', "body"),
        ("empty body", "", "body"), ("scopes a string", {"scopes": "docs:read"}, "scopes"),
        ("scopes of numbers", {"scopes": [1]}, "scopes"), ("a bad scope", {"scopes": ["Bad Scope"]}, "scopes"),
        ("a scope list of one with a comma", {"scopes": ["docs:read,x:y"]}, "scopes"),
        ("no scopes", {"scopes": []}, "scopes"), ("neither scopes nor preset", {"name": "x"}, "scopes"),
        ("both scopes and preset", {"scopes": ["docs:read"], "preset": "read-only"}, "preset"),
        ("unknown member", {"scopes": ["docs:read"], "bogus": 1}, "bogus"),
        ("name a number", {"scopes": ["docs:read"], "name": 5}, "name"),
        ("name too long", {"scopes": ["docs:read"], "name": "x" * 200}, "name"),
        ("name with a control character", {"scopes": ["docs:read"], "name": "a\u0001b"}, "name"),
        ("name with a NUL", '{"scopes":["docs:read"],"name":"a\\u0000b"}', "body"),
        ("rate_limit 0", {"scopes": ["docs:read"], "rate_limit": 0}, "rate_limit"),
        ("rate_limit over 1000000", {"scopes": ["docs:read"], "rate_limit": 1000001}, "rate_limit"),
        ("rate_limit a string", {"scopes": ["docs:read"], "rate_limit": "60"}, "rate_limit"),
        ("rate_limit a real", {"scopes": ["docs:read"], "rate_limit": 1.5}, "rate_limit"),
        ("expiry in the past", {"scopes": ["docs:read"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ("expiry of 0", {"scopes": ["docs:read"], "expires_at": "0"}, "expires_at"),
        ("expiry garbage", {"scopes": ["docs:read"], "expires_at": "soon"}, "expires_at"),
        ("expiry a number", {"scopes": ["docs:read"], "expires_at": 12}, "expires_at"),
        ("metadata an array", {"scopes": ["docs:read"], "metadata": [1]}, "metadata"),
        ("metadata too large", {"scopes": ["docs:read"], "metadata": {"x": "y" * 3000}}, "metadata"),
        ("preset name bad", {"preset": "Bad Name"}, "preset"),
        ("owner not a string", {"owner": 1, "scopes": ["docs:read"]}, "owner"),
        ("duplicate member", '{"scopes":["docs:read"],"name":"a","name":"b"}', "body"),
        ("not UTF-8", b'{"scopes":["docs:read"],"name":"\xff"}', "body"),
    ]
    for desc, body, field in rows:
        row("POST /v1/keys: " + desc, "alice_w", "POST", P, body, status=400, code="BAD_REQUEST", field=field)
    row("POST /v1/keys as admin: a bad owner", "admin", "POST", P, {"owner": "has space", "scopes": ["a:b"]}, status=400,
        code="BAD_REQUEST", field="owner")
    row("oversize body: 413", "alice_w", "POST", P, '{"name":"' + "x" * 20000 + '"}', status=413)
    for desc, body, field in [("empty", "", "body"), ("unknown member", {"owner": "bob"}, "owner"),
                              ("scopes and preset", {"scopes": ["docs:read"], "preset": "read-only"}, "preset"),
                              ("expiry in the past", {"expires_at": "2001-01-01T00:00:00Z"}, "expires_at")]:
        row("PATCH: " + desc, "alice_w", "PATCH", "/v1/keys/{alice_k1}", body, status=400, code="BAD_REQUEST", field=field)
    for desc, body, field in [("negative grace", {"grace": -1}, "grace"), ("grace garbage", {"grace": "forever"}, "grace"),
                              ("grace a bool", {"grace": True}, "grace"), ("unknown member", {"grace": 1, "x": 1}, "x")]:
        row("rotate: " + desc, "alice_w", "POST", "/v1/keys/{alice_k1}/rotate", body, status=400, code="BAD_REQUEST", field=field)
    row("revoke with a member", "alice_w", "POST", "/v1/keys/{alice_k1}/revoke", {"why": "x"}, status=400,
        code="BAD_REQUEST", field="why")
    # ids and path tricks
    for path, st, field in [("/v1/keys/key_short", 400, "id"), ("/v1/keys/..", 400, "id"),
                            ("/v1/keys/key_%2F00000000000000", 400, "id"), ("/v1/keys/KEY_0000000000000000", 400, "id"),
                            ("/v1/keys/key_00000000000000000", 400, "id"), ("/v1/keys/", 404, None),
                            ("/v1//keys", 404, None), ("/v1/keys/{alice_k1}/", 404, None),
                            ("/v1/keys/{alice_k1}//usage", 404, None), ("/v1/keys/{alice_k1}/usage/", 404, None),
                            ("/v1/keys/../keys", 404, None), ("/v1/keys/%2e%2e/usage", 400, "id"),
                            ("/v1/accounts/a%2Fb", 400, "owner"), ("/v1/accounts/..", 400, "owner"),
                            ("/v1/accounts/%2e%2e", 400, "owner"), ("/v1/accounts/a%00b", 400, "owner"),
                            ("/v1/accounts/a%20b", 400, "owner"),
                            ("/v1/accounts/a%2", 404, None),   # libevent cannot parse the URI: no route
                            ("/v1/presets/Bad", 400, "name"), ("/v1/presets/a%2Fb", 400, "name")]:
        row("path " + path, "admin", "GET", path, status=st, code="BAD_REQUEST" if st == 400 else "NOT_FOUND", field=field)
    # queries
    for q, field in [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"),
                     ("status=bogus", "status"), ("cursor=-1", "cursor"), ("cursor=0", "cursor"), ("foo=1", "foo"),
                     ("limit=1&limit=2", "limit"), ("owner=%00", "query"), ("owner", "query")]:
        row("query ?" + q, "admin", "GET", "/v1/keys?" + q, status=400 if field else 200,
            code="BAD_REQUEST" if field else None, field=field)
    for q, field in [("bucket=week", "bucket"), ("from=garbage", "from"), ("to=garbage", "to"),
                     ("from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z", "from"),
                     ("bucket=minute&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z", "from"), ("key=1", "key")]:
        row("usage ?" + q, "alice_r", "GET", "/v1/keys/{alice_k1}/usage?" + q, status=400, code="BAD_REQUEST", field=field)
    row("a GET with an unknown parameter", "alice_r", "GET", "/v1/keys/{alice_k1}?x=1", status=400, code="BAD_REQUEST", field="x")
    row("events ?key=bad", "alice_r", "GET", "/v1/events?key=nope", status=400, code="BAD_REQUEST", field="key")
    # accounts and presets
    for desc, body, field in [("active a string", {"active": "yes"}, "active"), ("plan a number", {"plan": 5}, "plan"),
                              ("plan too long", {"plan": "p" * 40}, "plan"), ("unknown member", {"tier": "x"}, "tier"),
                              ("empty", "", "body")]:
        row("PUT account: " + desc, "admin", "PUT", "/v1/accounts/carol", body, status=400, code="BAD_REQUEST", field=field)
    for desc, body, field in [("no scopes", {}, "scopes"), ("a bad scope", {"scopes": ["x"]}, "scopes"),
                              ("scopes a string", {"scopes": "a:b"}, "scopes")]:
        row("PUT preset: " + desc, "admin", "PUT", "/v1/presets/p1", body, status=400, code="BAD_REQUEST", field=field)
    # methods
    row("a method the route lacks: 405 with Allow", "admin", "DELETE", "/v1/keys", status=405, code="METHOD_NOT_ALLOWED",
        check=lambda j, r: None if r.getheader("Allow") == "GET, POST, OPTIONS" else "Allow %s" % r.getheader("Allow"))


def cors_on():
    o = {"Origin": "https://ui.example"}
    row("preflight from an allowed origin", None, "OPTIONS", "/v1/keys", status=204, headers=dict(o, **{
        "Access-Control-Request-Method": "POST"}), check=lambda j, r:
        None if r.getheader("Access-Control-Allow-Origin") == "https://ui.example"
        and "POST" in (r.getheader("Access-Control-Allow-Methods") or "")
        and "Authorization" in (r.getheader("Access-Control-Allow-Headers") or "") else "headers %s" % r.getheaders())
    row("preflight from another origin", None, "OPTIONS", "/v1/keys", status=204, headers={"Origin": "https://evil.example"},
        check=lambda j, r: None if r.getheader("Access-Control-Allow-Origin") is None else "ACAO given")
    row("a request from an allowed origin", "alice_r", "GET", "/v1/keys", headers=o, check=lambda j, r:
        None if r.getheader("Access-Control-Allow-Origin") == "https://ui.example" else "no ACAO")
    row("an error to an allowed origin carries CORS too", None, "GET", "/v1/keys", status=401, headers=o,
        check=lambda j, r: None if r.getheader("Access-Control-Allow-Origin") == "https://ui.example" else "no ACAO")
    row("a request from another origin", "alice_r", "GET", "/v1/keys", headers={"Origin": "https://evil.example"},
        check=lambda j, r: None if r.getheader("Access-Control-Allow-Origin") is None else "ACAO given")


def cors_off():
    row("CORS off: a preflight gets no CORS headers", None, "OPTIONS", "/v1/keys", status=204,
        headers={"Origin": "https://ui.example"},
        check=lambda j, r: None if r.getheader("Access-Control-Allow-Origin") is None else "ACAO given")


def disabled():
    for m, p in [("GET", "/v1/keys"), ("POST", "/v1/keys"), ("GET", "/v1/keys/{alice_k1}"), ("OPTIONS", "/v1/keys"),
                 ("PATCH", "/v1/keys/{alice_k1}"), ("GET", "/v1/usage"), ("GET", "/v1/accounts/alice"),
                 ("PUT", "/v1/presets/x"), ("DELETE", "/v1/presets/read-only"), ("GET", "/v1/events")]:
        row("admin_api=no", "admin", m, p, {} if m in ("POST", "PUT", "PATCH") else None, status=404, code="NOT_FOUND")


{"authz": authz, "usage": usage, "bad": bad, "cors_on": cors_on, "cors_off": cors_off, "disabled": disabled}[which]()
with open(sys.argv[3], "a") as f:
    for k in seen_keys:
        f.write(k + "\n")

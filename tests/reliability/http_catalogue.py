#!/usr/bin/env python3
"""http_catalogue.py — run tests/reliability/http_cases.txt against apikeyd.

    http_catalogue.py PORT PID KEY CASES [WAIT]

Prints TAP: one line per case, passing when the answer matches the case's
expectation AND a normal client is served right after it (a fresh
connection, GET /auth with KEY → 200) AND the daemon still runs.
"""
import ast
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sidecar"))
from rawhttp import exchange  # noqa: E402


def served(port, key, pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return "the daemon is gone"
    got = exchange(port, b"GET /auth HTTP/1.1\r\nX-API-Key: " + key + b"\r\nConnection: close\r\n\r\n", 5)
    return None if got == "200 closed" else "a normal client got '%s'" % got


def main():
    port, pid, key, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    wait = float(sys.argv[5]) if len(sys.argv) > 5 else 0.6
    macros = {
        "$KEY10K": "ak_" + "A" * 10240,
        "$KEY": key,
        "$BIG": "a" * 17000,
        "$HDRS2000": "".join("X-H%d: %d\\r\\n" % (i, i) for i in range(2000)),
        "$SCOPES20": "".join("X-Required-Scope: docs:read\\r\\n" for _ in range(20)),
        "$NEST": "[" * 3000 + "]" * 3000,
        "$BODY9K": "b" * 9000,
    }
    n = failed = 0
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, req, want = (f.strip() for f in line.split(" | "))
        for m in sorted(macros, key=len, reverse=True):
            req = req.replace(m, macros[m])
        raw = ast.literal_eval(req)
        got = exchange(port, raw, wait)
        after = served(port, key.encode(), pid)
        n += 1
        if re.search(want, got) and after is None:
            print("ok %d - %s: %s" % (n, name, got))
        else:
            failed += 1
            print("not ok %d - %s: got '%s', want /%s/%s" % (n, name, got, want, "; " + after if after else ""))
        sys.stdout.flush()
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

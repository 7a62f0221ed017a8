#!/usr/bin/env python3
"""lint.py — checks the format of tests/profiles/*.expect (tests/profiles/README.md):
known keywords, required ones present, keys defined before use, values well
formed.  It holds no rule of the product: what each profile answers is
checked against the real programs by run.py (t_profiles.sh), and run.py
parses the files with parse_expect below.

  lint.py [FILE.expect...]      (default: every *.expect beside this file)
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

OUTCOMES = ("VALID", "MISSING_KEY", "MALFORMED_KEY", "INVALID_KEY", "REVOKED", "EXPIRED",
            "ACCOUNT_INACTIVE", "PLAN_REQUIRED", "WRONG_USER", "INSUFFICIENT_SCOPE", "RATE_LIMITED",
            "UNAVAILABLE")


def scope_list(text):
    out = []
    for item in re.split(r"[,\s]+", text.strip()):
        if item and item not in out:
            out.append(item)
    return out


# ---- .expect files ---------------------------------------------------------

HTTP_KEYS = {"request", "key", "via", "header", "prime", "outcome", "status", "expect-header",
             "expect-header-re", "no-header", "body", "body-empty", "doc-body", "json", "json-re"}
CLI_KEYS = {"cli", "exit", "stdout-re", "stdout-not-re", "stderr-re", "json", "json-re"}
CONF_KEYS = {"conf", "check", "exit", "stderr-re"}
COMMON_KEYS = {"doc", "basis", "do", "await"}
REPEATABLE = {"doc", "do", "await", "header", "expect-header", "expect-header-re", "no-header",
              "json", "json-re", "stdout-re", "stdout-not-re", "stderr-re", "conf"}
SETUP_DIRECTIVES = {"ctl", "key", "foreign", "import", "literal", "derive", "await"}
BASES = {"doc", "inferred", "ours", "issue8"}
VIAS = re.compile(r"bearer|raw-authorization|x-api-key|header:[A-Za-z0-9-]+|query:[A-Za-z0-9_.-]+")
ALPHABETS = {"base62", "base36lower", "hex", "uuid"}
STATUSES = {"active", "rotating", "expired", "revoked"}
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}


class Tap:
    def __init__(self):
        self.n = self.failed = 0

    def ok(self, good, desc):
        self.n += 1
        if not good:
            self.failed += 1
        print(f"{'ok' if good else 'not ok'} {self.n} - {desc}")


def parse_expect(path):
    """→ (header dict, setup [(lineno, directive, args)], cases [dict]), problems"""
    header, setup, cases, problems = {}, [], [], []
    block = None
    for n, raw in enumerate(open(path, encoding="utf-8"), 1):
        line = raw.rstrip("\n").rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "setup":
            block = "setup"
        elif word == "case":
            block = {"id": rest, "line": n, "fields": {}}
            cases.append(block)
        elif block is None:
            if word not in ("profile", "source"):
                problems.append(f"{n}: '{word}' before setup/case")
            header[word] = rest
        elif block == "setup":
            if word not in SETUP_DIRECTIVES:
                problems.append(f"{n}: unknown setup directive '{word}'")
            setup.append((n, word, rest.split()))
        else:
            f = block["fields"]
            if word not in HTTP_KEYS | CLI_KEYS | CONF_KEYS | COMMON_KEYS:
                problems.append(f"{n}: unknown keyword '{word}' in case {block['id']}")
            elif word not in REPEATABLE and word in f:
                problems.append(f"{n}: '{word}' twice in case {block['id']}")
            f.setdefault(word, []).append((n, rest))
    return header, setup, cases, problems


def one(case, k):
    v = case["fields"].get(k)
    return v[0][1] if v else None


def json_path(value, path):
    if path == ".":
        return value
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part == "*":
            rest = ".".join(parts[i + 1:]) or "."
            return [json_path(v, rest) for v in value]
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


def lint_profile_file(tap, path, cases, setup, problems):
    name = os.path.basename(path)[:-len(".expect")]
    conf = os.path.join(TOP, "packaging", "profiles", name + ".conf")
    tap.ok(os.path.exists(conf), f"{name}.expect: its profile packaging/profiles/{name}.conf exists")
    tap.ok(not problems, f"{name}.expect: format" + (f": {'; '.join(problems)}" if problems else ""))

    # the setup: which names exist, in order
    keys, bad = {}, []
    for n, d, args in setup:
        if d in ("key", "foreign"):
            if len(args) < 2 or args[1] not in ("create", "rotate"):
                bad.append(f"{n}: {d} NAME create|rotate ARGS")
                continue
            if args[1] == "rotate" and (len(args) < 3 or args[2].lstrip("@") not in keys):
                bad.append(f"{n}: rotate of an unknown key")
            keys[args[0]] = n
        elif d == "import":
            if len(args) < 3 or args[1] not in ("sha256", "bcrypt", "argon2id"):
                bad.append(f"{n}: import NAME sha256|bcrypt|argon2id SHAPE FIELDS")
                continue
            shape = args[2].split("/")
            if len(shape) != 3 or shape[1] not in ALPHABETS or not shape[2].isdigit():
                bad.append(f"{n}: shape PREFIX/ALPHABET/LENGTH")
            fields = dict(a.split("=", 1) for a in args[3:] if "=" in a)
            if "owner" not in fields:
                bad.append(f"{n}: import needs owner=")
            keys[args[0]] = n
        elif d == "literal":
            if len(args) != 2:
                bad.append(f"{n}: literal NAME TEXT")
            keys[args[0]] = n
        elif d == "derive":
            if len(args) != 3 or args[1] not in keys or \
                    args[2] not in ("drop-last", "add-0", "change-last", "upper"):
                bad.append(f"{n}: derive NAME FROM drop-last|add-0|change-last|upper")
            keys[args[0]] = n
        elif d == "await":
            if len(args) != 2 or args[0] not in keys or args[1] not in STATUSES:
                bad.append(f"{n}: await NAME STATUS")
        elif d == "ctl":
            for a in args:
                if a.startswith("@") and a[1:] not in keys:
                    bad.append(f"{n}: {a} is not defined yet")
    tap.ok(not bad, f"{name}.expect: setup" + (f": {'; '.join(bad)}" if bad else ""))

    ids = set()
    for c in cases:
        cid, f = c["id"], c["fields"]
        why = []
        if not re.fullmatch(r"[a-z0-9-]+", cid) or cid in ids:
            why.append("id must be unique [a-z0-9-]+")
        ids.add(cid)
        if one(c, "basis") not in BASES:
            why.append("basis must be doc|inferred|ours|issue8")
        if "doc" not in f:
            why.append("no doc line")
        for _, a in f.get("do", []) + f.get("await", []):
            for w in a.split():
                if w.startswith("@") and w[1:] not in keys:
                    why.append(f"do: {w} undefined")
        if "request" in f:
            why += check_http_case(c, keys)
        elif "cli" in f:
            if one(c, "exit") not in ("0", "1", "2"):
                why.append("exit must be 0, 1 or 2")
            for w in one(c, "cli").split():
                if w.startswith("@") and w[1:] not in keys:
                    why.append(f"cli: {w} undefined")
                if w.startswith("tests/") and not os.path.exists(os.path.join(TOP, w)):
                    why.append(f"cli: no file {w}")
            extra = set(f) - CLI_KEYS - COMMON_KEYS
            if extra:
                why.append(f"not for a CLI case: {sorted(extra)}")
            why += check_json_specs(c)
        else:
            why.append("neither request nor cli")
        tap.ok(not why, f"{name}: {cid}" + (f": {'; '.join(why)}" if why else ""))


def check_json_specs(c):
    why = []
    for _, spec in c["fields"].get("json", []):
        path, _, value = spec.partition(" ")
        try:
            json.loads(value)
        except ValueError:
            why.append(f"json {path}: value is not JSON")
    for _, spec in c["fields"].get("json-re", []):
        path, _, rx = spec.partition(" ")
        try:
            re.compile(rx)
        except re.error:
            why.append(f"json-re {path}: not a regex")
    return why


def check_http_case(c, keys):
    f, why = c["fields"], []
    method, _, target = (one(c, "request") or "").partition(" ")
    if method not in METHODS or not target.startswith("/"):
        why.append("request METHOD /PATH")
    k = one(c, "key")
    if k is None or (k != "none" and k not in keys):
        why.append(f"key {k} undefined")
    via = one(c, "via") or "bearer"
    if not VIAS.fullmatch(via):
        why.append(f"via {via}")
    extra = set(f) - HTTP_KEYS - COMMON_KEYS
    if extra:
        why.append(f"not for an HTTP case: {sorted(extra)}")
    for kw in ("header", "expect-header", "expect-header-re"):
        for _, v in f.get(kw, []):
            if not re.fullmatch(r"[A-Za-z0-9-]+: .*", v):
                why.append(f"{kw} 'Name: value'")
    if one(c, "prime") is not None and not one(c, "prime").isdigit():
        why.append("prime N")
    if one(c, "outcome") not in OUTCOMES:
        why.append(f"outcome {one(c, 'outcome')}")
    if not (one(c, "status") or "").isdigit():
        why.append("status N")
    body, empty = one(c, "body"), "body-empty" in f
    if body is not None and empty:
        why.append("body and body-empty")
    if one(c, "outcome") != "VALID" and body is None and not empty and "json" not in f:
        why.append("a refusal needs its body")
    doc = one(c, "doc-body")
    if doc is not None:
        try:
            json.loads(doc)
        except ValueError as e:
            why.append(f"doc-body: {e}")
    return why + check_json_specs(c)


def lint_bad(tap, path, cases, problems):
    tap.ok(not problems, "bad.expect: format" + (f": {'; '.join(problems)}" if problems else ""))
    ids = set()
    for c in cases:
        f, why = c["fields"], []
        if c["id"] in ids:
            why.append("duplicate id")
        ids.add(c["id"])
        extra = set(f) - CONF_KEYS - {"doc", "basis"}
        if extra or "conf" not in f:
            why.append(f"a configuration case has conf lines only, not {sorted(extra)}")
        tools = (one(c, "check") or "").split()
        if not tools or any(t not in ("apikeyd", "apikeyctl") for t in tools):
            why.append("check apikeyd and/or apikeyctl")
        want = one(c, "exit")
        if want not in ("0", "1"):
            why.append("exit 0 or 1")
        if want == "1" and "stderr-re" not in f:
            why.append("a refusal names its line (stderr-re)")
        for _, rx in f.get("stderr-re", []):
            try:
                re.compile(rx)
            except re.error:
                why.append(f"stderr-re: not a regex: {rx}")
        tap.ok(not why, f"bad: {c['id']}" + (f": {'; '.join(why)}" if why else ""))


def main(argv):
    files = argv[1:] or sorted(os.path.join(HERE, f) for f in os.listdir(HERE) if f.endswith(".expect"))
    tap = Tap()
    for path in files:
        _, setup, cases, problems = parse_expect(path)
        if os.path.basename(path) == "bad.expect":
            lint_bad(tap, path, cases, problems)
        else:
            lint_profile_file(tap, path, cases, setup, problems)
    print(f"1..{tap.n}")
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""lint.py — checks tests/profiles/*.expect and packaging/profiles/*.conf.

Two jobs, one TAP stream:
  1. the .expect files follow tests/profiles/README.md (known keywords,
     required ones present, keys defined before use, values well formed);
  2. the draft rules of docs/design/compat.md ("COMPATIBLE ANSWERS") hold:
     a reference loader reads each profile with the new options (error
     template, per-outcome codes and messages, scope catalogue, presets,
     default preset, rate-limit tiers), renders the refusal body of every
     HTTP case's outcome and requires it to equal the case's `body`; and
     bad.expect's configurations are refused on the line it names.

The reference loader is a test oracle for the C implementation, not a second
implementation to ship: where they disagree, the draft decides.

  lint.py [FILE.expect...]      lint (default: every *.expect beside this file)
  lint.py --today PROFILE.conf  print the profile without the options of
                                issue 8 (what today's apikeyctl accepts)
"""
import json
import os
import re
import sys
from urllib.parse import urlsplit, parse_qsl

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

# ---- the product's constants (include/apikey.h, core/outcome.c) ------------

OUTCOMES = {  # code: (HTTP status, default message) — SPEC §3
    "MISSING_KEY": (401, "Missing API key"),
    "MALFORMED_KEY": (401, "Malformed API key"),
    "INVALID_KEY": (401, "Invalid API key"),
    "REVOKED": (401, "API key revoked"),
    "EXPIRED": (401, "API key expired"),
    "ACCOUNT_INACTIVE": (403, "Account inactive"),
    "PLAN_REQUIRED": (403, "Plan does not allow this"),
    "WRONG_USER": (403, "API key belongs to another user"),
    "INSUFFICIENT_SCOPE": (403, "Insufficient scope"),
    "RATE_LIMITED": (429, "Rate limit exceeded"),
    "UNAVAILABLE": (503, "Key store unavailable"),
}
LINE_MAX = 1024            # APIKEY_LINE_MAX: one configuration line
SCOPE_MAX = 63             # APIKEY_SCOPE_SIZE - 1
RATE_MIN, RATE_MAX = 1, 1000000
EXISTING = {"db", "pepper", "busy_timeout_ms", "default_rate_limit", "key_prefix",
            "key_alphabet", "key_length", "key_checksum", "key_legacy_prefixes", "scope",
            "require_plan", "prompt", "listen", "threads", "key_header", "key_query",
            "auth_error_body", "access_log"}
BUILTIN_PRESETS = {"read-only": ["*:read"], "full-access": ["*"]}
ADMIN_SCOPES = {"apikey:read", "apikey:write", "apikey:admin"}

# ---- the draft's limits (docs/design/compat.md) -----------------------------

BODY_MAX = 4096            # a rendered refusal body, bytes (newline excluded)
MESSAGE_MAX = 200          # error_message.X, bytes
CATALOGUE_MAX = 128        # scopes= entries
PRESETS_MAX = 32           # preset.NAME= options
TEMPLATE_PLACEHOLDERS = ("code", "message", "status", "scope")
MESSAGE_PLACEHOLDERS = ("code", "status", "scope")
DEFAULT_TEMPLATE = '{"error":"${message}","code":"${code}","status":${status}}'
CODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,63}")
PRESET_NAME_RE = re.compile(r"[a-z0-9_-]{1,31}")
PART_RE = re.compile(r"[a-z0-9_.-]{1,31}")
PLACEHOLDER_RE = re.compile(r"\$\{([a-z_]*)(\}?)")   # ${name}; no } after the name: unterminated


class ConfError(Exception):
    pass


def scope_valid(s):
    if s == "*":
        return True
    if len(s) > SCOPE_MAX or s.count(":") != 1:
        return False
    return all(p == "*" or PART_RE.fullmatch(p) for p in s.split(":"))


def scope_list(text):
    """A comma/blank list as the core normalises it: order kept, duplicates dropped."""
    out = []
    for item in re.split(r"[,\s]+", text.strip()):
        if item and item not in out:
            out.append(item)
    return out


def expand(text, values, allowed, what):
    """${name} → values[name] (already escaped), $$ → $, a lone $ stays."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "$" and text.startswith("$$", i):
            out.append("$")
            i += 2
        elif c == "$" and text.startswith("${", i):
            m = PLACEHOLDER_RE.match(text, i)
            if not m.group(2):
                raise ConfError(f"{what}: unterminated placeholder (write $$ for a literal $)")
            name, j = m.group(1), m.end() - 1
            if name not in allowed:
                if name == "message" and what.startswith("error_message"):
                    raise ConfError(f"{what}: ${{message}} cannot be used in a message")
                known = " ".join("${%s}" % a for a in allowed)
                raise ConfError(f"{what}: unknown placeholder ${{{name}}} (known: {known}; $$ for $)")
            out.append(values.get(name, ""))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def json_escape(s):
    """What goes between the quotes of a JSON string: only " and \\ can occur
    (control characters are refused in messages; codes and scopes have none)."""
    return s.replace("\\", "\\\\").replace('"', '\\"')


def strict_json(text):
    def pairs(items):
        seen = set()
        for k, _ in items:
            if k in seen:
                raise ValueError(f"duplicate member '{k}'")
            seen.add(k)
        return dict(items)

    def no_constants(name):
        raise ValueError(f"'{name}' is not JSON")

    return json.loads(text, object_pairs_hook=pairs, parse_constant=no_constants)


class Profile:
    def __init__(self):
        self.template = DEFAULT_TEMPLATE
        self.template_line = 0
        self.codes, self.messages = {}, {}
        self.catalogue, self.catalogue_line = [], 0
        self.presets, self.preset_lines = {}, {}
        self.default_preset, self.default_preset_line = None, 0
        self.tiers, self.tiers_line = None, 0
        self.default_rate, self.default_rate_line = 60, 0
        self.key_prefix = "ak_"
        self.options = {}

    # -- rendering: the one rule every refusal body follows --
    def code(self, outcome):
        return self.codes.get(outcome, outcome)

    def message(self, outcome, scope=""):
        status = OUTCOMES[outcome][0]
        text = self.messages.get(outcome, OUTCOMES[outcome][1])
        return expand(text, {"code": self.code(outcome), "status": str(status), "scope": scope},
                      MESSAGE_PLACEHOLDERS, f"error_message.{outcome}")

    def render(self, outcome, scope="", template=None):
        status = OUTCOMES[outcome][0]
        values = {"code": json_escape(self.code(outcome)),
                  "message": json_escape(self.message(outcome, scope)),
                  "status": str(status), "scope": json_escape(scope)}
        return expand(self.template if template is None else template, values,
                      TEMPLATE_PLACEHOLDERS, "error_template")

    # -- scopes --
    def allowed(self, s):
        """May a key, preset or edit name scope s under this catalogue?"""
        if not self.catalogue or s in ADMIN_SCOPES or s == "*":
            return True
        r, a = s.split(":")
        for e in self.catalogue:
            er, ea = e.split(":")
            if (r == "*" or r == er) and (a == "*" or ea == "*" or a == ea):
                return True
        return False

    def preset_scopes(self, name):
        if self.presets:
            return self.presets.get(name)
        return BUILTIN_PRESETS.get(name)


def load_profile(lines):
    """Reads configuration lines; returns (Profile, ["LINE: message", …])."""
    p, errors = Profile(), []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, val = line.partition("=")
        try:
            if len(line) > LINE_MAX:
                raise ConfError("line too long")
            apply_option(p, n, key, val if eq else None)
        except ConfError as e:
            errors.append(f"{n}: {e}")
    errors += [f"{n}: {m}" for n, m in cross_check(p)]
    return p, errors


def apply_option(p, n, key, val):
    def need():
        if val is None or val == "":
            raise ConfError(f"{key}: needs a value")

    def outcome_of(prefix):
        o = key[len(prefix):]
        if o == "VALID":
            raise ConfError(f"{key}: VALID is not a refusal")
        if o not in OUTCOMES:
            raise ConfError(f"{key}: no such outcome ({', '.join(OUTCOMES)})")
        return o

    p.options.setdefault(key, []).append(n)
    if key == "error_template":
        need()
        for sample in ("", "x:y"):
            body = p.render("INSUFFICIENT_SCOPE", sample, template=val)
            try:
                v = strict_json(body)
            except ValueError as e:
                raise ConfError(f"error_template: not valid JSON after substitution: {e}")
            if not isinstance(v, dict):
                raise ConfError("error_template: must be a JSON object")
        p.template, p.template_line = val, n
    elif key.startswith("error_code."):
        o = outcome_of("error_code.")
        need()
        if not CODE_RE.fullmatch(val):
            raise ConfError(f"{key}: must be 1-63 of [A-Za-z0-9_.-]")
        p.codes[o] = val
    elif key.startswith("error_message."):
        o = outcome_of("error_message.")
        need()
        if len(val.encode()) > MESSAGE_MAX:
            raise ConfError(f"{key}: longer than {MESSAGE_MAX} bytes")
        if any(ord(c) < 0x20 or ord(c) == 0x7f for c in val):
            raise ConfError(f"{key}: control characters are not allowed")
        expand(val, {}, MESSAGE_PLACEHOLDERS, key)
        p.messages[o] = val
    elif key == "scopes":
        need()
        for s in scope_list(val):
            if s == "*" or s.startswith("*:") or not scope_valid(s):
                raise ConfError(f"scopes: '{s}' is not a catalogue entry (resource:action or resource:*)")
            if s not in p.catalogue:
                p.catalogue.append(s)
        if len(p.catalogue) > CATALOGUE_MAX:
            raise ConfError(f"scopes: more than {CATALOGUE_MAX} entries")
        p.catalogue_line = p.catalogue_line or n
    elif key.startswith("preset."):
        name = key[len("preset."):]
        if not PRESET_NAME_RE.fullmatch(name):
            raise ConfError(f"{key}: a preset name is 1-31 of [a-z0-9_-]")
        if name in p.presets:
            raise ConfError(f"{key}: declared twice (first on line {p.preset_lines[name]})")
        need()
        scopes = scope_list(val)
        bad = [s for s in scopes if not scope_valid(s)]
        if bad:
            raise ConfError(f"{key}: '{bad[0]}' is not a valid scope")
        if len(p.presets) == PRESETS_MAX:
            raise ConfError(f"{key}: more than {PRESETS_MAX} presets")
        p.presets[name], p.preset_lines[name] = scopes, n
    elif key == "default_preset":
        need()
        if not PRESET_NAME_RE.fullmatch(val):
            raise ConfError("default_preset: a preset name is 1-31 of [a-z0-9_-]")
        p.default_preset, p.default_preset_line = val, n
    elif key == "rate_limit_tiers":
        need()
        tiers = []
        for t in re.split(r"[,\s]+", val.strip()):
            if not re.fullmatch(r"[0-9]+", t) or not RATE_MIN <= int(t) <= RATE_MAX:
                raise ConfError(f"rate_limit_tiers: '{t}' is not 1..1000000")
            tiers.append(int(t))
        p.tiers, p.tiers_line = tiers, n
    elif key == "default_rate_limit":
        need()
        if not re.fullmatch(r"[0-9]+", val) or not RATE_MIN <= int(val) <= RATE_MAX:
            raise ConfError("default_rate_limit: must be 1..1000000")
        p.default_rate, p.default_rate_line = int(val), n
    elif key == "auth_error_body":
        if val not in ("yes", "no", "true", "false", "on", "off", "1", "0", "header"):
            raise ConfError("auth_error_body: must be yes, no or header")
    elif key == "key_prefix":
        need()
        p.key_prefix = val
    elif key in EXISTING:
        pass        # today's loader checks these (core/options.c)
    else:
        raise ConfError(f"unknown option '{key}'")


def cross_check(p):
    """What needs the whole file: reported on the line that must change."""
    out = []
    if p.catalogue:
        for name, scopes in p.presets.items():
            for s in scopes:
                if not p.allowed(s):
                    out.append((p.preset_lines[name], f"preset.{name}: scope '{s}' is not in the "
                                f"scope catalogue (scopes=, line {p.catalogue_line})"))
                    break
    if p.default_preset and p.preset_scopes(p.default_preset) is None:
        out.append((p.default_preset_line,
                    f"default_preset: no preset '{p.default_preset}' in this profile"))
    if p.tiers and p.default_rate not in p.tiers:
        tiers = ",".join(map(str, p.tiers))
        if p.default_rate_line:
            out.append((p.default_rate_line,
                        f"default_rate_limit: {p.default_rate} is not one of the tiers {tiers}"))
        else:
            out.append((p.tiers_line, f"rate_limit_tiers: default_rate_limit {p.default_rate} "
                        f"is not one of the tiers {tiers}"))
    for o in OUTCOMES:
        try:
            body = p.render(o, "s" * SCOPE_MAX if o == "INSUFFICIENT_SCOPE" else "")
        except ConfError:
            continue        # reported on its own line already
        if len(body.encode()) > BODY_MAX:
            out.append((p.template_line or 1, f"error_template: renders to more than {BODY_MAX} "
                        f"bytes (outcome {o})"))
            break
    return sorted(out)


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


def granted(scopes, required):
    for g in scopes:
        if g == "*" and required not in ADMIN_SCOPES:
            return True
        if g == required:
            return True
        if "*" in required:
            continue
        gr, ga = g.split(":") if ":" in g else (g, "")
        rr, ra = required.split(":")
        if (gr == "*" or gr == rr) and (ga == "*" or ga == ra) and g not in ADMIN_SCOPES:
            return True
    return False


def lint_profile_file(tap, path, cases, setup, problems):
    name = os.path.basename(path)[:-len(".expect")]
    conf = os.path.join(TOP, "packaging", "profiles", name + ".conf")
    lines = open(conf, encoding="utf-8").read().split("\n")
    prof, errors = load_profile(lines)
    tap.ok(not errors, f"{name}.conf is accepted by the draft rules"
           + (f": {'; '.join(errors)}" if errors else ""))
    header = {}
    tap.ok(not problems, f"{name}.expect: format" + (f": {'; '.join(problems)}" if problems else ""))

    # the setup: which names exist and what each key may do
    keys, scopes_of, bad = {}, {}, []
    for n, d, args in setup:
        if d in ("key", "foreign"):
            if len(args) < 2 or args[1] not in ("create", "rotate"):
                bad.append(f"{n}: {d} NAME create|rotate ARGS")
                continue
            k = args[0]
            keys[k] = n
            if args[1] == "rotate":
                old = args[2].lstrip("@") if len(args) > 2 else ""
                if old not in scopes_of:
                    bad.append(f"{n}: rotate of unknown key {old}")
                scopes_of[k] = scopes_of.get(old, [])
            else:
                s = None
                if "--scopes" in args:
                    s = scope_list(args[args.index("--scopes") + 1])
                elif "--preset" in args:
                    s = prof.preset_scopes(args[args.index("--preset") + 1])
                    if s is None:
                        bad.append(f"{n}: no preset {args[args.index('--preset') + 1]}")
                elif prof.default_preset:
                    s = prof.preset_scopes(prof.default_preset)
                else:
                    bad.append(f"{n}: create without --scopes/--preset and no default_preset")
                for sc in s or []:
                    if not prof.allowed(sc):
                        bad.append(f"{n}: scope {sc} outside the catalogue")
                scopes_of[k] = s or []
        elif d == "import":
            if len(args) < 3 or args[1] not in ("sha256", "bcrypt", "argon2id"):
                bad.append(f"{n}: import NAME sha256|bcrypt|argon2id SHAPE FIELDS")
                continue
            shape = args[2].split("/")
            if len(shape) != 3 or shape[1] not in ALPHABETS or not shape[2].isdigit():
                bad.append(f"{n}: shape PREFIX/ALPHABET/LENGTH")
            fields = dict(a.split("=", 1) for a in args[3:] if "=" in a)
            if "owner" not in fields or "scopes" not in fields:
                bad.append(f"{n}: import needs owner= and scopes=")
            keys[args[0]] = n
            scopes_of[args[0]] = scope_list(fields.get("scopes", ""))
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
        for _, a in f.get("do", []):
            for w in a.split():
                if w.startswith("@") and w[1:] not in keys:
                    why.append(f"do: {w} undefined")
        if "request" in f:
            why += check_http_case(prof, c, keys, scopes_of)
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
        else:
            why.append("neither request nor cli")
        tap.ok(not why, f"{name}: {cid}" + (f": {'; '.join(why)}" if why else ""))


def check_http_case(prof, c, keys, scopes_of):
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
    outcome, status = one(c, "outcome"), one(c, "status")
    if outcome != "VALID" and outcome not in OUTCOMES:
        return why + [f"outcome {outcome}"]
    want_status = 200 if outcome == "VALID" else OUTCOMES[outcome][0]
    if status != str(want_status):
        why.append(f"status {status}, outcome {outcome} answers {want_status}")
    body, empty = one(c, "body"), "body-empty" in f
    if outcome == "VALID":
        if body is not None and target.startswith("/auth"):
            why.append("/auth 200 has no body")
        return why
    if body is None:
        return why + ["a refusal needs its body"]
    # the oracle: what the draft rules render for this outcome
    scope = ""
    if outcome == "INSUFFICIENT_SCOPE":
        required = []
        for _, h in f.get("header", []):
            n, _, v = h.partition(": ")
            if n.lower() == "x-required-scope":
                required += scope_list(v)
        for qn, qv in parse_qsl(urlsplit(target).query):
            if qn == "scope":
                required += scope_list(qv)
        missing = [r for r in required if not granted(scopes_of.get(k, []), r)]
        if not missing:
            why.append("INSUFFICIENT_SCOPE but every required scope is granted")
        scope = missing[0] if missing else ""
    try:
        want = prof.render(outcome, scope)
    except ConfError as e:
        return why + [str(e)]
    if body != want:
        why.append(f"body is not what the profile renders: {want}")
    if empty:
        why.append("body and body-empty")
    for _, h in f.get("expect-header", []):
        n, _, v = h.partition(": ")
        if n.lower() == "x-apikey-code" and v != prof.code(outcome):
            why.append(f"X-ApiKey-Code {v}, the profile maps {outcome} to {prof.code(outcome)}")
        if n.lower() == "www-authenticate" and want_status != 401:
            why.append("WWW-Authenticate is only sent with 401")
    doc = one(c, "doc-body")
    if doc is not None:
        try:
            same = json.loads(doc, object_pairs_hook=list) == json.loads(body, object_pairs_hook=list)
        except ValueError as e:
            same = False
            why.append(f"doc-body: {e}")
        if not same:
            why.append("body is not the document's JSON (members, order, values)")
    return why


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
        lines = [v for _, v in f.get("conf", [])]
        _, errors = load_profile(lines)
        text = "\n".join(f"conf:{e}" for e in errors)
        want = one(c, "exit")
        if want == "0" and errors:
            why.append(f"refused: {text}")
        elif want == "1":
            if not errors:
                why.append("accepted")
            for _, rx in f.get("stderr-re", []):
                if not re.search(rx, text):
                    why.append(f"/{rx}/ not in: {text}")
        elif want not in ("0", "1"):
            why.append("exit 0 or 1")
        tap.ok(not why, f"bad: {c['id']}" + (f": {'; '.join(why)}" if why else ""))


def main(argv):
    if len(argv) == 3 and argv[1] == "--today":
        for line in open(argv[2], encoding="utf-8"):
            key = line.strip().partition("=")[0]
            if line.strip().startswith("#") or not line.strip() or key in EXISTING:
                sys.stdout.write(line)
        return 0
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

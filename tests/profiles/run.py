#!/usr/bin/env python3
"""run.py — the five replaced systems' documented answers, checked against the
real programs (tests/profiles/README.md is the format; docs/design/compat.md
says why each answer is what it is).

For each NAME.expect: packaging/profiles/NAME.conf (plus an access_log line)
is the configuration of a fresh store; `apikeyctl init`, the file's setup
block, then ONE apikeyd on a kernel-chosen loopback port; every case runs in
file order against that daemon and store, over HTTP (status, headers, body
byte for byte, the outcome from apikeyd's access log) or as an apikeyctl
command.  bad.expect: each configuration is given to `apikeyd -n` and
`apikeyctl list`, which must refuse it naming the line (or accept it).

One TAP line per checked expectation.  No rule of the product is written
here: every answer comes from the C implementation.

  run.py [FILE.expect...]     (default: every *.expect beside this file)
Environment: BUILD (default TOP/build), APIKEYCTL, APIKEYD.
"""
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import uuid
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from lint import parse_expect, json_path, one  # noqa: E402  (the format's one parser)

BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))
APIKEYCTL = os.environ.get("APIKEYCTL", os.path.join(BUILD, "apikeyctl"))
APIKEYD = os.environ.get("APIKEYD", os.path.join(BUILD, "apikeyd"))
TESTDATA = os.path.join(BUILD, "tests", "cli", "apikey-testdata")
ALPHABETS = {
    "base62": string.digits + string.ascii_uppercase + string.ascii_lowercase,
    "base36lower": string.digits + string.ascii_lowercase,
    "hex": "0123456789abcdef",
}
rng = random.SystemRandom()


class Tap:
    def __init__(self):
        self.n = self.failed = 0

    def ok(self, good, desc, why=""):
        self.n += 1
        if not good:
            self.failed += 1
        print(f"{'ok' if good else 'not ok'} {self.n} - {desc}" + ("" if good or not why else f": {why}"))
        sys.stdout.flush()
        return good


class SetupError(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Profile:
    """One profile under test: its files, the keys of its setup, its daemon."""

    def __init__(self, name, tmp):
        self.name, self.tmp = name, tmp
        self.conf = os.path.join(tmp, name + ".conf")
        self.db = os.path.join(tmp, name + ".db")
        self.other = self.db + ".other"
        self.access = os.path.join(tmp, name + ".access")
        src = open(os.path.join(TOP, "packaging", "profiles", name + ".conf"), encoding="utf-8").read()
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(src if src.endswith("\n") else src + "\n")
            f.write(f"access_log={self.access}\n")
        m = re.search(r"^key_prefix=(.*)$", src, re.M)
        self.prefix = m.group(1).strip() if m else "ak_"
        self.secret, self.ids = {}, {}
        self.proc = self.port = None
        self.other_ready = False

    # -- apikeyctl --
    def args(self, words):
        out = []
        for w in words:
            if w.startswith("@"):
                if w[1:] not in self.ids:
                    raise SetupError(f"{w}: no such key")
                w = self.ids[w[1:]]
            out.append(w)
        return out

    def ctl(self, words, db=None, stdin=None):
        cmd = [APIKEYCTL, "--conf", self.conf, "--db", db or self.db] + self.args(words)
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, cwd=TOP,
                           env=dict(os.environ, TMPDIR=self.tmp))
        return p.returncode, p.stdout, p.stderr

    def must(self, words, db=None, stdin=None):
        rc, out, err = self.ctl(words, db, stdin)
        if rc != 0:
            raise SetupError(f"apikeyctl {' '.join(words)}: exit {rc}: {err.strip()}")
        return out

    def newest_id(self, owner):
        keys = [k for k in json.loads(self.must(["list", "--json"])) if k["owner"] == owner]
        if not keys:
            raise SetupError(f"no key of {owner} after the import")
        return keys[-1]["id"]

    def status(self, name):
        return json.loads(self.must(["show", "@" + name, "--json"]))["status"]

    def await_status(self, name, want):
        deadline = time.monotonic() + 10
        while True:
            got = self.status(name)
            if got == want:
                return
            if time.monotonic() > deadline:
                raise SetupError(f"await {name} {want}: still {got} after 10 s")
            time.sleep(0.1)

    # -- setup directives --
    def setup(self, lineno, d, args):
        if d == "ctl":
            self.must(args)
        elif d in ("key", "foreign"):
            db = None
            if d == "foreign":
                if not self.other_ready:
                    self.must(["init"], db=self.other)
                    self.other_ready = True
                db = self.other
            j = json.loads(self.must(args[1:] + ["--json"], db=db))
            self.secret[args[0]], self.ids[args[0]] = j["key"], j["id"]
        elif d == "import":
            name, alg, shape = args[0], args[1], args[2]
            prefix, alphabet, length = shape.split("/")
            if alphabet == "uuid":
                body = str(uuid.uuid4())
            else:
                body = "".join(rng.choice(ALPHABETS[alphabet]) for _ in range(int(length)))
            key = prefix + body
            if alg == "sha256":
                hashed = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
            else:
                hashed = subprocess.run([TESTDATA, "hash", alg, key], capture_output=True, text=True,
                                        check=True).stdout.strip()
            line = {"hash": hashed, "hint": key[:10]}
            for kv in args[3:]:
                k, _, v = kv.partition("=")
                line[k] = v.split(",") if k == "scopes" else int(v) if k == "rate_limit" else v
            path = os.path.join(self.tmp, f"import-{name}.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            self.must(["import", path])
            self.secret[name], self.ids[name] = key, self.newest_id(line["owner"])
        elif d == "literal":
            self.secret[args[0]] = args[1]
        elif d == "derive":
            name, src, op = args
            k = self.secret[src]
            if op == "drop-last":
                k = k[:-1]
            elif op == "add-0":
                k = k + "0"
            elif op == "change-last":
                k = k[:-1] + ("1" if k[-1] == "0" else "0")
            elif op == "upper":
                k = self.prefix + k[len(self.prefix):].upper()
            self.secret[name] = k
        elif d == "await":
            self.await_status(args[0], args[1])
        else:
            raise SetupError(f"line {lineno}: unknown directive {d}")

    # -- the daemon --
    def start(self):
        self.port = free_port()
        self.log = open(os.path.join(self.tmp, self.name + ".apikeyd.log"), "w")
        self.proc = subprocess.Popen([APIKEYD, "-f", self.conf, "--db", self.db, "--threads", "1",
                                      "--listen", f"127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.request("GET", "/healthz", {})[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SetupError("apikeyd did not start: " + open(self.log.name).read()[-2000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def request(self, method, target, headers):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.putrequest(method, target, skip_accept_encoding=True)
            for k, v in headers:
                c.putheader(k, v)
            c.endheaders()
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def last_outcome(self):
        try:
            lines = open(self.access, encoding="utf-8", errors="replace").read().splitlines()
        except OSError:
            return None
        # time peer method "path" status RESULT key latency
        return lines[-1].split()[5] if lines else None


def header(headers, name):
    vals = [v for k, v in headers if k.lower() == name.lower()]
    return vals[0] if vals else None


def check_json(tap, label, text, f):
    try:
        doc = json.loads(text)
    except ValueError as e:
        tap.ok(False, f"{label}: JSON", f"{e}: {text[:200]!r}")
        return
    for _, spec in f.get("json", []):
        path, _, want = spec.partition(" ")
        try:
            got = json_path(doc, path)
        except (KeyError, IndexError, TypeError, ValueError):
            got = "(absent)"
        tap.ok(got == json.loads(want), f"{label}: json {path}", f"got {json.dumps(got)}, want {want}")
    for _, spec in f.get("json-re", []):
        path, _, rx = spec.partition(" ")
        try:
            got = json_path(doc, path)
        except (KeyError, IndexError, TypeError, ValueError):
            got = None
        tap.ok(isinstance(got, str) and re.search(rx, got) is not None, f"{label}: json-re {path}",
               f"got {json.dumps(got)}, want /{rx}/")


def run_http(tap, p, c, label):
    f = c["fields"]
    method, _, target = one(c, "request").partition(" ")
    key = one(c, "key")
    via = one(c, "via") or "bearer"
    headers = []
    if key != "none":
        k = p.secret[key]
        if via == "bearer":
            headers.append(("Authorization", "Bearer " + k))
        elif via == "raw-authorization":
            headers.append(("Authorization", k))
        elif via == "x-api-key":
            headers.append(("X-API-Key", k))
        elif via.startswith("header:"):
            headers.append((via[7:], k))
        elif via.startswith("query:"):
            target += ("&" if "?" in target else "?") + via[6:] + "=" + quote(k, safe="")
    for _, h in f.get("header", []):
        n, _, v = h.partition(": ")
        headers.append((n, v))
    prime = int(one(c, "prime") or 0)
    for i in range(prime):
        st = p.request(method, target, headers)[0]
        if not tap.ok(st == 200, f"{label}: prime {i + 1}/{prime} answers 200", f"got {st}"):
            return
    status, rh, body = p.request(method, target, headers)
    want = one(c, "status")
    tap.ok(str(status) == want, f"{label}: status {want}", f"got {status}, body {body[:300]!r}")
    if one(c, "outcome"):
        got = p.last_outcome()
        tap.ok(got == one(c, "outcome"), f"{label}: outcome {one(c, 'outcome')} (access log)", f"got {got}")
    for _, h in f.get("expect-header", []):
        n, _, v = h.partition(": ")
        got = header(rh, n)
        tap.ok(got == v, f"{label}: header {n}: {v}", f"got {got!r}")
    for _, h in f.get("expect-header-re", []):
        n, _, rx = h.partition(": ")
        got = header(rh, n)
        tap.ok(got is not None and re.fullmatch(rx, got) is not None, f"{label}: header {n} ~ /{rx}/",
               f"got {got!r}")
    for _, n in f.get("no-header", []):
        got = header(rh, n)
        tap.ok(got is None, f"{label}: no header {n}", f"got {got!r}")
    text = body.decode("utf-8", errors="replace")
    if one(c, "body") is not None:
        want_body = one(c, "body") + "\n"
        tap.ok(body == want_body.encode(), f"{label}: body byte for byte", f"got {text!r}, want {want_body!r}")
    if "body-empty" in f:
        tap.ok(body == b"" and header(rh, "Content-Length") == "0", f"{label}: empty body",
               f"got {text!r}, Content-Length {header(rh, 'Content-Length')}")
    if one(c, "doc-body") is not None:
        try:
            same = json.loads(one(c, "doc-body"), object_pairs_hook=list) == \
                json.loads(text, object_pairs_hook=list)
        except ValueError:
            same = False
        tap.ok(same, f"{label}: the document's JSON (members, order, values)", f"got {text!r}")
    if "json" in f or "json-re" in f:
        check_json(tap, label, text, f)


def run_cli(tap, p, c, label):
    f = c["fields"]
    rc, out, err = p.ctl(one(c, "cli").split())
    want = one(c, "exit")
    tap.ok(str(rc) == want, f"{label}: exit {want}", f"got {rc}; stderr {err.strip()[:300]!r}")
    for _, rx in f.get("stdout-re", []):
        tap.ok(re.search(rx, out) is not None, f"{label}: stdout ~ /{rx}/", f"stdout {out[:300]!r}")
    for _, rx in f.get("stdout-not-re", []):
        tap.ok(re.search(rx, out) is None, f"{label}: stdout !~ /{rx}/", f"stdout {out[:300]!r}")
    for _, rx in f.get("stderr-re", []):
        tap.ok(re.search(rx, err) is not None, f"{label}: stderr ~ /{rx}/", f"stderr {err.strip()[:300]!r}")
    if "json" in f or "json-re" in f:
        check_json(tap, label, out, f)


def run_profile(tap, path):
    _, setup, cases, problems = parse_expect(path)
    name = os.path.basename(path)[:-len(".expect")]
    if problems:
        tap.ok(False, f"{name}.expect: format", "; ".join(problems))
        return
    tmp = tempfile.mkdtemp(prefix=f"apikey-profile-{name}.")
    p = Profile(name, tmp)
    try:
        try:
            p.must(["init"])
            for lineno, d, args in setup:
                p.setup(lineno, d, args)
            p.start()
        except (SetupError, subprocess.SubprocessError, OSError, ValueError, KeyError) as e:
            tap.ok(False, f"{name}: set-up", str(e))
            return
        tap.ok(True, f"{name}: profile loaded, set up, apikeyd started")
        for c in cases:
            label = f"{name}/{c['id']}"
            try:
                for _, a in c["fields"].get("do", []):
                    p.must(a.split())
                for _, a in c["fields"].get("await", []):
                    p.await_status(*a.split())
                if "request" in c["fields"]:
                    run_http(tap, p, c, label)
                else:
                    run_cli(tap, p, c, label)
            except (SetupError, OSError, http.client.HTTPException, ValueError, KeyError) as e:
                tap.ok(False, label, f"{type(e).__name__}: {e}")
        p.stop()
        tap.ok(p.proc.returncode == 0, f"{name}: apikeyd stops cleanly on SIGTERM", f"exit {p.proc.returncode}")
    finally:
        p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run_bad(tap, path):
    _, _, cases, problems = parse_expect(path)
    if problems:
        tap.ok(False, "bad.expect: format", "; ".join(problems))
        return
    tmp = tempfile.mkdtemp(prefix="apikey-profile-bad.")
    try:
        empty = os.path.join(tmp, "empty.conf")
        open(empty, "w").close()
        db = os.path.join(tmp, "keys.db")
        subprocess.run([APIKEYCTL, "--conf", empty, "--db", db, "init"], check=True, capture_output=True)
        for c in cases:
            conf = os.path.join(tmp, c["id"] + ".conf")
            with open(conf, "w", encoding="utf-8") as f:
                for _, line in c["fields"]["conf"]:
                    f.write(line + "\n")
            for tool in one(c, "check").split():
                cmd = [APIKEYD, "-n", "-f", conf, "--db", db] if tool == "apikeyd" else \
                    [APIKEYCTL, "--conf", conf, "--db", db, "list"]
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                label = f"bad/{c['id']}: {tool}"
                want = one(c, "exit")
                tap.ok(str(p.returncode) == want, f"{label}: exit {want}",
                       f"got {p.returncode}; stderr {p.stderr.strip()[:400]!r}")
                for _, rx in c["fields"].get("stderr-re", []):
                    tap.ok(re.search(rx, p.stderr) is not None, f"{label}: stderr ~ /{rx}/",
                           f"stderr {p.stderr.strip()[:400]!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    files = argv[1:] or sorted(os.path.join(HERE, f) for f in os.listdir(HERE) if f.endswith(".expect"))
    tap = Tap()
    for path in files:
        if os.path.basename(path) == "bad.expect":
            run_bad(tap, path)
        else:
            run_profile(tap, path)
    print(f"1..{tap.n}")
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

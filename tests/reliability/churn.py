#!/usr/bin/env python3
"""churn.py — new connections all the time, for the soak: RATE a second, each
one request and closed; one in ten is hostile (a NUL in a header, an
oversize head, HTTP/1.2, two Content-Length, a half request left for the
deadline to cut, at most 20 of those open at once).  Runs for SECONDS and
prints "sent <n> answered <n> unexpected <n>" — unexpected: an answer other
than the one each request must get.

    churn.py PORT KEY RATE SECONDS
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sidecar"))
from rawhttp import responses  # noqa: E402


def main():
    port, key, rate, seconds = int(sys.argv[1]), sys.argv[2].encode(), float(sys.argv[3]), float(sys.argv[4])
    k = b"X-API-Key: " + key + b"\r\n"
    cases = [
        (b"GET /auth HTTP/1.1\r\n" + k + b"Connection: close\r\n\r\n", "200"),
        (b"GET /auth HTTP/1.1\r\n" + k + b"X-Required-Scope: docs:read\x00,admin:all\r\n\r\n", "400"),
        (b"GET /auth HTTP/1.1\r\n" + k + b"X-Junk: " + b"j" * 17000 + b"\r\n\r\n", "431"),
        (b"GET /auth HTTP/1.2\r\n" + k + b"\r\n", "505"),
        (b"POST /v1/verify HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "400"),
    ]
    sent = answered = unexpected = 0
    halves = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        i += 1
        if i % 10 == 5 and len(halves) < 20:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /auth HTTP/1.1\r\nX-Half")      # left for the deadline
            halves.append((s, time.monotonic()))
        else:
            raw, want = cases[0] if i % 10 else cases[(i // 10) % (len(cases) - 1) + 1]
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(raw)
                data = b""
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    data += c
                s.close()
                got = responses(data)
                sent += 1
                if got:
                    answered += 1
                if got[:1] != [want]:
                    unexpected += 1
                    print("churn: %r... got %s, want %s" % (raw[:40], got, want), file=sys.stderr)
            except OSError as e:
                unexpected += 1
                print("churn: %r...: %s" % (raw[:40], e), file=sys.stderr)
        # the half requests are cut by apikeyd (408 and close) within ~10 s
        for h in list(halves):
            hs, since = h
            try:
                hs.setblocking(False)
                hs.recv(4096)          # the 408, or the close: cut
            except BlockingIOError:
                if time.monotonic() - since > 15:
                    unexpected += 1
                    print("churn: a half request not cut after 15 s", file=sys.stderr)
                    hs.close()
                    halves.remove(h)
                continue
            except OSError:
                pass
            hs.close()
            halves.remove(h)
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - t0)))
    for h in halves:
        h[0].close()
    print("sent %d answered %d unexpected %d" % (sent, answered, unexpected))


if __name__ == "__main__":
    main()

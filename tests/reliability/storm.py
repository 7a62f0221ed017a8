#!/usr/bin/env python3
"""storm.py — slow clients: N connections that each send a request head one
byte every PERIOD seconds and never finish it; a connection the server
closes is opened again at once.  Runs for SECONDS, then prints
"connects <n> closed-by-server <n> max-open <n>".

    storm.py PORT N PERIOD SECONDS
"""
import errno
import selectors
import socket
import sys
import time

HEAD = b"GET /auth HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"s" * 4000


def main():
    port, n, period, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    sel = selectors.DefaultSelector()
    conns = {}
    stats = {"connects": 0, "closed": 0}

    def open_one():
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return
        stats["connects"] += 1
        conns[s] = [0, time.monotonic() + period * (len(conns) % 10) / 10]
        sel.register(s, selectors.EVENT_READ)

    def drop(s):
        sel.unregister(s)
        del conns[s]
        s.close()
        stats["closed"] += 1

    end = time.monotonic() + seconds
    for _ in range(n):
        open_one()
    max_open = 0
    while time.monotonic() < end:
        now = time.monotonic()
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                if not s.recv(65536):
                    drop(s)
            except OSError:
                drop(s)
        for s, st in list(conns.items()):
            if now >= st[1]:
                st[1] = now + period
                try:
                    s.send(HEAD[st[0] % len(HEAD):st[0] % len(HEAD) + 1])
                    st[0] += 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    if e.errno not in (errno.ENOTCONN, errno.EAGAIN):
                        drop(s)
        while len(conns) < n:
            open_one()
        max_open = max(max_open, len(conns))
    print("connects %d closed-by-server %d max-open %d" % (stats["connects"], stats["closed"], max_open))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""rawhttp.py — raw bytes to apikeyd, and what came back, for the shell tests.

    rawhttp.py PORT BYTES [WAIT]

BYTES is a Python bytes literal (b'GET / HTTP/1.1\\r\\n...').  Sends it on a
fresh connection, reads until the server closes or WAIT seconds (default 2)
pass without a byte, and prints one line:

    <status> [<status>...] closed|open

(every response's status, in order; "none" when nothing came back).
Responses are told apart by their Content-Length, so a second response
smuggled behind the first is counted even when it starts mid-line.
"""
import ast
import socket
import sys


def responses(data):
    out, rest = [], data
    while rest.startswith(b"HTTP/"):
        head, sep, body = rest.partition(b"\r\n\r\n")
        if not sep:
            out.append(head.split(b" ", 2)[1].decode("ascii", "replace"))
            break
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        out.append(parts[1].decode("ascii", "replace") if len(parts) > 1 else "?")
        length = 0
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip() or 0)
        rest = body[length:]
    return out


def exchange(port, raw, wait=2.0):
    """Send raw on a fresh connection; "<status>... closed|open"."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(raw)
    except OSError:
        pass
    s.settimeout(wait)
    data, state = b"", "open"
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                state = "closed"
                break
            data += chunk
    except socket.timeout:
        pass
    except OSError:
        state = "closed"
    s.close()
    return "%s %s" % (" ".join(responses(data)) or "none", state)


def main():
    wait = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    print(exchange(int(sys.argv[1]), ast.literal_eval(sys.argv[2]), wait))


if __name__ == "__main__":
    main()

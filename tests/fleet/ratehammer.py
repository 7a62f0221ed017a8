#!/usr/bin/env python3
"""ratehammer.py — one key hammered through several apikeyd "hosts" at fixed
rates, and the reference: what one GCRA admits for the same arrivals.

  ratehammer.py KEY LIMIT SECONDS PORT:RATE [PORT:RATE...]

Each PORT gets its own client thread (keep-alive) sending GET /auth at RATE
requests per second, paced (sent at t0 + i/RATE).  Prints one JSON object:
accepted (200s) per port and in all, refused (429s), other statuses, the
reference count of one GCRA (burst = the limit, one request per 60/LIMIT s)
over the merged arrival times, and their ratio."""
import http.client, json, sys, threading, time

key, limit, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
targets = [(int(p), float(r)) for p, r in (a.split(":") for a in sys.argv[4:])]
t0 = time.monotonic() + 0.5
results = {}

def client(port, rate):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    got, n = [], int(secs * rate)
    for i in range(n):
        at = t0 + i / rate
        d = at - time.monotonic()
        if d > 0:
            time.sleep(d)
        sent = time.monotonic()
        try:
            conn.request("GET", "/auth", headers={"Authorization": "Bearer " + key})
            r = conn.getresponse(); r.read()
            status, retry = r.status, r.getheader("Retry-After")
        except Exception:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            status, retry = 0, None
        got.append((sent, status, retry))
    results[port] = got

threads = [threading.Thread(target=client, args=t) for t in targets]
for t in threads: t.start()
for t in threads: t.join()

arrivals = sorted(s for got in results.values() for s, _, _ in got)
T, tau, tat, ref = 60.0 / limit, 60.0, None, 0
for a in arrivals:                      # GCRA, burst = limit
    t = a if tat is None or tat < a else tat
    if t + T - a <= tau + 1e-9:
        tat = t + T
        ref += 1
out = {"reference": ref, "sent": len(arrivals), "accepted": 0, "refused": 0, "other": 0,
       "refused_without_retry_after": 0, "per_port": {}}
for port, got in results.items():
    acc = sum(1 for _, s, _ in got if s == 200)
    out["per_port"][port] = acc
    out["accepted"] += acc
    out["refused"] += sum(1 for _, s, _ in got if s == 429)
    out["other"] += sum(1 for _, s, _ in got if s not in (200, 429))
    out["refused_without_retry_after"] += sum(1 for _, s, r in got if s == 429 and not r)
out["ratio"] = round(out["accepted"] / ref, 4) if ref else 0
print(json.dumps(out))

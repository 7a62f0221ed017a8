#!/usr/bin/env python3
"""fleet_ratelimit_sim.py — a model (not the product) of the fleet rate limit
of docs/design/fleet.md: hosts admit from a pool of tokens leased from the
upstream's GCRA, or on a small credit when the pool is empty; each host's
follower settles credits (a forced charge) and leases more every W, one
round trip away.  It checks the stated bound — accepted <= what one GCRA
admits + 2 * hosts * credit — over the issue's scenario (3 sidecars at 10x
the limit for 60 s) and a few harder ones, and prints accepted / reference
(below 1 is capacity the fleet left unused: leases held where no request
came, credits waiting for a round).  Not modelled: the product's early
round when a request finds no token (upstream/fleetlimit.c), which only
lets more through sooner within the same bound.

  python3 bench/fleet_ratelimit_sim.py            (exit 1 if a bound is broken)
"""
import heapq
import math
import random
import sys

TAU = 60.0  # s: the GCRA window (burst = the per-minute limit)


def gcra_reference(limit, arrivals):
    """What one exact GCRA admits for the merged arrival times."""
    t_emit = 60.0 / limit
    tat, n = 0.0, 0
    for t in arrivals:
        nxt = max(tat, t) + t_emit
        if nxt - t <= TAU:
            tat, n = nxt, n + 1
    return n


class Central:
    """The upstream's per-key GCRA row, changed only by lease rounds."""

    def __init__(self, limit):
        self.t_emit = 60.0 / limit
        self.tat = 0.0

    def round(self, now, settle, want, returned=0):
        tat = max(self.tat, now) + settle * self.t_emit   # forced: already admitted
        # unused leased tokens come back (never below now: no credit for the past)
        tat = max(now, tat - returned * self.t_emit)
        room = math.floor((now + TAU - tat) / self.t_emit + 1e-9)
        grant = max(0, min(want, room))
        self.tat = tat + grant * self.t_emit
        return grant, self.tat


class Host:
    def __init__(self, limit, credit, lease_secs, horizon):
        self.limit, self.credit, self.lease_secs, self.horizon = limit, credit, lease_secs, horizon
        self.expired = 0        # leased tokens that lapsed unused: given back next round
        self.pool = []          # expiry times of leased tokens, oldest first
        self.debt = 0           # admitted on credit, not yet settled
        self.inflight_debt = 0  # settled in a round whose reply is pending
        self.next_free = 0.0    # from the last reply: when the centre has a token again
        self.recent = []        # admission times in the last second (demand estimate)
        self.accepted = 0

    def request(self, now):
        while self.pool and self.pool[0] <= now:
            self.pool.pop(0)                    # expired, unused: given back
            self.expired += 1
        if self.pool:
            self.pool.pop(0)
        elif self.debt + self.inflight_debt < self.credit and now >= self.next_free:
            self.debt += 1
        else:
            return False
        self.accepted += 1
        self.recent.append(now)
        return True

    def want(self, now):
        """Tokens to hold: the last second's admission rate over the next
        `horizon` seconds (two rounds), at least one."""
        self.recent = [t for t in self.recent if t > now - 1.0]
        rate = len(self.recent)
        cap = self.limit / 60.0 * self.horizon + 1
        return max(1, min(math.ceil(rate * self.horizon), math.ceil(cap))) - len(self.pool)


def simulate(limit, hosts, overload, secs, split, rtt, every, lease_secs, credit, warm, seed):
    rnd = random.Random(seed)
    central = Central(limit)
    hs = [Host(limit, credit, lease_secs, 2 * every) for _ in range(hosts)]
    events = []  # (time, kind, host, payload)
    rate = overload * limit / 60.0  # requests per second, all hosts together
    start = 0.0
    if warm:  # the key has been at its limit: the centre's bucket is empty
        central.tat = TAU
    for h in range(hosts):
        t, r = start, rate * split[h]
        while True:
            t += rnd.expovariate(r)
            if t >= start + secs:
                break
            events.append((t, 0, h, None))
        events.append((start + rnd.random() * every, 1, h, None))   # rounds, unsynchronised
    heapq.heapify(events)
    arrivals = []
    while events:
        now, kind, h, payload = heapq.heappop(events)
        host = hs[h]
        if kind == 0:                       # a request
            arrivals.append(now)
            host.request(now)
        elif kind == 1:                     # a round starts: settle + lease, one statement
            if now < start + secs + 2 * every:
                while host.pool and host.pool[0] <= now:
                    host.pool.pop(0)
                    host.expired += 1
                settle, want, back = host.debt, max(0, host.want(now)), host.expired
                host.inflight_debt, host.debt, host.expired = settle, 0, 0
                at_centre = now + rtt / 2
                grant, tat = central.round(at_centre, settle, want, back)
                heapq.heappush(events, (now + rtt, 2, h, (grant, tat)))
                heapq.heappush(events, (now + every, 1, h, None))
        else:                               # the reply
            grant, tat = payload
            host.inflight_debt = 0
            host.pool.extend([now + lease_secs] * grant)
            host.next_free = tat + central.t_emit - TAU
    accepted = sum(x.accepted for x in hs)
    if warm:
        ref = gcra_reference_warm(limit, sorted(arrivals))
    else:
        ref = gcra_reference(limit, sorted(arrivals))
    return accepted, ref


def gcra_reference_warm(limit, arrivals):
    t_emit = 60.0 / limit
    tat, n = TAU, 0
    for t in arrivals:
        nxt = max(tat, t) + t_emit
        if nxt - t <= TAU:
            tat, n = nxt, n + 1
    return n


def table(hosts, secs, rtt, every, lease, limits):
    bad = 0
    print("model: %d hosts, %.0f s, round trip %.0f ms, a round every %.0f ms per host, "
          "leases sized for two rounds, live %.0f s, unused ones given back, "
          "credit = max(1, floor(0.025 * limit / hosts), min(5, floor(limit / hosts)))"
          % (hosts, secs, rtt * 1e3, every * 1e3, lease))
    print("%-8s %-9s %-6s %-10s %9s %9s %7s %9s" % ("limit", "overload", "start", "split", "accepted",
                                                   "1 GCRA", "ratio", "bound ok"))
    splits = ((10, [1 / hosts] * hosts), (10, [0.6] + [0.4 / (hosts - 1)] * (hosts - 1)),
              (2, [0.8] + [0.2 / (hosts - 1)] * (hosts - 1)))
    for limit in limits:
        credit = max(1, math.floor(0.025 * limit / hosts), min(5, limit // hosts))
        for overload, split in splits:
            for warm in (False, True):
                acc, ref = simulate(limit, hosts, overload, secs, split, rtt, every, lease, credit, warm,
                                    seed=limit + overload)
                ok = acc <= ref + 2 * hosts * credit
                bad |= not ok
                print("%-8d %-9s %-6s %-10s %9d %9d %7.3f %9s" % (
                    limit, "%dx" % overload, "warm" if warm else "fresh",
                    "/".join("%d" % round(s * 100) for s in split[:3]) + ("/.." if hosts > 3 else ""),
                    acc, ref, acc / ref, "yes" if ok else "NO"))
    return bad


def main():
    bad = table(3, 60.0, 0.001, 0.05, 1.0, (60, 600, 6000, 60000))
    print()
    bad |= table(10, 60.0, 0.005, 0.05, 1.0, (60, 600, 6000))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

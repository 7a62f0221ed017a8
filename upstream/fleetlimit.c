/* fleetlimit.c — a key's rate limit across the fleet (docs/design/fleet.md
 * §12): one GCRA per key in PostgreSQL (apikey.ratelimit, changed only by
 * apikey.lease), from which each apikeyd leases tokens; a request spends a
 * leased token, or a small credit when none is left (so it never waits for
 * the network), and the credit is charged to the centre at the next round.
 *
 * The request path (apikeyd's workers, after the host's own limiter) touches
 * only memory here: one striped lock and one table entry per key.  The
 * keeper thread runs the rounds: every 50 ms while keys are active, and at
 * once (at most every FL_EARLY_MS) when a request found no leased token, so
 * a key that was idle gets tokens within a round trip, not a tick.  A round
 * is one statement for every key that needs one (settle the credit spent,
 * give back tokens unused for a second, lease what the last second's rate
 * needs for the next two rounds, never more than the host's share of the
 * minute, L/H).  While the follower is not connected (or a round failed),
 * each host limits the key alone to its share, L/H (H: hosts seen in the
 * last minute); those admissions are never charged afterwards.
 *
 * Bound (one key, limit L per minute, H hosts, credit c = max(1, 2.5% of
 * L/H, min(5, L/H))): over any window the fleet admits at most what one GCRA
 * admits for the same arrivals, plus the credit outstanding at its end
 * (H·c), plus the tokens leased before it and spent in it (at most two
 * rounds of each host's rate, and at most L/H each).  The floor of 5 lets a
 * small limit's burst through while the first lease is on its way (a 60/min
 * key on 3 hosts: c = 5, at most 15 over in a window, where 2.5% would give
 * 1 and refuse the second of two quick requests).  Measured:
 * tests/fleet/ft_ratelimit.sh, docs/BENCHMARKS.md. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "fleetlimit.h"

#define FL_BUCKETS 4096
#define FL_STRIPES 64
#define FL_MAX_KEYS 16384            /* keys tracked at once; more: UNAVAILABLE */
#define FL_IDLE_GIVE_US 1000000      /* tokens unused this long go back */
#define FL_FORGET_US 60000000        /* an idle entry with nothing owed is dropped */
#define FL_HORIZON_US 100000         /* lease for two 50 ms rounds */
#define FL_CREDIT_FLOOR 5            /* credit a small limit gets (at most L/H) */
#define MINUTE_US 60000000LL

struct fl_entry {
	struct fl_entry *next;
	char id[APIKEY_ID_SIZE];
	uint32_t limit;
	int64_t tokens;          /* leased, not yet spent */
	int64_t debt;            /* admitted on credit, not yet sent */
	int64_t settling;        /* credit sent in the round in flight */
	int64_t giving;          /* tokens given back in the round in flight */
	int64_t used;            /* admitted since the last round */
	double rate;             /* admissions per second (smoothed) */
	int64_t last_use_us;
	int64_t tokens_at_us;    /* when tokens last arrived */
	int64_t retry_at_us;     /* the centre said: empty until then */
	int64_t local_tat;       /* degraded: this host's own GCRA at L/H */
	bool pending;            /* a request found no token: round wanted */
};

struct fleet_limit {
	pthread_mutex_t mu[FL_STRIPES];
	struct fl_entry *bucket[FL_BUCKETS];
	unsigned n;                      /* entries (atomic reads) */
	unsigned hosts;                  /* H (atomic) */
	int64_t last_answer_us;          /* (atomic) */
	bool up;                         /* the centre answers (atomic) */
	int64_t last_round_us;           /* follower's own */
	int wake_fd;                     /* eventfd: a request wants a round */
	bool round_wanted;               /* written to wake_fd, not yet read (atomic) */
	uint64_t rounds, errors, credit_used, refused;   /* (atomics) */
};

static uint32_t hash_id(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h;
}

int fl_new(struct fleet_limit **out)
{
	struct fleet_limit *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return APIKEY_ERR_NOMEM;
	l->wake_fd = -1;
	for (int i = 0; i < FL_STRIPES; i++)
		pthread_mutex_init(&l->mu[i], NULL);
	l->hosts = 1;
	if ((l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		fl_free(l);
		return APIKEY_ERR_NOMEM;
	}
	*out = l;
	return 0;
}

void fl_free(struct fleet_limit *l)
{
	if (!l)
		return;
	for (int b = 0; b < FL_BUCKETS; b++)
		while (l->bucket[b]) {
			struct fl_entry *n = l->bucket[b]->next;
			free(l->bucket[b]);
			l->bucket[b] = n;
		}
	for (int i = 0; i < FL_STRIPES; i++)
		pthread_mutex_destroy(&l->mu[i]);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	free(l);
}

static unsigned share(uint32_t limit, unsigned hosts)
{
	return limit / (hosts ? hosts : 1);
}

static unsigned credit_cap(uint32_t limit, unsigned hosts)
{
	unsigned c = (unsigned)(0.025 * limit / (hosts ? hosts : 1));
	unsigned least = share(limit, hosts) < FL_CREDIT_FLOOR ? share(limit, hosts) : FL_CREDIT_FLOOR;

	if (c < least)
		c = least;
	return c ? c : 1;
}

/* A request found no leased token: wake the keeper for a round (one write
 * until the keeper has read it). */
static void want_round(struct fleet_limit *l)
{
	uint64_t one = 1;

	if (!__atomic_exchange_n(&l->round_wanted, true, __ATOMIC_ACQ_REL) &&
	    write(l->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		__atomic_store_n(&l->round_wanted, false, __ATOMIC_RELEASE);   /* the tick still comes */
}

static uint32_t ceil_s(int64_t us)
{
	return us <= 0 ? 0 : (uint32_t)((us + 999999) / 1000000);
}

int fl_take(struct fleet_limit *l, const char *id, uint32_t limit, int64_t now_us, struct apikey_ratelimit *out)
{
	uint32_t h = hash_id(id);
	pthread_mutex_t *mu = &l->mu[h % FL_STRIPES];
	struct fl_entry **slot = &l->bucket[h % FL_BUCKETS], *e;
	unsigned hosts = __atomic_load_n(&l->hosts, __ATOMIC_RELAXED);
	bool up = __atomic_load_n(&l->up, __ATOMIC_RELAXED), ask;

	memset(out, 0, sizeof(*out));
	out->limit = limit;
	pthread_mutex_lock(mu);
	for (e = *slot; e && strcmp(e->id, id); e = e->next)
		;
	if (!e) {
		if (__atomic_load_n(&l->n, __ATOMIC_RELAXED) >= FL_MAX_KEYS || !(e = calloc(1, sizeof(*e)))) {
			pthread_mutex_unlock(mu);
			return APIKEY_ERR_FULL;   /* a limit we cannot track: UNAVAILABLE */
		}
		copy_str(e->id, sizeof(e->id), id);
		e->next = *slot;
		*slot = e;
		__atomic_add_fetch(&l->n, 1, __ATOMIC_RELAXED);
	}
	e->limit = limit;
	if (!up) {
		/* the centre is away: this host's share alone, never charged later */
		uint32_t mine = share(limit, hosts);
		apikey_gcra(&e->local_tat, now_us, mine ? mine : 1, out);
		out->limit = limit;
		goto done;
	}
	if (e->tokens > 0) {
		e->tokens--;
		out->allowed = true;
	} else if (e->debt + e->settling < credit_cap(limit, hosts) && now_us >= e->retry_at_us) {
		e->debt++;
		out->allowed = true;
		e->pending = true;
		__atomic_add_fetch(&l->credit_used, 1, __ATOMIC_RELAXED);
	} else {
		e->pending = true;
		out->retry_after_s = ceil_s(e->retry_at_us - now_us);
		if (out->retry_after_s == 0)
			out->retry_after_s = 1;
		__atomic_add_fetch(&l->refused, 1, __ATOMIC_RELAXED);
	}
	out->remaining = e->tokens > 0 ? (uint32_t)e->tokens : 0;
	out->reset_s = out->allowed ? 1 : out->retry_after_s;
	if (out->allowed) {
		e->used++;
		e->last_use_us = now_us;
	}
	/* out of tokens: a round now, unless one is on its way or the centre
	 * said the key is empty until retry_at */
	ask = e->pending && !e->settling && !e->giving && now_us >= e->retry_at_us;
	pthread_mutex_unlock(mu);
	if (ask)
		want_round(l);
	return 0;
done:
	pthread_mutex_unlock(mu);
	return 0;
}

bool fl_active(struct fleet_limit *l)
{
	return __atomic_load_n(&l->n, __ATOMIC_RELAXED) > 0;
}

int fl_wake_fd(struct fleet_limit *l)
{
	return l->wake_fd;
}

bool fl_round_wanted(struct fleet_limit *l)
{
	uint64_t n;
	bool wanted = read(l->wake_fd, &n, sizeof(n)) == sizeof(n);

	return __atomic_exchange_n(&l->round_wanted, false, __ATOMIC_ACQ_REL) || wanted;
}

void fl_set_up(struct fleet_limit *l, bool up)
{
	__atomic_store_n(&l->up, up, __ATOMIC_RELAXED);
}

void fl_set_hosts(struct fleet_limit *l, unsigned hosts)
{
	__atomic_store_n(&l->hosts, hosts ? hosts : 1, __ATOMIC_RELAXED);
}

/* ---- a round ---------------------------------------------------------------- */

struct round_item { char id[APIKEY_ID_SIZE]; uint32_t limit; int64_t settle, want, give; };

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct round_item *)a)->id, ((const struct round_item *)b)->id);
}

static struct fl_entry *find(struct fleet_limit *l, const char *id)
{
	struct fl_entry *e = l->bucket[hash_id(id) % FL_BUCKETS];

	while (e && strcmp(e->id, id))
		e = e->next;
	return e;
}

/* What each key needs this round (under each stripe's lock), into items. */
static size_t collect(struct fleet_limit *l, int64_t now, double dt_s, struct round_item *items, size_t max)
{
	size_t n = 0;

	for (int b = 0; b < FL_BUCKETS; b++) {
		pthread_mutex_t *mu = &l->mu[b % FL_STRIPES];
		struct fl_entry **pp, *e;

		if (!__atomic_load_n(&l->bucket[b], __ATOMIC_RELAXED))
			continue;
		pthread_mutex_lock(mu);
		for (pp = &l->bucket[b]; (e = *pp);) {
			bool active = now - e->last_use_us < FL_IDLE_GIVE_US;
			int64_t want = 0, give = 0, used = e->used;

			e->rate = 0.5 * e->rate + 0.5 * (dt_s > 0 ? (double)used / dt_s : 0);
			e->used = 0;
			if (!active && !e->tokens && !e->debt && !e->settling && !e->giving &&
			    now - e->last_use_us > FL_FORGET_US && !e->pending) {
				*pp = e->next;         /* nothing owed, nothing held: forget it */
				free(e);
				__atomic_sub_fetch(&l->n, 1, __ATOMIC_RELAXED);
				continue;
			}
			if (active || e->pending) {
				int64_t most = share(e->limit, __atomic_load_n(&l->hosts, __ATOMIC_RELAXED));
				want = (int64_t)(e->rate * FL_HORIZON_US / 1e6) + 1;
				/* a request went without a token: a burst, faster than the
				 * smoothed rate says; twice what it took since the last round */
				if (e->pending && want < 2 * (used + e->debt))
					want = 2 * (used + e->debt);
				if (want > most)
					want = most > 0 ? most : 1;     /* never more than the host's share held */
				want -= e->tokens;
				if (want < 0)
					want = 0;
			}
			if (e->tokens > 0 && now - e->last_use_us >= FL_IDLE_GIVE_US &&
			    now - e->tokens_at_us >= FL_IDLE_GIVE_US)
				give = e->tokens;
			if ((want || give || e->debt) && n < max && !e->settling && !e->giving) {
				struct round_item *it = &items[n++];
				copy_str(it->id, sizeof(it->id), e->id);
				it->limit = e->limit;
				it->settle = e->debt;
				it->want = want;
				it->give = give;
				e->settling = e->debt;
				e->debt = 0;
				e->giving = give;
				e->tokens -= give;
				e->pending = false;
			}
			pp = &e->next;
		}
		pthread_mutex_unlock(mu);
	}
	return n;
}

/* The centre's answer (granted, wait) for item i, or a failed round (undo). */
static void settle_item(struct fleet_limit *l, const struct round_item *it, bool ok, int64_t granted,
                        int64_t wait_us, int64_t now)
{
	uint32_t h = hash_id(it->id);
	pthread_mutex_t *mu = &l->mu[h % FL_STRIPES];
	struct fl_entry *e;

	pthread_mutex_lock(mu);
	if ((e = find(l, it->id))) {
		e->settling -= it->settle;
		e->giving -= it->give;
		if (!ok) {
			e->debt += it->settle;       /* charged at the next round that works */
			e->tokens += it->give;
		} else {
			e->tokens += granted;
			if (granted > 0)
				e->tokens_at_us = now;
			e->retry_at_us = granted < it->want ? now + wait_us : 0;
		}
	}
	pthread_mutex_unlock(mu);
}

int fl_round(struct fleet_limit *l, struct up_conn *u, int64_t now_us)
{
	static const size_t max = 1000;
	struct round_item *items = calloc(max, sizeof(*items));
	double dt = l->last_round_us ? (double)(now_us - l->last_round_us) / 1e6 : 0.05;
	char *ids = NULL, *lim = NULL, *set = NULL, *want = NULL, *give = NULL;
	size_t n, cap;
	PGresult *res = NULL;
	int r = 0;

	if (!items)
		return APIKEY_ERR_NOMEM;
	l->last_round_us = now_us;
	n = collect(l, now_us, dt, items, max);
	if (n == 0) {
		free(items);
		return 0;
	}
	/* one lock order for every host: no deadlock between two rounds */
	qsort(items, n, sizeof(*items), cmp_item);
	cap = n * 24 + 3;
	ids = malloc(n * (APIKEY_ID_SIZE + 1) + 3);
	lim = malloc(cap);
	set = malloc(cap);
	want = malloc(cap);
	give = malloc(cap);
	if (!ids || !lim || !set || !want || !give) {
		r = APIKEY_ERR_NOMEM;
	} else {
		size_t a = 0, b = 0, c = 0, d = 0, e = 0;
		for (size_t i = 0; i < n; i++) {
			const char *sep = i ? "," : "{";
			a += (size_t)snprintf(ids + a, n * (APIKEY_ID_SIZE + 1) + 3 - a, "%s%s", sep, items[i].id);
			b += (size_t)snprintf(lim + b, cap - b, "%s%u", sep, items[i].limit);
			c += (size_t)snprintf(set + c, cap - c, "%s%" PRId64, sep, items[i].settle);
			d += (size_t)snprintf(want + d, cap - d, "%s%" PRId64, sep, items[i].want);
			e += (size_t)snprintf(give + e, cap - e, "%s%" PRId64, sep, items[i].give);
		}
		memcpy(ids + a, "}", 2);
		memcpy(lim + b, "}", 2);
		memcpy(set + c, "}", 2);
		memcpy(want + d, "}", 2);
		memcpy(give + e, "}", 2);
		{
			const char *p[5] = { ids, lim, set, want, give };
			res = up_query(u, "SELECT key_id, granted, wait_us FROM apikey.lease($1::text[], $2::integer[],"
			               " $3::integer[], $4::integer[], $5::integer[])", 5, p, &r);
		}
	}
	if (res && PQntuples(res) == (int)n) {
		for (size_t i = 0; i < n; i++) {
			/* the function answers in the order it was given */
			int64_t g = up_parse_int(PQgetvalue(res, (int)i, 1), 0, INT32_MAX);
			int64_t w = up_parse_int(PQgetvalue(res, (int)i, 2), 0, INT64_MAX);
			settle_item(l, &items[i], true, g < 0 ? 0 : g, w < 0 ? 0 : w, now_us);
		}
		__atomic_store_n(&l->last_answer_us, now_us, __ATOMIC_RELAXED);
		__atomic_store_n(&l->up, true, __ATOMIC_RELAXED);
		__atomic_add_fetch(&l->rounds, 1, __ATOMIC_RELAXED);
	} else {
		for (size_t i = 0; i < n; i++)
			settle_item(l, &items[i], false, 0, 0, now_us);
		__atomic_add_fetch(&l->errors, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&l->up, false, __ATOMIC_RELAXED);
		if (r == 0)
			r = APIKEY_ERR_UPSTREAM;
	}
	PQclear(res);
	free(ids);
	free(lim);
	free(set);
	free(want);
	free(give);
	free(items);
	return r;
}

void fl_stats(struct fleet_limit *l, struct fl_stats *st)
{
	st->keys = __atomic_load_n(&l->n, __ATOMIC_RELAXED);
	st->hosts = __atomic_load_n(&l->hosts, __ATOMIC_RELAXED);
	st->rounds = __atomic_load_n(&l->rounds, __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&l->errors, __ATOMIC_RELAXED);
	st->credit_used = __atomic_load_n(&l->credit_used, __ATOMIC_RELAXED);
	st->refused = __atomic_load_n(&l->refused, __ATOMIC_RELAXED);
	st->last_answer_us = __atomic_load_n(&l->last_answer_us, __ATOMIC_RELAXED);
}

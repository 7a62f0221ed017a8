/* ratelimit.c — per-key requests-per-minute limits by GCRA: one timestamp of
 * state per key, kept in SQLite (PAM, CLI) or in memory (the sidecar). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define LIMITER_BUCKETS 65536
#define LIMITER_LOCKS 64

#define MINUTE_US 60000000LL
/* An entry is dropped only when its bucket has been full for this long, so
 * a request whose clock read lags another thread's by less cannot find a
 * fresh entry where a charged one was. */
#define SWEEP_MARGIN_US 1000000LL

static uint32_t ceil_secs(int64_t us)
{
	return us <= 0 ? 0 : (uint32_t)((us + 999999) / 1000000);
}

/*
 * Emission interval T = 60 s / limit, burst = limit: a fresh key may spend
 * its whole minute at once, then one request every T.  tat ("theoretical
 * arrival time") is when the bucket would be empty again.
 */
void apikey_gcra(int64_t *tat_us, int64_t now, uint32_t per_minute, struct apikey_ratelimit *out)
{
	uint32_t limit = per_minute ? per_minute : 1;
	int64_t t = MINUTE_US / limit;        /* µs per request, >= 60 */
	int64_t tau = MINUTE_US;              /* the whole window */
	int64_t tat = *tat_us > now ? *tat_us : now;
	int64_t next = tat + t;

	memset(out, 0, sizeof(*out));
	out->limit = limit;
	if (next - now > tau) {
		out->allowed = false;
		out->remaining = 0;
		out->retry_after_s = ceil_secs(next - tau - now);
		if (out->retry_after_s == 0)
			out->retry_after_s = 1;
		out->reset_s = ceil_secs(tat - now);
		return;
	}
	*tat_us = next;
	out->allowed = true;
	out->remaining = (uint32_t)((tau - (next - now)) / t);
	if (out->remaining > limit)
		out->remaining = limit;
	out->reset_s = ceil_secs(next - now);
}

/*
 * A key's limit was edited (apikey_key_update): the state keeps standing for
 * the same number of requests.  The debt tat - now is that many emission
 * intervals of the old limit; it becomes as many of the new one, so a raise
 * applies from the next request (1 used of 600, not the old limit's full
 * minute) and a cut from the next one too.
 */
void apikey_gcra_rescale(int64_t *tat_us, int64_t now_us, uint32_t old_per_minute, uint32_t new_per_minute)
{
	int64_t debt = *tat_us - now_us;

	if (debt <= 0 || !old_per_minute || !new_per_minute || old_per_minute == new_per_minute)
		return;
	/* debt <= 2 minutes of µs, limits <= 1e6: the product fits */
	*tat_us = now_us + debt * (int64_t)old_per_minute / (int64_t)new_per_minute;
}

/*
 * The limiter: LIMITER_LOCKS stripes, each a map key id → tat under its own
 * lock, each holding at most max_entries / LIMITER_LOCKS keys.  A key whose
 * tat is not after now has a full bucket: its entry says nothing a fresh
 * one would not, so a stripe at its bound first drops those (full for a
 * second, SWEEP_MARGIN_US).  If none can
 * go (every key in the stripe was charged within its emission interval), a
 * new key is refused (APIKEY_ERR_FULL: UNAVAILABLE) rather than tracked by
 * forgetting another key's charges.  The sweep remembers the earliest tat
 * it kept, so a full stripe is not swept again before something can go.
 */
/* One tracked key: its tat, and the limit it was charged under (a change
 * of limit is rescaled, apikey_gcra_rescale).  tat first: the sweep reads it. */
struct entry {
	int64_t tat_us;
	uint32_t per_minute;
};

struct stripe {
	pthread_mutex_t lock;
	struct map *m;
	size_t max;
	int64_t next_sweep_us;   /* no entry can be dropped before this */
};

struct apikey_limiter {
	struct stripe stripes[LIMITER_LOCKS];
};

int apikey_limiter_new(struct apikey_limiter **out, size_t max_entries)
{
	struct apikey_limiter *l = calloc(1, sizeof(*l));
	size_t per = (max_entries ? max_entries : APIKEY_LIMITER_ENTRIES_DEFAULT) / LIMITER_LOCKS;

	*out = NULL;
	if (!l)
		return APIKEY_ERR_NOMEM;
	for (int i = 0; i < LIMITER_LOCKS; i++) {
		pthread_mutex_init(&l->stripes[i].lock, NULL);
		l->stripes[i].max = per ? per : 1;
		l->stripes[i].m = map_new(LIMITER_BUCKETS / LIMITER_LOCKS);
		if (!l->stripes[i].m) {
			apikey_limiter_free(l);
			return APIKEY_ERR_NOMEM;
		}
	}
	*out = l;
	return 0;
}

void apikey_limiter_free(struct apikey_limiter *l)
{
	if (!l)
		return;
	for (int i = 0; i < LIMITER_LOCKS; i++) {
		map_free(l->stripes[i].m, free);
		pthread_mutex_destroy(&l->stripes[i].lock);
	}
	free(l);
}

struct sweep_ctx { int64_t now_us, earliest_kept_us; };

static bool bucket_full(void *vctx, void *value)
{
	struct sweep_ctx *c = vctx;
	int64_t tat = ((struct entry *)value)->tat_us;

	if (tat <= c->now_us - SWEEP_MARGIN_US)
		return true;
	if (tat < c->earliest_kept_us)
		c->earliest_kept_us = tat;
	return false;
}

/* Room for one more key in a stripe (its lock held): 0 or APIKEY_ERR_FULL. */
static int make_room(struct stripe *st, int64_t now_us)
{
	struct sweep_ctx c = { now_us, INT64_MAX };

	if (map_count(st->m) < st->max)
		return 0;
	if (now_us < st->next_sweep_us)
		return APIKEY_ERR_FULL;
	map_sweep(st->m, bucket_full, &c, free);
	st->next_sweep_us = c.earliest_kept_us == INT64_MAX ? now_us : c.earliest_kept_us + SWEEP_MARGIN_US;
	return map_count(st->m) < st->max ? 0 : APIKEY_ERR_FULL;
}

int apikey_limiter_check(struct apikey_limiter *l, const char *key_id, int64_t now_us,
                         uint32_t per_minute, struct apikey_ratelimit *out)
{
	size_t n = strlen(key_id);
	struct stripe *st = &l->stripes[(unsigned char)key_id[n ? n - 1 : 0] % LIMITER_LOCKS];
	struct entry *e;
	int r = 0;

	pthread_mutex_lock(&st->lock);
	e = map_get(st->m, key_id, n);
	if (!e) {
		if ((r = make_room(st, now_us)) == 0 && !(e = calloc(1, sizeof(*e))))
			r = APIKEY_ERR_NOMEM;
		if (r == 0 && map_put(st->m, key_id, n, e) == (void *)-1) {
			free(e);
			r = APIKEY_ERR_NOMEM;
		}
	}
	if (r == 0) {
		apikey_gcra_rescale(&e->tat_us, now_us, e->per_minute, per_minute);
		e->per_minute = per_minute;
		apikey_gcra(&e->tat_us, now_us, per_minute, out);
	}
	pthread_mutex_unlock(&st->lock);
	if (r != 0) {
		/* Cannot track this key: refuse rather than not limit it. */
		memset(out, 0, sizeof(*out));
		out->limit = per_minute;
	}
	return r;
}

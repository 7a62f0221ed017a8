/* ratelimit.c — per-key requests-per-minute limits by GCRA: one timestamp of
 * state per key, kept in SQLite (PAM, CLI) or in memory (the sidecar). */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define LIMITER_BUCKETS 65536
#define LIMITER_LOCKS 64

#define MINUTE_US 60000000LL

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
		out->retry_after = ceil_secs(next - tau - now);
		if (out->retry_after == 0)
			out->retry_after = 1;
		out->reset = ceil_secs(tat - now);
		return;
	}
	*tat_us = next;
	out->allowed = true;
	out->remaining = (uint32_t)((tau - (next - now)) / t);
	if (out->remaining > limit)
		out->remaining = limit;
	out->reset = ceil_secs(next - now);
}

struct apikey_limiter {
	pthread_mutex_t locks[LIMITER_LOCKS];
	struct map *maps[LIMITER_LOCKS];   /* one map per lock: no shared buckets */
};

int apikey_limiter_new(struct apikey_limiter **out)
{
	struct apikey_limiter *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return APIKEY_ERR_NOMEM;
	for (int i = 0; i < LIMITER_LOCKS; i++) {
		pthread_mutex_init(&l->locks[i], NULL);
		l->maps[i] = map_new(LIMITER_BUCKETS / LIMITER_LOCKS);
		if (!l->maps[i]) {
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
		map_free(l->maps[i], free);
		pthread_mutex_destroy(&l->locks[i]);
	}
	free(l);
}

void apikey_limiter_check(struct apikey_limiter *l, const char *key_id, int64_t now_us,
                          uint32_t per_minute, struct apikey_ratelimit *out)
{
	size_t n = strlen(key_id);
	unsigned stripe = (unsigned char)key_id[n ? n - 1 : 0] % LIMITER_LOCKS;
	int64_t *tat;

	pthread_mutex_lock(&l->locks[stripe]);
	tat = map_get(l->maps[stripe], key_id, n);
	if (!tat) {
		tat = calloc(1, sizeof(*tat));
		if (!tat || map_put(l->maps[stripe], key_id, n, tat) == (void *)-1) {
			/* No memory to track this key: refuse rather than not limit. */
			free(tat);
			pthread_mutex_unlock(&l->locks[stripe]);
			memset(out, 0, sizeof(*out));
			out->limit = per_minute;
			out->retry_after = 1;
			return;
		}
	}
	apikey_gcra(tat, now_us, per_minute, out);
	pthread_mutex_unlock(&l->locks[stripe]);
}

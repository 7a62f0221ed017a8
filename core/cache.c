/* cache.c — verified-key records by HMAC digest, shared by the sidecar's
 * threads so a repeat key costs no SQL.  Emptied (and its epoch advanced)
 * whenever the store reports a change; an insert from a lookup that began
 * before that clear is dropped, so a stale record can never come back. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define FIRST_BUCKETS 64           /* the maps grow from here and shrink back at a clear */
/* Digests of keys an imported key's slow hash was checked against and did
 * not match (core/slowhash.c): bounded, emptied with the records. */
#define NEGATIVE_MAX 4096
/* Entries stop before the metadata: verification never reads it. */
#define ENTRY_SIZE offsetof(struct key_record, info.metadata)

struct apikey_cache {
	pthread_rwlock_t lock;
	struct map *m;
	struct map *neg;              /* digest → (void *)1 */
	size_t max;
	uint64_t epoch;
	uint64_t hits, misses, clears;   /* atomics */
};

int apikey_cache_new(struct apikey_cache **out, size_t max_entries)
{
	struct apikey_cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c || !(c->m = map_new(FIRST_BUCKETS)) || !(c->neg = map_new(FIRST_BUCKETS))) {
		if (c)
			map_free(c->m, free);
		free(c);
		return APIKEY_ERR_NOMEM;
	}
	pthread_rwlock_init(&c->lock, NULL);
	c->max = max_entries ? max_entries : APIKEY_CACHE_ENTRIES_DEFAULT;
	*out = c;
	return 0;
}

void apikey_cache_free(struct apikey_cache *c)
{
	if (!c)
		return;
	map_free(c->m, free);
	map_free(c->neg, NULL);
	pthread_rwlock_destroy(&c->lock);
	free(c);
}

void apikey_cache_clear(struct apikey_cache *c)
{
	pthread_rwlock_wrlock(&c->lock);
	map_clear(c->m, free);
	map_clear(c->neg, NULL);
	c->epoch++;
	c->clears++;
	pthread_rwlock_unlock(&c->lock);
}

/* One read lock for both answers: the record (if any) and the epoch a later
 * cache_put of this lookup must present. */
bool cache_get(struct apikey_cache *c, const unsigned char d[DIGEST_LEN], struct key_record *out,
               uint64_t *epoch)
{
	const struct key_record *e;

	pthread_rwlock_rdlock(&c->lock);
	*epoch = c->epoch;
	e = map_get(c->m, d, DIGEST_LEN);
	if (e) {
		memcpy(out, e, ENTRY_SIZE);
		out->info.metadata[0] = '\0';
	}
	pthread_rwlock_unlock(&c->lock);
	__atomic_add_fetch(e ? &c->hits : &c->misses, 1, __ATOMIC_RELAXED);
	return e != NULL;
}

void cache_put(struct apikey_cache *c, uint64_t epoch, const unsigned char d[DIGEST_LEN],
               const struct key_record *rec)
{
	struct key_record *e = malloc(ENTRY_SIZE);
	void *old;

	if (!e)
		return;
	memcpy(e, rec, ENTRY_SIZE);
	pthread_rwlock_wrlock(&c->lock);
	if (epoch != c->epoch) {       /* cleared since this lookup began */
		pthread_rwlock_unlock(&c->lock);
		free(e);
		return;
	}
	if (map_count(c->m) >= c->max)
		map_clear(c->m, free);
	old = map_put(c->m, d, DIGEST_LEN, e);
	pthread_rwlock_unlock(&c->lock);
	if (old == (void *)-1)
		free(e);
	else
		free(old);
}

bool cache_negative(struct apikey_cache *c, const unsigned char d[DIGEST_LEN])
{
	bool hit;

	pthread_rwlock_rdlock(&c->lock);
	hit = map_get(c->neg, d, DIGEST_LEN) != NULL;
	pthread_rwlock_unlock(&c->lock);
	return hit;
}

void cache_put_negative(struct apikey_cache *c, uint64_t epoch, const unsigned char d[DIGEST_LEN])
{
	pthread_rwlock_wrlock(&c->lock);
	if (epoch == c->epoch) {       /* not cleared since the check began */
		if (map_count(c->neg) >= NEGATIVE_MAX)
			map_clear(c->neg, NULL);
		map_put(c->neg, d, DIGEST_LEN, (void *)1);
	}
	pthread_rwlock_unlock(&c->lock);
}

void apikey_cache_stats(struct apikey_cache *c, struct apikey_cache_stats *out)
{
	pthread_rwlock_rdlock(&c->lock);
	out->entries = map_count(c->m);
	out->clears = c->clears;
	pthread_rwlock_unlock(&c->lock);
	out->hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
	out->misses = __atomic_load_n(&c->misses, __ATOMIC_RELAXED);
}

/* cache.c — verified-key records by HMAC digest, shared by the sidecar's
 * threads so a repeat key costs no SQL.
 *
 * Every change to keys or accounts moves the store's generation (a fresh
 * random value, core/store.c).  The cache is labelled with the generation
 * its records agree with.  A thread that sees the store at another
 * generation empties it (cache_sync); a fleet replica's follower, which
 * knows exactly which keys its commit changed, removes only those and moves
 * the label (cache_advance), so a busy upstream does not empty the
 * cache a thousand times a second.  Either way the epoch advances: an
 * insert from a lookup that began before is dropped, so a stale record can
 * never come back. */
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
	bool gen_known;               /* the records agree with generation gen */
	int64_t gen;
	uint64_t hits, misses, clears, advances;   /* atomics */
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

/* Under the write lock: empty, labelled gen (or nothing known). */
static void clear_locked(struct apikey_cache *c, bool known, int64_t gen)
{
	map_clear(c->m, free);
	map_clear(c->neg, NULL);
	c->epoch++;
	c->clears++;
	c->gen_known = known;
	c->gen = gen;
}

void apikey_cache_clear(struct apikey_cache *c)
{
	pthread_rwlock_wrlock(&c->lock);
	clear_locked(c, false, 0);
	pthread_rwlock_unlock(&c->lock);
}

static bool labelled(const struct apikey_cache *c, int64_t gen)
{
	return c->gen_known && c->gen == gen;
}

/* Emptied by a change it cannot trust the generation for (a write beside
 * SQLite), the cache still agrees with gen: what goes in after the clear
 * is read after it. */
void cache_sync(struct apikey_cache *c, bool exact, bool known, int64_t gen)
{
	bool current;

	pthread_rwlock_rdlock(&c->lock);
	current = exact && known && labelled(c, gen);
	pthread_rwlock_unlock(&c->lock);
	if (current)
		return;                   /* another thread, or the follower, got there first */
	pthread_rwlock_wrlock(&c->lock);
	if (!exact || !known || !labelled(c, gen))
		clear_locked(c, known, gen);
	pthread_rwlock_unlock(&c->lock);
}

/*
 * One commit took the store from generation from to to and changed the
 * keys whose digests are d (exact), or more than that (!exact).  Called
 * after the commit, so a thread may have seen to and emptied the cache
 * already: then records put since were read after the commit.  Records
 * labelled from agree with the store before the commit, and the commit
 * changed only d: removing d makes them agree with to.
 */
void cache_advance(struct apikey_cache *c, int64_t from, int64_t to, const unsigned char (*d)[DIGEST_LEN],
                   size_t n, bool exact)
{
	pthread_rwlock_wrlock(&c->lock);
	if (labelled(c, to)) {
		/* emptied for to by a thread that saw the commit first, or nothing changed */
	} else if (exact && labelled(c, from)) {
		for (size_t i = 0; i < n; i++)
			free(map_del(c->m, d[i], DIGEST_LEN));
		map_clear(c->neg, NULL);  /* a new imported key may match a digest once refused */
		c->epoch++;
		c->gen = to;
		c->advances++;
	} else {
		clear_locked(c, true, to);
	}
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
	out->advances = c->advances;
	pthread_rwlock_unlock(&c->lock);
	out->hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
	out->misses = __atomic_load_n(&c->misses, __ATOMIC_RELAXED);
}

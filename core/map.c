/* map.c — a small chained hash map from byte strings to pointers, used by
 * the cache, the limiter and the usage buffer (each under its own lock).
 * Keys are key ids and HMAC digests: random, not chosen by a client, so a
 * plain FNV-1a hash cannot be steered into one bucket.
 *
 * The bucket array grows with the entries (doubling past one entry a
 * bucket) and map_clear shrinks it back to its first size, so a clear costs
 * what the map holds, not the most it ever held: apikeyd empties its cache
 * whenever a key changes that its own follower did not name (core/cache.c). */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

struct entry {
	struct entry *next;
	void *value;
	size_t klen;
	unsigned char key[];
};

struct map {
	struct entry **b;
	size_t nb, count;        /* nb: a power of two */
	size_t first_nb;         /* what map_clear shrinks back to */
};

static size_t hash(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 32));   /* the high bits too: buckets use the low ones */
}

static struct entry **bucket(const struct map *m, const void *key, size_t klen)
{
	return &m->b[hash(key, klen) & (m->nb - 1)];
}

/* Rehash into nb buckets; out of memory, the map keeps its buckets (longer
 * chains, still correct). */
static void resize(struct map *m, size_t nb)
{
	struct entry **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < m->nb; i++) {
		struct entry *e = m->b[i], *next;
		for (; e; e = next) {
			struct entry **slot = &b[hash(e->key, e->klen) & (nb - 1)];
			next = e->next;
			e->next = *slot;
			*slot = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

struct map *map_new(size_t buckets)
{
	struct map *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	for (m->nb = 1; m->nb < buckets; m->nb <<= 1)
		;
	m->first_nb = m->nb;
	m->b = calloc(m->nb, sizeof(*m->b));
	if (!m->b) {
		free(m);
		return NULL;
	}
	return m;
}

void map_clear(struct map *m, void (*free_value)(void *))
{
	for (size_t i = 0; m && i < m->nb; i++) {
		struct entry *e = m->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			if (free_value)
				free_value(e->value);
			free(e);
		}
		m->b[i] = NULL;
	}
	if (!m)
		return;
	m->count = 0;
	if (m->nb > m->first_nb)
		resize(m, m->first_nb);
}

void map_free(struct map *m, void (*free_value)(void *))
{
	if (!m)
		return;
	map_clear(m, free_value);
	free(m->b);
	free(m);
}

void *map_get(const struct map *m, const void *key, size_t klen)
{
	for (struct entry *e = *bucket(m, key, klen); e; e = e->next)
		if (e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e->value;
	return NULL;
}

void *map_put(struct map *m, const void *key, size_t klen, void *value)
{
	struct entry **slot = bucket(m, key, klen), *e;

	for (e = *slot; e; e = e->next)
		if (e->klen == klen && memcmp(e->key, key, klen) == 0) {
			void *old = e->value;
			e->value = value;
			return old;
		}
	e = malloc(sizeof(*e) + klen);
	if (!e)
		return (void *)-1;
	e->value = value;
	e->klen = klen;
	memcpy(e->key, key, klen);
	e->next = *slot;
	*slot = e;
	if (++m->count > m->nb)
		resize(m, m->nb * 2);
	return NULL;
}

void *map_del(struct map *m, const void *key, size_t klen)
{
	for (struct entry **link = bucket(m, key, klen), *e; (e = *link) != NULL; link = &e->next)
		if (e->klen == klen && memcmp(e->key, key, klen) == 0) {
			void *value = e->value;
			*link = e->next;
			free(e);
			m->count--;
			return value;
		}
	return NULL;
}

size_t map_count(const struct map *m)
{
	return m->count;
}

void map_each(struct map *m, void (*fn)(void *ctx, const void *key, size_t klen, void *value), void *ctx)
{
	for (size_t i = 0; i < m->nb; i++)
		for (struct entry *e = m->b[i]; e; e = e->next)
			fn(ctx, e->key, e->klen, e->value);
}

size_t map_sweep(struct map *m, bool (*drop)(void *ctx, void *value), void *ctx,
                 void (*free_value)(void *))
{
	size_t removed = 0;

	for (size_t i = 0; i < m->nb; i++) {
		struct entry **link = &m->b[i], *e;
		while ((e = *link) != NULL) {
			if (!drop(ctx, e->value)) {
				link = &e->next;
				continue;
			}
			*link = e->next;
			if (free_value)
				free_value(e->value);
			free(e);
			removed++;
		}
	}
	m->count -= removed;
	return removed;
}

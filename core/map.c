/* map.c — a small chained hash map from byte strings to pointers, used by
 * the cache, the limiter and the usage buffer (each under its own lock).
 * Keys are key ids and HMAC digests: random, not chosen by a client, so a
 * plain FNV-1a hash cannot be steered into one bucket. */
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
	size_t nb, count;
};

static size_t hash(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return (size_t)h;
}

struct map *map_new(size_t buckets)
{
	struct map *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nb = buckets ? buckets : 1024;
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
	if (m)
		m->count = 0;
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
	for (struct entry *e = m->b[hash(key, klen) % m->nb]; e; e = e->next)
		if (e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e->value;
	return NULL;
}

void *map_put(struct map *m, const void *key, size_t klen, void *value)
{
	struct entry **slot = &m->b[hash(key, klen) % m->nb], *e;

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
	m->count++;
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

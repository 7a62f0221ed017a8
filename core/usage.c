/* usage.c — record now, flush later: usage counts, failure events and
 * re-hashes of imported keys gathered in memory by the sidecar's threads and
 * written in one transaction by its flush timer (never on a request). */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "rows.h"

#define USAGE_EVENTS_MAX 4096
#define USAGE_REHASH_MAX 256
/* (key, minute) pairs counted between two flushes, at most */
#define USAGE_SERIES_MAX 65536

struct count { uint64_t n; int64_t last_s; };
/* The usage series: one entry per key and minute, a count per outcome. */
struct series_key { char id[APIKEY_ID_SIZE]; int64_t minute_s; };
struct series { uint64_t n[APIKEY_OUTCOME_COUNT]; };
struct pending_event {
	int64_t at_s;
	char key_id[APIKEY_ID_SIZE];
	char reason[32];
	char source[APIKEY_NAME_SIZE];
};
struct rehash {
	char id[APIKEY_ID_SIZE];
	unsigned char d[DIGEST_LEN];
	int64_t at_s;
	char alg[16];                  /* the scheme it replaces, for the event */
	char source[APIKEY_NAME_SIZE];
};

struct apikey_usage {
	pthread_mutex_t lock;
	struct map *counts;            /* key id → struct count */
	struct map *series;            /* struct series_key → struct series */
	struct pending_event *events;
	size_t n_events;
	struct rehash rehash[USAGE_REHASH_MAX];
	size_t n_rehash;
	uint64_t dropped;
};

int apikey_usage_new(struct apikey_usage **out)
{
	struct apikey_usage *u = calloc(1, sizeof(*u));

	*out = NULL;
	if (!u)
		return APIKEY_ERR_NOMEM;
	u->counts = map_new(4096);
	u->series = map_new(4096);
	u->events = calloc(USAGE_EVENTS_MAX, sizeof(*u->events));
	if (!u->counts || !u->series || !u->events) {
		apikey_usage_free(u);
		return APIKEY_ERR_NOMEM;
	}
	pthread_mutex_init(&u->lock, NULL);
	*out = u;
	return 0;
}

void apikey_usage_free(struct apikey_usage *u)
{
	if (!u)
		return;
	map_free(u->counts, free);
	map_free(u->series, free);
	free(u->events);
	OPENSSL_cleanse(u->rehash, sizeof(u->rehash));
	pthread_mutex_destroy(&u->lock);
	free(u);
}

/* Caller holds the lock. */
static void add_count(struct apikey_usage *u, const char *id, uint64_t n, int64_t last_s)
{
	struct count *c = map_get(u->counts, id, strlen(id));

	if (!c) {
		if (!(c = calloc(1, sizeof(*c))) || map_put(u->counts, id, strlen(id), c) == (void *)-1) {
			free(c);
			u->dropped += n;
			return;
		}
	}
	c->n += n;
	if (last_s > c->last_s)
		c->last_s = last_s;
}

/* Caller holds the lock.  A key's count of outcome o in a minute. */
static void add_series(struct apikey_usage *u, const struct series_key *k, enum apikey_outcome o, uint64_t n)
{
	struct series *v = map_get(u->series, k, sizeof(*k));

	if ((unsigned)o >= APIKEY_OUTCOME_COUNT)
		return;
	if (!v) {
		if (map_count(u->series) >= USAGE_SERIES_MAX || !(v = calloc(1, sizeof(*v))) ||
		    map_put(u->series, k, sizeof(*k), v) == (void *)-1) {
			free(v);
			u->dropped += n;
			return;
		}
	}
	v->n[o] += n;
}

void apikey_usage_record(struct apikey_usage *u, const char *key_id, int64_t now_s,
                         enum apikey_outcome o, const char *source)
{
	struct series_key sk;

	pthread_mutex_lock(&u->lock);
	if (key_id && key_id[0]) {    /* a stored key: counted per minute and outcome */
		memset(&sk, 0, sizeof(sk));   /* the whole struct is the map key */
		copy_str(sk.id, sizeof(sk.id), key_id);
		sk.minute_s = now_s - now_s % 60;
		add_series(u, &sk, o, 1);
	}
	if (o == APIKEY_VALID) {
		add_count(u, key_id, 1, now_s);
	} else if (u->n_events < USAGE_EVENTS_MAX) {
		struct pending_event *e = &u->events[u->n_events++];
		e->at_s = now_s;
		copy_str(e->key_id, sizeof(e->key_id), key_id);
		copy_str(e->reason, sizeof(e->reason), apikey_outcome_code(o));
		copy_str(e->source, sizeof(e->source), source ? source : "");
	} else {
		u->dropped++;
	}
	pthread_mutex_unlock(&u->lock);
}

void usage_queue_rehash(struct apikey_usage *u, const struct apikey_key_info *k, const unsigned char d[DIGEST_LEN],
                        int64_t now_s, const char *source)
{
	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->n_rehash; i++)
		if (!strcmp(u->rehash[i].id, k->id))
			goto out;
	if (u->n_rehash < USAGE_REHASH_MAX) {
		struct rehash *q = &u->rehash[u->n_rehash++];
		copy_str(q->id, sizeof(q->id), k->id);
		memcpy(q->d, d, DIGEST_LEN);
		q->at_s = now_s;
		copy_str(q->alg, sizeof(q->alg), k->hash_alg);
		copy_str(q->source, sizeof(q->source), source ? source : "");
	}
out:
	pthread_mutex_unlock(&u->lock);
}

struct batch {
	struct map *counts;
	struct map *series;
	struct pending_event *events;
	size_t n_events, n_rehash;
	struct rehash rehash[USAGE_REHASH_MAX];
};

struct write_ctx { struct apikey_store *s; int r; };

static void write_count(void *vctx, const void *key, size_t klen, void *value)
{
	struct write_ctx *w = vctx;
	struct count *c = value;
	char id[APIKEY_ID_SIZE];

	if (w->r != 0 || klen >= sizeof(id))
		return;
	memcpy(id, key, klen);
	id[klen] = '\0';
	w->r = row_usage_add(w->s, id, c->n, c->last_s);
}

static void write_series(void *vctx, const void *key, size_t klen, void *value)
{
	struct write_ctx *w = vctx;
	const struct series_key *k = key;
	const struct series *v = value;

	for (int o = 0; w->r == 0 && klen == sizeof(*k) && o < APIKEY_OUTCOME_COUNT; o++)
		if (v->n[o])
			w->r = row_series_add(w->s, k->id, k->minute_s, (enum apikey_outcome)o, v->n[o]);
}

static int write_batch(struct apikey_store *s, struct batch *b)
{
	struct write_ctx w = { s, 0 };
	int r;

	if ((r = row_begin(s)) != 0)
		return r;
	map_each(b->counts, write_count, &w);
	map_each(b->series, write_series, &w);
	r = w.r;
	for (size_t i = 0; r == 0 && i < b->n_events; i++) {
		struct event_row e = {
			.at_s = b->events[i].at_s, .key_id = b->events[i].key_id, .event = "failed",
			.reason = b->events[i].reason, .source = b->events[i].source,
		};
		r = row_event_append(s, &e);
	}
	for (size_t i = 0; r == 0 && i < b->n_rehash; i++) {
		const struct rehash *q = &b->rehash[i];
		struct event_row e = { .at_s = q->at_s, .key_id = q->id, .event = "rehashed",
		                       .reason = q->alg, .source = q->source };
		/* NOT_FOUND: another process re-hashed it first (and wrote the event) */
		r = row_key_set_digest(s, q->id, q->d);
		if (r == 0)
			r = row_event_append(s, &e);
		else if (r == APIKEY_ERR_NOT_FOUND)
			r = 0;
	}
	if (r != 0) {
		row_rollback(s);
		return r;
	}
	return row_commit(s);
}

struct merge_ctx { struct apikey_usage *u; };

static void merge_count(void *vctx, const void *key, size_t klen, void *value)
{
	struct merge_ctx *m = vctx;
	struct count *c = value;
	char id[APIKEY_ID_SIZE];

	if (klen >= sizeof(id))
		return;
	memcpy(id, key, klen);
	id[klen] = '\0';
	add_count(m->u, id, c->n, c->last_s);
}

static void merge_series(void *vctx, const void *key, size_t klen, void *value)
{
	struct merge_ctx *m = vctx;
	const struct series *v = value;

	for (int o = 0; klen == sizeof(struct series_key) && o < APIKEY_OUTCOME_COUNT; o++)
		if (v->n[o])
			add_series(m->u, key, (enum apikey_outcome)o, v->n[o]);
}

int apikey_usage_flush(struct apikey_usage *u, struct apikey_store *s)
{
	struct batch *b = calloc(1, sizeof(*b));
	struct map *fresh = map_new(4096), *fresh_series = map_new(4096);
	struct pending_event *fresh_events = calloc(USAGE_EVENTS_MAX, sizeof(*fresh_events));
	int r = APIKEY_ERR_NOMEM;

	if (!b || !fresh || !fresh_series || !fresh_events)
		goto out;
	/* Swap the buffers out under the lock; write without holding it. */
	pthread_mutex_lock(&u->lock);
	b->counts = u->counts;
	b->series = u->series;
	b->events = u->events;
	b->n_events = u->n_events;
	b->n_rehash = u->n_rehash;
	memcpy(b->rehash, u->rehash, sizeof(b->rehash));
	u->counts = fresh;
	u->series = fresh_series;
	u->events = fresh_events;
	u->n_events = u->n_rehash = 0;
	pthread_mutex_unlock(&u->lock);
	fresh = fresh_series = NULL;
	fresh_events = NULL;

	if (map_count(b->counts) == 0 && map_count(b->series) == 0 && b->n_events == 0 && b->n_rehash == 0)
		r = 0;
	else
		r = write_batch(s, b);
	if (r != 0) {   /* keep everything for the next try */
		struct merge_ctx m = { u };
		pthread_mutex_lock(&u->lock);
		map_each(b->counts, merge_count, &m);
		map_each(b->series, merge_series, &m);
		for (size_t i = 0; i < b->n_events; i++) {
			if (u->n_events < USAGE_EVENTS_MAX)
				u->events[u->n_events++] = b->events[i];
			else
				u->dropped++;
		}
		for (size_t i = 0; i < b->n_rehash && u->n_rehash < USAGE_REHASH_MAX; i++)
			u->rehash[u->n_rehash++] = b->rehash[i];
		pthread_mutex_unlock(&u->lock);
	}
	map_free(b->counts, free);
	map_free(b->series, free);
	free(b->events);
out:
	if (b)
		OPENSSL_cleanse(b->rehash, sizeof(b->rehash));
	free(b);
	map_free(fresh, free);
	map_free(fresh_series, free);
	free(fresh_events);
	return r;
}

void apikey_usage_forget_rehash(struct apikey_usage *u)
{
	pthread_mutex_lock(&u->lock);
	OPENSSL_cleanse(u->rehash, sizeof(u->rehash));
	u->n_rehash = 0;
	pthread_mutex_unlock(&u->lock);
}

uint64_t apikey_usage_dropped(const struct apikey_usage *u)
{
	return __atomic_load_n(&u->dropped, __ATOMIC_RELAXED);
}

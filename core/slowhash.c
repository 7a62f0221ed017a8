/* slowhash.c — imported keys whose hash costs milliseconds (bcrypt,
 * argon2id), checked off a server's request path: a bounded queue, a budget
 * per hint, a runner that hashes at most a quarter of the time, and the
 * verified-key cache's two answers (a record for a match, "no imported key
 * matches" for a mismatch).  Issue 9 item 4; docs/DESIGN.md "Imports". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "rows.h"

#define SLOW_QUEUE_MAX 16           /* keys waiting for a check, process-wide */
#define SLOW_HINT_LEN APIKEY_IMPORT_HINT_MIN   /* the budget's unit: a key's first 6 characters */
#define SLOW_HINT_PER_S 2           /* checks a second per hint */
#define SLOW_HINTS_MAX 1024         /* hints with a budget in use */
#define SLOW_DUTY 3                 /* the runner sleeps 3x each check: <= 25 % of a core */
#define SLOW_SLEEP_MAX_NS 1000000000LL

struct slow_job {
	unsigned char d[DIGEST_LEN];
	char key[APIKEY_KEY_MAX + 1];
	size_t len;
	char hint[SLOW_HINT_LEN];     /* the budget's key (the first characters, non-secret) */
	size_t hint_len;
	uint64_t epoch;               /* the cache's, when the lookup began */
	char source[APIKEY_NAME_SIZE];
};

struct hint_budget { int64_t next_us; bool queued; };

struct apikey_slow {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct slow_job q[SLOW_QUEUE_MAX];
	size_t head, n;
	unsigned char running[DIGEST_LEN];   /* the job being checked */
	bool busy, stopping;
	struct map *hints;            /* first SLOW_HINT_LEN characters → struct hint_budget */
	uint64_t queued, checked, matched, refused;
};

int apikey_slow_new(struct apikey_slow **out)
{
	struct apikey_slow *q = calloc(1, sizeof(*q));

	*out = NULL;
	if (!q || !(q->hints = map_new(SLOW_HINTS_MAX))) {
		free(q);
		return APIKEY_ERR_NOMEM;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	*out = q;
	return 0;
}

void apikey_slow_free(struct apikey_slow *q)
{
	if (!q)
		return;
	OPENSSL_cleanse(q->q, sizeof(q->q));
	map_free(q->hints, free);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

void apikey_slow_stop(struct apikey_slow *q)
{
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Caller holds the lock. */
static bool waiting(const struct apikey_slow *q, const unsigned char d[DIGEST_LEN])
{
	if (q->busy && !CRYPTO_memcmp(q->running, d, DIGEST_LEN))
		return true;
	for (size_t i = 0; i < q->n; i++)
		if (!CRYPTO_memcmp(q->q[(q->head + i) % SLOW_QUEUE_MAX].d, d, DIGEST_LEN))
			return true;
	return false;
}

static bool idle_budget(void *ctx, void *value)
{
	(void)ctx;
	return !((struct hint_budget *)value)->queued;
}

/* Caller holds the lock: the hint's budget, made on first use (NULL when
 * out of memory). */
static struct hint_budget *budget(struct apikey_slow *q, const char *key, size_t hl)
{
	struct hint_budget *b = map_get(q->hints, key, hl);

	if (b)
		return b;
	if (map_count(q->hints) >= SLOW_HINTS_MAX)
		map_sweep(q->hints, idle_budget, NULL, free);  /* budgets are short-lived: start over */
	if (!(b = calloc(1, sizeof(*b))) || map_put(q->hints, key, hl, b) == (void *)-1) {
		free(b);
		return NULL;
	}
	return b;
}

bool slow_inline_ok(struct apikey_slow *q, const char *key, size_t len)
{
	size_t hl = len < SLOW_HINT_LEN ? len : SLOW_HINT_LEN;
	int64_t now = mono_us();
	struct hint_budget *b;
	bool ok = false;

	pthread_mutex_lock(&q->lock);
	if ((b = budget(q, key, hl)) && !b->queued && now >= b->next_us) {
		b->next_us = now + 1000000 / SLOW_HINT_PER_S;
		ok = true;
	}
	pthread_mutex_unlock(&q->lock);
	return ok;
}

int slow_enqueue(struct apikey_slow *q, const unsigned char d[DIGEST_LEN], const char *key, size_t len,
                 uint64_t epoch, const char *source)
{
	size_t hl = len < SLOW_HINT_LEN ? len : SLOW_HINT_LEN;
	struct hint_budget *b;
	int64_t now = mono_us();
	int r = APIKEY_ERR_BUSY;

	if (len > APIKEY_KEY_MAX)
		return APIKEY_ERR_BUSY;
	pthread_mutex_lock(&q->lock);
	if (waiting(q, d)) {
		r = APIKEY_ERR_PENDING;        /* the same key, already queued */
		goto out;
	}
	if (q->stopping || q->n == SLOW_QUEUE_MAX)
		goto refuse;
	if (!(b = budget(q, key, hl)))
		goto refuse;
	if (b->queued || now < b->next_us)
		goto refuse;                   /* one at a time per hint, SLOW_HINT_PER_S a second */
	b->queued = true;
	b->next_us = now + 1000000 / SLOW_HINT_PER_S;
	struct slow_job *j = &q->q[(q->head + q->n++) % SLOW_QUEUE_MAX];
	memcpy(j->d, d, DIGEST_LEN);
	memcpy(j->key, key, len);
	j->key[len] = '\0';
	j->len = len;
	memcpy(j->hint, key, hl);
	j->hint_len = hl;
	j->epoch = epoch;
	copy_str(j->source, sizeof(j->source), source ? source : "");
	q->queued++;
	pthread_cond_signal(&q->cond);
	r = APIKEY_ERR_PENDING;
	goto out;
refuse:
	q->refused++;
out:
	pthread_mutex_unlock(&q->lock);
	return r;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Caller holds the lock: wait up to wait_ms for a job or a stop. */
static void wait_job(struct apikey_slow *q, unsigned wait_ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (!q->n && !q->stopping)
		if (pthread_cond_timedwait(&q->cond, &q->lock, &until) == ETIMEDOUT)
			break;
}

int apikey_slow_wait(struct apikey_slow *q, unsigned wait_ms)
{
	int r;

	pthread_mutex_lock(&q->lock);
	wait_job(q, wait_ms);
	r = q->stopping ? APIKEY_ERR_CONFLICT : q->n ? 0 : APIKEY_ERR_NOT_FOUND;
	pthread_mutex_unlock(&q->lock);
	return r;
}

int apikey_slow_run(struct apikey_slow *q, const struct apikey_verifier *v, unsigned wait_ms)
{
	struct slow_job job;
	struct key_record rec;
	struct hint_budget *b;
	int64_t t0, took;
	int r;

	pthread_mutex_lock(&q->lock);
	wait_job(q, wait_ms);
	if (q->stopping || !q->n) {
		r = q->stopping ? APIKEY_ERR_CONFLICT : APIKEY_ERR_NOT_FOUND;
		pthread_mutex_unlock(&q->lock);
		return r;
	}
	job = q->q[q->head];
	OPENSSL_cleanse(&q->q[q->head], sizeof(q->q[q->head]));
	q->head = (q->head + 1) % SLOW_QUEUE_MAX;
	q->n--;
	memcpy(q->running, job.d, DIGEST_LEN);
	q->busy = true;
	pthread_mutex_unlock(&q->lock);

	t0 = mono_us();
	r = row_key_by_foreign(v->store, job.key, job.len, ROW_FOREIGN_ALL, NULL, &rec);
	if (r == 0) {
		/* the next request with this key is answered from the cache; the
		 * usage flush writes its HMAC (a record checked by one file is
		 * never written to another: a replaced store drops both) */
		if (v->cache)
			cache_put(v->cache, job.epoch, job.d, &rec);
		if (v->usage)
			usage_queue_rehash(v->usage, &rec.info, job.d, now_ms() / 1000, job.source);
	} else if (r == APIKEY_ERR_NOT_FOUND && v->cache) {
		cache_put_negative(v->cache, job.epoch, job.d);
	}
	took = mono_us() - t0;
	OPENSSL_cleanse(job.key, sizeof(job.key));
	OPENSSL_cleanse(&rec, sizeof(rec));

	pthread_mutex_lock(&q->lock);
	q->busy = false;
	q->checked++;
	q->matched += r == 0;
	if ((b = map_get(q->hints, job.hint, job.hint_len)) != NULL)
		b->queued = false;
	pthread_mutex_unlock(&q->lock);
	sleep_ns(took * 1000 * SLOW_DUTY < SLOW_SLEEP_MAX_NS ? took * 1000 * SLOW_DUTY : SLOW_SLEEP_MAX_NS);
	return 0;
}

void apikey_slow_stats(struct apikey_slow *q, struct apikey_slow_stats *out)
{
	pthread_mutex_lock(&q->lock);
	out->queued = q->queued;
	out->checked = q->checked;
	out->matched = q->matched;
	out->refused = q->refused;
	pthread_mutex_unlock(&q->lock);
}

/* test_cache.c — core/cache.c: verified-key records shared by threads,
 * bounded, counted, never re-filled with a record read before a clear, and
 * kept but for the changed keys when a follower's commit names them. */
#include <pthread.h>
#include "unit.h"
#include "../../core/internal.h"

static void cache_bounded_and_counted(void **state)
{
	struct fixture *f = *state;
	struct apikey_cache *c;
	struct apikey_cache_stats st;
	struct apikey_verifier v = { .store = f->s };
	char keys[5][APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verify_result res;

	assert_int_equal(apikey_cache_new(&c, 3), 0);
	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	v.cache = c;
	for (int i = 0; i < 5; i++)
		make_key(f->s, "cy", "a:b", 0, 0, keys[i], id);
	for (int i = 0; i < 5; i++) {
		struct apikey_verify_request rq = { .key = keys[i], .key_len = strlen(keys[i]) };
		apikey_verify_cached(&v, &rq, &res);
		assert_int_equal(res.outcome, APIKEY_VALID);
		assert_string_equal(res.key.owner, "cy");
	}
	apikey_cache_stats(c, &st);
	assert_true(st.entries <= 3);
	assert_int_equal(st.misses, 5);
	struct apikey_verify_request rq = { .key = keys[4], .key_len = strlen(keys[4]) };
	apikey_verify_cached(&v, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_VALID);
	assert_string_equal(res.key.scopes, "a:b");  /* a hit carries what the checks need */
	apikey_cache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	apikey_cache_clear(c);
	apikey_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	apikey_cache_free(c);
	apikey_cache_free(NULL);
	apikey_limiter_free(v.limiter);
}

/* A lookup that began before a clear must not put its (maybe stale) record
 * back afterwards: that is what makes a revoke visible on every thread. */
static void stale_insert_dropped(void **state)
{
	struct apikey_cache *c;
	struct key_record rec, out;
	unsigned char d[DIGEST_LEN] = { 1, 2, 3 };
	uint64_t epoch;

	(void)state;
	memset(&rec, 0, sizeof(rec));
	memcpy(rec.info.id, "key_aaaaaaaaaaaaaaaa", APIKEY_ID_SIZE);
	assert_int_equal(apikey_cache_new(&c, 0), 0);
	assert_false(cache_get(c, d, &out, &epoch));  /* a miss: the lookup begins */
	apikey_cache_clear(c);                 /* another thread saw a change */
	cache_put(c, epoch, d, &rec);          /* the lookup's (maybe stale) record */
	assert_false(cache_get(c, d, &out, &epoch));
	cache_put(c, epoch, d, &rec);          /* a lookup after the clear is kept */
	assert_true(cache_get(c, d, &out, &epoch));
	assert_string_equal(out.info.id, "key_aaaaaaaaaaaaaaaa");
	apikey_cache_free(c);
}

static bool cached(struct apikey_cache *c, unsigned char tag)
{
	unsigned char d[DIGEST_LEN] = { tag };
	struct key_record out;
	uint64_t epoch;

	return cache_get(c, d, &out, &epoch);
}

static void put_tag(struct apikey_cache *c, unsigned char tag)
{
	unsigned char d[DIGEST_LEN] = { tag };
	struct key_record rec, out;
	uint64_t epoch;

	memset(&rec, 0, sizeof(rec));
	cache_get(c, d, &out, &epoch);
	cache_put(c, epoch, d, &rec);
}

/* The generation label: a follower's commit drops only the keys it names,
 * and only when the records agree with the generation it started from;
 * anything else empties the cache as before. */
static void advance_drops_only_what_changed(void **state)
{
	static const unsigned char changed[1][DIGEST_LEN] = { { 1 } };
	struct apikey_cache *c;
	struct apikey_cache_stats st;
	struct key_record rec, out;
	uint64_t epoch;

	(void)state;
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(apikey_cache_new(&c, 0), 0);
	cache_sync(c, true, true, 5);        /* a thread saw generation 5 */
	put_tag(c, 1);
	put_tag(c, 2);
	cache_sync(c, true, true, 5);        /* another thread, the same generation: kept */
	assert_true(cached(c, 1) && cached(c, 2));

	assert_false(cache_get(c, (unsigned char[DIGEST_LEN]){ 9 }, &out, &epoch));  /* a lookup begins */
	cache_advance(c, 5, 6, changed, 1, true);
	assert_false(cached(c, 1));          /* the key the commit changed */
	assert_true(cached(c, 2));           /* the rest stays */
	cache_put(c, epoch, (unsigned char[DIGEST_LEN]){ 9 }, &rec);   /* read before the commit: dropped */
	assert_false(cached(c, 9));
	cache_sync(c, true, true, 6);        /* threads then see 6: nothing to do */
	assert_true(cached(c, 2));
	apikey_cache_stats(c, &st);
	assert_int_equal(st.advances, 1);
	assert_int_equal(st.clears, 1);      /* the first sync only */

	cache_advance(c, 6, 6, changed, 1, true);   /* a commit that changed nothing */
	assert_true(cached(c, 2));
	put_tag(c, 1);
	cache_advance(c, 5, 7, changed, 1, true);   /* from a generation it does not hold */
	assert_false(cached(c, 2));
	put_tag(c, 2);
	cache_advance(c, 7, 8, changed, 1, false);  /* an account changed: everything */
	assert_false(cached(c, 2));
	put_tag(c, 2);
	cache_sync(c, true, true, 9);        /* another writer's commit */
	assert_false(cached(c, 2));
	put_tag(c, 2);
	cache_sync(c, false, true, 9);       /* written beside SQLite: emptied, still 9 */
	assert_false(cached(c, 2));
	put_tag(c, 2);
	cache_advance(c, 9, 10, changed, 1, true);
	assert_true(cached(c, 2));
	cache_sync(c, false, false, 0);      /* no generation read: unlabelled */
	assert_false(cached(c, 2));
	put_tag(c, 2);
	cache_advance(c, 10, 11, changed, 1, true);  /* unlabelled: everything */
	assert_false(cached(c, 2));
	put_tag(c, 2);
	apikey_cache_clear(c);               /* the store replaced: unlabelled again */
	cache_sync(c, true, true, 10);
	put_tag(c, 2);
	cache_advance(c, 10, 11, changed, 1, true);
	assert_true(cached(c, 2));
	apikey_cache_stats(c, &st);
	assert_int_equal(st.advances, 3);
	apikey_cache_free(c);
}

struct hammer { struct apikey_cache *c; int id; };

static void *hammer(void *arg)
{
	struct hammer *h = arg;
	struct key_record rec, out;
	unsigned char d[DIGEST_LEN] = { 0 };
	uint64_t epoch;

	memset(&rec, 0, sizeof(rec));
	for (int i = 0; i < 20000; i++) {
		d[0] = (unsigned char)(i % 64);
		d[1] = (unsigned char)h->id;
		snprintf(rec.info.id, sizeof(rec.info.id), "key_%016d", i % 64);
		if (!cache_get(h->c, d, &out, &epoch))
			cache_put(h->c, epoch, d, &rec);
		else if (strncmp(out.info.id, "key_", 4) != 0)
			return (void *)1;             /* a torn record */
		if (h->id == 0 && i % 997 == 0)
			apikey_cache_clear(h->c);
	}
	return NULL;
}

static void threads_share_it(void **state)
{
	struct apikey_cache *c;
	struct apikey_cache_stats st;
	pthread_t t[4];
	struct hammer h[4];
	void *ret;

	(void)state;
	assert_int_equal(apikey_cache_new(&c, 100), 0);
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ c, i };
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
	apikey_cache_stats(c, &st);
	assert_int_equal(st.hits + st.misses, 4 * 20000);
	assert_true(st.entries <= 100);
	assert_true(st.clears >= 20);
	apikey_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(cache_bounded_and_counted, fixture_setup, fixture_teardown),
		cmocka_unit_test(stale_insert_dropped), cmocka_unit_test(advance_drops_only_what_changed),
		cmocka_unit_test(threads_share_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

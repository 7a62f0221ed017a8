/* test_cache.c — core/cache.c: verified-key records shared by threads,
 * bounded, counted, and never re-filled with a record read before a clear. */
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
		cmocka_unit_test(stale_insert_dropped), cmocka_unit_test(threads_share_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

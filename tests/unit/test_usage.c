/* test_usage.c — core/usage.c, core/cache.c, core/map.c: the sidecar's
 * shared in-memory parts. */
#include "unit.h"

static void usage_flushes_counts_and_events(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_usage *u;
	struct apikey_key_info info;

	make_key(f->s, "ann", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_usage_new(&u), 0);
	for (int i = 0; i < 10; i++)
		apikey_usage_record(u, id, 1700000000 + i, APIKEY_VALID, "http:/auth");
	apikey_usage_record(u, id, 1700000100, APIKEY_INSUFFICIENT_SCOPE, "http:/auth");
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 0);       /* nothing written before the flush */
	assert_int_equal(apikey_usage_flush(u, f->s), 0);
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 10);
	assert_int_equal(info.last_used_at, 1700000009);
	assert_int_equal(apikey_usage_flush(u, f->s), 0);   /* emptied: no double count */
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 10);
	assert_int_equal(apikey_usage_dropped(u), 0);
	apikey_usage_free(u);
	apikey_usage_free(NULL);
}

static void usage_kept_when_store_refuses(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], cmd[300];
	struct apikey_usage *u;
	struct apikey_store *ro;
	struct apikey_key_info info;

	make_key(f->s, "ben", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_usage_new(&u), 0);
	apikey_usage_record(u, id, 1700000000, APIKEY_VALID, "t");
	/* a writer holding the lock makes the flush time out; counts survive */
	f->cfg.busy_timeout_ms = 50;
	assert_int_equal(apikey_store_open(&ro, &f->cfg, NULL, NULL), 0);
	assert_int_equal(apikey_import_begin(f->s), 0);
	assert_int_equal(apikey_usage_flush(u, ro), APIKEY_ERR_BUSY);
	apikey_import_rollback(f->s);
	assert_int_equal(apikey_usage_flush(u, ro), 0);
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 1);
	apikey_store_free(ro);
	apikey_usage_free(u);
	(void)cmd;
}

static void cache_bounded_and_counted(void **state)
{
	struct fixture *f = *state;
	struct apikey_cache *c;
	struct apikey_cache_stats st;
	struct apikey_verifier v = { f->s, NULL, NULL, NULL };
	char keys[5][APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verify_result res;

	assert_int_equal(apikey_cache_new(&c, 3), 0);
	assert_int_equal(apikey_limiter_new(&v.limiter), 0);
	v.cache = c;
	for (int i = 0; i < 5; i++)
		make_key(f->s, "cy", "a:b", 0, 0, keys[i], id);
	for (int i = 0; i < 5; i++) {
		struct apikey_verify_request rq = { .key = keys[i], .key_len = strlen(keys[i]) };
		apikey_verify_cached(&v, &rq, &res);
		assert_int_equal(res.outcome, APIKEY_VALID);
		assert_string_equal(res.key.metadata, "{}");
	}
	apikey_cache_stats(c, &st);
	assert_true(st.entries <= 3);
	assert_int_equal(st.misses, 5);
	struct apikey_verify_request rq = { .key = keys[4], .key_len = strlen(keys[4]) };
	apikey_verify_cached(&v, &rq, &res);
	assert_string_equal(res.key.metadata, "");   /* the cache does not carry metadata */
	apikey_cache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	apikey_cache_clear(c);
	apikey_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	apikey_cache_free(c);
	apikey_cache_free(NULL);
	apikey_limiter_free(v.limiter);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(usage_flushes_counts_and_events), T(usage_kept_when_store_refuses), T(cache_bounded_and_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

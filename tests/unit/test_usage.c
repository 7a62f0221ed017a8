/* test_usage.c — core/usage.c: usage counts and failure events recorded in
 * memory and written by one flush, kept when the flush fails. */
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

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(usage_flushes_counts_and_events), T(usage_kept_when_store_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

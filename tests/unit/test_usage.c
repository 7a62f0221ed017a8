/* test_usage.c — core/usage.c: usage counts and failure events recorded in
 * memory and written by one flush, kept when the flush fails. */
#include "unit.h"

/* The "failed" events the store holds for a key, read back through the
 * public API and sorted oldest first (the list's order is not the point). */
struct failures {
	struct apikey_event e[8];
	size_t n, other;    /* other: events that are not "failed" */
};

static int collect(void *ctx, const struct apikey_event *e)
{
	struct failures *f = ctx;

	if (strcmp(e->event, "failed") != 0)
		f->other++;
	else if (f->n < sizeof(f->e) / sizeof(f->e[0]))
		f->e[f->n++] = *e;
	else
		f->n++;    /* more than expected: the count says so */
	return 0;
}

static int by_time(const void *a, const void *b)
{
	const struct apikey_event *x = a, *y = b;

	return (x->at_s > y->at_s) - (x->at_s < y->at_s);
}

static void failures_of(struct apikey_store *s, const char *id, struct failures *f)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(apikey_event_list(s, id, 0, collect, f), 0);
	if (f->n <= sizeof(f->e) / sizeof(f->e[0]))
		qsort(f->e, f->n, sizeof(f->e[0]), by_time);
}

static void usage_flushes_counts_and_events(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_usage *u;
	struct apikey_key_info info;
	struct failures ev;

	make_key(f->s, "ann", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_usage_new(&u), 0);
	for (int i = 0; i < 10; i++)
		apikey_usage_record(u, id, 1700000000 + i, APIKEY_VALID, "http:/auth");
	apikey_usage_record(u, id, 1700000100, APIKEY_INSUFFICIENT_SCOPE, "http:/auth");
	apikey_usage_record(u, id, 1700000101, APIKEY_RATE_LIMITED, "http:/v1/verify");
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 0);       /* nothing written before the flush */
	failures_of(f->s, id, &ev);
	assert_int_equal(ev.n, 0);
	assert_int_equal(apikey_usage_flush(u, f->s), 0);
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 10);
	assert_int_equal(info.last_used_at_s, 1700000009);
	/* each failure is one event with its time, reason and source; the
	 * valid uses are counts, not events */
	failures_of(f->s, id, &ev);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.e[0].at_s, 1700000100);
	assert_string_equal(ev.e[0].key_id, id);
	assert_string_equal(ev.e[0].reason, "INSUFFICIENT_SCOPE");
	assert_string_equal(ev.e[0].source, "http:/auth");
	assert_int_equal(ev.e[1].at_s, 1700000101);
	assert_string_equal(ev.e[1].reason, "RATE_LIMITED");
	assert_string_equal(ev.e[1].source, "http:/v1/verify");
	assert_int_equal(apikey_usage_flush(u, f->s), 0);   /* emptied: no double count */
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 10);
	failures_of(f->s, id, &ev);
	assert_int_equal(ev.n, 2);
	assert_int_equal(apikey_usage_dropped(u), 0);
	apikey_usage_free(u);
	apikey_usage_free(NULL);
}

static void usage_kept_when_store_refuses(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_usage *u;
	struct apikey_store *ro;
	struct apikey_key_info info;
	struct failures ev;

	make_key(f->s, "ben", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_usage_new(&u), 0);
	apikey_usage_record(u, id, 1700000000, APIKEY_VALID, "t");
	apikey_usage_record(u, id, 1700000001, APIKEY_REVOKED, "t");
	/* a writer holding the lock makes the flush time out; counts and
	 * events survive, and are written once when the store takes them */
	f->cfg.busy_timeout_ms = 50;
	assert_int_equal(apikey_store_open(&ro, &f->cfg, NULL, NULL), 0);
	assert_int_equal(apikey_import_begin(f->s), 0);
	assert_int_equal(apikey_usage_flush(u, ro), APIKEY_ERR_BUSY);
	apikey_import_rollback(f->s);
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 0);
	failures_of(f->s, id, &ev);
	assert_int_equal(ev.n, 0);
	assert_int_equal(apikey_usage_flush(u, ro), 0);
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 1);
	failures_of(f->s, id, &ev);
	assert_int_equal(ev.n, 1);
	assert_string_equal(ev.e[0].reason, "REVOKED");
	assert_int_equal(ev.e[0].at_s, 1700000001);
	assert_int_equal(apikey_usage_dropped(u), 0);
	apikey_store_free(ro);
	apikey_usage_free(u);
}

/* The flush also writes the usage series: per key, minute and outcome, for
 * stored keys only (an unknown key's failure has no key to count against). */
struct counts { uint64_t n[APIKEY_OUTCOME_COUNT]; int points; int64_t start; };
static int sum_point(void *ctx, const struct apikey_usage_point *p)
{
	struct counts *c = ctx;
	c->n[p->outcome] += p->count;
	c->points++;
	c->start = p->start_s;
	return 0;
}

static void usage_series_flushed(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_usage *u;
	struct counts c = { 0 };
	int64_t t = 1700000000 + 30;        /* within one minute */

	make_key(f->s, "ann", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_usage_new(&u), 0);
	for (int i = 0; i < 5; i++)
		apikey_usage_record(u, id, t + i, APIKEY_VALID, "http:/auth");
	apikey_usage_record(u, id, t, APIKEY_RATE_LIMITED, "http:/auth");
	apikey_usage_record(u, id, t + 40, APIKEY_RATE_LIMITED, "http:/auth");   /* the next minute */
	apikey_usage_record(u, "", t, APIKEY_INVALID_KEY, "http:/auth");
	assert_int_equal(apikey_usage_flush(u, f->s), 0);
	assert_int_equal(apikey_usage_series(f->s, id, NULL, t - 3600, t + 3600, 3600, sum_point, &c), 0);
	assert_int_equal(c.n[APIKEY_VALID], 5);
	assert_int_equal(c.n[APIKEY_RATE_LIMITED], 2);
	assert_int_equal(c.n[APIKEY_INVALID_KEY], 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(apikey_usage_series(f->s, id, NULL, t - 3600, t + 3600, 60, sum_point, &c), 0);
	assert_int_equal(c.points, 3);      /* minute 1: VALID, RATE_LIMITED; minute 2: RATE_LIMITED */
	/* a second flush adds to the same minute */
	apikey_usage_record(u, id, t + 1, APIKEY_VALID, "http:/auth");
	assert_int_equal(apikey_usage_flush(u, f->s), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(apikey_usage_series(f->s, id, NULL, t - 3600, t + 3600, 86400, sum_point, &c), 0);
	assert_int_equal(c.n[APIKEY_VALID], 6);
	apikey_usage_free(u);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(usage_flushes_counts_and_events), T(usage_kept_when_store_refuses),
		T(usage_series_flushed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

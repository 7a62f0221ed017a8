/* test_ratelimit.c — core/ratelimit.c: GCRA arithmetic and the threaded limiter. */
#include <pthread.h>
#include "unit.h"

#define SEC 1000000LL

static void burst_then_steady(void **state)
{
	struct apikey_ratelimit rl;
	int64_t tat = 0, now = 1000 * SEC;

	for (int i = 0; i < 60; i++) {
		apikey_gcra(&tat, now, 60, &rl);
		assert_true(rl.allowed);
		assert_int_equal(rl.limit, 60);
		assert_int_equal(rl.remaining, 59 - i);
	}
	apikey_gcra(&tat, now, 60, &rl);
	assert_false(rl.allowed);
	assert_int_equal(rl.retry_after, 1);
	assert_int_equal(rl.reset, 60);
	int64_t before = tat;
	apikey_gcra(&tat, now, 60, &rl);          /* a refused request is not charged */
	assert_int_equal(tat, before);
	apikey_gcra(&tat, now + SEC, 60, &rl);   /* one emission interval later: one more */
	assert_true(rl.allowed);
	assert_int_equal(rl.remaining, 0);
	apikey_gcra(&tat, now + 120 * SEC, 60, &rl);   /* idle: full again */
	assert_true(rl.allowed);
	assert_int_equal(rl.remaining, 59);
}

static void extremes(void **state)
{
	struct apikey_ratelimit rl;
	int64_t tat = 0, now = 5 * SEC;
	int allowed = 0;

	apikey_gcra(&tat, now, 1, &rl);
	assert_true(rl.allowed);
	apikey_gcra(&tat, now, 1, &rl);
	assert_false(rl.allowed);
	assert_int_equal(rl.retry_after, 60);
	tat = 0;
	for (int i = 0; i < 1000001; i++) {
		apikey_gcra(&tat, now, 1000000, &rl);
		allowed += rl.allowed;
	}
	assert_int_equal(allowed, 1000000);
}

struct worker { struct apikey_limiter *l; int allowed; };

static void *hammer(void *arg)
{
	struct worker *w = arg;
	struct apikey_ratelimit rl;

	for (int i = 0; i < 500; i++) {
		apikey_limiter_check(w->l, "key_shared000000000", 7 * SEC, 1000, &rl);
		w->allowed += rl.allowed;
	}
	return NULL;
}

static void limiter_is_shared_across_threads(void **state)
{
	struct apikey_limiter *l;
	struct worker w[4];
	pthread_t t[4];
	struct apikey_ratelimit rl;
	int total = 0;

	assert_int_equal(apikey_limiter_new(&l), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ l, 0 };
		pthread_create(&t[i], NULL, hammer, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += w[i].allowed;
	}
	assert_int_equal(total, 1000);   /* exactly the limit, whatever the interleaving */
	apikey_limiter_check(l, "key_other0000000000", 7 * SEC, 1000, &rl);
	assert_true(rl.allowed);         /* keys are independent */
	apikey_limiter_free(l);
	apikey_limiter_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_then_steady), cmocka_unit_test(extremes),
		cmocka_unit_test(limiter_is_shared_across_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

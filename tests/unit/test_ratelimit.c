/* test_ratelimit.c — core/ratelimit.c: GCRA arithmetic, the threaded
 * limiter, its bound (eviction of full buckets only) and out of memory.
 * Linked with -Wl,--wrap=calloc,--wrap=malloc (tests/tests.mk): the core's
 * allocations go through the wrappers below, which fail on demand. */
#include <pthread.h>
#include "unit.h"

static bool fail_alloc;
void *__real_calloc(size_t n, size_t size);
void *__real_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_alloc ? NULL : __real_calloc(n, size);
}

void *__wrap_malloc(size_t size)
{
	return fail_alloc ? NULL : __real_malloc(size);
}

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
	assert_int_equal(rl.retry_after_s, 1);
	assert_int_equal(rl.reset_s, 60);
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
	assert_int_equal(rl.retry_after_s, 60);
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

	assert_int_equal(apikey_limiter_new(&l, 0), 0);
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

/* Ids ending in the same character share a stripe; with 64 entries in all
 * a stripe holds one key. */
#define KEY_A "key_aaaaaaaaaaaaaaaA"
#define KEY_B "key_bbbbbbbbbbbbbbbA"   /* A's stripe */
#define KEY_C "key_cccccccccccccccB"   /* another stripe */

static void limiter_bound_drops_only_full_buckets(void **state)
{
	struct apikey_limiter *l;
	struct apikey_ratelimit rl;
	int64_t t0 = 1000 * SEC;

	(void)state;
	assert_int_equal(apikey_limiter_new(&l, 64), 0);
	/* A spends its burst of 2 */
	assert_int_equal(apikey_limiter_check(l, KEY_A, t0, 2, &rl), 0);
	assert_int_equal(apikey_limiter_check(l, KEY_A, t0, 2, &rl), 0);
	assert_true(rl.allowed);
	assert_int_equal(apikey_limiter_check(l, KEY_A, t0, 2, &rl), 0);
	assert_false(rl.allowed);
	/* B cannot take A's place while A's charges still count */
	assert_int_equal(apikey_limiter_check(l, KEY_B, t0 + SEC, 2, &rl), APIKEY_ERR_FULL);
	assert_false(rl.allowed);
	assert_int_equal(apikey_limiter_check(l, KEY_B, t0 + 30 * SEC, 2, &rl), APIKEY_ERR_FULL);
	/* ... and A stays limited: never an allow its limit forbids */
	assert_int_equal(apikey_limiter_check(l, KEY_A, t0 + 29 * SEC, 2, &rl), 0);
	assert_false(rl.allowed);
	/* another stripe is not concerned */
	assert_int_equal(apikey_limiter_check(l, KEY_C, t0, 2, &rl), 0);
	assert_true(rl.allowed);
	/* once A's bucket is full again (for a second) its entry carries nothing: B gets in */
	assert_int_equal(apikey_limiter_check(l, KEY_B, t0 + 62 * SEC, 2, &rl), 0);
	assert_true(rl.allowed);
	assert_int_equal(rl.remaining, 1);
	/* A comes back: now it is B's turn to hold the stripe */
	assert_int_equal(apikey_limiter_check(l, KEY_A, t0 + 62 * SEC, 2, &rl), APIKEY_ERR_FULL);
	apikey_limiter_free(l);
}

/* A key the limiter cannot track is refused, and verification answers
 * UNAVAILABLE (not RATE_LIMITED, not VALID). */
static void limiter_out_of_memory(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verifier v = { .store = f->s };
	struct apikey_verify_request rq = { .source = "test" };
	struct apikey_verify_result res;
	struct apikey_ratelimit rl;

	assert_int_equal(apikey_limiter_new(&v.limiter, 0), 0);
	assert_int_equal(apikey_limiter_check(v.limiter, KEY_A, 5 * SEC, 60, &rl), 0);
	fail_alloc = true;
	assert_int_equal(apikey_limiter_check(v.limiter, KEY_C, 5 * SEC, 60, &rl), APIKEY_ERR_NOMEM);
	assert_false(rl.allowed);
	/* a key already tracked needs no memory */
	assert_int_equal(apikey_limiter_check(v.limiter, KEY_A, 5 * SEC, 60, &rl), 0);
	assert_true(rl.allowed);
	fail_alloc = false;

	make_key(f->s, "oom", "a:b", 0, 0, key, id);
	rq.key = key;
	rq.key_len = strlen(key);
	fail_alloc = true;
	apikey_verify_cached(&v, &rq, &res);
	fail_alloc = false;
	assert_int_equal(res.outcome, APIKEY_UNAVAILABLE);
	assert_int_equal(res.err, APIKEY_ERR_NOMEM);
	apikey_verify_cached(&v, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_VALID);
	apikey_limiter_free(v.limiter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_then_steady), cmocka_unit_test(extremes),
		cmocka_unit_test(limiter_is_shared_across_threads),
		cmocka_unit_test(limiter_bound_drops_only_full_buckets),
		cmocka_unit_test_setup_teardown(limiter_out_of_memory, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_map.c — core/map.c: insert, replace, lookup by bytes, clear, walk,
 * also when every key shares one bucket; growing past its buckets and
 * shrinking back at a clear keep every entry findable. */
#include "unit.h"
#include "../../core/internal.h"

static void sum_values(void *ctx, const void *key, size_t klen, void *value)
{
	(void)key; (void)klen;
	*(long *)ctx += *(int *)value;
}

static void put_get_replace(size_t buckets)
{
	struct map *m = map_new(buckets);
	int vals[200];
	char k[16];
	long sum = 0;

	assert_non_null(m);
	for (int i = 0; i < 200; i++) {
		vals[i] = i;
		snprintf(k, sizeof(k), "key-%d", i);
		assert_null(map_put(m, k, strlen(k), &vals[i]));
	}
	assert_int_equal(map_count(m), 200);
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "key-%d", i);
		assert_ptr_equal(map_get(m, k, strlen(k)), &vals[i]);
	}
	/* keys are bytes: a prefix or an embedded NUL is another key */
	assert_null(map_get(m, "key-1", 4));
	assert_null(map_get(m, "key-1\0", 6));
	/* replacing hands back the old value and keeps the count */
	assert_ptr_equal(map_put(m, "key-7", 5, &vals[8]), &vals[7]);
	assert_ptr_equal(map_get(m, "key-7", 5), &vals[8]);
	assert_int_equal(map_count(m), 200);
	map_each(m, sum_values, &sum);
	assert_int_equal(sum, 199 * 200 / 2 + 1);
	map_clear(m, NULL);
	assert_int_equal(map_count(m), 0);
	assert_null(map_get(m, "key-3", 5));
	map_free(m, NULL);
}

static void many_buckets(void **state)
{
	(void)state;
	put_get_replace(1024);
}

static void one_bucket(void **state)
{
	(void)state;
	put_get_replace(1);
}

/* The free callback's record: how many calls, and which values (each
 * value is an index into seen[], so a double free shows as a count of 2). */
struct freed {
	unsigned calls;
	unsigned seen[60];
};
static struct freed *freed;

static void count_free(void *value)
{
	int *v = value;

	freed->calls++;
	if (*v >= 0 && *v < 60)
		freed->seen[*v]++;
	free(v);
}

static void frees_values(void **state)
{
	struct freed rec = { 0 };
	struct map *m = map_new(8);
	int *old;

	(void)state;
	freed = &rec;
	for (int i = 0; i < 50; i++) {
		int *v = malloc(sizeof(*v));
		*v = i;
		assert_null(map_put(m, &i, sizeof(i), v));
	}
	/* a replaced value is handed back, not freed by the map */
	int k = 7, *v7 = malloc(sizeof(*v7));
	*v7 = 57;
	old = map_put(m, &k, sizeof(k), v7);
	assert_non_null(old);
	assert_int_equal(*old, 7);
	assert_int_equal(rec.calls, 0);
	count_free(old);
	/* clear frees every value once and empties the map, which stays usable */
	map_clear(m, count_free);
	assert_int_equal(rec.calls, 1 + 50);
	for (int i = 0; i < 50; i++)
		assert_int_equal(rec.seen[i], 1);
	assert_int_equal(rec.seen[57], 1);
	assert_int_equal(map_count(m), 0);
	for (int i = 0; i < 5; i++) {
		int *v = malloc(sizeof(*v));
		*v = i;
		assert_null(map_put(m, &i, sizeof(i), v));
	}
	/* free frees what is left, once each; NULL is a no-op */
	memset(&rec, 0, sizeof(rec));
	map_free(m, count_free);
	assert_int_equal(rec.calls, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rec.seen[i], 1);
	map_free(NULL, count_free);
	map_clear(NULL, count_free);
	assert_int_equal(rec.calls, 5);
	freed = NULL;
}

static bool drop_odd(void *ctx, void *value)
{
	(void)ctx;
	return *(int *)value % 2 != 0;
}

/* From 1 bucket through 5,000 entries (a dozen doublings), a sweep, a
 * clear (back to 1 bucket) and again: lookups see exactly what is in. */
static void grows_and_shrinks(void **state)
{
	static int vals[5000];
	struct map *m = map_new(1);

	(void)state;
	assert_non_null(m);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 5000; i++) {
			vals[i] = i;
			assert_null(map_put(m, &i, sizeof(i), &vals[i]));
		}
		assert_int_equal(map_count(m), 5000);
		for (int i = 0; i < 5000; i++)
			assert_ptr_equal(map_get(m, &i, sizeof(i)), &vals[i]);
		assert_int_equal(map_sweep(m, drop_odd, NULL, NULL), 2500);
		for (int i = 0; i < 5000; i++)
			assert_ptr_equal(map_get(m, &i, sizeof(i)), i % 2 ? NULL : &vals[i]);
		map_clear(m, NULL);
		assert_int_equal(map_count(m), 0);
		for (int i = 0; i < 5000; i += 499)
			assert_null(map_get(m, &i, sizeof(i)));
	}
	map_free(m, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(many_buckets), cmocka_unit_test(one_bucket), cmocka_unit_test(frees_values),
		cmocka_unit_test(grows_and_shrinks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

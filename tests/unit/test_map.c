/* test_map.c — core/map.c: insert, replace, lookup by bytes, clear, walk,
 * also when every key shares one bucket. */
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

static void frees_values(void **state)
{
	struct map *m = map_new(8);

	(void)state;
	for (int i = 0; i < 50; i++) {
		int *v = malloc(sizeof(*v));
		*v = i;
		assert_null(map_put(m, &i, sizeof(i), v));
	}
	map_free(m, free);    /* leak-checked by ASan/valgrind runs */
	map_free(NULL, free);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(many_buckets), cmocka_unit_test(one_bucket), cmocka_unit_test(frees_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

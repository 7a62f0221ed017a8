/* test_list.c — core/list.c: the comma-list iterator and the plan rules
 * (allowed; the intersection of two requirements). */
#include "unit.h"

static void iterate(void **state)
{
	const char *cur = " a:b ,, c:d\t,e ", *item;
	char got[5][8];
	size_t n;
	int k = 0;

	(void)state;
	while (apikey_list_next(&cur, &item, &n) && k < 5)
		snprintf(got[k++], sizeof(got[0]), "%.*s", (int)n, item);
	assert_int_equal(k, 3);
	assert_string_equal(got[0], "a:b");
	assert_string_equal(got[1], "c:d");
	assert_string_equal(got[2], "e");
	assert_false(apikey_list_next(&cur, &item, &n));   /* stays at the end */
	cur = NULL;
	assert_false(apikey_list_next(&cur, &item, &n));
	cur = ",";
	assert_false(apikey_list_next(&cur, &item, &n));
}

static void plans(void **state)
{
	char out[APIKEY_SCOPES_SIZE], tiny[4];

	(void)state;
	assert_true(apikey_plan_allowed("pro", "basic, pro"));
	assert_true(apikey_plan_allowed("pro", "pro\t"));
	assert_false(apikey_plan_allowed("pr", "pro"));
	assert_false(apikey_plan_allowed("", "pro"));
	assert_false(apikey_plan_allowed("", ","));
	assert_false(apikey_plan_allowed("pro", ","));      /* the empty set */
	assert_int_equal(apikey_plans_intersect("pro,ultra", " ultra , max", out, sizeof(out)), 0);
	assert_string_equal(out, "ultra");
	assert_int_equal(apikey_plans_intersect("pro", "", out, sizeof(out)), 0);
	assert_string_equal(out, "pro");
	assert_int_equal(apikey_plans_intersect(NULL, "max", out, sizeof(out)), 0);
	assert_string_equal(out, "max");
	assert_int_equal(apikey_plans_intersect("pro", "max", out, sizeof(out)), 0);
	assert_string_equal(out, ",");                      /* nothing both allow: fail closed */
	assert_int_equal(apikey_plans_intersect("pro,max", "max,pro", tiny, sizeof(tiny)), APIKEY_ERR_TOO_LONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(iterate), cmocka_unit_test(plans) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}

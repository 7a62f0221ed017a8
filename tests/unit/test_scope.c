/* test_scope.c — core/scope.c: validation, normalisation and wildcards. */
#include "unit.h"

static void valid_scopes(void **state)
{
	assert_true(apikey_scope_valid("keys:read", 9));
	assert_true(apikey_scope_valid("*", 1));
	assert_true(apikey_scope_valid("keys:*", 6));
	assert_true(apikey_scope_valid("pam:sshd", 8));
	assert_false(apikey_scope_valid("keys", 4));
	assert_false(apikey_scope_valid("Keys:read", 9));
	assert_false(apikey_scope_valid("keys:", 5));
	assert_false(apikey_scope_valid(":read", 5));
	assert_false(apikey_scope_valid("a:b:c", 5));
	assert_false(apikey_scope_valid("a b:c", 5));
}

static void normalize(void **state)
{
	char out[APIKEY_SCOPES_SIZE], big[4000];

	assert_int_equal(apikey_scopes_normalize(" a:b, c:d,a:b  e:*", out, sizeof(out)), 0);
	assert_string_equal(out, "a:b,c:d,e:*");
	assert_int_equal(apikey_scopes_normalize("a:b,bad", out, sizeof(out)), APIKEY_ERR_INVALID);
	assert_string_equal(out, "");
	assert_int_equal(apikey_scopes_normalize("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	size_t used = 0;
	for (int i = 0; used + 8 < sizeof(big); i++)
		used += (size_t)snprintf(big + used, sizeof(big) - used, "x%03d:y,", i % 1000);
	assert_int_equal(apikey_scopes_normalize(big, out, sizeof(out)), APIKEY_ERR_TOO_LONG);
}

static void grants(void **state)
{
	assert_true(apikey_scopes_grant_all("keys:read,docs:write", "keys:read"));
	assert_true(apikey_scopes_grant_all("keys:read,docs:write", "docs:write keys:read"));
	assert_false(apikey_scopes_grant_all("keys:read,docs:write", "keys:read,keys:write"));
	assert_true(apikey_scopes_grant_all("keys:*", "keys:write"));
	assert_false(apikey_scopes_grant_all("keys:*", "docs:write"));
	assert_true(apikey_scopes_grant_all("*:read", "docs:read"));
	assert_false(apikey_scopes_grant_all("*:read", "docs:write"));
	assert_true(apikey_scopes_grant_all("*", "anything:at-all,pam:sshd"));
	/* a required wildcard is only met by a wildcard grant */
	assert_false(apikey_scopes_grant_all("keys:read", "keys:*"));
	assert_true(apikey_scopes_grant_all("keys:*", "keys:*"));
	/* prefixes are not matches */
	assert_false(apikey_scopes_grant_all("keys:rea", "keys:read"));
	assert_false(apikey_scopes_grant_all("keys:read", "keys:rea"));
	assert_false(apikey_scopes_grant_all("", "a:b"));
	assert_false(apikey_scopes_grant_all("*", "not-a-scope"));
	assert_true(apikey_scopes_grant_all("a:b", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_scopes), cmocka_unit_test(normalize), cmocka_unit_test(grants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

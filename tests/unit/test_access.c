/* test_access.c — core/access.c and the admin scopes' rule in core/scope.c:
 * apikey:read/write/admin are granted by name only, the rights they give,
 * who may act on which owner, and the bound on what an actor may grant
 * (struct apikey_actor.within), enforced by create, update and rotate. */
#include "unit.h"

static void admin_scopes_only_by_name(void **state)
{
	(void)state;
	/* no wildcard grants an apikey: scope ... */
	assert_false(apikey_scopes_grant_all("*", "apikey:read"));
	assert_false(apikey_scopes_grant_all("apikey:*", "apikey:admin"));
	assert_false(apikey_scopes_grant_all("*:read", "apikey:read"));
	assert_false(apikey_scopes_grant_all("*:*", "apikey:write"));
	assert_false(apikey_scopes_grant_all("*", "apikey:*"));
	/* ... the scope itself does, and wildcards still work elsewhere */
	assert_true(apikey_scopes_grant_all("apikey:read", "apikey:read"));
	assert_true(apikey_scopes_grant_all("apikey:*", "apikey:*"));
	assert_true(apikey_scopes_grant_all("*", "docs:read"));
	assert_true(apikey_scopes_grant_all("*:read", "docs:read"));
	assert_true(apikey_scope_reserved("apikey:read", 11));
	assert_false(apikey_scope_reserved("apikeys:read", 12));
	assert_false(apikey_scope_reserved("apikey", 6));
}

static void rights(void **state)
{
	(void)state;
	assert_int_equal(apikey_right_of("*"), APIKEY_RIGHT_NONE);
	assert_int_equal(apikey_right_of("apikey:*"), APIKEY_RIGHT_NONE);
	assert_int_equal(apikey_right_of("*:read,*:write"), APIKEY_RIGHT_NONE);
	assert_int_equal(apikey_right_of("docs:read,apikey:read"), APIKEY_RIGHT_READ);
	assert_int_equal(apikey_right_of("apikey:write"), APIKEY_RIGHT_WRITE);
	assert_int_equal(apikey_right_of("apikey:read,apikey:admin"), APIKEY_RIGHT_ADMIN);
	assert_int_equal(apikey_right_of(""), APIKEY_RIGHT_NONE);
}

static void access_table(void **state)
{
	static const struct {
		const char *scopes, *owner;
		enum apikey_right need;
		const char *target;
		enum apikey_access want;
	} t[] = {
		{ "apikey:read", "al", APIKEY_RIGHT_READ, "al", APIKEY_ACCESS_OK },
		{ "apikey:read", "al", APIKEY_RIGHT_READ, "bo", APIKEY_ACCESS_OTHER_OWNER },
		{ "apikey:read", "al", APIKEY_RIGHT_WRITE, "al", APIKEY_ACCESS_NEED_RIGHT },
		{ "apikey:write", "al", APIKEY_RIGHT_READ, "al", APIKEY_ACCESS_OK },
		{ "apikey:write", "al", APIKEY_RIGHT_WRITE, "al", APIKEY_ACCESS_OK },
		{ "apikey:write", "al", APIKEY_RIGHT_WRITE, "bo", APIKEY_ACCESS_OTHER_OWNER },
		{ "apikey:write", "al", APIKEY_RIGHT_ADMIN, NULL, APIKEY_ACCESS_NEED_RIGHT },
		{ "apikey:admin", "al", APIKEY_RIGHT_WRITE, "bo", APIKEY_ACCESS_OK },
		{ "apikey:admin", "al", APIKEY_RIGHT_ADMIN, NULL, APIKEY_ACCESS_OK },
		{ "apikey:read", "al", APIKEY_RIGHT_READ, NULL, APIKEY_ACCESS_OK },
		{ "*", "al", APIKEY_RIGHT_READ, "al", APIKEY_ACCESS_NEED_RIGHT },
		{ "apikey:*", "al", APIKEY_RIGHT_READ, "al", APIKEY_ACCESS_NEED_RIGHT },
		{ "docs:read", "al", APIKEY_RIGHT_NONE, NULL, APIKEY_ACCESS_NEED_RIGHT },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		enum apikey_access got = apikey_access_check(t[i].scopes, t[i].owner, t[i].need, t[i].target);
		if (got != t[i].want)
			fail_msg("row %zu (%s as %s on %s): got %d, want %d", i, t[i].scopes, t[i].owner,
			         t[i].target ? t[i].target : "-", got, t[i].want);
	}
}

static void within(void **state)
{
	(void)state;
	assert_true(apikey_scopes_within("docs:read,apikey:write", "docs:read"));
	assert_true(apikey_scopes_within("docs:*", "docs:read,docs:write"));
	assert_true(apikey_scopes_within("*", "*,docs:read"));
	assert_true(apikey_scopes_within("apikey:write,docs:read", "apikey:write"));
	assert_false(apikey_scopes_within("docs:read", "docs:write"));
	assert_false(apikey_scopes_within("docs:read", "docs:*"));
	assert_false(apikey_scopes_within("docs:*", "*"));
	assert_false(apikey_scopes_within("*", "apikey:read"));
	assert_false(apikey_scopes_within("apikey:write", "apikey:admin"));
	assert_false(apikey_scopes_within("*", "apikey:*"));
}

/* The bound is enforced by the writes themselves, presets resolved, in the
 * write's transaction: nothing written when refused. */
static int count_key(void *ctx, const struct apikey_key_info *k)
{
	(void)k;
	(*(int *)ctx)++;
	return 0;
}

static void writes_keep_within_the_actor(void **state)
{
	struct fixture *f = *state;
	const struct apikey_actor bounded = { .source = "http", .key_id = NULL,
	                                      .within = "docs:read,apikey:write" };
	char key[APIKEY_KEY_MAX + 1], wide[APIKEY_ID_SIZE], narrow[APIKEY_ID_SIZE];
	struct apikey_create_params p = { .owner = "al", .scopes = "docs:write" };
	struct apikey_update_params u = { .scopes = "docs:read,docs:write" };
	struct apikey_key_info info;
	int n = 0;

	make_key(f->s, "al", "*", 0, 0, key, wide);
	assert_int_equal(apikey_key_create(f->s, &p, &bounded, key, sizeof(key), NULL), APIKEY_ERR_FORBIDDEN);
	p.scopes = "apikey:admin";
	assert_int_equal(apikey_key_create(f->s, &p, &bounded, key, sizeof(key), NULL), APIKEY_ERR_FORBIDDEN);
	p.scopes = NULL;
	p.preset = "full-access";
	assert_int_equal(apikey_key_create(f->s, &p, &bounded, key, sizeof(key), NULL), APIKEY_ERR_FORBIDDEN);
	assert_int_equal(apikey_preset_set(f->s, "reader", "docs:read", TEST_ACTOR), 0);
	p.preset = "reader";
	assert_int_equal(apikey_key_create(f->s, &p, &bounded, key, sizeof(key), &info), 0);
	snprintf(narrow, sizeof(narrow), "%s", info.id);
	p.preset = NULL;
	p.scopes = "apikey:write";
	assert_int_equal(apikey_key_create(f->s, &p, &bounded, key, sizeof(key), NULL), 0);
	/* widening by an edit; an edit that leaves scopes alone is no widening */
	assert_int_equal(apikey_key_update(f->s, narrow, &u, &bounded, NULL), APIKEY_ERR_FORBIDDEN);
	u = (struct apikey_update_params){ .name = "renamed" };
	assert_int_equal(apikey_key_update(f->s, wide, &u, &bounded, NULL), 0);
	u = (struct apikey_update_params){ .preset = "full-access" };
	assert_int_equal(apikey_key_update(f->s, narrow, &u, &bounded, NULL), APIKEY_ERR_FORBIDDEN);
	/* rotating a key that holds more than the actor would issue it again */
	assert_int_equal(apikey_key_rotate(f->s, wide, 0, &bounded, key, sizeof(key), NULL), APIKEY_ERR_FORBIDDEN);
	assert_int_equal(apikey_key_rotate(f->s, narrow, 0, &bounded, key, sizeof(key), NULL), 0);
	/* the operator (no bound) may */
	assert_int_equal(apikey_key_rotate(f->s, wide, 0, TEST_ACTOR, key, sizeof(key), NULL), 0);
	apikey_key_list(f->s, NULL, count_key, &n);
	assert_int_equal(n, 5);   /* wide, narrow, apikey:write, and two successors */
	assert_int_equal(apikey_key_get(f->s, narrow, &info), 0);
	assert_string_equal(info.scopes, "docs:read");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(admin_scopes_only_by_name), cmocka_unit_test(rights),
		cmocka_unit_test(access_table), cmocka_unit_test(within),
		T(writes_keep_within_the_actor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

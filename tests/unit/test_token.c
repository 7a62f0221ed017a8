/* test_token.c — core/token.c: issuing and checking keys of every profile. */
#include "unit.h"

static void profile(struct apikey_format *f, const char *prefix, enum apikey_alphabet a, unsigned len, bool cks)
{
	apikey_format_default(f);
	snprintf(f->prefix, sizeof(f->prefix), "%s", prefix);
	f->alphabet = a;
	f->body_len = len;
	f->checksum = cks;
}

static void default_shape(void **state)
{
	struct apikey_format f;
	char k[APIKEY_KEY_MAX + 1], k2[APIKEY_KEY_MAX + 1], hint[APIKEY_HINT_SIZE];

	apikey_format_default(&f);
	assert_int_equal(apikey_token_generate(&f, k, sizeof(k)), 0);
	assert_int_equal(strlen(k), 39);
	assert_memory_equal(k, "ak_", 3);
	assert_int_equal(strspn(k + 3, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"), 36);
	assert_int_equal(apikey_token_parse(&f, k, strlen(k)), 0);
	assert_int_equal(apikey_token_generate(&f, k2, sizeof(k2)), 0);
	assert_string_not_equal(k, k2);
	apikey_token_hint(&f, k, strlen(k), hint);
	assert_int_equal(strlen(hint), 7);
	assert_memory_equal(hint, k, 7);
	assert_int_equal(apikey_token_generate(&f, k, 10), APIKEY_ERR_TOO_LONG);
}

static void malformed_keys(void **state)
{
	struct apikey_format f;
	char k[APIKEY_KEY_MAX + 1], bad[APIKEY_KEY_MAX + 1];
	char big[10000];

	apikey_format_default(&f);
	assert_int_equal(apikey_token_generate(&f, k, sizeof(k)), 0);
	/* every single-character typo is caught by the checksum or alphabet */
	for (size_t i = 3; i < strlen(k); i++) {
		memcpy(bad, k, sizeof(k));
		bad[i] = bad[i] == 'a' ? 'b' : 'a';
		assert_int_equal(apikey_token_parse(&f, bad, strlen(bad)), APIKEY_ERR_MALFORMED);
	}
	memcpy(bad, k, sizeof(k));
	bad[0] = 'x';                                       /* prefix */
	assert_int_equal(apikey_token_parse(&f, bad, strlen(bad)), APIKEY_ERR_MALFORMED);
	assert_int_equal(apikey_token_parse(&f, k, strlen(k) - 1), APIKEY_ERR_MALFORMED);   /* length */
	memcpy(bad, k, sizeof(k));
	bad[10] = '-';                                      /* alphabet */
	assert_int_equal(apikey_token_parse(&f, bad, strlen(bad)), APIKEY_ERR_MALFORMED);
	memcpy(bad, k, sizeof(k));
	bad[10] = '\0';                                     /* embedded NUL */
	assert_int_equal(apikey_token_parse(&f, bad, strlen(k)), APIKEY_ERR_MALFORMED);
	assert_int_equal(apikey_token_parse(&f, "", 0), APIKEY_ERR_MALFORMED);
	assert_int_equal(apikey_token_parse(&f, NULL, 5), APIKEY_ERR_MALFORMED);
	memset(big, 'a', sizeof(big));
	memcpy(big, "ak_", 3);
	assert_int_equal(apikey_token_parse(&f, big, sizeof(big)), APIKEY_ERR_MALFORMED);
}

/* The seed systems of SPEC §2, issued and accepted. */
static void seed_shapes(void **state)
{
	static const struct { const char *prefix; enum apikey_alphabet a; unsigned len; bool cks; size_t total;
	                      const char *chars; } shapes[] = {
		{ "clw_", APIKEY_ALPHA_BASE36LOWER, 32, false, 36, "0123456789abcdefghijklmnopqrstuvwxyz" },
		{ "cu_", APIKEY_ALPHA_UUID, 36, false, 39, "0123456789abcdef-" },
		{ "wc_live_", APIKEY_ALPHA_BASE62, 20, false, 28, NULL },
		{ "cg_", APIKEY_ALPHA_HEX, 32, false, 35, "0123456789abcdef" },
		{ "hc_", APIKEY_ALPHA_BASE62, 48, true, 51, NULL },
	};
	char k[APIKEY_KEY_MAX + 1];
	struct apikey_format f;

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		profile(&f, shapes[i].prefix, shapes[i].a, shapes[i].len, shapes[i].cks);
		assert_int_equal(apikey_format_validate(&f), 0);
		assert_int_equal(apikey_token_generate(&f, k, sizeof(k)), 0);
		assert_int_equal(strlen(k), shapes[i].total);
		if (shapes[i].chars)
			assert_int_equal(strspn(k + strlen(shapes[i].prefix), shapes[i].chars), shapes[i].len);
		assert_int_equal(apikey_token_parse(&f, k, strlen(k)), 0);
	}
	/* the public example keys of the seeds parse under their profiles */
	profile(&f, "clw_", APIKEY_ALPHA_BASE36LOWER, 32, false);
	assert_int_equal(apikey_token_parse(&f, "clw_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6", 36), 0);
	profile(&f, "cg_", APIKEY_ALPHA_HEX, 32, false);
	assert_int_equal(apikey_token_parse(&f, "cg_a1b2c3d4e5f6789012345678abcdef90", 35), 0);
	profile(&f, "hc_", APIKEY_ALPHA_BASE62, 48, false);
	assert_int_equal(apikey_token_parse(&f, "hc_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4", 51), 0);
}

static void uuid_and_legacy(void **state)
{
	struct apikey_format f;
	char k[APIKEY_KEY_MAX + 1], legacy[APIKEY_KEY_MAX + 1], hint[APIKEY_HINT_SIZE];

	profile(&f, "cu_", APIKEY_ALPHA_UUID, 36, false);
	memcpy(f.legacy[0], "eb_", 4);
	f.n_legacy = 1;
	assert_int_equal(apikey_token_generate(&f, k, sizeof(k)), 0);
	assert_int_equal(k[3 + 14], '4');                     /* version 4 */
	assert_true(strchr("89ab", k[3 + 19]) != NULL);       /* RFC 4122 variant */
	snprintf(legacy, sizeof(legacy), "eb_%s", k + 3);
	assert_int_equal(apikey_token_parse(&f, legacy, strlen(legacy)), 0);
	apikey_token_hint(&f, legacy, strlen(legacy), hint);
	assert_memory_equal(hint, "eb_", 3);
	legacy[3 + 8] = 'x';                                   /* hyphen missing */
	assert_int_equal(apikey_token_parse(&f, legacy, strlen(legacy)), APIKEY_ERR_MALFORMED);
	f.n_legacy = 0;
	snprintf(legacy, sizeof(legacy), "eb_%s", k + 3);
	assert_int_equal(apikey_token_parse(&f, legacy, strlen(legacy)), APIKEY_ERR_MALFORMED);
}

static void invalid_profiles(void **state)
{
	struct apikey_format f;

	profile(&f, "", APIKEY_ALPHA_BASE62, 36, true);
	assert_int_equal(apikey_format_validate(&f), APIKEY_ERR_CONFIG);
	profile(&f, "a b", APIKEY_ALPHA_BASE62, 36, true);
	assert_int_equal(apikey_format_validate(&f), APIKEY_ERR_CONFIG);
	profile(&f, "ak_", APIKEY_ALPHA_HEX, 20, true);       /* 12 random hex: 48 bits */
	assert_int_equal(apikey_format_validate(&f), APIKEY_ERR_CONFIG);
	profile(&f, "ak_", APIKEY_ALPHA_UUID, 36, true);      /* uuid has no checksum */
	assert_int_equal(apikey_format_validate(&f), APIKEY_ERR_CONFIG);
	profile(&f, "ak_", APIKEY_ALPHA_BASE62, 126, true);   /* longer than APIKEY_KEY_MAX */
	assert_int_equal(apikey_format_validate(&f), APIKEY_ERR_CONFIG);
}

static void key_ids(void **state)
{
	char a[APIKEY_ID_SIZE], b[APIKEY_ID_SIZE];

	assert_int_equal(apikey_id_generate(a), 0);
	assert_int_equal(apikey_id_generate(b), 0);
	assert_int_equal(strlen(a), APIKEY_ID_LEN);
	assert_memory_equal(a, "key_", 4);
	assert_string_not_equal(a, b);
	/* the shape every front end checks before echoing or looking up an id */
	assert_true(apikey_id_valid(a));
	assert_true(apikey_id_valid("key_0123456789abcdXY"));
	assert_false(apikey_id_valid(NULL));
	assert_false(apikey_id_valid(""));
	assert_false(apikey_id_valid("key_0123456789abcdX"));      /* short */
	assert_false(apikey_id_valid("key_0123456789abcdXYZ"));    /* long */
	assert_false(apikey_id_valid("kex_0123456789abcdXY"));
	assert_false(apikey_id_valid("key_0123456789abcd-Y"));
	assert_false(apikey_id_valid("key_0123456789abcd\xc3\xa9"));   /* not ASCII */
}

/* The checks before the store: one definition, used by verification and by
 * PAM's try_first_pass. */
static void precheck(void **state)
{
	struct apikey_format f;
	char key[APIKEY_KEY_MAX + 1];

	(void)state;
	apikey_format_default(&f);
	assert_int_equal(apikey_token_generate(&f, key, sizeof(key)), 0);
	assert_int_equal(apikey_precheck(&f, key, strlen(key)), APIKEY_VALID);
	assert_int_equal(apikey_precheck(&f, NULL, 0), APIKEY_MISSING_KEY);
	assert_int_equal(apikey_precheck(&f, key, 0), APIKEY_MISSING_KEY);
	assert_int_equal(apikey_precheck(&f, key, strlen(key) - 1), APIKEY_MALFORMED_KEY);
	key[5] ^= 1;     /* checksum no longer matches */
	assert_int_equal(apikey_precheck(&f, key, strlen(key)), APIKEY_MALFORMED_KEY);
	assert_int_equal(apikey_precheck(&f, "hunter2", 7), APIKEY_MALFORMED_KEY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_shape), cmocka_unit_test(malformed_keys),
		cmocka_unit_test(seed_shapes), cmocka_unit_test(uuid_and_legacy),
		cmocka_unit_test(invalid_profiles), cmocka_unit_test(key_ids), cmocka_unit_test(precheck),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

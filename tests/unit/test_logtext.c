/* test_logtext.c — core/logtext.c: client text escaped and bounded on its
 * way into a log line, and withheld when it looks like a key. */
#include "unit.h"

static struct apikey_format fmt;

static bool keylike(const char *s)
{
	return apikey_text_keylike(&fmt, s, strlen(s));
}

static void keys_are_withheld(void **state)
{
	char key[APIKEY_KEY_MAX + 1], typo[APIKEY_KEY_MAX + 1], buf[APIKEY_LOG_TEXT_SIZE];
	struct apikey_format uuidf;

	(void)state;
	apikey_format_default(&fmt);
	assert_int_equal(apikey_token_generate(&fmt, key, sizeof(key)), 0);
	assert_true(keylike(key));
	/* one typo, cut short, or inside other text: still a key */
	snprintf(typo, sizeof(typo), "%s", key);
	typo[10] = typo[10] == 'A' ? 'B' : 'A';
	assert_true(keylike(typo));
	typo[14] = '\0';
	assert_true(keylike(typo));
	snprintf(typo, sizeof(typo), "token=%s;", key);
	assert_true(keylike(typo));
	/* a legacy prefix counts like the primary one */
	snprintf(fmt.legacy[0], sizeof(fmt.legacy[0]), "old_");
	fmt.n_legacy = 1;
	assert_true(keylike("old_Zx81kPq2mN"));
	assert_false(keylike("old_"));
	/* foreign shapes: hex, UUID, base64, sk_live_… */
	assert_true(keylike("3f9a0c1be2d47a8866f0e1d2c3b4a596"));
	assert_true(keylike("5e1c7a52-8f1b-4c3e-9a0d-2b6f7c8d9e0a"));
	assert_true(keylike("q4Ts0w+Jk1Lm9/Xy2ZaBcD=="));
	assert_true(keylike("sk_live_4eC39HqLyjWDarjtT1zdp7dc"));
	assert_true(keylike("Kq3vZ_8-TnWx_aPq-Rs7_Ld2-Yb6Nc_Mf5-Hg1"));
	apikey_format_default(&uuidf);
	uuidf.alphabet = APIKEY_ALPHA_UUID;
	uuidf.body_len = 36;
	uuidf.checksum = false;
	assert_true(apikey_text_keylike(&uuidf, "ak_5e1c7a52-8f1b-4c3e-9a0d-2b6f7c8d9e0a", 39));
	assert_string_equal(apikey_log_text(&fmt, key, strlen(key), "user name", buf, sizeof(buf)),
	                    "<key-like user name withheld>");
	assert_null(strstr(buf, key));
}

static void names_are_not(void **state)
{
	static const char *names[] = {
		"root", "alice", "www-data", "systemd-timesync", "firstname.lastname",
		"christopher.alexander", "svc-backup-2024-daily", "john.smith.2024.contractor",
		"jenkins-agent-build-07", "oracle_db_admin_2023_q4", "k8s-node-exporter-sa-12",
		"JohnSmithAdministrator", "user@EXAMPLE.COM", "DOMAIN\\jsmith2", "ak_", "ak_short",
		"api", "/auth/api/docs/1", "favicon.ico", "v1", "",
	};
	char buf[APIKEY_LOG_TEXT_SIZE];

	(void)state;
	apikey_format_default(&fmt);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (keylike(names[i]))
			fail_msg("'%s' is judged key-like", names[i]);
	}
	assert_false(apikey_text_keylike(NULL, NULL, 0));
	assert_string_equal(apikey_log_text(&fmt, "alice", 5, "user name", buf, sizeof(buf)), "alice");
	assert_string_equal(apikey_log_text(&fmt, NULL, 0, "user name", buf, sizeof(buf)), "-");
}

static void escaped_and_bounded(void **state)
{
	char buf[APIKEY_LOG_TEXT_SIZE], small[12], big[600];
	const char forged[] = "bob\nDec 1 sshd[1]: Accepted password for root";
	const char bytes[] = { 'a', '\0', 'b', '\x1b', '[', '\x7f', '\xff', '"', '\\', '\t', '\r' };

	(void)state;
	apikey_log_escape(forged, strlen(forged), buf, sizeof(buf));
	assert_null(strchr(buf, '\n'));
	assert_non_null(strstr(buf, "bob\\nDec 1"));
	apikey_log_escape(bytes, sizeof(bytes), buf, sizeof(buf));
	assert_string_equal(buf, "a\\x00b\\x1b[\\x7f\\xff\\\"\\\\\\t\\r");
	/* at most APIKEY_LOG_TEXT_MAX bytes shown, the cut marked */
	memset(big, 'x', sizeof(big));
	apikey_log_escape(big, sizeof(big), buf, sizeof(buf));
	assert_int_equal(strlen(buf), APIKEY_LOG_TEXT_MAX + 3);
	assert_string_equal(buf + APIKEY_LOG_TEXT_MAX, "...");
	/* the worst case fits APIKEY_LOG_TEXT_SIZE whole */
	memset(big, '\x01', sizeof(big));
	apikey_log_escape(big, sizeof(big), buf, sizeof(buf));
	assert_int_equal(strlen(buf), 4 * APIKEY_LOG_TEXT_MAX + 3);
	/* a small buffer cuts on a whole escape, never inside one */
	apikey_log_escape(bytes, sizeof(bytes), small, sizeof(small));
	assert_string_equal(small, "a\\x00b...");
	apikey_log_escape("abc", 3, small, 1);
	assert_string_equal(small, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keys_are_withheld),
		cmocka_unit_test(names_are_not),
		cmocka_unit_test(escaped_and_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_config.c — core/config.c: the option grammar, strict numbers, times. */
#include "unit.h"

static void options(void **state)
{
	struct apikey_config c;
	char err[160];

	apikey_config_defaults(&c);
	assert_string_equal(c.db_path, APIKEY_DB_DEFAULT);
	assert_int_equal(apikey_config_apply(&c, "db=/tmp/x.db", err, sizeof(err)), 0);
	assert_string_equal(c.db_path, "/tmp/x.db");
	assert_int_equal(apikey_config_apply(&c, "busy_timeout_ms=250", err, sizeof(err)), 0);
	assert_int_equal(c.busy_timeout_ms, 250);
	/* bad values keep the previous, safe value and say why */
	assert_int_equal(apikey_config_apply(&c, "busy_timeout_ms=-1", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(c.busy_timeout_ms, 250);
	assert_non_null(strstr(err, "busy_timeout_ms"));
	assert_int_equal(apikey_config_apply(&c, "busy_timeout_ms=12abc", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(apikey_config_apply(&c, "busy_timeout_ms=99999999999999999999", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(apikey_config_apply(&c, "scope=Bad Scope", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_string_equal(c.scope, "");
	assert_int_equal(apikey_config_apply(&c, "scope=pam:sshd,pam:su", err, sizeof(err)), 0);
	assert_string_equal(c.scope, "pam:sshd,pam:su");
	assert_int_equal(apikey_config_apply(&c, "auth_error_body=maybe", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_true(c.auth_error_body);
	assert_int_equal(apikey_config_apply(&c, "auth_error_body=no", err, sizeof(err)), 0);
	assert_false(c.auth_error_body);
	assert_int_equal(apikey_config_apply(&c, "no_such_option=1", err, sizeof(err)), APIKEY_ERR_UNKNOWN_OPTION);
	assert_int_equal(apikey_config_apply(&c, "db", err, sizeof(err)), APIKEY_ERR_CONFIG);
	for (int i = 0; i < APIKEY_LISTEN_MAX; i++)
		assert_int_equal(apikey_config_apply(&c, "listen=127.0.0.1:1", err, sizeof(err)), 0);
	assert_int_equal(apikey_config_apply(&c, "listen=127.0.0.1:2", err, sizeof(err)), APIKEY_ERR_CONFIG);
}

static void load_file(void **state)
{
	char path[] = "/tmp/apikey-conf.XXXXXX";
	struct apikey_config c;
	int fd = mkstemp(path);
	const char *text = "# a comment\n\n  key_prefix=cu_  \nkey_alphabet=uuid\nkey_checksum=no\n"
	                   "key_legacy_prefixes=eb_\nthreads=3\n";
	FILE *f = fdopen(fd, "w");

	fputs(text, f);
	fclose(f);
	apikey_config_defaults(&c);
	assert_int_equal(apikey_config_load(&c, path, NULL, NULL), 0);
	assert_string_equal(c.format.prefix, "cu_");
	assert_int_equal(c.format.alphabet, APIKEY_ALPHA_UUID);
	assert_int_equal(c.format.n_legacy, 1);
	assert_int_equal(c.threads, 3);
	/* an inconsistent profile falls back to the default and is an error */
	f = fopen(path, "w");
	fputs("key_alphabet=hex\nkey_length=10\nbogus\n", f);
	fclose(f);
	apikey_config_defaults(&c);
	assert_int_equal(apikey_config_load(&c, path, NULL, NULL), APIKEY_ERR_CONFIG);
	assert_int_equal(apikey_format_validate(&c.format), 0);
	assert_string_equal(c.format.prefix, "ak_");
	unlink(path);
	assert_int_equal(apikey_config_load(&c, path, NULL, NULL), APIKEY_ERR_IO);
	/* a file that opens but cannot be read (here a folder: EISDIR) is not
	 * an empty configuration; a read error mid-file is tested with
	 * injected faults by tests/fuzz/t_faults.sh */
	assert_int_equal(apikey_config_load(&c, "/", NULL, NULL), APIKEY_ERR_IO);
}

static void numbers_and_times(void **state)
{
	unsigned long long v;
	int64_t t;

	assert_int_equal(apikey_parse_uint("42", 1, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(apikey_parse_uint("+42", 1, 100, &v), APIKEY_ERR_INVALID);
	assert_int_equal(apikey_parse_uint(" 42", 1, 100, &v), APIKEY_ERR_INVALID);
	assert_int_equal(apikey_parse_uint("101", 1, 100, &v), APIKEY_ERR_INVALID);
	assert_int_equal(apikey_parse_uint("", 1, 100, &v), APIKEY_ERR_INVALID);
	assert_int_equal(apikey_parse_duration("90d", &t), 0);
	assert_int_equal(t, 90 * 86400);
	assert_int_equal(apikey_parse_duration("24h", &t), 0);
	assert_int_equal(t, 86400);
	assert_int_equal(apikey_parse_duration("0", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(apikey_parse_duration("5x", &t), APIKEY_ERR_INVALID);
	assert_int_equal(apikey_parse_duration("-5m", &t), APIKEY_ERR_INVALID);
	assert_int_equal(apikey_parse_duration("999999999999d", &t), APIKEY_ERR_INVALID);
	assert_int_equal(apikey_parse_time("2026-01-02T03:04:05Z", &t), 0);
	assert_int_equal(t, 1767323045);
	assert_int_equal(apikey_parse_time("2026-01-02T05:04:05+02:00", &t), 0);
	assert_int_equal(t, 1767323045);
	assert_int_equal(apikey_parse_time("2026-01-02", &t), APIKEY_ERR_INVALID);
	assert_int_equal(apikey_parse_time("2026-01-02T03:04:05", &t), APIKEY_ERR_INVALID);
	char buf[32];
	apikey_format_time(1767323045, buf);
	assert_string_equal(buf, "2026-01-02T03:04:05Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options), cmocka_unit_test(load_file),
		cmocka_unit_test(numbers_and_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

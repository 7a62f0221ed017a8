/* test_config.c — core/config.c and core/options.c: the option grammar (the
 * core's settings and a front end's bindings), the lookup order, strict
 * numbers, times. */
#include <stddef.h>
#include <time.h>
#include "unit.h"

/* A front end's own settings, bound by name as the PAM module and apikeyd do. */
struct fe {
	char scope[APIKEY_SCOPES_SIZE];
	unsigned auth_error_body;
	unsigned threads;
	char listen[8][APIKEY_NAME_SIZE];
	unsigned n_listen;
	char prompt[8];
};
static const struct apikey_binding fe_bindings[] = {
	APIKEY_BIND(struct fe, scope, "scope", APIKEY_OPT_SCOPES),
	APIKEY_BIND(struct fe, auth_error_body, "auth_error_body", APIKEY_OPT_CHOICE),
	APIKEY_BIND(struct fe, threads, "threads", APIKEY_OPT_UINT),
	APIKEY_BIND_LIST(struct fe, listen, n_listen, "listen"),
	APIKEY_BIND(struct fe, prompt, "prompt", APIKEY_OPT_TEXT),
};

static void options(void **state)
{
	struct apikey_config c;
	struct fe fe = { .auth_error_body = 1 };
	struct apikey_settings set = { fe_bindings, sizeof(fe_bindings) / sizeof(fe_bindings[0]), &fe };
	char err[160];

	apikey_config_defaults(&c);
	assert_string_equal(c.db_path, APIKEY_DB_DEFAULT);
	assert_int_equal(apikey_config_apply(&c, NULL, "db=/tmp/x.db", err, sizeof(err)), 0);
	assert_string_equal(c.db_path, "/tmp/x.db");
	assert_int_equal(apikey_config_apply(&c, NULL, "busy_timeout_ms=250", err, sizeof(err)), 0);
	assert_int_equal(c.busy_timeout_ms, 250);
	/* bad values keep the previous, safe value and say why */
	assert_int_equal(apikey_config_apply(&c, NULL, "busy_timeout_ms=-1", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(c.busy_timeout_ms, 250);
	assert_non_null(strstr(err, "busy_timeout_ms"));
	assert_int_equal(apikey_config_apply(&c, NULL, "busy_timeout_ms=12abc", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(apikey_config_apply(&c, NULL, "busy_timeout_ms=99999999999999999999", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(apikey_config_apply(&c, &set, "scope=Bad Scope", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_string_equal(fe.scope, "");
	assert_int_equal(apikey_config_apply(&c, &set, "scope=pam:sshd,pam:su", err, sizeof(err)), 0);
	assert_string_equal(fe.scope, "pam:sshd,pam:su");
	assert_int_equal(apikey_config_apply(&c, &set, "auth_error_body=maybe", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_string_equal(err, "auth_error_body: must be yes, no or header");
	assert_int_equal(fe.auth_error_body, 1);
	assert_int_equal(apikey_config_apply(&c, &set, "auth_error_body=no", err, sizeof(err)), 0);
	assert_int_equal(fe.auth_error_body, 0);
	assert_int_equal(apikey_config_apply(&c, &set, "auth_error_body=header", err, sizeof(err)), 0);
	assert_int_equal(fe.auth_error_body, 2);
	assert_int_equal(apikey_config_apply(&c, &set, "auth_error_body=on", err, sizeof(err)), 0);
	assert_int_equal(fe.auth_error_body, 1);
	assert_int_equal(apikey_config_apply(&c, &set, "threads=3", err, sizeof(err)), 0);
	assert_int_equal(fe.threads, 3);
	assert_int_equal(apikey_config_apply(&c, &set, "threads=257", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(fe.threads, 3);
	assert_int_equal(apikey_config_apply(&c, &set, "no_such_option=1", err, sizeof(err)), APIKEY_ERR_UNKNOWN_OPTION);
	assert_int_equal(apikey_config_apply(&c, &set, "db", err, sizeof(err)), APIKEY_ERR_CONFIG);
	for (int i = 0; i < 8; i++)
		assert_int_equal(apikey_config_apply(&c, &set, "listen=127.0.0.1:1", err, sizeof(err)), 0);
	assert_int_equal(apikey_config_apply(&c, &set, "listen=127.0.0.1:2", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(fe.n_listen, 8);
	assert_int_equal(apikey_config_apply(&c, &set, "listen=", err, sizeof(err)), APIKEY_ERR_CONFIG);
	/* the field's size bounds a value the grammar would allow */
	assert_int_equal(apikey_config_apply(&c, &set, "prompt=Key:", err, sizeof(err)), 0);
	assert_int_equal(apikey_config_apply(&c, &set, "prompt=Your key:", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_string_equal(fe.prompt, "Key:");
}

/* A shared apikey.conf: another front end's option is checked, not stored,
 * and not unknown; the core's own are never a front end's. */
static void options_of_other_front_ends(void **state)
{
	struct apikey_config c;
	char err[160];

	(void)state;
	apikey_config_defaults(&c);
	assert_int_equal(apikey_config_apply(&c, NULL, "threads=4", err, sizeof(err)), 0);
	assert_int_equal(apikey_config_apply(&c, NULL, "threads=four", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_non_null(strstr(err, "threads"));
	assert_int_equal(apikey_config_apply(&c, NULL, "scope=pam:x", err, sizeof(err)), 0);
	assert_int_equal(apikey_config_apply(&c, NULL, "scope=Not A Scope", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(apikey_config_apply(&c, NULL, "listen=127.0.0.1:1", err, sizeof(err)), 0);
	assert_int_equal(apikey_config_apply(&c, NULL, "listen=", err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_int_equal(apikey_config_apply(&c, NULL, "auth_error_body=maybe", err, sizeof(err)), APIKEY_ERR_CONFIG);
	/* the grammar bounds a value's length for every reader, bound or not */
	char line[300];
	snprintf(line, sizeof(line), "key_header=%0200d", 7);
	assert_int_equal(apikey_config_apply(&c, NULL, line, err, sizeof(err)), APIKEY_ERR_CONFIG);
	assert_non_null(strstr(err, "too long"));
	assert_int_equal(apikey_config_apply(&c, NULL, "key_legacy_prefixes=a_,b_,c_,d_,e_", err, sizeof(err)),
	                 APIKEY_ERR_CONFIG);
	assert_int_equal(c.format.n_legacy, 0);   /* all or nothing */
	assert_int_equal(apikey_config_apply(&c, NULL, "key_legacy_prefixes=a_, b_", err, sizeof(err)), 0);
	assert_int_equal(c.format.n_legacy, 2);
	assert_string_equal(c.format.legacy[1], "b_");
}

/* The one lookup order: --conf, $APIKEY_CONF, the default; --db, $APIKEY_DB, db=. */
static void lookup_order(void **state)
{
	char path[] = "/tmp/apikey-conf.XXXXXX", ppath[APIKEY_PATH_SIZE];
	struct apikey_config_sources src = { .env = true };
	struct apikey_config c;
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	(void)state;
	fputs("db=/from/file.db\n", f);
	fclose(f);
	setenv("APIKEY_CONF", path, 1);
	unsetenv("APIKEY_DB");
	assert_string_equal(apikey_config_file(&src), path);
	apikey_config_defaults(&c);
	assert_int_equal(apikey_config_read(&c, NULL, &src, NULL, NULL), 0);
	assert_string_equal(c.db_path, "/from/file.db");
	assert_int_equal(apikey_config_pepper_path(&c, ppath, sizeof(ppath)), 0);
	assert_string_equal(ppath, "/from/file.db.pepper");
	setenv("APIKEY_DB", "/from/env.db", 1);
	assert_int_equal(apikey_config_read(&c, NULL, &src, NULL, NULL), 0);
	assert_string_equal(c.db_path, "/from/env.db");
	src.db = "/from/flag.db";
	assert_int_equal(apikey_config_read(&c, NULL, &src, NULL, NULL), 0);
	assert_string_equal(c.db_path, "/from/flag.db");
	/* without the environment (the PAM module): the file's db= */
	src = (struct apikey_config_sources){ .conf = path };
	apikey_config_defaults(&c);
	assert_int_equal(apikey_config_read(&c, NULL, &src, NULL, NULL), 0);
	assert_string_equal(c.db_path, "/from/file.db");
	/* an explicit file must be readable */
	src.conf = "/nonexistent/apikey.conf";
	assert_int_equal(apikey_config_read(&c, NULL, &src, NULL, NULL), APIKEY_ERR_IO);
	snprintf(c.pepper_path, sizeof(c.pepper_path), "/p/pepper");
	assert_int_equal(apikey_config_pepper_path(&c, ppath, sizeof(ppath)), 0);
	assert_string_equal(ppath, "/p/pepper");
	unsetenv("APIKEY_CONF");
	unsetenv("APIKEY_DB");
	unlink(path);
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
	assert_int_equal(apikey_config_load(&c, NULL, path, NULL, NULL), 0);
	assert_string_equal(c.format.prefix, "cu_");
	assert_int_equal(c.format.alphabet, APIKEY_ALPHA_UUID);
	assert_int_equal(c.format.n_legacy, 1);   /* threads=3: another front end's, accepted */
	/* an inconsistent profile falls back to the default and is an error */
	f = fopen(path, "w");
	fputs("key_alphabet=hex\nkey_length=10\nbogus\n", f);
	fclose(f);
	apikey_config_defaults(&c);
	assert_int_equal(apikey_config_load(&c, NULL, path, NULL, NULL), APIKEY_ERR_CONFIG);
	assert_int_equal(apikey_format_validate(&c.format), 0);
	assert_string_equal(c.format.prefix, "ak_");
	unlink(path);
	assert_int_equal(apikey_config_load(&c, NULL, path, NULL, NULL), APIKEY_ERR_IO);
	/* a file that opens but cannot be read (here a folder: EISDIR) is not
	 * an empty configuration; a read error mid-file is tested with
	 * injected faults by tests/fuzz/t_faults.sh */
	assert_int_equal(apikey_config_load(&c, NULL, "/", NULL, NULL), APIKEY_ERR_IO);
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

/* A duration counts from now rounded up: "1s" is after the precise now
 * plus one second, so a write that checks "in the future" a moment later,
 * even in the next second, still finds it ahead. */
static void durations_from_now(void **state)
{
	struct timespec before, after;
	int64_t t;

	clock_gettime(CLOCK_REALTIME, &before);
	t = apikey_time_after(1);
	clock_gettime(CLOCK_REALTIME, &after);
	assert_true(t * 1000000000LL >= (before.tv_sec + 1) * 1000000000LL + before.tv_nsec);
	assert_true(t <= after.tv_sec + 2);
	t = apikey_time_after(90 * 86400) - 90 * 86400;
	assert_true(t > before.tv_sec || (t == before.tv_sec && before.tv_nsec == 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options), cmocka_unit_test(options_of_other_front_ends),
		cmocka_unit_test(lookup_order), cmocka_unit_test(load_file),
		cmocka_unit_test(numbers_and_times), cmocka_unit_test(durations_from_now),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

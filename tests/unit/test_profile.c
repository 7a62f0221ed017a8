/* test_profile.c — core/profile.c: the scope catalogue, presets, default
 * preset and rate-limit tiers of a profile; the checks between options,
 * reported on the line that must change; and what a store does with them
 * (init installs the profile's presets, every write keeps to the catalogue
 * and the tiers, preset sync). */
#include "unit.h"

struct logged { char text[4096]; };

static void collect(void *ctx, int prio, const char *msg)
{
	struct logged *l = ctx;
	size_t n = strlen(l->text);

	(void)prio;
	snprintf(l->text + n, sizeof(l->text) - n, "%s\n", msg);
}

/* Load the lines as a file into a fresh configuration (caller frees). */
static struct apikey_config *load(const char *text, int want, struct logged *log)
{
	char path[] = "/tmp/apikey-profile.XXXXXX";
	struct apikey_config *c = malloc(sizeof(*c));
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	assert_non_null(c);
	fputs(text, f);
	fclose(f);
	memset(log, 0, sizeof(*log));
	apikey_config_defaults(c);
	assert_int_equal(apikey_config_load(c, NULL, path, collect, log), want);
	unlink(path);
	return c;
}

static void logged(const struct logged *log, const char *want)
{
	if (!strstr(log->text, want))
		fail_msg("'%s' not in:\n%s", want, log->text);
}

static void catalogue(void **state)
{
	struct logged log;
	struct apikey_config *c = load("scopes=claws:read,claws:write chat:read\nscopes=pam:*\nscopes=claws:read\n",
	                               0, &log);
	const struct apikey_profile *p = &c->profile;
	static const struct { const char *scope; bool in; } cases[] = {
		{ "claws:read", true }, { "claws:raed", false }, { "claw:read", false },
		{ "claws:*", true }, { "deployment:*", false }, { "*:read", true }, { "*:delete", true } /* pam:delete is in pam:* */, { "x:*", false },
		{ "*", true }, { "pam:sshd", true }, { "pam:*", true },
		{ "apikey:admin", true }, { "apikey:read", true }, { "apikey:*", false },
	};

	(void)state;
	assert_int_equal(p->n_catalogue, 4);      /* lines add up, duplicates once */
	assert_int_equal(p->catalogue_line, 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (apikey_scope_in_catalogue(p, cases[i].scope, strlen(cases[i].scope)) != cases[i].in)
			fail_msg("%s: %s", cases[i].scope, cases[i].in ? "refused" : "allowed");
	/* no catalogue: any valid scope */
	free(c);
	c = load("", 0, &log);
	assert_true(apikey_scope_in_catalogue(&c->profile, "any:thing", 9));
	free(c);
}

/* Problems between options are reported on the line that must change. */
static void lines_named(void **state)
{
	struct logged log;
	struct apikey_config *c;

	(void)state;
	c = load("key_prefix=hc_\npreset.mcp=projects:read,agents:write\nscopes=projects:read,agents:read\n",
	         APIKEY_ERR_CONFIG, &log);
	logged(&log, ":2: preset.mcp: scope 'agents:write' is not in the scope catalogue (scopes=, line 3)");
	free(c);
	c = load("preset.api=api:access\ndefault_preset=read-only\n", APIKEY_ERR_CONFIG, &log);
	logged(&log, ":2: default_preset: no preset 'read-only' in this profile");
	free(c);
	c = load("default_preset=read-only\n", 0, &log);     /* a built-in, when none is declared */
	assert_string_equal(apikey_profile_preset(&c->profile, "read-only"), "*:read");
	free(c);
	c = load("rate_limit_tiers=30,120,300\n", APIKEY_ERR_CONFIG, &log);
	logged(&log, ":1: rate_limit_tiers: default_rate_limit 60 is not one of the tiers 30,120,300");
	free(c);
	c = load("rate_limit_tiers=30,60,120,300\ndefault_rate_limit=45\n", APIKEY_ERR_CONFIG, &log);
	logged(&log, ":2: default_rate_limit: 45 is not one of the tiers 30,60,120,300");
	free(c);
	c = load("preset.pa-only=pa:access\npreset.pa-only=pa:access\npreset.Full=a:b\npreset.x=a:B\n"
	         "scopes=*:read\nrate_limit_tiers=30,0\nerror_code.NOPE=X\n", APIKEY_ERR_CONFIG, &log);
	logged(&log, ":2: preset.pa-only: declared twice (first on line 1)");
	logged(&log, ":3: preset.Full: a preset name is 1-31 of [a-z0-9_-]");
	logged(&log, ":4: preset.x: 'a:B' is not a valid scope");
	logged(&log, ":5: scopes: '*:read' is not a catalogue entry (resource:action or resource:*)");
	logged(&log, ":6: rate_limit_tiers: '0' is not 1..1000000");
	logged(&log, ":7: error_code.NOPE: no such outcome");
	free(c);
}

/* init installs the profile's presets instead of the built-ins; writes keep
 * to the catalogue and the tiers, whoever asks; preset sync. */
static void a_store_under_a_profile(void **state)
{
	char dir[] = "/tmp/apikey-profile-db.XXXXXX", key[APIKEY_KEY_MAX + 1], scopes[APIKEY_SCOPES_SIZE];
	char why[APIKEY_WHY_SIZE];
	struct logged log;
	struct apikey_config *c = load("scopes=claws:read,claws:write,chat:read\n"
	                               "preset.reader=claws:read,chat:read\ndefault_preset=reader\n"
	                               "rate_limit_tiers=30,60,120\n", 0, &log);
	struct apikey_create_params cp = { .owner = "acme" };
	struct apikey_update_params up = { 0 };
	struct apikey_key_info info;
	struct apikey_store *s;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(c->db_path, sizeof(c->db_path), "%s/keys.db", dir);
	assert_int_equal(apikey_store_init(c, NULL, NULL), 0);
	assert_int_equal(apikey_store_open(&s, c, NULL, NULL), 0);
	assert_int_equal(apikey_preset_get(s, "reader", scopes), 0);
	assert_string_equal(scopes, "claws:read,chat:read");
	assert_int_equal(apikey_preset_get(s, "full-access", scopes), APIKEY_ERR_NOT_FOUND);
	/* neither scopes nor preset: the default preset */
	assert_int_equal(apikey_key_create(s, &cp, TEST_ACTOR, key, sizeof(key), &info), 0);
	assert_string_equal(info.scopes, "claws:read,chat:read");
	/* the catalogue, in every write and in the store-free checks alike */
	cp.scopes = "claws:raed";
	assert_int_equal(apikey_key_create(s, &cp, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	assert_string_equal(apikey_store_why(s), "scope 'claws:raed' is not in the scope catalogue");
	assert_int_equal(apikey_create_check(c, &cp, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_string_equal(why, "scope 'claws:raed' is not in the scope catalogue");
	assert_int_equal(apikey_create_check(NULL, &cp, why, sizeof(why)), 0);   /* no profile, no catalogue */
	cp.scopes = "claws:*";
	assert_int_equal(apikey_key_create(s, &cp, TEST_ACTOR, key, sizeof(key), NULL), 0);
	cp.scopes = "claws:read";
	cp.rate_limit = 45;
	assert_int_equal(apikey_key_create(s, &cp, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	assert_string_equal(apikey_store_why(s), "rate limit 45 is not one of the tiers 30,60,120");
	up.scopes = "team:admin";
	assert_int_equal(apikey_key_update(s, info.id, &up, TEST_ACTOR, NULL), APIKEY_ERR_INVALID);
	assert_string_equal(apikey_store_why(s), "scope 'team:admin' is not in the scope catalogue");
	up.scopes = NULL;
	up.rate_limit = 999;
	assert_int_equal(apikey_key_update(s, info.id, &up, TEST_ACTOR, NULL), APIKEY_ERR_INVALID);
	up.rate_limit = 120;
	assert_int_equal(apikey_key_update(s, info.id, &up, TEST_ACTOR, &info), 0);
	assert_int_equal(info.rate_limit, 120);
	assert_int_equal(apikey_preset_set(s, "ops", "claws:write,billing:read", TEST_ACTOR), APIKEY_ERR_INVALID);
	assert_string_equal(apikey_store_why(s), "scope 'billing:read' is not in the scope catalogue");
	/* a stored preset from before the catalogue is refused when used */
	assert_int_equal(apikey_preset_sync(s, TEST_ACTOR, NULL, NULL), 0);
	apikey_store_free(s);
	free(c);
	c = load("scopes=claws:read\npreset.reader=claws:read\n", 0, &log);
	snprintf(c->db_path, sizeof(c->db_path), "%s/keys.db", dir);
	assert_int_equal(apikey_store_open(&s, c, NULL, NULL), 0);
	cp = (struct apikey_create_params){ .owner = "acme", .preset = "reader" };
	assert_int_equal(apikey_key_create(s, &cp, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	assert_string_equal(apikey_store_why(s), "scope 'chat:read' is not in the scope catalogue (preset 'reader')");
	/* sync replaces the declared one, leaves the rest */
	assert_int_equal(apikey_preset_sync(s, TEST_ACTOR, NULL, NULL), 0);
	assert_int_equal(apikey_preset_get(s, "reader", scopes), 0);
	assert_string_equal(scopes, "claws:read");
	assert_int_equal(apikey_key_create(s, &cp, TEST_ACTOR, key, sizeof(key), NULL), 0);
	apikey_store_free(s);
	free(c);
	snprintf(key, sizeof(key), "rm -rf '%s'", dir);
	assert_int_equal(system(key), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(catalogue), cmocka_unit_test(lines_named), cmocka_unit_test(a_store_under_a_profile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

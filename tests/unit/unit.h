/* unit.h — shared set-up for the core's cmocka tests: a fresh store in a
 * private temporary folder. */
#ifndef UNIT_H
#define UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "apikey.h"

/* The writer of every test write (struct apikey_actor: source "test"). */
#define TEST_ACTOR (&(const struct apikey_actor){ .source = "test" })

struct fixture {
	char dir[64];
	struct apikey_config cfg;
	struct apikey_store *s;
};

static inline int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/apikey-unit.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	apikey_config_defaults(&f->cfg);
	snprintf(f->cfg.db_path, sizeof(f->cfg.db_path), "%s/keys.db", f->dir);
	if (apikey_store_init(&f->cfg, NULL, NULL) != 0 || apikey_store_open(&f->s, &f->cfg, NULL, NULL) != 0)
		return -1;
	*state = f;
	return 0;
}

static inline int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	apikey_store_free(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Issue a key with the given scopes for owner; returns its id in id_out. */
static inline void make_key(struct apikey_store *s, const char *owner, const char *scopes, uint32_t rate,
                            int64_t expires, char key[APIKEY_KEY_MAX + 1], char id[APIKEY_ID_SIZE])
{
	struct apikey_create_params p = { .owner = owner, .scopes = scopes, .rate_limit = rate,
	                                  .expires_at_s = expires };
	struct apikey_key_info info;

	assert_int_equal(apikey_key_create(s, &p, TEST_ACTOR, key, APIKEY_KEY_MAX + 1, &info), 0);
	memcpy(id, info.id, APIKEY_ID_SIZE);
}

static inline enum apikey_outcome verify(struct apikey_store *s, const char *key, const char *scopes,
                                         const char *user)
{
	struct apikey_verify_request rq = { .key = key, .key_len = key ? strlen(key) : 0,
	                                    .scopes = scopes, .user = user, .source = "test" };
	struct apikey_verify_result res;

	assert_int_equal(apikey_verify(s, &rq, &res), 0);
	return res.outcome;
}
#endif

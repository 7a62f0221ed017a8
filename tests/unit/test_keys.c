/* test_keys.c — core/keys.c, core/admin.c, core/import.c and core/rules.c:
 * a key's status, the update rule, the actor and audit event of every
 * write, and the one validation shared by create, update and import. */
#include <time.h>
#include "unit.h"

#define DAY 86400

static struct apikey_event events[16];
static int n_events;

static int keep_event(void *ctx, const struct apikey_event *e)
{
	(void)ctx;
	if (n_events < 16)
		events[n_events++] = *e;
	return 0;
}

/* The newest event (of key id, or of all when NULL). */
static const struct apikey_event *newest(struct apikey_store *s, const char *id)
{
	n_events = 0;
	assert_int_equal(apikey_event_list(s, id, 16, keep_event, NULL), 0);
	assert_true(n_events > 0);
	return &events[0];
}

/* Two records say the same (strings up to their NUL, every number). */
static void same_key(const struct apikey_key_info *a, const struct apikey_key_info *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->owner, b->owner);
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->scopes, b->scopes);
	assert_string_equal(a->metadata, b->metadata);
	assert_string_equal(a->rotated_to, b->rotated_to);
	assert_int_equal(a->rate_limit, b->rate_limit);
	assert_int_equal(a->expires_at_s, b->expires_at_s);
	assert_int_equal(a->revoked_at_s, b->revoked_at_s);
}

static void status_at_a_time(void **state)
{
	struct apikey_key_info k = { .expires_at_s = 2000 };

	(void)state;
	assert_int_equal(apikey_key_status(&k, 1999), APIKEY_KEY_ACTIVE);
	assert_int_equal(apikey_key_status(&k, 2000), APIKEY_KEY_EXPIRED);
	memcpy(k.rotated_to, "key_AAAAAAAAAAAAAAAA", APIKEY_ID_SIZE);
	assert_int_equal(apikey_key_status(&k, 1999), APIKEY_KEY_ROTATING);
	assert_int_equal(apikey_key_status(&k, 2001), APIKEY_KEY_EXPIRED);
	k.revoked_at_s = 1500;
	assert_int_equal(apikey_key_status(&k, 1499), APIKEY_KEY_ROTATING);
	assert_int_equal(apikey_key_status(&k, 1500), APIKEY_KEY_REVOKED);
	assert_string_equal(apikey_key_status_name(APIKEY_KEY_ACTIVE), "active");
	assert_string_equal(apikey_key_status_name(APIKEY_KEY_ROTATING), "rotating");
	assert_string_equal(apikey_key_status_name(APIKEY_KEY_REVOKED), "revoked");
	assert_string_equal(apikey_key_status_name(APIKEY_KEY_EXPIRED), "expired");
	assert_string_equal(apikey_key_status_name((enum apikey_key_status)42), "revoked");
}

static void update_edits_and_audits(void **state)
{
	struct fixture *f = *state;
	const struct apikey_actor admin = { .source = "http", .key_id = "key_AdminAdminAdmin0" };
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	int64_t later = (int64_t)time(NULL) + 30 * DAY;
	struct apikey_update_params p = { .name = "renamed", .scopes = "b:c a:b", .rate_limit = 120,
	                                  .expiry = APIKEY_EXPIRY_SET, .expires_at_s = later,
	                                  .metadata = "{\"tier\":2}" };
	struct apikey_key_info info, got;
	const struct apikey_event *e;

	make_key(f->s, "ann", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_key_update(f->s, id, &p, &admin, &info), 0);
	assert_string_equal(info.name, "renamed");
	assert_string_equal(info.scopes, "b:c,a:b");
	assert_int_equal(info.rate_limit, 120);
	assert_int_equal(info.expires_at_s, later);
	assert_string_equal(info.metadata, "{\"tier\":2}");
	assert_int_equal(apikey_key_get(f->s, id, &got), 0);
	same_key(&got, &info);
	e = newest(f->s, id);
	assert_string_equal(e->event, "updated");
	assert_string_equal(e->reason, "name,scopes,rate_limit,expires_at,metadata");
	assert_string_equal(e->source, "http");
	assert_string_equal(e->actor, "key_AdminAdminAdmin0");
	assert_int_equal(verify(f->s, key, "b:c", "ann"), APIKEY_VALID);

	/* only what changes is named; nothing changed, nothing written */
	p = (struct apikey_update_params){ .expiry = APIKEY_EXPIRY_NEVER, .name = "renamed" };
	assert_int_equal(apikey_key_update(f->s, id, &p, TEST_ACTOR, &info), 0);
	assert_int_equal(info.expires_at_s, 0);
	assert_string_equal(newest(f->s, id)->reason, "expires_at");
	int before = n_events;
	assert_int_equal(apikey_key_update(f->s, id, &p, TEST_ACTOR, NULL), 0);
	newest(f->s, id);
	assert_int_equal(n_events, before);

	/* a preset's scopes */
	assert_int_equal(apikey_preset_set(f->s, "docs", "docs:read", TEST_ACTOR), 0);
	p = (struct apikey_update_params){ .preset = "docs" };
	assert_int_equal(apikey_key_update(f->s, id, &p, TEST_ACTOR, &info), 0);
	assert_string_equal(info.scopes, "docs:read");
	p.preset = "nosuch";
	assert_int_equal(apikey_key_update(f->s, id, &p, TEST_ACTOR, NULL), APIKEY_ERR_NOT_FOUND);
	assert_int_equal(apikey_key_update(f->s, "key_NoSuchKey0000000", &(struct apikey_update_params){
	                 .name = "x" }, TEST_ACTOR, NULL), APIKEY_ERR_NOT_FOUND);
}

/* Update validates like create: the same refusals, nothing written. */
static void update_validates_like_create(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_key_info before, after;
	const struct apikey_update_params bad[] = {
		{ .scopes = "Not A Scope" },
		{ .scopes = "" },
		{ .scopes = "a:b", .preset = "read-only" },
		{ .rate_limit = APIKEY_RATE_MAX + 1 },
		{ .expiry = APIKEY_EXPIRY_SET, .expires_at_s = 1000 },        /* past */
		{ .expiry = APIKEY_EXPIRY_SET, .expires_at_s = 0 },
		{ .expiry = (enum apikey_expiry_change)7 },
		{ .name = "tab\there" },
		{ .metadata = "[1,2]" },
		{ .metadata = "{not json" },
	};
	char why[APIKEY_WHY_SIZE];

	make_key(f->s, "bea", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_key_get(f->s, id, &before), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(apikey_key_update(f->s, id, &bad[i], TEST_ACTOR, NULL), APIKEY_ERR_INVALID);
		if (!bad[i].metadata) {   /* JSON needs the store */
			assert_int_equal(apikey_update_check(NULL, &bad[i], why, sizeof(why)), APIKEY_ERR_INVALID);
			assert_true(why[0] != '\0');
		}
	}
	assert_int_equal(apikey_key_get(f->s, id, &after), 0);
	same_key(&before, &after);
	assert_string_equal(newest(f->s, id)->event, "created");
	/* the create check names the same fields */
	struct apikey_create_params c = { .owner = "bea", .scopes = "a:b", .rate_limit = APIKEY_RATE_MAX + 1 };
	assert_int_equal(apikey_create_check(NULL, &c, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "rate_limit"));
	c.rate_limit = 0;
	c.expires_at_s = 1000;
	assert_int_equal(apikey_create_check(NULL, &c, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "expires_at"));
	c.expires_at_s = 0;
	c.preset = "read-only";
	assert_int_equal(apikey_create_check(NULL, &c, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "preset"));
	c.preset = NULL;
	assert_int_equal(apikey_create_check(NULL, &c, why, sizeof(why)), 0);
}

/* Revoked and rotated-away keys keep their rights withdrawn; an expired key
 * may be given a new expiry. */
static void update_refuses_dead_keys(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], next[APIKEY_KEY_MAX + 1], id2[APIKEY_ID_SIZE];
	struct apikey_update_params p = { .name = "again" };
	struct apikey_verify_request rq = { 0 };
	struct apikey_verify_result res;
	struct apikey_key_info info;

	make_key(f->s, "cy", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_key_revoke(f->s, id, TEST_ACTOR), 0);
	assert_int_equal(apikey_key_update(f->s, id, &p, TEST_ACTOR, NULL), APIKEY_ERR_CONFLICT);
	make_key(f->s, "cy", "a:b", 0, 0, key, id2);
	assert_int_equal(apikey_key_rotate(f->s, id2, 3600, TEST_ACTOR, next, sizeof(next), &info), 0);
	p.expiry = APIKEY_EXPIRY_NEVER;     /* would bring it back from its grace period */
	assert_int_equal(apikey_key_update(f->s, id2, &p, TEST_ACTOR, NULL), APIKEY_ERR_CONFLICT);
	assert_int_equal(apikey_key_update(f->s, info.id, &p, TEST_ACTOR, NULL), 0);   /* the successor */

	make_key(f->s, "cy", "a:b", 0, (int64_t)time(NULL) + 60, key, id);
	rq.key = key;
	rq.key_len = strlen(key);
	rq.now_ms = ((int64_t)time(NULL) + 120) * 1000;
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_EXPIRED);
	p = (struct apikey_update_params){ .expiry = APIKEY_EXPIRY_SET, .expires_at_s = (int64_t)time(NULL) + DAY };
	assert_int_equal(apikey_key_update(f->s, id, &p, TEST_ACTOR, NULL), 0);
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_VALID);
}

/* An update reaches every front end's cache like a revoke: a narrower scope
 * is refused from the next request on. */
static void update_invalidates_caches(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verifier v = { .store = f->s };
	struct apikey_verify_request rq = { .scopes = "a:b" };
	struct apikey_update_params p = { .scopes = "c:d" };
	struct apikey_verify_result res;
	struct apikey_store *other;

	assert_int_equal(apikey_cache_new(&v.cache, 0), 0);
	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	make_key(f->s, "dee", "a:b", 0, 0, key, id);
	rq.key = key;
	rq.key_len = strlen(key);
	for (int i = 0; i < 3; i++) {
		apikey_verify_cached(&v, &rq, &res);
		assert_int_equal(res.outcome, APIKEY_VALID);
	}
	assert_int_equal(apikey_store_open(&other, &f->cfg, NULL, NULL), 0);
	assert_int_equal(apikey_key_update(other, id, &p, TEST_ACTOR, NULL), 0);
	apikey_verify_cached(&v, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_INSUFFICIENT_SCOPE);
	apikey_store_free(other);
	apikey_cache_free(v.cache);
	apikey_limiter_free(v.limiter);
}

/* Every write names its writer: source and acting key, in its event. */
static void every_write_has_an_actor_and_an_event(void **state)
{
	struct fixture *f = *state;
	const struct apikey_actor admin = { .source = "http", .key_id = "key_AdminAdminAdmin0" };
	const struct apikey_actor bad[] = {
		{ .source = NULL }, { .source = "" }, { .source = "http", .key_id = "ak_not-an-id" },
	};
	struct apikey_create_params cp = { .owner = "eve", .scopes = "a:b" };
	struct apikey_import_params ip = {
		.hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		.hint = "ak_abcdef", .owner = "eve", .scopes = "a:b",
	};
	char key[APIKEY_KEY_MAX + 1];
	struct apikey_key_info info;
	const struct apikey_event *e;
	unsigned kr, er;

	/* the created event keeps its key id when the caller wants no info */
	assert_int_equal(apikey_key_create(f->s, &cp, &admin, key, sizeof(key), NULL), 0);
	e = newest(f->s, NULL);
	assert_string_equal(e->event, "created");
	assert_true(apikey_id_valid(e->key_id));
	assert_string_equal(e->source, "http");
	assert_string_equal(e->actor, "key_AdminAdminAdmin0");

	assert_int_equal(apikey_import_one(f->s, &ip, &admin, &info), 0);
	e = newest(f->s, NULL);
	assert_string_equal(e->event, "imported");
	assert_string_equal(e->key_id, info.id);
	assert_string_equal(e->reason, "sha256");
	assert_string_equal(e->actor, "key_AdminAdminAdmin0");

	/* a batch's imports: one event per writer, written at commit */
	assert_int_equal(apikey_import_begin(f->s), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(apikey_import_one(f->s, &ip, &admin, NULL), 0);
	assert_int_equal(apikey_import_one(f->s, &ip, TEST_ACTOR, NULL), 0);
	assert_int_equal(apikey_import_commit(f->s), 0);
	e = newest(f->s, NULL);
	assert_string_equal(e->event, "imported");
	assert_string_equal(e->reason, "1 keys");
	assert_string_equal(e->source, "test");
	assert_string_equal(events[1].event, "imported");
	assert_string_equal(events[1].reason, "3 keys");
	assert_string_equal(events[1].key_id, "");
	assert_string_equal(events[1].actor, "key_AdminAdminAdmin0");
	/* a rolled-back batch leaves no event */
	assert_int_equal(apikey_import_begin(f->s), 0);
	assert_int_equal(apikey_import_one(f->s, &ip, &admin, NULL), 0);
	apikey_import_rollback(f->s);
	assert_string_equal(newest(f->s, NULL)->reason, "1 keys");

	assert_int_equal(apikey_preset_set(f->s, "ops", "ops:*", &admin), 0);
	e = newest(f->s, NULL);
	assert_string_equal(e->event, "preset-set");
	assert_string_equal(e->reason, "ops");
	assert_string_equal(e->key_id, "");
	assert_int_equal(apikey_preset_remove(f->s, "ops", &admin), 0);
	assert_string_equal(newest(f->s, NULL)->event, "preset-removed");
	assert_int_equal(apikey_preset_remove(f->s, "ops", &admin), APIKEY_ERR_NOT_FOUND);
	assert_string_equal(newest(f->s, NULL)->event, "preset-removed");   /* no second one */

	assert_int_equal(apikey_account_set(f->s, "a-very-long-owner-name-that-fills-the-reason-field-0123456789",
	                                    "pro", 0, &admin), 0);
	e = newest(f->s, NULL);
	assert_string_equal(e->event, "account-suspended");
	assert_string_equal(e->reason, "a-very-long-owner-name-that-fills-the-reason-field-0123456789");
	assert_string_equal(e->source, "http");
	assert_string_equal(e->actor, "key_AdminAdminAdmin0");

	assert_int_equal(apikey_prune(f->s, 0, &admin, &kr, &er), 0);
	e = newest(f->s, NULL);
	assert_string_equal(e->event, "pruned");
	assert_string_equal(e->reason, "0 keys, 0 events before 1970-01-01T00:00:00Z");

	/* no writer, no write */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(apikey_key_create(f->s, &cp, &bad[i], key, sizeof(key), NULL), APIKEY_ERR_INVALID);
		assert_int_equal(apikey_key_revoke(f->s, info.id, &bad[i]), APIKEY_ERR_INVALID);
		assert_int_equal(apikey_preset_set(f->s, "x", "a:b", &bad[i]), APIKEY_ERR_INVALID);
		assert_int_equal(apikey_account_set(f->s, "eve", NULL, 1, &bad[i]), APIKEY_ERR_INVALID);
		assert_int_equal(apikey_import_one(f->s, &ip, &bad[i], NULL), APIKEY_ERR_INVALID);
		assert_int_equal(apikey_prune(f->s, 0, &bad[i], NULL, NULL), APIKEY_ERR_INVALID);
	}
	assert_int_equal(apikey_key_create(f->s, &cp, NULL, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	assert_string_equal(newest(f->s, NULL)->event, "pruned");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(status_at_a_time), T(update_edits_and_audits),
		T(update_validates_like_create), T(update_refuses_dead_keys), T(update_invalidates_caches),
		T(every_write_has_an_actor_and_an_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

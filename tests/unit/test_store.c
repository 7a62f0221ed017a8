/* test_store.c — core/store.c and core/hash.c: keys, presets, accounts,
 * events, prune, imports of foreign hashes, pepper and database safety. */
#include <argon2.h>
#include <crypt.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include "unit.h"

static int count_key(void *ctx, const struct apikey_key_info *k)
{
	(void)k;
	(*(int *)ctx)++;
	return 0;
}

static void create_list_show(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1];
	struct apikey_create_params p = { .owner = "alice", .name = "ci", .scopes = "b:c,a:b",
	                                  .metadata = "{\"team\":\"x\"}" };
	struct apikey_key_info info, got;
	int n = 0;

	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), &info), 0);
	assert_string_equal(info.owner, "alice");
	assert_string_equal(info.scopes, "b:c,a:b");
	assert_string_equal(info.hash_alg, "hmac-sha256");
	assert_int_equal(info.rate_limit, APIKEY_RATE_DEFAULT);
	assert_memory_equal(info.hint, key, 7);
	assert_int_equal(apikey_key_get(f->s, info.id, &got), 0);
	assert_string_equal(got.metadata, "{\"team\":\"x\"}");
	assert_int_equal(apikey_key_list(f->s, "alice", count_key, &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(apikey_key_list(f->s, "nobody", count_key, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(apikey_key_get(f->s, "key_nope", &got), APIKEY_ERR_NOT_FOUND);

	/* bad arguments are refused and write nothing */
	p.metadata = "[1,2]";
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	p.metadata = "{not json";
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	p.metadata = NULL;
	p.scopes = "Not A Scope";
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	p.scopes = "a:b";
	p.owner = "has space";
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	p.owner = "alice";
	p.rate_limit = 1000001;
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	p.rate_limit = 0;
	p.expires_at_s = 1000;   /* in the past */
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	p.expires_at_s = 0;
	p.preset = "read-only";  /* both scopes and preset */
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	n = 0;
	apikey_key_list(f->s, NULL, count_key, &n);
	assert_int_equal(n, 1);
}

static int count_preset(void *ctx, const char *name, const char *scopes)
{
	(void)name; (void)scopes;
	(*(int *)ctx)++;
	return 0;
}

static void presets_and_accounts(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], scopes[APIKEY_SCOPES_SIZE];
	struct apikey_create_params p = { .owner = "bob", .preset = "deploy" };
	struct apikey_key_info info;
	struct apikey_account a;
	int n = 0;

	assert_int_equal(apikey_preset_get(f->s, "full-access", scopes), 0);
	assert_string_equal(scopes, "*");
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_NOT_FOUND);
	assert_int_equal(apikey_preset_set(f->s, "deploy", "deployments:write deployments:read", TEST_ACTOR), 0);
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), &info), 0);
	assert_string_equal(info.scopes, "deployments:write,deployments:read");
	assert_int_equal(apikey_preset_list(f->s, count_preset, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(apikey_preset_set(f->s, "Bad Name", "a:b", TEST_ACTOR), APIKEY_ERR_INVALID);
	assert_int_equal(apikey_preset_remove(f->s, "deploy", TEST_ACTOR), 0);
	assert_int_equal(apikey_preset_remove(f->s, "deploy", TEST_ACTOR), APIKEY_ERR_NOT_FOUND);

	assert_int_equal(apikey_account_get(f->s, "bob", &a), APIKEY_ERR_NOT_FOUND);
	assert_int_equal(apikey_account_set(f->s, "bob", "pro", -1, TEST_ACTOR), 0);
	assert_int_equal(apikey_account_get(f->s, "bob", &a), 0);
	assert_string_equal(a.plan, "pro");
	assert_true(a.active);
	assert_int_equal(apikey_account_set(f->s, "bob", NULL, 0, TEST_ACTOR), 0);
	assert_int_equal(apikey_account_get(f->s, "bob", &a), 0);
	assert_string_equal(a.plan, "pro");
	assert_false(a.active);
}

struct ev { int n; char last[24]; };
static int collect(void *ctx, const struct apikey_event *e)
{
	struct ev *v = ctx;
	if (v->n++ == 0)
		snprintf(v->last, sizeof(v->last), "%s", e->event);
	return 0;
}

static int find_event(void *ctx, const struct apikey_event *e)
{
	struct apikey_event *want = ctx;

	if (!strcmp(e->event, want->event) && (!want->key_id[0] || !strcmp(e->key_id, want->key_id))) {
		*want = *e;
		return 1;
	}
	return 0;
}

/* The event of key_id (or any, "") named event, newest first, into out; false when none. */
static bool has_event(struct apikey_store *s, const char *key_id, const char *event, struct apikey_event *out)
{
	struct apikey_event e = { 0 };

	snprintf(e.key_id, sizeof(e.key_id), "%s", key_id);
	snprintf(e.event, sizeof(e.event), "%s", event);
	if (apikey_event_list(s, NULL, 0, find_event, &e) != 1)
		return false;
	if (out)
		*out = e;
	return true;
}

static void events_and_prune(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	unsigned kr, er;
	struct ev v = { 0 };

	make_key(f->s, "carol", "a:b", 0, 0, key, id);
	assert_int_equal(verify(f->s, key, "z:z", NULL), APIKEY_INSUFFICIENT_SCOPE);
	assert_int_equal(apikey_key_revoke(f->s, id, TEST_ACTOR), 0);
	assert_int_equal(apikey_event_list(f->s, id, 10, collect, &v), 0);
	assert_int_equal(v.n, 3);               /* created, failed, revoked */
	assert_string_equal(v.last, "revoked"); /* newest first */
	assert_int_equal(apikey_prune(f->s, 0, TEST_ACTOR, &kr, &er), 0);
	assert_int_equal(kr + er, 0);
	assert_true(has_event(f->s, "", "pruned", NULL));
}

/*
 * prune never removes a key that could still verify, whatever the cut-off,
 * and keeps the history of the keys it leaves.  Seen failing on the old
 * prune (DELETE ... WHERE revoked_at < cut OR expires_at < cut, and every
 * event before the cut): a cut-off in the future deleted the expiring,
 * rotating and just-revoked keys and the whole audit trail.
 */
static void prune_keeps_what_can_verify(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], next[APIKEY_KEY_MAX + 1], live[APIKEY_ID_SIZE], expiring[APIKEY_ID_SIZE];
	char rotating[APIKEY_ID_SIZE], revoked[APIKEY_ID_SIZE], dead[APIKEY_ID_SIZE];
	int64_t now = (int64_t)time(NULL);
	struct apikey_import_params ip = {
		.hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		.hint = "ak_0123456", .owner = "dave", .scopes = "a:b", .expires_at_s = now - 500,
	};
	struct apikey_verify_request rq = { .scopes = "z:z", .source = "test", .now_ms = (now - 1000) * 1000 };
	struct apikey_verify_result res;
	struct apikey_key_info info;
	struct apikey_event e;
	unsigned kr, er;
	int n = 0;

	make_key(f->s, "dave", "a:b", 0, 0, key, live);
	/* a failure a while ago: "failed" events age out even for a live key */
	rq.key = key;
	rq.key_len = strlen(key);
	assert_int_equal(apikey_verify(f->s, &rq, &res), 0);
	assert_int_equal(res.outcome, APIKEY_INSUFFICIENT_SCOPE);
	make_key(f->s, "dave", "a:b", 0, now + 3600, key, expiring);
	make_key(f->s, "dave", "a:b", 0, 0, key, rotating);
	assert_int_equal(apikey_key_rotate(f->s, rotating, 3600, TEST_ACTOR, next, sizeof(next), NULL), 0);
	make_key(f->s, "dave", "a:b", 0, 0, key, revoked);
	/* the revoke and the prune share a second (a tick between them would
	 * make the revoke "before" the cut-off): start them as a second begins */
	for (time_t t0 = time(NULL); time(NULL) == t0;)
		usleep(1000);
	assert_int_equal(apikey_key_revoke(f->s, revoked, TEST_ACTOR), 0);
	/* dead long ago: an import that expired 500 s before now */
	assert_int_equal(apikey_import_one(f->s, &ip, TEST_ACTOR, &info), 0);
	memcpy(dead, info.id, sizeof(dead));

	/* a cut-off a year ahead prunes as of now */
	assert_int_equal(apikey_prune(f->s, now + 365 * 86400, TEST_ACTOR, &kr, &er), 0);
	assert_int_equal(kr, 1);
	assert_int_equal(er, 1);                 /* the old failure; the rest is newer or lifecycle */
	assert_int_equal(apikey_key_get(f->s, dead, &info), APIKEY_ERR_NOT_FOUND);
	assert_int_equal(apikey_key_get(f->s, live, &info), 0);
	assert_int_equal(apikey_key_get(f->s, expiring, &info), 0);
	assert_int_equal(apikey_key_get(f->s, rotating, &info), 0);
	assert_int_equal(apikey_key_status(&info, now), APIKEY_KEY_ROTATING);
	assert_int_equal(apikey_key_get(f->s, revoked, &info), 0);   /* revoked this second: not before it */
	apikey_key_list(f->s, "dave", count_key, &n);
	assert_int_equal(n, 5);                  /* four kept and the rotation's successor */
	/* the history of what is left, and a record of what went */
	assert_true(has_event(f->s, live, "created", NULL));
	assert_false(has_event(f->s, live, "failed", NULL));
	assert_true(has_event(f->s, rotating, "rotated", NULL));
	assert_true(has_event(f->s, revoked, "revoked", NULL));
	assert_true(has_event(f->s, dead, "pruned", &e));
	assert_string_equal(e.reason, "expired");
	assert_true(has_event(f->s, "", "pruned", &e));
	assert_non_null(strstr(e.reason, "1 keys, 1 events before "));
	/* the verifying keys still verify */
	assert_int_equal(verify(f->s, next, "a:b", NULL), APIKEY_VALID);
}

/* Import one key with a foreign hash; verify it; it is re-hashed on first use. */
static void import_and_use(struct fixture *f, const char *hash, const char *key)
{
	struct apikey_import_params p = { .hash = hash, .hint = NULL, .owner = "dora", .scopes = "a:b" };
	struct apikey_key_info info, after;
	char hint[16];

	snprintf(hint, sizeof(hint), "%.8s", key);
	p.hint = hint;
	assert_int_equal(apikey_import_begin(f->s), 0);
	assert_int_equal(apikey_import_one(f->s, &p, TEST_ACTOR, &info), 0);
	assert_int_equal(apikey_import_commit(f->s), 0);
	assert_string_not_equal(info.hash_alg, "hmac-sha256");
	assert_int_equal(verify(f->s, "cg_00000000000000000000000000000000", "a:b", NULL), APIKEY_INVALID_KEY);
	assert_int_equal(verify(f->s, key, "a:b", "dora"), APIKEY_VALID);
	assert_int_equal(apikey_key_get(f->s, info.id, &after), 0);
	assert_string_equal(after.hash_alg, "hmac-sha256");
	assert_int_equal(verify(f->s, key, "a:b", "dora"), APIKEY_VALID);   /* now by HMAC */
	assert_int_equal(apikey_key_revoke(f->s, info.id, TEST_ACTOR), 0);
	assert_int_equal(verify(f->s, key, "a:b", "dora"), APIKEY_REVOKED);
}

static void set_hex_profile(struct fixture *f)
{
	/* imported keys keep their own shape: cg_ + 32 hex, no checksum */
	apikey_store_free(f->s);
	apikey_config_apply(&f->cfg, NULL, "key_prefix=cg_", NULL, 0);
	apikey_config_apply(&f->cfg, NULL, "key_alphabet=hex", NULL, 0);
	apikey_config_apply(&f->cfg, NULL, "key_length=32", NULL, 0);
	apikey_config_apply(&f->cfg, NULL, "key_checksum=no", NULL, 0);
	assert_int_equal(apikey_store_open(&f->s, &f->cfg, NULL, NULL), 0);
}

static void import_sha256(void **state)
{
	struct fixture *f = *state;
	const char *key = "cg_a1b2c3d4e5f6789012345678abcdef90";
	unsigned char d[32];
	char hash[80];

	set_hex_profile(f);
	SHA256((const unsigned char *)key, strlen(key), d);
	int o = snprintf(hash, sizeof(hash), "sha256:");
	for (int i = 0; i < 32; i++)
		o += snprintf(hash + o, sizeof(hash) - (size_t)o, "%02x", d[i]);
	import_and_use(f, hash, key);
}

static void import_bcrypt(void **state)
{
	struct fixture *f = *state;
	const char *key = "cg_b1b2c3d4e5f6789012345678abcdef90";
	char salt[64];
	struct crypt_data cd;

	set_hex_profile(f);
	memset(&cd, 0, sizeof(cd));
	assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof(salt)));
	assert_non_null(crypt_r(key, salt, &cd));
	import_and_use(f, cd.output, key);
}

static void import_argon2id(void **state)
{
	struct fixture *f = *state;
	const char *key = "cg_c1b2c3d4e5f6789012345678abcdef90";
	char enc[200];

	set_hex_profile(f);
	assert_int_equal(argon2id_hash_encoded(1, 1024, 1, key, strlen(key), "saltsaltsalt", 12, 32,
	                                       enc, sizeof(enc)), ARGON2_OK);
	import_and_use(f, enc, key);
}

static void import_refuses_bad_lines(void **state)
{
	struct fixture *f = *state;
	struct apikey_import_params p = { .hash = "md5:abc", .hint = "cg_a1b2c3", .owner = "x", .scopes = "a:b" };
	int n = 0;

	set_hex_profile(f);
	assert_int_equal(apikey_import_begin(f->s), 0);
	assert_int_equal(apikey_import_one(f->s, &p, TEST_ACTOR, NULL), APIKEY_ERR_INVALID);
	p.hash = "sha256:00";
	assert_int_equal(apikey_import_one(f->s, &p, TEST_ACTOR, NULL), APIKEY_ERR_INVALID);
	p.hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	p.hint = "cg_";      /* too short to find it by */
	assert_int_equal(apikey_import_one(f->s, &p, TEST_ACTOR, NULL), APIKEY_ERR_INVALID);
	p.hint = "cg_a1b2c3";
	assert_int_equal(apikey_import_one(f->s, &p, TEST_ACTOR, NULL), 0);
	apikey_import_rollback(f->s);     /* all or nothing */
	apikey_key_list(f->s, NULL, count_key, &n);
	assert_int_equal(n, 0);
}

/* apikey_import_check: the same verdicts as apikey_import_one, without a store. */
static void import_check_names_the_problem(void **state)
{
	struct apikey_import_params p = {
		.hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		.hint = "cg_a1b2c3", .owner = "x", .scopes = "a:b", .metadata = "{}",
	};
	char why[APIKEY_WHY_SIZE];

	(void)state;
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), 0);
	assert_int_equal(apikey_import_check(NULL, &p, NULL, 0), 0);
	p.hash = "md5:abc";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "hash"));
	p.hash = NULL;
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	p.hash = "$2b$10$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza";  /* 60 */
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), 0);
	/* the cost caps: what one check may cost (core/hash.c) */
	p.hash = "$2b$13$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "bcrypt cost"));
	p.hash = "$2b$12$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), 0);
	p.hash = "$argon2id$v=19$m=131072,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "argon2id"));
	p.hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), 0);
	p.hash = "$2b$10$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza";
	p.hint = "cg_";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "hint"));
	p.hint = "cg_a1 b2";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	p.hint = "cg_a1b2c3";
	p.owner = "has space";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "owner"));
	p.owner = "x";
	p.name = "tab\there";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "name"));
	p.name = NULL;
	p.rate_limit = 1000001;
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "rate_limit"));
	p.rate_limit = 0;        /* the configured default */
	p.scopes = "Not:Valid";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	assert_non_null(strstr(why, "scopes"));
	p.scopes = "";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), APIKEY_ERR_INVALID);
	p.scopes = "a:b";
	assert_int_equal(apikey_import_check(NULL, &p, why, sizeof(why)), 0);
}

static void pepper_and_db_safety(void **state)
{
	struct fixture *f = *state;
	struct apikey_store *s;
	char pepper[APIKEY_PATH_SIZE + 16], cmd[300];
	FILE *fp;

	snprintf(pepper, sizeof(pepper), "%s.pepper", f->cfg.db_path);
	/* init refuses to overwrite */
	assert_int_equal(apikey_store_init(&f->cfg, NULL, NULL), APIKEY_ERR_EXISTS);
	chmod(pepper, 0644);
	assert_int_equal(apikey_store_open(&s, &f->cfg, NULL, NULL), APIKEY_ERR_PEPPER);
	assert_null(s);
	chmod(pepper, 0640);
	assert_int_equal(apikey_store_open(&s, &f->cfg, NULL, NULL), 0);
	apikey_store_free(s);
	unlink(pepper);
	assert_int_equal(apikey_store_open(&s, &f->cfg, NULL, NULL), APIKEY_ERR_PEPPER);
	/* a corrupt database file */
	snprintf(cmd, sizeof(cmd), "%s/junk.db", f->dir);
	fp = fopen(cmd, "w");
	for (int i = 0; i < 4096; i++)
		fputc(i * 7 % 251, fp);
	fclose(fp);
	snprintf(f->cfg.db_path, sizeof(f->cfg.db_path), "%s", cmd);
	assert_int_equal(apikey_store_open(&s, &f->cfg, NULL, NULL), APIKEY_ERR_STORE);
	snprintf(f->cfg.db_path, sizeof(f->cfg.db_path), "%s/missing.db", f->dir);
	assert_int_equal(apikey_store_open(&s, &f->cfg, NULL, NULL), APIKEY_ERR_STORE);
	assert_true(apikey_store_ready(f->s));
	assert_int_equal(apikey_store_check(f->s), 0);
	apikey_store_free(NULL);
}

static void batches_fold_creates(void **state)
{
	struct fixture *f = *state;
	struct apikey_create_params p = { .owner = "erin", .scopes = "a:b" };
	char key[APIKEY_KEY_MAX + 1];
	int n = 0;

	assert_int_equal(apikey_import_begin(f->s), 0);
	assert_int_equal(apikey_import_begin(f->s), APIKEY_ERR_INVALID);
	for (int i = 0; i < 50; i++)
		assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), 0);
	apikey_import_rollback(f->s);
	apikey_key_list(f->s, NULL, count_key, &n);
	assert_int_equal(n, 0);
	assert_int_equal(apikey_import_begin(f->s), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), 0);
	assert_int_equal(apikey_import_commit(f->s), 0);
	apikey_key_list(f->s, NULL, count_key, &n);
	assert_int_equal(n, 50);
}

/* A store of schema version 1 (before events had an actor, and before the
 * fleet tables of version 5) is migrated on open, in one transaction,
 * keeping what it holds, to the current version. */
static void migrates_version_1(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct ev v = { 0 };
	sqlite3 *db;
	sqlite3_stmt *st;

	make_key(f->s, "gus", "a:b", 0, 0, key, id);
	apikey_store_free(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->cfg.db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE fleet; DROP TABLE usage_fleet; DROP INDEX usage_last;"
	                              "DROP TABLE usage_series; DROP INDEX events_owner;"
	                              "ALTER TABLE events DROP COLUMN owner;"
	                              "ALTER TABLE events DROP COLUMN actor;"
	                              "CREATE TABLE ratelimit(key_id TEXT PRIMARY KEY, tat_us INTEGER NOT NULL) WITHOUT ROWID;"
	                              "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(apikey_store_open(&f->s, &f->cfg, NULL, NULL), 0);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 5);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'ratelimit'", -1, &st,
	                                    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);    /* rate limits live in <db>.rl now */
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(apikey_event_list(f->s, id, 0, collect, &v), 0);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.last, "created");
	assert_int_equal(verify(f->s, key, "a:b", "gus"), APIKEY_VALID);
	assert_int_equal(apikey_store_check(f->s), 0);
}

/* Verification that opens the store only for a well-formed key. */
static void verify_opens_the_store_on_demand(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verify_request rq = { .source = "test" };
	struct apikey_verify_result res;
	struct apikey_config missing = f->cfg;
	struct apikey_store *s = NULL;

	make_key(f->s, "hal", "a:b", 0, 0, key, id);
	snprintf(missing.db_path, sizeof(missing.db_path), "%s/missing.db", f->dir);
	rq.key = "hunter2";                 /* a unix password: no store needed */
	rq.key_len = 7;
	assert_int_equal(apikey_verify_open(&s, &missing, NULL, NULL, &rq, &res), 0);
	assert_int_equal(res.outcome, APIKEY_MALFORMED_KEY);
	assert_null(s);
	rq.key = key;
	rq.key_len = strlen(key);
	assert_int_equal(apikey_verify_open(&s, &missing, NULL, NULL, &rq, &res), 0);
	assert_int_equal(res.outcome, APIKEY_UNAVAILABLE);
	assert_int_equal(res.err, APIKEY_ERR_STORE);
	assert_null(s);
	assert_int_equal(apikey_verify_open(&s, &f->cfg, NULL, NULL, &rq, &res), 0);
	assert_int_equal(res.outcome, APIKEY_VALID);
	assert_non_null(s);
	assert_int_equal(apikey_verify_open(&s, &missing, NULL, NULL, &rq, &res), 0);  /* reuses s */
	assert_int_equal(res.outcome, APIKEY_VALID);
	apikey_store_free(s);
}

/* Version 2 → 3: events learn whom they concern (a key's owner, an
 * account's), and usage over time gets its table. */
struct owners { int n; char owner[8][APIKEY_OWNER_SIZE]; char event[8][24]; };
static int collect_owner(void *ctx, const struct apikey_event *e)
{
	struct owners *o = ctx;
	if (o->n < 8) {
		snprintf(o->owner[o->n], sizeof(o->owner[0]), "%s", e->owner);
		snprintf(o->event[o->n], sizeof(o->event[0]), "%s", e->event);
		o->n++;
	}
	return 0;
}

static void migrates_version_2(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct owners o = { 0 };
	sqlite3 *db;

	make_key(f->s, "ida", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_account_set(f->s, "jon", "pro", 0, TEST_ACTOR), 0);
	apikey_store_free(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->cfg.db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE fleet; DROP TABLE usage_fleet; DROP INDEX usage_last;"
	                              "DROP TABLE usage_series; DROP INDEX events_owner;"
	                              "ALTER TABLE events DROP COLUMN owner; PRAGMA user_version = 2",
	                              NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(apikey_store_open(&f->s, &f->cfg, NULL, NULL), 0);
	assert_int_equal(apikey_event_list(f->s, NULL, 0, collect_owner, &o), 0);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.event[0], "account-suspended");
	assert_string_equal(o.owner[0], "jon");
	assert_string_equal(o.event[1], "created");
	assert_string_equal(o.owner[1], "ida");
	assert_int_equal(apikey_store_check(f->s), 0);
}

/* Paged lists of keys: owner and status filters, cursors, the scan bound. */
struct ids { int n; char id[64][APIKEY_ID_SIZE]; };
static int collect_id(void *ctx, const struct apikey_key_info *k)
{
	struct ids *v = ctx;
	if (v->n < 64)
		snprintf(v->id[v->n++], APIKEY_ID_SIZE, "%s", k->id);
	return 0;
}

static void key_pages(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[20][APIKEY_ID_SIZE];
	struct apikey_key_filter flt = { .status = -1, .limit = 4 };
	struct ids v = { 0 }, all = { 0 };
	uint64_t next = 1;
	int pages = 0;

	for (int i = 0; i < 20; i++)
		make_key(f->s, i % 2 ? "odd" : "even", "a:b", 0, 0, key, id[i]);
	for (int i = 0; i < 20; i += 4)      /* every other "even" key revoked */
		assert_int_equal(apikey_key_revoke(f->s, id[i], TEST_ACTOR), 0);
	/* all keys, four a page, in the order written */
	do {
		v.n = 0;
		assert_int_equal(apikey_key_page(f->s, &flt, collect_id, &v, &next), 0);
		for (int i = 0; i < v.n; i++)
			snprintf(all.id[all.n++], APIKEY_ID_SIZE, "%s", v.id[i]);
		flt.after = next;
		pages++;
	} while (next);
	assert_int_equal(all.n, 20);
	assert_int_equal(pages, 5);
	for (int i = 0; i < 20; i++)
		assert_string_equal(all.id[i], id[i]);
	/* one owner, one state */
	flt = (struct apikey_key_filter){ .owner = "even", .status = APIKEY_KEY_REVOKED, .limit = 100 };
	v.n = 0;
	assert_int_equal(apikey_key_page(f->s, &flt, collect_id, &v, &next), 0);
	assert_int_equal(v.n, 5);
	assert_int_equal(next, 0);
	assert_string_equal(v.id[1], id[4]);
	flt.status = APIKEY_KEY_ACTIVE;
	v.n = 0;
	assert_int_equal(apikey_key_page(f->s, &flt, collect_id, &v, &next), 0);
	assert_int_equal(v.n, 5);
	assert_string_equal(v.id[0], id[2]);
	/* the scan bound: a sparse filter answers a short page, and a cursor */
	flt = (struct apikey_key_filter){ .status = APIKEY_KEY_REVOKED, .limit = 100, .scan_max = 3 };
	v.n = 0;
	assert_int_equal(apikey_key_page(f->s, &flt, collect_id, &v, &next), 0);
	assert_int_equal(v.n, 1);             /* id[0] of id[0..2] */
	assert_true(next != 0);
	flt.after = next;
	v.n = 0;
	assert_int_equal(apikey_key_page(f->s, &flt, collect_id, &v, &next), 0);
	assert_int_equal(v.n, 1);             /* id[4] of id[3..5] */
	assert_string_equal(v.id[0], id[4]);
	flt.limit = 0;
	assert_int_equal(apikey_key_page(f->s, &flt, collect_id, &v, &next), APIKEY_ERR_INVALID);
}

/* Events by key and by owner, newest first, in pages. */
static int collect_ev_ids(void *ctx, const struct apikey_event *e)
{
	struct owners *o = ctx;
	if (o->n < 8) {
		snprintf(o->owner[o->n], sizeof(o->owner[0]), "%s", e->owner);
		snprintf(o->event[o->n], sizeof(o->event[0]), "%s", e->event);
		o->n++;
	}
	return 0;
}

static void event_pages(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], a1[APIKEY_ID_SIZE], a2[APIKEY_ID_SIZE], b1[APIKEY_ID_SIZE];
	struct apikey_event_filter flt = { .owner = "amy", .limit = 2 };
	struct owners o = { 0 };
	int64_t next;
	int total = 0;

	make_key(f->s, "amy", "a:b", 0, 0, key, a1);
	make_key(f->s, "ben", "a:b", 0, 0, key, b1);
	make_key(f->s, "amy", "a:b", 0, 0, key, a2);
	assert_int_equal(apikey_key_revoke(f->s, a1, TEST_ACTOR), 0);
	assert_int_equal(apikey_key_revoke(f->s, b1, TEST_ACTOR), 0);
	assert_int_equal(apikey_account_set(f->s, "amy", "pro", -1, TEST_ACTOR), 0);
	assert_int_equal(apikey_account_set(f->s, "ben", "pro", -1, TEST_ACTOR), 0);
	/* amy: account-updated, revoked a1, created a2, created a1 */
	do {
		o.n = 0;
		assert_int_equal(apikey_event_page(f->s, &flt, collect_ev_ids, &o, &next), 0);
		for (int i = 0; i < o.n; i++)
			assert_string_equal(o.owner[i], "amy");
		if (total == 0) {
			assert_string_equal(o.event[0], "account-updated");
			assert_string_equal(o.event[1], "revoked");
		}
		total += o.n;
		flt.before_id = next;
	} while (next);
	assert_int_equal(total, 4);
	flt = (struct apikey_event_filter){ .key_id = a1, .limit = 10 };
	o.n = 0;
	assert_int_equal(apikey_event_page(f->s, &flt, collect_ev_ids, &o, &next), 0);
	assert_int_equal(o.n, 2);
	assert_int_equal(next, 0);
	flt.owner = "ben";        /* a key of amy's is none of ben's events */
	o.n = 0;
	assert_int_equal(apikey_event_page(f->s, &flt, collect_ev_ids, &o, &next), 0);
	assert_int_equal(o.n, 0);
}

/* Usage over time: the persisted path counts per key, minute and outcome;
 * owner sums, per-key totals; prune folds old minutes into hours and drops
 * what is older than its cut-off. */
struct points { int n; struct apikey_usage_point p[16]; };
static int collect_point(void *ctx, const struct apikey_usage_point *p)
{
	struct points *v = ctx;
	if (v->n < 16)
		v->p[v->n++] = *p;
	return 0;
}

static void usage_series_and_prune(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], k1[APIKEY_ID_SIZE], k2[APIKEY_ID_SIZE];
	struct apikey_verify_request rq = { .source = "test", .scopes = "a:b" };
	struct apikey_verify_result res;
	struct points v = { 0 };
	int64_t now = (int64_t)time(NULL), day = now - now % 86400;
	sqlite3 *db;

	make_key(f->s, "cat", "a:b", 0, 0, key, k1);
	rq.key = key;
	rq.key_len = strlen(key);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(apikey_verify(f->s, &rq, &res), 0);
		assert_int_equal(res.outcome, APIKEY_VALID);
	}
	rq.scopes = "c:d";
	assert_int_equal(apikey_verify(f->s, &rq, &res), 0);
	assert_int_equal(res.outcome, APIKEY_INSUFFICIENT_SCOPE);
	make_key(f->s, "cat", "a:b", 0, 0, key, k2);
	rq.key = key;
	rq.key_len = strlen(key);
	rq.scopes = "a:b";
	assert_int_equal(apikey_verify(f->s, &rq, &res), 0);

	assert_int_equal(apikey_usage_series(f->s, k1, NULL, now - 3600, now + 60, 60, collect_point, &v), 0);
	assert_int_equal(v.n, 2);            /* one minute, two outcomes */
	assert_int_equal(v.p[0].outcome == APIKEY_VALID ? v.p[0].count : v.p[1].count, 3);
	assert_int_equal(v.p[0].start_s % 60, 0);
	v.n = 0;
	assert_int_equal(apikey_usage_series(f->s, NULL, "cat", now - 3600, now + 60, 86400, collect_point, &v), 0);
	assert_int_equal(v.n, 2);            /* summed over both keys */
	assert_int_equal(v.p[0].start_s, day);
	assert_int_equal(v.p[1].start_s, day);
	assert_int_equal(v.p[0].outcome == APIKEY_VALID ? v.p[0].count : v.p[1].count, 4);
	assert_int_equal(v.p[0].outcome == APIKEY_VALID ? v.p[1].outcome : v.p[0].outcome,
	                 APIKEY_INSUFFICIENT_SCOPE);
	v.n = 0;
	assert_int_equal(apikey_usage_series(f->s, NULL, "cat", now - 3600, now + 60, 0, collect_point, &v), 0);
	assert_int_equal(v.n, 3);            /* per key: k1 x2 outcomes, k2 x1 */
	v.n = 0;
	assert_int_equal(apikey_usage_series(f->s, NULL, "dog", now - 3600, now + 60, 60, collect_point, &v), 0);
	assert_int_equal(v.n, 0);
	assert_int_equal(apikey_usage_series(f->s, k1, "cat", 0, now, 60, collect_point, &v), APIKEY_ERR_INVALID);

	/* three days ago, two minutes of one hour; five days ago one minute */
	assert_int_equal(sqlite3_open(f->cfg.db_path, &db), SQLITE_OK);
	char sql[512];
	int64_t h3 = now - 3 * 86400, h5 = now - 5 * 86400;
	h3 -= h3 % 3600;
	h5 -= h5 % 60;
	snprintf(sql, sizeof(sql), "INSERT INTO usage_series(key_id, start, outcome, count) VALUES"
	         "('%s', %lld, 'VALID', 2), ('%s', %lld, 'VALID', 5), ('%s', %lld, 'VALID', 7)",
	         k1, (long long)h3 + 60, k1, (long long)h3 + 120, k1, (long long)h5);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(apikey_prune(f->s, now - 4 * 86400, TEST_ACTOR, NULL, NULL), 0);
	v.n = 0;
	assert_int_equal(apikey_usage_series(f->s, k1, NULL, now - 6 * 86400, now - 86400, 60, collect_point, &v), 0);
	assert_int_equal(v.n, 1);            /* the old minute is gone, the two folded */
	assert_int_equal(v.p[0].start_s, h3);
	assert_int_equal(v.p[0].count, 7);
	v.n = 0;                             /* today's minutes are kept as they were */
	assert_int_equal(apikey_usage_series(f->s, k1, NULL, now - 3600, now + 60, 60, collect_point, &v), 0);
	assert_int_equal(v.n, 2);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(create_list_show), T(presets_and_accounts), T(events_and_prune), T(prune_keeps_what_can_verify),
		T(import_sha256),
		T(import_bcrypt), T(import_argon2id), T(import_refuses_bad_lines),
		T(import_check_names_the_problem), T(pepper_and_db_safety),
		T(batches_fold_creates), T(migrates_version_1), T(verify_opens_the_store_on_demand),
		T(migrates_version_2), T(key_pages), T(event_pages), T(usage_series_and_prune),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

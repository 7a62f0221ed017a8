/* test_replica.c — core/store_replica.c and the backend seam of core/rows.c:
 * a replica built in a new file and installed over an old one, applies that
 * move the generation counter only when something changed and tell the
 * verified-key cache which keys they changed, the in-place
 * resync by diff (deletions, changes, accounts and presets), the rules a
 * replica keeps (no re-hash, local prune only), fleet usage in listings, and
 * the core's write rules sent to an installed backend instead of SQLite. */
#include <sys/stat.h>
#include <openssl/hmac.h>
#include <sqlite3.h>
#include "unit.h"
#include "../../core/backend.h"

#define FLEET "11111111-2222-4333-8444-555555555555"
#define REPLICA "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

/* HMAC-SHA256(pepper, key), as the fleet's writers store it. */
static void digest_of(const struct fixture *f, const char *key, unsigned char out[32])
{
	char path[APIKEY_PATH_SIZE];
	unsigned char pepper[32];
	unsigned int n = 32;
	FILE *fp;

	apikey_config_pepper_path(&f->cfg, path, sizeof(path));
	assert_non_null(fp = fopen(path, "rb"));
	assert_int_equal(fread(pepper, 1, 32, fp), 32);
	fclose(fp);
	assert_non_null(HMAC(EVP_sha256(), pepper, 32, (const unsigned char *)key, strlen(key), out, &n));
}

/* A key row for id with a fresh key (returned in key) of owner. */
static struct replica_key row_for(const struct fixture *f, const char *id, const char *owner,
                                  char key[APIKEY_KEY_MAX + 1], unsigned char d[32])
{
	struct apikey_format fmt;

	apikey_format_default(&fmt);
	assert_int_equal(apikey_token_generate(&fmt, key, APIKEY_KEY_MAX + 1), 0);
	digest_of(f, key, d);
	return (struct replica_key){ .id = id, .hash = d, .hash_len = 32, .hash_alg = "hmac-sha256",
	                             .hint = "ak_test", .owner = owner, .scopes = "api:read",
	                             .rate_limit = 1000, .created_at_s = 1764000000 };
}

static int count_key(void *ctx, const struct apikey_key_info *k)
{
	(void)k;
	(*(int *)ctx)++;
	return 0;
}

static int keys_in(struct apikey_store *s)
{
	int n = 0;

	assert_int_equal(apikey_key_list(s, NULL, count_key, &n), 0);
	return n;
}

/* A replica built from "a snapshot" and renamed over the old store. */
static void build_and_install(void **state)
{
	struct fixture *f = *state;
	char path[APIKEY_PATH_SIZE + 16], key1[APIKEY_KEY_MAX + 1], key2[APIKEY_KEY_MAX + 1], old_key[APIKEY_KEY_MAX + 1];
	char id[APIKEY_ID_SIZE], wal[APIKEY_PATH_SIZE + 8];
	unsigned char d1[32], d2[32];
	struct apikey_fleet_state st;
	struct apikey_store *b = NULL;
	struct replica_key k1, k2;
	struct stat sb;

	make_key(f->s, "old", "a:b", 0, 0, old_key, id);   /* the old file's: gone after */
	apikey_store_free(f->s);
	f->s = NULL;
	chmod(f->cfg.db_path, 0640);
	snprintf(path, sizeof(path), "%s.build", f->cfg.db_path);
	assert_int_equal(apikey_replica_build_begin(&f->cfg, path, NULL, NULL, &b), 0);
	k1 = row_for(f, "key_AAAAAAAAAAAAAAA1", "alice", key1, d1);
	k2 = row_for(f, "key_AAAAAAAAAAAAAAA2", "bob", key2, d2);
	k2.revoked_at_s = 1764000001;
	assert_int_equal(apikey_replica_build_key(b, &k1), 0);
	assert_int_equal(apikey_replica_build_key(b, &k2), 0);
	assert_int_equal(apikey_replica_account_put(b, "alice", "pro", true), 0);
	assert_int_equal(apikey_replica_preset_put(b, "ops", "ops:read"), 0);
	assert_int_equal(apikey_replica_build_finish(b, FLEET, REPLICA, 42, "777"), 0);
	apikey_store_free(b);
	/* a build never overwrites: the path must be new */
	assert_int_equal(apikey_replica_build_begin(&f->cfg, path, NULL, NULL, &b), APIKEY_ERR_EXISTS);
	assert_int_equal(apikey_replica_install(&f->cfg, path, false, NULL, NULL), 0);
	snprintf(wal, sizeof(wal), "%s-wal", f->cfg.db_path);
	assert_int_equal(stat(f->cfg.db_path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);              /* the old file's mode */
	assert_int_equal(stat(path, &sb), -1);                    /* renamed, not copied */

	assert_int_equal(apikey_store_open(&f->s, &f->cfg, NULL, NULL), 0);
	assert_int_equal(apikey_store_check(f->s), 0);
	assert_int_equal(keys_in(f->s), 2);
	assert_int_equal(verify(f->s, key1, "api:read", NULL), APIKEY_VALID);
	assert_int_equal(verify(f->s, key2, "api:read", NULL), APIKEY_REVOKED);
	assert_int_equal(verify(f->s, old_key, NULL, NULL), APIKEY_INVALID_KEY);
	assert_int_equal(apikey_replica_state(f->s, &st), 0);
	assert_string_equal(st.fleet_id, FLEET);
	assert_string_equal(st.replica_id, REPLICA);
	assert_int_equal(st.applied_seq, 42);
	assert_string_equal(st.applied_xid, "777");
	assert_true(apikey_store_is_replica(f->s));
	{
		char scopes[APIKEY_SCOPES_SIZE];
		struct apikey_account a;
		assert_int_equal(apikey_preset_get(f->s, "ops", scopes), 0);
		assert_int_equal(apikey_preset_get(f->s, "read-only", scopes), APIKEY_ERR_NOT_FOUND);
		assert_int_equal(apikey_account_get(f->s, "alice", &a), 0);
		assert_string_equal(a.plan, "pro");
	}
}

/* Applies: one local transaction per upstream one; a row put again unchanged
 * changes nothing a verifier's cache watches. */
/* One upstream transaction of one key row applied; seq 0: no position. */
static void apply_key(struct apikey_store *s, const struct replica_key *k, int64_t seq, const char *xid)
{
	assert_int_equal(apikey_replica_begin(s), 0);
	assert_int_equal(apikey_replica_key_put(s, k), 0);
	if (seq)
		assert_int_equal(apikey_replica_set_position(s, seq, xid), 0);
	assert_int_equal(apikey_replica_commit(s), 0);
}

static void applies_move_the_generation_only_on_change(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1];
	unsigned char d[32];
	struct apikey_fleet_state st;
	struct replica_key k = row_for(f, "key_BBBBBBBBBBBBBBB1", "carol", key, d);
	struct apikey_store *obs;   /* a verifier's connection: sees other connections' commits */

	assert_int_equal(apikey_store_open(&obs, &f->cfg, NULL, NULL), 0);
	apikey_store_changed(obs);
	apply_key(f->s, &k, 7, "70");
	assert_true(apikey_store_changed(obs));
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_VALID);

	/* the same image again (a re-fetch after a crash): nothing changes */
	apikey_store_changed(obs);
	apply_key(f->s, &k, 0, NULL);
	assert_false(apikey_store_changed(obs));

	/* a revocation: changed, refused */
	k.revoked_at_s = 1764000100;
	apply_key(f->s, &k, 8, "80");
	assert_true(apikey_store_changed(obs));
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_REVOKED);

	/* an indexed column moves (the owner: not the in-place update's path),
	 * then one that is not (the revocation lifted): both applied */
	k.owner = "dave";
	apply_key(f->s, &k, 0, NULL);
	assert_true(apikey_store_changed(obs));
	k.revoked_at_s = 0;
	apply_key(f->s, &k, 0, NULL);
	assert_true(apikey_store_changed(obs));
	assert_int_equal(verify(f->s, key, NULL, "dave"), APIKEY_VALID);
	assert_int_equal(verify(f->s, key, NULL, "carol"), APIKEY_WRONG_USER);
	k.revoked_at_s = 1764000100;
	apply_key(f->s, &k, 8, "80");
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_REVOKED);

	/* a rolled-back apply leaves rows and position as they were */
	assert_int_equal(apikey_replica_begin(f->s), 0);
	assert_int_equal(apikey_replica_key_delete(f->s, k.id), 0);
	assert_int_equal(apikey_replica_set_position(f->s, 9, "90"), 0);
	apikey_replica_rollback(f->s);
	assert_int_equal(apikey_replica_state(f->s, &st), 0);
	assert_int_equal(st.applied_seq, 8);
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_REVOKED);

	/* a delete takes the key's local state with it */
	assert_int_equal(apikey_replica_begin(f->s), 0);
	assert_int_equal(apikey_replica_key_delete(f->s, k.id), 0);
	assert_int_equal(apikey_replica_commit(f->s), 0);
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_INVALID_KEY);
	apikey_store_free(obs);
}

/* "key": its outcome through a verifier that shares cache c, on its own
 * connection as apikeyd's workers do. */
static enum apikey_outcome verify_cached(struct apikey_verifier *v, const char *key)
{
	struct apikey_verify_request rq = { .key = key, .key_len = strlen(key), .source = "test" };
	struct apikey_verify_result res;

	assert_int_equal(apikey_verify_cached(v, &rq, &res), 0);
	return res.outcome;
}

static struct apikey_cache_stats stats_of(struct apikey_cache *c)
{
	struct apikey_cache_stats st;

	apikey_cache_stats(c, &st);
	return st;
}

/* A follower's commit names the keys it changed: the verifiers sharing the
 * cache keep every other record (no SQL for them) and never serve a changed
 * one; what it cannot name (an account, an imported key) empties the cache. */
static void commits_tell_the_cache_what_changed(void **state)
{
	struct fixture *f = *state;
	char ka[APIKEY_KEY_MAX + 1], kb[APIKEY_KEY_MAX + 1], kc[APIKEY_KEY_MAX + 1];
	unsigned char da[32], db[32], dc[32];
	struct replica_key a = row_for(f, "key_CCCCCCCCCCCCCCC1", "alice", ka, da);
	struct replica_key b = row_for(f, "key_CCCCCCCCCCCCCCC2", "alice", kb, db);
	struct replica_key c = row_for(f, "key_CCCCCCCCCCCCCCC3", "bob", kc, dc);
	struct apikey_verifier v = { 0 };
	struct apikey_cache *cache;
	uint64_t clears, advances;

	assert_int_equal(apikey_cache_new(&cache, 0), 0);
	assert_int_equal(apikey_store_open(&v.store, &f->cfg, NULL, NULL), 0);
	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	v.cache = cache;
	apikey_replica_set_cache(f->s, cache);
	apply_key(f->s, &a, 1, "10");
	apply_key(f->s, &b, 2, "20");
	assert_int_equal(verify_cached(&v, ka), APIKEY_VALID);
	assert_int_equal(verify_cached(&v, kb), APIKEY_VALID);
	assert_int_equal(verify_cached(&v, kb), APIKEY_VALID);
	assert_int_equal(stats_of(cache).entries, 2);
	clears = stats_of(cache).clears;
	advances = stats_of(cache).advances;

	/* b revoked upstream: b's record goes, a's stays */
	b.revoked_at_s = 1764000100;
	apply_key(f->s, &b, 3, "30");
	assert_int_equal(stats_of(cache).advances, advances + 1);
	assert_int_equal(stats_of(cache).entries, 1);
	assert_int_equal(verify_cached(&v, kb), APIKEY_REVOKED);
	assert_int_equal(verify_cached(&v, ka), APIKEY_VALID);
	assert_int_equal(stats_of(cache).clears, clears);   /* the verifier saw the new generation: kept */
	assert_int_equal(stats_of(cache).hits, 2);          /* b once before, a now */

	/* a new key, then an indexed column moved (the upsert path): named too */
	apply_key(f->s, &c, 4, "40");
	assert_int_equal(verify_cached(&v, kc), APIKEY_VALID);
	c.owner = "carol";
	apply_key(f->s, &c, 5, "50");
	assert_int_equal(stats_of(cache).advances, advances + 3);
	assert_int_equal(verify_cached(&v, kc), APIKEY_VALID);
	assert_int_equal(verify_cached(&v, ka), APIKEY_VALID);
	assert_int_equal(stats_of(cache).clears, clears);

	/* a deleted key: named by its old row */
	assert_int_equal(apikey_replica_begin(f->s), 0);
	assert_int_equal(apikey_replica_key_delete(f->s, c.id), 0);
	assert_int_equal(apikey_replica_commit(f->s), 0);
	assert_int_equal(verify_cached(&v, kc), APIKEY_INVALID_KEY);
	assert_int_equal(stats_of(cache).entries, 2);       /* a and b */

	/* a rolled-back apply tells nothing */
	assert_int_equal(apikey_replica_begin(f->s), 0);
	assert_int_equal(apikey_replica_key_delete(f->s, a.id), 0);
	apikey_replica_rollback(f->s);
	assert_int_equal(stats_of(cache).advances, advances + 4);
	assert_int_equal(verify_cached(&v, ka), APIKEY_VALID);

	/* an account: every key of it may verify differently */
	assert_int_equal(apikey_replica_begin(f->s), 0);
	assert_int_equal(apikey_replica_account_put(f->s, "alice", "", false), 0);
	assert_int_equal(apikey_replica_commit(f->s), 0);
	assert_int_equal(stats_of(cache).clears, clears + 1);
	assert_int_equal(stats_of(cache).entries, 0);
	assert_int_not_equal(verify_cached(&v, ka), APIKEY_VALID);

	apikey_replica_set_cache(f->s, NULL);
	apikey_limiter_free(v.limiter);
	apikey_store_free(v.store);
	apikey_cache_free(cache);
}

/* Resync in place: the replica made equal to a snapshot in one write. */
static void resync_by_diff(void **state)
{
	struct fixture *f = *state;
	char ka[APIKEY_KEY_MAX + 1], kb[APIKEY_KEY_MAX + 1], kc[APIKEY_KEY_MAX + 1], kd[APIKEY_KEY_MAX + 1];
	unsigned char da[32], db[32], dc[32], dd[32];
	struct replica_key a = row_for(f, "key_CCCCCCCCCCCCCCC1", "u", ka, da);
	struct replica_key b = row_for(f, "key_CCCCCCCCCCCCCCC2", "u", kb, db);
	struct replica_key c = row_for(f, "key_CCCCCCCCCCCCCCC3", "u", kc, dc);
	struct replica_key d = row_for(f, "key_CCCCCCCCCCCCCCC4", "u", kd, dd);
	struct replica_diff *diff;
	struct apikey_fleet_state st;
	unsigned long changed = 0, deleted = 0;
	char scopes[APIKEY_SCOPES_SIZE];
	struct apikey_account acct;

	assert_int_equal(apikey_replica_begin(f->s), 0);
	assert_int_equal(apikey_replica_key_put(f->s, &a), 0);
	assert_int_equal(apikey_replica_key_put(f->s, &b), 0);
	assert_int_equal(apikey_replica_key_put(f->s, &c), 0);
	assert_int_equal(apikey_replica_account_put(f->s, "gone", "", false), 0);
	assert_int_equal(apikey_replica_commit(f->s), 0);
	/* the snapshot: a revoked, b gone, c as it was, d new; other accounts and presets */
	a.revoked_at_s = 1764000500;
	assert_int_equal(apikey_replica_diff_new(f->s, &diff), 0);
	assert_int_equal(apikey_replica_diff_account(diff, "u", "gold", true), 0);
	assert_int_equal(apikey_replica_diff_preset(diff, "ops", "ops:*"), 0);
	assert_int_equal(apikey_replica_diff_identity(diff, FLEET, REPLICA), 0);
	assert_int_equal(apikey_replica_diff_key(diff, &a), 0);
	assert_int_equal(apikey_replica_diff_key(diff, &c), 0);
	assert_int_equal(apikey_replica_diff_key(diff, &d), 0);
	/* nothing is written before apply: a reader sees the old state */
	assert_int_equal(verify(f->s, kb, NULL, NULL), APIKEY_VALID);
	assert_int_equal(apikey_replica_diff_apply(diff, 99, "990", &changed, &deleted), 0);
	apikey_replica_diff_free(diff);
	assert_int_equal(changed, 2);   /* a and d; c was equal */
	assert_int_equal(deleted, 1);
	assert_int_equal(verify(f->s, ka, NULL, NULL), APIKEY_REVOKED);
	assert_int_equal(verify(f->s, kb, NULL, NULL), APIKEY_INVALID_KEY);
	assert_int_equal(verify(f->s, kc, NULL, NULL), APIKEY_VALID);
	assert_int_equal(verify(f->s, kd, NULL, NULL), APIKEY_VALID);
	assert_int_equal(apikey_account_get(f->s, "gone", &acct), APIKEY_ERR_NOT_FOUND);
	assert_int_equal(apikey_account_get(f->s, "u", &acct), 0);
	assert_string_equal(acct.plan, "gold");
	assert_int_equal(apikey_preset_get(f->s, "read-only", scopes), APIKEY_ERR_NOT_FOUND);
	assert_int_equal(apikey_preset_get(f->s, "ops", scopes), 0);
	assert_string_equal(scopes, "ops:*");
	assert_int_equal(apikey_replica_state(f->s, &st), 0);
	assert_int_equal(st.applied_seq, 99);
	assert_string_equal(st.fleet_id, FLEET);
	assert_int_equal(keys_in(f->s), 3);
}

/* A replica's keys are the follower's: an imported key is not re-hashed on
 * its first use there; its prune touches only what it keeps for itself. */
static void replica_rules(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], hint[9], fh[80];
	unsigned char d[32], h[32];
	struct apikey_key_info k;
	unsigned events = 0;
	struct replica_key r = row_for(f, "key_DDDDDDDDDDDDDDD1", "imp", key, d);

	/* an imported key (sha256 of the key) on a replica */
	assert_int_equal(EVP_Digest(key, strlen(key), h, NULL, EVP_sha256(), NULL), 1);
	snprintf(fh, sizeof(fh), "sha256:");
	for (int i = 0; i < 32; i++)
		snprintf(fh + 7 + 2 * i, 3, "%02x", h[i]);
	memcpy(hint, key, 8);
	hint[8] = '\0';
	r.hash = NULL;
	r.hash_len = 0;
	r.foreign_hash = fh;
	r.hash_alg = "sha256";
	r.hint = hint;
	assert_int_equal(apikey_replica_begin(f->s), 0);
	assert_int_equal(apikey_replica_key_put(f->s, &r), 0);
	assert_int_equal(apikey_replica_set_identity(f->s, FLEET, REPLICA), 0);
	assert_int_equal(apikey_replica_commit(f->s), 0);
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_VALID);
	assert_int_equal(apikey_key_get(f->s, r.id, &k), 0);
	assert_string_equal(k.hash_alg, "sha256");   /* still the foreign hash: not re-hashed */

	/* local prune: this host's failure events go, keys stay (even dead ones:
	 * the upstream decides), and so does the lifecycle of a stored key */
	make_key(f->s, "loc", "a:b", 0, 0, key, id);  /* writes "created" (a store without a backend) */
	assert_int_equal(apikey_key_revoke(f->s, id, TEST_ACTOR), 0);
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_REVOKED);   /* a "failed" event */
	assert_int_equal(apikey_replica_prune_local(f->s, INT64_MAX / 2, &events), 0);
	assert_int_equal(events, 1);
	assert_int_equal(apikey_key_get(f->s, id, &k), 0);
}

/* Listings add what other replicas reported to this store's own counts. */
static void fleet_usage_in_listings(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_key_info k;

	make_key(f->s, "use", "a:b", 1000, 0, key, id);
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_VALID);
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_VALID);
	assert_int_equal(apikey_replica_begin(f->s), 0);
	assert_int_equal(apikey_replica_fleet_usage_put(f->s, id, 40, 2000000000), 0);
	assert_int_equal(apikey_replica_commit(f->s), 0);
	assert_int_equal(apikey_key_get(f->s, id, &k), 0);
	assert_int_equal(k.use_count, 42);
	assert_int_equal(k.last_used_at_s, 2000000000);
}

/* ---- the backend seam: a fake backend receives the rules' writes ---------- */

struct fake { int begin, commit, rollback, revoked, inserted, events, accounts; char last_event[24]; };

static int f_begin(void *c) { ((struct fake *)c)->begin++; return 0; }
static int f_commit(void *c) { ((struct fake *)c)->commit++; return 0; }
static void f_rollback(void *c) { ((struct fake *)c)->rollback++; }
static bool f_in_batch(void *c) { (void)c; return false; }
static int f_batch(void *c) { (void)c; return APIKEY_ERR_INVALID; }
static void f_batch_rb(void *c) { (void)c; }
static int f_insert(void *c, const struct key_row *k) { (void)k; ((struct fake *)c)->inserted++; return 0; }
static int f_update(void *c, const char *id, const struct key_row *k) { (void)c; (void)id; (void)k; return 0; }
static int f_revoke(void *c, const char *id, int64_t at) { (void)id; (void)at; ((struct fake *)c)->revoked++; return 0; }
static int f_rotate(void *c, const char *id, const char *to, int64_t r, int64_t e)
{
	(void)c; (void)id; (void)to; (void)r; (void)e;
	return 0;
}
static int f_get(void *c, const char *id, struct key_record *rec)
{
	(void)c;
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->info.id, sizeof(rec->info.id), "%s", id);
	snprintf(rec->info.owner, sizeof(rec->info.owner), "remote");
	snprintf(rec->info.scopes, sizeof(rec->info.scopes), "a:b");
	rec->info.rate_limit = 60;
	return 0;
}
static int f_preset_get(void *c, const char *n, char out[APIKEY_SCOPES_SIZE])
{
	(void)c;
	if (strcmp(n, "remote-preset"))
		return APIKEY_ERR_NOT_FOUND;
	snprintf(out, APIKEY_SCOPES_SIZE, "r:x");
	return 0;
}
static int f_account(void *c, const char *o, const char *p, int a)
{
	(void)o; (void)p; (void)a;
	((struct fake *)c)->accounts++;
	return 0;
}
static int f_preset(void *c, const char *n, const char *s) { (void)c; (void)n; (void)s; return 0; }
static int f_preset_del(void *c, const char *n) { (void)c; (void)n; return 0; }
static int f_event(void *c, const struct event_row *e)
{
	struct fake *fk = c;
	fk->events++;
	snprintf(fk->last_event, sizeof(fk->last_event), "%s", e->event);
	return 0;
}
static int f_prune_keys(void *c, int64_t b, unsigned *k)
{
	(void)c; (void)b;
	*k = 0;
	return 0;
}
static int f_pruned_each(void *c, int (*fn)(void *, const char *, const char *), void *fc)
{
	(void)c; (void)fn; (void)fc;
	return 0;
}
static int f_prune_events(void *c, int64_t b, unsigned *e)
{
	(void)c; (void)b;
	*e = 0;
	return 0;
}
static struct fake *freed;
static void f_free(void *c) { freed = c; }

static const struct apikey_backend fake_backend = {
	.name = "fake", .begin = f_begin, .commit = f_commit, .rollback = f_rollback, .in_batch = f_in_batch,
	.batch_begin = f_batch, .batch_commit = f_batch, .batch_rollback = f_batch_rb, .key_insert = f_insert,
	.key_update = f_update, .key_set_revoked = f_revoke, .key_set_rotated = f_rotate, .key_get = f_get,
	.preset_get = f_preset_get, .account_upsert = f_account, .preset_upsert = f_preset,
	.preset_delete = f_preset_del, .event_append = f_event, .prune_keys = f_prune_keys,
	.pruned_each = f_pruned_each, .prune_events = f_prune_events, .free = f_free,
};

static void writes_go_to_the_backend(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], local[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_create_params p = { .owner = "x", .preset = "remote-preset" };
	struct apikey_key_info info;
	struct apikey_account a;
	struct fake fk = { 0 };

	make_key(f->s, "here", "a:b", 0, 0, local, id);   /* before: written locally */
	assert_int_equal(apikey_store_set_backend(f->s, &fake_backend, &fk), 0);
	assert_int_equal(apikey_store_set_backend(f->s, &fake_backend, &fk), APIKEY_ERR_INVALID);  /* once */
	freed = NULL;
	/* revoke: the rule runs, the write and its event go to the backend */
	assert_int_equal(apikey_key_revoke(f->s, id, TEST_ACTOR), 0);
	assert_int_equal(fk.revoked, 1);
	assert_string_equal(fk.last_event, "revoked");
	assert_int_equal(fk.begin, fk.commit);
	assert_int_equal(verify(f->s, local, NULL, NULL), APIKEY_VALID);   /* SQLite untouched */
	/* create resolves its preset through the backend */
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), &info), 0);
	assert_int_equal(fk.inserted, 1);
	assert_string_equal(info.owner, "remote");   /* read back through the backend */
	/* the rules still judge first: a bad owner never reaches it */
	p.owner = "has space";
	assert_int_equal(apikey_key_create(f->s, &p, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_INVALID);
	assert_int_equal(fk.inserted, 1);
	assert_int_equal(apikey_account_set(f->s, "acc", "pro", 1, TEST_ACTOR), 0);
	assert_int_equal(fk.accounts, 1);
	assert_int_equal(apikey_account_get(f->s, "acc", &a), APIKEY_ERR_NOT_FOUND);   /* not local */
	apikey_store_free(f->s);
	f->s = NULL;
	assert_ptr_equal(freed, &fk);   /* the store frees the backend's context */
	assert_int_equal(apikey_store_open(&f->s, &f->cfg, NULL, NULL), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(build_and_install), T(applies_move_the_generation_only_on_change),
		T(commits_tell_the_cache_what_changed), T(resync_by_diff),
		T(replica_rules), T(fleet_usage_in_listings), T(writes_go_to_the_backend),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

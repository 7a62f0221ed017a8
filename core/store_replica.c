/* store_replica.c — a replica's side of fleet mode in SQLite (core/backend.h
 * part 2): the fleet state of a store, the follower's applies (rows put
 * only where they differ, so the generation counter verifiers watch moves
 * exactly when a key or an account changed), the in-place resync by diff,
 * the build of a new replica file and its installation, and the reads the
 * follower ships upstream (usage, local events).  The follower is the only
 * writer of a replica's keys, accounts and presets. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#define APIKEY_STORE_IMPL   /* one of the SQLite files: see store_sql.h */
#include "backend.h"
#include "store_sql.h"

#define KEY_COLUMNS "id, hash, foreign_hash, hash_alg, hint, owner, name, scopes, metadata, " \
	"rate_limit, created_at, expires_at, revoked_at, rotated_from, rotated_to"
#define KEY_VALUES "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15"

enum rstmt {
	R_KEY_PUT, R_KEY_UPDATE, R_KEY_INSERT, R_KEY_OLD, R_KEY_DEL, R_KEY_DEL_USAGE, R_KEY_DEL_FLEET, R_KEY_DEL_SERIES,
	R_KEY_DEL_HASH,
	R_ACCOUNT_PUT, R_ACCOUNT_DEL, R_PRESET_PUT, R_PRESET_DEL, R_FLEET_SET, R_FLEET_GET,
	R_USAGE_SINCE, R_FLEET_USAGE_PUT, R_EVENTS_AFTER, R_BEGIN, R_COMMIT, R_ROLLBACK,
	R_COUNT
};

static const char *const rsql[R_COUNT] = {
	[R_KEY_PUT] = "INSERT INTO keys(" KEY_COLUMNS ") VALUES(" KEY_VALUES ")"
		" ON CONFLICT(id) DO UPDATE SET hash = excluded.hash, foreign_hash = excluded.foreign_hash,"
		" hash_alg = excluded.hash_alg, hint = excluded.hint, owner = excluded.owner,"
		" name = excluded.name, scopes = excluded.scopes, metadata = excluded.metadata,"
		" rate_limit = excluded.rate_limit, created_at = excluded.created_at,"
		" expires_at = excluded.expires_at, revoked_at = excluded.revoked_at,"
		" rotated_from = excluded.rotated_from, rotated_to = excluded.rotated_to"
		" WHERE keys.hash IS NOT excluded.hash OR keys.foreign_hash IS NOT excluded.foreign_hash"
		" OR keys.hash_alg IS NOT excluded.hash_alg OR keys.hint IS NOT excluded.hint"
		" OR keys.owner IS NOT excluded.owner OR keys.name IS NOT excluded.name"
		" OR keys.scopes IS NOT excluded.scopes OR keys.metadata IS NOT excluded.metadata"
		" OR keys.rate_limit IS NOT excluded.rate_limit OR keys.created_at IS NOT excluded.created_at"
		" OR keys.expires_at IS NOT excluded.expires_at OR keys.revoked_at IS NOT excluded.revoked_at"
		" OR keys.rotated_from IS NOT excluded.rotated_from OR keys.rotated_to IS NOT excluded.rotated_to",
	/* The usual change (a revoke, a rename, new scopes): no indexed column
	 * (hash, owner, hint) moves, so no index is rewritten.  Anything else
	 * (a new key, a moved column, nothing different) changes no row here and
	 * goes through R_KEY_PUT. */
	[R_KEY_UPDATE] = "UPDATE keys SET name = ?7, scopes = ?8, metadata = ?9, rate_limit = ?10,"
		" created_at = ?11, expires_at = ?12, revoked_at = ?13, rotated_from = ?14, rotated_to = ?15"
		" WHERE id = ?1 AND hash IS ?2 AND foreign_hash IS ?3 AND hash_alg IS ?4 AND hint IS ?5"
		" AND owner IS ?6 AND (name IS NOT ?7 OR scopes IS NOT ?8 OR metadata IS NOT ?9"
		" OR rate_limit IS NOT ?10 OR created_at IS NOT ?11 OR expires_at IS NOT ?12"
		" OR revoked_at IS NOT ?13 OR rotated_from IS NOT ?14 OR rotated_to IS NOT ?15)",
	[R_KEY_INSERT] = "INSERT INTO keys(" KEY_COLUMNS ") VALUES(" KEY_VALUES ")",
	[R_KEY_OLD] = "SELECT hash, foreign_hash IS NOT NULL FROM keys WHERE id = ?1",
	[R_KEY_DEL] = "DELETE FROM keys WHERE id = ?1",
	[R_KEY_DEL_USAGE] = "DELETE FROM usage WHERE key_id = ?1",
	[R_KEY_DEL_FLEET] = "DELETE FROM usage_fleet WHERE key_id = ?1",
	[R_KEY_DEL_SERIES] = "DELETE FROM usage_series WHERE key_id = ?1",
	/* a digest the upstream gave to another id (never in practice: ids and
	 * HMACs are not reused) must not block the row that holds it now */
	[R_KEY_DEL_HASH] = "DELETE FROM keys WHERE hash = ?1 AND id <> ?2",
	[R_ACCOUNT_PUT] = "INSERT INTO accounts(owner, plan, active) VALUES(?1, ?2, ?3)"
		" ON CONFLICT(owner) DO UPDATE SET plan = excluded.plan, active = excluded.active"
		" WHERE accounts.plan IS NOT excluded.plan OR accounts.active IS NOT excluded.active",
	[R_ACCOUNT_DEL] = "DELETE FROM accounts WHERE owner = ?1",
	[R_PRESET_PUT] = "INSERT INTO presets(name, scopes) VALUES(?1, ?2)"
		" ON CONFLICT(name) DO UPDATE SET scopes = excluded.scopes WHERE presets.scopes IS NOT excluded.scopes",
	[R_PRESET_DEL] = "DELETE FROM presets WHERE name = ?1",
	[R_FLEET_SET] = "INSERT INTO fleet(name, value) VALUES(?1, ?2)"
		" ON CONFLICT(name) DO UPDATE SET value = excluded.value",
	[R_FLEET_GET] = "SELECT name, value FROM fleet",
	[R_USAGE_SINCE] = "SELECT key_id, use_count, coalesce(last_used_at, 0) FROM usage WHERE last_used_at >= ?1",
	[R_FLEET_USAGE_PUT] = "INSERT INTO usage_fleet(key_id, use_count, last_used_at) VALUES(?1, ?2, ?3)"
		" ON CONFLICT(key_id) DO UPDATE SET use_count = excluded.use_count, last_used_at = excluded.last_used_at",
	[R_EVENTS_AFTER] = "SELECT id, at, key_id, event, reason, source, actor, owner FROM events WHERE id > ?1"
		" ORDER BY id LIMIT ?2",
	[R_BEGIN] = "BEGIN IMMEDIATE",
	[R_COMMIT] = "COMMIT",
	[R_ROLLBACK] = "ROLLBACK",
};

static sqlite3_stmt *rstmt(struct apikey_store *s, enum rstmt id)
{
	sqlite3_stmt *st;
	int rc;

	if (!s->rstmts && !(s->rstmts = calloc(R_COUNT, sizeof(*s->rstmts)))) {
		apikey_store_log(s, LOG_ERR, "replica: out of memory");
		return NULL;
	}
	if (!(st = s->rstmts[id])) {
		rc = sqlite3_prepare_v3(s->db, rsql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK) {
			store_err(s, rc, "replica: prepare");
			return NULL;
		}
		s->rstmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/*
 * What a replica transaction changed, for the verified-key cache of the
 * process serving the replica (apikey_replica_set_cache): the digests of
 * the keys it put or deleted, old and new.  A key found through its
 * imported hash is cached under the digest of the key presented, which no
 * row holds; such a key, an account, a preset, or more keys than fit make
 * the commit inexact, and the cache is emptied as before.
 */
#define TOUCHED_MAX 256
struct replica_touched {
	bool on;                  /* between apikey_replica_begin and its commit */
	bool exact;
	int64_t from;             /* the generation the transaction began at */
	size_t n;
	unsigned char d[TOUCHED_MAX][DIGEST_LEN];
};

void apikey_replica_set_cache(struct apikey_store *s, struct apikey_cache *c)
{
	s->follow_cache = c;
}

static void touch_all(struct apikey_store *s)
{
	if (s->touched)
		s->touched->exact = false;
}

static void touch_digest(struct apikey_store *s, const void *d, size_t len)
{
	struct replica_touched *t = s->touched;

	if (!t || !t->on || !d)
		return;
	if (len != DIGEST_LEN || t->n == TOUCHED_MAX)
		t->exact = false;
	else
		memcpy(t->d[t->n++], d, DIGEST_LEN);
}

static void touch_new(struct apikey_store *s, const struct replica_key *k)
{
	if (k->foreign_hash)
		touch_all(s);
	else
		touch_digest(s, k->hash, k->hash_len);
}

/* The key as it is before the change. */
static void touch_old(struct apikey_store *s, const char *id)
{
	sqlite3_stmt *st;
	int rc;

	if (!s->touched || !s->touched->on || !s->touched->exact)
		return;
	if (!(st = rstmt(s, R_KEY_OLD))) {
		touch_all(s);
		return;
	}
	bind_text(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int(st, 1) == 0)
		touch_digest(s, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
	else if (rc != SQLITE_DONE)
		touch_all(s);   /* an imported key, or cannot tell */
	sqlite3_reset(st);
}

void store_replica_free(struct apikey_store *s)
{
	free(s->touched);
	for (int i = 0; s->rstmts && i < R_COUNT; i++)
		sqlite3_finalize(s->rstmts[i]);
	free(s->rstmts);
	s->rstmts = NULL;
}

static int rexec(struct apikey_store *s, enum rstmt id, const char *what)
{
	sqlite3_stmt *st = rstmt(s, id);

	return st ? exec_stmt(s, st, what) : APIKEY_ERR_STORE;
}

/* ---- fleet state ------------------------------------------------------------- */

int apikey_replica_state(struct apikey_store *s, struct apikey_fleet_state *out)
{
	sqlite3_stmt *st = rstmt(s, R_FLEET_GET);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!st)
		return APIKEY_ERR_STORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 0);
		if (!n)
			continue;
		if (!strcmp(n, "fleet_id"))
			col_str(st, 1, out->fleet_id, sizeof(out->fleet_id));
		else if (!strcmp(n, "replica_id"))
			col_str(st, 1, out->replica_id, sizeof(out->replica_id));
		else if (!strcmp(n, "applied_seq"))
			out->applied_seq = sqlite3_column_int64(st, 1);
		else if (!strcmp(n, "applied_xid"))
			col_str(st, 1, out->applied_xid, sizeof(out->applied_xid));
		else if (!strcmp(n, "usage_mark"))
			out->usage_mark_s = (uint64_t)sqlite3_column_int64(st, 1);
		else if (!strcmp(n, "events_mark"))
			out->events_mark = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(s, rc, "replica state");
}

bool apikey_store_is_replica(struct apikey_store *s)
{
	struct apikey_fleet_state st;

	return apikey_replica_state(s, &st) == 0 && st.fleet_id[0];
}

static int fleet_set_text(struct apikey_store *s, const char *name, const char *v)
{
	sqlite3_stmt *st = rstmt(s, R_FLEET_SET);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, name);
	bind_text(st, 2, v ? v : "");
	return exec_stmt(s, st, "replica state");
}

static int fleet_set_int(struct apikey_store *s, const char *name, int64_t v)
{
	sqlite3_stmt *st = rstmt(s, R_FLEET_SET);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, name);
	sqlite3_bind_int64(st, 2, v);
	return exec_stmt(s, st, "replica state");
}

int apikey_replica_set_position(struct apikey_store *s, int64_t seq, const char *xid)
{
	int r = fleet_set_int(s, "applied_seq", seq);

	return r ? r : fleet_set_text(s, "applied_xid", xid);
}

int apikey_replica_set_identity(struct apikey_store *s, const char *fleet_id, const char *replica_id)
{
	int r = fleet_set_text(s, "fleet_id", fleet_id);

	return r ? r : fleet_set_text(s, "replica_id", replica_id);
}

int apikey_replica_set_marks(struct apikey_store *s, uint64_t usage_mark_s, int64_t events_mark)
{
	int r = fleet_set_int(s, "usage_mark", (int64_t)usage_mark_s);

	return r ? r : fleet_set_int(s, "events_mark", events_mark);
}

/* ---- the follower's connection and its transactions ------------------------ */

int apikey_replica_tune(struct apikey_store *s)
{
	return exec_sql(s, "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0", "replica settings");
}

int apikey_replica_checkpoint(struct apikey_store *s)
{
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

	return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : store_err(s, rc, "checkpoint");
}

int apikey_replica_begin(struct apikey_store *s)
{
	int r;

	if (s->readonly)
		return APIKEY_ERR_READONLY;
	if ((r = rexec(s, R_BEGIN, "replica: begin")) != 0)
		return r;
	if (s->follow_cache && (s->touched || (s->touched = malloc(sizeof(*s->touched))))) {
		/* read inside the write lock: the generation just before this commit */
		s->touched->on = one_int64(s, ST_GENERATION, &s->touched->from) == 0;
		s->touched->exact = true;
		s->touched->n = 0;
	}
	return 0;
}

int apikey_replica_commit(struct apikey_store *s)
{
	struct replica_touched *t = s->touched;
	int64_t to = 0;
	bool tell = t && t->on && one_int64(s, ST_GENERATION, &to) == 0;
	int r = rexec(s, R_COMMIT, "replica: commit");

	if (t)
		t->on = false;
	if (r != 0) {
		apikey_replica_rollback(s);
		return r;
	}
	/* Untold (no generation read), the threads that see the new generation
	 * empty the cache themselves. */
	if (tell)
		cache_advance(s->follow_cache, t->from, to, (const unsigned char (*)[DIGEST_LEN])t->d,
		              t->n, t->exact);
	return 0;
}

void apikey_replica_rollback(struct apikey_store *s)
{
	if (s->touched)
		s->touched->on = false;
	if (sqlite3_get_autocommit(s->db) == 0)
		rexec(s, R_ROLLBACK, "replica: rollback");
}

/* ---- rows --------------------------------------------------------------------- */

static void bind_key(sqlite3_stmt *st, const struct replica_key *k)
{
	bind_text(st, 1, k->id);
	if (k->hash)
		sqlite3_bind_blob(st, 2, k->hash, (int)k->hash_len, SQLITE_STATIC);
	bind_text(st, 3, k->foreign_hash);
	bind_text(st, 4, k->hash_alg);
	bind_text(st, 5, k->hint);
	bind_text(st, 6, k->owner);
	bind_text(st, 7, k->name ? k->name : "");
	bind_text(st, 8, k->scopes);
	bind_text(st, 9, k->metadata ? k->metadata : "{}");
	sqlite3_bind_int64(st, 10, k->rate_limit);
	sqlite3_bind_int64(st, 11, k->created_at_s);
	bind_time(st, 12, k->expires_at_s);
	bind_time(st, 13, k->revoked_at_s);
	bind_text(st, 14, k->rotated_from);
	bind_text(st, 15, k->rotated_to);
}

/* One key statement, bound and run: SQLite's answer (SQLITE_ERROR when it
 * could not be prepared, already logged). */
static int step_key(struct apikey_store *s, enum rstmt which, const struct replica_key *k)
{
	sqlite3_stmt *st = rstmt(s, which);
	int rc;

	if (!st)
		return SQLITE_ERROR;
	bind_key(st, k);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc;
}

static int put_key(struct apikey_store *s, enum rstmt which, const struct replica_key *k)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		sqlite3_stmt *st;
		int rc = step_key(s, which, k);

		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_CONSTRAINT || sqlite3_extended_errcode(s->db) != SQLITE_CONSTRAINT_UNIQUE ||
		    !k->hash || attempt)
			return store_err(s, rc, "replica: put key");
		/* the digest sits on another id locally: the upstream moved it */
		if (!(st = rstmt(s, R_KEY_DEL_HASH)))
			return APIKEY_ERR_STORE;
		sqlite3_bind_blob(st, 1, k->hash, (int)k->hash_len, SQLITE_STATIC);
		bind_text(st, 2, k->id);
		if ((rc = exec_stmt(s, st, "replica: put key")) != 0)
			return rc;
	}
	return APIKEY_ERR_STORE;
}

int apikey_replica_key_put(struct apikey_store *s, const struct replica_key *k)
{
	int rc = step_key(s, R_KEY_UPDATE, k);
	bool updated;

	if (rc != SQLITE_DONE)
		return store_err(s, rc, "replica: update key");
	/* the update matched the row's hash and foreign_hash: the new ones */
	if (!(updated = sqlite3_changes(s->db) == 1))
		touch_old(s, k->id);
	touch_new(s, k);
	return updated ? 0 : put_key(s, R_KEY_PUT, k);
}

int apikey_replica_key_delete(struct apikey_store *s, const char *id)
{
	static const enum rstmt dels[] = { R_KEY_DEL, R_KEY_DEL_USAGE, R_KEY_DEL_FLEET, R_KEY_DEL_SERIES };

	touch_old(s, id);
	for (size_t i = 0; i < sizeof(dels) / sizeof(dels[0]); i++) {
		sqlite3_stmt *st = rstmt(s, dels[i]);
		int r;

		if (!st)
			return APIKEY_ERR_STORE;
		bind_text(st, 1, id);
		if ((r = exec_stmt(s, st, "replica: delete key")) != 0)
			return r;
	}
	return 0;
}

int apikey_replica_account_put(struct apikey_store *s, const char *owner, const char *plan, bool active)
{
	sqlite3_stmt *st = rstmt(s, R_ACCOUNT_PUT);

	if (!st)
		return APIKEY_ERR_STORE;
	touch_all(s);   /* what every key of the account verifies against */
	bind_text(st, 1, owner);
	bind_text(st, 2, plan ? plan : "");
	sqlite3_bind_int(st, 3, active ? 1 : 0);
	return exec_stmt(s, st, "replica: put account");
}

int apikey_replica_account_delete(struct apikey_store *s, const char *owner)
{
	sqlite3_stmt *st = rstmt(s, R_ACCOUNT_DEL);

	if (!st)
		return APIKEY_ERR_STORE;
	touch_all(s);   /* what every key of the account verifies against */
	bind_text(st, 1, owner);
	return exec_stmt(s, st, "replica: delete account");
}

int apikey_replica_preset_put(struct apikey_store *s, const char *name, const char *scopes)
{
	sqlite3_stmt *st = rstmt(s, R_PRESET_PUT);

	if (!st)
		return APIKEY_ERR_STORE;
	touch_all(s);
	bind_text(st, 1, name);
	bind_text(st, 2, scopes);
	return exec_stmt(s, st, "replica: put preset");
}

int apikey_replica_preset_delete(struct apikey_store *s, const char *name)
{
	sqlite3_stmt *st = rstmt(s, R_PRESET_DEL);

	if (!st)
		return APIKEY_ERR_STORE;
	touch_all(s);
	bind_text(st, 1, name);
	return exec_stmt(s, st, "replica: delete preset");
}

/* ---- resync in place: a diff computed outside any write transaction --------- */

/* A key row copied out of the stream: one allocation, strings after it. */
struct kept_key {
	struct replica_key k;
	struct kept_key *next;
	char buf[];
};

struct replica_diff {
	struct apikey_store *s;
	sqlite3_stmt *local;           /* the replica's keys in id order */
	bool local_done, local_row;    /* local: at its end / holding an unconsumed row */
	struct kept_key *put, **put_tail;
	char (*gone)[APIKEY_ID_SIZE];  /* ids only the replica has */
	size_t n_gone, cap_gone;
	unsigned long n_put;
	int err;
	bool temp_ready, drained;
	char fleet_id[APIKEY_UUID_SIZE], replica_id[APIKEY_UUID_SIZE];   /* "" = keep */
};

static int cmp_id(const char *a, const char *b)
{
	return strcmp(a, b);   /* bytewise: SQLite's BINARY, PostgreSQL's COLLATE "C" */
}

static int text_differs(sqlite3_stmt *st, int i, const char *v)
{
	const char *l = (const char *)sqlite3_column_text(st, i);

	if (!l || !v)
		return !l != !v;
	return strcmp(l, v) != 0;
}

static bool same_as_local(sqlite3_stmt *st, const struct replica_key *k)
{
	const void *h = sqlite3_column_blob(st, 1);
	size_t hl = (size_t)sqlite3_column_bytes(st, 1);

	if (!h != !k->hash || (h && (hl != k->hash_len || memcmp(h, k->hash, hl))))
		return false;
	if (text_differs(st, 2, k->foreign_hash) || text_differs(st, 3, k->hash_alg) ||
	    text_differs(st, 4, k->hint) || text_differs(st, 5, k->owner) ||
	    text_differs(st, 6, k->name ? k->name : "") || text_differs(st, 7, k->scopes) ||
	    text_differs(st, 8, k->metadata ? k->metadata : "{}") ||
	    text_differs(st, 13, k->rotated_from) || text_differs(st, 14, k->rotated_to))
		return false;
	return sqlite3_column_int64(st, 9) == k->rate_limit && sqlite3_column_int64(st, 10) == k->created_at_s &&
	       sqlite3_column_int64(st, 11) == k->expires_at_s && sqlite3_column_int64(st, 12) == k->revoked_at_s;
}

static int keep_gone(struct replica_diff *d, const char *id)
{
	if (d->n_gone == d->cap_gone) {
		size_t cap = d->cap_gone ? d->cap_gone * 2 : 256;
		void *p = realloc(d->gone, cap * sizeof(*d->gone));
		if (!p)
			return APIKEY_ERR_NOMEM;
		d->gone = p;
		d->cap_gone = cap;
	}
	copy_str(d->gone[d->n_gone++], APIKEY_ID_SIZE, id);
	return 0;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *dup_into(char **p, const char *s)
{
	size_t n = slen(s);
	char *out = *p;

	if (!s)
		return NULL;
	memcpy(out, s, n);
	*p += n;
	return out;
}

static int keep_put(struct replica_diff *d, const struct replica_key *k)
{
	size_t n = slen(k->id) + slen(k->foreign_hash) + slen(k->hash_alg) + slen(k->hint) + slen(k->owner) +
	           slen(k->name) + slen(k->scopes) + slen(k->metadata) + slen(k->rotated_from) +
	           slen(k->rotated_to) + (k->hash ? k->hash_len : 0);
	struct kept_key *c = malloc(sizeof(*c) + n);
	char *p;

	if (!c)
		return APIKEY_ERR_NOMEM;
	p = c->buf;
	c->k = *k;
	c->next = NULL;
	c->k.id = dup_into(&p, k->id);
	c->k.foreign_hash = dup_into(&p, k->foreign_hash);
	c->k.hash_alg = dup_into(&p, k->hash_alg);
	c->k.hint = dup_into(&p, k->hint);
	c->k.owner = dup_into(&p, k->owner);
	c->k.name = dup_into(&p, k->name);
	c->k.scopes = dup_into(&p, k->scopes);
	c->k.metadata = dup_into(&p, k->metadata);
	c->k.rotated_from = dup_into(&p, k->rotated_from);
	c->k.rotated_to = dup_into(&p, k->rotated_to);
	if (k->hash) {
		memcpy(p, k->hash, k->hash_len);
		c->k.hash = (const unsigned char *)p;
	}
	*d->put_tail = c;
	d->put_tail = &c->next;
	d->n_put++;
	return 0;
}

static int temp_tables(struct replica_diff *d)
{
	int r;

	if (d->temp_ready)
		return 0;
	/* the snapshot's accounts and presets, kept in this connection's
	 * temporary database (no lock on the replica) */
	r = exec_sql(d->s, "CREATE TEMP TABLE IF NOT EXISTS snap_accounts(owner TEXT PRIMARY KEY, plan TEXT,"
	             " active INTEGER);"
	             "CREATE TEMP TABLE IF NOT EXISTS snap_presets(name TEXT PRIMARY KEY, scopes TEXT);"
	             "DELETE FROM temp.snap_accounts; DELETE FROM temp.snap_presets", "replica: resync");
	d->temp_ready = r == 0;
	return r;
}

int apikey_replica_diff_new(struct apikey_store *s, struct replica_diff **out)
{
	struct replica_diff *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (!d)
		return APIKEY_ERR_NOMEM;
	d->s = s;
	d->put_tail = &d->put;
	rc = sqlite3_prepare_v2(s->db, "SELECT " KEY_COLUMNS " FROM keys ORDER BY id", -1, &d->local, NULL);
	if (rc != SQLITE_OK) {
		free(d);
		return store_err(s, rc, "replica: resync");
	}
	if ((rc = temp_tables(d)) != 0) {
		apikey_replica_diff_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

/* Advance the local cursor to a row (local_row), or to its end. */
static int local_next(struct replica_diff *d)
{
	int rc;

	if (d->local_done || d->local_row)
		return 0;
	rc = sqlite3_step(d->local);
	if (rc == SQLITE_ROW) {
		d->local_row = true;
		return 0;
	}
	d->local_done = true;
	return rc == SQLITE_DONE ? 0 : store_err(d->s, rc, "replica: resync");
}

int apikey_replica_diff_key(struct replica_diff *d, const struct replica_key *k)
{
	int r;

	if (d->err)
		return d->err;
	for (;;) {
		int c;

		if ((r = local_next(d)) != 0)
			return d->err = r;
		if (d->local_done) {
			r = keep_put(d, k);
			break;
		}
		c = cmp_id((const char *)sqlite3_column_text(d->local, 0), k->id);
		if (c < 0) {            /* only the replica has it */
			d->local_row = false;
			if ((r = keep_gone(d, (const char *)sqlite3_column_text(d->local, 0))) != 0)
				return d->err = r;
			continue;
		}
		if (c > 0) {            /* only the upstream has it */
			r = keep_put(d, k);
			break;
		}
		d->local_row = false;
		r = same_as_local(d->local, k) ? 0 : keep_put(d, k);
		break;
	}
	return d->err = r;
}

int apikey_replica_diff_account(struct replica_diff *d, const char *owner, const char *plan, bool active)
{
	sqlite3_stmt *st;
	int rc;

	if (d->err)
		return d->err;
	rc = sqlite3_prepare_v2(d->s->db, "INSERT OR REPLACE INTO temp.snap_accounts VALUES(?1, ?2, ?3)", -1,
	                        &st, NULL);
	if (rc != SQLITE_OK)
		return d->err = store_err(d->s, rc, "replica: resync");
	bind_text(st, 1, owner);
	bind_text(st, 2, plan ? plan : "");
	sqlite3_bind_int(st, 3, active ? 1 : 0);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : (d->err = store_err(d->s, rc, "replica: resync"));
}

int apikey_replica_diff_preset(struct replica_diff *d, const char *name, const char *scopes)
{
	sqlite3_stmt *st;
	int rc;

	if (d->err)
		return d->err;
	rc = sqlite3_prepare_v2(d->s->db, "INSERT OR REPLACE INTO temp.snap_presets VALUES(?1, ?2)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return d->err = store_err(d->s, rc, "replica: resync");
	bind_text(st, 1, name);
	bind_text(st, 2, scopes);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : (d->err = store_err(d->s, rc, "replica: resync"));
}

/* What is left of the replica after the last upstream id is gone upstream;
 * the replica's read transaction ends here. */
static int drain(struct replica_diff *d)
{
	int r = d->err;

	if (r != 0 || d->drained)
		return r;
	while ((r = local_next(d)) == 0 && !d->local_done) {
		d->local_row = false;
		if ((r = keep_gone(d, (const char *)sqlite3_column_text(d->local, 0))) != 0)
			break;
	}
	sqlite3_reset(d->local);
	d->drained = true;
	return d->err = r;
}

int apikey_replica_diff_deletes(struct replica_diff *d, unsigned long *n)
{
	int r = drain(d);

	*n = d->n_gone;
	return r;
}

int apikey_replica_diff_identity(struct replica_diff *d, const char *fleet_id, const char *replica_id)
{
	if (copy_str(d->fleet_id, sizeof(d->fleet_id), fleet_id) != 0 ||
	    copy_str(d->replica_id, sizeof(d->replica_id), replica_id) != 0)
		return APIKEY_ERR_TOO_LONG;
	return 0;
}

int apikey_replica_diff_apply(struct replica_diff *d, int64_t seq, const char *xid,
                              unsigned long *changed, unsigned long *deleted)
{
	struct apikey_store *s = d->s;
	int r;

	if ((r = drain(d)) != 0)
		return r;
	if ((r = apikey_replica_begin(s)) != 0)
		return r;
	touch_all(s);   /* accounts and presets below */
	for (size_t i = 0; r == 0 && i < d->n_gone; i++)
		r = apikey_replica_key_delete(s, d->gone[i]);
	for (struct kept_key *c = d->put; r == 0 && c; c = c->next)
		r = apikey_replica_key_put(s, &c->k);
	if (r == 0)
		r = exec_sql(s, "INSERT INTO accounts(owner, plan, active) SELECT owner, plan, active"
		             " FROM temp.snap_accounts WHERE true ON CONFLICT(owner) DO UPDATE SET"
		             " plan = excluded.plan, active = excluded.active"
		             " WHERE accounts.plan IS NOT excluded.plan OR accounts.active IS NOT excluded.active;"
		             "DELETE FROM accounts WHERE owner NOT IN (SELECT owner FROM temp.snap_accounts);"
		             "INSERT INTO presets(name, scopes) SELECT name, scopes FROM temp.snap_presets WHERE true"
		             " ON CONFLICT(name) DO UPDATE SET scopes = excluded.scopes"
		             " WHERE presets.scopes IS NOT excluded.scopes;"
		             "DELETE FROM presets WHERE name NOT IN (SELECT name FROM temp.snap_presets)",
		             "replica: resync");
	if (r == 0)
		r = apikey_replica_set_position(s, seq, xid);
	if (r == 0 && d->fleet_id[0])
		r = apikey_replica_set_identity(s, d->fleet_id, d->replica_id);
	if (r != 0) {
		apikey_replica_rollback(s);
		return r;
	}
	if ((r = apikey_replica_commit(s)) != 0)
		return r;
	if (changed)
		*changed = d->n_put;
	if (deleted)
		*deleted = d->n_gone;
	return 0;
}

void apikey_replica_diff_free(struct replica_diff *d)
{
	if (!d)
		return;
	sqlite3_finalize(d->local);
	while (d->put) {
		struct kept_key *n = d->put->next;
		free(d->put);
		d->put = n;
	}
	free(d->gone);
	if (d->temp_ready)
		exec_sql(d->s, "DELETE FROM temp.snap_accounts; DELETE FROM temp.snap_presets", "replica: resync");
	free(d);
}

/* ---- a new replica file ---------------------------------------------------------- */

/* Run each statement the query returns (read whole first: no schema change
 * while a statement runs). */
static int exec_each(struct apikey_store *s, const char *query)
{
	sqlite3_stmt *st;
	char *sql = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(s->db, query, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(s, rc, "replica: build");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_text(st, 0))
		sql = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return store_err(s, rc, "replica: build");
	if (!sql)
		return 0;   /* nothing to run */
	r = exec_sql(s, sql, "replica: build");
	sqlite3_free(sql);
	return r;
}

static int drop_saved(struct apikey_store *s)
{
	return exec_each(s, "SELECT group_concat('DROP ' || upper(type) || ' \"' || name || '\"', ';')"
	                 " FROM temp.saved_schema");
}

static int restore_saved(struct apikey_store *s)
{
	/* indexes first: a trigger never needs them, and they are built sorted */
	return exec_each(s, "SELECT group_concat(sql, ';') FROM (SELECT sql FROM temp.saved_schema"
	                 " ORDER BY type = 'trigger')");
}

int apikey_replica_build_begin(const struct apikey_config *c, const char *path, apikey_log_fn log,
                               void *log_ctx, struct apikey_store **out)
{
	struct apikey_config bc = *c;
	struct apikey_store *s = NULL;
	struct stat st;
	int r;

	*out = NULL;
	/* the pepper stays the one beside the real store */
	if (apikey_config_pepper_path(c, bc.pepper_path, sizeof(bc.pepper_path)) != 0 ||
	    copy_str(bc.db_path, sizeof(bc.db_path), path) != 0)
		return APIKEY_ERR_TOO_LONG;
	if (lstat(path, &st) == 0) {
		core_log(log, log_ctx, LOG_ERR, "%s exists; a replica is built in a new file", path);
		return APIKEY_ERR_EXISTS;
	}
	if (!(s = store_new(&bc, log, log_ctx)))
		return APIKEY_ERR_NOMEM;
	/* Nobody reads this file before it is renamed into place: no journal,
	 * no syncs while loading; WAL and one fsync at the end. */
	if ((r = store_connect(s, true)) != 0 ||
	    (r = exec_sql(s, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;"
	                  " PRAGMA temp_store = MEMORY", "replica: build")) != 0 ||
	    (r = store_migrate(s, 0)) != 0)
		goto fail;
	/* Keys load without their generation triggers (one meta update per row
	 * otherwise) and without their secondary indexes (built once, sorted,
	 * after the load); build_finish puts the same definitions back.  The
	 * primary key and the digest's UNIQUE stay: they are part of the table. */
	if ((r = exec_sql(s, "CREATE TEMP TABLE saved_schema AS SELECT type, name, sql FROM sqlite_master"
	                  " WHERE tbl_name = 'keys' AND type IN ('trigger', 'index') AND sql IS NOT NULL", "replica: build")) != 0 ||
	    (r = drop_saved(s)) != 0 || (r = exec_sql(s, "BEGIN; DELETE FROM presets", "replica: build")) != 0)
		goto fail;
	*out = s;   /* transferred */
	return 0;
fail:
	apikey_store_free(s);
	return r;
}

int apikey_replica_build_key(struct apikey_store *s, const struct replica_key *k)
{
	return put_key(s, R_KEY_INSERT, k);
}

/* A generation no store of this path had: a verifier still holding the old
 * file's number never mistakes the new file for the one it knew. */
static int fresh_generation(struct apikey_store *s)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "UPDATE meta SET value = %lld WHERE name = 'generation'",
	         (long long)now_ms() * 1000 + (getpid() & 999));
	return exec_sql(s, sql, "replica: build");
}

int apikey_replica_build_finish(struct apikey_store *s, const char *fleet_id, const char *replica_id,
                                int64_t seq, const char *xid)
{
	char dir[APIKEY_PATH_SIZE];
	struct stat st;
	mode_t mode = 0640;
	int r, fd;

	if ((r = restore_saved(s)) != 0 || (r = fresh_generation(s)) != 0 ||
	    (r = apikey_replica_set_identity(s, fleet_id, replica_id)) != 0 ||
	    (r = apikey_replica_set_position(s, seq, xid)) != 0 ||
	    (r = exec_sql(s, "COMMIT", "replica: build")) != 0)
		return r;
	/* a connection with prepared statements cannot change its journal mode
	 * or truncate the WAL: finalize them (the store is freed after this) */
	store_replica_free(s);
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(s->stmts[i]);
		s->stmts[i] = NULL;
	}
	if ((r = exec_sql(s, "PRAGMA journal_mode = WAL", "replica: build")) != 0 ||
	    (r = exec_sql(s, "PRAGMA main.wal_checkpoint(TRUNCATE)", "replica: build")) != 0)
		return r;
	/* the layout of docs/design/packaging.md: a store shared by a group
	 * lives in a group-writable directory and is group-writable itself */
	copy_str(dir, sizeof(dir), s->cfg.db_path);
	if (stat(dirname(dir), &st) == 0 && (st.st_mode & S_IWGRP))
		mode = 0660;
	if ((fd = open(s->cfg.db_path, O_RDONLY | O_CLOEXEC)) < 0)
		return apikey_store_log(s, LOG_ERR, "%s: %s", s->cfg.db_path, strerror(errno)), APIKEY_ERR_IO;
	r = fchmod(fd, mode) == 0 && fsync(fd) == 0 ? 0 : APIKEY_ERR_IO;
	if (r != 0)
		apikey_store_log(s, LOG_ERR, "%s: %s", s->cfg.db_path, strerror(errno));
	close(fd);
	return r;
}

static int fsync_dir(const char *path)
{
	char dir[APIKEY_PATH_SIZE];
	int fd, r;

	copy_str(dir, sizeof(dir), path);
	if ((fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return APIKEY_ERR_IO;
	r = fsync(fd) == 0 ? 0 : APIKEY_ERR_IO;
	close(fd);
	return r;
}

int apikey_replica_install(const struct apikey_config *c, const char *built, bool corrupt,
                           apikey_log_fn log, void *log_ctx)
{
	char aux[APIKEY_PATH_SIZE + 32];
	struct stat old;
	bool had = lstat(c->db_path, &old) == 0 && S_ISREG(old.st_mode);

	if (had) {
		/* keep the old file's owner and mode (root may chown; others keep theirs) */
		if (chmod(built, old.st_mode & 07777) != 0 ||
		    (geteuid() == 0 && chown(built, old.st_uid, old.st_gid) != 0)) {
			core_log(log, log_ctx, LOG_ERR, "%s: cannot give it the old file's owner and mode: %s", built,
			         strerror(errno));
			return APIKEY_ERR_IO;
		}
		if (corrupt) {
			snprintf(aux, sizeof(aux), "%s.corrupt-%lld", c->db_path, (long long)(now_ms() / 1000));
			if (rename(c->db_path, aux) == 0)
				core_log(log, log_ctx, LOG_WARNING, "%s: corrupt replica kept as %s", c->db_path, aux);
		}
	}
	/* SQLite pairs a database with its -wal and -shm by name: never leave
	 * the old ones beside the new file */
	snprintf(aux, sizeof(aux), "%s-wal", c->db_path);
	if (unlink(aux) != 0 && errno != ENOENT)
		goto io;
	snprintf(aux, sizeof(aux), "%s-shm", c->db_path);
	if (unlink(aux) != 0 && errno != ENOENT)
		goto io;
	if (rename(built, c->db_path) != 0)
		goto io;
	return fsync_dir(c->db_path);
io:
	core_log(log, log_ctx, LOG_ERR, "%s: cannot install the new replica: %s", c->db_path, strerror(errno));
	return APIKEY_ERR_IO;
}

int apikey_replica_prune_local(struct apikey_store *s, int64_t before_s, unsigned *events)
{
	int r;

	*events = 0;
	if ((r = apikey_replica_begin(s)) != 0)
		return r;
	if ((r = sql_row_prune_events(s, before_s, events)) != 0) {
		apikey_replica_rollback(s);
		return r;
	}
	return apikey_replica_commit(s);
}

/* ---- a store's rows, whole (upstream init --import-local) ------------------ */

int apikey_replica_key_rows(struct apikey_store *s, int (*fn)(void *ctx, const struct replica_key *k), void *ctx)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, "SELECT " KEY_COLUMNS " FROM keys ORDER BY id", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(s, rc, "key rows");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct replica_key k = {
			.id = (const char *)sqlite3_column_text(st, 0),
			.hash = sqlite3_column_blob(st, 1), .hash_len = (size_t)sqlite3_column_bytes(st, 1),
			.foreign_hash = (const char *)sqlite3_column_text(st, 2),
			.hash_alg = (const char *)sqlite3_column_text(st, 3),
			.hint = (const char *)sqlite3_column_text(st, 4), .owner = (const char *)sqlite3_column_text(st, 5),
			.name = (const char *)sqlite3_column_text(st, 6), .scopes = (const char *)sqlite3_column_text(st, 7),
			.metadata = (const char *)sqlite3_column_text(st, 8), .rate_limit = sqlite3_column_int64(st, 9),
			.created_at_s = sqlite3_column_int64(st, 10), .expires_at_s = sqlite3_column_int64(st, 11),
			.revoked_at_s = sqlite3_column_int64(st, 12),
			.rotated_from = (const char *)sqlite3_column_text(st, 13),
			.rotated_to = (const char *)sqlite3_column_text(st, 14),
		};
		if ((r = fn(ctx, &k)) != 0)
			break;
	}
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "key rows");
	return r;
}

int apikey_replica_account_rows(struct apikey_store *s,
                                int (*fn)(void *ctx, const char *owner, const char *plan, bool active), void *ctx)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, "SELECT owner, plan, active FROM accounts ORDER BY owner", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(s, rc, "account rows");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		            sqlite3_column_int(st, 2) != 0)) != 0)
			break;
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "account rows");
	return r;
}

/* ---- what the follower ships upstream ------------------------------------------ */

int apikey_replica_usage_since(struct apikey_store *s, int64_t since_s,
                               int (*fn)(void *ctx, const char *id, uint64_t count, int64_t last_s), void *ctx)
{
	sqlite3_stmt *st = rstmt(s, R_USAGE_SINCE);
	int rc, r = 0;

	if (!st)
		return APIKEY_ERR_STORE;
	sqlite3_bind_int64(st, 1, since_s);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = fn(ctx, (const char *)sqlite3_column_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
		            sqlite3_column_int64(st, 2))) != 0)
			break;
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "replica: usage");
	return r;
}

int apikey_replica_fleet_usage_put(struct apikey_store *s, const char *id, uint64_t count, int64_t last_s)
{
	sqlite3_stmt *st = rstmt(s, R_FLEET_USAGE_PUT);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)count);
	bind_time(st, 3, last_s);
	return exec_stmt(s, st, "replica: fleet usage");
}

int apikey_replica_events_after(struct apikey_store *s, int64_t after, unsigned limit,
                                int (*fn)(void *ctx, int64_t id, const struct apikey_event *e), void *ctx)
{
	sqlite3_stmt *st = rstmt(s, R_EVENTS_AFTER);
	struct apikey_event e;
	int rc, r = 0;

	if (!st)
		return APIKEY_ERR_STORE;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e.id = sqlite3_column_int64(st, 0);
		e.at_s = sqlite3_column_int64(st, 1);
		col_str(st, 2, e.key_id, sizeof(e.key_id));
		col_str(st, 3, e.event, sizeof(e.event));
		col_str(st, 4, e.reason, sizeof(e.reason));
		col_str(st, 5, e.source, sizeof(e.source));
		col_str(st, 6, e.actor, sizeof(e.actor));
		col_str(st, 7, e.owner, sizeof(e.owner));
		if ((r = fn(ctx, e.id, &e)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "replica: events");
	return r;
}

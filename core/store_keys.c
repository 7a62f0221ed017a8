/* store_keys.c — key rows in SQLite: the row primitives of core/rows.h for
 * keys and their usage counts, the verification lookups,
 * and the public reads of keys (apikey_key_get, apikey_key_list).  Nothing
 * here judges a value or writes an event: core/keys.c and core/import.c do. */
#include <string.h>
#include <syslog.h>
#define APIKEY_STORE_IMPL   /* one of the SQLite files: see store_sql.h */
#include "backend.h"
#include "store_sql.h"

static void row_to_record(sqlite3_stmt *st, struct key_record *rec)
{
	struct apikey_key_info *k = &rec->info;

	/* every field is written below: no memset of the 3 kB record */
	col_str(st, 0, k->id, sizeof(k->id));
	col_str(st, 1, k->hint, sizeof(k->hint));
	col_str(st, 2, k->owner, sizeof(k->owner));
	col_str(st, 3, k->name, sizeof(k->name));
	col_str(st, 4, k->scopes, sizeof(k->scopes));
	col_str(st, 5, k->metadata, sizeof(k->metadata));
	col_str(st, 6, k->rotated_from, sizeof(k->rotated_from));
	col_str(st, 7, k->rotated_to, sizeof(k->rotated_to));
	col_str(st, 8, k->hash_alg, sizeof(k->hash_alg));
	k->created_at_s = sqlite3_column_int64(st, 9);
	k->expires_at_s = sqlite3_column_int64(st, 10);
	k->revoked_at_s = sqlite3_column_int64(st, 11);
	k->last_used_at_s = sqlite3_column_int64(st, 12);
	k->use_count = (uint64_t)sqlite3_column_int64(st, 13);
	k->rate_limit = (uint32_t)sqlite3_column_int64(st, 14);
	rec->has_account = sqlite3_column_type(st, 16) != SQLITE_NULL;
	col_str(st, 15, rec->plan, sizeof(rec->plan));
	rec->active = !rec->has_account || sqlite3_column_int(st, 16) != 0;
}

/* Run a key-returning statement expecting at most one row. */
static int one_record(struct apikey_store *s, sqlite3_stmt *st, struct key_record *rec)
{
	int rc = sqlite3_step(st), r;

	if (rc == SQLITE_ROW) {
		row_to_record(st, rec);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? APIKEY_ERR_NOT_FOUND : store_err(s, rc, "lookup");
	}
	sqlite3_reset(st);
	return r;
}

int row_key_by_digest(struct apikey_store *s, const unsigned char d[DIGEST_LEN], struct key_record *rec)
{
	sqlite3_stmt *st = stmt(s, ST_BY_HASH);

	if (!st)
		return APIKEY_ERR_STORE;
	sqlite3_bind_blob(st, 1, d, DIGEST_LEN, SQLITE_STATIC);
	return one_record(s, st, rec);
}

int sql_row_key_get(struct apikey_store *s, const char *id, struct key_record *rec)
{
	sqlite3_stmt *st = stmt(s, ST_BY_ID);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	return one_record(s, st, rec);
}

/* Lengths of the import hints in the store, as a bitmask, cached until the
 * store changes: imported keys are found by the hint their key starts with. */
static int hint_lengths(struct apikey_store *s)
{
	sqlite3_stmt *st;
	int mask = 0, rc;

	if (s->foreign_hint_lens >= 0)
		return s->foreign_hint_lens;
	if (!(st = stmt(s, ST_HINT_LENS)))
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int n = sqlite3_column_int(st, 0);
		if (n >= APIKEY_IMPORT_HINT_MIN && n <= APIKEY_IMPORT_HINT_MAX)
			mask |= 1 << n;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(s, rc, "hint lengths"), -1;
	s->foreign_hint_lens = mask;
	return mask;
}

int row_key_by_foreign(struct apikey_store *s, const char *key, size_t len, unsigned slow_ms,
                       unsigned *cheapest_skipped_ms, struct key_record *rec)
{
	int mask = hint_lengths(s);
	unsigned cheapest = ROW_FOREIGN_ALL;
	bool skipped = false;

	if (mask < 0)
		return APIKEY_ERR_STORE;
	for (int n = APIKEY_IMPORT_HINT_MIN; n <= APIKEY_IMPORT_HINT_MAX && (size_t)n <= len; n++) {
		sqlite3_stmt *st;
		int rc, tried = 0;

		if (!(mask & (1 << n)))
			continue;
		if (!(st = stmt(s, ST_BY_HINT)))
			return APIKEY_ERR_STORE;
		sqlite3_bind_text(st, 1, key, n, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && tried++ < FOREIGN_CANDIDATES_MAX) {
			const char *fh = (const char *)sqlite3_column_text(st, 17);
			unsigned cost = fh && slow_ms != ROW_FOREIGN_ALL ? foreign_cost_ms(fh) : 0;
			int v;

			if (cost > slow_ms) {
				skipped = true;     /* checked off the request path (core/slowhash.c) */
				if (cost < cheapest)
					cheapest = cost;
				continue;
			}
			v = fh ? foreign_verify(fh, key, len) : APIKEY_ERR_INVALID;

			if (v == 0) {
				row_to_record(st, rec);
				sqlite3_reset(st);
				return 0;
			}
			if (v == APIKEY_ERR_CRYPTO || v == APIKEY_ERR_NOMEM) {
				/* cannot check it (a library missing): UNAVAILABLE, not "no such key"
				 * (fh is the statement's: named before the reset frees it) */
				const char *alg = apikey_hash_scheme(fh);

				apikey_store_log(s, LOG_ERR, "imported %s key: cannot check its hash (%s)", alg ? alg : "?",
				          apikey_strerror(v));
				sqlite3_reset(st);
				return v;
			}
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return store_err(s, rc, "lookup imported key");
	}
	if (cheapest_skipped_ms)
		*cheapest_skipped_ms = cheapest;
	return skipped ? APIKEY_ERR_PENDING : APIKEY_ERR_NOT_FOUND;
}

int row_json_object(struct apikey_store *s, const char *text)
{
	sqlite3_stmt *st = stmt(s, ST_JSON_OBJECT);
	int rc, ok;

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, text);
	rc = sqlite3_step(st);
	ok = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_err(s, rc, "check metadata");
	return ok ? 0 : APIKEY_ERR_INVALID;
}

/* A CHECK on metadata or rate limit is a bad argument, not a clash. */
static int write_result(struct apikey_store *s, int rc, const char *what)
{
	if (rc == SQLITE_DONE)
		return 0;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_CHECK ? APIKEY_ERR_INVALID
		                                                                 : APIKEY_ERR_EXISTS;
	return store_err(s, rc, what);
}

int sql_row_key_insert(struct apikey_store *s, const struct key_row *k)
{
	sqlite3_stmt *st = stmt(s, ST_INSERT_KEY);
	int rc;

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, k->id);
	if (k->digest)
		sqlite3_bind_blob(st, 2, k->digest, DIGEST_LEN, SQLITE_STATIC);
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
	bind_text(st, 13, k->rotated_from);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return write_result(s, rc, "insert key");
}

int sql_row_key_update(struct apikey_store *s, const char *id, const struct key_row *k)
{
	sqlite3_stmt *st = stmt(s, ST_UPDATE_KEY);
	int rc;

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	bind_text(st, 2, k->name ? k->name : "");
	bind_text(st, 3, k->scopes);
	bind_text(st, 4, k->metadata ? k->metadata : "{}");
	sqlite3_bind_int64(st, 5, k->rate_limit);
	bind_time(st, 6, k->expires_at_s);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if ((rc = write_result(s, rc, "update key")) != 0)
		return rc;
	return sqlite3_changes(s->db) ? 0 : APIKEY_ERR_NOT_FOUND;
}

int sql_row_key_set_revoked(struct apikey_store *s, const char *id, int64_t at_s)
{
	sqlite3_stmt *st = stmt(s, ST_REVOKE);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, at_s);
	return exec_stmt(s, st, "revoke");
}

int sql_row_key_set_rotated(struct apikey_store *s, const char *id, const char *to, int64_t revoked_at_s,
                        int64_t expires_at_s)
{
	sqlite3_stmt *st = stmt(s, ST_ROTATE_OLD);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	bind_text(st, 2, to);
	bind_time(st, 3, revoked_at_s);
	bind_time(st, 4, expires_at_s);
	return exec_stmt(s, st, "rotate");
}

int row_key_set_digest(struct apikey_store *s, const char *id, const unsigned char d[DIGEST_LEN])
{
	sqlite3_stmt *st = stmt(s, ST_REHASH);
	int r;

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	sqlite3_bind_blob(st, 2, d, DIGEST_LEN, SQLITE_STATIC);
	if ((r = exec_stmt(s, st, "re-hash imported key")) != 0)
		return r;
	return sqlite3_changes(s->db) ? 0 : APIKEY_ERR_NOT_FOUND;
}

int row_usage_add(struct apikey_store *s, const char *id, uint64_t count, int64_t last_s)
{
	sqlite3_stmt *st = stmt(s, ST_USAGE_ADD);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)count);
	sqlite3_bind_int64(st, 3, last_s);
	return exec_stmt(s, st, "usage");
}

/* ---- public reads ------------------------------------------------------------ */

int apikey_key_get(struct apikey_store *s, const char *id, struct apikey_key_info *info)
{
	struct key_record rec;
	int r = sql_row_key_get(s, id, &rec);

	if (r == 0)
		*info = rec.info;
	return r;
}

int apikey_key_list(struct apikey_store *s, const char *owner,
                    int (*fn)(void *ctx, const struct apikey_key_info *k), void *ctx)
{
	sqlite3_stmt *st = stmt(s, owner ? ST_LIST_OWNER : ST_LIST);
	struct key_record rec;
	int rc, r = 0;

	if (!st)
		return APIKEY_ERR_STORE;
	if (owner)
		bind_text(st, 1, owner);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_record(st, &rec);
		if ((r = fn(ctx, &rec.info)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "list keys");
	return r;
}

int apikey_key_page(struct apikey_store *s, const struct apikey_key_filter *f,
                    int (*fn)(void *ctx, const struct apikey_key_info *k), void *ctx, uint64_t *next)
{
	sqlite3_stmt *st = stmt(s, f->owner ? ST_PAGE_OWNER : ST_PAGE);
	unsigned scan = f->scan_max ? f->scan_max : APIKEY_PAGE_SCAN_MAX, seen = 0, passed = 0;
	int64_t now = f->now_s ? f->now_s : now_ms() / 1000, last = 0;
	struct key_record rec;
	int rc, r = 0;

	*next = 0;
	if (!st)
		return APIKEY_ERR_STORE;
	if (f->limit == 0 || f->after > INT64_MAX)
		return APIKEY_ERR_INVALID;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)f->after);
	/* one row more than may be examined: is there anything after the page? */
	sqlite3_bind_int64(st, 2, (sqlite3_int64)scan + 1);
	if (f->owner)
		bind_text(st, 3, f->owner);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (passed == f->limit || seen == scan) {
			*next = (uint64_t)last;   /* more rows follow the last one looked at */
			break;
		}
		seen++;
		last = sqlite3_column_int64(st, 18);
		row_to_record(st, &rec);
		if (f->status >= 0 && (int)apikey_key_status(&rec.info, now) != f->status)
			continue;
		passed++;
		if ((r = fn(ctx, &rec.info)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "list keys");
	return r;
}

int row_series_add(struct apikey_store *s, const char *id, int64_t minute_s, enum apikey_outcome o,
                   uint64_t count)
{
	sqlite3_stmt *st = stmt(s, ST_SERIES_ADD);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, minute_s - minute_s % 60);
	bind_text(st, 3, apikey_outcome_code(o));
	sqlite3_bind_int64(st, 4, (sqlite3_int64)count);
	return exec_stmt(s, st, "usage series");
}

int apikey_usage_series(struct apikey_store *s, const char *key_id, const char *owner,
                        int64_t from_s, int64_t to_s, unsigned bucket_s,
                        int (*fn)(void *ctx, const struct apikey_usage_point *p), void *ctx)
{
	struct apikey_usage_point p;
	sqlite3_stmt *st;
	int rc, r = 0, o;

	if (!key_id == !owner || (bucket_s == 0 && !owner) || from_s > to_s)
		return APIKEY_ERR_INVALID;
	st = stmt(s, key_id ? ST_SERIES_KEY : bucket_s ? ST_SERIES_OWNER : ST_SERIES_OWNER_KEYS);
	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, key_id ? key_id : owner);
	sqlite3_bind_int64(st, 2, from_s);
	sqlite3_bind_int64(st, 3, to_s);
	if (bucket_s)
		sqlite3_bind_int64(st, 4, bucket_s);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char code[32];

		col_str(st, 2, code, sizeof(code));
		if ((o = apikey_outcome_from_code(code)) < 0)
			continue;   /* a code this version does not know */
		if (key_id)
			copy_str(p.key_id, sizeof(p.key_id), key_id);
		else
			col_str(st, 0, p.key_id, sizeof(p.key_id));
		p.start_s = sqlite3_column_int64(st, 1);
		p.outcome = (enum apikey_outcome)o;
		p.count = (uint64_t)sqlite3_column_int64(st, 3);
		if ((r = fn(ctx, &p)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "usage series");
	return r;
}

/* store_admin.c — account, preset and audit-event rows in SQLite, and the
 * deletions of a prune: the row primitives of core/rows.h for them, and
 * their public reads.  Validation and events are core/admin.c's. */
#include <string.h>
#define APIKEY_STORE_IMPL   /* one of the SQLite files: see store_sql.h */
#include "backend.h"
#include "store_sql.h"

int sql_row_account_upsert(struct apikey_store *s, const char *owner, const char *plan, int active)
{
	sqlite3_stmt *st = stmt(s, ST_ACCOUNT_SET);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, owner);
	bind_text(st, 2, plan);
	if (active >= 0)
		sqlite3_bind_int(st, 3, active ? 1 : 0);
	return exec_stmt(s, st, "set account");
}

int apikey_account_get(struct apikey_store *s, const char *owner, struct apikey_account *a)
{
	sqlite3_stmt *st = stmt(s, ST_ACCOUNT_GET);
	int rc;

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, owner);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		col_str(st, 0, a->owner, sizeof(a->owner));
		col_str(st, 1, a->plan, sizeof(a->plan));
		a->active = sqlite3_column_int(st, 2) != 0;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? APIKEY_ERR_NOT_FOUND : store_err(s, rc, "account");
}

int sql_row_preset_upsert(struct apikey_store *s, const char *name, const char *scopes)
{
	sqlite3_stmt *st = stmt(s, ST_PRESET_SET);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, name);
	bind_text(st, 2, scopes);
	return exec_stmt(s, st, "set preset");
}

int sql_row_preset_delete(struct apikey_store *s, const char *name)
{
	sqlite3_stmt *st = stmt(s, ST_PRESET_DEL);
	int r;

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, name);
	if ((r = exec_stmt(s, st, "remove preset")) != 0)
		return r;
	return sqlite3_changes(s->db) ? 0 : APIKEY_ERR_NOT_FOUND;
}

int apikey_preset_get(struct apikey_store *s, const char *name, char out[APIKEY_SCOPES_SIZE])
{
	sqlite3_stmt *st = stmt(s, ST_PRESET_GET);
	int rc;

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		col_str(st, 0, out, APIKEY_SCOPES_SIZE);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? APIKEY_ERR_NOT_FOUND : store_err(s, rc, "preset");
}

int apikey_preset_list(struct apikey_store *s, int (*fn)(void *ctx, const char *name, const char *scopes),
                       void *ctx)
{
	sqlite3_stmt *st = stmt(s, ST_PRESET_LIST);
	int rc, r = 0;

	if (!st)
		return APIKEY_ERR_STORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = fn(ctx, (const char *)sqlite3_column_text(st, 0),
		            (const char *)sqlite3_column_text(st, 1))) != 0)
			break;
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "list presets");
	return r;
}

int sql_row_event_append(struct apikey_store *s, const struct event_row *e)
{
	sqlite3_stmt *st = stmt(s, ST_EVENT_ADD);

	if (!st)
		return APIKEY_ERR_STORE;
	sqlite3_bind_int64(st, 1, e->at_s);
	bind_text(st, 2, e->key_id ? e->key_id : "");
	bind_text(st, 3, e->event);
	bind_text(st, 4, e->reason ? e->reason : "");
	bind_text(st, 5, e->source ? e->source : "");
	bind_text(st, 6, e->actor ? e->actor : "");
	bind_text(st, 7, e->owner);
	return exec_stmt(s, st, "audit event");
}

static void row_to_event(sqlite3_stmt *st, struct apikey_event *e)
{
	e->at_s = sqlite3_column_int64(st, 0);
	col_str(st, 1, e->key_id, sizeof(e->key_id));
	col_str(st, 2, e->event, sizeof(e->event));
	col_str(st, 3, e->reason, sizeof(e->reason));
	col_str(st, 4, e->source, sizeof(e->source));
	col_str(st, 5, e->actor, sizeof(e->actor));
	e->id = sqlite3_column_int64(st, 6);
	col_str(st, 7, e->owner, sizeof(e->owner));
}

int apikey_event_list(struct apikey_store *s, const char *key_id, unsigned limit,
                      int (*fn)(void *ctx, const struct apikey_event *e), void *ctx)
{
	sqlite3_stmt *st = stmt(s, key_id ? ST_EVENTS_KEY : ST_EVENTS);
	struct apikey_event e;
	int rc, r = 0;

	if (!st)
		return APIKEY_ERR_STORE;
	/* LIMIT -1 is SQLite's "no limit" */
	sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
	if (key_id)
		bind_text(st, 2, key_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_event(st, &e);
		if ((r = fn(ctx, &e)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "list events");
	return r;
}

int apikey_event_page(struct apikey_store *s, const struct apikey_event_filter *f,
                      int (*fn)(void *ctx, const struct apikey_event *e), void *ctx, int64_t *next)
{
	sqlite3_stmt *st = stmt(s, f->key_id ? ST_EVENTS_PAGE_KEY : f->owner ? ST_EVENTS_PAGE_OWNER
	                                                                  : ST_EVENTS_PAGE);
	struct apikey_event e;
	unsigned n = 0;
	int rc, r = 0;

	*next = 0;
	if (!st)
		return APIKEY_ERR_STORE;
	if (f->limit == 0)
		return APIKEY_ERR_INVALID;
	sqlite3_bind_int64(st, 1, f->before_id > 0 ? f->before_id : INT64_MAX);
	/* one more than the page: is there a next one? */
	sqlite3_bind_int64(st, 2, (sqlite3_int64)f->limit + 1);
	if (f->key_id)
		bind_text(st, 3, f->key_id);
	bind_text(st, 4, f->owner);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == f->limit) {
			*next = e.id;
			break;
		}
		row_to_event(st, &e);
		n++;
		if ((r = fn(ctx, &e)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "list events");
	return r;
}

/* Run the statements of a prune: ?1 bound to t1, ?2 to t2 where they
 * appear; changes (may be NULL) receives the rows the statement at index
 * counted changed. */
static int prune_steps(struct apikey_store *s, const char *const *sql, size_t n, int64_t t1, int64_t t2,
                       size_t counted, unsigned *changes)
{
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL);

		if (rc != SQLITE_OK)
			return store_err(s, rc, "prune");
		if (sqlite3_bind_parameter_count(st) >= 1)
			sqlite3_bind_int64(st, 1, t1);
		if (sqlite3_bind_parameter_count(st) >= 2)
			sqlite3_bind_int64(st, 2, t2);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return store_err(s, rc, "prune");
		if (changes && i == counted)
			*changes = (unsigned)sqlite3_changes(s->db);
	}
	return 0;
}

int sql_row_prune_keys(struct apikey_store *s, int64_t dead_before_s, unsigned *keys)
{
	static const char *const sql[] = {
		"CREATE TEMP TABLE IF NOT EXISTS gone(id TEXT PRIMARY KEY, why TEXT NOT NULL)",
		"DELETE FROM temp.gone",
		/* dead: revoked, or past its expiry (a rotation's grace is its expiry) */
		"INSERT INTO temp.gone SELECT id, CASE WHEN rotated_to IS NOT NULL THEN 'rotated'"
		"  WHEN revoked_at IS NOT NULL AND (expires_at IS NULL OR revoked_at <= expires_at) THEN 'revoked'"
		"  ELSE 'expired' END FROM keys WHERE revoked_at < ?1 OR expires_at < ?1",
		"DELETE FROM usage WHERE key_id IN (SELECT id FROM temp.gone)",
		"DELETE FROM usage_series WHERE key_id IN (SELECT id FROM temp.gone)",
		"DELETE FROM keys WHERE id IN (SELECT id FROM temp.gone)",
	};

	*keys = 0;
	return prune_steps(s, sql, sizeof(sql) / sizeof(sql[0]), dead_before_s, 0, 5, keys);
}

int row_prune_usage(struct apikey_store *s, int64_t before_s, int64_t fold_before_s)
{
	/* ?1: the cut-off; ?2: the start of the hour before which minute usage
	 * counts are folded into hours (whole hours only) */
	static const char *const sql[] = {
		"DELETE FROM usage_series WHERE start < ?1",
		"CREATE TEMP TABLE IF NOT EXISTS fold(key_id TEXT, start INTEGER, outcome TEXT, count INTEGER)",
		"DELETE FROM temp.fold",
		"INSERT INTO temp.fold SELECT key_id, (start / 3600) * 3600, outcome, sum(count) FROM usage_series"
		" WHERE span = 60 AND start < ?2 GROUP BY key_id, start / 3600, outcome",
		"DELETE FROM usage_series WHERE span = 60 AND start < ?2",
		"INSERT INTO usage_series(key_id, start, outcome, count, span)"
		" SELECT key_id, start, outcome, count, 3600 FROM temp.fold WHERE true"
		" ON CONFLICT(key_id, start, outcome) DO UPDATE SET count = count + excluded.count, span = 3600",
		"DELETE FROM temp.fold",
	};

	fold_before_s -= fold_before_s % 3600;
	return prune_steps(s, sql, sizeof(sql) / sizeof(sql[0]), before_s, fold_before_s, 0, NULL);
}

int sql_row_pruned_each(struct apikey_store *s, int (*fn)(void *ctx, const char *id, const char *why), void *ctx)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "SELECT id, why FROM temp.gone ORDER BY id", -1, &st, NULL), r = 0;
	char id[APIKEY_ID_SIZE], why[16];

	if (rc != SQLITE_OK)
		return store_err(s, rc, "prune");
	/* copied out: fn writes events on this connection */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		col_str(st, 0, id, sizeof(id));
		col_str(st, 1, why, sizeof(why));
		if ((r = fn(ctx, id, why)) != 0)
			break;
	}
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE)
		r = store_err(s, rc, "prune");
	return r;
}

int sql_row_prune_events(struct apikey_store *s, int64_t before_s, unsigned *events)
{
	static const char *const sql[] = {
		"DELETE FROM events WHERE at < ?1 AND event != 'pruned'"
		" AND (event = 'failed' OR key_id NOT IN (SELECT id FROM keys))",
	};

	*events = 0;
	return prune_steps(s, sql, 1, before_s, 0, 0, events);
}

/* rows.c — the seam between the rules and the stores: each write primitive
 * of core/rows.h goes to the backend installed on the store (core/backend.h:
 * fleet mode's PostgreSQL writer) when there is one, else to SQLite
 * (core/store*.c).  Nothing here judges a value. */
#include "backend.h"

#define DISPATCH(s, member, ...) do { \
	void *ctx_; \
	const struct apikey_backend *b_ = store_backend((s), &ctx_); \
	if (b_) \
		return b_->member(ctx_, ##__VA_ARGS__); \
} while (0)

int row_begin(struct apikey_store *s)
{
	DISPATCH(s, begin);
	return sql_row_begin(s);
}

int row_commit(struct apikey_store *s)
{
	DISPATCH(s, commit);
	return sql_row_commit(s);
}

void row_rollback(struct apikey_store *s)
{
	void *ctx;
	const struct apikey_backend *b = store_backend(s, &ctx);

	if (b)
		b->rollback(ctx);
	else
		sql_row_rollback(s);
}

bool row_in_batch(const struct apikey_store *s)
{
	DISPATCH(s, in_batch);
	return sql_row_in_batch(s);
}

int row_batch_begin(struct apikey_store *s)
{
	DISPATCH(s, batch_begin);
	return sql_row_batch_begin(s);
}

int row_batch_commit(struct apikey_store *s)
{
	DISPATCH(s, batch_commit);
	return sql_row_batch_commit(s);
}

void row_batch_rollback(struct apikey_store *s)
{
	void *ctx;
	const struct apikey_backend *b = store_backend(s, &ctx);

	if (b)
		b->batch_rollback(ctx);
	else
		sql_row_batch_rollback(s);
}

int row_key_insert(struct apikey_store *s, const struct key_row *k)
{
	DISPATCH(s, key_insert, k);
	return sql_row_key_insert(s, k);
}

int row_key_update(struct apikey_store *s, const char *id, const struct key_row *k)
{
	DISPATCH(s, key_update, id, k);
	return sql_row_key_update(s, id, k);
}

int row_key_set_revoked(struct apikey_store *s, const char *id, int64_t at_s)
{
	DISPATCH(s, key_set_revoked, id, at_s);
	return sql_row_key_set_revoked(s, id, at_s);
}

int row_key_set_rotated(struct apikey_store *s, const char *id, const char *to, int64_t revoked_at_s,
                        int64_t expires_at_s)
{
	DISPATCH(s, key_set_rotated, id, to, revoked_at_s, expires_at_s);
	return sql_row_key_set_rotated(s, id, to, revoked_at_s, expires_at_s);
}

int row_key_get(struct apikey_store *s, const char *id, struct key_record *rec)
{
	DISPATCH(s, key_get, id, rec);
	return sql_row_key_get(s, id, rec);
}

int row_preset_get(struct apikey_store *s, const char *name, char out[APIKEY_SCOPES_SIZE])
{
	DISPATCH(s, preset_get, name, out);
	return apikey_preset_get(s, name, out);
}

int row_account_upsert(struct apikey_store *s, const char *owner, const char *plan, int active)
{
	DISPATCH(s, account_upsert, owner, plan, active);
	return sql_row_account_upsert(s, owner, plan, active);
}

int row_preset_upsert(struct apikey_store *s, const char *name, const char *scopes)
{
	DISPATCH(s, preset_upsert, name, scopes);
	return sql_row_preset_upsert(s, name, scopes);
}

int row_preset_delete(struct apikey_store *s, const char *name)
{
	DISPATCH(s, preset_delete, name);
	return sql_row_preset_delete(s, name);
}

int row_event_append(struct apikey_store *s, const struct event_row *e)
{
	DISPATCH(s, event_append, e);
	return sql_row_event_append(s, e);
}

int row_prune_keys(struct apikey_store *s, int64_t dead_before_s, unsigned *keys)
{
	DISPATCH(s, prune_keys, dead_before_s, keys);
	return sql_row_prune_keys(s, dead_before_s, keys);
}

int row_pruned_each(struct apikey_store *s, int (*fn)(void *ctx, const char *id, const char *why), void *ctx)
{
	DISPATCH(s, pruned_each, fn, ctx);
	return sql_row_pruned_each(s, fn, ctx);
}

int row_prune_events(struct apikey_store *s, int64_t before_s, unsigned *events)
{
	DISPATCH(s, prune_events, before_s, events);
	return sql_row_prune_events(s, before_s, events);
}

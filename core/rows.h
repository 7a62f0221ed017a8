/* rows.h — the row-level primitives of the key store: the seam between the
 * rules (core/keys.c, admin.c, import.c, rules.c, verify.c, usage.c: which
 * values are valid, which state transitions are allowed, which events are
 * written) and SQLite (core/store*.c: how a row is read or written).
 *
 * A primitive does one row operation and judges nothing: no validation, no
 * events, no transactions of its own.  The writes of the rules (and the reads
 * they make inside a write: row_key_get, row_preset_get) go to the store's
 * backend when one is installed (core/backend.h: fleet mode's PostgreSQL
 * writer, in a library of its own), else to SQLite; core/rows.c dispatches.
 * Verification state (rate limit, usage, re-hash) and the verification
 * lookups always use SQLite.  See docs/DESIGN.md, "Core layers".
 * Every function returns 0 or an APIKEY_ERR_*. */
#ifndef APIKEY_ROWS_H
#define APIKEY_ROWS_H

#include "internal.h"

/* ---- transactions (store.c) ---------------------------------------------- */
/* BEGIN IMMEDIATE; inside an import batch these join the batch's transaction.
 * row_begin's commit is synced (every write an operator or the admin API
 * makes: durable when the call returns); row_begin_usage's is not (what a
 * verification records: usage, its failure event, a re-hash — SPEC §6 lets
 * counters lose the last second; DESIGN.md "Store" says how it is bounded);
 * it is always the local SQLite file's, like the usage rows it writes. */
int row_begin(struct apikey_store *s);
int row_begin_usage(struct apikey_store *s);
int row_commit(struct apikey_store *s);      /* rolls back when the commit fails */
void row_rollback(struct apikey_store *s);
bool row_in_batch(const struct apikey_store *s);
/* A batch: one transaction that the writes above join (and bulk-write
 * settings on the connection).  APIKEY_ERR_INVALID when one is open
 * (begin) or none is (commit). */
int row_batch_begin(struct apikey_store *s);
int row_batch_commit(struct apikey_store *s);
void row_batch_rollback(struct apikey_store *s);

/* ---- keys (store_keys.c) --------------------------------------------------- */
/* A key row as written: strings borrowed for the call; NULL = SQL NULL
 * (name and metadata: "" and "{}"). */
struct key_row {
	const char *id, *owner, *name, *scopes, *metadata, *rotated_from;
	const char *hash_alg, *hint, *foreign_hash;
	const unsigned char *digest;       /* HMAC-SHA256, or NULL for an import */
	int64_t created_at_s, expires_at_s;
	uint32_t rate_limit;
};
/* APIKEY_ERR_EXISTS on a clash, APIKEY_ERR_INVALID when a CHECK refuses a value. */
int row_key_insert(struct apikey_store *s, const struct key_row *k);
/* Name, scopes, metadata, rate limit and expiry of key id (others ignored). */
int row_key_update(struct apikey_store *s, const char *id, const struct key_row *k);
/* Only a key not yet revoked is changed. */
int row_key_set_revoked(struct apikey_store *s, const char *id, int64_t at_s);
/* The old key of a rotation: its successor, revocation (0 = none) and expiry. */
int row_key_set_rotated(struct apikey_store *s, const char *id, const char *to,
                        int64_t revoked_at_s, int64_t expires_at_s);
/* An imported key's first use: the HMAC replaces the foreign hash.
 * APIKEY_ERR_NOT_FOUND when it carries none (any more). */
int row_key_set_digest(struct apikey_store *s, const char *id, const unsigned char d[DIGEST_LEN]);
/* Whole record by id (with usage and account); APIKEY_ERR_NOT_FOUND. */
int row_key_get(struct apikey_store *s, const char *id, struct key_record *rec);
/* Verification lookups: only what the checks need (no metadata, rotation
 * links or usage).  By HMAC digest; by import hint, then the foreign hash. */
int row_key_by_digest(struct apikey_store *s, const unsigned char d[DIGEST_LEN], struct key_record *rec);
/* Candidates whose hash costs more than slow_ms a check (foreign_cost_ms)
 * are not checked: when one was skipped and no other matched,
 * APIKEY_ERR_PENDING, with the cost of the cheapest skipped one in
 * *cheapest_skipped_ms (may be NULL).  ROW_FOREIGN_ALL: every candidate. */
#define ROW_FOREIGN_ALL ((unsigned)-1)
int row_key_by_foreign(struct apikey_store *s, const char *key, size_t len, unsigned slow_ms,
                       unsigned *cheapest_skipped_ms, struct key_record *rec);
/* A preset's scopes as stored; APIKEY_ERR_NOT_FOUND. */
int row_preset_get(struct apikey_store *s, const char *name, char out[APIKEY_SCOPES_SIZE]);
/* SQLite's JSON parser: is text a JSON object?  0 or APIKEY_ERR_INVALID. */
int row_json_object(struct apikey_store *s, const char *text);

/* ---- per-key usage (store_keys.c); rate limits are in core/ratelimit.c ---- */
int row_usage_add(struct apikey_store *s, const char *id, uint64_t count, int64_t last_s);
/* Add count to key id's usage in the minute starting at minute_s, for outcome. */
int row_series_add(struct apikey_store *s, const char *id, int64_t minute_s, enum apikey_outcome o,
                   uint64_t count);

/* ---- accounts, presets, events, prune (store_admin.c) ---------------------- */
/* plan NULL / active < 0: unchanged (a new row: "" / active). */
int row_account_upsert(struct apikey_store *s, const char *owner, const char *plan, int active);
int row_preset_upsert(struct apikey_store *s, const char *name, const char *scopes);
/* APIKEY_ERR_NOT_FOUND when there was none. */
int row_preset_delete(struct apikey_store *s, const char *name);
struct event_row {
	int64_t at_s;
	const char *key_id, *event, *reason, *source, *actor;   /* NULL = "" */
	const char *owner;   /* whom it concerns; NULL = key_id's owner (or none) */
};
int row_event_append(struct apikey_store *s, const struct event_row *e);
/* Delete the keys revoked or expired before dead_before_s, with their usage
 * (counts and series); how many.  Until the next call, row_pruned_each lists
 * them with how they died ("revoked", "expired", "rotated"). */
int row_prune_keys(struct apikey_store *s, int64_t dead_before_s, unsigned *keys);
int row_pruned_each(struct apikey_store *s, int (*fn)(void *ctx, const char *id, const char *why), void *ctx);
/* Delete the events before before_s that are neither "pruned" nor the
 * lifecycle of a key still stored ("failed" events of any key go). */
int row_prune_events(struct apikey_store *s, int64_t before_s, unsigned *events);
/* Delete usage counts before before_s; fold minute counts of the hours that
 * ended before fold_before_s into one row per hour. */
int row_prune_usage(struct apikey_store *s, int64_t before_s, int64_t fold_before_s);

/* ---- the SQLite implementations of the dispatched primitives (store*.c) ---- */
int sql_row_begin(struct apikey_store *s);
int sql_row_commit(struct apikey_store *s);
void sql_row_rollback(struct apikey_store *s);
bool sql_row_in_batch(const struct apikey_store *s);
int sql_row_batch_begin(struct apikey_store *s);
int sql_row_batch_commit(struct apikey_store *s);
void sql_row_batch_rollback(struct apikey_store *s);
int sql_row_key_insert(struct apikey_store *s, const struct key_row *k);
int sql_row_key_update(struct apikey_store *s, const char *id, const struct key_row *k);
int sql_row_key_set_revoked(struct apikey_store *s, const char *id, int64_t at_s);
int sql_row_key_set_rotated(struct apikey_store *s, const char *id, const char *to,
                            int64_t revoked_at_s, int64_t expires_at_s);
int sql_row_key_get(struct apikey_store *s, const char *id, struct key_record *rec);
int sql_row_account_upsert(struct apikey_store *s, const char *owner, const char *plan, int active);
int sql_row_preset_upsert(struct apikey_store *s, const char *name, const char *scopes);
int sql_row_preset_delete(struct apikey_store *s, const char *name);
int sql_row_event_append(struct apikey_store *s, const struct event_row *e);
int sql_row_prune_keys(struct apikey_store *s, int64_t dead_before_s, unsigned *keys);
int sql_row_pruned_each(struct apikey_store *s, int (*fn)(void *ctx, const char *id, const char *why), void *ctx);
int sql_row_prune_events(struct apikey_store *s, int64_t before_s, unsigned *events);

/* The backend installed on the store (core/backend.h), or NULL; *ctx its context. */
const struct apikey_backend *store_backend(const struct apikey_store *s, void **ctx);

#endif

/* backend.h — what a second backend and a replica follower need from the
 * core, for fleet mode (docs/design/fleet.md).  Included by upstream/ (the
 * PostgreSQL part, a library of its own that the PAM module never links);
 * the front ends see only include/apikey.h and upstream/upstream.h.
 *
 * 1. The backend seam.  A store can carry a table of write primitives
 *    (struct apikey_backend): the rules of core/keys.c, admin.c and
 *    import.c then write through it — validation, state checks and audit
 *    events unchanged, one rule in one place — instead of through SQLite.
 *    Verification (lookups, rate-limit state, usage, re-hash) always reads
 *    and writes the local SQLite file: a front end installs a backend only
 *    on a connection it writes with (apikeyctl's write verbs, the admin
 *    API's writer thread), never on a verifier's.
 *
 * 2. The replica primitives (core/store_replica.c): how a follower makes,
 *    refreshes and advances a local store that mirrors the upstream — the
 *    only writer of the replicated tables (keys, accounts, presets) of a
 *    replica.  SQL stays in the store files.
 *
 * Every function returns 0 or an APIKEY_ERR_* unless it says otherwise. */
#ifndef APIKEY_BACKEND_H
#define APIKEY_BACKEND_H

#include "rows.h"

/* ---- 1. the backend seam ---------------------------------------------------- */
/*
 * Each member does what the row primitive of the same name in core/rows.h
 * does, against the backend.  A failure to reach the backend is
 * APIKEY_ERR_UPSTREAM (logged through the store's sink, naming where,
 * never a secret); nothing is then written.  begin/commit/rollback are the
 * rule's one transaction; inside a batch (batch_begin…batch_commit) begin
 * and commit are no-ops and in_batch is true.  commit returns only when the
 * write is durable in the backend (and, if the backend offers it, visible
 * in the local replica: read-your-writes).  free releases ctx.
 */
struct apikey_backend {
	const char *name;
	int (*begin)(void *ctx);
	int (*commit)(void *ctx);
	void (*rollback)(void *ctx);
	bool (*in_batch)(void *ctx);
	int (*batch_begin)(void *ctx);
	int (*batch_commit)(void *ctx);
	void (*batch_rollback)(void *ctx);
	int (*key_insert)(void *ctx, const struct key_row *k);
	int (*key_update)(void *ctx, const char *id, const struct key_row *k);
	int (*key_set_revoked)(void *ctx, const char *id, int64_t at_s);
	int (*key_set_rotated)(void *ctx, const char *id, const char *to, int64_t revoked_at_s,
	                       int64_t expires_at_s);
	/* inside a write: locks the row until commit (no two rotations of one key) */
	int (*key_get)(void *ctx, const char *id, struct key_record *rec);
	int (*preset_get)(void *ctx, const char *name, char out[APIKEY_SCOPES_SIZE]);
	int (*account_upsert)(void *ctx, const char *owner, const char *plan, int active);
	int (*preset_upsert)(void *ctx, const char *name, const char *scopes);
	int (*preset_delete)(void *ctx, const char *name);
	int (*event_append)(void *ctx, const struct event_row *e);
	/* the upstream's dead keys (listed for pruned_each) and old events; the
	 * usage series (row_prune_usage) are each store's own */
	int (*prune_keys)(void *ctx, int64_t dead_before_s, unsigned *keys);
	int (*pruned_each)(void *ctx, int (*fn)(void *fctx, const char *id, const char *why), void *fctx);
	int (*prune_events)(void *ctx, int64_t before_s, unsigned *events);
	void (*free)(void *ctx);
};
/*
 * Install b (static, outlives the store) with ctx on s: ownership of ctx
 * passes to s, which calls b->free(ctx) in apikey_store_free (also when this
 * call fails).  APIKEY_ERR_INVALID if s already has a backend or a batch is
 * open.  A store with a backend must not be used to verify.
 */
int apikey_store_set_backend(struct apikey_store *s, const struct apikey_backend *b, void *ctx);

/* The sink itself. */
void apikey_store_sink(struct apikey_store *s, apikey_log_fn *fn, void **ctx);
/* Its pepper file (apikey_config_pepper_path of its configuration). */
int apikey_store_pepper_path(const struct apikey_store *s, char *out, size_t outsz);

/*
 * The pepper's public fingerprint: lowercase hex of
 * HMAC-SHA256(pepper, "pam_apikey pepper fingerprint v1").  It reveals
 * nothing toward HMAC(pepper, key) of any key; it lets hosts check that
 * they share the fleet's pepper.
 */
#define APIKEY_PEPPER_FP_LABEL "pam_apikey pepper fingerprint v1"
#define APIKEY_PEPPER_FP_SIZE 65
int apikey_store_pepper_fingerprint(struct apikey_store *s, char out[APIKEY_PEPPER_FP_SIZE]);
/* The same from the pepper file of c (checked as apikey_store_open does:
 * APIKEY_ERR_PEPPER), for a host whose replica does not exist yet. */
int apikey_config_pepper_fingerprint(const struct apikey_config *c, char out[APIKEY_PEPPER_FP_SIZE]);

/* ---- 2. replicas ------------------------------------------------------------ */
#define APIKEY_XID_SIZE 24
/* (struct apikey_fleet_state, apikey_replica_state and
 * apikey_store_is_replica are public: include/apikey_store.h) */

/* One key row as the upstream holds it (strings borrowed; NULL = SQL NULL
 * for the nullable ones; times 0 = NULL for expires/revoked). */
struct replica_key {
	const char *id, *foreign_hash, *hash_alg, *hint, *owner, *name, *scopes, *metadata;
	const char *rotated_from, *rotated_to;
	const unsigned char *hash;          /* NULL: none */
	size_t hash_len;
	int64_t rate_limit, created_at_s, expires_at_s, revoked_at_s;
};

/*
 * Tune the follower's own connection: synchronous=NORMAL (the replica is a
 * cache of a durable truth; the follower re-fetches what a power cut
 * loses) and no automatic checkpoint inside COMMIT (the follower runs
 * apikey_replica_checkpoint in idle time).
 */
int apikey_replica_tune(struct apikey_store *s);
/* PRAGMA wal_checkpoint(PASSIVE): syncs the WAL. */
int apikey_replica_checkpoint(struct apikey_store *s);

/* Apply: one local BEGIN IMMEDIATE per upstream transaction (never through
 * a backend).  Rows are put only where they differ, so the generation
 * counter — what verifiers' caches watch — moves exactly when keys or
 * accounts change. */
int apikey_replica_begin(struct apikey_store *s);
/* A commit tells the cache (when one is set) which keys it changed, so the
 * process's verifiers keep the rest (core/cache.c, cache_advance). */
int apikey_replica_commit(struct apikey_store *s);
/* The verified-key cache of the process serving this replica, or NULL. */
void apikey_replica_set_cache(struct apikey_store *s, struct apikey_cache *c);
void apikey_replica_rollback(struct apikey_store *s);
int apikey_replica_key_put(struct apikey_store *s, const struct replica_key *k);
/* Deletes the key with its local usage, fleet usage, usage series and rate-limit rows. */
int apikey_replica_key_delete(struct apikey_store *s, const char *id);
int apikey_replica_account_put(struct apikey_store *s, const char *owner, const char *plan, bool active);
int apikey_replica_account_delete(struct apikey_store *s, const char *owner);
int apikey_replica_preset_put(struct apikey_store *s, const char *name, const char *scopes);
int apikey_replica_preset_delete(struct apikey_store *s, const char *name);
int apikey_replica_set_position(struct apikey_store *s, int64_t seq, const char *xid);
int apikey_replica_set_identity(struct apikey_store *s, const char *fleet_id, const char *replica_id);
int apikey_replica_set_marks(struct apikey_store *s, uint64_t usage_mark_s, int64_t events_mark);

/*
 * Resync in place (the log no longer reaches back to the replica, or its
 * history changed): the caller streams the upstream's keys in id order
 * (bytewise) to apikey_replica_diff_key while no write transaction is open;
 * the diff against the replica's rows is kept in memory (only the follower
 * writes replicated rows, so the replica cannot change meanwhile); then
 * apikey_replica_diff_apply writes it — with the upstream's accounts and
 * presets, given whole — in one short transaction that also sets the
 * position.  Readers see the old state until its COMMIT.  The diff is freed
 * by apikey_replica_diff_free (NULL ok).
 */
struct replica_diff;
int apikey_replica_diff_new(struct apikey_store *s, struct replica_diff **out);
int apikey_replica_diff_key(struct replica_diff *d, const struct replica_key *k);
/* Accounts and presets of the snapshot (small; whole tables). */
int apikey_replica_diff_account(struct replica_diff *d, const char *owner, const char *plan, bool active);
int apikey_replica_diff_preset(struct replica_diff *d, const char *name, const char *scopes);
/* Also set the replica's identity in the same transaction (a store adopted
 * as a replica, or one whose replica id must change). */
int apikey_replica_diff_identity(struct replica_diff *d, const char *fleet_id, const char *replica_id);
/* How many of the replica's keys the snapshot lacks (read once the
 * snapshot's keys were all given): an adoption must not lose any. */
int apikey_replica_diff_deletes(struct replica_diff *d, unsigned long *n);
/* Writes the diff; the counts of key rows changed and deleted (may be NULL). */
int apikey_replica_diff_apply(struct replica_diff *d, int64_t seq, const char *xid,
                              unsigned long *changed, unsigned long *deleted);
void apikey_replica_diff_free(struct replica_diff *d);

/*
 * Build a replica in a new file (no replica, a foreign one, or a corrupt
 * one): apikey_replica_build_begin creates path (which must not exist; the
 * schema, WAL) with the pepper of c, and opens one transaction for
 * apikey_replica_build_key (plain inserts, key triggers off while loading)
 * and the accounts and presets (apikey_replica_account_put/_preset_put on
 * the returned store); apikey_replica_build_finish puts the triggers back,
 * sets identity and position, commits, checkpoints, gives the file mode
 * (0640, 0660 in a group-writable directory) and fsyncs it.  The caller
 * renames it into place (apikey_replica_install).  On failure the caller
 * frees the store and unlinks path.
 */
int apikey_replica_build_begin(const struct apikey_config *c, const char *path, apikey_log_fn log,
                               void *log_ctx, struct apikey_store **out);
int apikey_replica_build_key(struct apikey_store *s, const struct replica_key *k);
int apikey_replica_build_finish(struct apikey_store *s, const char *fleet_id, const char *replica_id,
                                int64_t seq, const char *xid);
/*
 * Move a built file into place at c->db_path: stale "-wal"/"-shm" names of
 * the old file are removed first (SQLite pairs a database with its WAL by
 * name), the owner and mode of the old file kept when it had one, then
 * rename() and fsync of the directory.  A corrupt old file is kept as
 * "<db>.corrupt-<unix time>" for inspection (corrupt = true).
 */
int apikey_replica_install(const struct apikey_config *c, const char *built, bool corrupt,
                           apikey_log_fn log, void *log_ctx);

/* A store's rows as they are (upstream init --import-local seeds a new
 * fleet with them): keys in id order, accounts.  Valid during fn only. */
int apikey_replica_key_rows(struct apikey_store *s, int (*fn)(void *ctx, const struct replica_key *k), void *ctx);
int apikey_replica_account_rows(struct apikey_store *s,
                                int (*fn)(void *ctx, const char *owner, const char *plan, bool active), void *ctx);

/* Prune the events a replica keeps for itself alone (its own verification
 * failures; the rule of row_prune_events), in a local transaction of its
 * own; *events counts them. */
int apikey_replica_prune_local(struct apikey_store *s, int64_t before_s, unsigned *events);

/* Usage of keys used at or after since_s: fn(ctx, key_id, count, last_used_s);
 * a non-zero return stops the walk and is returned.  No transaction is left
 * open.  fleet usage: the counts other replicas reported (shown with ours). */
int apikey_replica_usage_since(struct apikey_store *s, int64_t since_s,
                               int (*fn)(void *ctx, const char *id, uint64_t count, int64_t last_s),
                               void *ctx);
int apikey_replica_fleet_usage_put(struct apikey_store *s, const char *id, uint64_t count, int64_t last_s);
/* Local events with id > after, oldest first, at most limit. */
int apikey_replica_events_after(struct apikey_store *s, int64_t after, unsigned limit,
                                int (*fn)(void *ctx, int64_t id, const struct apikey_event *e),
                                void *ctx);

#endif

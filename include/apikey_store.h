/*
 * apikey_store.h — the second half of libapikey's public API: the key
 * store, its writes and their audit events, usage buffering, the verified-key
 * cache and verification.  Included by apikey.h (include that one); the
 * conventions stated there hold here.
 */
#ifndef APIKEY_STORE_H
#define APIKEY_STORE_H

#ifndef APIKEY_H
#error "include apikey.h"
#endif

/* ---- the store (core/store.c) --------------------------------------------- */
/*
 * One SQLite connection with its prepared statements and HMAC context.
 * Not thread-safe: use one per thread, and open a new one after fork().
 */
struct apikey_store;

/*
 * Create the database (schema, WAL) and a new pepper file (mode 0600).
 * Refuses (APIKEY_ERR_EXISTS) when either already exists.
 */
int apikey_store_init(const struct apikey_config *c, apikey_log_fn log, void *log_ctx);
/*
 * Open an existing store: migrates the schema when it is older, checks the
 * pepper (32 bytes, not world-accessible).  APIKEY_ERR_STORE when the db is
 * missing or corrupt, APIKEY_ERR_PEPPER for pepper problems.  *out is NULL
 * on failure.
 */
int apikey_store_open(struct apikey_store **out, const struct apikey_config *c,
                      apikey_log_fn log, void *log_ctx);
void apikey_store_free(struct apikey_store *s);
/* PRAGMA integrity_check + schema version; problems go to log. */
int apikey_store_check(struct apikey_store *s);
/*
 * Has any key or account changed since the last call on this connection?
 * 1 yes (or cannot tell: the first call, an error), 0 no, or
 * APIKEY_ERR_REPLACED when the path names another file than the one open
 * (sticky: free the store and open it again).  Exact, and in the steady
 * state free of system calls: it compares the WAL-index header in SQLite's
 * own -shm mapping with the one seen last, and only when a commit changed it
 * asks PRAGMA data_version and a generation value that usage writes do not
 * move (docs/DESIGN.md, "Store watch").
 */
int apikey_store_changed(struct apikey_store *s);
/*
 * Call when something outside SQLite may have touched the store's files (a
 * watcher saw the db, -wal or -shm created, removed, renamed or written):
 * APIKEY_ERR_REPLACED (sticky) when any descriptor this process holds on
 * them is not the file the path names now; otherwise 0 (or an error when it
 * cannot tell), this connection's page cache is dropped and the next
 * apikey_store_changed reports a change.  A few system calls; Linux /proc.
 */
int apikey_store_check_files(struct apikey_store *s);
/*
 * The same question without a watcher, for every request: the db by
 * SQLite's own identity check, the -wal and -shm by stat() against what the
 * last apikey_store_check_files found (three system calls).  It cannot see
 * a write in place (a file copied over the db keeping its inode).
 */
int apikey_store_check_paths(struct apikey_store *s);
/*
 * Make the commits other processes did not sync (synchronous=NORMAL: a PAM
 * login's usage) durable: when the WAL-index says the WAL grew since the
 * last call, fdatasync the -wal.  For a long-lived process, about once a
 * second (apikeyd's flush timer): the bound SPEC §6 puts on lost counters.
 * 0 or APIKEY_ERR_IO.
 */
int apikey_store_sync_wal(struct apikey_store *s);
/*
 * Which files (the db, its -wal, its -shm) the last apikey_store_check_files
 * of s found (false: none yet), and which the path names now.  A front end
 * reopening a replaced store compares them: a new db beside the *old* -wal
 * and -shm would have SQLite replay the old file's WAL into it.
 */
/* A file by identity: device, inode and birth time (0 where the file
 * system keeps none), so that a new file given a deleted one's inode number
 * is not taken for it (unless both were born in one tick of the kernel's
 * coarse clock, a few ms). */
struct apikey_file_id { uint64_t dev, ino; int64_t born_ns; bool exists; };
bool apikey_file_same(const struct apikey_file_id *a, const struct apikey_file_id *b);
bool apikey_store_file_ids(const struct apikey_store *s, struct apikey_file_id ids[3]);
int apikey_file_ids_now(const char *db_path, struct apikey_file_id ids[3]);
/* Is the store readable right now (for /readyz)?  false for NULL and for a
 * store found replaced. */
bool apikey_store_ready(struct apikey_store *s);
/*
 * Why the last write on s was refused with APIKEY_ERR_INVALID, in words for
 * an operator or an API client ("scope 'claws:raed' is not in the scope
 * catalogue"); "" when it was not.  Valid until the next call on s.
 */
const char *apikey_store_why(const struct apikey_store *s);

/* ---- keys: rules in core/keys.c ------------------------------------------- */
/*
 * Validation shared by create, update and import (core/rules.c): owner 1-63
 * characters without blanks, ':' or ','; name printable, under
 * APIKEY_NAME_SIZE; scopes a non-empty list of valid scopes (or a stored
 * preset; with neither, the profile's default_preset), each inside the
 * profile's scope catalogue when it has one; rate limit 1..1000000 (0 = the
 * configured default), one of the profile's rate_limit_tiers when it has
 * them; expiry in the future (imports may carry a past one: the key then
 * fails as EXPIRED); metadata a JSON object under APIKEY_META_SIZE.  A
 * refused argument is APIKEY_ERR_INVALID, writes nothing, and says why in
 * apikey_store_why().
 *
 * The store-free checks (apikey_*_check) take the configuration whose
 * profile applies (NULL: none) and write the reason into why (whysz bytes;
 * why may be NULL).
 */
struct apikey_create_params {
	const char *owner;       /* required */
	const char *name;        /* may be NULL */
	const char *scopes;      /* comma list; or */
	const char *preset;      /* a preset name (exactly one of the two) */
	int64_t expires_at_s;    /* 0 = never */
	uint32_t rate_limit;     /* 0 = config default */
	const char *metadata;    /* JSON object text, NULL = "{}" */
};
/*
 * Issue a key; the raw key goes to key_out only (key_out_sz >=
 * APIKEY_KEY_MAX + 1) and is wiped there on failure.  info may be NULL.
 * Event "created".  APIKEY_ERR_NOT_FOUND: no such preset.
 */
int apikey_key_create(struct apikey_store *s, const struct apikey_create_params *p,
                      const struct apikey_actor *actor, char *key_out, size_t key_out_sz,
                      struct apikey_key_info *info);
/*
 * The checks apikey_key_create makes of p without a store (all but the
 * stored preset's scopes and metadata being a JSON object).  0, or
 * APIKEY_ERR_INVALID with the reason in why.
 */
int apikey_create_check(const struct apikey_config *c, const struct apikey_create_params *p,
                        char *why, size_t whysz);

/* What an update changes; every field left at its zero value is kept. */
enum apikey_expiry_change {
	APIKEY_EXPIRY_KEEP = 0,
	APIKEY_EXPIRY_SET,       /* to expires_at_s (in the future) */
	APIKEY_EXPIRY_NEVER,     /* remove the expiry */
};
struct apikey_update_params {
	const char *name;        /* NULL = unchanged ("" clears it) */
	const char *scopes;      /* NULL = unchanged; or */
	const char *preset;      /* a preset's scopes (not both) */
	uint32_t rate_limit;     /* 0 = unchanged */
	enum apikey_expiry_change expiry;
	int64_t expires_at_s;    /* with APIKEY_EXPIRY_SET */
	const char *metadata;    /* NULL = unchanged */
};
/*
 * Edit a key (SPEC §7 update): the same validation as create.  A revoked key
 * or one rotated away is refused with APIKEY_ERR_CONFLICT; an expired one may
 * be given a new expiry.  Event "updated" with the changed fields as its
 * reason ("name,scopes,rate_limit,expires_at,metadata"); nothing is written
 * when nothing changes.  Every front end's cache sees the change like a
 * revoke.  info (may be NULL) receives the record after the update.
 */
int apikey_key_update(struct apikey_store *s, const char *id, const struct apikey_update_params *p,
                      const struct apikey_actor *actor, struct apikey_key_info *info);
int apikey_update_check(const struct apikey_config *c, const struct apikey_update_params *p,
                        char *why, size_t whysz);

int apikey_key_get(struct apikey_store *s, const char *id, struct apikey_key_info *info);
/*
 * Calls fn for each key (owner NULL = all) in created order; stops when fn
 * returns non-zero and returns that value (0 when every key was visited).
 * *k is valid only until fn returns: copy what you keep.  fn must not call
 * back into the store.
 */
int apikey_key_list(struct apikey_store *s, const char *owner,
                    int (*fn)(void *ctx, const struct apikey_key_info *k), void *ctx);
/*
 * One page of keys (the admin API's list), in the order they were written:
 * fn (contract as apikey_key_list) for each key of owner (NULL = all) in
 * the given state (status < 0 = any) after the cursor.  At most limit keys
 * are passed and at most scan_max rows examined (0 = APIKEY_PAGE_SCAN_MAX),
 * so a page of a sparse filter may be short and still not the last.  *next
 * is the cursor of the next page, 0 when there is none.
 */
#define APIKEY_PAGE_SCAN_MAX 5000
struct apikey_key_filter {
	const char *owner;       /* NULL = every owner */
	int status;              /* enum apikey_key_status, or -1 = any */
	uint64_t after;          /* a cursor from a previous page; 0 = the start */
	unsigned limit;          /* keys at most, >= 1 */
	unsigned scan_max;       /* rows examined at most; 0 = APIKEY_PAGE_SCAN_MAX */
	int64_t now_s;           /* the time status is judged at; 0 = now */
};
int apikey_key_page(struct apikey_store *s, const struct apikey_key_filter *f,
                    int (*fn)(void *ctx, const struct apikey_key_info *k), void *ctx,
                    uint64_t *next);
/* Revoke now.  Revoking a revoked key keeps the first time and writes
 * nothing (0).  Event "revoked". */
int apikey_key_revoke(struct apikey_store *s, const char *id, const struct apikey_actor *actor);
/*
 * Issue a successor with the same attributes; the old key stays valid for
 * grace_s (0 = revoked now) and then fails as EXPIRED.  Only an active key
 * can be rotated (else APIKEY_ERR_CONFLICT).  Events "rotated" (old key)
 * and "created" (new key).  key_out as for create; new_info may be NULL.
 */
int apikey_key_rotate(struct apikey_store *s, const char *id, int64_t grace_s,
                      const struct apikey_actor *actor, char *key_out, size_t key_out_sz,
                      struct apikey_key_info *new_info);
/* The same with the successor's expiry chosen (rotate --expires): KEEP (the
 * old key's), SET (expires_at_s, in the future) or NEVER.  The old key's
 * grace never outlives its own expiry.  apikey_key_rotate is this with
 * { grace_s, APIKEY_EXPIRY_KEEP }. */
struct apikey_rotate_params {
	int64_t grace_s;                 /* 0 = the old key is revoked now */
	enum apikey_expiry_change expiry;
	int64_t expires_at_s;            /* with APIKEY_EXPIRY_SET */
};
int apikey_key_rotate_with(struct apikey_store *s, const char *id, const struct apikey_rotate_params *p,
                           const struct apikey_actor *actor, char *key_out, size_t key_out_sz,
                           struct apikey_key_info *new_info);

/* ---- presets and accounts: rules in core/admin.c --------------------------- */
/* Set (create or replace) a preset: name 1-31 of [a-z0-9_-], a non-empty
 * scope list (stored normalised) inside the profile's catalogue.  Event
 * "preset-set", reason the name. */
int apikey_preset_set(struct apikey_store *s, const char *name, const char *scopes,
                      const struct apikey_actor *actor);
/* Its checks without a store: 0, or APIKEY_ERR_INVALID with the reason in why. */
int apikey_preset_check(const struct apikey_config *c, const char *name, const char *scopes,
                        char *why, size_t whysz);
/*
 * Install the presets the store's profile declares (preset.NAME=): each one
 * missing or different is set (event "preset-set"); presets the profile does
 * not declare are left alone.  fn (may be NULL) hears of each declared preset
 * with what happened to it: "added", "replaced" or "unchanged".  All or
 * nothing, in one transaction.
 */
int apikey_preset_sync(struct apikey_store *s, const struct apikey_actor *actor,
                       void (*fn)(void *ctx, const char *name, const char *scopes, const char *what),
                       void *ctx);
int apikey_preset_get(struct apikey_store *s, const char *name, char out[APIKEY_SCOPES_SIZE]);
/* APIKEY_ERR_NOT_FOUND when there is no such preset.  Event "preset-removed". */
int apikey_preset_remove(struct apikey_store *s, const char *name, const struct apikey_actor *actor);
/* As apikey_key_list: name and scopes valid only until fn returns. */
int apikey_preset_list(struct apikey_store *s,
                       int (*fn)(void *ctx, const char *name, const char *scopes), void *ctx);

/* Create or change an owner's account: plan NULL = unchanged (a new account:
 * none); active < 0 = unchanged (new: active).  Event "account-suspended"
 * when active is 0, else "account-updated"; reason the owner. */
int apikey_account_set(struct apikey_store *s, const char *owner, const char *plan, int active,
                       const struct apikey_actor *actor);
/* Its checks without a store (plan may be NULL): 0 or APIKEY_ERR_INVALID with *why. */
int apikey_account_check(const char *owner, const char *plan, const char **why);
int apikey_account_get(struct apikey_store *s, const char *owner, struct apikey_account *a);

/* ---- audit events ---------------------------------------------------------- */
/*
 * Events written, and their reason:
 *   created          a key was issued (create, rotate's successor)     ""
 *   updated          apikey_key_update                                 changed fields
 *   revoked          apikey_key_revoke                                 ""
 *   rotated          the old key of a rotation                         ""
 *   imported         apikey_import_one alone (key_id: the key)         hash scheme
 *                    an import batch's keys (key_id "")                "<n> keys"
 *   rehashed         an imported key's first use: now HMAC-SHA256      old scheme
 *   failed           a verification of a well-formed key failed        outcome code
 *   account-updated, account-suspended                                 owner
 *   preset-set, preset-removed                                         preset name
 *   pruned           apikey_prune: a removed key (key_id: it)         "revoked", "expired", "rotated"
 *                    the run (key_id "")                               "<k> keys, <e> events before <time>"
 * key_id is "" for events that concern no key.  source and actor are the
 * writer's (struct apikey_actor); verification events carry the request's
 * source ("pam:sshd from host", "http:/auth") and no actor.
 */
struct apikey_event {
	int64_t id;                   /* increasing with every event written */
	int64_t at_s;
	char key_id[APIKEY_ID_SIZE];
	char event[24];
	char reason[APIKEY_REASON_SIZE];
	char source[APIKEY_NAME_SIZE];
	char actor[APIKEY_ID_SIZE];   /* acting key id, "" when none */
	char owner[APIKEY_OWNER_SIZE];/* whom it concerns: its key's owner, the account's; "" */
};
/*
 * Newest first, of one key (key_id) or all (NULL); at most limit events,
 * limit 0 = all of them.  Callback contract as apikey_key_list.
 */
int apikey_event_list(struct apikey_store *s, const char *key_id, unsigned limit,
                      int (*fn)(void *ctx, const struct apikey_event *e), void *ctx);
/*
 * One page of events, newest first: of key_id and/or owner (NULL = any),
 * with an id below before_id (0 = from the newest), at most limit (>= 1).
 * *next is the cursor of the next page (the last id passed), 0 at the end.
 */
struct apikey_event_filter {
	const char *key_id;
	const char *owner;
	int64_t before_id;
	unsigned limit;
};
int apikey_event_page(struct apikey_store *s, const struct apikey_event_filter *f,
                      int (*fn)(void *ctx, const struct apikey_event *e), void *ctx,
                      int64_t *next);
/*
 * Remove what is dead and old (apikeyctl(1) prune).  The cut-off is
 * min(before_s, now): a cut-off in the future prunes as of now.
 *  - Keys revoked or expired (rotation grace included) before the cut-off,
 *    with their usage (counts and series; rate-limit state is in the host's
 *    table, where a removed key's slot falls free by itself).  A key that
 *    could still verify without an edit — not yet revoked, not yet expired,
 *    rotating within its grace — is never removed, whatever the cut-off.
 *  - Events older than the cut-off, except the lifecycle of every key that
 *    is still in the store (all its events but "failed") and every "pruned"
 *    event: the history of a live key stays whole, and what prune removed
 *    stays on record.
 *  - Usage counts older than the cut-off; minute counts older than
 *    APIKEY_USAGE_MINUTES_KEEP_S are folded into hours.
 * Events "pruned": one per removed key (key_id the removed key, reason
 * "revoked", "expired" or "rotated") and one for the run ("<k> keys, <e>
 * events before <time>").  The counts may be NULL.
 */
int apikey_prune(struct apikey_store *s, int64_t before_s, const struct apikey_actor *actor,
                 unsigned *keys_removed, unsigned *events_removed);

/* ---- imports of foreign hashes: core/import.c ------------------------------- */
/* One key another system issued.  hash is "sha256:<hex>", "$2b$…", "$argon2id$…". */
struct apikey_import_params {
	const char *hash;
	const char *hint;        /* the first characters of the key (6-16) */
	const char *owner;
	const char *name;
	const char *scopes;
	int64_t expires_at_s;    /* 0 = never; may be past */
	uint32_t rate_limit;     /* 0 = config default */
	const char *metadata;
};
/*
 * Batches: between begin and commit, apikey_import_one and apikey_key_create
 * calls share one transaction (bulk imports, benchmarks).  Nothing is visible
 * to other connections until commit; rollback undoes the whole batch.
 * Outside a batch each call is its own transaction.  A batch's imports are
 * audited by one "imported" event per writer, written at commit.
 */
int apikey_import_begin(struct apikey_store *s);
/* Import one key (event "imported", or counted into its batch's).  info may
 * be NULL.  Without scopes, the profile's default_preset (from the store). */
int apikey_import_one(struct apikey_store *s, const struct apikey_import_params *p,
                      const struct apikey_actor *actor, struct apikey_key_info *info);
/*
 * The checks apikey_import_one makes of p before writing (hash scheme, hint,
 * owner, name, scopes and the catalogue, rate limit and the tiers, metadata
 * size), without a store, so a bulk import can refuse a bad file before its
 * first batch.  A hint that starts with neither the profile's key prefix
 * nor one of its legacy prefixes is refused: the profile would answer that
 * key MALFORMED_KEY forever.  0, or APIKEY_ERR_INVALID with the reason in
 * why.  Metadata must also be a JSON object, which the store checks on insert.
 */
int apikey_import_check(const struct apikey_config *c, const struct apikey_import_params *p,
                        char *why, size_t whysz);
int apikey_import_commit(struct apikey_store *s);
void apikey_import_rollback(struct apikey_store *s);

/* ---- usage: record now, flush later (core/usage.c) ----------------------- */
/*
 * A buffer of usage counts and audit events, shared by a process's threads
 * (thread-safe).  Recording is memory-only; flush writes all in one
 * transaction.  When full, further events are counted as dropped.
 */
struct apikey_usage;
int apikey_usage_new(struct apikey_usage **out);
void apikey_usage_free(struct apikey_usage *u);
/* VALID counts a use of key_id; another outcome queues a "failed" event. */
void apikey_usage_record(struct apikey_usage *u, const char *key_id, int64_t now_s,
                         enum apikey_outcome o, const char *source);
/* Returns 0 (buffer emptied) or an error (buffer kept for the next try). */
int apikey_usage_flush(struct apikey_usage *u, struct apikey_store *s);
uint64_t apikey_usage_dropped(const struct apikey_usage *u);
/* Drop the queued re-hashes of imported keys: the store they were verified
 * against was replaced (a re-hash proven by one file must never be written
 * into another).  Counts and events are kept. */
void apikey_usage_forget_rehash(struct apikey_usage *u);

/*
 * Usage over time: every verification of a stored key (VALID and each
 * refusal of it) is counted per key, UTC minute and outcome — by the
 * sidecar's flush and by the persisted path of PAM and the CLI.  apikey_prune
 * folds minute counts older than APIKEY_USAGE_MINUTES_KEEP_S into hours and
 * deletes counts older than its cut-off.
 */
#define APIKEY_USAGE_MINUTES_KEEP_S (2 * 86400)
struct apikey_usage_point {
	char key_id[APIKEY_ID_SIZE];  /* "" when summed over an owner's keys */
	int64_t start_s;              /* the bucket's start (0 with bucket_s 0) */
	enum apikey_outcome outcome;
	uint64_t count;
};
/*
 * Counts in [from_s, to_s) of one key (key_id) or of every key of owner (the
 * other NULL), summed per bucket_s-wide bucket (buckets start at multiples
 * of bucket_s: 60, 3600, 86400 are UTC minutes, hours, days) and outcome,
 * in bucket order.  bucket_s 0 with owner: one total per key and outcome
 * instead (key_id set).  Callback contract as apikey_key_list.
 */
int apikey_usage_series(struct apikey_store *s, const char *key_id, const char *owner,
                        int64_t from_s, int64_t to_s, unsigned bucket_s,
                        int (*fn)(void *ctx, const struct apikey_usage_point *p), void *ctx);

/* ---- verified-key cache (core/cache.c) ------------------------------------ */
/* Shared by a process's threads (thread-safe).  Holds no raw keys. */
struct apikey_cache;
/* max_entries 0 = APIKEY_CACHE_ENTRIES_DEFAULT */
int apikey_cache_new(struct apikey_cache **out, size_t max_entries);
void apikey_cache_free(struct apikey_cache *c);
void apikey_cache_clear(struct apikey_cache *c);
/* clears: emptied; advances: a replica commit dropped only the keys it
 * changed (core/cache.c) */
struct apikey_cache_stats { uint64_t hits, misses, entries, clears, advances; };
void apikey_cache_stats(struct apikey_cache *c, struct apikey_cache_stats *out);

/* ---- verification (core/verify.c) ----------------------------------------- */
struct apikey_verify_request {
	const char *key;             /* NULL or "" → MISSING_KEY */
	size_t key_len;
	const char *scopes;          /* required, comma list; NULL/"" = none */
	const char *user;            /* PAM: must own the key; NULL = any */
	const char *require_plan;    /* comma list; NULL/"" = any */
	const char *source;          /* for audit: "pam:sshd", "http:/auth" */
	int64_t now_ms;              /* 0 = now */
};
struct apikey_verify_result {
	enum apikey_outcome outcome;
	bool found;                  /* key (below) identifies a stored key */
	/* What the checks read: metadata, rotation links and usage counters are
	 * left empty (apikey_key_get has them). */
	struct apikey_key_info key;
	/* The owner's account when found and one is recorded (has_account). */
	bool has_account;
	struct apikey_account account;
	/* INSUFFICIENT_SCOPE: the first required scope (in the order required)
	 * that the key does not grant, for ${scope}; "" otherwise. */
	char missing_scope[APIKEY_SCOPE_SIZE];
	struct apikey_ratelimit ratelimit;  /* set once the rate-limit step ran */
	bool rate_checked;
	int err;                     /* APIKEY_ERR_* behind UNAVAILABLE */
};

/*
 * The verification functions always return 0: every answer, a store or
 * memory failure included (UNAVAILABLE with res->err), is in res.
 *
 * Persisted mode (PAM, CLI: many short-lived processes): the rate limit is
 * charged in the host's table (<db>.rl, opened on first use and kept with
 * the store); usage count and the audit event are written in one short
 * transaction that is not synced (SPEC §6).
 */
int apikey_verify(struct apikey_store *s, const struct apikey_verify_request *rq,
                  struct apikey_verify_result *res);
/*
 * The same, opening the store only when the key needs it: a missing or
 * malformed key is answered without it (a unix password typed at a PAM
 * prompt costs no database work).  *store is an open store, or NULL to have
 * one opened from c (log as for apikey_store_open); the caller frees *store
 * either way.  A store that cannot be opened is UNAVAILABLE with res->err.
 */
int apikey_verify_open(struct apikey_store **store, const struct apikey_config *c,
                       apikey_log_fn log, void *log_ctx,
                       const struct apikey_verify_request *rq, struct apikey_verify_result *res);

/*
 * Cached mode (the sidecar): lookups go through cache (invalidated by
 * apikey_store_changed on this thread's store), rate limits through the
 * host's table (limiter, shared by the process's threads),
 * usage is recorded into u for a later flush.  Does no write on this path.
 */
struct apikey_slow;
struct apikey_verifier {
	struct apikey_store *store;   /* this thread's connection */
	struct apikey_cache *cache;   /* shared; may be NULL */
	struct apikey_limiter *limiter; /* the host's table (apikey_limiter_open); required */
	struct apikey_usage *usage;   /* shared; may be NULL */
	struct apikey_slow *slow;     /* shared; NULL = slow imported hashes checked inline */
	/* fleet mode: the fleet's share of the limit, asked once the local
	 * limiter allowed (apikeyd: apikey_follower_rate_check); may be NULL.
	 * 0 with out->allowed, or an error (then UNAVAILABLE). */
	int (*fleet_rate)(void *ctx, const char *key_id, uint32_t per_minute, int64_t now_us,
	                  struct apikey_ratelimit *out);
	void *fleet_ctx;
};
int apikey_verify_cached(const struct apikey_verifier *v,
                         const struct apikey_verify_request *rq,
                         struct apikey_verify_result *res);

/*
 * Imported keys with slow hashes (bcrypt, argon2id: milliseconds a check)
 * checked off the request path, for a server whose workers must not stall
 * (apikeyd): with v->slow set, apikey_verify_cached answers a key that only
 * such a hash could match UNAVAILABLE (res->err APIKEY_ERR_PENDING: "ask
 * again", or APIKEY_ERR_BUSY when the queue or that hint's budget is full)
 * and queues it.  A thread of the caller's runs the queue: a match is put in
 * the cache (the next request is answered from it) and re-hashed at the
 * next usage flush; a mismatch is remembered (the same wrong key costs
 * nothing again).  At most SLOW_QUEUE_MAX keys wait; per hint (the key's
 * first 6 characters) one waits and at most 2 are checked a second; the
 * runner hashes at most a quarter of the time (it sleeps three times as
 * long as each check took).  Thread-safe.
 */
int apikey_slow_new(struct apikey_slow **out);
void apikey_slow_free(struct apikey_slow *q);
/* Wake every apikey_slow_run and make them return (shutdown). */
void apikey_slow_stop(struct apikey_slow *q);
/*
 * Run one queued check with v (v->store: the caller's own connection, not
 * shared; v->cache and v->usage: those of the verifiers).  Waits up to
 * wait_ms for a job.  0 when one ran, APIKEY_ERR_NOT_FOUND when none came,
 * APIKEY_ERR_CONFLICT after apikey_slow_stop.
 */
int apikey_slow_run(struct apikey_slow *q, const struct apikey_verifier *v, unsigned wait_ms);
/* Wait up to wait_ms until a check is queued (without taking it): 0, or
 * APIKEY_ERR_NOT_FOUND, or APIKEY_ERR_CONFLICT after apikey_slow_stop. */
int apikey_slow_wait(struct apikey_slow *q, unsigned wait_ms);
struct apikey_slow_stats { uint64_t queued, checked, matched, refused; };
void apikey_slow_stats(struct apikey_slow *q, struct apikey_slow_stats *out);

/*
 * Re-check a key by id without the secret (PAM account phase): revoked,
 * expired, account inactive / plan → outcome.  No rate limit, no usage.
 * now_ms 0 = now.  Always 0, like the functions above.
 */
int apikey_recheck(struct apikey_store *s, const char *id, const char *user,
                   const char *require_plan, int64_t now_ms,
                   struct apikey_verify_result *res);

/* ---- fleet mode: a store that is a replica (docs/design/fleet.md) --------- */
#define APIKEY_UUID_SIZE 37
/* The replica's place in the fleet, kept in the store by its follower. */
struct apikey_fleet_state {
	char fleet_id[APIKEY_UUID_SIZE];    /* "" = not (yet) a replica */
	char replica_id[APIKEY_UUID_SIZE];  /* made when the replica was built or adopted */
	int64_t applied_seq;                /* the last upstream transaction applied */
	char applied_xid[24];               /* its upstream xid ("" unknown): the history check */
	uint64_t usage_mark_s;              /* usage shipped up to this time */
	int64_t events_mark;                /* local events shipped up to this id */
};
/* Read it (all fields zero / "" on a store that never followed). */
int apikey_replica_state(struct apikey_store *s, struct apikey_fleet_state *st);
/* Is s a replica?  A replica's keys, accounts and presets are written by
 * its follower only (it never re-hashes an imported key). */
bool apikey_store_is_replica(struct apikey_store *s);

#endif /* APIKEY_STORE_H */

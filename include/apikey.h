/*
 * apikey.h — the public API of libapikey, the verification core shared by
 * pam_apikey.so, apikeyd and apikeyctl.
 *
 * Conventions (see docs/DESIGN.md):
 *  - Functions return 0 or a negative APIKEY_ERR_*; apikey_strerror() names it.
 *  - Records handed to callers are fixed-size structs owned by the caller:
 *    nothing to free, nothing borrowed.
 *  - Opaque objects are created by the _open / _new functions and released by _free, which
 *    accepts NULL.  Each says in its comment who may share it between threads.
 *  - The core never logs on its own, never exits and keeps no mutable globals:
 *    it reports through the log sink its caller installs.
 *  - Raw keys never leave the call that received them: they are not stored,
 *    logged, or copied into any result.
 */
#ifndef APIKEY_H
#define APIKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits (every buffer has a stated maximum) ------------------------- */
#define APIKEY_KEY_MAX        128  /* longest key accepted, chars (no NUL) */
#define APIKEY_PREFIX_MAX     16   /* longest key prefix, chars */
#define APIKEY_LEGACY_MAX     4    /* extra accepted legacy prefixes */
#define APIKEY_ID_LEN         20   /* "key_" + 16 base62 */
#define APIKEY_ID_SIZE        (APIKEY_ID_LEN + 1)
#define APIKEY_HINT_SIZE      (APIKEY_PREFIX_MAX + 16 + 1)
#define APIKEY_OWNER_SIZE     64   /* login name / account, incl. NUL */
#define APIKEY_NAME_SIZE      128
#define APIKEY_PLAN_SIZE      32
#define APIKEY_SCOPE_SIZE     64   /* one scope "resource:action" */
#define APIKEY_SCOPES_SIZE    1024 /* comma-separated scope list */
#define APIKEY_META_SIZE      2048 /* metadata JSON object */
#define APIKEY_RATE_MIN       1
#define APIKEY_RATE_MAX       1000000
#define APIKEY_RATE_DEFAULT   60   /* requests per minute */
#define APIKEY_PEPPER_LEN     32
#define APIKEY_BUSY_TIMEOUT_MS_DEFAULT 2000
#define APIKEY_BUSY_TIMEOUT_MS_MAX     30000
#define APIKEY_GRACE_DEFAULT  (24 * 3600)
#define APIKEY_DB_DEFAULT     "/var/lib/apikey/keys.db"
#define APIKEY_CONF_DEFAULT   "/etc/apikey/apikey.conf"
#define APIKEY_LINE_MAX       1024 /* one config line / option */
#define APIKEY_LISTEN_MAX     8
#define APIKEY_PATH_SIZE      4096
/* Verified-key cache bound: an entry is ~1.4 kB (fixed-size record without
 * metadata), so the default costs at most ~11.5 MB; a miss costs one probe. */
#define APIKEY_CACHE_ENTRIES_DEFAULT 8192

/* ---- errors -------------------------------------------------------------- */
enum {
	APIKEY_OK = 0,
	APIKEY_ERR_INTERNAL = -1,
	APIKEY_ERR_NOMEM = -2,
	APIKEY_ERR_INVALID = -3,    /* bad argument or value */
	APIKEY_ERR_MALFORMED = -4,  /* key does not fit the format profile */
	APIKEY_ERR_NOT_FOUND = -5,
	APIKEY_ERR_EXISTS = -6,
	APIKEY_ERR_STORE = -7,      /* database missing, unreadable or corrupt */
	APIKEY_ERR_BUSY = -8,       /* busy timeout elapsed */
	APIKEY_ERR_PEPPER = -9,     /* pepper missing, wrong size or unsafe mode */
	APIKEY_ERR_IO = -10,
	APIKEY_ERR_CONFIG = -11,    /* bad configuration value */
	APIKEY_ERR_UNKNOWN_OPTION = -12,
	APIKEY_ERR_READONLY = -13,  /* database or its directory is read-only */
	APIKEY_ERR_CRYPTO = -14,
	APIKEY_ERR_TOO_LONG = -15,
};
const char *apikey_strerror(int err);

/* ---- log sink ----------------------------------------------------------- */
/* priority is a syslog LOG_* value.  msg never contains a key. */
typedef void (*apikey_log_fn)(void *ctx, int priority, const char *msg);

/* ---- verification outcomes (SPEC §3, in check order) -------------------- */
enum apikey_outcome {
	APIKEY_VALID = 0,
	APIKEY_MISSING_KEY,
	APIKEY_MALFORMED_KEY,
	APIKEY_INVALID_KEY,
	APIKEY_REVOKED,
	APIKEY_EXPIRED,
	APIKEY_ACCOUNT_INACTIVE,
	APIKEY_PLAN_REQUIRED,
	APIKEY_WRONG_USER,
	APIKEY_INSUFFICIENT_SCOPE,
	APIKEY_RATE_LIMITED,
	APIKEY_UNAVAILABLE,
	APIKEY_OUTCOME_COUNT
};
const char *apikey_outcome_code(enum apikey_outcome o);    /* "INVALID_KEY" */
const char *apikey_outcome_message(enum apikey_outcome o); /* "Invalid API key" */
int apikey_outcome_http_status(enum apikey_outcome o);     /* 200/401/403/429/503 */
/* parse "INVALID_KEY" → outcome; -1 if unknown */
int apikey_outcome_from_code(const char *code);

/* ---- key format profiles (core/token.c) --------------------------------- */
enum apikey_alphabet {
	APIKEY_ALPHA_BASE62 = 0,    /* 0-9 A-Z a-z */
	APIKEY_ALPHA_BASE36LOWER,   /* 0-9 a-z */
	APIKEY_ALPHA_HEX,           /* 0-9 a-f */
	APIKEY_ALPHA_UUID,          /* 8-4-4-4-12 lowercase hex, version 4 */
};

/*
 * body_len counts every character after the prefix, checksum included
 * (uuid: always 36).  With checksum on, the last apikey_checksum_len()
 * characters are CRC32(prefix + random part) in the profile's alphabet.
 */
struct apikey_format {
	char prefix[APIKEY_PREFIX_MAX + 1];
	enum apikey_alphabet alphabet;
	unsigned body_len;
	bool checksum;
	char legacy[APIKEY_LEGACY_MAX][APIKEY_PREFIX_MAX + 1];
	unsigned n_legacy;
};

/* Default profile: "ak_", base62, 36 body chars, checksum on (39 total). */
void apikey_format_default(struct apikey_format *f);
/* 0 or APIKEY_ERR_CONFIG when the profile is inconsistent. */
int apikey_format_validate(const struct apikey_format *f);
/* Checksum width in characters for an alphabet (0 for uuid). */
unsigned apikey_checksum_len(enum apikey_alphabet a);
/*
 * Issue a new random key into out (size >= APIKEY_KEY_MAX + 1), NUL-terminated.
 * Uses the OS CSPRNG.
 */
int apikey_token_generate(const struct apikey_format *f, char *out, size_t outsz);
/*
 * Check a presented key against the profile (primary prefix or a legacy one):
 * length, alphabet, checksum.  Touches nothing else.  0 or APIKEY_ERR_MALFORMED.
 */
int apikey_token_parse(const struct apikey_format *f, const char *key, size_t len);
/* Display hint: prefix + first 4 body characters. */
void apikey_token_hint(const struct apikey_format *f, const char *key, size_t len,
                       char out[APIKEY_HINT_SIZE]);
/* New public key id "key_" + 16 base62 from the CSPRNG. */
int apikey_id_generate(char out[APIKEY_ID_SIZE]);

/* ---- configuration (core/config.c) -------------------------------------- */
/*
 * One key=value grammar for module arguments and apikey.conf.  The struct
 * holds every option any front end reads; each front end uses its part.
 */
struct apikey_config {
	char db_path[APIKEY_PATH_SIZE];
	char pepper_path[APIKEY_PATH_SIZE]; /* "" = "<db_path>.pepper" */
	struct apikey_format format;
	unsigned busy_timeout_ms;
	unsigned default_rate_limit;
	/* PAM module */
	char scope[APIKEY_SCOPES_SIZE];        /* "" = "pam:<service>" */
	char require_plan[APIKEY_SCOPES_SIZE]; /* comma list, "" = any */
	char prompt[APIKEY_NAME_SIZE];
	/* sidecar */
	char listen[APIKEY_LISTEN_MAX][APIKEY_NAME_SIZE];
	unsigned n_listen;
	unsigned threads;                      /* 0 = number of cores */
	char key_header[APIKEY_NAME_SIZE];     /* extra header carrying the key */
	char key_query[APIKEY_NAME_SIZE];      /* query parameter carrying the key */
	bool auth_error_body;                  /* /auth errors carry JSON (default yes) */
	char access_log[APIKEY_PATH_SIZE];     /* "" = none, "-" = stderr */
};

void apikey_config_defaults(struct apikey_config *c);
/*
 * Apply one "key=value" (or bare "flag") option.  Returns 0,
 * APIKEY_ERR_UNKNOWN_OPTION (nothing changed), or APIKEY_ERR_CONFIG with a
 * reason in err (the field keeps its previous, safe value).
 */
int apikey_config_apply(struct apikey_config *c, const char *option,
                        char *err, size_t errsz);
/*
 * Read a file of options, one per line; '#' starts a comment, blank lines
 * are skipped.  Unknown options and bad values are reported through log and
 * make the call return APIKEY_ERR_CONFIG after reading the whole file, so a
 * daemon's -n can list every problem.  A missing file, or one that cannot be
 * read to its end, is APIKEY_ERR_IO; running out of memory is
 * APIKEY_ERR_NOMEM.  After IO or NOMEM the file is not fully applied: *c
 * must not be used.
 */
int apikey_config_load(struct apikey_config *c, const char *path,
                       apikey_log_fn log, void *log_ctx);
/* Strict decimal parser: whole string, no sign, no overflow, in [min,max]. */
int apikey_parse_uint(const char *s, unsigned long long min,
                      unsigned long long max, unsigned long long *out);
/* "90d", "12h", "30m", "45s", "0" → seconds. */
int apikey_parse_duration(const char *s, int64_t *secs);
/* RFC 3339 ("2026-01-02T03:04:05Z" or with ±hh:mm) → unix seconds. */
int apikey_parse_time(const char *s, int64_t *t);
/* unix seconds → "2026-01-02T03:04:05Z" */
void apikey_format_time(int64_t t, char out[32]);

/* ---- scopes (core/scope.c) ---------------------------------------------- */
/* A scope is "resource:action", "resource:*" or "*"; [a-z0-9_.-] parts. */
bool apikey_scope_valid(const char *scope, size_t len);
/*
 * Normalise a comma/space separated list: validate each scope, drop
 * duplicates, write "a:b,c:d" into out.  APIKEY_ERR_INVALID on a bad scope.
 */
int apikey_scopes_normalize(const char *list, char *out, size_t outsz);
/* Does the granted list (normalised) cover one required scope? */
bool apikey_scopes_grant(const char *granted, const char *required, size_t rlen);
/* Does it cover every scope of the required list (comma separated)? */
bool apikey_scopes_grant_all(const char *granted, const char *required_list);

/* ---- rate limits (core/ratelimit.c) -------------------------------------- */
/* The answer of one rate-limit step (also what RateLimit-* headers carry). */
struct apikey_ratelimit {
	uint32_t limit;        /* requests per minute */
	uint32_t remaining;    /* requests still allowed right now */
	uint32_t reset;        /* seconds until the bucket is full again */
	uint32_t retry_after;  /* seconds to wait when limited, else 0 */
	bool allowed;
};
/*
 * GCRA: *tat_us is the key's theoretical arrival time in microseconds
 * (0 = fresh).  On an allowed request it advances; on a denied one it is
 * left alone.  Microseconds because 1,000,000/min is one per 60 µs.
 */
void apikey_gcra(int64_t *tat_us, int64_t now_us, uint32_t per_minute,
                 struct apikey_ratelimit *out);

/* In-memory limiter for one process, shared by its threads (thread-safe). */
struct apikey_limiter;
int apikey_limiter_new(struct apikey_limiter **out);
void apikey_limiter_free(struct apikey_limiter *l);
void apikey_limiter_check(struct apikey_limiter *l, const char *key_id,
                          int64_t now_us, uint32_t per_minute,
                          struct apikey_ratelimit *out);

/* ---- records -------------------------------------------------------------- */
struct apikey_key_info {
	char id[APIKEY_ID_SIZE];
	char hint[APIKEY_HINT_SIZE];
	char owner[APIKEY_OWNER_SIZE];
	char name[APIKEY_NAME_SIZE];
	char scopes[APIKEY_SCOPES_SIZE];
	char rotated_from[APIKEY_ID_SIZE];
	char rotated_to[APIKEY_ID_SIZE];
	char hash_alg[16];           /* "hmac-sha256", "sha256", "bcrypt", "argon2id" */
	int64_t created_at;
	int64_t expires_at;          /* 0 = never */
	int64_t revoked_at;          /* 0 = not revoked */
	int64_t last_used_at;        /* 0 = never */
	uint64_t use_count;
	uint32_t rate_limit;
	char metadata[APIKEY_META_SIZE]; /* last: the verifier cache leaves it out */
};

struct apikey_account {
	char owner[APIKEY_OWNER_SIZE];
	char plan[APIKEY_PLAN_SIZE];
	bool active;
};

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
 * missing or corrupt, APIKEY_ERR_PEPPER for pepper problems.
 */
int apikey_store_open(struct apikey_store **out, const struct apikey_config *c,
                      apikey_log_fn log, void *log_ctx);
void apikey_store_free(struct apikey_store *s);
/* PRAGMA integrity_check + schema version; problems go to log. */
int apikey_store_check(struct apikey_store *s);
/*
 * Has any key or account changed since the last call on this
 * connection?  Cheap (PRAGMA data_version, then a generation counter that
 * usage writes do not bump).  First call returns true.
 */
bool apikey_store_changed(struct apikey_store *s);
/* Is the store readable right now (for /readyz)? */
bool apikey_store_ready(struct apikey_store *s);

struct apikey_create_params {
	const char *owner;       /* required */
	const char *name;        /* may be NULL */
	const char *scopes;      /* comma list; or */
	const char *preset;      /* a preset name (exactly one of the two) */
	int64_t expires_at;      /* 0 = never */
	uint32_t rate_limit;     /* 0 = config default */
	const char *metadata;    /* JSON object text, NULL = "{}" */
	const char *source;      /* for the audit log: "cli", "admin-api:<id>" */
};
/* Issue a key; the raw key goes to key_out only (size >= APIKEY_KEY_MAX+1). */
int apikey_key_create(struct apikey_store *s, const struct apikey_create_params *p,
                      char *key_out, size_t key_out_sz, struct apikey_key_info *info);
int apikey_key_get(struct apikey_store *s, const char *id, struct apikey_key_info *info);
/* Calls fn for each key (owner NULL = all) in created order; stops on non-zero. */
int apikey_key_list(struct apikey_store *s, const char *owner,
                    int (*fn)(void *ctx, const struct apikey_key_info *k), void *ctx);
int apikey_key_revoke(struct apikey_store *s, const char *id, const char *source);
/*
 * Issue a successor with the same attributes; the old key stays valid for
 * grace_secs (0 = revoked now) and then fails as EXPIRED.
 */
int apikey_key_rotate(struct apikey_store *s, const char *id, int64_t grace_secs,
                      const char *source, char *key_out, size_t key_out_sz,
                      struct apikey_key_info *new_info);

/* Presets */
int apikey_preset_set(struct apikey_store *s, const char *name, const char *scopes);
int apikey_preset_get(struct apikey_store *s, const char *name, char out[APIKEY_SCOPES_SIZE]);
int apikey_preset_remove(struct apikey_store *s, const char *name);
int apikey_preset_list(struct apikey_store *s,
                       int (*fn)(void *ctx, const char *name, const char *scopes), void *ctx);

/* Accounts: plan NULL = unchanged; active < 0 = unchanged. */
int apikey_account_set(struct apikey_store *s, const char *owner, const char *plan, int active);
int apikey_account_get(struct apikey_store *s, const char *owner, struct apikey_account *a);

/* Audit events */
struct apikey_event {
	int64_t at;
	char key_id[APIKEY_ID_SIZE];  /* "" when no key was identified */
	char event[24];               /* created revoked rotated used failed imported rehashed */
	char reason[32];              /* outcome code for failures */
	char source[APIKEY_NAME_SIZE];
};
int apikey_event_list(struct apikey_store *s, const char *key_id, unsigned limit,
                      int (*fn)(void *ctx, const struct apikey_event *e), void *ctx);
/* Delete events older than before, and keys revoked/expired before it. */
int apikey_prune(struct apikey_store *s, int64_t before, unsigned *keys_removed,
                 unsigned *events_removed);

/* Import: one foreign-hash key.  hash is "sha256:<hex>", "$2b$…", "$argon2id$…". */
struct apikey_import_params {
	const char *hash;
	const char *hint;        /* the first characters of the key (>= 6) */
	const char *owner;
	const char *name;
	const char *scopes;
	int64_t expires_at;
	uint32_t rate_limit;
	const char *metadata;
};
/*
 * Batches: between begin and commit, apikey_import_one and apikey_key_create
 * calls share one transaction (bulk imports, benchmarks).  Nothing is visible
 * to other connections until commit; rollback undoes the whole batch.
 */
int apikey_import_begin(struct apikey_store *s);
int apikey_import_one(struct apikey_store *s, const struct apikey_import_params *p,
                      struct apikey_key_info *info);
/*
 * The checks apikey_import_one makes of p before writing (hash scheme, hint,
 * owner, name, scopes, rate limit, metadata size), without a store, so a bulk
 * import can refuse a bad file before its first batch.  0, or
 * APIKEY_ERR_INVALID with *why (static text, may be NULL) naming the problem.
 * Metadata must also be a JSON object, which the store checks on insert.
 */
int apikey_import_check(const struct apikey_import_params *p, const char **why);
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
void apikey_usage_record(struct apikey_usage *u, const char *key_id, int64_t now,
                         enum apikey_outcome o, const char *source);
/* Returns 0 (buffer emptied) or an error (buffer kept for the next try). */
int apikey_usage_flush(struct apikey_usage *u, struct apikey_store *s);
uint64_t apikey_usage_dropped(const struct apikey_usage *u);

/* ---- verified-key cache (core/cache.c) ------------------------------------ */
/* Shared by a process's threads (thread-safe).  Holds no raw keys. */
struct apikey_cache;
/* max_entries 0 = APIKEY_CACHE_ENTRIES_DEFAULT */
int apikey_cache_new(struct apikey_cache **out, size_t max_entries);
void apikey_cache_free(struct apikey_cache *c);
void apikey_cache_clear(struct apikey_cache *c);
struct apikey_cache_stats { uint64_t hits, misses, entries, clears; };
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
	struct apikey_ratelimit ratelimit;  /* set once the rate-limit step ran */
	bool rate_checked;
	int err;                     /* APIKEY_ERR_* behind UNAVAILABLE */
};

/*
 * Persisted mode (PAM, CLI: many short-lived processes): rate-limit state,
 * usage count and the audit event are written in one short transaction.
 */
int apikey_verify(struct apikey_store *s, const struct apikey_verify_request *rq,
                  struct apikey_verify_result *res);

/*
 * In-memory mode (the sidecar): lookups go through cache (invalidated by
 * apikey_store_changed on this thread's store), rate limits through lim,
 * usage is recorded into u for a later flush.  Does no write on this path.
 */
struct apikey_verifier {
	struct apikey_store *store;   /* this thread's connection */
	struct apikey_cache *cache;   /* shared; may be NULL */
	struct apikey_limiter *limiter; /* shared; required */
	struct apikey_usage *usage;   /* shared; may be NULL */
};
int apikey_verify_cached(const struct apikey_verifier *v,
                         const struct apikey_verify_request *rq,
                         struct apikey_verify_result *res);

/*
 * Re-check a key by id without the secret (PAM account phase): revoked,
 * expired, account inactive / plan → outcome.  No rate limit, no usage.
 */
int apikey_recheck(struct apikey_store *s, const char *id, const char *user,
                   const char *require_plan, int64_t now_ms,
                   struct apikey_verify_result *res);

#endif /* APIKEY_H */

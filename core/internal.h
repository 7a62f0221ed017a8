/* internal.h — what the core's files share with each other, not with callers. */
#ifndef APIKEY_INTERNAL_H
#define APIKEY_INTERNAL_H

#include <pthread.h>
#include <string.h>
#include <openssl/evp.h>
#include "apikey.h"

#define DIGEST_LEN 32            /* HMAC-SHA256 */
#define FOREIGN_CANDIDATES_MAX 8 /* keys tried per hint: bounds work per request */

/* A key as verification sees it: the public record plus its owner's account. */
struct key_record {
	char plan[APIKEY_PLAN_SIZE];
	bool has_account;
	bool active;
	struct apikey_key_info info;   /* last, so the cache can drop metadata */
};

/* ---- ASCII classes: explicit ranges, never the locale (we run inside sshd) */
static inline bool ascii_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline bool ascii_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static inline bool ascii_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static inline bool ascii_alnum(unsigned char c)
{
	return ascii_digit(c) || ascii_lower(c) || ascii_upper(c);
}
static inline bool ascii_blank(unsigned char c) { return c == ' ' || c == '\t'; }
/* space, \t \n \v \f \r: what a config line may be padded with */
static inline bool ascii_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
/* a control character (C0 or DEL) */
static inline bool ascii_control(unsigned char c) { return c < ' ' || c == 0x7f; }

/* core/options.c: apikey_config_apply for a line of a file (line 0: not
 * from a file), so the profile's options can name the line of another. */
int config_apply_line(struct apikey_config *c, const struct apikey_settings *fe, const char *option,
                      unsigned line, char *err, size_t errsz);

/* core/render.c: the refusal answers, compiled and checked (err: the whole
 * message, "error_template: ..."). */
int answers_set_template(struct apikey_answers *a, const char *val, char *err, size_t errsz);
int answers_set_code(struct apikey_answers *a, enum apikey_outcome o, const char *val, char *err,
                     size_t errsz);
int answers_set_message(struct apikey_answers *a, enum apikey_outcome o, const char *val, char *err,
                        size_t errsz);
/* Every body fits APIKEY_ERROR_BODY_MAX, for any scope and request error? */
int answers_check_size(const struct apikey_answers *a, char *err, size_t errsz);
bool utf8_valid(const char *s, size_t n);

/* core/profile.c */
void profile_defaults(struct apikey_profile *p);
/* The i-th built-in preset (init creates them when the profile declares none). */
bool profile_builtin_preset(unsigned i, const char **name, const char **scopes);
/* 0, APIKEY_ERR_UNKNOWN_OPTION (not a profile option) or APIKEY_ERR_CONFIG
 * with the message in err. */
int profile_apply(struct apikey_config *c, const char *key, const char *val, unsigned line, char *err,
                  size_t errsz);
/* The checks between options, each problem logged as "path:line: ...". */
int profile_check(struct apikey_config *c, const char *path, apikey_log_fn log, void *ctx);
/* Is every scope of a (normalised) list inside the catalogue?  Is a rate
 * limit one of the tiers (0, the default, always is)?  0, or
 * APIKEY_ERR_INVALID with the reason in why (may be NULL).  p may be NULL. */
int profile_scopes_allowed(const struct apikey_profile *p, const char *list, char *why, size_t whysz);
int profile_rate_allowed(const struct apikey_profile *p, uint32_t rate, char *why, size_t whysz);

/* core/log.c */
void core_log(apikey_log_fn log, void *ctx, int prio, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* bounded copy that always terminates; returns APIKEY_ERR_TOO_LONG on truncation */
int copy_str(char *dst, size_t dstsz, const char *src);
/* wall clock, unix milliseconds */
int64_t now_ms(void);

/* core/hash.c */
int pepper_create(const char *path);
int pepper_load(const char *path, unsigned char out[APIKEY_PEPPER_LEN]);
/* Why pepper_load refused path, for the log: "missing (No such file or
 * directory)", "has mode 0644: must be 0600 or 0640"…  Returns buf. */
const char *pepper_problem(const char *path, char *buf, size_t bufsz);
EVP_MAC_CTX *hmac_new(const unsigned char pepper[APIKEY_PEPPER_LEN]);
void hmac_free(EVP_MAC_CTX *m);
int hmac_digest(EVP_MAC_CTX *m, const char *key, size_t len, unsigned char out[DIGEST_LEN]);
/* 0 = matches, APIKEY_ERR_NOT_FOUND = does not, APIKEY_ERR_INVALID = unknown scheme */
int foreign_verify(const char *stored, const char *key, size_t len);
/* The cost caps of imported hashes: 0 or APIKEY_ERR_INVALID with *why. */
#define FOREIGN_BCRYPT_COST_MAX 12
#define FOREIGN_ARGON2_MEM_KIB_MAX 65536
#define FOREIGN_ARGON2_TIME_MAX 8
#define FOREIGN_ARGON2_LANES_MAX 4
int foreign_cost_check(const char *hash, const char **why);
/* bcrypt and argon2id: milliseconds a check, not microseconds. */
bool foreign_is_slow(const char *stored);
/* What one check of stored costs, roughly, in milliseconds (0: sha256). */
unsigned foreign_cost_ms(const char *stored);

/* core/map.c — a small chained hash map from byte strings to pointers.
 * Not locked: callers hold their own mutex. */
struct map;
/* buckets: the first size (rounded up to a power of two); the map grows
 * past one entry a bucket and map_clear shrinks it back. */
struct map *map_new(size_t buckets);
void map_free(struct map *m, void (*free_value)(void *));
void *map_get(const struct map *m, const void *key, size_t klen);
/* Inserts or replaces; returns the replaced value (caller frees) or NULL.
 * Returns (void *)-1 when out of memory. */
void *map_put(struct map *m, const void *key, size_t klen, void *value);
/* Removes the entry and returns its value (caller frees), or NULL. */
void *map_del(struct map *m, const void *key, size_t klen);
size_t map_count(const struct map *m);
void map_clear(struct map *m, void (*free_value)(void *));
void map_each(struct map *m, void (*fn)(void *ctx, const void *key, size_t klen, void *value), void *ctx);
/* Remove (freeing the value with free_value) every entry for which drop
 * returns true; returns how many were removed. */
size_t map_sweep(struct map *m, bool (*drop)(void *ctx, void *value), void *ctx,
                 void (*free_value)(void *));

/* The imports of the batch under way, audited as one "imported" event
 * (core/import.c); kept on the connection. */
struct import_audit {
	unsigned keys;
	char source[APIKEY_NAME_SIZE];
	char actor[APIKEY_ID_SIZE];
};

/* core/store.c: what the layers above the rows read of a connection */
struct import_audit *store_import_audit(struct apikey_store *s);
/* The connection's buffer for the reason of a refused write
 * (APIKEY_WHY_SIZE bytes; apikey_store_why reads it). */
char *store_why(struct apikey_store *s);
/* The store's configuration (db path, pepper, profile). */
const struct apikey_config *apikey_store_config(const struct apikey_store *s);
/* HMAC-SHA256 of a key with the store's pepper. */
int store_digest(struct apikey_store *s, const char *key, size_t len, unsigned char out[DIGEST_LEN]);
/* Log through the store's sink (upstream/'s messages go where the store's do). */
void apikey_store_log(struct apikey_store *s, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The host's rate-limit table beside this store, opened on first use and
 * freed with the store (persisted verification). */
int store_limiter(struct apikey_store *s, struct apikey_limiter **out);

/* core/verify.c: the checks after the lookup; INSUFFICIENT_SCOPE names
 * the first scope missing in missing (may be NULL). */
enum apikey_outcome check_record(const struct key_record *rec,
                                 const struct apikey_verify_request *rq, int64_t now_ms,
                                 char missing[APIKEY_SCOPE_SIZE]);

/* core/cache.c */
/* A hit copies the record into out; either way *epoch is what cache_put of a
 * store lookup made after this miss must pass (a clear in between drops it). */
bool cache_get(struct apikey_cache *c, const unsigned char d[DIGEST_LEN], struct key_record *out,
               uint64_t *epoch);
void cache_put(struct apikey_cache *c, uint64_t epoch, const unsigned char d[DIGEST_LEN],
               const struct key_record *rec);
/* The store reported a change (apikey_store_changed > 0) and, if known, its
 * generation gen: unless the change was exactly gen's commit (exact) and
 * the cache already agrees with gen, empty it and label it gen. */
void cache_sync(struct apikey_cache *c, bool exact, bool known, int64_t gen);
/* A replica commit (core/store_replica.c) moved the store's generation from
 * `from` to `to`: drop the records of the n digests it changed (exact), or
 * every record (!exact: accounts, presets, imported keys).  Threads that see
 * the new generation then keep the rest. */
void cache_advance(struct apikey_cache *c, int64_t from, int64_t to, const unsigned char (*d)[DIGEST_LEN],
                   size_t n, bool exact);
/* core/store_watch.c: after apikey_store_changed reported a change, the
 * generation it read in *gen (false: it could not read one), and in *exact
 * whether the change was exactly a commit moving it (false after a write
 * beside SQLite: anything may have changed). */
bool store_generation(const struct apikey_store *s, int64_t *gen, bool *exact);
/* Digests a slow imported hash was checked against without a match. */
bool cache_negative(struct apikey_cache *c, const unsigned char d[DIGEST_LEN]);
void cache_put_negative(struct apikey_cache *c, uint64_t epoch, const unsigned char d[DIGEST_LEN]);

/* core/slowhash.c: queue a key for a background check of the slow imported
 * hashes its hint matches.  APIKEY_ERR_PENDING (queued, or already), or
 * APIKEY_ERR_BUSY (the queue or the hint's budget is full: not queued). */
int slow_enqueue(struct apikey_slow *q, const unsigned char d[DIGEST_LEN], const char *key, size_t len,
                 uint64_t epoch, const char *source);
/* Checks of at most SLOW_INLINE_MS (bcrypt cost 4, a small argon2id) may run
 * on the request path: true when the key's hint has budget left (it is
 * spent, like a queued check's). */
#define SLOW_INLINE_MS 2
bool slow_inline_ok(struct apikey_slow *q, const char *key, size_t len);

/* core/usage.c */
/* An imported key found by the sidecar: re-hash it (event "rehashed") at the next flush. */
void usage_queue_rehash(struct apikey_usage *u, const struct apikey_key_info *k,
                        const unsigned char d[DIGEST_LEN], int64_t now_s, const char *source);

/* core/rules.c — the validation rules of every write, and its audit event */
bool owner_valid(const char *owner);
bool name_valid(const char *name);
bool preset_name_valid(const char *name);
/* The fields a key write sets; NULL / 0 = not given (update) or the default. */
struct key_fields {
	const struct apikey_config *cfg; /* whose profile applies (catalogue, tiers); may be NULL */
	bool required;              /* create, import: owner and scopes (or preset) needed */
	bool import;                /* hash and hint checked; a past expiry is history */
	const char *owner;
	const char *name;
	const char *scopes;         /* normalised into the caller's buffer */
	const char *preset;         /* its name only (the store resolves it) */
	uint32_t rate_limit;
	bool expiry_set;            /* expires_at_s is given (0 = never) */
	int64_t expires_at_s;
	const char *metadata;
	const char *hash, *hint;    /* import */
};
/* The one check of create, update and import.  scopes_out (may be NULL)
 * receives the normalised scopes when f->scopes is set.  0 or
 * APIKEY_ERR_INVALID with the reason in why (may be NULL). */
int key_fields_check(const struct key_fields *f, int64_t now_s,
                     char scopes_out[APIKEY_SCOPES_SIZE], char *why, size_t whysz);
/* core/keys.c: what a key write checks, the store's part included: the
 * actor, key_fields_check under the store's profile, the preset's (or the
 * default preset's) scopes from the store and inside the catalogue, metadata
 * a JSON object.  scopes receives the key's scopes; why is the store's. */
int key_write_check(struct apikey_store *s, const struct apikey_actor *actor, const struct key_fields *f,
                    char scopes[APIKEY_SCOPES_SIZE]);
/* Append an audit event written by actor (who must be given: source set). */
int audit(struct apikey_store *s, const struct apikey_actor *actor, int64_t at_s,
          const char *key_id, const char *event, const char *reason);
/* The same for an event that concerns an owner but no key (accounts). */
int audit_owner(struct apikey_store *s, const struct apikey_actor *actor, int64_t at_s,
                const char *owner, const char *event, const char *reason);
bool actor_valid(const struct apikey_actor *a);

#endif

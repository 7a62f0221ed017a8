/* internal.h — what the core's files share with each other, not with callers. */
#ifndef APIKEY_INTERNAL_H
#define APIKEY_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <openssl/evp.h>
#include "apikey.h"

#define DIGEST_LEN 32            /* HMAC-SHA256 */
#define IMPORT_HINT_MIN 6
#define IMPORT_HINT_MAX 16
#define FOREIGN_CANDIDATES_MAX 8 /* keys tried per hint: bounds work per request */
#define FOREIGN_HASH_MAX 256

/* A key as verification sees it: the public record plus its owner's account. */
struct key_record {
	char plan[APIKEY_PLAN_SIZE];
	bool has_account;
	bool active;
	struct apikey_key_info info;   /* last, so the cache can drop metadata */
};

/* core/log.c */
void core_log(apikey_log_fn log, void *ctx, int prio, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define slog(s, prio, ...) core_log((s)->log, (s)->log_ctx, prio, __VA_ARGS__)

/* core/hash.c */
int pepper_create(const char *path);
int pepper_load(const char *path, unsigned char out[APIKEY_PEPPER_LEN]);
EVP_MAC_CTX *hmac_new(const unsigned char pepper[APIKEY_PEPPER_LEN]);
void hmac_free(EVP_MAC_CTX *m);
int hmac_digest(EVP_MAC_CTX *m, const char *key, size_t len, unsigned char out[DIGEST_LEN]);
/* 0 = matches, APIKEY_ERR_NOT_FOUND = does not, APIKEY_ERR_INVALID = unknown scheme */
int foreign_verify(const char *stored, const char *key, size_t len);
/* "sha256" | "bcrypt" | "argon2id", or NULL when the hash is not one we accept */
const char *foreign_alg(const char *stored);

/* core/map.c — a small chained hash map from byte strings to pointers.
 * Not locked: callers hold their own mutex. */
struct map;
struct map *map_new(size_t buckets);
void map_free(struct map *m, void (*free_value)(void *));
void *map_get(const struct map *m, const void *key, size_t klen);
/* Inserts or replaces; returns the replaced value (caller frees) or NULL.
 * Returns (void *)-1 when out of memory. */
void *map_put(struct map *m, const void *key, size_t klen, void *value);
size_t map_count(const struct map *m);
void map_clear(struct map *m, void (*free_value)(void *));
void map_each(struct map *m, void (*fn)(void *ctx, const void *key, size_t klen, void *value), void *ctx);

/* core/store.c */
struct apikey_store {
	sqlite3 *db;
	apikey_log_fn log;
	void *log_ctx;
	struct apikey_config cfg;
	EVP_MAC_CTX *mac;
	sqlite3_stmt **stmts;     /* prepared on first use, reused */
	bool readonly;
	bool in_batch;            /* inside apikey_import_begin/commit */
	int64_t data_version;
	int64_t generation;
	bool seen_version;
	int foreign_hint_lens;    /* bitmask of import hint lengths; -1 unknown */
};
int store_tx_begin(struct apikey_store *s);      /* BEGIN IMMEDIATE */
int store_tx_commit(struct apikey_store *s);
void store_tx_rollback(struct apikey_store *s);
int store_err(struct apikey_store *s, int rc, const char *what);
int store_lookup_digest(struct apikey_store *s, const unsigned char d[DIGEST_LEN],
                        struct key_record *rec);
int store_lookup_foreign(struct apikey_store *s, const char *key, size_t len,
                         struct key_record *rec);
int store_lookup_id(struct apikey_store *s, const char *id, struct key_record *rec);
int store_rehash(struct apikey_store *s, const char *id, const unsigned char d[DIGEST_LEN]);
int store_tat_get(struct apikey_store *s, const char *id, int64_t *tat_ms);
int store_tat_set(struct apikey_store *s, const char *id, int64_t tat_ms);
int store_usage_add(struct apikey_store *s, const char *id, uint64_t count, int64_t last);
int store_event_add(struct apikey_store *s, int64_t at, const char *key_id,
                    const char *event, const char *reason, const char *source);
int64_t now_ms(void);

/* core/verify.c */
enum apikey_outcome check_record(const struct key_record *rec,
                                 const struct apikey_verify_request *rq, int64_t now_ms);

/* core/cache.c */
/* A hit copies the record into out; either way *epoch is what cache_put of a
 * store lookup made after this miss must pass (a clear in between drops it). */
bool cache_get(struct apikey_cache *c, const unsigned char d[DIGEST_LEN], struct key_record *out,
               uint64_t *epoch);
void cache_put(struct apikey_cache *c, uint64_t epoch, const unsigned char d[DIGEST_LEN],
               const struct key_record *rec);

/* core/usage.c */
void usage_queue_rehash(struct apikey_usage *u, const char *id, const unsigned char d[DIGEST_LEN]);

/* bounded copy that always terminates; returns APIKEY_ERR_TOO_LONG on truncation */
int copy_str(char *dst, size_t dstsz, const char *src);

#endif

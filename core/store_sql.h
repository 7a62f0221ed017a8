/* store_sql.h — what the SQLite store files (store.c, store_keys.c,
 * store_admin.c, store_pepper.c, store_replica.c, store_watch.c) share: the connection struct, the prepared-statement table
 * and the bind/column helpers.  Nothing outside those files includes it:
 * the rules above them see only core/rows.h. */
#ifndef APIKEY_STORE_SQL_H
#define APIKEY_STORE_SQL_H

#ifndef APIKEY_STORE_IMPL
#error "SQL stays in core/store*.c: the layers above use core/rows.h"
#endif

#include <sqlite3.h>
#include "internal.h"

/* The WAL-index header at the start of the -shm file: two copies of a
 * 48-byte struct (https://www.sqlite.org/walformat.html, "The WAL-Index
 * Header"), as 64-bit words. */
#define WALHDR_WORDS 12

struct apikey_store {
	sqlite3 *db;
	apikey_log_fn log;
	void *log_ctx;
	struct apikey_config cfg;
	EVP_MAC_CTX *mac;
	struct apikey_limiter *limiter;  /* the host's rate-limit table, opened on first use */
	sqlite3_stmt **stmts;     /* prepared on first use, reused */
	bool readonly;
	bool in_batch;            /* inside apikey_import_begin/commit */
	int sync;                 /* PRAGMA synchronous in force: SYNC_FULL or SYNC_NORMAL */
	int foreign_hint_lens;    /* bitmask of import hint lengths; -1 unknown */
	struct import_audit import_audit;
	char real_path[APIKEY_PATH_SIZE];  /* the db path resolved (watch), "" = not yet */
	struct apikey_file_id opened[2];   /* the -wal and -shm at open (store_files_seen) */
	/* change detection (store_watch.c) */
	int64_t data_version;
	int64_t generation;
	bool seen_version;
	bool watch_ready;         /* watch_setup ran */
	bool walhdr_valid;        /* walhdr_seen is a header the full check ran after */
	bool force_changed;       /* the next apikey_store_changed reports a change */
	bool gen_read;            /* the change it reported last: generation read, */
	bool gen_moved;           /* and the change was exactly that generation's commit */
	bool replaced;            /* the path names another file now: sticky */
	const uint64_t *walhdr;   /* SQLite's own -shm mapping (WAL-index header), or NULL */
	bool ids_known;           /* ids: the db, -wal and -shm found by the last full check */
	struct apikey_file_id ids[3];
	uint64_t walhdr_seen[WALHDR_WORDS];
	uint32_t ckpt_seen[3];    /* mxFrame, nBackfill, nBackfillAttempted at the last file check */
	bool ckpt_known;
	uint32_t synced_mxframe;  /* mxFrame and iChange at the last apikey_store_sync_wal */
	uint32_t synced_change;
	bool synced_known;
	char why[APIKEY_WHY_SIZE];  /* the reason of the last refused write (apikey_store_why) */
	sqlite3_stmt **rstmts;    /* the replica's statements (store_replica.c) */
	struct apikey_cache *follow_cache;        /* told what each replica commit changed */
	struct replica_touched *touched;          /* what the open replica transaction changed */
	const struct apikey_backend *backend;   /* fleet mode's writer, or NULL */
	void *backend_ctx;                       /* owned: backend->free */
};

enum { SYNC_FULL = 0, SYNC_NORMAL = 1 };

/* store_watch.c: the fast path's mapping, looked up once on first use. */
void watch_setup(struct apikey_store *s);
/* Does every descriptor of this process on the store's files (the db, its
 * -wal and -shm) name the file now at that path?  0, APIKEY_ERR_REPLACED,
 * or another error when it cannot tell. */
int store_files_match(struct apikey_store *s);
/* At open, the -wal and -shm the path names (two stat calls); at close,
 * whether they are other files now: then the close must not checkpoint. */
void store_files_seen(struct apikey_store *s);
bool store_files_moved(const struct apikey_store *s);

/* Every statement a connection prepares (SQL text in store.c). */
enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_BY_HASH, ST_BY_ID, ST_BY_HINT, ST_HINT_LENS, ST_LIST, ST_LIST_OWNER,
	ST_INSERT_KEY, ST_UPDATE_KEY, ST_REVOKE, ST_ROTATE_OLD, ST_REHASH,
	ST_USAGE_ADD, ST_EVENT_ADD, ST_EVENTS, ST_EVENTS_KEY,
	ST_PRESET_SET, ST_PRESET_GET, ST_PRESET_DEL, ST_PRESET_LIST,
	ST_ACCOUNT_SET, ST_ACCOUNT_GET,
	ST_DATA_VERSION, ST_GENERATION, ST_JSON_OBJECT, ST_SYNC_FULL, ST_SYNC_NORMAL,
	ST_PEPPER_CHECK_GET, ST_PEPPER_CHECK_SET,
	ST_EVENTS_PAGE, ST_EVENTS_PAGE_KEY, ST_EVENTS_PAGE_OWNER, ST_PAGE, ST_PAGE_OWNER,
	ST_SERIES_ADD, ST_SERIES_KEY, ST_SERIES_OWNER, ST_SERIES_OWNER_KEYS,
	ST_COUNT
};

/* The statement for id, prepared on first use and reset for reuse; NULL
 * (logged) when it cannot be prepared. */
sqlite3_stmt *stmt(struct apikey_store *s, enum stmt_id id);
/* Step a statement that returns no rows; reset it; map the result. */
int exec_stmt(struct apikey_store *s, sqlite3_stmt *st, const char *what);
/* sqlite3_exec of a script, mapped. */
int exec_sql(struct apikey_store *s, const char *sql, const char *what);
/* store.c internals the replica code (store_replica.c) shares: a new handle
 * (no connection yet), its connection (create: a new file), the schema
 * migrations from version `from` (in one transaction), the pepper. */
struct apikey_store *store_new(const struct apikey_config *c, apikey_log_fn log, void *ctx);
int store_connect(struct apikey_store *s, bool create);
int store_migrate(struct apikey_store *s, int from);
int store_load_pepper(struct apikey_store *s);
/* store_pepper.c: load the pepper and check it against the store's check
 * value (recorded by the first writable open of a store without one). */
int store_pepper_open(struct apikey_store *s);
/* Finalize the replica's statements (store_replica.c). */
void store_replica_free(struct apikey_store *s);
/* SQLite result → 0 or APIKEY_ERR_* (logged unless a constraint). */
int store_err(struct apikey_store *s, int rc, const char *what);
/* The one integer a statement returns (0 when it returns no row). */
int one_int64(struct apikey_store *s, enum stmt_id id, int64_t *v);

static inline void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* 0 is stored as NULL ("never", "not revoked"). */
static inline void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
	if (t)
		sqlite3_bind_int64(st, i, t);
	else
		sqlite3_bind_null(st, i);
}

/* Copy a text column (NULL reads as ""), cut to fit; SQLite knows the
 * length, so no strlen. */
static inline void col_str(sqlite3_stmt *st, int i, char *out, size_t sz)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	size_t n = v ? (size_t)sqlite3_column_bytes(st, i) : 0;

	if (n >= sz)
		n = sz - 1;
	if (n)
		memcpy(out, v, n);
	out[n] = '\0';
}

#endif

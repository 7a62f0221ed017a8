/* store.c — the SQLite connection: schema and its migrations, the
 * prepared-statement table, transactions, open / init / check, and the
 * change detection verifiers' caches rely on.  The rows themselves are read
 * and written in store_keys.c and store_admin.c (the primitives of
 * core/rows.h); the rules that decide what to write are above them.
 *
 * Readers never hold a transaction open between calls (each statement is
 * reset after use) so checkpoints complete; writers use BEGIN IMMEDIATE so
 * the busy timeout applies instead of a deferred upgrade failing at once. */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#define APIKEY_STORE_IMPL   /* one of the SQLite files: see store_sql.h */
#include "backend.h"
#include "store_sql.h"

#define SCHEMA_VERSION 5
#define GEN_BUMP "UPDATE meta SET value = random() WHERE name = 'generation';"

/* Each migration takes the schema from version i to i + 1, in one
 * BEGIN IMMEDIATE transaction with the version bump. */
static const char *const migrations[SCHEMA_VERSION] = {
	/* 0 → 1 */
	"CREATE TABLE keys("
	"  id TEXT PRIMARY KEY,"
	"  hash BLOB UNIQUE,"                 /* HMAC-SHA256(pepper, key); NULL until an import is re-hashed */
	"  foreign_hash TEXT,"                /* imported sha256:/bcrypt/argon2id hash */
	"  hash_alg TEXT NOT NULL,"
	"  hint TEXT NOT NULL,"
	"  owner TEXT NOT NULL,"
	"  name TEXT NOT NULL DEFAULT '',"
	"  scopes TEXT NOT NULL,"
	"  metadata TEXT NOT NULL DEFAULT '{}',"   /* a JSON object, checked before insert */
	"  rate_limit INTEGER NOT NULL CHECK (rate_limit BETWEEN 1 AND 1000000),"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER,"
	"  revoked_at INTEGER,"
	"  rotated_from TEXT,"
	"  rotated_to TEXT,"
	"  CHECK (hash IS NOT NULL OR foreign_hash IS NOT NULL));"
	"CREATE INDEX keys_owner ON keys(owner);"
	"CREATE INDEX keys_foreign_hint ON keys(hint) WHERE foreign_hash IS NOT NULL;"
	"CREATE TABLE accounts(owner TEXT PRIMARY KEY, plan TEXT NOT NULL DEFAULT '',"
	"  active INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;"
	"CREATE TABLE presets(name TEXT PRIMARY KEY, scopes TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE usage(key_id TEXT PRIMARY KEY, use_count INTEGER NOT NULL DEFAULT 0,"
	"  last_used_at INTEGER) WITHOUT ROWID;"
	"CREATE TABLE ratelimit(key_id TEXT PRIMARY KEY, tat_us INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE events(id INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
	"  key_id TEXT NOT NULL DEFAULT '', event TEXT NOT NULL,"
	"  reason TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX events_key ON events(key_id, id);"
	"CREATE INDEX events_at ON events(at);"
	/* generation: bumped by every change a verifier's cache depends on, and
	 * by nothing else (usage, rate-limit state and events do not count). */
	"CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT INTO meta VALUES('generation', 0);"
	"CREATE TRIGGER keys_i AFTER INSERT ON keys BEGIN UPDATE meta SET value = value + 1 WHERE name = 'generation'; END;"
	"CREATE TRIGGER keys_u AFTER UPDATE ON keys BEGIN UPDATE meta SET value = value + 1 WHERE name = 'generation'; END;"
	"CREATE TRIGGER keys_d AFTER DELETE ON keys BEGIN UPDATE meta SET value = value + 1 WHERE name = 'generation'; END;"
	"CREATE TRIGGER accounts_i AFTER INSERT ON accounts BEGIN UPDATE meta SET value = value + 1 WHERE name = 'generation'; END;"
	"CREATE TRIGGER accounts_u AFTER UPDATE ON accounts BEGIN UPDATE meta SET value = value + 1 WHERE name = 'generation'; END;"
	"CREATE TRIGGER accounts_d AFTER DELETE ON accounts BEGIN UPDATE meta SET value = value + 1 WHERE name = 'generation'; END;",
	/* (the first presets are apikey_store_init's: the profile's, or the built-ins) */
	/* 1 → 2: events name the acting key (SPEC §5a: admin-API writes carry
	 * the acting key's id) */
	"ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';",
	/* 2 → 3 (the admin API, issue 10): events say whom they concern, so an
	 * owner's audit log is one index range; usage counted per key, minute
	 * and outcome (minutes folded into hours by prune: span 60 or 3600). */
	"ALTER TABLE events ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
	"UPDATE events SET owner = coalesce((SELECT k.owner FROM keys k WHERE k.id = events.key_id), '')"
	"  WHERE key_id != '';"
	"UPDATE events SET owner = reason WHERE key_id = '' AND event IN ('account-updated', 'account-suspended');"
	"CREATE INDEX events_owner ON events(owner, id);"
	"CREATE TABLE usage_series(key_id TEXT NOT NULL, start INTEGER NOT NULL, outcome TEXT NOT NULL,"
	"  count INTEGER NOT NULL, span INTEGER NOT NULL DEFAULT 60,"
	"  PRIMARY KEY(key_id, start, outcome)) WITHOUT ROWID;",
	/* 3 → 4: the generation becomes a fresh random value at every change of
	 * keys or accounts, not a count: a backup restored under a running
	 * verifier (sqlite3 .restore) cannot bring back the very value that
	 * verifier last saw with other contents (store_watch.c). */
	"DROP TRIGGER keys_i; DROP TRIGGER keys_u; DROP TRIGGER keys_d;"
	"DROP TRIGGER accounts_i; DROP TRIGGER accounts_u; DROP TRIGGER accounts_d;"
	"CREATE TRIGGER keys_i AFTER INSERT ON keys BEGIN " GEN_BUMP " END;"
	"CREATE TRIGGER keys_u AFTER UPDATE ON keys BEGIN " GEN_BUMP " END;"
	"CREATE TRIGGER keys_d AFTER DELETE ON keys BEGIN " GEN_BUMP " END;"
	"CREATE TRIGGER accounts_i AFTER INSERT ON accounts BEGIN " GEN_BUMP " END;"
	"CREATE TRIGGER accounts_u AFTER UPDATE ON accounts BEGIN " GEN_BUMP " END;"
	"CREATE TRIGGER accounts_d AFTER DELETE ON accounts BEGIN " GEN_BUMP " END;"
	GEN_BUMP
	/* ... and rate-limit state moves to the host's table (<db>.rl, core/ratelimit.c) */
	"DROP TABLE IF EXISTS ratelimit;",
	/* 4 → 5: fleet mode (docs/design/fleet.md): a replica's place in the
	 * fleet, the usage other replicas reported (listed with ours), and an
	 * index to find the usage that changed since the last shipment */
	"CREATE TABLE fleet(name TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	"CREATE TABLE usage_fleet(key_id TEXT PRIMARY KEY, use_count INTEGER NOT NULL DEFAULT 0,"
	"  last_used_at INTEGER) WITHOUT ROWID;"
	"CREATE INDEX usage_last ON usage(last_used_at);",
};

/* Usage: this store's own counts plus, on a replica, what the other
 * replicas of the fleet reported (usage_fleet, kept by the follower). */
#define KEY_COLS "k.id, k.hint, k.owner, k.name, k.scopes, k.metadata, " \
	"coalesce(k.rotated_from, ''), coalesce(k.rotated_to, ''), k.hash_alg, k.created_at, " \
	"coalesce(k.expires_at, 0), coalesce(k.revoked_at, 0), " \
	"max(coalesce(u.last_used_at, 0), coalesce(f.last_used_at, 0)), " \
	"coalesce(u.use_count, 0) + coalesce(f.use_count, 0), k.rate_limit, a.plan, a.active, k.foreign_hash"
#define KEY_FROM " FROM keys k LEFT JOIN usage u ON u.key_id = k.id " \
	"LEFT JOIN usage_fleet f ON f.key_id = k.id LEFT JOIN accounts a ON a.owner = k.owner "
/* Verification lookups read only what the checks and their answers need, in
 * the same column order: no usage join (one b-tree probe less), and no
 * metadata or rotation links (SQLite copies each text column it returns into
 * fresh memory, so each one left out is a malloc/free pair less per request).
 * ALG and FOREIGN: the algorithm and foreign-hash columns. */
#define VERIFY_COLS(ALG, FOREIGN) "k.id, k.hint, k.owner, k.name, k.scopes, NULL, NULL, NULL, " \
	ALG ", k.created_at, k.expires_at, k.revoked_at, NULL, NULL, k.rate_limit, a.plan, a.active, " \
	FOREIGN
#define VERIFY_FROM " FROM keys k LEFT JOIN accounts a ON a.owner = k.owner "
#define EVENT_COLS "at, key_id, event, reason, source, actor, id, owner"
/* Sums of usage_series per bucket (?4 seconds wide) and outcome. */
#define SERIES_SUM(WHERE) "SELECT '', (start / ?4) * ?4 AS b, outcome, sum(count) FROM usage_series " \
	WHERE " AND start >= ?2 AND start < ?3 GROUP BY b, outcome ORDER BY b, outcome"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	/* found by its HMAC, a key is an HMAC key */
	[ST_BY_HASH] = "SELECT " VERIFY_COLS("'hmac-sha256'", "NULL") VERIFY_FROM "WHERE k.hash = ?1",
	[ST_BY_ID] = "SELECT " KEY_COLS KEY_FROM "WHERE k.id = ?1",
	[ST_BY_HINT] = "SELECT " VERIFY_COLS("k.hash_alg", "k.foreign_hash") VERIFY_FROM
		"WHERE k.foreign_hash IS NOT NULL AND k.hint = ?1 LIMIT " "8",
	[ST_HINT_LENS] = "SELECT DISTINCT length(hint) FROM keys WHERE foreign_hash IS NOT NULL",
	[ST_LIST] = "SELECT " KEY_COLS KEY_FROM "ORDER BY k.created_at, k.rowid",
	[ST_LIST_OWNER] = "SELECT " KEY_COLS KEY_FROM "WHERE k.owner = ?1 ORDER BY k.created_at, k.rowid",
	[ST_INSERT_KEY] = "INSERT INTO keys(id, hash, foreign_hash, hash_alg, hint, owner, name, scopes,"
		" metadata, rate_limit, created_at, expires_at, rotated_from)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[ST_UPDATE_KEY] = "UPDATE keys SET name = ?2, scopes = ?3, metadata = ?4, rate_limit = ?5,"
		" expires_at = ?6 WHERE id = ?1",
	[ST_REVOKE] = "UPDATE keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
	[ST_ROTATE_OLD] = "UPDATE keys SET rotated_to = ?2, revoked_at = ?3, expires_at = ?4 WHERE id = ?1",
	/* never on a replica: its keys are the follower's alone (an imported key
	 * keeps its foreign hash there; docs/design/fleet.md §7) */
	[ST_REHASH] = "UPDATE keys SET hash = ?2, foreign_hash = NULL, hash_alg = 'hmac-sha256'"
		" WHERE id = ?1 AND foreign_hash IS NOT NULL"
		" AND NOT EXISTS (SELECT 1 FROM fleet WHERE name = 'fleet_id' AND value <> '')",
	[ST_USAGE_ADD] = "INSERT INTO usage(key_id, use_count, last_used_at) VALUES(?1, ?2, ?3)"
		" ON CONFLICT(key_id) DO UPDATE SET use_count = use_count + excluded.use_count,"
		" last_used_at = max(coalesce(last_used_at, 0), excluded.last_used_at)",
	/* owner: the given one (an account's), else the key's, else none */
	[ST_EVENT_ADD] = "INSERT INTO events(at, key_id, event, reason, source, actor, owner)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, coalesce(?7, (SELECT owner FROM keys WHERE id = ?2), ''))",
	[ST_EVENTS] = "SELECT " EVENT_COLS " FROM events ORDER BY id DESC LIMIT ?1",
	[ST_EVENTS_KEY] = "SELECT " EVENT_COLS " FROM events WHERE key_id = ?2 ORDER BY id DESC LIMIT ?1",
	[ST_EVENTS_PAGE] = "SELECT " EVENT_COLS " FROM events WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
	[ST_EVENTS_PAGE_KEY] = "SELECT " EVENT_COLS " FROM events WHERE key_id = ?3 AND id < ?1"
		" AND (?4 IS NULL OR owner = ?4) ORDER BY id DESC LIMIT ?2",
	[ST_EVENTS_PAGE_OWNER] = "SELECT " EVENT_COLS " FROM events WHERE owner = ?4 AND id < ?1"
		" ORDER BY id DESC LIMIT ?2",
	[ST_PAGE] = "SELECT " KEY_COLS ", k.rowid" KEY_FROM "WHERE k.rowid > ?1 ORDER BY k.rowid LIMIT ?2",
	[ST_PAGE_OWNER] = "SELECT " KEY_COLS ", k.rowid" KEY_FROM
		"WHERE k.owner = ?3 AND k.rowid > ?1 ORDER BY k.rowid LIMIT ?2",
	[ST_SERIES_ADD] = "INSERT INTO usage_series(key_id, start, outcome, count) VALUES(?1, ?2, ?3, ?4)"
		" ON CONFLICT(key_id, start, outcome) DO UPDATE SET count = count + excluded.count",
	[ST_SERIES_KEY] = SERIES_SUM("WHERE key_id = ?1"),
	[ST_SERIES_OWNER] = SERIES_SUM("WHERE key_id IN (SELECT id FROM keys WHERE owner = ?1)"),
	[ST_SERIES_OWNER_KEYS] = "SELECT key_id, 0, outcome, sum(count) FROM usage_series"
		" WHERE key_id IN (SELECT id FROM keys WHERE owner = ?1) AND start >= ?2 AND start < ?3"
		" GROUP BY key_id, outcome ORDER BY key_id, outcome",
	[ST_PRESET_SET] = "INSERT INTO presets(name, scopes) VALUES(?1, ?2)"
		" ON CONFLICT(name) DO UPDATE SET scopes = excluded.scopes",
	[ST_PRESET_GET] = "SELECT scopes FROM presets WHERE name = ?1",
	[ST_PRESET_DEL] = "DELETE FROM presets WHERE name = ?1",
	[ST_PRESET_LIST] = "SELECT name, scopes FROM presets ORDER BY name",
	[ST_ACCOUNT_SET] = "INSERT INTO accounts(owner, plan, active) VALUES(?1, coalesce(?2, ''), coalesce(?3, 1))"
		" ON CONFLICT(owner) DO UPDATE SET plan = coalesce(?2, plan), active = coalesce(?3, active)",
	[ST_ACCOUNT_GET] = "SELECT owner, plan, active FROM accounts WHERE owner = ?1",
	[ST_DATA_VERSION] = "PRAGMA data_version",
	[ST_GENERATION] = "SELECT value FROM meta WHERE name = 'generation'",
	[ST_SYNC_FULL] = "PRAGMA synchronous = FULL",
	[ST_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
	[ST_PEPPER_CHECK_GET] = "SELECT value FROM meta WHERE name = 'pepper_check'",
	[ST_PEPPER_CHECK_SET] = "INSERT INTO meta(name, value) VALUES('pepper_check', ?1)",
	/* CASE: json_type raises an error on text json_valid refuses */
	[ST_JSON_OBJECT] = "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END",
};

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_err(struct apikey_store *s, int rc, const char *what)
{
	int r;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:      return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:   r = APIKEY_ERR_BUSY; break;
	case SQLITE_READONLY:
	case SQLITE_PERM:     r = APIKEY_ERR_READONLY; break;
	case SQLITE_CONSTRAINT: r = APIKEY_ERR_EXISTS; break;
	case SQLITE_NOMEM:    r = APIKEY_ERR_NOMEM; break;
	case SQLITE_FULL:     r = APIKEY_ERR_DISK_FULL; break;
	default:              r = APIKEY_ERR_STORE; break;
	}
	/* SQLite says "disk I/O error" when the -shm or -wal file cannot grow:
	 * a full disk is not a missing or corrupt store, and says so */
	if (r == APIKEY_ERR_STORE && (rc & 0xff) == SQLITE_IOERR && s->db &&
	    (sqlite3_system_errno(s->db) == ENOSPC || sqlite3_system_errno(s->db) == EDQUOT))
		r = APIKEY_ERR_DISK_FULL;
	if (r == APIKEY_ERR_DISK_FULL)
		apikey_store_log(s, LOG_ERR, "key store: %s: the disk is full (%s%s%s)", what,
		          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), s->db ? ": " : "",
		          s->db ? strerror(sqlite3_system_errno(s->db)) : "");
	else if (r != APIKEY_ERR_EXISTS)
		apikey_store_log(s, LOG_ERR, "key store: %s: %s", what,
		          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	return r;
}

void apikey_store_log(struct apikey_store *s, int prio, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!s->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->log(s->log_ctx, prio, msg);
}

const struct apikey_config *apikey_store_config(const struct apikey_store *s)
{
	return &s->cfg;
}

int store_limiter(struct apikey_store *s, struct apikey_limiter **out)
{
	int r = 0;

	if (!s->limiter)
		r = apikey_limiter_open(&s->limiter, s->cfg.db_path, s->log, s->log_ctx);
	*out = s->limiter;
	return r;
}

const struct apikey_backend *store_backend(const struct apikey_store *s, void **ctx)
{
	*ctx = s->backend_ctx;
	return s->backend;
}

int apikey_store_set_backend(struct apikey_store *s, const struct apikey_backend *b, void *ctx)
{
	if (s->backend || s->in_batch || !b) {
		if (b && b->free)
			b->free(ctx);
		return APIKEY_ERR_INVALID;
	}
	s->backend = b;
	s->backend_ctx = ctx;   /* transferred */
	return 0;
}

void apikey_store_sink(struct apikey_store *s, apikey_log_fn *fn, void **ctx)
{
	*fn = s->log;
	*ctx = s->log_ctx;
}

int store_digest(struct apikey_store *s, const char *key, size_t len, unsigned char out[DIGEST_LEN])
{
	if (!s->mac)          /* opened with APIKEY_STORE_NO_PEPPER */
		return APIKEY_ERR_PEPPER;
	return hmac_digest(s->mac, key, len, out);
}

sqlite3_stmt *stmt(struct apikey_store *s, enum stmt_id id)
{
	sqlite3_stmt *st = s->stmts[id];

	if (!st) {
		int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK) {
			store_err(s, rc, "prepare");
			return NULL;
		}
		s->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

int exec_stmt(struct apikey_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(s, rc, what);
}

static int exec_id(struct apikey_store *s, enum stmt_id id, const char *what)
{
	sqlite3_stmt *st = stmt(s, id);

	return st ? exec_stmt(s, st, what) : APIKEY_ERR_STORE;
}

int exec_sql(struct apikey_store *s, const char *sql, const char *what)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_err(s, rc, what);
}

/* ---- transactions: inside a batch, each write's own transaction folds into it */

/* PRAGMA synchronous for the next commits of this connection. */
static int set_sync(struct apikey_store *s, int mode)
{
	int r;

	if (s->sync == mode)
		return 0;
	if ((r = exec_id(s, mode == SYNC_FULL ? ST_SYNC_FULL : ST_SYNC_NORMAL, "synchronous")) == 0)
		s->sync = mode;
	return r;
}

static int begin(struct apikey_store *s, int mode)
{
	int r;

	if (s->readonly)
		return APIKEY_ERR_READONLY;
	if (s->in_batch)
		return 0;
	if ((r = set_sync(s, mode)) != 0)
		return r;
	return exec_id(s, ST_BEGIN, "begin");
}

int sql_row_begin(struct apikey_store *s)
{
	return begin(s, SYNC_FULL);
}

int row_begin_usage(struct apikey_store *s)
{
	return begin(s, SYNC_NORMAL);
}

int sql_row_commit(struct apikey_store *s)
{
	int r;

	if (s->in_batch)
		return 0;
	if ((r = exec_id(s, ST_COMMIT, "commit")) != 0)
		sql_row_rollback(s);
	return r;
}

void sql_row_rollback(struct apikey_store *s)
{
	if (!s->in_batch && sqlite3_get_autocommit(s->db) == 0)
		exec_id(s, ST_ROLLBACK, "rollback");
}

bool sql_row_in_batch(const struct apikey_store *s)
{
	return s->in_batch;
}

/* ---- batches: one transaction around many writes --------------------------- */

struct import_audit *store_import_audit(struct apikey_store *s)
{
	return &s->import_audit;
}

char *store_why(struct apikey_store *s)
{
	return s->why;
}

const char *apikey_store_why(const struct apikey_store *s)
{
	return s ? s->why : "";
}

int sql_row_batch_begin(struct apikey_store *s)
{
	int r;

	if (s->in_batch)
		return APIKEY_ERR_INVALID;
	/* Bulk writes insert at random places in the id and hint indexes, and
	 * each insert (the generation trigger) keeps a statement journal: a
	 * bigger page cache, and statement journals in memory rather than in a
	 * temporary file they spill to (GBs of writes per million keys).  The
	 * connection keeps both settings for its life. */
	if (!s->readonly && (r = exec_sql(s, "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536",
	                                  "bulk settings")) != 0)
		return r;
	if ((r = sql_row_begin(s)) == 0)
		s->in_batch = true;
	return r;
}

int sql_row_batch_commit(struct apikey_store *s)
{
	if (!s->in_batch)
		return APIKEY_ERR_INVALID;
	s->in_batch = false;
	s->foreign_hint_lens = -1;
	return sql_row_commit(s);
}

void sql_row_batch_rollback(struct apikey_store *s)
{
	s->in_batch = false;
	s->foreign_hint_lens = -1;
	sql_row_rollback(s);
}

/* ---- open, init, check ---------------------------------------------------- */

static int user_version(struct apikey_store *s, int *v)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_err(s, rc, "read schema version");
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_err(s, rc, "read schema version");
}

int store_migrate(struct apikey_store *s, int from)
{
	char sql[64];
	int r;

	if ((r = sql_row_begin(s)) != 0)
		return r;
	for (int v = from; v < SCHEMA_VERSION; v++)
		if ((r = exec_sql(s, migrations[v], "migrate schema")) != 0)
			goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if ((r = exec_sql(s, sql, "migrate schema")) != 0)
		goto fail;
	if ((r = sql_row_commit(s)) != 0)
		return r;
	apikey_store_log(s, LOG_INFO, "key store schema migrated from version %d to %d", from, SCHEMA_VERSION);
	return 0;
fail:
	sql_row_rollback(s);
	return r;
}

int store_connect(struct apikey_store *s, bool create)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(s->cfg.db_path, &s->db, flags, NULL);

	if (rc != SQLITE_OK)
		return store_err(s, rc, "open");
	sqlite3_busy_timeout(s->db, (int)s->cfg.busy_timeout_ms);
	s->readonly = sqlite3_db_readonly(s->db, "main") == 1;
	/* Revocations must be durable when the command returns: every commit is
	 * synced, except those row_begin_usage opens (DESIGN.md, "Store"). */
	s->sync = SYNC_FULL;
	return exec_sql(s, "PRAGMA synchronous = FULL; PRAGMA trusted_schema = OFF", "configure");
}

struct apikey_store *store_new(const struct apikey_config *c, apikey_log_fn log, void *ctx)
{
	struct apikey_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cfg = *c;
	s->log = log;
	s->log_ctx = ctx;
	s->foreign_hint_lens = -1;
	s->stmts = calloc(ST_COUNT, sizeof(*s->stmts));
	if (!s->stmts) {
		free(s);
		return NULL;
	}
	return s;
}

/* A new store's presets: the ones its profile declares (preset.NAME=),
 * else the built-ins read-only and full-access.  Part of creating the
 * store, like its schema: no events. */
static int first_presets(struct apikey_store *s)
{
	const struct apikey_profile *p = &s->cfg.profile;
	const char *name, *scopes;
	int r;

	if ((r = row_begin(s)) != 0)
		return r;
	for (unsigned i = 0; i < p->n_presets && i < APIKEY_PROFILE_PRESETS; i++)
		if ((r = row_preset_upsert(s, p->presets[i].name, p->presets[i].scopes)) != 0)
			goto fail;
	for (unsigned i = 0; !p->n_presets && profile_builtin_preset(i, &name, &scopes); i++)
		if ((r = row_preset_upsert(s, name, scopes)) != 0)
			goto fail;
	return row_commit(s);
fail:
	row_rollback(s);
	return r;
}

/* A -wal or -shm beside a database that does not exist belongs to a store
 * that was deleted (possibly while a process still has it open).  A new
 * store must not inherit it: SQLite would replay the old WAL into it. */
static int remove_orphans(const char *db, apikey_log_fn log, void *log_ctx)
{
	static const char *const suffix[] = { "-wal", "-shm" };
	char path[APIKEY_PATH_SIZE + 8];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
		if (unlink(path) == 0)
			core_log(log, log_ctx, LOG_WARNING, "%s: removed, left over from a deleted key store", path);
		else if (errno != ENOENT)
			return core_log(log, log_ctx, LOG_ERR, "%s: %s", path, strerror(errno)), APIKEY_ERR_IO;
	}
	return 0;
}

int apikey_store_init(const struct apikey_config *c, apikey_log_fn log, void *log_ctx)
{
	char ppath[APIKEY_PATH_SIZE], dir[APIKEY_PATH_SIZE];
	struct apikey_store *s;
	struct stat st;
	int r;

	if (stat(c->db_path, &st) == 0) {
		core_log(log, log_ctx, LOG_ERR, "%s already exists; refusing to overwrite", c->db_path);
		return APIKEY_ERR_EXISTS;
	}
	if (apikey_config_pepper_path(c, ppath, sizeof(ppath)) != 0)
		return APIKEY_ERR_TOO_LONG;
	if (stat(ppath, &st) == 0) {
		core_log(log, log_ctx, LOG_ERR, "%s already exists; refusing to overwrite", ppath);
		return APIKEY_ERR_EXISTS;
	}
	copy_str(dir, sizeof(dir), c->db_path);
	if (mkdir(dirname(dir), 0750) != 0 && errno != EEXIST) {
		core_log(log, log_ctx, LOG_ERR, "%s: %s", dir, strerror(errno));
		return APIKEY_ERR_IO;
	}
	if ((r = remove_orphans(c->db_path, log, log_ctx)) != 0)
		return r;
	if ((r = pepper_create(ppath)) != 0) {
		core_log(log, log_ctx, LOG_ERR, "%s: cannot create pepper: %s", ppath, strerror(errno));
		return r;
	}
	if (!(s = store_new(c, log, log_ctx))) {
		unlink(ppath);
		return APIKEY_ERR_NOMEM;
	}
	if ((r = store_connect(s, true)) == 0 && (r = exec_sql(s, "PRAGMA journal_mode = WAL", "enable WAL")) == 0 &&
	    (r = store_migrate(s, 0)) == 0 && (r = first_presets(s)) == 0 && (r = store_pepper_open(s)) == 0 &&
	    chmod(c->db_path, 0640) != 0)
		r = APIKEY_ERR_IO;
	/* the host's rate-limit table beside it (kept if one is there already) */
	if (r == 0) {
		struct apikey_limiter *l;
		if ((r = store_limiter(s, &l)) != 0)
			core_log(log, log_ctx, LOG_ERR, "%s.rl: cannot make the rate-limit table", c->db_path);
	}
	apikey_store_free(s);
	if (r != 0) {
		unlink(ppath);
		unlink(c->db_path);
	}
	return r;
}

int apikey_store_open(struct apikey_store **out, const struct apikey_config *c,
                      apikey_log_fn log, void *log_ctx)
{
	struct apikey_store *s;
	struct stat st;
	int r, v;

	*out = NULL;
	if (stat(c->db_path, &st) != 0) {
		core_log(log, log_ctx, LOG_ERR, "%s: %s (create it with 'apikeyctl init')",
		         c->db_path, strerror(errno));
		return APIKEY_ERR_STORE;
	}
	if (!(s = store_new(c, log, log_ctx)))
		return APIKEY_ERR_NOMEM;
	if ((r = store_connect(s, false)) != 0 || (r = user_version(s, &v)) != 0)
		goto fail;
	if (v == 0 || v > SCHEMA_VERSION) {
		apikey_store_log(s, LOG_ERR, "%s: %s", c->db_path, v == 0 ? "not an apikey database (run 'apikeyctl init')"
		                                                   : "schema is newer than this program");
		r = APIKEY_ERR_STORE;
		goto fail;
	}
	if (v < SCHEMA_VERSION && (r = store_migrate(s, v)) != 0)
		goto fail;
	if (!(c->store_flags & APIKEY_STORE_NO_PEPPER) && (r = store_pepper_open(s)) != 0)
		goto fail;
	store_files_seen(s);
	*out = s;   /* transferred */
	return 0;
fail:
	apikey_store_free(s);
	return r;
}

/*
 * A short-lived process (a PAM login) does not checkpoint when it closes
 * (SQLite's last close would: two fsyncs per login).  The next opener then
 * rebuilds the WAL-index from the WAL (recovery reads every frame, and
 * forgets what was checkpointed, so the WAL would never restart): the WAL is
 * kept short instead — once it holds more than WAL_CAP_BYTES, the closing
 * process checkpoints it and truncates it to zero.
 */
#define WAL_CAP_BYTES (64 * (4096 + 24))

static void close_short_lived(struct apikey_store *s)
{
	char wal[APIKEY_PATH_SIZE + 8];
	struct stat st;

	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	snprintf(wal, sizeof(wal), "%s-wal", s->cfg.db_path);
	if (!s->readonly && stat(wal, &st) == 0 && st.st_size > WAL_CAP_BYTES)
		sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
}

void apikey_store_free(struct apikey_store *s)
{
	if (!s)
		return;
	if (s->backend && s->backend->free)
		s->backend->free(s->backend_ctx);
	store_replica_free(s);
	for (int i = 0; s->stmts && i < ST_COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	free(s->stmts);
	if (s->db) {
		/* A connection whose path now names other files must leave them
		 * alone: SQLite's last close checkpoints and then deletes the -wal
		 * and -shm *by name*, which would take them from the new store. */
		if (s->replaced || store_files_moved(s))
			sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
		else if (s->cfg.store_flags & APIKEY_STORE_NO_CHECKPOINT)
			close_short_lived(s);
		sqlite3_close(s->db);
	}
	hmac_free(s->mac);
	apikey_limiter_free(s->limiter);
	free(s);
}

int apikey_store_check(struct apikey_store *s)
{
	struct apikey_limiter *lim;
	sqlite3_stmt *st;
	int rc, bad = 0;

	/* the rate-limit table too: made when missing, aligned with the store's
	 * owner, group and mode when run as root (packaging changes them after
	 * init), refused (and said so) when damaged */
	if (store_limiter(s, &lim) != 0)
		bad = 1;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(s, rc, "integrity check");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *m = (const char *)sqlite3_column_text(st, 0);
		if (m && strcmp(m, "ok") != 0) {
			apikey_store_log(s, LOG_ERR, "integrity: %s", m);
			bad = 1;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_err(s, rc, "integrity check");
	return bad ? APIKEY_ERR_STORE : 0;
}

int one_int64(struct apikey_store *s, enum stmt_id id, int64_t *v)
{
	sqlite3_stmt *st = stmt(s, id);
	int rc;

	if (!st)
		return APIKEY_ERR_STORE;
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : store_err(s, rc, "read version");
}

bool apikey_store_ready(struct apikey_store *s)
{
	int64_t gen;

	return s && !s->replaced && one_int64(s, ST_GENERATION, &gen) == 0;
}

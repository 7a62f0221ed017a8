/* store.c — the SQLite key store: schema and migrations, prepared statements
 * reused for the connection's life, and every read and write of keys,
 * accounts, presets, usage, rate-limit state and audit events.
 *
 * Readers never hold a transaction open between calls (each statement is
 * reset after use) so checkpoints complete; writers use BEGIN IMMEDIATE so
 * the busy timeout applies instead of a deferred upgrade failing at once. */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "internal.h"

#define SCHEMA_VERSION 1

/* Each migration takes the schema from version i to i + 1. */
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
	"CREATE TRIGGER accounts_d AFTER DELETE ON accounts BEGIN UPDATE meta SET value = value + 1 WHERE name = 'generation'; END;"
	"INSERT INTO presets VALUES('read-only', '*:read'), ('full-access', '*');",
};

#define KEY_COLS "k.id, k.hint, k.owner, k.name, k.scopes, k.metadata, " \
	"coalesce(k.rotated_from, ''), coalesce(k.rotated_to, ''), k.hash_alg, k.created_at, " \
	"coalesce(k.expires_at, 0), coalesce(k.revoked_at, 0), coalesce(u.last_used_at, 0), " \
	"coalesce(u.use_count, 0), k.rate_limit, a.plan, a.active, k.foreign_hash"
#define KEY_FROM " FROM keys k LEFT JOIN usage u ON u.key_id = k.id " \
	"LEFT JOIN accounts a ON a.owner = k.owner "
/* Verification lookups read only what the checks and their answers need, in
 * the same column order: no usage join (one b-tree probe less), and no
 * metadata or rotation links (SQLite copies each text column it returns into
 * fresh memory, so each one left out is a malloc/free pair less per request).
 * ALG and FOREIGN: the algorithm and foreign-hash columns. */
#define VERIFY_COLS(ALG, FOREIGN) "k.id, k.hint, k.owner, k.name, k.scopes, NULL, NULL, NULL, " \
	ALG ", k.created_at, k.expires_at, k.revoked_at, NULL, NULL, k.rate_limit, a.plan, a.active, " \
	FOREIGN
#define VERIFY_FROM " FROM keys k LEFT JOIN accounts a ON a.owner = k.owner "

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_BY_HASH, ST_BY_ID, ST_BY_HINT, ST_HINT_LENS, ST_LIST, ST_LIST_OWNER,
	ST_INSERT_KEY, ST_REVOKE, ST_ROTATE_OLD, ST_REHASH,
	ST_TAT_GET, ST_TAT_SET, ST_USAGE_ADD, ST_EVENT_ADD, ST_EVENTS, ST_EVENTS_KEY,
	ST_PRESET_SET, ST_PRESET_GET, ST_PRESET_DEL, ST_PRESET_LIST,
	ST_ACCOUNT_SET, ST_ACCOUNT_GET,
	ST_DATA_VERSION, ST_GENERATION, ST_JSON_OBJECT,
	ST_COUNT
};

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
	[ST_REVOKE] = "UPDATE keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
	[ST_ROTATE_OLD] = "UPDATE keys SET rotated_to = ?2, revoked_at = ?3, expires_at = ?4 WHERE id = ?1",
	[ST_REHASH] = "UPDATE keys SET hash = ?2, foreign_hash = NULL, hash_alg = 'hmac-sha256'"
		" WHERE id = ?1 AND foreign_hash IS NOT NULL",
	[ST_TAT_GET] = "SELECT tat_us FROM ratelimit WHERE key_id = ?1",
	[ST_TAT_SET] = "INSERT INTO ratelimit(key_id, tat_us) VALUES(?1, ?2)"
		" ON CONFLICT(key_id) DO UPDATE SET tat_us = excluded.tat_us",
	[ST_USAGE_ADD] = "INSERT INTO usage(key_id, use_count, last_used_at) VALUES(?1, ?2, ?3)"
		" ON CONFLICT(key_id) DO UPDATE SET use_count = use_count + excluded.use_count,"
		" last_used_at = max(coalesce(last_used_at, 0), excluded.last_used_at)",
	[ST_EVENT_ADD] = "INSERT INTO events(at, key_id, event, reason, source) VALUES(?1, ?2, ?3, ?4, ?5)",
	[ST_EVENTS] = "SELECT at, key_id, event, reason, source FROM events ORDER BY id DESC LIMIT ?1",
	[ST_EVENTS_KEY] = "SELECT at, key_id, event, reason, source FROM events WHERE key_id = ?2"
		" ORDER BY id DESC LIMIT ?1",
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
	[ST_JSON_OBJECT] = "SELECT json_valid(?1) AND json_type(?1) = 'object'",
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
	default:              r = APIKEY_ERR_STORE; break;
	}
	if (r != APIKEY_ERR_EXISTS)
		slog(s, LOG_ERR, "key store: %s: %s", what, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	return r;
}

/* The statement for id, prepared on first use and reset for reuse. */
static sqlite3_stmt *stmt(struct apikey_store *s, enum stmt_id id)
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

/* Step a statement that returns no rows; reset it; map the result. */
static int exec_stmt(struct apikey_store *s, sqlite3_stmt *st, const char *what)
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

/* Inside a batch, the write helpers' own transactions fold into it. */
int store_tx_begin(struct apikey_store *s)
{
	if (s->readonly)
		return APIKEY_ERR_READONLY;
	if (s->in_batch)
		return 0;
	return exec_id(s, ST_BEGIN, "begin");
}

int store_tx_commit(struct apikey_store *s)
{
	int r;

	if (s->in_batch)
		return 0;
	if ((r = exec_id(s, ST_COMMIT, "commit")) != 0)
		store_tx_rollback(s);
	return r;
}

void store_tx_rollback(struct apikey_store *s)
{
	if (!s->in_batch && sqlite3_get_autocommit(s->db) == 0)
		exec_id(s, ST_ROLLBACK, "rollback");
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
	if (t)
		sqlite3_bind_int64(st, i, t);
	else
		sqlite3_bind_null(st, i);
}

/* Copy a text column (NULL reads as ""), cut to fit; SQLite knows the
 * length, so no strlen. */
static void col_str(sqlite3_stmt *st, int i, char *out, size_t sz)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	size_t n = v ? (size_t)sqlite3_column_bytes(st, i) : 0;

	if (n >= sz)
		n = sz - 1;
	if (n)
		memcpy(out, v, n);
	out[n] = '\0';
}

static void row_to_record(sqlite3_stmt *st, struct key_record *rec)
{
	struct apikey_key_info *k = &rec->info;

	/* every field is written below: no memset of the 3 kB record */
	col_str(st, 0, k->id, sizeof(k->id));
	col_str(st, 1, k->hint, sizeof(k->hint));
	col_str(st, 2, k->owner, sizeof(k->owner));
	col_str(st, 3, k->name, sizeof(k->name));
	col_str(st, 4, k->scopes, sizeof(k->scopes));
	col_str(st, 5, k->metadata, sizeof(k->metadata));
	col_str(st, 6, k->rotated_from, sizeof(k->rotated_from));
	col_str(st, 7, k->rotated_to, sizeof(k->rotated_to));
	col_str(st, 8, k->hash_alg, sizeof(k->hash_alg));
	k->created_at = sqlite3_column_int64(st, 9);
	k->expires_at = sqlite3_column_int64(st, 10);
	k->revoked_at = sqlite3_column_int64(st, 11);
	k->last_used_at = sqlite3_column_int64(st, 12);
	k->use_count = (uint64_t)sqlite3_column_int64(st, 13);
	k->rate_limit = (uint32_t)sqlite3_column_int64(st, 14);
	rec->has_account = sqlite3_column_type(st, 16) != SQLITE_NULL;
	col_str(st, 15, rec->plan, sizeof(rec->plan));
	rec->active = !rec->has_account || sqlite3_column_int(st, 16) != 0;
}

/* Run a key-returning statement expecting at most one row. */
static int one_record(struct apikey_store *s, sqlite3_stmt *st, struct key_record *rec)
{
	int rc = sqlite3_step(st), r;

	if (rc == SQLITE_ROW) {
		row_to_record(st, rec);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? APIKEY_ERR_NOT_FOUND : store_err(s, rc, "lookup");
	}
	sqlite3_reset(st);
	return r;
}

int store_lookup_digest(struct apikey_store *s, const unsigned char d[DIGEST_LEN], struct key_record *rec)
{
	sqlite3_stmt *st = stmt(s, ST_BY_HASH);

	if (!st)
		return APIKEY_ERR_STORE;
	sqlite3_bind_blob(st, 1, d, DIGEST_LEN, SQLITE_STATIC);
	return one_record(s, st, rec);
}

int store_lookup_id(struct apikey_store *s, const char *id, struct key_record *rec)
{
	sqlite3_stmt *st = stmt(s, ST_BY_ID);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	return one_record(s, st, rec);
}

/* Lengths of the import hints in the store, as a bitmask, cached until the
 * store changes: imported keys are found by the hint their key starts with. */
static int hint_lengths(struct apikey_store *s)
{
	sqlite3_stmt *st;
	int mask = 0, rc;

	if (s->foreign_hint_lens >= 0)
		return s->foreign_hint_lens;
	if (!(st = stmt(s, ST_HINT_LENS)))
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int n = sqlite3_column_int(st, 0);
		if (n >= IMPORT_HINT_MIN && n <= IMPORT_HINT_MAX)
			mask |= 1 << n;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(s, rc, "hint lengths"), -1;
	s->foreign_hint_lens = mask;
	return mask;
}

int store_lookup_foreign(struct apikey_store *s, const char *key, size_t len, struct key_record *rec)
{
	int mask = hint_lengths(s);

	if (mask < 0)
		return APIKEY_ERR_STORE;
	for (int n = IMPORT_HINT_MIN; n <= IMPORT_HINT_MAX && (size_t)n <= len; n++) {
		sqlite3_stmt *st;
		int rc, tried = 0;

		if (!(mask & (1 << n)))
			continue;
		if (!(st = stmt(s, ST_BY_HINT)))
			return APIKEY_ERR_STORE;
		sqlite3_bind_text(st, 1, key, n, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && tried++ < FOREIGN_CANDIDATES_MAX) {
			const char *fh = (const char *)sqlite3_column_text(st, 17);
			if (fh && foreign_verify(fh, key, len) == 0) {
				row_to_record(st, rec);
				sqlite3_reset(st);
				return 0;
			}
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return store_err(s, rc, "lookup imported key");
	}
	return APIKEY_ERR_NOT_FOUND;
}

int store_rehash(struct apikey_store *s, const char *id, const unsigned char d[DIGEST_LEN])
{
	sqlite3_stmt *st = stmt(s, ST_REHASH);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	sqlite3_bind_blob(st, 2, d, DIGEST_LEN, SQLITE_STATIC);
	return exec_stmt(s, st, "re-hash imported key");
}

int store_tat_get(struct apikey_store *s, const char *id, int64_t *tat_us)
{
	sqlite3_stmt *st = stmt(s, ST_TAT_GET);
	int rc;

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	rc = sqlite3_step(st);
	*tat_us = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_err(s, rc, "rate-limit state");
}

int store_tat_set(struct apikey_store *s, const char *id, int64_t tat_us)
{
	sqlite3_stmt *st = stmt(s, ST_TAT_SET);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, tat_us);
	return exec_stmt(s, st, "rate-limit state");
}

int store_usage_add(struct apikey_store *s, const char *id, uint64_t count, int64_t last)
{
	sqlite3_stmt *st = stmt(s, ST_USAGE_ADD);

	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)count);
	sqlite3_bind_int64(st, 3, last);
	return exec_stmt(s, st, "usage");
}

int store_event_add(struct apikey_store *s, int64_t at, const char *key_id, const char *event,
                    const char *reason, const char *source)
{
	sqlite3_stmt *st = stmt(s, ST_EVENT_ADD);

	if (!st)
		return APIKEY_ERR_STORE;
	sqlite3_bind_int64(st, 1, at);
	bind_text(st, 2, key_id ? key_id : "");
	bind_text(st, 3, event);
	bind_text(st, 4, reason ? reason : "");
	bind_text(st, 5, source ? source : "");
	return exec_stmt(s, st, "audit event");
}

/* ---- open, init, check ---------------------------------------------------- */

/* The pepper lives beside the database unless configured. */
static int pepper_path(const struct apikey_config *c, char *out, size_t sz)
{
	if (c->pepper_path[0])
		return copy_str(out, sz, c->pepper_path);
	if (strlen(c->db_path) + sizeof(".pepper") > sz)
		return APIKEY_ERR_TOO_LONG;
	memcpy(out, c->db_path, strlen(c->db_path));
	memcpy(out + strlen(c->db_path), ".pepper", sizeof(".pepper"));
	return 0;
}

static int exec_sql(struct apikey_store *s, const char *sql, const char *what)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_err(s, rc, what);
}

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

static int migrate(struct apikey_store *s, int from)
{
	char sql[64];
	int r;

	if ((r = store_tx_begin(s)) != 0)
		return r;
	for (int v = from; v < SCHEMA_VERSION; v++)
		if ((r = exec_sql(s, migrations[v], "migrate schema")) != 0)
			goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if ((r = exec_sql(s, sql, "migrate schema")) != 0)
		goto fail;
	if ((r = store_tx_commit(s)) != 0)
		return r;
	slog(s, LOG_INFO, "key store schema migrated from version %d to %d", from, SCHEMA_VERSION);
	return 0;
fail:
	store_tx_rollback(s);
	return r;
}

static int connect_db(struct apikey_store *s, bool create)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(s->cfg.db_path, &s->db, flags, NULL);

	if (rc != SQLITE_OK)
		return store_err(s, rc, "open");
	sqlite3_busy_timeout(s->db, (int)s->cfg.busy_timeout_ms);
	s->readonly = sqlite3_db_readonly(s->db, "main") == 1;
	/* Revocations must be durable when the command returns: sync each commit. */
	return exec_sql(s, "PRAGMA synchronous = FULL; PRAGMA trusted_schema = OFF", "configure");
}

static struct apikey_store *store_new(const struct apikey_config *c, apikey_log_fn log, void *ctx)
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
	if (pepper_path(c, ppath, sizeof(ppath)) != 0)
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
	if ((r = pepper_create(ppath)) != 0) {
		core_log(log, log_ctx, LOG_ERR, "%s: cannot create pepper: %s", ppath, strerror(errno));
		return r;
	}
	if (!(s = store_new(c, log, log_ctx))) {
		unlink(ppath);
		return APIKEY_ERR_NOMEM;
	}
	if ((r = connect_db(s, true)) == 0 && (r = exec_sql(s, "PRAGMA journal_mode = WAL", "enable WAL")) == 0 &&
	    (r = migrate(s, 0)) == 0 && chmod(c->db_path, 0640) != 0)
		r = APIKEY_ERR_IO;
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
	unsigned char pepper[APIKEY_PEPPER_LEN];
	char ppath[APIKEY_PATH_SIZE];
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
	if ((r = connect_db(s, false)) != 0 || (r = user_version(s, &v)) != 0)
		goto fail;
	if (v == 0 || v > SCHEMA_VERSION) {
		slog(s, LOG_ERR, "%s: %s", c->db_path, v == 0 ? "not an apikey database (run 'apikeyctl init')"
		                                              : "schema is newer than this program");
		r = APIKEY_ERR_STORE;
		goto fail;
	}
	if (v < SCHEMA_VERSION && (r = migrate(s, v)) != 0)
		goto fail;
	if ((r = pepper_path(c, ppath, sizeof(ppath))) != 0 ||
	    (r = pepper_load(ppath, pepper)) != 0) {
		r = APIKEY_ERR_PEPPER;
		slog(s, LOG_ERR, "%s: pepper must be a 32-byte file, mode 0600 or 0640", ppath);
		goto fail;
	}
	s->mac = hmac_new(pepper);
	OPENSSL_cleanse(pepper, sizeof(pepper));
	if (!s->mac) {
		r = APIKEY_ERR_CRYPTO;
		goto fail;
	}
	*out = s;   /* transferred */
	return 0;
fail:
	apikey_store_free(s);
	return r;
}

void apikey_store_free(struct apikey_store *s)
{
	if (!s)
		return;
	for (int i = 0; s->stmts && i < ST_COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	free(s->stmts);
	if (s->db)
		sqlite3_close(s->db);
	hmac_free(s->mac);
	free(s);
}

int apikey_store_check(struct apikey_store *s)
{
	sqlite3_stmt *st;
	int rc, bad = 0;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(s, rc, "integrity check");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *m = (const char *)sqlite3_column_text(st, 0);
		if (m && strcmp(m, "ok") != 0) {
			slog(s, LOG_ERR, "integrity: %s", m);
			bad = 1;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_err(s, rc, "integrity check");
	return bad ? APIKEY_ERR_STORE : 0;
}

static int one_int64(struct apikey_store *s, enum stmt_id id, int64_t *v)
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

bool apikey_store_changed(struct apikey_store *s)
{
	int64_t dv, gen;

	if (one_int64(s, ST_DATA_VERSION, &dv) != 0)
		return true;
	if (s->seen_version && dv == s->data_version)
		return false;
	s->data_version = dv;
	if (one_int64(s, ST_GENERATION, &gen) != 0)
		return true;
	if (s->seen_version && gen == s->generation)
		return false;     /* only usage or events were written */
	s->generation = gen;
	s->seen_version = true;
	s->foreign_hint_lens = -1;
	return true;
}

bool apikey_store_ready(struct apikey_store *s)
{
	int64_t gen;

	return s && one_int64(s, ST_GENERATION, &gen) == 0;
}

/* ---- keys ------------------------------------------------------------------ */

static bool owner_valid(const char *o)
{
	size_t n = o ? strlen(o) : 0;

	if (n == 0 || n >= APIKEY_OWNER_SIZE)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)o[i] <= ' ' || o[i] == 0x7f || o[i] == ':' || o[i] == ',')
			return false;
	return true;
}

static bool name_valid(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)n[i] < ' ' || n[i] == 0x7f)
			return false;
	return len < APIKEY_NAME_SIZE;
}

/* The scopes a create call asks for: a list, or a preset's. */
static int resolve_scopes(struct apikey_store *s, const char *scopes, const char *preset,
                          char out[APIKEY_SCOPES_SIZE])
{
	char raw[APIKEY_SCOPES_SIZE];
	int r;

	if ((scopes && preset) || (!scopes && !preset))
		return APIKEY_ERR_INVALID;
	if (preset) {
		if ((r = apikey_preset_get(s, preset, raw)) != 0)
			return r;
		scopes = raw;
	}
	if ((r = apikey_scopes_normalize(scopes, out, APIKEY_SCOPES_SIZE)) != 0 || !out[0])
		return r ? r : APIKEY_ERR_INVALID;
	return 0;
}

struct new_key {
	const char *owner, *name, *scopes, *metadata, *rotated_from, *foreign_hash, *hash_alg, *hint;
	const unsigned char *digest;
	int64_t created_at, expires_at;
	uint32_t rate_limit;
};

/* Metadata must be a JSON object: SQLite's own JSON parser says so. */
static int check_metadata(struct apikey_store *s, const char *json)
{
	sqlite3_stmt *st = stmt(s, ST_JSON_OBJECT);
	int rc, ok;

	if (!json)
		return 0;
	if (!st)
		return APIKEY_ERR_STORE;
	bind_text(st, 1, json);
	rc = sqlite3_step(st);
	ok = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
	sqlite3_reset(st);
	return ok ? 0 : APIKEY_ERR_INVALID;
}

static int insert_key(struct apikey_store *s, const char *id, const struct new_key *k)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = check_metadata(s, k->metadata)) != 0)
		return rc;
	if (!(st = stmt(s, ST_INSERT_KEY)))
		return APIKEY_ERR_STORE;
	bind_text(st, 1, id);
	if (k->digest)
		sqlite3_bind_blob(st, 2, k->digest, DIGEST_LEN, SQLITE_STATIC);
	bind_text(st, 3, k->foreign_hash);
	bind_text(st, 4, k->hash_alg);
	bind_text(st, 5, k->hint);
	bind_text(st, 6, k->owner);
	bind_text(st, 7, k->name ? k->name : "");
	bind_text(st, 8, k->scopes);
	bind_text(st, 9, k->metadata ? k->metadata : "{}");
	sqlite3_bind_int64(st, 10, k->rate_limit);
	sqlite3_bind_int64(st, 11, k->created_at);
	bind_time(st, 12, k->expires_at);
	bind_text(st, 13, k->rotated_from);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	/* A CHECK on metadata or rate limit is a bad argument, not a clash. */
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_CHECK ? APIKEY_ERR_INVALID
		                                                                 : APIKEY_ERR_EXISTS;
	return store_err(s, rc, "insert key");
}

/* Generate a key, insert it; the raw key only ever sits in key_out. */
static int issue_key(struct apikey_store *s, struct new_key *k, char *key_out, size_t key_out_sz,
                     struct apikey_key_info *info)
{
	unsigned char digest[DIGEST_LEN];
	char id[APIKEY_ID_SIZE], hint[APIKEY_HINT_SIZE];
	struct key_record rec;
	int r;

	if (key_out_sz < APIKEY_KEY_MAX + 1)
		return APIKEY_ERR_TOO_LONG;
	if ((r = apikey_token_generate(&s->cfg.format, key_out, key_out_sz)) != 0 ||
	    (r = apikey_id_generate(id)) != 0 ||
	    (r = hmac_digest(s->mac, key_out, strlen(key_out), digest)) != 0)
		goto out;
	apikey_token_hint(&s->cfg.format, key_out, strlen(key_out), hint);
	k->digest = digest;
	k->hash_alg = "hmac-sha256";
	k->hint = hint;
	if ((r = insert_key(s, id, k)) != 0)
		goto out;
	if (info) {
		if ((r = store_lookup_id(s, id, &rec)) != 0)
			goto out;
		*info = rec.info;
	}
out:
	OPENSSL_cleanse(digest, sizeof(digest));
	if (r != 0)
		OPENSSL_cleanse(key_out, key_out_sz);
	return r;
}

int apikey_key_create(struct apikey_store *s, const struct apikey_create_params *p,
                      char *key_out, size_t key_out_sz, struct apikey_key_info *info)
{
	char scopes[APIKEY_SCOPES_SIZE];
	int64_t now = now_ms() / 1000;
	uint32_t rate = p->rate_limit ? p->rate_limit : s->cfg.default_rate_limit;
	struct new_key k = { 0 };
	int r;

	if (!owner_valid(p->owner) || !name_valid(p->name) || rate < APIKEY_RATE_MIN ||
	    rate > APIKEY_RATE_MAX || (p->expires_at && p->expires_at <= now) ||
	    (p->metadata && strlen(p->metadata) >= APIKEY_META_SIZE))
		return APIKEY_ERR_INVALID;
	if ((r = resolve_scopes(s, p->scopes, p->preset, scopes)) != 0)
		return r;
	k.owner = p->owner;
	k.name = p->name;
	k.scopes = scopes;
	k.metadata = p->metadata;
	k.created_at = now;
	k.expires_at = p->expires_at;
	k.rate_limit = rate;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	if ((r = issue_key(s, &k, key_out, key_out_sz, info)) != 0)
		goto fail;
	if ((r = store_event_add(s, now, info ? info->id : "", "created", "", p->source)) != 0)
		goto fail;
	if ((r = store_tx_commit(s)) != 0)
		goto fail_wipe;
	return 0;
fail:
	store_tx_rollback(s);
fail_wipe:
	OPENSSL_cleanse(key_out, key_out_sz);
	return r;
}

int apikey_key_get(struct apikey_store *s, const char *id, struct apikey_key_info *info)
{
	struct key_record rec;
	int r = store_lookup_id(s, id, &rec);

	if (r == 0)
		*info = rec.info;
	return r;
}

int apikey_key_list(struct apikey_store *s, const char *owner,
                    int (*fn)(void *ctx, const struct apikey_key_info *k), void *ctx)
{
	sqlite3_stmt *st = stmt(s, owner ? ST_LIST_OWNER : ST_LIST);
	struct key_record rec;
	int rc, r = 0;

	if (!st)
		return APIKEY_ERR_STORE;
	if (owner)
		bind_text(st, 1, owner);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_record(st, &rec);
		if ((r = fn(ctx, &rec.info)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "list keys");
	return r;
}

int apikey_key_revoke(struct apikey_store *s, const char *id, const char *source)
{
	struct key_record rec;
	int64_t now = now_ms() / 1000;
	sqlite3_stmt *st;
	int r;

	if ((r = store_tx_begin(s)) != 0)
		return r;
	if ((r = store_lookup_id(s, id, &rec)) != 0)
		goto fail;
	if (rec.info.revoked_at) {       /* already revoked: keep the first time */
		store_tx_rollback(s);
		return 0;
	}
	if (!(st = stmt(s, ST_REVOKE))) {
		r = APIKEY_ERR_STORE;
		goto fail;
	}
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	if ((r = exec_stmt(s, st, "revoke")) != 0 ||
	    (r = store_event_add(s, now, id, "revoked", "", source)) != 0)
		goto fail;
	return store_tx_commit(s);
fail:
	store_tx_rollback(s);
	return r;
}

int apikey_key_rotate(struct apikey_store *s, const char *id, int64_t grace_secs, const char *source,
                      char *key_out, size_t key_out_sz, struct apikey_key_info *new_info)
{
	struct apikey_key_info fresh;
	struct key_record old;
	int64_t now = now_ms() / 1000, old_expiry;
	struct new_key k = { 0 };
	sqlite3_stmt *st;
	int r;

	if (grace_secs < 0)
		return APIKEY_ERR_INVALID;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	if ((r = store_lookup_id(s, id, &old)) != 0)
		goto fail;
	/* Only a live key can hand on its rights. */
	if (old.info.revoked_at || old.info.rotated_to[0] ||
	    (old.info.expires_at && old.info.expires_at <= now)) {
		r = APIKEY_ERR_INVALID;
		goto fail;
	}
	k.owner = old.info.owner;
	k.name = old.info.name;
	k.scopes = old.info.scopes;
	k.metadata = old.info.metadata;
	k.rate_limit = old.info.rate_limit;
	k.created_at = now;
	k.expires_at = old.info.expires_at;
	k.rotated_from = old.info.id;
	if ((r = issue_key(s, &k, key_out, key_out_sz, &fresh)) != 0)
		goto fail;
	old_expiry = now + grace_secs;
	if (old.info.expires_at && old.info.expires_at < old_expiry)
		old_expiry = old.info.expires_at;
	if (!(st = stmt(s, ST_ROTATE_OLD))) {
		r = APIKEY_ERR_STORE;
		goto fail;
	}
	bind_text(st, 1, id);
	bind_text(st, 2, fresh.id);
	bind_time(st, 3, grace_secs == 0 ? now : 0);
	sqlite3_bind_int64(st, 4, old_expiry);
	if ((r = exec_stmt(s, st, "rotate")) != 0 ||
	    (r = store_event_add(s, now, id, "rotated", "", source)) != 0 ||
	    (r = store_event_add(s, now, fresh.id, "created", "", source)) != 0 ||
	    (r = store_tx_commit(s)) != 0)
		goto fail;
	if (new_info)
		*new_info = fresh;
	return 0;
fail:
	store_tx_rollback(s);
	OPENSSL_cleanse(key_out, key_out_sz);
	return r;
}

/* ---- presets, accounts, events ------------------------------------------------ */

static bool preset_name_valid(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len == 0 || len > 31)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '_'))
			return false;
	return true;
}

int apikey_preset_set(struct apikey_store *s, const char *name, const char *scopes)
{
	char norm[APIKEY_SCOPES_SIZE];
	sqlite3_stmt *st;
	int r;

	if (!preset_name_valid(name) || apikey_scopes_normalize(scopes, norm, sizeof(norm)) != 0 || !norm[0])
		return APIKEY_ERR_INVALID;
	if (s->readonly)
		return APIKEY_ERR_READONLY;
	if (!(st = stmt(s, ST_PRESET_SET)))
		return APIKEY_ERR_STORE;
	bind_text(st, 1, name);
	bind_text(st, 2, norm);
	r = exec_stmt(s, st, "set preset");
	return r;
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

int apikey_preset_remove(struct apikey_store *s, const char *name)
{
	sqlite3_stmt *st;
	int r;

	if (s->readonly)
		return APIKEY_ERR_READONLY;
	if (!(st = stmt(s, ST_PRESET_DEL)))
		return APIKEY_ERR_STORE;
	bind_text(st, 1, name);
	if ((r = exec_stmt(s, st, "remove preset")) != 0)
		return r;
	return sqlite3_changes(s->db) ? 0 : APIKEY_ERR_NOT_FOUND;
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

int apikey_account_set(struct apikey_store *s, const char *owner, const char *plan, int active)
{
	int64_t now = now_ms() / 1000;
	sqlite3_stmt *st;
	int r;

	if (!owner_valid(owner) || (plan && strlen(plan) >= APIKEY_PLAN_SIZE))
		return APIKEY_ERR_INVALID;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	if (!(st = stmt(s, ST_ACCOUNT_SET))) {
		r = APIKEY_ERR_STORE;
		goto fail;
	}
	bind_text(st, 1, owner);
	bind_text(st, 2, plan);
	if (active >= 0)
		sqlite3_bind_int(st, 3, active ? 1 : 0);
	if ((r = exec_stmt(s, st, "set account")) != 0 ||
	    (r = store_event_add(s, now, "", active == 0 ? "account-suspended" : "account-updated",
	                         owner, "")) != 0)
		goto fail;
	return store_tx_commit(s);
fail:
	store_tx_rollback(s);
	return r;
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

int apikey_event_list(struct apikey_store *s, const char *key_id, unsigned limit,
                      int (*fn)(void *ctx, const struct apikey_event *e), void *ctx)
{
	sqlite3_stmt *st = stmt(s, key_id ? ST_EVENTS_KEY : ST_EVENTS);
	struct apikey_event e;
	int rc, r = 0;

	if (!st)
		return APIKEY_ERR_STORE;
	sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
	if (key_id)
		bind_text(st, 2, key_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e.at = sqlite3_column_int64(st, 0);
		col_str(st, 1, e.key_id, sizeof(e.key_id));
		col_str(st, 2, e.event, sizeof(e.event));
		col_str(st, 3, e.reason, sizeof(e.reason));
		col_str(st, 4, e.source, sizeof(e.source));
		if ((r = fn(ctx, &e)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_err(s, rc, "list events");
	return r;
}

int apikey_prune(struct apikey_store *s, int64_t before, unsigned *keys_removed, unsigned *events_removed)
{
	static const char *const sql[] = {
		"DELETE FROM events WHERE at < ?1",
		"CREATE TEMP TABLE IF NOT EXISTS gone(id TEXT PRIMARY KEY)",
		"DELETE FROM temp.gone",
		"INSERT INTO temp.gone SELECT id FROM keys WHERE revoked_at < ?1 OR expires_at < ?1",
		"DELETE FROM usage WHERE key_id IN (SELECT id FROM temp.gone)",
		"DELETE FROM ratelimit WHERE key_id IN (SELECT id FROM temp.gone)",
		"DELETE FROM keys WHERE id IN (SELECT id FROM temp.gone)",
	};
	int r;

	*keys_removed = *events_removed = 0;
	if ((r = store_tx_begin(s)) != 0)
		return r;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL);
		if (rc != SQLITE_OK) {
			r = store_err(s, rc, "prune");
			goto fail;
		}
		if (sqlite3_bind_parameter_count(st))
			sqlite3_bind_int64(st, 1, before);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			r = store_err(s, rc, "prune");
			goto fail;
		}
		if (i == 0)
			*events_removed = (unsigned)sqlite3_changes(s->db);
		if (i == 6)
			*keys_removed = (unsigned)sqlite3_changes(s->db);
	}
	return store_tx_commit(s);
fail:
	store_tx_rollback(s);
	return r;
}

/* ---- import ------------------------------------------------------------------- */

int apikey_import_begin(struct apikey_store *s)
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
	if ((r = store_tx_begin(s)) == 0)
		s->in_batch = true;
	return r;
}

int apikey_import_commit(struct apikey_store *s)
{
	if (!s->in_batch)
		return APIKEY_ERR_INVALID;
	s->in_batch = false;
	s->foreign_hint_lens = -1;
	return store_tx_commit(s);
}

void apikey_import_rollback(struct apikey_store *s)
{
	s->in_batch = false;
	s->foreign_hint_lens = -1;
	store_tx_rollback(s);
}

/* The checks of an import line; the normalised scopes go to scopes. */
static int import_validate(const struct apikey_import_params *p, char scopes[APIKEY_SCOPES_SIZE],
                           const char **why)
{
	size_t hlen = p->hint ? strlen(p->hint) : 0;
	const char *dummy;

	if (!why)
		why = &dummy;
	if (!p->hash || strlen(p->hash) >= FOREIGN_HASH_MAX || !foreign_alg(p->hash))
		return *why = "hash is not sha256:<64 hex>, bcrypt ($2a$/$2b$/$2y$) or $argon2id$",
		       APIKEY_ERR_INVALID;
	if (hlen < IMPORT_HINT_MIN || hlen > IMPORT_HINT_MAX)
		return *why = "hint must be the first 6 to 16 characters of the key", APIKEY_ERR_INVALID;
	for (size_t i = 0; i < hlen; i++)
		if ((unsigned char)p->hint[i] <= ' ' || (unsigned char)p->hint[i] >= 0x7f)
			return *why = "hint must be printable ASCII", APIKEY_ERR_INVALID;
	if (!owner_valid(p->owner))
		return *why = "owner must be 1-63 characters without blanks, ':' or ','", APIKEY_ERR_INVALID;
	if (!name_valid(p->name))
		return *why = "name must be printable and under 128 bytes", APIKEY_ERR_INVALID;
	if (p->rate_limit && (p->rate_limit < APIKEY_RATE_MIN || p->rate_limit > APIKEY_RATE_MAX))
		return *why = "rate_limit must be 1..1000000", APIKEY_ERR_INVALID;
	if (p->metadata && strlen(p->metadata) >= APIKEY_META_SIZE)
		return *why = "metadata longer than 2047 bytes", APIKEY_ERR_INVALID;
	if (apikey_scopes_normalize(p->scopes, scopes, APIKEY_SCOPES_SIZE) != 0 || !scopes[0])
		return *why = "scopes must be a non-empty list of resource:action scopes", APIKEY_ERR_INVALID;
	return 0;
}

int apikey_import_check(const struct apikey_import_params *p, const char **why)
{
	char scopes[APIKEY_SCOPES_SIZE];

	return import_validate(p, scopes, why);
}

int apikey_import_one(struct apikey_store *s, const struct apikey_import_params *p,
                      struct apikey_key_info *info)
{
	char scopes[APIKEY_SCOPES_SIZE], id[APIKEY_ID_SIZE];
	uint32_t rate = p->rate_limit ? p->rate_limit : s->cfg.default_rate_limit;
	struct new_key k = { 0 };
	struct key_record rec;
	const char *alg;
	int r;

	if ((r = import_validate(p, scopes, NULL)) != 0)
		return r;
	alg = foreign_alg(p->hash);
	if ((r = apikey_id_generate(id)) != 0)
		return r;
	k.owner = p->owner;
	k.name = p->name;
	k.scopes = scopes;
	k.metadata = p->metadata;
	k.foreign_hash = p->hash;
	k.hash_alg = alg;
	k.hint = p->hint;
	k.created_at = now_ms() / 1000;
	k.expires_at = p->expires_at;
	k.rate_limit = rate;
	if ((r = insert_key(s, id, &k)) != 0)
		return r;
	if (info) {
		if ((r = store_lookup_id(s, id, &rec)) != 0)
			return r;
		*info = rec.info;
	}
	return 0;
}

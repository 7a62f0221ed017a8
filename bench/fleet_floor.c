/* fleet_floor.c — the bare floor under fleet mode (issue 11): what one
 * PostgreSQL, libpq LISTEN/NOTIFY and SQLite replicas cost with nothing of
 * ours in between, so the product's numbers can be read against it.
 *
 *   fleet-floor propagate [opts] CONNINFO DIR
 *     N follower processes, each with its own SQLite replica (WAL) in DIR,
 *     each LISTENing on a libevent loop with libpq's non-blocking API and
 *     applying change-log rows (full row images) in one local transaction.
 *     A writer revokes keys one at a time (log-head bump + UPDATE + change
 *     row + NOTIFY in one transaction) and, from the moment its COMMIT
 *     returns, probes every replica through its own read-only SQLite
 *     connection until the key reads as revoked: that is the latency
 *     reported (what a verifier on that host would see), next to the
 *     follower's own "my COMMIT returned" time.
 *       -f N      followers (8)          -n N   revocations (500)
 *       -s MODE   replica synchronous: normal | full (normal)
 *       -m MODE   fetch: NOTIFY wakes, the follower SELECTs the log;
 *                 payload: the row image rides in the NOTIFY payload and
 *                 is applied without a round trip when it is the next seq
 *       -k N      keys in the upstream (1000)
 *       -p US     reader poll interval in µs, 0 = spin (0)
 *       -g MS     pause between revocations (5)
 *
 *   fleet-floor fill -k N CONNINFO        the upstream schema with N keys
 *   fleet-floor initsync [opts] CONNINFO DIR
 *     An empty replica from the upstream's keys: one REPEATABLE READ
 *     snapshot, COPY (binary) out of PostgreSQL into one prepared INSERT in
 *     one SQLite transaction.
 *       -i after   tables without indexes, indexes built after (default)
 *       -i during  the product's schema (PRIMARY KEY, UNIQUE) in place
 *       -j off|wal journal while building (off: a new file nobody reads yet)
 *       -o         COPY rows ordered by id (the primary key appends in order)
 *       -t N       SQLite sorter threads for the index build (PRAGMA threads)
 *
 *   fleet-floor resync CONNINFO DIR
 *     The replica DIR/initsync.db (left by initsync) brought to a fresh
 *     snapshot in place, in one SQLite transaction: a merge join of the
 *     upstream's ids with the replica's, rows that differ upserted, rows
 *     the upstream lost deleted (what a replica does when the log no
 *     longer reaches back to it; readers see the old state until COMMIT).
 *
 * Nothing here is a test: it prints numbers. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#define MAX_FOLLOWERS 64
#define MAX_REVOKES 20000
#define FETCH_LIMIT "1000"
#define CHANNEL "apikey_changes"
#define PROBE_TIMEOUT_NS 5000000000LL   /* a revocation not seen in 5 s is a miss */
#define NOT_SEEN INT64_MAX
#define PATH_SZ 512

/* ---- small helpers ---------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, const char *why) __attribute__((noreturn));
static void die(const char *what, const char *why)
{
	fprintf(stderr, "fleet-floor: %s: %s\n", what, why ? why : "failed");
	exit(1);
}

static void pg_ok(PGconn *c, PGresult *r, const char *what)
{
	ExecStatusType s = PQresultStatus(r);

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		fprintf(stderr, "fleet-floor: %s: %s", what, PQerrorMessage(c));
		exit(1);
	}
}

static void pg_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	pg_ok(c, r, sql);
	PQclear(r);
}

static PGconn *pg_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
		die("connect", PQerrorMessage(c));
	return c;
}

static void sq_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die(sql, err);
}

static sqlite3_stmt *sq_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		die(sql, sqlite3_errmsg(db));
	return st;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in ms. */
static double pct_ms(const int64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return (double)v[i - 1] / 1e6;
}

static void print_dist(const char *label, int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	printf("  %-34s p50 %7.3f ms  p90 %7.3f ms  p99 %7.3f ms  max %7.3f ms  (n=%zu)\n", label,
	       pct_ms(v, n, 50), pct_ms(v, n, 90), pct_ms(v, n, 99), n ? (double)v[n - 1] / 1e6 : 0, n);
}

/* ---- schemas ---------------------------------------------------------------- */

/* The upstream: keys as the product stores them, a one-row log head whose
 * row lock makes commit order and seq order the same, the change log with
 * full row images. */
static const char *const pg_schema =
	"DROP TABLE IF EXISTS changes, log_head, keys;"
	"CREATE TABLE keys(id text NOT NULL, hash bytea, hint text NOT NULL, owner text NOT NULL,"
	" name text NOT NULL DEFAULT '', scopes text NOT NULL, metadata text NOT NULL DEFAULT '{}',"
	" rate_limit integer NOT NULL, created_at bigint NOT NULL, expires_at bigint, revoked_at bigint);"
	"CREATE TABLE log_head(seq bigint NOT NULL);"
	"INSERT INTO log_head VALUES (0);"
	"CREATE TABLE changes(seq bigint PRIMARY KEY, tbl text NOT NULL, image jsonb);";

#define KEY_COLS "id, hash, hint, owner, name, scopes, metadata, rate_limit, created_at, expires_at, revoked_at"
#define KEY_NCOLS 11

/* The replica: the product's keys table and generation trigger. */
static const char *const sq_tables_indexed =
	"CREATE TABLE keys(id TEXT PRIMARY KEY, hash BLOB UNIQUE, hint TEXT NOT NULL, owner TEXT NOT NULL,"
	" name TEXT NOT NULL DEFAULT '', scopes TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',"
	" rate_limit INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER);"
	"CREATE INDEX keys_owner ON keys(owner);";
static const char *const sq_tables_bare =
	"CREATE TABLE keys(id TEXT NOT NULL, hash BLOB, hint TEXT NOT NULL, owner TEXT NOT NULL,"
	" name TEXT NOT NULL DEFAULT '', scopes TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',"
	" rate_limit INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER);";
static const char *const sq_indexes_after =
	"CREATE UNIQUE INDEX keys_id ON keys(id);"
	"CREATE UNIQUE INDEX keys_hash ON keys(hash);"
	"CREATE INDEX keys_owner ON keys(owner);";
static const char *const sq_meta =
	"CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT INTO meta VALUES('generation', 0), ('applied_seq', 0);";
/* created after a snapshot: a new file has no verifier to tell */
static const char *const sq_triggers =
	"CREATE TRIGGER keys_i AFTER INSERT ON keys BEGIN UPDATE meta SET value = value + 1 WHERE name = 'generation'; END;"
	"CREATE TRIGGER keys_u AFTER UPDATE ON keys BEGIN UPDATE meta SET value = value + 1 WHERE name = 'generation'; END;";

static void fill_upstream(const char *conninfo, long keys)
{
	PGconn *c = pg_connect(conninfo);
	char sql[1024];
	int64_t t0 = now_ns();

	pg_exec(c, "SET client_min_messages = warning");
	pg_exec(c, pg_schema);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO keys SELECT 'key_' || substr(md5(i::text), 1, 16),"
	         " sha256(convert_to(i::text, 'UTF8')), 'ak_' || substr(md5(i::text), 17, 4),"
	         " 'user' || (i %% 1000), 'key ' || i, 'api:read,api:write', '{\"team\":\"bench\"}', 60,"
	         " 1764000000 + i, NULL, NULL FROM generate_series(1, %ld) i", keys);
	pg_exec(c, sql);
	pg_exec(c, "ALTER TABLE keys ADD PRIMARY KEY (id), ADD UNIQUE (hash)");
	pg_exec(c, "VACUUM (FREEZE, ANALYZE) keys");
	fprintf(stderr, "fleet-floor: upstream filled with %ld keys in %.1f s\n", keys,
	        (double)(now_ns() - t0) / 1e9);
	PQfinish(c);
}

/* ---- snapshot: COPY (binary) out of PostgreSQL into SQLite ------------------ */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* One COPY BINARY tuple (after the file header) bound to ins: text/bytea
 * columns as they are, integer columns big-endian. */
static void bind_tuple(sqlite3_stmt *ins, const unsigned char *p, size_t n)
{
	static const char kind[KEY_NCOLS] = { 't', 'b', 't', 't', 't', 't', 't', '4', '8', '8', '8' };
	size_t off = 2;

	if (n < 2 || (int16_t)((p[0] << 8) | p[1]) != KEY_NCOLS)
		die("copy", "unexpected tuple");
	for (int i = 0; i < KEY_NCOLS; i++) {
		int32_t len;

		if (off + 4 > n)
			die("copy", "short tuple");
		len = (int32_t)be32(p + off);
		off += 4;
		if (len < 0) {
			sqlite3_bind_null(ins, i + 1);
			continue;
		}
		if (off + (size_t)len > n)
			die("copy", "short field");
		switch (kind[i]) {
		case 't': sqlite3_bind_text(ins, i + 1, (const char *)p + off, len, SQLITE_STATIC); break;
		case 'b': sqlite3_bind_blob(ins, i + 1, p + off, len, SQLITE_STATIC); break;
		case '4': sqlite3_bind_int64(ins, i + 1, (int32_t)be32(p + off)); break;
		default:  sqlite3_bind_int64(ins, i + 1, be64(p + off)); break;
		}
		off += (size_t)len;
	}
}

static void copy_row(sqlite3 *db, sqlite3_stmt *ins, const unsigned char *p, size_t n)
{
	bind_tuple(ins, p, n);
	if (sqlite3_step(ins) != SQLITE_DONE)
		die("insert", sqlite3_errmsg(db));
	sqlite3_reset(ins);
}

/* Run a COPY ... TO STDOUT (FORMAT binary) and hand each tuple to fn. */
static long copy_each(PGconn *c, const char *sql, void (*fn)(void *ctx, const unsigned char *p, size_t n),
                      void *ctx)
{
	static const char sig[11] = "PGCOPY\n\377\r\n";
	PGresult *r = PQexec(c, sql);
	char *buf;
	int n, header = 1;
	long rows = 0;

	if (PQresultStatus(r) != PGRES_COPY_OUT)
		die("copy", PQerrorMessage(c));
	PQclear(r);
	while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
		const unsigned char *p = (const unsigned char *)buf;
		size_t len = (size_t)n;

		if (header) {       /* signature, flags, extension length (+ extension) */
			if (len < 19 || memcmp(p, sig, 11) != 0)
				die("copy", "bad binary header");
			size_t ext = be32(p + 15);
			if (len < 19 + ext)
				die("copy", "bad binary header");
			p += 19 + ext;
			len -= 19 + ext;
			header = 0;
		}
		if (len >= 2 && !(p[0] == 0xff && p[1] == 0xff)) {     /* not the trailer */
			fn(ctx, p, len);
			rows++;
		}
		PQfreemem(buf);
	}
	if (n == -2)
		die("copy", PQerrorMessage(c));
	while ((r = PQgetResult(c)) != NULL) {
		pg_ok(c, r, "copy");
		PQclear(r);
	}
	return rows;
}

struct insert_ctx { sqlite3 *db; sqlite3_stmt *ins; };

static void insert_tuple(void *ctx, const unsigned char *p, size_t n)
{
	struct insert_ctx *x = ctx;

	copy_row(x->db, x->ins, p, n);
}

struct snap_times { int64_t copy_ns, index_ns, finish_ns; long rows; int64_t seq; };

/*
 * The replica at db from one consistent snapshot of the upstream.  The
 * caller has created the tables; with indexes_after set they have no
 * indexes yet and get them here.  Returns the log position of the snapshot.
 */
static void snapshot(PGconn *c, sqlite3 *db, int indexes_after, int order_by_id, struct snap_times *t)
{
	struct insert_ctx x = { db, sq_prepare(db, "INSERT INTO keys(" KEY_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?)") };
	sqlite3_stmt *ins = x.ins;
	PGresult *r;
	int64_t t0 = now_ns(), t1;

	memset(t, 0, sizeof(*t));
	pg_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	r = PQexec(c, "SELECT seq FROM log_head");
	pg_ok(c, r, "log head");
	t->seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	sq_exec(db, "BEGIN");
	t->rows = copy_each(c, order_by_id ? "COPY (SELECT " KEY_COLS " FROM keys ORDER BY id COLLATE \"C\")"
	                                     " TO STDOUT (FORMAT binary)"
	                                   : "COPY (SELECT " KEY_COLS " FROM keys) TO STDOUT (FORMAT binary)",
	                    insert_tuple, &x);
	pg_exec(c, "COMMIT");
	sqlite3_finalize(ins);
	t1 = now_ns();
	t->copy_ns = t1 - t0;
	if (indexes_after)
		sq_exec(db, sq_indexes_after);
	sq_exec(db, sq_triggers);
	{
		char sql[96];
		snprintf(sql, sizeof(sql), "UPDATE meta SET value = %" PRId64 " WHERE name = 'applied_seq'", t->seq);
		sq_exec(db, sql);
	}
	sq_exec(db, "COMMIT");
	t->index_ns = now_ns() - t1;
}

/* ---- follower --------------------------------------------------------------- */

struct shared {
	atomic_int ready, failed;
	int64_t t_commit[MAX_REVOKES][MAX_FOLLOWERS];   /* follower's COMMIT returned, ns */
};

struct follower {
	int idx, payload_mode;
	PGconn *pg;
	sqlite3 *db;
	sqlite3_stmt *upsert, *set_seq, *begin, *commit;
	struct event_base *base;
	struct event *ev_read, *ev_write, *ev_term;
	int64_t applied;
	int busy, pending;
	struct shared *sh;
	/* rows of the current batch: (seq, image) kept until applied */
	size_t nrows, cap;
	int64_t *seqs;
	char **images;
};

static void batch_add(struct follower *f, int64_t seq, const char *image, size_t len)
{
	if (f->nrows == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		f->seqs = realloc(f->seqs, f->cap * sizeof(*f->seqs));
		f->images = realloc(f->images, f->cap * sizeof(*f->images));
		if (!f->seqs || !f->images)
			die("batch", "out of memory");
	}
	f->seqs[f->nrows] = seq;
	f->images[f->nrows] = strndup(image, len);
	if (!f->images[f->nrows])
		die("batch", "out of memory");
	f->nrows++;
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Bind a jsonb row image (to_jsonb(keys.*)) to the upsert. */
static void bind_image(struct follower *f, const char *image)
{
	static const char *const col[KEY_NCOLS] = { "id", "hash", "hint", "owner", "name", "scopes",
		"metadata", "rate_limit", "created_at", "expires_at", "revoked_at" };
	json_error_t err;
	json_t *o = json_loads(image, 0, &err);
	unsigned char hash[64];

	if (!o || !json_is_object(o))
		die("row image", err.text);
	for (int i = 0; i < KEY_NCOLS; i++) {
		json_t *v = json_object_get(o, col[i]);

		if (!v || json_is_null(v)) {
			sqlite3_bind_null(f->upsert, i + 1);
		} else if (json_is_integer(v)) {
			sqlite3_bind_int64(f->upsert, i + 1, json_integer_value(v));
		} else if (i == 1) {   /* bytea as "\x<hex>" */
			const char *s = json_string_value(v);
			size_t n = s ? strlen(s) : 0, m = 0;

			if (n < 2 || s[0] != '\\' || s[1] != 'x' || (n - 2) % 2 || (n - 2) / 2 > sizeof(hash))
				die("row image", "bad hash");
			for (size_t j = 2; j < n; j += 2) {
				int hi = hexval(s[j]), lo = hexval(s[j + 1]);
				if (hi < 0 || lo < 0)
					die("row image", "bad hash");
				hash[m++] = (unsigned char)(hi << 4 | lo);
			}
			sqlite3_bind_blob(f->upsert, i + 1, hash, (int)m, SQLITE_TRANSIENT);
		} else if (json_is_string(v)) {
			sqlite3_bind_text(f->upsert, i + 1, json_string_value(v), -1, SQLITE_TRANSIENT);
		} else {
			die("row image", col[i]);
		}
	}
	json_decref(o);
}

static void step(struct follower *f, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		die("apply", sqlite3_errmsg(f->db));
	sqlite3_reset(st);
}

/* Apply the batch's rows that continue the log, in one local transaction. */
static void apply_batch(struct follower *f)
{
	int64_t first = f->applied, t;
	size_t used = 0;

	if (f->nrows == 0)
		return;
	step(f, f->begin);
	for (size_t i = 0; i < f->nrows; i++) {
		if (f->seqs[i] != f->applied + 1)
			continue;        /* a duplicate, or a gap: fetched later */
		bind_image(f, f->images[i]);
		step(f, f->upsert);
		f->applied = f->seqs[i];
		used++;
	}
	sqlite3_bind_int64(f->set_seq, 1, f->applied);
	step(f, f->set_seq);
	step(f, f->commit);
	t = now_ns();
	for (int64_t s = first + 1; s <= f->applied; s++)
		if (s >= 1 && s <= MAX_REVOKES)
			f->sh->t_commit[s - 1][f->idx] = t;
	for (size_t i = 0; i < f->nrows; i++)
		free(f->images[i]);
	f->nrows = 0;
	(void)used;
}

static void want_write(struct follower *f)
{
	int r = PQflush(f->pg);

	if (r < 0)
		die("flush", PQerrorMessage(f->pg));
	if (r == 1)
		event_add(f->ev_write, NULL);
}

static void send_fetch(struct follower *f)
{
	char seq[24];
	const char *params[1] = { seq };

	snprintf(seq, sizeof(seq), "%" PRId64, f->applied);
	if (!PQsendQueryPrepared(f->pg, "fetch", 1, params, NULL, NULL, 0))
		die("fetch", PQerrorMessage(f->pg));
	f->busy = 1;
	f->pending = 0;
	want_write(f);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	want_write(arg);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct follower *f = arg;
	PGnotify *n;

	if (!PQconsumeInput(f->pg))
		die("upstream", PQerrorMessage(f->pg));
	while (f->busy && !PQisBusy(f->pg)) {
		PGresult *r = PQgetResult(f->pg);

		if (!r) {
			f->busy = 0;
			apply_batch(f);
			break;
		}
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("fetch", PQresultErrorMessage(r));
		for (int i = 0; i < PQntuples(r); i++)
			batch_add(f, strtoll(PQgetvalue(r, i, 0), NULL, 10), PQgetvalue(r, i, 1),
			          (size_t)PQgetlength(r, i, 1));
		PQclear(r);
	}
	while ((n = PQnotifies(f->pg)) != NULL) {
		char *end;
		int64_t seq = strtoll(n->extra, &end, 10);

		if (seq > f->applied) {
			if (f->payload_mode && !f->busy && *end == ' ' && seq == f->applied + 1 + (int64_t)f->nrows)
				batch_add(f, seq, end + 1, strlen(end + 1));
			else
				f->pending = 1;
		}
		PQfreemem(n);
	}
	if (!f->busy) {
		apply_batch(f);      /* payload rows, if any */
		if (f->pending)
			send_fetch(f);
	}
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(((struct follower *)arg)->base);
}

static sqlite3 *replica_open(const char path[PATH_SZ], int sync_full, int create_indexed)
{
	sqlite3 *db;
	char sql[128], aux[PATH_SZ + 8];

	unlink(path);
	snprintf(aux, sizeof(aux), "%s-wal", path);
	unlink(aux);
	snprintf(aux, sizeof(aux), "%s-shm", path);
	unlink(aux);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 2000);
	sq_exec(db, "PRAGMA journal_mode = WAL");
	snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s", sync_full ? "FULL" : "NORMAL");
	sq_exec(db, sql);
	if (create_indexed) {
		sq_exec(db, sq_tables_indexed);
		sq_exec(db, sq_meta);
	}
	return db;
}

static void follower_main(int idx, const char *conninfo, const char *dir, int sync_full, int payload_mode,
                          struct shared *sh)
{
	struct follower f = { .idx = idx, .payload_mode = payload_mode, .sh = sh };
	struct snap_times st;
	char path[PATH_SZ];
	PGresult *r;

	snprintf(path, sizeof(path), "%s/replica-%d.db", dir, idx);
	f.db = replica_open(path, sync_full, 1);
	f.pg = pg_connect(conninfo);
	/* LISTEN before the snapshot: nothing committed after it is missed. */
	pg_exec(f.pg, "LISTEN " CHANNEL);
	snapshot(f.pg, f.db, 0, 0, &st);
	f.applied = st.seq;
	r = PQprepare(f.pg, "fetch", "SELECT seq, image::text FROM changes WHERE seq > $1 ORDER BY seq LIMIT "
	              FETCH_LIMIT, 1, NULL);
	pg_ok(f.pg, r, "prepare");
	PQclear(r);
	f.upsert = sq_prepare(f.db, "INSERT INTO keys(" KEY_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?)"
	                      " ON CONFLICT(id) DO UPDATE SET hash = excluded.hash, hint = excluded.hint,"
	                      " owner = excluded.owner, name = excluded.name, scopes = excluded.scopes,"
	                      " metadata = excluded.metadata, rate_limit = excluded.rate_limit,"
	                      " created_at = excluded.created_at, expires_at = excluded.expires_at,"
	                      " revoked_at = excluded.revoked_at");
	f.set_seq = sq_prepare(f.db, "UPDATE meta SET value = ?1 WHERE name = 'applied_seq'");
	f.begin = sq_prepare(f.db, "BEGIN IMMEDIATE");
	f.commit = sq_prepare(f.db, "COMMIT");
	if (PQsetnonblocking(f.pg, 1) != 0)
		die("nonblocking", PQerrorMessage(f.pg));
	f.base = event_base_new();
	f.ev_read = event_new(f.base, PQsocket(f.pg), EV_READ | EV_PERSIST, on_read, &f);
	f.ev_write = event_new(f.base, PQsocket(f.pg), EV_WRITE, on_write, &f);
	f.ev_term = evsignal_new(f.base, SIGTERM, on_term, &f);
	if (!f.base || !f.ev_read || !f.ev_write || !f.ev_term)
		die("libevent", "setup");
	event_add(f.ev_read, NULL);
	event_add(f.ev_term, NULL);
	send_fetch(&f);          /* anything committed between snapshot and now */
	atomic_fetch_add(&sh->ready, 1);
	event_base_dispatch(f.base);
	event_free(f.ev_term);
	event_free(f.ev_write);
	event_free(f.ev_read);
	event_base_free(f.base);
	PQfinish(f.pg);
	sqlite3_finalize(f.upsert);
	sqlite3_finalize(f.set_seq);
	sqlite3_finalize(f.begin);
	sqlite3_finalize(f.commit);
	sqlite3_close(f.db);
	free(f.seqs);
	free(f.images);
	exit(0);
}

/* ---- writer + reader probes -------------------------------------------------- */

struct prop_opts { int followers, revokes, sync_full, payload_mode, poll_us, gap_ms; long keys; };

static void propagate(const char *conninfo, const char *dir, const struct prop_opts *o)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[MAX_FOLLOWERS];
	sqlite3 *rd[MAX_FOLLOWERS];
	sqlite3_stmt *probe[MAX_FOLLOWERS];
	int64_t *seen = calloc((size_t)o->revokes * (size_t)o->followers, sizeof(int64_t));
	int64_t *commit = calloc((size_t)o->revokes * (size_t)o->followers, sizeof(int64_t));
	int64_t *all = calloc((size_t)o->revokes, sizeof(int64_t));
	int64_t *wcommit = calloc((size_t)o->revokes, sizeof(int64_t));
	int64_t *t0s = calloc((size_t)o->revokes, sizeof(int64_t));
	size_t ns = 0, nc = 0, na = 0, missed = 0;
	PGconn *w;
	PGresult *r;
	char **ids;
	struct timespec gap = { o->gap_ms / 1000, (long)(o->gap_ms % 1000) * 1000000 };
	struct timespec poll_pause = { 0, (long)o->poll_us * 1000 };

	if (sh == MAP_FAILED || !seen || !commit || !all || !wcommit || !t0s)
		die("memory", strerror(errno));
	fill_upstream(conninfo, o->keys);
	w = pg_connect(conninfo);
	/* the keys to revoke, in a random order */
	r = PQexec(w, "SELECT id FROM keys ORDER BY random()");
	pg_ok(w, r, "ids");
	if (PQntuples(r) < o->revokes)
		die("keys", "fewer keys than revocations");
	ids = calloc((size_t)o->revokes, sizeof(*ids));
	for (int i = 0; i < o->revokes; i++)
		ids[i] = strdup(PQgetvalue(r, i, 0));
	PQclear(r);
	/* no connection across fork: a child's PQfinish would end the parent's */
	PQfinish(w);
	fflush(NULL);
	for (int i = 0; i < o->followers; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork", strerror(errno));
		if (pids[i] == 0)
			follower_main(i, conninfo, dir, o->sync_full, o->payload_mode, sh);
	}
	w = pg_connect(conninfo);
	for (int64_t t0 = now_ns(); atomic_load(&sh->ready) < o->followers; ) {
		int st;
		if (waitpid(-1, &st, WNOHANG) > 0 || now_ns() - t0 > 60000000000LL)
			die("followers", "did not start");
		usleep(1000);
	}
	for (int i = 0; i < o->followers; i++) {
		char path[PATH_SZ];

		snprintf(path, sizeof(path), "%s/replica-%d.db", dir, i);
		if (sqlite3_open_v2(path, &rd[i], SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
			die(path, sqlite3_errmsg(rd[i]));
		probe[i] = sq_prepare(rd[i], "SELECT revoked_at IS NOT NULL FROM keys WHERE id = ?1");
	}
	r = PQprepare(w, "head", "UPDATE log_head SET seq = seq + 1 RETURNING seq", 0, NULL);
	pg_ok(w, r, "prepare");
	PQclear(r);
	r = PQprepare(w, "revoke", "UPDATE keys SET revoked_at = extract(epoch FROM now())::bigint"
	              " WHERE id = $1 RETURNING to_jsonb(keys.*)::text", 1, NULL);
	pg_ok(w, r, "prepare");
	PQclear(r);
	r = PQprepare(w, "log", "INSERT INTO changes(seq, tbl, image) VALUES ($1, 'keys', $2::jsonb)", 2, NULL);
	pg_ok(w, r, "prepare");
	PQclear(r);
	r = PQprepare(w, "notify", "SELECT pg_notify('" CHANNEL "', $1)", 1, NULL);
	pg_ok(w, r, "prepare");
	PQclear(r);

	for (int i = 0; i < o->revokes; i++) {
		const char *p[2];
		char seq[24], *image, *payload;
		int64_t t0, tw, left = o->followers;

		nanosleep(&gap, NULL);
		for (int j = 0; j < o->followers; j++)
			seen[(size_t)i * o->followers + j] = NOT_SEEN;
		tw = now_ns();
		pg_exec(w, "BEGIN");
		r = PQexecPrepared(w, "head", 0, NULL, NULL, NULL, 0);
		pg_ok(w, r, "log head");
		snprintf(seq, sizeof(seq), "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
		p[0] = ids[i];
		r = PQexecPrepared(w, "revoke", 1, p, NULL, NULL, 0);
		pg_ok(w, r, "revoke");
		if (PQntuples(r) != 1)
			die("revoke", "no such key");
		image = strdup(PQgetvalue(r, 0, 0));
		PQclear(r);
		p[0] = seq;
		p[1] = image;
		r = PQexecPrepared(w, "log", 2, p, NULL, NULL, 0);
		pg_ok(w, r, "change log");
		PQclear(r);
		if (asprintf(&payload, o->payload_mode ? "%s %s" : "%s", seq, image) < 0)
			die("payload", "out of memory");
		p[0] = payload;
		r = PQexecPrepared(w, "notify", 1, p, NULL, NULL, 0);
		pg_ok(w, r, "notify");
		PQclear(r);
		free(payload);
		free(image);
		pg_exec(w, "COMMIT");
		t0 = now_ns();
		t0s[i] = t0;
		wcommit[i] = t0 - tw;
		if (strtoll(seq, NULL, 10) != i + 1)
			die("seq", "the log did not start empty");
		/* The reader check: each replica read as a verifier would. */
		while (left > 0 && now_ns() - t0 < PROBE_TIMEOUT_NS) {
			for (int j = 0; j < o->followers; j++) {
				int64_t *s = &seen[(size_t)i * o->followers + j];
				int rc;

				if (*s != NOT_SEEN)
					continue;
				sqlite3_bind_text(probe[j], 1, ids[i], -1, SQLITE_STATIC);
				rc = sqlite3_step(probe[j]);
				if (rc == SQLITE_ROW && sqlite3_column_int(probe[j], 0) == 1) {
					*s = now_ns() - t0;
					left--;
				} else if (rc != SQLITE_ROW && rc != SQLITE_DONE && rc != SQLITE_BUSY) {
					die("probe", sqlite3_errmsg(rd[j]));
				}
				sqlite3_reset(probe[j]);
			}
			if (left > 0 && o->poll_us > 0)
				nanosleep(&poll_pause, NULL);
		}
		missed += (size_t)left;
	}
	for (int i = 0; i < o->followers; i++)
		kill(pids[i], SIGTERM);
	for (int i = 0; i < o->followers; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			atomic_fetch_add(&sh->failed, 1);
	}
	for (int i = 0; i < o->revokes; i++) {
		int64_t worst = 0;

		for (int j = 0; j < o->followers; j++) {
			int64_t s = seen[(size_t)i * o->followers + j], c = sh->t_commit[i][j];
			if (s == NOT_SEEN) {
				worst = NOT_SEEN;
				continue;
			}
			seen[ns++] = s;
			if (worst != NOT_SEEN && s > worst)
				worst = s;
			if (c)      /* may precede t0: NOTIFY goes out before COMMIT's reply */
				commit[nc++] = c - t0s[i];
		}
		if (worst != NOT_SEEN)
			all[na++] = worst;
	}
	printf("propagate: %d followers, %d revocations, replicas synchronous=%s, %s, reader %s\n",
	       o->followers, o->revokes, o->sync_full ? "FULL" : "NORMAL",
	       o->payload_mode ? "row image in the NOTIFY payload" : "NOTIFY wakes, follower fetches the log",
	       o->poll_us ? "polls" : "spins");
	print_dist("writer: BEGIN..COMMIT returned", wcommit, (size_t)o->revokes);
	print_dist("commit → seen by a reader (each)", seen, ns);
	print_dist("commit → seen on all followers", all, na);
	print_dist("commit → follower's COMMIT returned", commit, nc);
	printf("  missed (not seen in 5 s): %zu, followers failed: %d\n", missed, atomic_load(&sh->failed));
	for (int i = 0; i < o->followers; i++) {
		sqlite3_finalize(probe[i]);
		sqlite3_close(rd[i]);
	}
	for (int i = 0; i < o->revokes; i++)
		free(ids[i]);
	free(ids);
	free(seen);
	free(commit);
	free(all);
	free(wcommit);
	free(t0s);
	PQfinish(w);
	munmap(sh, sizeof(*sh));
}

/* ---- initial sync ------------------------------------------------------------- */

struct sync_opts { int indexes_after, journal_wal, order_by_id, threads; };

static void initsync(const char *conninfo, const char *dir, const struct sync_opts *o)
{
	PGconn *c = pg_connect(conninfo);
	struct snap_times t;
	char path[PATH_SZ], aux[PATH_SZ + 8], sql[64];
	sqlite3 *db;
	sqlite3_stmt *st;
	struct stat sb;
	int64_t t0 = now_ns(), t1;
	long count = 0;

	snprintf(path, sizeof(path), "%s/initsync.db", dir);
	unlink(path);
	snprintf(aux, sizeof(aux), "%s-wal", path);
	unlink(aux);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	sq_exec(db, o->journal_wal ? "PRAGMA journal_mode = WAL" : "PRAGMA journal_mode = OFF");
	sq_exec(db, "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY");
	snprintf(sql, sizeof(sql), "PRAGMA threads = %d", o->threads);
	sq_exec(db, sql);
	sq_exec(db, o->indexes_after ? sq_tables_bare : sq_tables_indexed);
	sq_exec(db, sq_meta);
	snapshot(c, db, o->indexes_after, o->order_by_id, &t);
	t1 = now_ns();
	/* what a replica needs before it may be served: WAL mode, on disk */
	if (!o->journal_wal)
		sq_exec(db, "PRAGMA journal_mode = WAL");
	sq_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	sqlite3_close(db);
	{
		FILE *fp = fopen(path, "r+");
		if (!fp || fsync(fileno(fp)) != 0)
			die(path, strerror(errno));
		fclose(fp);
	}
	t.finish_ns = now_ns() - t1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	st = sq_prepare(db, "SELECT count(*) FROM keys");
	if (sqlite3_step(st) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	stat(path, &sb);
	printf("initsync: %ld keys, %s, rows %s, journal %s while building, sorter threads %d:\n"
	       "  copy+insert %.2f s, %s %.2f s, WAL+checkpoint+fsync %.2f s, total %.2f s;"
	       " %ld rows in the replica, %.0f MB\n",
	       t.rows, o->indexes_after ? "indexes built after" : "product schema (indexes in place)",
	       o->order_by_id ? "ordered by id" : "in heap order", o->journal_wal ? "WAL" : "off", o->threads,
	       (double)t.copy_ns / 1e9, o->indexes_after ? "index build + commit" : "commit",
	       (double)t.index_ns / 1e9,
	       (double)t.finish_ns / 1e9, (double)(now_ns() - t0) / 1e9, count, (double)sb.st_size / 1e6);
	PQfinish(c);
}

/* ---- resync: an existing replica brought to a snapshot in one transaction ---- */

struct resync_ctx {
	sqlite3 *db;
	sqlite3_stmt *upsert, *del;
	char **local;                   /* the replica's ids, in byte order */
	size_t nlocal, at;
	long changed, deleted;
};

static void resync_delete(struct resync_ctx *x, const char *id)
{
	sqlite3_bind_text(x->del, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(x->del) != SQLITE_DONE)
		die("delete", sqlite3_errmsg(x->db));
	sqlite3_reset(x->del);
	x->deleted++;
}

/* A merge join of the upstream's ids (COPY ... ORDER BY id COLLATE "C")
 * with the replica's (SQLite's BINARY order, the same bytes): ids only the
 * replica has are deleted, the others upserted where a column differs. */
static void resync_tuple(void *ctx, const unsigned char *p, size_t n)
{
	struct resync_ctx *x = ctx;
	const char *id;
	size_t idlen;
	int32_t len;

	if (n < 6 || (len = (int32_t)be32(p + 2)) < 0 || (size_t)len > n - 6)
		die("resync", "bad tuple");
	id = (const char *)p + 6;
	idlen = (size_t)len;
	while (x->at < x->nlocal) {
		const char *l = x->local[x->at];
		size_t ll = strlen(l);
		int c = memcmp(l, id, ll < idlen ? ll : idlen);

		if (c == 0)
			c = ll < idlen ? -1 : ll > idlen;
		if (c > 0)
			break;
		x->at++;
		if (c == 0)
			break;
		resync_delete(x, l);
	}
	bind_tuple(x->upsert, p, n);
	if (sqlite3_step(x->upsert) != SQLITE_DONE)
		die("resync", sqlite3_errmsg(x->db));
	sqlite3_reset(x->upsert);
	x->changed += sqlite3_changes(x->db);
}

static void resync(const char *conninfo, const char *dir)
{
	PGconn *c = pg_connect(conninfo);
	struct resync_ctx x = { 0 };
	char path[PATH_SZ], sql[96];
	sqlite3_stmt *st;
	PGresult *r;
	int64_t t0 = now_ns(), t1, seq;
	size_t cap = 0;
	long rows;

	snprintf(path, sizeof(path), "%s/initsync.db", dir);
	if (sqlite3_open_v2(path, &x.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		die(path, sqlite3_errmsg(x.db));
	sq_exec(x.db, "PRAGMA synchronous = FULL; PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY");
	sq_exec(x.db, "BEGIN IMMEDIATE");
	st = sq_prepare(x.db, "SELECT id FROM keys ORDER BY id");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (x.nlocal == cap) {
			cap = cap ? cap * 2 : 65536;
			if (!(x.local = realloc(x.local, cap * sizeof(*x.local))))
				die("resync", "out of memory");
		}
		if (!(x.local[x.nlocal++] = strdup((const char *)sqlite3_column_text(st, 0))))
			die("resync", "out of memory");
	}
	sqlite3_finalize(st);
	x.upsert = sq_prepare(x.db, "INSERT INTO keys(" KEY_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?)"
	                      " ON CONFLICT(id) DO UPDATE SET hash = excluded.hash, hint = excluded.hint,"
	                      " owner = excluded.owner, name = excluded.name, scopes = excluded.scopes,"
	                      " metadata = excluded.metadata, rate_limit = excluded.rate_limit,"
	                      " created_at = excluded.created_at, expires_at = excluded.expires_at,"
	                      " revoked_at = excluded.revoked_at"
	                      " WHERE keys.hash IS NOT excluded.hash OR keys.hint IS NOT excluded.hint"
	                      " OR keys.owner IS NOT excluded.owner OR keys.name IS NOT excluded.name"
	                      " OR keys.scopes IS NOT excluded.scopes OR keys.metadata IS NOT excluded.metadata"
	                      " OR keys.rate_limit IS NOT excluded.rate_limit"
	                      " OR keys.created_at IS NOT excluded.created_at"
	                      " OR keys.expires_at IS NOT excluded.expires_at"
	                      " OR keys.revoked_at IS NOT excluded.revoked_at");
	x.del = sq_prepare(x.db, "DELETE FROM keys WHERE id = ?1");
	pg_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	r = PQexec(c, "SELECT seq FROM log_head");
	pg_ok(c, r, "log head");
	seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	rows = copy_each(c, "COPY (SELECT " KEY_COLS " FROM keys ORDER BY id COLLATE \"C\") TO STDOUT (FORMAT binary)",
	                 resync_tuple, &x);
	pg_exec(c, "COMMIT");
	while (x.at < x.nlocal)
		resync_delete(&x, x.local[x.at++]);
	snprintf(sql, sizeof(sql), "UPDATE meta SET value = %" PRId64 " WHERE name = 'applied_seq'", seq);
	sq_exec(x.db, sql);
	t1 = now_ns();
	sq_exec(x.db, "COMMIT");
	printf("resync: %ld upstream rows merged into a replica of %zu in one transaction:"
	       " %ld inserted or changed, %ld deleted; %.2f s (commit %.2f s)\n", rows, x.nlocal, x.changed,
	       x.deleted, (double)(now_ns() - t0) / 1e9, (double)(now_ns() - t1) / 1e9);
	for (size_t i = 0; i < x.nlocal; i++)
		free(x.local[i]);
	free(x.local);
	sqlite3_finalize(x.upsert);
	sqlite3_finalize(x.del);
	sqlite3_close(x.db);
	PQfinish(c);
}

/* ---- main --------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: fleet-floor propagate [-f N] [-n N] [-s normal|full] [-m fetch|payload]"
	                " [-k N] [-p US] [-g MS] CONNINFO DIR\n"
	                "       fleet-floor fill -k N CONNINFO\n"
	                "       fleet-floor initsync [-i after|during] [-j off|wal] [-o] [-t N] CONNINFO DIR\n"
	                "       fleet-floor resync CONNINFO DIR\n");
	exit(2);
}

static long num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct prop_opts o = { .followers = 8, .revokes = 500, .keys = 1000, .gap_ms = 5 };
	struct sync_opts so = { .indexes_after = 1 };
	int ch;
	const char *cmd;

	if (argc < 2)
		usage();
	cmd = argv[1];
	optind = 2;
	while ((ch = getopt(argc, argv, "f:n:s:m:k:p:g:i:j:ot:")) != -1) {
		switch (ch) {
		case 'f': o.followers = (int)num(optarg, 1, MAX_FOLLOWERS); break;
		case 'n': o.revokes = (int)num(optarg, 1, MAX_REVOKES); break;
		case 's': o.sync_full = strcmp(optarg, "full") == 0; break;
		case 'm': o.payload_mode = strcmp(optarg, "payload") == 0; break;
		case 'k': o.keys = num(optarg, 1, 100000000); break;
		case 'p': o.poll_us = (int)num(optarg, 0, 100000); break;
		case 'g': o.gap_ms = (int)num(optarg, 0, 10000); break;
		case 'i': so.indexes_after = strcmp(optarg, "during") != 0; break;
		case 'j': so.journal_wal = strcmp(optarg, "wal") == 0; break;
		case 'o': so.order_by_id = 1; break;
		case 't': so.threads = (int)num(optarg, 0, 8); break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "fill") == 0 && argc == 1) {
		fill_upstream(argv[0], o.keys);
	} else if (strcmp(cmd, "propagate") == 0 && argc == 2) {
		if (o.keys < o.revokes)
			o.keys = o.revokes;
		propagate(argv[0], argv[1], &o);
	} else if (strcmp(cmd, "resync") == 0 && argc == 2) {
		resync(argv[0], argv[1]);
	} else if (strcmp(cmd, "initsync") == 0 && argc == 2) {
		initsync(argv[0], argv[1], &so);
	} else {
		usage();
	}
	return 0;
}

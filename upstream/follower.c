/* follower.c — keeps this host's replica at the upstream's state
 * (docs/design/fleet.md §4, §5, §7).  One thread with its own SQLite
 * connection and one libpq connection (non-blocking; every wait bounded and
 * woken at once by stop), so nothing it does — a network wait, a COPY, an
 * fsync — ever runs on a request's path.
 *
 *   start      open the replica if there is one: the host serves it even
 *              while the upstream is away
 *   session    connect; check the schema and the pepper's fingerprint
 *              (mismatch: refuse, the process stops); LISTEN before
 *              reading anything; build the replica (missing, corrupt, of
 *              another fleet) or resync it in place (the log no longer
 *              reaches back, the upstream's history changed); then apply
 *              the log from the replica's position, one local transaction
 *              per upstream transaction, woken by NOTIFY, with a safety
 *              poll; ship usage up and pull the fleet's totals every second
 *   failure    mark the upstream down, reconnect with backoff, resume from
 *              the replica's position: the replica is never half-applied
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "fleetlimit.h"

#define FETCH_LIMIT 1000
#define APPLY_BATCH_ROWS 10000       /* a local transaction ends at the next upstream one after this many */
#define USAGE_BATCH 500
#define CHECKPOINT_DELAY_MS 50      /* a checkpoint this long after the last apply, */
#define CHECKPOINT_MAX_MS 1000      /* or this long after the first unsynced one (a stream) */
#define GATHER_MS 8                 /* a change this soon after the last apply waits out the window; */
#define STREAM_MS 16                /* in a stream (two applies within 2 * GATHER_MS), a fetch this often */
#define STREAM_IDLE_FETCHES 3       /* a stream has ended after this many fetches in a row found nothing */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STATUS_EVERY_MS 200
#define FILE_CHECK_MS 1000
#define VERSION "apikeyd " "0.1"

struct keeper;
struct apikey_follower;
static bool stop_requested(struct apikey_follower *f, int timeout_ms);

/* What a session's steps return besides 0 and APIKEY_ERR_*. */
enum { AGAIN = 1 };   /* look at the replica again (file replaced, log gap) */

struct apikey_follower {
	struct apikey_follower_config c;
	int lock_fd;
	int stop_rd, stop_wr;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;                /* guards st, ready, refused */
	pthread_cond_t cv;
	struct apikey_follower_status st;
	bool ready, refused;

	/* the follower thread's own */
	struct up_conn u;
	struct apikey_store *s;            /* the replica */
	dev_t dev;
	ino_t ino;
	bool replica_bad;                  /* exists but cannot be opened: rebuild it */
	char fp[APIKEY_PEPPER_FP_SIZE];
	char pepper_path[APIKEY_PATH_SIZE];
	char fleet_id[APIKEY_UUID_SIZE];   /* the upstream's */
	struct apikey_fleet_state fs;      /* the replica's */
	int64_t head, low;
	bool in_txn;                       /* a local transaction open across fetch pages */
	unsigned txn_rows;                 /* rows in it */
	int64_t txn_seq;
	char txn_xid[APIKEY_XID_SIZE];
	int last_n;
	bool dirty;                        /* applied since the last checkpoint */
	bool streaming;                    /* UNLISTENed: fetching every STREAM_MS (follow) */
	int64_t dirty_ms;                  /* when the first of those was applied */
	int64_t last_apply_ms, next_poll_ms, next_file_ms, status_ms;
	uint64_t status_gen;
	char *scratch;                     /* COPY tuples, NUL-terminated */
	size_t scratch_sz;
	struct fleet_limit *fl;            /* the fleet's rate limit (fleetlimit.c) */
	struct keeper *keeper;             /* usage, events, leases (below) */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void flog(struct apikey_follower *f, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void flog(struct apikey_follower *f, int prio, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!f->c.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->c.log(f->c.log_ctx, prio, msg);
}

/* ---- status -------------------------------------------------------------------- */

static void publish(struct apikey_follower *f, bool force)
{
	struct apikey_follower_status copy;
	int64_t now = mono_ms();

	if (!force && now - f->status_ms < STATUS_EVERY_MS)
		return;
	f->status_ms = now;
	pthread_mutex_lock(&f->mu);
	copy = f->st;
	pthread_mutex_unlock(&f->mu);
	up_status_write(f->lock_fd, &copy, ++f->status_gen);
}

static void set_state(struct apikey_follower *f, enum apikey_follower_state st, const char *error)
{
	bool changed;

	pthread_mutex_lock(&f->mu);
	changed = f->st.state != st;
	f->st.state = st;
	if (error)
		snprintf(f->st.error, sizeof(f->st.error), "%s", error);
	pthread_mutex_unlock(&f->mu);
	publish(f, changed || error);
}

/* The replica's position and the upstream's head, after an apply or a poll. */
static void note_position(struct apikey_follower *f, bool contact)
{
	int64_t now = up_now_ms();

	pthread_mutex_lock(&f->mu);
	f->st.applied_seq = f->fs.applied_seq;
	if (f->head > f->st.head_seq || contact)
		f->st.head_seq = f->head;
	if (contact)
		f->st.last_contact_ms = now;
	if (contact && f->fs.applied_seq >= f->head)
		f->st.synced_ms = now;
	pthread_mutex_unlock(&f->mu);
	publish(f, false);
}

static void count(struct apikey_follower *f, uint64_t *field)
{
	pthread_mutex_lock(&f->mu);
	(*field)++;
	pthread_mutex_unlock(&f->mu);
}

static void set_ready(struct apikey_follower *f, bool ready)
{
	pthread_mutex_lock(&f->mu);
	f->ready = ready;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* Refuse to follow: logged already; the process is told to stop. */
static int refuse(struct apikey_follower *f, const char *why)
{
	pthread_mutex_lock(&f->mu);
	f->refused = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	set_state(f, APIKEY_FOLLOWER_REFUSED, why);
	if (f->c.on_fatal)
		f->c.on_fatal(f->c.fatal_ctx);
	return APIKEY_ERR_PEPPER;
}

/* ---- the replica ------------------------------------------------------------------ */

static void close_replica(struct apikey_follower *f)
{
	if (f->in_txn && f->s)
		apikey_replica_rollback(f->s);
	f->in_txn = false;
	apikey_store_free(f->s);
	f->s = NULL;
}

/* Open the replica at db_path, if there is one.  0 (f->s set, or NULL: no
 * file), or APIKEY_ERR_PEPPER (refuse).  A file that does not open as a
 * store is marked for a rebuild. */
static int open_replica(struct apikey_follower *f)
{
	const char *path = f->c.core.db_path;
	struct stat st;
	int r;

	close_replica(f);
	f->replica_bad = false;
	memset(&f->fs, 0, sizeof(f->fs));
	if (stat(path, &st) != 0)
		return 0;
	r = apikey_store_open(&f->s, &f->c.core, f->c.log, f->c.log_ctx);
	if (r == APIKEY_ERR_PEPPER)
		return r;
	if (r == 0 && (r = apikey_replica_tune(f->s)) == 0)
		r = apikey_replica_state(f->s, &f->fs);
	if (r == 0)
		apikey_replica_set_cache(f->s, f->c.cache);
	if (r != 0) {
		flog(f, LOG_WARNING, "%s: cannot use it as a replica (%s): it will be rebuilt", path,
		     apikey_strerror(r));
		close_replica(f);
		f->replica_bad = true;
		return 0;
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	set_ready(f, true);
	note_position(f, false);
	return 0;
}

/* The file at db_path is still the one we opened. */
static bool replica_same(struct apikey_follower *f)
{
	struct stat st;

	return f->s && stat(f->c.core.db_path, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino;
}

/* ---- snapshots: one REPEATABLE READ transaction upstream ---------------------------- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

#define KEY_NCOLS 15
#define SNAPSHOT_KEYS "COPY (SELECT id, hash, foreign_hash, hash_alg, hint, owner, name, scopes, metadata," \
	" rate_limit, created_at, expires_at, revoked_at, rotated_from, rotated_to FROM apikey.keys" \
	" ORDER BY id COLLATE \"C\") TO STDOUT (FORMAT binary)"

struct snap {
	struct apikey_follower *f;
	struct apikey_store *build;        /* building a new file, or */
	struct replica_diff *diff;         /* resyncing in place */
	bool header_done;
	unsigned long rows;
};

/* One tuple of COPY (FORMAT binary) as a replica_key: text fields copied
 * NUL-terminated into scratch. */
static int parse_tuple(struct apikey_follower *f, const unsigned char *p, size_t n, struct replica_key *k)
{
	static const char kind[KEY_NCOLS] = { 't', 'b', 't', 't', 't', 't', 't', 't', 't', '4', '8', '8', '8', 't', 't' };
	const char **text[KEY_NCOLS] = { &k->id, NULL, &k->foreign_hash, &k->hash_alg, &k->hint, &k->owner,
	                                 &k->name, &k->scopes, &k->metadata, NULL, NULL, NULL, NULL,
	                                 &k->rotated_from, &k->rotated_to };
	int64_t *num[KEY_NCOLS] = { [9] = &k->rate_limit, [10] = &k->created_at_s, [11] = &k->expires_at_s,
	                            [12] = &k->revoked_at_s };
	size_t off = 2, used = 0;

	memset(k, 0, sizeof(*k));
	if (n < 2 || (int16_t)((p[0] << 8) | p[1]) != KEY_NCOLS)
		return APIKEY_ERR_INVALID;
	if (f->scratch_sz < n + KEY_NCOLS) {
		char *b = realloc(f->scratch, n + KEY_NCOLS);
		if (!b)
			return APIKEY_ERR_NOMEM;
		f->scratch = b;
		f->scratch_sz = n + KEY_NCOLS;
	}
	for (int i = 0; i < KEY_NCOLS; i++) {
		int32_t len;

		if (off + 4 > n)
			return APIKEY_ERR_INVALID;
		len = (int32_t)be32(p + off);
		off += 4;
		if (len < 0)
			continue;               /* NULL */
		if (off + (size_t)len > n)
			return APIKEY_ERR_INVALID;
		switch (kind[i]) {
		case 't':
			memcpy(f->scratch + used, p + off, (size_t)len);
			f->scratch[used + (size_t)len] = '\0';
			*text[i] = f->scratch + used;
			used += (size_t)len + 1;
			break;
		case 'b':
			k->hash = p + off;
			k->hash_len = (size_t)len;
			break;
		case '4':
			if (len != 4)
				return APIKEY_ERR_INVALID;
			*num[i] = (int32_t)be32(p + off);
			break;
		default:
			if (len != 8)
				return APIKEY_ERR_INVALID;
			*num[i] = be64(p + off);
			break;
		}
		off += (size_t)len;
	}
	return k->id && k->hash_alg && k->hint && k->owner && k->scopes ? 0 : APIKEY_ERR_INVALID;
}

static int snap_tuple(void *ctx, const char *buf, size_t len)
{
	static const char sig[11] = "PGCOPY\n\377\r\n";
	struct snap *x = ctx;
	const unsigned char *p = (const unsigned char *)buf;
	struct replica_key k;
	int r;

	if (!x->header_done) {
		size_t ext;
		if (len < 19 || memcmp(p, sig, 11) != 0)
			return APIKEY_ERR_INVALID;
		ext = be32(p + 15);
		if (len < 19 + ext)
			return APIKEY_ERR_INVALID;
		p += 19 + ext;
		len -= 19 + ext;
		x->header_done = true;
	}
	if (len < 2 || (p[0] == 0xff && p[1] == 0xff))
		return 0;          /* the trailer */
	if ((r = parse_tuple(x->f, p, len, &k)) != 0) {
		flog(x->f, LOG_ERR, "follower: snapshot: a key row the replica cannot take (%s)", apikey_strerror(r));
		return r;
	}
	x->rows++;
	return x->build ? apikey_replica_build_key(x->build, &k) : apikey_replica_diff_key(x->diff, &k);
}

static int script(struct apikey_follower *f, const char *sql)
{
	int r;
	PGresult *res = up_query(&f->u, sql, 0, NULL, &r);

	PQclear(res);
	return res ? 0 : r;
}

/*
 * The upstream's state into x (a new file or a diff), from one snapshot;
 * its log position in *seq, *xid.
 */
static int snapshot(struct apikey_follower *f, struct snap *x, int64_t *seq, char xid[APIKEY_XID_SIZE])
{
	PGresult *res;
	int r;

	if ((r = script(f, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) != 0)
		return r;
	if (!(res = up_query(&f->u, "SELECT h.seq, coalesce((SELECT xid::text FROM apikey.changes c"
	                     " WHERE c.seq = h.seq LIMIT 1), '') FROM apikey.log_head h", 0, NULL, &r)))
		goto fail;
	*seq = up_parse_int(PQgetvalue(res, 0, 0), 0, INT64_MAX);
	snprintf(xid, APIKEY_XID_SIZE, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	if (!(res = up_query(&f->u, "SELECT owner, plan, active::int FROM apikey.accounts", 0, NULL, &r)))
		goto fail;
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		bool active = PQgetvalue(res, i, 2)[0] == '1';
		r = x->build ? apikey_replica_account_put(x->build, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), active)
		             : apikey_replica_diff_account(x->diff, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), active);
	}
	PQclear(res);
	if (r != 0 || !(res = up_query(&f->u, "SELECT name, scopes FROM apikey.presets", 0, NULL, &r)))
		goto fail;

	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		r = x->build ? apikey_replica_preset_put(x->build, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1))
		             : apikey_replica_diff_preset(x->diff, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	PQclear(res);
	if (r != 0 || (r = up_copy_out(&f->u, SNAPSHOT_KEYS, snap_tuple, x)) != 0)
		goto fail;
	return script(f, "COMMIT");
fail:
	if (up_ok(&f->u))
		script(f, "ROLLBACK");
	return r;
}

/* A new replica file from a snapshot, renamed into place. */
static int build(struct apikey_follower *f)
{
	char tmp[APIKEY_PATH_SIZE + 16], aux[APIKEY_PATH_SIZE + 32], replica_id[APIKEY_UUID_SIZE];
	char xid[APIKEY_XID_SIZE];
	struct snap x = { .f = f };
	int64_t seq = 0, t0 = mono_ms(), t1;
	bool corrupt = f->replica_bad;
	int r;

	set_state(f, APIKEY_FOLLOWER_SYNCING, NULL);
	snprintf(tmp, sizeof(tmp), "%s.build", f->c.core.db_path);
	/* one follower per replica (the lock): a leftover is a crashed build */
	unlink(tmp);
	snprintf(aux, sizeof(aux), "%s-journal", tmp);
	unlink(aux);
	if ((r = up_uuid(replica_id)) != 0 ||
	    (r = apikey_replica_build_begin(&f->c.core, tmp, f->c.log, f->c.log_ctx, &x.build)) != 0)
		goto out;
	if ((r = snapshot(f, &x, &seq, xid)) != 0)
		goto out;
	t1 = mono_ms();
	if ((r = apikey_replica_build_finish(x.build, f->fleet_id, replica_id, seq, xid)) != 0)
		goto out;
	apikey_store_free(x.build);
	x.build = NULL;
	close_replica(f);
	if ((r = apikey_replica_install(&f->c.core, tmp, corrupt, f->c.log, f->c.log_ctx)) != 0)
		goto out;
	flog(f, LOG_INFO, "follower: replica %s built from the upstream: %lu keys at seq %" PRId64 " in %.1f s "
	     "(snapshot %.1f s, indexes and sync %.1f s)", f->c.core.db_path, x.rows, seq,
	     (double)(mono_ms() - t0) / 1000, (double)(t1 - t0) / 1000, (double)(mono_ms() - t1) / 1000);
	count(f, &f->st.rebuilds);
	r = open_replica(f);
out:
	apikey_store_free(x.build);
	if (r != 0)
		unlink(tmp);
	return r;
}

/* The replica brought to a fresh snapshot in place: one short local write. */
static int resync(struct apikey_follower *f, const char *why)
{
	char xid[APIKEY_XID_SIZE], replica_id[APIKEY_UUID_SIZE];
	struct snap x = { .f = f };
	unsigned long changed = 0, deleted = 0;
	int64_t seq = 0, t0 = mono_ms();
	bool adopt = strcmp(f->fs.fleet_id, f->fleet_id) != 0;
	int r;

	set_state(f, APIKEY_FOLLOWER_SYNCING, NULL);
	flog(f, LOG_INFO, "follower: resync of %s: %s", f->c.core.db_path, why);
	if ((r = apikey_replica_diff_new(f->s, &x.diff)) != 0)
		return r;
	if (adopt && ((r = up_uuid(replica_id)) != 0 ||
	              (r = apikey_replica_diff_identity(x.diff, f->fleet_id, replica_id)) != 0))
		goto out;
	if ((r = snapshot(f, &x, &seq, xid)) != 0)
		goto out;
	if (adopt && ((r = apikey_replica_diff_deletes(x.diff, &deleted)) != 0 || deleted > 0)) {
		if (r == 0) {
			/* a store of its own becoming a replica: never lose its keys */
			flog(f, LOG_ERR, "follower: %s is not a replica and holds %lu keys the fleet does not have: "
			     "following would delete them; seed an empty upstream with them ('apikeyctl upstream init "
			     "--import-local') or move the file away", f->c.core.db_path, deleted);
			r = refuse(f, "the store holds keys the fleet does not have");
		}
		goto out;
	}
	if ((r = apikey_replica_diff_apply(x.diff, seq, xid, &changed, &deleted)) != 0)
		goto out;
	flog(f, LOG_INFO, "follower: resync done: %lu keys compared, %lu changed, %lu deleted, at seq %" PRId64
	     " in %.1f s", x.rows, changed, deleted, seq, (double)(mono_ms() - t0) / 1000);
	count(f, &f->st.resyncs);
	r = apikey_replica_state(f->s, &f->fs);
	note_position(f, true);
out:
	apikey_replica_diff_free(x.diff);
	return r;
}

/* ---- applying the log ---------------------------------------------------------------- */

#define FETCH_SQL "SELECT c.seq, c.n, c.tbl, c.pk, c.image IS NULL, c.xid::text," \
	" k.hash, k.foreign_hash, k.hash_alg, k.hint, k.owner, k.name, k.scopes, k.metadata, k.rate_limit," \
	" k.created_at, k.expires_at, k.revoked_at, k.rotated_from, k.rotated_to, a.plan, a.active::int, p.scopes" \
	" FROM apikey.changes c" \
	" LEFT JOIN LATERAL jsonb_populate_record(NULL::apikey.keys," \
	"   CASE WHEN c.tbl = 'keys' THEN c.image END) k ON true" \
	" LEFT JOIN LATERAL jsonb_populate_record(NULL::apikey.accounts," \
	"   CASE WHEN c.tbl = 'accounts' THEN c.image END) a ON true" \
	" LEFT JOIN LATERAL jsonb_populate_record(NULL::apikey.presets," \
	"   CASE WHEN c.tbl = 'presets' THEN c.image END) p ON true" \
	" WHERE (c.seq, c.n) > ($1::bigint, $2::integer) ORDER BY c.seq, c.n LIMIT 1000"

static const char *val(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int64_t num(PGresult *res, int row, int col)
{
	const char *v = val(res, row, col);

	return v ? up_parse_int(v, INT64_MIN + 1, INT64_MAX) : 0;
}

/* One change-log row, inside the local transaction of its seq. */
static int apply_row(struct apikey_follower *f, PGresult *res, int i)
{
	const char *tbl = val(res, i, 2), *pk = val(res, i, 3);
	bool del = PQgetvalue(res, i, 4)[0] == 't';
	int r;

	if (!tbl || !pk)
		return APIKEY_ERR_INVALID;
	if (!strcmp(tbl, "keys")) {
		struct replica_key k = {
			.id = pk, .foreign_hash = val(res, i, 7), .hash_alg = val(res, i, 8), .hint = val(res, i, 9),
			.owner = val(res, i, 10), .name = val(res, i, 11), .scopes = val(res, i, 12),
			.metadata = val(res, i, 13), .rate_limit = num(res, i, 14), .created_at_s = num(res, i, 15),
			.expires_at_s = num(res, i, 16), .revoked_at_s = num(res, i, 17),
			.rotated_from = val(res, i, 18), .rotated_to = val(res, i, 19),
		};
		unsigned char *hash = NULL;
		size_t hlen = 0;

		if (del)
			return apikey_replica_key_delete(f->s, pk);
		if (!k.hash_alg || !k.hint || !k.owner || !k.scopes)
			return APIKEY_ERR_INVALID;
		if (val(res, i, 6) && !(hash = PQunescapeBytea((const unsigned char *)val(res, i, 6), &hlen)))
			return APIKEY_ERR_NOMEM;
		k.hash = hash;
		k.hash_len = hlen;
		r = apikey_replica_key_put(f->s, &k);
		PQfreemem(hash);
		return r;
	}
	if (!strcmp(tbl, "accounts"))
		return del ? apikey_replica_account_delete(f->s, pk)
		           : apikey_replica_account_put(f->s, pk, val(res, i, 20) ? val(res, i, 20) : "",
		                                        num(res, i, 21) != 0);
	if (!strcmp(tbl, "presets")) {
		if (del)
			return apikey_replica_preset_delete(f->s, pk);
		return val(res, i, 22) ? apikey_replica_preset_put(f->s, pk, val(res, i, 22)) : APIKEY_ERR_INVALID;
	}
	return APIKEY_ERR_INVALID;
}

static int commit_seq(struct apikey_follower *f)
{
	int64_t txns = f->txn_seq - f->fs.applied_seq;
	int r;

	if ((r = apikey_replica_set_position(f->s, f->txn_seq, f->txn_xid)) != 0 ||
	    (r = apikey_replica_commit(f->s)) != 0) {
		f->in_txn = false;
		return r;
	}
	f->in_txn = false;
	f->fs.applied_seq = f->txn_seq;
	snprintf(f->fs.applied_xid, sizeof(f->fs.applied_xid), "%s", f->txn_xid);
	f->last_apply_ms = mono_ms();
	if (!f->dirty)
		f->dirty_ms = f->last_apply_ms;
	f->dirty = true;
	pthread_mutex_lock(&f->mu);
	f->st.applied_txns += (uint64_t)txns;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/*
 * Fetch and apply everything after the replica's position.  Rows of one
 * upstream transaction are applied in one local transaction, which stays
 * open across pages when a transaction is bigger than one page.  A gap in
 * the seqs (the log was pruned past us) returns AGAIN after marking a
 * resync.
 */
static int catch_up(struct apikey_follower *f, bool *gap)
{
	*gap = false;
	for (;;) {
		char p1[24], p2[16];
		const char *p[2] = { p1, p2 };
		PGresult *res;
		int n, r = 0;

		snprintf(p1, sizeof(p1), "%" PRId64, f->in_txn ? f->txn_seq : f->fs.applied_seq);
		snprintf(p2, sizeof(p2), "%d", f->in_txn ? f->last_n : INT32_MAX);
		if (!(res = up_query_prepared(&f->u, "fetch", 2, p, &r))) {
			if (f->in_txn)
				apikey_replica_rollback(f->s);
			f->in_txn = false;
			return r;
		}
		n = PQntuples(res);
		for (int i = 0; r == 0 && i < n; i++) {
			int64_t seq = num(res, i, 0);

			if (!f->in_txn || seq != f->txn_seq) {
				/* the next upstream transaction: seqs have no holes but a pruned log's */
				if (seq != (f->in_txn ? f->txn_seq : f->fs.applied_seq) + 1) {
					*gap = true;
					break;
				}
				/* Whole upstream transactions fetched together share one local
				 * one (one commit); a big batch is
				 * cut at a transaction's end so writers never wait long. */
				if (f->in_txn && f->txn_rows >= APPLY_BATCH_ROWS && (r = commit_seq(f)) != 0)
					break;
				if (!f->in_txn) {
					if ((r = apikey_replica_begin(f->s)) != 0)
						break;
					f->in_txn = true;
					f->txn_rows = 0;
				}
				f->txn_seq = seq;
				snprintf(f->txn_xid, sizeof(f->txn_xid), "%s", PQgetvalue(res, i, 5));
			}
			f->last_n = (int)num(res, i, 1);
			f->txn_rows++;
			if ((r = apply_row(f, res, i)) != 0)
				flog(f, LOG_ERR, "follower: cannot apply change %" PRId64 "/%d (%s %s): %s", seq, f->last_n,
				     PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), apikey_strerror(r));
		}
		PQclear(res);
		/* a short page: every transaction in it is whole */
		if (r == 0 && !*gap && n < FETCH_LIMIT && f->in_txn)
			r = commit_seq(f);
		if (r != 0 || *gap) {
			if (f->in_txn)
				apikey_replica_rollback(f->s);
			f->in_txn = false;
			if (f->head < f->fs.applied_seq)
				f->head = f->fs.applied_seq;
			note_position(f, false);
			return r;
		}
		if (f->head < f->fs.applied_seq)
			f->head = f->fs.applied_seq;
		note_position(f, n < FETCH_LIMIT);
		if (n < FETCH_LIMIT)
			return 0;
	}
}

/* ---- the keeper: usage, events and rate-limit leases on a connection of their own */

/* A second thread with its own PostgreSQL and SQLite connections, so that
 * what runs every 50 ms or every second never delays applying the log. */
struct keeper {
	struct apikey_follower *f;
	pthread_t thread;
	bool started;
	struct up_conn u;
	struct apikey_store *s;            /* its own connection to the replica */
	dev_t dev;
	ino_t ino;
	struct apikey_fleet_state fs;      /* replica id and marks */
	char pull_mark[64];                /* the fleet usage pulled up to (upstream time) */
	int64_t next_usage_ms, next_lease_ms, last_lease_ms;
};

/* ---- usage up, fleet totals down ------------------------------------------------------ */

struct usage_batch {
	struct keeper *k;
	char ids[USAGE_BATCH * (APIKEY_ID_SIZE + 1) + 3];
	char counts[USAGE_BATCH * 21 + 3], lasts[USAGE_BATCH * 21 + 3];
	size_t n, li, lc, ll;
	unsigned long shipped;
};

static int ship(struct usage_batch *b)
{
	const char *p[4] = { b->k->fs.replica_id, b->ids, b->counts, b->lasts };
	PGresult *res;
	int r;

	if (!b->n)
		return 0;
	memcpy(b->ids + b->li, "}", 2);
	memcpy(b->counts + b->lc, "}", 2);
	memcpy(b->lasts + b->ll, "}", 2);
	res = up_query(&b->k->u, "SELECT apikey.report_usage($1::uuid, $2::text[], $3::bigint[], $4::bigint[])",
	               4, p, &r);
	PQclear(res);
	b->shipped += b->n;
	b->n = 0;
	return res ? 0 : r;
}

static int usage_row(void *ctx, const char *id, uint64_t count, int64_t last_s)
{
	struct usage_batch *b = ctx;
	int r;

	if (!apikey_id_valid(id))
		return 0;
	if (b->n == 0) {
		b->li = b->lc = b->ll = 1;
		b->ids[0] = b->counts[0] = b->lasts[0] = '{';
	} else {
		b->ids[b->li++] = ',';
		b->counts[b->lc++] = ',';
		b->lasts[b->ll++] = ',';
	}
	b->li += (size_t)snprintf(b->ids + b->li, sizeof(b->ids) - b->li, "%s", id);
	b->lc += (size_t)snprintf(b->counts + b->lc, sizeof(b->counts) - b->lc, "%" PRIu64, count);
	b->ll += (size_t)snprintf(b->lasts + b->ll, sizeof(b->lasts) - b->ll, "%" PRId64, last_s);
	if (++b->n == USAGE_BATCH && (r = ship(b)) != 0)
		return r;
	return 0;
}

/* A PostgreSQL array literal, built in a growing buffer: text elements
 * double-quoted with " and \\ escaped, numbers bare. */
struct pgarr { char *buf; size_t len, cap; unsigned n; bool oom; };

static void arr_put(struct pgarr *a, const char *s, size_t n)
{
	if (a->oom)
		return;
	if (a->len + n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4096;
		char *b;
		while (cap < a->len + n + 2)
			cap *= 2;
		if (!(b = realloc(a->buf, cap))) {
			a->oom = true;
			return;
		}
		a->buf = b;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, s, n);
	a->len += n;
	a->buf[a->len] = '\0';
}

static void arr_sep(struct pgarr *a)
{
	arr_put(a, a->n++ ? "," : "{", 1);
}

static void arr_text(struct pgarr *a, const char *s)
{
	arr_sep(a);
	arr_put(a, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			arr_put(a, "\\", 1);
		arr_put(a, s, 1);
	}
	arr_put(a, "\"", 1);
}

static void arr_num(struct pgarr *a, int64_t v)
{
	char b[24];

	arr_sep(a);
	arr_put(a, b, (size_t)snprintf(b, sizeof(b), "%" PRId64, v));
}

static const char *arr_end(struct pgarr *a)
{
	arr_put(a, a->n ? "}" : "{}", a->n ? 1 : 2);
	return a->oom ? NULL : a->buf;
}

enum { EV_ID, EV_AT, EV_KEY, EV_EVENT, EV_REASON, EV_SOURCE, EV_ACTOR, EV_OWNER, EV_NCOLS };
#define EVENTS_BATCH 500

struct event_batch { struct pgarr col[EV_NCOLS]; int64_t last; unsigned n; };

static int event_row(void *ctx, int64_t id, const struct apikey_event *e)
{
	struct event_batch *b = ctx;

	arr_num(&b->col[EV_ID], id);
	arr_num(&b->col[EV_AT], e->at_s);
	arr_text(&b->col[EV_KEY], e->key_id);
	arr_text(&b->col[EV_EVENT], e->event);
	arr_text(&b->col[EV_REASON], e->reason);
	arr_text(&b->col[EV_SOURCE], e->source);
	arr_text(&b->col[EV_ACTOR], e->actor);
	arr_text(&b->col[EV_OWNER], e->owner);
	b->last = id;
	b->n++;
	return 0;
}

/* This host's own events (verification failures of PAM and apikeyd) up,
 * once each, in batches; the mark kept in the replica. */
static int events_round(struct keeper *k)
{
	for (int rounds = 0; rounds < 20; rounds++) {
		struct event_batch b;
		const char *p[2 + EV_NCOLS];
		PGresult *res;
		int r;

		memset(&b, 0, sizeof(b));
		r = apikey_replica_events_after(k->s, k->fs.events_mark, EVENTS_BATCH, event_row, &b);
		for (int i = 0; r == 0 && i < EV_NCOLS; i++)
			if (!(p[2 + i] = arr_end(&b.col[i])))
				r = APIKEY_ERR_NOMEM;
		p[0] = k->fs.replica_id;
		p[1] = k->f->c.host;
		if (r == 0 && b.n) {
			res = up_query(&k->u, "SELECT apikey.report_events($1::uuid, $2, $3::bigint[], $4::bigint[],"
			               " $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])",
			               2 + EV_NCOLS, p, &r);
			PQclear(res);
		}
		for (int i = 0; i < EV_NCOLS; i++)
			free(b.col[i].buf);
		if (r != 0 || !b.n)
			return r;
		if ((r = apikey_replica_begin(k->s)) != 0)
			return r;
		if ((r = apikey_replica_set_marks(k->s, k->fs.usage_mark_s, b.last)) != 0) {
			apikey_replica_rollback(k->s);
			return r;
		}
		if ((r = apikey_replica_commit(k->s)) != 0)
			return r;
		k->fs.events_mark = b.last;
		if (b.n < EVENTS_BATCH)
			return 0;
	}
	return 0;
}

/* Our counts up (absolute: a retry or a crash counts nothing twice), the
 * other replicas' totals down into usage_fleet. */
static int usage_round(struct keeper *k)
{
	struct usage_batch *b = calloc(1, sizeof(*b));
	uint64_t round_s = (uint64_t)(up_now_ms() / 1000);
	const char *p[2];
	PGresult *res;
	int r;

	if (!b)
		return APIKEY_ERR_NOMEM;
	b->k = k;
	/* a margin of two seconds: rows written in the second the last round ran */
	r = apikey_replica_usage_since(k->s, k->fs.usage_mark_s > 2 ? (int64_t)k->fs.usage_mark_s - 2 : 0,
	                               usage_row, b);
	if (r == 0)
		r = ship(b);
	if (r == 0 && b->shipped && (r = apikey_replica_begin(k->s)) == 0) {
		if ((r = apikey_replica_set_marks(k->s, round_s, k->fs.events_mark)) == 0)
			r = apikey_replica_commit(k->s);
		else
			apikey_replica_rollback(k->s);
	}
	if (r == 0 && b->shipped)
		k->fs.usage_mark_s = round_s;
	free(b);
	if (r != 0)
		return r;
	/* keys whose fleet usage moved since the last pull (ten seconds of margin
	 * for transactions that committed late) */
	p[0] = k->fs.replica_id;
	p[1] = k->pull_mark[0] ? k->pull_mark : "-infinity";
	if (!(res = up_query(&k->u, "SELECT key_id, sum(use_count) FILTER (WHERE replica <> $1::uuid),"
	                     " max(last_used_at) FILTER (WHERE replica <> $1::uuid), max(updated)::text"
	                     " FROM apikey.usage WHERE key_id IN (SELECT key_id FROM apikey.usage"
	                     " WHERE updated > $2::timestamptz - interval '10 seconds' AND replica <> $1::uuid)"
	                     " GROUP BY key_id", 2, p, &r)))
		return r;
	if (PQntuples(res) > 0 && (r = apikey_replica_begin(k->s)) == 0) {
		for (int i = 0; r == 0 && i < PQntuples(res); i++) {
			if (!PQgetisnull(res, i, 3) && strcmp(PQgetvalue(res, i, 3), k->pull_mark) > 0 &&
			    strlen(PQgetvalue(res, i, 3)) < sizeof(k->pull_mark))
				snprintf(k->pull_mark, sizeof(k->pull_mark), "%s", PQgetvalue(res, i, 3));
			r = apikey_replica_fleet_usage_put(k->s, PQgetvalue(res, i, 0), (uint64_t)num(res, i, 1),
			                                   num(res, i, 2));
		}
		if (r == 0)
			r = apikey_replica_commit(k->s);
		else
			apikey_replica_rollback(k->s);
	}
	PQclear(res);
	if (r == 0)
		r = events_round(k);
	if (r == 0)
		count(k->f, &k->f->st.usage_rounds);
	return r;
}

/* The keeper's own connection to the replica, (re)opened when the file at
 * the path changed (a rebuild) or was not there yet.  false: not yet. */
static bool keeper_store(struct keeper *k)
{
	struct apikey_follower *f = k->f;
	struct stat st;
	bool ready;

	if (k->s && stat(f->c.core.db_path, &st) == 0 && st.st_dev == k->dev && st.st_ino == k->ino)
		return true;
	apikey_store_free(k->s);
	k->s = NULL;
	pthread_mutex_lock(&f->mu);
	ready = f->ready;
	pthread_mutex_unlock(&f->mu);
	if (!ready || stat(f->c.core.db_path, &st) != 0 ||
	    apikey_store_open(&k->s, &f->c.core, f->c.log, f->c.log_ctx) != 0)
		return false;
	k->dev = st.st_dev;
	k->ino = st.st_ino;
	if (apikey_replica_tune(k->s) != 0 || apikey_replica_state(k->s, &k->fs) != 0 || !k->fs.replica_id[0]) {
		apikey_store_free(k->s);
		k->s = NULL;
		return false;
	}
	k->pull_mark[0] = '\0';   /* a new replica id: pull the fleet's totals again */
	return true;
}

/* Until timeout_ms, a request wanting a round, or a stop (true). */
static bool keeper_sleep(struct keeper *k, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = k->f->stop_rd, .events = POLLIN }, { .fd = fl_wake_fd(k->f->fl), .events = POLLIN } };
	int n;

	do {
		n = poll(p, 2, timeout_ms);
	} while (n < 0 && errno == EINTR);
	return n > 0 && (p[0].revents & POLLIN);
}

static void *keeper_run(void *arg)
{
	struct keeper *k = arg;
	struct apikey_follower *f = k->f;
	unsigned backoff = BACKOFF_MIN_MS;

	while (!stop_requested(f, 0)) {
		int64_t now = mono_ms(), wake;

		if (!keeper_store(k)) {
			if (stop_requested(f, 200))
				break;
			continue;
		}
		if (!up_ok(&k->u)) {
			up_close(&k->u);
			if (up_connect(&k->u, f->c.up.conninfo, f->c.up.insecure, "apikeyd",
			               (struct up_logger){ f->c.log, f->c.log_ctx }, f->stop_rd) != 0) {
				fl_set_up(f->fl, false);   /* each host limits alone until it is back */
				if (stop_requested(f, (int)backoff))
					break;
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			backoff = BACKOFF_MIN_MS;
			fl_set_up(f->fl, true);
			k->next_usage_ms = k->next_lease_ms = now;
		}
		/* a request found no leased token: a round soon, not at the tick */
		if (fl_round_wanted(f->fl) && k->last_lease_ms + FL_EARLY_MS < k->next_lease_ms)
			k->next_lease_ms = k->last_lease_ms + FL_EARLY_MS;
		if (fl_active(f->fl) && now >= k->next_lease_ms) {
			k->last_lease_ms = now;
			k->next_lease_ms = now + FL_TICK_MS;
			if (fl_round(f->fl, &k->u, up_now_ms() * 1000) != 0) {
				up_close(&k->u);
				count(f, &f->st.errors);
				continue;
			}
		}
		if (now >= k->next_usage_ms) {
			k->next_usage_ms = now + f->c.usage_ms;
			if (usage_round(k) != 0) {
				up_close(&k->u);
				count(f, &f->st.errors);
				continue;
			}
		}
		now = mono_ms();
		wake = k->next_usage_ms;
		if (fl_active(f->fl) && k->next_lease_ms < wake)
			wake = k->next_lease_ms;
		if (wake > now && keeper_sleep(k, (int)(wake - now)))
			break;
	}
	fl_set_up(f->fl, false);
	up_close(&k->u);
	apikey_store_free(k->s);
	k->s = NULL;
	return NULL;
}

/* The heartbeat, and the log's head and start: the safety net for a lost
 * notification and the check that the log still reaches back to us. */
static int poll_round(struct apikey_follower *f)
{
	char applied[24];
	const char *p[4] = { f->fs.replica_id, f->c.host, applied, VERSION };
	PGresult *res;
	int r;

	snprintf(applied, sizeof(applied), "%" PRId64, f->fs.applied_seq);
	if (!(res = f->fs.replica_id[0]
	      ? up_query(&f->u, "SELECT h.seq, h.low_seq, (SELECT count(*) FROM apikey.hosts"
	                 " WHERE seen_at > now() - interval '1 minute'), apikey.heartbeat($1::uuid, $2, $3::bigint, $4)"
	                 " FROM apikey.log_head h", 4, p, &r)
	      : up_query(&f->u, "SELECT seq, low_seq, 1 FROM apikey.log_head", 0, NULL, &r)))
		return r;
	f->head = num(res, 0, 0);
	f->low = num(res, 0, 1);
	fl_set_hosts(f->fl, (unsigned)num(res, 0, 2));
	PQclear(res);
	note_position(f, true);
	return 0;
}

/* ---- a session: connected, following -------------------------------------------------- */

static int session_start(struct apikey_follower *f)
{
	PGresult *res;
	int r;

	if ((r = up_connect(&f->u, f->c.up.conninfo, f->c.up.insecure, "apikeyd", (struct up_logger){ f->c.log,
	                    f->c.log_ctx }, f->stop_rd)) != 0)
		return r;
	pthread_mutex_lock(&f->mu);
	snprintf(f->st.upstream, sizeof(f->st.upstream), "%s", f->u.where);
	pthread_mutex_unlock(&f->mu);
	if ((r = up_check_schema(&f->u)) != 0) {
		int v = 0;
		if (up_ok(&f->u) && up_schema_version(&f->u, &v) == 0 && v > UPSTREAM_SCHEMA_VERSION)
			return refuse(f, "the upstream's schema is newer than this program");
		return r;
	}
	if ((r = up_check_pepper_fp(&f->u, f->fp, f->pepper_path, "refusing to follow")) != 0)
		return r == APIKEY_ERR_PEPPER ? refuse(f, "this host's pepper does not match the fleet's") : r;
	if (!(res = up_query(&f->u, "SELECT value FROM apikey.meta WHERE name = 'fleet_id'", 0, NULL, &r)))
		return r;
	snprintf(f->fleet_id, sizeof(f->fleet_id), "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	/* LISTEN before reading anything: nothing committed later is missed */
	f->streaming = false;
	if ((r = script(f, "LISTEN " UP_CHANNEL)) != 0 ||
	    (r = up_prepare(&f->u, "fetch", FETCH_SQL, 2)) != 0 || (r = poll_round(f)) != 0)
		return r;
	return 0;
}

/* Make the replica fit to follow from: built, adopted or resynced as needed. */
static int settle_replica(struct apikey_follower *f)
{
	const char *why = NULL;
	PGresult *res;
	char p1[24];
	const char *p[1] = { p1 };
	int r;

	if (!f->s && !f->replica_bad && (r = open_replica(f)) != 0)
		return refuse(f, "this host's pepper cannot be read");
	if (!f->s || (f->fs.fleet_id[0] && strcmp(f->fs.fleet_id, f->fleet_id))) {
		if (f->s)
			flog(f, LOG_WARNING, "follower: %s is a replica of another fleet (%s): building a new one",
			     f->c.core.db_path, f->fs.fleet_id);
		return build(f);
	}
	if (!f->fs.fleet_id[0])
		why = "a store that was not a replica yet: adopting it (its keys become the fleet's)";
	else if (f->fs.applied_seq + 1 < f->low)
		why = "the change log no longer reaches back to the replica's position";
	else if (f->fs.applied_seq > f->head)
		why = "the replica is ahead of the upstream (restored from an older backup?)";
	else if (f->fs.applied_seq >= f->low && f->fs.applied_seq > 0) {
		/* the history check: the transaction we applied last is still there */
		snprintf(p1, sizeof(p1), "%" PRId64, f->fs.applied_seq);
		if (!(res = up_query(&f->u, "SELECT coalesce((SELECT xid::text FROM apikey.changes WHERE seq = $1::bigint"
		                     " LIMIT 1), '')", 1, p, &r)))
			return r;
		if (f->fs.applied_xid[0] && strcmp(PQgetvalue(res, 0, 0), f->fs.applied_xid))
			why = "the upstream's history changed (restored from a backup, or a standby promoted)";
		PQclear(res);
	}
	return why ? resync(f, why) : 0;
}

/* Stop listening for the upstream's commits while a stream lasts (the
 * follower fetches every STREAM_MS anyway, and each NOTIFY would only cost
 * a wakeup of its PostgreSQL backend and a message to read), or listen again. */
static int set_streaming(struct apikey_follower *f, bool on)
{
	int r = script(f, on ? "UNLISTEN " UP_CHANNEL : "LISTEN " UP_CHANNEL);

	if (r == 0 && on)
		count(f, &f->st.streams);
	if (r == 0)
		f->streaming = on;
	return r;
}

static int follow(struct apikey_follower *f)
{
	int64_t now = mono_ms(), last_fetch_ms = 0;
	bool gap, fetch_due = false;
	unsigned idle_fetches = 0;
	int r;

	/* back after a resync or a rebuild in the middle of a stream */
	if (f->streaming) {
		if ((r = set_streaming(f, false)) != 0)
			return r;
		fetch_due = true;
	}

	f->next_poll_ms = now + f->c.poll_ms;
	f->next_file_ms = now + FILE_CHECK_MS;
	set_state(f, APIKEY_FOLLOWER_FOLLOWING, "");
	for (;;) {
		int64_t wake;
		PGnotify *nt;
		int w;

		/* notifications libpq has read already, with any query's answer */
		while ((nt = PQnotifies(f->u.c)) != NULL) {
			long long seq = up_parse_int(nt->extra, 0, INT64_MAX);
			if (seq > f->head)
				f->head = seq;
			PQfreemem(nt);
		}
		now = mono_ms();
		if (f->dirty && (now >= f->last_apply_ms + CHECKPOINT_DELAY_MS || now >= f->dirty_ms + CHECKPOINT_MAX_MS)) {
			/* syncs the WAL: a power cut loses at most this much of the log
			 * (re-fetched from the upstream after the restart) */
			apikey_replica_checkpoint(f->s);
			f->dirty = false;
		}
		if (now >= f->next_poll_ms) {
			f->next_poll_ms = now + f->c.poll_ms;
			if ((r = poll_round(f)) != 0)
				return r;
			if (f->fs.applied_seq + 1 < f->low)
				return AGAIN;
			continue;
		}
		if (now >= f->next_file_ms) {
			f->next_file_ms = now + FILE_CHECK_MS;
			if (!replica_same(f)) {
				flog(f, LOG_WARNING, "follower: %s was removed or replaced: making it again",
				     f->c.core.db_path);
				close_replica(f);
				return AGAIN;
			}
		}
		if (f->streaming || fetch_due || f->head > f->fs.applied_seq) {
			/* A change after a quiet spell is applied at once.  One within
			 * GATHER_MS of the last apply waits out the rest of that window
			 * (not woken by each notification), and what arrived meanwhile
			 * is applied with it in one local transaction: one commit
			 * instead of one per change.  Two applies within two windows
			 * start a stream: the follower stops listening and fetches
			 * every STREAM_MS until STREAM_IDLE_FETCHES fetches find
			 * nothing.  STREAM_MS is the longer window because each fetch
			 * wakes the follower and its PostgreSQL backend on the cores
			 * /auth runs on: 16 ms instead of 8 about halved what
			 * following adds to a request (docs/BENCHMARKS.md). */
			int64_t at = f->streaming ? last_fetch_ms + STREAM_MS : f->last_apply_ms + GATHER_MS;
			int64_t before = f->fs.applied_seq, prev_apply_ms = f->last_apply_ms;

			if (now < at) {
				if (stop_requested(f, (int)(at - now))) {
					f->u.stopped = true;
					return 0;
				}
				continue;
			}
			last_fetch_ms = now;
			fetch_due = false;
			if ((r = catch_up(f, &gap)) != 0)
				return r;
			if (gap) {
				if ((r = resync(f, "the change log no longer reaches back to the replica's position")) != 0)
					return r;
				set_state(f, APIKEY_FOLLOWER_FOLLOWING, "");
				continue;
			}
			if (f->fs.applied_seq > before) {
				idle_fetches = 0;
				if (!f->streaming && prev_apply_ms && now < prev_apply_ms + 2 * GATHER_MS &&
				    (r = set_streaming(f, true)) != 0)
					return r;
			} else if (f->streaming && ++idle_fetches >= STREAM_IDLE_FETCHES) {
				/* listening again, then one more fetch: a commit between the
				 * last one and the LISTEN sent no notification we will see */
				if ((r = set_streaming(f, false)) != 0)
					return r;
				fetch_due = true;
			}
			continue;
		}
		wake = f->next_poll_ms;
		if (f->next_file_ms < wake)
			wake = f->next_file_ms;
		if (f->dirty && f->last_apply_ms + CHECKPOINT_DELAY_MS < wake)
			wake = f->last_apply_ms + CHECKPOINT_DELAY_MS;
		w = up_wait_input(&f->u, wake > now ? (int)(wake - now) : 0);
		if (w < 0)
			return APIKEY_ERR_UPSTREAM;
		if (f->u.stopped)
			return 0;
	}
}

static int session(struct apikey_follower *f)
{
	int r;

	if ((r = session_start(f)) != 0)
		return r;
	for (;;) {
		if ((r = settle_replica(f)) != 0)
			return r;
		r = follow(f);
		if (r != AGAIN)
			return r;
		if (!f->s && (r = open_replica(f)) != 0)
			return refuse(f, "this host's pepper cannot be read");
		if ((r = poll_round(f)) != 0)
			return r;
	}
}

static bool stop_requested(struct apikey_follower *f, int timeout_ms)
{
	struct pollfd p = { .fd = f->stop_rd, .events = POLLIN };
	int n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	return n > 0;
}

static void *run(void *arg)
{
	struct apikey_follower *f = arg;
	unsigned backoff = BACKOFF_MIN_MS;

	if (apikey_config_pepper_fingerprint(&f->c.core, f->fp) != 0) {
		flog(f, LOG_ERR, "follower: the pepper %s cannot be read (a 32-byte file, mode 0600 or 0640, "
		     "the fleet's): refusing to follow", f->pepper_path);
		refuse(f, "this host's pepper cannot be read");
		return NULL;
	}
	if (open_replica(f) != 0) {
		refuse(f, "this host's pepper cannot be read");
		return NULL;
	}
	while (!f->refused) {
		int64_t t0 = mono_ms();
		int r = session(f);

		up_close(&f->u);
		if (f->refused || f->u.stopped || stop_requested(f, 0))
			break;
		if (f->in_txn && f->s)
			apikey_replica_rollback(f->s);
		f->in_txn = false;
		count(f, &f->st.errors);
		if (r != APIKEY_ERR_UPSTREAM)   /* those were logged where they happened */
			flog(f, LOG_WARNING, "follower: %s; trying again", apikey_strerror(r));
		set_state(f, APIKEY_FOLLOWER_DOWN, apikey_strerror(r));
		if (mono_ms() - t0 > 10000)
			backoff = BACKOFF_MIN_MS;     /* it had worked for a while */
		if (stop_requested(f, (int)backoff))
			break;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	close_replica(f);
	return NULL;
}

/* ---- the public side ------------------------------------------------------------------ */

int apikey_follower_new(struct apikey_follower **out, const struct apikey_follower_config *c)
{
	struct apikey_follower *f = calloc(1, sizeof(*f));
	int p[2], r;
	long holder;

	*out = NULL;
	if (!f)
		return APIKEY_ERR_NOMEM;
	f->c = *c;
	if (!f->c.poll_ms)
		f->c.poll_ms = 5000;
	if (!f->c.usage_ms)
		f->c.usage_ms = 1000;
	f->lock_fd = f->stop_rd = f->stop_wr = -1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->st.pid = (long)getpid();
	apikey_config_pepper_path(&f->c.core, f->pepper_path, sizeof(f->pepper_path));
	if (fl_new(&f->fl) != 0 || !(f->keeper = calloc(1, sizeof(*f->keeper)))) {
		apikey_follower_free(f);
		return APIKEY_ERR_NOMEM;
	}
	f->keeper->f = f;
	f->keeper->u.stop_fd = -1;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		apikey_follower_free(f);
		return APIKEY_ERR_IO;
	}
	f->stop_rd = p[0];
	f->stop_wr = p[1];
	if ((r = up_status_lock(c->core.db_path, &f->lock_fd, &holder)) != 0) {
		if (r == APIKEY_ERR_BUSY)
			flog(f, LOG_ERR, "another follower (pid %ld) already follows %s: one per replica", holder,
			     c->core.db_path);
		else
			flog(f, LOG_ERR, "%s.follower: cannot create or lock it: %s", c->core.db_path, strerror(errno));
		apikey_follower_free(f);
		return r;
	}
	publish(f, true);
	*out = f;
	return 0;
}

int apikey_follower_start(struct apikey_follower *f)
{
	if (pthread_create(&f->thread, NULL, run, f) != 0)
		return APIKEY_ERR_INTERNAL;
	f->started = true;
	pthread_setname_np(f->thread, "apikeyd-follow");
	if (pthread_create(&f->keeper->thread, NULL, keeper_run, f->keeper) != 0)
		return APIKEY_ERR_INTERNAL;
	f->keeper->started = true;
	pthread_setname_np(f->keeper->thread, "apikeyd-keeper");
	return 0;
}

int apikey_follower_wait_ready(struct apikey_follower *f, unsigned timeout_ms)
{
	struct timespec until;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&f->mu);
	while (!f->ready && !f->refused && r == 0)
		r = timeout_ms ? pthread_cond_timedwait(&f->cv, &f->mu, &until) : pthread_cond_wait(&f->cv, &f->mu);
	r = f->refused ? APIKEY_ERR_UPSTREAM : f->ready ? 0 : APIKEY_ERR_BUSY;
	pthread_mutex_unlock(&f->mu);
	return r;
}

void apikey_follower_status(struct apikey_follower *f, struct apikey_follower_status *st)
{
	pthread_mutex_lock(&f->mu);
	*st = f->st;
	pthread_mutex_unlock(&f->mu);
	st->staleness_ms = up_staleness(st, up_now_ms());
}

int apikey_follower_rate_check(struct apikey_follower *f, const char *key_id, uint32_t per_minute, int64_t now_us,
                               struct apikey_ratelimit *out)
{
	return fl_take(f->fl, key_id, per_minute, now_us, out);
}

void apikey_follower_rate_stats(struct apikey_follower *f, struct apikey_fleet_rate_stats *st)
{
	struct fl_stats s;

	fl_stats(f->fl, &s);
	st->keys = s.keys;
	st->hosts = s.hosts;
	st->rounds = s.rounds;
	st->errors = s.errors;
	st->credit_used = s.credit_used;
	st->refused = s.refused;
}

void apikey_follower_free(struct apikey_follower *f)
{
	if (!f)
		return;
	if (f->started) {
		if (write(f->stop_wr, "x", 1) < 0)
			flog(f, LOG_WARNING, "follower: cannot wake it to stop");
		pthread_join(f->thread, NULL);
	}
	if (f->keeper && f->keeper->started)
		pthread_join(f->keeper->thread, NULL);
	free(f->keeper);
	if (f->lock_fd >= 0) {
		f->st.state = APIKEY_FOLLOWER_STARTING;
		close(f->lock_fd);         /* releases the lock */
	}
	if (f->stop_rd >= 0)
		close(f->stop_rd);
	if (f->stop_wr >= 0)
		close(f->stop_wr);
	free(f->scratch);
	fl_free(f->fl);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

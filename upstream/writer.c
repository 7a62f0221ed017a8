/* writer.c — the upstream writer: the backend (core/backend.h) that makes
 * the core's write rules write to PostgreSQL.  Each rule's transaction is
 * one PostgreSQL transaction; the triggers of the upstream schema append
 * its change-log rows and NOTIFY the followers, so no write reaches the
 * truth without reaching the log.  Nothing is ever written locally: the
 * replica learns the write from its follower (read-your-writes: commit
 * waits, bounded, until this host's replica has applied it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "upstream_int.h"

struct writer {
	struct apikey_store *s;            /* the replica this writer sits on (not owned) */
	struct apikey_upstream_options o;
	char app[64];
	struct up_conn u;
	bool checked;                      /* schema and pepper checked on this connection */
	bool in_txn, in_batch, failed;     /* failed: a statement failed inside the batch */
	char request[APIKEY_UUID_LEN + 1]; /* this transaction's id in the log */
	char host[APIKEY_NAME_SIZE];
	struct pruned *pruned;             /* the last prune_keys' keys */
	size_t n_pruned;
};

static int wr_connect(struct writer *w)
{
	int r;

	if (up_ok(&w->u) && w->checked)
		return 0;
	up_close(&w->u);
	w->checked = false;
	if ((r = up_connect(&w->u, up_writer_conninfo(&w->o), w->o.insecure, w->app, store_logger(w->s), -1)) != 0)
		return r == APIKEY_ERR_CONFIG ? APIKEY_ERR_UPSTREAM : r;
	if ((r = up_check_schema(&w->u)) != 0 || (r = up_check_pepper(&w->u, w->s, "refusing to write")) != 0) {
		up_close(&w->u);
		return r;
	}
	w->checked = true;
	return 0;
}

static int script(struct writer *w, const char *sql)
{
	int r;
	PGresult *res = up_query(&w->u, sql, 0, NULL, &r);

	PQclear(res);
	return res ? 0 : r;
}

static int txn_begin(struct writer *w)
{
	char sql[160];
	int r;

	if (w->in_txn)
		return APIKEY_ERR_INVALID;
	if ((r = wr_connect(w)) != 0 || (r = up_uuid(w->request)) != 0)
		return r;
	/* the request id goes into this transaction's log rows: after a lost
	 * COMMIT reply it tells whether the write was made */
	snprintf(sql, sizeof(sql), "BEGIN; SELECT set_config('apikey.request', '%s', true)", w->request);
	if ((r = script(w, sql)) != 0)
		return r;
	w->in_txn = true;
	w->failed = false;
	return 0;
}

static void txn_rollback(struct writer *w)
{
	if (w->in_txn && up_ok(&w->u))
		script(w, "ROLLBACK");
	w->in_txn = false;
}

/* After a COMMIT whose reply was lost: was it made?  Asks a new connection
 * for the request id's log rows. */
static int commit_outcome(struct writer *w)
{
	const char *p[1] = { w->request };
	PGresult *res;
	int r;

	up_close(&w->u);
	w->checked = false;
	if (wr_connect(w) == 0 &&
	    (res = up_query(&w->u, "SELECT 1 FROM apikey.changes WHERE request = $1 LIMIT 1", 1, p, &r))) {
		bool made = PQntuples(res) == 1;
		PQclear(res);
		if (made) {
			up_log(&w->u, LOG_WARNING, "upstream: the connection was lost after COMMIT; the write was made");
			return 0;
		}
		up_log(&w->u, LOG_ERR, "upstream (%s): the connection was lost during COMMIT; the write was not made",
		       w->u.where);
		return APIKEY_ERR_UPSTREAM;
	}
	up_log(&w->u, LOG_ERR, "upstream: the connection was lost during COMMIT and cannot be re-established: "
	       "the write may or may not have been made (check with 'apikeyctl show' or 'log')");
	return APIKEY_ERR_UPSTREAM;
}

/* Read your own writes: a follower on this host applies seq; wait for it. */
static void await_replica(struct writer *w, int64_t seq)
{
	const struct apikey_config *c = apikey_store_config(w->s);
	struct apikey_fleet_state st;
	struct timespec pause = { 0, 1000000 };
	int64_t end = up_now_ms() + w->o.wait_ms;

	if (seq <= 0 || !up_follower_running(c->db_path, NULL))
		return;      /* an admin workstation: nobody applies here */
	for (;;) {
		if (apikey_replica_state(w->s, &st) == 0 && st.applied_seq >= seq)
			return;
		if (up_now_ms() >= end)
			break;
		nanosleep(&pause, NULL);
	}
	up_log(&w->u, LOG_WARNING, "written upstream (seq %lld), but this host's replica has not applied it after "
	       "%u ms: is apikeyd following?", (long long)seq, w->o.wait_ms);
}

static int txn_commit(struct writer *w)
{
	PGresult *res;
	int64_t seq = 0;
	int r;

	if (!w->in_txn)
		return APIKEY_ERR_INVALID;
	w->in_txn = false;
	if (w->failed) {
		script(w, "ROLLBACK");
		return APIKEY_ERR_UPSTREAM;
	}
	/* the seq the triggers took ("" when no replicated row changed) */
	if (!(res = up_query(&w->u, "SELECT current_setting('apikey.seq', true)", 0, NULL, &r))) {
		if (up_ok(&w->u))
			script(w, "ROLLBACK");
		return r;
	}
	if (PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0])
		seq = up_parse_int(PQgetvalue(res, 0, 0), 1, INT64_MAX);
	PQclear(res);
	if ((r = script(w, "COMMIT")) != 0) {
		if (up_ok(&w->u))
			return r;                           /* refused: rolled back */
		return seq > 0 ? commit_outcome(w) : r; /* the reply was lost */
	}
	await_replica(w, seq);
	return 0;
}

/* ---- the backend --------------------------------------------------------------------- */

static int wr_begin(void *ctx)
{
	struct writer *w = ctx;

	return w->in_batch ? 0 : txn_begin(w);
}

static int wr_commit(void *ctx)
{
	struct writer *w = ctx;

	return w->in_batch ? 0 : txn_commit(w);
}

static void wr_rollback(void *ctx)
{
	struct writer *w = ctx;

	if (!w->in_batch)
		txn_rollback(w);
}

static bool wr_in_batch(void *ctx)
{
	return ((struct writer *)ctx)->in_batch;
}

static int wr_batch_begin(void *ctx)
{
	struct writer *w = ctx;
	int r;

	if (w->in_batch)
		return APIKEY_ERR_INVALID;
	if ((r = txn_begin(w)) == 0)
		w->in_batch = true;
	return r;
}

static int wr_batch_commit(void *ctx)
{
	struct writer *w = ctx;

	if (!w->in_batch)
		return APIKEY_ERR_INVALID;
	w->in_batch = false;
	return txn_commit(w);
}

static void wr_batch_rollback(void *ctx)
{
	struct writer *w = ctx;

	w->in_batch = false;
	txn_rollback(w);
}

/* One statement of the transaction; a failure marks it (PostgreSQL has
 * aborted it: only a rollback follows). */
static PGresult *stmt(struct writer *w, const char *sql, int n, const char *const *p, int *err)
{
	PGresult *res;

	if (!w->in_txn) {
		*err = APIKEY_ERR_INVALID;
		return NULL;
	}
	if (!(res = up_query(&w->u, sql, n, p, err)))
		w->failed = true;
	return res;
}

static int stmt_rows(struct writer *w, const char *sql, int n, const char *const *p, long *rows)
{
	PGresult *res;
	int r;

	if (!(res = stmt(w, sql, n, p, &r)))
		return r;
	if (rows)
		*rows = (long)up_parse_int(PQcmdTuples(res), 0, INT32_MAX);
	PQclear(res);
	return 0;
}

/* Number parameters: text in a caller's buffer. */
#define NUM(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (buf))
#define TIME_OR_NULL(buf, v) ((v) ? NUM(buf, v) : NULL)

static void hex(const unsigned char *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static int wr_key_insert(void *ctx, const struct key_row *k)
{
	struct writer *w = ctx;
	char digest[2 * DIGEST_LEN + 1], rl[24], created[24], expires[24];
	const char *p[13] = {
		k->id, NULL, k->foreign_hash, k->hash_alg, k->hint, k->owner, k->name ? k->name : "", k->scopes,
		k->metadata ? k->metadata : "{}", NUM(rl, k->rate_limit), NUM(created, k->created_at_s),
		TIME_OR_NULL(expires, k->expires_at_s), k->rotated_from,
	};
	int r;

	if (k->digest) {
		hex(k->digest, DIGEST_LEN, digest);
		p[1] = digest;
	}
	r = stmt_rows(w, "INSERT INTO apikey.keys(id, hash, foreign_hash, hash_alg, hint, owner, name, scopes,"
	              " metadata, rate_limit, created_at, expires_at, rotated_from)"
	              " VALUES ($1, decode($2, 'hex'), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)", 13, p, NULL);
	explicit_bzero(digest, sizeof(digest));
	return r;
}

static int wr_key_update(void *ctx, const char *id, const struct key_row *k)
{
	struct writer *w = ctx;
	char rl[24], expires[24];
	const char *p[6] = { id, k->name ? k->name : "", k->scopes, k->metadata ? k->metadata : "{}",
	                     NUM(rl, k->rate_limit), TIME_OR_NULL(expires, k->expires_at_s) };
	long rows = 0;
	int r = stmt_rows(w, "UPDATE apikey.keys SET name = $2, scopes = $3, metadata = $4, rate_limit = $5,"
	                  " expires_at = $6 WHERE id = $1", 6, p, &rows);

	return r ? r : rows ? 0 : APIKEY_ERR_NOT_FOUND;
}

static int wr_key_set_revoked(void *ctx, const char *id, int64_t at_s)
{
	char at[24];
	const char *p[2] = { id, NUM(at, at_s) };

	return stmt_rows(ctx, "UPDATE apikey.keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", 2, p,
	                 NULL);
}

static int wr_key_set_rotated(void *ctx, const char *id, const char *to, int64_t revoked_at_s,
                              int64_t expires_at_s)
{
	char rev[24], exp[24];
	const char *p[4] = { id, to, TIME_OR_NULL(rev, revoked_at_s), TIME_OR_NULL(exp, expires_at_s) };

	return stmt_rows(ctx, "UPDATE apikey.keys SET rotated_to = $2, revoked_at = $3, expires_at = $4"
	                 " WHERE id = $1", 4, p, NULL);
}

static void copy_col(PGresult *res, int row, int col, char *out, size_t sz)
{
	snprintf(out, sz, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static int64_t int_col(PGresult *res, int row, int col)
{
	long long v = PQgetisnull(res, row, col) ? 0 : up_parse_int(PQgetvalue(res, row, col), INT64_MIN + 1, INT64_MAX);

	return v == INT64_MIN ? 0 : v;
}

/* The whole record, fleet usage summed; the row stays locked until commit
 * (two writers never both rotate or edit one key from the same state). */
static int wr_key_get(void *ctx, const char *id, struct key_record *rec)
{
	struct writer *w = ctx;
	struct apikey_key_info *k = &rec->info;
	const char *p[1] = { id };
	PGresult *res;
	int r;

	if (!(res = stmt(w, "SELECT k.id, k.hint, k.owner, k.name, k.scopes, k.metadata,"
	                 " coalesce(k.rotated_from, ''), coalesce(k.rotated_to, ''), k.hash_alg, k.created_at,"
	                 " coalesce(k.expires_at, 0), coalesce(k.revoked_at, 0),"
	                 " coalesce((SELECT max(last_used_at) FROM apikey.usage u WHERE u.key_id = k.id), 0),"
	                 " coalesce((SELECT sum(use_count) FROM apikey.usage u WHERE u.key_id = k.id), 0),"
	                 " k.rate_limit, a.plan, a.active::int"
	                 " FROM apikey.keys k LEFT JOIN apikey.accounts a ON a.owner = k.owner"
	                 " WHERE k.id = $1 FOR UPDATE OF k", 1, p, &r)))
		return r;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return APIKEY_ERR_NOT_FOUND;
	}
	copy_col(res, 0, 0, k->id, sizeof(k->id));
	copy_col(res, 0, 1, k->hint, sizeof(k->hint));
	copy_col(res, 0, 2, k->owner, sizeof(k->owner));
	copy_col(res, 0, 3, k->name, sizeof(k->name));
	copy_col(res, 0, 4, k->scopes, sizeof(k->scopes));
	copy_col(res, 0, 5, k->metadata, sizeof(k->metadata));
	copy_col(res, 0, 6, k->rotated_from, sizeof(k->rotated_from));
	copy_col(res, 0, 7, k->rotated_to, sizeof(k->rotated_to));
	copy_col(res, 0, 8, k->hash_alg, sizeof(k->hash_alg));
	k->created_at_s = int_col(res, 0, 9);
	k->expires_at_s = int_col(res, 0, 10);
	k->revoked_at_s = int_col(res, 0, 11);
	k->last_used_at_s = int_col(res, 0, 12);
	k->use_count = (uint64_t)int_col(res, 0, 13);
	k->rate_limit = (uint32_t)int_col(res, 0, 14);
	rec->has_account = !PQgetisnull(res, 0, 16);
	copy_col(res, 0, 15, rec->plan, sizeof(rec->plan));
	rec->active = !rec->has_account || int_col(res, 0, 16) != 0;
	PQclear(res);
	return 0;
}

/* Also outside a transaction: a create checks its preset before it begins. */
static int wr_preset_get(void *ctx, const char *name, char out[APIKEY_SCOPES_SIZE])
{
	struct writer *w = ctx;
	const char *p[1] = { name };
	PGresult *res;
	int r;

	if (!w->in_txn && (r = wr_connect(w)) != 0)
		return r;
	if (!(res = w->in_txn ? stmt(w, "SELECT scopes FROM apikey.presets WHERE name = $1", 1, p, &r)
	                      : up_query(&w->u, "SELECT scopes FROM apikey.presets WHERE name = $1", 1, p, &r)))
		return r;
	r = PQntuples(res) == 1 ? 0 : APIKEY_ERR_NOT_FOUND;
	if (r == 0)
		copy_col(res, 0, 0, out, APIKEY_SCOPES_SIZE);
	PQclear(res);
	return r;
}

static int wr_account_upsert(void *ctx, const char *owner, const char *plan, int active)
{
	const char *p[3] = { owner, plan, active < 0 ? NULL : active ? "true" : "false" };

	return stmt_rows(ctx, "INSERT INTO apikey.accounts(owner, plan, active)"
	                 " VALUES ($1, coalesce($2, ''), coalesce($3::boolean, true))"
	                 " ON CONFLICT (owner) DO UPDATE SET plan = coalesce($2, apikey.accounts.plan),"
	                 " active = coalesce($3::boolean, apikey.accounts.active)", 3, p, NULL);
}

static int wr_preset_upsert(void *ctx, const char *name, const char *scopes)
{
	const char *p[2] = { name, scopes };

	return stmt_rows(ctx, "INSERT INTO apikey.presets(name, scopes) VALUES ($1, $2)"
	                 " ON CONFLICT (name) DO UPDATE SET scopes = excluded.scopes", 2, p, NULL);
}

static int wr_preset_delete(void *ctx, const char *name)
{
	const char *p[1] = { name };
	long rows = 0;
	int r = stmt_rows(ctx, "DELETE FROM apikey.presets WHERE name = $1", 1, p, &rows);

	return r ? r : rows ? 0 : APIKEY_ERR_NOT_FOUND;
}

static int wr_event_append(void *ctx, const struct event_row *e)
{
	struct writer *w = ctx;
	char at[24];
	const char *p[8] = { NUM(at, e->at_s), e->key_id ? e->key_id : "", e->event, e->reason ? e->reason : "",
	                     e->source ? e->source : "", e->actor ? e->actor : "", w->host, e->owner };

	/* owner NULL: the key's owner, as the local store has it */
	return stmt_rows(w, "INSERT INTO apikey.events(at, key_id, event, reason, source, actor, host, owner)"
	                 " VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, (SELECT owner FROM apikey.keys"
	                 " WHERE id = $2), ''))", 8, p, NULL);
}

/* The keys the upstream pruned, for pruned_each (the rule writes an event
 * for each): kept until the next prune or the end. */
struct pruned { char id[APIKEY_ID_SIZE]; char why[16]; };

static int wr_prune_keys(void *ctx, int64_t dead_before_s, unsigned *keys)
{
	struct writer *w = ctx;
	char before[24];
	const char *p[1] = { NUM(before, dead_before_s) };
	PGresult *res;
	int r, n;

	*keys = 0;
	free(w->pruned);
	w->pruned = NULL;
	w->n_pruned = 0;
	if (!(res = stmt(w, "SELECT id, why FROM apikey.prune_keys($1::bigint)", 1, p, &r)))
		return r;
	n = PQntuples(res);
	if (n && !(w->pruned = calloc((size_t)n, sizeof(*w->pruned)))) {
		PQclear(res);
		w->failed = true;
		return APIKEY_ERR_NOMEM;
	}
	for (int i = 0; i < n; i++) {
		copy_col(res, i, 0, w->pruned[i].id, sizeof(w->pruned[i].id));
		copy_col(res, i, 1, w->pruned[i].why, sizeof(w->pruned[i].why));
	}
	w->n_pruned = (size_t)n;
	*keys = (unsigned)n;
	PQclear(res);
	return 0;
}

static int wr_pruned_each(void *ctx, int (*fn)(void *fctx, const char *id, const char *why), void *fctx)
{
	struct writer *w = ctx;
	int r = 0;

	for (size_t i = 0; r == 0 && i < w->n_pruned; i++)
		r = fn(fctx, w->pruned[i].id, w->pruned[i].why);
	return r;
}

static int wr_prune_events(void *ctx, int64_t before_s, unsigned *events)
{
	struct writer *w = ctx;
	unsigned local = 0;
	char before[24];
	const char *p[1] = { NUM(before, before_s) };
	PGresult *res;
	int r;

	*events = 0;
	if (!(res = stmt(w, "SELECT apikey.prune_events($1::bigint)", 1, p, &r)))
		return r;
	*events = (unsigned)int_col(res, 0, 0);
	PQclear(res);
	/* this host's own events (its replica's keys are the follower's: their
	 * deletion reaches every replica through the log) */
	if ((r = apikey_replica_prune_local(w->s, before_s, &local)) != 0)
		return r;
	*events += local;
	return 0;
}

static void wr_free(void *ctx)
{
	struct writer *w = ctx;

	if (!w)
		return;
	if (w->in_txn && up_ok(&w->u))
		script(w, "ROLLBACK");
	up_close(&w->u);
	free(w->pruned);
	free(w);
}

static const struct apikey_backend upstream_backend = {
	.name = "upstream",
	.begin = wr_begin,
	.commit = wr_commit,
	.rollback = wr_rollback,
	.in_batch = wr_in_batch,
	.batch_begin = wr_batch_begin,
	.batch_commit = wr_batch_commit,
	.batch_rollback = wr_batch_rollback,
	.key_insert = wr_key_insert,
	.key_update = wr_key_update,
	.key_set_revoked = wr_key_set_revoked,
	.key_set_rotated = wr_key_set_rotated,
	.key_get = wr_key_get,
	.preset_get = wr_preset_get,
	.account_upsert = wr_account_upsert,
	.preset_upsert = wr_preset_upsert,
	.preset_delete = wr_preset_delete,
	.event_append = wr_event_append,
	.prune_keys = wr_prune_keys,
	.pruned_each = wr_pruned_each,
	.prune_events = wr_prune_events,
	.free = wr_free,
};

void apikey_upstream_defaults(struct apikey_upstream_options *o)
{
	memset(o, 0, sizeof(*o));
	o->wait_ms = APIKEY_UPSTREAM_WAIT_MS_DEFAULT;
}

int apikey_upstream_attach(struct apikey_store *s, const struct apikey_upstream_options *o, const char *app)
{
	struct writer *w = calloc(1, sizeof(*w));
	char why[200];

	if (!w)
		return APIKEY_ERR_NOMEM;
	if (apikey_upstream_check_conninfo(up_writer_conninfo(o), o->insecure, why, sizeof(why)) != 0) {
		apikey_store_log(s, LOG_ERR, "upstream: %s", why);
		free(w);
		return APIKEY_ERR_CONFIG;
	}
	w->s = s;
	w->o = *o;
	w->u.stop_fd = -1;
	snprintf(w->app, sizeof(w->app), "%s", app ? app : "apikey");
	if (gethostname(w->host, sizeof(w->host) - 1) != 0)
		snprintf(w->host, sizeof(w->host), "?");
	return apikey_store_set_backend(s, &upstream_backend, w);   /* w transferred */
}

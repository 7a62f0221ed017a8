/* pg.c — one PostgreSQL connection the way fleet mode uses it: the
 * connection string checked (no password in apikey.conf, no plain-text TCP),
 * connected and queried through libpq's non-blocking API, every wait bounded
 * and interruptible by a stop descriptor, errors mapped to APIKEY_ERR_* and
 * logged with host and database only. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <openssl/rand.h>
#include "upstream_int.h"

int64_t up_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long up_parse_int(const char *s, long long min, long long max)
{
	unsigned long long v;
	bool neg = s && s[0] == '-';

	if (!s || apikey_parse_uint(neg ? s + 1 : s, 0, neg ? (unsigned long long)-min : (unsigned long long)max,
	                            &v) != 0)
		return min - 1;
	return neg ? -(long long)v : (long long)v;
}

int up_uuid(char out[APIKEY_UUID_LEN + 1])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return APIKEY_ERR_CRYPTO;
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, APIKEY_UUID_LEN + 1,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

struct up_logger store_logger(struct apikey_store *s)
{
	struct up_logger lg;

	apikey_store_sink(s, &lg.fn, &lg.ctx);
	return lg;
}

void up_log(const struct up_conn *u, int prio, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!u->lg.fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	u->lg.fn(u->lg.ctx, prio, msg);
}

/* The first line of libpq's message, without its "ERROR:  " or newline. */
static void first_line(const char *m, char *out, size_t outsz)
{
	size_t n;

	if (!m)
		m = "";
	if (!strncmp(m, "ERROR:  ", 8))
		m += 8;
	n = strcspn(m, "\n");
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, m, n);
	out[n] = '\0';
}

/* ---- the connection string ----------------------------------------------------- */

const char *up_writer_conninfo(const struct apikey_upstream_options *o)
{
	return o->writer_conninfo[0] ? o->writer_conninfo : o->conninfo;
}

int apikey_upstream_check_conninfo(const char *conninfo, bool insecure, char *why, size_t whysz)
{
	PQconninfoOption *opts, *o;
	const char *host = NULL, *hostaddr = NULL, *sslmode = NULL;
	char *err = NULL;
	int r = APIKEY_ERR_CONFIG;

	if (!(opts = PQconninfoParse(conninfo, &err))) {
		snprintf(why, whysz, "not a libpq connection string%s%s", err ? ": " : "",
		         err ? "(see libpq's \"Connection Strings\")" : "");
		PQfreemem(err);
		return APIKEY_ERR_CONFIG;
	}
	for (o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		if (!strcmp(o->keyword, "password")) {
			snprintf(why, whysz, "password= is refused in apikey.conf (readable by all): use passfile= or ~/.pgpass");
			goto out;
		}
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "hostaddr"))
			hostaddr = o->val;
		else if (!strcmp(o->keyword, "sslmode"))
			sslmode = o->val;
	}
	if (!insecure) {
		/* every host of a list must be a unix socket directory (an absolute
		 * path, or @ for the abstract namespace), or TLS must be verified */
		bool tcp = hostaddr != NULL;
		for (const char *h = host; h && *h && !tcp;) {
			size_t n = strcspn(h, ",");
			if (n && h[0] != '/' && h[0] != '@')
				tcp = true;
			h += n + (h[n] == ',');
		}
		if (tcp && (!sslmode || (strcmp(sslmode, "verify-full") && strcmp(sslmode, "verify-ca")))) {
			snprintf(why, whysz, "a TCP upstream needs sslmode=verify-full (or verify-ca); "
			         "upstream_insecure=yes allows plain text for tests");
			goto out;
		}
	}
	r = 0;
out:
	PQconninfoFree(opts);
	return r;
}

/* ---- waits ------------------------------------------------------------------------ */

/* Wait for the socket (POLLIN and/or POLLOUT) or the stop fd: 1 ready,
 * 0 timeout, -1 stop or error. */
static int wait_sock(struct up_conn *u, int sock, short events, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = sock, .events = events }, { .fd = u->stop_fd, .events = POLLIN } };
	int n;

	do {
		n = poll(p, u->stop_fd >= 0 ? 2 : 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (u->stop_fd >= 0 && (p[1].revents & POLLIN)) {
		u->stopped = true;
		return -1;
	}
	return n > 0 ? 1 : 0;
}

int up_connect(struct up_conn *u, const char *conninfo, bool insecure, const char *app,
               struct up_logger lg, int stop_fd)
{
	const char *const kw[] = { "fallback_application_name", "connect_timeout", "keepalives_idle",
	                           "keepalives_interval", "keepalives_count", "dbname", NULL };
	const char *vals[] = { app, "10", "10", "5", "3", conninfo, NULL };
	char why[200], host[96];
	int64_t deadline = mono_ms() + UP_CONNECT_TIMEOUT_MS;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	memset(u, 0, sizeof(*u));
	u->lg = lg;
	u->stop_fd = stop_fd;
	u->timeout_ms = UP_QUERY_TIMEOUT_MS;
	snprintf(u->where, sizeof(u->where), "upstream");
	if (apikey_upstream_check_conninfo(conninfo, insecure, why, sizeof(why)) != 0) {
		up_log(u, LOG_ERR, "upstream: %s", why);
		return APIKEY_ERR_CONFIG;
	}
	/* the string's own settings come after ours (expand_dbname), so they win */
	if (!(u->c = PQconnectStartParams(kw, vals, 1)))
		return APIKEY_ERR_NOMEM;
	while (PQstatus(u->c) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		int64_t left = deadline - mono_ms();
		int w;

		if (left <= 0) {
			first_line("timed out", why, sizeof(why));
			goto fail;
		}
		w = wait_sock(u, PQsocket(u->c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, (int)left);
		if (w < 0) {
			snprintf(why, sizeof(why), u->stopped ? "stopped" : "poll failed");
			goto fail;
		}
		if (w > 0)
			st = PQconnectPoll(u->c);
	}
	if (PQstatus(u->c) != CONNECTION_OK) {
		first_line(PQerrorMessage(u->c), why, sizeof(why));
		goto fail;
	}
	snprintf(host, sizeof(host), "%s", PQhost(u->c) ? PQhost(u->c) : "?");
	snprintf(u->where, sizeof(u->where), "host %s, database %s", host, PQdb(u->c) ? PQdb(u->c) : "?");
	if (PQsetnonblocking(u->c, 1) != 0) {
		first_line(PQerrorMessage(u->c), why, sizeof(why));
		goto fail;
	}
	return 0;
fail:
	/* where it was going, from the string's own fields (never the string) */
	{
		PQconninfoOption *o = PQconninfoParse(conninfo, NULL);
		const char *h = NULL, *d = NULL;
		for (PQconninfoOption *p = o; p && p->keyword; p++) {
			if (!strcmp(p->keyword, "host") && p->val)
				h = p->val;
			if (!strcmp(p->keyword, "dbname") && p->val)
				d = p->val;
		}
		snprintf(u->where, sizeof(u->where), "host %.80s, database %.60s", h ? h : "(default)",
		         d ? d : "(default)");
		PQconninfoFree(o);
	}
	if (!u->stopped)
		up_log(u, LOG_ERR, "upstream unreachable (%s): %s", u->where, why);
	PQfinish(u->c);
	u->c = NULL;
	return APIKEY_ERR_UPSTREAM;
}

void up_close(struct up_conn *u)
{
	if (u->c)
		PQfinish(u->c);
	u->c = NULL;
}

bool up_ok(const struct up_conn *u)
{
	return u->c && PQstatus(u->c) == CONNECTION_OK;
}

static int lost(struct up_conn *u, const char *what)
{
	char why[200];

	if (u->stopped)
		return APIKEY_ERR_UPSTREAM;
	first_line(u->c ? PQerrorMessage(u->c) : "", why, sizeof(why));
	up_log(u, LOG_ERR, "upstream unreachable (%s): %s%s%s", u->where, what, why[0] ? ": " : "", why);
	return APIKEY_ERR_UPSTREAM;
}

/* Send what libpq buffered. */
static int flush_out(struct up_conn *u)
{
	int r;

	while ((r = PQflush(u->c)) == 1) {
		int w = wait_sock(u, PQsocket(u->c), POLLIN | POLLOUT, (int)u->timeout_ms);
		if (w <= 0)
			return lost(u, w == 0 ? "no answer" : "interrupted");
		if (!PQconsumeInput(u->c))
			return lost(u, "connection lost");
	}
	return r == 0 ? 0 : lost(u, "connection lost");
}

/* Wait until a result is ready (PQisBusy false). */
static int await_result(struct up_conn *u)
{
	while (PQisBusy(u->c)) {
		int w = wait_sock(u, PQsocket(u->c), POLLIN, (int)u->timeout_ms);
		if (w <= 0)
			return lost(u, w == 0 ? "no answer" : "interrupted");
		if (!PQconsumeInput(u->c))
			return lost(u, "connection lost");
	}
	return 0;
}

static int map_error(struct up_conn *u, PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char msg[200];

	if (state && !strcmp(state, "23505"))
		return APIKEY_ERR_EXISTS;
	if (state && (!strncmp(state, "23", 2) || !strncmp(state, "22", 2)))
		return APIKEY_ERR_INVALID;
	if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01")))
		return APIKEY_ERR_BUSY;
	first_line(PQresultErrorMessage(res), msg, sizeof(msg));
	if (PQstatus(u->c) != CONNECTION_OK)
		return lost(u, "connection lost");
	up_log(u, LOG_ERR, "upstream (%s) refused: %s", u->where, msg);
	return APIKEY_ERR_UPSTREAM;
}

enum send_kind { SEND_SCRIPT, SEND_PARAMS, SEND_PREPARED, SEND_PREPARE };

static PGresult *run(struct up_conn *u, enum send_kind kind, const char *sql_or_name, const char *sql, int n,
                     const char *const *params, int *err)
{
	PGresult *res, *last = NULL;
	int r = 0, sent;

	*err = APIKEY_ERR_UPSTREAM;
	if (!up_ok(u)) {
		lost(u, "not connected");
		return NULL;
	}
	switch (kind) {
	case SEND_SCRIPT:   sent = PQsendQuery(u->c, sql_or_name); break;
	case SEND_PARAMS:   sent = PQsendQueryParams(u->c, sql_or_name, n, NULL, params, NULL, NULL, 0); break;
	case SEND_PREPARED: sent = PQsendQueryPrepared(u->c, sql_or_name, n, params, NULL, NULL, 0); break;
	default:            sent = PQsendPrepare(u->c, sql_or_name, sql, n, NULL); break;
	}
	if (!sent) {
		lost(u, "cannot send");
		return NULL;
	}
	if ((r = flush_out(u)) != 0)
		return NULL;
	for (;;) {
		if ((r = await_result(u)) != 0)
			break;
		if (!(res = PQgetResult(u->c)))
			break;
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			if (r == 0) {
				PQclear(last);
				last = res;
				res = NULL;
			}
			break;
		default:
			if (r == 0)
				r = map_error(u, res);
			break;
		}
		PQclear(res);
	}
	if (r != 0) {
		PQclear(last);
		*err = r;
		return NULL;
	}
	*err = last ? 0 : lost(u, "no result");
	return last;
}

PGresult *up_query(struct up_conn *u, const char *sql, int n, const char *const *params, int *err)
{
	return run(u, n ? SEND_PARAMS : SEND_SCRIPT, sql, NULL, n, params, err);
}

PGresult *up_query_prepared(struct up_conn *u, const char *name, int n, const char *const *params, int *err)
{
	return run(u, SEND_PREPARED, name, NULL, n, params, err);
}

int up_prepare(struct up_conn *u, const char *name, const char *sql, int n)
{
	int r;
	PGresult *res = run(u, SEND_PREPARE, name, sql, n, NULL, &r);

	PQclear(res);
	return res ? 0 : r;
}

int up_wait_input(struct up_conn *u, int timeout_ms)
{
	int w;

	if (!up_ok(u))
		return -1;
	w = wait_sock(u, PQsocket(u->c), POLLIN, timeout_ms);
	if (w < 0)
		return u->stopped ? 0 : (lost(u, "poll failed"), -1);
	if (w == 0)
		return 0;
	if (!PQconsumeInput(u->c)) {
		lost(u, "connection lost");
		return -1;
	}
	return 1;
}

int up_copy_out(struct up_conn *u, const char *sql, int (*fn)(void *ctx, const char *buf, size_t len),
                void *ctx)
{
	PGresult *res;
	char *buf;
	int n, r = 0;

	if (!PQsendQuery(u->c, sql) || flush_out(u) != 0 || await_result(u) != 0)
		return lost(u, "copy");
	res = PQgetResult(u->c);
	if (!res || PQresultStatus(res) != PGRES_COPY_OUT) {
		r = res ? map_error(u, res) : lost(u, "copy");
		PQclear(res);
		while ((res = PQgetResult(u->c)))
			PQclear(res);
		return r;
	}
	PQclear(res);
	for (;;) {
		n = PQgetCopyData(u->c, &buf, 1);
		if (n > 0) {
			if (r == 0)
				r = fn(ctx, buf, (size_t)n);
			PQfreemem(buf);
			continue;
		}
		if (n == 0) {
			int w = wait_sock(u, PQsocket(u->c), POLLIN, (int)u->timeout_ms);
			if (w <= 0 || !PQconsumeInput(u->c))
				return lost(u, w == 0 ? "copy: no data" : "copy");
			continue;
		}
		break;          /* -1: done; -2: error */
	}
	if (n == -2)
		return lost(u, "copy");
	if (await_result(u) != 0)
		return APIKEY_ERR_UPSTREAM;
	while ((res = PQgetResult(u->c))) {
		if (r == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
			r = map_error(u, res);
		PQclear(res);
	}
	return r;
}

/* ---- the checks every session makes ---------------------------------------------- */

int up_check_schema(struct up_conn *u)
{
	int v, r;

	if ((r = up_schema_version(u, &v)) != 0)
		return r;
	if (v == 0) {
		up_log(u, LOG_ERR, "upstream (%s) has no apikey schema: run 'apikeyctl upstream init'", u->where);
		return APIKEY_ERR_UPSTREAM;
	}
	if (v > UPSTREAM_SCHEMA_VERSION) {
		up_log(u, LOG_ERR, "upstream schema %d is newer than this program (%d): upgrade it", v,
		       UPSTREAM_SCHEMA_VERSION);
		return APIKEY_ERR_UPSTREAM;
	}
	if (v < UPSTREAM_SCHEMA_MIN) {
		up_log(u, LOG_ERR, "upstream schema %d is older than this program needs (%d): run "
		       "'apikeyctl upstream init' to migrate it", v, UPSTREAM_SCHEMA_MIN);
		return APIKEY_ERR_UPSTREAM;
	}
	return 0;
}

int up_check_pepper_fp(struct up_conn *u, const char *fp, const char *pepper_path, const char *doing)
{
	PGresult *res;
	int r;

	if (!(res = up_query(u, "SELECT value FROM apikey.meta WHERE name = 'pepper_fp'", 0, NULL, &r)))
		return r;
	if (PQntuples(res) != 1) {
		up_log(u, LOG_ERR, "upstream (%s) holds no pepper fingerprint: run 'apikeyctl upstream init' on a host "
		       "with the fleet's pepper; %s", u->where, doing);
		r = APIKEY_ERR_PEPPER;
	} else if (strcmp(PQgetvalue(res, 0, 0), fp) != 0) {
		up_log(u, LOG_ERR, "this host's pepper (%s) does not match the fleet's (fingerprint %.8s... here, "
		       "%.8s... upstream): %s", pepper_path, fp, PQgetvalue(res, 0, 0), doing);
		r = APIKEY_ERR_PEPPER;
	} else {
		r = 0;
	}
	PQclear(res);
	return r;
}

int up_check_pepper(struct up_conn *u, struct apikey_store *s, const char *doing)
{
	char fp[APIKEY_PEPPER_FP_SIZE], path[APIKEY_PATH_SIZE];
	int r;

	if ((r = apikey_store_pepper_fingerprint(s, fp)) != 0)
		return r;
	apikey_store_pepper_path(s, path, sizeof(path));
	return up_check_pepper_fp(u, fp, path, doing);
}

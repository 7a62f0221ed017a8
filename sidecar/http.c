/* http.c — the routes of apikeyd and their handlers.  Every handler ends in
 * exactly one reply (through finish()), which also counts the request in the
 * metrics and writes the access-log line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "sidecar.h"
#include "guard.h"
#include "request.h"

#define M_ANY  (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | \
                EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH)
#define M_READ (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)
#define M_POST EVHTTP_REQ_POST

typedef void handler_fn(struct sc_worker *w, struct evhttp_request *req, int64_t t0);

struct route {
	const char *path;
	bool prefix;            /* also serves path + "/…" (Envoy ext_authz appends the original path) */
	unsigned methods;
	enum sc_endpoint ep;
	handler_fn *fn;
};

/* ---- replies ---------------------------------------------------------------- */

/* The reason phrase of every status apikeyd sends (RFC 9110 §15; 431 is
 * RFC 6585's), the guard's refusals included. */
const char *sc_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default:  return "Error";
	}
}

/* Method names, in the order Allow and --routes list them. */
static const struct { unsigned m; const char *name; } methods[] = {
	{ EVHTTP_REQ_GET, "GET" }, { EVHTTP_REQ_HEAD, "HEAD" }, { EVHTTP_REQ_POST, "POST" },
	{ EVHTTP_REQ_PUT, "PUT" }, { EVHTTP_REQ_DELETE, "DELETE" }, { EVHTTP_REQ_OPTIONS, "OPTIONS" },
	{ EVHTTP_REQ_PATCH, "PATCH" }, { EVHTTP_REQ_TRACE, "TRACE" }, { EVHTTP_REQ_CONNECT, "CONNECT" },
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static const char *method_name(enum evhttp_cmd_type m)
{
	for (size_t i = 0; i < N_METHODS; i++)
		if (methods[i].m == (unsigned)m)
			return methods[i].name;
	return "OTHER";
}

/* "GET, HEAD" (sep ", ") or "GET,HEAD" (sep ","): the methods of a mask. */
static const char *methods_text(unsigned mask, const char *sep, char *buf, size_t bufsz)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_METHODS; i++)
		if (mask & methods[i].m)
			used += (size_t)snprintf(buf + used, bufsz - used, "%s%s", used ? sep : "",
			                         methods[i].name);
	return buf;
}

/* The access-log line: time, peer, method, path (never the query, and no
 * key-like path segment: either may carry a key), status, outcome, key id,
 * latency. */
static void access_line(const struct sc_worker *w, struct evhttp_request *req, int status, int result,
                        const char *key_id, int64_t ns)
{
	char line[SIDECAR_LOG_LINE], path[SIDECAR_LOG_PATH_MAX], when[32];
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *p = u ? evhttp_uri_get_path(u) : NULL, *host = NULL;
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	ev_uint16_t port = 0;
	int n;

	if (c)
		evhttp_connection_get_peer(c, (char **)&host, &port);
	sc_access_path(&w->sh->format, p, path, sizeof(path));
	apikey_format_time((int64_t)time(NULL), when);
	n = snprintf(line, sizeof(line), "%s %s:%u %s \"%s\" %d %s %s %.3fms\n", when,
	             host && host[0] ? host : "-", (unsigned)port,
	             method_name(evhttp_request_get_command(req)), path[0] ? path : "-", status,
	             sc_result_name(result), key_id && key_id[0] ? key_id : "-", (double)ns / 1e6);
	if (n > 0)
		sc_access_write(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* The Date header, formatted once a second per worker (libevent formats it
 * for every response it has none for; time() is the vDSO's, no syscall). */
static const char *date_now(struct sc_worker *w)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != w->date_s && gmtime_r(&now, &tm)) {
		evutil_date_rfc1123(w->date, sizeof(w->date), &tm);
		w->date_s = now;
	}
	return w->date;
}

/* The one way a handler answers. */
static void finish(struct sc_worker *w, struct evhttp_request *req, enum sc_endpoint ep,
                   int status, int result, const char *key_id, int64_t t0)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct evbuffer *body = evhttp_request_get_output_buffer(req);
	size_t len = evbuffer_get_length(body);
	int64_t ns;

	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* the headers a GET gets, without the body: libevent 2.1 would send
		 * it, and a kept-alive client would read it as the next response */
		char n[24];

		snprintf(n, sizeof(n), "%zu", len);
		evhttp_remove_header(oh, "Content-Length");
		evhttp_add_header(oh, "Content-Length", n);
		evbuffer_drain(body, len);
	} else if (len == 0) {
		evhttp_add_header(oh, "Content-Length", "0");
	}
	evhttp_add_header(oh, "Date", date_now(w));
	if (sc_guard_reply(w, req) || w->draining)
		evhttp_add_header(oh, "Connection", "close");
	ns = sc_now_ns() - t0;
	if (sc_access_enabled())
		access_line(w, req, status, result, key_id, ns);
	sc_metrics_count(w, ep, result, ns);
	evhttp_send_reply(req, status, sc_reason(status), NULL);
}

static int dump_cb(const char *buf, size_t size, void *data)
{
	return evbuffer_add(data, buf, size);
}

/* A JSON string of text that may not be UTF-8 (owner and name are bytes in
 * the store, parser messages may quote input): non-ASCII bytes of an invalid
 * string become '?'.  NULL only when out of memory. */
static json_t *jtext(const char *text)
{
	char buf[APIKEY_META_SIZE];
	json_t *j = json_string(text);
	size_t i;

	if (j)
		return j;
	for (i = 0; text[i] && i < sizeof(buf) - 1; i++)
		buf[i] = (unsigned char)text[i] < 0x80 ? text[i] : '?';
	buf[i] = '\0';
	return json_string(buf);
}

/* How an error's JSON body goes out: as the body, in X-ApiKey-Error
 * (auth_error_body=header: nginx can return it), or not at all. */
enum reply_body { RB_NONE = SC_BODY_NONE, RB_JSON = SC_BODY_JSON, RB_HEADER = SC_BODY_HEADER };

/* A body the core rendered in the profile's shape (apikey_answer_render*). */
static void rendered_body(struct evhttp_request *req, const char *body, size_t len, enum reply_body how)
{
	if (how == RB_JSON) {
		struct evbuffer *b = evhttp_request_get_output_buffer(req);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
		evbuffer_add(b, body, len);
		evbuffer_add(b, "\n", 1);
	} else if (how == RB_HEADER) {
		char ascii[6 * APIKEY_ERROR_BODY_MAX + 1];
		apikey_json_ascii(body, len, ascii, sizeof(ascii));
		evhttp_add_header(evhttp_request_get_output_headers(req), "X-ApiKey-Error", ascii);
	}
}

/* An answer that is not a verification outcome (400, 404, 405, 500), in the
 * profile's shape with our code name. */
static void error_body(struct sc_worker *w, struct evhttp_request *req, const char *msg, const char *code,
                       int status, enum reply_body how)
{
	char body[APIKEY_ERROR_BODY_MAX + 1];
	size_t n = apikey_answer_render_error(&w->rt.answers, code, msg, status, body);

	rendered_body(req, body, n, how);
}

/* Writes root as the JSON body (consumes the reference).  False when it could
 * not be built (out of memory): the caller answers 500, never a half answer. */
static bool json_body(struct sc_worker *w, struct evhttp_request *req, json_t *root)
{
	struct evbuffer *b = evhttp_request_get_output_buffer(req);
	bool ok = root && json_dump_callback(root, dump_cb, b, JSON_COMPACT) == 0;

	if (!ok) {
		evbuffer_drain(b, evbuffer_get_length(b));
		error_body(w, req, "Internal error", "INTERNAL", 500, RB_JSON);
	} else {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
		evbuffer_add(b, "\n", 1);
	}
	json_decref(root);
	return ok;
}

static void method_not_allowed(struct sc_worker *w, struct evhttp_request *req, enum sc_endpoint ep,
                               unsigned allowed, int64_t t0)
{
	char allow[80];

	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	                  methods_text(allowed, ", ", allow, sizeof(allow)));
	error_body(w, req, "Method not allowed", "METHOD_NOT_ALLOWED", 405, RB_JSON);
	finish(w, req, ep, 405, RES_METHOD_NOT_ALLOWED, NULL, t0);
}

static void bad_request(struct sc_worker *w, struct evhttp_request *req, enum sc_endpoint ep,
                        const char *why, enum reply_body how, int64_t t0)
{
	char msg[256];

	evhttp_add_header(evhttp_request_get_output_headers(req), "X-ApiKey-Code", "BAD_REQUEST");
	snprintf(msg, sizeof(msg), "Bad request: %s", why);
	error_body(w, req, msg, "BAD_REQUEST", 400, how);
	finish(w, req, ep, 400, RES_BAD_REQUEST, NULL, t0);
}

static void text_body(struct evhttp_request *req, const char *type, const void *data, size_t len)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evbuffer_add(evhttp_request_get_output_buffer(req), data, len);
}

/* ---- verification ------------------------------------------------------------ */

/* Pick up what SIGHUP changed: one atomic load per request when nothing did. */
static void refresh_runtime(struct sc_worker *w)
{
	unsigned gen = __atomic_load_n(&w->sh->rt_gen, __ATOMIC_ACQUIRE);

	if (gen == w->rt_gen)
		return;
	pthread_mutex_lock(&w->sh->rt_lock);
	w->rt = w->sh->rt;
	w->rt_gen = w->sh->rt_gen;
	pthread_mutex_unlock(&w->sh->rt_lock);
}

/* Header names compare without case.  Most differ in their first letter,
 * which settles it without a call (/auth compares each header with five
 * names, and pays for the head check of guard.c with what this saves). */
static inline bool is_name(const char *k, const char *name)
{
	return ((k[0] ^ name[0]) & ~0x20) == 0 && !strcasecmp(k, name);
}

static bool is_key_header(const struct sc_worker *w, const char *name)
{
	return is_name(name, "Authorization") || is_name(name, "X-API-Key") ||
	       (w->rt.key_header[0] && is_name(name, w->rt.key_header));
}

/* Header values may carry a key: wipe every one that could, once read
 * (evhttp frees them without clearing).  One pass over the headers. */
static void wipe_key_headers(struct sc_worker *w, struct evhttp_request *req)
{
	struct evkeyval *kv;

	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
		if (kv->value && is_key_header(w, kv->key))
			OPENSSL_cleanse(kv->value, strlen(kv->value));
}

/* What the request carries for verification, in one pass over its headers
 * (the first of each key header counts, as evhttp_find_header would). */
static void gather(struct sc_worker *w, struct evhttp_request *req, bool want_scopes,
                   struct sc_request *rq)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	struct evkeyval *kv;

	memset(rq, 0, sizeof(*rq));
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
		const char *k = kv->key;

		/* not else-if: key_header may name one of the standard headers */
		if (!rq->authorization && is_name(k, "Authorization"))
			rq->authorization = kv->value;
		if (!rq->x_api_key && is_name(k, "X-API-Key"))
			rq->x_api_key = kv->value;
		if (!rq->custom_header && w->rt.key_header[0] && is_name(k, w->rt.key_header))
			rq->custom_header = kv->value;
		if (!want_scopes)
			continue;
		if (is_name(k, "X-Required-Scope")) {
			if (rq->n_scope_headers == SC_SCOPE_HEADERS_MAX)
				rq->scope_headers_overflow = true;
			else
				rq->scope_headers[rq->n_scope_headers++] = kv->value;
		} else if (!rq->plan_header && is_name(k, "X-Required-Plan")) {
			rq->plan_header = kv->value;
		}
	}
	rq->query = u ? evhttp_uri_get_query(u) : NULL;
	rq->key_query = w->rt.key_query;
	rq->want_scopes = want_scopes;
	rq->conf_plans = w->rt.require_plan;
}

static void run_verify(struct sc_worker *w, struct sc_input *in, const char *source,
                       struct apikey_verify_result *res)
{
	struct apikey_verify_request vr = {
		.key = in->key, .key_len = in->key_len, .scopes = in->scopes,
		.require_plan = in->plans, .source = source,
	};

	if (sc_worker_store(w)) {
		apikey_verify_cached(&w->verifier, &vr, res);
		if (res->outcome == APIKEY_UNAVAILABLE && res->err == APIKEY_ERR_REPLACED) {
			sc_store_replaced(w->sh, w->store, w->store_epoch, "the file at its path was replaced");
			sc_worker_watch(w, 0);
		}
	} else {
		memset(res, 0, sizeof(*res));
		res->outcome = APIKEY_UNAVAILABLE;
		res->err = APIKEY_ERR_REPLACED;
	}
	sc_input_wipe(in);
	if (res->outcome == APIKEY_UNAVAILABLE && res->err != APIKEY_ERR_REPLACED && res->err != APIKEY_ERR_PENDING &&
	    res->err != APIKEY_ERR_BUSY) {
		int64_t now = (int64_t)time(NULL);
		if (now != w->last_unavailable_log_s) {   /* at most one line a second per worker */
			w->last_unavailable_log_s = now;
			log_warnx("worker %u: key store unavailable (%s): answering 503",
			          w->idx, apikey_strerror(res->err));
		}
	}
}

/* Decimal text of v (the hot path formats three numbers per request:
 * cheaper than snprintf). */
static const char *utoa(uint32_t v, char buf[12])
{
	char *p = buf + 11;

	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return p;
}

/* Append s, or v in decimal, at p (the caller's buffer has room); return
 * the new end. */
static char *cat(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n + 1);
	return p + n;
}

static char *num(char *p, uint32_t v)
{
	char b[12];

	return cat(p, utoa(v, b));
}

/*
 * The rate-limit answer: SPEC §3's RateLimit-Limit, -Remaining, -Reset; or,
 * with ratelimit_draft_headers=yes, the two fields of the current IETF draft
 * (draft-ietf-httpapi-ratelimit-headers: RateLimit-Policy, quota q per
 * window w; RateLimit, r remaining and t seconds to reset) — one header
 * fewer on every answer (docs/BENCHMARKS.md).
 */
static void ratelimit_headers(struct sc_worker *w, struct evkeyvalq *oh, const struct apikey_verify_result *res)
{
	char v[64];

	if (!res->rate_checked)
		return;
	if (w->rt.ratelimit_draft_headers) {
		cat(num(cat(v, "\"default\";q="), res->ratelimit.limit), ";w=60");
		evhttp_add_header(oh, "RateLimit-Policy", v);
		num(cat(num(cat(v, "\"default\";r="), res->ratelimit.remaining), ";t="), res->ratelimit.reset_s);
		evhttp_add_header(oh, "RateLimit", v);
	} else {
		evhttp_add_header(oh, "RateLimit-Limit", utoa(res->ratelimit.limit, v));
		evhttp_add_header(oh, "RateLimit-Remaining", utoa(res->ratelimit.remaining, v));
		evhttp_add_header(oh, "RateLimit-Reset", utoa(res->ratelimit.reset_s, v));
	}
	if (res->outcome == APIKEY_RATE_LIMITED)
		evhttp_add_header(oh, "Retry-After",
		                  utoa(res->ratelimit.retry_after_s ? res->ratelimit.retry_after_s : 1, v));
}

/* The SPEC §3 failure answer: status, WWW-Authenticate on 401, RateLimit-*
 * and Retry-After on 429, and the body in the profile's shape (SPEC §10:
 * its code names, messages and template; the code is the client's, the
 * access log and metrics keep the outcome). */
static void outcome_error(struct sc_worker *w, struct evhttp_request *req, enum sc_endpoint ep,
                          const struct apikey_verify_result *res, enum reply_body how, int64_t t0)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	int status = apikey_outcome_http_status(res->outcome);
	char body[APIKEY_ERROR_BODY_MAX + 1];
	size_t n;

	if (status == 401)
		evhttp_add_header(oh, "WWW-Authenticate", "Bearer");
	/* an imported key being checked (or its hint's budget spent): ask again */
	if (res->outcome == APIKEY_UNAVAILABLE && (res->err == APIKEY_ERR_PENDING || res->err == APIKEY_ERR_BUSY))
		evhttp_add_header(oh, "Retry-After", "1");
	/* the code as a header too: nginx reads no subrequest body, but can put
	 * $upstream_http_x_apikey_code into its own error page */
	evhttp_add_header(oh, "X-ApiKey-Code", apikey_answer_code(&w->rt.answers, res->outcome));
	ratelimit_headers(w, oh, res);
	evhttp_add_header(oh, "Cache-Control", "no-store");
	if (how != RB_NONE) {
		n = apikey_answer_render(&w->rt.answers, res->outcome, res->missing_scope, body);
		rendered_body(req, body, n, how);
	}
	finish(w, req, ep, status, res->outcome, res->found ? res->key.id : NULL, t0);
}

static json_t *scopes_array(const char *list)
{
	json_t *a = json_array();
	const char *cur = list, *item;
	size_t n;

	while (a && apikey_list_next(&cur, &item, &n))
		json_array_append_new(a, json_stringn(item, n));
	return a;
}

static json_t *time_or_null(int64_t t)
{
	char buf[32];

	if (!t)
		return json_null();
	apikey_format_time(t, buf);
	return json_string(buf);
}

static json_t *ratelimit_json(const struct apikey_verify_result *res)
{
	if (!res->rate_checked)
		return json_null();
	return json_pack("{s:I, s:I, s:I}", "limit", (json_int_t)res->ratelimit.limit,
	                 "remaining", (json_int_t)res->ratelimit.remaining,
	                 "reset", (json_int_t)res->ratelimit.reset_s);
}

/* ---- handlers ---------------------------------------------------------------- */

/*
 * The step /auth and /v1/whoami share: the key the request presents (and,
 * for /auth, the scopes and plans it requires), verified, key headers wiped.
 * True for VALID; otherwise the request has been answered (400 or the SPEC
 * §3 error; /auth's error bodies follow auth_error_body).
 */
static bool key_valid(struct sc_worker *w, struct evhttp_request *req, enum sc_endpoint ep,
                      const char *source, struct apikey_verify_result *res, int64_t t0)
{
	enum reply_body body = ep == EP_AUTH ? (enum reply_body)w->rt.auth_error_body : RB_JSON;
	bool auth = ep == EP_AUTH;
	struct sc_request rq;
	struct sc_input in;
	const char *why;

	gather(w, req, auth, &rq);
	if (sc_request_input(&rq, &in, &why) != 0) {
		wipe_key_headers(w, req);
		bad_request(w, req, ep, why, body, t0);
		return false;
	}
	run_verify(w, &in, source, res);
	wipe_key_headers(w, req);
	if (res->outcome != APIKEY_VALID) {
		outcome_error(w, req, ep, res, body, t0);
		return false;
	}
	return true;
}

/* ANY /auth — forward-auth for nginx auth_request, Envoy ext_authz, Traefik
 * forwardAuth.  200 carries no body (Content-Length: 0) and the identity. */
static void h_auth(struct sc_worker *w, struct evhttp_request *req, int64_t t0)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct apikey_verify_result res;

	if (!key_valid(w, req, EP_AUTH, "http:/auth", &res, t0))
		return;
	evhttp_add_header(oh, "X-ApiKey-Id", res.key.id);
	evhttp_add_header(oh, "X-ApiKey-Owner", res.key.owner);
	evhttp_add_header(oh, "X-ApiKey-Scopes", res.key.scopes);
	ratelimit_headers(w, oh, &res);
	finish(w, req, EP_AUTH, 200, APIKEY_VALID, res.key.id, t0);
}

/* POST /v1/verify — {"key":…, "scopes":[…]} → always 200 with the answer. */
static void h_verify(struct sc_worker *w, struct evhttp_request *req, int64_t t0)
{
	struct evbuffer *ib = evhttp_request_get_input_buffer(req);
	struct apikey_verify_result res;
	struct sc_input in;
	char why[200];
	size_t len = evbuffer_get_length(ib);
	char *body;
	json_t *key = NULL;
	bool ok = true;
	int r;

	body = len ? (char *)evbuffer_pullup(ib, (ev_ssize_t)len) : NULL;
	r = sc_parse_verify_body(body, len, &in, why, sizeof(why));
	if (body)   /* the body holds the key */
		OPENSSL_cleanse(body, len);
	if (r != 0) {
		bad_request(w, req, EP_VERIFY, why, RB_JSON, t0);
		return;
	}
	snprintf(in.plans, sizeof(in.plans), "%s", w->rt.require_plan);
	run_verify(w, &in, "http:/v1/verify", &res);
	if (res.found && !(key = json_pack("{s:s, s:o, s:o, s:o, s:o}", "id", res.key.id,
	                                   "owner", jtext(res.key.owner), "name", jtext(res.key.name),
	                                   "scopes", scopes_array(res.key.scopes),
	                                   "expires_at", time_or_null(res.key.expires_at_s))))
		ok = false;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	if (!json_body(w, req, ok ? json_pack("{s:b, s:s, s:o, s:o}", "valid", res.outcome == APIKEY_VALID,
	                                   "code", apikey_outcome_code(res.outcome),
	                                   "key", key ? key : json_null(), "ratelimit", ratelimit_json(&res))
	                       : NULL))
		ok = false;
	finish(w, req, EP_VERIFY, ok ? 200 : 500, ok ? (int)res.outcome : RES_BAD_REQUEST,
	       res.found ? res.key.id : NULL, t0);
}

/* The owner's account as /v1/whoami shows it: {plan, active}, or null
 * when none is recorded. */
static json_t *account_json(const struct apikey_verify_result *res)
{
	if (!res->has_account)
		return json_null();
	return json_pack("{s:o, s:b}", "plan", res->account.plan[0] ? jtext(res->account.plan) : json_null(),
	                 "active", res->account.active);
}

/* GET /v1/whoami — the presented key's own record and its owner's account. */
static void h_whoami(struct sc_worker *w, struct evhttp_request *req, int64_t t0)
{
	struct apikey_verify_result res;
	bool ok;

	if (!key_valid(w, req, EP_WHOAMI, "http:/v1/whoami", &res, t0))
		return;
	ratelimit_headers(w, evhttp_request_get_output_headers(req), &res);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	ok = json_body(w, req, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o}",
	                                 "id", res.key.id, "hint", res.key.hint, "owner", jtext(res.key.owner),
	                                 "name", jtext(res.key.name), "scopes", scopes_array(res.key.scopes),
	                                 "created_at", time_or_null(res.key.created_at_s),
	                                 "expires_at", time_or_null(res.key.expires_at_s),
	                                 "rate_limit", (json_int_t)res.key.rate_limit,
	                                 "account", account_json(&res),
	                                 "ratelimit", ratelimit_json(&res)));
	finish(w, req, EP_WHOAMI, ok ? 200 : 500, ok ? APIKEY_VALID : RES_BAD_REQUEST, res.key.id, t0);
}

static void h_healthz(struct sc_worker *w, struct evhttp_request *req, int64_t t0)
{
	text_body(req, "text/plain; charset=utf-8", "ok\n", 3);
	finish(w, req, EP_HEALTHZ, 200, RES_OK, NULL, t0);
}

/* Ready: this worker's connection reads the file its path names now. */
static void h_readyz(struct sc_worker *w, struct evhttp_request *req, int64_t t0)
{
	struct apikey_store *s = sc_worker_store(w);
	bool ready = false;

	if (s && apikey_store_check_files(s) == APIKEY_ERR_REPLACED) {
		sc_worker_watch(w, WATCH_FILES);
		s = sc_worker_store(w);
	}
	ready = s && apikey_store_ready(s);
	if (ready)
		text_body(req, "text/plain; charset=utf-8", "ready\n", 6);
	else if (!s)
		text_body(req, "text/plain; charset=utf-8", "key store unavailable (reopening)\n", 34);
	else
		text_body(req, "text/plain; charset=utf-8", "key store unavailable\n", 22);
	/* fleet mode: still ready while the upstream is away; the lines say how stale */
	sc_fleet_readyz(w->sh, evhttp_request_get_output_buffer(req));
	finish(w, req, EP_READYZ, ready ? 200 : 503, ready ? RES_OK : RES_NOT_READY, NULL, t0);
}

static void h_metrics(struct sc_worker *w, struct evhttp_request *req, int64_t t0)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	sc_metrics_render(w->sh, evhttp_request_get_output_buffer(req));
	finish(w, req, EP_METRICS, 200, RES_OK, NULL, t0);
}

static void h_openapi(struct sc_worker *w, struct evhttp_request *req, int64_t t0)
{
	text_body(req, "application/json", sc_openapi_json, sc_openapi_json_len);
	finish(w, req, EP_OPENAPI, 200, RES_OK, NULL, t0);
}

static const struct route routes[] = {
	{ "/auth", true, M_ANY, EP_AUTH, h_auth },
	{ "/v1/verify", false, M_POST, EP_VERIFY, h_verify },
	{ "/v1/whoami", false, M_READ, EP_WHOAMI, h_whoami },
	{ "/healthz", false, M_READ, EP_HEALTHZ, h_healthz },
	{ "/readyz", false, M_READ, EP_READYZ, h_readyz },
	{ "/metrics", false, M_READ, EP_METRICS, h_metrics },
	{ "/openapi.json", false, M_READ, EP_OPENAPI, h_openapi },
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* evhttp callback argument: the worker that owns the evhttp and the route. */
struct route_ctx { struct sc_worker *w; const struct route *r; };

/* A route's methods are checked here, once, from the table. */
static void dispatch(struct sc_worker *w, const struct route *r, struct evhttp_request *req,
                     int64_t t0)
{
	refresh_runtime(w);
	if (!(evhttp_request_get_command(req) & r->methods)) {
		wipe_key_headers(w, req);
		method_not_allowed(w, req, r->ep, r->methods, t0);
		return;
	}
	r->fn(w, req, t0);
}

/* The guard's framing check, once per request before anything else (a
 * proxy might have framed the request differently: guard.c).  True when it
 * refused the request: answered 400, and the connection closes after it. */
static bool refused(struct sc_worker *w, struct evhttp_request *req, enum sc_endpoint ep, int64_t t0)
{
	const char *why = sc_guard_request(w, req);

	if (!why)
		return false;
	refresh_runtime(w);
	wipe_key_headers(w, req);
	bad_request(w, req, ep, why, ep != EP_AUTH || w->rt.auth_error_body, t0);
	return true;
}

static void on_route(struct evhttp_request *req, void *arg)
{
	const struct route_ctx *c = arg;
	int64_t t0 = sc_now_ns();

	if (!refused(c->w, req, c->r->ep, t0))
		dispatch(c->w, c->r, req, t0);
}

/* Everything else: /auth/… (prefix route), or 404. */
static void on_other(struct evhttp_request *req, void *arg)
{
	struct sc_worker *w = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	const struct route *r = NULL;
	int64_t t0 = sc_now_ns();

	for (size_t i = 0; path && i < N_ROUTES && !r; i++) {
		size_t n = strlen(routes[i].path);
		if (routes[i].prefix && !strncmp(path, routes[i].path, n) && path[n] == '/')
			r = &routes[i];
	}
	if (refused(w, req, r ? r->ep : EP_OTHER, t0))
		return;
	if (r) {
		dispatch(w, r, req, t0);
		return;
	}
	refresh_runtime(w);
	if (path && (sc_admin_dispatch(w, req, path, t0) || sc_ui_dispatch(w, req, path, t0)))
		return;
	wipe_key_headers(w, req);
	error_body(w, req, "Not found", "NOT_FOUND", 404, RB_JSON);
	finish(w, req, EP_OTHER, 404, RES_NOT_FOUND, NULL, t0);
}

int sc_http_setup(struct sc_worker *w)
{
	struct timeval tv = { SIDECAR_IO_TIMEOUT_S, 0 };
	struct route_ctx *c;

	/* one context per route and worker, freed with the worker */
	c = calloc(N_ROUTES, sizeof(*c));
	if (!c)
		return APIKEY_ERR_NOMEM;
	w->route_ctx = c;
	/* guard.c counts the head as it arrives and answers first (431/414) */
	evhttp_set_max_headers_size(w->http, SIDECAR_MAX_HEADERS_SIZE + SIDECAR_HEAD_SLACK);
	evhttp_set_max_body_size(w->http, SIDECAR_MAX_BODY_SIZE);
	evhttp_set_timeout_tv(w->http, &tv);
	evhttp_set_allowed_methods(w->http, M_ANY);
	/* every body sets its own type; an empty /auth answer carries none */
	evhttp_set_default_content_type(w->http, NULL);
	for (size_t i = 0; i < N_ROUTES; i++) {
		c[i].w = w;
		c[i].r = &routes[i];
		if (evhttp_set_cb(w->http, routes[i].path, on_route, &c[i]) != 0)
			return APIKEY_ERR_INTERNAL;
	}
	evhttp_set_gencb(w->http, on_other, w);
	return 0;
}

void sc_http_print_routes(void)
{
	char m[80];

	for (size_t i = 0; i < N_ROUTES; i++) {
		methods_text(routes[i].methods, ",", m, sizeof(m));
		printf("%s %s\n", m, routes[i].path);
		if (routes[i].prefix)
			printf("%s %s/{rest}\n", m, routes[i].path);
	}
	sc_admin_print_routes();
	sc_ui_print_routes();
}

/* ---- for the admin API (admin.c): the same reply path and verification ---- */

void sc_reply(struct sc_worker *w, struct evhttp_request *req, enum sc_endpoint ep, int status,
              int result, const char *key_id, int64_t t0)
{
	finish(w, req, ep, status, result, key_id, t0);
}

bool sc_json_body(struct sc_worker *w, struct evhttp_request *req, json_t *root)
{
	return json_body(w, req, root);
}

json_t *sc_jtext(const char *text)
{
	return jtext(text);
}

bool sc_error_body(struct sc_worker *w, struct evhttp_request *req, int status, const char *code,
                   const char *field, const char *msg)
{
	json_t *body;

	if (apikey_answers_templated(&w->rt.answers)) {
		error_body(w, req, msg, code, status, RB_JSON);
		return true;
	}
	/* SPEC §3's body, and the field at fault when there is one */
	body = json_pack("{s:o, s:s, s:i}", "error", jtext(msg), "code", code, "status", status);
	if (body && field)
		json_object_set_new(body, "field", jtext(field));
	return json_body(w, req, body);
}

void sc_outcome_body(struct sc_worker *w, struct evhttp_request *req, const struct apikey_verify_result *res)
{
	char body[APIKEY_ERROR_BODY_MAX + 1];
	size_t n = apikey_answer_render(&w->rt.answers, res->outcome, res->missing_scope, body);

	evhttp_add_header(evhttp_request_get_output_headers(req), "X-ApiKey-Code",
	                  apikey_answer_code(&w->rt.answers, res->outcome));
	rendered_body(req, body, n, RB_JSON);
}

void sc_ratelimit_headers(struct sc_worker *w, struct evkeyvalq *oh, const struct apikey_verify_result *res)
{
	ratelimit_headers(w, oh, res);
}

void sc_wipe_key_headers(struct sc_worker *w, struct evhttp_request *req)
{
	wipe_key_headers(w, req);
}

int sc_verify_caller(struct sc_worker *w, struct evhttp_request *req, const char *source,
                     struct apikey_verify_result *res, const char **why)
{
	struct sc_request rq;
	struct sc_input in;
	int r;

	gather(w, req, false, &rq);
	rq.query = NULL;        /* keys never in the URL of an admin call */
	rq.key_query = NULL;
	r = sc_request_input(&rq, &in, why);
	if (r == 0)
		run_verify(w, &in, source, res);
	sc_input_wipe(&in);
	wipe_key_headers(w, req);
	return r;
}

/* admin.c — the admin API (SPEC §5a; docs/design/admin.md): its route
 * table, CORS, the caller's authentication, the one error answer, and the
 * writes — built on the worker, run by the writer thread (admin_writer.c)
 * through the same core functions as apikeyctl, answered back on the
 * worker.  The handlers are in admin_routes.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include "admin.h"

#define M_GET  EVHTTP_REQ_GET
#define M_POST EVHTTP_REQ_POST
#define M_PUT  EVHTTP_REQ_PUT
#define M_PATCH EVHTTP_REQ_PATCH
#define M_DEL  EVHTTP_REQ_DELETE
#define M_OPT  EVHTTP_REQ_OPTIONS

struct aroute {
	const char *pattern;      /* "{…}": one path part, the handler's a->param */
	unsigned method;
	void (*fn)(struct areq *a);
};

/* Every admin route; OPTIONS (CORS preflight) is served on each pattern. */
static const struct aroute routes[] = {
	{ "/v1/keys", M_GET, h_keys_list },
	{ "/v1/keys", M_POST, h_keys_create },
	{ "/v1/keys/{id}", M_GET, h_key_get },
	{ "/v1/keys/{id}", M_PATCH, h_key_patch },
	{ "/v1/keys/{id}/revoke", M_POST, h_key_revoke },
	{ "/v1/keys/{id}/rotate", M_POST, h_key_rotate },
	{ "/v1/keys/{id}/usage", M_GET, h_key_usage },
	{ "/v1/usage", M_GET, h_usage },
	{ "/v1/accounts/{owner}", M_GET, h_account_get },
	{ "/v1/accounts/{owner}", M_PUT, h_account_put },
	{ "/v1/presets", M_GET, h_presets_list },
	{ "/v1/presets/{name}", M_GET, h_preset_get },
	{ "/v1/presets/{name}", M_PUT, h_preset_put },
	{ "/v1/presets/{name}", M_DEL, h_preset_delete },
	{ "/v1/events", M_GET, h_events },
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

static const struct { unsigned m; const char *name; } method_names[] = {
	{ M_GET, "GET" }, { M_POST, "POST" }, { M_PUT, "PUT" }, { M_DEL, "DELETE" },
	{ M_OPT, "OPTIONS" }, { M_PATCH, "PATCH" },
};

static void methods_text(unsigned mask, const char *sep, char *buf, size_t sz)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if ((mask & method_names[i].m) && used < sz)
			used += (size_t)snprintf(buf + used, sz - used, "%s%s", used ? sep : "",
			                         method_names[i].name);
}

/* Does path match pattern?  A "{…}" part matches one non-empty path part
 * (no '/'), returned raw in *param; every other part matches itself.  No
 * normalising: "//", a trailing '/', "." and ".." parts match nothing
 * literal (an id of ".." is then refused by the handler, naming it). */
static bool match(const char *pattern, const char *path, const char **param, size_t *plen)
{
	const char *p = pattern, *q = path;

	*param = NULL;
	*plen = 0;
	while (*p && *q) {
		if (*p == '{') {
			const char *end = strchr(q, '/');
			size_t n = end ? (size_t)(end - q) : strlen(q);
			if (n == 0)
				return false;
			*param = q;
			*plen = n;
			q += n;
			p = strchr(p, '}') + 1;
		} else if (*p++ != *q++) {
			return false;
		}
	}
	return !*p && !*q;
}

void sc_admin_print_routes(void)
{
	char m[64];

	for (size_t i = 0; i < N_ROUTES; i++) {
		unsigned mask = M_OPT;
		bool first = true;
		for (size_t j = 0; j < N_ROUTES; j++) {
			if (strcmp(routes[j].pattern, routes[i].pattern))
				continue;
			first = first && j >= i;
			mask |= routes[j].method;
		}
		if (!first)
			continue;    /* printed with the pattern's first row */
		methods_text(mask, ",", m, sizeof(m));
		printf("%s %s\n", m, routes[i].pattern);
	}
}

/* ---- answers ---------------------------------------------------------------------- */

static int result_of(int status, const char *code)
{
	int o = apikey_outcome_from_code(code);

	if (o >= 0)
		return o;
	switch (status) {
	case 400: case 413: return RES_BAD_REQUEST;
	case 403: return RES_FORBIDDEN;
	case 404: return RES_NOT_FOUND;
	case 405: return RES_METHOD_NOT_ALLOWED;
	case 409: return RES_CONFLICT;
	case 503: return APIKEY_UNAVAILABLE;
	default:  return status < 300 ? RES_OK : RES_BAD_REQUEST;
	}
}

static const char *caller_id(const struct areq *a)
{
	return a->caller.found ? a->caller.key.id : NULL;
}

static void common_headers(struct areq *a)
{
	evhttp_add_header(evhttp_request_get_output_headers(a->req), "Cache-Control", "no-store");
}

void admin_error(struct areq *a, int status, const char *code, const char *field, const char *msg)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(a->req);

	common_headers(a);
	if (status == 401)
		evhttp_add_header(oh, "WWW-Authenticate", "Bearer");
	if (status == 503) {
		char v[16];
		snprintf(v, sizeof(v), "%d", SIDECAR_ADMIN_RETRY_S);
		evhttp_add_header(oh, "Retry-After", v);
	}
	if (!sc_error_body(a->w, a->req, status, code, field, msg))
		status = 500;
	sc_reply(a->w, a->req, EP_ADMIN, status, result_of(status, code), caller_id(a), a->t0);
}

/* The caller's own key refused: the verification's answer in the profile's
 * shape (SPEC §10: its code name, message and missing scope), counted as
 * its outcome. */
static void admin_refused(struct areq *a, const struct apikey_verify_result *res)
{
	int status = apikey_outcome_http_status(res->outcome);

	common_headers(a);
	if (status == 401)
		evhttp_add_header(evhttp_request_get_output_headers(a->req), "WWW-Authenticate", "Bearer");
	sc_outcome_body(a->w, a->req, res);
	sc_reply(a->w, a->req, EP_ADMIN, status, res->outcome, caller_id(a), a->t0);
}

void admin_bad(struct areq *a, const struct sc_bad *bad)
{
	char msg[sizeof(bad->msg) + 16];

	snprintf(msg, sizeof(msg), "Bad request: %s", bad->msg);
	admin_error(a, 400, "BAD_REQUEST", bad->field, msg);
}

void admin_ok(struct areq *a, int status, json_t *body)
{
	common_headers(a);
	if (!body && status == 204) {
		sc_reply(a->w, a->req, EP_ADMIN, 204, RES_OK, caller_id(a), a->t0);
		return;
	}
	if (!sc_json_body(a->w, a->req, body))
		status = 500;
	sc_reply(a->w, a->req, EP_ADMIN, status, status < 300 ? RES_OK : RES_BAD_REQUEST, caller_id(a), a->t0);
}

bool admin_allowed(struct areq *a, enum apikey_right need, const char *owner, int other_status,
                   const char *field)
{
	switch (apikey_access_check(a->caller.key.scopes, a->caller.key.owner, need, owner)) {
	case APIKEY_ACCESS_OK:
		return true;
	case APIKEY_ACCESS_NEED_RIGHT:
		admin_error(a, 403, "INSUFFICIENT_SCOPE", NULL,
		            need >= APIKEY_RIGHT_ADMIN ? "This call needs the scope apikey:admin" :
		            need == APIKEY_RIGHT_WRITE ? "This call needs the scope apikey:write" :
		                                         "This call needs the scope apikey:read");
		return false;
	case APIKEY_ACCESS_OTHER_OWNER:
		if (other_status == 404)
			admin_error(a, 404, "NOT_FOUND", field, "Not found");
		else
			admin_error(a, 403, "FORBIDDEN", field, "Another owner's: this needs apikey:admin");
		return false;
	}
	admin_error(a, 403, "FORBIDDEN", field, "Forbidden");
	return false;
}

const char *admin_body(struct areq *a, size_t *len)
{
	struct evbuffer *b = evhttp_request_get_input_buffer(a->req);

	*len = evbuffer_get_length(b);
	return *len ? (const char *)evbuffer_pullup(b, (ev_ssize_t)*len) : NULL;
}

/* ---- JSON of records ----------------------------------------------------------- */

json_t *admin_time(int64_t t)
{
	char buf[32];

	if (!t)
		return json_null();
	apikey_format_time(t, buf);
	return json_string(buf);
}

json_t *admin_scopes(const char *list)
{
	json_t *arr = json_array();
	const char *cur = list, *item;
	size_t n;

	while (arr && apikey_list_next(&cur, &item, &n))
		json_array_append_new(arr, json_stringn(item, n));
	return arr;
}

static json_t *str_or_null(const char *s)
{
	return s && s[0] ? sc_jtext(s) : json_null();
}

json_t *admin_key_json(const struct apikey_key_info *k, int64_t now_s)
{
	json_t *meta = json_loads(k->metadata, 0, NULL);

	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:s, s:o, s:o, s:o}",
	                 "id", k->id, "hint", k->hint, "owner", sc_jtext(k->owner), "name", sc_jtext(k->name),
	                 "scopes", admin_scopes(k->scopes),
	                 "status", apikey_key_status_name(apikey_key_status(k, now_s)),
	                 "created_at", admin_time(k->created_at_s), "expires_at", admin_time(k->expires_at_s),
	                 "revoked_at", admin_time(k->revoked_at_s), "last_used_at", admin_time(k->last_used_at_s),
	                 "use_count", (json_int_t)k->use_count, "rate_limit", (json_int_t)k->rate_limit,
	                 "hash_alg", k->hash_alg, "rotated_from", str_or_null(k->rotated_from),
	                 "rotated_to", str_or_null(k->rotated_to),
	                 "metadata", json_is_object(meta) ? meta : (json_decref(meta), json_object()));
}

/* ---- writes: built here, run by the writer, answered here --------------------------- */

struct sc_admin_job *admin_job(struct areq *a, enum sc_admin_op op)
{
	struct sc_admin_job *j = calloc(1, sizeof(*j));

	if (!j) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		return NULL;
	}
	j->op = op;
	j->w = a->w;
	j->req = a->req;
	j->t0 = a->t0;
	snprintf(j->actor_id, sizeof(j->actor_id), "%s", a->caller.key.id);
	/* without apikey:admin, nothing beyond the caller's own scopes */
	j->bounded = a->right < APIKEY_RIGHT_ADMIN;
	snprintf(j->within, sizeof(j->within), "%s", a->caller.key.scopes);
	return j;
}

void admin_submit(struct areq *a, struct sc_admin_job *j)
{
	if (sc_admin_submit(a->w->sh, j) != 0) {
		sc_admin_job_free(j);
		admin_error(a, 503, "UNAVAILABLE", NULL, "Too many writes waiting: try again");
	}
}

void sc_admin_run(struct apikey_store *s, struct sc_admin_job *j)
{
	const struct apikey_actor actor = { "http", j->actor_id, j->bounded ? j->within : NULL };
	const struct sc_key_body *b = &j->body;

	switch (j->op) {
	case OP_CREATE: {
		struct apikey_create_params p = {
			.owner = b->owner, .name = b->has & KB_NAME ? b->name : NULL,
			.scopes = b->has & KB_SCOPES ? b->scopes : NULL,
			.preset = b->has & KB_PRESET ? b->preset : NULL,
			.expires_at_s = b->expires_at_s, .rate_limit = b->rate_limit,
			.metadata = b->has & KB_META ? b->metadata : NULL,
		};
		j->r = apikey_key_create(s, &p, &actor, j->key, sizeof(j->key), &j->info);
		break;
	}
	case OP_UPDATE: {
		struct apikey_update_params p = {
			.name = b->has & KB_NAME ? b->name : NULL,
			.scopes = b->has & KB_SCOPES ? b->scopes : NULL,
			.preset = b->has & KB_PRESET ? b->preset : NULL, .rate_limit = b->rate_limit,
			.expiry = !(b->has & KB_EXPIRES) ? APIKEY_EXPIRY_KEEP :
			          b->expires_at_s ? APIKEY_EXPIRY_SET : APIKEY_EXPIRY_NEVER,
			.expires_at_s = b->expires_at_s, .metadata = b->has & KB_META ? b->metadata : NULL,
		};
		j->r = apikey_key_update(s, j->id, &p, &actor, &j->info);
		break;
	}
	case OP_REVOKE:
		if ((j->r = apikey_key_revoke(s, j->id, &actor)) == 0)
			j->r = apikey_key_get(s, j->id, &j->info);
		break;
	case OP_ROTATE:
		j->r = apikey_key_rotate(s, j->id, j->grace_s, &actor, j->key, sizeof(j->key), &j->info);
		break;
	case OP_ACCOUNT:
		if ((j->r = apikey_account_set(s, j->target, j->plan_set ? j->plan : NULL, j->active, &actor)) == 0)
			j->r = apikey_account_get(s, j->target, &j->account);
		break;
	case OP_PRESET_SET:
		if ((j->r = apikey_preset_set(s, j->target, j->scopes, &actor)) == 0)
			j->r = apikey_preset_get(s, j->target, j->scopes);
		break;
	case OP_PRESET_DEL:
		j->r = apikey_preset_remove(s, j->target, &actor);
		break;
	}
	/* the core's reason for a refused value (the scope catalogue, a tier…) */
	snprintf(j->why, sizeof(j->why), "%s", j->r ? apikey_store_why(s) : "");
}

static const char *const op_names[] = {
	[OP_CREATE] = "create", [OP_UPDATE] = "update", [OP_REVOKE] = "revoke", [OP_ROTATE] = "rotate",
	[OP_ACCOUNT] = "account", [OP_PRESET_SET] = "preset-set", [OP_PRESET_DEL] = "preset-remove",
};

/* A write the store refused: what to tell the caller. */
static void write_failed(struct areq *a, const struct sc_admin_job *j)
{
	bool preset = (j->op == OP_CREATE || j->op == OP_UPDATE) && (j->body.has & KB_PRESET);

	switch (j->r) {
	case APIKEY_ERR_FORBIDDEN:
		admin_error(a, 403, "FORBIDDEN", preset ? "preset" : "scopes",
		            "The key would hold scopes beyond the caller's own (only apikey:admin may)");
		return;
	case APIKEY_ERR_NOT_FOUND:
		if (preset || (j->op == OP_CREATE && j->why[0]))   /* the preset, or the default one */
			admin_error(a, 400, "BAD_REQUEST", "preset", "Bad request: no such preset");
		else
			admin_error(a, 404, "NOT_FOUND", NULL, "Not found");
		return;
	case APIKEY_ERR_CONFLICT:
		admin_error(a, 409, "CONFLICT", NULL, j->op == OP_ROTATE ?
		            "Only an active key can be rotated" : "The key is revoked or rotated: it cannot be changed");
		return;
	case APIKEY_ERR_EXISTS:
		admin_error(a, 409, "CONFLICT", NULL, "Already exists");
		return;
	case APIKEY_ERR_INVALID: {
		char msg[APIKEY_WHY_SIZE + 16];
		const char *field = sc_field_of(j->why);
		if (!j->why[0] || !strcmp(field, "body"))
			field = j->op == OP_PRESET_SET ? "scopes" : j->op == OP_ACCOUNT ? "plan" : preset ? "preset" : "body";
		snprintf(msg, sizeof(msg), "Bad request: %s", j->why[0] ? j->why : "refused by the key store's rules");
		admin_error(a, 400, "BAD_REQUEST", field, msg);
		return;
	}
	case APIKEY_ERR_BUSY:
	case APIKEY_ERR_READONLY:
	case APIKEY_ERR_STORE:
	case APIKEY_ERR_IO:
	case APIKEY_ERR_NOMEM:
	case APIKEY_ERR_FULL:
	case APIKEY_ERR_UPSTREAM:       /* fleet mode: PostgreSQL away (its message: nothing written) */
	case APIKEY_ERR_PEPPER: {       /* fleet mode: this host's pepper is not the fleet's */
		char msg[160];
		/* the upstream's own text already says that nothing was written */
		snprintf(msg, sizeof(msg), "%s%s", j->r == APIKEY_ERR_UPSTREAM ? "" : "Nothing written: ",
		         apikey_strerror(j->r));
		admin_error(a, 503, "UNAVAILABLE", NULL, msg);
		return;
	}
	default:
		admin_error(a, 500, "INTERNAL", NULL, "Internal error");
	}
}

void sc_admin_answer(struct sc_admin_job *j)
{
	struct areq a = { .w = j->w, .req = j->req, .t0 = j->t0 };
	int64_t now = (int64_t)time(NULL);
	json_t *body = NULL;

	a.caller.found = true;
	snprintf(a.caller.key.id, sizeof(a.caller.key.id), "%s", j->actor_id);
	if (j->r != 0) {
		log_info("admin: %s by %s: refused (%s)", op_names[j->op], j->actor_id, apikey_strerror(j->r));
		write_failed(&a, j);
		sc_admin_job_free(j);
		return;
	}
	log_info("admin: %s by %s: %s", op_names[j->op], j->actor_id,
	         j->op == OP_ACCOUNT || j->op >= OP_PRESET_SET ? j->target : j->info.id);
	switch (j->op) {
	case OP_CREATE:
	case OP_ROTATE:
		/* the one place a key leaves the process: this 201's body */
		if ((body = admin_key_json(&j->info, now)))
			json_object_set_new(body, "key", json_string(j->key));
		admin_ok(&a, 201, body);
		break;
	case OP_UPDATE:
	case OP_REVOKE:
		admin_ok(&a, 200, admin_key_json(&j->info, now));
		break;
	case OP_ACCOUNT:
		admin_ok(&a, 200, json_pack("{s:o, s:o, s:b}", "owner", sc_jtext(j->account.owner),
		                            "plan", sc_jtext(j->account.plan), "active", j->account.active));
		break;
	case OP_PRESET_SET:
		admin_ok(&a, 200, json_pack("{s:o, s:o}", "name", sc_jtext(j->target), "scopes",
		                            admin_scopes(j->scopes)));
		break;
	case OP_PRESET_DEL:
		admin_ok(&a, 204, NULL);
		break;
	}
	/* the response buffer holds the only other copy of a new key: evhttp
	 * frees it after sending (it does not wipe; see docs/design/admin.md) */
	sc_admin_job_free(j);
}

/* ---- dispatch ---------------------------------------------------------------------- */

/* CORS: an Origin named in admin_cors_origins= (exactly) is answered with
 * Access-Control-Allow-Origin; any other gets no CORS header at all. */
static bool cors(struct areq *a, unsigned methods, bool preflight)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(a->req);
	const char *origin = evhttp_find_header(evhttp_request_get_input_headers(a->req), "Origin");
	const char *cur = sc_admin_cors_origins(a->w->sh), *item;
	char m[64];
	size_t n;

	if (!origin || !origin[0])
		return false;
	while (apikey_list_next(&cur, &item, &n)) {
		if (n != strlen(origin) || memcmp(item, origin, n) != 0)
			continue;
		evhttp_add_header(oh, "Access-Control-Allow-Origin", origin);
		evhttp_add_header(oh, "Vary", "Origin");
		if (preflight) {
			methods_text(methods, ", ", m, sizeof(m));
			evhttp_add_header(oh, "Access-Control-Allow-Methods", m);
			evhttp_add_header(oh, "Access-Control-Allow-Headers", "Authorization, Content-Type, X-API-Key");
			evhttp_add_header(oh, "Access-Control-Max-Age", "600");
		} else {
			evhttp_add_header(oh, "Access-Control-Expose-Headers",
			                  "Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset");
		}
		return true;
	}
	evhttp_add_header(oh, "Vary", "Origin");
	return false;
}

/* The caller's key; answered (and false) unless VALID. */
static bool authenticate(struct areq *a)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(a->req);
	const char *why;

	if (sc_verify_caller(a->w, a->req, "http:admin", &a->caller, &why) != 0) {
		struct sc_bad bad = { .field = "Authorization" };
		snprintf(bad.msg, sizeof(bad.msg), "%s", why);
		admin_bad(a, &bad);
		return false;
	}
	sc_ratelimit_headers(a->w, oh, &a->caller);
	if (a->caller.outcome != APIKEY_VALID) {
		admin_refused(a, &a->caller);
		return false;
	}
	a->right = apikey_right_of(a->caller.key.scopes);
	return true;
}

bool sc_admin_dispatch(struct sc_worker *w, struct evhttp_request *req, const char *path, int64_t t0)
{
	struct areq a = { .w = w, .req = req, .t0 = t0 };
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const struct aroute *hit = NULL;
	unsigned allowed = M_OPT;
	const char *param = NULL;
	size_t plen = 0;

	if (!w->sh->admin)
		return false;          /* admin_api=no: every admin path is 404 */
	for (size_t i = 0; i < N_ROUTES; i++) {
		const char *p;
		size_t n;
		if (!match(routes[i].pattern, path, &p, &n))
			continue;
		allowed |= routes[i].method;
		param = p;
		plen = n;
		if (routes[i].method == (unsigned)m)
			hit = &routes[i];
	}
	if (allowed == M_OPT)
		return false;
	a.param = param;
	a.param_len = plen;
	if (m == EVHTTP_REQ_OPTIONS) {      /* a preflight: no key, no body */
		char allow[64];
		sc_wipe_key_headers(w, req);
		cors(&a, allowed, true);
		methods_text(allowed, ", ", allow, sizeof(allow));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
		admin_ok(&a, 204, NULL);
		return true;
	}
	cors(&a, allowed, false);
	if (!hit) {
		char allow[64];
		methods_text(allowed, ", ", allow, sizeof(allow));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
		sc_wipe_key_headers(w, req);
		admin_error(&a, 405, "METHOD_NOT_ALLOWED", NULL, "Method not allowed");
		return true;
	}
	if (authenticate(&a))
		hit->fn(&a);
	return true;
}

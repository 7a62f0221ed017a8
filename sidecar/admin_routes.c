/* admin_routes.c — the admin API's handlers: each authorizes the caller
 * (core/access.c), validates its input (admin_parse.c, then the core's own
 * checks), and either reads on the worker's connection (bounded: pages,
 * windows) or hands a write to the writer thread (admin.c).  Rights:
 * docs/design/admin.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/http.h>
#include <jansson.h>
#include "admin.h"

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static void read_failed(struct areq *a, int r)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "Key store unavailable: %s", apikey_strerror(r));
	admin_error(a, 503, "UNAVAILABLE", NULL, msg);
}

static bool parse_query(struct areq *a, const char *const *allowed, struct sc_query *q)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(a->req);
	struct sc_bad bad;

	if (sc_parse_query(u ? evhttp_uri_get_query(u) : NULL, allowed, q, &bad) != 0) {
		admin_bad(a, &bad);
		return false;
	}
	return true;
}

/* A GET must not carry a body it would ignore; other methods read theirs. */
static bool no_query(struct areq *a)
{
	static const char *const none[] = { NULL };
	struct sc_query q;

	return parse_query(a, none, &q);
}

/* The {id} of the path: a key id, exactly. */
static bool key_id_param(struct areq *a, char id[APIKEY_ID_SIZE])
{
	if (a->param_len != APIKEY_ID_LEN) {
		admin_error(a, 400, "BAD_REQUEST", "id", "Bad request: id must be a key id (key_ + 16 base62)");
		return false;
	}
	memcpy(id, a->param, APIKEY_ID_LEN);
	id[APIKEY_ID_LEN] = '\0';
	if (!apikey_id_valid(id)) {
		admin_error(a, 400, "BAD_REQUEST", "id", "Bad request: id must be a key id (key_ + 16 base62)");
		return false;
	}
	return true;
}

/* The key of the path, if the caller may `need` it: the right first (no
 * lookup for a caller who has none), then the key, then its owner — another
 * owner's key answers exactly as a missing one (404). */
static bool load_key(struct areq *a, enum apikey_right need, char id[APIKEY_ID_SIZE],
                     struct apikey_key_info *k)
{
	int r;

	if (!admin_allowed(a, need, NULL, 404, NULL) || !key_id_param(a, id))
		return false;
	if ((r = apikey_key_get(a->w->store, id, k)) == APIKEY_ERR_NOT_FOUND) {
		admin_error(a, 404, "NOT_FOUND", NULL, "Not found");
		return false;
	}
	if (r != 0) {
		read_failed(a, r);
		return false;
	}
	return admin_allowed(a, need, k->owner, 404, NULL);
}

/* An owner named by the caller (?owner=, a body's owner): its own unless an
 * admin; another is 403 FORBIDDEN naming field (the answer is the same
 * whether that owner exists). */
static bool owner_allowed(struct areq *a, enum apikey_right need, const char *owner, const char *field)
{
	return admin_allowed(a, need, owner, 403, field);
}

/* ---- keys ------------------------------------------------------------------------ */

struct page { json_t *arr; int64_t now; };

static int add_key(void *ctx, const struct apikey_key_info *k)
{
	struct page *p = ctx;
	json_t *o = admin_key_json(k, p->now);

	return o && json_array_append_new(p->arr, o) == 0 ? 0 : APIKEY_ERR_NOMEM;
}

static int status_of(const char *v)
{
	for (int st = APIKEY_KEY_ACTIVE; st <= APIKEY_KEY_EXPIRED; st++)
		if (!strcmp(v, apikey_key_status_name((enum apikey_key_status)st)))
			return st;
	return -1;
}

static json_t *cursor_json(uint64_t next)
{
	char buf[24];

	if (!next)
		return json_null();
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)next);
	return json_string(buf);
}

void h_keys_list(struct areq *a)
{
	static const char *const allowed[] = { "owner", "status", "limit", "cursor", NULL };
	struct apikey_key_filter f = { .status = -1, .limit = SIDECAR_ADMIN_PAGE };
	struct page p = { NULL, now_s() };
	unsigned long long n;
	struct sc_query q;
	struct sc_bad bad;
	const char *v;
	uint64_t next;
	int r;

	if (!parse_query(a, allowed, &q))
		return;
	f.owner = sc_query_get(&q, "owner");
	if (!f.owner && a->right < APIKEY_RIGHT_ADMIN)
		f.owner = a->caller.key.owner;   /* the default: your own keys */
	if (!owner_allowed(a, APIKEY_RIGHT_READ, f.owner, "owner"))
		return;
	if ((v = sc_query_get(&q, "status")) && (f.status = status_of(v)) < 0) {
		admin_error(a, 400, "BAD_REQUEST", "status",
		            "Bad request: status must be active, rotating, revoked or expired");
		return;
	}
	if ((v = sc_query_get(&q, "limit"))) {
		if (sc_query_uint(v, "limit", 1, SIDECAR_ADMIN_PAGE_MAX, &n, &bad) != 0)
			goto bad;
		f.limit = (unsigned)n;
	}
	if ((v = sc_query_get(&q, "cursor"))) {
		if (sc_query_uint(v, "cursor", 1, INT64_MAX, &n, &bad) != 0)
			goto bad;
		f.after = n;
	}
	if (!(p.arr = json_array())) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		return;
	}
	if ((r = apikey_key_page(a->w->store, &f, add_key, &p, &next)) != 0) {
		json_decref(p.arr);
		read_failed(a, r);
		return;
	}
	admin_ok(a, 200, json_pack("{s:o, s:o}", "keys", p.arr, "next_cursor", cursor_json(next)));
	return;
bad:
	admin_bad(a, &bad);
}

/* The core's own checks, before the write is queued: a refusal names its field. */
static bool core_refuses(struct areq *a, int r, const char *why)
{
	char msg[200];

	if (r == 0)
		return false;
	snprintf(msg, sizeof(msg), "Bad request: %s", why ? why : "invalid value");
	admin_error(a, 400, "BAD_REQUEST", sc_field_of(why), msg);
	return true;
}

void h_keys_create(struct areq *a)
{
	struct sc_admin_job *j;
	struct sc_bad bad;
	const char *body;
	char why[APIKEY_WHY_SIZE] = "";
	size_t len;

	if (!no_query(a) || !admin_allowed(a, APIKEY_RIGHT_WRITE, NULL, 403, NULL) || !(j = admin_job(a, OP_CREATE)))
		return;
	body = admin_body(a, &len);
	if (sc_parse_key_body(body, len, true, now_s(), &j->body, &bad) != 0) {
		admin_bad(a, &bad);
		goto fail;
	}
	if (!(j->body.has & KB_OWNER))
		snprintf(j->body.owner, sizeof(j->body.owner), "%s", a->caller.key.owner);
	if (!owner_allowed(a, APIKEY_RIGHT_WRITE, j->body.owner, "owner"))
		goto fail;
	{
		const struct sc_key_body *b = &j->body;
		struct apikey_create_params p = {
			.owner = b->owner, .name = b->has & KB_NAME ? b->name : NULL,
			.scopes = b->has & KB_SCOPES ? b->scopes : NULL,
			.preset = b->has & KB_PRESET ? b->preset : NULL, .expires_at_s = b->expires_at_s,
			.rate_limit = b->rate_limit, .metadata = b->has & KB_META ? b->metadata : NULL,
		};
		int r = apikey_create_check(a->w->sh->core, &p, why, sizeof(why));
		if (core_refuses(a, r, why))
			goto fail;
	}
	admin_submit(a, j);
	return;
fail:
	sc_admin_job_free(j);
}

void h_key_get(struct areq *a)
{
	struct apikey_key_info k;
	char id[APIKEY_ID_SIZE];

	if (no_query(a) && load_key(a, APIKEY_RIGHT_READ, id, &k))
		admin_ok(a, 200, admin_key_json(&k, now_s()));
}

void h_key_patch(struct areq *a)
{
	struct apikey_key_info k;
	struct sc_admin_job *j;
	struct sc_bad bad;
	const char *body;
	char why[APIKEY_WHY_SIZE] = "";
	size_t len;

	if (!no_query(a) || !load_key(a, APIKEY_RIGHT_WRITE, (char[APIKEY_ID_SIZE]){ 0 }, &k) ||
	    !(j = admin_job(a, OP_UPDATE)))
		return;
	snprintf(j->id, sizeof(j->id), "%s", k.id);
	body = admin_body(a, &len);
	if (sc_parse_key_body(body, len, false, now_s(), &j->body, &bad) != 0) {
		admin_bad(a, &bad);
		goto fail;
	}
	{
		const struct sc_key_body *b = &j->body;
		struct apikey_update_params p = {
			.name = b->has & KB_NAME ? b->name : NULL,
			.scopes = b->has & KB_SCOPES ? b->scopes : NULL,
			.preset = b->has & KB_PRESET ? b->preset : NULL, .rate_limit = b->rate_limit,
			.expiry = !(b->has & KB_EXPIRES) ? APIKEY_EXPIRY_KEEP :
			          b->expires_at_s ? APIKEY_EXPIRY_SET : APIKEY_EXPIRY_NEVER,
			.expires_at_s = b->expires_at_s, .metadata = b->has & KB_META ? b->metadata : NULL,
		};
		int r = apikey_update_check(a->w->sh->core, &p, why, sizeof(why));
		if (core_refuses(a, r, why))
			goto fail;
	}
	admin_submit(a, j);
	return;
fail:
	sc_admin_job_free(j);
}

void h_key_revoke(struct areq *a)
{
	struct apikey_key_info k;
	struct sc_admin_job *j;
	struct sc_bad bad;
	const char *body;
	size_t len;

	if (!no_query(a) || !load_key(a, APIKEY_RIGHT_WRITE, (char[APIKEY_ID_SIZE]){ 0 }, &k))
		return;
	body = admin_body(a, &len);
	if (sc_parse_empty_body(body, len, &bad) != 0) {
		admin_bad(a, &bad);
		return;
	}
	if (!(j = admin_job(a, OP_REVOKE)))
		return;
	snprintf(j->id, sizeof(j->id), "%s", k.id);
	admin_submit(a, j);
}

void h_key_rotate(struct areq *a)
{
	struct apikey_key_info k;
	struct sc_admin_job *j;
	struct sc_bad bad;
	const char *body;
	int64_t grace;
	size_t len;

	if (!no_query(a) || !load_key(a, APIKEY_RIGHT_WRITE, (char[APIKEY_ID_SIZE]){ 0 }, &k))
		return;
	body = admin_body(a, &len);
	if (sc_parse_rotate_body(body, len, &grace, &bad) != 0) {
		admin_bad(a, &bad);
		return;
	}
	if (!(j = admin_job(a, OP_ROTATE)))
		return;
	snprintf(j->id, sizeof(j->id), "%s", k.id);
	j->grace_s = grace;
	admin_submit(a, j);
}

/* ---- usage -------------------------------------------------------------------------- */

struct window { int64_t from, to; unsigned bucket; const char *bucket_name; };

/* from, to, bucket of the query: defaults, order, and at most
 * SIDECAR_ADMIN_BUCKETS_MAX buckets. */
static bool window_of(struct areq *a, const struct sc_query *q, struct window *win)
{
	const char *v;
	struct sc_bad bad;

	win->bucket = 3600;
	win->bucket_name = "hour";
	if ((v = sc_query_get(q, "bucket"))) {
		if (sc_query_bucket(v, &win->bucket, &bad) != 0)
			goto bad;
		win->bucket_name = v;
	}
	win->to = now_s() + 1;
	if ((v = sc_query_get(q, "to")) && sc_query_time(v, "to", &win->to, &bad) != 0)
		goto bad;
	win->from = win->to - (win->bucket == 60 ? 3600 : win->bucket == 3600 ? 86400 : 30 * 86400);
	if ((v = sc_query_get(q, "from")) && sc_query_time(v, "from", &win->from, &bad) != 0)
		goto bad;
	if (win->from >= win->to) {
		admin_error(a, 400, "BAD_REQUEST", "from", "Bad request: from must be before to");
		return false;
	}
	if ((win->to - win->from) / win->bucket > SIDECAR_ADMIN_BUCKETS_MAX) {
		admin_error(a, 400, "BAD_REQUEST", "from", "Bad request: more than 1440 buckets: "
		            "shorten the window or use a wider bucket");
		return false;
	}
	return true;
bad:
	admin_bad(a, &bad);
	return false;
}

/* Points in bucket order → [{"start", "counts": {code: n}}], and totals. */
struct series { json_t *buckets, *totals, *cur; int64_t cur_start; };

static int add_count(json_t *counts, enum apikey_outcome o, uint64_t n)
{
	const char *code = apikey_outcome_code(o);
	json_t *have = json_object_get(counts, code);

	return json_object_set_new(counts, code,
	                           json_integer((json_int_t)n + (have ? json_integer_value(have) : 0)));
}

static int add_point(void *ctx, const struct apikey_usage_point *p)
{
	struct series *s = ctx;

	if (!s->cur || p->start_s != s->cur_start) {
		json_t *b = json_pack("{s:o, s:{}}", "start", admin_time(p->start_s ? p->start_s : 1), "counts");
		if (!b || json_array_append_new(s->buckets, b) != 0)
			return APIKEY_ERR_NOMEM;
		s->cur = json_object_get(b, "counts");
		s->cur_start = p->start_s;
	}
	if (add_count(s->cur, p->outcome, p->count) != 0 || add_count(s->totals, p->outcome, p->count) != 0)
		return APIKEY_ERR_NOMEM;
	return 0;
}

static json_t *window_json(json_t *o, const struct window *win)
{
	if (o) {
		json_object_set_new(o, "bucket", json_string(win->bucket_name));
		json_object_set_new(o, "from", admin_time(win->from));
		json_object_set_new(o, "to", admin_time(win->to));
	}
	return o;
}

void h_key_usage(struct areq *a)
{
	static const char *const allowed[] = { "from", "to", "bucket", NULL };
	struct series s = { json_array(), json_object(), NULL, 0 };
	struct apikey_key_info k;
	char id[APIKEY_ID_SIZE];
	struct window win;
	struct sc_query q;
	int r;

	if (!s.buckets || !s.totals) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		goto out;
	}
	if (!parse_query(a, allowed, &q) || !load_key(a, APIKEY_RIGHT_READ, id, &k) || !window_of(a, &q, &win))
		goto out;
	if ((r = apikey_usage_series(a->w->store, k.id, NULL, win.from, win.to, win.bucket, add_point, &s)) != 0) {
		read_failed(a, r);
		goto out;
	}
	admin_ok(a, 200, window_json(json_pack("{s:s, s:O, s:O}", "key_id", k.id, "totals", s.totals,
	                                       "buckets", s.buckets), &win));
out:
	json_decref(s.buckets);
	json_decref(s.totals);
}

/* Per-key totals of an owner: gathered, then the most used first. */
#define USAGE_KEYS_MAX 10000
struct key_total { char id[APIKEY_ID_SIZE]; uint64_t n[APIKEY_OUTCOME_COUNT], total; };
struct key_totals { struct key_total *k; size_t n; };

static int add_key_total(void *ctx, const struct apikey_usage_point *p)
{
	struct key_totals *t = ctx;

	if (!t->n || strcmp(t->k[t->n - 1].id, p->key_id) != 0) {   /* ordered by key */
		if (t->n == USAGE_KEYS_MAX)
			return 0;
		memset(&t->k[t->n], 0, sizeof(t->k[0]));
		snprintf(t->k[t->n].id, sizeof(t->k[0].id), "%s", p->key_id);
		t->n++;
	}
	t->k[t->n - 1].n[p->outcome] += p->count;
	t->k[t->n - 1].total += p->count;
	return 0;
}

static int by_total(const void *x, const void *y)
{
	const struct key_total *a = x, *b = y;

	return a->total < b->total ? 1 : a->total > b->total ? -1 : strcmp(a->id, b->id);
}

static json_t *keys_json(struct areq *a, struct key_totals *t, unsigned limit)
{
	json_t *arr = json_array();
	int64_t now = now_s();

	qsort(t->k, t->n, sizeof(t->k[0]), by_total);
	for (size_t i = 0; arr && i < t->n && i < limit; i++) {
		struct apikey_key_info k;
		json_t *counts = json_object(), *o;
		if (apikey_key_get(a->w->store, t->k[i].id, &k) != 0) {
			json_decref(counts);
			continue;                       /* pruned since: nothing to show */
		}
		for (int oc = 0; counts && oc < APIKEY_OUTCOME_COUNT; oc++)
			if (t->k[i].n[oc])
				add_count(counts, (enum apikey_outcome)oc, t->k[i].n[oc]);
		o = json_pack("{s:s, s:s, s:o, s:s, s:o, s:o}", "id", k.id, "hint", k.hint, "name", sc_jtext(k.name),
		              "status", apikey_key_status_name(apikey_key_status(&k, now)),
		              "last_used_at", admin_time(k.last_used_at_s), "totals", counts ? counts : json_object());
		if (!o || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

void h_usage(struct areq *a)
{
	static const char *const allowed[] = { "owner", "from", "to", "bucket", "limit", NULL };
	struct series s = { json_array(), json_object(), NULL, 0 };
	struct key_totals t = { calloc(USAGE_KEYS_MAX, sizeof(struct key_total)), 0 };
	unsigned long long limit = SIDECAR_ADMIN_PAGE;
	const char *owner, *v;
	struct window win;
	struct sc_query q;
	struct sc_bad bad;
	json_t *keys;
	int r;

	if (!s.buckets || !s.totals || !t.k) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		goto out;
	}
	if (!parse_query(a, allowed, &q))
		goto out;
	if (!(owner = sc_query_get(&q, "owner")))
		owner = a->caller.key.owner;
	if (!owner_allowed(a, APIKEY_RIGHT_READ, owner, "owner") || !window_of(a, &q, &win))
		goto out;
	if ((v = sc_query_get(&q, "limit")) && sc_query_uint(v, "limit", 1, SIDECAR_ADMIN_PAGE_MAX, &limit, &bad) != 0) {
		admin_bad(a, &bad);
		goto out;
	}
	if ((r = apikey_usage_series(a->w->store, NULL, owner, win.from, win.to, win.bucket, add_point, &s)) != 0 ||
	    (r = apikey_usage_series(a->w->store, NULL, owner, win.from, win.to, 0, add_key_total, &t)) != 0) {
		read_failed(a, r);
		goto out;
	}
	if (!(keys = keys_json(a, &t, (unsigned)limit))) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		goto out;
	}
	admin_ok(a, 200, window_json(json_pack("{s:o, s:O, s:O, s:o}", "owner", sc_jtext(owner), "totals", s.totals,
	                                       "buckets", s.buckets, "keys", keys), &win));
out:
	free(t.k);
	json_decref(s.buckets);
	json_decref(s.totals);
}

/* ---- accounts and presets ------------------------------------------------------------ */

static bool owner_param(struct areq *a, char owner[APIKEY_OWNER_SIZE])
{
	struct sc_bad bad;
	const char *why = NULL;

	if (sc_path_part(a->param, a->param_len, "owner", owner, APIKEY_OWNER_SIZE, &bad) != 0) {
		admin_bad(a, &bad);
		return false;
	}
	if (apikey_account_check(owner, NULL, &why) != 0) {
		admin_error(a, 400, "BAD_REQUEST", "owner", "Bad request: owner must be 1-63 characters "
		            "without blanks, ':' or ','");
		return false;
	}
	return true;
}

static json_t *account_json(const struct apikey_account *acct)
{
	return json_pack("{s:o, s:o, s:b}", "owner", sc_jtext(acct->owner), "plan", sc_jtext(acct->plan),
	                 "active", acct->active);
}

void h_account_get(struct areq *a)
{
	char owner[APIKEY_OWNER_SIZE];
	struct apikey_account acct;
	int r;

	if (!no_query(a) || !admin_allowed(a, APIKEY_RIGHT_READ, NULL, 403, NULL) || !owner_param(a, owner) ||
	    !owner_allowed(a, APIKEY_RIGHT_READ, owner, "owner"))
		return;
	if ((r = apikey_account_get(a->w->store, owner, &acct)) == APIKEY_ERR_NOT_FOUND)
		admin_error(a, 404, "NOT_FOUND", NULL, "No account recorded for this owner");
	else if (r != 0)
		read_failed(a, r);
	else
		admin_ok(a, 200, account_json(&acct));
}

void h_account_put(struct areq *a)
{
	struct sc_admin_job *j;
	int r;
	struct sc_bad bad;
	const char *body, *why = NULL;
	size_t len;

	if (!no_query(a) || !admin_allowed(a, APIKEY_RIGHT_ADMIN, NULL, 403, NULL) || !(j = admin_job(a, OP_ACCOUNT)))
		return;
	if (!owner_param(a, j->target))
		goto fail;
	body = admin_body(a, &len);
	if (sc_parse_account_body(body, len, j->plan, &j->plan_set, &j->active, &bad) != 0) {
		admin_bad(a, &bad);
		goto fail;
	}
	r = apikey_account_check(j->target, j->plan_set ? j->plan : NULL, &why);
	if (core_refuses(a, r, why))
		goto fail;
	admin_submit(a, j);
	return;
fail:
	sc_admin_job_free(j);
}

static int add_preset(void *ctx, const char *name, const char *scopes)
{
	json_t *o = json_pack("{s:o, s:o}", "name", sc_jtext(name), "scopes", admin_scopes(scopes));

	return o && json_array_append_new(ctx, o) == 0 ? 0 : APIKEY_ERR_NOMEM;
}

void h_presets_list(struct areq *a)
{
	json_t *arr;
	int r;

	if (!no_query(a) || !admin_allowed(a, APIKEY_RIGHT_READ, NULL, 403, NULL))
		return;
	if (!(arr = json_array())) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		return;
	}
	if ((r = apikey_preset_list(a->w->store, add_preset, arr)) != 0) {
		json_decref(arr);
		read_failed(a, r);
		return;
	}
	admin_ok(a, 200, json_pack("{s:o}", "presets", arr));
}

static bool preset_param(struct areq *a, char name[APIKEY_PRESET_SIZE])
{
	struct sc_bad bad;

	if (sc_path_part(a->param, a->param_len, "name", name, APIKEY_PRESET_SIZE, &bad) != 0) {
		admin_bad(a, &bad);
		return false;
	}
	if (apikey_preset_check(NULL, name, "a:b", NULL, 0) != 0) {
		admin_error(a, 400, "BAD_REQUEST", "name", "Bad request: a preset name is 1-31 of [a-z0-9_-]");
		return false;
	}
	return true;
}

void h_preset_get(struct areq *a)
{
	char name[APIKEY_PRESET_SIZE], scopes[APIKEY_SCOPES_SIZE];
	int r;

	if (!no_query(a) || !admin_allowed(a, APIKEY_RIGHT_READ, NULL, 403, NULL) || !preset_param(a, name))
		return;
	if ((r = apikey_preset_get(a->w->store, name, scopes)) == APIKEY_ERR_NOT_FOUND)
		admin_error(a, 404, "NOT_FOUND", NULL, "No such preset");
	else if (r != 0)
		read_failed(a, r);
	else
		admin_ok(a, 200, json_pack("{s:s, s:o}", "name", name, "scopes", admin_scopes(scopes)));
}

void h_preset_put(struct areq *a)
{
	struct sc_admin_job *j;
	int r;
	struct sc_bad bad;
	const char *body;
	char why[APIKEY_WHY_SIZE] = "";
	size_t len;

	if (!no_query(a) || !admin_allowed(a, APIKEY_RIGHT_ADMIN, NULL, 403, NULL) ||
	    !(j = admin_job(a, OP_PRESET_SET)))
		return;
	if (!preset_param(a, j->target))
		goto fail;
	body = admin_body(a, &len);
	if (sc_parse_preset_body(body, len, j->scopes, &bad) != 0) {
		admin_bad(a, &bad);
		goto fail;
	}
	r = apikey_preset_check(a->w->sh->core, j->target, j->scopes, why, sizeof(why));
	if (core_refuses(a, r, why))
		goto fail;
	admin_submit(a, j);
	return;
fail:
	sc_admin_job_free(j);
}

void h_preset_delete(struct areq *a)
{
	struct sc_admin_job *j;
	struct sc_bad bad;
	const char *body;
	size_t len;

	if (!no_query(a) || !admin_allowed(a, APIKEY_RIGHT_ADMIN, NULL, 403, NULL) ||
	    !(j = admin_job(a, OP_PRESET_DEL)))
		return;
	if (!preset_param(a, j->target))
		goto fail;
	body = admin_body(a, &len);
	if (sc_parse_empty_body(body, len, &bad) != 0) {
		admin_bad(a, &bad);
		goto fail;
	}
	admin_submit(a, j);
	return;
fail:
	sc_admin_job_free(j);
}

/* ---- events ------------------------------------------------------------------------- */

static json_t *ev_str(const char *s)
{
	return s[0] ? sc_jtext(s) : json_null();
}

static int add_event(void *ctx, const struct apikey_event *e)
{
	json_t *o = json_pack("{s:I, s:o, s:o, s:o, s:s, s:o, s:o, s:o}", "id", (json_int_t)e->id,
	                      "at", admin_time(e->at_s), "key_id", ev_str(e->key_id), "owner", ev_str(e->owner),
	                      "event", e->event, "reason", ev_str(e->reason), "source", ev_str(e->source),
	                      "actor", ev_str(e->actor));

	return o && json_array_append_new(ctx, o) == 0 ? 0 : APIKEY_ERR_NOMEM;
}

void h_events(struct areq *a)
{
	static const char *const allowed[] = { "key", "owner", "limit", "cursor", NULL };
	struct apikey_event_filter f = { .limit = SIDECAR_ADMIN_PAGE };
	struct apikey_key_info k;
	unsigned long long n;
	struct sc_query q;
	struct sc_bad bad;
	const char *v;
	int64_t next;
	json_t *arr;
	int r;

	if (!parse_query(a, allowed, &q))
		return;
	f.owner = sc_query_get(&q, "owner");
	if (!f.owner && a->right < APIKEY_RIGHT_ADMIN)
		f.owner = a->caller.key.owner;
	if (!owner_allowed(a, APIKEY_RIGHT_READ, f.owner, "owner"))
		return;
	if ((f.key_id = sc_query_get(&q, "key"))) {
		if (!apikey_id_valid(f.key_id)) {
			admin_error(a, 400, "BAD_REQUEST", "key", "Bad request: key must be a key id (key_ + 16 base62)");
			return;
		}
		/* another owner's key: as if it did not exist */
		if (a->right < APIKEY_RIGHT_ADMIN &&
		    ((r = apikey_key_get(a->w->store, f.key_id, &k)) != 0 || strcmp(k.owner, a->caller.key.owner))) {
			if (r != 0 && r != APIKEY_ERR_NOT_FOUND)
				read_failed(a, r);
			else
				admin_error(a, 404, "NOT_FOUND", "key", "Not found");
			return;
		}
	}
	if ((v = sc_query_get(&q, "limit"))) {
		if (sc_query_uint(v, "limit", 1, SIDECAR_ADMIN_PAGE_MAX, &n, &bad) != 0)
			goto bad;
		f.limit = (unsigned)n;
	}
	if ((v = sc_query_get(&q, "cursor"))) {
		if (sc_query_uint(v, "cursor", 1, INT64_MAX, &n, &bad) != 0)
			goto bad;
		f.before_id = (int64_t)n;
	}
	if (!(arr = json_array())) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		return;
	}
	if ((r = apikey_event_page(a->w->store, &f, add_event, arr, &next)) != 0) {
		json_decref(arr);
		read_failed(a, r);
		return;
	}
	admin_ok(a, 200, json_pack("{s:o, s:o}", "events", arr, "next_cursor", cursor_json((uint64_t)next)));
	return;
bad:
	admin_bad(a, &bad);
}

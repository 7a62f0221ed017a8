/* admin_usage.c — the admin API's usage routes: one key's series and the
 * totals by key over a window (bounded: windows and a top-N); the shared
 * helpers are in admin_routes.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/http.h>
#include <jansson.h>
#include "admin.h"

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
	win->to = admin_now_s() + 1;
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
	if (!admin_query(a, allowed, &q) || !admin_load_key(a, APIKEY_RIGHT_READ, id, &k) || !window_of(a, &q, &win))
		goto out;
	if ((r = apikey_usage_series(a->w->store, k.id, NULL, win.from, win.to, win.bucket, add_point, &s)) != 0) {
		admin_read_failed(a, r);
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
	int64_t now = admin_now_s();

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
	unsigned limit = SIDECAR_ADMIN_PAGE;
	const char *owner;
	struct window win;
	struct sc_query q;
	json_t *keys;
	int r;

	if (!s.buckets || !s.totals || !t.k) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		goto out;
	}
	if (!admin_query(a, allowed, &q))
		goto out;
	if (!(owner = sc_query_get(&q, "owner")))
		owner = a->caller.key.owner;
	if (!admin_owner_allowed(a, APIKEY_RIGHT_READ, owner, "owner") || !window_of(a, &q, &win))
		goto out;
	if (!admin_page_query(a, &q, &limit, NULL))
		goto out;
	if ((r = apikey_usage_series(a->w->store, NULL, owner, win.from, win.to, win.bucket, add_point, &s)) != 0 ||
	    (r = apikey_usage_series(a->w->store, NULL, owner, win.from, win.to, 0, add_key_total, &t)) != 0) {
		admin_read_failed(a, r);
		goto out;
	}
	if (!(keys = keys_json(a, &t, limit))) {
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

/* admin_routes.c — the admin API's key routes, and what every handler
 * shares (admin_usage.c, admin_owners.c have the others).  Each handler
 * authorizes the caller (core/access.c), validates its input (admin_parse.c,
 * then the core's own checks), and either reads on the worker's connection
 * (bounded: pages, windows) or hands a write to the writer thread
 * (admin.c).  Rights: docs/design/admin.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/http.h>
#include <jansson.h>
#include "admin.h"

int64_t admin_now_s(void)
{
	return (int64_t)time(NULL);
}

void admin_read_failed(struct areq *a, int r)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "Key store unavailable: %s", apikey_strerror(r));
	admin_error(a, 503, "UNAVAILABLE", NULL, msg);
}

bool admin_query(struct areq *a, const char *const *allowed, struct sc_query *q)
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
bool admin_no_query(struct areq *a)
{
	static const char *const none[] = { NULL };
	struct sc_query q;

	return admin_query(a, none, &q);
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
bool admin_load_key(struct areq *a, enum apikey_right need, char id[APIKEY_ID_SIZE],
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
		admin_read_failed(a, r);
		return false;
	}
	return admin_allowed(a, need, k->owner, 404, NULL);
}

/* An owner named by the caller (?owner=, a body's owner): its own unless an
 * admin; another is 403 FORBIDDEN naming field (the answer is the same
 * whether that owner exists). */
bool admin_owner_allowed(struct areq *a, enum apikey_right need, const char *owner, const char *field)
{
	return admin_allowed(a, need, owner, 403, field);
}

bool admin_owner_query(struct areq *a, const struct sc_query *q, const char **owner)
{
	*owner = sc_query_get(q, "owner");
	if (!*owner && a->right < APIKEY_RIGHT_ADMIN)
		*owner = a->caller.key.owner;   /* the default: your own */
	return admin_owner_allowed(a, APIKEY_RIGHT_READ, *owner, "owner");
}

bool admin_page_query(struct areq *a, const struct sc_query *q, unsigned *limit, uint64_t *cursor)
{
	unsigned long long n;
	struct sc_bad bad;
	const char *v;

	if ((v = sc_query_get(q, "limit"))) {
		if (sc_query_uint(v, "limit", 1, SIDECAR_ADMIN_PAGE_MAX, &n, &bad) != 0)
			goto bad;
		*limit = (unsigned)n;
	}
	if (cursor && (v = sc_query_get(q, "cursor"))) {
		if (sc_query_uint(v, "cursor", 1, INT64_MAX, &n, &bad) != 0)
			goto bad;
		*cursor = n;
	}
	return true;
bad:
	admin_bad(a, &bad);
	return false;
}

/* A page's "next" cursor: a string, or null on the last page. */
json_t *admin_cursor_json(uint64_t next)
{
	char buf[24];

	if (!next)
		return json_null();
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)next);
	return json_string(buf);
}

/* The core's own checks, before the write is queued: a refusal names its field. */
bool admin_core_refuses(struct areq *a, int r, const char *why)
{
	char msg[200];

	if (r == 0)
		return false;
	snprintf(msg, sizeof(msg), "Bad request: %s", why ? why : "invalid value");
	admin_error(a, 400, "BAD_REQUEST", sc_field_of(why), msg);
	return true;
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

void h_keys_list(struct areq *a)
{
	static const char *const allowed[] = { "owner", "status", "limit", "cursor", NULL };
	struct apikey_key_filter f = { .status = -1, .limit = SIDECAR_ADMIN_PAGE };
	struct page p = { NULL, admin_now_s() };
	struct sc_query q;
	const char *v;
	uint64_t next;
	int r;

	if (!admin_query(a, allowed, &q) || !admin_owner_query(a, &q, &f.owner))
		return;
	if ((v = sc_query_get(&q, "status")) && (f.status = status_of(v)) < 0) {
		admin_error(a, 400, "BAD_REQUEST", "status",
		            "Bad request: status must be active, rotating, revoked or expired");
		return;
	}
	if (!admin_page_query(a, &q, &f.limit, &f.after))
		return;
	if (!(p.arr = json_array())) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		return;
	}
	if ((r = apikey_key_page(a->w->store, &f, add_key, &p, &next)) != 0) {
		json_decref(p.arr);
		admin_read_failed(a, r);
		return;
	}
	admin_ok(a, 200, json_pack("{s:o, s:o}", "keys", p.arr, "next_cursor", admin_cursor_json(next)));
}

void h_keys_create(struct areq *a)
{
	struct sc_admin_job *j;
	struct sc_bad bad;
	const char *body;
	char why[APIKEY_WHY_SIZE] = "";
	size_t len;

	if (!admin_no_query(a) || !admin_allowed(a, APIKEY_RIGHT_WRITE, NULL, 403, NULL) || !(j = admin_job(a, OP_CREATE)))
		return;
	body = admin_body(a, &len);
	if (sc_parse_key_body(body, len, true, admin_now_s(), &j->body, &bad) != 0) {
		admin_bad(a, &bad);
		goto fail;
	}
	if (!(j->body.has & KB_OWNER))
		snprintf(j->body.owner, sizeof(j->body.owner), "%s", a->caller.key.owner);
	if (!admin_owner_allowed(a, APIKEY_RIGHT_WRITE, j->body.owner, "owner"))
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
		if (admin_core_refuses(a, r, why))
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

	if (admin_no_query(a) && admin_load_key(a, APIKEY_RIGHT_READ, id, &k))
		admin_ok(a, 200, admin_key_json(&k, admin_now_s()));
}

void h_key_patch(struct areq *a)
{
	struct apikey_key_info k;
	struct sc_admin_job *j;
	struct sc_bad bad;
	const char *body;
	char why[APIKEY_WHY_SIZE] = "";
	size_t len;

	if (!admin_no_query(a) || !admin_load_key(a, APIKEY_RIGHT_WRITE, (char[APIKEY_ID_SIZE]){ 0 }, &k) ||
	    !(j = admin_job(a, OP_UPDATE)))
		return;
	snprintf(j->id, sizeof(j->id), "%s", k.id);
	body = admin_body(a, &len);
	if (sc_parse_key_body(body, len, false, admin_now_s(), &j->body, &bad) != 0) {
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
		if (admin_core_refuses(a, r, why))
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

	if (!admin_no_query(a) || !admin_load_key(a, APIKEY_RIGHT_WRITE, (char[APIKEY_ID_SIZE]){ 0 }, &k))
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

	if (!admin_no_query(a) || !admin_load_key(a, APIKEY_RIGHT_WRITE, (char[APIKEY_ID_SIZE]){ 0 }, &k))
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

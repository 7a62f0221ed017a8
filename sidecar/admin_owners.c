/* admin_owners.c — the admin API's routes about owners rather than keys:
 * accounts (plan, active), presets and the audit log of events; the shared
 * helpers are in admin_routes.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/http.h>
#include <jansson.h>
#include "admin.h"

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

	if (!admin_no_query(a) || !admin_allowed(a, APIKEY_RIGHT_READ, NULL, 403, NULL) || !owner_param(a, owner) ||
	    !admin_owner_allowed(a, APIKEY_RIGHT_READ, owner, "owner"))
		return;
	if ((r = apikey_account_get(a->w->store, owner, &acct)) == APIKEY_ERR_NOT_FOUND)
		admin_error(a, 404, "NOT_FOUND", NULL, "No account recorded for this owner");
	else if (r != 0)
		admin_read_failed(a, r);
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

	if (!admin_no_query(a) || !admin_allowed(a, APIKEY_RIGHT_ADMIN, NULL, 403, NULL) || !(j = admin_job(a, OP_ACCOUNT)))
		return;
	if (!owner_param(a, j->target))
		goto fail;
	body = admin_body(a, &len);
	if (sc_parse_account_body(body, len, j->plan, &j->plan_set, &j->active, &bad) != 0) {
		admin_bad(a, &bad);
		goto fail;
	}
	r = apikey_account_check(j->target, j->plan_set ? j->plan : NULL, &why);
	if (admin_core_refuses(a, r, why))
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

	if (!admin_no_query(a) || !admin_allowed(a, APIKEY_RIGHT_READ, NULL, 403, NULL))
		return;
	if (!(arr = json_array())) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		return;
	}
	if ((r = apikey_preset_list(a->w->store, add_preset, arr)) != 0) {
		json_decref(arr);
		admin_read_failed(a, r);
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

	if (!admin_no_query(a) || !admin_allowed(a, APIKEY_RIGHT_READ, NULL, 403, NULL) || !preset_param(a, name))
		return;
	if ((r = apikey_preset_get(a->w->store, name, scopes)) == APIKEY_ERR_NOT_FOUND)
		admin_error(a, 404, "NOT_FOUND", NULL, "No such preset");
	else if (r != 0)
		admin_read_failed(a, r);
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

	if (!admin_no_query(a) || !admin_allowed(a, APIKEY_RIGHT_ADMIN, NULL, 403, NULL) ||
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
	if (admin_core_refuses(a, r, why))
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

	if (!admin_no_query(a) || !admin_allowed(a, APIKEY_RIGHT_ADMIN, NULL, 403, NULL) ||
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
	uint64_t cursor = 0;
	struct sc_query q;
	int64_t next;
	json_t *arr;
	int r;

	if (!admin_query(a, allowed, &q) || !admin_owner_query(a, &q, &f.owner))
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
				admin_read_failed(a, r);
			else
				admin_error(a, 404, "NOT_FOUND", "key", "Not found");
			return;
		}
	}
	if (!admin_page_query(a, &q, &f.limit, &cursor))
		return;
	f.before_id = (int64_t)cursor;     /* at most INT64_MAX: admin_page_query */
	if (!(arr = json_array())) {
		admin_error(a, 503, "UNAVAILABLE", NULL, "Out of memory");
		return;
	}
	if ((r = apikey_event_page(a->w->store, &f, add_event, arr, &next)) != 0) {
		json_decref(arr);
		admin_read_failed(a, r);
		return;
	}
	admin_ok(a, 200, json_pack("{s:o, s:o}", "events", arr, "next_cursor", admin_cursor_json((uint64_t)next)));
}

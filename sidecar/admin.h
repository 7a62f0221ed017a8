/* admin.h — what the admin API's files share: a write handed from a worker
 * to the writer thread and back (admin.c builds, runs and answers it;
 * admin_writer.c carries it). */
#ifndef SIDECAR_ADMIN_H
#define SIDECAR_ADMIN_H

#include "sidecar.h"
#include "admin_parse.h"

enum sc_admin_op {
	OP_CREATE, OP_UPDATE, OP_REVOKE, OP_ROTATE, OP_ACCOUNT, OP_PRESET_SET, OP_PRESET_DEL,
};

/* One admin write.  Built and answered by its worker (which alone touches
 * req); run by the writer thread on its own store connection.  Everything
 * the write needs is copied in: nothing is borrowed across threads. */
struct sc_admin_job {
	struct sc_admin_job *next;
	enum sc_admin_op op;
	struct sc_worker *w;
	struct evhttp_request *req;
	int64_t t0;
	/* the actor: the caller's key; within its scopes unless an admin */
	char actor_id[APIKEY_ID_SIZE];
	char within[APIKEY_SCOPES_SIZE];
	bool bounded;
	/* what to write */
	char id[APIKEY_ID_SIZE];              /* the key, for update/revoke/rotate */
	char target[APIKEY_OWNER_SIZE];       /* owner (account) or preset name */
	struct sc_key_body body;              /* create, update */
	int64_t grace_s;                      /* rotate */
	char plan[APIKEY_PLAN_SIZE];          /* account */
	bool plan_set;
	int active;
	char scopes[APIKEY_SCOPES_SIZE];      /* preset */
	/* the result */
	int r;
	char why[APIKEY_WHY_SIZE];            /* the core's reason when refused (apikey_store_why) */
	char key[APIKEY_KEY_MAX + 1];         /* create, rotate: the new key (wiped after the answer) */
	struct apikey_key_info info;
	struct apikey_account account;
};

/* The writer (admin_writer.c).  0, or APIKEY_ERR_FULL when the queue holds
 * SIDECAR_ADMIN_QUEUE_MAX writes (the caller answers 503). */
int sc_admin_submit(struct sc_shared *sh, struct sc_admin_job *job);
/* admin.c: run one job on the writer's connection (writer thread), and
 * answer it (its worker's thread); answering frees it. */
void sc_admin_run(struct apikey_store *s, struct sc_admin_job *job);
void sc_admin_answer(struct sc_admin_job *job);
/* The settings admin.c reads (set by sc_admin_start, read-only after). */
const char *sc_admin_cors_origins(const struct sc_shared *sh);
/* Wipes the key it may hold; NULL is a no-op. */
void sc_admin_job_free(struct sc_admin_job *j);

/* ---- admin.c ↔ admin_routes.c -------------------------------------------------- */
/* One admin request on its worker. */
struct areq {
	struct sc_worker *w;
	struct evhttp_request *req;
	int64_t t0;
	const char *param;                   /* the path's {…} part, raw (not decoded) */
	size_t param_len;
	struct apikey_verify_result caller;  /* valid once authenticated */
	enum apikey_right right;             /* the caller's */
};
/* The one error answer of the admin API: SPEC §3's body, plus "field". */
void admin_error(struct areq *a, int status, const char *code, const char *field, const char *msg);
void admin_bad(struct areq *a, const struct sc_bad *bad);
/* 200/201 with a JSON body (consumed); a body that cannot be built is 500. */
void admin_ok(struct areq *a, int status, json_t *body);
/* Refusals of apikey_access_check: NEED_RIGHT → 403 INSUFFICIENT_SCOPE;
 * OTHER_OWNER → other_status (404 for a key, 403 FORBIDDEN naming field
 * for an owner the caller named).  True when allowed. */
bool admin_allowed(struct areq *a, enum apikey_right need, const char *owner, int other_status,
                   const char *field);
/* Hand a write to the writer (a job from admin_job()); answered later. */
struct sc_admin_job *admin_job(struct areq *a, enum sc_admin_op op);
void admin_submit(struct areq *a, struct sc_admin_job *j);
/* JSON of records. */
json_t *admin_key_json(const struct apikey_key_info *k, int64_t now_s);
json_t *admin_time(int64_t t);
json_t *admin_scopes(const char *list);
/* The request body (NULL, 0 when none). */
const char *admin_body(struct areq *a, size_t *len);
/* ---- admin_routes.c: what every handler file shares ---------------------------- */
int64_t admin_now_s(void);
/* 503 UNAVAILABLE for a read the store could not make. */
void admin_read_failed(struct areq *a, int r);
/* The query string against the names allowed (400 naming the field). */
bool admin_query(struct areq *a, const char *const *allowed, struct sc_query *q);
bool admin_no_query(struct areq *a);
/* The key of the path ({id}), if the caller may `need` it: another owner's
 * key answers exactly as a missing one (404). */
bool admin_load_key(struct areq *a, enum apikey_right need, char id[APIKEY_ID_SIZE],
                    struct apikey_key_info *k);
/* An owner the caller names: its own unless an admin, else 403 naming field. */
bool admin_owner_allowed(struct areq *a, enum apikey_right need, const char *owner, const char *field);
/* ?owner= of a listing: the caller's own unless an admin names none;
 * another's is 403 (false: answered). */
bool admin_owner_query(struct areq *a, const struct sc_query *q, const char **owner);
/* ?limit= (1..SIDECAR_ADMIN_PAGE_MAX) and ?cursor= (cursor NULL: the route
 * has none) into *limit, *cursor when given; 400 naming the field (false:
 * answered). */
bool admin_page_query(struct areq *a, const struct sc_query *q, unsigned *limit, uint64_t *cursor);
/* A page's "next" cursor: a string, or null on the last page. */
json_t *admin_cursor_json(uint64_t next);
/* r != 0: answered 400 naming the field of the core's refusal `why`. */
bool admin_core_refuses(struct areq *a, int r, const char *why);

/* The handlers: keys (admin_routes.c), usage (admin_usage.c), accounts,
 * presets and events (admin_owners.c). */
void h_keys_list(struct areq *a);
void h_keys_create(struct areq *a);
void h_key_get(struct areq *a);
void h_key_patch(struct areq *a);
void h_key_revoke(struct areq *a);
void h_key_rotate(struct areq *a);
void h_key_usage(struct areq *a);
void h_usage(struct areq *a);
void h_account_get(struct areq *a);
void h_account_put(struct areq *a);
void h_presets_list(struct areq *a);
void h_preset_get(struct areq *a);
void h_preset_put(struct areq *a);
void h_preset_delete(struct areq *a);
void h_events(struct areq *a);

#endif /* SIDECAR_ADMIN_H */

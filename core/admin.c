/* admin.c — the rules of the writes around keys: presets, accounts and
 * pruning.  Each validates its arguments (core/rules.c), writes through the
 * row primitives of core/rows.h and records its audit event with the actor,
 * in one transaction. */
#include <stdio.h>
#include <string.h>
#include "rows.h"

int apikey_preset_set(struct apikey_store *s, const char *name, const char *scopes,
                      const struct apikey_actor *actor)
{
	char norm[APIKEY_SCOPES_SIZE], *why = store_why(s);
	int r;

	why[0] = '\0';
	if (!actor_valid(actor))
		return APIKEY_ERR_INVALID;
	if (apikey_preset_check(apikey_store_config(s), name, scopes, why, APIKEY_WHY_SIZE) != 0)
		return APIKEY_ERR_INVALID;
	apikey_scopes_normalize(scopes, norm, sizeof(norm));   /* checked: it fits */
	if ((r = row_begin(s)) != 0)
		return r;
	if ((r = row_preset_upsert(s, name, norm)) != 0 ||
	    (r = audit(s, actor, now_ms() / 1000, "", "preset-set", name)) != 0)
		goto fail;
	return row_commit(s);
fail:
	row_rollback(s);
	return r;
}

int apikey_preset_remove(struct apikey_store *s, const char *name, const struct apikey_actor *actor)
{
	int r;

	if (!actor_valid(actor))
		return APIKEY_ERR_INVALID;
	if ((r = row_begin(s)) != 0)
		return r;
	if ((r = row_preset_delete(s, name)) != 0 ||
	    (r = audit(s, actor, now_ms() / 1000, "", "preset-removed", name)) != 0)
		goto fail;
	return row_commit(s);
fail:
	row_rollback(s);
	return r;
}

int apikey_account_set(struct apikey_store *s, const char *owner, const char *plan, int active,
                       const struct apikey_actor *actor)
{
	int r;

	if (!actor_valid(actor) || apikey_account_check(owner, plan, NULL) != 0)
		return APIKEY_ERR_INVALID;
	if ((r = row_begin(s)) != 0)
		return r;
	if ((r = row_account_upsert(s, owner, plan, active)) != 0 ||
	    (r = audit_owner(s, actor, now_ms() / 1000, owner,
	                     active == 0 ? "account-suspended" : "account-updated", owner)) != 0)
		goto fail;
	return row_commit(s);
fail:
	row_rollback(s);
	return r;
}

struct prune_ctx { struct apikey_store *s; const struct apikey_actor *actor; int64_t now; };

static int prune_event(void *vctx, const char *id, const char *why)
{
	struct prune_ctx *pc = vctx;

	return audit(pc->s, pc->actor, pc->now, id, "pruned", why);
}

int apikey_prune(struct apikey_store *s, int64_t before_s, const struct apikey_actor *actor,
                 unsigned *keys_removed, unsigned *events_removed)
{
	char what[APIKEY_REASON_SIZE], when[32];
	struct prune_ctx pc = { s, actor, now_ms() / 1000 };
	unsigned keys = 0, events = 0;
	int64_t cut = before_s < pc.now ? before_s : pc.now;
	int r;

	if (keys_removed)
		*keys_removed = 0;
	if (events_removed)
		*events_removed = 0;
	if (!actor_valid(actor))
		return APIKEY_ERR_INVALID;
	if ((r = row_begin(s)) != 0)
		return r;
	/* Only what died before the cut-off, and the cut-off is never later than
	 * now: a key that can still verify is not dead. */
	if ((r = row_prune_keys(s, cut, &keys)) != 0 || (r = row_prune_events(s, cut, &events)) != 0 ||
	    (r = row_prune_usage(s, cut, pc.now - APIKEY_USAGE_MINUTES_KEEP_S)) != 0 ||
	    (r = row_pruned_each(s, prune_event, &pc)) != 0)
		goto fail;
	apikey_format_time(cut, when);
	snprintf(what, sizeof(what), "%u keys, %u events before %s", keys, events, when);
	if ((r = audit(s, actor, pc.now, "", "pruned", what)) != 0 || (r = row_commit(s)) != 0)
		goto fail;
	if (keys_removed)
		*keys_removed = keys;
	if (events_removed)
		*events_removed = events;
	return 0;
fail:
	row_rollback(s);
	return r;
}

int apikey_preset_sync(struct apikey_store *s, const struct apikey_actor *actor,
                       void (*fn)(void *ctx, const char *name, const char *scopes, const char *what),
                       void *ctx)
{
	const struct apikey_profile *p = &apikey_store_config(s)->profile;
	char stored[APIKEY_SCOPES_SIZE], norm[APIKEY_SCOPES_SIZE];
	const char *what[APIKEY_PROFILE_PRESETS];
	int64_t now = now_ms() / 1000;
	int r;

	if (!actor_valid(actor))
		return APIKEY_ERR_INVALID;
	if ((r = row_begin(s)) != 0)
		return r;
	for (unsigned i = 0; i < p->n_presets && i < APIKEY_PROFILE_PRESETS; i++) {
		const struct apikey_profile_preset *pr = &p->presets[i];

		r = row_preset_get(s, pr->name, stored);   /* through the backend: the fleet's preset */
		if (r != 0 && r != APIKEY_ERR_NOT_FOUND)
			goto fail;
		what[i] = r == APIKEY_ERR_NOT_FOUND ? "added" : "replaced";
		if (r == 0 && apikey_scopes_normalize(stored, norm, sizeof(norm)) == 0 && !strcmp(norm, pr->scopes)) {
			what[i] = "unchanged";
			continue;
		}
		/* checked when the configuration was loaded (profile_check) */
		if ((r = row_preset_upsert(s, pr->name, pr->scopes)) != 0 ||
		    (r = audit(s, actor, now, "", "preset-set", pr->name)) != 0)
			goto fail;
	}
	if ((r = row_commit(s)) != 0)
		return r;
	for (unsigned i = 0; fn && i < p->n_presets && i < APIKEY_PROFILE_PRESETS; i++)
		fn(ctx, p->presets[i].name, p->presets[i].scopes, what[i]);
	return 0;
fail:
	row_rollback(s);
	return r;
}

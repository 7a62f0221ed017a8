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
	char norm[APIKEY_SCOPES_SIZE];
	int r;

	if (!actor_valid(actor) || apikey_preset_check(name, scopes, NULL) != 0)
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

int apikey_prune(struct apikey_store *s, int64_t before_s, const struct apikey_actor *actor,
                 unsigned *keys_removed, unsigned *events_removed)
{
	char what[APIKEY_REASON_SIZE];
	unsigned keys = 0, events = 0;
	int r;

	if (keys_removed)
		*keys_removed = 0;
	if (events_removed)
		*events_removed = 0;
	if (!actor_valid(actor))
		return APIKEY_ERR_INVALID;
	if ((r = row_begin(s)) != 0)
		return r;
	if ((r = row_prune(s, before_s, now_ms() / 1000 - APIKEY_USAGE_MINUTES_KEEP_S, &keys, &events)) != 0)
		goto fail;
	snprintf(what, sizeof(what), "%u keys, %u events", keys, events);
	if ((r = audit(s, actor, now_ms() / 1000, "", "pruned", what)) != 0 || (r = row_commit(s)) != 0)
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

/* import.c — keys another system issued, imported by their foreign hash:
 * validated like every key write (core/rules.c), inserted through the row
 * primitives with an "imported" event.  Batches (apikey_import_begin /
 * commit, core/store.c) put many of them in one transaction. */
#include <string.h>
#include "rows.h"

int apikey_import_one(struct apikey_store *s, const struct apikey_import_params *p,
                      const struct apikey_actor *actor, struct apikey_key_info *info)
{
	struct key_fields f = {
		.required = true, .import = true, .owner = p->owner, .name = p->name, .scopes = p->scopes,
		.rate_limit = p->rate_limit, .expiry_set = true, .expires_at_s = p->expires_at_s,
		.metadata = p->metadata, .hash = p->hash, .hint = p->hint,
	};
	char scopes[APIKEY_SCOPES_SIZE], id[APIKEY_ID_SIZE];
	int64_t now = now_ms() / 1000;
	const char *scheme = apikey_hash_scheme(p->hash);
	struct key_row k = {
		.id = id, .owner = p->owner, .name = p->name, .scopes = scopes, .metadata = p->metadata,
		.foreign_hash = p->hash, .hash_alg = scheme, .hint = p->hint,
		.created_at_s = now, .expires_at_s = p->expires_at_s,
		.rate_limit = p->rate_limit ? p->rate_limit : store_config(s)->default_rate_limit,
	};
	int r;

	if (!actor_valid(actor))
		return APIKEY_ERR_INVALID;
	if ((r = key_fields_check(&f, now, scopes, NULL)) != 0)
		return r;
	if (p->metadata && (r = row_json_object(s, p->metadata)) != 0)
		return r;
	if ((r = apikey_id_generate(id)) != 0)
		return r;
	if ((r = row_begin(s)) != 0)
		return r;
	if ((r = row_key_insert(s, &k)) != 0 || (r = audit(s, actor, now, id, "imported", scheme)) != 0)
		goto fail;
	if (info) {
		struct key_record rec;
		if ((r = row_key_get(s, id, &rec)) != 0)
			goto fail;
		*info = rec.info;
	}
	return row_commit(s);
fail:
	row_rollback(s);
	return r;
}

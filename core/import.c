/* import.c — keys another system issued, imported by their foreign hash:
 * validated like every key write (core/rules.c) and inserted through the row
 * primitives.  Batches (apikey_import_begin / commit) put many writes in
 * one transaction; their imports are audited as one "imported" event per
 * batch and writer (a million per-key events would cost a bulk import a
 * fifth more time and a third more disk, BENCHMARKS.md); a key imported
 * alone gets an event naming it. */
#include <stdio.h>
#include <string.h>
#include "rows.h"

/* The batch's pending "imported" event, if any: written inside the batch. */
static int audit_flush(struct apikey_store *s)
{
	struct import_audit *a = store_import_audit(s);
	struct apikey_actor actor = { .source = a->source, .key_id = a->actor[0] ? a->actor : NULL };
	char what[APIKEY_REASON_SIZE];
	int r;

	if (!a->keys)
		return 0;
	snprintf(what, sizeof(what), "%u keys", a->keys);
	r = audit(s, &actor, now_ms() / 1000, "", "imported", what);
	if (r == 0)
		a->keys = 0;
	return r;
}

/* Count one import of the batch; a change of writer closes the count so far. */
static int audit_count(struct apikey_store *s, const struct apikey_actor *actor)
{
	struct import_audit *a = store_import_audit(s);
	const char *key_id = actor->key_id ? actor->key_id : "";
	int r;

	if (a->keys && (strcmp(a->source, actor->source) || strcmp(a->actor, key_id)) &&
	    (r = audit_flush(s)) != 0)
		return r;
	if (!a->keys) {
		copy_str(a->source, sizeof(a->source), actor->source);
		copy_str(a->actor, sizeof(a->actor), key_id);
	}
	a->keys++;
	return 0;
}

int apikey_import_begin(struct apikey_store *s)
{
	int r = row_batch_begin(s);

	if (r == 0)
		store_import_audit(s)->keys = 0;
	return r;
}

int apikey_import_commit(struct apikey_store *s)
{
	int r;

	if (!row_in_batch(s))
		return APIKEY_ERR_INVALID;
	if ((r = audit_flush(s)) != 0) {
		row_batch_rollback(s);
		return r;
	}
	return row_batch_commit(s);
}

void apikey_import_rollback(struct apikey_store *s)
{
	store_import_audit(s)->keys = 0;
	row_batch_rollback(s);
}

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
		.rate_limit = p->rate_limit ? p->rate_limit : apikey_store_config(s)->default_rate_limit,
	};
	int r;

	if ((r = key_write_check(s, actor, &f, scopes)) != 0)
		return r;
	if ((r = apikey_id_generate(id)) != 0)
		return r;
	if ((r = row_begin(s)) != 0)
		return r;
	if ((r = row_key_insert(s, &k)) != 0)
		goto fail;
	r = row_in_batch(s) ? audit_count(s, actor) : audit(s, actor, now, id, "imported", scheme);
	if (r != 0)
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

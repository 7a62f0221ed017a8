/* keys.c — the rules of a key's life: its status at a time, and the writes
 * create, update, revoke and rotate — each validated by core/rules.c, allowed
 * or refused by the key's state, written through the row primitives of
 * core/rows.h in one transaction with its audit event.  A raw key exists
 * only in the caller's key_out buffer. */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include "rows.h"

enum apikey_key_status apikey_key_status(const struct apikey_key_info *k, int64_t now_s)
{
	if (k->revoked_at_s && k->revoked_at_s <= now_s)
		return APIKEY_KEY_REVOKED;
	if (k->expires_at_s && now_s >= k->expires_at_s)
		return APIKEY_KEY_EXPIRED;
	if (k->rotated_to[0])
		return APIKEY_KEY_ROTATING;   /* valid until its grace period ends */
	return APIKEY_KEY_ACTIVE;
}

const char *apikey_key_status_name(enum apikey_key_status st)
{
	switch (st) {
	case APIKEY_KEY_ACTIVE:   return "active";
	case APIKEY_KEY_ROTATING: return "rotating";
	case APIKEY_KEY_REVOKED:  return "revoked";
	case APIKEY_KEY_EXPIRED:  return "expired";
	}
	return "revoked";   /* out of range: the state that allows nothing */
}

/* The scopes of a stored preset, normalised, inside the catalogue (a
 * preset stored before the catalogue was set may not be). */
static int preset_scopes(struct apikey_store *s, const char *preset, char out[APIKEY_SCOPES_SIZE])
{
	char raw[APIKEY_SCOPES_SIZE], *why = store_why(s);
	int r;

	if ((r = row_preset_get(s, preset, raw)) != 0) {
		if (r == APIKEY_ERR_NOT_FOUND)
			snprintf(why, APIKEY_WHY_SIZE, "no preset named '%s'", preset);
		return r;
	}
	if (apikey_scopes_normalize(raw, out, APIKEY_SCOPES_SIZE) != 0 || !out[0]) {
		snprintf(why, APIKEY_WHY_SIZE, "preset '%s' holds no valid scope list", preset);
		return APIKEY_ERR_INVALID;
	}
	if (profile_scopes_allowed(&apikey_store_config(s)->profile, out, why, APIKEY_WHY_SIZE) != 0) {
		size_t n = strlen(why);
		snprintf(why + n, APIKEY_WHY_SIZE - n, " (preset '%s')", preset);
		return APIKEY_ERR_INVALID;
	}
	return 0;
}

/* What every key write checks first, without SQL: the actor, and the fields
 * under the store's profile (catalogue, tiers); the reason of a refusal is
 * kept on the connection (apikey_store_why). */
static int check_fields(struct apikey_store *s, const struct apikey_actor *actor, const struct key_fields *fin,
                        char scopes[APIKEY_SCOPES_SIZE])
{
	struct key_fields f = *fin;
	char *why = store_why(s);

	why[0] = '\0';
	if (!actor_valid(actor)) {
		snprintf(why, APIKEY_WHY_SIZE, "a write needs an actor with a source");
		return APIKEY_ERR_INVALID;
	}
	f.cfg = apikey_store_config(s);
	return key_fields_check(&f, now_ms() / 1000, scopes, why, APIKEY_WHY_SIZE);
}

/* The actor's bound (struct apikey_actor.within): the scopes a key would hold. */
static int check_within(const struct apikey_actor *actor, const char *scopes)
{
	return !actor->within || apikey_scopes_within(actor->within, scopes) ? 0 : APIKEY_ERR_FORBIDDEN;
}

/* Then, inside the write's transaction, what only the store answers: a
 * preset's scopes (the profile's default preset for a key created without
 * scopes) inside the catalogue, metadata being a JSON object, and whether
 * the actor may grant the scopes (read in the same transaction as the
 * write, so a preset changed meanwhile cannot widen what was checked). */
static int check_stored(struct apikey_store *s, const struct apikey_actor *actor,
                        const struct key_fields *f, char scopes[APIKEY_SCOPES_SIZE])
{
	const char *preset = f->preset;
	int r;

	if (f->required && !f->scopes && !preset)
		preset = apikey_store_config(s)->profile.default_preset;   /* check_fields: there is one */
	if (preset && (r = preset_scopes(s, preset, scopes)) != 0)
		return r;
	if (f->metadata && (r = row_json_object(s, f->metadata)) != 0) {
		if (r == APIKEY_ERR_INVALID)
			snprintf(store_why(s), APIKEY_WHY_SIZE, "metadata must be a JSON object");
		return r;
	}
	if ((f->scopes || preset) && (r = check_within(actor, scopes)) != 0)
		return r;
	return 0;
}

int key_write_check(struct apikey_store *s, const struct apikey_actor *actor, const struct key_fields *f,
                    char scopes[APIKEY_SCOPES_SIZE])
{
	int r = check_fields(s, actor, f, scopes);

	return r != 0 ? r : check_stored(s, actor, f, scopes);
}

/* Generate a key and its id, insert its row; the raw key only ever sits in
 * key_out (wiped on failure).  Inside the caller's transaction. */
static int issue_key(struct apikey_store *s, struct key_row *k, char *key_out, size_t key_out_sz,
                     char id[APIKEY_ID_SIZE])
{
	const struct apikey_format *fmt = &apikey_store_config(s)->format;
	unsigned char digest[DIGEST_LEN];
	char hint[APIKEY_HINT_SIZE];
	int r;

	if (key_out_sz < APIKEY_KEY_MAX + 1)
		return APIKEY_ERR_TOO_LONG;
	if ((r = apikey_token_generate(fmt, key_out, key_out_sz)) != 0 ||
	    (r = apikey_id_generate(id)) != 0 ||
	    (r = store_digest(s, key_out, strlen(key_out), digest)) != 0)
		goto out;
	apikey_token_hint(fmt, key_out, strlen(key_out), hint);
	k->id = id;
	k->digest = digest;
	k->hash_alg = "hmac-sha256";
	k->hint = hint;
	r = row_key_insert(s, k);
out:
	OPENSSL_cleanse(digest, sizeof(digest));
	if (r != 0)
		OPENSSL_cleanse(key_out, key_out_sz);
	return r;
}

/* The record just written, into info (may be NULL). */
static int read_back(struct apikey_store *s, const char *id, struct apikey_key_info *info)
{
	struct key_record rec;
	int r;

	if (!info)
		return 0;
	if ((r = row_key_get(s, id, &rec)) == 0)
		*info = rec.info;
	return r;
}

int apikey_key_create(struct apikey_store *s, const struct apikey_create_params *p,
                      const struct apikey_actor *actor, char *key_out, size_t key_out_sz,
                      struct apikey_key_info *info)
{
	struct key_fields f = {
		.required = true, .owner = p->owner, .name = p->name, .scopes = p->scopes,
		.preset = p->preset, .rate_limit = p->rate_limit, .expiry_set = true,
		.expires_at_s = p->expires_at_s, .metadata = p->metadata,
	};
	char scopes[APIKEY_SCOPES_SIZE], id[APIKEY_ID_SIZE];
	int64_t now = now_ms() / 1000;
	struct key_row k = {
		.owner = p->owner, .name = p->name, .scopes = scopes, .metadata = p->metadata,
		.created_at_s = now, .expires_at_s = p->expires_at_s,
		.rate_limit = p->rate_limit ? p->rate_limit : apikey_store_config(s)->default_rate_limit,
	};
	int r;

	if ((r = check_fields(s, actor, &f, scopes)) != 0)
		goto wipe;
	if ((r = row_begin(s)) != 0)
		goto wipe;
	if ((r = check_stored(s, actor, &f, scopes)) != 0 ||
	    (r = issue_key(s, &k, key_out, key_out_sz, id)) != 0 ||
	    (r = audit(s, actor, now, id, "created", "")) != 0 ||
	    (r = read_back(s, id, info)) != 0)
		goto fail;
	if ((r = row_commit(s)) != 0)
		goto wipe;
	return 0;
fail:
	row_rollback(s);
wipe:
	OPENSSL_cleanse(key_out, key_out_sz);
	return r;
}

/* Append ",name" to the list of changed fields. */
static void changed(char *list, size_t sz, const char *name)
{
	size_t n = strlen(list);

	if (n + 1 + strlen(name) < sz) {
		if (n)
			list[n++] = ',';
		memcpy(list + n, name, strlen(name) + 1);
	}
}

/* The rate-limit state of a key whose limit changed stands for the same
 * requests under the new limit, in the host's table that every process
 * charges (a full bucket means the same under any limit). */
static int rescale_rate(struct apikey_store *s, const char *id, uint32_t old_limit, uint32_t new_limit)
{
	struct apikey_limiter *lim;
	int r;

	if (old_limit == new_limit)
		return 0;
	if ((r = store_limiter(s, &lim)) != 0)
		return r;
	return apikey_limiter_rescale(lim, id, now_ms() * 1000, old_limit, new_limit);
}

int apikey_key_update(struct apikey_store *s, const char *id, const struct apikey_update_params *p,
                      const struct apikey_actor *actor, struct apikey_key_info *info)
{
	struct key_fields f = {
		.name = p->name, .scopes = p->scopes, .preset = p->preset, .rate_limit = p->rate_limit,
		.expiry_set = p->expiry == APIKEY_EXPIRY_SET, .expires_at_s = p->expires_at_s,
		.metadata = p->metadata,
	};
	char scopes[APIKEY_SCOPES_SIZE], fields[APIKEY_REASON_SIZE] = "";
	int64_t now = now_ms() / 1000;
	struct key_record old;
	struct key_row k;
	int r;

	if (!id || apikey_update_check(apikey_store_config(s), p, store_why(s), APIKEY_WHY_SIZE) != 0)
		return APIKEY_ERR_INVALID;
	if ((r = check_fields(s, actor, &f, scopes)) != 0)
		return r;
	if ((r = row_begin(s)) != 0)
		return r;
	if ((r = row_key_get(s, id, &old)) != 0 || (r = check_stored(s, actor, &f, scopes)) != 0)
		goto fail;
	/* A revoked key stays revoked; a rotated one has handed on its rights. */
	if (old.info.revoked_at_s || old.info.rotated_to[0]) {
		r = APIKEY_ERR_CONFLICT;
		goto fail;
	}
	k = (struct key_row){
		.name = p->name ? p->name : old.info.name,
		.scopes = p->scopes || p->preset ? scopes : old.info.scopes,
		.metadata = p->metadata ? p->metadata : old.info.metadata,
		.rate_limit = p->rate_limit ? p->rate_limit : old.info.rate_limit,
		.expires_at_s = p->expiry == APIKEY_EXPIRY_SET ? p->expires_at_s :
		                p->expiry == APIKEY_EXPIRY_NEVER ? 0 : old.info.expires_at_s,
	};
	if (strcmp(k.name, old.info.name))
		changed(fields, sizeof(fields), "name");
	if (strcmp(k.scopes, old.info.scopes))
		changed(fields, sizeof(fields), "scopes");
	if (k.rate_limit != old.info.rate_limit)
		changed(fields, sizeof(fields), "rate_limit");
	if (k.expires_at_s != old.info.expires_at_s)
		changed(fields, sizeof(fields), "expires_at");
	if (strcmp(k.metadata, old.info.metadata))
		changed(fields, sizeof(fields), "metadata");
	if (!fields[0]) {                 /* nothing to change: nothing written */
		row_rollback(s);
		if (info)
			*info = old.info;
		return 0;
	}
	if ((r = row_key_update(s, id, &k)) != 0 ||
	    (r = audit(s, actor, now, id, "updated", fields)) != 0 ||
	    (r = read_back(s, id, info)) != 0 || (r = row_commit(s)) != 0)
		goto fail;
	/* the limit is the store's once committed: only then the table's state
	 * follows it (a failure here leaves the old scale: stricter or looser by
	 * what the key used, never a limit of its own) */
	rescale_rate(s, id, old.info.rate_limit, k.rate_limit);
	return 0;
fail:
	row_rollback(s);
	return r;
}

int apikey_key_revoke(struct apikey_store *s, const char *id, const struct apikey_actor *actor)
{
	struct key_record rec;
	int64_t now = now_ms() / 1000;
	int r;

	if (!actor_valid(actor))
		return APIKEY_ERR_INVALID;
	if ((r = row_begin(s)) != 0)
		return r;
	if ((r = row_key_get(s, id, &rec)) != 0)
		goto fail;
	if (rec.info.revoked_at_s) {     /* already revoked: keep the first time */
		row_rollback(s);
		return 0;
	}
	if ((r = row_key_set_revoked(s, id, now)) != 0 ||
	    (r = audit(s, actor, now, id, "revoked", "")) != 0)
		goto fail;
	return row_commit(s);
fail:
	row_rollback(s);
	return r;
}

int apikey_key_rotate(struct apikey_store *s, const char *id, int64_t grace_s,
                      const struct apikey_actor *actor, char *key_out, size_t key_out_sz,
                      struct apikey_key_info *new_info)
{
	struct apikey_rotate_params p = { .grace_s = grace_s, .expiry = APIKEY_EXPIRY_KEEP };

	return apikey_key_rotate_with(s, id, &p, actor, key_out, key_out_sz, new_info);
}

int apikey_key_rotate_with(struct apikey_store *s, const char *id, const struct apikey_rotate_params *p,
                           const struct apikey_actor *actor, char *key_out, size_t key_out_sz,
                           struct apikey_key_info *new_info)
{
	char fresh[APIKEY_ID_SIZE], *why = store_why(s);
	struct key_record old;
	int64_t now = now_ms() / 1000, old_expiry, grace_s = p->grace_s;
	struct key_row k;
	int r;

	why[0] = '\0';
	if (grace_s < 0 || !actor_valid(actor)) {
		snprintf(why, APIKEY_WHY_SIZE, "%s", grace_s < 0 ? "the grace period must not be negative"
		                                                 : "a write needs an actor with a source");
		return APIKEY_ERR_INVALID;
	}
	if ((p->expiry != APIKEY_EXPIRY_KEEP && p->expiry != APIKEY_EXPIRY_SET && p->expiry != APIKEY_EXPIRY_NEVER) ||
	    (p->expiry == APIKEY_EXPIRY_SET && p->expires_at_s <= now)) {
		snprintf(why, APIKEY_WHY_SIZE, "expires_at must be in the future");
		return APIKEY_ERR_INVALID;
	}
	if ((r = row_begin(s)) != 0)
		return r;
	if ((r = row_key_get(s, id, &old)) != 0)
		goto fail;
	/* Only a live key can hand on its rights, and only to someone who may
	 * grant them. */
	if (apikey_key_status(&old.info, now) != APIKEY_KEY_ACTIVE) {
		r = APIKEY_ERR_CONFLICT;
		goto fail;
	}
	if ((r = check_within(actor, old.info.scopes)) != 0)
		goto fail;
	k = (struct key_row){
		.owner = old.info.owner, .name = old.info.name, .scopes = old.info.scopes,
		.metadata = old.info.metadata, .rate_limit = old.info.rate_limit,
		.created_at_s = now, .rotated_from = old.info.id,
		.expires_at_s = p->expiry == APIKEY_EXPIRY_SET ? p->expires_at_s :
		                p->expiry == APIKEY_EXPIRY_NEVER ? 0 : old.info.expires_at_s,
	};
	if ((r = issue_key(s, &k, key_out, key_out_sz, fresh)) != 0)
		goto fail;
	old_expiry = now + grace_s;
	if (old.info.expires_at_s && old.info.expires_at_s < old_expiry)
		old_expiry = old.info.expires_at_s;
	if ((r = row_key_set_rotated(s, id, fresh, grace_s == 0 ? now : 0, old_expiry)) != 0 ||
	    (r = audit(s, actor, now, id, "rotated", "")) != 0 ||
	    (r = audit(s, actor, now, fresh, "created", "")) != 0 ||
	    (r = read_back(s, fresh, new_info)) != 0 ||
	    (r = row_commit(s)) != 0)
		goto fail;
	return 0;
fail:
	row_rollback(s);
	OPENSSL_cleanse(key_out, key_out_sz);
	return r;
}

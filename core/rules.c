/* rules.c — the validation rules of every write, in one place: what an
 * owner, a name, a preset name and the fields of a key may be (one check for
 * create, update and import), and how a write's audit event is recorded.
 * Store-free, so front ends can ask first (apikey_*_check) and a second
 * backend validates the same way. */
#include <stdio.h>
#include <string.h>
#include "rows.h"

bool owner_valid(const char *o)
{
	size_t n = o ? strlen(o) : 0;

	if (n == 0 || n >= APIKEY_OWNER_SIZE)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)o[i] <= ' ' || o[i] == 0x7f || o[i] == ':' || o[i] == ',')
			return false;
	return true;
}

/* NULL (no name) is valid. */
bool name_valid(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	for (size_t i = 0; i < len; i++)
		if (ascii_control((unsigned char)n[i]))
			return false;
	return len < APIKEY_NAME_SIZE;
}

bool preset_name_valid(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len == 0 || len >= APIKEY_PRESET_SIZE)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(ascii_lower((unsigned char)n[i]) || ascii_digit((unsigned char)n[i]) ||
		      n[i] == '-' || n[i] == '_'))
			return false;
	return true;
}

#define OWNER_RULE "owner must be 1-63 characters without blanks, ':' or ','"

static int refuse(char *why, size_t whysz, const char *reason)
{
	if (why && whysz)
		snprintf(why, whysz, "%s", reason);
	return APIKEY_ERR_INVALID;
}

/* An imported key can verify only if the profile looks it up: its hint
 * starts with the key prefix or a legacy prefix (or is the start of one). */
static bool hint_importable(const struct apikey_format *fmt, const char *hint)
{
	size_t hn = strlen(hint);

	for (unsigned i = 0; i <= fmt->n_legacy && i <= APIKEY_LEGACY_MAX; i++) {
		const char *pfx = i == 0 ? fmt->prefix : fmt->legacy[i - 1];
		size_t pn = strlen(pfx), n = pn < hn ? pn : hn;
		if (pn && !memcmp(pfx, hint, n))
			return true;
	}
	return false;
}

int key_fields_check(const struct key_fields *f, int64_t now_s, char scopes_out[APIKEY_SCOPES_SIZE],
                     char *why, size_t whysz)
{
	char scratch[APIKEY_SCOPES_SIZE], *scopes = scopes_out ? scopes_out : scratch;
	const struct apikey_profile *prof = f->cfg ? &f->cfg->profile : NULL;
	const char *cost_why;

	if (why && whysz)
		why[0] = '\0';
	if (f->import) {
		size_t hlen = f->hint ? strlen(f->hint) : 0;

		if (!apikey_hash_scheme(f->hash))
			return refuse(why, whysz, "hash is not sha256:<64 hex>, bcrypt ($2a$/$2b$/$2y$) or $argon2id$");
		if (foreign_cost_check(f->hash, &cost_why) != 0)
			return refuse(why, whysz, cost_why);
		if (hlen < APIKEY_IMPORT_HINT_MIN || hlen > APIKEY_IMPORT_HINT_MAX)
			return refuse(why, whysz, "hint must be the first 6 to 16 characters of the key");
		for (size_t i = 0; i < hlen; i++)
			if ((unsigned char)f->hint[i] <= ' ' || (unsigned char)f->hint[i] >= 0x7f)
				return refuse(why, whysz, "hint must be printable ASCII");
		if (f->cfg && !hint_importable(&f->cfg->format, f->hint)) {
			if (why && whysz)
				snprintf(why, whysz, "hint '%s' starts with neither key_prefix=%s nor a legacy prefix "
				         "(key_legacy_prefixes=): this profile would answer the key MALFORMED_KEY",
				         f->hint, f->cfg->format.prefix);
			return APIKEY_ERR_INVALID;
		}
	}
	if ((f->owner || f->required) && !owner_valid(f->owner))
		return refuse(why, whysz, OWNER_RULE);
	if (!name_valid(f->name))
		return refuse(why, whysz, "name must be printable and under 128 bytes");
	if (f->rate_limit && (f->rate_limit < APIKEY_RATE_MIN || f->rate_limit > APIKEY_RATE_MAX))
		return refuse(why, whysz, "rate_limit must be 1..1000000");
	if (profile_rate_allowed(prof, f->rate_limit, why, whysz) != 0)
		return APIKEY_ERR_INVALID;
	if (f->expiry_set && f->expires_at_s && f->expires_at_s <= now_s && !f->import)
		return refuse(why, whysz, "expires_at must be in the future");
	if (f->metadata && strlen(f->metadata) >= APIKEY_META_SIZE)
		return refuse(why, whysz, "metadata longer than 2047 bytes");
	if (f->scopes && f->preset)
		return refuse(why, whysz, f->required ? "give exactly one of scopes and preset"
		                                      : "give at most one of scopes and preset");
	/* create and import without either: the profile's default preset */
	if (f->required && !f->scopes && !f->preset && !(prof && prof->default_preset[0]))
		return refuse(why, whysz, "scopes or a preset must be given (no default_preset is configured)");
	if (f->scopes && (apikey_scopes_normalize(f->scopes, scopes, APIKEY_SCOPES_SIZE) != 0 || !scopes[0]))
		return refuse(why, whysz, "scopes must be a non-empty list of resource:action scopes");
	if (f->scopes && profile_scopes_allowed(prof, scopes, why, whysz) != 0)
		return APIKEY_ERR_INVALID;
	return 0;
}

int apikey_create_check(const struct apikey_config *c, const struct apikey_create_params *p, char *why,
                        size_t whysz)
{
	struct key_fields f = {
		.cfg = c, .required = true, .owner = p->owner, .name = p->name, .scopes = p->scopes,
		.preset = p->preset, .rate_limit = p->rate_limit, .expiry_set = true,
		.expires_at_s = p->expires_at_s, .metadata = p->metadata,
	};

	return key_fields_check(&f, now_ms() / 1000, NULL, why, whysz);
}

int apikey_update_check(const struct apikey_config *c, const struct apikey_update_params *p, char *why,
                        size_t whysz)
{
	struct key_fields f = {
		.cfg = c, .name = p->name, .scopes = p->scopes, .preset = p->preset, .rate_limit = p->rate_limit,
		.expiry_set = p->expiry == APIKEY_EXPIRY_SET, .expires_at_s = p->expires_at_s,
		.metadata = p->metadata,
	};

	if (p->expiry != APIKEY_EXPIRY_KEEP && p->expiry != APIKEY_EXPIRY_SET && p->expiry != APIKEY_EXPIRY_NEVER)
		return refuse(why, whysz, "expiry must be keep, set or never");
	if (p->expiry == APIKEY_EXPIRY_SET && p->expires_at_s <= 0)
		return refuse(why, whysz, "expires_at must be in the future");
	return key_fields_check(&f, now_ms() / 1000, NULL, why, whysz);
}

int apikey_import_check(const struct apikey_config *c, const struct apikey_import_params *p, char *why,
                        size_t whysz)
{
	struct key_fields f = {
		.cfg = c, .required = true, .import = true, .owner = p->owner, .name = p->name,
		.scopes = p->scopes, .rate_limit = p->rate_limit, .expiry_set = true,
		.expires_at_s = p->expires_at_s, .metadata = p->metadata, .hash = p->hash, .hint = p->hint,
	};

	return key_fields_check(&f, now_ms() / 1000, NULL, why, whysz);
}

int apikey_preset_check(const struct apikey_config *c, const char *name, const char *scopes, char *why,
                        size_t whysz)
{
	char norm[APIKEY_SCOPES_SIZE];

	if (!preset_name_valid(name))
		return refuse(why, whysz, "a preset name is 1-31 of [a-z0-9_-]");
	if (apikey_scopes_normalize(scopes, norm, sizeof(norm)) != 0 || !norm[0])
		return refuse(why, whysz, "scopes must be a non-empty list of resource:action scopes");
	if (profile_scopes_allowed(c ? &c->profile : NULL, norm, why, whysz) != 0)
		return APIKEY_ERR_INVALID;
	if (why && whysz)
		why[0] = '\0';
	return 0;
}

int apikey_account_check(const char *owner, const char *plan, const char **why)
{
	const char *dummy;

	if (!why)
		why = &dummy;
	*why = NULL;
	if (!owner_valid(owner))
		return *why = OWNER_RULE, APIKEY_ERR_INVALID;
	if (plan && strlen(plan) >= APIKEY_PLAN_SIZE)
		return *why = "plan must be at most 31 characters", APIKEY_ERR_INVALID;
	return 0;
}

bool actor_valid(const struct apikey_actor *a)
{
	return a && a->source && a->source[0] && (!a->key_id || !a->key_id[0] || apikey_id_valid(a->key_id));
}

int audit(struct apikey_store *s, const struct apikey_actor *actor, int64_t at_s, const char *key_id,
          const char *event, const char *reason)
{
	struct event_row e = {
		.at_s = at_s, .key_id = key_id, .event = event, .reason = reason,
		.source = actor->source, .actor = actor->key_id,
	};

	return row_event_append(s, &e);
}

int audit_owner(struct apikey_store *s, const struct apikey_actor *actor, int64_t at_s,
                const char *owner, const char *event, const char *reason)
{
	struct event_row e = {
		.at_s = at_s, .key_id = "", .event = event, .reason = reason,
		.source = actor->source, .actor = actor->key_id, .owner = owner,
	};

	return row_event_append(s, &e);
}

/* profile.c — what an apikey.conf profile adds to the core's settings
 * (SPEC §10, apikey.conf(5) COMPATIBLE ANSWERS): the options error_template,
 * error_code.X, error_message.X (compiled by core/render.c), scopes (the
 * catalogue), preset.NAME, default_preset and rate_limit_tiers; the checks
 * between them, made once the whole file is read and reported on the line
 * that must change; and the catalogue's rule, used by every write
 * (core/rules.c).  Store-free: the PAM module reads these too. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include "internal.h"

static const struct { const char *name, *scopes; } builtin_presets[] = {
	{ "read-only", "*:read" },
	{ "full-access", "*" },
};

static const char *const admin_scopes[] = { "apikey:read", "apikey:write", "apikey:admin" };

void profile_defaults(struct apikey_profile *p)
{
	memset(p, 0, sizeof(*p));
	apikey_answers_default(&p->answers);
}

bool profile_builtin_preset(unsigned i, const char **name, const char **scopes)
{
	if (i >= sizeof(builtin_presets) / sizeof(builtin_presets[0]))
		return false;
	*name = builtin_presets[i].name;
	*scopes = builtin_presets[i].scopes;
	return true;
}

const char *apikey_profile_preset(const struct apikey_profile *p, const char *name)
{
	const char *n, *sc;

	if (!name)
		return NULL;
	if (p->n_presets) {
		for (unsigned i = 0; i < p->n_presets && i < APIKEY_PROFILE_PRESETS; i++)
			if (!strcmp(p->presets[i].name, name))
				return p->presets[i].scopes;
		return NULL;
	}
	for (unsigned i = 0; profile_builtin_preset(i, &n, &sc); i++)
		if (!strcmp(n, name))
			return sc;
	return NULL;
}

/* ---- the catalogue ---------------------------------------------------------- */

/* "a:b" (n bytes) split at its colon; false when there is none. */
static bool split(const char *s, size_t n, size_t *rlen, const char **act, size_t *alen)
{
	const char *c = memchr(s, ':', n);

	if (!c)
		return false;
	*rlen = (size_t)(c - s);
	*act = c + 1;
	*alen = n - *rlen - 1;
	return true;
}

static bool is_star(const char *s, size_t n)
{
	return n == 1 && s[0] == '*';
}

bool apikey_scope_in_catalogue(const struct apikey_profile *p, const char *s, size_t n)
{
	const char *act;
	size_t rlen, alen;

	if (!p || p->n_catalogue == 0 || is_star(s, n))
		return true;
	for (size_t i = 0; i < sizeof(admin_scopes) / sizeof(admin_scopes[0]); i++)
		if (n == strlen(admin_scopes[i]) && !memcmp(s, admin_scopes[i], n))
			return true;
	if (!split(s, n, &rlen, &act, &alen))
		return false;
	for (unsigned i = 0; i < p->n_catalogue && i < APIKEY_CATALOGUE_MAX; i++) {
		const char *e = p->catalogue[i], *eact;
		size_t elen = strlen(e), erlen, ealen;

		if (!split(e, elen, &erlen, &eact, &ealen))
			continue;
		if ((is_star(s, rlen) || (rlen == erlen && !memcmp(s, e, rlen))) &&
		    (is_star(act, alen) || is_star(eact, ealen) || (alen == ealen && !memcmp(act, eact, alen))))
			return true;
	}
	return false;
}

int profile_scopes_allowed(const struct apikey_profile *p, const char *list, char *why, size_t whysz)
{
	const char *cur = list, *item;
	size_t n;

	while (apikey_list_next(&cur, &item, &n))
		if (!apikey_scope_in_catalogue(p, item, n)) {
			if (why)
				snprintf(why, whysz, "scope '%.*s' is not in the scope catalogue", (int)n, item);
			return APIKEY_ERR_INVALID;
		}
	return 0;
}

/* "30,60,120,300" */
static void tiers_text(const struct apikey_profile *p, char *out, size_t outsz)
{
	size_t used = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < p->n_tiers && used < outsz; i++)
		used += (size_t)snprintf(out + used, outsz - used, "%s%u", i ? "," : "", (unsigned)p->tiers[i]);
}

int profile_rate_allowed(const struct apikey_profile *p, uint32_t rate, char *why, size_t whysz)
{
	char tiers[APIKEY_TIERS_MAX * 8 + 1];

	if (!p || !p->n_tiers || !rate)
		return 0;
	for (unsigned i = 0; i < p->n_tiers && i < APIKEY_TIERS_MAX; i++)
		if (p->tiers[i] == rate)
			return 0;
	if (why) {
		tiers_text(p, tiers, sizeof(tiers));
		snprintf(why, whysz, "rate limit %u is not one of the tiers %s", (unsigned)rate, tiers);
	}
	return APIKEY_ERR_INVALID;
}

/* ---- options ------------------------------------------------------------------ */

#define ERR(...) (snprintf(err, errsz, __VA_ARGS__), APIKEY_ERR_CONFIG)

static const char *list_item_sep = ", \t";

/* Each item of a comma/blank list, as a NUL-terminated copy in item. */
static bool next_item(const char **cur, char *item, size_t itemsz, size_t *len)
{
	const char *p = *cur, *start;

	while (*p && strchr(list_item_sep, *p))
		p++;
	if (!*p)
		return false;
	start = p;
	while (*p && !strchr(list_item_sep, *p))
		p++;
	*len = (size_t)(p - start);
	*cur = p;
	snprintf(item, itemsz, "%.*s", (int)*len, start);
	return true;
}

static int outcome_of(const char *key, const char *prefix, enum apikey_outcome *o, char *err, size_t errsz)
{
	const char *name = key + strlen(prefix);
	int i = apikey_outcome_from_code(name);

	if (i == APIKEY_VALID)
		return ERR("%s: VALID is not a refusal", key);
	if (i < 0)
		return ERR("%s: no such outcome (MISSING_KEY, MALFORMED_KEY, INVALID_KEY, REVOKED, EXPIRED, "
		           "ACCOUNT_INACTIVE, PLAN_REQUIRED, WRONG_USER, INSUFFICIENT_SCOPE, RATE_LIMITED, "
		           "UNAVAILABLE)", key);
	*o = (enum apikey_outcome)i;
	return 0;
}

static int catalogue_add(struct apikey_profile *p, const char *val, unsigned line, char *err, size_t errsz)
{
	char cat[APIKEY_CATALOGUE_MAX][APIKEY_SCOPE_SIZE], item[APIKEY_LINE_MAX];
	const char *cur = val;
	unsigned n = p->n_catalogue;
	size_t len;

	if (!val || !val[0])
		return ERR("scopes: needs a value");
	memcpy(cat, p->catalogue, sizeof(cat));
	while (next_item(&cur, item, sizeof(item), &len)) {
		const char *act;
		size_t rlen, alen;
		bool dup = false;

		if (!apikey_scope_valid(item, len) || is_star(item, len) || !split(item, len, &rlen, &act, &alen) ||
		    is_star(item, rlen))
			return ERR("scopes: '%.63s' is not a catalogue entry (resource:action or resource:*)", item);
		for (unsigned i = 0; i < n; i++)
			dup |= !strcmp(cat[i], item);
		if (dup)
			continue;
		if (n == APIKEY_CATALOGUE_MAX)
			return ERR("scopes: more than %d entries", APIKEY_CATALOGUE_MAX);
		memcpy(cat[n++], item, len + 1);
	}
	if (n == p->n_catalogue && n == 0)
		return ERR("scopes: needs a value");
	memcpy(p->catalogue, cat, sizeof(cat));
	p->n_catalogue = n;
	if (!p->catalogue_line)
		p->catalogue_line = line;
	return 0;
}

static int preset_add(struct apikey_profile *p, const char *key, const char *val, unsigned line, char *err,
                      size_t errsz)
{
	const char *name = key + strlen("preset.");
	struct apikey_profile_preset *pr;
	char item[APIKEY_LINE_MAX];
	const char *cur = val;
	size_t len;

	if (!preset_name_valid(name))
		return ERR("%s: a preset name is 1-31 of [a-z0-9_-]", key);
	for (unsigned i = 0; i < p->n_presets; i++)
		if (!strcmp(p->presets[i].name, name))
			return ERR("%s: declared twice (first on line %u)", key, p->presets[i].line);
	if (!val || !val[0])
		return ERR("%s: needs a value", key);
	while (cur && next_item(&cur, item, sizeof(item), &len))
		if (!apikey_scope_valid(item, len))
			return ERR("%s: '%.63s' is not a valid scope", key, item);
	if (p->n_presets == APIKEY_PROFILE_PRESETS)
		return ERR("%s: more than %d presets", key, APIKEY_PROFILE_PRESETS);
	pr = &p->presets[p->n_presets];
	if (apikey_scopes_normalize(val, pr->scopes, sizeof(pr->scopes)) != 0 || !pr->scopes[0])
		return ERR("%s: not a scope list that fits %d bytes", key, APIKEY_SCOPES_SIZE - 1);
	memcpy(pr->name, name, strlen(name) + 1);
	pr->line = line;
	p->n_presets++;
	return 0;
}

static int tiers_set(struct apikey_profile *p, const char *val, unsigned line, char *err, size_t errsz)
{
	uint32_t tiers[APIKEY_TIERS_MAX];
	char item[APIKEY_LINE_MAX];
	const char *cur = val;
	unsigned n = 0;
	size_t len;

	if (!val || !val[0])
		return ERR("rate_limit_tiers: needs a value");
	while (next_item(&cur, item, sizeof(item), &len)) {
		unsigned long long v;
		if (apikey_parse_uint(item, APIKEY_RATE_MIN, APIKEY_RATE_MAX, &v) != 0)
			return ERR("rate_limit_tiers: '%.20s' is not 1..1000000", item);
		if (n == APIKEY_TIERS_MAX)
			return ERR("rate_limit_tiers: more than %d tiers", APIKEY_TIERS_MAX);
		tiers[n++] = (uint32_t)v;
	}
	if (!n)
		return ERR("rate_limit_tiers: needs a value");
	memcpy(p->tiers, tiers, n * sizeof(tiers[0]));
	p->n_tiers = n;
	p->tiers_line = line;
	return 0;
}

int profile_apply(struct apikey_config *c, const char *key, const char *val, unsigned line, char *err,
                  size_t errsz)
{
	struct apikey_profile *p = &c->profile;
	enum apikey_outcome o;
	int r;

	if (!strcmp(key, "error_template")) {
		if ((r = answers_set_template(&p->answers, val, err, errsz)) == 0)
			p->template_line = line;
		return r == 0 ? 0 : APIKEY_ERR_CONFIG;
	}
	if (!strncmp(key, "error_code.", 11)) {
		if ((r = outcome_of(key, "error_code.", &o, err, errsz)) != 0)
			return r;
		return answers_set_code(&p->answers, o, val, err, errsz);
	}
	if (!strncmp(key, "error_message.", 14)) {
		if ((r = outcome_of(key, "error_message.", &o, err, errsz)) != 0)
			return r;
		return answers_set_message(&p->answers, o, val, err, errsz);
	}
	if (!strcmp(key, "scopes"))
		return catalogue_add(p, val, line, err, errsz);
	if (!strncmp(key, "preset.", 7))
		return preset_add(p, key, val, line, err, errsz);
	if (!strcmp(key, "default_preset")) {
		if (!val || !val[0])
			return ERR("default_preset: needs a value");
		if (!preset_name_valid(val))
			return ERR("default_preset: a preset name is 1-31 of [a-z0-9_-]");
		memcpy(p->default_preset, val, strlen(val) + 1);
		p->default_preset_line = line;
		return 0;
	}
	if (!strcmp(key, "rate_limit_tiers"))
		return tiers_set(p, val, line, err, errsz);
	return APIKEY_ERR_UNKNOWN_OPTION;
}

/* One problem between options, at its line. */
static void report(apikey_log_fn log, void *ctx, const char *path, unsigned line, const char *msg)
{
	core_log(log, ctx, LOG_ERR, "%s:%u: %s", path ? path : "(options)", line, msg);
}

int profile_check(struct apikey_config *c, const char *path, apikey_log_fn log, void *ctx)
{
	struct apikey_profile *p = &c->profile;
	char msg[APIKEY_WHY_SIZE + 64], why[APIKEY_WHY_SIZE], tiers[APIKEY_TIERS_MAX * 8 + 1];
	int bad = 0;

	/* a profile whose own presets leave its catalogue */
	for (unsigned i = 0; p->n_catalogue && i < p->n_presets; i++)
		if (profile_scopes_allowed(p, p->presets[i].scopes, why, sizeof(why)) != 0) {
			snprintf(msg, sizeof(msg), "preset.%s: %s (scopes=, line %u)", p->presets[i].name, why,
			         p->catalogue_line);
			report(log, ctx, path, p->presets[i].line, msg);
			bad = 1;
		}
	if (p->default_preset[0] && !apikey_profile_preset(p, p->default_preset)) {
		snprintf(msg, sizeof(msg), "default_preset: no preset '%s' in this profile", p->default_preset);
		report(log, ctx, path, p->default_preset_line, msg);
		bad = 1;
	}
	if (p->n_tiers && profile_rate_allowed(p, c->default_rate_limit, NULL, 0) != 0) {
		tiers_text(p, tiers, sizeof(tiers));
		if (p->default_rate_line)
			snprintf(msg, sizeof(msg), "default_rate_limit: %u is not one of the tiers %s",
			         c->default_rate_limit, tiers);
		else
			snprintf(msg, sizeof(msg), "rate_limit_tiers: default_rate_limit %u is not one of the tiers %s",
			         c->default_rate_limit, tiers);
		report(log, ctx, path, p->default_rate_line ? p->default_rate_line : p->tiers_line, msg);
		bad = 1;
	}
	if (answers_check_size(&p->answers, why, sizeof(why)) != 0) {
		report(log, ctx, path, p->template_line ? p->template_line : 1, why);
		/* a shape that cannot be served is no shape: the default's bodies */
		apikey_answers_default(&p->answers);
		bad = 1;
	}
	return bad ? APIKEY_ERR_CONFIG : 0;
}

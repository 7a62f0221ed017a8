/* options.c — the one grammar of apikey.conf and module arguments: the
 * registry of every option (name, value type, range), how each type is
 * parsed, and where a value goes — into the core's struct apikey_config, or
 * through a front end's bindings into its own settings struct.  An option
 * nobody bound is checked and ignored: the file is shared by every front end. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

/* Core-only value types, parsed by the registry entry's own function. */
enum { OPT_ALPHABET = 100, OPT_LEGACY };

struct option_def {
	const char *name;
	int type;                       /* enum apikey_opt_type or OPT_* */
	unsigned long long min, max;    /* UINT */
	const char *range;              /* UINT, LIST, CHOICE: the message for a value out of range */
	bool nonempty;                  /* TEXT: "" is refused */
	size_t size;                    /* front-end TEXT, SCOPES, LIST: the longest value + 1 */
	size_t core_offset, core_size;  /* 0, 0: not one of the core's settings */
};

#define CORE(field) offsetof(struct apikey_config, field), sizeof(((struct apikey_config *)0)->field)

static const struct option_def registry[] = {
	/* the core (struct apikey_config) */
	{ "db", APIKEY_OPT_TEXT, 0, 0, NULL, true, 0, CORE(db_path) },
	{ "pepper", APIKEY_OPT_TEXT, 0, 0, NULL, false, 0, CORE(pepper_path) },
	{ "busy_timeout_ms", APIKEY_OPT_UINT, 1, APIKEY_BUSY_TIMEOUT_MS_MAX, "must be 1..30000", false, 0,
	  CORE(busy_timeout_ms) },
	{ "default_rate_limit", APIKEY_OPT_UINT, APIKEY_RATE_MIN, APIKEY_RATE_MAX, "must be 1..1000000",
	  false, 0, CORE(default_rate_limit) },
	{ "key_prefix", APIKEY_OPT_TEXT, 0, 0, NULL, false, 0, CORE(format.prefix) },
	{ "key_alphabet", OPT_ALPHABET, 0, 0, NULL, false, 0, CORE(format) },
	{ "key_length", APIKEY_OPT_UINT, 1, APIKEY_KEY_MAX, "must be 1..128", false, 0, CORE(format.body_len) },
	{ "key_checksum", APIKEY_OPT_BOOL, 0, 0, NULL, false, 0, CORE(format.checksum) },
	{ "key_legacy_prefixes", OPT_LEGACY, 0, 0, NULL, false, 0, CORE(format) },
	/* the PAM module (pam_apikey/options.c binds them) */
	{ "scope", APIKEY_OPT_SCOPES, 0, 0, NULL, false, APIKEY_SCOPES_SIZE, 0, 0 },
	{ "require_plan", APIKEY_OPT_TEXT, 0, 0, NULL, false, APIKEY_SCOPES_SIZE, 0, 0 },  /* and apikeyd */
	{ "prompt", APIKEY_OPT_TEXT, 0, 0, NULL, false, APIKEY_NAME_SIZE, 0, 0 },
	/* apikeyd (sidecar/config.c binds them) */
	{ "listen", APIKEY_OPT_LIST, 0, 0, "at most 8 non-empty listen addresses", true, APIKEY_NAME_SIZE, 0, 0 },
	{ "threads", APIKEY_OPT_UINT, 0, 256, "must be 0..256", false, 0, 0, 0 },
	{ "key_header", APIKEY_OPT_TEXT, 0, 0, NULL, false, APIKEY_NAME_SIZE, 0, 0 },
	{ "key_query", APIKEY_OPT_TEXT, 0, 0, NULL, false, APIKEY_NAME_SIZE, 0, 0 },
	{ "auth_error_body", APIKEY_OPT_CHOICE, 0, 0, "must be yes, no or header", false, 0, 0, 0 },
	{ "ratelimit_draft_headers", APIKEY_OPT_BOOL, 0, 0, NULL, false, 0, 0, 0 },
	{ "access_log", APIKEY_OPT_TEXT, 0, 0, NULL, false, APIKEY_PATH_SIZE, 0, 0 },
	{ "admin_api", APIKEY_OPT_BOOL, 0, 0, NULL, false, 0, 0, 0 },
	{ "admin_cors_origins", APIKEY_OPT_TEXT, 0, 0, NULL, false, APIKEY_SCOPES_SIZE, 0, 0 },
	/* fleet mode: apikeyctl and apikeyd (upstream/upstream.h binds them) */
	{ "upstream", APIKEY_OPT_TEXT, 0, 0, NULL, false, APIKEY_LINE_MAX, 0, 0 },
	{ "upstream_writer", APIKEY_OPT_TEXT, 0, 0, NULL, false, APIKEY_LINE_MAX, 0, 0 },
	{ "upstream_insecure", APIKEY_OPT_BOOL, 0, 0, NULL, false, 0, 0, 0 },
	{ "upstream_wait_ms", APIKEY_OPT_UINT, 0, 30000, "must be 0..30000", false, 0, 0, 0 },
};
#define N_OPTIONS (sizeof(registry) / sizeof(registry[0]))

/* The words of a CHOICE option, by the index stored: auth_error_body's
 * no (0), yes (1), header (2); the boolean spellings count as no and yes.
 * (The one CHOICE option today; a second would carry its words in its
 * registry entry.) */
static const char *const choice_words[][5] = {
	{ "no", "false", "off", "0", NULL },
	{ "yes", "true", "on", "1", NULL },
	{ "header", NULL },
};

static const struct option_def *find(const char *name)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (!strcmp(registry[i].name, name))
			return &registry[i];
	return NULL;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return APIKEY_ERR_INVALID;
	return 0;
}

/* key_alphabet: a uuid body is always 36 characters. */
static int parse_alphabet(const char *v, struct apikey_format *f, const char **why)
{
	static const char *const names[] = { "base62", "base36lower", "hex", "uuid" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(v, names[i])) {
			f->alphabet = (enum apikey_alphabet)i;
			if (f->alphabet == APIKEY_ALPHA_UUID)
				f->body_len = 36;
			return 0;
		}
	*why = "must be base62, base36lower, hex or uuid";
	return APIKEY_ERR_CONFIG;
}

/* key_legacy_prefixes=a,b: all or nothing. */
static int parse_legacy(const char *v, struct apikey_format *f, const char **why)
{
	char legacy[APIKEY_LEGACY_MAX][APIKEY_PREFIX_MAX + 1];
	const char *p = v;
	unsigned n = 0;

	*why = "at most 4 prefixes of at most 16 characters";
	while (*p) {
		size_t len = 0;
		while (*p == ',' || *p == ' ')
			p++;
		while (p[len] && p[len] != ',' && p[len] != ' ')
			len++;
		if (!len)
			break;
		if (n == APIKEY_LEGACY_MAX || len > APIKEY_PREFIX_MAX)
			return APIKEY_ERR_CONFIG;
		memcpy(legacy[n], p, len);
		legacy[n++][len] = '\0';
		p += len;
	}
	memcpy(f->legacy, legacy, sizeof(legacy));
	f->n_legacy = n;
	return 0;
}

/* Parse val as def says into field (size bytes); a refused value writes
 * nothing.  count/max: LIST only. */
static int set_value(const struct option_def *def, const char *val, void *field, size_t size,
                     unsigned *count, unsigned max, const char **why)
{
	char norm[APIKEY_SCOPES_SIZE];
	unsigned long long n;
	bool b;

	/* the grammar's bound on a value, whatever the field */
	size_t cap = def->size && def->size < size ? def->size : size;

	switch (def->type) {
	case APIKEY_OPT_TEXT:
		if (def->nonempty && !val[0])
			return *why = "empty path", APIKEY_ERR_CONFIG;
		if (strlen(val) >= cap)
			return *why = "too long", APIKEY_ERR_CONFIG;
		memcpy(field, val, strlen(val) + 1);
		return 0;
	case APIKEY_OPT_UINT:
		if (size != sizeof(unsigned))
			return *why = "internal: not an unsigned field", APIKEY_ERR_CONFIG;
		if (apikey_parse_uint(val, def->min, def->max, &n) != 0)
			return *why = def->range, APIKEY_ERR_CONFIG;
		*(unsigned *)field = (unsigned)n;
		return 0;
	case APIKEY_OPT_BOOL:
		if (size != sizeof(bool))
			return *why = "internal: not a bool field", APIKEY_ERR_CONFIG;
		if (parse_bool(val, &b) != 0)
			return *why = "must be yes or no", APIKEY_ERR_CONFIG;
		*(bool *)field = b;
		return 0;
	case APIKEY_OPT_SCOPES:
		if (apikey_scopes_normalize(val, norm, sizeof(norm)) != 0 || !norm[0])
			return *why = "not a valid scope list", APIKEY_ERR_CONFIG;
		if (strlen(norm) >= cap)
			return *why = "too long", APIKEY_ERR_CONFIG;
		memcpy(field, norm, strlen(norm) + 1);
		return 0;
	case APIKEY_OPT_LIST:
		if (!val[0] || (count && *count >= max))
			return *why = def->range, APIKEY_ERR_CONFIG;
		if (strlen(val) >= cap)
			return *why = "too long", APIKEY_ERR_CONFIG;
		if (count) {
			memcpy((char *)field + *count * size, val, strlen(val) + 1);
			(*count)++;
		}
		return 0;
	case APIKEY_OPT_CHOICE:
		if (size != sizeof(unsigned))
			return *why = "internal: not an unsigned field", APIKEY_ERR_CONFIG;
		for (unsigned i = 0; i < sizeof(choice_words) / sizeof(choice_words[0]); i++)
			for (unsigned k = 0; choice_words[i][k]; k++)
				if (!strcmp(val, choice_words[i][k])) {
					*(unsigned *)field = i;
					return 0;
				}
		return *why = def->range, APIKEY_ERR_CONFIG;
	case OPT_ALPHABET:
		return parse_alphabet(val, field, why);
	case OPT_LEGACY:
		return parse_legacy(val, field, why);
	}
	return *why = "internal: unknown option type", APIKEY_ERR_CONFIG;
}

/* An option nobody bound: check its value all the same (into scratch). */
static int check_only(const struct option_def *def, const char *val, const char **why)
{
	union { char text[APIKEY_LINE_MAX]; unsigned u; bool b; struct apikey_format f; } scratch;
	unsigned count = 0;

	memset(&scratch, 0, sizeof(scratch));
	switch (def->type) {
	case APIKEY_OPT_UINT:
	case APIKEY_OPT_CHOICE: return set_value(def, val, &scratch.u, sizeof(unsigned), NULL, 0, why);
	case APIKEY_OPT_BOOL: return set_value(def, val, &scratch.b, sizeof(bool), NULL, 0, why);
	case APIKEY_OPT_LIST:
		return set_value(def, val, scratch.text, sizeof(scratch.text), &count, 1, why);
	default: return set_value(def, val, scratch.text, sizeof(scratch.text), NULL, 0, why);
	}
}

static int apply(struct apikey_config *c, const struct apikey_settings *fe, const char *key,
                 const char *val, const char **why)
{
	const struct option_def *def = find(key);

	if (!def)
		return APIKEY_ERR_UNKNOWN_OPTION;
	if (!val)
		return *why = "needs a value", APIKEY_ERR_CONFIG;
	if (def->core_size)
		return set_value(def, val, (char *)c + def->core_offset, def->core_size, NULL, 0, why);
	for (size_t i = 0; fe && i < fe->n; i++) {
		const struct apikey_binding *b = &fe->bindings[i];
		char *base = fe->base;

		if (strcmp(b->name, key) != 0)
			continue;
		if ((int)b->type != def->type)
			return *why = "internal: bound with the wrong type", APIKEY_ERR_CONFIG;
		return set_value(def, val, base + b->offset, b->size,
		                 b->type == APIKEY_OPT_LIST ? (unsigned *)(base + b->count_offset) : NULL,
		                 b->max, why);
	}
	return check_only(def, val, why);
}

int config_apply_line(struct apikey_config *c, const struct apikey_settings *fe, const char *option,
                      unsigned line, char *err, size_t errsz)
{
	char key[64], scratch[APIKEY_WHY_SIZE];
	const char *eq, *val = NULL, *why = "bad value";
	size_t klen;
	int r;

	if (err && errsz)
		err[0] = '\0';
	if (!option || strnlen(option, APIKEY_LINE_MAX) >= APIKEY_LINE_MAX) {
		if (err)
			snprintf(err, errsz, "option too long");
		return APIKEY_ERR_CONFIG;
	}
	eq = strchr(option, '=');
	klen = eq ? (size_t)(eq - option) : strlen(option);
	if (klen == 0 || klen >= sizeof(key))
		return APIKEY_ERR_UNKNOWN_OPTION;
	memcpy(key, option, klen);
	key[klen] = '\0';
	if (eq)
		val = eq + 1;
	/* The profile's options (core/profile.c) write their own messages. */
	r = profile_apply(c, key, val, line, err ? err : scratch, err ? errsz : sizeof(scratch));
	if (r != APIKEY_ERR_UNKNOWN_OPTION)
		return r == 0 ? 0 : APIKEY_ERR_CONFIG;
	/* A format profile is judged whole (apikey_format_validate) once all
	 * options are read: here only each field's own range. */
	r = apply(c, fe, key, val, &why);
	if (r == APIKEY_ERR_CONFIG && err)
		snprintf(err, errsz, "%s: %s", key, why);
	if (r == 0 && !strcmp(key, "default_rate_limit"))
		c->profile.default_rate_line = line;
	return r;
}

int apikey_config_apply(struct apikey_config *c, const struct apikey_settings *fe, const char *option,
                        char *err, size_t errsz)
{
	return config_apply_line(c, fe, option, 0, err, errsz);
}

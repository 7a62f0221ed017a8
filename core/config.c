/* config.c — the one key=value grammar of module arguments and apikey.conf. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include "internal.h"

void apikey_config_defaults(struct apikey_config *c)
{
	memset(c, 0, sizeof(*c));
	copy_str(c->db_path, sizeof(c->db_path), APIKEY_DB_DEFAULT);
	apikey_format_default(&c->format);
	c->busy_timeout_ms = APIKEY_BUSY_TIMEOUT_MS_DEFAULT;
	c->default_rate_limit = APIKEY_RATE_DEFAULT;
	copy_str(c->prompt, sizeof(c->prompt), "API key: ");
	c->auth_error_body = true;
}

int apikey_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return APIKEY_ERR_INVALID;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return APIKEY_ERR_INVALID;
	*out = v;
	return 0;
}

int apikey_parse_duration(const char *s, int64_t *secs)
{
	static const struct { char unit; int64_t mult; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 },
	};
	char num[24];
	size_t n = s ? strlen(s) : 0;
	int64_t mult = 1;
	unsigned long long v;

	if (n == 0 || n >= sizeof(num))
		return APIKEY_ERR_INVALID;
	memcpy(num, s, n + 1);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (num[n - 1] == units[i].unit) {
			mult = units[i].mult;
			num[n - 1] = '\0';
			break;
		}
	/* 100 years is the longest duration anyone means */
	if (apikey_parse_uint(num, 0, 100LL * 366 * 86400 / mult, &v) != 0)
		return APIKEY_ERR_INVALID;
	*secs = (int64_t)v * mult;
	return 0;
}

int apikey_parse_time(const char *s, int64_t *t)
{
	struct tm tm;
	const char *p;
	int off = 0;

	memset(&tm, 0, sizeof(tm));
	if (!s || !(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return APIKEY_ERR_INVALID;
	if (*p == '.')                       /* fractional seconds: ignored */
		for (p++; isdigit((unsigned char)*p); p++)
			;
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		off = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
	           isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
	           isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off = -off;
	} else {
		return APIKEY_ERR_INVALID;
	}
	if (tm.tm_year < 70 || tm.tm_year > 1100)
		return APIKEY_ERR_INVALID;
	*t = (int64_t)timegm(&tm) - off;
	return 0;
}

void apikey_format_time(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		copy_str(out, 32, "invalid-time");
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

static int parse_alphabet(const char *v, enum apikey_alphabet *out)
{
	static const char *names[] = { "base62", "base36lower", "hex", "uuid" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(v, names[i])) {
			*out = (enum apikey_alphabet)i;
			return 0;
		}
	return APIKEY_ERR_INVALID;
}

static int parse_legacy(const char *v, struct apikey_format *f)
{
	char buf[APIKEY_LINE_MAX], *save = NULL, *tok;
	unsigned n = 0;

	if (copy_str(buf, sizeof(buf), v) != 0)
		return APIKEY_ERR_INVALID;
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (n == APIKEY_LEGACY_MAX || copy_str(f->legacy[n], sizeof(f->legacy[n]), tok) != 0)
			return APIKEY_ERR_INVALID;
		n++;
	}
	f->n_legacy = n;
	return 0;
}

/* Applies value to a scratch copy of the config; the caller commits it only
 * when the whole option (and, for key_*, the whole profile) is valid. */
static int apply(struct apikey_config *c, const char *key, const char *val,
                 const char **why)
{
	unsigned long long n;
	bool b;

#define STR(field) (copy_str(c->field, sizeof(c->field), val) == 0 ? 0 : (*why = "too long", APIKEY_ERR_CONFIG))
#define NEED_VAL if (!val) { *why = "needs a value"; return APIKEY_ERR_CONFIG; }
	if (!strcmp(key, "db")) {
		NEED_VAL return val[0] ? STR(db_path) : (*why = "empty path", APIKEY_ERR_CONFIG);
	} else if (!strcmp(key, "pepper")) {
		NEED_VAL return STR(pepper_path);
	} else if (!strcmp(key, "busy_timeout_ms")) {
		NEED_VAL
		if (apikey_parse_uint(val, 1, APIKEY_BUSY_TIMEOUT_MS_MAX, &n) != 0)
			return *why = "must be 1..30000", APIKEY_ERR_CONFIG;
		c->busy_timeout_ms = (unsigned)n;
	} else if (!strcmp(key, "default_rate_limit")) {
		NEED_VAL
		if (apikey_parse_uint(val, APIKEY_RATE_MIN, APIKEY_RATE_MAX, &n) != 0)
			return *why = "must be 1..1000000", APIKEY_ERR_CONFIG;
		c->default_rate_limit = (unsigned)n;
	} else if (!strcmp(key, "key_prefix")) {
		NEED_VAL return STR(format.prefix);
	} else if (!strcmp(key, "key_alphabet")) {
		NEED_VAL
		if (parse_alphabet(val, &c->format.alphabet) != 0)
			return *why = "must be base62, base36lower, hex or uuid", APIKEY_ERR_CONFIG;
		if (c->format.alphabet == APIKEY_ALPHA_UUID)
			c->format.body_len = 36;
	} else if (!strcmp(key, "key_length")) {
		NEED_VAL
		if (apikey_parse_uint(val, 1, APIKEY_KEY_MAX, &n) != 0)
			return *why = "must be 1..128", APIKEY_ERR_CONFIG;
		c->format.body_len = (unsigned)n;
	} else if (!strcmp(key, "key_checksum")) {
		NEED_VAL
		if (parse_bool(val, &c->format.checksum) != 0)
			return *why = "must be yes or no", APIKEY_ERR_CONFIG;
	} else if (!strcmp(key, "key_legacy_prefixes")) {
		NEED_VAL
		if (parse_legacy(val, &c->format) != 0)
			return *why = "at most 4 prefixes of at most 16 characters", APIKEY_ERR_CONFIG;
	} else if (!strcmp(key, "scope")) {
		NEED_VAL
		char norm[APIKEY_SCOPES_SIZE];
		if (apikey_scopes_normalize(val, norm, sizeof(norm)) != 0 || !norm[0])
			return *why = "not a valid scope list", APIKEY_ERR_CONFIG;
		copy_str(c->scope, sizeof(c->scope), norm);
	} else if (!strcmp(key, "require_plan")) {
		NEED_VAL return STR(require_plan);
	} else if (!strcmp(key, "prompt")) {
		NEED_VAL return STR(prompt);
	} else if (!strcmp(key, "listen")) {
		NEED_VAL
		if (c->n_listen == APIKEY_LISTEN_MAX || !val[0])
			return *why = "at most 8 non-empty listen addresses", APIKEY_ERR_CONFIG;
		if (copy_str(c->listen[c->n_listen], sizeof(c->listen[0]), val) != 0)
			return *why = "too long", APIKEY_ERR_CONFIG;
		c->n_listen++;
	} else if (!strcmp(key, "threads")) {
		NEED_VAL
		if (apikey_parse_uint(val, 0, 256, &n) != 0)
			return *why = "must be 0..256", APIKEY_ERR_CONFIG;
		c->threads = (unsigned)n;
	} else if (!strcmp(key, "key_header")) {
		NEED_VAL return STR(key_header);
	} else if (!strcmp(key, "key_query")) {
		NEED_VAL return STR(key_query);
	} else if (!strcmp(key, "auth_error_body")) {
		NEED_VAL
		if (parse_bool(val, &b) != 0)
			return *why = "must be yes or no", APIKEY_ERR_CONFIG;
		c->auth_error_body = b;
	} else if (!strcmp(key, "access_log")) {
		NEED_VAL return STR(access_log);
	} else {
		return APIKEY_ERR_UNKNOWN_OPTION;
	}
	return 0;
#undef STR
#undef NEED_VAL
}

int apikey_config_apply(struct apikey_config *c, const char *option, char *err, size_t errsz)
{
	char key[64], line[APIKEY_LINE_MAX];
	const char *eq, *val = NULL, *why = "bad value";
	struct apikey_config *scratch;
	size_t klen;
	int r;

	if (err && errsz)
		err[0] = '\0';
	if (!option || copy_str(line, sizeof(line), option) != 0) {
		if (err)
			snprintf(err, errsz, "option too long");
		return APIKEY_ERR_CONFIG;
	}
	eq = strchr(line, '=');
	klen = eq ? (size_t)(eq - line) : strlen(line);
	if (klen == 0 || klen >= sizeof(key))
		return APIKEY_ERR_UNKNOWN_OPTION;
	memcpy(key, line, klen);
	key[klen] = '\0';
	if (eq)
		val = eq + 1;

	/* Work on a copy so a bad value leaves the previous, safe one. */
	scratch = malloc(sizeof(*scratch));
	if (!scratch)
		return APIKEY_ERR_NOMEM;
	*scratch = *c;
	r = apply(scratch, key, val, &why);
	/* A format profile is judged whole (apikey_format_validate) once all
	 * options are read: here only each field's own range. */
	if (r == 0)
		*c = *scratch;
	else if (r == APIKEY_ERR_CONFIG && err)
		snprintf(err, errsz, "%s: %s", key, why);
	free(scratch);
	return r;
}

int apikey_config_load(struct apikey_config *c, const char *path, apikey_log_fn log, void *log_ctx)
{
	char line[APIKEY_LINE_MAX + 2], err[160];
	FILE *f = fopen(path, "re");
	unsigned lineno = 0;
	int bad = 0;

	if (!f) {
		core_log(log, log_ctx, LOG_ERR, "%s: %s", path, strerror(errno));
		return APIKEY_ERR_IO;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		char *p = line, *end;
		int r;

		lineno++;
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			core_log(log, log_ctx, LOG_ERR, "%s:%u: line too long", path, lineno);
			bad = 1;
			int ch;
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			continue;
		}
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '#' || *p == '\0')
			continue;
		end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = '\0';
		r = apikey_config_apply(c, p, err, sizeof(err));
		if (r == APIKEY_ERR_NOMEM) {    /* the option is not applied: not a value to skip */
			fclose(f);
			return r;
		}
		if (r == APIKEY_ERR_UNKNOWN_OPTION) {
			core_log(log, log_ctx, LOG_ERR, "%s:%u: unknown option '%.64s'", path, lineno, p);
			bad = 1;
		} else if (r != 0) {
			core_log(log, log_ctx, LOG_ERR, "%s:%u: %s", path, lineno, err);
			bad = 1;
		}
	}
	/* A read error ends fgets like the end of the file: without this, a
	 * file cut short would load as if its last options were not there. */
	if (ferror(f)) {
		core_log(log, log_ctx, LOG_ERR, "%s: read error after line %u", path, lineno);
		fclose(f);
		return APIKEY_ERR_IO;
	}
	fclose(f);
	if (apikey_format_validate(&c->format) != 0) {
		core_log(log, log_ctx, LOG_ERR, "%s: key format profile is inconsistent "
		         "(prefix 1-16 of [A-Za-z0-9_-], length must leave >= 64 random bits)", path);
		apikey_format_default(&c->format);
		bad = 1;
	}
	return bad ? APIKEY_ERR_CONFIG : 0;
}

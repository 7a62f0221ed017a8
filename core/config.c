/* config.c — the core's settings: their defaults, where the configuration
 * comes from (one lookup order for every front end), reading apikey.conf
 * line by line (the grammar of each line is core/options.c), and the strict
 * number, duration and time parsers every setting and flag uses.  ASCII by
 * explicit ranges: this runs inside sshd, whose locale is not ours. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

void apikey_config_defaults(struct apikey_config *c)
{
	memset(c, 0, sizeof(*c));
	copy_str(c->db_path, sizeof(c->db_path), APIKEY_DB_DEFAULT);
	apikey_format_default(&c->format);
	c->busy_timeout_ms = APIKEY_BUSY_TIMEOUT_MS_DEFAULT;
	c->default_rate_limit = APIKEY_RATE_DEFAULT;
	profile_defaults(&c->profile);
}

int apikey_config_pepper_path(const struct apikey_config *c, char *out, size_t outsz)
{
	size_t n = strlen(c->db_path);

	if (c->pepper_path[0])
		return copy_str(out, outsz, c->pepper_path);
	if (n + sizeof(".pepper") > outsz)
		return APIKEY_ERR_TOO_LONG;
	memcpy(out, c->db_path, n);
	memcpy(out + n, ".pepper", sizeof(".pepper"));
	return 0;
}

int apikey_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!s || !ascii_digit((unsigned char)s[0]))
		return APIKEY_ERR_INVALID;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return APIKEY_ERR_INVALID;
	*out = v;
	return 0;
}

int apikey_parse_duration(const char *s, int64_t *out_s)
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
	*out_s = (int64_t)v * mult;
	return 0;
}

int64_t apikey_time_after(int64_t duration_s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec + (ts.tv_nsec > 0) + duration_s;
}

int apikey_parse_time(const char *s, int64_t *out_s)
{
	struct tm tm;
	const char *p;
	int off = 0;

	memset(&tm, 0, sizeof(tm));
	if (!s || !(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return APIKEY_ERR_INVALID;
	if (*p == '.')                       /* fractional seconds: ignored */
		for (p++; ascii_digit((unsigned char)*p); p++)
			;
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		off = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
	           ascii_digit((unsigned char)p[1]) && ascii_digit((unsigned char)p[2]) &&
	           ascii_digit((unsigned char)p[4]) && ascii_digit((unsigned char)p[5])) {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off = -off;
	} else {
		return APIKEY_ERR_INVALID;
	}
	if (tm.tm_year < 70 || tm.tm_year > 1100)
		return APIKEY_ERR_INVALID;
	*out_s = (int64_t)timegm(&tm) - off;
	return 0;
}

void apikey_format_time(int64_t unix_s, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)unix_s;

	if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		copy_str(out, 32, "invalid-time");
}

int apikey_config_load(struct apikey_config *c, const struct apikey_settings *fe, const char *path,
                       apikey_log_fn log, void *log_ctx)
{
	char line[APIKEY_LINE_MAX + 2], err[512];
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
		while (ascii_space((unsigned char)*p))
			p++;
		if (*p == '#' || *p == '\0')
			continue;
		end = p + strlen(p);
		while (end > p && ascii_space((unsigned char)end[-1]))
			*--end = '\0';
		r = config_apply_line(c, fe, p, lineno, err, sizeof(err));
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
	/* what two options must agree on: reported on the line that must change */
	if (profile_check(c, path, log, log_ctx) != 0)
		bad = 1;
	return bad ? APIKEY_ERR_CONFIG : 0;
}

const char *apikey_config_file(const struct apikey_config_sources *src)
{
	const char *env;

	if (src && src->conf)
		return src->conf;
	if (src && src->env && (env = getenv("APIKEY_CONF")) && env[0])
		return env;
	/* The default file is read when it exists, and also when it cannot even
	 * be looked at (fail closed: it might hold the db path or a plan rule). */
	if (access(APIKEY_CONF_DEFAULT, F_OK) == 0 || errno != ENOENT)
		return APIKEY_CONF_DEFAULT;
	return NULL;
}

int apikey_config_read(struct apikey_config *c, const struct apikey_settings *fe,
                       const struct apikey_config_sources *src, apikey_log_fn log, void *log_ctx)
{
	const char *path = apikey_config_file(src), *db = src ? src->db : NULL, *env;
	int r = 0;

	if (path)
		r = apikey_config_load(c, fe, path, log, log_ctx);
	/* --db, then $APIKEY_DB, then the file's db=, then the default */
	if (!db && src && src->env && (env = getenv("APIKEY_DB")) && env[0])
		db = env;
	if (db && strlen(db) >= sizeof(c->db_path)) {
		core_log(log, log_ctx, LOG_ERR, "%s: path too long", src->db ? "--db" : "APIKEY_DB");
		return APIKEY_ERR_TOO_LONG;
	}
	if (db)
		copy_str(c->db_path, sizeof(c->db_path), db);
	return r;
}

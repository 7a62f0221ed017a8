/* import_parse.c — one JSON line of an import file into apikey_import_params,
 * checked field by field and then by the core's apikey_import_check.  Every
 * reason names the field, for "apikeyctl: import: line N: <reason>". */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "import_parse.h"

static int bad(char *why, size_t whysz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t whysz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whysz, fmt, ap);
	va_end(ap);
	return APIKEY_ERR_INVALID;
}

/* A field name from the file for an error line: printable, and only when
 * short (a long one could be a key exported by mistake). */
static const char *shown(const char *name, char buf[40])
{
	size_t i;

	for (i = 0; name[i] && i < 16; i++)
		buf[i] = isprint((unsigned char)name[i]) ? name[i] : '?';
	buf[i] = '\0';
	if (name[i])
		snprintf(buf, 40, "(a long name, not shown)");
	return buf;
}

/* Required or optional string field; NULL (absent or null) is left to the
 * caller to judge. */
static int string_field(json_t *root, const char *name, bool required, const char **out,
                        char *why, size_t whysz)
{
	json_t *v = json_object_get(root, name);

	*out = NULL;
	if (!v || json_is_null(v))
		return required ? bad(why, whysz, "missing %s", name) : 0;
	if (!json_is_string(v))
		return bad(why, whysz, "%s must be a string", name);
	*out = json_string_value(v);
	return 0;
}

/* "a:b,c:d" or ["a:b","c:d"] into out as a comma list; *given false when
 * absent and optional (the profile has a default preset). */
static int scopes_field(json_t *root, bool required, char *out, size_t outsz, bool *given, char *why,
                        size_t whysz)
{
	json_t *v = json_object_get(root, "scopes"), *item;
	size_t i, n = 0;

	out[0] = '\0';
	*given = v && !json_is_null(v);
	if (!*given)
		return required ? bad(why, whysz, "missing %s", "scopes") : 0;
	if (json_is_string(v)) {
		if (snprintf(out, outsz, "%s", json_string_value(v)) >= (int)outsz)
			return bad(why, whysz, "%s: too long", "scopes");
		return 0;
	}
	if (!json_is_array(v))
		return bad(why, whysz, "%s must be an array of strings or a comma list", "scopes");
	json_array_foreach(v, i, item) {
		const char *s = json_string_value(item);
		int w;
		/* one scope per element: a separator inside would smuggle in more */
		if (!s || !s[0] || strpbrk(s, ", \t"))
			return bad(why, whysz, "%s: each element must be one scope", "scopes");
		w = snprintf(out + n, outsz - n, "%s%s", n ? "," : "", s);
		if (w < 0 || (size_t)w >= outsz - n)
			return bad(why, whysz, "%s: too long", "scopes");
		n += (size_t)w;
	}
	return 0;
}

int import_parse_line(const struct apikey_config *cfg, const char *line, size_t len, struct import_line *out,
                      char *why, size_t whysz)
{
	static const char *const known[] = {
		"hash", "hint", "owner", "name", "scopes", "expires_at", "rate_limit", "metadata",
	};
	const char *field, *text;
	json_error_t jerr;
	json_t *v;
	char buf[40];
	size_t i;
	bool has_scopes;
	int r = APIKEY_ERR_INVALID;

	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	for (i = 0; i < len && isspace((unsigned char)line[i]); i++)
		;
	if (i == len)
		return APIKEY_ERR_NOT_FOUND;
	if (len > IMPORT_LINE_MAX)
		return bad(why, whysz, "longer than %d bytes", IMPORT_LINE_MAX);
	out->root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!out->root) {
		/* jansson quotes the token "near" the error: that could be a key */
		char *near = strstr(jerr.text, " near ");
		if (near)
			*near = '\0';
		return bad(why, whysz, "not JSON: %s (column %d)", jerr.text, jerr.column);
	}
	if (!json_is_object(out->root)) {
		r = bad(why, whysz, "not a JSON object");
		goto fail;
	}
	/* Unknown fields are refused: "expires" for "expires_at" would otherwise
	 * import a key that never expires. */
	json_object_foreach(out->root, field, v) {
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(field, known[i]))
				break;
		if (i == sizeof(known) / sizeof(known[0])) {
			r = bad(why, whysz, "unknown field '%s'", shown(field, buf));
			goto fail;
		}
	}
	if (string_field(out->root, "hash", true, &out->p.hash, why, whysz) != 0 ||
	    string_field(out->root, "hint", true, &out->p.hint, why, whysz) != 0 ||
	    string_field(out->root, "owner", true, &out->p.owner, why, whysz) != 0 ||
	    string_field(out->root, "name", false, &out->p.name, why, whysz) != 0 ||
	    scopes_field(out->root, !(cfg && cfg->profile.default_preset[0]), out->scopes, sizeof(out->scopes),
	                 &has_scopes, why, whysz) != 0 ||
	    string_field(out->root, "expires_at", false, &text, why, whysz) != 0)
		goto fail;
	out->p.scopes = has_scopes ? out->scopes : NULL;
	if (text && apikey_parse_time(text, &out->p.expires_at_s) != 0) {
		r = bad(why, whysz, "expires_at is not an RFC 3339 time");
		goto fail;
	}
	v = json_object_get(out->root, "rate_limit");
	if (v && !json_is_null(v)) {
		json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
		if (n < APIKEY_RATE_MIN || n > APIKEY_RATE_MAX) {
			r = bad(why, whysz, "rate_limit must be an integer 1..1000000");
			goto fail;
		}
		out->p.rate_limit = (uint32_t)n;
	}
	v = json_object_get(out->root, "metadata");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v)) {
			r = bad(why, whysz, "metadata must be a JSON object");
			goto fail;
		}
		if (!(out->metadata = json_dumps(v, JSON_COMPACT))) {
			r = bad(why, whysz, "out of memory");
			goto fail;
		}
		out->p.metadata = out->metadata;
	}
	/* the core's rules: the profile's catalogue, tiers and key prefixes */
	if (apikey_import_check(cfg, &out->p, why, whysz) != 0) {
		if (!why[0])
			bad(why, whysz, "refused");
		r = APIKEY_ERR_INVALID;
		goto fail;
	}
	return 0;
fail:
	import_line_free(out);
	return r;
}

void import_line_free(struct import_line *l)
{
	json_malloc_t m;
	json_free_t f;

	json_decref(l->root);
	/* json_dumps allocated it with jansson's allocator, whichever is set */
	json_get_alloc_funcs(&m, &f);
	if (l->metadata)
		f(l->metadata);
	memset(l, 0, sizeof(*l));
}

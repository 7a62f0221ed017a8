/* admin_parse.c — the admin API's bodies, query strings and path parts,
 * parsed strictly (unknown members and parameters, duplicates and wrong
 * types are refused) into fixed-size structs; each refusal names its field.
 * JSON is jansson's, percent-decoding and query splitting libevent's.  The
 * values' rules (owner, scopes, limits…) stay the core's: what is checked
 * here is the shape, and what must fit a buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include "admin_parse.h"

static int refuse(struct sc_bad *bad, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct sc_bad *bad, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(bad->field, sizeof(bad->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(bad->msg, sizeof(bad->msg), fmt, ap);
	va_end(ap);
	return APIKEY_ERR_INVALID;
}

/* Copy a JSON string member that must fit sz (with its NUL). */
static int take_string(json_t *v, const char *field, char *out, size_t sz, struct sc_bad *bad)
{
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return refuse(bad, field, "%s must be a string", field);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n >= sz || strlen(s) != n)
		return refuse(bad, field, "%s is too long or holds a NUL", field);
	memcpy(out, s, n + 1);
	return 0;
}

/* An array of scope strings → a normalised comma list. */
static int take_scopes(json_t *v, const char *field, char out[APIKEY_SCOPES_SIZE], struct sc_bad *bad)
{
	char joined[APIKEY_SCOPES_SIZE];
	size_t used = 0, i;
	json_t *item;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return refuse(bad, field, "%s must be a non-empty array of scope strings", field);
	json_array_foreach(v, i, item) {
		const char *s = json_string_value(item);
		size_t n = json_string_length(item);
		if (!json_is_string(item) || strlen(s) != n || !apikey_scope_valid(s, n))
			return refuse(bad, field, "%s: each item must be a scope resource:action of [a-z0-9_.-] "
			              "(a part may be *)", field);
		if (used + (used ? 1 : 0) + n + 1 > sizeof(joined))
			return refuse(bad, field, "%s: the list is longer than 1023 bytes", field);
		if (used)
			joined[used++] = ',';
		memcpy(joined + used, s, n);
		used += n;
		joined[used] = '\0';
	}
	if (apikey_scopes_normalize(joined, out, APIKEY_SCOPES_SIZE) != 0 || !out[0])
		return refuse(bad, field, "%s must be a non-empty list of valid scopes", field);
	return 0;
}

/* A JSON object body; an empty body is {} when empty_ok. */
static json_t *load_object(const char *body, size_t len, bool empty_ok, struct sc_bad *bad)
{
	json_error_t e;
	json_t *root;

	if (len == 0) {
		if (empty_ok)
			return json_object();
		refuse(bad, "body", "a JSON object is required");
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!root) {
		char text[sizeof(e.text) + 40];
		snprintf(text, sizeof(text), "malformed JSON at byte %d: %s", e.position, e.text);
		refuse(bad, "body", "%s", text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		refuse(bad, "body", "the body must be a JSON object");
		return NULL;
	}
	return root;
}

/* Is every member of o one of names (NULL-terminated)? */
static int only_members(json_t *o, const char *const *names, struct sc_bad *bad)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		size_t i;
		for (i = 0; names[i] && strcmp(names[i], k) != 0; i++)
			;
		if (!names[i]) {
			char field[sizeof(bad->field)];
			size_t j;
			/* the name as a field, printable ASCII only */
			for (j = 0; k[j] && j < sizeof(field) - 1; j++)
				field[j] = k[j] > ' ' && k[j] < 0x7f ? k[j] : '?';
			field[j] = '\0';
			return refuse(bad, field[0] ? field : "body", "unknown member '%s'", field);
		}
	}
	return 0;
}

/* expires_at: RFC 3339, or a duration from now; in the future. */
static int take_expiry(json_t *v, int64_t now_s, int64_t *out, struct sc_bad *bad)
{
	char text[64];
	int64_t d;

	*out = 0;
	if (json_is_null(v))
		return 0;
	if (take_string(v, "expires_at", text, sizeof(text), bad) != 0)
		return refuse(bad, "expires_at", "expires_at must be an RFC 3339 time, a duration (90d) or null");
	if (apikey_parse_time(text, out) != 0) {
		if (apikey_parse_duration(text, &d) != 0)
			return refuse(bad, "expires_at", "expires_at must be an RFC 3339 time, a duration (90d) or null");
		*out = d ? apikey_time_after(d) : now_s;   /* "0" is now, not the future */
	}
	if (*out <= now_s)
		return refuse(bad, "expires_at", "expires_at must be in the future");
	return 0;
}

int sc_parse_key_body(const char *body, size_t len, bool create, int64_t now_s,
                      struct sc_key_body *out, struct sc_bad *bad)
{
	static const char *const create_members[] = { "owner", "name", "scopes", "preset", "expires_at",
	                                              "rate_limit", "metadata", NULL };
	json_t *root, *v;
	int r = APIKEY_ERR_INVALID;

	memset(out, 0, sizeof(*out));
	if (!(root = load_object(body, len, false, bad)))
		return APIKEY_ERR_INVALID;
	if (only_members(root, create ? create_members : create_members + 1, bad) != 0)
		goto out;
	if ((v = json_object_get(root, "owner"))) {
		if (take_string(v, "owner", out->owner, sizeof(out->owner), bad) != 0)
			goto out;
		out->has |= KB_OWNER;
	}
	if ((v = json_object_get(root, "name"))) {
		if (take_string(v, "name", out->name, sizeof(out->name), bad) != 0)
			goto out;
		out->has |= KB_NAME;
	}
	if ((v = json_object_get(root, "scopes"))) {
		if (take_scopes(v, "scopes", out->scopes, bad) != 0)
			goto out;
		out->has |= KB_SCOPES;
	}
	if ((v = json_object_get(root, "preset"))) {
		if (take_string(v, "preset", out->preset, sizeof(out->preset), bad) != 0 ||
		    apikey_preset_check(NULL, out->preset, "a:b", NULL, 0) != 0) {
			refuse(bad, "preset", "preset must be a preset name: 1-31 of [a-z0-9_-]");
			goto out;
		}
		out->has |= KB_PRESET;
	}
	if ((out->has & KB_SCOPES) && (out->has & KB_PRESET)) {
		refuse(bad, "preset", "give %s one of scopes and preset", create ? "exactly" : "at most");
		goto out;
	}
	/* neither: the profile's default_preset, or a refusal (the core's check) */
	if ((v = json_object_get(root, "expires_at"))) {
		if (take_expiry(v, now_s, &out->expires_at_s, bad) != 0)
			goto out;
		out->has |= KB_EXPIRES;
	}
	if ((v = json_object_get(root, "rate_limit"))) {
		json_int_t n = json_integer_value(v);
		if (!json_is_integer(v) || n < APIKEY_RATE_MIN || n > APIKEY_RATE_MAX) {
			refuse(bad, "rate_limit", "rate_limit must be an integer 1..1000000");
			goto out;
		}
		out->rate_limit = (uint32_t)n;
		out->has |= KB_RATE;
	}
	if ((v = json_object_get(root, "metadata"))) {
		char *text;
		if (!json_is_object(v)) {
			refuse(bad, "metadata", "metadata must be a JSON object");
			goto out;
		}
		text = json_dumps(v, JSON_COMPACT);
		if (!text || strlen(text) >= sizeof(out->metadata)) {
			free(text);
			refuse(bad, "metadata", "metadata must be at most 2047 bytes as compact JSON");
			goto out;
		}
		memcpy(out->metadata, text, strlen(text) + 1);
		free(text);
		out->has |= KB_META;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

int sc_parse_rotate_body(const char *body, size_t len, int64_t *grace_s, struct sc_bad *bad)
{
	static const char *const members[] = { "grace", NULL };
	json_t *root, *v;
	int r = APIKEY_ERR_INVALID;

	*grace_s = APIKEY_GRACE_DEFAULT_S;
	if (!(root = load_object(body, len, true, bad)))
		return APIKEY_ERR_INVALID;
	if (only_members(root, members, bad) != 0)
		goto out;
	if ((v = json_object_get(root, "grace"))) {
		char text[32];
		if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    json_integer_value(v) <= (json_int_t)100 * 366 * 86400) {
			*grace_s = (int64_t)json_integer_value(v);
		} else if (!json_is_string(v) || take_string(v, "grace", text, sizeof(text), bad) != 0 ||
		           apikey_parse_duration(text, grace_s) != 0) {
			refuse(bad, "grace", "grace must be a duration (24h, 90m, 0) or seconds >= 0");
			goto out;
		}
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

int sc_parse_empty_body(const char *body, size_t len, struct sc_bad *bad)
{
	static const char *const members[] = { NULL };
	json_t *root = load_object(body, len, true, bad);
	int r;

	if (!root)
		return APIKEY_ERR_INVALID;
	r = only_members(root, members, bad);
	json_decref(root);
	return r;
}

int sc_parse_account_body(const char *body, size_t len, char plan[APIKEY_PLAN_SIZE], bool *plan_set,
                          int *active, struct sc_bad *bad)
{
	static const char *const members[] = { "plan", "active", NULL };
	json_t *root, *v;
	int r = APIKEY_ERR_INVALID;

	plan[0] = '\0';
	*plan_set = false;
	*active = -1;
	if (!(root = load_object(body, len, false, bad)))
		return APIKEY_ERR_INVALID;
	if (only_members(root, members, bad) != 0)
		goto out;
	if ((v = json_object_get(root, "plan"))) {
		if (take_string(v, "plan", plan, APIKEY_PLAN_SIZE, bad) != 0)
			goto out;
		*plan_set = true;
	}
	if ((v = json_object_get(root, "active"))) {
		if (!json_is_boolean(v)) {
			refuse(bad, "active", "active must be true or false");
			goto out;
		}
		*active = json_is_true(v) ? 1 : 0;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

int sc_parse_preset_body(const char *body, size_t len, char scopes[APIKEY_SCOPES_SIZE], struct sc_bad *bad)
{
	static const char *const members[] = { "scopes", NULL };
	json_t *root, *v;
	int r = APIKEY_ERR_INVALID;

	scopes[0] = '\0';
	if (!(root = load_object(body, len, false, bad)))
		return APIKEY_ERR_INVALID;
	if (only_members(root, members, bad) != 0)
		goto out;
	if (!(v = json_object_get(root, "scopes"))) {
		refuse(bad, "scopes", "scopes is required");
		goto out;
	}
	r = take_scopes(v, "scopes", scopes, bad);
out:
	json_decref(root);
	return r;
}

int sc_path_part(const char *raw, size_t rawlen, const char *field, char *out, size_t outsz,
                 struct sc_bad *bad)
{
	char enc[3 * APIKEY_OWNER_SIZE + 1];
	size_t n = 0;
	char *dec;
	int r = 0;

	/* every percent-encoded byte is three characters: anything longer than
	 * three times the largest part cannot fit */
	if (rawlen == 0 || rawlen >= sizeof(enc))
		return refuse(bad, field, "%s is empty or too long", field);
	memcpy(enc, raw, rawlen);
	enc[rawlen] = '\0';
	if (!(dec = evhttp_uridecode(enc, 0, &n)))
		return refuse(bad, field, "%s cannot be decoded", field);
	if (n == 0 || n >= outsz || strlen(dec) != n)
		r = refuse(bad, field, "%s is empty, too long or holds a NUL", field);
	else if (strchr(dec, '/') || !strcmp(dec, ".") || !strcmp(dec, ".."))
		r = refuse(bad, field, "%s must not be '.', '..' or hold a '/'", field);
	else
		memcpy(out, dec, n + 1);
	free(dec);
	return r;
}

int sc_parse_query(const char *query, const char *const *allowed, struct sc_query *q,
                   struct sc_bad *bad)
{
	struct evkeyvalq kv;
	struct evkeyval *e;
	int r = 0;

	memset(q, 0, sizeof(*q));
	if (!query || !query[0])
		return 0;
	if (strstr(query, "%00"))
		return refuse(bad, "query", "the query string decodes a NUL");
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(query, &kv) != 0) {
		evhttp_clear_headers(&kv);
		return refuse(bad, "query", "malformed query string");
	}
	TAILQ_FOREACH(e, &kv, next) {
		size_t i;
		for (i = 0; allowed[i] && strcmp(allowed[i], e->key) != 0; i++)
			;
		if (!allowed[i]) {
			char field[sizeof(bad->field)];
			size_t j;
			for (j = 0; e->key[j] && j < sizeof(field) - 1; j++)
				field[j] = e->key[j] > ' ' && e->key[j] < 0x7f ? e->key[j] : '?';
			field[j] = '\0';
			r = refuse(bad, field[0] ? field : "query", "unknown query parameter %s", field);
			break;
		}
		if (sc_query_get(q, e->key)) {
			r = refuse(bad, allowed[i], "%s is given twice", allowed[i]);
			break;
		}
		if (q->n == SC_QUERY_MAX || strlen(e->value) >= sizeof(q->value[0])) {
			r = refuse(bad, allowed[i], "%s is too long", allowed[i]);
			break;
		}
		snprintf(q->name[q->n], sizeof(q->name[0]), "%s", allowed[i]);
		memcpy(q->value[q->n], e->value, strlen(e->value) + 1);
		q->n++;
	}
	evhttp_clear_headers(&kv);
	return r;
}

const char *sc_query_get(const struct sc_query *q, const char *name)
{
	for (unsigned i = 0; i < q->n; i++)
		if (!strcmp(q->name[i], name))
			return q->value[i];
	return NULL;
}

int sc_query_uint(const char *v, const char *field, unsigned long long min, unsigned long long max,
                  unsigned long long *out, struct sc_bad *bad)
{
	char range[64];

	if (apikey_parse_uint(v, min, max, out) == 0)
		return 0;
	snprintf(range, sizeof(range), "%s must be an integer %llu..%llu", field, min, max);
	return refuse(bad, field, "%s", range);
}

int sc_query_time(const char *v, const char *field, int64_t *out, struct sc_bad *bad)
{
	if (apikey_parse_time(v, out) == 0)
		return 0;
	return refuse(bad, field, "%s must be an RFC 3339 time (2026-01-02T03:04:05Z)", field);
}

int sc_query_bucket(const char *v, unsigned *bucket_s, struct sc_bad *bad)
{
	if (!strcmp(v, "minute"))
		*bucket_s = 60;
	else if (!strcmp(v, "hour"))
		*bucket_s = 3600;
	else if (!strcmp(v, "day"))
		*bucket_s = 86400;
	else
		return refuse(bad, "bucket", "bucket must be minute, hour or day");
	return 0;
}

const char *sc_field_of(const char *why)
{
	static const char *const fields[] = { "owner", "name", "scopes", "preset", "expires_at",
	                                      "rate_limit", "metadata", "plan", NULL };
	/* the profile's refusals (core/profile.c, core/keys.c) name a value, not a field */
	static const struct { const char *starts, *field; } named[] = {
		{ "scope '", "scopes" }, { "rate limit ", "rate_limit" }, { "no preset named ", "preset" },
		{ "preset '", "preset" },
	};

	for (size_t i = 0; why && i < sizeof(named) / sizeof(named[0]); i++)
		if (!strncmp(why, named[i].starts, strlen(named[i].starts)))
			return named[i].field;
	for (size_t i = 0; why && fields[i]; i++) {
		size_t n = strlen(fields[i]);
		if (!strncmp(why, fields[i], n) && (why[n] == ' ' || why[n] == ':' || why[n] == '\0'))
			return fields[i];
	}
	return "body";
}

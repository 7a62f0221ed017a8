/* request.c — keys, required scopes and plans out of request strings and
 * /v1/verify bodies: plain functions, so the fuzzer reaches every parser. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "request.h"

/* Concatenated required-scope text before normalising: every header and
 * query value joined with commas. */
#define SC_SCOPE_TEXT_MAX (2 * APIKEY_SCOPES_SIZE)

void sc_input_wipe(struct sc_input *in)
{
	OPENSSL_cleanse(in->key, sizeof(in->key));
	in->key_len = 0;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

const char *sc_bearer_token(const char *authorization, size_t *len)
{
	const char *p = authorization, *end;

	*len = 0;
	if (!p)
		return NULL;
	while (blank(*p))
		p++;
	if (strncasecmp(p, "Bearer", 6) != 0 || !blank(p[6]))
		return NULL;
	p += 6;
	while (blank(*p))
		p++;
	end = p + strlen(p);
	while (end > p && blank(end[-1]))
		end--;
	*len = (size_t)(end - p);
	return *len ? p : NULL;
}

/* Copy a presented key: at most SIDECAR_KEY_BUF - 1 bytes, so an over-long
 * key stays over-long (the core then answers MALFORMED_KEY). */
static void take_key(struct sc_input *in, const char *k, size_t n)
{
	if (n > sizeof(in->key) - 1)
		n = sizeof(in->key) - 1;
	memcpy(in->key, k, n);
	in->key[n] = '\0';
	in->key_len = n;
}

/* Append ",text" (or "text") to buf; APIKEY_ERR_TOO_LONG when it does not fit. */
static int append_list(char *buf, size_t bufsz, size_t *used, const char *text)
{
	size_t n = strlen(text);

	if (n == 0)
		return 0;
	if (*used + (*used ? 1 : 0) + n + 1 > bufsz)
		return APIKEY_ERR_TOO_LONG;
	if (*used)
		buf[(*used)++] = ',';
	memcpy(buf + *used, text, n + 1);
	*used += n;
	return 0;
}

/* Does the raw query decode a NUL anywhere ("%00")?  A decoded value would
 * be cut short at it, so such a query is refused rather than half-read. */
static bool query_has_nul(const char *q)
{
	for (const char *p = q; (p = strchr(p, '%')) != NULL; p++)
		if (p[1] == '0' && p[2] == '0')
			return true;
	return false;
}

int sc_request_input(const struct sc_request *rq, struct sc_input *in, const char **why)
{
	struct evkeyvalq q;
	struct evkeyval *kv;
	char text[SC_SCOPE_TEXT_MAX];
	size_t used = 0, n;
	const char *k;
	bool parsed = false;
	int r = APIKEY_ERR_INVALID;

	memset(in, 0, sizeof(*in));
	TAILQ_INIT(&q);
	text[0] = '\0';
	*why = "bad request";

	if (rq->query && rq->query[0]) {
		if (query_has_nul(rq->query) || evhttp_parse_query_str(rq->query, &q) != 0) {
			*why = "malformed query string";
			goto out;
		}
		parsed = true;
	}

	/* The key: the first source present and not empty. */
	if ((k = sc_bearer_token(rq->authorization, &n)) != NULL)
		take_key(in, k, n);
	else if (rq->x_api_key && rq->x_api_key[0])
		take_key(in, rq->x_api_key, strlen(rq->x_api_key));
	else if (rq->custom_header && rq->custom_header[0])
		take_key(in, rq->custom_header, strlen(rq->custom_header));
	else if (parsed && rq->key_query && rq->key_query[0] &&
	         (k = evhttp_find_header(&q, rq->key_query)) != NULL && k[0])
		take_key(in, k, strlen(k));

	/* Required scopes: every source adds to the list, none can remove. */
	if (rq->want_scopes) {
		if (rq->scope_headers_overflow) {
			*why = "too many X-Required-Scope headers";
			goto out;
		}
		for (size_t i = 0; i < rq->n_scope_headers && i < SC_SCOPE_HEADERS_MAX; i++)
			if (rq->scope_headers[i] && append_list(text, sizeof(text), &used, rq->scope_headers[i]) != 0) {
				*why = "required scopes too long";
				goto out;
			}
		if (parsed)
			TAILQ_FOREACH(kv, &q, next)
				if (!strcmp(kv->key, "scope") && append_list(text, sizeof(text), &used, kv->value) != 0) {
					*why = "required scopes too long";
					goto out;
				}
		if (used && apikey_scopes_normalize(text, in->scopes, sizeof(in->scopes)) != 0) {
			*why = "bad required scope";
			goto out;
		}
	}

	if (apikey_plans_intersect(rq->conf_plans, rq->plan_header, in->plans, sizeof(in->plans)) != 0) {
		*why = "required plans too long";
		goto out;
	}
	r = 0;
out:
	/* The decoded query may hold a key: wipe it before it is freed. */
	TAILQ_FOREACH(kv, &q, next)
		if (kv->value)
			OPENSSL_cleanse(kv->value, strlen(kv->value));
	evhttp_clear_headers(&q);
	if (r != 0)
		sc_input_wipe(in);
	return r;
}

int sc_parse_verify_body(const char *body, size_t len, struct sc_input *in, char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *root, *key, *scopes, *v;
	char text[SC_SCOPE_TEXT_MAX];
	size_t used = 0, i;
	int r = APIKEY_ERR_INVALID;

	memset(in, 0, sizeof(*in));
	text[0] = '\0';
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(why, whysz, "bad JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
		return APIKEY_ERR_INVALID;
	}
	if (!json_is_object(root)) {
		snprintf(why, whysz, "the body must be a JSON object");
		goto out;
	}
	key = json_object_get(root, "key");
	if (key && !json_is_null(key)) {
		if (!json_is_string(key)) {
			snprintf(why, whysz, "\"key\" must be a string");
			goto out;
		}
		take_key(in, json_string_value(key), json_string_length(key));
	}
	scopes = json_object_get(root, "scopes");
	if (scopes && !json_is_null(scopes)) {
		if (!json_is_array(scopes)) {
			snprintf(why, whysz, "\"scopes\" must be an array of strings");
			goto out;
		}
		json_array_foreach(scopes, i, v) {
			if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
				snprintf(why, whysz, "\"scopes\" must be an array of strings");
				goto out;
			}
			if (!apikey_scope_valid(json_string_value(v), json_string_length(v))) {
				snprintf(why, whysz, "bad scope in \"scopes\"");
				goto out;
			}
			if (append_list(text, sizeof(text), &used, json_string_value(v)) != 0) {
				snprintf(why, whysz, "\"scopes\" too long");
				goto out;
			}
		}
		if (used && apikey_scopes_normalize(text, in->scopes, sizeof(in->scopes)) != 0) {
			snprintf(why, whysz, "\"scopes\" too long");
			goto out;
		}
	}
	r = 0;
out:
	/* jansson keeps its own copy of the key: wipe it before it is freed. */
	if ((key = json_object_get(root, "key")) && json_is_string(key))
		OPENSSL_cleanse((char *)json_string_value(key), json_string_length(key));
	json_decref(root);
	if (r != 0)
		sc_input_wipe(in);
	return r;
}

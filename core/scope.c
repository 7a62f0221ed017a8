/* scope.c — "resource:action" scopes, wildcards, and granted-vs-required checks;
 * the admin API's scopes (apikey:…) are granted by name only. */
#include <string.h>
#include "internal.h"

/* A part is "*" or 1..31 of [a-z0-9_.-] (upper case is refused, not folded:
 * scopes are identifiers, and two spellings of one would be a trap). */
static bool part_valid(const char *p, size_t n)
{
	if (n == 1 && p[0] == '*')
		return true;
	if (n == 0 || n > 31)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

bool apikey_scope_valid(const char *scope, size_t len)
{
	const char *colon;

	if (len == 1 && scope[0] == '*')
		return true;
	if (len >= APIKEY_SCOPE_SIZE)
		return false;
	colon = memchr(scope, ':', len);
	if (!colon)
		return false;
	return part_valid(scope, (size_t)(colon - scope)) &&
	       part_valid(colon + 1, len - (size_t)(colon - scope) - 1);
}

static bool is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

/* Calls fn on each item of a comma/space list; stops early on false. */
static bool each_item(const char *list, bool (*fn)(void *ctx, const char *s, size_t n), void *ctx)
{
	const char *p = list ? list : "";

	while (*p) {
		const char *start;
		while (is_sep(*p))
			p++;
		start = p;
		while (*p && !is_sep(*p))
			p++;
		if (p > start && !fn(ctx, start, (size_t)(p - start)))
			return false;
	}
	return true;
}

/* Is item (n bytes) already in the comma list s? */
static bool list_has(const char *s, const char *item, size_t n)
{
	const char *p = s;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, item, n) == 0)
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

struct norm_ctx { char *out; size_t sz, used; int err; };

static bool norm_one(void *vctx, const char *s, size_t n)
{
	struct norm_ctx *c = vctx;

	if (!apikey_scope_valid(s, n)) {
		c->err = APIKEY_ERR_INVALID;
		return false;
	}
	if (list_has(c->out, s, n))
		return true;
	if (c->used + n + (c->used ? 1 : 0) + 1 > c->sz) {
		c->err = APIKEY_ERR_TOO_LONG;
		return false;
	}
	if (c->used)
		c->out[c->used++] = ',';
	memcpy(c->out + c->used, s, n);
	c->used += n;
	c->out[c->used] = '\0';
	return true;
}

int apikey_scopes_normalize(const char *list, char *out, size_t outsz)
{
	struct norm_ctx c = { out, outsz, 0, 0 };

	if (outsz == 0)
		return APIKEY_ERR_TOO_LONG;
	out[0] = '\0';
	each_item(list, norm_one, &c);
	if (c.err)
		out[0] = '\0';
	return c.err;
}

bool apikey_scope_reserved(const char *scope, size_t len)
{
	size_t n = sizeof(APIKEY_ADMIN_RESOURCE) - 1;

	return len > n && scope[n] == ':' && !memcmp(scope, APIKEY_ADMIN_RESOURCE, n);
}

/* Does one granted pattern (a part may be "*") cover the required scope?
 * A reserved scope (the admin API's rights) only by name: no wildcard. */
static bool pattern_covers(const char *g, size_t gn, const char *r, size_t rn)
{
	const char *gc, *rc;

	if (apikey_scope_reserved(r, rn))
		return gn == rn && !memcmp(g, r, rn);
	if (gn == 1 && g[0] == '*')
		return true;
	gc = memchr(g, ':', gn);
	rc = memchr(r, ':', rn);
	if (!gc || !rc)
		return false;
	size_t gres = (size_t)(gc - g), rres = (size_t)(rc - r);
	size_t gact = gn - gres - 1, ract = rn - rres - 1;
	bool res_ok = (gres == 1 && g[0] == '*') || (gres == rres && !memcmp(g, r, rres));
	bool act_ok = (gact == 1 && gc[1] == '*') || (gact == ract && !memcmp(gc + 1, rc + 1, ract));
	return res_ok && act_ok;
}

bool apikey_scopes_grant(const char *granted, const char *required, size_t rlen)
{
	const char *p = granted ? granted : "";

	if (!apikey_scope_valid(required, rlen))
		return false;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (pattern_covers(p, len, required, rlen))
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

struct missing_ctx { const char *granted, *item; size_t len; };

static bool grant_one(void *vctx, const char *s, size_t n)
{
	struct missing_ctx *c = vctx;

	if (apikey_scopes_grant(c->granted, s, n))
		return true;
	c->item = s;
	c->len = n;
	return false;
}

const char *apikey_scopes_first_missing(const char *granted, const char *required_list, size_t *len)
{
	struct missing_ctx c = { granted, NULL, 0 };

	*len = 0;
	if (each_item(required_list, grant_one, &c))
		return NULL;
	*len = c.len;
	return c.item;
}

bool apikey_scopes_grant_all(const char *granted, const char *required_list)
{
	size_t n;

	return apikey_scopes_first_missing(granted, required_list, &n) == NULL;
}

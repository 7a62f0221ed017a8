/* list.c — comma lists as stored and configured (scopes "a:b,c:d", plans
 * "pro, ultra"): one iterator, and the plan rules that use it (is a plan
 * allowed; which plans do two requirements both allow). */
#include <string.h>
#include "internal.h"

bool apikey_list_next(const char **cursor, const char **item, size_t *len)
{
	const char *p = *cursor;

	while (p && *p) {
		const char *end = strchr(p, ',');
		const char *next = end ? end + 1 : p + strlen(p);
		size_t n = (size_t)((end ? end : next) - p);

		while (n && ascii_blank((unsigned char)*p))
			p++, n--;
		while (n && ascii_blank((unsigned char)p[n - 1]))
			n--;
		*cursor = next;
		if (n) {
			*item = p;
			*len = n;
			return true;
		}
		p = next;
	}
	*cursor = p;
	return false;
}

static bool list_has(const char *list, const char *s, size_t n)
{
	const char *cur = list, *item;
	size_t len;

	while (apikey_list_next(&cur, &item, &len))
		if (len == n && memcmp(item, s, n) == 0)
			return true;
	return false;
}

bool apikey_plan_allowed(const char *plan, const char *list)
{
	size_t n = plan ? strlen(plan) : 0;

	return n && list_has(list, plan, n);
}

int apikey_plans_intersect(const char *a, const char *b, char *out, size_t outsz)
{
	const char *cur = a, *item;
	size_t used = 0, n;

	if (outsz == 0)
		return APIKEY_ERR_TOO_LONG;
	out[0] = '\0';
	if (!a || !a[0] || !b || !b[0])
		return copy_str(out, outsz, (a && a[0]) ? a : (b ? b : ""));
	while (apikey_list_next(&cur, &item, &n)) {
		if (n >= APIKEY_PLAN_SIZE || !list_has(b, item, n))
			continue;
		if (used + (used ? 1 : 0) + n + 1 > outsz)
			return APIKEY_ERR_TOO_LONG;
		if (used)
			out[used++] = ',';
		memcpy(out + used, item, n);
		used += n;
		out[used] = '\0';
	}
	/* Nothing allowed by both: a list that matches no plan name. */
	if (used == 0)
		return copy_str(out, outsz, ",");
	return 0;
}

/* access.c — who may do what through the admin API (SPEC §5a): the right a
 * key's scopes give (apikey:read < apikey:write < apikey:admin, granted by
 * name only: core/scope.c), whether a caller may act on an owner, and the
 * rule that nobody issues or widens a key beyond their own scopes.  The
 * last is enforced inside the writes themselves (struct apikey_actor.within,
 * core/keys.c); the sidecar asks the first two before it reads or writes. */
#include <string.h>
#include "internal.h"

static bool holds(const char *scopes, const char *scope)
{
	return apikey_scopes_grant(scopes, scope, strlen(scope));
}

enum apikey_right apikey_right_of(const char *scopes)
{
	if (holds(scopes, APIKEY_ADMIN_RESOURCE ":admin"))
		return APIKEY_RIGHT_ADMIN;
	if (holds(scopes, APIKEY_ADMIN_RESOURCE ":write"))
		return APIKEY_RIGHT_WRITE;
	if (holds(scopes, APIKEY_ADMIN_RESOURCE ":read"))
		return APIKEY_RIGHT_READ;
	return APIKEY_RIGHT_NONE;
}

enum apikey_access apikey_access_check(const char *caller_scopes, const char *caller_owner,
                                       enum apikey_right need, const char *owner)
{
	enum apikey_right have = apikey_right_of(caller_scopes);

	if (need < APIKEY_RIGHT_READ)     /* every call needs one of the rights */
		need = APIKEY_RIGHT_READ;
	if (have < need)
		return APIKEY_ACCESS_NEED_RIGHT;
	if (owner && have < APIKEY_RIGHT_ADMIN && (!caller_owner || strcmp(owner, caller_owner) != 0))
		return APIKEY_ACCESS_OTHER_OWNER;
	return APIKEY_ACCESS_OK;
}

bool apikey_scopes_within(const char *held, const char *wanted)
{
	const char *cur = wanted, *item;
	size_t n;

	while (apikey_list_next(&cur, &item, &n))
		if (!apikey_scopes_grant(held, item, n))
			return false;
	return true;
}

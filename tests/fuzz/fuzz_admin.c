/* fuzz_admin.c — libFuzzer target for the admin API's parsing
 * (sidecar/admin_parse.c): any bytes as a key body (create and update),
 * rotate, account, preset and empty bodies, a query string and a path part
 * must be accepted or refused without a crash; a refusal names a field, and
 * what is accepted is bounded and well-formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "apikey.h"
#include "admin_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void refused(const struct sc_bad *bad)
{
	if (!bad->field[0] || strnlen(bad->field, sizeof(bad->field)) == sizeof(bad->field) ||
	    strnlen(bad->msg, sizeof(bad->msg)) == sizeof(bad->msg))
		__builtin_trap();
}

static void scopes_ok(const char *s)
{
	char norm[APIKEY_SCOPES_SIZE];

	if (!s[0] || apikey_scopes_normalize(s, norm, sizeof(norm)) != 0 || strcmp(norm, s) != 0)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = { "owner", "status", "limit", "cursor", "from", "to", "bucket", NULL };
	char *buf = malloc(size + 1), plan[APIKEY_PLAN_SIZE], scopes[APIKEY_SCOPES_SIZE], part[APIKEY_OWNER_SIZE];
	struct sc_key_body kb;
	struct sc_query q;
	struct sc_bad bad;
	int64_t grace;
	bool plan_set;
	int active;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (int create = 0; create < 2; create++) {
		memset(&bad, 0, sizeof(bad));
		if (sc_parse_key_body(buf, size, create, 1700000000, &kb, &bad) != 0) {
			refused(&bad);
		} else {
			if ((kb.has & KB_SCOPES))
				scopes_ok(kb.scopes);
			if ((kb.has & KB_SCOPES) && (kb.has & KB_PRESET))
				__builtin_trap();
			/* neither scopes nor preset: the core's create check decides
			 * (the profile's default_preset) */
			if ((kb.has & KB_EXPIRES) && kb.expires_at_s && kb.expires_at_s <= 1700000000)
				__builtin_trap();
			if ((kb.has & KB_RATE) && (kb.rate_limit < APIKEY_RATE_MIN || kb.rate_limit > APIKEY_RATE_MAX))
				__builtin_trap();
		}
	}
	memset(&bad, 0, sizeof(bad));
	if (sc_parse_rotate_body(buf, size, &grace, &bad) != 0)
		refused(&bad);
	else if (grace < 0)
		__builtin_trap();
	if (sc_parse_empty_body(buf, size, &bad) != 0)
		refused(&bad);
	if (sc_parse_account_body(buf, size, plan, &plan_set, &active, &bad) != 0)
		refused(&bad);
	else if (active < -1 || active > 1 || strnlen(plan, sizeof(plan)) == sizeof(plan))
		__builtin_trap();
	if (sc_parse_preset_body(buf, size, scopes, &bad) != 0)
		refused(&bad);
	else
		scopes_ok(scopes);
	if (sc_parse_query(buf, allowed, &q, &bad) != 0)
		refused(&bad);
	else if (q.n > SC_QUERY_MAX)
		__builtin_trap();
	if (sc_path_part(buf, size, "owner", part, sizeof(part), &bad) != 0)
		refused(&bad);
	else if (!part[0] || strchr(part, '/') || !strcmp(part, "..") || !strcmp(part, "."))
		__builtin_trap();
	(void)sc_field_of(buf);
	free(buf);
	return 0;
}

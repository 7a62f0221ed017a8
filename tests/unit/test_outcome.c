/* test_outcome.c — core/outcome.c and core/log.c: the SPEC §3 table of codes,
 * messages and HTTP statuses, error strings, the log sink and bounded copies. */
#include <syslog.h>
#include <security/_pam_types.h>
#include "unit.h"
#include "../../core/internal.h"

static void outcome_table(void **state)
{
	for (int o = 0; o < APIKEY_OUTCOME_COUNT; o++)
		assert_int_equal(apikey_outcome_from_code(apikey_outcome_code(o)), o);
	assert_string_equal(apikey_outcome_message(APIKEY_INVALID_KEY), "Invalid API key");
	assert_int_equal(apikey_outcome_http_status(APIKEY_RATE_LIMITED), 429);
	assert_int_equal(apikey_outcome_http_status(APIKEY_UNAVAILABLE), 503);
	assert_int_equal(apikey_outcome_http_status(APIKEY_INSUFFICIENT_SCOPE), 403);
	assert_int_equal(apikey_outcome_from_code("NOPE"), -1);
	assert_string_equal(apikey_strerror(APIKEY_ERR_PEPPER),
	                    "pepper file missing, wrong size or unsafe permissions");
}

static void spec_statuses(void **state)
{
	/* SPEC §3's table: code, HTTP, PAM auth; and the account phase's answer
	 * for a key that passed auth (expired: ACCT_EXPIRED, withdrawn: PERM_DENIED) */
	static const struct { enum apikey_outcome o; const char *code; int http, auth, account; } want[] = {
		{ APIKEY_VALID, "VALID", 200, PAM_SUCCESS, PAM_SUCCESS },
		{ APIKEY_MISSING_KEY, "MISSING_KEY", 401, PAM_AUTH_ERR, PAM_PERM_DENIED },
		{ APIKEY_MALFORMED_KEY, "MALFORMED_KEY", 401, PAM_AUTH_ERR, PAM_PERM_DENIED },
		{ APIKEY_INVALID_KEY, "INVALID_KEY", 401, PAM_AUTH_ERR, PAM_PERM_DENIED },
		{ APIKEY_REVOKED, "REVOKED", 401, PAM_AUTH_ERR, PAM_PERM_DENIED },
		{ APIKEY_EXPIRED, "EXPIRED", 401, PAM_AUTH_ERR, PAM_ACCT_EXPIRED },
		{ APIKEY_ACCOUNT_INACTIVE, "ACCOUNT_INACTIVE", 403, PAM_PERM_DENIED, PAM_PERM_DENIED },
		{ APIKEY_PLAN_REQUIRED, "PLAN_REQUIRED", 403, PAM_PERM_DENIED, PAM_PERM_DENIED },
		{ APIKEY_WRONG_USER, "WRONG_USER", 403, PAM_AUTH_ERR, PAM_PERM_DENIED },
		{ APIKEY_INSUFFICIENT_SCOPE, "INSUFFICIENT_SCOPE", 403, PAM_PERM_DENIED, PAM_PERM_DENIED },
		{ APIKEY_RATE_LIMITED, "RATE_LIMITED", 429, PAM_MAXTRIES, PAM_PERM_DENIED },
		{ APIKEY_UNAVAILABLE, "UNAVAILABLE", 503, PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL },
	};

	(void)state;
	assert_int_equal(sizeof(want) / sizeof(want[0]), APIKEY_OUTCOME_COUNT);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_string_equal(apikey_outcome_code(want[i].o), want[i].code);
		assert_int_equal(apikey_outcome_http_status(want[i].o), want[i].http);
		assert_int_equal(apikey_outcome_pam_auth(want[i].o), want[i].auth);
		assert_int_equal(apikey_outcome_pam_account(want[i].o), want[i].account);
	}
	/* out of range fails closed */
	assert_string_equal(apikey_outcome_code(APIKEY_OUTCOME_COUNT), "UNAVAILABLE");
	assert_int_equal(apikey_outcome_http_status((enum apikey_outcome)99), 503);
	assert_int_equal(apikey_outcome_pam_auth((enum apikey_outcome)99), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(apikey_outcome_pam_account((enum apikey_outcome)-1), PAM_AUTHINFO_UNAVAIL);
	for (int e = APIKEY_ERR_DISK_FULL; e <= 0; e++)
		assert_string_not_equal(apikey_strerror(e), "unknown error");
	assert_string_equal(apikey_strerror(-999), "unknown error");
}

struct sink { int calls, prio; char msg[600]; };

static void sink(void *ctx, int prio, const char *msg)
{
	struct sink *s = ctx;

	s->calls++;
	s->prio = prio;
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
}

static void log_sink_and_copies(void **state)
{
	struct sink s = { 0 };
	char big[1000], small[4];

	(void)state;
	core_log(NULL, NULL, LOG_ERR, "no sink: %d", 1);      /* silently dropped */
	core_log(sink, &s, LOG_WARNING, "store %s: %d", "busy", 7);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.prio, LOG_WARNING);
	assert_string_equal(s.msg, "store busy: 7");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	core_log(sink, &s, LOG_ERR, "%s", big);                /* bounded, not overflowed */
	assert_int_equal(strlen(s.msg), 511);

	assert_int_equal(copy_str(small, sizeof(small), "abc"), 0);
	assert_string_equal(small, "abc");
	assert_int_equal(copy_str(small, sizeof(small), "abcd"), APIKEY_ERR_TOO_LONG);
	assert_string_equal(small, "abc");
	assert_int_equal(copy_str(small, sizeof(small), NULL), 0);
	assert_string_equal(small, "");
	assert_int_equal(copy_str(small, 0, "a"), APIKEY_ERR_TOO_LONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(outcome_table), cmocka_unit_test(spec_statuses),
		cmocka_unit_test(log_sink_and_copies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

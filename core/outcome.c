/* outcome.c — error strings and the one table of verification outcomes
 * (SPEC §3): code, message, HTTP status, and the PAM answers of the auth
 * and account phases.  Linux-PAM's header is included for its constants
 * only: nothing here calls libpam, so no front end links it through us. */
#include <string.h>
#include <security/_pam_types.h>
#include "apikey.h"

/*
 * pam_auth: the answer of pam_sm_authenticate.  pam_account: the account
 * phase re-checks a key that was valid at auth — expiry is PAM_ACCT_EXPIRED;
 * revoked, deleted, suspended, plan or a changed PAM_USER are
 * PAM_PERM_DENIED (the identity was proven, access is withdrawn).
 */
static const struct {
	const char *code, *message;
	int http, pam_auth, pam_account;
} outcomes[APIKEY_OUTCOME_COUNT] = {
	[APIKEY_VALID]              = { "VALID", "Valid API key", 200, PAM_SUCCESS, PAM_SUCCESS },
	[APIKEY_MISSING_KEY]        = { "MISSING_KEY", "Missing API key", 401, PAM_AUTH_ERR, PAM_PERM_DENIED },
	[APIKEY_MALFORMED_KEY]      = { "MALFORMED_KEY", "Malformed API key", 401, PAM_AUTH_ERR, PAM_PERM_DENIED },
	[APIKEY_INVALID_KEY]        = { "INVALID_KEY", "Invalid API key", 401, PAM_AUTH_ERR, PAM_PERM_DENIED },
	[APIKEY_REVOKED]            = { "REVOKED", "API key revoked", 401, PAM_AUTH_ERR, PAM_PERM_DENIED },
	[APIKEY_EXPIRED]            = { "EXPIRED", "API key expired", 401, PAM_AUTH_ERR, PAM_ACCT_EXPIRED },
	[APIKEY_ACCOUNT_INACTIVE]   = { "ACCOUNT_INACTIVE", "Account inactive", 403, PAM_PERM_DENIED, PAM_PERM_DENIED },
	[APIKEY_PLAN_REQUIRED]      = { "PLAN_REQUIRED", "Plan does not allow this", 403, PAM_PERM_DENIED, PAM_PERM_DENIED },
	[APIKEY_WRONG_USER]         = { "WRONG_USER", "API key belongs to another user", 403, PAM_AUTH_ERR, PAM_PERM_DENIED },
	[APIKEY_INSUFFICIENT_SCOPE] = { "INSUFFICIENT_SCOPE", "Insufficient scope", 403, PAM_PERM_DENIED, PAM_PERM_DENIED },
	[APIKEY_RATE_LIMITED]       = { "RATE_LIMITED", "Rate limit exceeded", 429, PAM_MAXTRIES, PAM_PERM_DENIED },
	[APIKEY_UNAVAILABLE]        = { "UNAVAILABLE", "Key store unavailable", 503, PAM_AUTHINFO_UNAVAIL, PAM_AUTHINFO_UNAVAIL },
};

/* Out of range reads as UNAVAILABLE: fail closed. */
static unsigned row(enum apikey_outcome o)
{
	return (unsigned)o < APIKEY_OUTCOME_COUNT ? (unsigned)o : APIKEY_UNAVAILABLE;
}

const char *apikey_outcome_code(enum apikey_outcome o)
{
	return outcomes[row(o)].code;
}

const char *apikey_outcome_message(enum apikey_outcome o)
{
	return outcomes[row(o)].message;
}

int apikey_outcome_http_status(enum apikey_outcome o)
{
	return outcomes[row(o)].http;
}

int apikey_outcome_pam_auth(enum apikey_outcome o)
{
	return outcomes[row(o)].pam_auth;
}

int apikey_outcome_pam_account(enum apikey_outcome o)
{
	return outcomes[row(o)].pam_account;
}

int apikey_outcome_from_code(const char *code)
{
	for (int i = 0; code && i < APIKEY_OUTCOME_COUNT; i++)
		if (strcmp(code, outcomes[i].code) == 0)
			return i;
	return -1;
}

const char *apikey_strerror(int err)
{
	switch (err) {
	case APIKEY_OK:                 return "success";
	case APIKEY_ERR_INTERNAL:       return "internal error";
	case APIKEY_ERR_NOMEM:          return "out of memory";
	case APIKEY_ERR_INVALID:        return "invalid argument";
	case APIKEY_ERR_MALFORMED:      return "malformed key";
	case APIKEY_ERR_NOT_FOUND:      return "not found";
	case APIKEY_ERR_EXISTS:         return "already exists";
	case APIKEY_ERR_STORE:          return "key store missing, unreadable or corrupt";
	case APIKEY_ERR_BUSY:           return "key store busy (timed out)";
	case APIKEY_ERR_PEPPER:         return "pepper file missing, wrong size or unsafe permissions";
	case APIKEY_ERR_IO:             return "I/O error";
	case APIKEY_ERR_CONFIG:         return "bad configuration";
	case APIKEY_ERR_UNKNOWN_OPTION: return "unknown option";
	case APIKEY_ERR_READONLY:       return "key store is read-only";
	case APIKEY_ERR_CRYPTO:         return "cryptographic library error";
	case APIKEY_ERR_TOO_LONG:       return "value too long";
	case APIKEY_ERR_CONFLICT:       return "not allowed in the key's state (revoked, expired or rotated)";
	case APIKEY_ERR_FULL:           return "in-memory table full";
	case APIKEY_ERR_FORBIDDEN:      return "scopes beyond the actor's own";
	case APIKEY_ERR_REPLACED:       return "key store file replaced under a running process (reopening it)";
	case APIKEY_ERR_PENDING:        return "an imported key's hash is being checked: try again shortly";
	case APIKEY_ERR_DISK_FULL:      return "key store's disk is full";
	case APIKEY_ERR_UPSTREAM:       return "upstream unreachable: nothing was written";
	default:                        return "unknown error";
	}
}

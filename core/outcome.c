/* outcome.c — error strings and the table of verification outcomes (SPEC §3). */
#include <string.h>
#include "apikey.h"

static const struct {
	const char *code, *message;
	int http;
} outcomes[APIKEY_OUTCOME_COUNT] = {
	[APIKEY_VALID]              = { "VALID", "Valid API key", 200 },
	[APIKEY_MISSING_KEY]        = { "MISSING_KEY", "Missing API key", 401 },
	[APIKEY_MALFORMED_KEY]      = { "MALFORMED_KEY", "Malformed API key", 401 },
	[APIKEY_INVALID_KEY]        = { "INVALID_KEY", "Invalid API key", 401 },
	[APIKEY_REVOKED]            = { "REVOKED", "API key revoked", 401 },
	[APIKEY_EXPIRED]            = { "EXPIRED", "API key expired", 401 },
	[APIKEY_ACCOUNT_INACTIVE]   = { "ACCOUNT_INACTIVE", "Account inactive", 403 },
	[APIKEY_PLAN_REQUIRED]      = { "PLAN_REQUIRED", "Plan does not allow this", 403 },
	[APIKEY_WRONG_USER]         = { "WRONG_USER", "API key belongs to another user", 403 },
	[APIKEY_INSUFFICIENT_SCOPE] = { "INSUFFICIENT_SCOPE", "Insufficient scope", 403 },
	[APIKEY_RATE_LIMITED]       = { "RATE_LIMITED", "Rate limit exceeded", 429 },
	[APIKEY_UNAVAILABLE]        = { "UNAVAILABLE", "Key store unavailable", 503 },
};

const char *apikey_outcome_code(enum apikey_outcome o)
{
	return (unsigned)o < APIKEY_OUTCOME_COUNT ? outcomes[o].code : "UNAVAILABLE";
}

const char *apikey_outcome_message(enum apikey_outcome o)
{
	return (unsigned)o < APIKEY_OUTCOME_COUNT ? outcomes[o].message : "Key store unavailable";
}

int apikey_outcome_http_status(enum apikey_outcome o)
{
	return (unsigned)o < APIKEY_OUTCOME_COUNT ? outcomes[o].http : 503;
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
	default:                        return "unknown error";
	}
}

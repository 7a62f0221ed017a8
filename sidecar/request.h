/* request.h — the request parsing apikeyd does itself, as plain functions on
 * strings (no evhttp_request), so tests/fuzz/fuzz_request.c can drive them. */
#ifndef SIDECAR_REQUEST_H
#define SIDECAR_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include "apikey.h"
#include "limits.h"

/* X-Required-Scope headers looked at per request; more is a 400. */
#define SC_SCOPE_HEADERS_MAX 16

/* What /auth and /v1/whoami read from a request (all borrowed, may be NULL). */
struct sc_request {
	const char *authorization;        /* "Authorization" header */
	const char *x_api_key;            /* "X-API-Key" header */
	const char *custom_header;        /* value of the configured key_header */
	const char *query;                /* raw query string, without '?' */
	const char *key_query;            /* configured query parameter name */
	const char *scope_headers[SC_SCOPE_HEADERS_MAX]; /* every X-Required-Scope */
	size_t n_scope_headers;
	bool scope_headers_overflow;      /* more than SC_SCOPE_HEADERS_MAX were sent */
	bool want_scopes;                 /* /auth: yes; /v1/whoami: no */
	const char *plan_header;          /* "X-Required-Plan" header */
	const char *conf_plans;           /* require_plan= from apikey.conf */
};

/* Verification input built from a request or a /v1/verify body.  Holds the
 * key: callers wipe it with sc_input_wipe() once verified. */
struct sc_input {
	char key[SIDECAR_KEY_BUF];
	size_t key_len;                   /* 0 = no key presented */
	char scopes[APIKEY_SCOPES_SIZE];  /* normalised, "" = none required */
	char plans[APIKEY_SCOPES_SIZE];   /* allowed plans, "" = any */
};

/*
 * Key from, in this order, "Authorization: Bearer K", "X-API-Key: K", the
 * configured header, the configured query parameter (the first one that is
 * present and not empty); required scopes from every X-Required-Scope header
 * and every "scope" query parameter together (all must be granted); allowed
 * plans from require_plan= and X-Required-Plan (both must allow the plan).
 * Returns 0, or APIKEY_ERR_INVALID with a reason in *why for a request that
 * must be refused with 400 (bad query string, bad scope, too many scopes).
 */
int sc_request_input(const struct sc_request *rq, struct sc_input *in, const char **why);

/*
 * Parse a POST /v1/verify body: a JSON object with "key" (string; missing or
 * null = no key) and optional "scopes" (array of scope strings).  Other
 * members are ignored.  Returns 0, or APIKEY_ERR_INVALID with a reason
 * (written into why) for a body that is not such an object.
 */
int sc_parse_verify_body(const char *body, size_t len, struct sc_input *in,
                         char *why, size_t whysz);

/* Token of "Bearer TOKEN" (scheme case-insensitive, surrounding blanks
 * trimmed), or NULL with *len 0 when the value is not a Bearer credential. */
const char *sc_bearer_token(const char *authorization, size_t *len);

void sc_input_wipe(struct sc_input *in);

#endif /* SIDECAR_REQUEST_H */

/* admin_parse.h — the admin API's request parsing as plain functions on
 * strings (no evhttp_request): JSON bodies, query strings and path parts,
 * each refusal naming the field at fault.  tests/fuzz/fuzz_admin.c drives
 * every one of them. */
#ifndef SIDECAR_ADMIN_PARSE_H
#define SIDECAR_ADMIN_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "apikey.h"
#include "limits.h"

/* A refusal: the field (a body member, a query parameter, a path part or
 * "body") and what is wrong with it. */
struct sc_bad {
	char field[40];
	char msg[200];
};

/* Members of a key body given (POST /v1/keys, PATCH /v1/keys/{id}). */
enum {
	KB_OWNER = 1 << 0, KB_NAME = 1 << 1, KB_SCOPES = 1 << 2, KB_PRESET = 1 << 3,
	KB_EXPIRES = 1 << 4, KB_RATE = 1 << 5, KB_META = 1 << 6,
};
struct sc_key_body {
	unsigned has;                        /* KB_* */
	char owner[APIKEY_OWNER_SIZE];
	char name[APIKEY_NAME_SIZE];
	char scopes[APIKEY_SCOPES_SIZE];     /* normalised comma list */
	char preset[APIKEY_PRESET_SIZE];
	int64_t expires_at_s;                /* 0 = never (expires_at null) */
	uint32_t rate_limit;
	char metadata[APIKEY_META_SIZE];     /* compact JSON object */
};
/*
 * Parse a key body: a JSON object whose members are those above (create:
 * owner too; update: not), each of its type and range; unknown members,
 * duplicates and wrong types are refused.  expires_at is RFC 3339 (after
 * now_s) or a duration from now (apikey_time_after).  0, or
 * APIKEY_ERR_INVALID with *bad.
 */
int sc_parse_key_body(const char *body, size_t len, bool create, int64_t now_s,
                      struct sc_key_body *out, struct sc_bad *bad);
/* POST /v1/keys/{id}/rotate: {"grace": "24h" | seconds} (all optional; an
 * empty body is {}).  *grace_s defaults to APIKEY_GRACE_DEFAULT_S. */
int sc_parse_rotate_body(const char *body, size_t len, int64_t *grace_s, struct sc_bad *bad);
/* POST /v1/keys/{id}/revoke: empty, or {}. */
int sc_parse_empty_body(const char *body, size_t len, struct sc_bad *bad);
/* PUT /v1/accounts/{owner}: {"plan": string, "active": bool}, both optional.
 * plan_set / active (-1 = not given). */
int sc_parse_account_body(const char *body, size_t len, char plan[APIKEY_PLAN_SIZE], bool *plan_set,
                          int *active, struct sc_bad *bad);
/* PUT /v1/presets/{name}: {"scopes": [..]} (required), normalised. */
int sc_parse_preset_body(const char *body, size_t len, char scopes[APIKEY_SCOPES_SIZE],
                         struct sc_bad *bad);

/* A path part: percent-decoded once into out; refused (naming field) when it
 * is empty, decodes a NUL, a '/', is "." or "..", or does not fit. */
int sc_path_part(const char *raw, size_t rawlen, const char *field, char *out, size_t outsz,
                 struct sc_bad *bad);

/* Query parameters of an admin GET, parsed strictly: only the names in
 * allowed (NULL-terminated), each at most once; a malformed query or one
 * that decodes a NUL is refused (field "query"). */
#define SC_QUERY_MAX 8
struct sc_query {
	unsigned n;
	char name[SC_QUERY_MAX][16];
	char value[SC_QUERY_MAX][APIKEY_SCOPES_SIZE];
};
int sc_parse_query(const char *query, const char *const *allowed, struct sc_query *q,
                   struct sc_bad *bad);
/* The value of name, or NULL. */
const char *sc_query_get(const struct sc_query *q, const char *name);
/* Helpers for query values, each refusing with the parameter's name:
 * limit 1..max; a cursor (decimal, > 0); an RFC 3339 time; a bucket name. */
int sc_query_uint(const char *v, const char *field, unsigned long long min, unsigned long long max,
                  unsigned long long *out, struct sc_bad *bad);
int sc_query_time(const char *v, const char *field, int64_t *out, struct sc_bad *bad);
/* "minute" / "hour" / "day" → 60 / 3600 / 86400. */
int sc_query_bucket(const char *v, unsigned *bucket_s, struct sc_bad *bad);

/* The field a core refusal (apikey_*_check's why) names: its first word
 * when that is a field of the admin API, else "body". */
const char *sc_field_of(const char *why);

#endif /* SIDECAR_ADMIN_PARSE_H */

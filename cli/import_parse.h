/* import_parse.h — one line of an `apikeyctl import` file (JSON) into the
 * core's import parameters.  Kept apart from the verb so a fuzzer links it. */
#ifndef APIKEYCTL_IMPORT_PARSE_H
#define APIKEYCTL_IMPORT_PARSE_H

#include <stddef.h>
#include <jansson.h>
#include "apikey.h"

#define IMPORT_LINE_MAX  8192   /* longest line accepted, bytes */
#define IMPORT_WHY_SIZE  APIKEY_WHY_SIZE  /* one reason, for "line N: <reason>" */

/* A parsed line: p's strings point into root, scopes and metadata. */
struct import_line {
	struct apikey_import_params p;
	json_t *root;
	char scopes[APIKEY_SCOPES_SIZE];   /* the array joined, or the string as given */
	char *metadata;                    /* compact JSON (malloc), or NULL */
};

/*
 * Parse one JSON object of len bytes (no newline) and check it with
 * apikey_import_check under cfg's profile (NULL: none): scopes may be left
 * out when it has a default preset (p.scopes is then NULL).  Returns 0, or
 * APIKEY_ERR_INVALID with a reason in why ("missing hash").  On success
 * release the line with import_line_free; on failure nothing is held.  A
 * line with only blanks is APIKEY_ERR_NOT_FOUND (nothing to import).
 */
int import_parse_line(const struct apikey_config *cfg, const char *line, size_t len,
                      struct import_line *out, char *why, size_t whysz);
void import_line_free(struct import_line *l);

#endif

/*
 * apikey_text.h — client-supplied text in log lines (core/logtext.c),
 * included by apikey.h.  Every front end logs a user name, a request path or
 * any other string a client chose through apikey_log_text(): escaped,
 * bounded, and withheld altogether when it could be a secret.
 */
#ifndef APIKEY_TEXT_H
#define APIKEY_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct apikey_format;

/* Bytes of client text a log line shows at most (before escaping). */
#define APIKEY_LOG_TEXT_MAX  96
/* An output buffer this large holds any answer of apikey_log_text():
 * every shown byte escaped as \xHH, the "..." marker, the NUL. */
#define APIKEY_LOG_TEXT_SIZE (4 * APIKEY_LOG_TEXT_MAX + 4)

/*
 * Could text be a secret?  True when it contains a key of profile f (the
 * primary or a legacy prefix followed by 8 or more key characters, so a
 * mistyped or cut key counts too; f may be NULL), a UUID, a run of 16 or
 * more [A-Za-z0-9+/] with two digits and two letters at least (or upper and
 * lower case evenly), or a run of 32 or more token characters ([A-Za-z0-9+/=_.~-])
 * with 22 or more distinct ones.  A heuristic for log lines only: it never
 * decides an answer.  docs/DESIGN.md "Client text in logs" has the numbers.
 */
bool apikey_text_keylike(const struct apikey_format *f, const char *s, size_t n);

/*
 * Write s[0..n) into out as one line of printable ASCII: bytes 0x20..0x7e
 * as they are except '\\' and '"' (backslashed), \t \n \r as such, every
 * other byte (controls, DEL, non-ASCII, NUL) as \xHH.  At most
 * APIKEY_LOG_TEXT_MAX input bytes are shown, and no more than fit in
 * outsz; a cut is marked with "...".  out is always terminated (outsz >= 1).
 * Returns out.
 */
const char *apikey_log_escape(const char *s, size_t n, char *out, size_t outsz);

/*
 * The one way a front end puts client text into a log line:
 * "<key-like WHAT withheld>" when apikey_text_keylike() says so (what: "user
 * name", "path segment"…), else apikey_log_escape().  s may be NULL ("-").
 * Returns out.
 */
const char *apikey_log_text(const struct apikey_format *f, const char *s, size_t n, const char *what,
                            char *out, size_t outsz);

#endif /* APIKEY_TEXT_H */

/* logtext.c — client-supplied text on its way into a log line: escaped,
 * bounded, and withheld when it could be a key (a key typed at a user-name
 * prompt, a key in a URL path).  Used by every front end that logs what a
 * client sent. */
#include <stdio.h>
#include <string.h>
#include "internal.h"

/* Runs shorter than this are never judged secret by their character mix. */
#define MIX_RUN_MIN      16
/* A long token with this many distinct characters is judged random. */
#define SPREAD_RUN_MIN   32
#define SPREAD_DISTINCT  22
/* A prefix followed by this many key characters is a key, even a broken one. */
#define PREFIX_TAIL_MIN  8

static bool key_char(unsigned char c)
{
	return ascii_alnum(c) || c == '-';
}

/* A run of [A-Za-z0-9+/]: base62, hex, base36 and base64 bodies. */
static bool mix_char(unsigned char c)
{
	return ascii_alnum(c) || c == '+' || c == '/';
}

/* token68 plus '.', '~': what a random token may be written in */
static bool token_char(unsigned char c)
{
	return mix_char(c) || c == '=' || c == '_' || c == '.' || c == '~' || c == '-';
}

static bool hex_char(unsigned char c)
{
	return ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Is a profile prefix, followed by PREFIX_TAIL_MIN key characters, in s? */
static bool has_prefixed_key(const struct apikey_format *f, const char *s, size_t n)
{
	const char *pre[1 + APIKEY_LEGACY_MAX];
	unsigned np = 0;

	if (!f)
		return false;
	pre[np++] = f->prefix;
	for (unsigned i = 0; i < f->n_legacy && i < APIKEY_LEGACY_MAX; i++)
		pre[np++] = f->legacy[i];
	for (unsigned k = 0; k < np; k++) {
		size_t pl = strnlen(pre[k], APIKEY_PREFIX_MAX + 1);
		if (pl == 0 || pl > n)
			continue;
		for (size_t i = 0; i + pl <= n; i++) {
			size_t t = 0;
			if (memcmp(s + i, pre[k], pl) != 0)
				continue;
			while (i + pl + t < n && key_char((unsigned char)s[i + pl + t]))
				t++;
			if (t >= PREFIX_TAIL_MIN)
				return true;
		}
	}
	return false;
}

/* 8-4-4-4-12 hex digits starting at s (n bytes available)? */
static bool uuid_at(const char *s, size_t n)
{
	if (n < 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !hex_char((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* A run that mixes digits with letters (two of each at least), or upper
 * with lower case evenly (not CamelCaseWords): what random base62, hex or
 * base64 looks like. */
static bool mixed(const char *s, size_t n)
{
	size_t d = 0, u = 0, l = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		d += ascii_digit(c);
		u += ascii_upper(c);
		l += ascii_lower(c);
	}
	if (d >= 2 && u + l >= 2)
		return true;
	return u * 5 >= n && l * 5 >= n;
}

static size_t distinct(const char *s, size_t n)
{
	bool seen[256] = { false };
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!seen[c]) {
			seen[c] = true;
			k++;
		}
	}
	return k;
}

bool apikey_text_keylike(const struct apikey_format *f, const char *s, size_t n)
{
	size_t i, j;

	if (!s || n == 0)
		return false;
	if (f && apikey_token_parse(f, s, n) == 0)
		return true;
	if (has_prefixed_key(f, s, n))
		return true;
	for (i = 0; i < n; i++)
		if (uuid_at(s + i, n - i))
			return true;
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && mix_char((unsigned char)s[j]); j++)
			;
		if (j - i >= MIX_RUN_MIN && mixed(s + i, j - i))
			return true;
		if (j == i)
			j++;
	}
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && token_char((unsigned char)s[j]); j++)
			;
		if (j - i >= SPREAD_RUN_MIN && distinct(s + i, j - i) >= SPREAD_DISTINCT)
			return true;
		if (j == i)
			j++;
	}
	return false;
}

const char *apikey_log_escape(const char *s, size_t n, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (outsz == 0)
		return out;
	for (i = 0; i < n && i < APIKEY_LOG_TEXT_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[4];
		size_t k = 0;

		if (c == '\\' || c == '"') {
			e[k++] = '\\';
			e[k++] = (char)c;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			e[k++] = '\\';
			e[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else if (c >= 0x20 && c < 0x7f) {
			e[k++] = (char)c;
		} else {
			e[k++] = '\\';
			e[k++] = 'x';
			e[k++] = hex[c >> 4];
			e[k++] = hex[c & 15];
		}
		/* room for this byte, and for a later "..." and the NUL */
		if (o + k + 4 > outsz)
			break;
		memcpy(out + o, e, k);
		o += k;
	}
	if (i < n && o + 4 <= outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o < outsz ? o : outsz - 1] = '\0';
	return out;
}

const char *apikey_log_text(const struct apikey_format *f, const char *s, size_t n, const char *what,
                            char *out, size_t outsz)
{
	if (outsz == 0)
		return out;
	if (!s) {
		snprintf(out, outsz, "-");
		return out;
	}
	if (apikey_text_keylike(f, s, n)) {
		snprintf(out, outsz, "<key-like %s withheld>", what && what[0] ? what : "text");
		return out;
	}
	return apikey_log_escape(s, n, out, outsz);
}

/* render.c — refusal bodies (SPEC §10, apikey.conf(5) COMPATIBLE ANSWERS):
 * compiling error_template= and error_message.X= into pieces when the
 * configuration is loaded, checking there that every body they can render
 * is one JSON object within APIKEY_ERROR_BODY_MAX bytes, and rendering a
 * body — the one renderer every front end calls — by copying pieces.
 *
 * The template is text, not a JSON tree: the operator's bytes (spacing
 * included) are sent as written.  Values go in JSON-escaped; the only value
 * that changes per request is the missing scope, escaped as it is copied.
 * jansson checks the result at load time; nothing here parses JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "internal.h"

enum { SEG_LIT = 0, SEG_CODE, SEG_MESSAGE, SEG_STATUS, SEG_SCOPE };

#define DEFAULT_TEMPLATE "{\"error\":\"${message}\",\"code\":\"${code}\",\"status\":${status}}"
#define PLACEHOLDER_NAME_MAX 32   /* a ${name} quoted in an error message */

static const char *const seg_names[] = {
	[SEG_CODE] = "code", [SEG_MESSAGE] = "message", [SEG_STATUS] = "status", [SEG_SCOPE] = "scope",
};

/* ---- JSON escaping of values ------------------------------------------------ */

/* Length of the UTF-8 sequence at s (n bytes left), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and beyond U+10FFFF are not UTF-8 */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0, l; i < n; i += l)
		if (!(l = utf8_len((const unsigned char *)s + i, n - i)))
			return false;
	return true;
}

/* Escape n bytes of s for the inside of a JSON string into out (outsz
 * bytes, NUL-terminated): '"' and '\' escaped, control characters as
 * \u00XX, bytes that are not UTF-8 as '?'.  Stops before a character that
 * would not fit whole.  Returns the length written. */
static size_t json_escape(const char *s, size_t n, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t used = 0;

	if (!outsz)
		return 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		const char *piece = esc;
		size_t plen, step = 1;

		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c, plen = 2;
		} else if (ascii_control(c)) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4], esc[5] = hex[c & 15], plen = 6;
		} else if (c < 0x80) {
			esc[0] = (char)c, plen = 1;
		} else if ((step = utf8_len((const unsigned char *)s + i, n - i)) != 0) {
			piece = s + i, plen = step;
		} else {
			esc[0] = '?', plen = 1, step = 1;
		}
		if (used + plen >= outsz)
			break;
		memcpy(out + used, piece, plen);
		used += plen;
		i += step;
	}
	out[used] = '\0';
	return used;
}

size_t apikey_json_ascii(const char *in, size_t len, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t used = 0;

	if (!outsz)
		return 0;
	for (size_t i = 0; i < len;) {
		const unsigned char *s = (const unsigned char *)in + i;
		size_t l = utf8_len(s, len - i), plen;
		char piece[12];
		uint32_t cp;

		if (l == 1 && s[0] == 0x7f) {
			/* DEL may stand in a JSON string as it is; a header may not hold it */
			memcpy(piece, "\\u007f", 6);
			plen = 6;
		} else if (l == 1) {
			/* a control character below 0x20 can only be JSON whitespace here */
			piece[0] = s[0] < ' ' ? ' ' : (char)s[0];
			plen = 1;
		} else if (l == 0) {
			piece[0] = '?', plen = 1, l = 1;
		} else {
			cp = s[0] & (l == 2 ? 0x1f : l == 3 ? 0x0f : 0x07);
			for (size_t k = 1; k < l; k++)
				cp = (cp << 6) | (s[k] & 0x3f);
			plen = 0;
			if (cp >= 0x10000) {   /* a surrogate pair */
				uint32_t v = cp - 0x10000, hi = 0xd800 | (v >> 10);
				memcpy(piece, "\\u", 2);
				for (int k = 0; k < 4; k++)
					piece[2 + k] = hex[(hi >> (12 - 4 * k)) & 15];
				plen = 6;
				cp = 0xdc00 | (v & 0x3ff);
			}
			memcpy(piece + plen, "\\u", 2);
			for (int k = 0; k < 4; k++)
				piece[plen + 2 + k] = hex[(cp >> (12 - 4 * k)) & 15];
			plen += 6;
		}
		if (used + plen >= outsz)
			break;
		memcpy(out + used, piece, plen);
		used += plen;
		i += l;
	}
	out[used] = '\0';
	return used;
}

/* ---- compiling ------------------------------------------------------------------ */

/* Append a piece to a segment list; literals are merged with the one before. */
static int add_seg(struct apikey_answer_seg *seg, unsigned max, unsigned *n, uint8_t kind, size_t off,
                   size_t len)
{
	if (kind == SEG_LIT && len == 0)
		return 0;
	if (kind == SEG_LIT && *n && seg[*n - 1].kind == SEG_LIT && seg[*n - 1].off + seg[*n - 1].len == off) {
		seg[*n - 1].len = (uint16_t)(seg[*n - 1].len + len);
		return 0;
	}
	if (*n == max)
		return APIKEY_ERR_TOO_LONG;
	seg[(*n)++] = (struct apikey_answer_seg){ (uint16_t)off, (uint16_t)len, kind };
	return 0;
}

/*
 * Compile src (what: the option's name, for messages) into segments over
 * text.  allowed: a bit per SEG_* kind.  escape: literals are JSON-escaped
 * as they are stored (a message's text goes inside a JSON string).
 */
static int compile(const char *what, const char *src, unsigned allowed, bool escape,
                   char *text, size_t textsz, struct apikey_answer_seg *seg, unsigned max, unsigned *n,
                   char *err, size_t errsz)
{
	size_t used = 0;

	*n = 0;
	for (const char *p = src; *p;) {
		const char *lit = p;
		size_t litlen;

		if (p[0] == '$' && p[1] == '{') {
			const char *name = p + 2, *end = name;
			int kind = -1;

			while (ascii_lower((unsigned char)*end) || *end == '_')
				end++;
			if (*end != '}') {
				snprintf(err, errsz, "%s: unterminated placeholder (write $$ for a literal $)", what);
				return APIKEY_ERR_CONFIG;
			}
			for (int k = SEG_CODE; k <= SEG_SCOPE; k++)
				if ((size_t)(end - name) == strlen(seg_names[k]) &&
				    !memcmp(name, seg_names[k], (size_t)(end - name)))
					kind = k;
			if (kind == SEG_MESSAGE && !(allowed & (1u << SEG_MESSAGE))) {
				snprintf(err, errsz, "%s: ${message} cannot be used in a message", what);
				return APIKEY_ERR_CONFIG;
			}
			if (kind < 0 || !(allowed & (1u << kind))) {
				char known[64] = "";
				for (int k = SEG_CODE; k <= SEG_SCOPE; k++)
					if (allowed & (1u << k)) {
						size_t kl = strlen(known);
						snprintf(known + kl, sizeof(known) - kl, "%s${%s}", kl ? " " : "", seg_names[k]);
					}
				snprintf(err, errsz, "%s: unknown placeholder ${%.*s} (known: %s; $$ for $)", what,
				         (int)(end - name > PLACEHOLDER_NAME_MAX ? PLACEHOLDER_NAME_MAX : end - name),
				         name, known);
				return APIKEY_ERR_CONFIG;
			}
			if (add_seg(seg, max, n, (uint8_t)kind, 0, 0) != 0)
				goto too_many;
			p = end + 1;
			continue;
		}
		/* a literal run: up to the next "${"; "$$" stands for one '$' */
		if (p[0] == '$' && p[1] == '$') {
			litlen = 1;
			p += 2;
		} else {
			litlen = 1;
			p++;
			while (*p && *p != '$') {
				p++;
				litlen++;
			}
		}
		{
			char esc[2 * APIKEY_LINE_MAX + 1];
			const char *piece = lit;
			size_t plen = litlen;

			if (escape) {
				plen = json_escape(lit, litlen, esc, sizeof(esc));
				piece = esc;
			}
			if (used + plen >= textsz) {
				snprintf(err, errsz, "%s: too long", what);
				return APIKEY_ERR_CONFIG;
			}
			memcpy(text + used, piece, plen);
			if (add_seg(seg, max, n, SEG_LIT, used, plen) != 0)
				goto too_many;
			used += plen;
		}
	}
	text[used] = '\0';
	return 0;
too_many:
	snprintf(err, errsz, "%s: more than %u pieces (placeholders and the text between them)", what, max);
	return APIKEY_ERR_CONFIG;
}

/* ---- rendering --------------------------------------------------------------------- */

/* Bytes are written while they fit in cap; *used counts them all, so a
 * caller learns the length a body would have. */
static void put(char *out, size_t cap, size_t *used, const char *s, size_t n)
{
	if (*used < cap)
		memcpy(out + *used, s, *used + n <= cap ? n : cap - *used);
	*used += n;
}

struct values {
	const char *code;
	const struct apikey_answer_seg *mseg;   /* a compiled message, or */
	unsigned n_mseg;
	const char *mtext;                      /* its text / a run-time message, escaped */
	char status[12];
	const char *scope;                      /* escaped */
};

static void put_message(char *out, size_t cap, size_t *used, const struct values *v)
{
	if (!v->mseg) {
		put(out, cap, used, v->mtext, strlen(v->mtext));
		return;
	}
	for (unsigned i = 0; i < v->n_mseg; i++) {
		const struct apikey_answer_seg *g = &v->mseg[i];
		switch (g->kind) {
		case SEG_LIT:    put(out, cap, used, v->mtext + g->off, g->len); break;
		case SEG_CODE:   put(out, cap, used, v->code, strlen(v->code)); break;
		case SEG_STATUS: put(out, cap, used, v->status, strlen(v->status)); break;
		case SEG_SCOPE:  put(out, cap, used, v->scope, strlen(v->scope)); break;
		}
	}
}

/* The body into out (cap bytes of room, NUL at min(len, cap)); returns the
 * length it has, which may exceed cap. */
static size_t render(const struct apikey_answers *a, const struct values *v, char *out, size_t cap)
{
	size_t used = 0;

	for (unsigned i = 0; i < a->n_seg && i < APIKEY_ANSWER_SEGS; i++) {
		const struct apikey_answer_seg *g = &a->seg[i];
		switch (g->kind) {
		case SEG_LIT:     put(out, cap, &used, a->text + g->off, g->len); break;
		case SEG_CODE:    put(out, cap, &used, v->code, strlen(v->code)); break;
		case SEG_MESSAGE: put_message(out, cap, &used, v); break;
		case SEG_STATUS:  put(out, cap, &used, v->status, strlen(v->status)); break;
		case SEG_SCOPE:   put(out, cap, &used, v->scope, strlen(v->scope)); break;
		}
	}
	out[used < cap ? used : cap] = '\0';
	return used;
}

static unsigned outcome_row(enum apikey_outcome o)
{
	return (unsigned)o < APIKEY_OUTCOME_COUNT ? (unsigned)o : APIKEY_UNAVAILABLE;
}

static void outcome_values(const struct apikey_answers *a, unsigned o, const char *scope, struct values *v)
{
	v->code = a->outcome[o].code;
	v->mseg = a->outcome[o].seg;
	v->n_mseg = a->outcome[o].n_seg;
	v->mtext = a->outcome[o].text;
	snprintf(v->status, sizeof(v->status), "%d", apikey_outcome_http_status((enum apikey_outcome)o));
	v->scope = scope;
}

bool apikey_answers_templated(const struct apikey_answers *a)
{
	return a->templated;
}

const char *apikey_answer_code(const struct apikey_answers *a, enum apikey_outcome o)
{
	return a->outcome[outcome_row(o)].code;
}

size_t apikey_answer_render(const struct apikey_answers *a, enum apikey_outcome o, const char *scope,
                            char out[APIKEY_ERROR_BODY_MAX + 1])
{
	char esc[6 * APIKEY_SCOPE_SIZE];
	struct values v;
	size_t n = scope ? strnlen(scope, APIKEY_SCOPE_SIZE - 1) : 0, len;

	json_escape(scope ? scope : "", n, esc, sizeof(esc));
	outcome_values(a, outcome_row(o), esc, &v);
	len = render(a, &v, out, APIKEY_ERROR_BODY_MAX);
	return len < APIKEY_ERROR_BODY_MAX ? len : APIKEY_ERROR_BODY_MAX;
}

static bool code_valid(const char *c, size_t n)
{
	if (n == 0 || n >= APIKEY_ERROR_CODE_SIZE)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(ascii_alnum((unsigned char)c[i]) || c[i] == '_' || c[i] == '.' || c[i] == '-'))
			return false;
	return true;
}

size_t apikey_answer_render_error(const struct apikey_answers *a, const char *code, const char *message,
                                  int status, char out[APIKEY_ERROR_BODY_MAX + 1])
{
	char msg[APIKEY_ERROR_MESSAGE_MAX + 1];
	struct values v = { .code = code && code_valid(code, strlen(code)) ? code : "INTERNAL",
	                    .mtext = msg, .scope = "" };
	size_t len;

	json_escape(message ? message : "", message ? strlen(message) : 0, msg, sizeof(msg));
	snprintf(v.status, sizeof(v.status), "%d", status);
	len = render(a, &v, out, APIKEY_ERROR_BODY_MAX);
	return len < APIKEY_ERROR_BODY_MAX ? len : APIKEY_ERROR_BODY_MAX;
}

/* ---- the configuration's options ---------------------------------------------------- */

#define TEMPLATE_KINDS ((1u << SEG_CODE) | (1u << SEG_MESSAGE) | (1u << SEG_STATUS) | (1u << SEG_SCOPE))
#define MESSAGE_KINDS  ((1u << SEG_CODE) | (1u << SEG_STATUS) | (1u << SEG_SCOPE))

/* Is what a renders, for every outcome and for a request error, one JSON
 * object (jansson, duplicate members refused)?  Bodies are rendered in
 * full, whatever their length: the bound is answers_check_size's. */
static int check_json(const struct apikey_answers *a, char *err, size_t errsz)
{
	static const char *const scopes[] = { "", "x:y" };
	char msg[APIKEY_ERROR_MESSAGE_MAX + 1];
	size_t cap = 64 * 1024;
	char *buf = malloc(cap + 1);
	int r = 0;

	if (!buf)
		return snprintf(err, errsz, "error_template: out of memory"), APIKEY_ERR_NOMEM;
	memset(msg, 'm', APIKEY_ERROR_MESSAGE_MAX);
	msg[APIKEY_ERROR_MESSAGE_MAX] = '\0';
	for (unsigned o = APIKEY_MISSING_KEY; o <= APIKEY_OUTCOME_COUNT && r == 0; o++) {
		for (unsigned k = 0; k < 2 && r == 0; k++) {
			struct values v;
			json_error_t jerr;
			json_t *j;
			size_t len;

			if (o < APIKEY_OUTCOME_COUNT) {
				outcome_values(a, o, scopes[k], &v);
			} else {     /* a request error: our code, a run-time message */
				v = (struct values){ .code = "BAD_REQUEST", .mtext = msg, .status = "400", .scope = "" };
				if (k)
					break;
			}
			len = render(a, &v, buf, cap);
			if (len > cap)
				continue;        /* far too long: answers_check_size says so */
			j = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
			if (!j) {
				if (json_error_code(&jerr) == json_error_duplicate_key)
					snprintf(err, errsz, "error_template: not valid JSON after substitution: "
					         "duplicate member (byte %d of the body)", jerr.position);
				else
					snprintf(err, errsz, "error_template: not valid JSON after substitution: "
					         "%s (byte %d of the body)", jerr.text, jerr.position);
				r = APIKEY_ERR_CONFIG;
			} else if (!json_is_object(j)) {
				snprintf(err, errsz, "error_template: must be a JSON object");
				r = APIKEY_ERR_CONFIG;
			}
			json_decref(j);
		}
	}
	free(buf);
	return r;
}

int answers_set_template(struct apikey_answers *a, const char *val, char *err, size_t errsz)
{
	struct apikey_answers *next;
	int r;

	if (!val || !val[0])
		return snprintf(err, errsz, "error_template: needs a value"), APIKEY_ERR_CONFIG;
	if (!(next = malloc(sizeof(*next))))
		return snprintf(err, errsz, "error_template: out of memory"), APIKEY_ERR_NOMEM;
	*next = *a;
	r = compile("error_template", val, TEMPLATE_KINDS, false, next->text, sizeof(next->text), next->seg,
	            APIKEY_ANSWER_SEGS, &next->n_seg, err, errsz);
	if (r == 0)
		r = check_json(next, err, errsz);
	if (r == 0) {
		next->templated = true;
		*a = *next;
	}
	free(next);
	return r;
}

int answers_set_code(struct apikey_answers *a, enum apikey_outcome o, const char *val, char *err,
                     size_t errsz)
{
	const char *name = apikey_outcome_code(o);

	if (!val || !val[0])
		return snprintf(err, errsz, "error_code.%s: needs a value", name), APIKEY_ERR_CONFIG;
	if (!code_valid(val, strlen(val)))
		return snprintf(err, errsz, "error_code.%s: must be 1-63 of [A-Za-z0-9_.-]", name),
		       APIKEY_ERR_CONFIG;
	memcpy(a->outcome[o].code, val, strlen(val) + 1);
	return 0;
}

int answers_set_message(struct apikey_answers *a, enum apikey_outcome o, const char *val, char *err,
                        size_t errsz)
{
	char what[48];
	size_t n = val ? strlen(val) : 0;
	struct apikey_answer_outcome next;

	snprintf(what, sizeof(what), "error_message.%s", apikey_outcome_code(o));
	if (n == 0)
		return snprintf(err, errsz, "%s: needs a value", what), APIKEY_ERR_CONFIG;
	if (n > APIKEY_ERROR_MESSAGE_MAX)
		return snprintf(err, errsz, "%s: longer than %d bytes", what, APIKEY_ERROR_MESSAGE_MAX),
		       APIKEY_ERR_CONFIG;
	for (size_t i = 0; i < n; i++)
		if (ascii_control((unsigned char)val[i]))
			return snprintf(err, errsz, "%s: control characters are not allowed", what),
			       APIKEY_ERR_CONFIG;
	if (!utf8_valid(val, n))
		return snprintf(err, errsz, "%s: not valid UTF-8", what), APIKEY_ERR_CONFIG;
	next = a->outcome[o];
	if (compile(what, val, MESSAGE_KINDS, true, next.text, sizeof(next.text), next.seg, APIKEY_MESSAGE_SEGS,
	            &next.n_seg, err, errsz) != 0)
		return APIKEY_ERR_CONFIG;
	a->outcome[o] = next;
	return 0;
}

int answers_check_size(const struct apikey_answers *a, char *err, size_t errsz)
{
	char scope[APIKEY_SCOPE_SIZE], code[APIKEY_ERROR_CODE_SIZE], msg[APIKEY_ERROR_MESSAGE_MAX + 1];
	char body[APIKEY_ERROR_BODY_MAX + 1];
	struct values v;

	/* the longest scope a request can name; scopes need no escaping */
	memset(scope, 's', sizeof(scope) - 1);
	scope[sizeof(scope) - 1] = '\0';
	for (unsigned o = APIKEY_MISSING_KEY; o < APIKEY_OUTCOME_COUNT; o++) {
		outcome_values(a, o, scope, &v);
		if (render(a, &v, body, APIKEY_ERROR_BODY_MAX) > APIKEY_ERROR_BODY_MAX) {
			snprintf(err, errsz, "error_template: renders to more than %d bytes (outcome %s)",
			         APIKEY_ERROR_BODY_MAX, apikey_outcome_code((enum apikey_outcome)o));
			return APIKEY_ERR_CONFIG;
		}
	}
	memset(code, 'C', sizeof(code) - 1);
	code[sizeof(code) - 1] = '\0';
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	v = (struct values){ .code = code, .mtext = msg, .status = "503", .scope = "" };
	if (render(a, &v, body, APIKEY_ERROR_BODY_MAX) > APIKEY_ERROR_BODY_MAX) {
		snprintf(err, errsz, "error_template: renders to more than %d bytes (request errors, "
		         "with a %d-byte message)", APIKEY_ERROR_BODY_MAX, APIKEY_ERROR_MESSAGE_MAX);
		return APIKEY_ERR_CONFIG;
	}
	return 0;
}

void apikey_answers_default(struct apikey_answers *a)
{
	char err[APIKEY_WHY_SIZE];

	memset(a, 0, sizeof(*a));
	/* the defaults compile: SPEC §3's body and the outcome table's words */
	compile("error_template", DEFAULT_TEMPLATE, TEMPLATE_KINDS, false, a->text, sizeof(a->text), a->seg,
	        APIKEY_ANSWER_SEGS, &a->n_seg, err, sizeof(err));
	for (unsigned o = 0; o < APIKEY_OUTCOME_COUNT; o++) {
		const char *code = apikey_outcome_code((enum apikey_outcome)o);
		const char *msg = apikey_outcome_message((enum apikey_outcome)o);
		memcpy(a->outcome[o].code, code, strlen(code) + 1);
		compile("error_message", msg, MESSAGE_KINDS, true, a->outcome[o].text, sizeof(a->outcome[o].text),
		        a->outcome[o].seg, APIKEY_MESSAGE_SEGS, &a->outcome[o].n_seg, err, sizeof(err));
	}
}

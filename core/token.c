/* token.c — key format profiles: issuing keys and checking their shape. */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <zlib.h>
#include "internal.h"

static const char BASE62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
#define UUID_LEN 36

static const char *alphabet_chars(enum apikey_alphabet a, unsigned *radix)
{
	switch (a) {
	case APIKEY_ALPHA_BASE62:      *radix = 62; return BASE62;
	case APIKEY_ALPHA_BASE36LOWER: *radix = 36; return "0123456789abcdefghijklmnopqrstuvwxyz";
	case APIKEY_ALPHA_HEX:
	case APIKEY_ALPHA_UUID:        *radix = 16; return "0123456789abcdef";
	}
	*radix = 0;
	return NULL;
}

/* Position of c in the alphabet, or -1; branch-free tables are not needed:
 * a key's shape is public, only its value is secret. */
static int digit_value(enum apikey_alphabet a, unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z') {
		int v = (a == APIKEY_ALPHA_BASE62 ? 36 : 10) + (c - 'a');
		return (a == APIKEY_ALPHA_BASE62 || a == APIKEY_ALPHA_BASE36LOWER || c <= 'f') ? v : -1;
	}
	if (c >= 'A' && c <= 'Z' && a == APIKEY_ALPHA_BASE62)
		return 10 + (c - 'A');
	return -1;
}

unsigned apikey_checksum_len(enum apikey_alphabet a)
{
	switch (a) {
	case APIKEY_ALPHA_BASE62:      return 6;  /* 62^6 > 2^32 */
	case APIKEY_ALPHA_BASE36LOWER: return 7;  /* 36^7 > 2^32 */
	case APIKEY_ALPHA_HEX:         return 8;
	case APIKEY_ALPHA_UUID:        return 0;
	}
	return 0;
}

void apikey_format_default(struct apikey_format *f)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->prefix, "ak_", 4);
	f->alphabet = APIKEY_ALPHA_BASE62;
	f->body_len = 36;
	f->checksum = true;
}

static bool prefix_valid(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > APIKEY_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!(ascii_alnum(c) || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Bits of randomness a profile's keys carry: at least 64 are required. */
static unsigned random_bits(const struct apikey_format *f)
{
	unsigned radix, rnd;

	if (f->alphabet == APIKEY_ALPHA_UUID)
		return 122;
	alphabet_chars(f->alphabet, &radix);
	rnd = f->body_len - (f->checksum ? apikey_checksum_len(f->alphabet) : 0);
	/* log2(62) ~ 5.95, log2(36) ~ 5.17: round down */
	return rnd * (radix == 62 ? 595 : radix == 36 ? 517 : 400) / 100;
}

int apikey_format_validate(const struct apikey_format *f)
{
	unsigned cks = f->checksum ? apikey_checksum_len(f->alphabet) : 0;
	unsigned radix;

	if (!alphabet_chars(f->alphabet, &radix) || !prefix_valid(f->prefix))
		return APIKEY_ERR_CONFIG;
	if (f->alphabet == APIKEY_ALPHA_UUID) {
		if (f->checksum || f->body_len != UUID_LEN)
			return APIKEY_ERR_CONFIG;
	} else if (f->body_len <= cks || random_bits(f) < 64) {
		return APIKEY_ERR_CONFIG;
	}
	if (f->n_legacy > APIKEY_LEGACY_MAX)
		return APIKEY_ERR_CONFIG;
	for (unsigned i = 0; i < f->n_legacy; i++)
		if (!prefix_valid(f->legacy[i]) ||
		    strlen(f->legacy[i]) + f->body_len > APIKEY_KEY_MAX)
			return APIKEY_ERR_CONFIG;
	if (strlen(f->prefix) + f->body_len > APIKEY_KEY_MAX)
		return APIKEY_ERR_CONFIG;
	return 0;
}

static void checksum_encode(const struct apikey_format *f, const char *data, size_t len, char *out)
{
	unsigned radix, n = apikey_checksum_len(f->alphabet);
	const char *chars = alphabet_chars(f->alphabet, &radix);
	uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)data, (uInt)len);

	for (unsigned i = n; i-- > 0;) {   /* big-endian, fixed width */
		out[i] = chars[crc % radix];
		crc /= radix;
	}
}

/* Uniform characters from the CSPRNG by rejection sampling. */
static int random_chars(const char *chars, unsigned radix, char *out, size_t n)
{
	unsigned char buf[64];
	unsigned limit = 256 - (256 % radix);
	size_t have = 0;

	while (have < n) {
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			return APIKEY_ERR_CRYPTO;
		for (size_t i = 0; i < sizeof(buf) && have < n; i++)
			if (buf[i] < limit)
				out[have++] = chars[buf[i] % radix];
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

static int uuid_v4(char out[UUID_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t o = 0;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return APIKEY_ERR_CRYPTO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);  /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	OPENSSL_cleanse(b, sizeof(b));
	return 0;
}

int apikey_token_generate(const struct apikey_format *f, char *out, size_t outsz)
{
	size_t plen = strlen(f->prefix);
	unsigned cks = f->checksum ? apikey_checksum_len(f->alphabet) : 0;
	unsigned radix;
	const char *chars = alphabet_chars(f->alphabet, &radix);
	int r;

	if (apikey_format_validate(f) != 0)
		return APIKEY_ERR_CONFIG;
	if (outsz < plen + f->body_len + 1)
		return APIKEY_ERR_TOO_LONG;
	memcpy(out, f->prefix, plen);
	if (f->alphabet == APIKEY_ALPHA_UUID)
		r = uuid_v4(out + plen);
	else
		r = random_chars(chars, radix, out + plen, f->body_len - cks);
	if (r != 0)
		return r;
	if (cks)
		checksum_encode(f, out, plen + f->body_len - cks, out + plen + f->body_len - cks);
	out[plen + f->body_len] = '\0';
	return 0;
}

/* Length of the accepted prefix key starts with, or 0. */
static size_t match_prefix(const struct apikey_format *f, const char *key, size_t len)
{
	size_t n = strlen(f->prefix);

	if (len >= n && memcmp(key, f->prefix, n) == 0)
		return n;
	for (unsigned i = 0; i < f->n_legacy && i < APIKEY_LEGACY_MAX; i++) {
		n = strlen(f->legacy[i]);
		if (len >= n && memcmp(key, f->legacy[i], n) == 0)
			return n;
	}
	return 0;
}

static bool uuid_shape(const char *s)
{
	for (int i = 0; i < UUID_LEN; i++) {
		bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
		if (dash ? s[i] != '-' : digit_value(APIKEY_ALPHA_HEX, (unsigned char)s[i]) < 0)
			return false;
	}
	return true;
}

int apikey_token_parse(const struct apikey_format *f, const char *key, size_t len)
{
	size_t plen;
	unsigned cks = f->checksum ? apikey_checksum_len(f->alphabet) : 0;
	const char *body;
	char want[8];

	if (!key || len == 0 || len > APIKEY_KEY_MAX)
		return APIKEY_ERR_MALFORMED;
	plen = match_prefix(f, key, len);
	if (plen == 0 || len - plen != f->body_len)
		return APIKEY_ERR_MALFORMED;
	body = key + plen;
	if (f->alphabet == APIKEY_ALPHA_UUID)
		return uuid_shape(body) ? 0 : APIKEY_ERR_MALFORMED;
	for (size_t i = 0; i < f->body_len; i++)
		if (digit_value(f->alphabet, (unsigned char)body[i]) < 0)
			return APIKEY_ERR_MALFORMED;
	if (cks) {
		checksum_encode(f, key, len - cks, want);
		if (memcmp(want, key + len - cks, cks) != 0)
			return APIKEY_ERR_MALFORMED;
	}
	return 0;
}

bool apikey_token_importable(const struct apikey_format *f, const char *key, size_t len)
{
	if (!key || len == 0 || len > APIKEY_KEY_MAX || match_prefix(f, key, len) == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] <= ' ' || (unsigned char)key[i] >= 0x7f)
			return false;
	return true;
}

enum apikey_outcome apikey_precheck(const struct apikey_format *f, const char *key, size_t len)
{
	if (!key || len == 0)
		return APIKEY_MISSING_KEY;
	if (apikey_token_parse(f, key, len) != 0)
		return APIKEY_MALFORMED_KEY;
	return APIKEY_VALID;
}

void apikey_token_hint(const struct apikey_format *f, const char *key, size_t len,
                       char out[APIKEY_HINT_SIZE])
{
	size_t plen = match_prefix(f, key, len);
	size_t n = plen + 4;

	if (plen == 0)
		plen = strlen(f->prefix), n = plen + 4;
	if (n > len)
		n = len;
	if (n > APIKEY_HINT_SIZE - 1)
		n = APIKEY_HINT_SIZE - 1;
	memcpy(out, key, n);
	out[n] = '\0';
}

int apikey_id_generate(char out[APIKEY_ID_SIZE])
{
	int r;

	memcpy(out, "key_", 4);
	r = random_chars(BASE62, 62, out + 4, APIKEY_ID_LEN - 4);
	out[APIKEY_ID_LEN] = '\0';
	return r;
}

bool apikey_id_valid(const char *id)
{
	size_t n = id ? strnlen(id, APIKEY_ID_SIZE) : 0;

	if (n != APIKEY_ID_LEN || memcmp(id, "key_", 4) != 0)
		return false;
	for (size_t i = 4; i < n; i++)
		if (!ascii_alnum((unsigned char)id[i]))
			return false;
	return true;
}

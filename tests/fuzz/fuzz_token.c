/* fuzz_token.c — libFuzzer target for the key parser: any bytes, under every
 * profile shape, must be accepted or refused without a crash, and anything
 * accepted must round-trip through the hint. */
#include <stdint.h>
#include <string.h>
#include "apikey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct { const char *prefix; enum apikey_alphabet a; unsigned len; bool cks; } shapes[] = {
		{ "ak_", APIKEY_ALPHA_BASE62, 36, true },
		{ "clw_", APIKEY_ALPHA_BASE36LOWER, 32, false },
		{ "cu_", APIKEY_ALPHA_UUID, 36, false },
		{ "cg_", APIKEY_ALPHA_HEX, 32, true },
	};
	struct apikey_format f;
	char hint[APIKEY_HINT_SIZE];

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		apikey_format_default(&f);
		memcpy(f.prefix, shapes[i].prefix, strlen(shapes[i].prefix) + 1);
		f.alphabet = shapes[i].a;
		f.body_len = shapes[i].len;
		f.checksum = shapes[i].cks;
		memcpy(f.legacy[0], "eb_", 4);
		f.n_legacy = 1;
		if (apikey_token_parse(&f, (const char *)data, size) == 0) {
			apikey_token_hint(&f, (const char *)data, size, hint);
			if (strlen(hint) > size || memcmp(hint, data, strlen(hint)) != 0)
				__builtin_trap();
		}
	}
	return 0;
}

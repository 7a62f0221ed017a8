/* fuzz_import.c — libFuzzer target for apikeyctl's import line parser
 * (cli/import_parse.c): any bytes are a parsed line or a reason, never a
 * crash or a leak, and whatever is accepted passes the core's own checks. */
#include <stdint.h>
#include <string.h>
#include "../../cli/import_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct apikey_config cfg;   /* the default profile: a global, it is ~60 kB */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct import_line il;
	char why[IMPORT_WHY_SIZE];
	int r;

	if (!cfg.db_path[0])
		apikey_config_defaults(&cfg);
	r = import_parse_line(&cfg, (const char *)data, size, &il, why, sizeof(why));
	if (r == 0) {
		size_t hl = strlen(il.p.hint);
		if (!il.p.hash || !il.p.owner || !il.p.scopes || !il.p.scopes[0] || hl < 6 || hl > 16 ||
		    apikey_import_check(&cfg, &il.p, NULL, 0) != 0)
			__builtin_trap();
		import_line_free(&il);
	} else if (r == APIKEY_ERR_INVALID) {
		if (!why[0] || strlen(why) >= sizeof(why))   /* every refusal says why */
			__builtin_trap();
	} else if (r != APIKEY_ERR_NOT_FOUND) {
		__builtin_trap();
	}
	return 0;
}

/* fill.c — create N native keys in one batch, for benchmarks: prints one of
 * them (the first) so a benchmark has a valid key to present.
 * usage: apikey-fill DB N [OWNER [SCOPES [RATE]]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "apikey.h"

#define BATCH 50000

static void log_stderr(void *ctx, int prio, const char *msg)
{
	(void)ctx; (void)prio;
	fprintf(stderr, "apikey-fill: %s\n", msg);
}

int main(int argc, char **argv)
{
	struct apikey_create_params p = { .owner = "bench", .scopes = "bench:read,pam:bench",
	                                  .rate_limit = APIKEY_RATE_MAX };
	struct apikey_actor actor = { .source = "bench" };
	char key[APIKEY_KEY_MAX + 1], first[APIKEY_KEY_MAX + 1] = "";
	struct apikey_config cfg;
	struct apikey_store *s;
	unsigned long long n, rate;
	int r;

	if (argc < 3 || apikey_parse_uint(argv[2], 1, 100000000, &n) != 0) {
		fprintf(stderr, "usage: apikey-fill DB N [OWNER [SCOPES [RATE]]]\n");
		return 2;
	}
	if (argc > 3)
		p.owner = argv[3];
	if (argc > 4)
		p.scopes = argv[4];
	if (argc > 5 && apikey_parse_uint(argv[5], 1, APIKEY_RATE_MAX, &rate) == 0)
		p.rate_limit = (uint32_t)rate;
	apikey_config_defaults(&cfg);
	snprintf(cfg.db_path, sizeof(cfg.db_path), "%s", argv[1]);
	if ((r = apikey_store_open(&s, &cfg, log_stderr, NULL)) != 0) {
		fprintf(stderr, "apikey-fill: %s\n", apikey_strerror(r));
		return 1;
	}
	for (unsigned long long i = 0; i < n; i += BATCH) {
		if ((r = apikey_import_begin(s)) != 0)
			break;
		for (unsigned long long j = i; j < n && j < i + BATCH && r == 0; j++) {
			r = apikey_key_create(s, &p, &actor, key, sizeof(key), NULL);
			if (r == 0 && !first[0])
				memcpy(first, key, sizeof(first));
		}
		if (r != 0) {
			apikey_import_rollback(s);
			break;
		}
		if ((r = apikey_import_commit(s)) != 0)
			break;
	}
	apikey_store_free(s);
	if (r != 0) {
		fprintf(stderr, "apikey-fill: %s\n", apikey_strerror(r));
		return 1;
	}
	printf("%s\n", first);
	return 0;
}

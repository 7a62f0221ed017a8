/* fuzz_config.c — libFuzzer target for the option grammar: every line of the
 * input goes through apikey_config_apply, then the file loader reads it all.
 * Whatever is accepted must leave a config whose strings are terminated and
 * whose numbers are in range. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "apikey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct apikey_config *c)
{
	if (c->busy_timeout_ms < 1 || c->busy_timeout_ms > APIKEY_BUSY_TIMEOUT_MS_MAX ||
	    c->default_rate_limit < APIKEY_RATE_MIN || c->default_rate_limit > APIKEY_RATE_MAX ||
	    c->n_listen > APIKEY_LISTEN_MAX || c->format.n_legacy > APIKEY_LEGACY_MAX ||
	    memchr(c->db_path, 0, sizeof(c->db_path)) == NULL ||
	    memchr(c->format.prefix, 0, sizeof(c->format.prefix)) == NULL)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct apikey_config c;
	char *text = malloc(size + 1), *line, *save = NULL, err[160], path[] = "/tmp/fuzz-conf.XXXXXX";
	int fd;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	apikey_config_defaults(&c);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		apikey_config_apply(&c, line, err, sizeof(err));
	check(&c);
	free(text);

	fd = mkstemp(path);
	if (fd >= 0) {
		if (write(fd, data, size) == (ssize_t)size) {
			apikey_config_defaults(&c);
			apikey_config_load(&c, path, NULL, NULL);
			check(&c);
			if (apikey_format_validate(&c.format) != 0)
				__builtin_trap();   /* load must fall back to a valid profile */
		}
		close(fd);
		unlink(path);
	}
	return 0;
}

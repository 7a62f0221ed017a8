/* fuzz_config.c — libFuzzer target for the option grammar: every line of the
 * input goes through apikey_config_apply (with a front end's bindings of
 * every value type), then the file loader reads it all.  Whatever is
 * accepted must leave settings whose strings are terminated and whose
 * numbers and counts are in range. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "apikey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A front end's settings, one field of each value type. */
struct fe {
	char listen[3][16];
	unsigned n_listen;
	unsigned threads;
	unsigned auth_error_body;
	char scope[APIKEY_SCOPES_SIZE];
	char key_header[8];          /* shorter than the grammar allows */
};
static const struct apikey_binding bindings[] = {
	APIKEY_BIND_LIST(struct fe, listen, n_listen, "listen"),
	APIKEY_BIND(struct fe, threads, "threads", APIKEY_OPT_UINT),
	APIKEY_BIND(struct fe, auth_error_body, "auth_error_body", APIKEY_OPT_CHOICE),
	APIKEY_BIND(struct fe, scope, "scope", APIKEY_OPT_SCOPES),
	APIKEY_BIND(struct fe, key_header, "key_header", APIKEY_OPT_TEXT),
};

static void check(const struct apikey_config *c, const struct fe *f)
{
	if (c->busy_timeout_ms < 1 || c->busy_timeout_ms > APIKEY_BUSY_TIMEOUT_MS_MAX ||
	    c->default_rate_limit < APIKEY_RATE_MIN || c->default_rate_limit > APIKEY_RATE_MAX ||
	    c->format.n_legacy > APIKEY_LEGACY_MAX ||
	    memchr(c->db_path, 0, sizeof(c->db_path)) == NULL ||
	    memchr(c->format.prefix, 0, sizeof(c->format.prefix)) == NULL)
		__builtin_trap();
	if (c->profile.n_catalogue > APIKEY_CATALOGUE_MAX || c->profile.n_presets > APIKEY_PROFILE_PRESETS ||
	    c->profile.n_tiers > APIKEY_TIERS_MAX || c->profile.answers.n_seg > APIKEY_ANSWER_SEGS)
		__builtin_trap();
	for (unsigned i = 0; i < c->profile.n_presets; i++)
		if (!c->profile.presets[i].scopes[0] || !memchr(c->profile.presets[i].name, 0, APIKEY_PRESET_SIZE))
			__builtin_trap();
	if (f->n_listen > 3 || f->threads > 256 || f->auth_error_body > 2 ||
	    memchr(f->key_header, 0, sizeof(f->key_header)) == NULL ||
	    memchr(f->scope, 0, sizeof(f->scope)) == NULL)
		__builtin_trap();
	for (unsigned i = 0; i < f->n_listen; i++)
		if (!f->listen[i][0] || memchr(f->listen[i], 0, sizeof(f->listen[i])) == NULL)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct apikey_config c;   /* ~60 kB: not on the stack */
	struct fe f;
	struct apikey_settings fe = { bindings, sizeof(bindings) / sizeof(bindings[0]), &f };
	char *text = malloc(size + 1), *line, *save = NULL, err[160], path[] = "/tmp/fuzz-conf.XXXXXX";
	int fd;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	apikey_config_defaults(&c);
	memset(&f, 0, sizeof(f));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		apikey_config_apply(&c, &fe, line, err, sizeof(err));
	check(&c, &f);
	free(text);

	fd = mkstemp(path);
	if (fd >= 0) {
		if (write(fd, data, size) == (ssize_t)size) {
			apikey_config_defaults(&c);
			memset(&f, 0, sizeof(f));
			apikey_config_load(&c, &fe, path, NULL, NULL);
			check(&c, &f);
			if (apikey_format_validate(&c.format) != 0)
				__builtin_trap();   /* load must fall back to a valid profile */
		}
		close(fd);
		unlink(path);
	}
	return 0;
}

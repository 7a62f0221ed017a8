/* fuzz_template.c — libFuzzer target for the refusal answers (core/render.c):
 * every line of the input is an option (error_template=, error_code.X=,
 * error_message.X=, …) applied with apikey_config_apply; then every outcome
 * is rendered with a scope, and a request error with a message, taken from
 * the input's bytes.  Whatever was accepted must render, for any value, one
 * JSON object (jansson) of at most APIKEY_ERROR_BODY_MAX bytes — or, when a
 * template is too long for its values, a body cut at the bound, which the
 * loader refuses (profile_check) and which is never parsed here — and its
 * header form must be ASCII with the same JSON value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "apikey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void oracle(const char *body, size_t len)
{
	char ascii[6 * APIKEY_ERROR_BODY_MAX + 1];
	json_t *j, *k;
	size_t n;

	if (len > APIKEY_ERROR_BODY_MAX || strlen(body) != len)
		__builtin_trap();
	if (len == APIKEY_ERROR_BODY_MAX)
		return;           /* cut at the bound: the loader refuses such a template */
	if (!(j = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL)) || !json_is_object(j)) {
		fprintf(stderr, "ORACLE VIOLATION: not one JSON object: %s\n", body);
		__builtin_trap();
	}
	n = apikey_json_ascii(body, len, ascii, sizeof(ascii));
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)ascii[i] < 0x20 || (unsigned char)ascii[i] > 0x7e)
			__builtin_trap();
	if (!(k = json_loadb(ascii, n, JSON_DECODE_ANY, NULL)) || !json_equal(j, k)) {
		fprintf(stderr, "ORACLE VIOLATION: header form differs: %s\n", ascii);
		__builtin_trap();
	}
	json_decref(j);
	json_decref(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct apikey_config c;   /* ~60 kB: not on the stack */
	char *text = malloc(size + 1), *line, *save = NULL, err[512], scope[APIKEY_SCOPE_SIZE + 8];
	char body[APIKEY_ERROR_BODY_MAX + 1];
	size_t n;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	apikey_config_defaults(&c);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		apikey_config_apply(&c, NULL, line, err, sizeof(err));
	/* a scope and a message of any bytes: the first and the last of the input */
	n = size < sizeof(scope) - 1 ? size : sizeof(scope) - 1;
	memcpy(scope, data, n);
	scope[n] = '\0';
	for (int o = 0; o <= APIKEY_OUTCOME_COUNT; o++) {
		const char *code = apikey_answer_code(&c.profile.answers, (enum apikey_outcome)o);
		if (!code[0] || strlen(code) >= APIKEY_ERROR_CODE_SIZE)
			__builtin_trap();
		oracle(body, apikey_answer_render(&c.profile.answers, (enum apikey_outcome)o, scope, body));
		oracle(body, apikey_answer_render(&c.profile.answers, (enum apikey_outcome)o, NULL, body));
	}
	memcpy(text, data, size);
	text[size] = '\0';
	oracle(body, apikey_answer_render_error(&c.profile.answers, scope, text, 400, body));
	oracle(body, apikey_answer_render_error(&c.profile.answers, "NOT_FOUND", text + (size > 300 ? size - 300 : 0),
	                                       404, body));
	free(text);
	return 0;
}

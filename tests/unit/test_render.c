/* test_render.c — core/render.c: refusal bodies compiled from error_template,
 * error_code.X and error_message.X; what they render, how values are
 * escaped, the bound, and the template errors that stop a configuration. */
#include <jansson.h>
#include "unit.h"

static struct apikey_config *cfg(void)
{
	struct apikey_config *c = malloc(sizeof(*c));

	assert_non_null(c);
	apikey_config_defaults(c);
	return c;
}

static void apply_ok(struct apikey_config *c, const char *opt)
{
	char err[512];

	if (apikey_config_apply(c, NULL, opt, err, sizeof(err)) != 0)
		fail_msg("%s: %s", opt, err);
}

/* The option is refused with a message that contains want. */
static void apply_bad(struct apikey_config *c, const char *opt, const char *want)
{
	char err[512];

	assert_int_equal(apikey_config_apply(c, NULL, opt, err, sizeof(err)), APIKEY_ERR_CONFIG);
	if (!strstr(err, want))
		fail_msg("%s: '%s' does not say '%s'", opt, err, want);
}

static json_t *parse(const char *body)
{
	json_error_t e;
	json_t *j = json_loads(body, JSON_REJECT_DUPLICATES, &e);

	if (!j)
		fail_msg("not JSON (%s): %s", e.text, body);
	return j;
}

/* SPEC §3's body is the default, for every outcome. */
static void default_is_spec(void **state)
{
	struct apikey_config *c = cfg();
	char body[APIKEY_ERROR_BODY_MAX + 1];
	size_t n;

	(void)state;
	n = apikey_answer_render(&c->profile.answers, APIKEY_INVALID_KEY, NULL, body);
	assert_string_equal(body, "{\"error\":\"Invalid API key\",\"code\":\"INVALID_KEY\",\"status\":401}");
	assert_int_equal(n, strlen(body));
	apikey_answer_render(&c->profile.answers, APIKEY_RATE_LIMITED, "", body);
	assert_string_equal(body, "{\"error\":\"Rate limit exceeded\",\"code\":\"RATE_LIMITED\",\"status\":429}");
	assert_string_equal(apikey_answer_code(&c->profile.answers, APIKEY_EXPIRED), "EXPIRED");
	/* out of range reads as UNAVAILABLE (fail closed) */
	apikey_answer_render(&c->profile.answers, (enum apikey_outcome)99, NULL, body);
	assert_non_null(strstr(body, "\"UNAVAILABLE\""));
	apikey_answer_render_error(&c->profile.answers, "NOT_FOUND", "Not found", 404, body);
	assert_string_equal(body, "{\"error\":\"Not found\",\"code\":\"NOT_FOUND\",\"status\":404}");
	free(c);
}

/* HiveClaw's shape, codes and the missing scope (docs/design/compat.md). */
static void a_profile(void **state)
{
	struct apikey_config *c = cfg();
	char body[APIKEY_ERROR_BODY_MAX + 1];

	(void)state;
	apply_ok(c, "error_template={\"success\":false,\"error\":{\"code\":\"${code}\",\"message\":\"${message}\"}}");
	apply_ok(c, "error_code.INSUFFICIENT_SCOPE=FORBIDDEN");
	apply_ok(c, "error_message.INSUFFICIENT_SCOPE=API key missing required scope: ${scope}");
	apply_ok(c, "error_code.MISSING_KEY=UNAUTHORIZED");
	apikey_answer_render(&c->profile.answers, APIKEY_INSUFFICIENT_SCOPE, "agents:write", body);
	assert_string_equal(body, "{\"success\":false,\"error\":{\"code\":\"FORBIDDEN\",\"message\":"
	                          "\"API key missing required scope: agents:write\"}}");
	assert_string_equal(apikey_answer_code(&c->profile.answers, APIKEY_MISSING_KEY), "UNAUTHORIZED");
	assert_string_equal(apikey_answer_code(&c->profile.answers, APIKEY_INVALID_KEY), "INVALID_KEY");
	/* the operator's bytes are kept: ClawUp's spacing */
	apply_ok(c, "error_template={ \"error\": \"${code}\", \"message\": \"${message}\" }");
	apikey_answer_render(&c->profile.answers, APIKEY_MISSING_KEY, NULL, body);
	assert_string_equal(body, "{ \"error\": \"UNAUTHORIZED\", \"message\": \"Missing API key\" }");
	/* $$ is one $, a lone $ stays, ${status} may be a number */
	apply_ok(c, "error_template={\"e\":\"$${x} $5 ${message}\",\"s\":${status},\"t\":\"${status}\"}");
	apikey_answer_render(&c->profile.answers, APIKEY_RATE_LIMITED, NULL, body);
	assert_string_equal(body, "{\"e\":\"${x} $5 Rate limit exceeded\",\"s\":429,\"t\":\"429\"}");
	free(c);
}

/* Values go in JSON-escaped: messages at load time, scopes and run-time
 * messages as they are rendered; every body parses and says what was meant. */
static void escaping(void **state)
{
	struct apikey_config *c = cfg();
	char body[APIKEY_ERROR_BODY_MAX + 1], long_msg[600], scope[200];
	json_t *j;

	(void)state;
	apply_ok(c, "error_message.MISSING_KEY=Clé \"manquante\" \\ ${code}");
	apikey_answer_render(&c->profile.answers, APIKEY_MISSING_KEY, NULL, body);
	j = parse(body);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "Clé \"manquante\" \\ MISSING_KEY");
	json_decref(j);
	/* a scope is normalised before it gets here, but the renderer does not count on it */
	apply_ok(c, "error_message.INSUFFICIENT_SCOPE=need ${scope}");
	apikey_answer_render(&c->profile.answers, APIKEY_INSUFFICIENT_SCOPE, "a\"b\\c\n", body);
	j = parse(body);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "need a\"b\\c\n");
	json_decref(j);
	memset(scope, 's', sizeof(scope) - 1);
	scope[sizeof(scope) - 1] = '\0';
	apikey_answer_render(&c->profile.answers, APIKEY_INSUFFICIENT_SCOPE, scope, body);
	j = parse(body);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "error"))), 5 + APIKEY_SCOPE_SIZE - 1);
	json_decref(j);
	/* a run-time message: control characters, bytes that are not UTF-8, length */
	apikey_answer_render_error(&c->profile.answers, "BAD_REQUEST", "bad \x01 \xff\xfe \xc3\xa9", 400, body);
	j = parse(body);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "bad \x01 ?? \xc3\xa9");
	json_decref(j);
	memset(long_msg, '"', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	apikey_answer_render_error(&c->profile.answers, "BAD_REQUEST", long_msg, 400, body);
	j = parse(body);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "error"))), APIKEY_ERROR_MESSAGE_MAX / 2);
	json_decref(j);
	/* a code that is not a code name is not sent */
	apikey_answer_render_error(&c->profile.answers, "bad\"code", "x", 500, body);
	assert_non_null(strstr(body, "\"code\":\"INTERNAL\""));
	free(c);
}

/* auth_error_body=header: the body in a header, ASCII only. */
static void ascii_for_headers(void **state)
{
	char out[64];

	(void)state;
	apikey_json_ascii("{\"m\":\"é€😀\"}\t", strlen("{\"m\":\"é€😀\"}\t"), out, sizeof(out));
	assert_string_equal(out, "{\"m\":\"\\u00e9\\u20ac\\ud83d\\ude00\"} ");
	/* DEL may stand in a JSON string; in a header it is escaped (fuzz_template found it) */
	apikey_json_ascii("{\"m\":\"a\x7f\"}", 10, out, sizeof(out));
	assert_string_equal(out, "{\"m\":\"a\\u007f\"}");
	apikey_json_ascii("\xff", 1, out, sizeof(out));
	assert_string_equal(out, "?");
	/* never a half escape when out is short */
	apikey_json_ascii("ab\xc3\xa9", 4, out, 5);
	assert_string_equal(out, "ab");
}

/* What a configuration may not say (apikey.conf(5) COMPATIBLE ANSWERS). */
static void refused(void **state)
{
	struct apikey_config *c = cfg();
	char body[APIKEY_ERROR_BODY_MAX + 1];

	(void)state;
	apply_bad(c, "error_template=", "error_template: needs a value");
	apply_bad(c, "error_template={\"e\":\"${mesage}\"}", "unknown placeholder ${mesage} (known: ${code} "
	          "${message} ${status} ${scope}; $$ for $)");
	apply_bad(c, "error_template={\"e\":\"${message\"}", "unterminated placeholder");
	apply_bad(c, "error_template={\"e\":\"${Code}\"}", "unterminated placeholder");
	apply_bad(c, "error_template={\"code\":${code}}", "not valid JSON after substitution");
	apply_bad(c, "error_template={\"e\":\"x\",}", "not valid JSON after substitution");
	apply_bad(c, "error_template={\"s\":${scope}}", "not valid JSON after substitution");
	apply_bad(c, "error_template={\"a\":1}${scope}", "not valid JSON after substitution");
	apply_bad(c, "error_template={\"e\":\"${code}\",\"e\":\"${message}\"}", "duplicate member");
	apply_bad(c, "error_template=\"${code}\"", "must be a JSON object");
	apply_bad(c, "error_template=[${status}]", "must be a JSON object");
	apply_bad(c, "error_code.INVALD_KEY=X", "error_code.INVALD_KEY: no such outcome");
	apply_bad(c, "error_code.VALID=OK", "VALID is not a refusal");
	apply_bad(c, "error_code.MISSING_KEY=bad\"code", "must be 1-63 of [A-Za-z0-9_.-]");
	apply_bad(c, "error_code.MISSING_KEY=", "error_code.MISSING_KEY: needs a value");
	apply_bad(c, "error_message.INSUFFICIENT_SCOPE=no: ${message}", "${message} cannot be used in a message");
	apply_bad(c, "error_message.INSUFFICIENT_SCOPE=no: ${scopes}", "unknown placeholder ${scopes} (known: "
	          "${code} ${status} ${scope}; $$ for $)");
	apply_bad(c, "error_message.MISSING_KEY=tab\there", "control characters are not allowed");
	apply_bad(c, "error_message.MISSING_KEY=\xff", "not valid UTF-8");
	/* a refused value leaves the previous answers */
	apikey_answer_render(&c->profile.answers, APIKEY_MISSING_KEY, NULL, body);
	assert_string_equal(body, "{\"error\":\"Missing API key\",\"code\":\"MISSING_KEY\",\"status\":401}");
	free(c);
}

/* Every body any configuration renders is bounded, and the loader says so
 * when a template could render more (profile_check, on the template's line). */
static void bounded(void **state)
{
	struct apikey_config *c = cfg();
	char path[] = "/tmp/apikey-render.XXXXXX", msg[APIKEY_ERROR_MESSAGE_MAX + 1], body[APIKEY_ERROR_BODY_MAX + 1];
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	(void)state;
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	fprintf(f, "error_message.INVALID_KEY=%s\nerror_template={\"m\":\"", msg);
	for (int i = 0; i < 30; i++)
		fputs("${message}", f);
	fputs("\"}\n", f);
	fclose(f);
	assert_int_equal(apikey_config_load(c, NULL, path, NULL, NULL), APIKEY_ERR_CONFIG);
	/* the shape that cannot be served is not served: the default's */
	apikey_answer_render(&c->profile.answers, APIKEY_INVALID_KEY, NULL, body);
	assert_string_equal(body, "{\"error\":\"Invalid API key\",\"code\":\"INVALID_KEY\",\"status\":401}");
	unlink(path);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_is_spec), cmocka_unit_test(a_profile), cmocka_unit_test(escaping),
		cmocka_unit_test(ascii_for_headers), cmocka_unit_test(refused), cmocka_unit_test(bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

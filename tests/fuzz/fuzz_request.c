/* fuzz_request.c — libFuzzer target for apikeyd's request parsing
 * (sidecar/request.c): any bytes as headers, query string, plan lists and
 * /v1/verify body must be accepted or refused without a crash, and what is
 * accepted must be bounded and well-formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "apikey.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Split the input at '\n' into up to n NUL-terminated fields. */
static size_t split(char *buf, char **field, size_t n)
{
	size_t k = 0;
	char *p = buf;

	while (k < n) {
		field[k++] = p;
		if (!(p = strchr(p, '\n')))
			break;
		*p++ = '\0';
	}
	return k;
}

static void check_input(const struct sc_input *in)
{
	char norm[APIKEY_SCOPES_SIZE];

	if (in->key_len >= sizeof(in->key) || strlen(in->scopes) >= sizeof(in->scopes))
		__builtin_trap();
	/* accepted scopes are already normalised */
	if (in->scopes[0] && (apikey_scopes_normalize(in->scopes, norm, sizeof(norm)) != 0 ||
	                      strcmp(norm, in->scopes) != 0))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *f[10] = { 0 }, why[200], plans[APIKEY_SCOPES_SIZE];
	struct sc_request rq;
	struct sc_input in;
	const char *w;
	size_t n;

	if (!buf)
		return 0;
	/* the /v1/verify body: raw bytes */
	if (sc_parse_verify_body((const char *)data, size, &in, why, sizeof(why)) == 0)
		check_input(&in);

	memcpy(buf, data, size);
	buf[size] = '\0';
	n = split(buf, f, 10);
	memset(&rq, 0, sizeof(rq));
	rq.authorization = f[0];
	rq.x_api_key = n > 1 ? f[1] : NULL;
	rq.custom_header = n > 2 ? f[2] : NULL;
	rq.query = n > 3 ? f[3] : NULL;
	rq.key_query = n > 4 ? f[4] : "api_key";
	rq.plan_header = n > 5 ? f[5] : NULL;
	rq.conf_plans = n > 6 ? f[6] : "";
	for (size_t i = 7; i < n; i++)
		rq.scope_headers[rq.n_scope_headers++] = f[i];
	rq.want_scopes = size & 1;
	if (sc_request_input(&rq, &in, &w) == 0)
		check_input(&in);
	sc_input_wipe(&in);
	if (apikey_plans_intersect(rq.conf_plans, rq.plan_header, plans, sizeof(plans)) == 0 &&
	    strlen(plans) >= sizeof(plans))
		__builtin_trap();
	free(buf);
	return 0;
}

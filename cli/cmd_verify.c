/* cmd_verify.c — verify a key read from stdin, exactly as a front end would
 * (persisted mode: the rate limit and usage are charged), and print the
 * SPEC §3 outcome code.  Exit 0 only for VALID. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static const char verify_usage[] =
	"usage: apikeyctl verify [--scope S]... [--owner USER] [--plan P,Q] [--json]\n"
	"Read one key from stdin (one line; the newline is stripped), verify it and\n"
	"print the outcome: VALID, MISSING_KEY, MALFORMED_KEY, INVALID_KEY, REVOKED,\n"
	"EXPIRED, ACCOUNT_INACTIVE, PLAN_REQUIRED, WRONG_USER, INSUFFICIENT_SCOPE,\n"
	"RATE_LIMITED or UNAVAILABLE.  Exit 0 only for VALID, else 1.\n"
	"A VALID answer counts as a use and against the key's rate limit.\n"
	"  --scope S     a scope the key must grant (repeat, or a comma list)\n"
	"  --owner USER  the key must belong to USER (else WRONG_USER)\n"
	"  --plan P,Q    the owner's account must have one of these plans\n"
	"  --json        print {\"valid\", \"code\", \"missing_scope\", \"key\": {id, owner,\n"
	"                name, scopes, expires_at} | null, \"account\": {plan, active} | null,\n"
	"                \"ratelimit\": {limit, remaining, reset} | null}\n";

/* verify --json: the answer, the key's record and its owner's account. */
static json_t *answer_json(const struct apikey_verify_result *res)
{
	json_t *o = json_object(), *key = json_null(), *acct = json_null(), *rl = json_null();

	if (res->found) {
		key = json_object();
		json_object_set_new(key, "id", json_string(res->key.id));
		json_object_set_new(key, "owner", json_string(res->key.owner));
		json_object_set_new(key, "name", json_string(res->key.name));
		json_object_set_new(key, "scopes", cli_scopes_json(res->key.scopes));
		json_object_set_new(key, "expires_at", cli_time_json(res->key.expires_at_s));
	}
	if (res->has_account) {
		acct = json_object();
		json_object_set_new(acct, "plan", res->account.plan[0] ? json_string(res->account.plan) : json_null());
		json_object_set_new(acct, "active", json_boolean(res->account.active));
	}
	if (res->rate_checked)
		rl = json_pack("{s:I, s:I, s:I}", "limit", (json_int_t)res->ratelimit.limit,
		               "remaining", (json_int_t)res->ratelimit.remaining,
		               "reset", (json_int_t)res->ratelimit.reset_s);
	json_object_set_new(o, "valid", json_boolean(res->outcome == APIKEY_VALID));
	json_object_set_new(o, "code", json_string(apikey_outcome_code(res->outcome)));
	json_object_set_new(o, "missing_scope", res->missing_scope[0] ? json_string(res->missing_scope) : json_null());
	json_object_set_new(o, "key", key ? key : json_null());
	json_object_set_new(o, "account", acct ? acct : json_null());
	json_object_set_new(o, "ratelimit", rl ? rl : json_null());
	return o;
}

/* The longest line read: anything longer is not a key (MALFORMED_KEY). */
#define VERIFY_LINE_MAX (APIKEY_KEY_MAX + 1)

/* One line from stdin into buf, without its newline ("\n" or "\r\n").  NUL
 * bytes are kept (the format check refuses them).  A longer line is cut at
 * VERIFY_LINE_MAX, which the format check refuses too; the rest is not read.
 * Byte by byte with read(2): no copy of the key is left in a stdio buffer. */
static size_t read_key(char *buf, size_t bufsz)
{
	size_t n = 0;
	ssize_t got;
	char ch;

	while (n < bufsz - 1) {
		got = read(STDIN_FILENO, &ch, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || ch == '\n')
			break;
		buf[n++] = ch;
	}
	ch = 0;
	buf[n] = '\0';
	if (n > 0 && n < bufsz - 1 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return n;
}

static int scopes_add(struct ctl *ctl, char *list, size_t sz, const char *s)
{
	size_t n = strlen(list);

	if (!s[0] || snprintf(list + n, sz - n, "%s%s", n ? "," : "", s) >= (int)(sz - n))
		return cli_usage(ctl, "--scope: %s", s[0] ? "too many scopes" : "empty scope");
	return 0;
}

int cmd_verify(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "scope", required_argument, NULL, 's' },
		{ "owner", required_argument, NULL, 'o' },
		{ "plan", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char key[VERIFY_LINE_MAX + 1], scopes[APIKEY_SCOPES_SIZE] = "", norm[APIKEY_SCOPES_SIZE];
	struct apikey_verify_request rq = { .source = "cli" };
	struct apikey_verify_result res;
	enum apikey_outcome o;
	bool as_json = false;
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 's':
			if (scopes_add(ctl, scopes, sizeof(scopes), optarg) != 0)
				return EXIT_USAGE;
			break;
		case 'o': rq.user = optarg; break;
		case 'p': rq.require_plan = optarg; break;
		case 'j': as_json = true; break;
		case 'h': return cli_help(verify_usage);
		default: return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage(ctl, "the key is read from stdin, not from the command line");
	if (scopes[0] && (apikey_scopes_normalize(scopes, norm, sizeof(norm)) != 0 || !norm[0]))
		return cli_usage(ctl, "--scope: not a resource:action scope");
	if (rq.require_plan && !rq.require_plan[0])
		return cli_usage(ctl, "--plan: empty plan list");
	if (rq.user && !rq.user[0])
		return cli_usage(ctl, "--owner: empty user");
	if ((r = cli_config(ctl)) != 0)
		return r;
	rq.scopes = scopes[0] ? norm : NULL;
	rq.key_len = read_key(key, sizeof(key));
	rq.key = key;

	/* The core answers a missing or malformed key before it opens the store
	 * (SPEC §3 order); the store is opened only for a well-formed key. */
	apikey_verify_open(&ctl->store, &ctl->cfg, cli_log, ctl, &rq, &res);
	o = res.outcome;
	explicit_bzero(key, sizeof(key));
	if (o == APIKEY_UNAVAILABLE)
		cli_fail_err(ctl, res.err, ctl->store ? "key store unavailable" : "cannot open the key store");
	if (as_json) {
		r = cli_print_json(ctl, answer_json(&res));
		return r != EXIT_OK ? r : o == APIKEY_VALID ? EXIT_OK : EXIT_FAIL;
	}
	printf("%s\n", apikey_outcome_code(o));
	return o == APIKEY_VALID ? EXIT_OK : EXIT_FAIL;
}

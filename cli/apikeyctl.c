/* apikeyctl.c — the operator's CLI: global options, configuration lookup,
 * the verb table, error lines, and helpers the verbs share (see apikeyctl(1)). */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"

static int cmd_help(struct ctl *ctl, int argc, char **argv);

static const struct cmd commands[] = {
	{ "init",    cmd_init,    "create the key store and its pepper" },
	{ "create",  cmd_create,  "issue a new key (printed once)" },
	{ "list",    cmd_list,    "list keys (never the keys themselves)" },
	{ "show",    cmd_show,    "show one key's attributes" },
	{ "update",  cmd_update,  "change a key's name, scopes, rate limit, expiry or metadata" },
	{ "revoke",  cmd_revoke,  "revoke a key now" },
	{ "rotate",  cmd_rotate,  "issue a successor; the old key lives for a grace period" },
	{ "verify",  cmd_verify,  "verify a key read from stdin, print the outcome" },
	{ "preset",  cmd_preset,  "add, list or remove named scope sets" },
	{ "account", cmd_account, "set or show an owner's plan and active flag" },
	{ "log",     cmd_log,     "show audit events" },
	{ "usage",   cmd_usage,   "show each key's use count and last use" },
	{ "prune",   cmd_prune,   "delete old events and long-dead keys" },
	{ "db",      cmd_db,      "db check: integrity check of the store" },
	{ "import",  cmd_import,  "import keys with foreign hashes from JSON lines" },
	{ "status",  cmd_status,  "the store, and in fleet mode the replica's position and lag" },
	{ "upstream", cmd_upstream, "fleet mode: upstream init, the roles' SQL, prune the change log" },
	{ "help",    cmd_help,    "list the verbs, or show one verb's usage" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char main_usage[] =
	"usage: apikeyctl [--db PATH] [--conf PATH] VERB [ARGS...]\n"
	"       apikeyctl VERB --help\n"
	"\n"
	"  --db PATH    key store (default: $APIKEY_DB, then the configuration's db=,\n"
	"               then " APIKEY_DB_DEFAULT ")\n"
	"  --conf PATH  configuration (default: $APIKEY_CONF, else " APIKEY_CONF_DEFAULT "\n"
	"               when it exists)\n"
	"\n"
	"verbs:\n";

static void print_usage(FILE *f)
{
	fputs(main_usage, f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fputs("\nExit status: 0 success, 1 failure (verify: not VALID), 2 usage error.\n", f);
}

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int cmd_help(struct ctl *ctl, int argc, char **argv)
{
	const struct cmd *c;
	char *sub[] = { NULL, (char *)"--help", NULL };

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		print_usage(stdout);
		return EXIT_OK;
	}
	if (argc > 2)
		return cli_usage(ctl, "too many arguments");
	if (!(c = find_cmd(argv[1])))
		return cli_usage(ctl, "unknown verb '%s'", cli_echo(ctl, argv[1]));
	if (c->fn == cmd_help) {
		print_usage(stdout);
		return EXIT_OK;
	}
	ctl->verb = c->name;
	sub[0] = argv[1];
	return c->fn(ctl, 2, sub);
}

/* ---- messages ------------------------------------------------------------- */

void cli_log(void *ctx, int priority, const char *msg)
{
	struct ctl *ctl = ctx;

	if (priority > LOG_WARNING)   /* notices (a schema migration) are not news here */
		return;
	if (ctl->log_direct) {
		fprintf(stderr, "apikeyctl: %s\n", msg);
		return;
	}
	if (ctl->core_held++ == 0)
		snprintf(ctl->core_msg, sizeof(ctl->core_msg), "%s", msg);
}

void cli_forget(struct ctl *ctl)
{
	ctl->core_msg[0] = '\0';
	ctl->core_held = 0;
}

static void vline(struct ctl *ctl, const char *detail, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void vline(struct ctl *ctl, const char *detail, const char *fmt, va_list ap)
{
	char msg[CLI_MSG_SIZE];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "apikeyctl: %s%s%s%s%s\n", ctl->verb ? ctl->verb : "", ctl->verb ? ": " : "",
	        msg, detail && detail[0] ? ": " : "", detail ? detail : "");
}

int cli_fail(struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(ctl, ctl->core_msg, fmt, ap);
	va_end(ap);
	cli_forget(ctl);
	return EXIT_FAIL;
}

int cli_fail_err(struct ctl *ctl, int err, const char *what)
{
	char msg[CLI_MSG_SIZE];

	/* The core's own message names the cause better than the error class. */
	if (ctl->core_msg[0]) {
		snprintf(msg, sizeof(msg), "%s", ctl->core_msg);
		cli_forget(ctl);
		return what ? cli_fail(ctl, "%s: %s", what, msg) : cli_fail(ctl, "%s", msg);
	}
	return what ? cli_fail(ctl, "%s: %s", what, apikey_strerror(err))
	            : cli_fail(ctl, "%s", apikey_strerror(err));
}

const struct apikey_actor cli_actor = { .source = "cli" };

/* Where the configuration comes from: --conf, --db and the environment. */
static struct apikey_config_sources sources(const struct ctl *ctl)
{
	return (struct apikey_config_sources){ .conf = ctl->opt_conf, .env = true, .db = ctl->opt_db };
}

const char *cli_echo(struct ctl *ctl, const char *s)
{
	const struct apikey_format *f = &ctl->cfg.format;
	struct apikey_config_sources src = sources(ctl);
	struct apikey_config *scratch = NULL;
	const char *conf = apikey_config_file(&src), *out = s;
	size_t n = strlen(s);

	/* Usage errors come before the configuration is read: judge by the
	 * profile it sets all the same (read quietly; a broken file is reported
	 * when the verb reads it). */
	if (!ctl->cfg_loaded && conf && (scratch = malloc(sizeof(*scratch)))) {
		apikey_config_defaults(scratch);
		apikey_config_load(scratch, NULL, conf, NULL, NULL);
		f = &scratch->format;
	}
	if (n > 40 || apikey_token_parse(f, s, n) == 0)
		out = "(not shown)";
	for (size_t i = 0; i < n && out == s; i++)
		if (!isprint((unsigned char)s[i]))
			out = "(not shown)";
	free(scratch);
	return out;
}

/* ---- secrets on stdout ---------------------------------------------------- */

/* jansson's allocations carry their size so that freeing wipes them: a key
 * put into a JSON answer does not linger in freed memory. */
struct alloc_head { size_t size; size_t pad; };

static void *wiping_malloc(size_t n)
{
	struct alloc_head *h;

	if (n > SIZE_MAX - sizeof(*h) || !(h = malloc(sizeof(*h) + n)))
		return NULL;
	h->size = n;
	return h + 1;
}

static void wiping_free(void *p)
{
	struct alloc_head *h;

	if (!p)
		return;
	h = (struct alloc_head *)p - 1;
	explicit_bzero(p, h->size);
	free(h);
}

/* Straight to the file descriptor, so no copy stays in a stdio buffer. */
int cli_write_secret(struct ctl *ctl, const char *buf, size_t len)
{
	if (fflush(stdout) != 0)
		return cli_fail(ctl, "cannot write the output: %s", strerror(errno));
	while (len) {
		ssize_t n = write(STDOUT_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cli_fail(ctl, "cannot write the output: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
	return EXIT_OK;
}

int cli_print_secret_json(struct ctl *ctl, json_t *v)
{
	size_t n;
	char *buf;
	int r;

	if (!v)
		return cli_fail(ctl, "out of memory");
	n = json_dumpb(v, NULL, 0, JSON_INDENT(2));
	if (n == 0 || !(buf = wiping_malloc(n + 1))) {
		json_decref(v);
		return cli_fail(ctl, "out of memory");
	}
	json_dumpb(v, buf, n, JSON_INDENT(2));
	json_decref(v);
	buf[n] = '\n';
	r = cli_write_secret(ctl, buf, n + 1);
	wiping_free(buf);
	return r;
}

int cli_usage(struct ctl *ctl, const char *fmt, ...)
{
	char msg[CLI_MSG_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctl->verb && strcmp(ctl->verb, "help") != 0)
		fprintf(stderr, "apikeyctl: %s: %s (see 'apikeyctl %s --help')\n", ctl->verb, msg, ctl->verb);
	else
		fprintf(stderr, "apikeyctl: %s (see 'apikeyctl help')\n", msg);
	cli_forget(ctl);
	return EXIT_USAGE;
}

int cli_getopt(struct ctl *ctl, int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
	char opts[64];
	int c;

	/* A leading ':' tells a missing value (':') from an unknown option ('?'). */
	if (shortopts[0] == '+')
		snprintf(opts, sizeof(opts), "+:%s", shortopts + 1);
	else
		snprintf(opts, sizeof(opts), ":%s", shortopts);
	opterr = 0;   /* getopt's own messages would name the verb as the program */
	c = getopt_long(argc, argv, opts, longopts, NULL);
	if (c == ':') {
		cli_usage(ctl, "option '%s' needs a value", argv[optind - 1]);
		return '?';
	}
	if (c == '?') {
		const char *a = optind > 0 && optind - 1 < argc ? argv[optind - 1] : "";
		/* a long option is named up to its '=': what follows could be a key */
		int n = (int)strcspn(a, "=");
		if (strncmp(a, "--", 2) != 0)
			cli_usage(ctl, "unknown option '-%c'", optopt ? optopt : '?');
		else if (optopt && a[n] == '=')
			cli_usage(ctl, "option '%.*s' takes no value", n > 40 ? 40 : n, a);
		else
			cli_usage(ctl, "unknown option '%.*s'", n > 40 ? 40 : n, a);
	}
	return c;
}

int cli_help(const char *usage)
{
	fputs(usage, stdout);
	return EXIT_OK;
}

int cli_common_opts(struct ctl *ctl, int argc, char **argv, const char *usage, bool *as_json)
{
	static const struct option with_json[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	while ((c = cli_getopt(ctl, argc, argv, "h", as_json ? with_json : with_json + 1)) != -1) {
		if (c == 'h')
			return cli_help(usage), -1;
		if (c != 'j')
			return EXIT_USAGE;
		*as_json = true;
	}
	return 0;
}

int cli_no_more_args(struct ctl *ctl, int argc, char **argv)
{
	if (optind < argc)
		return cli_usage(ctl, "unexpected argument '%s'", cli_echo(ctl, argv[optind]));
	return 0;
}

int cli_parse_uint(struct ctl *ctl, const char *flag, const char *s, unsigned long long min,
                   unsigned long long max, unsigned long long *out)
{
	if (apikey_parse_uint(s, min, max, out) != 0)
		return cli_usage(ctl, "%s: '%s' is not a number in %llu..%llu", flag, cli_echo(ctl, s), min, max);
	return 0;
}

int cli_parse_when(struct ctl *ctl, const char *flag, const char *s, bool future, int64_t *out)
{
	int64_t v, now = cli_now_s();

	if (apikey_parse_duration(s, &v) == 0) {
		*out = future ? apikey_time_after(v) : now - v;
		if (future && v == 0)
			return cli_usage(ctl, "%s: a duration must be longer than 0", flag);
		return 0;
	}
	if (apikey_parse_time(s, &v) != 0)
		return cli_usage(ctl, "%s: '%s' is neither a duration (90d, 12h, 30m, 45s) "
		                 "nor an RFC 3339 time", flag, cli_echo(ctl, s));
	if (future && v <= now)
		return cli_usage(ctl, "%s: %s is in the past", flag, cli_echo(ctl, s));
	*out = v;
	return 0;
}

int cli_parse_expiry(struct ctl *ctl, const char *flag, const char *s, enum apikey_expiry_change *expiry,
                     int64_t *out)
{
	if (!strcmp(s, "never")) {
		*expiry = APIKEY_EXPIRY_NEVER;
		*out = 0;
		return 0;
	}
	if (cli_parse_when(ctl, flag, s, true, out) != 0)
		return EXIT_USAGE;
	*expiry = APIKEY_EXPIRY_SET;
	return 0;
}

/* ---- configuration and store -------------------------------------------- */

static const struct apikey_binding bindings[] = {
	APIKEY_UPSTREAM_BINDINGS(struct cli_settings, up),
};

/* Configuration is read when a verb needs it, so "VERB --help" never does. */
int cli_config(struct ctl *ctl)
{
	struct apikey_config_sources src = sources(ctl);
	struct apikey_settings fe = { bindings, sizeof(bindings) / sizeof(bindings[0]), &ctl->set };
	const char *conf = apikey_config_file(&src);
	int r;

	if (ctl->cfg_loaded)
		return 0;
	ctl->log_direct = true;   /* every problem of the file, one line each */
	r = apikey_config_read(&ctl->cfg, &fe, &src, cli_log, ctl);
	ctl->log_direct = false;
	if (r == APIKEY_ERR_IO || r == APIKEY_ERR_CONFIG) {
		fprintf(stderr, "apikeyctl: %s: %s; nothing done\n", conf,
		        r == APIKEY_ERR_IO ? "cannot read the configuration" : "configuration has errors");
		return EXIT_FAIL;
	}
	if (r != 0)               /* the db path: the core said which */
		return EXIT_FAIL;
	ctl->cfg_loaded = true;
	return 0;
}

struct apikey_store *cli_store(struct ctl *ctl)
{
	int r;

	if (ctl->store)
		return ctl->store;
	if (cli_config(ctl) != 0)
		return NULL;
	if ((r = apikey_store_open(&ctl->store, &ctl->cfg, cli_log, ctl)) != 0) {
		cli_fail_err(ctl, r, cli_fleet(ctl) ? "cannot open this host's replica (apikeyd builds it)"
		                                    : "cannot open the key store");
		ctl->store = NULL;
		return NULL;
	}
	/* Fleet mode: reads come from this host's replica; say so when no
	 * follower keeps it current. */
	if (!strcmp(ctl->verb, "list") || !strcmp(ctl->verb, "show") || !strcmp(ctl->verb, "usage"))
		cli_note_stale_replica(ctl);
	/* Fleet mode: the store's writes go upstream (connecting at the first
	 * one).  Not for verify: a verification charges this host's replica. */
	if (cli_fleet(ctl) && strcmp(ctl->verb, "verify") != 0 &&
	    (r = apikey_upstream_attach(ctl->store, &ctl->set.up, "apikeyctl")) != 0) {
		cli_fail_err(ctl, r, "upstream");
		apikey_store_free(ctl->store);
		ctl->store = NULL;
	}
	return ctl->store;
}

/* ---- output helpers --------------------------------------------------------- */

int64_t cli_now_s(void)
{
	return (int64_t)time(NULL);
}

json_t *cli_time_json(int64_t t)
{
	char buf[32];

	if (!t)
		return json_null();
	apikey_format_time(t, buf);
	return json_string(buf);
}

void cli_time_text(int64_t t, const char *never, char out[32])
{
	if (!t)
		snprintf(out, 32, "%s", never);
	else
		apikey_format_time(t, out);
}

const char *cli_key_status(const struct apikey_key_info *k, int64_t now_s)
{
	return apikey_key_status_name(apikey_key_status(k, now_s));
}

json_t *cli_scopes_json(const char *scopes)
{
	json_t *a = json_array();
	const char *cur = scopes, *item;
	size_t n;

	while (a && apikey_list_next(&cur, &item, &n))
		json_array_append_new(a, json_stringn(item, n));
	return a;
}

static json_t *str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

json_t *cli_key_json(const struct apikey_key_info *k, int64_t now_s)
{
	json_t *o = json_object(), *meta = json_loads(k->metadata, 0, NULL);

	if (!o) {
		json_decref(meta);
		return NULL;
	}
	json_object_set_new(o, "id", json_string(k->id));
	json_object_set_new(o, "hint", json_string(k->hint));
	json_object_set_new(o, "owner", json_string(k->owner));
	json_object_set_new(o, "name", json_string(k->name));
	json_object_set_new(o, "scopes", cli_scopes_json(k->scopes));
	json_object_set_new(o, "status", json_string(cli_key_status(k, now_s)));
	json_object_set_new(o, "created_at", cli_time_json(k->created_at_s));
	json_object_set_new(o, "expires_at", cli_time_json(k->expires_at_s));
	json_object_set_new(o, "revoked_at", cli_time_json(k->revoked_at_s));
	json_object_set_new(o, "last_used_at", cli_time_json(k->last_used_at_s));
	json_object_set_new(o, "use_count", json_integer((json_int_t)k->use_count));
	json_object_set_new(o, "rate_limit", json_integer(k->rate_limit));
	json_object_set_new(o, "hash_alg", json_string(k->hash_alg));
	json_object_set_new(o, "rotated_from", str_or_null(k->rotated_from));
	json_object_set_new(o, "rotated_to", str_or_null(k->rotated_to));
	json_object_set_new(o, "metadata", meta ? meta : json_object());
	return o;
}

int cli_json_item(unsigned long *count, json_t *o)
{
	int r;

	if (!o)
		return APIKEY_ERR_NOMEM;
	fputs(*count ? ",\n" : "\n", stdout);
	r = json_dumpf(o, stdout, JSON_COMPACT);
	json_decref(o);
	(*count)++;
	return r == 0 && !ferror(stdout) ? 0 : APIKEY_ERR_IO;
}

void cli_json_end(unsigned long count)
{
	fputs(count ? "\n]\n" : "]\n", stdout);
}

int cli_list_error(struct ctl *ctl, int r, const char *what)
{
	if (r == APIKEY_ERR_IO)
		return cli_fail(ctl, "cannot write the output: %s", strerror(errno));
	return cli_fail_err(ctl, r, what);
}

int cli_print_json(struct ctl *ctl, json_t *v)
{
	int r;

	if (!v)
		return cli_fail(ctl, "out of memory");
	r = json_dumpf(v, stdout, JSON_INDENT(2)) == 0 && fputc('\n', stdout) != EOF;
	json_decref(v);
	return r ? EXIT_OK : cli_fail(ctl, "cannot write the output: %s", strerror(errno));
}

/* ---- main ------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl;
	const struct cmd *c;
	int ch, r;

	memset(&ctl, 0, sizeof(ctl));
	json_set_alloc_funcs(wiping_malloc, wiping_free);
	apikey_config_defaults(&ctl.cfg);
	apikey_upstream_defaults(&ctl.set.up);
	/* "+": options after the verb belong to the verb. */
	while ((ch = cli_getopt(&ctl, argc, argv, "+h", opts)) != -1) {
		switch (ch) {
		case 'd': ctl.opt_db = optarg; break;
		case 'c': ctl.opt_conf = optarg; break;
		case 'h': print_usage(stdout); return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "apikeyctl: no verb given (see 'apikeyctl help')\n");
		return EXIT_USAGE;
	}
	if (ctl.opt_db && !ctl.opt_db[0]) {
		fprintf(stderr, "apikeyctl: --db: empty path (see 'apikeyctl help')\n");
		return EXIT_USAGE;
	}
	if (!(c = find_cmd(argv[optind]))) {
		fprintf(stderr, "apikeyctl: unknown verb '%s' (see 'apikeyctl help')\n",
		        cli_echo(&ctl, argv[optind]));
		return EXIT_USAGE;
	}
	ctl.verb = c->name;
	argc -= optind;
	argv += optind;
	optind = 0;    /* a fresh getopt scan of the verb's own arguments */
	r = c->fn(&ctl, argc, argv);
	if (ctl.core_held && r != EXIT_USAGE) {
		/* something the core reported that no error line has carried yet */
		cli_fail(&ctl, "note");
	}
	apikey_store_free(ctl.store);
	if (fflush(stdout) != 0 && r == EXIT_OK) {
		fprintf(stderr, "apikeyctl: %s: cannot write the output: %s\n", ctl.verb, strerror(errno));
		r = EXIT_FAIL;
	}
	return r;
}

/* cmd_keys.c — the verbs of a key's life: init, create, list, show, revoke,
 * rotate.  A raw key is printed once (create, rotate) and then wiped. */
#include <string.h>
#include <unistd.h>
#include "cli.h"

/* Exactly one positional argument, shaped like a key id. */
static int one_id(struct ctl *ctl, int argc, char **argv, const char **id)
{
	if (optind >= argc)
		return cli_usage(ctl, "which key? give its id (key_...)");
	if (optind + 1 < argc)
		return cli_usage(ctl, "one key id at a time");
	if (!apikey_id_valid(argv[optind]))
		return cli_usage(ctl, "not a key id (ids are key_ followed by 16 letters and digits)");
	*id = argv[optind];
	return 0;
}

static int key_error(struct ctl *ctl, int r, const char *id, const char *what)
{
	if (r == APIKEY_ERR_NOT_FOUND)
		return cli_fail(ctl, "no key with id %s", id);
	return cli_fail_err(ctl, r, what);
}

/* ---- init ------------------------------------------------------------------ */

static const char init_usage[] =
	"usage: apikeyctl [--db PATH] init\n"
	"Create the key store (SQLite, WAL, mode 0640) and its 32-byte pepper\n"
	"(mode 0600, beside the database unless pepper= is configured), with the\n"
	"presets the configuration declares (preset.NAME=), or else read-only\n"
	"(*:read) and full-access (*).  Refuses to overwrite either file.\n";

int cmd_init(struct ctl *ctl, int argc, char **argv)
{
	char pepper[APIKEY_PATH_SIZE];
	int r;

	if ((r = cli_common_opts(ctl, argc, argv, init_usage, NULL)) != 0)
		return r < 0 ? EXIT_OK : r;
	if ((r = cli_no_more_args(ctl, argc, argv)) != 0 || (r = cli_config(ctl)) != 0)
		return r;
	if ((r = apikey_store_init(&ctl->cfg, cli_log, ctl)) != 0)
		return cli_fail_err(ctl, r, NULL);
	/* init succeeded, so the path fits */
	apikey_config_pepper_path(&ctl->cfg, pepper, sizeof(pepper));
	printf("created key store %s (pepper %s)\n", ctl->cfg.db_path, pepper);
	for (unsigned i = 0; i < ctl->cfg.profile.n_presets; i++)
		printf("preset %s: %s\n", ctl->cfg.profile.presets[i].name, ctl->cfg.profile.presets[i].scopes);
	return EXIT_OK;
}

/* ---- create ------------------------------------------------------------------ */

static const char create_usage[] =
	"usage: apikeyctl create --owner USER [--name NAME] [--scopes LIST | --preset NAME]\n"
	"                        [--expires 90d|RFC3339] [--rate-limit N] [--meta JSON] [--json]\n"
	"Issue a key and print it once on stdout (with --json: an object with the key\n"
	"and its attributes).  Only an HMAC of it is stored.\n"
	"  --owner USER       the login name / account that owns the key (required)\n"
	"  --name NAME        a label for listings\n"
	"  --scopes LIST      comma-separated scopes: resource:action, resource:*, *\n"
	"                     (inside the scope catalogue, scopes=, when one is set)\n"
	"  --preset NAME      the scopes of a stored preset (see 'apikeyctl preset');\n"
	"                     with neither, the configuration's default_preset\n"
	"  --expires WHEN     a duration from now (90d, 12h, 30m, 45s) or an RFC 3339 time\n"
	"  --rate-limit N     requests per minute, 1..1000000 (default: configuration, 60;\n"
	"                     one of rate_limit_tiers= when they are set)\n"
	"  --meta JSON        a JSON object stored with the key\n"
	"  --json             print a JSON object instead of the bare key\n";

/* Free what json_dumps returned, with jansson's allocator. */
static void json_free(char *p)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	if (p)
		f(p);
}

/* --meta must be a JSON object; it is stored in jansson's compact form. */
static int parse_meta(struct ctl *ctl, const char *text, char **out)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &err);

	if (!v || !json_is_object(v)) {
		json_decref(v);
		return cli_usage(ctl, "--meta: not a JSON object%s%s", v ? "" : ": ", v ? "" : err.text);
	}
	*out = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (!*out)
		return cli_fail(ctl, "out of memory");
	if (strlen(*out) >= APIKEY_META_SIZE) {
		json_free(*out);
		*out = NULL;
		return cli_usage(ctl, "--meta: longer than %d bytes", APIKEY_META_SIZE - 1);
	}
	return 0;
}

static json_t *key_json_with_secret(const char *key, const struct apikey_key_info *k)
{
	json_t *o = json_object(), *attrs = cli_key_json(k, cli_now_s());

	if (!o || !attrs || json_object_set_new(o, "key", json_string(key)) != 0 ||
	    json_object_update(o, attrs) != 0) {
		json_decref(o);
		o = NULL;
	}
	json_decref(attrs);
	return o;
}

/* Print a fresh key once, bare or as JSON; the caller wipes its buffer. */
static int print_new_key(struct ctl *ctl, const char *key, const struct apikey_key_info *k,
                         bool as_json, json_t *extra)
{
	char line[APIKEY_KEY_MAX + 2];
	size_t n = strlen(key);
	json_t *o;
	int r;

	if (!as_json) {
		memcpy(line, key, n);
		line[n] = '\n';
		r = cli_write_secret(ctl, line, n + 1);
		explicit_bzero(line, sizeof(line));
		json_decref(extra);
		return r;
	}
	if (!(o = key_json_with_secret(key, k))) {
		json_decref(extra);
		return cli_fail(ctl, "out of memory");
	}
	if (extra)
		json_object_update(o, extra);
	json_decref(extra);
	return cli_print_secret_json(ctl, o);
}

int cmd_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "owner", required_argument, NULL, 'o' },
		{ "name", required_argument, NULL, 'n' },
		{ "scopes", required_argument, NULL, 's' },
		{ "preset", required_argument, NULL, 'p' },
		{ "expires", required_argument, NULL, 'e' },
		{ "rate-limit", required_argument, NULL, 'r' },
		{ "meta", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct apikey_create_params p = { 0 };
	struct apikey_key_info info;
	struct apikey_store *s;
	char key[APIKEY_KEY_MAX + 1], *meta = NULL, *meta_arg = NULL;
	const char *expires = NULL;
	unsigned long long n;
	bool as_json = false;
	int c, r = EXIT_USAGE;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'o': p.owner = optarg; break;
		case 'n': p.name = optarg; break;
		case 's': p.scopes = optarg; break;
		case 'p': p.preset = optarg; break;
		case 'e': expires = optarg; break;
		case 'r':
			if (cli_parse_uint(ctl, "--rate-limit", optarg, APIKEY_RATE_MIN, APIKEY_RATE_MAX, &n) != 0)
				return EXIT_USAGE;
			p.rate_limit = (uint32_t)n;
			break;
		case 'm': meta_arg = optarg; break;
		case 'j': as_json = true; break;
		case 'h': return cli_help(create_usage);
		default: return EXIT_USAGE;
		}
	}
	if ((r = cli_no_more_args(ctl, argc, argv)) != 0)
		return r;
	if (!p.owner || !p.owner[0])
		return cli_usage(ctl, "--owner is required");
	if (p.scopes && p.preset)
		return cli_usage(ctl, "give at most one of --scopes and --preset");
	if (!p.scopes && !p.preset) {
		if ((r = cli_config(ctl)) != 0)
			return r;
		if (!ctl->cfg.profile.default_preset[0])
			return cli_usage(ctl, "give --scopes or --preset (the configuration has no default_preset)");
	}
	if (p.scopes) {
		char norm[APIKEY_SCOPES_SIZE];
		if (apikey_scopes_normalize(p.scopes, norm, sizeof(norm)) != 0 || !norm[0])
			return cli_usage(ctl, "--scopes: not a list of resource:action scopes");
	}
	if (expires && cli_parse_when(ctl, "--expires", expires, true, &p.expires_at_s) != 0)
		return EXIT_USAGE;
	if (meta_arg && (r = parse_meta(ctl, meta_arg, &meta)) != 0)
		return r;
	p.metadata = meta;
	if (!(s = cli_store(ctl))) {
		json_free(meta);
		return EXIT_FAIL;
	}
	r = apikey_key_create(s, &p, &cli_actor, key, sizeof(key), &info);
	json_free(meta);
	p.metadata = NULL;
	if (r == APIKEY_ERR_NOT_FOUND)
		return cli_fail(ctl, "%s (see 'apikeyctl preset list')", apikey_store_why(s));
	if (r == APIKEY_ERR_INVALID)
		return cli_fail(ctl, "refused: %s", apikey_store_why(s));
	if (r != 0)
		return cli_fail_err(ctl, r, "key not created");
	r = print_new_key(ctl, key, &info, as_json, NULL);
	explicit_bzero(key, sizeof(key));
	return r;
}

/* ---- list ------------------------------------------------------------------------ */

static const char list_usage[] =
	"usage: apikeyctl list [--owner USER] [--json]\n"
	"List keys in creation order: id, hint, owner, name, scopes, status,\n"
	"expiry and last use.  Never shows a key.  --json prints an array of objects.\n";

/* Copy s into a column of width w, cut with "..." (at a UTF-8 boundary). */
static const char *col(char *buf, size_t bufsz, const char *s, size_t w)
{
	size_t n = strlen(s);

	if (n <= w || w < 4 || w >= bufsz)
		return s;
	n = w - 3;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

struct list_ctx {
	bool json;
	unsigned long count;
	int64_t now;
};

#define LIST_FMT "%-20s  %-12s  %-14s  %-18s  %-24s  %-8s  %-20s  %s\n"

static int list_one(void *vctx, const struct apikey_key_info *k)
{
	struct list_ctx *lc = vctx;
	char b1[32], b2[32], b3[32], exp[32], used[32];

	if (lc->json)
		return cli_json_item(&lc->count, cli_key_json(k, lc->now));
	cli_time_text(k->expires_at_s, "never", exp);
	cli_time_text(k->last_used_at_s, "never", used);
	printf(LIST_FMT, k->id, k->hint, col(b1, sizeof(b1), k->owner, 14),
	       col(b2, sizeof(b2), k->name, 18), col(b3, sizeof(b3), k->scopes, 24),
	       cli_key_status(k, lc->now), exp, used);
	lc->count++;
	return ferror(stdout) ? APIKEY_ERR_IO : 0;
}

int cmd_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "owner", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct list_ctx lc = { .now = cli_now_s() };
	struct apikey_store *s;
	const char *owner = NULL;
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'o': owner = optarg; break;
		case 'j': lc.json = true; break;
		case 'h': return cli_help(list_usage);
		default: return EXIT_USAGE;
		}
	}
	if ((r = cli_no_more_args(ctl, argc, argv)) != 0)
		return r;
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	if (lc.json)
		fputs("[", stdout);
	else
		printf(LIST_FMT, "ID", "HINT", "OWNER", "NAME", "SCOPES", "STATUS", "EXPIRES", "LAST USED");
	if ((r = apikey_key_list(s, owner, list_one, &lc)) != 0)
		return cli_list_error(ctl, r, "cannot list keys");
	if (lc.json)
		cli_json_end(lc.count);
	return EXIT_OK;
}

/* ---- show ----------------------------------------------------------------------- */

static const char show_usage[] =
	"usage: apikeyctl show ID [--json]\n"
	"Show every attribute of one key (never the key itself).\n";

int cmd_show(struct ctl *ctl, int argc, char **argv)
{
	struct apikey_key_info k;
	struct apikey_store *s;
	char t1[32], t2[32], t3[32], t4[32];
	const char *id = NULL;
	bool as_json = false;
	int r;

	if ((r = cli_common_opts(ctl, argc, argv, show_usage, &as_json)) != 0)
		return r < 0 ? EXIT_OK : r;
	if ((r = one_id(ctl, argc, argv, &id)) != 0)
		return r;
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	if ((r = apikey_key_get(s, id, &k)) != 0)
		return key_error(ctl, r, id, "cannot read the key");
	if (as_json)
		return cli_print_json(ctl, cli_key_json(&k, cli_now_s()));
	cli_time_text(k.created_at_s, "-", t1);
	cli_time_text(k.expires_at_s, "never", t2);
	cli_time_text(k.revoked_at_s, "-", t3);
	cli_time_text(k.last_used_at_s, "never", t4);
	printf("id:           %s\n", k.id);
	printf("hint:         %s\n", k.hint);
	printf("owner:        %s\n", k.owner);
	printf("name:         %s\n", k.name);
	printf("scopes:       %s\n", k.scopes);
	printf("status:       %s\n", cli_key_status(&k, cli_now_s()));
	printf("created:      %s\n", t1);
	printf("expires:      %s\n", t2);
	printf("revoked:      %s\n", t3);
	printf("last used:    %s\n", t4);
	printf("use count:    %llu\n", (unsigned long long)k.use_count);
	printf("rate limit:   %u/min\n", (unsigned)k.rate_limit);
	printf("hash:         %s\n", k.hash_alg);
	printf("rotated from: %s\n", k.rotated_from[0] ? k.rotated_from : "-");
	printf("rotated to:   %s\n", k.rotated_to[0] ? k.rotated_to : "-");
	printf("metadata:     %s\n", k.metadata);
	return EXIT_OK;
}

/* ---- revoke ---------------------------------------------------------------------- */

static const char revoke_usage[] =
	"usage: apikeyctl revoke ID\n"
	"Revoke a key now; every front end refuses it from its next request on.\n"
	"Revoking a revoked key keeps the first revocation time.\n";

int cmd_revoke(struct ctl *ctl, int argc, char **argv)
{
	struct apikey_store *s;
	const char *id = NULL;
	int r;

	if ((r = cli_common_opts(ctl, argc, argv, revoke_usage, NULL)) != 0)
		return r < 0 ? EXIT_OK : r;
	if ((r = one_id(ctl, argc, argv, &id)) != 0)
		return r;
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	if ((r = apikey_key_revoke(s, id, &cli_actor)) != 0)
		return key_error(ctl, r, id, "not revoked");
	printf("revoked %s\n", id);
	return EXIT_OK;
}

/* ---- rotate ---------------------------------------------------------------------- */

static const char rotate_usage[] =
	"usage: apikeyctl rotate ID [--grace 24h] [--expires 90d|RFC3339|never] [--json]\n"
	"Issue a successor with the same owner, name, scopes, expiry, rate limit and\n"
	"metadata, and print it once.  The old key stays valid for the grace period\n"
	"(default 24h; 0 revokes it now, and never past its own expiry) and then\n"
	"fails as EXPIRED.  --expires gives the successor its own expiry (never: none).\n";

int cmd_rotate(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "grace", required_argument, NULL, 'g' },
		{ "expires", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct apikey_rotate_params rp = { .grace_s = APIKEY_GRACE_DEFAULT_S, .expiry = APIKEY_EXPIRY_KEEP };
	struct apikey_key_info info, old;
	struct apikey_store *s;
	char key[APIKEY_KEY_MAX + 1];
	const char *id = NULL;
	bool as_json = false;
	json_t *extra = NULL;
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'g':
			if (apikey_parse_duration(optarg, &rp.grace_s) != 0)
				return cli_usage(ctl, "--grace: '%s' is not a duration (24h, 30m, 45s, 0)", cli_echo(ctl, optarg));
			break;
		case 'e':
			if (cli_parse_expiry(ctl, "--expires", optarg, &rp.expiry, &rp.expires_at_s) != 0)
				return EXIT_USAGE;
			break;
		case 'j': as_json = true; break;
		case 'h': return cli_help(rotate_usage);
		default: return EXIT_USAGE;
		}
	}
	if ((r = one_id(ctl, argc, argv, &id)) != 0)
		return r;
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	r = apikey_key_rotate_with(s, id, &rp, &cli_actor, key, sizeof(key), &info);
	if (r == APIKEY_ERR_INVALID)
		return cli_fail(ctl, "refused: %s", apikey_store_why(s));
	if (r == APIKEY_ERR_CONFLICT)
		return cli_fail(ctl, "%s cannot be rotated: it is revoked, expired or already rotated", id);
	if (r != 0)
		return key_error(ctl, r, id, "not rotated");
	if (as_json && apikey_key_get(s, id, &old) == 0) {
		extra = json_object();
		json_object_set_new(extra, "old_key_expires_at", cli_time_json(old.expires_at_s));
	}
	cli_forget(ctl);
	r = print_new_key(ctl, key, &info, as_json, extra);
	explicit_bzero(key, sizeof(key));
	return r;
}

/* ---- update -------------------------------------------------------------------- */

static const char update_usage[] =
	"usage: apikeyctl update ID [--name NAME] [--scopes LIST | --preset NAME]\n"
	"                           [--rate-limit N] [--expires 90d|RFC3339|never]\n"
	"                           [--meta JSON] [--json]\n"
	"Change a key's attributes; what is not given is kept.  The same rules as\n"
	"create (scope catalogue, rate-limit tiers).  A revoked key, or one rotated\n"
	"away, cannot be edited; an expired one can be given a new expiry.  Every\n"
	"front end answers with the new values from its next request on (a scope\n"
	"taken away is refused at once).  Event \"updated\" names the fields changed.\n"
	"  --expires never    remove the expiry\n"
	"  --json             print the key's record afterwards as JSON\n";

int cmd_update(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "scopes", required_argument, NULL, 's' },
		{ "preset", required_argument, NULL, 'p' },
		{ "expires", required_argument, NULL, 'e' },
		{ "rate-limit", required_argument, NULL, 'r' },
		{ "meta", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct apikey_update_params p = { .expiry = APIKEY_EXPIRY_KEEP };
	struct apikey_key_info info;
	struct apikey_store *s;
	char *meta = NULL, *meta_arg = NULL;
	unsigned long long n;
	const char *id = NULL;
	bool as_json = false, any = false;
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		any |= c != 'j';
		switch (c) {
		case 'n': p.name = optarg; break;
		case 's': p.scopes = optarg; break;
		case 'p': p.preset = optarg; break;
		case 'e':
			if (cli_parse_expiry(ctl, "--expires", optarg, &p.expiry, &p.expires_at_s) != 0)
				return EXIT_USAGE;
			break;
		case 'r':
			if (cli_parse_uint(ctl, "--rate-limit", optarg, APIKEY_RATE_MIN, APIKEY_RATE_MAX, &n) != 0)
				return EXIT_USAGE;
			p.rate_limit = (uint32_t)n;
			break;
		case 'm': meta_arg = optarg; break;
		case 'j': as_json = true; break;
		case 'h': return cli_help(update_usage);
		default: return EXIT_USAGE;
		}
	}
	if ((r = one_id(ctl, argc, argv, &id)) != 0)
		return r;
	if (!any)
		return cli_usage(ctl, "nothing to change: give --name, --scopes, --preset, --rate-limit, "
		                 "--expires or --meta");
	if (p.scopes && p.preset)
		return cli_usage(ctl, "give at most one of --scopes and --preset");
	if (meta_arg && (r = parse_meta(ctl, meta_arg, &meta)) != 0)
		return r;
	p.metadata = meta;
	if (!(s = cli_store(ctl))) {
		json_free(meta);
		return EXIT_FAIL;
	}
	r = apikey_key_update(s, id, &p, &cli_actor, &info);
	json_free(meta);
	if (r == APIKEY_ERR_INVALID)
		return cli_fail(ctl, "refused: %s", apikey_store_why(s));
	if (r == APIKEY_ERR_CONFLICT)
		return cli_fail(ctl, "%s cannot be edited: it is revoked or rotated", id);
	if (r == APIKEY_ERR_NOT_FOUND && p.preset && apikey_store_why(s)[0])
		return cli_fail(ctl, "%s (see 'apikeyctl preset list')", apikey_store_why(s));
	if (r != 0)
		return key_error(ctl, r, id, "not updated");
	if (as_json)
		return cli_print_json(ctl, cli_key_json(&info, cli_now_s()));
	printf("updated %s\n", id);
	return EXIT_OK;
}

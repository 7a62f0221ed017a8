/* cmd_admin.c — the verbs around keys: presets, accounts, the audit log,
 * usage counts, pruning and the integrity check. */
#include <errno.h>
#include <string.h>
#include "cli.h"

/* ---- preset ------------------------------------------------------------------ */

static const char preset_usage[] =
	"usage: apikeyctl preset add NAME SCOPE...\n"
	"       apikeyctl preset list [--json]\n"
	"       apikeyctl preset rm NAME\n"
	"       apikeyctl preset sync\n"
	"Named scope sets that 'create --preset NAME' expands when a key is issued\n"
	"(changing a preset later does not change keys already issued).  Names are\n"
	"1-31 of [a-z0-9_-]; scopes must be in the scope catalogue (scopes=) when\n"
	"one is set.  'init' creates the presets the configuration declares\n"
	"(preset.NAME=), else read-only (*:read) and full-access (*).  'sync' adds\n"
	"or replaces the declared presets in an existing store (others are left)\n"
	"and prints what it did to each.\n";

struct preset_ctx { bool json; unsigned long count; };

static void synced(void *ctx, const char *name, const char *scopes, const char *what)
{
	(void)ctx;
	printf("preset %s: %s (%s)\n", name, scopes, what);
}

static int preset_one(void *vctx, const char *name, const char *scopes)
{
	struct preset_ctx *pc = vctx;

	if (pc->json) {
		json_t *o = json_object();
		if (o) {
			json_object_set_new(o, "name", json_string(name));
			json_object_set_new(o, "scopes", cli_scopes_json(scopes));
		}
		return cli_json_item(&pc->count, o);
	}
	printf("%-31s  %s\n", name, scopes);
	return ferror(stdout) ? APIKEY_ERR_IO : 0;
}

int cmd_preset(struct ctl *ctl, int argc, char **argv)
{
	struct preset_ctx pc = { 0 };
	struct apikey_store *s;
	char why[APIKEY_WHY_SIZE], scopes[APIKEY_SCOPES_SIZE] = "", norm[APIKEY_SCOPES_SIZE];
	const char *sub, *name;
	int r, nargs;

	if ((r = cli_common_opts(ctl, argc, argv, preset_usage, &pc.json)) != 0)
		return r < 0 ? EXIT_OK : r;
	nargs = argc - optind;
	if (nargs < 1)
		return cli_usage(ctl, "add, list, rm or sync?");
	sub = argv[optind];
	name = nargs > 1 ? argv[optind + 1] : NULL;
	if (!strcmp(sub, "list")) {
		if (nargs != 1)
			return cli_usage(ctl, "list takes no arguments");
		if (!(s = cli_store(ctl)))
			return EXIT_FAIL;
		if (pc.json)
			fputs("[", stdout);
		if ((r = apikey_preset_list(s, preset_one, &pc)) != 0)
			return cli_list_error(ctl, r, "cannot list presets");
		if (pc.json)
			cli_json_end(pc.count);
		return EXIT_OK;
	}
	if (pc.json)
		return cli_usage(ctl, "--json goes with 'preset list'");
	if (!strcmp(sub, "sync")) {
		if (nargs != 1)
			return cli_usage(ctl, "sync takes no arguments");
		if (!(s = cli_store(ctl)))
			return EXIT_FAIL;
		if (!ctl->cfg.profile.n_presets)
			return cli_fail(ctl, "the configuration declares no preset (preset.NAME=)");
		if ((r = apikey_preset_sync(s, &cli_actor, synced, NULL)) != 0)
			return cli_fail_err(ctl, r, "presets not synced");
		return EXIT_OK;
	}
	if (!strcmp(sub, "add")) {
		if (nargs < 3)
			return cli_usage(ctl, "add NAME SCOPE...: give a name and at least one scope");
		for (int i = optind + 2; i < argc; i++) {
			size_t n = strlen(scopes);
			if (snprintf(scopes + n, sizeof(scopes) - n, "%s%s", n ? "," : "", argv[i]) >=
			    (int)(sizeof(scopes) - n))
				return cli_usage(ctl, "too many scopes");
		}
		/* the shape here (a usage error); the catalogue with the store's profile */
		if (apikey_preset_check(NULL, name, scopes, why, sizeof(why)) != 0)
			return cli_usage(ctl, "%s", why);
		if (!(s = cli_store(ctl)))
			return EXIT_FAIL;
		if ((r = apikey_preset_set(s, name, scopes, &cli_actor)) == APIKEY_ERR_INVALID)
			return cli_fail(ctl, "refused: %s", apikey_store_why(s));
		if (r != 0)
			return cli_fail_err(ctl, r, "preset not saved");
		apikey_scopes_normalize(scopes, norm, sizeof(norm));
		printf("preset %s: %s\n", name, norm);
		return EXIT_OK;
	}
	if (!strcmp(sub, "rm")) {
		if (nargs != 2)
			return cli_usage(ctl, "rm NAME: one preset at a time");
		if (!(s = cli_store(ctl)))
			return EXIT_FAIL;
		if ((r = apikey_preset_remove(s, name, &cli_actor)) == APIKEY_ERR_NOT_FOUND)
			return cli_fail(ctl, "no preset named '%s'", cli_echo(ctl, name));
		if (r != 0)
			return cli_fail_err(ctl, r, "preset not removed");
		printf("removed preset %s\n", name);
		return EXIT_OK;
	}
	return cli_usage(ctl, "unknown preset command '%s' (add, list, rm or sync)", cli_echo(ctl, sub));
}

/* ---- account ------------------------------------------------------------------- */

static const char account_usage[] =
	"usage: apikeyctl account set USER [--plan PLAN] [--active yes|no]\n"
	"       apikeyctl account show USER [--json]\n"
	"An owner's account: a suspended owner's keys fail with ACCOUNT_INACTIVE, and\n"
	"a verifier that requires plans (require_plan=, verify --plan) fails keys of\n"
	"other plans with PLAN_REQUIRED.  An owner without an account record is active\n"
	"and has no plan.  'set' changes only the values given.\n";

int cmd_account(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "plan", required_argument, NULL, 'p' },
		{ "active", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct apikey_account a;
	struct apikey_store *s;
	const char *plan = NULL, *sub, *owner, *why;
	bool as_json = false;
	int c, r, active = -1;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'p': plan = optarg; break;
		case 'a':
			if (!strcmp(optarg, "yes"))
				active = 1;
			else if (!strcmp(optarg, "no"))
				active = 0;
			else
				return cli_usage(ctl, "--active: yes or no");
			break;
		case 'j': as_json = true; break;
		case 'h': return cli_help(account_usage);
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind != 2)
		return cli_usage(ctl, argc - optind < 2 ? "set USER or show USER" : "one user at a time");
	sub = argv[optind];
	owner = argv[optind + 1];
	if (!strcmp(sub, "set")) {
		if (as_json)
			return cli_usage(ctl, "--json goes with 'account show'");
		if (apikey_account_check(owner, plan, &why) != 0)
			return cli_usage(ctl, "%s", why);
		if (!(s = cli_store(ctl)))
			return EXIT_FAIL;
		if ((r = apikey_account_set(s, owner, plan, active, &cli_actor)) != 0)
			return cli_fail_err(ctl, r, "account not saved");
		/* fleet mode with no follower here: the replica does not show it yet */
		if ((r = apikey_account_get(s, owner, &a)) == APIKEY_ERR_NOT_FOUND && cli_fleet(ctl)) {
			printf("account %s saved upstream\n", owner);
			return EXIT_OK;
		}
		if (r != 0)
			return cli_fail_err(ctl, r, "cannot read the account back");
		printf("account %s: plan %s, %s\n", a.owner, a.plan[0] ? a.plan : "(none)",
		       a.active ? "active" : "suspended");
		return EXIT_OK;
	}
	if (!strcmp(sub, "show")) {
		if (plan || active >= 0)
			return cli_usage(ctl, "--plan and --active go with 'account set'");
		if (!(s = cli_store(ctl)))
			return EXIT_FAIL;
		if ((r = apikey_account_get(s, owner, &a)) == APIKEY_ERR_NOT_FOUND)
			return cli_fail(ctl, "no account recorded for '%s' (its keys count as active, "
			                "without a plan)", cli_echo(ctl, owner));
		if (r != 0)
			return cli_fail_err(ctl, r, "cannot read the account");
		if (as_json) {
			json_t *o = json_object();
			if (o) {
				json_object_set_new(o, "owner", json_string(a.owner));
				json_object_set_new(o, "plan", a.plan[0] ? json_string(a.plan) : json_null());
				json_object_set_new(o, "active", json_boolean(a.active));
			}
			return cli_print_json(ctl, o);
		}
		printf("owner:  %s\nplan:   %s\nactive: %s\n", a.owner, a.plan[0] ? a.plan : "(none)",
		       a.active ? "yes" : "no");
		return EXIT_OK;
	}
	return cli_usage(ctl, "unknown account command '%s' (set or show)", cli_echo(ctl, sub));
}

/* ---- log ---------------------------------------------------------------------------- */

static const char log_usage[] =
	"usage: apikeyctl log [--key ID] [--limit N] [--json]\n"
	"Audit events, newest first: created, updated (with the fields changed),\n"
	"revoked, rotated, imported, rehashed, failed (with the outcome as reason),\n"
	"account-updated, account-suspended, preset-set, preset-removed, pruned;\n"
	"each with its time and source (cli, pam:<service>, http:...).\n"
	"--limit defaults to 100; 0 shows all.  In fleet mode (upstream=) the\n"
	"fleet's log is read from the upstream: every writer's events and every\n"
	"host's own (shipped by its apikeyd each second), the source naming the host.\n";

struct event_ctx { bool json; unsigned long count; };

static int event_one(void *vctx, const struct apikey_event *e)
{
	struct event_ctx *ec = vctx;
	char t[32];

	if (ec->json) {
		json_t *o = json_object();
		if (o) {
			json_object_set_new(o, "at", cli_time_json(e->at_s));
			json_object_set_new(o, "key_id", e->key_id[0] ? json_string(e->key_id) : json_null());
			json_object_set_new(o, "event", json_string(e->event));
			json_object_set_new(o, "reason", e->reason[0] ? json_string(e->reason) : json_null());
			json_object_set_new(o, "source", e->source[0] ? json_string(e->source) : json_null());
		}
		return cli_json_item(&ec->count, o);
	}
	cli_time_text(e->at_s, "-", t);
	printf("%-20s  %-18s  %-20s  %-18s  %s\n", t, e->event, e->key_id[0] ? e->key_id : "-",
	       e->reason[0] ? e->reason : "-", e->source[0] ? e->source : "-");
	return ferror(stdout) ? APIKEY_ERR_IO : 0;
}

int cmd_log(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct event_ctx ec = { 0 };
	struct apikey_store *s;
	unsigned long long limit = 100;
	const char *id = NULL;
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'k':
			if (!apikey_id_valid(optarg))
				return cli_usage(ctl, "--key: not a key id (key_ followed by 16 letters and digits)");
			id = optarg;
			break;
		case 'l':
			if (cli_parse_uint(ctl, "--limit", optarg, 0, 1000000000, &limit) != 0)
				return EXIT_USAGE;
			break;
		case 'j': ec.json = true; break;
		case 'h': return cli_help(log_usage);
		default: return EXIT_USAGE;
		}
	}
	if ((r = cli_no_more_args(ctl, argc, argv)) != 0)
		return r;
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	if (ec.json)
		fputs("[", stdout);
	else
		printf("%-20s  %-18s  %-20s  %-18s  %s\n", "TIME", "EVENT", "KEY", "REASON", "SOURCE");
	/* fleet mode: the fleet's log is upstream (this replica holds only its own) */
	if ((r = cli_fleet(ctl) ? apikey_upstream_events(s, &ctl->set.up, id, (unsigned)limit, event_one, &ec)
	                        : apikey_event_list(s, id, (unsigned)limit, event_one, &ec)) != 0)
		return cli_list_error(ctl, r, "cannot list events");
	if (ec.json)
		cli_json_end(ec.count);
	return EXIT_OK;
}

/* ---- usage ------------------------------------------------------------------------------ */

static const char usage_usage[] =
	"usage: apikeyctl usage [--owner USER] [--json]\n"
	"Each key's use count and last use (successful verifications).\n";

struct usage_ctx { bool json; unsigned long count; };

static int usage_one(void *vctx, const struct apikey_key_info *k)
{
	struct usage_ctx *uc = vctx;
	char t[32];

	if (uc->json) {
		json_t *o = json_object();
		if (o) {
			json_object_set_new(o, "id", json_string(k->id));
			json_object_set_new(o, "hint", json_string(k->hint));
			json_object_set_new(o, "owner", json_string(k->owner));
			json_object_set_new(o, "name", json_string(k->name));
			json_object_set_new(o, "use_count", json_integer((json_int_t)k->use_count));
			json_object_set_new(o, "last_used_at", cli_time_json(k->last_used_at_s));
		}
		return cli_json_item(&uc->count, o);
	}
	cli_time_text(k->last_used_at_s, "never", t);
	printf("%-20s  %-20s  %-16s  %10llu  %s\n", k->id, k->hint, k->owner,
	       (unsigned long long)k->use_count, t);
	return ferror(stdout) ? APIKEY_ERR_IO : 0;
}

int cmd_usage(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "owner", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct usage_ctx uc = { 0 };
	struct apikey_store *s;
	const char *owner = NULL;
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'o': owner = optarg; break;
		case 'j': uc.json = true; break;
		case 'h': return cli_help(usage_usage);
		default: return EXIT_USAGE;
		}
	}
	if ((r = cli_no_more_args(ctl, argc, argv)) != 0)
		return r;
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	if (uc.json)
		fputs("[", stdout);
	else
		printf("%-20s  %-20s  %-16s  %10s  %s\n", "ID", "HINT", "OWNER", "USES", "LAST USED");
	if ((r = apikey_key_list(s, owner, usage_one, &uc)) != 0)
		return cli_list_error(ctl, r, "cannot list usage");
	if (uc.json)
		cli_json_end(uc.count);
	return EXIT_OK;
}

/* ---- prune ------------------------------------------------------------------------------- */

static const char prune_usage[] =
	"usage: apikeyctl prune [--before 90d|RFC3339]\n"
	"Remove keys revoked or expired before the cut-off (default: 90 days ago; a\n"
	"cut-off in the future prunes as of now), with their usage and rate-limit\n"
	"state, and the audit events older than it, except the lifecycle events of\n"
	"keys still stored and earlier prune records.  A key that can still verify\n"
	"(active, or rotating within its grace) is never removed.  Each removed key\n"
	"and the run itself leave a \"pruned\" event.\n";

int cmd_prune(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "before", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct apikey_store *s;
	int64_t before = cli_now_s() - 90 * 86400;
	unsigned keys, events;
	char t[32];
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'b':
			if (cli_parse_when(ctl, "--before", optarg, false, &before) != 0)
				return EXIT_USAGE;
			break;
		case 'h': return cli_help(prune_usage);
		default: return EXIT_USAGE;
		}
	}
	if ((r = cli_no_more_args(ctl, argc, argv)) != 0)
		return r;
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	if ((r = apikey_prune(s, before, &cli_actor, &keys, &events)) != 0)
		return cli_fail_err(ctl, r, "nothing pruned");
	apikey_format_time(before < cli_now_s() ? before : cli_now_s(), t);
	printf("pruned %u keys and %u events from before %s\n", keys, events, t);
	return EXIT_OK;
}

/* ---- db check ----------------------------------------------------------------------------- */

static const char db_usage[] =
	"usage: apikeyctl db check\n"
	"Open the store (schema version, pepper) and run SQLite's integrity check.\n"
	"Every problem found is printed; exit 1 if there is any.  With a scope\n"
	"catalogue (scopes=), stored presets and live keys naming a scope outside\n"
	"it are listed too (they keep working: a note, not a problem).\n";

struct outside_ctx { const struct apikey_profile *p; unsigned long n; int64_t now; };

/* Print each scope of list outside the catalogue, for what (a key or preset). */
static void outside(struct outside_ctx *oc, const char *what, const char *name, const char *list)
{
	const char *cur = list, *item;
	size_t n;

	while (apikey_list_next(&cur, &item, &n))
		if (!apikey_scope_in_catalogue(oc->p, item, n)) {
			printf("outside the scope catalogue: %s %s: %.*s\n", what, name, (int)n, item);
			oc->n++;
		}
}

static int outside_key(void *ctx, const struct apikey_key_info *k)
{
	struct outside_ctx *oc = ctx;
	enum apikey_key_status st = apikey_key_status(k, oc->now);

	if (st == APIKEY_KEY_ACTIVE || st == APIKEY_KEY_ROTATING)
		outside(oc, "key", k->id, k->scopes);
	return 0;
}

static int outside_preset(void *ctx, const char *name, const char *scopes)
{
	outside(ctx, "preset", name, scopes);
	return 0;
}

int cmd_db(struct ctl *ctl, int argc, char **argv)
{
	struct apikey_store *s;
	int r;

	if ((r = cli_common_opts(ctl, argc, argv, db_usage, NULL)) != 0)
		return r < 0 ? EXIT_OK : r;
	if (argc - optind != 1 || strcmp(argv[optind], "check") != 0)
		return cli_usage(ctl, "the only db command is 'check'");
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	ctl->log_direct = true;     /* every problem the check finds, one line each */
	r = apikey_store_check(s);
	ctl->log_direct = false;
	if (r != 0)
		return cli_fail_err(ctl, r, "integrity check failed");
	printf("%s: ok\n", ctl->cfg.db_path);
	if (ctl->cfg.profile.n_catalogue) {
		struct outside_ctx oc = { &ctl->cfg.profile, 0, cli_now_s() };
		if ((r = apikey_preset_list(s, outside_preset, &oc)) != 0 ||
		    (r = apikey_key_list(s, NULL, outside_key, &oc)) != 0)
			return cli_fail_err(ctl, r, "cannot read the store");
		printf("%lu scope%s outside the scope catalogue\n", oc.n, oc.n == 1 ? "" : "s");
	}
	return EXIT_OK;
}

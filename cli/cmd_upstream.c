/* cmd_upstream.c — fleet mode in apikeyctl (SPEC §9): `upstream init`
 * (the schema, the pepper's fingerprint), `upstream roles` (the SQL of the
 * least-privilege roles), `upstream prune-log`, and `status` (the store,
 * and in fleet mode this host's replica: its follower, position and lag). */
#include <string.h>
#include <time.h>
#include "cli.h"

bool cli_fleet(const struct ctl *ctl)
{
	return apikey_upstream_set(&ctl->set.up);
}

void cli_note_stale_replica(struct ctl *ctl)
{
	struct apikey_follower_status st;

	if (cli_fleet(ctl) && apikey_follower_status_read(ctl->cfg.db_path, &st) == APIKEY_ERR_NOT_FOUND)
		fprintf(stderr, "apikeyctl: %s: note: no follower runs on this host: %s may be behind the upstream "
		        "(apikeyd keeps it current)\n", ctl->verb, ctl->cfg.db_path);
}

/* ---- upstream ------------------------------------------------------------------- */

static const char upstream_usage[] =
	"usage: apikeyctl upstream init [--import-local]\n"
	"       apikeyctl upstream roles\n"
	"       apikeyctl upstream prune-log [--keep 7d]\n"
	"Fleet mode (upstream= in apikey.conf, see apikey.conf(5)):\n"
	"  init       create or migrate the upstream schema in PostgreSQL (idempotent)\n"
	"             and record the fingerprint of this host's pepper: every host of\n"
	"             the fleet must hold the same pepper file.  --import-local seeds a\n"
	"             new (empty) upstream with this host's keys, accounts and presets:\n"
	"             a host with keys of its own becomes the first of a fleet\n"
	"  roles      print the SQL of the least-privilege roles (apikey_follower for\n"
	"             apikeyd, apikey_writer for apikeyctl and the admin API)\n"
	"  prune-log  drop change-log entries older than --keep (default 7d); a\n"
	"             replica behind the log's new start resyncs by itself\n";

static int upstream_init(struct ctl *ctl, bool import_local)
{
	char fleet[APIKEY_UUID_LEN + 1];
	struct apikey_store *s;
	unsigned long imported;
	int r, from, to;

	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	if ((r = apikey_upstream_init(s, &ctl->set.up, import_local, &from, &to, fleet, &imported)) != 0)
		return cli_fail_err(ctl, r, "upstream not initialised");
	if (import_local)
		printf("imported %lu keys of %s into the upstream\n", imported, ctl->cfg.db_path);
	if (from == to)
		printf("upstream schema %d is current (fleet %s)\n", to, fleet);
	else
		printf("upstream schema %s %d (fleet %s)\n", from ? "migrated from version" : "created at version",
		       from ? from : to, fleet);
	if (from && from != to)
		printf("now at version %d\n", to);
	return EXIT_OK;
}

static int upstream_prune_log(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keep", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct apikey_store *s;
	int64_t keep = 7 * 86400;
	long long removed;
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'k':
			if (apikey_parse_duration(optarg, &keep) != 0)
				return cli_usage(ctl, "--keep: '%s' is not a duration (7d, 12h, 0)", cli_echo(ctl, optarg));
			break;
		case 'h': return cli_help(upstream_usage);
		default: return EXIT_USAGE;
		}
	}
	if ((r = cli_no_more_args(ctl, argc, argv)) != 0)
		return r;
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	if ((r = apikey_upstream_prune_log(s, &ctl->set.up, keep, &removed)) != 0)
		return cli_fail_err(ctl, r, "change log not pruned");
	printf("pruned %lld change-log rows\n", removed);
	return EXIT_OK;
}

int cmd_upstream(struct ctl *ctl, int argc, char **argv)
{
	const char *sub;
	int r;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return cli_help(upstream_usage);
	if (argc < 2)
		return cli_usage(ctl, "init, roles or prune-log?");
	sub = argv[1];
	if (!strcmp(sub, "roles")) {
		if (argc > 2)
			return cli_usage(ctl, "roles takes no arguments");
		fputs(apikey_upstream_roles_sql(), stdout);
		return EXIT_OK;
	}
	if (strcmp(sub, "init") && strcmp(sub, "prune-log"))
		return cli_usage(ctl, "unknown upstream command '%s' (init, roles, prune-log)", cli_echo(ctl, sub));
	if ((r = cli_config(ctl)) != 0)
		return r;
	if (!cli_fleet(ctl))
		return cli_fail(ctl, "no upstream= in the configuration: fleet mode is off (apikey.conf(5))");
	if (!strcmp(sub, "init")) {
		bool import_local = argc == 3 && !strcmp(argv[2], "--import-local");
		if (argc > 3 || (argc == 3 && !import_local))
			return cli_usage(ctl, "init takes only --import-local");
		return upstream_init(ctl, import_local);
	}
	optind = 1;   /* getopt over "prune-log [--keep D]" */
	return upstream_prune_log(ctl, argc - 1, argv + 1);
}

/* ---- status ------------------------------------------------------------------------ */

static const char status_usage[] =
	"usage: apikeyctl status [--json]\n"
	"The key store, and in fleet mode this host's replica: the fleet it\n"
	"belongs to, the follower keeping it (apikeyd), the upstream transaction\n"
	"it has applied, the upstream's head, and how stale it is.\n"
	"Exit 1 when the store cannot be read.\n";

static void time_text(int64_t ms, char out[32])
{
	if (!ms)
		snprintf(out, 32, "never");
	else
		apikey_format_time(ms / 1000, out);
}

int cmd_status(struct ctl *ctl, int argc, char **argv)
{
	struct apikey_follower_status fs;
	struct apikey_fleet_state rs;
	struct apikey_store *s;
	bool as_json = false, following;
	char t1[32], t2[32];
	int r;

	if ((r = cli_common_opts(ctl, argc, argv, status_usage, &as_json)) != 0)
		return r < 0 ? EXIT_OK : r;
	if ((r = cli_no_more_args(ctl, argc, argv)) != 0)
		return r;
	if (!(s = cli_store(ctl)))
		return EXIT_FAIL;
	if ((r = apikey_replica_state(s, &rs)) != 0)
		return cli_fail_err(ctl, r, "cannot read the store");
	following = apikey_follower_status_read(ctl->cfg.db_path, &fs) == 0;
	if (as_json) {
		json_t *o = json_object(), *f = json_object();
		json_object_set_new(o, "store", json_string(ctl->cfg.db_path));
		json_object_set_new(o, "fleet_mode", json_boolean(cli_fleet(ctl)));
		json_object_set_new(o, "fleet_id", rs.fleet_id[0] ? json_string(rs.fleet_id) : json_null());
		json_object_set_new(o, "replica_id", rs.replica_id[0] ? json_string(rs.replica_id) : json_null());
		json_object_set_new(o, "applied_seq", json_integer(rs.applied_seq));
		if (following) {
			json_object_set_new(f, "pid", json_integer(fs.pid));
			json_object_set_new(f, "state", json_string(apikey_follower_state_name(fs.state)));
			json_object_set_new(f, "upstream", json_string(fs.upstream));
			json_object_set_new(f, "head_seq", json_integer(fs.head_seq));
			json_object_set_new(f, "lag_seq", json_integer(fs.head_seq > rs.applied_seq ?
			                                                 fs.head_seq - rs.applied_seq : 0));
			json_object_set_new(f, "staleness_seconds", json_real((double)fs.staleness_ms / 1000));
			json_object_set_new(f, "last_contact", cli_time_json(fs.last_contact_ms / 1000));
			json_object_set_new(f, "resyncs", json_integer((json_int_t)fs.resyncs));
			json_object_set_new(f, "rebuilds", json_integer((json_int_t)fs.rebuilds));
			json_object_set_new(f, "error", fs.error[0] ? json_string(fs.error) : json_null());
			json_object_set_new(o, "follower", f);
		} else {
			json_decref(f);
			json_object_set_new(o, "follower", json_null());
		}
		return cli_print_json(ctl, o);
	}
	printf("store:        %s\n", ctl->cfg.db_path);
	if (!rs.fleet_id[0] && !cli_fleet(ctl)) {
		printf("fleet mode:   off (no upstream= configured)\n");
		return EXIT_OK;
	}
	printf("fleet:        %s\n", rs.fleet_id[0] ? rs.fleet_id : "(not a replica yet)");
	printf("replica:      %s\n", rs.replica_id[0] ? rs.replica_id : "-");
	printf("applied seq:  %lld\n", (long long)rs.applied_seq);
	if (!following) {
		printf("follower:     none on this host (run apikeyd, or apikeyd --no-http)\n");
		return EXIT_OK;
	}
	time_text(fs.last_contact_ms, t1);
	time_text(fs.synced_ms, t2);
	printf("follower:     pid %ld, %s\n", fs.pid, apikey_follower_state_name(fs.state));
	printf("upstream:     %s\n", fs.upstream[0] ? fs.upstream : "-");
	printf("upstream seq: %lld (%lld behind)\n", (long long)fs.head_seq,
	       (long long)(fs.head_seq > rs.applied_seq ? fs.head_seq - rs.applied_seq : 0));
	printf("staleness:    %.1f s%s\n", (double)fs.staleness_ms / 1000, fs.staleness_ms ? "" : " (current)");
	printf("last contact: %s\n", t1);
	printf("last in sync: %s\n", t2);
	printf("resyncs:      %llu, rebuilds %llu, errors %llu\n", (unsigned long long)fs.resyncs,
	       (unsigned long long)fs.rebuilds, (unsigned long long)fs.errors);
	if (fs.error[0])
		printf("last error:   %s\n", fs.error);
	return EXIT_OK;
}

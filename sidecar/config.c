/* config.c — apikeyd's configuration: its command line, its own settings
 * (bound by name into the core's one grammar of apikey.conf), and the
 * lookup order every front end shares (the core's apikey_config_read), with
 * the flags that override the file on top. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sidecar.h"

#define APIKEYD_VERSION "0.1"

static const struct apikey_binding bindings[] = {
	APIKEY_BIND_LIST(struct sc_settings, listen, n_listen, "listen"),
	APIKEY_BIND(struct sc_settings, threads, "threads", APIKEY_OPT_UINT),
	APIKEY_BIND(struct sc_settings, key_header, "key_header", APIKEY_OPT_TEXT),
	APIKEY_BIND(struct sc_settings, key_query, "key_query", APIKEY_OPT_TEXT),
	APIKEY_BIND(struct sc_settings, auth_error_body, "auth_error_body", APIKEY_OPT_CHOICE),
	APIKEY_BIND(struct sc_settings, ratelimit_draft_headers, "ratelimit_draft_headers", APIKEY_OPT_BOOL),
	APIKEY_BIND(struct sc_settings, access_log, "access_log", APIKEY_OPT_TEXT),
	APIKEY_BIND(struct sc_settings, require_plan, "require_plan", APIKEY_OPT_TEXT),
	APIKEY_BIND(struct sc_settings, admin_api, "admin_api", APIKEY_OPT_BOOL),
	APIKEY_BIND(struct sc_settings, admin_cors_origins, "admin_cors_origins", APIKEY_OPT_TEXT),
	APIKEY_UPSTREAM_BINDINGS(struct sc_settings, up),
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: apikeyd [-dn] [-f FILE | --conf FILE] [--db PATH]\n"
	        "               [--listen HOST:PORT | --listen unix:PATH]... [--threads N]\n"
	        "  -d            debug: log debug lines too (apikeyd always stays in the foreground)\n"
	        "  -n            check the configuration and the key store, then exit\n"
	        "  -f, --conf    configuration file (default $APIKEY_CONF or " APIKEY_CONF_DEFAULT ")\n"
	        "  --db          key store (default $APIKEY_DB, db= in the file, or " APIKEY_DB_DEFAULT ")\n"
	        "  --listen      address to serve; repeatable (default " SIDECAR_LISTEN_DEFAULT ")\n"
	        "  --threads     worker threads (default: online CPUs)\n"
	        "  --routes      print the served routes and exit\n"
	        "  --no-http     fleet mode: only keep the replica at --db current (hosts with PAM only)\n");
}

int sc_parse_options(int argc, char **argv, struct sc_options *o)
{
	enum { OPT_DB = 256, OPT_LISTEN, OPT_THREADS, OPT_ROUTES, OPT_VERSION, OPT_NO_HTTP };
	static const struct option longopts[] = {
		{ "conf", required_argument, NULL, 'f' },
		{ "db", required_argument, NULL, OPT_DB },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "routes", no_argument, NULL, OPT_ROUTES },
		{ "no-http", no_argument, NULL, OPT_NO_HTTP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "dnf:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->debug = true; break;
		case 'n': o->check = true; break;
		case 'f': o->conf = optarg; break;
		case OPT_DB:
			if (!optarg[0]) {
				fprintf(stderr, "apikeyd: --db: empty path\n");
				return 2;
			}
			o->db = optarg;
			break;
		case OPT_LISTEN:
			if (o->n_listen == SIDECAR_LISTEN_MAX) {
				fprintf(stderr, "apikeyd: at most %d --listen addresses\n", SIDECAR_LISTEN_MAX);
				return 2;
			}
			o->listen[o->n_listen++] = optarg;
			break;
		case OPT_THREADS:
			if (apikey_parse_uint(optarg, 1, SIDECAR_THREADS_MAX, &o->threads) != 0) {
				fprintf(stderr, "apikeyd: --threads: must be 1..%d\n", SIDECAR_THREADS_MAX);
				return 2;
			}
			o->threads_set = true;
			break;
		case OPT_ROUTES: o->routes = true; break;
		case OPT_NO_HTTP: o->no_http = true; break;
		case OPT_VERSION:
			printf("apikeyd %s\n", APIKEYD_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "apikeyd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

int sc_config_load(const struct sc_options *o, struct sc_config *c)
{
	struct apikey_config_sources src = { .conf = o->conf, .env = true, .db = o->db };
	struct apikey_settings fe = { bindings, sizeof(bindings) / sizeof(bindings[0]), &c->set };
	int r;

	memset(c, 0, sizeof(*c));
	apikey_config_defaults(&c->core);
	apikey_upstream_defaults(&c->set.up);
	c->set.auth_error_body = SC_BODY_JSON;
	if (!apikey_config_file(&src))
		log_debug("%s: not found, using defaults", APIKEY_CONF_DEFAULT);
	if ((r = apikey_config_read(&c->core, &fe, &src, sc_core_log, NULL)) != 0)
		return r;
	if (o->n_listen) {
		c->set.n_listen = 0;
		for (unsigned i = 0; i < o->n_listen; i++) {
			char opt[APIKEY_LINE_MAX], err[160];
			snprintf(opt, sizeof(opt), "listen=%s", o->listen[i]);
			if (apikey_config_apply(&c->core, &fe, opt, err, sizeof(err)) != 0)
				return log_errx("--listen %s: %s", o->listen[i], err), APIKEY_ERR_CONFIG;
		}
	}
	if (c->set.n_listen == 0) {
		snprintf(c->set.listen[0], sizeof(c->set.listen[0]), "%s", SIDECAR_LISTEN_DEFAULT);
		c->set.n_listen = 1;
	}
	if (o->threads_set)
		c->set.threads = (unsigned)o->threads;
	return 0;
}

bool sc_config_same_listen(const struct sc_settings *a, const struct sc_settings *b)
{
	if (a->n_listen != b->n_listen)
		return false;
	for (unsigned i = 0; i < a->n_listen; i++)
		if (strcmp(a->listen[i], b->listen[i]))
			return false;
	return true;
}

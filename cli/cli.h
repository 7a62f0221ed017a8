/* cli.h — what apikeyctl's files share: the run context, the verb table's
 * entry type, error reporting and the JSON/time helpers of every listing. */
#ifndef APIKEYCTL_CLI_H
#define APIKEYCTL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include "apikey.h"
#include "../upstream/upstream.h"

/* Exit codes (apikeyctl(1)). */
#define EXIT_OK     0
#define EXIT_FAIL   1
#define EXIT_USAGE  2

/* The writer of every audit event apikeyctl causes: source "cli", no acting key. */
extern const struct apikey_actor cli_actor;
#define CLI_MSG_SIZE    512             /* one core message kept for an error line */

/* apikeyctl's own settings of apikey.conf (bound by name: cli_config). */
struct cli_settings {
	struct apikey_upstream_options up;      /* fleet mode (apikey.conf(5) FLEET MODE) */
};

/* One run of apikeyctl: configuration, the store (opened on demand) and the
 * first core message since the last error line (see cli_fail). */
struct ctl {
	struct apikey_config cfg;
	struct cli_settings set;
	struct apikey_store *store;
	const char *verb;               /* for error lines: "apikeyctl: <verb>: ..." */
	const char *opt_db, *opt_conf;  /* --db, --conf (borrowed from argv) */
	bool cfg_loaded;
	bool log_direct;                /* print core messages at once (config, db check) */
	char core_msg[CLI_MSG_SIZE];    /* first held core message, "" when none */
	unsigned core_held;             /* messages held since the last error line */
};

struct cmd {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
	const char *help;                /* one line for "apikeyctl help" */
};

/* cli/apikeyctl.c */
/* The core's log sink: holds messages for the next error line, or prints. */
void cli_log(void *ctx, int priority, const char *msg);
/* Read the configuration once, in the core's lookup order
 * (apikey_config_read: --conf, $APIKEY_CONF, /etc/apikey/apikey.conf if it
 * exists; then --db or $APIKEY_DB).  0, or EXIT_FAIL after an error line. */
int cli_config(struct ctl *ctl);
/* Open the store once (later calls return the open one).  On failure prints
 * the error line and returns NULL. */
struct apikey_store *cli_store(struct ctl *ctl);
/* "apikeyctl: <verb>: <message>[: <core detail>]" on stderr; returns EXIT_FAIL. */
int cli_fail(struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same line for an APIKEY_ERR_* (what names the action, or NULL). */
int cli_fail_err(struct ctl *ctl, int err, const char *what);
/* s for an error line, or "(not shown)" when it could be a key (it fits the
 * key profile), is longer than 40 or not printable: errors never echo a key. */
const char *cli_echo(struct ctl *ctl, const char *s);
/* Write a secret to stdout unbuffered (nothing left in stdio's buffer). */
int cli_write_secret(struct ctl *ctl, const char *buf, size_t len);
/* Print a JSON object carrying a key the same way; takes ownership. */
int cli_print_secret_json(struct ctl *ctl, json_t *v);
/* "apikeyctl: <verb>: <message> (try 'apikeyctl <verb> --help')"; returns EXIT_USAGE. */
int cli_usage(struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop held core messages without printing them. */
void cli_forget(struct ctl *ctl);
/*
 * getopt_long over a verb's arguments (argv[0] is the verb).  Returns the
 * option, -1 at the end, or '?' after printing a usage line for an unknown
 * option or a missing argument.  "--help" must be in longopts as 'h'.
 */
int cli_getopt(struct ctl *ctl, int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/* Print a verb's usage on stdout; returns EXIT_OK. */
int cli_help(const char *usage);
/*
 * The options of a verb that takes only --help and, when as_json is given,
 * --json.  Returns 0 to go on, -1 after printing the help (exit 0), or
 * EXIT_USAGE after a usage line.
 */
int cli_common_opts(struct ctl *ctl, int argc, char **argv, const char *usage, bool *as_json);

/* 0, or a usage line (EXIT_USAGE) when arguments are left after the options. */
int cli_no_more_args(struct ctl *ctl, int argc, char **argv);

/* Parsing of flag values: 0 or a usage line already printed (EXIT_USAGE). */
int cli_parse_uint(struct ctl *ctl, const char *flag, const char *s,
                   unsigned long long min, unsigned long long max, unsigned long long *out);
/* "90d" (from now) or RFC 3339 → unix seconds; future_only refuses the past. */
int cli_parse_when(struct ctl *ctl, const char *flag, const char *s, bool future,
                   int64_t *out_s);
/* --expires of update and rotate: a future time as cli_parse_when, or
 * "never" (APIKEY_EXPIRY_NEVER). */
int cli_parse_expiry(struct ctl *ctl, const char *flag, const char *s, enum apikey_expiry_change *expiry,
                     int64_t *out_s);

/* JSON and text output */
json_t *cli_time_json(int64_t unix_s);          /* RFC 3339 string, or null for 0 */
void cli_time_text(int64_t unix_s, const char *never, char out[32]);
/* The core's name of the key's status now (apikey_key_status). */
const char *cli_key_status(const struct apikey_key_info *k, int64_t now_s);
json_t *cli_scopes_json(const char *scopes);     /* "a:b,c:d" → ["a:b","c:d"] */
json_t *cli_key_json(const struct apikey_key_info *k, int64_t now_s);
/* Print v as JSON (indented) and a newline on stdout; takes ownership. */
int cli_print_json(struct ctl *ctl, json_t *v);
/*
 * Listings stream a JSON array, one compact object per line, so a million
 * keys are never held in memory: print "[", then cli_json_item for each
 * object (takes ownership; 0, APIKEY_ERR_NOMEM or APIKEY_ERR_IO), then
 * cli_json_end.
 */
int cli_json_item(unsigned long *count, json_t *o);
void cli_json_end(unsigned long count);
/* The error line of a listing that failed (APIKEY_ERR_IO: the output). */
int cli_list_error(struct ctl *ctl, int r, const char *what);
int64_t cli_now_s(void);                          /* unix seconds */

/* The verbs (cli/cmd_*.c) */
int cmd_init(struct ctl *ctl, int argc, char **argv);
int cmd_create(struct ctl *ctl, int argc, char **argv);
int cmd_list(struct ctl *ctl, int argc, char **argv);
int cmd_show(struct ctl *ctl, int argc, char **argv);
int cmd_revoke(struct ctl *ctl, int argc, char **argv);
int cmd_update(struct ctl *ctl, int argc, char **argv);
int cmd_rotate(struct ctl *ctl, int argc, char **argv);
int cmd_verify(struct ctl *ctl, int argc, char **argv);
int cmd_preset(struct ctl *ctl, int argc, char **argv);
int cmd_account(struct ctl *ctl, int argc, char **argv);
int cmd_log(struct ctl *ctl, int argc, char **argv);
int cmd_usage(struct ctl *ctl, int argc, char **argv);
int cmd_prune(struct ctl *ctl, int argc, char **argv);
int cmd_db(struct ctl *ctl, int argc, char **argv);
int cmd_import(struct ctl *ctl, int argc, char **argv);
int cmd_status(struct ctl *ctl, int argc, char **argv);
int cmd_upstream(struct ctl *ctl, int argc, char **argv);

/* cli/cmd_upstream.c: fleet mode in the verbs.  Does this run write
 * upstream (upstream= set)?  And a note on stderr when it reads a replica
 * that no follower on this host keeps current. */
bool cli_fleet(const struct ctl *ctl);
void cli_note_stale_replica(struct ctl *ctl);

#endif

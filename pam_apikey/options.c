/* options.c — the module's configuration: apikey_config defaults, then the
 * conf file, then the module arguments (one grammar, apikey_config_apply),
 * plus the flags only the module reads.  Problems are logged through
 * pam_syslog and never widen access. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <security/pam_ext.h>
#include "module.h"

void log_sink(void *ctx, int priority, const char *msg)
{
	const struct log_ctx *l = ctx;
	int prio = priority & LOG_PRIMASK;

	if (!l || !l->pamh || (prio >= LOG_DEBUG && !l->debug))
		return;
	pam_syslog(l->pamh, prio, "%s", msg);
}

/* Flags the module reads itself; the rest is the shared grammar. */
static bool module_flag(struct pam_opts *o, const char *arg)
{
	if (!strcmp(arg, "debug"))
		o->debug = true;
	else if (!strcmp(arg, "use_first_pass"))
		o->use_first_pass = true;
	else if (!strcmp(arg, "try_first_pass"))
		o->try_first_pass = true;
	else if (!strcmp(arg, "ignore_unknown_user"))
		o->ignore_unknown_user = true;
	else if (!strncmp(arg, "conf=", 5))
		;   /* read in the first pass */
	else
		return false;
	return true;
}

/* The conf file: conf= names one that must be read; otherwise the default
 * is read when it exists.  An unreadable file marks the options broken:
 * it might have held the db path or a plan requirement. */
static void load_conf(pam_handle_t *pamh, struct pam_opts *o, const char *given,
                      struct log_ctx *lc)
{
	int r;

	if (given) {
		if (!given[0] || (size_t)snprintf(o->conf, sizeof(o->conf), "%s", given) >= sizeof(o->conf)) {
			pam_syslog(pamh, LOG_ERR, "conf= needs a path shorter than %d characters",
			           APIKEY_PATH_SIZE);
			o->conf[0] = '\0';
			o->broken = true;
			return;
		}
	} else if (access(APIKEY_CONF_DEFAULT, F_OK) == 0) {
		snprintf(o->conf, sizeof(o->conf), "%s", APIKEY_CONF_DEFAULT);
	} else {
		return;
	}
	r = apikey_config_load(&o->cfg, o->conf, log_sink, lc);
	if (r == APIKEY_ERR_IO || r == APIKEY_ERR_NOMEM) {
		pam_syslog(pamh, LOG_ERR, "cannot read %s: refusing to authenticate", o->conf);
		o->broken = true;
	} else if (r != 0) {
		/* each problem is logged by the core; those options keep their
		 * previous, safe values */
		pam_syslog(pamh, LOG_WARNING, "%s has errors; the options concerned keep safe defaults",
		           o->conf);
	}
}

struct pam_opts *opts_parse(pam_handle_t *pamh, int argc, const char **argv)
{
	struct pam_opts *o = calloc(1, sizeof(*o));
	struct log_ctx lc = { .pamh = pamh };
	const char *conf = NULL;
	char err[160];

	if (!o) {
		pam_syslog(pamh, LOG_CRIT, "out of memory");
		return NULL;
	}
	apikey_config_defaults(&o->cfg);
	/* First pass: module flags, so debug and conf= hold before the rest. */
	for (int i = 0; i < argc; i++) {
		if (!argv[i])
			continue;
		module_flag(o, argv[i]);
		if (!strncmp(argv[i], "conf=", 5))
			conf = argv[i] + 5;
	}
	lc.debug = o->debug;
	load_conf(pamh, o, conf, &lc);
	/* Second pass: the shared grammar; arguments override the file. */
	for (int i = 0; i < argc; i++) {
		int r;

		if (!argv[i] || module_flag(o, argv[i]))
			continue;
		r = apikey_config_apply(&o->cfg, argv[i], err, sizeof(err));
		if (r == APIKEY_ERR_UNKNOWN_OPTION)
			pam_syslog(pamh, LOG_ERR, "unknown option '%.64s' ignored", argv[i]);
		else if (r == APIKEY_ERR_NOMEM)
			o->broken = true;
		else if (r != 0)
			pam_syslog(pamh, LOG_ERR, "bad option (%s); the previous value is kept", err);
	}
	if (apikey_format_validate(&o->cfg.format) != 0) {
		pam_syslog(pamh, LOG_ERR, "key format profile is inconsistent; using the default profile");
		apikey_format_default(&o->cfg.format);
	}
	if (o->use_first_pass && o->try_first_pass) {
		pam_syslog(pamh, LOG_WARNING, "use_first_pass and try_first_pass given: use_first_pass wins");
		o->try_first_pass = false;
	}
	if (o->debug)
		pam_syslog(pamh, LOG_DEBUG, "options: conf=%s db=%s scope=%s require_plan=%s "
		           "busy_timeout_ms=%u%s%s%s", o->conf[0] ? o->conf : "(none)", o->cfg.db_path,
		           o->cfg.scope[0] ? o->cfg.scope : "(pam:<service>)",
		           o->cfg.require_plan[0] ? o->cfg.require_plan : "(any)", o->cfg.busy_timeout_ms,
		           o->use_first_pass ? " use_first_pass" : "",
		           o->try_first_pass ? " try_first_pass" : "",
		           o->ignore_unknown_user ? " ignore_unknown_user" : "");
	return o;
}

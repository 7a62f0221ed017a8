/* options.c — the module's configuration: defaults, then the conf file, then
 * the module arguments (one grammar, the core's apikey_config_apply; the
 * module binds its own settings), plus the flags only the module reads.
 * Problems are logged through pam_syslog and never widen access. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
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

static const struct apikey_binding bindings[] = {
	APIKEY_BIND(struct pam_settings, scope, "scope", APIKEY_OPT_SCOPES),
	APIKEY_BIND(struct pam_settings, require_plan, "require_plan", APIKEY_OPT_TEXT),
	APIKEY_BIND(struct pam_settings, prompt, "prompt", APIKEY_OPT_TEXT),
};

static struct apikey_settings settings_of(struct pam_opts *o)
{
	return (struct apikey_settings){ bindings, sizeof(bindings) / sizeof(bindings[0]), &o->set };
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

/* The conf file, in the core's lookup order without the environment (sshd's
 * is not ours to trust): conf= names one that must be read; otherwise the
 * default is read when it exists.  An unreadable file marks the options
 * broken: it might have held the db path or a plan requirement. */
static void load_conf(pam_handle_t *pamh, struct pam_opts *o, const char *given,
                      struct log_ctx *lc)
{
	struct apikey_config_sources src = { .conf = given };
	struct apikey_settings fe = settings_of(o);
	const char *path;
	int r;

	if (given && (!given[0] || strlen(given) >= sizeof(o->conf))) {
		pam_syslog(pamh, LOG_ERR, "conf= needs a path shorter than %d characters", APIKEY_PATH_SIZE);
		o->broken = true;
		return;
	}
	if (!(path = apikey_config_file(&src)))
		return;
	snprintf(o->conf, sizeof(o->conf), "%s", path);
	r = apikey_config_read(&o->cfg, &fe, &src, log_sink, lc);
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
	struct apikey_settings fe;
	const char *conf = NULL;
	char err[160];

	if (!o) {
		pam_syslog(pamh, LOG_CRIT, "out of memory");
		return NULL;
	}
	fe = settings_of(o);
	apikey_config_defaults(&o->cfg);
	snprintf(o->set.prompt, sizeof(o->set.prompt), "%s", "API key: ");
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
		r = apikey_config_apply(&o->cfg, &fe, argv[i], err, sizeof(err));
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
	/* A login opens the store and closes it again: no checkpoint (two
	 * fsyncs) on each close; the WAL is kept short instead (core/store.c,
	 * docs/design/pam.md "Store and locking"). */
	o->cfg.store_flags |= APIKEY_STORE_NO_CHECKPOINT;
	if (o->use_first_pass && o->try_first_pass) {
		pam_syslog(pamh, LOG_WARNING, "use_first_pass and try_first_pass given: use_first_pass wins");
		o->try_first_pass = false;
	}
	if (o->debug)
		pam_syslog(pamh, LOG_DEBUG, "options: conf=%s db=%s scope=%s require_plan=%s "
		           "busy_timeout_ms=%u%s%s%s", o->conf[0] ? o->conf : "(none)", o->cfg.db_path,
		           o->set.scope[0] ? o->set.scope : "(pam:<service>)",
		           o->set.require_plan[0] ? o->set.require_plan : "(any)", o->cfg.busy_timeout_ms,
		           o->use_first_pass ? " use_first_pass" : "",
		           o->try_first_pass ? " try_first_pass" : "",
		           o->ignore_unknown_user ? " ignore_unknown_user" : "");
	return o;
}

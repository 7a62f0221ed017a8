/* module.h — what the module's files share: its options, the state kept on
 * the PAM handle between auth and account/session, and its logging. */
#ifndef PAM_APIKEY_MODULE_H
#define PAM_APIKEY_MODULE_H

#include <stdbool.h>
#include <security/pam_modules.h>
#include "apikey.h"

#define MODULE_NAME   "pam_apikey"
#define STATE_NAME    "pam_apikey:state"   /* pam_set_data name */
#define SOURCE_SIZE   APIKEY_NAME_SIZE     /* audit source "pam:sshd from host" */

/* The module's own settings of the shared grammar (bound by name in
 * options.c; apikey.conf(5) "PAM MODULE"). */
struct pam_settings {
	char scope[APIKEY_SCOPES_SIZE];        /* "" = "pam:<service>" */
	char require_plan[APIKEY_SCOPES_SIZE]; /* comma list, "" = any */
	char prompt[APIKEY_NAME_SIZE];
};

/*
 * Everything one call of the module knows about its configuration: the
 * core's apikey_config and the module's settings (defaults, then the conf
 * file, then the module arguments) plus the flags only module arguments set.
 * Heap-allocated per call (~70 kB: the configuration carries a profile's
 * catalogue, presets and answers) and freed before the call returns.
 */
struct pam_opts {
	struct apikey_config cfg;
	struct pam_settings set;
	char conf[APIKEY_PATH_SIZE];   /* conf= or the default if it exists; "" = none */
	char scope[APIKEY_SCOPES_SIZE]; /* effective: set.scope or "pam:<service>" */
	bool use_first_pass;
	bool try_first_pass;
	bool ignore_unknown_user;
	bool debug;
	bool broken;                   /* a setting that cannot be honoured: deny */
};

/*
 * What auth leaves on the handle for account and session (pam_set_data,
 * freed by its cleanup).  No secret in it: the key's public id, its owner
 * and scopes, and where it was found so account re-checks the same store.
 */
struct pam_state {
	char id[APIKEY_ID_SIZE];
	char owner[APIKEY_OWNER_SIZE];
	char scopes[APIKEY_SCOPES_SIZE];
	char db_path[APIKEY_PATH_SIZE];
	char pepper_path[APIKEY_PATH_SIZE];
	char require_plan[APIKEY_SCOPES_SIZE];
};

/* The core's log sink context: the handle to pam_syslog through. */
struct log_ctx {
	pam_handle_t *pamh;
	bool debug;
};

/* options.c */
/* Parse defaults, conf file, then argv into a new pam_opts (caller frees
 * with free()).  NULL only when out of memory.  Problems are logged;
 * settings that cannot be honoured set ->broken. */
struct pam_opts *opts_parse(pam_handle_t *pamh, int argc, const char **argv);
/* Core log sink: forwards to pam_syslog (LOG_DEBUG only with debug). */
void log_sink(void *ctx, int priority, const char *msg);

#endif /* PAM_APIKEY_MODULE_H */

/* fake_pam.h — a PAM handle for tests/fuzz/fuzz_pam.c.  The fuzz target
 * calls the module's pam_sm_* directly, which libpam forbids a caller from
 * doing usefully (PAM_AUTHTOK is a module-only item), so fake_pam.c defines
 * the libpam functions the module uses, with libpam's semantics, and fails
 * them (class F_PAM) where libpam can fail: the conversation, and the calls
 * that allocate.  The target links no libpam: a libpam function the module
 * starts to use and fake_pam.c lacks is a link error, not a silent pass. */
#ifndef FUZZ_FAKE_PAM_H
#define FUZZ_FAKE_PAM_H

#include <stdbool.h>
#include <security/pam_modules.h>

#define FAKE_DATA_MAX 8
#define FAKE_ENV_MAX  8
#define FAKE_LOG_LINE 1024

struct pam_handle {
	const char *service;
	const char *user;            /* NULL: pam_get_user finds none */
	const char *rhost;
	char *authtok;               /* PAM_AUTHTOK (owned) */
	const char *answer;          /* what the conversation answers; NULL = no answer */
	unsigned prompts;            /* conversations held */
	struct { char *name; void *data; void (*cleanup)(pam_handle_t *, void *, int); } data[FAKE_DATA_MAX];
	char *env[FAKE_ENV_MAX];     /* "NAME=value" (owned) */
	/* every pam_syslog line must pass this check (never a raw key) */
	const char *secret[2];
	bool leaked;                 /* a log line carried a secret */
	unsigned log_lines;
};

/* A handle as after pam_start(service, user); nothing allocated. */
void fake_pam_init(pam_handle_t *h, const char *service, const char *user, const char *rhost);
/* Set PAM_AUTHTOK as an earlier module of the stack would (never fails). */
void fake_pam_set_authtok(pam_handle_t *h, const char *tok);
/* The value of NAME in the handle's environment, or NULL. */
const char *fake_pam_getenv(pam_handle_t *h, const char *name);
/* pam_end: every module data cleanup, then everything the handle owns. */
void fake_pam_end(pam_handle_t *h);
/* The accounts the fake getpwnam knows (none of the host's). */
bool fake_pam_user_exists(const char *user);
#endif

/* fake_pam.c — the libpam functions pam_apikey uses, over struct pam_handle
 * (fake_pam.h).  Semantics follow Linux-PAM 1.5 (libpam/pam_item.c,
 * pam_data.c, pam_env.c, pam_get_user.c, pam_modutil_getpwnam.c) where the
 * module can tell the difference; failures are injected (class F_PAM) only
 * where libpam itself can fail. */
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <openssl/crypto.h>
#include <security/pam_ext.h>
#include <security/pam_modutil.h>
#include "fake_pam.h"
#include "faults.h"

static char *own_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = __real_malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void fake_pam_init(pam_handle_t *h, const char *service, const char *user, const char *rhost)
{
	memset(h, 0, sizeof(*h));
	h->service = service;
	h->user = user;
	h->rhost = rhost;
}

void fake_pam_set_authtok(pam_handle_t *h, const char *tok)
{
	wipe_free(h->authtok);
	h->authtok = tok ? own_strdup(tok) : NULL;
}

const char *fake_pam_getenv(pam_handle_t *h, const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < FAKE_ENV_MAX; i++)
		if (h->env[i] && !strncmp(h->env[i], name, n) && h->env[i][n] == '=')
			return h->env[i] + n + 1;
	return NULL;
}

void fake_pam_end(pam_handle_t *h)
{
	for (unsigned i = 0; i < FAKE_DATA_MAX; i++) {
		if (!h->data[i].name)
			continue;
		if (h->data[i].cleanup)
			h->data[i].cleanup(h, h->data[i].data, PAM_SUCCESS);
		free(h->data[i].name);
	}
	for (unsigned i = 0; i < FAKE_ENV_MAX; i++)
		wipe_free(h->env[i]);
	wipe_free(h->authtok);
	memset(h, 0, sizeof(*h));
}

/* The accounts getpwnam knows: fixed, so no answer depends on the host. */
static const struct { const char *name; uid_t uid; } accounts[] = {
	{ "root", 0 }, { "daemon", 1 }, { "bin", 2 }, { "nobody", 65534 },
};
#define N_ACCOUNTS (sizeof(accounts) / sizeof(accounts[0]))

bool fake_pam_user_exists(const char *user)
{
	for (size_t i = 0; user && i < N_ACCOUNTS; i++)
		if (!strcmp(user, accounts[i].name))
			return true;
	return false;
}

/* ---- libpam ------------------------------------------------------------- */
int pam_get_item(const pam_handle_t *h, int type, const void **item)
{
	switch (type) {
	case PAM_SERVICE: *item = h->service; break;
	case PAM_USER:    *item = h->user; break;
	case PAM_RHOST:   *item = h->rhost; break;
	case PAM_AUTHTOK: *item = h->authtok; break;
	case PAM_TTY: case PAM_RUSER: case PAM_OLDAUTHTOK: case PAM_CONV: case PAM_USER_PROMPT:
		*item = NULL;
		break;
	default:
		return PAM_BAD_ITEM;
	}
	return PAM_SUCCESS;
}

int pam_set_item(pam_handle_t *h, int type, const void *item)
{
	char *copy = NULL;

	if (type != PAM_AUTHTOK)
		return PAM_BAD_ITEM;    /* the module sets no other item */
	if (item && (fault_hit(F_PAM) || !(copy = own_strdup(item))))
		return PAM_BUF_ERR;
	wipe_free(h->authtok);
	h->authtok = copy;
	return PAM_SUCCESS;
}

int pam_get_user(pam_handle_t *h, const char **user, const char *prompt)
{
	(void)prompt;
	if (!h->user) {
		*user = NULL;
		return PAM_CONV_ERR;    /* libpam would ask; this handle's conversation cannot */
	}
	*user = h->user;
	return PAM_SUCCESS;
}

int pam_get_data(const pam_handle_t *h, const char *name, const void **data)
{
	for (unsigned i = 0; i < FAKE_DATA_MAX; i++)
		if (h->data[i].name && !strcmp(h->data[i].name, name)) {
			*data = h->data[i].data;
			return PAM_SUCCESS;
		}
	return PAM_NO_MODULE_DATA;
}

int pam_set_data(pam_handle_t *h, const char *name, void *data,
                 void (*cleanup)(pam_handle_t *, void *, int))
{
	unsigned free_slot = FAKE_DATA_MAX;

	for (unsigned i = 0; i < FAKE_DATA_MAX; i++) {
		if (!h->data[i].name) {
			if (free_slot == FAKE_DATA_MAX)
				free_slot = i;
			continue;
		}
		if (strcmp(h->data[i].name, name) != 0)
			continue;
		/* replacing: libpam cleans up the old value, allocates nothing */
		if (h->data[i].cleanup)
			h->data[i].cleanup(h, h->data[i].data, PAM_DATA_REPLACE);
		h->data[i].data = data;
		h->data[i].cleanup = cleanup;
		return PAM_SUCCESS;
	}
	if (free_slot == FAKE_DATA_MAX || fault_hit(F_PAM) || !(h->data[free_slot].name = own_strdup(name)))
		return PAM_BUF_ERR;
	h->data[free_slot].data = data;
	h->data[free_slot].cleanup = cleanup;
	return PAM_SUCCESS;
}

int pam_putenv(pam_handle_t *h, const char *name_value)
{
	const char *eq = strchr(name_value, '=');
	size_t n = eq ? (size_t)(eq - name_value) : strlen(name_value);
	unsigned slot = FAKE_ENV_MAX;

	for (unsigned i = 0; i < FAKE_ENV_MAX; i++) {
		if (h->env[i] && !strncmp(h->env[i], name_value, n) && h->env[i][n] == '=') {
			slot = i;
			break;
		}
		if (!h->env[i] && slot == FAKE_ENV_MAX)
			slot = i;
	}
	if (!eq) {    /* "NAME": delete */
		if (slot < FAKE_ENV_MAX && h->env[slot]) {
			wipe_free(h->env[slot]);
			h->env[slot] = NULL;
		}
		return PAM_SUCCESS;
	}
	if (slot == FAKE_ENV_MAX || fault_hit(F_PAM))
		return PAM_BUF_ERR;
	char *copy = own_strdup(name_value);
	if (!copy)
		return PAM_BUF_ERR;
	wipe_free(h->env[slot]);
	h->env[slot] = copy;
	return PAM_SUCCESS;
}

int pam_prompt(pam_handle_t *h, int style, char **response, const char *fmt, ...)
{
	char msg[FAKE_LOG_LINE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)style;
	h->prompts++;
	*response = NULL;
	if (fault_hit(F_PAM))
		return PAM_CONV_ERR;    /* the application's conversation failed */
	if (h->answer && !(*response = own_strdup(h->answer)))
		return PAM_BUF_ERR;
	return PAM_SUCCESS;
}

/* strstr, out of libFuzzer's sight: its strstr hook would add the key to
 * the fuzzer's dictionary, and inputs would then present keys the harness's
 * model no longer knows (fuzz_pam.c same_key). */
static bool contains(const char *line, const char *secret)
{
	size_t n = strlen(line), k = strlen(secret);

	for (size_t i = 0; k && i + k <= n; i++)
		if (CRYPTO_memcmp(line + i, secret, k) == 0)
			return true;
	return false;
}

void pam_syslog(const pam_handle_t *h, int priority, const char *fmt, ...)
{
	pam_handle_t *hh = (pam_handle_t *)h;
	char line[FAKE_LOG_LINE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	hh->log_lines++;
	for (unsigned i = 0; i < 2; i++)
		if (h->secret[i] && contains(line, h->secret[i]))
			hh->leaked = true;
	if (getenv("FUZZ_PAM_VERBOSE"))
		fprintf(stderr, "  pam_syslog(%d): %s\n", priority & LOG_PRIMASK, line);
}

const char *pam_strerror(pam_handle_t *h, int errnum)
{
	static char text[32];

	(void)h;
	snprintf(text, sizeof(text), "PAM error %d", errnum);
	return text;
}

struct passwd *pam_modutil_getpwnam(pam_handle_t *h, const char *user)
{
	static struct passwd pw;

	(void)h;
	if (fault_hit(F_PAM))
		return NULL;    /* libpam: out of memory for the buffer */
	for (size_t i = 0; i < N_ACCOUNTS; i++)
		if (!strcmp(user, accounts[i].name)) {
			memset(&pw, 0, sizeof(pw));
			pw.pw_name = (char *)accounts[i].name;
			pw.pw_uid = accounts[i].uid;
			pw.pw_gid = accounts[i].uid;
			pw.pw_dir = (char *)"/";
			pw.pw_shell = (char *)"/bin/sh";
			return &pw;
		}
	return NULL;
}

/* pam_loop.c — the module's robustness driver: N pam_start_confdir /
 * pam_authenticate / pam_acct_mgmt / pam_end cycles in one process against
 * the built module, with good and bad keys mixed, and every tenth cycle two
 * handles interleaved to show they share nothing.  Run under valgrind (or
 * ASan) by tests/pam/t_valgrind.sh; exits 1 on any unexpected answer.
 *
 * usage: pam_loop MODULE DIR CYCLES    (DIR: an empty scratch folder) */
#include <dlfcn.h>
#include <pwd.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <security/pam_appl.h>
#include "apikey.h"

#define SERVICE "pamloop"

enum { GOOD, GOOD2, REVOKED, MALFORMED, UNKNOWN, OTHER_USER, NO_SCOPE, EMPTY, N_KINDS };

struct case_key {
	const char *name;
	char key[APIKEY_KEY_MAX + 1];
	char id[APIKEY_ID_SIZE];
	int want;                 /* pam_authenticate's answer */
};

static void log_stderr(void *ctx, int prio, const char *msg)
{
	(void)ctx; (void)prio;
	fprintf(stderr, "pam_loop: core: %s\n", msg);
}

/* The conversation answers every prompt with the key in appdata. */
static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
	const char *key = appdata;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF && msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
			continue;
		if (!(r[i].resp = strdup(key))) {
			for (int j = 0; j < i; j++)
				free(r[j].resp);
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static int make(struct apikey_store *s, const char *owner, const char *scopes, struct case_key *k)
{
	struct apikey_create_params p = { .owner = owner, .scopes = scopes,
	                                  .rate_limit = APIKEY_RATE_MAX };
	struct apikey_actor actor = { .source = "pam_loop" };
	struct apikey_key_info info;
	int r = apikey_key_create(s, &p, &actor, k->key, sizeof(k->key), &info);

	if (r == 0)
		memcpy(k->id, info.id, sizeof(k->id));
	return r;
}

static int setup(const char *dir, const char *module, const char *user, struct case_key *keys,
                 char *confdir, size_t confdirsz)
{
	struct apikey_config cfg;
	struct apikey_store *s = NULL;
	struct apikey_format fmt;
	struct apikey_actor actor = { .source = "pam_loop" };
	char path[APIKEY_PATH_SIZE];
	FILE *f;
	int r;

	apikey_config_defaults(&cfg);
	if ((size_t)snprintf(cfg.db_path, sizeof(cfg.db_path), "%s/keys.db", dir) >= sizeof(cfg.db_path))
		return APIKEY_ERR_TOO_LONG;
	if ((r = apikey_store_init(&cfg, log_stderr, NULL)) != 0 ||
	    (r = apikey_store_open(&s, &cfg, log_stderr, NULL)) != 0)
		return r;
	keys[GOOD] = (struct case_key){ .name = "good", .want = PAM_SUCCESS };
	keys[GOOD2] = (struct case_key){ .name = "good2", .want = PAM_SUCCESS };
	keys[REVOKED] = (struct case_key){ .name = "revoked", .want = PAM_AUTH_ERR };
	keys[MALFORMED] = (struct case_key){ .name = "malformed", .key = "ak_not-a-key", .want = PAM_AUTH_ERR };
	keys[UNKNOWN] = (struct case_key){ .name = "unknown", .want = PAM_AUTH_ERR };
	keys[OTHER_USER] = (struct case_key){ .name = "other user's", .want = PAM_AUTH_ERR };
	keys[NO_SCOPE] = (struct case_key){ .name = "lacking scope", .want = PAM_PERM_DENIED };
	keys[EMPTY] = (struct case_key){ .name = "empty", .key = "", .want = PAM_AUTH_ERR };
	apikey_format_default(&fmt);
	if ((r = make(s, user, "pam:loop", &keys[GOOD])) != 0 ||
	    (r = make(s, user, "pam:*", &keys[GOOD2])) != 0 ||
	    (r = make(s, user, "pam:loop", &keys[REVOKED])) != 0 ||
	    (r = apikey_key_revoke(s, keys[REVOKED].id, &actor)) != 0 ||
	    (r = apikey_token_generate(&fmt, keys[UNKNOWN].key, sizeof(keys[UNKNOWN].key))) != 0 ||
	    (r = make(s, "someone-else", "pam:loop", &keys[OTHER_USER])) != 0 ||
	    (r = make(s, user, "http:read", &keys[NO_SCOPE])) != 0)
		goto out;
	if ((size_t)snprintf(confdir, confdirsz, "%s/pam.d", dir) >= confdirsz ||
	    (size_t)snprintf(path, sizeof(path), "%s/" SERVICE, confdir) >= sizeof(path) ||
	    mkdir(confdir, 0700) != 0 || !(f = fopen(path, "w"))) {
		r = APIKEY_ERR_IO;
		goto out;
	}
	fprintf(f, "auth     required %s db=%s scope=pam:loop\n"
	           "account  required %s db=%s\n"
	           "session  required %s db=%s\n", module, cfg.db_path, module, cfg.db_path,
	        module, cfg.db_path);
	r = fclose(f) == 0 ? 0 : APIKEY_ERR_IO;
out:
	apikey_store_free(s);
	return r;
}

static int start(const char *confdir, const char *user, const char *key, pam_handle_t **h)
{
	struct pam_conv c = { conv, (void *)key };

	return pam_start_confdir(SERVICE, user, &c, confdir, h);
}

/* One full cycle on one handle; 0 when every answer is the expected one. */
static int cycle(const char *confdir, const char *user, const struct case_key *k)
{
	pam_handle_t *h = NULL;
	int r, bad = 0;

	if ((r = start(confdir, user, k->key, &h)) != PAM_SUCCESS) {
		fprintf(stderr, "pam_loop: pam_start_confdir: %d\n", r);
		return 1;
	}
	r = pam_authenticate(h, 0);
	if (r != k->want) {
		fprintf(stderr, "pam_loop: %s key: pam_authenticate %d, want %d\n", k->name, r, k->want);
		bad = 1;
	}
	if (r == PAM_SUCCESS) {
		const char *id;

		if ((r = pam_acct_mgmt(h, 0)) != PAM_SUCCESS ||
		    (r = pam_open_session(h, 0)) != PAM_SUCCESS ||
		    !(id = pam_getenv(h, "APIKEY_ID")) || strcmp(id, k->id) != 0 ||
		    (r = pam_close_session(h, 0)) != PAM_SUCCESS) {
			fprintf(stderr, "pam_loop: %s key: account/session failed (%d)\n", k->name, r);
			bad = 1;
		}
	} else if ((r = pam_acct_mgmt(h, 0)) == PAM_SUCCESS) {
		/* account after a failed auth: the module must not say yes */
		fprintf(stderr, "pam_loop: %s key: account succeeded after failed auth\n", k->name);
		bad = 1;
	}
	pam_end(h, r);
	return bad;
}

/* Two handles alive at once: each keeps its own key. */
static int interleaved(const char *confdir, const char *user, const struct case_key *a,
                       const struct case_key *b)
{
	pam_handle_t *ha = NULL, *hb = NULL;
	const char *ida, *idb;
	int bad = 1;

	if (start(confdir, user, a->key, &ha) != PAM_SUCCESS || start(confdir, user, b->key, &hb) != PAM_SUCCESS)
		goto out;
	if (pam_authenticate(ha, 0) != PAM_SUCCESS || pam_authenticate(hb, 0) != PAM_SUCCESS ||
	    pam_acct_mgmt(hb, 0) != PAM_SUCCESS || pam_acct_mgmt(ha, 0) != PAM_SUCCESS ||
	    pam_open_session(ha, 0) != PAM_SUCCESS || pam_open_session(hb, 0) != PAM_SUCCESS)
		goto out;
	ida = pam_getenv(ha, "APIKEY_ID");
	idb = pam_getenv(hb, "APIKEY_ID");
	bad = !ida || !idb || strcmp(ida, a->id) != 0 || strcmp(idb, b->id) != 0;
out:
	if (bad)
		fprintf(stderr, "pam_loop: interleaved handles mixed up or failed\n");
	if (ha)
		pam_end(ha, PAM_SUCCESS);
	if (hb)
		pam_end(hb, PAM_SUCCESS);
	return bad;
}

int main(int argc, char **argv)
{
	struct case_key keys[N_KINDS];
	char confdir[APIKEY_PATH_SIZE];
	unsigned long long n;
	struct passwd *pw = getpwuid(getuid());
	unsigned bad = 0;
	void *pin;
	int r;

	if (argc != 4 || apikey_parse_uint(argv[3], 1, 10000000, &n) != 0) {
		fprintf(stderr, "usage: pam_loop MODULE DIR CYCLES\n");
		return 2;
	}
	if (!pw) {
		fprintf(stderr, "pam_loop: who am I?\n");
		return 1;
	}
	/* Keep the module loaded across handles, as in a long-lived process:
	 * libpam's dlopen per pam_start then only counts references, so valgrind
	 * does not translate the module anew on every cycle. */
	if (!(pin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL))) {
		fprintf(stderr, "pam_loop: %s\n", dlerror());
		return 1;
	}
	if ((r = setup(argv[2], argv[1], pw->pw_name, keys, confdir, sizeof(confdir))) != 0) {
		fprintf(stderr, "pam_loop: setup: %s\n", apikey_strerror(r));
		dlclose(pin);
		return 1;
	}
	for (unsigned long long i = 0; i < n && bad < 10; i++) {
		if (i % 10 == 9)
			bad += interleaved(confdir, pw->pw_name, &keys[GOOD], &keys[GOOD2]);
		else
			bad += cycle(confdir, pw->pw_name, &keys[i % N_KINDS]);
	}
	/* wipe the raw keys this process held */
	explicit_bzero(keys, sizeof(keys));
	dlclose(pin);
	printf("pam_loop: %llu cycles, %u unexpected\n", n, bad);
	return bad ? 1 : 0;
}

/* pam_apikey.c — the Linux-PAM entry points (SPEC §4): auth verifies the
 * typed key (or an earlier module's PAM_AUTHTOK) against the shared store,
 * account re-checks it by id, session exports it to the environment.
 *
 * No globals: each call parses its options, opens the store, and frees both
 * before returning; what auth learned is kept on the handle (pam_set_data),
 * so sshd's forks and several handles in one process never share state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <security/pam_modules.h>
#include <security/pam_ext.h>
#include <security/pam_modutil.h>
#include <openssl/crypto.h>
#include "module.h"

#define PUBLIC __attribute__((visibility("default")))
#define ENV_SIZE (sizeof("APIKEY_SCOPES=") + APIKEY_SCOPES_SIZE)

static void state_cleanup(pam_handle_t *pamh, void *data, int error_status)
{
	(void)pamh;
	(void)error_status;
	free(data);
}

static const struct pam_state *state_get(pam_handle_t *pamh)
{
	const void *data = NULL;

	if (pam_get_data(pamh, STATE_NAME, &data) != PAM_SUCCESS)
		return NULL;
	return data;
}

static int state_set(pam_handle_t *pamh, const struct pam_opts *o,
                     const struct apikey_key_info *k)
{
	struct pam_state *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return PAM_BUF_ERR;
	/* every field has the size of its source: no truncation possible */
	memcpy(st->id, k->id, sizeof(st->id));
	memcpy(st->owner, k->owner, sizeof(st->owner));
	memcpy(st->scopes, k->scopes, sizeof(st->scopes));
	memcpy(st->db_path, o->cfg.db_path, sizeof(st->db_path));
	memcpy(st->pepper_path, o->cfg.pepper_path, sizeof(st->pepper_path));
	memcpy(st->require_plan, o->set.require_plan, sizeof(st->require_plan));
	r = pam_set_data(pamh, STATE_NAME, st, state_cleanup);
	if (r != PAM_SUCCESS)
		free(st);
	return r;
}

/* APIKEY_ID, APIKEY_OWNER, APIKEY_SCOPES into the PAM environment. */
static int export_env(pam_handle_t *pamh, const struct pam_state *st)
{
	const struct { const char *name; const char *value; } vars[] = {
		{ "APIKEY_ID", st->id }, { "APIKEY_OWNER", st->owner }, { "APIKEY_SCOPES", st->scopes },
	};
	char env[ENV_SIZE];

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		int r;

		if ((size_t)snprintf(env, sizeof(env), "%s=%s", vars[i].name, vars[i].value) >= sizeof(env))
			return PAM_BUF_ERR;
		if ((r = pam_putenv(pamh, env)) != PAM_SUCCESS)
			return r;
	}
	return PAM_SUCCESS;
}

static const char *item_str(pam_handle_t *pamh, int type)
{
	const void *v = NULL;

	if (pam_get_item(pamh, type, &v) != PAM_SUCCESS)
		return NULL;
	return v;
}

/* The login user, known to the system and short enough to be an owner. */
static int login_user(pam_handle_t *pamh, const char **user)
{
	int r = pam_get_user(pamh, user, NULL);

	if (r == PAM_CONV_AGAIN)
		return PAM_INCOMPLETE;
	if (r != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_ERR, "cannot get the user name: %s", pam_strerror(pamh, r));
		return r;
	}
	if (!*user || !**user) {
		pam_syslog(pamh, LOG_NOTICE, "no user name");
		return PAM_USER_UNKNOWN;
	}
	if (strnlen(*user, APIKEY_OWNER_SIZE) >= APIKEY_OWNER_SIZE) {
		pam_syslog(pamh, LOG_NOTICE, "user name longer than %d characters", APIKEY_OWNER_SIZE - 1);
		return PAM_USER_UNKNOWN;
	}
	return PAM_SUCCESS;
}

static int has_a_key(void *ctx, const struct apikey_key_info *k)
{
	(void)k;
	*(bool *)ctx = true;
	return 1;   /* one is enough: stop */
}

/* One auth attempt's context: what the checks below share. */
struct attempt {
	pam_handle_t *pamh;
	const struct pam_opts *o;
	struct log_ctx lc;
	struct apikey_store *store;   /* opened on first need, freed by auth */
	const char *user;
	char user_log[APIKEY_LOG_TEXT_SIZE];  /* user as log lines show it */
	char source[SOURCE_SIZE];
};

/*
 * The user name is whatever was typed at a login prompt: a key typed there
 * by mistake must not reach the auth log, nor a newline or an escape
 * sequence forge or colour a line.  Log lines show it through the core's
 * apikey_log_text(): escaped, bounded, or "<key-like user name withheld>".
 */
static void user_for_log(struct attempt *a)
{
	apikey_log_text(&a->o->cfg.format, a->user, a->user ? strlen(a->user) : 0, "user name",
	                a->user_log, sizeof(a->user_log));
}

/* This call's options (*o: the caller frees it) and log context: PAM_SUCCESS,
 * or the answer to give when they cannot be honoured. */
static int attempt_start(struct attempt *a, int argc, const char **argv, struct pam_opts **o)
{
	if (!(*o = opts_parse(a->pamh, argc, argv)))
		return PAM_BUF_ERR;
	a->o = *o;
	a->lc.debug = (*o)->debug;
	return (*o)->broken ? PAM_AUTHINFO_UNAVAIL : PAM_SUCCESS;
}

static int open_store(struct attempt *a)
{
	int r;

	if (a->store)
		return 0;
	r = apikey_store_open(&a->store, &a->o->cfg, log_sink, &a->lc);
	if (r != 0)
		pam_syslog(a->pamh, LOG_ERR, "key store %s unavailable: %s", a->o->cfg.db_path,
		           apikey_strerror(r));
	return r;
}

/*
 * Verify one presented key.  The core answers a missing or malformed key
 * before it opens the store, so a unix password typed at a stack's first
 * prompt costs no database work and never depends on the store being there.
 */
static void check_key(struct attempt *a, const char *key, struct apikey_verify_result *res)
{
	struct apikey_verify_request rq = {
		.key = key,
		.key_len = key ? strnlen(key, APIKEY_KEY_MAX + 1) : 0,
		.scopes = a->o->scope,
		.user = a->user,
		.require_plan = a->o->set.require_plan,
		.source = a->source,
	};
	bool had_store = a->store != NULL;

	apikey_verify_open(&a->store, &a->o->cfg, log_sink, &a->lc, &rq, res);
	if (!had_store && !a->store && res->outcome == APIKEY_UNAVAILABLE)
		pam_syslog(a->pamh, LOG_ERR, "key store %s unavailable: %s", a->o->cfg.db_path,
		           apikey_strerror(res->err));
}

/* try_first_pass: is an earlier module's token a key at all (the core's
 * precheck, or a key imported from another system that carries an accepted
 * prefix), or should we prompt for one? */
static bool well_formed(const struct pam_opts *o, const char *key)
{
	size_t n = key ? strnlen(key, APIKEY_KEY_MAX + 1) : 0;

	return apikey_precheck(&o->cfg.format, key, n) == APIKEY_VALID ||
	       apikey_token_importable(&o->cfg.format, key, n);
}

/* Would typing another key help?  Not when the store or the rate limit is
 * the problem. */
static bool worth_a_prompt(enum apikey_outcome o)
{
	return o != APIKEY_VALID && o != APIKEY_RATE_LIMITED && o != APIKEY_UNAVAILABLE;
}

/* Ask for the key; hand it to later modules as PAM_AUTHTOK.  *typed is
 * ours: the caller wipes and frees it. */
static int prompt_key(struct attempt *a, char **typed)
{
	int r;

	*typed = NULL;
	r = pam_prompt(a->pamh, PAM_PROMPT_ECHO_OFF, typed, "%s", a->o->set.prompt);
	if (r != PAM_SUCCESS) {
		pam_syslog(a->pamh, LOG_ERR, "conversation failed: %s", pam_strerror(a->pamh, r));
		*typed = NULL;
		return r;
	}
	if (*typed && pam_set_item(a->pamh, PAM_AUTHTOK, *typed) != PAM_SUCCESS)
		pam_syslog(a->pamh, LOG_WARNING, "cannot set PAM_AUTHTOK for later modules");
	return PAM_SUCCESS;
}

static void wipe(char **s)
{
	if (*s) {
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* One log line per answer: key id and outcome, never the key.  When the
 * profile gives the outcome another code name (error_code.X=), the line
 * carries that too: " code=INVALID_KEY" after "outcome=MALFORMED_KEY". */
static void log_outcome(struct attempt *a, const char *phase, const struct apikey_verify_result *res)
{
	int prio = res->outcome == APIKEY_VALID ? LOG_INFO :
	           res->outcome == APIKEY_UNAVAILABLE ? LOG_ERR : LOG_NOTICE;
	const char *outcome = apikey_outcome_code(res->outcome);
	const char *code = apikey_answer_code(&a->o->cfg.profile.answers, res->outcome);
	char mapped[APIKEY_ERROR_CODE_SIZE + 8] = "";

	if (strcmp(code, outcome) != 0)
		snprintf(mapped, sizeof(mapped), " code=%s", code);
	if (res->outcome == APIKEY_RATE_LIMITED)
		pam_syslog(a->pamh, prio, "%s: user=%s key=%s outcome=%s%s retry_after=%u", phase, a->user_log,
		           res->key.id, outcome, mapped, res->ratelimit.retry_after_s);
	else if (res->outcome == APIKEY_UNAVAILABLE)
		pam_syslog(a->pamh, prio, "%s: user=%s key=%s outcome=%s%s (%s)", phase, a->user_log,
		           res->found ? res->key.id : "-", outcome, mapped, apikey_strerror(res->err));
	else
		pam_syslog(a->pamh, prio, "%s: user=%s key=%s outcome=%s%s", phase, a->user_log,
		           res->found ? res->key.id : "-", outcome, mapped);
}

/* The scope a login needs: scope= or "pam:<service>". */
static int effective_scope(pam_handle_t *pamh, struct pam_opts *o)
{
	const char *service = item_str(pamh, PAM_SERVICE);
	char want[APIKEY_SCOPES_SIZE], shown[APIKEY_LOG_TEXT_SIZE];

	if (o->set.scope[0]) {
		memcpy(o->scope, o->set.scope, sizeof(o->scope));
		return PAM_SUCCESS;
	}
	if (!service || !service[0] ||
	    (size_t)snprintf(want, sizeof(want), "pam:%s", service) >= sizeof(want) ||
	    apikey_scopes_normalize(want, o->scope, sizeof(o->scope)) != 0 || strchr(o->scope, ',')) {
		pam_syslog(pamh, LOG_ERR, "service name '%s' is not a valid scope part; set scope=",
		           apikey_log_text(&o->cfg.format, service, service ? strlen(service) : 0, "service name",
		                           shown, sizeof(shown)));
		o->scope[0] = '\0';
		return PAM_SERVICE_ERR;
	}
	return PAM_SUCCESS;
}

static void make_source(pam_handle_t *pamh, char *out, size_t outsz)
{
	const char *service = item_str(pamh, PAM_SERVICE);
	const char *rhost = item_str(pamh, PAM_RHOST);

	/* truncation is harmless: it is a label in the audit log */
	snprintf(out, outsz, "pam:%s%s%s", service ? service : "?", rhost && rhost[0] ? " from " : "",
	         rhost && rhost[0] ? rhost : "");
}

PUBLIC int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct attempt a = { .pamh = pamh, .lc = { .pamh = pamh } };
	struct apikey_verify_result res;
	struct pam_opts *o = NULL;
	const char *key = NULL;
	char *typed = NULL;
	bool from_authtok = false, user_known;
	int r;

	(void)flags;
	/* A new attempt on this handle forgets what an earlier one proved. */
	pam_set_data(pamh, STATE_NAME, NULL, NULL);
	if ((r = attempt_start(&a, argc, argv, &o)) != PAM_SUCCESS)
		goto out;
	if ((r = effective_scope(pamh, o)) != PAM_SUCCESS)
		goto out;
	if ((r = login_user(pamh, &a.user)) != PAM_SUCCESS)
		goto out;
	user_for_log(&a);
	user_known = pam_modutil_getpwnam(pamh, a.user) != NULL;
	make_source(pamh, a.source, sizeof(a.source));
	if (o->debug) {
		char src[APIKEY_LOG_TEXT_SIZE];
		pam_syslog(pamh, LOG_DEBUG, "auth: user=%s scope=%s source=%s", a.user_log, o->scope,
		           apikey_log_text(&o->cfg.format, a.source, strlen(a.source), "source", src, sizeof(src)));
	}

	if (o->ignore_unknown_user) {
		bool has = false;

		if (open_store(&a) != 0 || apikey_key_list(a.store, a.user, has_a_key, &has) < 0) {
			r = PAM_AUTHINFO_UNAVAIL;
			goto out;
		}
		if (!has) {
			pam_syslog(pamh, LOG_INFO, "auth: user=%s has no keys: ignored", a.user_log);
			r = PAM_IGNORE;
			goto out;
		}
	}

	/* The key: an earlier module's token, or ours to prompt for. */
	if (o->use_first_pass || o->try_first_pass) {
		key = item_str(pamh, PAM_AUTHTOK);
		from_authtok = o->use_first_pass || well_formed(o, key);
		if (o->debug)
			pam_syslog(pamh, LOG_DEBUG, "auth: %s", !key || !*key ? "no PAM_AUTHTOK from an earlier module" :
			           from_authtok ? "using PAM_AUTHTOK from an earlier module" :
			           "PAM_AUTHTOK is not a key: prompting");
	}
	if (!from_authtok) {
		if ((r = prompt_key(&a, &typed)) != PAM_SUCCESS) {
			/* an event-driven conversation asks to be called again;
			 * otherwise: no conversation, no key */
			r = r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_AUTH_ERR;
			goto out;
		}
		key = typed;
	}
	if (!user_known) {
		/* asked all the same, so a prompt tells nothing about who exists */
		pam_syslog(pamh, LOG_NOTICE, "auth: user=%s is not a known user", a.user_log);
		r = PAM_USER_UNKNOWN;
		goto out;
	}

	check_key(&a, key, &res);
	if (from_authtok && o->try_first_pass && worth_a_prompt(res.outcome)) {
		log_outcome(&a, "auth (earlier token)", &res);
		if ((r = prompt_key(&a, &typed)) != PAM_SUCCESS) {
			r = r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_AUTH_ERR;
			goto out;
		}
		check_key(&a, typed, &res);
	}
	log_outcome(&a, "auth", &res);
	if (o->debug && res.rate_checked)
		pam_syslog(pamh, LOG_DEBUG, "auth: rate limit %u/min, %u remaining", res.ratelimit.limit,
		           res.ratelimit.remaining);
	r = apikey_outcome_pam_auth(res.outcome);
	if (r == PAM_SUCCESS) {
		const struct pam_state *st;

		/* Without the state, account could not re-check: fail closed. */
		if ((r = state_set(pamh, o, &res.key)) != PAM_SUCCESS) {
			pam_syslog(pamh, LOG_CRIT, "cannot keep the key id on the handle");
			goto out;
		}
		/* Also now, not only at session open: sshd runs keyboard-interactive
		 * auth in a child whose PAM environment (not its module data) it
		 * copies back to the process that opens the session. */
		if ((st = state_get(pamh)) && export_env(pamh, st) != PAM_SUCCESS)
			pam_syslog(pamh, LOG_WARNING, "cannot export APIKEY_* to the PAM environment");
	}
out:
	wipe(&typed);
	apikey_store_free(a.store);
	free(o);
	return r;
}

/* No credentials to establish, and always success: libpam replays the whole
 * auth stack for setcred, and an IGNORE here would let a later pam_deny
 * turn a key login into a setcred failure. */
PUBLIC int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_SUCCESS;
}

PUBLIC int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const struct pam_state *st = state_get(pamh);
	struct attempt a = { .pamh = pamh, .lc = { .pamh = pamh } };
	struct apikey_verify_result res;
	struct pam_opts *o = NULL;
	int r;

	(void)flags;
	if (!st)
		return PAM_IGNORE;   /* this handle did not log in with a key */
	if ((r = attempt_start(&a, argc, argv, &o)) != PAM_SUCCESS)
		goto out;
	if ((r = login_user(pamh, &a.user)) != PAM_SUCCESS)
		goto out;
	user_for_log(&a);
	/* The store the key came from; this line's own require_plan= wins over
	 * the one auth checked. */
	memcpy(o->cfg.db_path, st->db_path, sizeof(o->cfg.db_path));
	memcpy(o->cfg.pepper_path, st->pepper_path, sizeof(o->cfg.pepper_path));
	/* a re-check by id hashes nothing: no pepper to read */
	o->cfg.store_flags |= APIKEY_STORE_NO_PEPPER;
	if (!o->set.require_plan[0])
		memcpy(o->set.require_plan, st->require_plan, sizeof(o->set.require_plan));
	if ((r = open_store(&a)) != 0) {
		memset(&res, 0, sizeof(res));
		res.outcome = APIKEY_UNAVAILABLE;
		res.err = r;
	} else {
		apikey_recheck(a.store, st->id, a.user, o->set.require_plan, 0, &res);
	}
	if (!res.found) {
		/* name the key auth accepted in the log, even when it is gone */
		memcpy(res.key.id, st->id, sizeof(res.key.id));
		res.found = true;
	}
	log_outcome(&a, "account", &res);
	r = apikey_outcome_pam_account(res.outcome);
out:
	apikey_store_free(a.store);
	free(o);
	return r;
}

PUBLIC int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const struct pam_state *st = state_get(pamh);
	struct pam_opts *o;
	int r;

	(void)flags;
	/*
	 * No key login on this handle: nothing to export, and nothing to refuse.
	 * Not PAM_IGNORE: sshd runs keyboard-interactive auth and account in a
	 * child process and opens the session in the parent, which has the
	 * child's PAM environment (APIKEY_* included, see auth) but not its
	 * module data; a session stack of this module alone must not fail it.
	 */
	if (!st)
		return PAM_SUCCESS;
	if (!(o = opts_parse(pamh, argc, argv)))   /* logs unknown options; debug */
		return PAM_BUF_ERR;
	r = export_env(pamh, st);
	if (r != PAM_SUCCESS)
		pam_syslog(pamh, LOG_ERR, "cannot export APIKEY_* to the environment: %s",
		           pam_strerror(pamh, r));
	else if (o->debug) {
		char owner[APIKEY_LOG_TEXT_SIZE];
		pam_syslog(pamh, LOG_DEBUG, "session: exported APIKEY_ID=%s APIKEY_OWNER=%s", st->id,
		           apikey_log_text(&o->cfg.format, st->owner, strlen(st->owner), "owner", owner,
		                           sizeof(owner)));
	}
	free(o);
	return r == PAM_SUCCESS ? PAM_SUCCESS : PAM_SESSION_ERR;
}

PUBLIC int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_SUCCESS;
}

/* fuzz_pam.c — fault-injecting fuzz target (STYLE §15a): the module's real
 * pam_sm_authenticate, pam_sm_acct_mgmt and pam_sm_open_session against a
 * real store, while the calls they make fail as the input says
 * (tests/fuzz/faults.c), on a PAM handle whose libpam is fake_pam.c.
 *
 * Input: six bytes choose the login (user, the key typed, the key an earlier
 * module left in PAM_AUTHTOK, options, where scope= / require_plan= / db=
 * come from); one byte counts the fault entries that follow, three bytes
 * each (class | 0x80 for sticky, call number little-endian); the rest is
 * the key typed when the choice is "raw bytes".
 *
 * Oracle:
 *  - auth answers PAM_SUCCESS only when the key that reaches the check is
 *    valid for the user, the scope and the plan (the model below);
 *  - with no fault injected, such a key is PAM_SUCCESS (the harness works);
 *  - PAM_IGNORE only with ignore_unknown_user for a user without keys;
 *  - account answers PAM_SUCCESS only after auth did, and never PAM_IGNORE
 *    then; the session exports APIKEY_ID only after auth did, and then the
 *    id of the key presented;
 *  - no log line carries a well-formed key presented;
 *  - and, from the sanitizers and libFuzzer: no crash, leak or hang.
 * A violation prints what happened and aborts.
 *
 * FUZZ_PAM_VERBOSE=1 prints each login, its answers and the calls counted
 * per class (tests/fuzz/t_faults.sh sweeps each class with those counts);
 * FUZZ_PAM_SUMMARY=1 prints a count of logins and answers at exit. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <security/pam_modules.h>
#include "apikey.h"
#include "fake_pam.h"
#include "faults.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SERVICE "fuzz"

/* The keys a login can present.  K_FOREIGN is imported afresh (sha256) for
 * each login that uses it, so the re-hash on first use runs every time. */
enum key_choice {
	K_NONE, K_GOOD, K_WIDE, K_OTHER_SCOPE, K_DAEMON, K_REVOKED, K_SUSPENDED,
	K_STRANGER, K_FOREIGN, K_RAW, N_KEYS
};
static const struct {
	const char *name, *owner, *scopes;
} kdef[N_KEYS] = {
	[K_NONE] = { "none", NULL, NULL },
	[K_GOOD] = { "good", "root", "pam:fuzz" },
	[K_WIDE] = { "wide", "root", "*" },
	[K_OTHER_SCOPE] = { "other-scope", "root", "pam:other" },
	[K_DAEMON] = { "daemon", "daemon", "pam:fuzz" },
	[K_REVOKED] = { "revoked", "root", "pam:fuzz" },
	[K_SUSPENDED] = { "suspended", "bin", "pam:fuzz" },
	[K_STRANGER] = { "stranger", NULL, NULL },
	[K_FOREIGN] = { "foreign", "root", "pam:fuzz" },
	[K_RAW] = { "raw", NULL, NULL },
};
/* root's plan is "basic"; bin's account is suspended; daemon has none. */
static const char *const users[] = { "root", "daemon", "bin", "nobody", "nosuchuser" };
#define N_USERS (sizeof(users) / sizeof(users[0]))
static const char *const scope_arg[4] = { NULL, "pam:fuzz", "pam:other", "pam:fuzz,pam:other" };
static const char *const plan_arg[4] = { NULL, "pro", "basic", "pro,basic" };

static struct {
	char dir[256];
	char db[APIKEY_PATH_SIZE];
	struct apikey_store *store;
	char key[N_KEYS][APIKEY_KEY_MAX + 1];
	char id[N_KEYS][APIKEY_ID_SIZE];
	char conf[4][4][APIKEY_PATH_SIZE];   /* [scope][plan]: db, then scope, then plan */
	char conf_db[APIKEY_PATH_SIZE];      /* db only */
	bool verbose;
	unsigned long logins, faulted, granted, refused;
} W;

/* One login, decoded from the input. */
struct login {
	unsigned user, typed, authtok;       /* authtok: 0 = none, else a key choice */
	bool use_first, try_first, ignore_unknown, debug, acct, session, rhost;
	unsigned scope, plan, route;
	struct fault_plan faults;
	const uint8_t *raw;
	size_t raw_len;
};

static const struct apikey_actor fuzz_actor = { .source = "fuzz" };

static void die(const char *what)
{
	fprintf(stderr, "fuzz_pam: set-up failed: %s\n", what);
	abort();
}

static void make_key(enum key_choice k)
{
	struct apikey_create_params p = { .owner = kdef[k].owner, .scopes = kdef[k].scopes,
	                                  .rate_limit = APIKEY_RATE_MAX };
	struct apikey_key_info info;

	if (apikey_key_create(W.store, &p, &fuzz_actor, W.key[k], sizeof(W.key[k]), &info) != 0)
		die("create a key");
	memcpy(W.id[k], info.id, sizeof(W.id[k]));
}

/* Imported (sha256) keys for root, re-hashed on first use: each login that
 * types K_FOREIGN takes a fresh one, so the re-hash runs every time.  They
 * are imported FOREIGN_POOL at a time, in one transaction. */
#define FOREIGN_POOL 256
static struct {
	char key[FOREIGN_POOL][APIKEY_KEY_MAX + 1];
	char id[FOREIGN_POOL][APIKEY_ID_SIZE];
	unsigned next;
} F = { .next = FOREIGN_POOL };

static void import_one(unsigned i)
{
	struct apikey_format fmt;
	unsigned char d[SHA256_DIGEST_LENGTH];
	char hash[8 + 2 * SHA256_DIGEST_LENGTH + 1], hint[13];
	struct apikey_import_params p = { .hash = hash, .hint = hint, .owner = "root",
	                                  .scopes = kdef[K_FOREIGN].scopes, .rate_limit = APIKEY_RATE_MAX };
	struct apikey_key_info info;

	apikey_format_default(&fmt);
	if (apikey_token_generate(&fmt, F.key[i], sizeof(F.key[i])) != 0)
		die("generate a key");
	SHA256((const unsigned char *)F.key[i], strlen(F.key[i]), d);
	memcpy(hash, "sha256:", 7);
	for (size_t j = 0; j < sizeof(d); j++)
		snprintf(hash + 7 + 2 * j, 3, "%02x", d[j]);
	snprintf(hint, sizeof(hint), "%.12s", F.key[i]);
	if (apikey_import_one(W.store, &p, &fuzz_actor, &info) != 0)
		die("import a key");
	memcpy(F.id[i], info.id, sizeof(F.id[i]));
}

static void next_foreign(void)
{
	if (F.next == FOREIGN_POOL) {
		if (apikey_import_begin(W.store) != 0)
			die("import");
		for (unsigned i = 0; i < FOREIGN_POOL; i++)
			import_one(i);
		if (apikey_import_commit(W.store) != 0)
			die("import commit");
		F.next = 0;
	}
	memcpy(W.key[K_FOREIGN], F.key[F.next], sizeof(W.key[K_FOREIGN]));
	memcpy(W.id[K_FOREIGN], F.id[F.next], sizeof(W.id[K_FOREIGN]));
	F.next++;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die(path);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st; (void)type; (void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	if (getenv("FUZZ_PAM_SUMMARY"))
		fprintf(stderr, "fuzz_pam: %lu logins, %lu with a fault injected; auth granted %lu, "
		        "refused %lu\n", W.logins, W.faulted, W.granted, W.refused);
	apikey_store_free(W.store);
	W.store = NULL;
	if (W.dir[0])
		nftw(W.dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void world(void)
{
	struct apikey_config cfg;
	struct apikey_format fmt;
	const char *tmp = getenv("TMPDIR");
	char text[3 * APIKEY_PATH_SIZE];

	snprintf(W.dir, sizeof(W.dir), "%s/fuzz-pam.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(W.dir))
		die("mkdtemp");
	atexit(cleanup);
	apikey_config_defaults(&cfg);
	snprintf(cfg.db_path, sizeof(cfg.db_path), "%s/keys.db", W.dir);
	memcpy(W.db, cfg.db_path, sizeof(W.db));
	if (apikey_store_init(&cfg, NULL, NULL) != 0 || apikey_store_open(&W.store, &cfg, NULL, NULL) != 0)
		die("a store");
	for (int k = K_GOOD; k <= K_SUSPENDED; k++)
		make_key((enum key_choice)k);
	if (apikey_key_revoke(W.store, W.id[K_REVOKED], &fuzz_actor) != 0 ||
	    apikey_account_set(W.store, "root", "basic", 1, &fuzz_actor) != 0 ||
	    apikey_account_set(W.store, "bin", "pro", 0, &fuzz_actor) != 0)
		die("revoke, accounts");
	apikey_format_default(&fmt);
	if (apikey_token_generate(&fmt, W.key[K_STRANGER], sizeof(W.key[K_STRANGER])) != 0)
		die("a stranger key");
	/* require_plan= last: a file cut short by a read error loses it first */
	for (int s = 0; s < 4; s++)
		for (int p = 0; p < 4; p++) {
			snprintf(W.conf[s][p], sizeof(W.conf[s][p]), "%s/s%dp%d.conf", W.dir, s, p);
			snprintf(text, sizeof(text), "# fuzz_pam\ndb=%s\nbusy_timeout_ms=200\n%s%s%s%s%s%s",
			         W.db, scope_arg[s] ? "scope=" : "", scope_arg[s] ? scope_arg[s] : "",
			         scope_arg[s] ? "\n" : "", plan_arg[p] ? "require_plan=" : "",
			         plan_arg[p] ? plan_arg[p] : "", plan_arg[p] ? "\n" : "");
			write_file(W.conf[s][p], text);
		}
	snprintf(W.conf_db, sizeof(W.conf_db), "%s/db.conf", W.dir);
	snprintf(text, sizeof(text), "db=%s\nbusy_timeout_ms=200\n", W.db);
	write_file(W.conf_db, text);
}

static void decode(const uint8_t *data, size_t size, struct login *l)
{
	uint8_t b[7] = { 0 };
	size_t head = size < sizeof(b) ? size : sizeof(b);

	memcpy(b, data, head);
	memset(l, 0, sizeof(*l));
	l->user = b[0] % N_USERS;
	l->typed = b[1] % N_KEYS;
	l->authtok = b[2] % (N_KEYS + 1);
	l->use_first = b[3] & 1;
	l->try_first = b[3] & 2;
	l->ignore_unknown = b[3] & 4;
	l->debug = b[3] & 8;
	l->acct = b[3] & 16;
	l->session = b[3] & 32;
	l->rhost = b[3] & 64;
	l->scope = b[4] & 3;
	l->plan = (b[4] >> 2) & 3;
	l->route = (b[4] >> 4) & 3;
	/* b[5] is spare; b[6] counts the fault entries */
	l->faults.n = b[6] % (FAULT_PLAN_MAX + 1);
	data += head;
	size -= head;
	for (unsigned i = 0; i < l->faults.n; i++) {
		if (size < 3) {
			l->faults.n = i;
			break;
		}
		l->faults.e[i].cls = (uint8_t)((data[0] & 0x7f) % F_CLASSES);
		l->faults.e[i].sticky = data[0] & 0x80;
		l->faults.e[i].n = (uint16_t)(data[1] | data[2] << 8);
		data += 3;
		size -= 3;
	}
	l->raw = data;
	l->raw_len = size < APIKEY_KEY_MAX ? size : APIKEY_KEY_MAX;
}

/* The text a key choice presents (NULL: no answer at all). */
static const char *key_text(const struct login *l, unsigned k, char raw[APIKEY_KEY_MAX + 1])
{
	if (k == K_NONE)
		return NULL;
	if (k == K_RAW) {
		memcpy(raw, l->raw, l->raw_len);
		raw[l->raw_len] = '\0';   /* a NUL inside ends it, as a C string would */
		return raw;
	}
	return W.key[k];
}

/* Compared out of libFuzzer's sight: a strcmp here would hand the keys to
 * its dictionary, and raw inputs would then present keys of earlier pools. */
static bool same_key(const char *text, const char *key)
{
	size_t n = strlen(key);

	return n && strlen(text) == n && CRYPTO_memcmp(text, key, n) == 0;
}

/* The model: is this text a key valid for the login's user, scope and plan? */
static bool valid_for(const struct login *l, const char *text)
{
	const char *user = users[l->user];
	unsigned k;

	if (!text)
		return false;
	for (k = K_GOOD; k < K_RAW; k++)
		if (same_key(text, W.key[k]))
			break;
	/* any of the imported keys, not only this login's */
	for (unsigned i = 0; k == K_RAW && i < FOREIGN_POOL; i++)
		if (same_key(text, F.key[i]))
			k = K_FOREIGN;
	if (k == K_RAW || k == K_REVOKED || k == K_SUSPENDED || k == K_STRANGER)
		return false;
	if (strcmp(kdef[k].owner, user) != 0)
		return false;
	/* scope: none given = "pam:fuzz" (the service) */
	if (strcmp(kdef[k].scopes, "*") != 0) {
		const char *need = scope_arg[l->scope] ? scope_arg[l->scope] : "pam:fuzz";
		if (strcmp(need, kdef[k].scopes) != 0)
			return false;
	}
	/* plan: root has "basic", daemon has no account (no plan) */
	if (plan_arg[l->plan]) {
		if (strcmp(user, "root") != 0 || !strstr(plan_arg[l->plan], "basic"))
			return false;
	}
	return true;
}

static bool well_formed(const char *text)
{
	struct apikey_format fmt;

	apikey_format_default(&fmt);
	return text && apikey_token_parse(&fmt, text, strlen(text)) == 0;
}

static bool user_has_keys(const char *user)
{
	return !strcmp(user, "root") || !strcmp(user, "daemon") || !strcmp(user, "bin");
}

static int build_argv(const struct login *l, const char **argv, char bufs[4][APIKEY_PATH_SIZE + 16])
{
	int n = 0;

	switch (l->route) {
	case 0:     /* module arguments only */
	case 2:     /* ... and a conf= that does not exist: refuse */
		snprintf(bufs[0], sizeof(bufs[0]), "db=%s", W.db);
		argv[n++] = bufs[0];
		argv[n++] = "busy_timeout_ms=200";
		if (l->route == 2) {
			snprintf(bufs[1], sizeof(bufs[1]), "conf=%s/missing.conf", W.dir);
			argv[n++] = bufs[1];
		}
		break;
	case 1:     /* everything from the conf file */
		snprintf(bufs[1], sizeof(bufs[1]), "conf=%s", W.conf[l->scope][l->plan]);
		argv[n++] = bufs[1];
		break;
	case 3:     /* db from the conf file, the rest as arguments */
		snprintf(bufs[1], sizeof(bufs[1]), "conf=%s", W.conf_db);
		argv[n++] = bufs[1];
		break;
	}
	if (l->route != 1) {
		if (scope_arg[l->scope]) {
			snprintf(bufs[2], sizeof(bufs[2]), "scope=%s", scope_arg[l->scope]);
			argv[n++] = bufs[2];
		}
		if (plan_arg[l->plan]) {
			snprintf(bufs[3], sizeof(bufs[3]), "require_plan=%s", plan_arg[l->plan]);
			argv[n++] = bufs[3];
		}
	}
	if (l->use_first)
		argv[n++] = "use_first_pass";
	if (l->try_first)
		argv[n++] = "try_first_pass";
	if (l->ignore_unknown)
		argv[n++] = "ignore_unknown_user";
	if (l->debug)
		argv[n++] = "debug";
	return n;
}

static const char *pam_name(int r)
{
	switch (r) {
	case PAM_SUCCESS: return "SUCCESS";
	case PAM_AUTH_ERR: return "AUTH_ERR";
	case PAM_PERM_DENIED: return "PERM_DENIED";
	case PAM_AUTHINFO_UNAVAIL: return "AUTHINFO_UNAVAIL";
	case PAM_USER_UNKNOWN: return "USER_UNKNOWN";
	case PAM_MAXTRIES: return "MAXTRIES";
	case PAM_BUF_ERR: return "BUF_ERR";
	case PAM_SERVICE_ERR: return "SERVICE_ERR";
	case PAM_SYSTEM_ERR: return "SYSTEM_ERR";
	case PAM_IGNORE: return "IGNORE";
	case PAM_INCOMPLETE: return "INCOMPLETE";
	case PAM_ACCT_EXPIRED: return "ACCT_EXPIRED";
	case PAM_SESSION_ERR: return "SESSION_ERR";
	case PAM_CONV_ERR: return "CONV_ERR";
	case -1: return "-";
	default: return "?";
	}
}

/* A refusal a PAM stack treats as a failure (not success, not ignore). */
static bool failure_code(int r)
{
	switch (r) {
	case PAM_AUTH_ERR: case PAM_PERM_DENIED: case PAM_AUTHINFO_UNAVAIL: case PAM_USER_UNKNOWN:
	case PAM_MAXTRIES: case PAM_BUF_ERR: case PAM_SERVICE_ERR: case PAM_SYSTEM_ERR:
	case PAM_INCOMPLETE: case PAM_ACCT_EXPIRED: case PAM_CONV_ERR: case PAM_CRED_INSUFFICIENT:
		return true;
	default:
		return false;
	}
}

static void describe(const struct login *l, const struct fault_stats *st, int auth, int acct,
                     int sess, const char *typed, const char *authtok)
{
	fprintf(stderr, "fuzz_pam: user=%s typed=%s authtok=%s%s%s%s%s%s scope=%s plan=%s route=%u\n",
	        users[l->user], kdef[l->typed].name, l->authtok ? kdef[l->authtok - 1].name : "-",
	        l->use_first ? " use_first_pass" : "", l->try_first ? " try_first_pass" : "",
	        l->ignore_unknown ? " ignore_unknown_user" : "", l->acct ? " +account" : "",
	        l->session ? " +session" : "", scope_arg[l->scope] ? scope_arg[l->scope] : "(service)",
	        plan_arg[l->plan] ? plan_arg[l->plan] : "(any)", l->route);
	fprintf(stderr, "fuzz_pam: valid typed=%d authtok=%d; faults:", valid_for(l, typed),
	        valid_for(l, authtok));
	for (unsigned i = 0; i < l->faults.n; i++)
		fprintf(stderr, " %s#%u%s", fault_class_name((enum fault_class)l->faults.e[i].cls),
		        l->faults.e[i].n, l->faults.e[i].sticky ? "+" : "");
	fprintf(stderr, "\nfuzz_pam: calls alloc=%u open=%u read=%u write=%u pam=%u injected=%u "
	        "auth=%s acct=%s session=%s\n", st->calls[F_ALLOC], st->calls[F_OPEN], st->calls[F_READ],
	        st->calls[F_WRITE], st->calls[F_PAM], st->injected, pam_name(auth), pam_name(acct),
	        pam_name(sess));
}

#define VIOLATION(...)                                                       \
	do {                                                                  \
		describe(&l, &st, auth, acct, sess, typed, authtok);          \
		fprintf(stderr, "fuzz_pam: ORACLE VIOLATION: " __VA_ARGS__);  \
		fputc('\n', stderr);                                          \
		abort();                                                      \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char raw[APIKEY_KEY_MAX + 1], argbufs[4][APIKEY_PATH_SIZE + 16];
	const char *argv[12], *typed, *authtok = NULL, *presented, *exported;
	struct pam_handle h;
	struct fault_stats st;
	struct login l;
	int argc, auth, acct = -1, sess = -1, choice;
	bool ok_expected;

	decode(data, size, &l);
	if (l.typed == K_FOREIGN || l.authtok == K_FOREIGN + 1)
		next_foreign();
	typed = key_text(&l, l.typed, raw);
	if (l.authtok)
		authtok = key_text(&l, l.authtok - 1, raw);
	argc = build_argv(&l, argv, argbufs);
	fake_pam_init(&h, SERVICE, users[l.user], l.rhost ? "198.51.100.7" : NULL);
	fake_pam_set_authtok(&h, authtok);
	h.answer = typed;
	/* a key in a log line is a leak; random bytes that happen to match
	 * part of a path are not: only well-formed keys are looked for */
	h.secret[0] = well_formed(typed) ? typed : NULL;
	h.secret[1] = well_formed(authtok) ? authtok : NULL;

	faults_arm(&l.faults);
	auth = pam_sm_authenticate(&h, 0, argc, argv);
	if (l.acct || auth == PAM_SUCCESS)
		acct = pam_sm_acct_mgmt(&h, 0, argc, argv);
	if (l.session)
		sess = pam_sm_open_session(&h, 0, argc, argv);
	faults_disarm(&st);
	exported = fake_pam_getenv(&h, "APIKEY_ID");

	/* The key the module should have judged: PAM_AUTHTOK with
	 * use_first_pass; with try_first_pass, PAM_AUTHTOK when it is valid,
	 * else the typed one; otherwise the typed one. */
	if (l.use_first)
		choice = l.authtok ? (int)l.authtok - 1 : K_NONE;
	else if (l.try_first && valid_for(&l, authtok))
		choice = (int)l.authtok - 1;
	else
		choice = (int)l.typed;
	presented = choice == (int)l.typed ? typed : authtok;
	ok_expected = fake_pam_user_exists(users[l.user]) && l.route != 2 && valid_for(&l, presented);
	if (W.verbose)
		describe(&l, &st, auth, acct, sess, typed, authtok);

	if (auth == PAM_SUCCESS && !ok_expected)
		VIOLATION("auth is PAM_SUCCESS for a key that is not valid for this login");
	if (ok_expected && st.injected == 0 && auth != PAM_SUCCESS)
		VIOLATION("a valid key is refused with no fault injected");
	if (auth == PAM_IGNORE && !(l.ignore_unknown && !user_has_keys(users[l.user])))
		VIOLATION("auth is PAM_IGNORE for a user who has keys");
	if (auth != PAM_SUCCESS && auth != PAM_IGNORE && !failure_code(auth))
		VIOLATION("auth answers %d, not a failure code", auth);
	if (acct == PAM_SUCCESS && auth != PAM_SUCCESS)
		VIOLATION("account is PAM_SUCCESS after a failed auth");
	if (auth == PAM_SUCCESS && acct != PAM_SUCCESS && !failure_code(acct))
		VIOLATION("account answers %s after a successful auth", pam_name(acct));
	if (auth == PAM_SUCCESS && st.injected == 0 && acct != PAM_SUCCESS)
		VIOLATION("account refuses a valid key with no fault injected");
	if (auth != PAM_SUCCESS && acct != -1 && acct != PAM_IGNORE && !failure_code(acct))
		VIOLATION("account answers %d after a failed auth", acct);
	if (exported && auth != PAM_SUCCESS)
		VIOLATION("APIKEY_ID exported after a failed auth");
	if (exported && strcmp(exported, W.id[choice]) != 0)
		VIOLATION("APIKEY_ID=%s is not the key presented", exported);
	if (h.leaked)
		VIOLATION("a log line carries a key presented");
	fake_pam_end(&h);
	W.logins++;
	W.faulted += st.injected > 0;
	W.granted += auth == PAM_SUCCESS;
	W.refused += auth != PAM_SUCCESS;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* the first login, fault-free: the harness and the model agree */
	static const uint8_t good[] = { 0, K_GOOD, 0, 16 | 32, 0, 0, 0 };

	(void)argc; (void)argv;
	W.verbose = getenv("FUZZ_PAM_VERBOSE") != NULL;
	if (faults_install() != 0)
		fprintf(stderr, "fuzz_pam: a library refused the fault hooks: its calls are not failed\n");
	world();
	LLVMFuzzerTestOneInput(good, sizeof(good));
	return 0;
}

/* dlsym_check.c — loads the built module as libpam would and checks what it
 * exports: the five pam_sm_* functions, and nothing of the core linked into
 * it (a core symbol leaking out could bind to another module's copy).
 * Prints TAP.  usage: dlsym_check MODULE */
#include <dlfcn.h>
#include <stdio.h>

static int n, failed;

static void check(int ok, const char *what, const char *sym)
{
	n++;
	if (!ok)
		failed++;
	printf("%sok %d - %s %s\n", ok ? "" : "not ", n, sym, what);
}

int main(int argc, char **argv)
{
	static const char *const want[] = {
		"pam_sm_authenticate", "pam_sm_setcred", "pam_sm_acct_mgmt",
		"pam_sm_open_session", "pam_sm_close_session",
	};
	static const char *const hidden[] = {
		"apikey_verify", "apikey_store_open", "apikey_config_apply", "apikey_token_parse",
		"opts_parse", "log_sink", "core_log", "copy_str", "row_key_by_digest",
	};
	void *h;

	if (argc != 2) {
		fprintf(stderr, "usage: dlsym_check MODULE\n");
		return 2;
	}
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	check(h != NULL, "loads with RTLD_NOW (no undefined symbols)", argv[1]);
	if (!h) {
		fprintf(stderr, "dlsym_check: %s\n", dlerror());
		printf("1..%d\n", n);
		return 1;
	}
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		check(dlsym(h, want[i]) != NULL, "is exported", want[i]);
	for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
		check(dlsym(h, hidden[i]) == NULL, "is not exported", hidden[i]);
	check(dlsym(h, "pam_sm_chauthtok") == NULL, "is not provided (no password phase)", "pam_sm_chauthtok");
	dlclose(h);
	printf("1..%d\n", n);
	return failed ? 1 : 0;
}

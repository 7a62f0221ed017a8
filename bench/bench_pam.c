/* bench_pam.c — in-process cost of one PAM login through the module:
 * pam_start_confdir + pam_authenticate + pam_acct_mgmt + pam_end, in µs, next
 * to the same cycle with pam_permit.so (libpam's own cost) measured in the
 * same run, interleaved.  Prints numbers; asserts nothing.
 * usage: bench-pam MODULE DB KEY USER ITERATIONS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <security/pam_appl.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *key)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF && !(r[i].resp = strdup(key))) {
			for (int j = 0; j < i; j++)
				free(r[j].resp);
			free(r);
			return PAM_BUF_ERR;
		}
	*resp = r;
	return PAM_SUCCESS;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median µs of n cycles of service; -1 if any cycle did not succeed. */
static double run(const char *confdir, const char *service, const char *user, const char *key,
                  double *t, long n)
{
	struct pam_conv c = { conv, (void *)key };

	for (long i = 0; i < n; i++) {
		pam_handle_t *h;
		double t0 = now_us();
		int r = pam_start_confdir(service, user, &c, confdir, &h);

		if (r == PAM_SUCCESS && (r = pam_authenticate(h, 0)) == PAM_SUCCESS)
			r = pam_acct_mgmt(h, 0);
		pam_end(h, r);
		t[i] = now_us() - t0;
		if (r != PAM_SUCCESS) {
			fprintf(stderr, "bench-pam: %s: %s\n", service, pam_strerror(NULL, r));
			return -1;
		}
	}
	qsort(t, (size_t)n, sizeof(*t), cmp);
	return t[n / 2];
}

static int write_service(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) || !(f = fopen(path, "w")))
		return -1;
	fputs(text, f);
	return fclose(f);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/bench-pam.XXXXXX", stack[8192], path[4096];
	double *t, best_mod = 0, best_permit = 0;
	char *end = NULL;
	long n = 0;

	if (argc == 6)
		n = strtol(argv[5], &end, 10);
	if (argc != 6 || !end || *end != '\0' || n < 1 || n > 10000000) {
		fprintf(stderr, "usage: bench-pam MODULE DB KEY USER ITERATIONS\n");
		return 2;
	}
	if (!mkdtemp(dir) || !(t = calloc((size_t)n, sizeof(*t))))
		return 1;
	snprintf(stack, sizeof(stack), "auth required %s db=%s scope=pam:bench\n"
	         "account required %s db=%s\n", argv[1], argv[2], argv[1], argv[2]);
	if (write_service(dir, "bench-apikey", stack) != 0 ||
	    write_service(dir, "bench-permit", "auth required pam_permit.so\naccount required pam_permit.so\n") != 0)
		return 1;
	/* Three interleaved rounds; the best median of each, so drift on a
	 * shared machine hits both sides. */
	for (int round = 0; round < 3; round++) {
		double p = run(dir, "bench-permit", argv[4], argv[3], t, n);
		double m = run(dir, "bench-apikey", argv[4], argv[3], t, n);

		if (p < 0 || m < 0)
			return 1;
		if (round == 0 || p < best_permit)
			best_permit = p;
		if (round == 0 || m < best_mod)
			best_mod = m;
	}
	printf("%-28s %10.1f us\n%-28s %10.1f us  (+%.1f us for the key check)\n",
	       "pam_permit cycle (median)", best_permit, "pam_apikey cycle (median)", best_mod,
	       best_mod - best_permit);
	free(t);
	snprintf(path, sizeof(path), "%s/bench-apikey", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bench-permit", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

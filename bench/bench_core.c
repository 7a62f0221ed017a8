/* bench_core.c — core verify cost per call (ns/op) at 1k, 100k and 1M keys,
 * next to a baseline measured in the same run on the same database: one
 * HMAC-SHA256 plus one raw indexed SQLite probe.  Prints ratios; asserts
 * nothing (machines here are noisy).
 * "verify" is the uncached path (a key seen for the first time, or every
 * PAM login), "cached" the sidecar's steady state, "persisted" PAM's mode
 * with its per-call synced write.
 * usage: APIKEY_FILL=apikey-fill bench-core DIR [ITERATIONS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include "apikey.h"

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The floor: what any design must pay to verify one key. */
static double baseline(const char *db_path, const char *pepper_path, const char *key, long iters)
{
	unsigned char pepper[32], d[32];
	size_t outl;
	sqlite3 *db;
	sqlite3_stmt *st;
	FILE *f = fopen(pepper_path, "rb");
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	double t0, t;
	long found = 0;

	if (!f || fread(pepper, 1, 32, f) != 32)
		exit(1);
	fclose(f);
	EVP_MAC_init(ctx, pepper, 32, params);
	sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL);
	sqlite3_prepare_v2(db, "SELECT id FROM keys WHERE hash = ?1", -1, &st, NULL);
	t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		EVP_MAC_init(ctx, NULL, 0, NULL);
		EVP_MAC_update(ctx, (const unsigned char *)key, strlen(key));
		EVP_MAC_final(ctx, d, &outl, sizeof(d));
		sqlite3_bind_blob(st, 1, d, 32, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			found++;
		sqlite3_reset(st);
	}
	t = (now_ns() - t0) / (double)iters;
	if (found != iters)
		fprintf(stderr, "baseline: key not found\n"), exit(1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return t;
}

static double verify_ns(struct apikey_store *s, const char *db_path, struct apikey_cache *cache, const char *key,
                        long iters)
{
	struct apikey_limiter *lim;
	struct apikey_usage *u;
	struct apikey_verifier v;
	struct apikey_verify_request rq = { .key = key, .key_len = strlen(key), .scopes = "bench:read",
	                                    .source = "bench" };
	struct apikey_verify_result res;
	double t0, t;

	if (apikey_limiter_open(&lim, db_path, NULL, NULL) != 0)
		fprintf(stderr, "verify: no rate-limit table\n"), exit(1);
	apikey_usage_new(&u);
	v = (struct apikey_verifier){ .store = s, .cache = cache, .limiter = lim, .usage = u };
	t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		apikey_verify_cached(&v, &rq, &res);
		if (res.outcome != APIKEY_VALID)
			fprintf(stderr, "verify: %s\n", apikey_outcome_code(res.outcome)), exit(1);
	}
	t = (now_ns() - t0) / (double)iters;
	apikey_usage_free(u);
	apikey_limiter_free(lim);
	return t;
}

/* A DB of n keys under dir, filled once and reused by later runs; returns a
 * fresh valid key for this run in key. */
static struct apikey_store *open_filled(const char *dir, long n, char key[APIKEY_KEY_MAX + 1],
                                        char db[512])
{
	struct apikey_create_params p = { .owner = "bench", .scopes = "bench:read,pam:bench",
	                                  .rate_limit = APIKEY_RATE_MAX };
	struct apikey_actor actor = { .source = "bench" };
	char cmd[1200];
	struct apikey_config cfg;
	struct apikey_store *s;
	struct stat st;

	snprintf(db, 512, "%s/bench-%ld.db", dir, n);
	apikey_config_defaults(&cfg);
	snprintf(cfg.db_path, sizeof(cfg.db_path), "%s", db);
	if (stat(db, &st) != 0) {
		snprintf(cmd, sizeof(cmd), "'%s' '%s' %ld >/dev/null", getenv("APIKEY_FILL"), db, n);
		if (apikey_store_init(&cfg, NULL, NULL) != 0 || system(cmd) != 0) {
			fprintf(stderr, "bench-core: could not fill %s\n", db);
			exit(1);
		}
	}
	if (apikey_store_open(&s, &cfg, NULL, NULL) != 0 ||
	    apikey_key_create(s, &p, &actor, key, APIKEY_KEY_MAX + 1, NULL) != 0) {
		fprintf(stderr, "bench-core: could not open %s\n", db);
		exit(1);
	}
	return s;
}

int main(int argc, char **argv)
{
	static const long sizes[] = { 1000, 100000, 1000000 };
	long iters = argc > 2 ? strtol(argv[2], NULL, 10) : 200000;
	double first_verify = 0;

	if (argc < 2 || iters <= 0 || !getenv("APIKEY_FILL")) {
		fprintf(stderr, "usage: APIKEY_FILL=apikey-fill bench-core DIR [ITERATIONS]\n");
		return 2;
	}
	printf("%-8s %10s %10s %7s %10s %7s %11s\n", "keys", "baseline", "verify", "ratio",
	       "cached", "ratio", "persisted");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char db[512], pepper[600], key[APIKEY_KEY_MAX + 1];
		struct apikey_store *s = open_filled(argv[1], sizes[i], key, db);
		struct apikey_cache *cache;
		double b = 0, v = 0, vc = 0, p;

		snprintf(pepper, sizeof(pepper), "%s.pepper", db);
		apikey_cache_new(&cache, 0);
		/* Interleave rounds and keep each one's best, so drift on a shared
		 * machine hits the baseline and the verifier alike. */
		for (int round = 0; round < 3; round++) {
			double bb = baseline(db, pepper, key, iters), vv = verify_ns(s, db, NULL, key, iters);
			double cc = verify_ns(s, db, cache, key, iters);
			if (round == 0 || bb < b) b = bb;
			if (round == 0 || vv < v) v = vv;
			if (round == 0 || cc < vc) vc = cc;
		}
		{
			/* PAM's mode: rate-limit state and usage committed (and synced) per call */
			struct apikey_verify_request rq = { .key = key, .key_len = strlen(key), .source = "bench" };
			struct apikey_verify_result res;
			long n = 200;
			double t0 = now_ns();
			for (long k = 0; k < n; k++)
				apikey_verify(s, &rq, &res);
			p = (now_ns() - t0) / (double)n;
		}
		if (i == 0)
			first_verify = v;
		printf("%-8ld %7.0f ns %7.0f ns %6.2fx %7.0f ns %6.2fx %8.0f ns\n", sizes[i], b, v, v / b,
		       vc, vc / b, p);
		OPENSSL_cleanse(key, sizeof(key));
		apikey_cache_free(cache);
		apikey_store_free(s);
		if (i == sizeof(sizes) / sizeof(sizes[0]) - 1)
			printf("verify at 1M / verify at 1k: %.2fx (target <= 1.3x); verify/baseline target <= 1.5x\n",
			       v / first_verify);
	}
	return 0;
}

/* testdata.c — apikey-testdata: foreign hashes and import files for the CLI
 * tests and the import benchmark (what another system would have stored).
 *
 *   apikey-testdata hash sha256|bcrypt|argon2id KEY   print KEY's hash
 *   apikey-testdata gen N KEYFILE [OWNER]             N import lines on stdout
 *
 * gen issues N keys of the default profile and writes one sha256 import line
 * per key to stdout (sha256 only: the benchmark measures the importer, not
 * bcrypt); keys 1, 1001, 2001, ... go to KEYFILE with their line numbers so a
 * test or the benchmark can verify a sample. */
#include <argon2.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include "apikey.h"

static int sha256_hex(const char *key, char out[7 + 64 + 1])
{
	unsigned char d[SHA256_DIGEST_LENGTH];

	if (!SHA256((const unsigned char *)key, strlen(key), d))
		return -1;
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", d[i]);
	return 0;
}

static int hash_one(const char *alg, const char *key)
{
	char out[512], salt[64];
	unsigned char rnd[16];
	struct crypt_data *cd;
	int r = 1;

	if (!strcmp(alg, "sha256")) {
		if (sha256_hex(key, out) != 0)
			return 1;
	} else if (!strcmp(alg, "bcrypt")) {
		/* cost 4: the lowest bcrypt allows, so the tests stay quick */
		if (!(cd = calloc(1, sizeof(*cd))))
			return 1;
		if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
		    !crypt_gensalt_rn("$2b$", 4, (const char *)rnd, sizeof(rnd), salt, sizeof(salt)) ||
		    !crypt_r(key, salt, cd) || cd->output[0] == '*') {
			free(cd);
			return 1;
		}
		snprintf(out, sizeof(out), "%s", cd->output);
		free(cd);
	} else if (!strcmp(alg, "argon2id")) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
		    argon2id_hash_encoded(1, 1024, 1, key, strlen(key), rnd, sizeof(rnd), 32, out,
		                          sizeof(out)) != ARGON2_OK)
			return 1;
	} else {
		fprintf(stderr, "apikey-testdata: unknown algorithm %s\n", alg);
		return 2;
	}
	r = puts(out) == EOF;
	return r;
}

static int gen(unsigned long long n, const char *keyfile, const char *owner)
{
	struct apikey_format f;
	char key[APIKEY_KEY_MAX + 1], hint[16], hash[7 + 64 + 1];
	FILE *kf = fopen(keyfile, "w");

	if (!kf) {
		perror(keyfile);
		return 1;
	}
	apikey_format_default(&f);
	for (unsigned long long i = 1; i <= n; i++) {
		json_t *o;
		if (apikey_token_generate(&f, key, sizeof(key)) != 0 || sha256_hex(key, hash) != 0)
			return 1;
		snprintf(hint, sizeof(hint), "%.10s", key);
		o = json_pack("{s:s, s:s, s:s, s:s, s:[s,s], s:n, s:i, s:{s:I}}",
		              "hash", hash, "hint", hint, "owner", owner, "name", "imported",
		              "scopes", "docs:read", "pam:login", "expires_at", "rate_limit", 600,
		              "metadata", "line", (json_int_t)i);
		if (!o || json_dumpf(o, stdout, JSON_COMPACT) != 0 || putchar('\n') == EOF)
			return 1;
		json_decref(o);
		if (i % 1000 == 1)
			fprintf(kf, "%llu %s\n", i, key);
	}
	OPENSSL_cleanse(key, sizeof(key));
	return fclose(kf) != 0 || fflush(stdout) != 0;
}

int main(int argc, char **argv)
{
	unsigned long long n;

	if (argc == 4 && !strcmp(argv[1], "hash"))
		return hash_one(argv[2], argv[3]);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "gen") &&
	    apikey_parse_uint(argv[2], 1, 100000000, &n) == 0)
		return gen(n, argv[3], argc == 5 ? argv[4] : "importer");
	fprintf(stderr, "usage: apikey-testdata hash sha256|bcrypt|argon2id KEY\n"
	                "       apikey-testdata gen N KEYFILE [OWNER]\n");
	return 2;
}

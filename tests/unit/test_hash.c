/* test_hash.c — core/hash.c: the pepper file's safety rules, HMAC-SHA256
 * against OpenSSL's one-shot HMAC, and each foreign hash scheme. */
#include <argon2.h>
#include <crypt.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include "unit.h"
#include "../../core/internal.h"

static char dir[64];

static int mkdir_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/apikey-hash.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int rmdir_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char buf[64] = { 7 };

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void pepper_rules(void **state)
{
	unsigned char p[APIKEY_PEPPER_LEN], q[APIKEY_PEPPER_LEN];
	char path[128], link[140];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/pepper", dir);
	assert_int_equal(pepper_create(path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, APIKEY_PEPPER_LEN);
	assert_int_equal(pepper_create(path), APIKEY_ERR_EXISTS);   /* never overwritten */
	assert_int_equal(pepper_load(path, p), 0);
	chmod(path, 0640);                                           /* a shared group may read */
	assert_int_equal(pepper_load(path, q), 0);
	assert_memory_equal(p, q, sizeof(p));
	chmod(path, 0644);                                           /* others may read: refused */
	assert_int_equal(pepper_load(path, q), APIKEY_ERR_PEPPER);
	chmod(path, 0660);                                           /* group may write: refused */
	assert_int_equal(pepper_load(path, q), APIKEY_ERR_PEPPER);
	chmod(path, 0600);

	/* a symlink is not followed, a wrong size or a directory is refused */
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(pepper_load(link, q), APIKEY_ERR_PEPPER);
	snprintf(path, sizeof(path), "%s/short", dir);
	write_file(path, 31, 0600);
	assert_int_equal(pepper_load(path, q), APIKEY_ERR_PEPPER);
	snprintf(path, sizeof(path), "%s/long", dir);
	write_file(path, 33, 0600);
	assert_int_equal(pepper_load(path, q), APIKEY_ERR_PEPPER);
	assert_int_equal(pepper_load(dir, q), APIKEY_ERR_PEPPER);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(pepper_load(path, q), APIKEY_ERR_PEPPER);
}

/* The log line says which rule a refused pepper broke, not only the rules. */
static void pepper_problems_named(void **state)
{
	char path[128], link[140], why[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_string_equal(pepper_problem(path, why, sizeof(why)), "missing (No such file or directory)");
	snprintf(path, sizeof(path), "%s/loose", dir);
	write_file(path, 32, 0644);
	assert_string_equal(pepper_problem(path, why, sizeof(why)), "has mode 0644: must be 0600 or 0640");
	snprintf(path, sizeof(path), "%s/short2", dir);
	write_file(path, 31, 0600);
	assert_string_equal(pepper_problem(path, why, sizeof(why)), "is 31 bytes: must be 32");
	snprintf(link, sizeof(link), "%s/link2", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_string_equal(pepper_problem(link, why, sizeof(why)), "is a symbolic link: must be the file itself");
	assert_string_equal(pepper_problem(dir, why, sizeof(why)), "is not a regular file");
}

static void hmac_matches_openssl(void **state)
{
	unsigned char pepper[APIKEY_PEPPER_LEN], other[APIKEY_PEPPER_LEN];
	unsigned char got[DIGEST_LEN], again[DIGEST_LEN], want[DIGEST_LEN], diff[DIGEST_LEN];
	unsigned int wl = 0;
	const char *key = "ak_0123456789abcdefghijABCDEFGHIJ012345";
	EVP_MAC_CTX *m, *m2;

	(void)state;
	for (int i = 0; i < APIKEY_PEPPER_LEN; i++)
		pepper[i] = (unsigned char)i, other[i] = (unsigned char)(i + 1);
	assert_non_null(m = hmac_new(pepper));
	assert_non_null(m2 = hmac_new(other));
	assert_int_equal(hmac_digest(m, key, strlen(key), got), 0);
	assert_int_equal(hmac_digest(m, key, strlen(key), again), 0);   /* context reuse */
	assert_non_null(HMAC(EVP_sha256(), pepper, sizeof(pepper), (const unsigned char *)key,
	                     strlen(key), want, &wl));
	assert_int_equal(wl, DIGEST_LEN);
	assert_memory_equal(got, want, DIGEST_LEN);
	assert_memory_equal(again, want, DIGEST_LEN);
	assert_int_equal(hmac_digest(m2, key, strlen(key), diff), 0);    /* the pepper matters */
	assert_memory_not_equal(diff, want, DIGEST_LEN);
	hmac_free(m);
	hmac_free(m2);
	hmac_free(NULL);
}

static void foreign_schemes(void **state)
{
	const char *key = "cu_0f8fad5b-d9cb-469f-a165-70867728950e";
	unsigned char d[SHA256_DIGEST_LENGTH];
	char sha[80], salt[64], enc[200];
	struct crypt_data cd;
	int o;

	(void)state;
	SHA256((const unsigned char *)key, strlen(key), d);
	o = snprintf(sha, sizeof(sha), "sha256:");
	for (int i = 0; i < 32; i++)
		o += snprintf(sha + o, sizeof(sha) - (size_t)o, "%02x", d[i]);
	assert_string_equal(apikey_hash_scheme(sha), "sha256");
	assert_int_equal(foreign_verify(sha, key, strlen(key)), 0);
	assert_int_equal(foreign_verify(sha, key, strlen(key) - 1), APIKEY_ERR_NOT_FOUND);

	memset(&cd, 0, sizeof(cd));
	assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof(salt)));
	assert_non_null(crypt_r(key, salt, &cd));
	assert_string_equal(apikey_hash_scheme(cd.output), "bcrypt");
	assert_int_equal(foreign_verify(cd.output, key, strlen(key)), 0);
	assert_int_equal(foreign_verify(cd.output, "cu_nope", 7), APIKEY_ERR_NOT_FOUND);

	assert_int_equal(argon2id_hash_encoded(1, 1024, 1, key, strlen(key), "saltsaltsalt", 12, 32,
	                                       enc, sizeof(enc)), ARGON2_OK);
	assert_string_equal(apikey_hash_scheme(enc), "argon2id");
	assert_int_equal(foreign_verify(enc, key, strlen(key)), 0);
	assert_int_equal(foreign_verify(enc, "cu_nope", 7), APIKEY_ERR_NOT_FOUND);

	/* schemes we do not accept are refused, never "matched" */
	assert_null(apikey_hash_scheme("md5:0123"));
	assert_null(apikey_hash_scheme("sha256:xyz"));
	assert_null(apikey_hash_scheme("$2b$04$short"));
	assert_null(apikey_hash_scheme("$argon2i$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"));
	assert_null(apikey_hash_scheme(NULL));
	assert_null(apikey_hash_scheme(""));
	/* the size limit is part of the classification */
	char long_hash[APIKEY_FOREIGN_HASH_SIZE + 1];
	memset(long_hash, 'A', sizeof(long_hash) - 1);
	long_hash[sizeof(long_hash) - 1] = '\0';
	memcpy(long_hash, "$argon2id$", 10);
	long_hash[APIKEY_FOREIGN_HASH_SIZE - 1] = '\0';    /* 255 characters: accepted */
	assert_string_equal(apikey_hash_scheme(long_hash), "argon2id");
	long_hash[APIKEY_FOREIGN_HASH_SIZE - 1] = 'A';     /* 256: refused */
	assert_null(apikey_hash_scheme(long_hash));
	assert_int_equal(foreign_verify("plain", key, strlen(key)), APIKEY_ERR_INVALID);
	/* a key longer than any we accept is refused before hashing */
	char big[APIKEY_KEY_MAX + 8];
	memset(big, 'a', sizeof(big));
	assert_int_equal(foreign_verify(sha, big, sizeof(big)), APIKEY_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pepper_rules),
		cmocka_unit_test(pepper_problems_named), cmocka_unit_test(hmac_matches_openssl),
		cmocka_unit_test(foreign_schemes),
	};
	return cmocka_run_group_tests(tests, mkdir_setup, rmdir_teardown);
}

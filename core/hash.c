/* hash.c — the pepper file, HMAC-SHA256 of keys, and checks of imported
 * foreign hashes (sha256, bcrypt, argon2id).  Every comparison is
 * constant-time; key copies are wiped. */
#include <argon2.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include "internal.h"

int pepper_create(const char *path)
{
	unsigned char p[APIKEY_PEPPER_LEN];
	int fd, r = APIKEY_ERR_IO;

	if (RAND_bytes(p, sizeof(p)) != 1)
		return APIKEY_ERR_CRYPTO;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = errno == EEXIST ? APIKEY_ERR_EXISTS : APIKEY_ERR_IO;
		goto out;
	}
	if (write(fd, p, sizeof(p)) != (ssize_t)sizeof(p) || fsync(fd) != 0) {
		close(fd);
		unlink(path);
		goto out;
	}
	close(fd);
	r = 0;
out:
	OPENSSL_cleanse(p, sizeof(p));
	return r;
}

/* The pepper must be a regular 32-byte file no other user can read or write
 * (0600, or 0640 for a group the services share). */
int pepper_load(const char *path, unsigned char out[APIKEY_PEPPER_LEN])
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int r = APIKEY_ERR_PEPPER;

	if (fd < 0)
		return APIKEY_ERR_PEPPER;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0007) ||
	    (st.st_mode & 0020) || st.st_size != APIKEY_PEPPER_LEN)
		goto out;
	if (read(fd, out, APIKEY_PEPPER_LEN) != APIKEY_PEPPER_LEN) {
		OPENSSL_cleanse(out, APIKEY_PEPPER_LEN);
		goto out;
	}
	r = 0;
out:
	close(fd);
	return r;
}

const char *pepper_problem(const char *path, char *buf, size_t bufsz)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) != 0) {
		snprintf(buf, bufsz, "%s (%s)", errno == ENOENT ? "missing" : "cannot be looked at", strerror(errno));
	} else if (S_ISLNK(st.st_mode)) {
		snprintf(buf, bufsz, "is a symbolic link: must be the file itself");
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(buf, bufsz, "is not a regular file");
	} else if ((st.st_mode & 0007) || (st.st_mode & 0020)) {
		snprintf(buf, bufsz, "has mode %04o: must be 0600 or 0640", (unsigned)(st.st_mode & 07777));
	} else if (st.st_size != APIKEY_PEPPER_LEN) {
		snprintf(buf, bufsz, "is %lld bytes: must be %d", (long long)st.st_size, APIKEY_PEPPER_LEN);
	} else if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(buf, bufsz, "cannot be read (%s)", strerror(errno));
	} else {
		close(fd);
		snprintf(buf, bufsz, "could not be read whole");
	}
	return buf;
}

EVP_MAC_CTX *hmac_new(const unsigned char pepper[APIKEY_PEPPER_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	EVP_MAC_free(mac);   /* the context keeps its own reference */
	if (ctx && EVP_MAC_init(ctx, pepper, APIKEY_PEPPER_LEN, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

void hmac_free(EVP_MAC_CTX *m)
{
	EVP_MAC_CTX_free(m);
}

int hmac_digest(EVP_MAC_CTX *m, const char *key, size_t len, unsigned char out[DIGEST_LEN])
{
	size_t outl = 0;

	/* A NULL key re-initialises with the pepper set in hmac_new. */
	if (EVP_MAC_init(m, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(m, (const unsigned char *)key, len) != 1 ||
	    EVP_MAC_final(m, out, &outl, DIGEST_LEN) != 1 || outl != DIGEST_LEN)
		return APIKEY_ERR_CRYPTO;
	return 0;
}

const char *apikey_hash_scheme(const char *hash)
{
	size_t n = hash ? strnlen(hash, APIKEY_FOREIGN_HASH_SIZE) : 0;

	if (n == 0 || n >= APIKEY_FOREIGN_HASH_SIZE)
		return NULL;
	if (!strncmp(hash, "sha256:", 7) && n == 7 + 64 &&
	    strspn(hash + 7, "0123456789abcdefABCDEF") == 64)
		return "sha256";
	if ((!strncmp(hash, "$2b$", 4) || !strncmp(hash, "$2a$", 4) || !strncmp(hash, "$2y$", 4)) &&
	    n == 60)
		return "bcrypt";
	if (!strncmp(hash, "$argon2id$", 10))
		return "argon2id";
	return NULL;
}

static int verify_sha256(const char *stored, const char *key, size_t len)
{
	unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
	size_t wl = 0;

	if (OPENSSL_hexstr2buf_ex(want, sizeof(want), &wl, stored + 7, '\0') != 1 ||
	    wl != sizeof(want))
		return APIKEY_ERR_INVALID;
	if (!SHA256((const unsigned char *)key, len, got))
		return APIKEY_ERR_CRYPTO;
	return CRYPTO_memcmp(want, got, sizeof(got)) == 0 ? 0 : APIKEY_ERR_NOT_FOUND;
}

static int verify_bcrypt(const char *stored, const char *key, size_t len)
{
	char buf[APIKEY_KEY_MAX + 1];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;
	int r = APIKEY_ERR_NOT_FOUND;

	if (!cd)
		return APIKEY_ERR_NOMEM;
	memcpy(buf, key, len);
	buf[len] = '\0';
	h = crypt_r(buf, stored, cd);
	if (!h || h[0] == '*')
		r = APIKEY_ERR_INVALID;
	else if (strlen(h) == strlen(stored) && CRYPTO_memcmp(h, stored, strlen(h)) == 0)
		r = 0;
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return r;
}

int foreign_verify(const char *stored, const char *key, size_t len)
{
	const char *alg = apikey_hash_scheme(stored);

	if (!alg || len > APIKEY_KEY_MAX)
		return APIKEY_ERR_INVALID;
	if (!strcmp(alg, "sha256"))
		return verify_sha256(stored, key, len);
	if (!strcmp(alg, "bcrypt"))
		return verify_bcrypt(stored, key, len);
	switch (argon2id_verify(stored, key, len)) {
	case ARGON2_OK:              return 0;
	case ARGON2_VERIFY_MISMATCH: return APIKEY_ERR_NOT_FOUND;
	default:                     return APIKEY_ERR_INVALID;
	}
}

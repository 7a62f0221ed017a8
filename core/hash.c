/* hash.c — the pepper file, HMAC-SHA256 of keys, and checks of imported
 * foreign hashes (sha256, bcrypt, argon2id).  Every comparison is
 * constant-time; key copies are wiped.
 *
 * libcrypt (bcrypt) and libargon2 are loaded the first time a key of that
 * kind is checked (dlopen), not linked: every login through the PAM module
 * would otherwise map both into sshd for the few stores that hold imported
 * keys.  A library that cannot be loaded makes the check fail closed. */
#include <argon2.h>
#include <crypt.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
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

/* A decimal field "<name>=<digits>" inside an argon2 parameter list. */
static long argon2_param(const char *hash, const char *name)
{
	const char *p = strstr(hash, name);
	long v = 0;

	if (!p)
		return -1;
	for (p += strlen(name); *p >= '0' && *p <= '9' && v < 100000000; p++)
		v = v * 10 + (*p - '0');
	return v;
}

/*
 * What one check of an imported hash may cost, refused at import above it
 * (docs/DESIGN.md "Imports"): bcrypt cost <= 12 (~0.4 s here), argon2id
 * m <= 64 MiB, t <= 8, p <= 4.  The PAM module checks them inside sshd, and
 * every first use of such a key pays one; nothing above what the systems
 * we replace use.
 */
int foreign_cost_check(const char *hash, const char **why)
{
	const char *alg = apikey_hash_scheme(hash);

	*why = NULL;
	if (alg && !strcmp(alg, "bcrypt")) {
		int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
		if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' || cost < 4 ||
		    cost > FOREIGN_BCRYPT_COST_MAX)
			*why = "bcrypt cost must be 4..12";
	} else if (alg && !strcmp(alg, "argon2id")) {
		long m = argon2_param(hash, "m="), t = argon2_param(hash, "t="), p = argon2_param(hash, "p=");
		if (m < 1 || m > FOREIGN_ARGON2_MEM_KIB_MAX || t < 1 || t > FOREIGN_ARGON2_TIME_MAX ||
		    p < 1 || p > FOREIGN_ARGON2_LANES_MAX)
			*why = "argon2id parameters must be m <= 65536 (KiB), t <= 8, p <= 4";
	}
	return *why ? APIKEY_ERR_INVALID : 0;
}

bool foreign_is_slow(const char *stored)
{
	const char *alg = apikey_hash_scheme(stored);

	return alg && strcmp(alg, "sha256") != 0;
}

unsigned foreign_cost_ms(const char *stored)
{
	const char *alg = apikey_hash_scheme(stored);

	if (!alg || !strcmp(alg, "sha256"))
		return 0;
	if (!strcmp(alg, "bcrypt")) {
		int cost = (stored[4] - '0') * 10 + (stored[5] - '0');
		/* ~0.09 ms per 2^cost rounds here: cost 4 ~1.5 ms, 10 ~94, 12 ~390 */
		return cost < 4 || cost > 31 ? 1000 : (unsigned)((1u << cost) * 92 / 1000) + 1;
	}
	long m = argon2_param(stored, "m="), t = argon2_param(stored, "t=");
	/* about a GiB of memory passes a second: m KiB x t passes */
	return m < 1 || t < 1 ? 1000 : (unsigned)(m * t / 1024) + 1;
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

/* The two libraries, each looked up once per process and never unloaded:
 * written by pthread_once only, read-only afterwards (no state two PAM
 * handles could share).  Sonames, first found wins: Debian's libcrypt1
 * (libxcrypt's glibc-compatible ABI) or Fedora's libxcrypt (.so.2, the same
 * crypt_r and struct crypt_data); libargon2-1 on both. */
static const char *const libcrypt_sonames[] = { "libcrypt.so.1", "libcrypt.so.2", NULL };
static const char *const libargon2_sonames[] = { "libargon2.so.1", NULL };
typedef char *crypt_r_fn(const char *, const char *, struct crypt_data *);
typedef int argon2id_verify_fn(const char *, const void *, size_t);
static pthread_once_t crypt_once = PTHREAD_ONCE_INIT, argon2_once = PTHREAD_ONCE_INIT;
static crypt_r_fn *lib_crypt_r;
static argon2id_verify_fn *lib_argon2id_verify;

static void *load(const char *const sonames[], const char *sym)
{
	for (unsigned i = 0; sonames[i]; i++) {
		void *lib = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);

		if (lib)
			return dlsym(lib, sym);
	}
	return NULL;
}

static void load_crypt(void)
{
	lib_crypt_r = (crypt_r_fn *)load(libcrypt_sonames, "crypt_r");
}

static void load_argon2(void)
{
	lib_argon2id_verify = (argon2id_verify_fn *)load(libargon2_sonames, "argon2id_verify");
}

static int verify_bcrypt(const char *stored, const char *key, size_t len)
{
	char buf[APIKEY_KEY_MAX + 1];
	struct crypt_data *cd;
	const char *h;
	int r = APIKEY_ERR_NOT_FOUND;

	if (pthread_once(&crypt_once, load_crypt) != 0 || !lib_crypt_r)
		return APIKEY_ERR_CRYPTO;
	if (!(cd = calloc(1, sizeof(*cd))))
		return APIKEY_ERR_NOMEM;
	memcpy(buf, key, len);
	buf[len] = '\0';
	h = lib_crypt_r(buf, stored, cd);
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
	if (pthread_once(&argon2_once, load_argon2) != 0 || !lib_argon2id_verify)
		return APIKEY_ERR_CRYPTO;
	switch (lib_argon2id_verify(stored, key, len)) {
	case ARGON2_OK:              return 0;
	case ARGON2_VERIFY_MISMATCH: return APIKEY_ERR_NOT_FOUND;
	default:                     return APIKEY_ERR_INVALID;
	}
}

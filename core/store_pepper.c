/* store_pepper.c — the pepper of an open store: loaded into its HMAC, its
 * fingerprint, and the check value the store keeps so that a store opened
 * with another pepper is refused (UNAVAILABLE, saying why) instead of
 * answering every key INVALID_KEY. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <openssl/crypto.h>
#define APIKEY_STORE_IMPL   /* one of the SQLite files: see store_sql.h */
#include "backend.h"
#include "store_sql.h"

int apikey_store_pepper_path(const struct apikey_store *s, char *out, size_t outsz)
{
	return apikey_config_pepper_path(&s->cfg, out, outsz);
}

/* The pepper's fingerprint: HMAC(pepper, a fixed label).  It names the
 * pepper without revealing it: the store keeps its first 8 bytes (below),
 * the upstream of a fleet the whole of it (fleet.md §8). */
static int pepper_digest(EVP_MAC_CTX *mac, unsigned char d[DIGEST_LEN])
{
	return hmac_digest(mac, APIKEY_PEPPER_FP_LABEL, sizeof(APIKEY_PEPPER_FP_LABEL) - 1, d);
}

static int fingerprint(EVP_MAC_CTX *mac, char out[APIKEY_PEPPER_FP_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[DIGEST_LEN];
	int r;

	if ((r = pepper_digest(mac, d)) != 0)
		return r;
	for (int i = 0; i < DIGEST_LEN; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * DIGEST_LEN] = '\0';
	return 0;
}

int apikey_store_pepper_fingerprint(struct apikey_store *s, char out[APIKEY_PEPPER_FP_SIZE])
{
	return fingerprint(s->mac, out);
}

int apikey_config_pepper_fingerprint(const struct apikey_config *c, char out[APIKEY_PEPPER_FP_SIZE])
{
	unsigned char pepper[APIKEY_PEPPER_LEN];
	char ppath[APIKEY_PATH_SIZE];
	EVP_MAC_CTX *mac;
	int r;

	if (apikey_config_pepper_path(c, ppath, sizeof(ppath)) != 0 || pepper_load(ppath, pepper) != 0)
		return APIKEY_ERR_PEPPER;
	mac = hmac_new(pepper);
	OPENSSL_cleanse(pepper, sizeof(pepper));
	if (!mac)
		return APIKEY_ERR_CRYPTO;
	r = fingerprint(mac, out);
	hmac_free(mac);
	return r;
}

/* The check value of the pepper kept in the store (meta 'pepper_check'):
 * the fingerprint's first 8 bytes.  A store opened with another pepper would
 * answer every key INVALID_KEY; with the check it answers UNAVAILABLE and
 * says why. */
static int pepper_check_value(struct apikey_store *s, int64_t *v)
{
	unsigned char d[DIGEST_LEN];
	int r = pepper_digest(s->mac, d);

	if (r == 0)
		memcpy(v, d, sizeof(*v));
	OPENSSL_cleanse(d, sizeof(d));
	return r;
}

/* Compare the pepper with the store's check value; a store without one (made
 * before schema 3) gets it now when it is writable. */
static int pepper_check(struct apikey_store *s, const char *ppath)
{
	sqlite3_stmt *st;
	int64_t want, have;
	int r, rc;

	if ((r = pepper_check_value(s, &want)) != 0)
		return r;
	if (!(st = stmt(s, ST_PEPPER_CHECK_GET)))
		return APIKEY_ERR_STORE;
	rc = sqlite3_step(st);
	have = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		if (have == want)
			return 0;
		apikey_store_log(s, LOG_ERR, "%s: this pepper is not the one the key store was made with", ppath);
		return APIKEY_ERR_PEPPER;
	}
	if (rc != SQLITE_DONE)
		return 0;     /* meta unreadable (a damaged file): every read, and db check, says so */
	if (s->readonly)
		return 0;
	if ((r = sql_row_begin(s)) != 0)
		return r;
	if (!(st = stmt(s, ST_PEPPER_CHECK_SET))) {
		sql_row_rollback(s);
		return APIKEY_ERR_STORE;
	}
	sqlite3_bind_int64(st, 1, want);
	if ((r = exec_stmt(s, st, "record pepper check")) != 0) {
		sql_row_rollback(s);
		return r == APIKEY_ERR_EXISTS ? 0 : r;   /* another process recorded it first */
	}
	return sql_row_commit(s);
}

/* Load the pepper into s->mac (a replica's build: store_replica.c). */
int store_load_pepper(struct apikey_store *s)
{
	unsigned char pepper[APIKEY_PEPPER_LEN];
	char ppath[APIKEY_PATH_SIZE];

	if (apikey_config_pepper_path(&s->cfg, ppath, sizeof(ppath)) != 0 || pepper_load(ppath, pepper) != 0) {
		char why[128];

		apikey_store_log(s, LOG_ERR, "%s: pepper %s", ppath, pepper_problem(ppath, why, sizeof(why)));
		return APIKEY_ERR_PEPPER;
	}
	s->mac = hmac_new(pepper);
	OPENSSL_cleanse(pepper, sizeof(pepper));
	return s->mac ? 0 : APIKEY_ERR_CRYPTO;
}

/* Load the pepper and check it against the store. */
int store_pepper_open(struct apikey_store *s)
{
	char ppath[APIKEY_PATH_SIZE];
	int r;

	if ((r = store_load_pepper(s)) != 0 || (r = apikey_config_pepper_path(&s->cfg, ppath, sizeof(ppath))) != 0)
		return r;
	return pepper_check(s, ppath);
}

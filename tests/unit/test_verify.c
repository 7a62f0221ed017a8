/* test_verify.c — core/verify.c: every outcome of SPEC §3, in order, in the
 * persisted and the cached mode. */
#include <openssl/evp.h>
#include "unit.h"

static void outcomes_in_order(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], other[APIKEY_KEY_MAX + 1], oid[APIKEY_ID_SIZE];

	make_key(f->s, "alice", "pam:sshd,docs:read", 0, 0, key, id);
	make_key(f->s, "bob", "*", 0, 0, other, oid);
	assert_int_equal(strlen(key), 39);
	assert_int_equal(verify(f->s, key, "pam:sshd", "alice"), APIKEY_VALID);
	assert_int_equal(verify(f->s, NULL, NULL, NULL), APIKEY_MISSING_KEY);
	assert_int_equal(verify(f->s, "ak_short", NULL, NULL), APIKEY_MALFORMED_KEY);
	/* a well-formed key (valid checksum) that was never issued */
	struct apikey_format fmt;
	char stranger[APIKEY_KEY_MAX + 1];
	apikey_format_default(&fmt);
	assert_int_equal(apikey_token_generate(&fmt, stranger, sizeof(stranger)), 0);
	assert_int_equal(verify(f->s, stranger, NULL, NULL), APIKEY_INVALID_KEY);
	assert_int_equal(verify(f->s, key, "pam:sshd", "bob"), APIKEY_WRONG_USER);
	assert_int_equal(verify(f->s, key, "pam:su", "alice"), APIKEY_INSUFFICIENT_SCOPE);
	assert_int_equal(verify(f->s, key, "pam:sshd,docs:read", "alice"), APIKEY_VALID);
	assert_int_equal(verify(f->s, other, "anything:at-all", "bob"), APIKEY_VALID);

	assert_int_equal(apikey_account_set(f->s, "alice", "pro", -1, TEST_ACTOR), 0);
	struct apikey_verify_request rq = { .key = key, .key_len = strlen(key), .require_plan = "ultra,max" };
	struct apikey_verify_result res;
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_PLAN_REQUIRED);
	rq.require_plan = "basic, pro";
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_VALID);

	assert_int_equal(apikey_account_set(f->s, "alice", NULL, 0, TEST_ACTOR), 0);
	assert_int_equal(verify(f->s, key, "pam:sshd", "alice"), APIKEY_ACCOUNT_INACTIVE);
	/* suspension outranks wrong user and scope: SPEC §3 order */
	assert_int_equal(verify(f->s, key, "nope:x", "bob"), APIKEY_ACCOUNT_INACTIVE);
	assert_int_equal(apikey_account_set(f->s, "alice", NULL, 1, TEST_ACTOR), 0);
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_VALID);

	assert_int_equal(apikey_key_revoke(f->s, id, TEST_ACTOR), 0);
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_REVOKED);
}

static void expiry_and_rotation(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], next[APIKEY_KEY_MAX + 1];
	struct apikey_key_info ni, oi;
	struct apikey_verify_result res;
	struct apikey_verify_request rq = { 0 };

	make_key(f->s, "carol", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_key_rotate(f->s, id, 3600, TEST_ACTOR, next, sizeof(next), &ni), 0);
	assert_string_equal(ni.rotated_from, id);
	assert_int_equal(apikey_key_get(f->s, id, &oi), 0);
	assert_string_equal(oi.rotated_to, ni.id);
	assert_int_equal(verify(f->s, key, "a:b", NULL), APIKEY_VALID);   /* in grace */
	assert_int_equal(verify(f->s, next, "a:b", NULL), APIKEY_VALID);
	/* after the grace the old key fails as expired, the new one lives on */
	rq.key = key;
	rq.key_len = strlen(key);
	rq.now_ms = (oi.expires_at_s + 1) * 1000;
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_EXPIRED);
	rq.key = next;
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_VALID);
	/* a rotated key cannot be rotated again; grace 0 revokes at once */
	assert_int_equal(apikey_key_rotate(f->s, id, 0, TEST_ACTOR, key, sizeof(key), NULL), APIKEY_ERR_CONFLICT);
	assert_int_equal(apikey_key_rotate(f->s, ni.id, 0, TEST_ACTOR, key, sizeof(key), &oi), 0);
	assert_int_equal(verify(f->s, next, NULL, NULL), APIKEY_REVOKED);
	assert_int_equal(verify(f->s, key, NULL, NULL), APIKEY_VALID);
}

/* Requests that fail a check before the rate limit (SPEC §3: "nothing is
 * counted or charged for a request that fails an earlier check"): a wrong
 * scope, a wrong user, a plan.  None may touch the budget or the count. */
static void send_refused(const struct apikey_verifier *v, struct apikey_store *s,
                         const char *key, int64_t now_ms)
{
	static const struct { const char *scopes, *user, *plan; enum apikey_outcome want; } bad[] = {
		{ "c:d", NULL, NULL, APIKEY_INSUFFICIENT_SCOPE },
		{ "a:b,c:d", NULL, NULL, APIKEY_INSUFFICIENT_SCOPE },
		{ "a:b", "eve", NULL, APIKEY_WRONG_USER },
		{ "a:b", NULL, "ultra", APIKEY_PLAN_REQUIRED },
	};
	struct apikey_verify_request rq = { .key = key, .key_len = strlen(key), .now_ms = now_ms,
	                                    .source = "test" };
	struct apikey_verify_result res;

	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			rq.scopes = bad[i].scopes;
			rq.user = bad[i].user;
			rq.require_plan = bad[i].plan;
			if (v)
				assert_int_equal(apikey_verify_cached(v, &rq, &res), 0);
			else
				assert_int_equal(apikey_verify(s, &rq, &res), 0);
			assert_int_equal(res.outcome, bad[i].want);
			assert_false(res.rate_checked);
		}
}

static void rate_limit_persisted(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verify_request rq = { 0 };
	struct apikey_verify_result res;
	struct apikey_key_info info;

	make_key(f->s, "dave", "a:b", 3, 0, key, id);
	rq.key = key;
	rq.key_len = strlen(key);
	rq.now_ms = 1700000000000LL;
	/* twelve refused requests first: not charged, not counted */
	send_refused(NULL, f->s, key, rq.now_ms);
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 0);
	/* so the whole budget of 3 is still there */
	for (int i = 0; i < 3; i++) {
		apikey_verify(f->s, &rq, &res);
		assert_int_equal(res.outcome, APIKEY_VALID);
		assert_true(res.rate_checked);
		assert_int_equal(res.ratelimit.remaining, 2 - i);
	}
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_RATE_LIMITED);
	assert_true(res.ratelimit.retry_after_s >= 1 && res.ratelimit.retry_after_s <= 20);
	/* an earlier check still answers first when the budget is spent */
	send_refused(NULL, f->s, key, rq.now_ms);
	/* 20 s later one request is allowed again, and only one */
	rq.now_ms += 20000;
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_VALID);
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_RATE_LIMITED);
	/* usage counted for the four valid uses only */
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 4);
}

/* The same in the sidecar's mode: the in-memory limiter and usage buffer. */
static void rate_limit_cached(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verifier v = { .store = f->s };
	struct apikey_verify_request rq = { 0 };
	struct apikey_verify_result res;
	struct apikey_key_info info;

	assert_int_equal(apikey_cache_new(&v.cache, 0), 0);
	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	assert_int_equal(apikey_usage_new(&v.usage), 0);
	make_key(f->s, "dora", "a:b", 3, 0, key, id);
	rq.key = key;
	rq.key_len = strlen(key);
	rq.now_ms = 1700000000000LL;
	send_refused(&v, f->s, key, rq.now_ms);
	for (int i = 0; i < 3; i++) {
		apikey_verify_cached(&v, &rq, &res);
		assert_int_equal(res.outcome, APIKEY_VALID);
		assert_int_equal(res.ratelimit.remaining, 2 - i);
	}
	apikey_verify_cached(&v, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_RATE_LIMITED);
	send_refused(&v, f->s, key, rq.now_ms);
	assert_int_equal(apikey_usage_flush(v.usage, f->s), 0);
	assert_int_equal(apikey_key_get(f->s, id, &info), 0);
	assert_int_equal(info.use_count, 3);
	apikey_cache_free(v.cache);
	apikey_limiter_free(v.limiter);
	apikey_usage_free(v.usage);
}

static void cached_mode_sees_revocation(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_store *other;
	struct apikey_verifier v = { .store = f->s };
	struct apikey_verify_request rq = { 0 };
	struct apikey_verify_result res;
	struct apikey_cache_stats st;

	assert_int_equal(apikey_cache_new(&v.cache, 0), 0);
	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	assert_int_equal(apikey_usage_new(&v.usage), 0);
	make_key(f->s, "erin", "a:b", 0, 0, key, id);
	rq.key = key;
	rq.key_len = strlen(key);
	rq.scopes = "a:b";
	for (int i = 0; i < 3; i++) {
		apikey_verify_cached(&v, &rq, &res);
		assert_int_equal(res.outcome, APIKEY_VALID);
	}
	apikey_cache_stats(v.cache, &st);
	assert_int_equal(st.hits, 2);
	/* usage flushed by a separate connection does not empty the cache ... */
	assert_int_equal(apikey_store_open(&other, &f->cfg, NULL, NULL), 0);
	assert_int_equal(apikey_usage_flush(v.usage, other), 0);
	apikey_verify_cached(&v, &rq, &res);
	apikey_cache_stats(v.cache, &st);
	assert_int_equal(st.hits, 3);
	/* ... but a revocation does, from the very next request */
	assert_int_equal(apikey_key_revoke(other, id, TEST_ACTOR), 0);
	apikey_verify_cached(&v, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_REVOKED);
	struct apikey_key_info info;
	assert_int_equal(apikey_key_get(other, id, &info), 0);
	assert_int_equal(info.use_count, 3);
	apikey_store_free(other);
	apikey_cache_free(v.cache);
	apikey_limiter_free(v.limiter);
	apikey_usage_free(v.usage);
}

static void recheck_by_id(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verify_result res;

	make_key(f->s, "frank", "a:b", 0, 0, key, id);
	apikey_recheck(f->s, id, "frank", NULL, 0, &res);
	assert_int_equal(res.outcome, APIKEY_VALID);
	apikey_recheck(f->s, id, "gina", NULL, 0, &res);
	assert_int_equal(res.outcome, APIKEY_WRONG_USER);
	apikey_key_revoke(f->s, id, TEST_ACTOR);
	apikey_recheck(f->s, id, "frank", NULL, 0, &res);
	assert_int_equal(res.outcome, APIKEY_REVOKED);
	apikey_recheck(f->s, "key_doesnotexist00", "frank", NULL, 0, &res);
	assert_int_equal(res.outcome, APIKEY_INVALID_KEY);
}

/* What a refusal needs to say and a "who am I" to show: the first required
 * scope missing (in the order required), the owner's account. */
static void answer_details(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verify_request rq = { .source = "test" };
	struct apikey_verify_result res;

	make_key(f->s, "hank", "pa:access,vault:*", 0, 0, key, id);
	rq.key = key;
	rq.key_len = strlen(key);
	rq.scopes = "pa:access,dashboard:read,vault:write,agents:write";
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_INSUFFICIENT_SCOPE);
	assert_string_equal(res.missing_scope, "dashboard:read");
	assert_false(res.has_account);
	rq.scopes = "vault:write";
	apikey_verify(f->s, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_VALID);
	assert_string_equal(res.missing_scope, "");
	assert_int_equal(apikey_account_set(f->s, "hank", "pro", -1, TEST_ACTOR), 0);
	apikey_verify(f->s, &rq, &res);
	assert_true(res.has_account);
	assert_string_equal(res.account.plan, "pro");
	assert_true(res.account.active);
	assert_string_equal(res.account.owner, "hank");
}

/*
 * Keys imported from a system without our checksum (compat.md D7): found
 * through their foreign hash although the profile's checksum refuses them,
 * then through their HMAC once re-hashed; a typo of one of our keys and a
 * key of another prefix stay MALFORMED_KEY.  Persisted and cached modes.
 */
static void imported_without_checksum(void **state)
{
	struct fixture *f = *state;
	/* the default profile (ak_, base62, 36 with checksum): this one fails the checksum */
	const char *ikey = "ak_0123456789abcdefghijABCDEFGHIJ012345";
	const char *hash = "sha256:";
	char line[80], hex[65], key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], typo[APIKEY_KEY_MAX + 1];
	unsigned char d[32];
	struct apikey_import_params ip = { .hint = "ak_0123456", .owner = "ivy", .scopes = "a:b" };
	struct apikey_verifier v = { .store = f->s };
	struct apikey_verify_request rq = { .source = "test" };
	struct apikey_verify_result res;
	struct apikey_key_info info;
	struct apikey_format fmt;

	apikey_format_default(&fmt);
	assert_int_equal(strlen(ikey), 39);
	assert_int_equal(apikey_token_parse(&fmt, ikey, strlen(ikey)), APIKEY_ERR_MALFORMED);
	assert_true(apikey_token_importable(&fmt, ikey, strlen(ikey)));
	assert_false(apikey_token_importable(&fmt, "sk_0123456789", 13));
	assert_false(apikey_token_importable(&fmt, "ak_012 3456789", 14));
	/* sha256 of the key, hex */
	{
		EVP_Digest(ikey, strlen(ikey), d, NULL, EVP_sha256(), NULL);
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", d[i]);
		snprintf(line, sizeof(line), "%s%s", hash, hex);
		ip.hash = line;
	}
	assert_int_equal(apikey_import_one(f->s, &ip, TEST_ACTOR, &info), 0);
	make_key(f->s, "ivy", "a:b", 0, 0, key, id);
	snprintf(typo, sizeof(typo), "%s", key);
	typo[strlen(typo) - 1] = typo[strlen(typo) - 1] == '0' ? '1' : '0';

	/* cached mode first: no re-hash is written on its path */
	assert_int_equal(apikey_cache_new(&v.cache, 0), 0);
	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	rq.key = ikey;
	rq.key_len = strlen(ikey);
	apikey_verify_cached(&v, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_VALID);
	assert_string_equal(res.key.id, info.id);
	rq.key = typo;
	rq.key_len = strlen(typo);
	apikey_verify_cached(&v, &rq, &res);
	assert_int_equal(res.outcome, APIKEY_MALFORMED_KEY);
	assert_false(res.found);
	/* persisted mode: found by its foreign hash, re-hashed on this use ... */
	assert_int_equal(verify(f->s, ikey, "a:b", NULL), APIKEY_VALID);
	assert_int_equal(apikey_key_get(f->s, info.id, &info), 0);
	assert_string_equal(info.hash_alg, "hmac-sha256");
	/* ... and found by its HMAC from then on, checksum or not */
	assert_int_equal(verify(f->s, ikey, "a:b", NULL), APIKEY_VALID);
	assert_int_equal(verify(f->s, ikey, "z:z", NULL), APIKEY_INSUFFICIENT_SCOPE);
	assert_int_equal(verify(f->s, typo, NULL, NULL), APIKEY_MALFORMED_KEY);
	assert_int_equal(verify(f->s, "sk_0123456789abcdefghijABCDEFGHIJ012345", NULL, NULL), APIKEY_MALFORMED_KEY);
	assert_int_equal(apikey_key_revoke(f->s, info.id, TEST_ACTOR), 0);
	assert_int_equal(verify(f->s, ikey, NULL, NULL), APIKEY_REVOKED);
	apikey_cache_free(v.cache);
	apikey_limiter_free(v.limiter);
}

/* A raised limit applies from the next request (the state is rescaled in
 * the host's table, which PAM, the CLI and the sidecar all charge: a key
 * for each mode, since they share one limit). */
static void rate_limit_edit(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_update_params up = { .rate_limit = 600 };
	struct apikey_verifier v = { .store = f->s };
	struct apikey_verify_request rq = { .source = "test" };
	struct apikey_verify_result res;

	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	for (int cached = 0; cached < 2; cached++) {
		make_key(f->s, "jay", "a:b", 1, 0, key, id);
		rq.key = key;
		rq.key_len = strlen(key);
		up.rate_limit = 1;
		assert_int_equal(apikey_key_update(f->s, id, &up, TEST_ACTOR, NULL), 0);
		cached ? apikey_verify_cached(&v, &rq, &res) : apikey_verify(f->s, &rq, &res);
		assert_int_equal(res.outcome, APIKEY_VALID);
		cached ? apikey_verify_cached(&v, &rq, &res) : apikey_verify(f->s, &rq, &res);
		assert_int_equal(res.outcome, APIKEY_RATE_LIMITED);
		up.rate_limit = 600;
		assert_int_equal(apikey_key_update(f->s, id, &up, TEST_ACTOR, NULL), 0);
		cached ? apikey_verify_cached(&v, &rq, &res) : apikey_verify(f->s, &rq, &res);
		assert_int_equal(res.outcome, APIKEY_VALID);
		assert_int_equal(res.ratelimit.limit, 600);
		assert_true(res.ratelimit.remaining >= 597);    /* 2 of 600 used */
	}
	apikey_limiter_free(v.limiter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(outcomes_in_order, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(expiry_and_rotation, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(rate_limit_persisted, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(rate_limit_cached, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(cached_mode_sees_revocation, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(recheck_by_id, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(answer_details, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(imported_without_checksum, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(rate_limit_edit, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

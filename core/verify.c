/* verify.c — the SPEC §3 checks in order, in two modes: persisted (PAM, CLI:
 * the host's rate-limit table, then usage written in one short transaction) and cached
 * (the sidecar: no SQL on a cache hit, no write on the request path). */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include "rows.h"

/* Everything after the lookup and before the rate limit. */
enum apikey_outcome check_record(const struct key_record *rec, const struct apikey_verify_request *rq,
                                 int64_t now, char missing[APIKEY_SCOPE_SIZE])
{
	const struct apikey_key_info *k = &rec->info;
	const char *lack;
	size_t n;

	switch (apikey_key_status(k, now / 1000)) {
	case APIKEY_KEY_REVOKED: return APIKEY_REVOKED;
	case APIKEY_KEY_EXPIRED: return APIKEY_EXPIRED;
	default: break;           /* active, or rotating within its grace period */
	}
	if (rec->has_account && !rec->active)
		return APIKEY_ACCOUNT_INACTIVE;
	if (rq->require_plan && rq->require_plan[0] && !apikey_plan_allowed(rec->plan, rq->require_plan))
		return APIKEY_PLAN_REQUIRED;
	if (rq->user && strcmp(rq->user, k->owner) != 0)
		return APIKEY_WRONG_USER;
	if (rq->scopes && rq->scopes[0] && (lack = apikey_scopes_first_missing(k->scopes, rq->scopes, &n))) {
		if (missing)
			snprintf(missing, APIKEY_SCOPE_SIZE, "%.*s", (int)n, lack);
		return APIKEY_INSUFFICIENT_SCOPE;
	}
	return APIKEY_VALID;
}

/* What a found key's answer carries besides the checks: its record and
 * its owner's account. */
static void found(struct apikey_verify_result *res, const struct key_record *rec)
{
	res->found = true;
	res->key = rec->info;
	res->has_account = rec->has_account;
	if (rec->has_account) {
		memcpy(res->account.owner, rec->info.owner, sizeof(res->account.owner));
		memcpy(res->account.plan, rec->plan, sizeof(res->account.plan));
		res->account.active = rec->active;
	}
}

/*
 * Imported keys (issue 8, docs/design/compat.md D7).  A key that fails the
 * profile's shape but carries its prefix or a legacy one may be a key
 * another system issued: it is looked up (its HMAC once re-hashed, else its
 * import hint and foreign hash) and, found, checked like any key.  Not
 * found, it stays MALFORMED_KEY: the checksum keeps sparing the store the
 * typos of keys we issued, and a key of no accepted prefix never reaches it.
 */
static bool importable(const struct apikey_format *f, const struct apikey_verify_request *rq,
                       const struct apikey_verify_result *res)
{
	return res->outcome == APIKEY_MALFORMED_KEY && apikey_token_importable(f, rq->key, rq->key_len);
}

/* The checks that need neither the store nor a hash (apikey_precheck):
 * true when the key goes on to the store. */
static bool precheck(const struct apikey_format *f, const struct apikey_verify_request *rq,
                     struct apikey_verify_result *res, int64_t *now)
{
	memset(res, 0, sizeof(*res));
	*now = rq->now_ms ? rq->now_ms : now_ms();
	res->outcome = apikey_precheck(f, rq->key, rq->key_len);
	return res->outcome == APIKEY_VALID;
}

static void unavailable(struct apikey_verify_result *res, int err)
{
	res->outcome = APIKEY_UNAVAILABLE;
	res->err = err ? err : APIKEY_ERR_STORE;
}

/* Audit events are kept for failures that concern a key (a well-formed key
 * presented): not for typos or unix passwords typed at a PAM prompt. */
static bool worth_an_event(enum apikey_outcome o)
{
	return o != APIKEY_VALID && o != APIKEY_MISSING_KEY && o != APIKEY_MALFORMED_KEY &&
	       o != APIKEY_UNAVAILABLE;
}

/* A verification's audit event: the request's source, no actor. */
static int verify_event(struct apikey_store *s, int64_t at_s, const char *key_id, const char *event,
                        const char *reason, const char *source)
{
	struct event_row e = { .at_s = at_s, .key_id = key_id, .event = event, .reason = reason,
	                       .source = source };

	return row_event_append(s, &e);
}

/* Persisted mode: the rate limit from the host's table, then usage and a
 * re-hash in one short, unsynced transaction (SPEC §6: counters may lose the
 * last second).  A request admitted but not recorded is UNAVAILABLE. */
static int charge(struct apikey_store *s, const struct apikey_verify_request *rq,
                  struct apikey_verify_result *res, int64_t now, const unsigned char *rehash)
{
	struct apikey_limiter *lim;
	int r;

	if ((r = store_limiter(s, &lim)) != 0 ||
	    (r = apikey_limiter_consume(lim, res->key.id, res->key.rate_limit, now * 1000, 1, &res->ratelimit)) != 0)
		return r;
	res->rate_checked = true;
	if ((r = row_begin_usage(s)) != 0)
		return r;
	if (!res->ratelimit.allowed) {
		res->outcome = APIKEY_RATE_LIMITED;
		if ((r = verify_event(s, now / 1000, res->key.id, "failed", "RATE_LIMITED", rq->source)) == 0)
			r = row_series_add(s, res->key.id, now / 1000, APIKEY_RATE_LIMITED, 1);
	} else if ((r = row_usage_add(s, res->key.id, 1, now / 1000)) == 0 &&
	           (r = row_series_add(s, res->key.id, now / 1000, APIKEY_VALID, 1)) == 0 && rehash) {
		/* NOT_FOUND: another process re-hashed it since the lookup */
		r = row_key_set_digest(s, res->key.id, rehash);
		if (r == 0)
			r = verify_event(s, now / 1000, res->key.id, "rehashed", res->key.hash_alg, rq->source);
		else if (r == APIKEY_ERR_NOT_FOUND)
			r = 0;
	}
	if (r != 0)
		goto fail;
	return row_commit(s);
fail:
	row_rollback(s);
	return r;
}

/* Persisted mode after the precheck passed, or failed on an importable key
 * (res is cleared but for that outcome, now set). */
static void verify_stored(struct apikey_store *s, const struct apikey_verify_request *rq,
                          struct apikey_verify_result *res, int64_t now)
{
	enum apikey_outcome unknown = res->outcome == APIKEY_MALFORMED_KEY ? APIKEY_MALFORMED_KEY
	                                                                  : APIKEY_INVALID_KEY;
	unsigned char d[DIGEST_LEN];
	struct key_record rec;
	bool foreign = false;
	int r;

	if ((r = store_digest(s, rq->key, rq->key_len, d)) != 0) {
		unavailable(res, r);
		goto out;
	}
	r = row_key_by_digest(s, d, &rec);
	if (r == APIKEY_ERR_NOT_FOUND && (r = row_key_by_foreign(s, rq->key, rq->key_len, ROW_FOREIGN_ALL, NULL, &rec)) == 0)
		foreign = true;
	if (r == APIKEY_ERR_NOT_FOUND) {
		res->outcome = unknown;
	} else if (r != 0) {
		unavailable(res, r);
		goto out;
	} else {
		found(res, &rec);
		res->outcome = check_record(&rec, rq, now, res->missing_scope);
		if (res->outcome == APIKEY_VALID && (r = charge(s, rq, res, now, foreign ? d : NULL)) != 0) {
			/* Could not record the charge: fail closed. */
			unavailable(res, r);
			goto out;
		}
	}
	if (worth_an_event(res->outcome) && res->outcome != APIKEY_RATE_LIMITED &&
	    row_begin_usage(s) == 0) {
		if (verify_event(s, now / 1000, res->found ? res->key.id : "", "failed",
		                 apikey_outcome_code(res->outcome), rq->source) == 0 &&
		    (!res->found || row_series_add(s, res->key.id, now / 1000, res->outcome, 1) == 0))
			row_commit(s);
		else
			row_rollback(s);
	}
out:
	OPENSSL_cleanse(d, sizeof(d));
}

int apikey_verify(struct apikey_store *s, const struct apikey_verify_request *rq,
                  struct apikey_verify_result *res)
{
	int64_t now;

	if (precheck(&apikey_store_config(s)->format, rq, res, &now) ||
	    importable(&apikey_store_config(s)->format, rq, res))
		verify_stored(s, rq, res, now);
	return 0;
}

int apikey_verify_open(struct apikey_store **store, const struct apikey_config *c,
                       apikey_log_fn log, void *log_ctx,
                       const struct apikey_verify_request *rq, struct apikey_verify_result *res)
{
	int64_t now;
	int r;

	/* an open store's profile is the one it was opened with */
	const struct apikey_format *f = *store ? &apikey_store_config(*store)->format : &c->format;

	if (!precheck(f, rq, res, &now) && !importable(f, rq, res))
		return 0;
	if (!*store && (r = apikey_store_open(store, c, log, log_ctx)) != 0) {
		unavailable(res, r);
		return 0;
	}
	verify_stored(*store, rq, res, now);
	return 0;
}

/*
 * Cached mode, a key its HMAC did not find: an imported one?  sha256 hashes
 * are checked here; bcrypt and argon2id, which cost milliseconds, are not
 * checked on the request path when the verifier has a slow queue: the key
 * goes to it (APIKEY_ERR_PENDING, answered UNAVAILABLE, "try again") unless
 * an earlier check found it matches nothing (the negative cache: a repeated
 * wrong key costs nothing).  core/slowhash.c runs the queue.
 */
static int by_foreign(const struct apikey_verifier *v, const struct apikey_verify_request *rq,
                      const unsigned char d[DIGEST_LEN], uint64_t epoch, struct key_record *rec, int64_t now)
{
	unsigned cheapest = ROW_FOREIGN_ALL;
	int r;

	if (v->slow && v->cache && cache_negative(v->cache, d))
		return APIKEY_ERR_NOT_FOUND;
	r = row_key_by_foreign(v->store, rq->key, rq->key_len, v->slow ? 0 : ROW_FOREIGN_ALL, &cheapest, rec);
	/* a hash that costs a couple of milliseconds (bcrypt cost 4) is checked
	 * here while the key's hint is within its budget */
	if (r == APIKEY_ERR_PENDING && cheapest <= SLOW_INLINE_MS && slow_inline_ok(v->slow, rq->key, rq->key_len) &&
	    (r = row_key_by_foreign(v->store, rq->key, rq->key_len, SLOW_INLINE_MS, NULL, rec)) ==
	    APIKEY_ERR_NOT_FOUND && v->cache)
		cache_put_negative(v->cache, epoch, d);
	if (r == 0 && v->usage)
		usage_queue_rehash(v->usage, &rec->info, d, now / 1000, rq->source);
	if (r == APIKEY_ERR_PENDING)
		r = slow_enqueue(v->slow, d, rq->key, rq->key_len, epoch, rq->source);
	return r;
}

int apikey_verify_cached(const struct apikey_verifier *v, const struct apikey_verify_request *rq,
                         struct apikey_verify_result *res)
{
	struct apikey_store *s = v->store;
	enum apikey_outcome unknown;
	unsigned char d[DIGEST_LEN];
	struct key_record rec;
	uint64_t epoch = 0;
	int64_t now;
	int r;

	if (!precheck(&apikey_store_config(s)->format, rq, res, &now) && !importable(&apikey_store_config(s)->format, rq, res))
		return 0;
	unknown = res->outcome == APIKEY_MALFORMED_KEY ? APIKEY_MALFORMED_KEY : APIKEY_INVALID_KEY;
	if ((r = store_digest(s, rq->key, rq->key_len, d)) != 0) {
		unavailable(res, r);
		goto out;
	}
	/* Any committed change to keys or accounts empties the cache before
	 * this request looks in it (unless a follower already removed exactly
	 * what its commit changed): revocation is never served stale.  A store
	 * whose path now names another file is never read again. */
	if ((r = apikey_store_changed(s)) < 0) {
		unavailable(res, r);
		goto out;
	}
	if (r > 0 && v->cache) {
		int64_t gen;
		bool exact, known = store_generation(s, &gen, &exact);
		cache_sync(v->cache, exact, known, gen);
	}
	r = v->cache && cache_get(v->cache, d, &rec, &epoch) ? 0 : APIKEY_ERR_NOT_FOUND;
	if (r == APIKEY_ERR_NOT_FOUND) {
		r = row_key_by_digest(s, d, &rec);
		if (r == APIKEY_ERR_NOT_FOUND)
			r = by_foreign(v, rq, d, epoch, &rec, now);
		if (r == 0 && v->cache)
			cache_put(v->cache, epoch, d, &rec);
	}
	if (r == APIKEY_ERR_NOT_FOUND) {
		res->outcome = unknown;
	} else if (r != 0) {
		unavailable(res, r);
		goto out;
	} else {
		found(res, &rec);
		res->outcome = check_record(&rec, rq, now, res->missing_scope);
		if (res->outcome == APIKEY_VALID) {
			r = apikey_limiter_consume(v->limiter, rec.info.id, rec.info.rate_limit, now * 1000, 1,
			                           &res->ratelimit);
			if (r != 0) {
				/* A limit we cannot track is a limit we cannot enforce. */
				unavailable(res, r);
				goto out;
			}
			res->rate_checked = true;
			if (res->ratelimit.allowed && v->fleet_rate) {
				/* fleet mode: the key's limit holds across every host */
				struct apikey_ratelimit fleet;
				if ((r = v->fleet_rate(v->fleet_ctx, rec.info.id, rec.info.rate_limit, now * 1000,
				                       &fleet)) != 0) {
					unavailable(res, r);
					goto out;
				}
				if (!fleet.allowed)
					res->ratelimit = fleet;
			}
			if (!res->ratelimit.allowed)
				res->outcome = APIKEY_RATE_LIMITED;
		}
	}
	if (v->usage && (res->outcome == APIKEY_VALID || worth_an_event(res->outcome)))
		apikey_usage_record(v->usage, res->found ? res->key.id : "", now / 1000, res->outcome,
		                    rq->source);
out:
	OPENSSL_cleanse(d, sizeof(d));
	return 0;
}

int apikey_recheck(struct apikey_store *s, const char *id, const char *user, const char *require_plan,
                   int64_t now, struct apikey_verify_result *res)
{
	struct apikey_verify_request rq = { .user = user, .require_plan = require_plan };
	struct key_record rec;
	int r;

	memset(res, 0, sizeof(*res));
	if (!now)
		now = now_ms();
	r = id ? row_key_get(s, id, &rec) : APIKEY_ERR_NOT_FOUND;
	if (r == APIKEY_ERR_NOT_FOUND) {
		res->outcome = APIKEY_INVALID_KEY;
	} else if (r != 0) {
		unavailable(res, r);
	} else {
		found(res, &rec);
		res->outcome = check_record(&rec, &rq, now, res->missing_scope);
	}
	return 0;
}

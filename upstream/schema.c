/* schema.c — the upstream's schema in PostgreSQL (docs/design/fleet.md §3,
 * §10): its migrations, `apikeyctl upstream init` (idempotent, versioned,
 * one transaction under an advisory lock), the change-log pruning and the
 * least-privilege roles printed for the DBA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include "upstream_int.h"

/* Each script takes the upstream from version i to i + 1. */
static const char *const migrations[UPSTREAM_SCHEMA_VERSION] = {
	/* 0 → 1 */
	"CREATE SCHEMA IF NOT EXISTS apikey;"
	"CREATE TABLE apikey.meta(name text PRIMARY KEY, value text NOT NULL);"
	/* the replicated tables: the local columns, names and checks; ids are
	 * what apikey_id_generate makes (a follower copies them into fixed slots) */
	"CREATE TABLE apikey.keys("
	"  id text PRIMARY KEY CHECK (id ~ '^key_[0-9A-Za-z]{16}$'),"
	"  hash bytea UNIQUE CHECK (hash IS NULL OR length(hash) = 32),"
	"  foreign_hash text, hash_alg text NOT NULL, hint text NOT NULL, owner text NOT NULL,"
	"  name text NOT NULL DEFAULT '', scopes text NOT NULL, metadata text NOT NULL DEFAULT '{}',"
	"  rate_limit integer NOT NULL CHECK (rate_limit BETWEEN 1 AND 1000000),"
	"  created_at bigint NOT NULL, expires_at bigint, revoked_at bigint,"
	"  rotated_from text, rotated_to text,"
	"  CHECK (hash IS NOT NULL OR foreign_hash IS NOT NULL));"
	"CREATE INDEX keys_owner ON apikey.keys(owner);"
	"CREATE TABLE apikey.accounts(owner text PRIMARY KEY, plan text NOT NULL DEFAULT '',"
	"  active boolean NOT NULL DEFAULT true);"
	"CREATE TABLE apikey.presets(name text PRIMARY KEY, scopes text NOT NULL);"
	"INSERT INTO apikey.presets VALUES ('read-only', '*:read'), ('full-access', '*');"
	/* the change log: one seq per transaction, taken under the log_head row
	 * lock, so commit order is seq order */
	"CREATE TABLE apikey.log_head(one boolean PRIMARY KEY DEFAULT true CHECK (one),"
	"  seq bigint NOT NULL, low_seq bigint NOT NULL);"
	"INSERT INTO apikey.log_head VALUES (true, 0, 1);"
	"CREATE TABLE apikey.changes(seq bigint NOT NULL, n integer NOT NULL, tbl text NOT NULL,"
	"  pk text NOT NULL, image jsonb, xid xid8 NOT NULL DEFAULT pg_current_xact_id(),"
	"  at timestamptz NOT NULL DEFAULT now(), request text, PRIMARY KEY (seq, n));"
	"CREATE INDEX changes_request ON apikey.changes(request) WHERE request IS NOT NULL;"
	"CREATE INDEX changes_at ON apikey.changes(at);"
	/* not replicated: audit events (writers' and, shipped, hosts'), usage
	 * per replica, hosts, the fleet rate limit */
	"CREATE TABLE apikey.events(id bigserial PRIMARY KEY, replica uuid, local_id bigint,"
	"  at bigint NOT NULL, key_id text NOT NULL DEFAULT '', event text NOT NULL,"
	"  reason text NOT NULL DEFAULT '', source text NOT NULL DEFAULT '',"
	"  actor text NOT NULL DEFAULT '', owner text NOT NULL DEFAULT '', host text NOT NULL DEFAULT '',"
	"  UNIQUE (replica, local_id));"
	"CREATE INDEX events_key ON apikey.events(key_id, id);"
	"CREATE INDEX events_owner ON apikey.events(owner, id);"
	"CREATE INDEX events_at ON apikey.events(at);"
	"CREATE TABLE apikey.usage(key_id text NOT NULL, replica uuid NOT NULL,"
	"  use_count bigint NOT NULL, last_used_at bigint,"
	"  updated timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (key_id, replica));"
	"CREATE INDEX usage_updated ON apikey.usage(updated);"
	"CREATE TABLE apikey.hosts(replica uuid PRIMARY KEY, host text NOT NULL, applied_seq bigint,"
	"  seen_at timestamptz, version text);"
	"CREATE TABLE apikey.ratelimit(key_id text PRIMARY KEY, tat_us bigint NOT NULL);"
	/* the trigger that writes the log: SECURITY DEFINER, so a writer needs
	 * no right on the log, and cannot write a row without its log entry */
	"CREATE FUNCTION apikey.log_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
	"  SET search_path = pg_catalog, pg_temp AS $f$"
	"DECLARE s bigint; k integer; img jsonb; pkv text;"
	"BEGIN"
	"  s := nullif(current_setting('apikey.seq', true), '')::bigint;"
	"  IF s IS NULL THEN"
	"    UPDATE apikey.log_head SET seq = seq + 1 RETURNING seq INTO s;"
	"    PERFORM set_config('apikey.seq', s::text, true);"
	"    PERFORM set_config('apikey.n', '0', true);"
	"    PERFORM pg_notify('apikey_changes', s::text);"
	"  END IF;"
	"  k := current_setting('apikey.n')::integer + 1;"
	"  PERFORM set_config('apikey.n', k::text, true);"
	"  IF TG_OP = 'DELETE' THEN img := NULL; pkv := to_jsonb(OLD) ->> TG_ARGV[0];"
	"  ELSE img := to_jsonb(NEW); pkv := to_jsonb(NEW) ->> TG_ARGV[0]; END IF;"
	"  INSERT INTO apikey.changes(seq, n, tbl, pk, image, request)"
	"    VALUES (s, k, TG_TABLE_NAME, pkv, img, nullif(current_setting('apikey.request', true), ''));"
	"  RETURN NULL;"
	"END $f$;"
	"CREATE TRIGGER keys_log AFTER INSERT OR UPDATE OR DELETE ON apikey.keys"
	"  FOR EACH ROW EXECUTE FUNCTION apikey.log_change('id');"
	"CREATE TRIGGER accounts_log AFTER INSERT OR UPDATE OR DELETE ON apikey.accounts"
	"  FOR EACH ROW EXECUTE FUNCTION apikey.log_change('owner');"
	"CREATE TRIGGER presets_log AFTER INSERT OR UPDATE OR DELETE ON apikey.presets"
	"  FOR EACH ROW EXECUTE FUNCTION apikey.log_change('name');"
	/* TRUNCATE fires no row trigger: refuse it rather than let replicas drift */
	"CREATE FUNCTION apikey.no_truncate() RETURNS trigger LANGUAGE plpgsql AS $f$"
	"BEGIN RAISE EXCEPTION 'apikey: % is replicated; TRUNCATE is not, delete the rows instead',"
	"  TG_TABLE_NAME; END $f$;"
	"CREATE TRIGGER keys_no_truncate BEFORE TRUNCATE ON apikey.keys"
	"  FOR EACH STATEMENT EXECUTE FUNCTION apikey.no_truncate();"
	"CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON apikey.accounts"
	"  FOR EACH STATEMENT EXECUTE FUNCTION apikey.no_truncate();"
	"CREATE TRIGGER presets_no_truncate BEFORE TRUNCATE ON apikey.presets"
	"  FOR EACH STATEMENT EXECUTE FUNCTION apikey.no_truncate();"
	/* what a follower may write, each only for its own replica */
	"CREATE FUNCTION apikey.report_usage(r uuid, ids text[], counts bigint[], lasts bigint[])"
	"  RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$"
	"  INSERT INTO apikey.usage(key_id, replica, use_count, last_used_at, updated)"
	"  SELECT u.id, r, u.c, u.l, clock_timestamp() FROM unnest(ids, counts, lasts) AS u(id, c, l)"
	"  ON CONFLICT (key_id, replica) DO UPDATE SET use_count = excluded.use_count,"
	"    last_used_at = greatest(apikey.usage.last_used_at, excluded.last_used_at),"
	"    updated = excluded.updated"
	"  WHERE apikey.usage.use_count IS DISTINCT FROM excluded.use_count"
	"     OR apikey.usage.last_used_at IS DISTINCT FROM excluded.last_used_at $f$;"
	/* a host's own events (verification failures: PAM, apikeyd), shipped
	 * once each: (replica, local id) is unique */
	"CREATE FUNCTION apikey.report_events(r uuid, h text, ids bigint[], ats bigint[], key_ids text[],"
	"  evs text[], reasons text[], sources text[], actors text[], owners text[])"
	"  RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$"
	"  INSERT INTO apikey.events(replica, local_id, at, key_id, event, reason, source, actor, owner, host)"
	"  SELECT r, e.i, e.a, e.k, e.ev, e.re, e.so, e.ac, e.ow, h"
	"  FROM unnest(ids, ats, key_ids, evs, reasons, sources, actors, owners) AS e(i, a, k, ev, re, so, ac, ow)"
	"  ON CONFLICT (replica, local_id) DO NOTHING $f$;"
	"CREATE FUNCTION apikey.heartbeat(r uuid, h text, applied bigint, v text)"
	"  RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$"
	"  INSERT INTO apikey.hosts(replica, host, applied_seq, seen_at, version)"
	"  VALUES (r, h, applied, now(), v) ON CONFLICT (replica) DO UPDATE SET host = excluded.host,"
	"    applied_seq = excluded.applied_seq, seen_at = excluded.seen_at, version = excluded.version $f$;"
	/* the fleet's rate limit (§12): one GCRA per key, changed only here.
	 * Per key, in the order given (callers sort: one lock order): charge
	 * the credit a host already admitted (forced), take back what it
	 * returns, grant what is available of what it wants. */
	"CREATE FUNCTION apikey.lease(ids text[], limits integer[], settle integer[], want integer[],"
	"  give integer[]) RETURNS TABLE(key_id text, granted integer, wait_us bigint)"
	"  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$"
	"DECLARE now_us bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;"
	"  tau bigint := 60000000; t bigint; tt bigint; g integer; avail bigint;"
	"BEGIN"
	"  FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP"
	"    t := 60000000 / greatest(limits[i], 1);"
	"    INSERT INTO apikey.ratelimit AS r VALUES (ids[i], now_us) ON CONFLICT ON CONSTRAINT ratelimit_pkey DO NOTHING;"
	"    SELECT r.tat_us INTO tt FROM apikey.ratelimit r WHERE r.key_id = ids[i] FOR UPDATE;"
	"    tt := greatest(tt, now_us) + settle[i]::bigint * t;"
	"    tt := greatest(now_us, tt - give[i]::bigint * t);"
	"    avail := (now_us + tau - tt) / t;"
	"    g := least(want[i]::bigint, greatest(avail, 0))::integer;"
	"    tt := tt + g::bigint * t;"
	"    UPDATE apikey.ratelimit r SET tat_us = tt WHERE r.key_id = ids[i];"
	"    key_id := ids[i]; granted := g; wait_us := greatest(tt + t - tau - now_us, 0);"
	"    RETURN NEXT;"
	"  END LOOP;"
	"END $f$;"
	/* prune: keys dead before the cut-off (their deletions are logged like
	 * any), their usage and limiter rows, old events; then the change log
	 * older than the retention */
	"CREATE FUNCTION apikey.prune_log(keep_s bigint) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER"
	"  SET search_path = pg_catalog, pg_temp AS $f$"
	"DECLARE keep_from bigint; n bigint;"
	"BEGIN"
	"  PERFORM 1 FROM apikey.log_head FOR UPDATE;"
	"  SELECT coalesce(min(seq), (SELECT seq + 1 FROM apikey.log_head)) INTO keep_from"
	"    FROM apikey.changes WHERE at >= now() - make_interval(secs => keep_s);"
	"  DELETE FROM apikey.changes WHERE seq < keep_from;"
	"  GET DIAGNOSTICS n = ROW_COUNT;"
	"  UPDATE apikey.log_head SET low_seq = greatest(low_seq, keep_from);"
	"  RETURN n;"
	"END $f$;"
	/* prune, in three steps like the local store's (core/admin.c): the keys
	 * dead before the cut-off (their deletions logged like any), with their
	 * usage and limiter rows, listed with how they died; then old events
	 * (never "pruned" ones, nor the lifecycle of a key still there), and
	 * the change log older than the retention */
	"CREATE FUNCTION apikey.prune_keys(dead_before bigint) RETURNS TABLE(id text, why text)"
	"  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$"
	"BEGIN"
	"  RETURN QUERY WITH gone AS (SELECT k.id, CASE WHEN k.rotated_to IS NOT NULL THEN 'rotated'"
	"      WHEN k.revoked_at IS NOT NULL AND (k.expires_at IS NULL OR k.revoked_at <= k.expires_at) THEN 'revoked'"
	"      ELSE 'expired' END AS why FROM apikey.keys k"
	"      WHERE k.revoked_at < dead_before OR k.expires_at < dead_before),"
	"    u AS (DELETE FROM apikey.usage WHERE key_id IN (SELECT gone.id FROM gone)),"
	"    t AS (DELETE FROM apikey.ratelimit WHERE key_id IN (SELECT gone.id FROM gone)),"
	"    d AS (DELETE FROM apikey.keys k WHERE k.id IN (SELECT gone.id FROM gone) RETURNING k.id)"
	"  SELECT gone.id, gone.why FROM gone JOIN d ON d.id = gone.id ORDER BY 1;"
	"END $f$;"
	"CREATE FUNCTION apikey.prune_events(before_s bigint) RETURNS bigint"
	"  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$"
	"DECLARE n bigint;"
	"BEGIN"
	"  DELETE FROM apikey.events e WHERE e.at < before_s AND e.event <> 'pruned'"
	"    AND (e.event = 'failed' OR e.key_id NOT IN (SELECT k.id FROM apikey.keys k));"
	"  GET DIAGNOSTICS n = ROW_COUNT;"
	"  PERFORM apikey.prune_log(coalesce((SELECT value::bigint FROM apikey.meta"
	"    WHERE name = 'log_retention_s'), 604800));"
	"  RETURN n;"
	"END $f$;"
	"REVOKE ALL ON FUNCTION apikey.log_change(), apikey.report_usage(uuid, text[], bigint[], bigint[]),"
	"  apikey.report_events(uuid, text, bigint[], bigint[], text[], text[], text[], text[], text[], text[]),"
	"  apikey.lease(text[], integer[], integer[], integer[], integer[]),"
	"  apikey.heartbeat(uuid, text, bigint, text), apikey.prune_log(bigint), apikey.prune_keys(bigint),"
	"  apikey.prune_events(bigint) FROM PUBLIC;"
	"INSERT INTO apikey.meta VALUES ('fleet_id', gen_random_uuid()::text), ('log_retention_s', '604800');",
};

/* The SQL a DBA runs once (roles need CREATEROLE, which init does not ask
 * for); the grants are what each role needs and no more (§10). */
static const char roles_sql[] =
	"-- apikey fleet mode: least-privilege roles (docs/design/fleet.md §10).\n"
	"-- Run as a role with CREATEROLE; the GRANTs as the owner of schema apikey\n"
	"-- (the role that ran 'apikeyctl upstream init').  Give each role a password\n"
	"-- or a certificate the libpq way (pg_hba.conf; ~/.pgpass or passfile=).\n"
	"CREATE ROLE apikey_follower LOGIN;   -- apikeyd on every host\n"
	"CREATE ROLE apikey_writer LOGIN;     -- apikeyctl and the admin API\n"
	"GRANT USAGE ON SCHEMA apikey TO apikey_follower, apikey_writer;\n"
	"-- followers: read the replicated tables and the log, LISTEN (no grant\n"
	"-- needed), report their usage and heartbeat; no write to keys, accounts or presets\n"
	"GRANT SELECT ON apikey.meta, apikey.keys, apikey.accounts, apikey.presets,\n"
	"  apikey.changes, apikey.log_head, apikey.usage, apikey.hosts TO apikey_follower;\n"
	"GRANT EXECUTE ON FUNCTION apikey.report_usage(uuid, text[], bigint[], bigint[]),\n"
	"  apikey.report_events(uuid, text, bigint[], bigint[], text[], text[], text[], text[], text[], text[]),\n"
	"  apikey.lease(text[], integer[], integer[], integer[], integer[]),\n"
	"  apikey.heartbeat(uuid, text, bigint, text) TO apikey_follower;\n"
	"-- writers: the replicated tables (their triggers write the log), audit events, prune\n"
	"GRANT SELECT, INSERT, UPDATE, DELETE ON apikey.keys, apikey.accounts, apikey.presets TO apikey_writer;\n"
	"GRANT SELECT, INSERT ON apikey.events TO apikey_writer;\n"
	"GRANT USAGE ON SEQUENCE apikey.events_id_seq TO apikey_writer;\n"
	"GRANT SELECT ON apikey.meta, apikey.usage, apikey.hosts, apikey.changes, apikey.log_head TO apikey_writer;\n"
	"GRANT EXECUTE ON FUNCTION apikey.prune_keys(bigint), apikey.prune_events(bigint),\n"
	"  apikey.prune_log(bigint) TO apikey_writer;\n";

const char *apikey_upstream_roles_sql(void)
{
	return roles_sql;
}

/* The upstream's schema version; 0 when there is no schema. */
int up_schema_version(struct up_conn *u, int *v)
{
	PGresult *res;
	int r;

	*v = 0;
	if (!(res = up_query(u, "SELECT to_regclass('apikey.meta') IS NOT NULL", 0, NULL, &r)))
		return r;
	r = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!r)
		return 0;    /* no schema yet */
	if (!(res = up_query(u, "SELECT value FROM apikey.meta WHERE name = 'schema_version'", 0, NULL, &r)))
		return r;
	if (PQntuples(res) == 1)
		*v = (int)up_parse_int(PQgetvalue(res, 0, 0), 0, 1000000);
	PQclear(res);
	return 0;
}

static int exec_script(struct up_conn *u, const char *sql)
{
	int r;
	PGresult *res = up_query(u, sql, 0, NULL, &r);

	PQclear(res);
	return res ? 0 : r;
}

/* ---- --import-local: a new fleet seeded with the first host's store ------------- */

struct seed { struct up_conn *u; unsigned long n; };

static int seed_key(void *ctx, const struct replica_key *k)
{
	struct seed *x = ctx;
	char hex[65], rl[24], c[24], e[24], rv[24];
	const char *p[15];
	PGresult *res;
	int r;

	if (k->hash && k->hash_len == 32)
		for (size_t i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", k->hash[i]);
	snprintf(rl, sizeof(rl), "%lld", (long long)k->rate_limit);
	snprintf(c, sizeof(c), "%lld", (long long)k->created_at_s);
	snprintf(e, sizeof(e), "%lld", (long long)k->expires_at_s);
	snprintf(rv, sizeof(rv), "%lld", (long long)k->revoked_at_s);
	p[0] = k->id; p[1] = k->hash && k->hash_len == 32 ? hex : NULL; p[2] = k->foreign_hash;
	p[3] = k->hash_alg; p[4] = k->hint; p[5] = k->owner; p[6] = k->name ? k->name : "";
	p[7] = k->scopes; p[8] = k->metadata ? k->metadata : "{}"; p[9] = rl; p[10] = c;
	p[11] = k->expires_at_s ? e : NULL; p[12] = k->revoked_at_s ? rv : NULL;
	p[13] = k->rotated_from; p[14] = k->rotated_to;
	if (!(res = up_query_prepared(x->u, "seed_key", 15, p, &r)))
		return r;
	PQclear(res);
	x->n++;
	return 0;
}

static int seed_account(void *ctx, const char *owner, const char *plan, bool active)
{
	struct seed *x = ctx;
	const char *p[3] = { owner, plan, active ? "true" : "false" };
	PGresult *res;
	int r;

	if (!(res = up_query(x->u, "INSERT INTO apikey.accounts VALUES ($1, $2, $3::boolean) ON CONFLICT (owner)"
	                     " DO UPDATE SET plan = excluded.plan, active = excluded.active", 3, p, &r)))
		return r;
	PQclear(res);
	return 0;
}

static int seed_preset(void *ctx, const char *name, const char *scopes)
{
	struct seed *x = ctx;
	const char *p[2] = { name, scopes };
	PGresult *res;
	int r;

	if (!(res = up_query(x->u, "INSERT INTO apikey.presets VALUES ($1, $2) ON CONFLICT (name)"
	                     " DO UPDATE SET scopes = excluded.scopes", 2, p, &r)))
		return r;
	PQclear(res);
	return 0;
}

static int seed(struct up_conn *u, struct apikey_store *s, unsigned long *keys)
{
	struct seed x = { u, 0 };
	PGresult *res;
	int r;

	if (!(res = up_query(u, "SELECT count(*) FROM apikey.keys", 0, NULL, &r)))
		return r;
	r = strcmp(PQgetvalue(res, 0, 0), "0") ? APIKEY_ERR_EXISTS : 0;
	PQclear(res);
	if (r != 0) {
		up_log(u, LOG_ERR, "--import-local: the upstream holds keys already: a fleet is seeded once, "
		       "from one host");
		return r;
	}
	if ((r = up_prepare(u, "seed_key", "INSERT INTO apikey.keys(id, hash, foreign_hash, hash_alg, hint, owner,"
	                    " name, scopes, metadata, rate_limit, created_at, expires_at, revoked_at, rotated_from,"
	                    " rotated_to) VALUES ($1, decode($2, 'hex'), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
	                    " $13, $14, $15)", 15)) != 0 ||
	    (r = apikey_replica_key_rows(s, seed_key, &x)) != 0 ||
	    (r = apikey_replica_account_rows(s, seed_account, &x)) != 0 ||
	    (r = apikey_preset_list(s, seed_preset, &x)) != 0)
		return r;
	*keys = x.n;
	return 0;
}

int apikey_upstream_init(struct apikey_store *s, const struct apikey_upstream_options *o, bool import_local,
                         int *from, int *to, char fleet_id[APIKEY_UUID_SIZE], unsigned long *imported)
{
	struct up_conn u;
	char fp[APIKEY_PEPPER_FP_SIZE], vbuf[16];
	const char *p[2];
	PGresult *res;
	int r, v;

	*from = *to = 0;
	*imported = 0;
	fleet_id[0] = '\0';
	if ((r = apikey_store_pepper_fingerprint(s, fp)) != 0)
		return r;
	if ((r = up_connect(&u, up_writer_conninfo(o), o->insecure, "apikeyctl", store_logger(s), -1)) != 0)
		return r;
	/* one init at a time, one transaction: a failed migration leaves nothing */
	if ((r = exec_script(&u, "SET client_min_messages = warning; BEGIN;"
	                     " SELECT pg_advisory_xact_lock(hashtext('apikey upstream init'))")) != 0 ||
	    (r = up_schema_version(&u, &v)) != 0)
		goto out;
	*from = v;
	if (v > UPSTREAM_SCHEMA_VERSION) {
		up_log(&u, LOG_ERR, "upstream schema %d is newer than this program (%d): upgrade it first", v,
		       UPSTREAM_SCHEMA_VERSION);
		r = APIKEY_ERR_UPSTREAM;
		goto out;
	}
	for (int i = v; i < UPSTREAM_SCHEMA_VERSION; i++)
		if ((r = exec_script(&u, migrations[i])) != 0)
			goto out;
	snprintf(vbuf, sizeof(vbuf), "%d", UPSTREAM_SCHEMA_VERSION);
	p[0] = vbuf;
	if (!(res = up_query(&u, "INSERT INTO apikey.meta VALUES ('schema_version', $1)"
	                     " ON CONFLICT (name) DO UPDATE SET value = excluded.value", 1, p, &r)))
		goto out;
	PQclear(res);
	/* The pepper's fingerprint: set once; a different pepper is refused. */
	p[0] = fp;
	if (!(res = up_query(&u, "INSERT INTO apikey.meta VALUES ('pepper_fp', $1) ON CONFLICT (name) DO NOTHING;",
	                     1, p, &r)))
		goto out;
	PQclear(res);
	if ((r = up_check_pepper(&u, s, "refusing to initialise")) != 0)
		goto out;
	if (import_local && (r = seed(&u, s, imported)) != 0)
		goto out;
	if (!(res = up_query(&u, "SELECT value FROM apikey.meta WHERE name = 'fleet_id'", 0, NULL, &r)))
		goto out;
	if (PQntuples(res) == 1)
		snprintf(fleet_id, APIKEY_UUID_SIZE, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if ((r = exec_script(&u, "COMMIT")) != 0)
		goto out;
	*to = UPSTREAM_SCHEMA_VERSION;
out:
	up_close(&u);
	return r;
}

int apikey_upstream_prune_log(struct apikey_store *s, const struct apikey_upstream_options *o, int64_t keep_s,
                              long long *removed)
{
	struct up_conn u;
	char keep[24];
	const char *p[1] = { keep };
	PGresult *res;
	int r;

	*removed = 0;
	snprintf(keep, sizeof(keep), "%lld", (long long)keep_s);
	if ((r = up_connect(&u, up_writer_conninfo(o), o->insecure, "apikeyctl", store_logger(s), -1)) != 0)
		return r;
	if ((r = up_check_schema(&u)) == 0 && (r = up_check_pepper(&u, s, "refusing to write")) == 0 &&
	    (res = up_query(&u, "SELECT apikey.prune_log($1::bigint)", 1, p, &r))) {
		*removed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	up_close(&u);
	return r;
}

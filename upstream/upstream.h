/*
 * upstream.h — fleet mode (SPEC §9, docs/design/fleet.md): PostgreSQL as the
 * one truth of a fleet, each host's SQLite store a replica of it.  This part
 * (upstream/ → libapikey_upstream.a) is linked by apikeyctl and apikeyd
 * only: the PAM module never links libpq (tests/fleet/t_layering.sh).
 *
 *  - the writer: apikey_upstream_attach installs a backend on a store, so
 *    the core's write functions (create, update, revoke, rotate, account,
 *    preset, import, prune) write to PostgreSQL, each in one transaction
 *    with its change-log rows and a NOTIFY; never locally.
 *  - the follower: keeps a host's replica at the upstream's state
 *    (snapshot, then the change log in order; resync; usage up).
 *  - upstream init, the log's pruning, the roles' SQL, the status a
 *    follower publishes beside its replica (<db>.follower).
 *
 * Conventions are libapikey's (include/apikey.h): 0 or an APIKEY_ERR_*;
 * APIKEY_ERR_UPSTREAM when PostgreSQL cannot be reached or refuses, with
 * the reason sent to the log sink (host and database, never a password or
 * the connection string).
 */
#ifndef APIKEY_UPSTREAM_H
#define APIKEY_UPSTREAM_H

#include <pthread.h>
#include "apikey.h"

#define APIKEY_UPSTREAM_WAIT_MS_DEFAULT 2000   /* read-your-writes: longest wait */
#define APIKEY_UUID_LEN 36

/* The settings of apikey.conf(5) "FLEET MODE", bound by each front end. */
struct apikey_upstream_options {
	char conninfo[APIKEY_LINE_MAX];          /* upstream=: followers (and writers) */
	char writer_conninfo[APIKEY_LINE_MAX];   /* upstream_writer=: writers; "" = conninfo */
	bool insecure;                           /* upstream_insecure=: allow TCP without verify-* */
	unsigned wait_ms;                        /* upstream_wait_ms=: read-your-writes bound */
};
/* The bindings of those four options for a front end's settings struct
 * whose member `field` is a struct apikey_upstream_options. */
#define APIKEY_UPSTREAM_BINDINGS(st, field) \
	APIKEY_BIND(st, field.conninfo, "upstream", APIKEY_OPT_TEXT), \
	APIKEY_BIND(st, field.writer_conninfo, "upstream_writer", APIKEY_OPT_TEXT), \
	APIKEY_BIND(st, field.insecure, "upstream_insecure", APIKEY_OPT_BOOL), \
	APIKEY_BIND(st, field.wait_ms, "upstream_wait_ms", APIKEY_OPT_UINT)

/* Defaults: no upstream, wait_ms APIKEY_UPSTREAM_WAIT_MS_DEFAULT. */
void apikey_upstream_defaults(struct apikey_upstream_options *o);
static inline bool apikey_upstream_set(const struct apikey_upstream_options *o)
{
	return o->conninfo[0] != '\0';
}
/*
 * Is the connection string acceptable?  Refused: one that does not parse,
 * one with password= (apikey.conf is world-readable: use passfile= or
 * ~/.pgpass), and a TCP host without sslmode=verify-full or verify-ca
 * (libpq's default falls back to plain text) unless insecure.  why
 * (whysz >= 160) names the problem, never the string.  0 or APIKEY_ERR_CONFIG.
 */
int apikey_upstream_check_conninfo(const char *conninfo, bool insecure, char *why, size_t whysz);

/* ---- the writer ---------------------------------------------------------- */
/*
 * Install the upstream writer on s (a store opened on this host's replica,
 * which holds the pepper and format profile).  Connects on the first write.
 * When a follower runs here (it holds <db>.follower), every committed write
 * returns only once the replica has applied it, or after o->wait_ms with a
 * warning in the log (the upstream has it either way).  app names the
 * program for the DBA (application_name).
 */
int apikey_upstream_attach(struct apikey_store *s, const struct apikey_upstream_options *o, const char *app);

/* ---- administration ---------------------------------------------------------- */
/*
 * Create or migrate the upstream schema (one transaction, an advisory lock:
 * idempotent), record the pepper's fingerprint (the first time; a store
 * whose pepper differs is refused), return the versions before and after
 * and the fleet's id.  import_local: also seed the upstream, in the same
 * transaction, with this store's keys (their digests), accounts and presets
 * (only while the upstream holds no key: APIKEY_ERR_EXISTS), so a host
 * that had its own keys becomes the first of a fleet without losing them;
 * *imported counts the keys.  Connects with the writer's connection
 * string; the role needs CREATE on the database (the schema's owner).
 */
int apikey_upstream_init(struct apikey_store *s, const struct apikey_upstream_options *o, bool import_local,
                         int *from, int *to, char fleet_id[APIKEY_UUID_LEN + 1], unsigned long *imported);
/* The SQL of the least-privilege roles (static text). */
const char *apikey_upstream_roles_sql(void);
/* Drop change-log entries older than keep_s (whole transactions); replicas
 * behind the log's new start resync.  *removed: rows dropped. */
int apikey_upstream_prune_log(struct apikey_store *s, const struct apikey_upstream_options *o, int64_t keep_s,
                              long long *removed);

/*
 * The fleet's audit log, newest first, of one key (key_id) or all (NULL), at
 * most limit events (0 = all): the writers' events and every host's own
 * (shipped by its follower each second).  source carries " on HOST".
 * Connects with the writer's connection string.  Callback contract as
 * apikey_event_list.
 */
int apikey_upstream_events(struct apikey_store *s, const struct apikey_upstream_options *o, const char *key_id,
                           unsigned limit, int (*fn)(void *ctx, const struct apikey_event *e), void *ctx);

/* ---- the follower ---------------------------------------------------------- */
struct apikey_follower;
struct apikey_follower_config {
	struct apikey_config core;         /* the replica (db_path) and its pepper */
	struct apikey_upstream_options up;
	char host[APIKEY_NAME_SIZE];       /* this host, for the upstream's hosts table */
	apikey_log_fn log;                 /* called from the follower's thread */
	void *log_ctx;
	/* called once, from the follower's thread, when it refuses to follow
	 * (pepper or fleet mismatch, a newer upstream schema): the process
	 * should stop; the reason was logged */
	void (*on_fatal)(void *ctx);
	void *fatal_ctx;
	/* the verified-key cache of the process serving the replica (NULL:
	 * none): each applied commit removes only the keys it changed */
	struct apikey_cache *cache;
	unsigned poll_ms;                  /* heartbeat and safety poll (0 = 5000) */
	unsigned usage_ms;                 /* usage round (0 = 1000) */
};
/*
 * Take the follower lock (<db>.follower: one follower per replica;
 * APIKEY_ERR_BUSY naming the holder's pid when another runs).  *out is
 * freed by apikey_follower_free.
 */
int apikey_follower_new(struct apikey_follower **out, const struct apikey_follower_config *c);
/* Start its thread. */
int apikey_follower_start(struct apikey_follower *f);
/*
 * Wait until the replica exists and can be served (built or opened), at
 * most timeout_ms (0 = forever, until stopped): 0, APIKEY_ERR_BUSY on
 * timeout, APIKEY_ERR_UPSTREAM if the follower refused.
 */
int apikey_follower_wait_ready(struct apikey_follower *f, unsigned timeout_ms);
/* Stop the thread (bounded: it is woken at once) and release the lock. */
void apikey_follower_free(struct apikey_follower *f);

enum apikey_follower_state {
	APIKEY_FOLLOWER_STARTING = 0, /* not yet connected */
	APIKEY_FOLLOWER_FOLLOWING,    /* connected, applying the log */
	APIKEY_FOLLOWER_SYNCING,      /* building or resyncing the replica */
	APIKEY_FOLLOWER_DOWN,         /* upstream unreachable: serving the replica as it is */
	APIKEY_FOLLOWER_REFUSED,      /* stopped: pepper, fleet or schema mismatch */
};
const char *apikey_follower_state_name(enum apikey_follower_state st);
/* What /metrics, /readyz and `apikeyctl status` show. */
struct apikey_follower_status {
	enum apikey_follower_state state;
	int64_t applied_seq;           /* the replica's position */
	int64_t head_seq;              /* the upstream's, as last seen */
	int64_t last_contact_ms;       /* last answer from the upstream (unix ms; 0 never) */
	int64_t synced_ms;             /* the replica was last known current (unix ms) */
	int64_t staleness_ms;          /* 0 when current; else now - synced_ms */
	uint64_t applied_txns;         /* upstream transactions applied since start */
	uint64_t resyncs;              /* in-place resyncs */
	uint64_t rebuilds;             /* new replica files built */
	uint64_t errors;               /* disconnects and failed rounds */
	uint64_t usage_rounds;         /* usage shipped up and fleet totals pulled */
	uint64_t streams;              /* streams followed without LISTEN (docs/design/fleet.md §4) */
	long pid;
	char upstream[160];            /* "host H, database D" */
	char error[160];               /* the last problem, "" none */
};
void apikey_follower_status(struct apikey_follower *f, struct apikey_follower_status *st);
/*
 * The fleet's share of a key's rate limit (docs/design/fleet.md §12), for
 * apikeyd's request path after the host's own limiter: memory only (a
 * leased token, or a small credit the follower charges to the upstream at
 * its next round, every 50 ms).  While the upstream is away, this host's
 * share of the limit alone.  0 with out->allowed set, or APIKEY_ERR_FULL
 * (the key cannot be tracked: UNAVAILABLE).  Thread-safe.
 */
int apikey_follower_rate_check(struct apikey_follower *f, const char *key_id, uint32_t per_minute, int64_t now_us,
                               struct apikey_ratelimit *out);
struct apikey_fleet_rate_stats { unsigned keys, hosts; uint64_t rounds, errors, credit_used, refused; };
void apikey_follower_rate_stats(struct apikey_follower *f, struct apikey_fleet_rate_stats *st);

/*
 * Another process's view: read the status a follower publishes in
 * <db>.follower.  APIKEY_ERR_NOT_FOUND when no follower holds the replica
 * (none runs on this host); st->staleness_ms is computed now.
 */
int apikey_follower_status_read(const char *db_path, struct apikey_follower_status *st);

#endif

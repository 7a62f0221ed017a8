/* sidecar.h — what apikeyd's files share: the process-wide state, one worker
 * per thread, the metrics each worker keeps, and the functions between files. */
#ifndef SIDECAR_H
#define SIDECAR_H

#include <linux/limits.h>   /* PATH_MAX, NAME_MAX ("limits.h" is apikeyd's own) */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include "apikey.h"
#include "limits.h"
#include "../upstream/upstream.h"

struct event_base;
struct event;
struct evhttp;
struct evhttp_bound_socket;
struct evbuffer;
struct evhttp_request;
struct evkeyvalq;
typedef struct json_t json_t;
struct sc_guard;

/* ---- metrics (sidecar/metrics.c) ----------------------------------------- */
enum sc_endpoint {
	EP_AUTH, EP_VERIFY, EP_WHOAMI, EP_HEALTHZ, EP_READYZ, EP_METRICS, EP_OPENAPI,
	EP_ADMIN, EP_UI, EP_OTHER, EP_COUNT
};
/* Results: the verification outcomes, then what other requests end in. */
enum sc_result {
	RES_OK = APIKEY_OUTCOME_COUNT, /* a non-verifying endpoint answered */
	RES_BAD_REQUEST,
	RES_NOT_FOUND,
	RES_METHOD_NOT_ALLOWED,
	RES_NOT_READY,
	RES_FORBIDDEN,      /* the admin API: FORBIDDEN */
	RES_CONFLICT,       /* the admin API: CONFLICT */
	RES_COUNT
};
#define SC_LATENCY_BUCKETS 14

/* Counters of one worker: written by that worker only (relaxed atomics),
 * summed by whichever worker serves /metrics. */
struct sc_metrics {
	uint64_t requests[EP_COUNT][RES_COUNT];
	uint64_t latency[SC_LATENCY_BUCKETS + 1];  /* per bucket; last = +Inf */
	uint64_t latency_sum_ns;
	uint64_t store_errors;
} __attribute__((aligned(64)));

/* ---- configuration (config.c) ---------------------------------------------- */
/* The command line. */
struct sc_options {
	const char *conf;
	const char *db;
	const char *listen[SIDECAR_LISTEN_MAX];
	unsigned n_listen;
	unsigned long long threads;
	bool threads_set, debug, check, routes;
	bool no_http;                          /* fleet mode: only follow the upstream */
};
/* apikeyd's own settings of the shared grammar (apikey.conf(5) "SIDECAR"). */
struct sc_settings {
	char listen[SIDECAR_LISTEN_MAX][APIKEY_NAME_SIZE];
	unsigned n_listen;
	unsigned threads;                      /* 0 = number of cores */
	char key_header[SIDECAR_NAME_MAX];     /* extra header carrying the key */
	char key_query[SIDECAR_NAME_MAX];      /* query parameter carrying the key */
	unsigned auth_error_body;              /* /auth errors: SC_BODY_* (default JSON) */
	bool ratelimit_draft_headers;          /* RateLimit + RateLimit-Policy, not SPEC §3's three */
	char access_log[APIKEY_PATH_SIZE];     /* "" = none, "-" = stderr */
	char require_plan[APIKEY_SCOPES_SIZE]; /* comma list, "" = any */
	bool admin_api;                        /* serve the admin API (default no) */
	char admin_cors_origins[APIKEY_SCOPES_SIZE]; /* origins allowed by CORS, "" = none */
	struct apikey_upstream_options up;     /* fleet mode (upstream=, ...) */
};
struct sc_config {
	struct apikey_config core;
	struct sc_settings set;
};
/* 0, or 2 after a usage message (--help and --version exit 0 themselves). */
int sc_parse_options(int argc, char **argv, struct sc_options *o);
/* defaults < apikey.conf < environment < flags.  0 or an APIKEY_ERR_*
 * (already logged). */
int sc_config_load(const struct sc_options *o, struct sc_config *c);
bool sc_config_same_listen(const struct sc_settings *a, const struct sc_settings *b);

/* auth_error_body=no|yes|header: how /auth sends an error's JSON body (its
 * registry words, by index: core/options.c). */
enum { SC_BODY_NONE = 0, SC_BODY_JSON = 1, SC_BODY_HEADER = 2 };

/* ---- runtime settings SIGHUP may change ---------------------------------- */
struct sc_runtime {
	char key_header[SIDECAR_NAME_MAX];
	char key_query[SIDECAR_NAME_MAX];
	char require_plan[APIKEY_SCOPES_SIZE];
	unsigned auth_error_body;              /* SC_BODY_* */
	bool ratelimit_draft_headers;
	struct apikey_answers answers;         /* the profile's refusal bodies (core) */
};

struct sc_worker;
struct sc_admin;
struct sc_admin_port;

/* ---- watch.c: the store's files watched, connections reopened together ---- */
#define WATCH_FILES   0x1   /* the db, its -wal or -shm: compare the open files */
#define WATCH_PEPPER  0x2   /* the pepper: reopen (it is read at open) */
#define WATCH_LIMITER 0x4   /* the rate-limit table beside the store */
struct sc_watch {
	int fd;                           /* inotify, -1 = none */
	int wd_dir, wd_pepper_dir, wd_file;
	char db_dir[PATH_MAX], db_base[NAME_MAX + 1], rl_base[NAME_MAX + 1];
	char pepper_dir[PATH_MAX], pepper_base[NAME_MAX + 1];
};

/* Process-wide state: created by main, shared by every worker. */
struct sc_shared {
	struct apikey_cache *cache;       /* thread-safe */
	struct apikey_limiter *limiter;   /* thread-safe */
	struct apikey_usage *usage;       /* thread-safe */
	struct apikey_slow *slow;         /* thread-safe: imported keys' slow hashes, off the request path */
	pthread_t slow_thread;
	bool slow_started;
	pthread_mutex_t store_lock;       /* guards the four below */
	uint64_t store_epoch;             /* bumped when the store was found replaced (atomic reads) */
	unsigned store_open;              /* connections of this epoch */
	unsigned store_stale;             /* connections of an older epoch still open */
	unsigned store_reopening;         /* 1 until the first connection of a new epoch */
	char reopen_last[256];            /* the last failed reopen's log line */
	struct apikey_file_id old_ids[3]; /* the replaced connection's db, -wal, -shm */
	bool old_ids_known;
	int *wake;                        /* per worker: its pipe ('x' drain, 's' store epoch) */
	int main_wake;                    /* main's pipe ('s'), -1 = none */
	/* the admin writer's wake (admin_writer.c), NULL without the admin API */
	void (*admin_wake)(struct sc_shared *sh);
	pthread_mutex_t rt_lock;          /* guards rt */
	struct sc_runtime rt;
	unsigned rt_gen;                  /* bumped (atomically) after rt changes */
	struct sc_worker *workers;
	unsigned n_workers;
	int64_t started_s;                /* unix seconds */
	struct apikey_format format;      /* the key format (key-like text in logs) */
	uint64_t flush_errors;            /* atomics, written by main */
	uint64_t flushes;
	struct sc_admin *admin;           /* the admin API's writer; NULL when admin_api=no */
	const struct apikey_config *core; /* the configuration at start: the profile's write
	                                     rules the admin API checks before queuing */
	struct apikey_follower *follower; /* fleet mode, else NULL (thread-safe status) */
	int fatal_fd;                     /* the follower refused: main stops */
};

/* One worker thread: its own event base, evhttp, listeners and store. */
struct sc_worker {
	struct sc_metrics m;              /* first: its own cache lines */
	unsigned idx;
	pthread_t thread;
	bool started;
	struct sc_shared *sh;
	struct event_base *base;
	struct evhttp *http;
	struct apikey_store *store;       /* this thread's connection, NULL while reopening */
	uint64_t store_epoch;             /* the epoch it was opened in */
	struct sc_watch watch;
	struct event *watch_ev;
	int64_t next_open_ns;             /* no reopen attempt before (unless an event came) */
	bool retry_open;
	struct apikey_verifier verifier;
	struct evhttp_bound_socket *bound[SIDECAR_LISTEN_MAX];
	unsigned n_bound;
	struct event *drain_ev;           /* activated by main on SIGTERM */
	struct event *drain_tick;         /* polls until connections are gone */
	struct timespec drain_deadline;
	bool draining;
	void *route_ctx;                  /* http.c's callback arguments (freed by main) */
	struct sc_runtime rt;             /* this worker's copy */
	unsigned rt_gen;
	int64_t last_unavailable_log_s;     /* rate-limits "store unavailable" lines */
	struct sc_admin_port *admin;      /* admin writes completed for this worker */
	time_t date_s;                    /* the second date[] was formatted for */
	char date[40];                    /* this second's Date header, made once a second */
	struct sc_guard *guard;           /* connections, deadlines, head checks (guard.c) */
};

/* ---- http.c ---------------------------------------------------------------- */
/* Sets limits, timeouts, allowed methods and every route on w->http. */
int sc_http_setup(struct sc_worker *w);
/* Routes for --routes and the OpenAPI test: "METHODS PATH" lines. */
void sc_http_print_routes(void);
/* The reason phrase of an HTTP status apikeyd sends. */
const char *sc_reason(int status);
/* What admin.c answers with (http.c's own reply path; STYLE §11). */
void sc_reply(struct sc_worker *w, struct evhttp_request *req, enum sc_endpoint ep, int status,
              int result, const char *key_id, int64_t t0);
/* Writes root as the JSON body (consumes it); false when it could not be built. */
bool sc_json_body(struct sc_worker *w, struct evhttp_request *req, json_t *root);
/* A JSON string of text that may not be UTF-8. */
json_t *sc_jtext(const char *text);
/* An error's JSON body in the profile's shape (apikey.conf(5) COMPATIBLE
 * ANSWERS): SPEC §3's body plus "field" (when given) by default; the
 * template's, with code and message, when error_template= is set.  False
 * when it could not be built (then a 500 body is in place). */
bool sc_error_body(struct sc_worker *w, struct evhttp_request *req, int status, const char *code,
                   const char *field, const char *msg);
/* A verification outcome's refusal body in the profile's shape (its code
 * name, message and ${scope}), with X-ApiKey-Code. */
void sc_outcome_body(struct sc_worker *w, struct evhttp_request *req, const struct apikey_verify_result *res);
void sc_ratelimit_headers(struct sc_worker *w, struct evkeyvalq *oh, const struct apikey_verify_result *res);
/* The caller of an admin route: the key in its headers (Authorization:
 * Bearer, X-API-Key, key_header=; never the query), verified like any
 * client's (rate limit, usage, audit), every key header wiped.  0 with the
 * answer in res, or APIKEY_ERR_INVALID with *why for a 400. */
int sc_verify_caller(struct sc_worker *w, struct evhttp_request *req, const char *source,
                     struct apikey_verify_result *res, const char **why);
/* Wipe every header that may carry a key (a request answered unverified). */
void sc_wipe_key_headers(struct sc_worker *w, struct evhttp_request *req);

/* ---- admin.c, admin_writer.c: the admin API (SPEC §5a) --------------------- */
/* Answers req when path is an admin route and the API is on; false otherwise. */
bool sc_admin_dispatch(struct sc_worker *w, struct evhttp_request *req, const char *path, int64_t t0);
void sc_admin_print_routes(void);
/* The writer thread, its own store connection and the settings (main). */
int sc_admin_start(struct sc_shared *sh, const struct sc_config *cfg);
/* Completes every queued write, then stops the thread and frees it. */
void sc_admin_stop(struct sc_shared *sh);
/* A worker's end: where its completed writes come back (its own base). */
int sc_admin_worker_setup(struct sc_worker *w);
void sc_admin_worker_free(struct sc_worker *w);
/* Writes of this worker not answered yet (the drain waits for them). */
unsigned sc_admin_pending(const struct sc_worker *w);

/* ---- ui.c: the /ui/ dashboard (only with admin_api=yes) -------------------- */
/* Answers req when path is /ui, /ui/ or one of its files and the admin API is
 * on; false otherwise (the caller answers 404). */
bool sc_ui_dispatch(struct sc_worker *w, struct evhttp_request *req, const char *path, int64_t t0);
void sc_ui_print_routes(void);
/* The files of sidecar/ui/, generated into the binary by sidecar.mk. */
struct sc_asset {
	const char *name;            /* file name under sidecar/ui/ */
	const char *type;            /* Content-Type */
	const unsigned char *data;
	unsigned int len;
};
extern const struct sc_asset sc_ui_assets[];
extern const unsigned int sc_ui_n_assets;

/* ---- watch.c ----------------------------------------------------------------- */
/* SIGIO's handler (sets the calling thread's flag); 0 or -1 (errno). */
int sc_watch_install(void);
/* Watch the store's directory, the pepper's and the db file; with signal_me
 * every event signals the calling thread.  0 or -1 (errno). */
int sc_watch_open(struct sc_watch *wa, const struct apikey_config *c, bool signal_me);
void sc_watch_close(struct sc_watch *wa);
/* Has the calling thread been signalled since its last drain? */
bool sc_watch_fired(void);
/* Read every event queued: WATCH_* bits of what they concern. */
unsigned sc_watch_drain(struct sc_watch *wa);
/* Open a connection of the current epoch; APIKEY_ERR_REPLACED while one of
 * an older epoch is still open anywhere in the process. */
int sc_store_open(struct sc_shared *sh, struct apikey_store **s, uint64_t *epoch);
void sc_store_close(struct sc_shared *sh, struct apikey_store **s, uint64_t epoch);
/* A connection of epoch found the store replaced: why is logged once. */
void sc_store_replaced(struct sc_shared *sh, struct apikey_store *s, uint64_t epoch, const char *why);
uint64_t sc_store_epoch(const struct sc_shared *sh);
/* The worker's store for this request (NULL: answer UNAVAILABLE): handles
 * watcher events, closes a connection of an older epoch, reopens. */
struct apikey_store *sc_worker_store(struct sc_worker *w);
/* Act on events read from the worker's watch (its event callback, the drain
 * pipe's 's'). */
void sc_worker_watch(struct sc_worker *w, unsigned what);

/* ---- metrics.c ------------------------------------------------------------- */
void sc_metrics_count(struct sc_worker *w, enum sc_endpoint ep, int result, int64_t ns);
void sc_metrics_render(const struct sc_shared *sh, struct evbuffer *out);
const char *sc_endpoint_name(enum sc_endpoint ep);
const char *sc_result_name(int result);

/* ---- log.c ----------------------------------------------------------------- */
void sc_log_init(bool debug);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* adds ": strerror(errno)" */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The core's log sink (apikey_log_fn). */
void sc_core_log(void *ctx, int priority, const char *msg);
/* libevent's log callback (event_set_log_callback), rate-limited. */
void sc_libevent_log(int severity, const char *msg);
/* Access log: "" = off, "-" = stderr, else a file opened O_APPEND.
 * Safe to call while workers write (SIGHUP reopens). 0 or -1 (errno set). */
int sc_access_open(const char *path);
void sc_access_close(void);
bool sc_access_enabled(void);
void sc_access_write(const char *line, size_t len);
/* A request path as the access log shows it: each segment escaped, a
 * segment that looks like a key (apikey_text_keylike) withheld, the whole
 * cut to outsz with "...". */
void sc_access_path(const struct apikey_format *f, const char *path, char *out, size_t outsz);

/* ---- follower.c: fleet mode ------------------------------------------------ */
/* Start the follower when upstream= is set and wait until the replica can be
 * served (built if missing); fatal_fd is written when it refuses to follow.
 * Another process following the replica already: serve it without a
 * follower, unless no_http (then -1).  0 (also without an upstream) or -1,
 * logged. */
int sc_fleet_start(struct sc_shared *sh, const struct sc_config *cfg, bool no_http, int fatal_fd);
void sc_fleet_stop(struct sc_shared *sh);
/* Make s (a writer's connection, e.g. the admin API's) write upstream in
 * fleet mode; 0 without an upstream. */
int sc_fleet_attach(const struct sc_config *cfg, struct apikey_store *s);
/* Fleet mode: the verifier also asks the fleet's rate limit. */
void sc_fleet_verifier(const struct sc_shared *sh, struct apikey_verifier *v);
/* The follower's lines in /readyz and /metrics (nothing without one). */
void sc_fleet_readyz(const struct sc_shared *sh, struct evbuffer *out);
void sc_fleet_metrics(const struct sc_shared *sh, struct evbuffer *out);

/* ---- openapi (generated from sidecar/openapi.json at build time) ----------- */
extern const unsigned char sc_openapi_json[];
extern const unsigned int sc_openapi_json_len;

/* monotonic nanoseconds */
int64_t sc_now_ns(void);

#endif /* SIDECAR_H */

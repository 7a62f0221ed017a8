/* upstream_int.h — what the files of upstream/ share: one libpq connection
 * driven through libpq's non-blocking API with bounded, interruptible waits
 * (pg.c), and the checks every session makes (schema version, pepper). */
#ifndef APIKEY_UPSTREAM_INT_H
#define APIKEY_UPSTREAM_INT_H

#include <libpq-fe.h>
#include "../core/backend.h"
#include "upstream.h"

#define UPSTREAM_SCHEMA_VERSION 1      /* what this program creates */
#define UPSTREAM_SCHEMA_MIN 1          /* the oldest it can follow or write */
#define UP_CONNECT_TIMEOUT_MS 10000
#define UP_QUERY_TIMEOUT_MS 30000      /* no answer for this long: the connection is dead */
#define UP_CHANNEL "apikey_changes"

struct up_logger {
	apikey_log_fn fn;
	void *ctx;
};

/* One connection: the libpq handle (non-blocking), where it goes (for
 * messages), an optional fd that interrupts every wait (stop). */
struct up_conn {
	PGconn *c;
	struct up_logger lg;
	int stop_fd;                /* -1: none */
	unsigned timeout_ms;        /* one wait without progress at most */
	char where[160];            /* "host H, database D" */
	bool stopped;               /* a wait ended because stop_fd became readable */
};

struct up_logger store_logger(struct apikey_store *s);
void up_log(const struct up_conn *u, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Connect (bounded by UP_CONNECT_TIMEOUT_MS); app: application_name's
 * fallback.  APIKEY_ERR_UPSTREAM (logged) or APIKEY_ERR_CONFIG for a
 * refused string.  u is usable for up_close either way. */
int up_connect(struct up_conn *u, const char *conninfo, bool insecure, const char *app,
               struct up_logger lg, int stop_fd);
void up_close(struct up_conn *u);
bool up_ok(const struct up_conn *u);
/*
 * Run sql (with n text parameters: one statement; without: a script) and
 * return its last result, or NULL with *err set: APIKEY_ERR_EXISTS (unique
 * violation), APIKEY_ERR_INVALID (a check, a bad value), APIKEY_ERR_BUSY
 * (serialization/deadlock), APIKEY_ERR_UPSTREAM (anything else: logged).
 * The caller PQclears the result.
 */
PGresult *up_query(struct up_conn *u, const char *sql, int n, const char *const *params, int *err);
/* Prepare a statement on the connection; run it (as up_query). */
int up_prepare(struct up_conn *u, const char *name, const char *sql, int n);
PGresult *up_query_prepared(struct up_conn *u, const char *name, int n, const char *const *params, int *err);
/* Wait for input (notifications) at most timeout_ms: 1 input, 0 timeout
 * or stop (u->stopped), -1 connection lost (logged). */
int up_wait_input(struct up_conn *u, int timeout_ms);
/* COPY ... TO STDOUT: fn for each data message.  0 or an error (logged). */
int up_copy_out(struct up_conn *u, const char *sql,
                int (*fn)(void *ctx, const char *buf, size_t len), void *ctx);

/* Session checks: the upstream's schema is one this program knows; the
 * pepper's fingerprint matches the store's (doing: "refusing to follow"). */
int up_schema_version(struct up_conn *u, int *v);
int up_check_schema(struct up_conn *u);
int up_check_pepper_fp(struct up_conn *u, const char *fp, const char *pepper_path, const char *doing);
int up_check_pepper(struct up_conn *u, struct apikey_store *s, const char *doing);
const char *up_writer_conninfo(const struct apikey_upstream_options *o);

/* strict decimal in [min, max]; min - 1 when it is not one */
long long up_parse_int(const char *s, long long min, long long max);
/* A random UUID (version 4) from the CSPRNG. */
int up_uuid(char out[APIKEY_UUID_LEN + 1]);
int64_t up_now_ms(void);

/* status.c: <db>.follower, the follower's lock and published status */
int up_status_path(const char *db_path, char *out, size_t outsz);
/* Is the follower lock of db_path held (by anyone)?  pid (may be NULL) gets
 * the holder's published pid, 0 unknown. */
bool up_follower_running(const char *db_path, long *pid);
/* Take the lock: *fd holds it; APIKEY_ERR_BUSY with *holder (the other
 * follower's pid, 0 unknown) when it is held. */
int up_status_lock(const char *db_path, int *fd, long *holder);
void up_status_write(int fd, const struct apikey_follower_status *s, uint64_t gen);
int up_status_parse_fd(int fd, struct apikey_follower_status *s);
int64_t up_staleness(const struct apikey_follower_status *s, int64_t now_ms);

#endif

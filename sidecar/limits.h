/* limits.h — every limit apikeyd enforces, in one place (STYLE §6). */
#ifndef SIDECAR_LIMITS_H
#define SIDECAR_LIMITS_H

#include "apikey.h"

/* Request line + headers, bytes, line ends included.  Large enough for a
 * 10 kB junk key (which then fails as MALFORMED_KEY, 401), small enough that
 * an abusive header block is refused before any handler runs: 431, or 414
 * when the request line alone is longer (sidecar/guard.c counts as the bytes
 * arrive; evhttp's own limit is set SIDECAR_HEAD_SLACK higher, so it never
 * answers first with its 400). */
#define SIDECAR_MAX_HEADERS_SIZE  16384
#define SIDECAR_HEAD_SLACK        1024
/* Request body, bytes: only POST /v1/verify reads one ({"key":…,"scopes":[…]}). */
#define SIDECAR_MAX_BODY_SIZE     8192
/* Read/write timeout per connection, seconds: a client that stalls mid-request
 * and an idle keep-alive connection are both closed after it.  Proxies keeping
 * upstream connections alive should use a shorter keep-alive timeout (nginx:
 * keepalive_timeout 4s in the upstream block). */
#define SIDECAR_IO_TIMEOUT_S      5
/* A whole request — first byte to last, head and body — must arrive within
 * this many seconds of its first byte (of the connection's opening for the
 * first request): the I/O timeout restarts with every byte, so without it a
 * client sending a byte every few seconds would hold a connection for hours.
 * Answered 408 and closed. */
#define SIDECAR_REQUEST_DEADLINE_S 10
/* Connections open at once, all workers together, at most: the descriptor
 * limit (RLIMIT_NOFILE, whose soft value apikeyd raises towards its hard
 * one up to what this needs) minus a reserve for the store, logs, pipes and
 * listeners, and never more than SIDECAR_CONN_MAX (~2.5 kB of memory each).
 * Each worker takes an equal share; at its share it stops accepting until
 * a connection closes (the kernel queues new ones in the listen backlog). */
#define SIDECAR_CONN_MAX          16384
#define SIDECAR_FD_RESERVE        64   /* descriptors kept for everything else */
#define SIDECAR_FD_RESERVE_WORKER 16   /* and per worker thread */
#define SIDECAR_CONN_MIN_WORKER   4    /* fewer per worker: refuse to start */
/* accept() failing for want of descriptors or memory (another process, or
 * more than the reserve in use): the worker stops accepting for this long,
 * doubling up to the maximum while it keeps failing, milliseconds. */
#define SIDECAR_ACCEPT_RETRY_MS     100
#define SIDECAR_ACCEPT_RETRY_MAX_MS 1000
/* After a burst of connections, memory freed by them is given back to the
 * system (malloc_trim) once this many fewer are open than at the peak and
 * at most half the peak remain. */
#define SIDECAR_TRIM_AFTER        512
/* SIGTERM: how long workers keep serving open connections after they stop
 * accepting, seconds. */
#define SIDECAR_DRAIN_S           5
/* How often buffered usage is written, milliseconds (SPEC: at least every second). */
#define SIDECAR_FLUSH_MS          1000
/* Longest key copied out of a request: one more than any valid key, so an
 * over-long one still reaches the core (and fails as MALFORMED_KEY). */
#define SIDECAR_KEY_BUF           (APIKEY_KEY_MAX + 2)
/* Header / query parameter names from the configuration. */
#define SIDECAR_NAME_MAX          APIKEY_NAME_SIZE
/* listen= addresses at most, and the default one. */
#define SIDECAR_LISTEN_MAX        8
#define SIDECAR_LISTEN_DEFAULT    "127.0.0.1:8790"
/* Worker threads at most (the config grammar allows 0..256). */
#define SIDECAR_THREADS_MAX       256
/* listen(2) backlog of every socket. */
#define SIDECAR_BACKLOG           511
/* One log or access-log line, bytes. */
#define SIDECAR_LOG_LINE          1024
/* Request path as written to the access log, bytes. */
#define SIDECAR_LOG_PATH_MAX      128

/* The admin API (admin_api=yes).  Bodies are bounded by
 * SIDECAR_MAX_BODY_SIZE like every other (a create with the largest name,
 * scope list and metadata takes ~4 kB); a larger one is 413 from libevent
 * before any handler.  Writes wait for the writer thread in a queue of at
 * most this many (then 503 + Retry-After): with the store's busy timeout
 * (2 s by default) that bounds how long an accepted write can wait. */
#define SIDECAR_ADMIN_QUEUE_MAX   64
/* The admin writer keeps its store connection this long after a write
 * (writes in a burst share it); a replacement makes it let go at once. */
#define SIDECAR_ADMIN_IDLE_MS     200
/* Keys and events per page: the default and the most a caller may ask. */
#define SIDECAR_ADMIN_PAGE        100
#define SIDECAR_ADMIN_PAGE_MAX    1000
/* Usage buckets one answer holds at most (24 h of minutes). */
#define SIDECAR_ADMIN_BUCKETS_MAX 1440
/* Seconds a 503 from the admin API asks the client to wait. */
#define SIDECAR_ADMIN_RETRY_S     1

#endif /* SIDECAR_LIMITS_H */

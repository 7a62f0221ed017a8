/* guard.h — what apikeyd does about hostile clients before and around
 * evhttp (sidecar/guard.c): the connection cap and paused accept, the
 * request deadline, the byte-level check of request heads, the framing
 * checks, and libevent's own log. */
#ifndef SIDECAR_GUARD_H
#define SIDECAR_GUARD_H

#include <stdbool.h>
#include <stdint.h>

struct sc_worker;
struct evhttp_request;
struct evhttp_bound_socket;

/* Process-wide, once, before the workers: raises RLIMIT_NOFILE's soft value
 * towards what the cap needs, derives the cap, routes libevent's log through
 * ours.  0, or -1 when the descriptor limit leaves no room (logged). */
int sc_guard_init(unsigned n_workers);
void sc_guard_cleanup(void);
/* Connections open at once, at most (all workers). */
unsigned sc_guard_cap(void);

/* A worker's guard: after w->http exists (installs evhttp's bufferevent
 * callback, so every connection is tracked from its accept).  0 or -1. */
int sc_guard_worker_init(struct sc_worker *w);
/* After evhttp_free(w->http): frees what is left. */
void sc_guard_worker_free(struct sc_worker *w);
/* A listening socket of this worker, paused and resumed with the cap. */
void sc_guard_listener(struct sc_worker *w, struct evhttp_bound_socket *b);
/* The listeners are gone (drain): nothing to pause or resume any more. */
void sc_guard_listeners_gone(struct sc_worker *w);

/*
 * Called once per request before its handler.  Checks what libevent
 * accepted but a proxy in front might frame differently (two
 * Content-Length, one not plain digits, Transfer-Encoding other than
 * chunked or with Content-Length, a HEAD with a body): NULL, or the reason
 * to refuse with 400.  Either way, the connection's next request starts
 * here: its deadline, and the check of any bytes already received for it.
 */
const char *sc_guard_request(struct sc_worker *w, struct evhttp_request *req);
/* Called once with each answer (finish() in http.c; an admin write's comes
 * later than its request): the handler is done with the connection.  True
 * when the answer must close it (the request was refused for its framing,
 * or what follows it on the connection is refused already). */
bool sc_guard_reply(struct sc_worker *w, struct evhttp_request *req);

/* For /metrics: the worker's open connections, how often accept was paused,
 * and requests refused by the guard before evhttp parsed them. */
struct sc_guard_stats {
	uint64_t open, accept_paused, refused_head, deadline_closed;
};
void sc_guard_stats(const struct sc_worker *w, struct sc_guard_stats *st);
struct sc_shared;
struct evbuffer;
/* The guard's part of /metrics. */
void sc_guard_metrics(const struct sc_shared *sh, struct evbuffer *o);
/* All workers' open connections now, and in *peak the most open since the
 * last call (called by the main thread). */
unsigned sc_guard_open_total(const struct sc_worker *workers, unsigned n, unsigned *peak);

#endif /* SIDECAR_GUARD_H */

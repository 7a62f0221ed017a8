/* guard.c — apikeyd against hostile clients, around evhttp.  libevent 2.1.12
 * offers no hook between accepting a connection and parsing its requests
 * (2.2's evhttp_set_newreqcb is not in the distro), so:
 *
 *  - Every connection is tracked from its accept.  evhttp_set_bevcb() lets
 *    us create its bufferevent; an event activated there runs before the
 *    loop reads anything, when evhttp has wrapped the bufferevent: its
 *    callback argument is then the evhttp_connection, on which a close
 *    callback tells us when it goes.  (We hold a reference on the
 *    bufferevent until then, so one evhttp dropped at once is seen as such.)
 *  - A connection cap below the descriptor limit (sc_guard_init): at its
 *    share a worker disables its listeners — the kernel keeps queueing new
 *    connections in the backlog, nothing spins — and enables them when a
 *    connection closes.  accept() failing for want of descriptors or memory
 *    pauses them too, retried after a growing moment, instead of libevent's
 *    accept-and-warn loop on a level-triggered socket.
 *  - A deadline for each whole request (SIDECAR_REQUEST_DEADLINE_S), from
 *    its first byte (the accept, for the first one) to its handler.
 *  - A byte-level check of each request head, as it arrives and before
 *    evhttp parses it: an evbuffer callback on the connection's input runs
 *    on every read, ahead of evhttp's read callback.  It only classifies
 *    bytes and finds line ends — it extracts no field; evhttp stays the
 *    parser.  Refused: a NUL or other control byte (evhttp would cut a value
 *    at a NUL and keep what precedes it), a CR not before LF, obsolete line
 *    folding, a version other than HTTP/1.0 and HTTP/1.1 (505), a head over
 *    SIDECAR_MAX_HEADERS_SIZE (431; 414 when the request line alone is).
 *    The answer is written straight to the socket (evhttp has no request to
 *    answer yet), then the connection closed through evhttp's own error path.
 *  - Framing checks on what evhttp parsed, before the handler runs.
 *  - libevent's log lines go through ours (sc_libevent_log, rate-limited).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include "sidecar.h"
#include "guard.h"
#include "headscan.h"

enum { ST_HEAD, ST_BODY, ST_DONE };

/* One accepted connection. */
struct sc_conn {
	struct sc_worker *w;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;   /* NULL until adopted */
	struct evbuffer_cb_entry *input_cb;  /* on the input while a head is read */
	struct event *timer;               /* the request deadline */
	TAILQ_ENTRY(sc_conn) link;         /* on the pending list until adopted */
	int fd;
	int64_t deadline_ns;               /* monotonic; 0 = no request under way */
	struct sc_headscan hs;             /* the head being read */
	uint8_t st;
	bool timer_on, close_after;
	bool busy;                         /* a request is with a handler (answers may come later: admin writes) */
	const char *why;                   /* the head's fault, when refused */
};

/* A worker's guard: touched by that worker's thread only (the counters are
 * read by /metrics on any worker, hence atomics). */
struct sc_guard {
	struct event *adopt;               /* adopts what bevcb created */
	struct event *retry;               /* resumes accept after an accept error */
	TAILQ_HEAD(, sc_conn) pending;
	struct evconnlistener *lev[SIDECAR_LISTEN_MAX];
	unsigned n_lev;
	unsigned open, cap;                /* open: atomic */
	unsigned peak;                     /* most open since the main thread last looked: atomic */
	unsigned retry_ms;
	bool paused, err_pause;
	struct sc_conn *cur;               /* the request being handled */
	int64_t pause_logged_s, error_logged_s;
	uint64_t accept_paused, refused_head, deadline_closed;   /* atomics */
};

/* Process-wide: the descriptor table (a slot per possible fd, each written
 * only by the worker that owns that fd) and the cap. */
static struct sc_conn **by_fd;
static size_t by_fd_n;
static unsigned cap_total, cap_share;
/* Which worker an event base belongs to (for listener callbacks, whose
 * argument is evhttp's); written by main before the workers start. */
static struct { struct event_base *base; struct sc_worker *w; } known[SIDECAR_THREADS_MAX];
static unsigned n_workers_known;

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

/* The input callback is on the buffer only while a head is being read:
 * any callback on it, even a disabled one, costs libevent a round of work
 * on every change of the buffer (each header line evhttp takes off it).
 * False when it could not be put on (out of memory). */
static bool watch_input(struct sc_conn *c, bool on)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (on && !c->input_cb) {
		c->input_cb = evbuffer_add_cb(in, on_input, c);
		return c->input_cb != NULL;
	}
	if (!on && c->input_cb) {
		evbuffer_remove_cb_entry(in, c->input_cb);   /* safe from within it */
		c->input_cb = NULL;
	}
	return true;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ADD(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)

/* ---- process ------------------------------------------------------------------ */

int sc_guard_init(unsigned n_workers)
{
	struct rlimit rl;
	rlim_t reserve = SIDECAR_FD_RESERVE + (rlim_t)SIDECAR_FD_RESERVE_WORKER * n_workers;
	rlim_t want = reserve + SIDECAR_CONN_MAX, room;

	event_set_log_callback(sc_libevent_log);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return log_warn("getrlimit(RLIMIT_NOFILE)"), -1;
	/* epoll has no use for the low soft limit kept for select(): raise it
	 * to what the cap needs, as far as the hard limit allows */
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		struct rlimit up = rl;
		up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		if (up.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	room = rl.rlim_cur == RLIM_INFINITY ? want : rl.rlim_cur;
	room = room > reserve ? room - reserve : 0;
	cap_total = room > SIDECAR_CONN_MAX ? SIDECAR_CONN_MAX : (unsigned)room;
	cap_share = n_workers ? cap_total / n_workers : 0;
	if (cap_share < SIDECAR_CONN_MIN_WORKER)
		return log_errx("the descriptor limit (%llu) leaves %u connections for %u worker%s: raise "
		                "LimitNOFILE / ulimit -n (at least %llu) or use fewer threads",
		                (unsigned long long)rl.rlim_cur, cap_total, n_workers, n_workers == 1 ? "" : "s",
		                (unsigned long long)(reserve + (rlim_t)SIDECAR_CONN_MIN_WORKER * n_workers)), -1;
	cap_total = cap_share * n_workers;
	by_fd_n = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > want ? (size_t)want : (size_t)rl.rlim_cur;
	if (!(by_fd = calloc(by_fd_n, sizeof(*by_fd))))
		return log_errx("out of memory"), -1;
	log_debug("connections: at most %u (%u per worker; descriptor limit %llu)", cap_total, cap_share,
	          (unsigned long long)rl.rlim_cur);
	return 0;
}

void sc_guard_cleanup(void)
{
	n_workers_known = 0;
	free(by_fd);
	by_fd = NULL;
	by_fd_n = 0;
}

unsigned sc_guard_cap(void)
{
	return cap_total;
}

/* ---- accepting ---------------------------------------------------------------- */

static struct sc_worker *worker_of(struct event_base *base)
{
	for (unsigned i = 0; i < n_workers_known; i++)
		if (known[i].base == base)
			return known[i].w;
	return NULL;
}

static void listeners(struct sc_guard *g, bool on)
{
	for (unsigned i = 0; i < g->n_lev; i++)
		if (on)
			evconnlistener_enable(g->lev[i]);
		else
			evconnlistener_disable(g->lev[i]);
}

static void pause_accept(struct sc_worker *w, bool for_error)
{
	struct sc_guard *g = w->guard;

	if (for_error)
		g->err_pause = true;
	if (g->paused)
		return;
	g->paused = true;
	listeners(g, false);
	ADD(g->accept_paused, 1);
	if (!for_error) {
		int64_t now = (int64_t)time(NULL);
		if (now - g->pause_logged_s >= 10) {
			g->pause_logged_s = now;
			log_warnx("worker %u: %u connections open (its share of %u): not accepting until one closes",
			          w->idx, g->open, cap_total);
		}
	}
}

static void maybe_resume(struct sc_guard *g)
{
	if (!g->paused || g->err_pause || LOAD(g->open) >= g->cap)
		return;
	g->paused = false;
	listeners(g, true);
}

/* accept() failed and libevent handed it to us instead of retrying at once
 * (and warning) on a socket that stays readable. */
/* accept() failed and libevent handed it to us instead of retrying at once
 * (and warning) on a socket that stays readable. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct sc_worker *w = worker_of(evconnlistener_get_base(l));
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval tv;
	struct sc_guard *g;
	int64_t now = (int64_t)time(NULL);

	(void)arg;   /* evhttp's own argument */
	if (!w || !(g = w->guard))
		return;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		if (now != g->error_logged_s) {
			g->error_logged_s = now;
			log_warnx("worker %u: accept: %s", w->idx, strerror(e));
		}
		return;
	}
	g->retry_ms = g->retry_ms ? g->retry_ms * 2 : SIDECAR_ACCEPT_RETRY_MS;
	if (g->retry_ms > SIDECAR_ACCEPT_RETRY_MAX_MS)
		g->retry_ms = SIDECAR_ACCEPT_RETRY_MAX_MS;
	if (now - g->error_logged_s >= 10) {
		g->error_logged_s = now;
		log_warnx("worker %u: accept: %s (%u connections open): not accepting for %u ms", w->idx,
		          strerror(e), LOAD(g->open), g->retry_ms);
	}
	pause_accept(w, true);
	tv.tv_sec = g->retry_ms / 1000;
	tv.tv_usec = (g->retry_ms % 1000) * 1000;
	evtimer_add(g->retry, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct sc_guard *g = arg;

	(void)fd; (void)what;
	g->err_pause = false;
	maybe_resume(g);
}

/* A connection closed: descriptors are free again, accept errors too. */
static void error_pause_ends(struct sc_guard *g)
{
	if (g->err_pause) {
		g->err_pause = false;
		g->retry_ms = 0;
		evtimer_del(g->retry);
	}
}

void sc_guard_listener(struct sc_worker *w, struct evhttp_bound_socket *b)
{
	struct sc_guard *g = w->guard;
	struct evconnlistener *l = evhttp_bound_socket_get_listener(b);

	if (!g || !l || g->n_lev >= SIDECAR_LISTEN_MAX)
		return;
	evconnlistener_set_error_cb(l, on_accept_error);
	g->lev[g->n_lev++] = l;
	if (g->paused)
		evconnlistener_disable(l);
}

void sc_guard_listeners_gone(struct sc_worker *w)
{
	if (w->guard)
		w->guard->n_lev = 0;
}

/* ---- connections ---------------------------------------------------------------- */

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void arm(struct sc_conn *c, int64_t now)
{
	int64_t left = c->deadline_ns - now;
	struct timeval tv;

	if (c->timer_on)
		return;
	if (left < 1000000)
		left = 1000000;
	tv.tv_sec = (time_t)(left / 1000000000);
	tv.tv_usec = (suseconds_t)(left % 1000000000 / 1000);
	if (evtimer_add(c->timer, &tv) == 0)
		c->timer_on = true;
}

/* A request begins: its deadline runs from now. */
static void request_begins(struct sc_conn *c)
{
	int64_t now = mono_ns();

	c->deadline_ns = now + (int64_t)SIDECAR_REQUEST_DEADLINE_S * 1000000000;
	arm(c, now);
}

static void scan_reset(struct sc_conn *c)
{
	c->st = ST_HEAD;
	sc_headscan_reset(&c->hs);
	c->why = NULL;
}

static void conn_free(struct sc_conn *c)
{
	struct sc_guard *g = c->w->guard;

	if (c->fd >= 0 && (size_t)c->fd < by_fd_n && by_fd[c->fd] == c)
		by_fd[c->fd] = NULL;
	if (g->cur == c)
		g->cur = NULL;
	if (c->timer)
		event_free(c->timer);
	__atomic_sub_fetch(&g->open, 1, __ATOMIC_RELAXED);
	free(c);
	error_pause_ends(g);
	maybe_resume(g);
}

/* evhttp frees the connection (closed, timed out, or evhttp_free). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct sc_conn *c = arg;

	(void)evcon;
	watch_input(c, false);
	conn_free(c);
}

/* Write a refusal straight to the socket: evhttp is reading a head and has
 * no request to answer with.  Nothing else is being written then (evhttp
 * writes only after a request is complete), and a short write is only a
 * shorter refusal: the connection is closed either way. */
static void send_refusal(struct sc_conn *c, int status, const char *reason, const char *msg)
{
	char body[256], head[320];
	int nb, nh;

	nb = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"code\":\"BAD_REQUEST\",\"status\":%d}\n", msg, status);
	nh = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	              "Content-Length: %d\r\nConnection: close\r\nX-ApiKey-Code: BAD_REQUEST\r\n"
	              "Cache-Control: no-store\r\n\r\n", status, reason, nb);
	if (nb < 0 || nh < 0 || (size_t)nb >= sizeof(body) || (size_t)nh >= sizeof(head))
		return;
	if (send(c->fd, head, (size_t)nh, MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE) == nh)
		(void)send(c->fd, body, (size_t)nb, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void access_refusal(struct sc_conn *c, int status)
{
	char line[SIDECAR_LOG_LINE], when[32];
	char *host = NULL;
	ev_uint16_t port = 0;
	int n;

	sc_metrics_count(c->w, EP_OTHER, RES_BAD_REQUEST, 0);
	if (!sc_access_enabled())
		return;
	if (c->evcon)
		evhttp_connection_get_peer(c->evcon, &host, &port);
	apikey_format_time((int64_t)time(NULL), when);
	n = snprintf(line, sizeof(line), "%s %s:%u - \"-\" %d %s - 0.000ms\n", when, host && host[0] ? host : "-",
	             (unsigned)port, status, sc_result_name(RES_BAD_REQUEST));
	if (n > 0)
		sc_access_write(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* Stop reading and let evhttp close the connection through its own error
 * path (deferred: we may be inside the bufferevent's read callback). */
static void close_conn(struct sc_conn *c, short what)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	c->st = ST_DONE;
	c->deadline_ns = 0;
	watch_input(c, false);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_trigger_event(c->bev, (short)(BEV_EVENT_READING | what), BEV_TRIG_DEFER_CALLBACKS);
}

static void refuse_head(struct sc_conn *c, int status)
{
	const char *msg = c->why ? c->why : "Bad request";

	ADD(c->w->guard->refused_head, 1);
	log_debug("worker %u: fd %d: refused (%d): %s", c->w->idx, c->fd, status, msg);
	send_refusal(c, status, sc_reason(status), msg);
	access_refusal(c, status);
	close_conn(c, BEV_EVENT_EOF);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct sc_conn *c = arg;
	int64_t now = mono_ns();

	(void)fd; (void)what;
	c->timer_on = false;
	if (!c->deadline_ns || c->st == ST_DONE || c->busy)
		return;                         /* idle, or a handler has the request */
	if (now < c->deadline_ns) {
		arm(c, now);
		return;
	}
	ADD(c->w->guard->deadline_closed, 1);
	log_debug("worker %u: fd %d: request not complete after %d s: closed", c->w->idx, c->fd,
	          SIDECAR_REQUEST_DEADLINE_S);
	/* a 408 only while nothing of ours is being written on it */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		send_refusal(c, 408, sc_reason(408), "Request not complete in time");
		access_refusal(c, 408);
	}
	close_conn(c, BEV_EVENT_TIMEOUT);
}

/* ---- the byte-level check of a head -------------------------------------------- */

/* Scan n bytes of a head (headscan.c); 0 (go on; ST_BODY once the head is
 * whole) or the status to refuse with (c->why saying why). */
static int scan(struct sc_conn *c, const unsigned char *p, size_t n)
{
	int r = sc_headscan_feed(&c->hs, p, n, SIDECAR_MAX_HEADERS_SIZE);

	if (r != 0)
		c->why = c->hs.why;
	else if (c->hs.done)
		c->st = ST_BODY;
	return r;
}

/* Scan the input buffer from offset `from` to its end. */
static int scan_buffer(struct sc_conn *c, struct evbuffer *buf, size_t from)
{
	struct evbuffer_iovec v[4];
	struct evbuffer_ptr pos;
	size_t len = evbuffer_get_length(buf);
	int r = 0;

	if (from >= len || (from && evbuffer_ptr_set(buf, &pos, from, EVBUFFER_PTR_SET) != 0))
		return 0;
	while (from < len && r == 0 && c->st == ST_HEAD) {
		/* usually the buffer holds only what was just read: no position */
		int nv = evbuffer_peek(buf, (ev_ssize_t)(len - from), from ? &pos : NULL, v, 4);
		size_t done = 0;

		if (nv <= 0)
			break;
		for (int i = 0; i < nv && i < 4 && r == 0 && c->st == ST_HEAD; i++) {
			size_t k = v[i].iov_len < len - from - done ? v[i].iov_len : len - from - done;
			r = scan(c, v[i].iov_base, k);
			done += k;
		}
		if (done == 0 || from + done >= len ||
		    evbuffer_ptr_set(buf, &pos, from + done, EVBUFFER_PTR_SET) != 0)
			break;
		from += done;
	}
	return r;
}

/* Every change of the connection's input; runs before evhttp's read
 * callback sees new bytes. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct sc_conn *c = arg;
	size_t len = evbuffer_get_length(buf);
	int r;

	if (info->n_added == 0 || c->st != ST_HEAD)
		return;
	if (!c->deadline_ns)
		request_begins(c);
	r = scan_buffer(c, buf, info->n_added < len ? len - info->n_added : 0);
	if (r != 0)
		refuse_head(c, r);
	else if (c->st == ST_BODY)   /* until the handler: nothing more to look at */
		watch_input(c, false);
}

/* ---- adoption -------------------------------------------------------------------- */

/* evhttp calls this for each accepted connection, before anything is read. */
static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
	struct sc_worker *w = arg;
	struct sc_guard *g = w->guard;
	struct sc_conn *c = calloc(1, sizeof(*c));
	struct bufferevent *bev = c ? bufferevent_socket_new(base, -1, 0) : NULL;

	if (!c || !bev || !(c->timer = evtimer_new(base, on_deadline, c))) {
		/* evhttp makes a bufferevent of its own: this one goes untracked */
		if (bev)
			bufferevent_free(bev);
		free(c);
		log_warnx("worker %u: out of memory: a connection is not tracked", w->idx);
		return NULL;
	}
	c->w = w;
	c->bev = bev;
	c->fd = -1;
	bufferevent_incref(bev);           /* until adopted: see the file's comment */
	TAILQ_INSERT_TAIL(&g->pending, c, link);
	if (ADD(g->open, 1) > LOAD(g->peak))
		__atomic_store_n(&g->peak, LOAD(g->open), __ATOMIC_RELAXED);
	event_active(g->adopt, EV_TIMEOUT, 0);
	if (LOAD(g->open) >= g->cap)
		pause_accept(w, false);
	return bev;
}

static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
	struct sc_worker *w = arg;
	struct sc_guard *g = w->guard;
	struct sc_conn *c;

	(void)fd; (void)what;
	while ((c = TAILQ_FIRST(&g->pending)) != NULL) {
		struct bufferevent *bev = c->bev;
		void *evcon = NULL;

		TAILQ_REMOVE(&g->pending, c, link);
		bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
		if (!evcon) {
			/* out of memory in evhttp: it never took the bufferevent
			 * (no descriptor set: ours to free), or dropped it already */
			if (bufferevent_getfd(bev) < 0)
				bufferevent_free(bev);
			conn_free(c);
			bufferevent_decref(bev);
			continue;
		}
		c->evcon = evcon;
		c->fd = bufferevent_getfd(bev);
		if (c->fd >= 0 && (size_t)c->fd < by_fd_n)
			by_fd[c->fd] = c;
		evhttp_connection_set_closecb(c->evcon, on_close, c);
		scan_reset(c);
		request_begins(c);
		bufferevent_decref(bev);       /* the close callback tells us from now on */
		if (!watch_input(c, true))     /* no check of its heads: not served */
			close_conn(c, BEV_EVENT_ERROR);
	}
}

/*
 * libevent keeps a small record for each descriptor number it has ever
 * polled, for good (its evmap).  Made during a burst of connections, one
 * sits between each connection's memory and keeps those pages in use after
 * the burst is over: measured, 10,000 connections left RSS 16 MB higher,
 * malloc_trim or not.  So each worker polls every descriptor number it may
 * ever see once, at start (≤ SIDECAR_CONN_MAX + the reserve: ~50 ms and
 * ~0.6 MB a worker), and the records lie together.
 */
static void poll_every_number(struct event_base *base)
{
	struct event *ev = malloc(event_get_struct_event_size());
	int *dups = calloc(by_fd_n, sizeof(int));
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), fd;
	size_t n = 0;

	if (ev && dups && efd >= 0) {
		/* the lowest free numbers first, up to the last one we may see */
		while (n < by_fd_n && (fd = fcntl(efd, F_DUPFD_CLOEXEC, 0)) >= 0) {
			dups[n++] = fd;
			if ((size_t)fd >= by_fd_n)
				break;
			if (event_assign(ev, base, fd, EV_READ, on_retry, NULL) == 0 && event_add(ev, NULL) == 0)
				event_del(ev);
		}
	}
	while (n > 0)
		close(dups[--n]);
	if (efd >= 0)
		close(efd);
	free(dups);
	free(ev);
}

int sc_guard_worker_init(struct sc_worker *w)
{
	struct sc_guard *g = calloc(1, sizeof(*g));

	if (!g)
		return -1;
	w->guard = g;
	if (n_workers_known < SIDECAR_THREADS_MAX) {
		known[n_workers_known].base = w->base;
		known[n_workers_known++].w = w;
	}
	TAILQ_INIT(&g->pending);
	g->cap = cap_share;
	if (!(g->adopt = event_new(w->base, -1, 0, on_adopt, w)) || !(g->retry = evtimer_new(w->base, on_retry, g)))
		return -1;
	evhttp_set_bevcb(w->http, on_new_bev, w);
	poll_every_number(w->base);
	return 0;
}

void sc_guard_worker_free(struct sc_worker *w)
{
	struct sc_guard *g = w->guard;

	if (!g)
		return;
	g->n_lev = 0;
	/* evhttp_free ran: what was never adopted is released now */
	if (g->adopt)
		on_adopt(-1, 0, w);
	if (g->adopt)
		event_free(g->adopt);
	if (g->retry)
		event_free(g->retry);
	free(g);
	w->guard = NULL;
}

/* ---- requests ------------------------------------------------------------------- */

static bool digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/*
 * What evhttp accepted but a proxy might frame differently.  evhttp reads a
 * body by the first Content-Length, takes "+5" for 5, reads no body for
 * HEAD, and uses chunked over Content-Length; a proxy that frames the same
 * bytes another way would send what we take for a body, or a second
 * request, as its next request.  Refused (and the connection closed), so no
 * byte after such a request is ever parsed.
 */
static const char *framing(struct evhttp_request *req)
{
	struct evkeyval *kv;
	const char *cl = NULL, *te = NULL;
	unsigned n_cl = 0, n_te = 0;

	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
		char k = kv->key[0];
		if ((k == 'C' || k == 'c') && !strcasecmp(kv->key, "Content-Length")) {
			n_cl++;
			cl = kv->value;
		} else if ((k == 'T' || k == 't') && !strcasecmp(kv->key, "Transfer-Encoding")) {
			n_te++;
			te = kv->value;
		}
	}
	if (!cl && !te)
		return NULL;
	if (n_cl > 1)
		return "more than one Content-Length";
	if (cl && !digits(cl))
		return "Content-Length is not a plain decimal number";
	if (n_te > 1 || (te && strcasecmp(te, "chunked") != 0))
		return "Transfer-Encoding other than chunked";
	if (te && cl)
		return "both Transfer-Encoding and Content-Length";
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD && (te || strspn(cl, "0") != strlen(cl)))
		return "a body on a HEAD request";
	return NULL;
}

static struct sc_conn *conn_of(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	struct sc_conn *c = fd >= 0 && (size_t)fd < by_fd_n ? by_fd[fd] : NULL;

	return c && c->evcon == evcon ? c : NULL;
}

const char *sc_guard_request(struct sc_worker *w, struct evhttp_request *req)
{
	struct sc_guard *g = w->guard;
	struct sc_conn *c = g ? conn_of(req) : NULL;
	const char *why = framing(req);

	if (g)
		g->cur = c;
	if (!c)
		return why;
	if (why)
		c->close_after = true;
	/* The request is the handler's until its answer (sc_guard_reply), and
	 * no deadline runs meanwhile: evhttp reads nothing more until then.
	 * What evhttp has not parsed yet is the next request's head, checked
	 * now, before evhttp gets to it. */
	c->busy = true;
	c->deadline_ns = 0;
	if (c->st != ST_DONE) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		scan_reset(c);
		if (evbuffer_get_length(in) > 0) {
			if (scan_buffer(c, in, 0) != 0) {
				/* answered after this one, so refused by closing */
				ADD(g->refused_head, 1);
				c->close_after = true;
			}
		}
		if (c->st == ST_HEAD && !watch_input(c, true))
			c->close_after = true;   /* its next head could not be checked */
	}
	return why;
}

bool sc_guard_reply(struct sc_worker *w, struct evhttp_request *req)
{
	struct sc_guard *g = w->guard;
	struct sc_conn *c;

	if (!g)
		return false;
	/* usually the request sc_guard_request saw last; an admin write is
	 * answered later, after others */
	c = g->cur && g->cur->evcon == evhttp_request_get_connection(req) ? g->cur : conn_of(req);
	if (!c)
		return false;
	c->busy = false;
	/* the next request may be here already (pipelined): its deadline runs */
	if (c->st != ST_DONE && !c->deadline_ns && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		request_begins(c);
	return c->close_after;
}

void sc_guard_stats(const struct sc_worker *w, struct sc_guard_stats *st)
{
	const struct sc_guard *g = w->guard;

	memset(st, 0, sizeof(*st));
	if (!g)
		return;
	st->open = LOAD(g->open);
	st->accept_paused = LOAD(g->accept_paused);
	st->refused_head = LOAD(g->refused_head);
	st->deadline_closed = LOAD(g->deadline_closed);
}

unsigned sc_guard_open_total(const struct sc_worker *workers, unsigned n, unsigned *peak)
{
	unsigned total = 0;

	*peak = 0;
	for (unsigned i = 0; i < n; i++) {
		struct sc_guard *g = workers[i].guard;
		if (!g)
			continue;
		total += LOAD(g->open);
		*peak += __atomic_exchange_n(&g->peak, LOAD(g->open), __ATOMIC_RELAXED);
	}
	return total;
}

void sc_guard_metrics(const struct sc_shared *sh, struct evbuffer *o)
{
	struct sc_guard_stats t = { 0 }, st;

	for (unsigned i = 0; i < sh->n_workers; i++) {
		sc_guard_stats(&sh->workers[i], &st);
		t.open += st.open;
		t.accept_paused += st.accept_paused;
		t.refused_head += st.refused_head;
		t.deadline_closed += st.deadline_closed;
	}
	evbuffer_add_printf(o,
		"# HELP apikeyd_connections_open Client connections open.\n"
		"# TYPE apikeyd_connections_open gauge\n"
		"apikeyd_connections_open %" PRIu64 "\n"
		"# HELP apikeyd_connections_max Client connections open at most (from the descriptor limit).\n"
		"# TYPE apikeyd_connections_max gauge\n"
		"apikeyd_connections_max %u\n"
		"# HELP apikeyd_accept_paused_total Times a worker stopped accepting (at its share of the cap, or accept failing).\n"
		"# TYPE apikeyd_accept_paused_total counter\n"
		"apikeyd_accept_paused_total %" PRIu64 "\n"
		"# HELP apikeyd_heads_refused_total Requests refused for their head's bytes before evhttp parsed them.\n"
		"# TYPE apikeyd_heads_refused_total counter\n"
		"apikeyd_heads_refused_total %" PRIu64 "\n"
		"# HELP apikeyd_deadline_closed_total Connections closed because a request was not complete in time.\n"
		"# TYPE apikeyd_deadline_closed_total counter\n"
		"apikeyd_deadline_closed_total %" PRIu64 "\n",
		t.open, cap_total, t.accept_paused, t.refused_head, t.deadline_closed);
}

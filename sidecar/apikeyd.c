/* apikeyd.c — the sidecar's process: options and configuration, listeners,
 * one worker thread per core (own event base, evhttp, store connection and
 * SO_REUSEPORT socket), signals (TERM drains and flushes, HUP reloads), and
 * the usage flush timer.  It runs in the foreground and logs to stderr. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include "sidecar.h"
#include "guard.h"

/* A parsed listen address. */
struct address {
	char text[APIKEY_NAME_SIZE];
	bool is_unix;
	struct sockaddr_storage ss;
	int sslen;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int unix_fd;                      /* bound by main, served by worker 0 */
	dev_t dev;
	ino_t ino;
};

struct daemon {
	struct sc_options opt;
	struct sc_config *cfg;            /* the running configuration */
	struct address addr[SIDECAR_LISTEN_MAX];
	unsigned n_addr;
	struct apikey_store *store;       /* main thread's connection: usage flush */
	uint64_t store_epoch;
	struct sc_watch watch;            /* main's: no signal, an event in its loop */
	int wake_rd;                      /* read end of sh.main_wake */
	struct sc_shared sh;
	int *wake;                        /* per worker: write end of its drain pipe */
	struct event_base *base;
	struct event *ev_term, *ev_int, *ev_hup, *ev_flush, *ev_watch, *ev_wake, *ev_fatal;
	int fatal[2];                     /* the follower refused: written from its thread */
	bool stopping, refused;
	bool flush_failing;
	unsigned conn_peak;               /* connections open at most since the last trim */
};

int64_t sc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int parse_address(const char *text, struct address *a)
{
	memset(a, 0, sizeof(*a));
	a->unix_fd = -1;
	snprintf(a->text, sizeof(a->text), "%s", text);
	if (!strncmp(text, "unix:", 5)) {
		const char *p = text + 5;
		if (p[0] != '/' || strlen(p) >= sizeof(a->path))
			return log_errx("listen %s: needs an absolute path of at most %zu bytes", text,
			                sizeof(a->path) - 1), APIKEY_ERR_CONFIG;
		a->is_unix = true;
		snprintf(a->path, sizeof(a->path), "%s", p);
		return 0;
	}
	a->sslen = (int)sizeof(a->ss);
	if (evutil_parse_sockaddr_port(text, (struct sockaddr *)&a->ss, &a->sslen) != 0 ||
	    (a->ss.ss_family == AF_INET && ((struct sockaddr_in *)&a->ss)->sin_port == 0) ||
	    (a->ss.ss_family == AF_INET6 && ((struct sockaddr_in6 *)&a->ss)->sin6_port == 0))
		return log_errx("listen %s: want a numeric HOST:PORT ([::1]:PORT for IPv6) or unix:PATH, "
		                "port 1..65535", text), APIKEY_ERR_CONFIG;
	return 0;
}

/* Bind the unix socket once (mode 0660); a stale socket is removed, any
 * other file in the way is an error. */
static int bind_unix(struct address *a)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd;

	if (lstat(a->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return log_errx("listen %s: exists and is not a socket", a->text), -1;
		if (unlink(a->path) != 0)
			return log_warn("listen %s: removing stale socket", a->text), -1;
		log_info("listen %s: removed stale socket", a->text);
	}
	memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return log_warn("listen %s: socket", a->text), -1;
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old);
		log_warn("listen %s: bind", a->text);
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(a->path, 0660) != 0 || listen(fd, SIDECAR_BACKLOG) != 0 || stat(a->path, &st) != 0) {
		log_warn("listen %s", a->text);
		close(fd);
		unlink(a->path);
		return -1;
	}
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	a->unix_fd = fd;
	return 0;
}

/* Remove our socket file at exit, if it is still ours. */
static void unlink_unix(const struct address *a)
{
	struct stat st;

	if (a->is_unix && a->ino && lstat(a->path, &st) == 0 && st.st_dev == a->dev && st.st_ino == a->ino)
		unlink(a->path);
}

/* ---- workers ------------------------------------------------------------------- */

static void on_worker_watch(evutil_socket_t fd, short what, void *arg)
{
	struct sc_worker *w = arg;

	(void)fd; (void)what;
	sc_worker_watch(w, sc_watch_drain(&w->watch));
}

/* "apikeyd-<name>", as top -H, ps -L and /proc show it: which thread spends
 * the CPU (cut at 15 characters, the kernel's limit). */
static void thread_name(pthread_t t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void thread_name(pthread_t t, const char *fmt, ...)
{
	char full[16] = "apikeyd-";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(full + 8, sizeof(full) - 8, fmt, ap);
	va_end(ap);
	pthread_setname_np(t, full);
}

static void *worker_main(void *arg)
{
	struct sc_worker *w = arg;

	/* The watch signals this thread, so it is made here.  Then one look at
	 * the files: a change between the store's open and the watch is seen. */
	if (sc_watch_open(&w->watch, w->sh->core, true) != 0) {
		log_warn("worker %u: cannot watch the key store's directory (checking its files on every "
		         "request instead)", w->idx);
	} else if (!(w->watch_ev = event_new(w->base, w->watch.fd, EV_READ | EV_PERSIST, on_worker_watch, w)) ||
	           event_add(w->watch_ev, NULL) != 0) {
		log_warnx("worker %u: cannot add the watch event", w->idx);
	}
	sc_worker_watch(w, WATCH_FILES);
	log_debug("worker %u: serving", w->idx);
	event_base_dispatch(w->base);
	log_debug("worker %u: done", w->idx);
	return NULL;
}

/* While draining: stop when no connection is left, or at the deadline. */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sc_worker *w = arg;
	struct timespec now;

	(void)fd; (void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* the only events left of ours are this timer and the admin API's
	 * eventfd: anything more is a connection; an admin write still with the
	 * writer is answered first */
	if (event_base_get_num_events(w->base, EVENT_BASE_COUNT_ADDED) <= 1 + (w->admin ? 1 : 0) &&
	    sc_admin_pending(w) == 0) {
		event_base_loopexit(w->base, NULL);
	} else if (now.tv_sec > w->drain_deadline.tv_sec ||
	           (now.tv_sec == w->drain_deadline.tv_sec && now.tv_nsec >= w->drain_deadline.tv_nsec)) {
		log_info("worker %u: drain time is up, closing open connections", w->idx);
		event_base_loopexit(w->base, NULL);
	}
}

/* Main wrote to our pipe (SIGTERM): stop accepting, answer what is in
 * flight (with Connection: close), then leave the loop. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct sc_worker *w = arg;
	struct timeval tick = { 0, 50000 };
	char buf[16];

	ssize_t n;
	bool drain = false;

	(void)what;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 's')       /* the store's epoch moved: close ours */
				sc_worker_watch(w, 0);
			else
				drain = true;
		}
	if (!drain || w->draining)
		return;
	w->draining = true;
	event_del(w->drain_ev);
	if (w->watch_ev)      /* requests still check the watch's flag */
		event_del(w->watch_ev);
	sc_guard_listeners_gone(w);
	for (unsigned i = 0; i < w->n_bound; i++)
		evhttp_del_accept_socket(w->http, w->bound[i]);
	w->n_bound = 0;
	clock_gettime(CLOCK_MONOTONIC, &w->drain_deadline);
	w->drain_deadline.tv_sec += SIDECAR_DRAIN_S;
	if (!(w->drain_tick = event_new(w->base, -1, EV_PERSIST, on_drain_tick, w)) ||
	    event_add(w->drain_tick, &tick) != 0)
		event_base_loopexit(w->base, NULL);
}

static int bind_tcp(struct sc_worker *w, const struct address *a)
{
	struct evconnlistener *l;
	struct evhttp_bound_socket *b;

	l = evconnlistener_new_bind(w->base, NULL, NULL,
	                            LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC |
	                            LEV_OPT_CLOSE_ON_FREE, SIDECAR_BACKLOG,
	                            (const struct sockaddr *)&a->ss, a->sslen);
	if (!l)
		return log_warn("listen %s", a->text), -1;
	if (!(b = evhttp_bind_listener(w->http, l))) {
		evconnlistener_free(l);
		return log_errx("listen %s: evhttp_bind_listener failed", a->text), -1;
	}
	w->bound[w->n_bound++] = b;
	sc_guard_listener(w, b);
	return 0;
}

static int bind_unix_listener(struct sc_worker *w, struct address *a)
{
	struct evconnlistener *l;
	struct evhttp_bound_socket *b;

	/* backlog -1: listen() was called already */
	l = evconnlistener_new(w->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
	                       a->unix_fd);
	if (!l)
		return log_warn("listen %s", a->text), -1;
	a->unix_fd = -1;   /* transferred */
	if (!(b = evhttp_bind_listener(w->http, l))) {
		evconnlistener_free(l);
		return log_errx("listen %s: evhttp_bind_listener failed", a->text), -1;
	}
	w->bound[w->n_bound++] = b;
	sc_guard_listener(w, b);
	return 0;
}

static int worker_setup(struct daemon *d, struct sc_worker *w, unsigned idx, int pipe_rd)
{
	int r;

	w->idx = idx;
	w->sh = &d->sh;
	w->rt = d->sh.rt;
	w->rt_gen = d->sh.rt_gen;
	/* Each base is used by its own thread only: no libevent locking. */
	if (!(w->base = event_base_new()) || !(w->http = evhttp_new(w->base)))
		return log_errx("worker %u: cannot create the event base", idx), -1;
	if (sc_http_setup(w) != 0)
		return log_errx("worker %u: cannot set up the routes", idx), -1;
	w->watch.fd = -1;
	if (sc_guard_worker_init(w) != 0)
		return log_errx("worker %u: out of memory", idx), -1;
	if ((r = sc_store_open(&d->sh, &w->store, &w->store_epoch)) != 0)
		return log_errx("worker %u: %s", idx, apikey_strerror(r)), -1;
	w->verifier = (struct apikey_verifier){ .store = w->store, .cache = d->sh.cache, .limiter = d->sh.limiter,
	                                        .usage = d->sh.usage, .slow = d->sh.slow };
	sc_fleet_verifier(&d->sh, &w->verifier);
	if (sc_admin_worker_setup(w) != 0)
		return log_errx("worker %u: cannot set up the admin API", idx), -1;
	for (unsigned i = 0; i < d->n_addr; i++) {
		if (!d->addr[i].is_unix)
			r = bind_tcp(w, &d->addr[i]);
		else if (idx == 0)
			r = bind_unix_listener(w, &d->addr[i]);
		else
			r = 0;
		if (r != 0)
			return -1;
	}
	if (!(w->drain_ev = event_new(w->base, pipe_rd, EV_READ | EV_PERSIST, on_drain, w)) ||
	    event_add(w->drain_ev, NULL) != 0)
		return log_errx("worker %u: cannot add the drain event", idx), -1;
	return 0;
}

/* Free in reverse order of creation. */
static void worker_free(struct sc_worker *w)
{
	if (w->watch_ev)
		event_free(w->watch_ev);
	sc_watch_close(&w->watch);
	if (w->drain_tick)
		event_free(w->drain_tick);
	if (w->drain_ev) {
		evutil_socket_t fd = event_get_fd(w->drain_ev);
		event_free(w->drain_ev);
		close(fd);
	}
	sc_admin_worker_free(w);
	apikey_store_free(w->store);
	sc_guard_listeners_gone(w);
	if (w->http)
		evhttp_free(w->http);   /* closes its listeners and connections */
	sc_guard_worker_free(w);
	free(w->route_ctx);
	if (w->base)
		event_base_free(w->base);
}

/* The thread that checks imported keys' bcrypt and argon2id hashes, so no
 * worker spends milliseconds on one (core/slowhash.c): it opens a
 * connection for each check, so it holds none while the store is reopened. */
static void *slow_main(void *arg)
{
	struct sc_shared *sh = arg;
	int r;

	while ((r = apikey_slow_wait(sh->slow, 1000)) != APIKEY_ERR_CONFLICT) {
		struct apikey_store *s = NULL;
		uint64_t epoch;

		if (r != 0)
			continue;
		if (sc_store_open(sh, &s, &epoch) != 0) {
			struct timespec ts = { 0, 50000000 };
			nanosleep(&ts, NULL);      /* reopening: the checks wait */
			continue;
		}
		struct apikey_verifier v = { .store = s, .cache = sh->cache, .limiter = sh->limiter, .usage = sh->usage };
		apikey_slow_run(sh->slow, &v, 0);
		sc_store_close(sh, &s, epoch);
	}
	return NULL;
}

/* ---- main thread: signals, flush, reload ------------------------------------ */

/* Main's connection: closed when the store's epoch moves, reopened (when no
 * older connection is left) at the next flush. */
static void main_store_sync(struct daemon *d, unsigned what)
{
	if (d->store && (what & WATCH_PEPPER))
		sc_store_replaced(&d->sh, d->store, d->store_epoch, "the pepper file changed");
	else if (d->store && (what & WATCH_FILES) &&
	         apikey_store_check_files(d->store) == APIKEY_ERR_REPLACED)
		sc_store_replaced(&d->sh, d->store, d->store_epoch, "the file at its path was replaced");
	if (d->store && d->store_epoch != sc_store_epoch(&d->sh))
		sc_store_close(&d->sh, &d->store, d->store_epoch);
}

static void on_main_watch(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd; (void)what;
	main_store_sync(d, sc_watch_drain(&d->watch));
}

static void on_main_wake(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	main_store_sync(arg, 0);
}

static void flush_usage(struct daemon *d, bool final)
{
	int r = APIKEY_ERR_STORE;   /* set below on every path; gcc -O1 cannot tell */

	__atomic_add_fetch(&d->sh.flushes, 1, __ATOMIC_RELAXED);
	main_store_sync(d, 0);
	/* a replaced store: kept for the next flush, once every thread closed the old file */
	if (!d->store && (r = sc_store_open(&d->sh, &d->store, &d->store_epoch)) == APIKEY_ERR_REPLACED && !final)
		return;
	if (d->store)
		r = apikey_usage_flush(d->sh.usage, d->store);
	/* A store opened read-only stays so in this process (SQLite shares one
	 * -shm mapping per file between its connections): once the file can be
	 * written, every connection is reopened. */
	if (r == APIKEY_ERR_READONLY && d->store && access(d->cfg->core.db_path, W_OK) == 0)
		sc_store_replaced(&d->sh, d->store, d->store_epoch, "it can be written now");
	if (r != 0) {
		__atomic_add_fetch(&d->sh.flush_errors, 1, __ATOMIC_RELAXED);
		if (!d->flush_failing || final)
			log_warnx("usage flush failed (%s)%s", apikey_strerror(r),
			          final ? ": the last usage counts are lost" : ": kept for the next try");
		d->flush_failing = true;
	} else if (d->flush_failing) {
		log_info("usage flush works again");
		d->flush_failing = false;
	}
}

/* After a burst of connections, give the memory they held back to the
 * system: glibc keeps freed heap in each thread's arena otherwise (a
 * 10,000-connection burst left RSS 25 MB higher, BENCHMARKS.md). */
static void trim_after_burst(struct daemon *d)
{
	unsigned peak, open = sc_guard_open_total(d->sh.workers, d->sh.n_workers, &peak);

	if (peak > d->conn_peak)
		d->conn_peak = peak;
	if (d->conn_peak - open >= SIDECAR_TRIM_AFTER && open <= d->conn_peak / 2) {
		log_debug("connections down from %u to %u: returning free memory", d->conn_peak, open);
		malloc_trim(0);
		d->conn_peak = open;
	}
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd; (void)what;
	flush_usage(d, false);
	/* other processes' unsynced commits (PAM logins' usage) made durable
	 * within a second, and the rate-limit table remapped if it was replaced */
	if (d->store && apikey_store_sync_wal(d->store) != 0)
		log_warn("key store: cannot sync its WAL");
	apikey_limiter_refresh(d->sh.limiter);
	trim_after_burst(d);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("%s: stopping (draining for at most %d s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
	         SIDECAR_DRAIN_S);
	for (unsigned i = 0; i < d->sh.n_workers; i++)
		if (write(d->wake[i], "x", 1) < 0)
			log_warn("worker %u: cannot wake it", i);
	event_base_loopbreak(d->base);
}

/* The follower refused to follow (its reason is logged): stop, exit 1. */
static void on_fatal(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	char buf[8];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	d->refused = true;
	on_stop(SIGTERM, 0, d);
}

static void set_runtime(struct sc_shared *sh, const struct sc_settings *c,
                        const struct apikey_answers *answers)
{
	pthread_mutex_lock(&sh->rt_lock);
	sh->rt.answers = *answers;
	snprintf(sh->rt.key_header, sizeof(sh->rt.key_header), "%s", c->key_header);
	snprintf(sh->rt.key_query, sizeof(sh->rt.key_query), "%s", c->key_query);
	snprintf(sh->rt.require_plan, sizeof(sh->rt.require_plan), "%s", c->require_plan);
	sh->rt.auth_error_body = c->auth_error_body;
	sh->rt.ratelimit_draft_headers = c->ratelimit_draft_headers;
	__atomic_add_fetch(&sh->rt_gen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&sh->rt_lock);
}

static void open_access_log(const char *path)
{
	if (sc_access_open(path) != 0)
		log_warn("access_log %s: cannot open it, access log off", path);
}

/* The rules of writes a profile sets (the store's copy is the one in use). */
static bool same_write_rules(const struct apikey_profile *a, const struct apikey_profile *b)
{
	if (a->n_catalogue != b->n_catalogue || a->n_presets != b->n_presets || a->n_tiers != b->n_tiers ||
	    strcmp(a->default_preset, b->default_preset) ||
	    memcmp(a->tiers, b->tiers, a->n_tiers * sizeof(a->tiers[0])))
		return false;
	for (unsigned i = 0; i < a->n_catalogue; i++)
		if (strcmp(a->catalogue[i], b->catalogue[i]))
			return false;
	for (unsigned i = 0; i < a->n_presets; i++)
		if (strcmp(a->presets[i].name, b->presets[i].name) || strcmp(a->presets[i].scopes, b->presets[i].scopes))
			return false;
	return true;
}

/* SIGHUP: reopen the access log, reload apikey.conf, apply what can change
 * at runtime (the error answers among them); listen addresses, threads, db,
 * key format and the profile's write rules need a restart. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct sc_config *nc = malloc(sizeof(*nc));
	const struct apikey_config *core;
	struct sc_settings *c, *run = &d->cfg->set;

	(void)sig; (void)what;
	if (!nc || sc_config_load(&d->opt, nc) != 0) {
		log_warnx("SIGHUP: configuration not reloaded (see above); reopening the access log");
		open_access_log(run->access_log);
		free(nc);
		return;
	}
	core = &nc->core;
	c = &nc->set;
	if (!sc_config_same_listen(c, run) || c->threads != run->threads)
		log_warnx("SIGHUP: listen/threads changed: that needs a restart (kept the running ones)");
	if (c->admin_api != run->admin_api || strcmp(c->admin_cors_origins, run->admin_cors_origins))
		log_warnx("SIGHUP: admin_api/admin_cors_origins changed: that needs a restart (kept the running ones)");
	if (strcmp(core->db_path, d->cfg->core.db_path) || strcmp(core->pepper_path, d->cfg->core.pepper_path) ||
	    memcmp(&core->format, &d->cfg->core.format, sizeof(core->format)) ||
	    core->busy_timeout_ms != d->cfg->core.busy_timeout_ms)
		log_warnx("SIGHUP: db/pepper/key format/busy timeout changed: that needs a restart (kept the running ones)");
	if (!same_write_rules(&core->profile, &d->cfg->core.profile) ||
	    core->default_rate_limit != d->cfg->core.default_rate_limit)
		log_warnx("SIGHUP: scope catalogue/presets/rate-limit tiers/default rate limit changed: "
		          "that needs a restart (kept the running ones)");
	memcpy(run->key_header, c->key_header, sizeof(c->key_header));
	memcpy(run->key_query, c->key_query, sizeof(c->key_query));
	memcpy(run->require_plan, c->require_plan, sizeof(c->require_plan));
	memcpy(run->access_log, c->access_log, sizeof(c->access_log));
	run->auth_error_body = c->auth_error_body;
	run->ratelimit_draft_headers = c->ratelimit_draft_headers;
	d->cfg->core.profile.answers = core->profile.answers;
	set_runtime(&d->sh, run, &d->cfg->core.profile.answers);
	open_access_log(run->access_log);
	log_info("SIGHUP: configuration reloaded (error answers, auth_error_body=%s ratelimit_draft_headers=%s "
	         "key_header=%s key_query=%s require_plan=%s access_log=%s)",
	         c->auth_error_body == SC_BODY_HEADER ? "header" : c->auth_error_body ? "yes" : "no",
	         c->ratelimit_draft_headers ? "yes" : "no",
	         c->key_header[0] ? c->key_header : "-", c->key_query[0] ? c->key_query : "-",
	         c->require_plan[0] ? c->require_plan : "-", c->access_log[0] ? c->access_log : "-");
	free(nc);
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (n > SIDECAR_THREADS_MAX ? SIDECAR_THREADS_MAX : (unsigned)n);
}

static int start(struct daemon *d)
{
	struct timeval every = { SIDECAR_FLUSH_MS / 1000, (SIDECAR_FLUSH_MS % 1000) * 1000 };
	sigset_t all, old;
	unsigned n;
	int r;

	n = d->opt.no_http ? 0 : d->cfg->set.threads ? d->cfg->set.threads : online_cpus();
	if (sc_watch_install() != 0)
		return log_warn("SIGIO handler"), -1;
	if (n && sc_guard_init(n) != 0)     /* --no-http: no connections to guard */
		return -1;
	/* the rate-limit table is the host's file beside the store */
	if ((r = apikey_limiter_open(&d->sh.limiter, d->cfg->core.db_path, sc_core_log, NULL)) != 0 ||
	    (r = apikey_usage_new(&d->sh.usage)) != 0 || (r = apikey_slow_new(&d->sh.slow)) != 0)
		return log_errx("%s", apikey_strerror(r)), -1;
	d->sh.format = d->cfg->core.format;
	pthread_mutex_init(&d->sh.rt_lock, NULL);
	set_runtime(&d->sh, &d->cfg->set, &d->cfg->core.profile.answers);
	d->sh.started_s = (int64_t)time(NULL);
	d->sh.core = &d->cfg->core;
	if (d->cfg->set.access_log[0])
		open_access_log(d->cfg->set.access_log);
	for (unsigned i = 0; i < d->n_addr && !d->opt.no_http; i++)
		if (d->addr[i].is_unix && bind_unix(&d->addr[i]) != 0)
			return -1;
	if (d->cfg->set.admin_api && sc_admin_start(&d->sh, d->cfg) != 0)
		return -1;

	if (!(d->sh.workers = calloc(n, sizeof(*d->sh.workers))) || !(d->wake = calloc(n, sizeof(int))))
		return log_errx("out of memory"), -1;
	for (unsigned i = 0; i < n; i++)
		d->wake[i] = -1;
	d->sh.wake = d->wake;
	for (unsigned i = 0; i < n; i++) {
		int p[2];
		if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
			return log_warn("pipe"), -1;
		d->wake[i] = p[1];
		d->sh.n_workers = i + 1;
		if (worker_setup(d, &d->sh.workers[i], i, p[0]) != 0) {
			if (!d->sh.workers[i].drain_ev)
				close(p[0]);
			return -1;
		}
	}

	if (!(d->base = event_base_new()) ||
	    !(d->ev_fatal = event_new(d->base, d->fatal[0], EV_READ | EV_PERSIST, on_fatal, d)) ||
	    event_add(d->ev_fatal, NULL) ||
	    !(d->ev_term = evsignal_new(d->base, SIGTERM, on_stop, d)) || event_add(d->ev_term, NULL) ||
	    !(d->ev_int = evsignal_new(d->base, SIGINT, on_stop, d)) || event_add(d->ev_int, NULL) ||
	    !(d->ev_hup = evsignal_new(d->base, SIGHUP, on_hup, d)) || event_add(d->ev_hup, NULL) ||
	    !(d->ev_flush = event_new(d->base, -1, EV_PERSIST, on_flush, d)) || event_add(d->ev_flush, &every))
		return log_errx("cannot set up signals and timers"), -1;
	{
		int p[2];
		if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
			return log_warn("pipe"), -1;
		d->wake_rd = p[0];
		d->sh.main_wake = p[1];
		if (!(d->ev_wake = event_new(d->base, p[0], EV_READ | EV_PERSIST, on_main_wake, d)) ||
		    event_add(d->ev_wake, NULL) != 0)
			return log_errx("cannot set up the main wake-up"), -1;
	}
	if (sc_watch_open(&d->watch, &d->cfg->core, false) == 0 &&
	    (!(d->ev_watch = event_new(d->base, d->watch.fd, EV_READ | EV_PERSIST, on_main_watch, d)) ||
	     event_add(d->ev_watch, NULL) != 0))
		return log_errx("cannot set up the store watch"), -1;

	/* Workers never see the signals: main's event loop handles them. */
	sigemptyset(&all);
	sigaddset(&all, SIGTERM);
	sigaddset(&all, SIGINT);
	sigaddset(&all, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < n; i++) {
		if ((r = pthread_create(&d->sh.workers[i].thread, NULL, worker_main, &d->sh.workers[i])) != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			errno = r;
			return log_warn("pthread_create"), -1;
		}
		d->sh.workers[i].started = true;
		thread_name(d->sh.workers[i].thread, "w%u", i);
	}
	if ((r = pthread_create(&d->sh.slow_thread, NULL, slow_main, &d->sh)) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		errno = r;
		return log_warn("pthread_create"), -1;
	}
	d->sh.slow_started = true;
	thread_name(d->sh.slow_thread, "slow");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (unsigned i = 0; i < d->n_addr && !d->opt.no_http; i++)
		log_info("listening on %s%s", d->addr[i].text, d->addr[i].is_unix ? " (worker 0)" : "");
	if (d->opt.no_http)
		log_info("no HTTP: following the upstream into %s, pid %ld", d->cfg->core.db_path, (long)getpid());
	else
		log_info("%u worker thread%s, key store %s, pid %ld%s", n, n == 1 ? "" : "s", d->cfg->core.db_path,
		         (long)getpid(), d->sh.admin ? ", admin API on" : "");
	return 0;
}

/* Stop everything that runs, then free in reverse order of creation. */
static int stop(struct daemon *d)
{
	sigset_t sigs;
	int rc = 0;

	/* From here on TERM/INT/HUP stay pending: freeing the signal events
	 * restores the default actions, and a second SIGTERM must not kill us
	 * before the last usage flush. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	for (unsigned i = 0; i < d->sh.n_workers; i++) {
		if (d->sh.workers[i].started && !d->stopping && write(d->wake[i], "x", 1) < 0)
			log_warn("worker %u: cannot wake it", i);
	}
	for (unsigned i = 0; i < d->sh.n_workers; i++)
		if (d->sh.workers[i].started)
			pthread_join(d->sh.workers[i].thread, NULL);
	sc_admin_stop(&d->sh);   /* after the workers: it finishes what they queued */
	if (d->sh.slow_started) {
		apikey_slow_stop(d->sh.slow);
		pthread_join(d->sh.slow_thread, NULL);
	}
	if (d->sh.usage) {
		flush_usage(d, true);
		rc = d->flush_failing ? 1 : 0;
	}
	if (d->ev_watch)
		event_free(d->ev_watch);
	sc_watch_close(&d->watch);
	if (d->ev_wake)
		event_free(d->ev_wake);
	if (d->sh.main_wake >= 0)
		close(d->sh.main_wake);
	if (d->wake_rd >= 0)
		close(d->wake_rd);
	if (d->ev_flush)
		event_free(d->ev_flush);
	if (d->ev_fatal)
		event_free(d->ev_fatal);
	if (d->ev_hup)
		event_free(d->ev_hup);
	if (d->ev_int)
		event_free(d->ev_int);
	if (d->ev_term)
		event_free(d->ev_term);
	if (d->base)
		event_base_free(d->base);
	for (unsigned i = d->sh.n_workers; i-- > 0;) {
		worker_free(&d->sh.workers[i]);
		if (d->wake[i] >= 0)
			close(d->wake[i]);
	}
	free(d->wake);
	free(d->sh.workers);
	for (unsigned i = 0; i < d->n_addr; i++) {
		if (d->addr[i].unix_fd >= 0)
			close(d->addr[i].unix_fd);
		unlink_unix(&d->addr[i]);
	}
	if (d->sh.rt_gen)
		pthread_mutex_destroy(&d->sh.rt_lock);
	sc_fleet_stop(&d->sh);
	apikey_slow_free(d->sh.slow);
	apikey_usage_free(d->sh.usage);
	apikey_limiter_free(d->sh.limiter);
	apikey_cache_free(d->sh.cache);
	d->sh.cache = NULL;
	sc_guard_cleanup();
	sc_access_close();
	return rc;
}

int main(int argc, char **argv)
{
	struct daemon d;
	int r, rc = 1;

	memset(&d, 0, sizeof(d));
	d.watch.fd = d.wake_rd = d.sh.main_wake = -1;
	pthread_mutex_init(&d.sh.store_lock, NULL);
	if ((r = sc_parse_options(argc, argv, &d.opt)) != 0)
		return r;
	if (d.opt.routes) {
		sc_http_print_routes();
		return 0;
	}
	sc_log_init(d.opt.debug);
	signal(SIGPIPE, SIG_IGN);
	if (!(d.cfg = malloc(sizeof(*d.cfg))))
		return log_errx("out of memory"), 1;
	if (sc_config_load(&d.opt, d.cfg) != 0)
		goto out;
	for (unsigned i = 0; i < d.cfg->set.n_listen; i++, d.n_addr++)
		if (parse_address(d.cfg->set.listen[i], &d.addr[i]) != 0)
			goto out;
	d.sh.core = &d.cfg->core;
	if (d.opt.no_http && !apikey_upstream_set(&d.cfg->set.up)) {
		log_errx("--no-http: only with upstream= (fleet mode), where apikeyd follows the upstream");
		goto out;
	}
	if (d.opt.check && apikey_upstream_set(&d.cfg->set.up)) {
		char why[200];
		struct stat st;
		if (apikey_upstream_check_conninfo(d.cfg->set.up.conninfo, d.cfg->set.up.insecure, why, sizeof(why)) ||
		    (d.cfg->set.up.writer_conninfo[0] &&
		     apikey_upstream_check_conninfo(d.cfg->set.up.writer_conninfo, d.cfg->set.up.insecure, why,
		                                    sizeof(why)))) {
			log_errx("upstream: %s", why);
			goto out;
		}
		if (stat(d.cfg->core.db_path, &st) != 0) {
			printf("configuration OK (fleet mode: the replica %s will be built from the upstream)\n",
			       d.cfg->core.db_path);
			rc = 0;
			goto out;
		}
	}
	if (!d.opt.check) {
		/* before the follower, whose commits tell it what they changed; the
		 * core's default bound, APIKEY_CACHE_ENTRIES_DEFAULT: it bounds RSS */
		if ((r = apikey_cache_new(&d.sh.cache, 0)) != 0) {
			log_errx("%s", apikey_strerror(r));
			goto out;
		}
		/* fleet mode: the follower makes the replica before anyone opens it */
		if (pipe2(d.fatal, O_NONBLOCK | O_CLOEXEC) != 0) {
			log_warn("pipe");
			goto out;
		}
		if (sc_fleet_start(&d.sh, d.cfg, d.opt.no_http, d.fatal[1]) != 0) {
			sc_fleet_stop(&d.sh);
			goto out;
		}
	}
	if ((r = sc_store_open(&d.sh, &d.store, &d.store_epoch)) != 0) {
		log_errx("%s: %s", d.cfg->core.db_path, apikey_strerror(r));
		sc_fleet_stop(&d.sh);
		goto out;
	}
	if (d.opt.check) {
		if (!apikey_store_ready(d.store)) {
			log_errx("%s: %s", d.cfg->core.db_path, apikey_strerror(APIKEY_ERR_STORE));
			goto out;
		}
		printf("configuration OK\n");
		rc = 0;
		goto out;
	}
	if (start(&d) == 0) {
		event_base_dispatch(d.base);
		rc = 0;
	}
	if (stop(&d) != 0)
		rc = 1;
	if (d.refused)
		rc = 1;
	log_info("stopped");
out:
	apikey_store_free(d.store);
	apikey_cache_free(d.sh.cache);   /* when stop() did not run */
	free(d.cfg);
	for (int i = 0; i < 2; i++)
		if (d.fatal[i] > 0)
			close(d.fatal[i]);
	return rc;
}

/* admin_writer.c — the admin API's writer thread.  Admin writes never run
 * on a worker (SPEC §6: the sidecar never writes on its request path): a
 * worker queues the write, the writer runs it on its own store connection
 * (a synced commit, or a busy timeout, stalls only this thread), and hands
 * the finished write back to that worker through the worker's eventfd; the
 * worker answers it on its own event base, the only thread that touches
 * its evhttp objects.  No libevent locking is needed for that
 * (evthread_use_pthreads is not called, as on the request path). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include "admin.h"

struct sc_admin {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sc_admin_job *head, *tail;   /* queued, oldest first */
	unsigned queued;
	bool stop;
	struct sc_shared *sh;
	const struct sc_config *cfg;        /* fleet mode: the upstream its writes go to */
	char cors[APIKEY_SCOPES_SIZE];
};

/* A worker's end. */
struct sc_admin_port {
	pthread_mutex_t lock;
	struct sc_admin_job *done;          /* finished, newest first */
	unsigned pending;                   /* submitted, not answered (worker thread only) */
	int efd;
	struct event *ev;
};

const char *sc_admin_cors_origins(const struct sc_shared *sh)
{
	return sh->admin ? sh->admin->cors : "";
}

void sc_admin_job_free(struct sc_admin_job *j)
{
	if (!j)
		return;
	OPENSSL_cleanse(j->key, sizeof(j->key));
	free(j);
}

/* The writer's connection: kept while writes come (opening one costs more
 * than a write), checked against the files before every job so that no
 * write goes to a replaced store (watch.c), closed after
 * SIDECAR_ADMIN_IDLE_MS without a job, and closed at once when the store
 * is found replaced (sh->admin_wake), like every thread's. */
struct writer_conn { struct apikey_store *s; uint64_t epoch; };

static void conn_close(struct sc_admin *a, struct writer_conn *c)
{
	sc_store_close(a->sh, &c->s, c->epoch);
}

static int conn_get(struct sc_admin *a, struct writer_conn *c)
{
	struct sc_shared *sh = a->sh;
	int r;

	if (c->s && sc_store_epoch(sh) != c->epoch)
		conn_close(a, c);
	if (c->s && apikey_store_check_files(c->s) == APIKEY_ERR_REPLACED) {
		sc_store_replaced(sh, c->s, c->epoch, "replaced (seen by the admin writer)");
		conn_close(a, c);
	}
	if (c->s)
		return 0;
	for (int i = 0; (r = sc_store_open(sh, &c->s, &c->epoch)) == APIKEY_ERR_REPLACED && i < 200; i++) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);            /* every thread closing the old file: ms */
	}
	/* fleet mode: the writes go to the upstream, like apikeyctl's */
	if (r == 0 && (r = sc_fleet_attach(a->cfg, c->s)) != 0)
		conn_close(a, c);
	return r;
}

static void *writer_main(void *arg)
{
	struct sc_admin *a = arg;
	struct writer_conn c = { NULL, 0 };

	for (;;) {
		struct sc_admin_job *j;
		struct sc_admin_port *p;
		uint64_t one = 1;

		pthread_mutex_lock(&a->lock);
		while (!a->head && !a->stop) {
			struct timespec until;
			bool idle;

			if (!c.s) {
				pthread_cond_wait(&a->cond, &a->lock);
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += SIDECAR_ADMIN_IDLE_MS * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			idle = pthread_cond_timedwait(&a->cond, &a->lock, &until) == ETIMEDOUT;
			if (!a->head && (idle || sc_store_epoch(a->sh) != c.epoch)) {
				pthread_mutex_unlock(&a->lock);
				conn_close(a, &c);       /* idle, or an old file: no connection held */
				pthread_mutex_lock(&a->lock);
			}
		}
		if (!a->head) {                  /* stopping, and nothing left */
			pthread_mutex_unlock(&a->lock);
			break;
		}
		j = a->head;
		if (!(a->head = j->next))
			a->tail = NULL;
		a->queued--;
		pthread_mutex_unlock(&a->lock);

		if ((j->r = conn_get(a, &c)) == 0)
			sc_admin_run(c.s, j);
		p = j->w->admin;
		pthread_mutex_lock(&p->lock);
		j->next = p->done;
		p->done = j;
		pthread_mutex_unlock(&p->lock);
		/* an eventfd write fails only when its counter would overflow */
		if (write(p->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("admin writer: cannot wake worker %u", j->w->idx);
	}
	conn_close(a, &c);
	return NULL;
}

/* sh->admin_wake: the store was replaced (watch.c); the writer, woken,
 * closes its connection of the old epoch (a reopen waits for every one). */
static void wake_writer(struct sc_shared *sh)
{
	struct sc_admin *a = sh->admin;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

int sc_admin_submit(struct sc_shared *sh, struct sc_admin_job *job)
{
	struct sc_admin *a = sh->admin;

	pthread_mutex_lock(&a->lock);
	if (a->queued >= SIDECAR_ADMIN_QUEUE_MAX || a->stop) {
		pthread_mutex_unlock(&a->lock);
		return APIKEY_ERR_FULL;
	}
	job->next = NULL;
	if (a->tail)
		a->tail->next = job;
	else
		a->head = job;
	a->tail = job;
	a->queued++;
	job->w->admin->pending++;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* The worker's eventfd: answer what the writer finished, oldest first. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct sc_worker *w = arg;
	struct sc_admin_port *p = w->admin;
	struct sc_admin_job *list, *rev = NULL;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("worker %u: admin eventfd", w->idx);
	pthread_mutex_lock(&p->lock);
	list = p->done;
	p->done = NULL;
	pthread_mutex_unlock(&p->lock);
	while (list) {                       /* newest first → oldest first */
		struct sc_admin_job *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct sc_admin_job *next = rev->next;
		p->pending--;
		sc_admin_answer(rev);            /* frees it */
		rev = next;
	}
}

int sc_admin_start(struct sc_shared *sh, const struct sc_config *cfg)
{
	struct sc_admin *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return log_errx("out of memory"), -1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	snprintf(a->cors, sizeof(a->cors), "%s", cfg->set.admin_cors_origins);
	sh->admin = a;
	a->sh = sh;
	a->cfg = cfg;
	if ((r = pthread_create(&a->thread, NULL, writer_main, a)) != 0) {
		errno = r;
		return log_warn("admin writer: pthread_create"), -1;
	}
	a->started = true;
	pthread_setname_np(a->thread, "apikeyd-admin");
	sh->admin_wake = wake_writer;
	return 0;
}

void sc_admin_stop(struct sc_shared *sh)
{
	struct sc_admin *a = sh->admin;

	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->lock);
		a->stop = true;
		pthread_cond_signal(&a->cond);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
	sh->admin = NULL;
	sh->admin_wake = NULL;
}

int sc_admin_worker_setup(struct sc_worker *w)
{
	struct sc_admin_port *p;

	if (!w->sh->admin)
		return 0;
	if (!(p = calloc(1, sizeof(*p))))
		return -1;
	pthread_mutex_init(&p->lock, NULL);
	p->efd = -1;
	w->admin = p;
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return log_warn("worker %u: eventfd", w->idx), -1;
	if (!(p->ev = event_new(w->base, p->efd, EV_READ | EV_PERSIST, on_done, w)) ||
	    event_add(p->ev, NULL) != 0)
		return log_errx("worker %u: cannot add the admin event", w->idx), -1;
	return 0;
}

/* After the writer has stopped: writes finished but never answered (the
 * worker left its loop at the drain deadline) are freed without touching
 * their requests, which evhttp_free frees with their connections. */
void sc_admin_worker_free(struct sc_worker *w)
{
	struct sc_admin_port *p = w->admin;

	if (!p)
		return;
	while (p->done) {
		struct sc_admin_job *next = p->done->next;
		sc_admin_job_free(p->done);
		p->done = next;
	}
	if (p->ev)
		event_free(p->ev);
	if (p->efd >= 0)
		close(p->efd);
	pthread_mutex_destroy(&p->lock);
	free(p);
	w->admin = NULL;
}

unsigned sc_admin_pending(const struct sc_worker *w)
{
	return w->admin ? w->admin->pending : 0;
}

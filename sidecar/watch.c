/* watch.c — a key store replaced, restored or re-created under apikeyd is
 * noticed before the next answer (SPEC §6), and every connection of the
 * process is reopened on the new file.
 *
 * Noticing.  Each worker thread has an inotify instance on the store's
 * directory (and the pepper's, and the db file itself for writes in place)
 * whose events signal *that thread* (O_ASYNC with F_SETOWN_EX F_OWNER_TID).
 * The kernel queues the event and makes SIGIO pending on the thread inside
 * the rename, unlink, create or write that caused it, before that call
 * returns; a thread runs the handler of a pending signal before it returns
 * to user code from any system call.  A request sent after the replacement
 * reaches the worker through a read (a system call) that returns after it,
 * so the handler has set the thread's flag before the request is looked at.
 * The request path reads one thread-local flag; only when it is set does the
 * worker read the events and compare the files (apikey_store_check_files).
 * Without a watcher (inotify refused) a worker checks the paths on every
 * request instead (three stat calls).
 *
 * Reopening.  Two connections of one process on two different db files that
 * share a -shm name must never be open at once: SQLite keeps one -shm mapping
 * per db inode, and closing either would drop POSIX locks the other holds on
 * the same -shm file.  So a replacement bumps a process-wide epoch; every
 * thread (the workers and main's flush connection) closes its connection of
 * an older epoch at once (woken through its pipe), answering UNAVAILABLE
 * meanwhile, and new connections are opened only when no older one is left. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "sidecar.h"

/* Set by SIGIO on the thread whose inotify instance has events. */
static __thread volatile sig_atomic_t watch_fired;

static void on_sigio(int sig)
{
	(void)sig;
	watch_fired = 1;
}

int sc_watch_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigio;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGIO, &sa, NULL);
}

/* Split path into its directory (resolved when it exists) and base name. */
static int split(const char *path, char dir[PATH_MAX], char base[NAME_MAX + 1])
{
	char tmp[APIKEY_PATH_SIZE];

	snprintf(tmp, sizeof(tmp), "%s", path);
	if ((size_t)snprintf(base, NAME_MAX + 1, "%s", basename(tmp)) > NAME_MAX)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s", path);
	if (!realpath(dirname(tmp), dir))
		return -1;
	return 0;
}

#define DIR_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | \
                    IN_MOVE_SELF | IN_ONLYDIR)
#define FILE_EVENTS (IN_MODIFY | IN_ATTRIB)

/* (Re)watch the db file itself: its inode changes with each replacement. */
static void watch_db_inode(struct sc_watch *wa)
{
	char path[PATH_MAX + NAME_MAX + 2];

	snprintf(path, sizeof(path), "%s/%s", wa->db_dir, wa->db_base);
	wa->wd_file = inotify_add_watch(wa->fd, path, FILE_EVENTS);
}

int sc_watch_open(struct sc_watch *wa, const struct apikey_config *c, bool signal_me)
{
	char ppath[APIKEY_PATH_SIZE];

	memset(wa, 0, sizeof(*wa));
	wa->fd = wa->wd_dir = wa->wd_pepper_dir = wa->wd_file = -1;
	if (split(c->db_path, wa->db_dir, wa->db_base) != 0 ||
	    apikey_config_pepper_path(c, ppath, sizeof(ppath)) != 0 ||
	    split(ppath, wa->pepper_dir, wa->pepper_base) != 0)
		goto fail;
	snprintf(wa->rl_base, sizeof(wa->rl_base), "%.*s.rl", NAME_MAX - 3, wa->db_base);
	if ((wa->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
	    (wa->wd_dir = inotify_add_watch(wa->fd, wa->db_dir, DIR_EVENTS)) < 0)
		goto fail;
	if (strcmp(wa->pepper_dir, wa->db_dir) != 0 &&
	    (wa->wd_pepper_dir = inotify_add_watch(wa->fd, wa->pepper_dir, DIR_EVENTS)) < 0)
		goto fail;
	watch_db_inode(wa);
	if (signal_me) {
		struct f_owner_ex owner = { F_OWNER_TID, (pid_t)syscall(SYS_gettid) };
		int fl = fcntl(wa->fd, F_GETFL);

		if (fcntl(wa->fd, F_SETOWN_EX, &owner) != 0 || fl < 0 ||
		    fcntl(wa->fd, F_SETFL, fl | O_ASYNC) != 0)
			goto fail;
	}
	return 0;
fail:
	sc_watch_close(wa);
	return -1;
}

void sc_watch_close(struct sc_watch *wa)
{
	if (wa->fd >= 0)
		close(wa->fd);
	wa->fd = -1;
}

bool sc_watch_fired(void)
{
	return watch_fired != 0;
}

static bool is_store_name(const struct sc_watch *wa, const char *name)
{
	size_t n = strlen(wa->db_base);

	return !strncmp(name, wa->db_base, n) &&
	       (!name[n] || !strcmp(name + n, "-wal") || !strcmp(name + n, "-shm"));
}

/* Read every queued event: what they ask for (WATCH_* bits). */
unsigned sc_watch_drain(struct sc_watch *wa)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	unsigned what = 0;
	ssize_t n;

	watch_fired = 0;     /* first: an event after the read below signals again */
	if (wa->fd < 0)
		return 0;
	while ((n = read(wa->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			p += sizeof(*e) + e->len;
			if (e->mask & IN_Q_OVERFLOW) {
				what |= WATCH_FILES | WATCH_PEPPER | WATCH_LIMITER;
			} else if (e->wd == wa->wd_file) {
				if (e->mask & IN_IGNORED)
					wa->wd_file = -1;      /* that inode is gone */
				else
					what |= WATCH_FILES;
			} else if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
				what |= WATCH_FILES | WATCH_PEPPER;   /* a directory itself */
			} else if (e->len) {
				if (e->wd == wa->wd_dir && is_store_name(wa, e->name))
					what |= WATCH_FILES;
				if (e->wd == wa->wd_dir && !strcmp(e->name, wa->rl_base))
					what |= WATCH_LIMITER;
				if ((e->wd == wa->wd_pepper_dir || (wa->wd_pepper_dir < 0 && e->wd == wa->wd_dir)) &&
				    !strcmp(e->name, wa->pepper_base))
					what |= WATCH_PEPPER;
			}
		}
	}
	if (wa->wd_file < 0 && (what & WATCH_FILES))
		watch_db_inode(wa);
	return what;
}

/* ---- one connection per thread, reopened together --------------------------- */

/* While the store cannot be reopened every thread retries: the core's log
 * lines of a failed open reach stderr once, until an open succeeds or the
 * reason changes.  (Every connection keeps this sink; once reopened it passes
 * everything on.) */
static pthread_mutex_t reopen_log_lock = PTHREAD_MUTEX_INITIALIZER;

static void reopen_log(void *ctx, int priority, const char *msg)
{
	struct sc_shared *sh = ctx;
	bool repeat = false;

	if (__atomic_load_n(&sh->store_reopening, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&reopen_log_lock);
		repeat = !strncmp(sh->reopen_last, msg, sizeof(sh->reopen_last) - 1);
		snprintf(sh->reopen_last, sizeof(sh->reopen_last), "%s", msg);
		pthread_mutex_unlock(&reopen_log_lock);
	}
	if (!repeat)
		sc_core_log(NULL, priority, msg);
}

/* A db replaced while its old -wal or -shm stayed beside it: opening it
 * would replay the old file's WAL into the new one (for every process). */
static bool old_wal_beside_new_db(struct sc_shared *sh)
{
	struct apikey_file_id now[3];

	if (!sh->store_reopening || !sh->old_ids_known || apikey_file_ids_now(sh->core->db_path, now) != 0)
		return false;
	if (!now[0].exists || apikey_file_same(&now[0], &sh->old_ids[0]))
		return false;
	return apikey_file_same(&now[1], &sh->old_ids[1]) || apikey_file_same(&now[2], &sh->old_ids[2]);
}

int sc_store_open(struct sc_shared *sh, struct apikey_store **s, uint64_t *epoch)
{
	char msg[APIKEY_PATH_SIZE + 200];
	int r;

	pthread_mutex_lock(&sh->store_lock);
	if (sh->store_stale) {
		/* a thread still has the old file open */
		pthread_mutex_unlock(&sh->store_lock);
		return APIKEY_ERR_REPLACED;
	}
	if (old_wal_beside_new_db(sh)) {
		snprintf(msg, sizeof(msg), "%s was replaced but its -wal/-shm belong to the old file: remove them "
		         "(SQLite would replay the old WAL into the new file); sqlite3 .restore replaces a live "
		         "store safely", sh->core->db_path);
		reopen_log(sh, LOG_ERR, msg);
		pthread_mutex_unlock(&sh->store_lock);
		return APIKEY_ERR_STORE;
	}
	r = apikey_store_open(s, sh->core, reopen_log, sh);
	/* the files as they are now: what a later replacement is compared with
	 * (and a last look at one that came before the watch could see it) */
	if (r == 0 && apikey_store_check_files(*s) == APIKEY_ERR_REPLACED) {
		apikey_store_free(*s);    /* replaced while it opened: once more */
		*s = NULL;
		r = APIKEY_ERR_REPLACED;
	}
	if (r == 0) {
		*epoch = sh->store_epoch;
		sh->store_open++;
		if (sh->store_reopening) {
			__atomic_store_n(&sh->store_reopening, 0, __ATOMIC_RELEASE);
			pthread_mutex_lock(&reopen_log_lock);
			sh->reopen_last[0] = '\0';
			pthread_mutex_unlock(&reopen_log_lock);
			log_info("key store %s reopened", sh->core->db_path);
		}
	}
	pthread_mutex_unlock(&sh->store_lock);
	return r;
}

void sc_store_close(struct sc_shared *sh, struct apikey_store **s, uint64_t epoch)
{
	if (!*s)
		return;
	pthread_mutex_lock(&sh->store_lock);
	apikey_store_free(*s);
	*s = NULL;
	if (epoch == sh->store_epoch)
		sh->store_open--;
	else
		sh->store_stale--;
	pthread_mutex_unlock(&sh->store_lock);
}

/* The connection of epoch found the store replaced: a new epoch, one log
 * line, the caches emptied, and every thread told to close its connection. */
void sc_store_replaced(struct sc_shared *sh, struct apikey_store *s, uint64_t epoch, const char *why)
{
	bool first = false;

	pthread_mutex_lock(&sh->store_lock);
	if (epoch == sh->store_epoch) {
		sh->old_ids_known = apikey_store_file_ids(s, sh->old_ids);
		sh->store_stale += sh->store_open;
		sh->store_open = 0;
		__atomic_store_n(&sh->store_epoch, epoch + 1, __ATOMIC_RELEASE);
		__atomic_store_n(&sh->store_reopening, 1, __ATOMIC_RELEASE);
		first = true;
	}
	pthread_mutex_unlock(&sh->store_lock);
	if (!first)
		return;
	log_warnx("key store %s: %s: answering 503 until every connection is reopened",
	          sh->core->db_path, why);
	apikey_cache_clear(sh->cache);
	apikey_usage_forget_rehash(sh->usage);
	for (unsigned i = 0; i < sh->n_workers; i++)
		if (sh->wake[i] >= 0 && write(sh->wake[i], "s", 1) < 0)
			log_warn("worker %u: cannot wake it", i);
	if (sh->main_wake >= 0 && write(sh->main_wake, "s", 1) < 0)
		log_warn("main thread: cannot wake it");
	if (sh->admin_wake)
		sh->admin_wake(sh);      /* the admin writer lets go of its connection */
}

uint64_t sc_store_epoch(const struct sc_shared *sh)
{
	return __atomic_load_n(&sh->store_epoch, __ATOMIC_ACQUIRE);
}

/* ---- a worker's view ------------------------------------------------------- */

#define REOPEN_BACKOFF_NS  200000000LL   /* a store that cannot be opened: retry after */
#define REOPEN_WAIT_NS       5000000LL   /* other threads still closing theirs */

void sc_worker_watch(struct sc_worker *w, unsigned what)
{
	if (what)
		w->retry_open = true;        /* a store that failed to open may be back */
	if (what & WATCH_LIMITER)
		apikey_limiter_refresh(w->sh->limiter);
	if (w->store && (what & WATCH_PEPPER))
		sc_store_replaced(w->sh, w->store, w->store_epoch, "the pepper file changed");
	else if (w->store && (what & WATCH_FILES) &&
	         apikey_store_check_files(w->store) == APIKEY_ERR_REPLACED)
		sc_store_replaced(w->sh, w->store, w->store_epoch, "the file at its path was replaced");
	if (w->store && w->store_epoch != sc_store_epoch(w->sh))
		sc_store_close(w->sh, &w->store, w->store_epoch);
	w->verifier.store = w->store;
}

struct apikey_store *sc_worker_store(struct sc_worker *w)
{
	int64_t now;
	int r;

	if (sc_watch_fired())
		sc_worker_watch(w, sc_watch_drain(&w->watch));
	else if (w->store && w->watch.fd < 0 && apikey_store_check_paths(w->store) == APIKEY_ERR_REPLACED)
		sc_worker_watch(w, WATCH_FILES);
	else if (w->store && w->store_epoch != sc_store_epoch(w->sh))
		sc_worker_watch(w, 0);
	if (w->store)
		return w->store;
	now = sc_now_ns();
	if (!w->retry_open && now < w->next_open_ns)
		return NULL;
	w->retry_open = false;
	r = sc_store_open(w->sh, &w->store, &w->store_epoch);
	w->next_open_ns = now + (r == APIKEY_ERR_REPLACED ? REOPEN_WAIT_NS : REOPEN_BACKOFF_NS);
	w->verifier.store = w->store;
	return w->store;
}

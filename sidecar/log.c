/* log.c — one line per event on stderr (no daemonizing: systemd and
 * containers collect stderr), and the optional access log. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include "sidecar.h"

static bool log_debug_on;
/* The access log is written to one stable descriptor; reopening dup2()s the
 * new file onto it, so a worker never writes to a closed or reused fd. */
static int access_fd = -1;
static int access_on;                /* atomic */
static pthread_mutex_t access_lock = PTHREAD_MUTEX_INITIALIZER;

void sc_log_init(bool debug)
{
	log_debug_on = debug;
}

/* One write(2) per line, so lines from several threads never interleave. */
static size_t grow(size_t n, int m, size_t cap)
{
	if (m < 0)
		return n;
	return n + (size_t)m < cap ? n + (size_t)m : cap - 1;
}

static void vlog(const char *level, const char *fmt, va_list ap, int err)
	__attribute__((format(printf, 2, 0)));
static void vlog(const char *level, const char *fmt, va_list ap, int err)
{
	char line[SIDECAR_LOG_LINE];
	size_t cap = sizeof(line) - 1, n;   /* room for the newline */

	n = grow(0, snprintf(line, cap, "apikeyd: %s: ", level), cap);
	n = grow(n, vsnprintf(line + n, cap - n, fmt, ap), cap);
	if (err)
		n = grow(n, snprintf(line + n, cap - n, ": %s", strerror(err)), cap);
	/* no control characters from a message reach the terminal */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

#define LOGFN(name, level, cond, err)                 \
	void name(const char *fmt, ...)               \
	{                                             \
		va_list ap;                           \
		int e = errno;                        \
		if (!(cond))                          \
			return;                       \
		va_start(ap, fmt);                    \
		vlog(level, fmt, ap, err);            \
		va_end(ap);                           \
		errno = e;                            \
	}
LOGFN(log_debug, "debug", log_debug_on, 0)
LOGFN(log_info, "info", 1, 0)
LOGFN(log_warnx, "warning", 1, 0)
LOGFN(log_warn, "warning", 1, e)
LOGFN(log_errx, "error", 1, 0)

/* At most LOG_BURST lines a second from a source that may repeat itself on
 * every request (the core's store errors, libevent's warnings); the rest
 * are counted and reported once the next second begins. */
#define LOG_BURST 10
struct burst {
	int64_t second;
	unsigned count, suppressed;
	const char *what;
};
static struct burst core_burst = { .what = "key store" }, event_burst = { .what = "libevent" };

static bool burst_allow(struct burst *b)
{
	int64_t now = (int64_t)time(NULL);
	int64_t was = __atomic_load_n(&b->second, __ATOMIC_RELAXED);

	if (now != was && __atomic_compare_exchange_n(&b->second, &was, now, false, __ATOMIC_RELAXED,
	                                              __ATOMIC_RELAXED)) {
		unsigned n = __atomic_exchange_n(&b->suppressed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
		if (n)
			log_warnx("%u more %s messages suppressed", n, b->what);
	}
	if (__atomic_add_fetch(&b->count, 1, __ATOMIC_RELAXED) > LOG_BURST) {
		__atomic_add_fetch(&b->suppressed, 1, __ATOMIC_RELAXED);
		return false;
	}
	return true;
}

void sc_core_log(void *ctx, int priority, const char *msg)
{
	(void)ctx;
	if (priority <= LOG_WARNING && !burst_allow(&core_burst))
		return;
	if (priority >= LOG_DEBUG)
		log_debug("%s", msg);
	else if (priority >= LOG_INFO)
		log_info("%s", msg);
	else if (priority >= LOG_WARNING)
		log_warnx("%s", msg);
	else
		log_errx("%s", msg);
}

/* libevent's own messages (event_set_log_callback): its warnings can come
 * once per accept() or per connection, so they share the burst limit. */
void sc_libevent_log(int severity, const char *msg)
{
	if (severity == EVENT_LOG_DEBUG) {
		log_debug("libevent: %s", msg);
		return;
	}
	if (!burst_allow(&event_burst))
		return;
	if (severity == EVENT_LOG_MSG)
		log_info("libevent: %s", msg);
	else if (severity == EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_errx("libevent: %s", msg);
}

int sc_access_open(const char *path)
{
	int fd, r = -1;

	pthread_mutex_lock(&access_lock);
	if (!path || !path[0]) {
		__atomic_store_n(&access_on, 0, __ATOMIC_RELEASE);
		r = 0;
		goto out;
	}
	if (!strcmp(path, "-"))
		fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	else
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		goto out;
	if (access_fd < 0) {
		access_fd = fd;
	} else {
		if (dup3(fd, access_fd, O_CLOEXEC) < 0) {
			int e = errno;
			close(fd);
			errno = e;
			goto out;
		}
		close(fd);
	}
	__atomic_store_n(&access_on, 1, __ATOMIC_RELEASE);
	r = 0;
out:
	pthread_mutex_unlock(&access_lock);
	return r;
}

void sc_access_close(void)
{
	pthread_mutex_lock(&access_lock);
	__atomic_store_n(&access_on, 0, __ATOMIC_RELEASE);
	if (access_fd >= 0)
		close(access_fd);
	access_fd = -1;
	pthread_mutex_unlock(&access_lock);
}

bool sc_access_enabled(void)
{
	return __atomic_load_n(&access_on, __ATOMIC_ACQUIRE) != 0;
}

void sc_access_write(const char *line, size_t len)
{
	if (sc_access_enabled() && write(access_fd, line, len) < 0)
		return;
}

void sc_access_path(const struct apikey_format *f, const char *path, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz < 8) {
		if (outsz)
			out[0] = '\0';
		return;
	}
	if (!path || !path[0]) {
		snprintf(out, outsz, "-");
		return;
	}
	while (*path) {
		char seg[1 + APIKEY_LOG_TEXT_SIZE];
		size_t slash = *path == '/', n = strcspn(path + slash, "/"), k;

		seg[0] = '/';
		apikey_log_text(f, path + slash, n, "path segment", seg + slash, sizeof(seg) - slash);
		k = strlen(seg);
		if (o + k + 4 > outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, seg, k);
		o += k;
		path += slash + n;
	}
	out[o] = '\0';
}

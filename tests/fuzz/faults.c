/* faults.c — the failing C library of the fault-injecting fuzz target
 * (faults.h).  Three routes lead here:
 *  - calls from the module's and the core's objects, through -Wl,--wrap
 *    (see tests/fuzz/fuzz.mk): malloc, calloc, realloc, strdup, open, fopen,
 *    read, write, fsync, stat, fstat;
 *  - SQLite, a shared library that --wrap cannot reach: its allocator
 *    (SQLITE_CONFIG_MALLOC) and its unix VFS system calls (xSetSystemCall,
 *    the hook SQLite's own I/O-error tests use);
 *  - OpenSSL, also shared: CRYPTO_set_mem_functions.
 * A file opened with fopen is handed out as a stdio stream over the real one
 * that reads at most FAULT_STDIO_CHUNK bytes per call, so a read failure can
 * fall in the middle of a file (as it can on a network file system), and
 * stdio reports it the way it reports a real one (ferror). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include <openssl/crypto.h>
#include "faults.h"

#define FAULT_STDIO_CHUNK 24

static struct fault_plan plan;
static struct fault_stats stats;
static bool armed;

static const char *const class_names[F_CLASSES] = { "alloc", "open", "read", "write", "pam", "any" };

const char *fault_class_name(enum fault_class c)
{
	return c < F_CLASSES ? class_names[c] : "?";
}

void faults_arm(const struct fault_plan *p)
{
	plan = *p;
	memset(&stats, 0, sizeof(stats));
	armed = true;
}

void faults_disarm(struct fault_stats *out)
{
	armed = false;
	if (out)
		*out = stats;
}

bool fault_hit(enum fault_class c)
{
	unsigned n, all;

	if (!armed)
		return false;
	n = stats.calls[c]++;
	all = stats.calls[F_ANY]++;
	for (unsigned i = 0; i < plan.n; i++) {
		const struct fault_entry *e = &plan.e[i];
		unsigned k = e->cls == F_ANY ? all : n;

		if ((e->cls == c || e->cls == F_ANY) && (k == e->n || (e->sticky && k > e->n))) {
			stats.injected++;
			return true;
		}
	}
	return false;
}

/* ---- the C library, through -Wl,--wrap -------------------------------- */
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
int __wrap_open(const char *path, int flags, ...);
FILE *__wrap_fopen(const char *path, const char *mode);
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
int __wrap_fsync(int fd);
int __wrap_stat(const char *path, struct stat *st);
int __wrap_fstat(int fd, struct stat *st);

void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
int __real_open(const char *path, int flags, ...);
FILE *__real_fopen(const char *path, const char *mode);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_write(int fd, const void *buf, size_t n);
int __real_fsync(int fd);
int __real_stat(const char *path, struct stat *st);
int __real_fstat(int fd, struct stat *st);

#define FAIL_IF(cls, err, ret)                  \
	do {                                    \
		if (fault_hit(cls)) {           \
			errno = (err);          \
			return ret;             \
		}                               \
	} while (0)

void *__wrap_malloc(size_t n)
{
	FAIL_IF(F_ALLOC, ENOMEM, NULL);
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	FAIL_IF(F_ALLOC, ENOMEM, NULL);
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	FAIL_IF(F_ALLOC, ENOMEM, NULL);
	return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	FAIL_IF(F_ALLOC, ENOMEM, NULL);
	return __real_strdup(s);
}

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	FAIL_IF(F_OPEN, EMFILE, -1);
	return __real_open(path, flags, mode);
}

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	FAIL_IF(F_READ, EIO, -1);
	return __real_read(fd, buf, n);
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	FAIL_IF(F_WRITE, EIO, -1);
	return __real_write(fd, buf, n);
}

int __wrap_fsync(int fd)
{
	FAIL_IF(F_WRITE, EIO, -1);
	return __real_fsync(fd);
}

int __wrap_stat(const char *path, struct stat *st)
{
	FAIL_IF(F_OPEN, EACCES, -1);
	return __real_stat(path, st);
}

int __wrap_fstat(int fd, struct stat *st)
{
	FAIL_IF(F_OPEN, EIO, -1);
	return __real_fstat(fd, st);
}

/* stdio over the real stream, FAULT_STDIO_CHUNK bytes per read. */
static ssize_t chunk_read(void *cookie, char *buf, size_t n)
{
	FILE *real = cookie;

	FAIL_IF(F_READ, EIO, -1);
	return (ssize_t)fread(buf, 1, n < FAULT_STDIO_CHUNK ? n : FAULT_STDIO_CHUNK, real);
}

static int chunk_close(void *cookie)
{
	return fclose(cookie);
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
	static const cookie_io_functions_t io = { .read = chunk_read, .close = chunk_close };
	FILE *real, *f;

	if (!armed)
		return __real_fopen(path, mode);
	FAIL_IF(F_OPEN, EMFILE, NULL);
	if (!(real = __real_fopen(path, mode)))
		return NULL;
	if (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'))
		return real;    /* only reading goes through the chunked stream */
	if (!(f = fopencookie(real, "r", io)))
		fclose(real);
	return f;
}

/* ---- SQLite: its allocator and its unix VFS system calls ---------------- */
/* Each block carries its size in front (xSize), 16 bytes to keep alignment. */
#define SQ_HEAD 16

static void *sq_malloc(int n)
{
	char *p;

	if (n < 0 || fault_hit(F_ALLOC))
		return NULL;
	if (!(p = __real_malloc((size_t)n + SQ_HEAD)))
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + SQ_HEAD;
}

static void sq_free(void *p)
{
	if (p)
		free((char *)p - SQ_HEAD);
}

static void *sq_realloc(void *p, int n)
{
	char *q;

	if (!p)
		return sq_malloc(n);
	if (n < 0 || fault_hit(F_ALLOC))
		return NULL;
	if (!(q = __real_realloc((char *)p - SQ_HEAD, (size_t)n + SQ_HEAD)))
		return NULL;
	memcpy(q, &n, sizeof(n));
	return q + SQ_HEAD;
}

static int sq_size(void *p)
{
	int n = 0;

	if (p)
		memcpy(&n, (char *)p - SQ_HEAD, sizeof(n));
	return n;
}

static int sq_roundup(int n)
{
	return (n + 7) & ~7;
}

static int sq_init(void *x)
{
	(void)x;
	return SQLITE_OK;
}

static void sq_shutdown(void *x)
{
	(void)x;
}

typedef int (*open_fn)(const char *, int, int);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
static open_fn sq_real_open;
static read_fn sq_real_read;
static pread_fn sq_real_pread, sq_real_pread64;
static write_fn sq_real_write;
static pwrite_fn sq_real_pwrite, sq_real_pwrite64;

static int sq_open(const char *path, int flags, int mode)
{
	FAIL_IF(F_OPEN, EMFILE, -1);
	return sq_real_open(path, flags, mode);
}

static ssize_t sq_read(int fd, void *buf, size_t n)
{
	FAIL_IF(F_READ, EIO, -1);
	return sq_real_read(fd, buf, n);
}

static ssize_t sq_pread(int fd, void *buf, size_t n, off_t off)
{
	FAIL_IF(F_READ, EIO, -1);
	return sq_real_pread(fd, buf, n, off);
}

static ssize_t sq_pread64(int fd, void *buf, size_t n, off_t off)
{
	FAIL_IF(F_READ, EIO, -1);
	return sq_real_pread64(fd, buf, n, off);
}

static ssize_t sq_write(int fd, const void *buf, size_t n)
{
	FAIL_IF(F_WRITE, EIO, -1);
	return sq_real_write(fd, buf, n);
}

static ssize_t sq_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	FAIL_IF(F_WRITE, EIO, -1);
	return sq_real_pwrite(fd, buf, n, off);
}

static ssize_t sq_pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	FAIL_IF(F_WRITE, EIO, -1);
	return sq_real_pwrite64(fd, buf, n, off);
}

/* Replace one of SQLite's system calls, keeping the real one in *real. */
static void sq_hook(sqlite3_vfs *vfs, const char *name, void **real, void *mine)
{
	sqlite3_syscall_ptr p = vfs->xGetSystemCall ? vfs->xGetSystemCall(vfs, name) : NULL;

	if (!p)
		return;    /* not used by this build of SQLite */
	*real = (void *)p;
	vfs->xSetSystemCall(vfs, name, (sqlite3_syscall_ptr)mine);
}

/* ---- OpenSSL ------------------------------------------------------------ */
static void *ossl_malloc(size_t n, const char *file, int line)
{
	(void)file; (void)line;
	return __wrap_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file; (void)line;
	return __wrap_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
	(void)file; (void)line;
	free(p);
}

int faults_install(void)
{
	static const sqlite3_mem_methods mem = {
		sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init, sq_shutdown, NULL
	};
	sqlite3_vfs *vfs;
	int r = 0;

	if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free))
		r = -1;
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK || sqlite3_initialize() != SQLITE_OK)
		return -1;
	if (!(vfs = sqlite3_vfs_find(NULL)))
		return -1;
	sq_hook(vfs, "open", (void **)&sq_real_open, (void *)sq_open);
	sq_hook(vfs, "read", (void **)&sq_real_read, (void *)sq_read);
	sq_hook(vfs, "pread", (void **)&sq_real_pread, (void *)sq_pread);
	sq_hook(vfs, "pread64", (void **)&sq_real_pread64, (void *)sq_pread64);
	sq_hook(vfs, "write", (void **)&sq_real_write, (void *)sq_write);
	sq_hook(vfs, "pwrite", (void **)&sq_real_pwrite, (void *)sq_pwrite);
	sq_hook(vfs, "pwrite64", (void **)&sq_real_pwrite64, (void *)sq_pwrite64);
	return r;
}

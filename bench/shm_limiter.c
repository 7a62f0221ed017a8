/* shm_limiter.c — the prototype of core/ratelimit.c's table (which the
 * product now uses, measured here beside it): a host-wide rate
 * limiter in a shared-memory table in a file beside the store, so apikeyd's
 * processes, the PAM module and the CLI share one limit per key (issue 11,
 * docs/design/fleet.md "Rate limits on one host").  It measures what one
 * check costs next to today's two limiters, and what two processes hammering
 * the table cost each other, and checks that they share one limit.
 *
 * The table: a 128-byte header, then buckets of 8 slots of one 64-bit word
 * each (one cache line per bucket), open addressing by a hash of the key id.
 * A slot is tag (20 bits, never 0) | TAT (44 bits: µs of CLOCK_REALTIME
 * modulo 2^44, ~203 days); 0 is an empty slot.  A check is one
 * compare-and-swap of that word, so a process that dies anywhere leaves the
 * old or the new value and no lock behind.  GCRA itself is the core's
 * apikey_gcra().
 *
 * Reading a slot: the clock is read after the bucket is loaded, so a TAT
 * written by any process is at most now + one window (GCRA never puts it
 * further).  A TAT at or before now carries no information (the key is at
 * full burst), so such a slot is free to take.  A TAT further ahead than a
 * window can only come from a clock stepped back, a slot idle for more than
 * ~100 days (the modulus wraps) or a bad write: it is clamped to now + one
 * window (an empty bucket) — never read as a full one.  When all 8 slots of
 * a bucket hold keys in use, the one with the smallest TAT is evicted
 * (counted: that key gets a full burst back).
 *
 *   shm-limiter DIR [ITERATIONS]
 *
 * Nothing here is a test: it prints numbers (and "shared limit: ok|BROKEN"). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "apikey.h"

#define RL_MAGIC "APIKRL01"
#define RL_VERSION 1
#define RL_SLOTS 8                      /* per bucket: 8 words = one cache line */
#define RL_TAT_BITS 44
#define RL_TAT_MASK ((UINT64_C(1) << RL_TAT_BITS) - 1)
#define RL_CAS_MAX 64                   /* then fail closed */
#define MINUTE_US 60000000LL

struct rl_header {
	char magic[8];
	uint32_t version, header_size, nbuckets, bucket_slots;
	uint64_t file_size, salt;
	uint32_t check;                 /* over everything above */
	uint32_t pad;
	_Atomic uint64_t evictions, cas_retries, fail_closed;
	char pad2[128 - 72];
};
_Static_assert(sizeof(struct rl_header) == 128, "header is two cache lines");

struct rl {
	struct rl_header *h;
	_Atomic uint64_t *slots;
	size_t size;
};

static uint32_t fnv32(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *s++) * 16777619u;
	return h;
}

static uint32_t header_check(const struct rl_header *h)
{
	return fnv32(h, offsetof(struct rl_header, check));
}

/* FNV-1a over salt and id, then a 64-bit finaliser (splitmix64). */
static uint64_t rl_hash(const struct rl *t, const char *id, size_t n)
{
	uint64_t h = 14695981039346656037ull ^ t->h->salt;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

/* The TAT a slot word holds, or 0 when it says "full burst"; now must be
 * read after the word was loaded. */
static int64_t tat_decode(uint64_t w, int64_t now)
{
	uint64_t d = ((w & RL_TAT_MASK) - ((uint64_t)now & RL_TAT_MASK)) & RL_TAT_MASK;

	if (d == 0 || d >= (UINT64_C(1) << (RL_TAT_BITS - 1)))
		return 0;                       /* at or before now */
	return now + ((int64_t)d > MINUTE_US ? MINUTE_US : (int64_t)d);
}

static int rl_create(const char *path, uint32_t nbuckets)
{
	size_t size = sizeof(struct rl_header) + (size_t)nbuckets * RL_SLOTS * sizeof(uint64_t);
	struct rl_header h = { .version = RL_VERSION, .header_size = sizeof(h), .nbuckets = nbuckets,
	                       .bucket_slots = RL_SLOTS, .file_size = size };
	int fd;

	memcpy(h.magic, RL_MAGIC, 8);
	if (getentropy(&h.salt, sizeof(h.salt)) != 0)
		return -1;
	h.check = header_check(&h);
	/* The product would write a temporary file and rename() it into place. */
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) != 0 || pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Open and check the table; anything unexpected is refused (fail closed). */
static int rl_open(struct rl *t, const char *path)
{
	struct rl_header h;
	struct stat st;
	void *m;
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0007) ||
	    st.st_size < (off_t)sizeof(h) || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, RL_MAGIC, 8) != 0 || h.version != RL_VERSION || h.check != header_check(&h) ||
	    h.header_size != sizeof(h) || h.bucket_slots != RL_SLOTS || h.nbuckets == 0 ||
	    (h.nbuckets & (h.nbuckets - 1)) != 0 || h.file_size != (uint64_t)st.st_size ||
	    h.file_size != sizeof(h) + (uint64_t)h.nbuckets * RL_SLOTS * 8) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	t->h = m;
	t->slots = (_Atomic uint64_t *)((char *)m + sizeof(h));
	t->size = (size_t)st.st_size;
	return 0;
}

static void rl_close(struct rl *t)
{
	munmap(t->h, t->size);
}

static int64_t now_us(void);

/* One GCRA step for key id, shared with every process mapping the table. */
static int rl_check(struct rl *t, const char *id, size_t n, uint32_t per_minute, struct apikey_ratelimit *out)
{
	uint64_t hv = rl_hash(t, id, n);
	_Atomic uint64_t *b = &t->slots[(hv & (t->h->nbuckets - 1)) * RL_SLOTS];
	uint64_t tag = (hv >> RL_TAT_BITS) | 1;

	for (int attempt = 0; attempt < RL_CAS_MAX; attempt++) {
		uint64_t w[RL_SLOTS], nw;
		int found = -1, reuse = -1, oldest = 0;
		int64_t tat, now, oldest_tat = INT64_MAX;

		for (int i = 0; i < RL_SLOTS; i++)
			w[i] = atomic_load_explicit(&b[i], memory_order_acquire);
		now = now_us();         /* after the loads: no TAT read is ahead of it by more than a window */
		for (int i = 0; i < RL_SLOTS; i++) {
			if ((w[i] >> RL_TAT_BITS) == tag) {
				found = i;
				break;
			}
			tat = w[i] ? tat_decode(w[i], now) : 0;
			if (tat == 0) {
				if (reuse < 0)
					reuse = i;
			} else if (tat < oldest_tat) {
				oldest_tat = tat;
				oldest = i;
			}
		}
		int i = found >= 0 ? found : reuse >= 0 ? reuse : oldest;
		tat = found >= 0 ? tat_decode(w[i], now) : 0;
		apikey_gcra(&tat, now, per_minute, out);
		if (!out->allowed)
			return 0;                   /* a refusal changes nothing */
		nw = tag << RL_TAT_BITS | ((uint64_t)tat & RL_TAT_MASK);
		if (atomic_compare_exchange_weak_explicit(&b[i], &w[i], nw, memory_order_acq_rel,
		                                          memory_order_acquire)) {
			if (found < 0 && reuse < 0)
				atomic_fetch_add_explicit(&t->h->evictions, 1, memory_order_relaxed);
			return 0;
		}
		atomic_fetch_add_explicit(&t->h->cas_retries, 1, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&t->h->fail_closed, 1, memory_order_relaxed);
	memset(out, 0, sizeof(*out));
	out->limit = per_minute;
	out->retry_after_s = 1;
	return -1;
}

/* ---- measurements ------------------------------------------------------------ */

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void key_id(char out[32], unsigned i)
{
	snprintf(out, 32, "key_%016u", i * 2654435761u);
}

/* ns per check: every check allowed (each is a CAS), over NKEYS keys. */
static double bench_shm(struct rl *t, long iters, unsigned nkeys, unsigned base, long *allowed)
{
	char ids[64][32];
	struct apikey_ratelimit r;
	double t0;

	for (unsigned k = 0; k < nkeys; k++)
		key_id(ids[k], base + k);
	*allowed = 0;
	t0 = now_s();
	for (long i = 0; i < iters; i++) {
		const char *id = ids[i % nkeys];
		rl_check(t, id, 20, 1000000, &r);
		*allowed += r.allowed;
	}
	return (now_s() - t0) * 1e9 / (double)iters;
}

/* The product's table (core/ratelimit.c, built from this prototype), on a
 * store path of its own in dir. */
static double bench_product(const char *dir, long iters, unsigned nkeys)
{
	struct apikey_limiter *l;
	struct apikey_ratelimit r;
	char ids[64][32], db[512];
	double t0;
	int fd;

	snprintf(db, sizeof(db), "%s/rl-product.db", dir);
	if ((fd = open(db, O_CREAT | O_WRONLY, 0600)) < 0 || close(fd) != 0 ||
	    apikey_limiter_open(&l, db, NULL, NULL) != 0)
		exit(1);
	for (unsigned k = 0; k < nkeys; k++)
		key_id(ids[k], 1000 + k);
	t0 = now_s();
	for (long i = 0; i < iters; i++)
		apikey_limiter_consume(l, ids[i % nkeys], 1000000, now_us(), 1, &r);
	t0 = (now_s() - t0) * 1e9 / (double)iters;
	apikey_limiter_free(l);
	return t0;
}

/* PAM's and the CLI's path today: the TAT in SQLite, one commit per check. */
static double bench_sqlite(const char *dir, const char *sync, int iters)
{
	char path[512], sql[128];
	sqlite3 *db;
	sqlite3_stmt *get, *set;
	struct apikey_ratelimit r;
	double t0;

	snprintf(path, sizeof(path), "%s/rl-sqlite.db", dir);
	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		exit(1);
	snprintf(sql, sizeof(sql), "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s", sync);
	sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_exec(db, "CREATE TABLE ratelimit(key_id TEXT PRIMARY KEY, tat_us INTEGER NOT NULL) WITHOUT ROWID",
	             NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "SELECT tat_us FROM ratelimit WHERE key_id = ?1", -1, &get, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO ratelimit VALUES(?1, ?2) ON CONFLICT(key_id) DO UPDATE"
	                   " SET tat_us = excluded.tat_us", -1, &set, NULL);
	t0 = now_s();
	for (int i = 0; i < iters; i++) {
		int64_t tat = 0;

		sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		sqlite3_bind_text(get, 1, "key_0000000000000001", -1, SQLITE_STATIC);
		if (sqlite3_step(get) == SQLITE_ROW)
			tat = sqlite3_column_int64(get, 0);
		sqlite3_reset(get);
		apikey_gcra(&tat, now_us(), 1000000, &r);
		sqlite3_bind_text(set, 1, "key_0000000000000001", -1, SQLITE_STATIC);
		sqlite3_bind_int64(set, 2, tat);
		sqlite3_step(set);
		sqlite3_reset(set);
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	t0 = (now_s() - t0) * 1e9 / iters;
	sqlite3_finalize(get);
	sqlite3_finalize(set);
	sqlite3_close(db);
	return t0;
}

/* Two processes on one table: ns per check in each, side by side. */
static void contention(const char *path, long iters, int same_key, double ns[2], long allowed[2])
{
	int fds[2][2];
	pid_t pid[2];

	for (int p = 0; p < 2; p++) {
		if (pipe(fds[p]) != 0)
			exit(1);
		pid[p] = fork();
		if (pid[p] == 0) {
			struct rl t;
			double v[2];
			long a;

			if (rl_open(&t, path) != 0)
				_exit(1);
			v[0] = bench_shm(&t, iters, 1, same_key ? 7000 : 8000 + (unsigned)p * 17, &a);
			v[1] = (double)a;
			if (write(fds[p][1], v, sizeof(v)) != (ssize_t)sizeof(v))
				_exit(1);
			rl_close(&t);
			_exit(0);
		}
		close(fds[p][1]);
	}
	for (int p = 0; p < 2; p++) {
		double v[2] = { 0, 0 };
		if (read(fds[p][0], v, sizeof(v)) != (ssize_t)sizeof(v))
			v[0] = -1;
		close(fds[p][0]);
		waitpid(pid[p], NULL, 0);
		ns[p] = v[0];
		allowed[p] = (long)v[1];
	}
}

/*
 * The shared limit itself: two processes, one key at 60,000/min (one per
 * ms, burst 60,000), as fast as they can for SECS seconds.  Together they
 * must admit what one GCRA admits: 60,000 + elapsed ms (+1 for rounding).
 */
static int shared_limit(const char *path, double secs)
{
	int fds[2][2];
	pid_t pid[2];
	long total = 0;
	int64_t start = now_us() + 200000, end = start + (int64_t)(secs * 1e6);

	for (int p = 0; p < 2; p++) {
		if (pipe(fds[p]) != 0)
			exit(1);
		pid[p] = fork();
		if (pid[p] == 0) {
			struct rl t;
			struct apikey_ratelimit r;
			long a = 0;
			if (rl_open(&t, path) != 0)
				_exit(1);
			while (now_us() < start)
				;
			while (now_us() < end) {
				rl_check(&t, "key_sharedlimit00001", 20, 60000, &r);
				a += r.allowed;
			}
			if (write(fds[p][1], &a, sizeof(a)) != (ssize_t)sizeof(a))
				_exit(1);
			_exit(0);
		}
		close(fds[p][1]);
	}
	for (int p = 0; p < 2; p++) {
		long a = 0;
		if (read(fds[p][0], &a, sizeof(a)) != (ssize_t)sizeof(a))
			a = -1;
		close(fds[p][0]);
		waitpid(pid[p], NULL, 0);
		printf("  process %d admitted %ld\n", p, a);
		total += a;
	}
	{
		long bound = 60000 + (long)((end - start) / 1000) + 1;
		/* spinning processes take each token as it comes: within 1% of the bound */
		int ok = total <= bound && total >= bound - bound / 100;
		printf("  together %ld; one GCRA admits %ld over the same %.1f s: %s\n", total, bound, secs,
		       ok ? "shared limit: ok" : "shared limit: BROKEN");
		return ok ? 0 : 1;
	}
}

int main(int argc, char **argv)
{
	char path[512];
	struct rl t;
	long iters = argc > 2 ? strtol(argv[2], NULL, 10) : 5000000, a;
	double ns[2];
	long al[2];
	int bad = 0;

	if (argc < 2 || iters <= 0) {
		fprintf(stderr, "usage: shm-limiter DIR [ITERATIONS]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/keys.db.rl", argv[1]);
	if (rl_create(path, 1u << 16) != 0 || rl_open(&t, path) != 0) {
		perror(path);
		return 1;
	}
	printf("table: 65,536 buckets x 8 slots, %zu bytes\n", t.size);
	printf("one process, ns per check (clock_gettime included), best of 3 rounds of %ld:\n", iters);
	{
		double best[4] = { 1e18, 1e18, 1e18, 1e18 };
		long allowed[2] = { 0, 0 };
		for (int round = 0; round < 3; round++) {
			double v;
			/* 64 fresh keys at 1,000,000/min: every check allowed, a CAS each */
			if ((v = bench_shm(&t, iters, 64, 1000 + 100 * (unsigned)round, &a)) < best[0])
				best[0] = v, allowed[0] = a;
			/* one key past its burst: nearly every check refused, loads only */
			bench_shm(&t, 1100000, 1, 1, &a);
			if ((v = bench_shm(&t, iters, 1, 1, &a)) < best[1])
				best[1] = v, allowed[1] = a;
			if ((v = bench_product(argv[1], iters, 1)) < best[2]) best[2] = v;
			if ((v = bench_product(argv[1], iters, 64)) < best[3]) best[3] = v;
		}
		printf("  shared table, allowed (CAS):              %6.1f ns  (%ld of %ld allowed)\n", best[0],
		       allowed[0], iters);
		printf("  shared table, refused (no write):         %6.1f ns  (%ld of %ld allowed)\n", best[1],
		       allowed[1], iters);
		printf("  the product's table (core), one key:          %6.1f ns\n", best[2]);
		printf("  the product's table, 64 keys in turn:         %6.1f ns\n", best[3]);
	}
	printf("  SQLite TAT row + commit (PAM/CLI today), synchronous=FULL:   %8.0f ns\n",
	       bench_sqlite(argv[1], "FULL", 300));
	printf("  SQLite TAT row + commit,                 synchronous=NORMAL: %8.0f ns\n",
	       bench_sqlite(argv[1], "NORMAL", 3000));
	printf("two processes at once, ns per check in each:\n");
	/* 400,000 each on one fresh key at 1,000,000/min: all allowed, both CAS one word */
	contention(path, 400000, 1, ns, al);
	printf("  one key, both writing one word: %6.1f ns | %6.1f ns  (allowed %ld + %ld)\n", ns[0], ns[1],
	       al[0], al[1]);
	contention(path, 400000, 0, ns, al);
	printf("  a key each (other cache lines): %6.1f ns | %6.1f ns  (allowed %ld + %ld)\n", ns[0], ns[1],
	       al[0], al[1]);
	printf("  CAS retries so far: %lu, evictions: %lu, failed closed: %lu\n",
	       (unsigned long)atomic_load(&t.h->cas_retries), (unsigned long)atomic_load(&t.h->evictions),
	       (unsigned long)atomic_load(&t.h->fail_closed));
	printf("shared limit, two processes on one key at 60,000/min:\n");
	bad |= shared_limit(path, 2.0);
	rl_close(&t);
	unlink(path);
	return bad;
}

/* ratelimit.c — per-key requests-per-minute limits by GCRA, and the host's
 * rate-limit table that holds one word of GCRA state per key: a file beside
 * the store (<db>.rl) that every process using the store maps (apikeyd's
 * workers, the PAM module, apikeyctl verify), so a key has one limit on the
 * host whichever process admits it.  docs/DESIGN.md, "Rate limits", and
 * docs/design/fleet.md §11 (the design), §12 (what fleet mode adds). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "internal.h"

#define MINUTE_US 60000000LL

static uint32_t ceil_secs(int64_t us)
{
	return us <= 0 ? 0 : (uint32_t)((us + 999999) / 1000000);
}

static void gcra_n(int64_t *tat_us, int64_t now, uint32_t per_minute, uint32_t n,
                   struct apikey_ratelimit *out);

/*
 * Emission interval T = 60 s / limit, burst = limit: a fresh key may spend
 * its whole minute at once, then one request every T.  tat ("theoretical
 * arrival time") is when the bucket would be empty again.
 */
void apikey_gcra(int64_t *tat_us, int64_t now, uint32_t per_minute, struct apikey_ratelimit *out)
{
	gcra_n(tat_us, now, per_minute, 1, out);
}

/* GCRA for n requests at once (n >= 1): all or none. */
static void gcra_n(int64_t *tat_us, int64_t now, uint32_t per_minute, uint32_t n,
                   struct apikey_ratelimit *out)
{
	uint32_t limit = per_minute ? per_minute : 1;
	int64_t t = MINUTE_US / limit;        /* µs per request, >= 60 */
	int64_t tau = MINUTE_US;              /* the whole window */
	int64_t tat = *tat_us > now ? *tat_us : now;
	int64_t next = tat + t * (int64_t)n;

	memset(out, 0, sizeof(*out));
	out->limit = limit;
	if (next - now > tau) {
		out->allowed = false;
		out->remaining = 0;
		out->retry_after_s = ceil_secs(next - tau - now);
		if (out->retry_after_s == 0)
			out->retry_after_s = 1;
		out->reset_s = ceil_secs(tat - now);
		return;
	}
	*tat_us = next;
	out->allowed = true;
	out->remaining = (uint32_t)((tau - (next - now)) / t);
	if (out->remaining > limit)
		out->remaining = limit;
	out->reset_s = ceil_secs(next - now);
}


/*
 * A key's limit was edited (apikey_key_update): the state keeps standing for
 * the same number of requests.  The debt tat - now is that many emission
 * intervals of the old limit; it becomes as many of the new one, so a raise
 * applies from the next request (1 used of 600, not the old limit's full
 * minute) and a cut from the next one too.
 */
void apikey_gcra_rescale(int64_t *tat_us, int64_t now_us, uint32_t old_per_minute, uint32_t new_per_minute)
{
	int64_t debt = *tat_us - now_us;

	if (debt <= 0 || !old_per_minute || !new_per_minute || old_per_minute == new_per_minute)
		return;
	/* debt <= 2 minutes of µs, limits <= 1e6: the product fits */
	*tat_us = now_us + debt * (int64_t)old_per_minute / (int64_t)new_per_minute;
}

/* ---- the host's table: <db>.rl ------------------------------------------------
 *
 * A 128-byte header, then buckets of RL_SLOTS words (one cache line each).
 * A slot is tag (20 bits, never 0) | TAT (44 bits: µs of CLOCK_REALTIME
 * modulo 2^44, ~203 days); 0 is an empty slot.  A key's bucket and tag come
 * from a salted hash of its id.  A check loads the bucket, runs GCRA on the
 * key's TAT and, when the request is allowed, compare-and-swaps that one
 * word: a process killed anywhere leaves the old or the new value, no lock.
 *
 * Reading a slot: a TAT at or before now says "full burst" (the slot may be
 * reused: a key at full burst has no state to lose).  A TAT further ahead
 * than one window (a clock stepped back, a slot idle for ~100 days, a bad
 * write) reads as one window ahead: an empty bucket, never a full one.  So
 * any 64-bit value, written by anyone, means at most "this key may spend its
 * whole burst" — no more than a fresh key may.
 *
 * A key not in its bucket takes a free slot; when all RL_SLOTS slots hold
 * keys that still carry state, the key is refused (APIKEY_ERR_FULL:
 * UNAVAILABLE) rather than let in by forgetting another key's charges.
 */
#define RL_MAGIC "APIKRL01"
#define RL_VERSION 1
#define RL_SLOTS 8                  /* per bucket: 8 words = one cache line */
#define RL_BUCKETS_DEFAULT 65536    /* 524,288 slots, 4 MB */
#define RL_TAT_BITS 44
#define RL_TAT_MASK ((UINT64_C(1) << RL_TAT_BITS) - 1)
#define RL_CAS_MAX 64               /* failed compare-and-swaps in a row: then fail closed */

struct rl_header {
	char magic[8];
	uint32_t version, header_size, nbuckets, bucket_slots;
	uint64_t file_size, salt;
	uint32_t slot_words;        /* 1; fleet mode (fleet.md §12) adds a second word per slot */
	uint32_t check;             /* FNV-1a of everything above */
	/* counters, shared by every process (relaxed atomics), not checked */
	_Atomic uint64_t full, cas_retries, fail_closed;
	char pad[128 - 72];
};
_Static_assert(sizeof(struct rl_header) == 128, "the header is two cache lines");

struct rl_table {               /* one mapping of one file */
	struct rl_header *h;
	_Atomic uint64_t *slots;
	size_t size;
	dev_t dev;
	ino_t ino;
	struct rl_table *older;     /* replaced mappings: unmapped at free */
};

struct apikey_limiter {
	struct rl_table *_Atomic cur;
	pthread_mutex_t lock;       /* refresh */
	char path[APIKEY_PATH_SIZE + 4];
	char db_path[APIKEY_PATH_SIZE];
	apikey_log_fn log;
	void *log_ctx;
	bool refresh_failing;
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

/* FNV-1a over the salt and the id, then splitmix64's finaliser. */
static uint64_t rl_hash(uint64_t salt, const char *id, size_t n)
{
	uint64_t h = 14695981039346656037ull ^ salt;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

/* The TAT a slot holds relative to now: 0 = at or before now (full burst). */
static int64_t tat_decode(uint64_t w, int64_t now)
{
	uint64_t d = ((w & RL_TAT_MASK) - ((uint64_t)now & RL_TAT_MASK)) & RL_TAT_MASK;

	if (d == 0 || d >= (UINT64_C(1) << (RL_TAT_BITS - 1)))
		return 0;
	return now + ((int64_t)d > MINUTE_US ? MINUTE_US : (int64_t)d);
}

static void rl_unmap(struct rl_table *t)
{
	while (t) {
		struct rl_table *next = t->older;
		munmap(t->h, t->size);
		free(t);
		t = next;
	}
}

/* What is wrong with the open table fd (st its fstat), or NULL.  Like
 * SQLite's -wal and -shm it follows the store's group and mode (packaging
 * changes them after init): root aligns them, anyone else refuses a table
 * in a group that is not the store's. */
static const char *rl_file_problem(int fd, const struct stat *st, const struct stat *db, struct rl_header *h)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_nlink != 1)
		return "has more than one name";
	if (st->st_mode & 0007)
		return "accessible to others (mode)";
	if (st->st_uid != 0 && st->st_uid != db->st_uid)
		return "owned by neither root nor the key store's owner";
	if (((st->st_mode & 0070) && st->st_gid != db->st_gid) || (st->st_mode & 0660) != (db->st_mode & 0660)) {
		if (geteuid() == 0 && fchown(fd, db->st_uid, db->st_gid) == 0 && fchmod(fd, db->st_mode & 0660) == 0)
			;   /* aligned with the store */
		else if ((st->st_mode & 0070) && st->st_gid != db->st_gid)
			return "its group is not the key store's";
	}
	if (st->st_size < (off_t)sizeof(*h) || pread(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h))
		return "too short";
	if (memcmp(h->magic, RL_MAGIC, 8) != 0 || h->version != RL_VERSION || h->check != header_check(h))
		return "not a rate-limit table of this version (bad header)";
	if (h->header_size != sizeof(*h) || h->bucket_slots != RL_SLOTS || h->slot_words != 1 ||
	    h->nbuckets == 0 || (h->nbuckets & (h->nbuckets - 1)) != 0 || h->nbuckets > (1u << 24) ||
	    h->file_size != sizeof(*h) + (uint64_t)h->nbuckets * RL_SLOTS * sizeof(uint64_t))
		return "inconsistent header";
	if ((uint64_t)st->st_size != h->file_size)
		return "its size is not the header's (truncated?)";
	return NULL;
}

/* Map the table at path and check everything about it; anything unexpected
 * is refused (logged, APIKEY_ERR_STORE): a damaged or hostile table fails
 * closed, it is never "used anyway". */
static int rl_map(struct apikey_limiter *l, const struct stat *db, struct rl_table **out)
{
	struct rl_header h;
	struct rl_table *t = NULL;
	struct stat st;
	const char *why;
	void *m;
	int fd = open(l->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return errno == ENOENT ? APIKEY_ERR_NOT_FOUND : (core_log(l->log, l->log_ctx, LOG_ERR,
		       "rate-limit table %s: %s", l->path, strerror(errno)), APIKEY_ERR_STORE);
	why = fstat(fd, &st) != 0 ? "cannot stat it" : rl_file_problem(fd, &st, db, &h);
	if (why) {
		close(fd);
		core_log(l->log, l->log_ctx, LOG_ERR, "rate-limit table %s: %s: refusing it", l->path, why);
		return APIKEY_ERR_STORE;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);   /* no locks are held on it: closing loses nothing */
	if (m == MAP_FAILED || !(t = calloc(1, sizeof(*t)))) {
		if (m != MAP_FAILED)
			munmap(m, (size_t)st.st_size);
		core_log(l->log, l->log_ctx, LOG_ERR, "rate-limit table %s: cannot map it", l->path);
		return APIKEY_ERR_NOMEM;
	}
	t->h = m;
	t->slots = (_Atomic uint64_t *)((char *)m + sizeof(h));
	t->size = (size_t)st.st_size;
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	*out = t;
	return 0;
}

/* Build a new table beside the store and link() it into place (losing a race
 * means using the winner's).  Only root or the store's owner do: the file
 * gets the store's owner, group and permission bits, like SQLite's -wal and
 * -shm (docs/design/packaging.md). */
static int rl_create(struct apikey_limiter *l, const struct stat *db)
{
	char tmp[APIKEY_PATH_SIZE + 16];
	struct rl_header h;
	uid_t me = geteuid();
	int fd, r = APIKEY_ERR_IO;

	if (me != 0 && me != db->st_uid) {
		core_log(l->log, l->log_ctx, LOG_ERR, "rate-limit table %s is missing: it is made by root or the "
		         "key store's owner ('apikeyctl db check' makes it)", l->path);
		return APIKEY_ERR_STORE;
	}
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, RL_MAGIC, 8);
	h.version = RL_VERSION;
	h.header_size = sizeof(h);
	h.nbuckets = RL_BUCKETS_DEFAULT;
	h.bucket_slots = RL_SLOTS;
	h.slot_words = 1;
	h.file_size = sizeof(h) + (uint64_t)h.nbuckets * RL_SLOTS * sizeof(uint64_t);
	if (RAND_bytes((unsigned char *)&h.salt, sizeof(h.salt)) != 1)
		return APIKEY_ERR_CRYPTO;
	h.check = header_check(&h);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", l->path) >= sizeof(tmp))
		return APIKEY_ERR_TOO_LONG;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		core_log(l->log, l->log_ctx, LOG_ERR, "rate-limit table %s: %s", l->path, strerror(errno));
		return APIKEY_ERR_IO;
	}
	/* allocated, not sparse: a page of the mapping that needs a block on a
	 * full disk would raise SIGBUS in every process that touches it */
	if ((errno = posix_fallocate(fd, 0, (off_t)h.file_size)) != 0 ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    fchmod(fd, db->st_mode & 0660) != 0 ||
	    (me == 0 ? fchown(fd, db->st_uid, db->st_gid) : fchown(fd, (uid_t)-1, db->st_gid)) != 0) {
		core_log(l->log, l->log_ctx, LOG_ERR, "rate-limit table %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (link(tmp, l->path) != 0 && errno != EEXIST) {
		core_log(l->log, l->log_ctx, LOG_ERR, "rate-limit table %s: %s", l->path, strerror(errno));
		goto out;
	}
	r = 0;
out:
	close(fd);
	unlink(tmp);
	return r;
}

static int rl_open_table(struct apikey_limiter *l, struct rl_table **out)
{
	struct stat db;
	int r;

	if (stat(l->db_path, &db) != 0) {
		core_log(l->log, l->log_ctx, LOG_ERR, "%s: %s", l->db_path, strerror(errno));
		return APIKEY_ERR_STORE;
	}
	r = rl_map(l, &db, out);
	if (r == APIKEY_ERR_NOT_FOUND && (r = rl_create(l, &db)) == 0)
		r = rl_map(l, &db, out);
	return r == APIKEY_ERR_NOT_FOUND ? APIKEY_ERR_STORE : r;
}

int apikey_limiter_open(struct apikey_limiter **out, const char *db_path, apikey_log_fn log, void *log_ctx)
{
	struct apikey_limiter *l = calloc(1, sizeof(*l));
	struct rl_table *t;
	int r;

	*out = NULL;
	if (!l)
		return APIKEY_ERR_NOMEM;
	l->log = log;
	l->log_ctx = log_ctx;
	if (copy_str(l->db_path, sizeof(l->db_path), db_path) != 0 ||
	    (size_t)snprintf(l->path, sizeof(l->path), "%s.rl", db_path) >= sizeof(l->path)) {
		free(l);
		return APIKEY_ERR_TOO_LONG;
	}
	if ((r = rl_open_table(l, &t)) != 0) {
		free(l);
		return r;
	}
	pthread_mutex_init(&l->lock, NULL);
	atomic_store_explicit(&l->cur, t, memory_order_release);
	*out = l;
	return 0;
}

void apikey_limiter_free(struct apikey_limiter *l)
{
	if (!l)
		return;
	rl_unmap(atomic_load_explicit(&l->cur, memory_order_acquire));
	pthread_mutex_destroy(&l->lock);
	free(l);
}

int apikey_limiter_refresh(struct apikey_limiter *l)
{
	struct rl_table *cur, *t;
	struct stat st;
	int r = 0;

	pthread_mutex_lock(&l->lock);
	cur = atomic_load_explicit(&l->cur, memory_order_acquire);
	if (stat(l->path, &st) == 0 && st.st_dev == cur->dev && st.st_ino == cur->ino &&
	    (size_t)st.st_size == cur->size)
		goto out;
	/* replaced, removed or resized: map what is there now (threads still
	 * using the old mapping finish with it; it is unmapped at free) */
	if ((r = rl_open_table(l, &t)) == 0) {
		t->older = cur;
		atomic_store_explicit(&l->cur, t, memory_order_release);
		if (l->refresh_failing)
			core_log(l->log, l->log_ctx, LOG_INFO, "rate-limit table %s: usable again", l->path);
		l->refresh_failing = false;
	} else {
		l->refresh_failing = true;
	}
out:
	pthread_mutex_unlock(&l->lock);
	return r;
}

int apikey_limiter_consume(struct apikey_limiter *l, const char *key_id, uint32_t per_minute, int64_t now_us,
                           uint32_t n, struct apikey_ratelimit *out)
{
	struct rl_table *t = atomic_load_explicit(&l->cur, memory_order_acquire);
	size_t len = strlen(key_id);
	uint64_t hv = rl_hash(t->h->salt, key_id, len);
	_Atomic uint64_t *b = &t->slots[(hv & (t->h->nbuckets - 1)) * RL_SLOTS];
	uint64_t tag = (hv >> RL_TAT_BITS) | 1;

	memset(out, 0, sizeof(*out));
	out->limit = per_minute;
	if (n == 0)
		n = 1;
	for (int attempt = 0; attempt < RL_CAS_MAX; attempt++) {
		uint64_t w[RL_SLOTS], nw;
		int found = -1, free_slot = -1, i;
		int64_t tat;

		for (i = 0; i < RL_SLOTS; i++)
			w[i] = atomic_load_explicit(&b[i], memory_order_acquire);
		for (i = 0; i < RL_SLOTS; i++) {
			if (w[i] && (w[i] >> RL_TAT_BITS) == tag) {
				found = i;
				break;
			}
			if (free_slot < 0 && (!w[i] || tat_decode(w[i], now_us) == 0))
				free_slot = i;
		}
		if (found < 0 && free_slot < 0) {
			/* every slot holds a key still charged within its window */
			atomic_fetch_add_explicit(&t->h->full, 1, memory_order_relaxed);
			out->allowed = false;
			return APIKEY_ERR_FULL;
		}
		i = found >= 0 ? found : free_slot;
		tat = found >= 0 ? tat_decode(w[i], now_us) : 0;
		gcra_n(&tat, now_us, per_minute, n, out);
		if (!out->allowed)
			return 0;                   /* a refusal changes nothing */
		nw = tag << RL_TAT_BITS | ((uint64_t)tat & RL_TAT_MASK);
		if (atomic_compare_exchange_strong_explicit(&b[i], &w[i], nw, memory_order_acq_rel,
		                                            memory_order_acquire))
			return 0;
		atomic_fetch_add_explicit(&t->h->cas_retries, 1, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&t->h->fail_closed, 1, memory_order_relaxed);
	memset(out, 0, sizeof(*out));
	out->limit = per_minute;
	return APIKEY_ERR_BUSY;
}

int apikey_limiter_rescale(struct apikey_limiter *l, const char *key_id, int64_t now_us, uint32_t old_per_minute,
                           uint32_t new_per_minute)
{
	struct rl_table *t = atomic_load_explicit(&l->cur, memory_order_acquire);
	uint64_t hv = rl_hash(t->h->salt, key_id, strlen(key_id));
	_Atomic uint64_t *b = &t->slots[(hv & (t->h->nbuckets - 1)) * RL_SLOTS];
	uint64_t tag = (hv >> RL_TAT_BITS) | 1;

	if (old_per_minute == new_per_minute)
		return 0;
	for (int attempt = 0; attempt < RL_CAS_MAX; attempt++) {
		int i;
		uint64_t w = 0;
		int64_t tat;

		for (i = 0; i < RL_SLOTS; i++) {
			w = atomic_load_explicit(&b[i], memory_order_acquire);
			if (w && (w >> RL_TAT_BITS) == tag)
				break;
		}
		if (i == RL_SLOTS || (tat = tat_decode(w, now_us)) == 0)
			return 0;          /* not charged: full under any limit */
		apikey_gcra_rescale(&tat, now_us, old_per_minute, new_per_minute);
		if (atomic_compare_exchange_strong_explicit(&b[i], &w, tag << RL_TAT_BITS | ((uint64_t)tat & RL_TAT_MASK),
		                                            memory_order_acq_rel, memory_order_acquire))
			return 0;
	}
	return APIKEY_ERR_BUSY;
}

void apikey_limiter_stats(struct apikey_limiter *l, struct apikey_limiter_stats *out)
{
	struct rl_table *t = atomic_load_explicit(&l->cur, memory_order_acquire);

	out->slots = (uint64_t)t->h->nbuckets * RL_SLOTS;
	out->full = atomic_load_explicit(&t->h->full, memory_order_relaxed);
	out->cas_retries = atomic_load_explicit(&t->h->cas_retries, memory_order_relaxed);
	out->fail_closed = atomic_load_explicit(&t->h->fail_closed, memory_order_relaxed);
}

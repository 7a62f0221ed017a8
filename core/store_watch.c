/* store_watch.c — has anything a verifier caches changed, and is this
 * connection still reading the file its path names?  The sidecar asks before
 * every lookup (apikey_store_changed), so the answer must be exact and, in
 * the steady state, cost no system call.  docs/DESIGN.md, "Store watch",
 * says why it cannot miss a committed change.
 *
 * Steady state: two loads of the WAL-index header from SQLite's own mapping
 * of the -shm file (obtained through the VFS: SQLITE_FCNTL_FILE_POINTER, then
 * xShmMap of region 0 without extending it — never a descriptor of ours on
 * the -shm, whose close would drop SQLite's POSIX locks).  Every commit
 * rewrites that header before it returns; while it is byte-for-byte the one
 * seen when the full check last ran, nothing was committed since.  When it
 * differs: the file-identity check SQLite offers (SQLITE_FCNTL_HAS_MOVED),
 * PRAGMA data_version, and the generation counter that only changes to keys
 * and accounts move (a fresh random value each time, so a restored backup
 * cannot bring back a value already seen with other contents). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>
#define APIKEY_STORE_IMPL   /* one of the SQLite files: see store_sql.h */
#include "rows.h"
#include "store_sql.h"

#define WAL_INDEX_PGSZ 32768   /* SQLite's -shm region size (walformat.html) */

/* Copy 1 of the header, then copy 2, acquire-ordered: the writer stores copy
 * 2, a barrier, then copy 1 (walIndexWriteHdr), so two equal copies are one
 * whole header. */
static void walhdr_load(const uint64_t *hdr, uint64_t out[WALHDR_WORDS])
{
	for (int i = 0; i < WALHDR_WORDS / 2; i++)
		out[i] = __atomic_load_n(&hdr[i], __ATOMIC_ACQUIRE);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	for (int i = WALHDR_WORDS / 2; i < WALHDR_WORDS; i++)
		out[i] = __atomic_load_n(&hdr[i], __ATOMIC_ACQUIRE);
}

static bool journal_is_wal(struct apikey_store *s)
{
	sqlite3_stmt *st;
	bool wal = false;

	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL) != SQLITE_OK)
		return false;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *m = (const char *)sqlite3_column_text(st, 0);
		wal = m && strcmp(m, "wal") == 0;
	}
	sqlite3_finalize(st);
	return wal;
}

/*
 * Find SQLite's mapping of the WAL-index for this connection.  Only for a
 * read-write connection in WAL mode whose WAL is open (a read ran at open):
 * then the index is the shared -shm file that every process's commits update.
 * A read-only connection may be given a private heap copy instead
 * (SQLITE_READONLY_CANTINIT), whose header other processes never write: no
 * fast path there, PRAGMA data_version on every call as before.
 */
void watch_setup(struct apikey_store *s)
{
	sqlite3_file *f = NULL;
	void volatile *p = NULL;

	s->watch_ready = true;
	s->walhdr = NULL;
	if (s->readonly || !journal_is_wal(s))
		return;
	if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || !f ||
	    !f->pMethods || f->pMethods->iVersion < 2 || !f->pMethods->xShmMap)
		return;
	/* bExtend 0: the region the connection already has, never a new one */
	if (f->pMethods->xShmMap(f, 0, WAL_INDEX_PGSZ, 0, &p) != SQLITE_OK || !p)
		return;
	s->walhdr = (const uint64_t *)p;
}

/* The db path moved away from the file this connection has open?  SQLite's
 * own check: stat() of the path against the inode it opened. */
static bool db_moved(struct apikey_store *s)
{
	int moved = 0;

	if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK)
		return false;
	return moved != 0;
}

/* Not logged here: the process has one connection per thread, and its
 * front end says it once (apikey_strerror names it). */
static int replaced(struct apikey_store *s)
{
	s->replaced = true;
	return APIKEY_ERR_REPLACED;
}

int apikey_store_changed(struct apikey_store *s)
{
	uint64_t h[WALHDR_WORDS];
	int64_t dv, gen;
	bool have_h = false, forced = s->force_changed;

	if (s->replaced)
		return APIKEY_ERR_REPLACED;
	if (!s->watch_ready)
		watch_setup(s);
	if (s->walhdr) {
		walhdr_load(s->walhdr, h);
		have_h = true;
		if (s->walhdr_valid && !s->force_changed && memcmp(h, s->walhdr_seen, sizeof(h)) == 0)
			return 0;          /* nothing committed since the last full check */
	}
	/* Something was committed (or this connection has no fast path). */
	s->gen_read = s->gen_moved = false;   /* until the generation is read below */
	if (db_moved(s))
		return replaced(s);
	if (one_int64(s, ST_DATA_VERSION, &dv) != 0)
		return 1;              /* cannot tell: assume a change, check again next time */
	if (s->seen_version && dv == s->data_version && !s->force_changed)
		goto same;
	s->data_version = dv;
	if (one_int64(s, ST_GENERATION, &gen) != 0)
		return 1;
	if (s->seen_version && gen == s->generation && !s->force_changed)
		goto same;             /* only usage or events were written */
	s->generation = gen;
	s->gen_read = true;
	s->gen_moved = !forced;
	s->seen_version = true;
	s->force_changed = false;
	s->foreign_hint_lens = -1;
	if (have_h)
		memcpy(s->walhdr_seen, h, sizeof(h));
	/* a header read while a writer was between its two copies is not kept */
	s->walhdr_valid = have_h && memcmp(h, h + WALHDR_WORDS / 2, sizeof(h) / 2) == 0;
	return 1;
same:
	if (have_h)
		memcpy(s->walhdr_seen, h, sizeof(h));
	s->walhdr_valid = have_h && memcmp(h, h + WALHDR_WORDS / 2, sizeof(h) / 2) == 0;
	return 0;
}

bool store_generation(const struct apikey_store *s, int64_t *gen, bool *exact)
{
	*gen = s->generation;
	*exact = s->gen_moved;
	return s->gen_read;
}

/* ---- the files themselves ------------------------------------------------- */

/* "<path>" or "<path> (deleted)": which of the store's names (0 db, 1 -wal,
 * 2 -shm) a descriptor's link names, or -1. */
static int which_file(const char *real, size_t rn, const char *link, size_t n)
{
	static const char del[] = " (deleted)";
	static const char *const suffix[] = { "", "-wal", "-shm" };

	if (n > sizeof(del) - 1 && memcmp(link + n - (sizeof(del) - 1), del, sizeof(del) - 1) == 0)
		n -= sizeof(del) - 1;
	if (n < rn || memcmp(link, real, rn) != 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (n - rn == strlen(suffix[i]) && memcmp(link + rn, suffix[i], n - rn) == 0)
			return i;
	return -1;
}

/* The db path resolved (descriptors' links name resolved paths; SQLite names
 * the -wal and -shm after it).  0 or an error. */
static int resolve(struct apikey_store *s)
{
	if (!s->real_path[0] && !realpath(s->cfg.db_path, s->real_path)) {
		s->real_path[0] = '\0';
		return APIKEY_ERR_IO;
	}
	return 0;
}

/* The file at name (a path, or /proc/self/fd/N for an open descriptor). */
static bool file_id(const char *name, struct apikey_file_id *id)
{
	struct statx sx;

	memset(id, 0, sizeof(*id));
	if (statx(AT_FDCWD, name, 0, STATX_INO | STATX_BTIME, &sx) != 0)
		return false;
	id->exists = true;
	id->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	id->ino = sx.stx_ino;
	if (sx.stx_mask & STATX_BTIME)
		id->born_ns = (int64_t)sx.stx_btime.tv_sec * 1000000000 + sx.stx_btime.tv_nsec;
	return true;
}

bool apikey_file_same(const struct apikey_file_id *a, const struct apikey_file_id *b)
{
	return a->exists && b->exists && a->dev == b->dev && a->ino == b->ino &&
	       (!a->born_ns || !b->born_ns || a->born_ns == b->born_ns);
}

/* Both absent, or the same file. */
static bool same_or_absent(const struct apikey_file_id *a, const struct apikey_file_id *b)
{
	return a->exists == b->exists && (!a->exists || apikey_file_same(a, b));
}

static void file_ids(const char *db_path, struct apikey_file_id out[2])
{
	static const char *const suffix[] = { "-wal", "-shm" };
	char name[APIKEY_PATH_SIZE + 8];

	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "%s%s", db_path, suffix[i]);
		file_id(name, &out[i]);
	}
}

void store_files_seen(struct apikey_store *s)
{
	file_ids(s->cfg.db_path, s->opened);
}

bool store_files_moved(const struct apikey_store *s)
{
	struct apikey_file_id now[2];

	file_ids(s->cfg.db_path, now);
	for (int i = 0; i < 2; i++)
		if (!same_or_absent(&now[i], &s->opened[i]))
			return true;
	return false;
}

int store_files_match(struct apikey_store *s)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char name[APIKEY_PATH_SIZE + 8], link[APIKEY_PATH_SIZE + 16], fdname[300], self[16];
	struct apikey_file_id now[3], fd;
	bool seen_db = false;
	size_t rn;
	struct dirent *e;
	DIR *d;
	int r = 0;

	if (resolve(s) != 0)
		return APIKEY_ERR_IO;
	rn = strlen(s->real_path);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s%s", s->real_path, suffix[i]);
		file_id(name, &now[i]);
	}
	if (!(d = opendir("/proc/self/fd")))
		return APIKEY_ERR_IO;
	snprintf(self, sizeof(self), "%d", dirfd(d));
	while (r == 0 && (e = readdir(d))) {
		ssize_t n;
		int which;

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || strcmp(e->d_name, self) == 0)
			continue;
		n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
		if (n <= 0 || (size_t)n >= sizeof(link) - 1)
			continue;
		link[n] = '\0';
		if ((which = which_file(s->real_path, rn, link, (size_t)n)) < 0)
			continue;
		snprintf(fdname, sizeof(fdname), "/proc/self/fd/%s", e->d_name);
		if (!file_id(fdname, &fd))
			continue;       /* closed meanwhile (another thread) */
		if (which == 0)
			seen_db = true;
		if (!apikey_file_same(&fd, &now[which]))
			r = APIKEY_ERR_REPLACED;
	}
	closedir(d);
	/* this connection has the db open: if no descriptor carries its name,
	 * the file (or a directory above it) was moved away */
	if (r == 0 && !seen_db)
		r = APIKEY_ERR_REPLACED;
	if (r == 0) {
		memcpy(s->ids, now, sizeof(now));
		s->ids_known = true;
	}
	return r;
}

bool apikey_store_file_ids(const struct apikey_store *s, struct apikey_file_id ids[3])
{
	if (!s->ids_known)
		return false;
	memcpy(ids, s->ids, sizeof(s->ids));
	return true;
}

int apikey_file_ids_now(const char *db_path, struct apikey_file_id ids[3])
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char name[APIKEY_PATH_SIZE + 8], real[APIKEY_PATH_SIZE];

	/* SQLite names the -wal and -shm after the resolved path */
	if (!realpath(db_path, real) && copy_str(real, sizeof(real), db_path) != 0)
		return APIKEY_ERR_TOO_LONG;
	for (int i = 0; i < 3; i++) {
		if ((size_t)snprintf(name, sizeof(name), "%s%s", real, suffix[i]) >= sizeof(name))
			return APIKEY_ERR_TOO_LONG;
		file_id(name, &ids[i]);
	}
	return 0;
}

/* Has SQLite written since the last call: the header's mxFrame, or the
 * checkpoint info's nBackfill / nBackfillAttempted (walformat.html: the
 * WalCkptInfo after the two header copies) moved? */
static bool sqlite_wrote(struct apikey_store *s)
{
	const uint32_t *w = (const uint32_t *)s->walhdr;
	uint32_t now[3];
	bool moved;

	if (!s->watch_ready)
		watch_setup(s);
	if (!(w = (const uint32_t *)s->walhdr))
		return false;
	now[0] = __atomic_load_n(&w[4], __ATOMIC_ACQUIRE);       /* mxFrame, copy 1 */
	now[1] = __atomic_load_n(&w[24], __ATOMIC_ACQUIRE);      /* nBackfill (byte 96) */
	now[2] = __atomic_load_n(&w[32], __ATOMIC_ACQUIRE);      /* nBackfillAttempted (byte 128) */
	moved = !s->ckpt_known || memcmp(now, s->ckpt_seen, sizeof(now)) != 0;
	memcpy(s->ckpt_seen, now, sizeof(now));
	s->ckpt_known = true;
	return moved;
}

int apikey_store_check_files(struct apikey_store *s)
{
	int r;

	if (s->replaced)
		return APIKEY_ERR_REPLACED;
	if (db_moved(s))
		return replaced(s);
	if ((r = store_files_match(s)) == APIKEY_ERR_REPLACED)
		return replaced(s);
	/* Whatever wrote beside SQLite (an in-place copy, a damaged page) is not
	 * in the WAL-index: drop the pages this connection caches and report a
	 * change, so the verified-key cache is emptied too — unless SQLite
	 * itself wrote the file meanwhile (a checkpoint moves nBackfill, a
	 * commit mxFrame), which is what a watcher sees most of the time. */
	if (!sqlite_wrote(s)) {
		sqlite3_db_release_memory(s->db);
		s->force_changed = true;
	}
	return r;
}

int apikey_store_check_paths(struct apikey_store *s)
{
	static const char *const suffix[] = { "-wal", "-shm" };
	char name[APIKEY_PATH_SIZE + 8];

	if (s->replaced)
		return APIKEY_ERR_REPLACED;
	if (!s->ids_known || resolve(s) != 0)
		return apikey_store_check_files(s);
	if (db_moved(s))
		return replaced(s);
	for (int i = 0; i < 2; i++) {
		struct apikey_file_id now;

		snprintf(name, sizeof(name), "%s%s", s->real_path, suffix[i]);
		file_id(name, &now);
		if (!same_or_absent(&now, &s->ids[i + 1]))
			return replaced(s);
	}
	return 0;
}

int apikey_store_sync_wal(struct apikey_store *s)
{
	char wal[APIKEY_PATH_SIZE + 8];
	const uint32_t *h;
	uint32_t mx, change;
	int fd, r = 0;

	if (!s->watch_ready)
		watch_setup(s);
	if (!s->walhdr)
		return 0;
	/* iChange (one more each commit) and mxFrame: a WAL restarted since
	 * may hold as many frames as before */
	h = (const uint32_t *)s->walhdr;
	change = __atomic_load_n(&h[2], __ATOMIC_ACQUIRE);
	mx = __atomic_load_n(&h[4], __ATOMIC_ACQUIRE);
	if (s->synced_known && mx == s->synced_mxframe && change == s->synced_change)
		return 0;
	/* SQLite takes no POSIX lock on the -wal: a descriptor of ours closes
	 * without dropping any of its locks */
	snprintf(wal, sizeof(wal), "%s-wal", s->cfg.db_path);
	if ((fd = open(wal, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? 0 : APIKEY_ERR_IO;
	if (fdatasync(fd) != 0)
		r = APIKEY_ERR_IO;
	close(fd);
	if (r == 0) {
		s->synced_mxframe = mx;
		s->synced_change = change;
		s->synced_known = true;
	}
	return r;
}

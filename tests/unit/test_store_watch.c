/* test_store_watch.c — core/store_watch.c: change detection without a
 * system call in the steady state, restores and replaced files seen, the
 * pepper check, a new store never inheriting an old WAL, and a new file
 * that got a deleted one's inode number never taken for it. */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sqlite3.h>
#include "unit.h"

/* Count the unix VFS's fcntl (its locks) and stat calls: the fast path
 * must make none. */
static unsigned n_fcntl, n_stat;
static sqlite3_syscall_ptr real_fcntl, real_stat;

static int counting_fcntl(int fd, int op, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, op);
	arg = va_arg(ap, void *);
	va_end(ap);
	n_fcntl++;
	return ((int (*)(int, int, ...))real_fcntl)(fd, op, arg);
}

static int counting_stat(const char *path, struct stat *st)
{
	n_stat++;
	return ((int (*)(const char *, struct stat *))real_stat)(path, st);
}

static void count_syscalls(bool on)
{
	sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);

	if (!on) {
		vfs->xSetSystemCall(vfs, NULL, NULL);   /* every call back to the default */
		return;
	}
	real_fcntl = vfs->xGetSystemCall(vfs, "fcntl");
	real_stat = vfs->xGetSystemCall(vfs, "stat");
	assert_int_equal(vfs->xSetSystemCall(vfs, "fcntl", (sqlite3_syscall_ptr)counting_fcntl), SQLITE_OK);
	assert_int_equal(vfs->xSetSystemCall(vfs, "stat", (sqlite3_syscall_ptr)counting_stat), SQLITE_OK);
	n_fcntl = n_stat = 0;
}

/* fdatasync is wrapped (tests/tests.mk): apikey_store_sync_wal's calls. */
static unsigned n_datasync;
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
	n_datasync++;
	return __real_fdatasync(fd);
}

static void settle(struct apikey_store *s)
{
	for (int i = 0; i < 3 && apikey_store_changed(s) != 0; i++)
		;
	assert_int_equal(apikey_store_changed(s), 0);
}

/* Nothing committed: no lock, no stat, nothing but memory reads.  A commit by
 * another connection is seen at once; one that only records usage moves the
 * header but not the generation, so it reads as "no change". */
static void steady_state_costs_no_syscall(void **state)
{
	struct fixture *f = *state;
	struct apikey_store *w;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];

	assert_int_equal(apikey_store_changed(f->s), 1);    /* the first call */
	settle(f->s);
	count_syscalls(true);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(apikey_store_changed(f->s), 0);
	assert_int_equal(n_fcntl + n_stat, 0);

	assert_int_equal(apikey_store_open(&w, &f->cfg, NULL, NULL), 0);
	make_key(w, "ann", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_store_changed(f->s), 1);
	assert_true(n_fcntl > 0);
	settle(f->s);
	assert_int_equal(verify(w, key, "a:b", "ann"), APIKEY_VALID);   /* usage only */
	assert_int_equal(apikey_store_changed(f->s), 0);
	n_fcntl = n_stat = 0;
	assert_int_equal(apikey_store_changed(f->s), 0);
	assert_int_equal(n_fcntl + n_stat, 0);
	assert_int_equal(apikey_key_revoke(w, id, TEST_ACTOR), 0);
	assert_int_equal(apikey_store_changed(f->s), 1);
	count_syscalls(false);
	apikey_store_free(w);
}

static enum apikey_outcome verify_in(const struct apikey_verifier *v, const char *key)
{
	struct apikey_verify_request rq = { .key = key, .key_len = strlen(key), .source = "test" };
	struct apikey_verify_result res;

	assert_int_equal(apikey_verify_cached(v, &rq, &res), 0);
	return res.outcome;
}

/* Copy a whole database through SQLite's backup API (sqlite3 .backup and
 * .restore use the same). */
static void copy_db(const char *from, const char *to)
{
	sqlite3 *src, *dst;
	sqlite3_backup *b;

	assert_int_equal(sqlite3_open(from, &src), SQLITE_OK);
	assert_int_equal(sqlite3_open(to, &dst), SQLITE_OK);
	assert_non_null(b = sqlite3_backup_init(dst, "main", src, "main"));
	assert_int_equal(sqlite3_backup_step(b, -1), SQLITE_DONE);
	assert_int_equal(sqlite3_backup_finish(b), SQLITE_OK);
	sqlite3_close(dst);
	sqlite3_close(src);
}

/*
 * A backup restored into the live store (sqlite3 .restore) followed by one
 * change can leave a change counter where the verifier last saw it, with
 * other contents: the verifier saw "K active, gen n+1", the restore went back
 * to n, the revoke made it n+1 again.  The generation is a fresh random value
 * per change, so the revoke is seen.
 */
static void restore_then_revoke_is_seen(void **state)
{
	struct fixture *f = *state;
	struct apikey_verifier v = { .store = f->s };
	struct apikey_store *w;
	char key[APIKEY_KEY_MAX + 1], other[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], oid[APIKEY_ID_SIZE];
	char backup[128];

	assert_int_equal(apikey_cache_new(&v.cache, 0), 0);
	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	assert_int_equal(apikey_store_open(&w, &f->cfg, NULL, NULL), 0);
	make_key(w, "bo", "a:b", 0, 0, key, id);
	assert_int_equal(verify_in(&v, key), APIKEY_VALID);
	snprintf(backup, sizeof(backup), "%s/backup.db", f->dir);
	copy_db(f->cfg.db_path, backup);
	make_key(w, "bo", "a:b", 0, 0, other, oid);
	assert_int_equal(verify_in(&v, key), APIKEY_VALID);     /* cached after that change */
	copy_db(backup, f->cfg.db_path);                          /* .restore */
	assert_int_equal(apikey_key_revoke(w, id, TEST_ACTOR), 0);
	assert_int_equal(verify_in(&v, key), APIKEY_REVOKED);
	assert_int_equal(verify_in(&v, other), APIKEY_INVALID_KEY); /* not in the backup */
	apikey_store_free(w);
	apikey_cache_free(v.cache);
	apikey_limiter_free(v.limiter);
}

/*
 * A store replaced the documented way (a consistent copy renamed over the
 * path, the old -wal and -shm removed): the running connection answers
 * REPLACED from then on, never from the old file.
 */
static void renamed_over_is_never_read(void **state)
{
	struct fixture *f = *state;
	struct apikey_verifier v = { .store = f->s };
	struct apikey_verify_request rq = { .source = "test" };
	struct apikey_verify_result res;
	struct apikey_store *w, *n;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], path[APIKEY_PATH_SIZE + 8];
	struct apikey_config nc = f->cfg;

	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	assert_int_equal(apikey_store_open(&w, &f->cfg, NULL, NULL), 0);
	make_key(w, "cy", "a:b", 0, 0, key, id);
	assert_int_equal(verify_in(&v, key), APIKEY_VALID);
	assert_int_equal(apikey_store_check_files(f->s), 0);

	/* the replacement: a copy where the key is revoked */
	snprintf(nc.db_path, sizeof(nc.db_path), "%s/new.db", f->dir);
	copy_db(f->cfg.db_path, nc.db_path);
	snprintf(nc.pepper_path, sizeof(nc.pepper_path), "%s/keys.db.pepper", f->dir);
	assert_int_equal(apikey_store_open(&n, &nc, NULL, NULL), 0);
	assert_int_equal(apikey_key_revoke(n, id, TEST_ACTOR), 0);
	apikey_store_free(n);
	apikey_store_free(w);
	assert_int_equal(rename(nc.db_path, f->cfg.db_path), 0);
	snprintf(path, sizeof(path), "%s-wal", f->cfg.db_path);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", f->cfg.db_path);
	unlink(path);

	assert_int_equal(apikey_store_check_files(f->s), APIKEY_ERR_REPLACED);
	assert_int_equal(apikey_store_changed(f->s), APIKEY_ERR_REPLACED);
	rq.key = key;
	rq.key_len = strlen(key);
	assert_int_equal(apikey_verify_cached(&v, &rq, &res), 0);
	assert_int_equal(res.outcome, APIKEY_UNAVAILABLE);
	assert_int_equal(res.err, APIKEY_ERR_REPLACED);
	assert_false(apikey_store_ready(f->s));
	apikey_store_free(f->s);
	assert_int_equal(apikey_store_open(&f->s, &f->cfg, NULL, NULL), 0);
	assert_int_equal(verify(f->s, key, "a:b", "cy"), APIKEY_REVOKED);
	apikey_limiter_free(v.limiter);
}

/*
 * Restored in place (cp of a consistent copy over the file, then the old
 * -wal and -shm removed): the db file is the same inode, its -wal and -shm
 * are not.  Another process then writes the store.  The old connection,
 * freed, must leave everything alone: SQLite's last close would checkpoint
 * its old WAL into the restored file and delete the new -wal and -shm by
 * name, losing the other process's commit.
 */
static void restored_in_place_is_left_alone(void **state)
{
	struct fixture *f = *state;
	struct apikey_store *w;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], cmd[APIKEY_PATH_SIZE + 200];
	char copy[APIKEY_PATH_SIZE + 8], path[APIKEY_PATH_SIZE + 8], buf[4096];
	struct apikey_account acct;
	ssize_t n;
	int in, out;

	assert_int_equal(apikey_store_open(&w, &f->cfg, NULL, NULL), 0);
	make_key(w, "dee", "a:b", 0, 0, key, id);
	snprintf(copy, sizeof(copy), "%s/copy.db", f->dir);
	copy_db(f->cfg.db_path, copy);                 /* the backup: key active */
	assert_int_equal(apikey_key_revoke(w, id, TEST_ACTOR), 0);
	apikey_store_free(w);                           /* the WAL keeps frames */
	settle(f->s);

	assert_true((in = open(copy, O_RDONLY)) >= 0);
	assert_true((out = open(f->cfg.db_path, O_WRONLY | O_TRUNC)) >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
	snprintf(path, sizeof(path), "%s-wal", f->cfg.db_path);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s-shm", f->cfg.db_path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(apikey_store_check_files(f->s), APIKEY_ERR_REPLACED);

	/* another process commits to the restored store (a fork of this one
	 * would inherit SQLite's in-process state: a program of its own) */
	snprintf(cmd, sizeof(cmd), "python3 -c \"import sqlite3; c = sqlite3.connect('%s'); "
	         "c.execute(\\\"INSERT INTO accounts(owner) VALUES('child')\\\"); c.commit(); c.close()\"",
	         f->cfg.db_path);
	assert_int_equal(system(cmd), 0);

	apikey_store_free(f->s);                        /* the old connection goes */
	f->s = NULL;
	assert_int_equal(apikey_store_open(&f->s, &f->cfg, NULL, NULL), 0);
	assert_int_equal(apikey_store_check(f->s), 0);
	assert_int_equal(verify(f->s, key, "a:b", "dee"), APIKEY_VALID);   /* as restored */
	assert_int_equal(apikey_account_get(f->s, "child", &acct), 0);       /* the commit after it */
}

/* The store remembers a check value of its pepper: another pepper is
 * refused at open (UNAVAILABLE), not read as "every key invalid". */
static void another_pepper_is_refused(void **state)
{
	struct fixture *f = *state;
	struct apikey_store *s;
	char ppath[APIKEY_PATH_SIZE + 8];
	unsigned char junk[APIKEY_PEPPER_LEN];
	int fd;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 13 + 1);
	snprintf(ppath, sizeof(ppath), "%s.pepper", f->cfg.db_path);
	assert_int_equal(unlink(ppath), 0);
	assert_true((fd = open(ppath, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(apikey_store_open(&s, &f->cfg, NULL, NULL), APIKEY_ERR_PEPPER);
	assert_null(s);
}

static int count(void *ctx, const struct apikey_key_info *k)
{
	(void)k;
	(*(int *)ctx)++;
	return 0;
}

/* A store deleted while another process still has it open: a new store at
 * the same path must not attach to that process's -shm (whose index
 * describes the old WAL) nor replay the old WAL. */
static void init_does_not_inherit_a_wal(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE], path[APIKEY_PATH_SIZE + 8];
	struct apikey_store *s;
	sqlite3 *db;
	int n = 0, status;
	pid_t pid;

	for (int i = 0; i < 20; i++)
		make_key(f->s, "di", "a:b", 0, 0, key, id);
	apikey_store_free(f->s);
	f->s = NULL;
	/* the process that keeps the old store open, with frames in its WAL */
	assert_int_equal(sqlite3_open(f->cfg.db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE keys SET name = 'old wal'", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(unlink(f->cfg.db_path), 0);
	snprintf(path, sizeof(path), "%s.pepper", f->cfg.db_path);
	assert_int_equal(unlink(path), 0);

	if ((pid = fork()) == 0) {      /* init in another process, as apikeyctl does */
		int r = apikey_store_init(&f->cfg, NULL, NULL);
		_exit(r == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	assert_int_equal(apikey_store_open(&s, &f->cfg, NULL, NULL), 0);
	assert_int_equal(apikey_store_check(s), 0);
	assert_int_equal(apikey_key_list(s, NULL, count, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(verify(s, key, "a:b", "di"), APIKEY_INVALID_KEY);
	make_key(s, "di", "a:b", 0, 0, key, id);
	assert_int_equal(verify(s, key, "a:b", "di"), APIKEY_VALID);
	assert_int_equal(apikey_store_check(s), 0);
	sqlite3_close(db);
	f->s = s;
}

/* apikeyd's timer makes other processes' unsynced commits durable: one
 * fdatasync of the -wal when it grew, none when it did not. */
static void unsynced_commits_are_synced_once(void **state)
{
	struct fixture *f = *state;
	struct apikey_store *w;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];

	assert_int_equal(apikey_store_open(&w, &f->cfg, NULL, NULL), 0);
	make_key(w, "fay", "a:b", 0, 0, key, id);
	assert_int_equal(apikey_store_sync_wal(f->s), 0);
	n_datasync = 0;
	assert_int_equal(apikey_store_sync_wal(f->s), 0);
	assert_int_equal(n_datasync, 0);                     /* nothing new */
	assert_int_equal(verify(w, key, "a:b", "fay"), APIKEY_VALID);   /* an unsynced usage commit */
	assert_int_equal(apikey_store_sync_wal(f->s), 0);
	assert_int_equal(n_datasync, 1);
	assert_int_equal(apikey_store_sync_wal(f->s), 0);
	assert_int_equal(n_datasync, 1);
	apikey_store_free(w);
}

/* A -wal deleted and a new one made in its place often gets the same inode
 * number once the old one is freed (ext4, tmpfs): its identity must still
 * differ, or apikeyd takes the new store's own -wal for the old store's and
 * refuses to reopen (what ft_resync caught after a replica rebuild). */
static void reused_inode_is_another_file(void **state)
{
	struct fixture *f = *state;
	struct apikey_file_id before[3], after[3];
	char wal[APIKEY_PATH_SIZE + 8];
	int fd, tries;

	snprintf(wal, sizeof(wal), "%s/reuse.db-wal", f->dir);
	assert_true((fd = open(wal, O_CREAT | O_WRONLY, 0600)) >= 0);
	close(fd);
	snprintf(wal, sizeof(wal), "%s/reuse.db", f->dir);
	assert_int_equal(apikey_file_ids_now(wal, before), 0);
	assert_true(before[1].exists);
	assert_true(apikey_file_same(&before[1], &before[1]));
	/* birth times tick with the kernel's coarse clock (a few ms): a -wal
	 * that was in use is older than that */
	usleep(20000);
	snprintf(wal, sizeof(wal), "%s/reuse.db-wal", f->dir);
	for (tries = 0; tries < 200; tries++) {
		unlink(wal);
		assert_true((fd = open(wal, O_CREAT | O_WRONLY, 0600)) >= 0);
		close(fd);
		snprintf(wal, sizeof(wal), "%s/reuse.db", f->dir);
		assert_int_equal(apikey_file_ids_now(wal, after), 0);
		snprintf(wal, sizeof(wal), "%s/reuse.db-wal", f->dir);
		if (after[1].ino == before[1].ino)
			break;
	}
	if (tries == 200 || !before[1].born_ns)
		skip();   /* no reuse seen, or no birth times on this file system */
	assert_false(apikey_file_same(&before[1], &after[1]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(steady_state_costs_no_syscall, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(restore_then_revoke_is_seen, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(renamed_over_is_never_read, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(restored_in_place_is_left_alone, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(another_pepper_is_refused, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(init_does_not_inherit_a_wal, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(unsynced_commits_are_synced_once, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(reused_inode_is_another_file, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

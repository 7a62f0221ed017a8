/* test_ratelimit.c — core/ratelimit.c: GCRA arithmetic, and the host's
 * rate-limit table: one limit for every thread and process, its bound when a
 * bucket is full, a hostile or damaged file refused, one mechanism for the
 * persisted (PAM, CLI) and cached (apikeyd) modes.  The file is included so
 * a test can find key ids that share a bucket (its hash is static). */
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include "unit.h"
#include "../../core/ratelimit.c"

#define SEC 1000000LL

static void burst_then_steady(void **state)
{
	struct apikey_ratelimit rl;
	int64_t tat = 0, now = 1000 * SEC;

	(void)state;
	for (int i = 0; i < 60; i++) {
		apikey_gcra(&tat, now, 60, &rl);
		assert_true(rl.allowed);
		assert_int_equal(rl.limit, 60);
		assert_int_equal(rl.remaining, 59 - i);
	}
	apikey_gcra(&tat, now, 60, &rl);
	assert_false(rl.allowed);
	assert_int_equal(rl.retry_after_s, 1);
	assert_int_equal(rl.reset_s, 60);
	int64_t before = tat;
	apikey_gcra(&tat, now, 60, &rl);          /* a refused request is not charged */
	assert_int_equal(tat, before);
	apikey_gcra(&tat, now + SEC, 60, &rl);   /* one emission interval later: one more */
	assert_true(rl.allowed);
	assert_int_equal(rl.remaining, 0);
	apikey_gcra(&tat, now + 120 * SEC, 60, &rl);   /* idle: full again */
	assert_true(rl.allowed);
	assert_int_equal(rl.remaining, 59);
}

static void extremes(void **state)
{
	struct apikey_ratelimit rl;
	int64_t tat = 0, now = 5 * SEC;
	int allowed = 0;

	(void)state;
	apikey_gcra(&tat, now, 1, &rl);
	assert_true(rl.allowed);
	apikey_gcra(&tat, now, 1, &rl);
	assert_false(rl.allowed);
	assert_int_equal(rl.retry_after_s, 60);
	tat = 0;
	for (int i = 0; i < 1000001; i++) {
		apikey_gcra(&tat, now, 1000000, &rl);
		allowed += rl.allowed;
	}
	assert_int_equal(allowed, 1000000);
}

#define KEY_A "key_AAAAAAAAAAAAAAAA"
#define KEY_B "key_BBBBBBBBBBBBBBBB"

static int64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* n requests at once: all or none. */
static void consume_n(void **state)
{
	struct fixture *f = *state;
	struct apikey_limiter *l;
	struct apikey_ratelimit rl;
	int64_t now = wall_us();

	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), 0);
	assert_int_equal(apikey_limiter_consume(l, KEY_A, 10, now, 7, &rl), 0);
	assert_true(rl.allowed);
	assert_int_equal(rl.remaining, 3);
	assert_int_equal(apikey_limiter_consume(l, KEY_A, 10, now, 4, &rl), 0);
	assert_false(rl.allowed);                /* 4 > 3 left: none taken */
	assert_int_equal(apikey_limiter_consume(l, KEY_A, 10, now, 3, &rl), 0);
	assert_true(rl.allowed);
	assert_int_equal(rl.remaining, 0);
	assert_int_equal(apikey_limiter_consume(l, KEY_B, 10, now, 1, &rl), 0);
	assert_true(rl.allowed);                 /* another key, its own budget */
	apikey_limiter_free(l);
	apikey_limiter_free(NULL);
}

struct worker { const char *db; int allowed; int64_t now; };

static void *hammer_thread(void *arg)
{
	struct worker *w = arg;
	struct apikey_limiter *l;
	struct apikey_ratelimit rl;

	if (apikey_limiter_open(&l, w->db, NULL, NULL) != 0)
		return (void *)1;
	for (int i = 0; i < 5000; i++) {
		apikey_limiter_consume(l, "key_shared000000000", 1000, w->now, 1, &rl);
		w->allowed += rl.allowed;
	}
	apikey_limiter_free(l);
	return NULL;
}

/* Four threads, each with its own mapping, at one instant: one burst. */
static void shared_by_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t t[4];
	struct worker w[4];
	int total = 0;
	int64_t now = wall_us();

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ f->cfg.db_path, 0, now };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
		total += w[i].allowed;
	}
	assert_int_equal(total, 1000);
}

/*
 * Three processes hammer one key at 60,000/min (one per ms) on the real
 * clock for 1.5 s.  One GCRA over their merged checks admits at most the
 * burst plus one per elapsed ms (+1); the table may add one per process in
 * the insert race (DESIGN.md, "Rate limits").  The numbers are printed: they
 * are the overshoot docs/BENCHMARKS.md reports.
 */
static void shared_by_processes(void **state)
{
	struct fixture *f = *state;
	int fds[3][2];
	pid_t pid[3];
	long total = 0;
	int64_t first = INT64_MAX, last = 0, start = wall_us() + 100000, end = start + 1500000;

	for (int p = 0; p < 3; p++) {
		assert_int_equal(pipe(fds[p]), 0);
		if ((pid[p] = fork()) == 0) {
			struct apikey_limiter *l;
			struct apikey_ratelimit rl;
			int64_t v[3] = { 0, INT64_MAX, 0 }, now;

			if (apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL) != 0)
				_exit(1);
			while (wall_us() < start)
				;
			while ((now = wall_us()) < end) {
				if (apikey_limiter_consume(l, "key_hammered0000000", 60000, now, 1, &rl) != 0)
					_exit(2);
				v[0] += rl.allowed;
				if (now < v[1])
					v[1] = now;
				v[2] = now;
			}
			_exit(write(fds[p][1], v, sizeof(v)) == (ssize_t)sizeof(v) ? 0 : 3);
		}
		close(fds[p][1]);
	}
	for (int p = 0; p < 3; p++) {
		int64_t v[3];
		int status;

		assert_int_equal(read(fds[p][0], v, sizeof(v)), (ssize_t)sizeof(v));
		close(fds[p][0]);
		assert_int_equal(waitpid(pid[p], &status, 0), pid[p]);
		assert_int_equal(status, 0);
		total += v[0];
		if (v[1] < first)
			first = v[1];
		if (v[2] > last)
			last = v[2];
	}
	long bound = 60000 + (long)((last - first) / 1000) + 1;
	printf("# 3 processes, one key at 60000/min, %.3f s: admitted %ld, one GCRA admits at most %ld "
	       "(%.4fx)\n", (double)(last - first) / 1e6, total, bound, (double)total / (double)bound);
	assert_true(total <= bound + 3);
	assert_true(total >= bound * 99 / 100);
}

/* Key ids whose bucket (under this file's salt) is the same. */
static void same_bucket(struct apikey_limiter *l, char ids[RL_SLOTS + 1][APIKEY_ID_SIZE])
{
	struct rl_table *t = l->cur;
	uint64_t want = 0;
	int n = 0;

	for (unsigned i = 0; n < RL_SLOTS + 1; i++) {
		char id[APIKEY_ID_SIZE];
		uint64_t b;

		snprintf(id, sizeof(id), "key_%016u", i);
		b = rl_hash(t->h->salt, id, strlen(id)) & (t->h->nbuckets - 1);
		if (n == 0)
			want = b;
		if (b == want)
			memcpy(ids[n++], id, sizeof(id));
	}
}

/*
 * A bucket of 8 keys that all still carry state refuses a ninth key
 * (APIKEY_ERR_FULL) instead of forgetting one of them: no key in the table
 * is ever let in beyond its limit.  A key whose TAT has passed (full burst
 * again) carries nothing: its slot is taken.
 */
static void full_bucket_refuses(void **state)
{
	struct fixture *f = *state;
	char ids[RL_SLOTS + 1][APIKEY_ID_SIZE];
	struct apikey_limiter *l;
	struct apikey_limiter_stats st;
	struct apikey_ratelimit rl;
	int64_t now = wall_us();

	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), 0);
	same_bucket(l, ids);
	for (int i = 0; i < RL_SLOTS; i++) {
		assert_int_equal(apikey_limiter_consume(l, ids[i], 2, now, 2, &rl), 0);
		assert_true(rl.allowed);
	}
	assert_int_equal(apikey_limiter_consume(l, ids[RL_SLOTS], 2, now, 1, &rl), APIKEY_ERR_FULL);
	assert_false(rl.allowed);
	/* the eight keep their charges: none is forgotten */
	for (int i = 0; i < RL_SLOTS; i++) {
		assert_int_equal(apikey_limiter_consume(l, ids[i], 2, now + SEC, 1, &rl), 0);
		assert_false(rl.allowed);
	}
	apikey_limiter_stats(l, &st);
	assert_int_equal(st.full, 1);
	assert_int_equal(st.slots, (uint64_t)RL_BUCKETS_DEFAULT * RL_SLOTS);
	/* 61 s later every bucket is full again: the ninth key gets a slot */
	assert_int_equal(apikey_limiter_consume(l, ids[RL_SLOTS], 2, now + 61 * SEC, 1, &rl), 0);
	assert_true(rl.allowed);
	apikey_limiter_free(l);
}

/* Whatever a slot holds, a key gets at most its burst from it. */
static void garbage_never_allows_more(void **state)
{
	struct fixture *f = *state;
	struct apikey_limiter *l;
	struct apikey_ratelimit rl;
	struct rl_table *t;
	int64_t now = wall_us();
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int allowed = 0, full = 0;

	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), 0);
	t = l->cur;
	for (uint64_t i = 0; i < (uint64_t)t->h->nbuckets * RL_SLOTS; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		t->slots[i] = x;
	}
	for (int k = 0; k < 200; k++) {
		char id[APIKEY_ID_SIZE];
		snprintf(id, sizeof(id), "key_%016d", k);
		for (int i = 0; i < 6; i++) {
			int r = apikey_limiter_consume(l, id, 5, now, 1, &rl);
			if (r == APIKEY_ERR_FULL)
				full++;
			else
				assert_int_equal(r, 0);
			allowed += rl.allowed;
		}
	}
	assert_true(allowed <= 200 * 5);
	printf("# random slots: %d of 1200 requests allowed, %d refused as a full bucket\n", allowed, full);
	apikey_limiter_free(l);
}

static void rl_path(const struct fixture *f, char out[APIKEY_PATH_SIZE + 4])
{
	snprintf(out, APIKEY_PATH_SIZE + 4, "%s.rl", f->cfg.db_path);
}

/* A damaged or hostile table is refused (UNAVAILABLE), never used. */
static void hostile_tables_refused(void **state)
{
	struct fixture *f = *state;
	char path[APIKEY_PATH_SIZE + 4], other[APIKEY_PATH_SIZE + 16];
	struct apikey_limiter *l;
	struct stat st;
	int fd;

	rl_path(f, path);
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), 0);   /* made */
	apikey_limiter_free(l);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);   /* the store's mode (init: 0640) */

	assert_int_equal(chmod(path, 0646), 0);
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), APIKEY_ERR_STORE);
	assert_null(l);
	assert_int_equal(chmod(path, 0640), 0);

	assert_int_equal(chown(path, 65534, (gid_t)-1), 0);   /* nobody */
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), APIKEY_ERR_STORE);
	assert_int_equal(chown(path, 0, (gid_t)-1), 0);

	snprintf(other, sizeof(other), "%s.link", path);
	assert_int_equal(link(path, other), 0);                  /* two names */
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), APIKEY_ERR_STORE);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(other, path), 0);               /* a symlink */
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), APIKEY_ERR_STORE);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rename(other, path), 0);
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), 0);
	apikey_limiter_free(l);

	assert_true((fd = open(path, O_WRONLY)) >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 0), 1);               /* magic */
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), APIKEY_ERR_STORE);
	assert_int_equal(pwrite(fd, "A", 1, 0), 1);
	assert_int_equal(pwrite(fd, "\x07", 1, 12), 1);           /* header_size: check value wrong */
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), APIKEY_ERR_STORE);
	assert_int_equal(pwrite(fd, "\x80", 1, 12), 1);
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), 0);
	apikey_limiter_free(l);
	assert_int_equal(ftruncate(fd, 4096), 0);                /* truncated */
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), APIKEY_ERR_STORE);
	close(fd);
}

/* The file replaced under a long-lived process: refresh maps the new one. */
static void refresh_follows_the_file(void **state)
{
	struct fixture *f = *state;
	char path[APIKEY_PATH_SIZE + 4];
	struct apikey_limiter *l, *other;
	struct apikey_ratelimit rl;
	int64_t now = wall_us();

	rl_path(f, path);
	assert_int_equal(apikey_limiter_open(&l, f->cfg.db_path, NULL, NULL), 0);
	assert_int_equal(apikey_limiter_consume(l, KEY_A, 1, now, 1, &rl), 0);
	assert_true(rl.allowed);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(apikey_limiter_refresh(l), 0);          /* made again */
	assert_int_equal(apikey_limiter_open(&other, f->cfg.db_path, NULL, NULL), 0);
	assert_int_equal(apikey_limiter_consume(other, KEY_A, 1, now, 1, &rl), 0);
	assert_true(rl.allowed);                                 /* a new table: a fresh key */
	assert_int_equal(apikey_limiter_consume(l, KEY_A, 1, now, 1, &rl), 0);
	assert_false(rl.allowed);                                /* l maps the same one now */
	apikey_limiter_free(other);
	apikey_limiter_free(l);
}

/* PAM (persisted) and apikeyd (cached) charge one limit. */
static void one_limit_for_every_front_end(void **state)
{
	struct fixture *f = *state;
	char key[APIKEY_KEY_MAX + 1], id[APIKEY_ID_SIZE];
	struct apikey_verifier v = { .store = f->s };
	struct apikey_verify_request rq = { .source = "test" };
	struct apikey_verify_result res;
	int allowed = 0, limited = 0;

	assert_int_equal(apikey_limiter_open(&v.limiter, f->cfg.db_path, NULL, NULL), 0);
	make_key(f->s, "pat", "a:b", 4, 0, key, id);
	rq.key = key;
	rq.key_len = strlen(key);
	for (int i = 0; i < 6; i++) {
		if (i % 2)
			apikey_verify_cached(&v, &rq, &res);
		else
			apikey_verify(f->s, &rq, &res);
		allowed += res.outcome == APIKEY_VALID;
		limited += res.outcome == APIKEY_RATE_LIMITED;
	}
	assert_int_equal(allowed, 4);
	assert_int_equal(limited, 2);
	apikey_limiter_free(v.limiter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_then_steady), cmocka_unit_test(extremes),
		cmocka_unit_test_setup_teardown(consume_n, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(shared_by_threads, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(shared_by_processes, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(full_bucket_refuses, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(garbage_never_allows_more, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(hostile_tables_refused, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(refresh_follows_the_file, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(one_limit_for_every_front_end, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* watch_check.c — the property sidecar/watch.c rests on: an event caused by
 * another process (a rename over the store's path) is seen by the watching
 * thread before it returns from the read that brings the next message sent
 * after the rename returned.  A child renames, then writes one byte into a
 * pipe; the worker thread, blocked in read() on that pipe, must find its
 * flag set every time.  TAP on stdout.
 *
 *   watch_check DIR [ROUNDS] */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sidecar.h"

int64_t sc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct apikey_config cfg;
static int go[2], done[2];
static long rounds, missed, wrong;

static void *worker(void *arg)
{
	struct sc_watch wa;
	char c;

	(void)arg;
	if (sc_watch_open(&wa, &cfg, true) != 0) {
		perror("sc_watch_open");
		exit(1);
	}
	sc_watch_drain(&wa);
	if (write(done[1], "r", 1) != 1)
		exit(1);
	for (long i = 0; i < rounds; i++) {
		if (read(go[0], &c, 1) != 1)
			exit(1);
		if (!sc_watch_fired())
			missed++;
		if (!(sc_watch_drain(&wa) & WATCH_FILES))
			wrong++;
		if (write(done[1], "k", 1) != 1)
			exit(1);
	}
	sc_watch_close(&wa);
	return NULL;
}

int main(int argc, char **argv)
{
	char tmp[APIKEY_PATH_SIZE + 8], c;
	pthread_t t;
	pid_t pid;
	int status;

	if (argc < 2)
		return 2;
	rounds = argc > 2 ? atol(argv[2]) : 2000;
	apikey_config_defaults(&cfg);
	snprintf(cfg.db_path, sizeof(cfg.db_path), "%s/keys.db", argv[1]);
	snprintf(tmp, sizeof(tmp), "%s/keys.db.new", argv[1]);
	close(open(cfg.db_path, O_CREAT | O_WRONLY, 0600));
	if (pipe(go) || pipe(done) || sc_watch_install() != 0)
		return 1;
	if (pthread_create(&t, NULL, worker, NULL) != 0 || read(done[0], &c, 1) != 1)
		return 1;
	if ((pid = fork()) == 0) {          /* another process makes the changes */
		for (long i = 0; i < rounds; i++) {
			int fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC, 0600);
			close(fd);
			if (rename(tmp, cfg.db_path) != 0 || write(go[1], "g", 1) != 1 || read(done[0], &c, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	waitpid(pid, &status, 0);
	pthread_join(t, NULL);
	printf("%s 1 - a rename in another process is seen before the next read returns "
	       "(%ld rounds, %ld missed)\n", status == 0 && missed == 0 ? "ok" : "not ok", rounds, missed);
	printf("%s 2 - and it reads as a change of the store's files (%ld not)\n", wrong == 0 ? "ok" : "not ok",
	       wrong);
	printf("1..2\n");
	return status == 0 && missed == 0 && wrong == 0 ? 0 : 1;
}

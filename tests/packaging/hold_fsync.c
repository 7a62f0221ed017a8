/* hold_fsync.c — an LD_PRELOAD shim for tests/packaging/t_deb.sh.
 *
 * The first fsync()/fdatasync() on a file whose name ends in "-wal" (SQLite
 * syncing a commit) writes "held" to $HOLD_READY and then waits until a line
 * can be read from the FIFO $HOLD_RELEASE.  Loaded into pamtester, it keeps
 * the PAM module inside its commit, with the store's -wal and -shm files
 * open (the module made them, as root), for as long as the test needs to
 * start apikeyd beside it: the "module first" order, without a sleep. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int held;

static void maybe_hold(int fd)
{
	char link[64], name[4096], buf[8];
	const char *ready = getenv("HOLD_READY"), *release = getenv("HOLD_RELEASE");
	ssize_t n;
	int rfd;

	if (held || !ready || !release)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, name, sizeof(name) - 1);
	if (n < 4)
		return;
	name[n] = '\0';
	if (strcmp(name + n - 4, "-wal") != 0)
		return;
	held = 1;
	rfd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (rfd >= 0) {
		(void)!write(rfd, "held\n", 5);
		close(rfd);
	}
	rfd = open(release, O_RDONLY | O_CLOEXEC);   /* blocks until the test writes */
	if (rfd >= 0) {
		(void)!read(rfd, buf, sizeof(buf));
		close(rfd);
	}
}

int fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

	maybe_hold(fd);
	return real(fd);
}

int fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	maybe_hold(fd);
	return real(fd);
}

/* fleet_propagate.c — revocation propagation through the product: from
 * `apikeyctl revoke` returning to the first refusal (401) on each of the
 * fleet's apikeyd hosts (docs/BENCHMARKS.md "Fleet mode").
 *
 *   fleet-propagate KEYFILE PORT...
 *     KEYFILE: lines "ID KEY" (keys valid on every host, high rate limits).
 *     For each line: run `apikeyctl revoke ID` ($APIKEYCTL, with the
 *     environment as given: APIKEY_CONF names a host without a follower, so
 *     the command does not wait for a replica), take the time when it has
 *     returned (waitpid), then send GET /auth with the key to every port at
 *     once on keep-alive connections, again and again (50 µs apart), until
 *     each answers 401; its latency is that time minus the return.
 *
 * Prints the distribution over every (revocation, host) and over the
 * slowest host of each revocation.  Nothing here is a test. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MAX_HOSTS 32
#define MAX_REVOKES 5000
#define TIMEOUT_NS 5000000000LL

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "fleet-propagate: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int connect_to(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

struct host {
	int port, fd;
	char buf[8192];
	size_t len;
	int64_t seen;       /* latency, or -1 */
	bool waiting;
};

static void send_req(struct host *h, const char *key)
{
	char req[512];
	int n = snprintf(req, sizeof(req), "GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n",
	                 key);

	if (write(h->fd, req, (size_t)n) != n)
		die("write");
	h->waiting = true;
	h->len = 0;
}

/* A whole response in buf?  Returns its status, 0 if not yet whole. */
static int response(struct host *h)
{
	char *end, *cl;
	size_t head, body = 0;

	h->buf[h->len] = '\0';
	if (!(end = strstr(h->buf, "\r\n\r\n")))
		return 0;
	head = (size_t)(end - h->buf) + 4;
	if ((cl = strcasestr(h->buf, "\r\nContent-Length:")) && cl < end)
		body = strtoul(cl + 17, NULL, 10);
	if (h->len < head + body)
		return 0;
	return (int)strtol(h->buf + 9, NULL, 10);
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void dist(const char *label, int64_t *v, size_t n)
{
	size_t p50, p90, p99;

	if (!n) {
		printf("  %-40s (none)\n", label);
		return;
	}
	qsort(v, n, sizeof(*v), cmp);
	p50 = (n * 50 + 99) / 100;
	p90 = (n * 90 + 99) / 100;
	p99 = (n * 99 + 99) / 100;
	printf("  %-40s p50 %7.3f ms  p90 %7.3f ms  p99 %7.3f ms  max %7.3f ms  (n=%zu)\n", label,
	       (double)v[p50 - 1] / 1e6, (double)v[p90 - 1] / 1e6, (double)v[p99 - 1] / 1e6, (double)v[n - 1] / 1e6,
	       n);
}

int main(int argc, char **argv)
{
	static char ids[MAX_REVOKES][32], keys[MAX_REVOKES][160];
	static int64_t each[MAX_REVOKES * MAX_HOSTS], slowest[MAX_REVOKES], cli[MAX_REVOKES];
	struct host hosts[MAX_HOSTS];
	const char *ctl = getenv("APIKEYCTL");
	size_t ne = 0, ns = 0, nrev = 0, missed = 0;
	int nh = argc - 2;
	FILE *f;

	if (argc < 3 || nh > MAX_HOSTS || !ctl) {
		fprintf(stderr, "usage: APIKEYCTL=... fleet-propagate KEYFILE PORT...\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!(f = fopen(argv[1], "r")))
		die(argv[1]);
	while (nrev < MAX_REVOKES && fscanf(f, "%31s %159s", ids[nrev], keys[nrev]) == 2)
		nrev++;
	fclose(f);
	for (int i = 0; i < nh; i++) {
		char *end;
		long port = strtol(argv[2 + i], &end, 10);

		if (*argv[2 + i] == '\0' || *end || port < 1 || port > 65535) {
			fprintf(stderr, "fleet-propagate: not a port: %s\n", argv[2 + i]);
			return 2;
		}
		hosts[i].port = (int)port;
		hosts[i].fd = connect_to(hosts[i].port);
	}
	for (size_t r = 0; r < nrev; r++) {
		int64_t t0, tc, worst = 0;
		int left = nh, st;
		pid_t pid;

		tc = now_ns();
		if ((pid = fork()) < 0)
			die("fork");
		if (pid == 0) {
			int dn = open("/dev/null", O_WRONLY);
			dup2(dn, 1);
			execl(ctl, ctl, "revoke", ids[r], (char *)NULL);
			_exit(127);
		}
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "fleet-propagate: revoke %s failed\n", ids[r]);
			return 1;
		}
		t0 = now_ns();
		cli[r] = t0 - tc;
		for (int i = 0; i < nh; i++) {
			hosts[i].seen = -1;
			send_req(&hosts[i], keys[r]);
		}
		while (left > 0 && now_ns() - t0 < TIMEOUT_NS) {
			struct pollfd p[MAX_HOSTS];
			int n = 0;

			for (int i = 0; i < nh; i++)
				p[n++] = (struct pollfd){ .fd = hosts[i].fd, .events = hosts[i].waiting ? POLLIN : 0 };
			if (poll(p, (nfds_t)n, 100) < 0 && errno != EINTR)
				die("poll");
			for (int i = 0; i < nh; i++) {
				struct host *h = &hosts[i];
				ssize_t got;
				int status;

				if (!(p[i].revents & POLLIN))
					continue;
				got = read(h->fd, h->buf + h->len, sizeof(h->buf) - 1 - h->len);
				if (got <= 0)
					die("read");
				h->len += (size_t)got;
				if (!(status = response(h)))
					continue;
				h->waiting = false;
				if (status == 401 && h->seen < 0) {
					h->seen = now_ns() - t0;
					each[ne++] = h->seen;
					if (h->seen > worst)
						worst = h->seen;
					left--;
				} else if (h->seen < 0) {
					struct timespec pause = { 0, 50000 };
					nanosleep(&pause, NULL);
					send_req(h, keys[r]);
				}
			}
		}
		/* a request still in flight for a host that answered: drain it */
		for (int i = 0; i < nh; i++)
			while (hosts[i].waiting) {
				ssize_t got = read(hosts[i].fd, hosts[i].buf + hosts[i].len,
				                   sizeof(hosts[i].buf) - 1 - hosts[i].len);
				if (got <= 0)
					die("read");
				hosts[i].len += (size_t)got;
				if (response(&hosts[i]))
					hosts[i].waiting = false;
			}
		if (left > 0)
			missed += (size_t)left;
		else
			slowest[ns++] = worst;
		usleep(5000);   /* 5 ms between revocations, like the floor */
	}
	printf("propagate (product): %zu revocations, %d apikeyd followers, from `apikeyctl revoke` returning"
	       " to the first 401 on a host\n", nrev, nh);
	dist("apikeyctl revoke (fork..exit)", cli, nrev);
	dist("returned -> refused on a host (each)", each, ne);
	dist("returned -> refused on all hosts", slowest, ns);
	printf("  missed (not refused within 5 s): %zu\n", missed);
	return missed ? 1 : 0;
}

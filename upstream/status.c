/* status.c — <db>.follower, beside the replica: the follower's lock (an OFD
 * write lock on the whole file: one follower per replica, and how
 * apikeyctl learns that a follower runs on this host) and the status it
 * publishes there for `apikeyctl status` — a fixed-size text record
 * rewritten in place (page cache only, never synced), framed by a
 * generation number at both ends so a reader never takes a torn one. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "upstream_int.h"

#define STATUS_SIZE 768

int up_status_path(const char *db_path, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s.follower", db_path);

	return n < 0 || (size_t)n >= outsz ? APIKEY_ERR_TOO_LONG : 0;
}

static struct flock whole(short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

	return fl;
}

int up_status_lock(const char *db_path, int *fd_out, long *holder)
{
	char path[APIKEY_PATH_SIZE];
	struct flock fl = whole(F_WRLCK);
	struct stat st;
	mode_t mode = 0640;
	int fd;

	*fd_out = -1;
	*holder = 0;
	if (up_status_path(db_path, path, sizeof(path)) != 0)
		return APIKEY_ERR_TOO_LONG;
	/* the replica's group may read it (apikeyctl status as an operator) */
	if (stat(db_path, &st) == 0)
		mode = st.st_mode & 0660;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode ? mode : 0640)) < 0)
		return APIKEY_ERR_IO;
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		struct apikey_follower_status s;
		int err = errno;
		if (up_status_parse_fd(fd, &s) == 0)
			*holder = s.pid;
		close(fd);
		errno = err;
		return err == EAGAIN || err == EACCES ? APIKEY_ERR_BUSY : APIKEY_ERR_IO;
	}
	*fd_out = fd;
	return 0;
}

bool up_follower_running(const char *db_path, long *pid)
{
	char path[APIKEY_PATH_SIZE];
	struct flock fl = whole(F_RDLCK);
	bool held;
	int fd;

	if (pid)
		*pid = 0;
	if (up_status_path(db_path, path, sizeof(path)) != 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	if (held && pid) {
		struct apikey_follower_status s;
		if (up_status_parse_fd(fd, &s) == 0)
			*pid = s.pid;
	}
	close(fd);
	return held;
}

void up_status_write(int fd, const struct apikey_follower_status *s, uint64_t gen)
{
	char buf[STATUS_SIZE];
	int n;

	memset(buf, ' ', sizeof(buf));
	n = snprintf(buf, sizeof(buf),
	             "gen=%" PRIu64 "\npid=%ld\nstate=%s\napplied_seq=%" PRId64 "\nhead_seq=%" PRId64
	             "\nlast_contact_ms=%" PRId64 "\nsynced_ms=%" PRId64 "\napplied_txns=%" PRIu64
	             "\nresyncs=%" PRIu64 "\nrebuilds=%" PRIu64 "\nerrors=%" PRIu64 "\nusage_rounds=%" PRIu64
	             "\nupstream=%s\nerror=%s\nend=%" PRIu64 "\n",
	             gen, s->pid, apikey_follower_state_name(s->state), s->applied_seq, s->head_seq,
	             s->last_contact_ms, s->synced_ms, s->applied_txns, s->resyncs, s->rebuilds, s->errors,
	             s->usage_rounds, s->upstream, s->error, gen);
	if (n < 0 || n >= (int)sizeof(buf))
		return;
	buf[n] = ' ';
	buf[sizeof(buf) - 1] = '\n';
	if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return;    /* a status we cannot publish is only a status */
}

/* "name=value" lines into s; 0 when the record is whole (gen == end). */
static int parse(char *buf, struct apikey_follower_status *s)
{
	long long gen = -1, end = -2;
	char *line, *next;

	memset(s, 0, sizeof(*s));
	s->state = APIKEY_FOLLOWER_STARTING;
	for (line = buf; line && *line; line = next) {
		char *eq, *nl = strchr(line, '\n');
		const char *v;
		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		if (!(eq = strchr(line, '=')))
			continue;
		*eq = '\0';
		v = eq + 1;
#define NUMF(name, field) else if (!strcmp(line, name)) s->field = up_parse_int(v, 0, INT64_MAX)
		if (!strcmp(line, "gen"))
			gen = up_parse_int(v, 0, INT64_MAX);
		else if (!strcmp(line, "end"))
			end = up_parse_int(v, 0, INT64_MAX);
		else if (!strcmp(line, "pid"))
			s->pid = (long)up_parse_int(v, 0, INT32_MAX);
		else if (!strcmp(line, "state")) {
			for (int i = 0; i <= APIKEY_FOLLOWER_REFUSED; i++)
				if (!strcmp(v, apikey_follower_state_name((enum apikey_follower_state)i)))
					s->state = (enum apikey_follower_state)i;
		}
		NUMF("applied_seq", applied_seq);
		NUMF("head_seq", head_seq);
		NUMF("last_contact_ms", last_contact_ms);
		NUMF("synced_ms", synced_ms);
		NUMF("applied_txns", applied_txns);
		NUMF("resyncs", resyncs);
		NUMF("rebuilds", rebuilds);
		NUMF("errors", errors);
		NUMF("usage_rounds", usage_rounds);
		else if (!strcmp(line, "upstream"))
			snprintf(s->upstream, sizeof(s->upstream), "%s", v);
		else if (!strcmp(line, "error")) {
			snprintf(s->error, sizeof(s->error), "%s", v);
			/* trailing padding */
			for (size_t n = strlen(s->error); n && s->error[n - 1] == ' '; n--)
				s->error[n - 1] = '\0';
		}
#undef NUMF
	}
	return gen >= 0 && gen == end ? 0 : APIKEY_ERR_INVALID;
}

int up_status_parse_fd(int fd, struct apikey_follower_status *s)
{
	char buf[STATUS_SIZE + 1];

	for (int tries = 0; tries < 20; tries++) {
		ssize_t n = pread(fd, buf, STATUS_SIZE, 0);
		if (n <= 0)
			return APIKEY_ERR_IO;
		buf[n] = '\0';
		if (parse(buf, s) == 0)
			return 0;
		usleep(500);
	}
	return APIKEY_ERR_INVALID;
}

int apikey_follower_status_read(const char *db_path, struct apikey_follower_status *s)
{
	char path[APIKEY_PATH_SIZE];
	long pid;
	int fd, r;

	memset(s, 0, sizeof(*s));
	if (!up_follower_running(db_path, &pid))
		return APIKEY_ERR_NOT_FOUND;
	if (up_status_path(db_path, path, sizeof(path)) != 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return APIKEY_ERR_NOT_FOUND;
	r = up_status_parse_fd(fd, s);
	close(fd);
	if (r == 0)
		s->staleness_ms = up_staleness(s, up_now_ms());
	return r;
}

int64_t up_staleness(const struct apikey_follower_status *s, int64_t now)
{
	if (s->state == APIKEY_FOLLOWER_FOLLOWING && s->applied_seq >= s->head_seq)
		return 0;
	return s->synced_ms ? now - s->synced_ms : now;
}

const char *apikey_follower_state_name(enum apikey_follower_state st)
{
	switch (st) {
	case APIKEY_FOLLOWER_STARTING:  return "starting";
	case APIKEY_FOLLOWER_FOLLOWING: return "following";
	case APIKEY_FOLLOWER_SYNCING:   return "syncing";
	case APIKEY_FOLLOWER_DOWN:      return "down";
	case APIKEY_FOLLOWER_REFUSED:   return "refused";
	}
	return "unknown";
}

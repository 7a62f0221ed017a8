/* cmd_import.c — `apikeyctl import FILE`: keys with foreign hashes from JSON
 * lines.  All or nothing per file: every line is checked first (every bad
 * line reported with its number), and only a clean file is written, in
 * batches of IMPORT_BATCH lines per transaction so verifiers are never kept
 * from the write lock for long.  Progress on stderr when it is a terminal. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "import_parse.h"

#define IMPORT_BATCH       10000  /* lines per transaction */
#define IMPORT_SHOW_BAD    20     /* bad lines printed; the rest are counted */

static const char import_usage[] =
	"usage: apikeyctl import [--dry-run] FILE\n"
	"Import keys that another system issued, by their hashes, from JSON lines\n"
	"(FILE, or - for stdin), one object per line:\n"
	"  {\"hash\": \"sha256:<64 hex>\" | \"$2b$...\" | \"$argon2id$...\",\n"
	"   \"hint\": \"<the first 6-16 characters of the key>\", \"owner\": \"alice\",\n"
	"   \"name\": \"ci\", \"scopes\": [\"a:b\", \"c:d\"] | \"a:b,c:d\",\n"
	"   \"expires_at\": \"2027-01-01T00:00:00Z\" | null, \"rate_limit\": 60,\n"
	"   \"metadata\": {...}}\n"
	"hash, hint, owner and scopes are required; unknown fields are refused.\n"
	"All or nothing: every line is checked first and any bad line (reported\n"
	"with its number) leaves the store unchanged.  Imported keys are re-hashed\n"
	"to HMAC-SHA256 on their first successful use.\n"
	"  --dry-run   check the file, write nothing\n";

struct progress {
	bool tty;
	const char *phase;
	double start, last;
	int last_pct;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* At most every 1% or 0.2 s: "import: writing  42%  420000 lines  95000 lines/s". */
static void progress(struct progress *pg, unsigned long long done, unsigned long long total)
{
	double now;
	int pct;

	if (!pg->tty)
		return;
	now = mono();
	pct = total ? (int)(done * 100 / total) : -1;
	if (pct == pg->last_pct && now - pg->last < 0.2)
		return;
	pg->last = now;
	pg->last_pct = pct;
	if (pct >= 0)
		fprintf(stderr, "\r\033[Kimport: %s %3d%%  %llu lines  %.0f lines/s", pg->phase, pct, done,
		        done / (now - pg->start + 1e-9));
	else
		fprintf(stderr, "\r\033[Kimport: %s  %llu lines  %.0f lines/s", pg->phase, done,
		        done / (now - pg->start + 1e-9));
}

static void progress_start(struct progress *pg, const char *phase)
{
	pg->phase = phase;
	pg->start = mono();
	pg->last = 0;
	pg->last_pct = -2;
}

static void progress_end(struct progress *pg)
{
	if (pg->tty)
		fputs("\r\033[K", stderr);
}

struct source {
	FILE *in;          /* the file, or a spool of stdin */
	const char *name;
	off_t size;        /* bytes, for progress; 0 when unknown */
};

/* Pass 1: check every line.  Stdin is spooled to an unlinked temporary file
 * so that pass 2 can read it again. */
static int check_all(struct ctl *ctl, struct source *src, bool from_stdin,
                     unsigned long long *n_keys, struct progress *pg)
{
	struct import_line il;
	char why[IMPORT_WHY_SIZE], *line = NULL;
	unsigned long long lineno = 0, bad = 0, bytes = 0;
	size_t cap = 0;
	ssize_t len;
	FILE *in = from_stdin ? stdin : src->in, *spool = NULL;
	int r;

	if (from_stdin && !(spool = tmpfile()))
		return cli_fail(ctl, "cannot spool stdin: %s", strerror(errno));
	progress_start(pg, "checking");
	while ((len = getline(&line, &cap, in)) >= 0) {
		lineno++;
		bytes += (unsigned long long)len;
		if (spool && fwrite(line, 1, (size_t)len, spool) != (size_t)len) {
			r = cli_fail(ctl, "cannot spool stdin: %s", strerror(errno));
			goto out;
		}
		if (len > 0 && line[len - 1] == '\n')
			len--;
		r = import_parse_line(line, (size_t)len, &il, why, sizeof(why));
		if (r == 0) {
			(*n_keys)++;
			import_line_free(&il);
		} else if (r != APIKEY_ERR_NOT_FOUND) {
			if (bad++ < IMPORT_SHOW_BAD) {
				progress_end(pg);
				cli_fail(ctl, "line %llu: %s", lineno, why);
			}
		}
		progress(pg, from_stdin ? lineno : bytes, from_stdin ? 0 : (unsigned long long)src->size);
	}
	progress_end(pg);
	if (ferror(in)) {
		r = cli_fail(ctl, "cannot read %s: %s", src->name, strerror(errno));
		goto out;
	}
	if (bad) {
		if (bad > IMPORT_SHOW_BAD)
			cli_fail(ctl, "%llu bad lines (%llu not shown); nothing imported", bad,
			         bad - IMPORT_SHOW_BAD);
		else
			cli_fail(ctl, "%llu bad line%s; nothing imported", bad, bad == 1 ? "" : "s");
		r = EXIT_FAIL;
		goto out;
	}
	if (spool) {
		if (fflush(spool) != 0 || fseeko(spool, 0, SEEK_SET) != 0) {
			r = cli_fail(ctl, "cannot spool stdin: %s", strerror(errno));
			goto out;
		}
		src->in = spool;
		spool = NULL;   /* transferred */
		src->size = (off_t)bytes;
	} else if (fseeko(src->in, 0, SEEK_SET) != 0) {
		r = cli_fail(ctl, "cannot re-read %s: %s", src->name, strerror(errno));
		goto out;
	}
	r = EXIT_OK;
out:
	if (spool)
		fclose(spool);
	free(line);
	return r;
}

struct counts { unsigned long long keys, sha256, bcrypt, argon2id; };

/* Pass 2: write, IMPORT_BATCH lines per transaction. */
static int write_all(struct ctl *ctl, struct apikey_store *s, struct source *src,
                     unsigned long long total, struct counts *cnt, struct progress *pg)
{
	struct import_line il;
	char why[IMPORT_WHY_SIZE], msg[IMPORT_WHY_SIZE + 32], detail[CLI_MSG_SIZE], *line = NULL;
	unsigned long long lineno = 0, in_batch = 0, committed = 0;
	size_t cap = 0;
	ssize_t len;
	int r = 0;

	progress_start(pg, "writing ");
	while ((len = getline(&line, &cap, src->in)) >= 0) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		r = import_parse_line(line, (size_t)len, &il, why, sizeof(why));
		if (r == APIKEY_ERR_NOT_FOUND) {
			r = 0;
			continue;
		}
		if (r != 0) {     /* the file changed since it was checked */
			snprintf(why + strlen(why), sizeof(why) - strlen(why), " (file changed?)");
			break;
		}
		if (in_batch == 0 && (r = apikey_import_begin(s)) != 0) {
			import_line_free(&il);
			snprintf(why, sizeof(why), "cannot start a transaction");
			break;
		}
		r = apikey_import_one(s, &il.p, NULL);
		if (r == 0) {
			in_batch++;
			if (!strncmp(il.p.hash, "sha256:", 7))
				cnt->sha256++;
			else if (!strncmp(il.p.hash, "$argon2id$", 10))
				cnt->argon2id++;
			else
				cnt->bcrypt++;
		} else {
			snprintf(why, sizeof(why), "%s", r == APIKEY_ERR_INVALID ?
			         "refused by the store (metadata not a JSON object?)" : "not written");
		}
		import_line_free(&il);
		if (r != 0)
			break;
		if (in_batch == IMPORT_BATCH) {
			if ((r = apikey_import_commit(s)) != 0) {
				snprintf(why, sizeof(why), "cannot commit");
				in_batch = 0;
				break;
			}
			committed += in_batch;
			in_batch = 0;
			progress(pg, committed, total);
		}
	}
	free(line);
	if (r == 0 && ferror(src->in)) {
		r = APIKEY_ERR_IO;
		snprintf(why, sizeof(why), "cannot read %s", src->name);
	}
	if (r == 0 && in_batch) {
		if ((r = apikey_import_commit(s)) == 0)
			committed += in_batch;
		else
			snprintf(why, sizeof(why), "cannot commit");
	} else if (r != 0 && in_batch) {
		apikey_import_rollback(s);
	}
	progress_end(pg);
	cnt->keys = committed;
	if (r == 0)
		return EXIT_OK;
	snprintf(msg, sizeof(msg), "line %llu: %s", lineno, why);
	if (!committed)
		return cli_fail_err(ctl, r, msg);
	/* Only a store failure after a clean check gets here (disk full, I/O):
	 * say exactly what is in the store. */
	snprintf(detail, sizeof(detail), "%s", ctl->core_msg[0] ? ctl->core_msg : apikey_strerror(r));
	cli_forget(ctl);
	return cli_fail(ctl, "%s: %s; the %llu keys of the batches before it are imported, "
	                "the rest is not", msg, detail, committed);
}

int cmd_import(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct progress pg = { .tty = isatty(STDERR_FILENO) == 1 };
	struct source src = { 0 };
	struct counts cnt = { 0 };
	struct apikey_store *s = NULL;
	unsigned long long n_keys = 0;
	bool dry_run = false, from_stdin;
	struct stat st;
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'n': dry_run = true; break;
		case 'h': fputs(import_usage, stdout); return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage(ctl, argc - optind ? "one file at a time" : "which file? (- for stdin)");
	src.name = argv[optind];
	from_stdin = !strcmp(src.name, "-");
	/* The store first: no point checking a million lines for a store we
	 * cannot open. */
	if (!dry_run && !(s = cli_store(ctl)))
		return EXIT_FAIL;
	if (from_stdin) {
		src.name = "stdin";
	} else {
		if (!(src.in = fopen(src.name, "re")))
			return cli_fail(ctl, "cannot open %s: %s", src.name, strerror(errno));
		if (fstat(fileno(src.in), &st) != 0 || !S_ISREG(st.st_mode)) {
			fclose(src.in);
			return cli_fail(ctl, "%s is not a regular file (use - for a pipe)", src.name);
		}
		src.size = st.st_size;
	}
	r = check_all(ctl, &src, from_stdin, &n_keys, &pg);
	if (r == EXIT_OK && dry_run)
		printf("%s: %llu keys, no bad line (dry run: nothing imported)\n", src.name, n_keys);
	else if (r == EXIT_OK && (r = write_all(ctl, s, &src, n_keys, &cnt, &pg)) == EXIT_OK)
		printf("imported %llu keys from %s (sha256 %llu, bcrypt %llu, argon2id %llu)\n",
		       cnt.keys, src.name, cnt.sha256, cnt.bcrypt, cnt.argon2id);
	if (src.in)
		fclose(src.in);
	return r;
}

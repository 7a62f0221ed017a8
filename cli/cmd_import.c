/* cmd_import.c — `apikeyctl import FILE`: keys with foreign hashes from JSON
 * lines.  All or nothing per file: every line is checked first (every bad
 * line reported with its number), and only a clean file is written, in
 * batches bounded in lines and in time so verifiers are never kept from the
 * write lock for long.  Progress on stderr when it is a terminal. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "import_parse.h"

#define IMPORT_BATCH       50000  /* lines per transaction, at most */
#define IMPORT_BATCH_SECS  0.75   /* and at most this long holding the write lock */
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
	"hash, hint, owner and scopes are required (scopes may be left out when\n"
	"the configuration has a default_preset); unknown fields are refused.\n"
	"Each line follows the configuration's rules: scopes inside the scope\n"
	"catalogue, a rate limit among the tiers, and a hint that starts with the\n"
	"key prefix or a legacy prefix (any other key would never verify).\n"
	"All or nothing: every line is checked first and any bad line (reported\n"
	"with its number) leaves the store unchanged.  Imported keys are re-hashed\n"
	"to HMAC-SHA256 on their first successful use; they verify without the\n"
	"profile's checksum or body shape, through their old hash.\n"
	"  --dry-run   check the file, write nothing: every line the profile\n"
	"              would refuse is reported\n";

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

/* When the percentage moves or 0.2 s passed:
 * "import: writing   42%  420000 lines  95000 lines/s".  done/total measure
 * the percentage (bytes or lines; total 0 = unknown), lines the count shown. */
static void progress(struct progress *pg, unsigned long long lines, unsigned long long done,
                     unsigned long long total)
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
		fprintf(stderr, "\r\033[Kimport: %s %3d%%  %llu lines  %.0f lines/s", pg->phase, pct, lines,
		        lines / (now - pg->start + 1e-9));
	else
		fprintf(stderr, "\r\033[Kimport: %s  %llu lines  %.0f lines/s", pg->phase, lines,
		        lines / (now - pg->start + 1e-9));
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

/*
 * Pass 1 writes each checked line to an unlinked temporary file as a binary
 * record, so pass 2 neither parses JSON again nor depends on the input
 * staying the same (or being seekable: stdin works alike).  A record is this
 * header and then its strings, without NULs, in the order of len[].
 */
enum { F_HASH, F_HINT, F_OWNER, F_NAME, F_SCOPES, F_META, F_COUNT };
struct spool_head {
	uint64_t lineno;
	int64_t expires_at_s;
	uint32_t rate_limit;
	uint16_t len[F_COUNT];      /* name and metadata: 0 = absent */
};
static const size_t field_max[F_COUNT] = {
	APIKEY_FOREIGN_HASH_SIZE, APIKEY_HINT_SIZE, APIKEY_OWNER_SIZE, APIKEY_NAME_SIZE,
	APIKEY_SCOPES_SIZE, APIKEY_META_SIZE,
};

struct spool_item {
	struct spool_head h;
	char f[F_COUNT][APIKEY_META_SIZE];
	struct apikey_import_params p;
};

static FILE *spool_open(void)
{
	const char *dir = getenv("TMPDIR");
	char path[APIKEY_PATH_SIZE];
	FILE *f;
	int fd;

	if (snprintf(path, sizeof(path), "%s/apikeyctl-import.XXXXXX", dir && dir[0] ? dir : "/tmp") >=
	    (int)sizeof(path))
		return NULL;
	if ((fd = mkstemp(path)) < 0)
		return NULL;
	unlink(path);               /* gone when we exit, whatever happens */
	if (!(f = fdopen(fd, "w+")))
		close(fd);
	return f;
}

static int spool_put(FILE *sp, unsigned long long lineno, const struct apikey_import_params *p)
{
	const char *v[F_COUNT] = { p->hash, p->hint, p->owner, p->name, p->scopes, p->metadata };
	struct spool_head h = { .lineno = lineno, .expires_at_s = p->expires_at_s, .rate_limit = p->rate_limit };

	for (int i = 0; i < F_COUNT; i++) {
		size_t n = v[i] ? strlen(v[i]) : 0;
		if (n >= field_max[i])    /* apikey_import_check has refused longer */
			return -1;
		h.len[i] = (uint16_t)n;
	}
	if (fwrite(&h, sizeof(h), 1, sp) != 1)
		return -1;
	for (int i = 0; i < F_COUNT; i++)
		if (h.len[i] && fwrite(v[i], 1, h.len[i], sp) != h.len[i])
			return -1;
	return 0;
}

/* 1 = a record, 0 = end, -1 = error. */
static int spool_get(FILE *sp, struct spool_item *it)
{
	if (fread(&it->h, sizeof(it->h), 1, sp) != 1)
		return ferror(sp) ? -1 : 0;
	for (int i = 0; i < F_COUNT; i++) {
		if (it->h.len[i] >= field_max[i] ||
		    (it->h.len[i] && fread(it->f[i], 1, it->h.len[i], sp) != it->h.len[i]))
			return -1;
		it->f[i][it->h.len[i]] = '\0';
	}
	it->p = (struct apikey_import_params){
		.hash = it->f[F_HASH], .hint = it->f[F_HINT], .owner = it->f[F_OWNER],
		.name = it->f[F_NAME], .scopes = it->f[F_SCOPES],
		.metadata = it->h.len[F_META] ? it->f[F_META] : NULL,
		.expires_at_s = it->h.expires_at_s, .rate_limit = it->h.rate_limit,
	};
	return 1;
}

/* Pass 1: parse and check every line into the spool; report every bad one. */
static int check_all(struct ctl *ctl, FILE *in, const char *name, off_t size, FILE *sp,
                     unsigned long long *n_keys, struct progress *pg)
{
	struct import_line il;
	char why[IMPORT_WHY_SIZE], *line = NULL;
	unsigned long long lineno = 0, bad = 0, bytes = 0;
	size_t cap = 0;
	ssize_t len;
	int r;

	progress_start(pg, "checking");
	while ((len = getline(&line, &cap, in)) >= 0) {
		lineno++;
		bytes += (unsigned long long)len;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		r = import_parse_line(&ctl->cfg, line, (size_t)len, &il, why, sizeof(why));
		if (r == 0) {
			(*n_keys)++;
			r = spool_put(sp, lineno, &il.p);
			import_line_free(&il);
			if (r != 0) {
				progress_end(pg);
				r = cli_fail(ctl, "cannot write a temporary file: %s", strerror(errno));
				goto out;
			}
		} else if (r != APIKEY_ERR_NOT_FOUND && bad++ < IMPORT_SHOW_BAD) {
			progress_end(pg);
			cli_fail(ctl, "line %llu: %s", lineno, why);
		}
		progress(pg, lineno, bytes, (unsigned long long)size);
	}
	progress_end(pg);
	if (ferror(in)) {
		r = cli_fail(ctl, "cannot read %s: %s", name, strerror(errno));
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
	if (fflush(sp) != 0 || fseeko(sp, 0, SEEK_SET) != 0) {
		r = cli_fail(ctl, "cannot write a temporary file: %s", strerror(errno));
		goto out;
	}
	r = EXIT_OK;
out:
	free(line);
	return r;
}

struct counts { unsigned long long keys, sha256, bcrypt, argon2id; };

/* Pass 2: write the spool, IMPORT_BATCH records per transaction. */
static int write_all(struct ctl *ctl, struct apikey_store *s, FILE *sp, unsigned long long total,
                     struct counts *cnt, struct progress *pg)
{
	struct spool_item *it = malloc(sizeof(*it));
	char why[IMPORT_WHY_SIZE] = "", msg[IMPORT_WHY_SIZE + 32], detail[CLI_MSG_SIZE];
	unsigned long long in_batch = 0, committed = 0, lineno = 0;
	double batch_start = 0;
	const char *scheme;
	int r = 0, got;

	if (!it)
		return cli_fail(ctl, "out of memory");
	progress_start(pg, "writing ");
	while ((got = spool_get(sp, it)) == 1) {
		lineno = it->h.lineno;
		if (in_batch == 0) {
			if ((r = apikey_import_begin(s)) != 0) {
				snprintf(why, sizeof(why), "cannot start a transaction");
				break;
			}
			batch_start = mono();
		}
		if ((r = apikey_import_one(s, &it->p, &cli_actor, NULL)) != 0) {
			snprintf(why, sizeof(why), "%s", r == APIKEY_ERR_INVALID ?
			         "refused by the store" : "not written");
			break;
		}
		in_batch++;
		scheme = apikey_hash_scheme(it->p.hash);   /* the core accepted it: one of three */
		if (!strcmp(scheme, "sha256"))
			cnt->sha256++;
		else if (!strcmp(scheme, "argon2id"))
			cnt->argon2id++;
		else
			cnt->bcrypt++;
		/* Fewer, bigger commits are cheaper (each rewrites the index pages
		 * the batch touched), but a verifier that must write waits for the
		 * lock for as long as a batch runs: bounded well under its busy
		 * timeout.  The clock is read every 256 lines. */
		if (in_batch == IMPORT_BATCH ||
		    ((in_batch & 255) == 0 && mono() - batch_start >= IMPORT_BATCH_SECS)) {
			if ((r = apikey_import_commit(s)) != 0) {
				snprintf(why, sizeof(why), "cannot commit");
				in_batch = 0;
				break;
			}
			committed += in_batch;
			in_batch = 0;
			progress(pg, committed, committed, total);
		}
	}
	free(it);
	if (r == 0 && got < 0) {
		r = APIKEY_ERR_IO;
		snprintf(why, sizeof(why), "cannot read the temporary file back");
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
	struct counts cnt = { 0 };
	struct apikey_store *s = NULL;
	unsigned long long n_keys = 0;
	const char *name;
	bool dry_run = false;
	FILE *in = NULL, *sp = NULL;
	off_t size = 0;
	struct stat st;
	int c, r;

	while ((c = cli_getopt(ctl, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'n': dry_run = true; break;
		case 'h': return cli_help(import_usage);
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage(ctl, argc - optind ? "one file at a time" : "which file? (- for stdin)");
	name = argv[optind];
	/* The store first: no point checking a million lines for a store we
	 * cannot open. */
	if (!dry_run && !(s = cli_store(ctl)))
		return EXIT_FAIL;
	/* a dry run needs no store, but the profile's rules all the same */
	if (dry_run && cli_config(ctl) != 0)
		return EXIT_FAIL;
	if (!strcmp(name, "-")) {
		in = stdin;
		name = "stdin";
	} else if (!(in = fopen(name, "re"))) {
		return cli_fail(ctl, "cannot open %s: %s", name, strerror(errno));
	} else if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) {
		size = st.st_size;      /* progress in bytes; otherwise in lines */
	}
	if (!(sp = spool_open())) {
		r = cli_fail(ctl, "cannot create a temporary file: %s", strerror(errno));
		goto out;
	}
	r = check_all(ctl, in, name, size, sp, &n_keys, &pg);
	if (r == EXIT_OK && dry_run)
		printf("%s: %llu keys, no bad line (dry run: nothing imported)\n", name, n_keys);
	else if (r == EXIT_OK && (r = write_all(ctl, s, sp, n_keys, &cnt, &pg)) == EXIT_OK)
		printf("imported %llu keys from %s (sha256 %llu, bcrypt %llu, argon2id %llu)\n",
		       cnt.keys, name, cnt.sha256, cnt.bcrypt, cnt.argon2id);
out:
	if (sp)
		fclose(sp);
	if (in && in != stdin)
		fclose(in);
	return r;
}

/* replay.c — main() for the fuzz targets when no clang (libFuzzer) is
 * installed: every file named, and every file under a folder named, goes to
 * LLVMFuzzerTestOneInput once, so `make check` still runs each target's seeds
 * and corpus (under ASan with `make check-asan`).  Arguments that start with
 * '-' are libFuzzer options and are ignored.  Prints "replay: N inputs" on
 * stderr; a target that finds a bug aborts, so the exit status tells. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_INPUT_MAX (16u << 20)    /* larger files are skipped */
#define REPLAY_DEPTH_MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned long inputs, skipped;

static int run_file(const char *path, off_t size)
{
	uint8_t *buf;
	FILE *f;

	if (size < 0 || (unsigned long long)size > REPLAY_INPUT_MAX) {
		skipped++;
		return 0;
	}
	if (!(buf = malloc((size_t)size + 1)) || !(f = fopen(path, "rb"))) {
		perror(path);
		free(buf);
		return -1;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "replay: %s: short read\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	free(buf);
	inputs++;
	return 0;
}

static int run_path(const char *path, int depth)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int r = 0;

	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? run_file(path, st.st_size) : 0;
	if (depth >= REPLAY_DEPTH_MAX || !(d = opendir(path)))
		return depth >= REPLAY_DEPTH_MAX ? 0 : -1;
	while (r == 0 && (e = readdir(d))) {
		char sub[4096];

		if (e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= sizeof(sub))
			continue;
		r = run_path(sub, depth + 1);
	}
	closedir(d);
	return r;
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		if (run_path(argv[i], 0) != 0)
			return 1;
	}
	fprintf(stderr, "replay: %lu inputs (%lu larger than %u bytes skipped)\n", inputs, skipped,
	        REPLAY_INPUT_MAX);
	return 0;
}

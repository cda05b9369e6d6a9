/**
 * @file replay.c  A fuzz target's inputs replayed without libFuzzer
 *
 * Linked with a target's source in every build (gcc, ASan), so that its
 * corpus, every crash found among it, runs as a regression test with the
 * rest of the suite: each argument is an input file or a directory of
 * them, given to LLVMFuzzerTestOneInput() once, after the target's
 * LLVMFuzzerInitialize() if it has one. A crash, a sanitizer report or an
 * abort() of the target's own checks fails the test.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));


static int replay_file(const char *path)
{
	uint8_t *buf = NULL;
	long size;
	FILE *f;
	int err = 0;

	f = fopen(path, "rb");
	if (!f)
		return -1;

	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET)) {
		err = -1;
		goto out;
	}

	buf = malloc(size ? (size_t)size : 1);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		err = -1;
		goto out;
	}

	(void)LLVMFuzzerTestOneInput(buf, (size_t)size);

 out:
	free(buf);
	fclose(f);
	return err;
}


static int replay(const char *path, unsigned *np)
{
	char sub[4096];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int err = 0;

	if (stat(path, &st))
		return -1;

	if (!S_ISDIR(st.st_mode)) {
		++*np;
		return replay_file(path);
	}

	d = opendir(path);
	if (!d)
		return -1;

	while (!err && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		err = replay(sub, np);
	}

	closedir(d);
	return err;
}


int main(int argc, char **argv)
{
	unsigned n = 0;

	if (LLVMFuzzerInitialize)
		(void)LLVMFuzzerInitialize(&argc, &argv);

	for (int i = 1; i < argc; i++) {
		if (replay(argv[i], &n)) {
			fprintf(stderr, "replay: cannot read %s\n", argv[i]);
			return 1;
		}
	}

	printf("%u inputs replayed\n", n);
	return 0;
}

/**
 * @file test_engine_trim.c  Unit tests of the heap given back to the system
 *
 * A heap full of holes, as moves leave it: blocks allocated and touched,
 * then all but every 32nd freed, so that no free run reaches the top of
 * the arena and free() alone gives nothing back. engine_trim() must then
 * give most of it back, and report what the RSS did. Under ASan (whose
 * allocator replaces malloc and keeps freed blocks in quarantine)
 * malloc_trim has nothing to trim: the same heap must be reported as
 * given back only as far as the RSS really went down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <re.h>
#include "engine.h"

enum {
	BLOCKS     = 4096,
	BLOCK_SZ   = 4000,              /* below the mmap threshold */
	KEEP_EVERY = 32,
	SLACK      = 256 * 1024,        /* RSS noise between two reads */
};

#if defined(__SANITIZE_ADDRESS__) || !defined(__GLIBC__)
#define TRIMMED_MIN 0                   /* nothing to give back */
#else
#define TRIMMED_MIN (8 * 1024 * 1024)   /* of the ~15.5 MB freed */
#endif


static uint64_t rss(void)
{
	unsigned long size, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%lu %lu", &size, &resident), 2);
	fclose(f);

	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}


START_TEST(test_holes_given_back)
{
	static void *v[BLOCKS];
	uint64_t before, after, drop, released = 0;

	for (int i = 0; i < BLOCKS; i++) {
		v[i] = malloc(BLOCK_SZ);
		ck_assert_ptr_nonnull(v[i]);
		memset(v[i], 0x5a, BLOCK_SZ);
	}
	for (int i = 0; i < BLOCKS; i++) {
		if (i % KEEP_EVERY)
			v[i] = (free(v[i]), NULL);
	}

	before = rss();
	engine_trim(&released);
	after = rss();
	drop = before > after ? before - after : 0;

	ck_assert_msg((int64_t)released >= TRIMMED_MIN, "%llu bytes given back",
		      (unsigned long long)released);
	ck_assert_msg(released <= drop + SLACK && drop <= released + SLACK,
		      "reported %llu, RSS %llu -> %llu",
		      (unsigned long long)released,
		      (unsigned long long)before, (unsigned long long)after);

	for (int i = 0; i < BLOCKS; i += KEEP_EVERY)
		free(v[i]);
}
END_TEST


static Suite *trim_suite(void)
{
	Suite *s = suite_create("engine_trim");
	TCase *tc = tcase_create("trim");

	tcase_add_test(tc, test_holes_given_back);
	suite_add_tcase(s, tc);
	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(trim_suite());
}

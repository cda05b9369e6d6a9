/**
 * @file test_randbuf.c  Unit tests of libre's random numbers drawn from a buffer
 *
 * The numbers must look random (no repeats in many draws, every bit
 * seen both ways); the dynamic linker must give libre's own calls
 * (rand_u16(), sip_msg_decode()) these functions, not libre.so's; and a
 * forked child must not hand out the numbers its parent will.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <check.h>
#include <re.h>
#include "randbuf.h"

enum { DRAWS = 20000 };


static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}


START_TEST(test_no_repeats)
{
	static uint64_t v[DRAWS];
	uint64_t ones = 0, zeros = 0;

	for (size_t i = 0; i < DRAWS; i++) {
		v[i] = i % 2 ? rand_u64() : (uint64_t)rand_u32() << 32 |
			rand_u32();
		ones |= v[i];
		zeros |= ~v[i];
	}

	ck_assert_uint_eq(ones, UINT64_MAX);
	ck_assert_uint_eq(zeros, UINT64_MAX);

	qsort(v, DRAWS, sizeof(v[0]), cmp_u64);
	for (size_t i = 1; i < DRAWS; i++)
		ck_assert_uint_ne(v[i - 1], v[i]);
}
END_TEST


START_TEST(test_libre_callers)
{
	uint16_t seen = 0;
	Dl_info info;

	/* the symbol libre's PLT resolves to, by the global lookup order */
	ck_assert_ptr_eq(dlsym(RTLD_DEFAULT, "rand_u32"), (void *)rand_u32);
	ck_assert_ptr_eq(dlsym(RTLD_DEFAULT, "rand_u64"), (void *)rand_u64);
	ck_assert_int_ne(dladdr((void *)rand_u32, &info), 0);
	ck_assert_ptr_null(strstr(info.dli_fname, "libre."));

	for (int i = 0; i < 1000; i++)
		seen |= rand_u16();

	ck_assert_uint_eq(seen, UINT16_MAX);
}
END_TEST


START_TEST(test_fork_child_differs)
{
	uint64_t mine, childs = 0;
	int fds[2];
	pid_t pid;
	int status;

	randbuf_init();
	(void)rand_u64();   /* the buffer now holds bytes */

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint64_t v = rand_u64();

		_exit(write(fds[1], &v, sizeof(v)) == sizeof(v) ? 0 : 1);
	}

	mine = rand_u64();
	ck_assert_int_eq(read(fds[0], &childs, sizeof(childs)),
			 sizeof(childs));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	close(fds[0]);
	close(fds[1]);

	ck_assert_uint_ne(mine, childs);
}
END_TEST


static Suite *randbuf_suite(void)
{
	Suite *s = suite_create("randbuf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_no_repeats);
	tcase_add_test(tc, test_libre_callers);
	tcase_add_test(tc, test_fork_child_differs);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(randbuf_suite());
}

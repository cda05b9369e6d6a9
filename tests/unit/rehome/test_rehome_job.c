/**
 * @file test_rehome_job.c  Unit tests of what a finished job keeps
 *
 * A finished job is kept for GET /v1/jobs (the last 32) with its items'
 * outcomes: its item array, grown 1024 items at a time, must be cut to
 * its items, or every kept job holds 56 KiB whatever its size (a node
 * of the soak finishes a job a minute: its heap in use grew for half an
 * hour). The heap in use is glibc's mallinfo2; under ASan or another C
 * library only the items are checked.
 *
 * A job still running when the node stops must tell whoever waits for it
 * (a policy's pending operation holds memory until then).
 */
#include <stdlib.h>
#include <check.h>
#include <re.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include "rehome.h"
#include "rehome_int.h"


static void step(struct rehome_job *job, uint64_t now)
{
	(void)job;
	(void)now;
}


static const struct rehome_job_ops ops = {
	.name = "test",
	.step = step,
};


/* bytes in use, 0 when malloc is not glibc's */
static size_t in_use(void)
{
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
	return mallinfo2().uordblks;
#else
	return 0;
#endif
}


START_TEST(test_compact_keeps_the_items_only)
{
	enum { N = 10, PAGE_MIN = 32 * 1024 };
	const struct rehome_opts opts = {.rate = 100};
	struct rehome_job *job = NULL;
	size_t before;

	ck_assert_int_eq(rehome_job_alloc(&job, &ops, &opts, NULL, NULL,
					  NULL), 0);
	for (uint64_t did = 1; did <= N; did++)
		ck_assert_int_eq(rehome_job_add(job, did), 0);

	before = in_use();
	rehome_job_compact(job);
	if (before)
		ck_assert_uint_le(in_use() + PAGE_MIN, before);

	ck_assert_uint_eq(job->itemc, N);
	for (uint32_t i = 0; i < N; i++)
		ck_assert_uint_eq(job->itemv[i].did, i + 1);

	mem_deref(job);
}
END_TEST


static int done_err = -1;
static unsigned done_calls;

static void done(int err, const struct rehome_job *job, void *arg)
{
	(void)job;
	done_err = err;
	++done_calls;
	mem_deref(arg);      /* what the waiter holds, as engine_policy.c */
}


/* A job still running at shutdown tells its waiter, which frees what it
   holds (ASan's leak check fails this test otherwise); a finished job's
   waiter heard already and is not called again. */
START_TEST(test_close_cancels_running_jobs)
{
	const struct rehome_opts opts = {.rate = 100};
	struct rehome_job *running = NULL, *finished = NULL;

	ck_assert_int_eq(rehome_job_alloc(&running, &ops, &opts, NULL, done,
					  mem_zalloc(32, NULL)), 0);
	ck_assert_int_eq(rehome_job_alloc(&finished, &ops, &opts, NULL, done,
					  NULL), 0);
	finished->phase = REHOME_JOB_DONE;

	rehome_close();

	ck_assert_uint_eq(done_calls, 1);
	ck_assert_int_eq(done_err, ECANCELED);
}
END_TEST


static Suite *rehome_job_suite(void)
{
	Suite *s = suite_create("rehome_job");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_compact_keeps_the_items_only);
	tcase_add_test(tc, test_close_cancels_running_jobs);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(rehome_job_suite());
}

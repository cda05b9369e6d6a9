/**
 * @file job.c  rehomectl: following a long operation to its end
 *
 * rehome, move and drain answer with a job; the client polls it every
 * 200 ms until it is no longer running, with a progress bar on stderr
 * when that is a terminal, then prints the summary (or the last JSON).
 * The job runs on the server: an interrupted wait only stops following it,
 * which is said on stderr. A job with failed dialogs, or failed as a whole,
 * makes the exit status 1.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <re.h>
#include "rehomectl.h"
#include "client.h"
#include "output.h"
#include "job.h"

enum {
	POLL_MS   = 200,
	BAR_WIDTH = 30,
	PATH_SZ   = 96,   /* "/v1/jobs/<id>" */
};


static uint64_t job_num(const struct odict *job, const char *key)
{
	uint64_t n = 0;

	(void)odict_get_number(job, &n, key);
	return n;
}


static bool job_running(const struct odict *job)
{
	return !str_cmp(odict_string(job, "state"), "running");
}


static void progress_print(const struct odict *job)
{
	uint64_t total = job_num(job, "total");
	uint64_t moved = job_num(job, "moved");
	uint64_t failed = job_num(job, "failed");
	uint64_t fill = total ? (moved + failed) * BAR_WIDTH / total
		: BAR_WIDTH;
	char bar[BAR_WIDTH + 1];

	fill = min(fill, (uint64_t)BAR_WIDTH);
	memset(bar, '#', fill);
	memset(bar + fill, '.', BAR_WIDTH - fill);
	bar[BAR_WIDTH] = '\0';

	(void)re_fprintf(stderr, "\r[%s] %llu/%llu  moved %llu  failed %llu ",
			 bar, (unsigned long long)(moved + failed),
			 (unsigned long long)total,
			 (unsigned long long)moved,
			 (unsigned long long)failed);
}


/** Why the job as a whole failed, or NULL */
static const char *job_error(const struct odict *job)
{
	const char *s = odict_string(job, "error");

	return str_isset(s) ? s : NULL;
}


static void summary_print(const struct odict *job, const char *what)
{
	const struct odict_entry *reasons = odict_lookup(job, "reasons");
	struct le *le;

	(void)re_printf("%s: %llu moved, %llu failed, of %llu\n", what,
			(unsigned long long)job_num(job, "moved"),
			(unsigned long long)job_num(job, "failed"),
			(unsigned long long)job_num(job, "total"));

	if (job_error(job))
		(void)re_printf("  error: %s\n", job_error(job));

	if (!reasons || reasons->type != ODICT_OBJECT)
		return;

	for (le = reasons->u.odict->lst.head; le; le = le->next) {
		const struct odict_entry *r = le->data;

		(void)re_printf("  %-24s %H\n", r->key, output_scalar, r);
	}
}


/**
 * Follow a job until it is no longer running: a progress bar on a
 * terminal, then the summary. Consumes `job`.
 */
int job_follow(struct client *cl, struct odict *job, const char *what)
{
	const bool bar = isatty(STDERR_FILENO);
	const struct odict_entry *id = odict_lookup(job, "job");
	char path[PATH_SZ];
	int ret = EXIT_OK;

	(void)re_snprintf(path, sizeof(path), "/v1/jobs/%H",
			  output_scalar, (void *)id);

	while (job_running(job)) {
		struct odict *next = NULL;

		if (bar)
			progress_print(job);

		if (!client_wait(cl, POLL_MS)) {
			ret = EXIT_FAILED;
			break;
		}

		ret = client_call(cl, "GET", path, NULL, &next);
		if (ret)
			break;

		mem_deref(job);
		job = next;
	}

	if (bar)
		(void)re_fprintf(stderr, "\r\033[K");  /* erase the bar */

	if (ret) {
		(void)re_fprintf(stderr, "rehomectl: %J %s: stopped following "
				 "the job; it may still run there\n",
				 &cl->srv, path);
		goto out;
	}

	if (cl->json)
		output_json(cl->body);
	else
		summary_print(job, what);

	ret = job_num(job, "failed") || job_error(job) ? EXIT_FAILED : EXIT_OK;

 out:
	mem_deref(job);
	return ret;
}

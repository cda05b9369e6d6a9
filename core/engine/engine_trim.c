/**
 * @file engine_trim.c  Free heap given back to the system every minute
 *
 * Every move frees the dialogs of a few hundred calls and allocates them
 * again, interleaved with the calls that stay and with transactions that
 * linger 32 s; glibc's main arena gives memory back only from its top,
 * so the holes stay resident: in a 30-minute soak RSS grew 9-12 MiB/h
 * while the heap in use stayed flat, and one malloc_trim(0) gave 2.6 MB
 * back at once (bench/RESULTS.md, "Soak"). So malloc_trim(0) runs every
 * TRIM_MS: it walks the arena's free chunks and madvises their whole
 * pages away: about 1 ms with nothing to give back, plus about 2 ms per
 * MB given back (a minute's holes in the soak: well under 1 MB).
 *
 * Trade-offs: the loop stalls while it runs, up to ~130 ms after 60 MB
 * of calls ended at once (then once, not every minute); a page given back
 * costs a page fault when the heap grows into it again. Other C
 * libraries, and allocators that replace malloc (ASan, jemalloc), give
 * nothing back here: engine_trim() then reports 0.
 */
#include <stdio.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <re.h>
#include "log.h"
#include "engine.h"

enum {
	TRIM_MS = 60000,
};

static struct tmr trim_tmr;


/* resident set size in bytes, 0 if unknown */
static uint64_t rss_bytes(void)
{
	unsigned long size, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	(void)fclose(f);

	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}


/**
 * Give the heap's free pages back to the system now.
 *
 * @param releasedp  Set to how much the RSS went down, bytes (optional)
 */
void engine_trim(uint64_t *releasedp)
{
	uint64_t before = rss_bytes(), after;

#ifdef __GLIBC__
	(void)malloc_trim(0);
#endif
	after = rss_bytes();

	if (releasedp)
		*releasedp = before > after ? before - after : 0;
}


static void trim_handler(void *arg)
{
	uint64_t released;
	uint64_t t0 = tmr_jiffies();
	(void)arg;

	engine_trim(&released);
	log_debug("engine", "heap trimmed: %llu KiB back in %llu ms",
		  (unsigned long long)released / 1024,
		  (unsigned long long)(tmr_jiffies() - t0));
	tmr_start(&trim_tmr, TRIM_MS, trim_handler, NULL);
}


void engine_trim_init(void)
{
	tmr_start(&trim_tmr, TRIM_MS, trim_handler, NULL);
}


void engine_trim_close(void)
{
	tmr_cancel(&trim_tmr);
}

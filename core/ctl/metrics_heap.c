/**
 * @file metrics_heap.c  The heap's bytes in use and free, from glibc's mallinfo2
 *
 * RSS alone cannot tell a leak from fragmentation: both grow. A leak
 * grows the bytes in use; fragmentation grows the free bytes the arenas
 * keep while the bytes in use follow the calls (bench/RESULTS.md,
 * "Soak"). So rehome_heap_bytes shows both: kind "in_use" is the chunks
 * handed out (uordblks) plus the blocks mmap'ed for large requests
 * (hblkhd); kind "free" is the free chunks the arenas keep, the top
 * chunk included (fordblks). A free chunk's whole pages may have been
 * given back by malloc_trim (engine_trim.c), so "free" is an upper bound
 * of the free heap resident, not the RSS it costs.
 *
 * Trade-offs: mallinfo2 walks every free chunk of every arena under the
 * arena's lock: tens of microseconds on a holed heap, at each scrape
 * only. Other C libraries, and allocators that replace malloc (ASan,
 * jemalloc), do not fill glibc's figures: the family is left out where
 * that is known at build time (not glibc 2.33 or later, ASan); under an
 * LD_PRELOADed allocator it shows glibc's own near-empty arena.
 */
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <re.h>
#include "metrics.h"

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && \
	(__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)

/** rehome_heap_bytes{kind="in_use|free"} */
int metrics_heap_print(struct re_printf *pf)
{
	struct mallinfo2 mi = mallinfo2();
	int err;

	err  = metrics_family_print(pf, "rehome_heap_bytes", "gauge",
				    "Heap bytes allocated (in_use, mmap'ed "
				    "blocks included) and kept free by the "
				    "allocator (free)");
	err |= re_hprintf(pf, "rehome_heap_bytes{kind=\"in_use\"} %zu\n",
			  mi.uordblks + mi.hblkhd);
	err |= re_hprintf(pf, "rehome_heap_bytes{kind=\"free\"} %zu\n",
			  mi.fordblks);

	return err;
}

#else

int metrics_heap_print(struct re_printf *pf)
{
	(void)pf;
	return 0;
}

#endif

/**
 * @file tmrheap.c  libre's timers, kept in a binary heap instead of a sorted list
 *
 * libre 1.1.0 keeps the thread's timers in one sorted list, and
 * tmr_start() finds the insert position by walking it from the tail: every
 * SIP retransmission timer (T1 = 500 ms) walks past every pending long one
 * (32 s transaction linger, 64*T1, dialog timeouts). Under load that walk
 * took up to 64 % of rehomed's CPU (bench/RESULTS.md, issue 15).
 *
 * So the engine interposes on libre's timer functions, as randbuf.c and
 * sipmend.c do (the dynamic linker prefers these to libre.so's, also for
 * libre's own calls, which go through its PLT; re_main() calls our
 * tmr_poll() and tmr_next_timeout() and its list argument stays empty).
 * tmr_jiffies() stays libre's.
 *
 * Why a binary heap, not a timer wheel: it gives libre's order exactly
 * (expiry, then start order: the key is (jfs, sequence number of the
 * start)), whatever the clock does, with no catch-up walk over idle slots
 * and no cascading; insert and cancel cost O(log n) (17 steps with 100 000
 * timers pending, whatever their delays), the earliest timer is at the
 * root. libuv keeps its timers in a heap for the same reasons. The heap is
 * an array of (jfs, seq, timer) entries, so comparisons do not touch the
 * timers; a running timer keeps its index in the array in its le.data
 * (struct tmr's layout is libre's; nothing else reads a timer's le).
 * tmr_isrunning() is inline in libre's header and reads tmr->th: th is
 * NULL exactly when the timer is not in the heap. A timer tmr_init()'ed
 * while running is a misuse (it corrupts libre's list too); two guards
 * keep the heap whole then: a restart removes only the entry its index
 * points at if that entry is the timer's, and an entry popped for a
 * timer without a handler calls nothing. The array is malloc'ed (not
 * mem_alloc'ed, so mem_debug() does not list it), doubles when full and
 * is freed when the heap empties. One heap per thread, like libre's one
 * list per thread.
 */
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "log.h"
#include "tmrheap.h"

enum { HEAP_MIN = 256 };

struct hent {
	uint64_t jfs;
	uint64_t seq;          /* start order, for equal expiry */
	struct tmr *tmr;
};

static __thread struct {
	struct hent *v;
	size_t n;
	size_t sz;
	uint64_t seq;
	uint64_t steps;        /* comparisons made, for tests */
} heap;


static inline bool before(const struct hent *a, const struct hent *b)
{
	return a->jfs < b->jfs || (a->jfs == b->jfs && a->seq < b->seq);
}


static inline size_t idx_of(const struct tmr *tmr)
{
	return (size_t)(uintptr_t)tmr->le.data;
}


static inline void place(size_t i, const struct hent *e)
{
	heap.v[i] = *e;
	e->tmr->le.data = (void *)(uintptr_t)i;
}


static void sift_up(size_t i, const struct hent *e)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		++heap.steps;
		if (!before(e, &heap.v[p]))
			break;

		place(i, &heap.v[p]);
		i = p;
	}

	place(i, e);
}


static void sift_down(size_t i, const struct hent *e)
{
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= heap.n)
			break;

		if (c + 1 < heap.n && before(&heap.v[c + 1], &heap.v[c]))
			++c;

		++heap.steps;
		if (!before(&heap.v[c], e))
			break;

		place(i, &heap.v[c]);
		i = c;
	}

	place(i, e);
}


static void heap_remove(size_t i)
{
	struct hent last = heap.v[--heap.n];

	if (i < heap.n) {
		if (i > 0 && before(&last, &heap.v[(i - 1) / 2]))
			sift_up(i, &last);
		else
			sift_down(i, &last);
	}

	if (!heap.n) {
		free(heap.v);
		heap.v = NULL;
		heap.sz = 0;
	}
}


static int heap_grow(void)
{
	size_t sz = heap.sz ? 2 * heap.sz : HEAP_MIN;
	struct hent *v;

	if (heap.n < heap.sz)
		return 0;

	v = realloc(heap.v, sz * sizeof(*v));
	if (!v)
		return ENOMEM;

	heap.v = v;
	heap.sz = sz;

	return 0;
}


/** Timers running in this thread */
uint32_t tmrheap_count(void)
{
	return (uint32_t)heap.n;
}


/** Comparisons made by this thread's inserts and removals so far */
uint64_t tmrheap_steps(void)
{
	return heap.steps;
}


void tmr_init(struct tmr *tmr)
{
	if (!tmr)
		return;

	memset(tmr, 0, sizeof(*tmr));
}


void tmr_start(struct tmr *tmr, uint64_t delay, tmr_h *th, void *arg)
{
	struct hent e;

	if (!tmr)
		return;

	if (tmr->th && idx_of(tmr) < heap.n &&
	    heap.v[idx_of(tmr)].tmr == tmr)
		heap_remove(idx_of(tmr));

	tmr->th  = th;
	tmr->arg = arg;

	if (!th)
		return;

	tmr->jfs = delay + tmr_jiffies();

	if (heap_grow()) {
		log_error("tmr", "no memory for a timer: it will not fire");
		tmr->th = NULL;
		return;
	}

	e.jfs = tmr->jfs;
	e.seq = heap.seq++;
	e.tmr = tmr;
	sift_up(heap.n++, &e);
}


void tmr_cancel(struct tmr *tmr)
{
	tmr_start(tmr, 0, NULL, NULL);
}


uint64_t tmr_get_expire(const struct tmr *tmr)
{
	uint64_t jfs;

	if (!tmr || !tmr->th)
		return 0;

	jfs = tmr_jiffies();

	return tmr->jfs > jfs ? tmr->jfs - jfs : 0;
}


/** Fires the thread's due timers, earliest first; tmrl is libre's, unused */
void tmr_poll(struct list *tmrl)
{
	const uint64_t jfs = tmr_jiffies();
	(void)tmrl;

	while (heap.n && heap.v[0].jfs <= jfs) {
		struct tmr *tmr = heap.v[0].tmr;
		tmr_h *th = tmr->th;
		void *arg = tmr->arg;

		heap_remove(0);
		tmr->th = NULL;
		if (th)
			th(arg);
	}
}


/** Milliseconds until the earliest timer: 1 if one is due, 0 if none */
uint64_t tmr_next_timeout(struct list *tmrl)
{
	uint64_t jfs;
	(void)tmrl;

	if (!heap.n)
		return 0;

	jfs = tmr_jiffies();

	return heap.v[0].jfs <= jfs ? 1 : heap.v[0].jfs - jfs;
}


/** Lists the running timers in heap order: the earliest first, then unsorted */
int tmr_status(struct re_printf *pf, void *unused)
{
	int err = 0;
	(void)unused;

	if (!heap.n)
		return 0;

	err |= re_hprintf(pf, "Timers (%zu):\n", heap.n);

	for (size_t i = 0; i < heap.n; i++) {
		const struct tmr *tmr = heap.v[i].tmr;

		err |= re_hprintf(pf, "  %p: th=%p expire=%llums\n",
				  tmr, tmr->th,
				  (unsigned long long)tmr_get_expire(tmr));
	}

	if (heap.n > 100)
		err |= re_hprintf(pf, "    (Dumped Timers: %zu)\n", heap.n);

	return err;
}


void tmr_debug(void)
{
	(void)re_fprintf(stderr, "%H", tmr_status, NULL);
}

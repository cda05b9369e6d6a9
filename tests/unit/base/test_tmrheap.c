/**
 * @file test_tmrheap.c  Unit tests of libre's timers kept in a binary heap
 *
 * libre's own implementation is the reference model: the same random
 * script of starts, cancels, restarts from handlers, clock steps and polls
 * runs against ours and against libre.so's (dlsym RTLD_NEXT, on libre's
 * thread list), on a fake clock (this program's tmr_jiffies(), which both
 * call), and both must fire the same timers in the same order and agree on
 * every timer's state. Then: libre's own callers and re_main() get ours,
 * and starting a timer costs the same with 100 000 long timers pending.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "tmrheap.h"

enum {
	TIMERS = 48,
	OPS    = 20000,
	LOG_SZ = 40000,
	MANY   = 100000,
};

struct list *tmrl_get(void);

typedef void (start_h)(struct tmr *, uint64_t, tmr_h *, void *);
typedef void (poll_h)(struct list *);
typedef uint64_t (next_h)(struct list *);
typedef uint64_t (jiffies_h)(void);

static bool fake_clock;
static uint64_t fake_now = 1000000;


/* Ours and libre's read this clock when fake_clock is set */
uint64_t tmr_jiffies(void)
{
	static jiffies_h *real;

	if (fake_clock)
		return fake_now;

	if (!real)
		real = (jiffies_h *)dlsym(RTLD_NEXT, "tmr_jiffies");

	return real();
}


/* One implementation under test: its timers, functions and firing log */
struct side {
	struct tmr t[TIMERS];
	start_h *start;
	poll_h *poll;
	next_h *next;
	struct list *tmrl;
	uint32_t rng;          /* drives what handlers do */
	uint32_t log[LOG_SZ];
	size_t nlog;
};

struct fire {
	struct side *s;
	uint32_t i;
};

static struct side ours, libres;
static struct fire args[2][TIMERS];


static uint32_t next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;

	return *x;
}


static uint64_t rand_delay(uint32_t *x)
{
	static const uint64_t delays[] = {0, 1, 2, 500, 1000, 32000};
	uint32_t r = next_rand(x);

	if (r % 3)
		return delays[(r >> 8) % ARRAY_SIZE(delays)];

	return (r >> 8) % 40;
}


static void fire_h(void *arg);


static void start_one(struct side *s, uint32_t i, uint64_t delay)
{
	s->start(&s->t[i], delay, fire_h, &args[s == &libres][i]);
}


/* Log the firing; then restart itself, start or cancel another, or not */
static void fire_h(void *arg)
{
	struct fire *f = arg;
	struct side *s = f->s;
	uint32_t r = next_rand(&s->rng);
	uint32_t other = (r >> 4) % TIMERS;

	if (s->nlog < LOG_SZ && !tmr_isrunning(&s->t[f->i]))
		s->log[s->nlog++] = f->i;
	else
		ck_abort_msg("log full or timer %u still running", f->i);

	switch (r % 6) {

	case 0:
		start_one(s, f->i, r % 12 ? rand_delay(&s->rng) : 0);
		break;

	case 1:
		start_one(s, other, rand_delay(&s->rng));
		break;

	case 2:
		s->start(&s->t[other], 0, NULL, NULL);
		break;

	default:
		break;
	}
}


static void side_init(struct side *s, start_h *start, poll_h *poll,
		      next_h *next, struct list *tmrl)
{
	memset(s, 0, sizeof(*s));
	s->start = start;
	s->poll = poll;
	s->next = next;
	s->tmrl = tmrl;
	s->rng = 0x9e3779b9;

	for (uint32_t i = 0; i < TIMERS; i++) {
		tmr_init(&s->t[i]);
		args[s == &libres][i].s = s;
		args[s == &libres][i].i = i;
	}
}


/* Same firings, next timeout and timer states? (check's every ck_assert
 * is a write to its parent: one per operation, not one per timer) */
static bool same(void)
{
	if (ours.nlog != libres.nlog ||
	    memcmp(ours.log, libres.log, ours.nlog * sizeof(ours.log[0])) ||
	    ours.next(ours.tmrl) != libres.next(libres.tmrl))
		return false;

	for (uint32_t i = 0; i < TIMERS; i++) {
		if (tmr_isrunning(&ours.t[i]) != tmr_isrunning(&libres.t[i]) ||
		    tmr_get_expire(&ours.t[i]) !=
		    tmr_get_expire(&libres.t[i]))
			return false;
	}

	return true;
}


START_TEST(test_same_as_libre)
{
	uint32_t x = 12345 + (uint32_t)_i;
	uint32_t running = 0;

	fake_clock = true;
	side_init(&ours, tmr_start, tmr_poll, tmr_next_timeout, NULL);
	side_init(&libres, (start_h *)dlsym(RTLD_NEXT, "tmr_start"),
		  (poll_h *)dlsym(RTLD_NEXT, "tmr_poll"),
		  (next_h *)dlsym(RTLD_NEXT, "tmr_next_timeout"), tmrl_get());
	ck_assert_ptr_nonnull(libres.start);
	ck_assert_ptr_ne(libres.start, ours.start);

	for (int op = 0; op < OPS; op++) {
		uint32_t r = next_rand(&x);
		uint32_t i = (r >> 8) % TIMERS;
		uint64_t delay = rand_delay(&x);

		switch (r % 8) {

		case 0: case 1: case 2:
			start_one(&ours, i, delay);
			start_one(&libres, i, delay);
			break;

		case 3:
			ours.start(&ours.t[i], 0, NULL, NULL);
			libres.start(&libres.t[i], 0, NULL, NULL);
			break;

		case 4: case 5:
			fake_now += r % 64 ? (r >> 16) % 50 : 5000;
			break;

		case 6:
			if (r % 16 == 0 && fake_now > 1000)
				fake_now -= (r >> 16) % 10;  /* a step back */
			break;

		default:
			ours.poll(ours.tmrl);
			libres.poll(libres.tmrl);
			break;
		}

		ck_assert_msg(same(), "after operation %d", op);
	}

	/* every timer ran out in the end, in the same order */
	fake_now += 100000;
	ours.poll(ours.tmrl);
	libres.poll(libres.tmrl);
	ck_assert(same());
	for (uint32_t i = 0; i < TIMERS; i++)
		running += tmr_isrunning(&ours.t[i]);

	ck_assert_uint_eq(tmrheap_count(), running);
	ck_assert_uint_gt(ours.nlog, OPS / 10);
	fake_clock = false;
}
END_TEST


static char order[16];


/* Append the timer's name to order */
static void tag_h(void *arg)
{
	size_t n = strlen(order);

	ck_assert_uint_lt(n, sizeof(order) - 1);
	order[n] = (char)(uintptr_t)arg;
}


static void tag_start(struct tmr *t, uint64_t delay, char name)
{
	tmr_start(t, delay, tag_h, (void *)(uintptr_t)name);
}


START_TEST(test_order)
{
	struct tmr t[4];

	fake_clock = true;
	for (int i = 0; i < 4; i++)
		tmr_init(&t[i]);

	/* earlier expiry first; equal expiry in start order */
	tag_start(&t[0], 10, 'a');
	fake_now += 5;
	tag_start(&t[1], 5, 'b');
	tag_start(&t[2], 4, 'c');
	tag_start(&t[3], 0, 'd');
	ck_assert_uint_eq(tmr_next_timeout(NULL), 1);

	tmr_poll(NULL);                     /* delay 0: fires on this poll */
	ck_assert_str_eq(order, "d");
	ck_assert(!tmr_isrunning(&t[3]));
	ck_assert(tmr_isrunning(&t[0]));
	ck_assert_uint_eq(tmr_get_expire(&t[0]), 5);
	ck_assert_uint_eq(tmr_next_timeout(NULL), 4);

	fake_now += 5;
	tmr_poll(NULL);
	ck_assert_str_eq(order, "dcab");
	ck_assert_uint_eq(tmr_next_timeout(NULL), 0);   /* none left */
	ck_assert_uint_eq(tmrheap_count(), 0);

	/* a restart goes behind the timers of equal expiry */
	memset(order, 0, sizeof(order));
	tag_start(&t[2], 7, 'c');
	tag_start(&t[0], 7, 'a');
	tag_start(&t[1], 3, 'b');
	tmr_cancel(&t[2]);
	ck_assert(!tmr_isrunning(&t[2]));
	tag_start(&t[2], 7, 'c');
	fake_now += 7;
	tmr_poll(NULL);
	ck_assert_str_eq(order, "bac");

	fake_clock = false;
}
END_TEST


static void stop_h(void *arg)
{
	*(int *)arg = 1;
	re_cancel();
}


static void dns_h(int err, const struct dnshdr *hdr, struct list *ansl,
		  struct list *authl, struct list *addl, void *arg)
{
	(void)err; (void)hdr; (void)ansl; (void)authl; (void)addl; (void)arg;
}


START_TEST(test_libre_callers)
{
	struct dnsc *dnsc = NULL;
	struct dns_query *q = NULL;
	struct tmr t;
	struct sa srv;
	Dl_info info;
	int fired = 0;

	/* the symbols libre's PLT resolves to, by the global lookup order */
	ck_assert_ptr_eq(dlsym(RTLD_DEFAULT, "tmr_start"), (void *)tmr_start);
	ck_assert_ptr_eq(dlsym(RTLD_DEFAULT, "tmr_poll"), (void *)tmr_poll);
	ck_assert_ptr_eq(dlsym(RTLD_DEFAULT, "tmr_next_timeout"),
			 (void *)tmr_next_timeout);
	ck_assert_int_ne(dladdr((void *)tmr_start, &info), 0);
	ck_assert_ptr_null(strstr(info.dli_fname, "libre."));

	ck_assert_int_eq(libre_init(), 0);

	/* libre's DNS client starts its query timer: in our heap */
	ck_assert_int_eq(sa_set_str(&srv, "127.0.0.1", 9), 0);
	ck_assert_int_eq(dnsc_alloc(&dnsc, NULL, &srv, 1), 0);
	ck_assert_int_eq(dnsc_query(&q, dnsc, "example.org", DNS_TYPE_A,
				    DNS_CLASS_IN, true, dns_h, NULL), 0);
	ck_assert_uint_gt(tmrheap_count(), 0);
	mem_deref(q);
	mem_deref(dnsc);
	ck_assert_uint_eq(tmrheap_count(), 0);

	/* re_main() sleeps for our next timeout and polls our heap */
	tmr_init(&t);
	tmr_start(&t, 20, stop_h, &fired);
	ck_assert_int_eq(re_main(NULL), 0);
	ck_assert_int_eq(fired, 1);

	libre_close();
}
END_TEST


static void never_h(void *arg)
{
	(void)arg;
	ck_abort_msg("a long timer fired");
}


START_TEST(test_flat_insert)
{
	static struct tmr many[MANY];
	struct tmr t;
	uint64_t steps;

	fake_clock = true;
	for (int i = 0; i < MANY; i++) {
		tmr_init(&many[i]);
		tmr_start(&many[i], i % 2 ? 32000 : 3600000, never_h, NULL);
	}
	ck_assert_uint_eq(tmrheap_count(), MANY);

	/* a retransmission timer: the earliest, up to the root and out */
	tmr_init(&t);
	for (int i = 0; i < 1000; i++) {
		steps = tmrheap_steps();
		tmr_start(&t, 500, never_h, NULL);
		tmr_cancel(&t);
		ck_assert_uint_le(tmrheap_steps() - steps, 2 * 18);
	}

	/* removing one from the middle is as cheap */
	steps = tmrheap_steps();
	for (int i = 0; i < MANY; i += 1000)
		tmr_cancel(&many[i]);
	ck_assert_uint_le(tmrheap_steps() - steps, 100 * 2 * 18);
	ck_assert_uint_eq(tmrheap_count(), MANY - 100);

	for (int i = 0; i < MANY; i++)
		tmr_cancel(&many[i]);
	ck_assert_uint_eq(tmrheap_count(), 0);
	fake_clock = false;
}
END_TEST


static Suite *tmrheap_suite(void)
{
	Suite *s = suite_create("tmrheap");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_same_as_libre, 0, 4);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_libre_callers);
	tcase_add_test(tc, test_flat_insert);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(tmrheap_suite());
}

/**
 * @file test_mrelay.c  Unit tests of the relay set and of media calls
 *
 * Two fake rtpengines (fake_ng.h) in this process stand for two relays.
 * Health is checked on the real main loop with short intervals (pings
 * 100 ms apart, 2 tries 50 ms apart): relays start down, come up on their
 * first pong, go down when a fake stops answering and up when it answers
 * again, each change reported once. One test runs the default interval to
 * show pings go out at least every second. The weighted choice is exact,
 * so it is checked by counting; media calls are checked on the wire.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "bencode.h"
#include "ng.h"
#include "mrelay.h"
#include "media.h"
#include "fake_ng.h"
#include "loop.h"

enum { RELAYS = 2, PING_MS = 100, WAIT_MS = 3000 };

static const struct mrelay_opts fast = {
	.ping_interval_ms = PING_MS,
	.ng = {.tries = 2, .timeout_ms = 50},
};

static struct fake *fakev[RELAYS];
static struct conf_media_relay confv[RELAYS];
static struct mrelay_set *set;
static struct mrelay *relayv[RELAYS];
static char namev[RELAYS][64];

/** Up/down changes reported by the set */
static struct {
	unsigned ups[RELAYS];
	unsigned downs[RELAYS];
} seen;


static void state_handler(struct mrelay *relay, bool up, void *arg)
{
	(void)arg;

	for (unsigned i = 0; i < RELAYS; i++) {
		if (relay == relayv[i]) {
			++*(up ? &seen.ups[i] : &seen.downs[i]);
			ck_assert(mrelay_is_up(relay) == up);
			return;
		}
	}

	ck_abort_msg("a change of an unknown relay");
}


/* The set of both fakes, weights as given */
static void set_start(const struct mrelay_opts *opts, uint32_t w0,
		      uint32_t w1)
{
	confv[0].weight = w0;
	confv[1].weight = w1;
	ck_assert_int_eq(mrelay_set_alloc(&set, confv, RELAYS, opts,
					  state_handler, NULL), 0);

	for (unsigned i = 0; i < RELAYS; i++) {
		relayv[i] = mrelay_find(set, namev[i]);
		ck_assert_ptr_nonnull(relayv[i]);
		ck_assert_str_eq(mrelay_name(relayv[i]), namev[i]);
	}
}


static void setup(void)
{
	memset(&seen, 0, sizeof(seen));
	for (unsigned i = 0; i < RELAYS; i++) {
		fakev[i] = fake_alloc();
		confv[i].addr = fakev[i]->addr;
		re_snprintf(namev[i], sizeof(namev[i]), "udp:%J",
			    &fakev[i]->addr);
	}
}


static void teardown(void)
{
	set = mem_deref(set);
	for (unsigned i = 0; i < RELAYS; i++)
		fakev[i] = mem_deref(fakev[i]);
}


static bool all_up(void *arg)
{
	(void)arg;

	return mrelay_is_up(relayv[0]) && mrelay_is_up(relayv[1]);
}


static bool first_down(void *arg)
{
	(void)arg;

	return !mrelay_is_up(relayv[0]);
}


/* Waited for, not counted after a fixed time: a loaded machine (or ASan)
 * may fire the timers late */
static bool received_two(void *arg)
{
	const struct fake *fake = arg;

	return fake->received >= 2;
}


static bool set_freed(void *arg)
{
	(void)arg;

	return set == NULL;
}


static void wait_all_up(void)
{
	ck_assert_msg(run_until(all_up, NULL, WAIT_MS), "relays not up");
}


START_TEST(test_start_down_then_up)
{
	set_start(&fast, 1, 1);

	ck_assert(!mrelay_is_up(relayv[0]));
	ck_assert(!mrelay_is_up(relayv[1]));
	ck_assert_ptr_null(mrelay_choose(set));

	wait_all_up();
	ck_assert_uint_eq(seen.ups[0], 1);
	ck_assert_uint_eq(seen.ups[1], 1);
	ck_assert_uint_eq(seen.downs[0], 0);
	ck_assert_str_eq(fakev[0]->command, "ping");
	ck_assert_ptr_nonnull(mrelay_choose(set));
}
END_TEST


/* A relay that stops answering goes down, and up when it answers again */
START_TEST(test_down_and_back)
{
	set_start(&fast, 1, 1);
	wait_all_up();

	fakev[0]->bad = FAKE_SILENT;
	fakev[0]->bad_count = ~0u;
	ck_assert_msg(run_until(first_down, NULL, WAIT_MS), "still up");
	ck_assert_uint_eq(seen.downs[0], 1);
	ck_assert_uint_eq(seen.downs[1], 0);
	ck_assert(mrelay_is_up(relayv[1]));

	for (unsigned i = 0; i < 10; i++)
		ck_assert_ptr_eq(mrelay_choose(set), relayv[1]);

	/* still pinged while down, and still down */
	fakev[0]->received = 0;
	ck_assert_msg(run_until(received_two, fakev[0], WAIT_MS),
		      "not pinged while down");
	ck_assert_uint_eq(seen.downs[0], 1);
	ck_assert_uint_eq(seen.ups[0], 1);

	fakev[0]->bad_count = 0;
	wait_all_up();
	ck_assert_uint_eq(seen.ups[0], 2);
	ck_assert_uint_eq(seen.downs[0], 1);
	ck_assert_uint_eq(seen.ups[1], 1);
}
END_TEST


/* An error result is still an answer: the relay is there */
START_TEST(test_error_answer_is_up)
{
	fakev[0]->reply = "d6:result5:error12:error-reason3:nahe";
	set_start(&fast, 1, 1);
	wait_all_up();
	run_for(3 * PING_MS);
	ck_assert(mrelay_is_up(relayv[0]));
	ck_assert_uint_eq(seen.downs[0], 0);
}
END_TEST


/* Pings at least every second with the defaults */
START_TEST(test_default_ping_interval)
{
	set_start(NULL, 1, 1);
	run_for(3300);

	ck_assert_uint_ge(fakev[0]->received, 4);   /* at 0, 1, 2 and 3 s */
	ck_assert_uint_le(fakev[0]->received, 5);
	ck_assert_uint_eq(fakev[0]->cookies, fakev[0]->received);
}
END_TEST


START_TEST(test_weighted_choice)
{
	unsigned count[RELAYS] = {0}, first4 = 0;

	set_start(&fast, 1, 3);
	wait_all_up();

	for (unsigned i = 0; i < 400; i++) {
		struct mrelay *r = mrelay_choose(set);

		ck_assert(r == relayv[0] || r == relayv[1]);
		++count[r == relayv[1]];
		if (i < 4 && r == relayv[0])
			++first4;
	}

	ck_assert_uint_eq(count[0], 100);
	ck_assert_uint_eq(count[1], 300);
	ck_assert_uint_eq(first4, 1);   /* spread, not in runs */
}
END_TEST


START_TEST(test_find)
{
	char name[64];

	set_start(&fast, 1, 1);

	ck_assert_ptr_eq(mrelay_find(set, namev[1]), relayv[1]);
	ck_assert_ptr_eq(mrelay_find(set, namev[1] + 4), relayv[1]);
	re_snprintf(name, sizeof(name), "UDP:%J", &fakev[1]->addr);
	ck_assert_ptr_eq(mrelay_find(set, name), relayv[1]);

	ck_assert_ptr_null(mrelay_find(set, "udp:127.0.0.1:1"));
	ck_assert_ptr_null(mrelay_find(set, "udp:"));
	ck_assert_ptr_null(mrelay_find(set, "tcp:127.0.0.1:1"));
	ck_assert_ptr_null(mrelay_find(set, "rtp.example.com:2223"));
	ck_assert_ptr_null(mrelay_find(set, NULL));
}
END_TEST


static const struct odict *relay_status(const struct odict *status,
					unsigned i)
{
	const struct odict_entry *e;
	char key[8];

	e = odict_get_type(status, ODICT_ARRAY, "relays");
	ck_assert_ptr_nonnull(e);
	re_snprintf(key, sizeof(key), "%u", i);
	e = odict_get_type(e->u.odict, ODICT_OBJECT, key);
	ck_assert_ptr_nonnull(e);

	return e->u.odict;
}


static int64_t status_int(const struct odict *od, const char *key)
{
	const struct odict_entry *e = odict_get_type(od, ODICT_INT, key);

	ck_assert_msg(e != NULL, "no %s", key);
	return e->u.integer;
}


START_TEST(test_status_and_calls)
{
	struct media_call *a = NULL, *b = NULL, *c = NULL;
	struct odict *status = NULL;
	const struct odict *r0, *r1;

	set_start(&fast, 2, 5);
	ck_assert_int_eq(mrelay_status(&status, set), 0);
	ck_assert_str_eq(odict_string(relay_status(status, 0), "state"),
			 "down");
	status = mem_deref(status);

	wait_all_up();
	ck_assert_int_eq(media_call_alloc(&a, relayv[0], "c-a"), 0);
	ck_assert_int_eq(media_call_alloc(&b, relayv[0], "c-b"), 0);
	ck_assert_int_eq(media_call_alloc(&c, relayv[1], "c-c"), 0);
	ck_assert_ptr_eq(media_call_relay(b), relayv[0]);
	b = mem_deref(b);
	ck_assert_uint_eq(mrelay_calls(relayv[0]), 1);
	ck_assert_uint_eq(mrelay_calls(relayv[1]), 1);

	ck_assert_int_eq(mrelay_status(&status, set), 0);
	ck_assert_uint_eq(odict_count(status, false), 1);
	r0 = relay_status(status, 0);
	r1 = relay_status(status, 1);
	ck_assert_str_eq(odict_string(r0, "relay"), namev[0]);
	ck_assert_str_eq(odict_string(r0, "state"), "up");
	ck_assert_int_eq(status_int(r0, "weight"), 2);
	ck_assert_int_eq(status_int(r0, "calls"), 1);
	ck_assert_int_ge(status_int(r0, "sent"), 1);
	ck_assert_int_eq(status_int(r0, "timeouts"), 0);
	ck_assert_int_eq(status_int(r0, "garbled"), 0);
	ck_assert_str_eq(odict_string(r1, "relay"), namev[1]);
	ck_assert_int_eq(status_int(r1, "weight"), 5);
	ck_assert_int_eq(status_int(r1, "calls"), 1);

	mem_deref(status);
	mem_deref(a);
	mem_deref(c);
	ck_assert_uint_eq(mrelay_calls(relayv[0]), 0);
	ck_assert_uint_eq(mrelay_calls(relayv[1]), 0);
}
END_TEST


/* ---- media calls ----------------------------------------------------- */


struct op_result {
	bool done;
	int err;
	char sdp[256];
	bool had_sdp;
};


static void op_handler(int err, const char *sdp, void *arg)
{
	struct op_result *r = arg;

	r->done = true;
	r->err = err;
	r->had_sdp = sdp != NULL;
	str_ncpy(r->sdp, sdp, sizeof(r->sdp));
}


static bool op_done(void *arg)
{
	return ((struct op_result *)arg)->done;
}


static void wait_op(struct op_result *r)
{
	ck_assert_msg(run_until(op_done, r, WAIT_MS), "no result");
}


START_TEST(test_media_offer_answer_delete)
{
	struct media_call *mc = NULL;
	struct op_result r = {0};

	set_start(&fast, 1, 1);
	wait_all_up();
	ck_assert_int_eq(media_call_alloc(&mc, relayv[1], "call-1"), 0);

	ck_assert_int_eq(media_offer(mc, "ft", NULL, "v=0\r\n", op_handler,
				     &r), 0);
	wait_op(&r);
	ck_assert_int_eq(r.err, 0);
	ck_assert_str_eq(r.sdp, FAKE_SDP);
	ck_assert_str_eq(fakev[1]->command, "offer");
	ck_assert_str_eq(odict_string(fakev[1]->last, "call-id"), "call-1");
	ck_assert_str_eq(odict_string(fakev[1]->last, "from-tag"), "ft");
	ck_assert_ptr_null(odict_lookup(fakev[1]->last, "to-tag"));

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(media_answer(mc, "ft", "tt", "v=0\r\n", op_handler,
				      &r), 0);
	wait_op(&r);
	ck_assert_int_eq(r.err, 0);
	ck_assert_str_eq(fakev[1]->command, "answer");
	ck_assert_str_eq(odict_string(fakev[1]->last, "to-tag"), "tt");

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(media_delete(mc, op_handler, &r), 0);
	wait_op(&r);
	ck_assert_int_eq(r.err, 0);
	ck_assert(!r.had_sdp);
	ck_assert_str_eq(fakev[1]->command, "delete");
	ck_assert_uint_eq(odict_count(fakev[1]->last, false), 2);

	ck_assert_int_eq(media_offer(mc, NULL, NULL, "v=0", op_handler, &r),
			 EINVAL);
	ck_assert_int_eq(media_answer(mc, "ft", NULL, "v=0", op_handler, &r),
			 EINVAL);
	ck_assert_int_eq(media_offer(mc, "ft", NULL, "v=0", NULL, NULL),
			 EINVAL);
	ck_assert_int_eq(media_call_alloc(&(struct media_call *){NULL},
					  relayv[0], ""), EINVAL);
	mem_deref(mc);
}
END_TEST


/* "ok" without an SDP is no answer to an offer */
START_TEST(test_media_offer_without_sdp)
{
	struct media_call *mc = NULL;
	struct op_result r = {0};

	fakev[0]->reply = "d6:result2:oke";
	set_start(&fast, 1, 1);
	ck_assert_int_eq(media_call_alloc(&mc, relayv[0], "call-1"), 0);
	ck_assert_int_eq(media_offer(mc, "ft", NULL, "v=0\r\n", op_handler,
				     &r), 0);
	wait_op(&r);
	ck_assert_int_eq(r.err, EPROTO);
	ck_assert(!r.had_sdp);
	mem_deref(mc);
}
END_TEST


START_TEST(test_media_error_and_timeout)
{
	struct media_call *mc = NULL;
	struct op_result r = {0};

	fakev[0]->reply = "d6:result5:error12:error-reason3:nahe";
	set_start(&fast, 1, 1);
	ck_assert_int_eq(media_call_alloc(&mc, relayv[0], "call-1"), 0);
	ck_assert_int_eq(media_offer(mc, "ft", NULL, "v=0\r\n", op_handler,
				     &r), 0);
	wait_op(&r);
	ck_assert_int_eq(r.err, EPROTO);
	mem_deref(mc);

	memset(&r, 0, sizeof(r));
	fakev[1]->bad = FAKE_SILENT;
	fakev[1]->bad_count = ~0u;
	ck_assert_int_eq(media_call_alloc(&mc, relayv[1], "call-2"), 0);
	ck_assert_int_eq(media_answer(mc, "ft", "tt", "v=0\r\n", op_handler,
				      &r), 0);
	wait_op(&r);
	ck_assert_int_eq(r.err, ETIMEDOUT);
	mem_deref(mc);
}
END_TEST


/* Freeing the call cancels its operations: no call back */
START_TEST(test_media_free_cancels)
{
	struct media_call *mc = NULL;
	struct op_result r = {0};

	fakev[0]->hold = true;
	set_start(&fast, 1, 1);
	ck_assert_int_eq(media_call_alloc(&mc, relayv[0], "call-1"), 0);
	ck_assert_int_eq(media_offer(mc, "ft", NULL, "v=0\r\n", op_handler,
				     &r), 0);
	run_for(20);
	mc = mem_deref(mc);
	fakev[0]->hold = false;
	fake_release(fakev[0]);
	run_for(3 * PING_MS);
	ck_assert(!r.done);
	ck_assert_uint_eq(mrelay_calls(relayv[0]), 0);
}
END_TEST


/* A delete without a handler still goes out, retries included, after the
 * call and even the set are gone */
START_TEST(test_media_delete_detached)
{
	struct media_call *mc = NULL;

	set_start(&fast, 1, 1);
	wait_all_up();
	ck_assert_int_eq(media_call_alloc(&mc, relayv[0], "call-9"), 0);
	set = mem_deref(set);
	run_for(20);  /* a last ping may still be on its way */

	fakev[0]->received = 0;
	fakev[0]->bad = FAKE_SILENT;
	fakev[0]->bad_count = 1;
	ck_assert_int_eq(media_delete(mc, NULL, NULL), 0);
	mc = mem_deref(mc);
	ck_assert_msg(run_until(received_two, fakev[0], WAIT_MS),
		      "the delete not retried");
	run_for(3 * PING_MS);   /* and nothing more */

	ck_assert_uint_eq(fakev[0]->received, 2);
	ck_assert_str_eq(fakev[0]->command, "delete");
	ck_assert_str_eq(odict_string(fakev[0]->last, "call-id"), "call-9");
}
END_TEST


static void free_set_handler(struct mrelay *relay, bool up, void *arg)
{
	(void)relay;
	(void)up;
	(void)arg;

	set = mem_deref(set);
}


/* The state handler may free the whole set */
START_TEST(test_free_set_in_handler)
{
	ck_assert_int_eq(mrelay_set_alloc(&set, confv, RELAYS, &fast,
					  free_set_handler, NULL), 0);
	ck_assert_msg(run_until(set_freed, NULL, WAIT_MS), "set not freed");
}
END_TEST


START_TEST(test_set_args)
{
	ck_assert_int_eq(mrelay_set_alloc(NULL, confv, 1, NULL, NULL, NULL),
			 EINVAL);
	ck_assert_int_eq(mrelay_set_alloc(&set, NULL, 1, NULL, NULL, NULL),
			 EINVAL);

	/* no relay: nothing to choose, an empty status */
	ck_assert_int_eq(mrelay_set_alloc(&set, NULL, 0, NULL, NULL, NULL),
			 0);
	ck_assert_ptr_null(mrelay_choose(set));
	ck_assert_ptr_null(mrelay_find(set, namev[0]));
}
END_TEST


static Suite *mrelay_suite(void)
{
	Suite *s = suite_create("mrelay");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_start_down_then_up);
	tcase_add_test(tc, test_down_and_back);
	tcase_add_test(tc, test_error_answer_is_up);
	tcase_add_test(tc, test_default_ping_interval);
	tcase_add_test(tc, test_weighted_choice);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_status_and_calls);
	tcase_add_test(tc, test_media_offer_answer_delete);
	tcase_add_test(tc, test_media_offer_without_sdp);
	tcase_add_test(tc, test_media_error_and_timeout);
	tcase_add_test(tc, test_media_free_cancels);
	tcase_add_test(tc, test_media_delete_detached);
	tcase_add_test(tc, test_free_set_in_handler);
	tcase_add_test(tc, test_set_args);
	suite_add_tcase(s, tc);

	return s;
}


#include "../check_main.h"

int main(void)
{
	log_set_level(LOG_ERROR);

	return check_main(mrelay_suite());
}

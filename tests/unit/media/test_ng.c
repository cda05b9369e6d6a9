/**
 * @file test_ng.c  Unit tests of the ng client against a fake rtpengine
 *
 * The fake (fake_ng.h) runs in this process on the real main loop, so
 * each test sees the datagrams the client really sends: the encoding of
 * each command, the same cookie on every retry, and what the client makes
 * of answers that are late, lost, garbled, for another cookie, from
 * another address or out of order. Retries are shortened (3 tries, 50 ms
 * apart) to keep the tests fast; the defaults are checked on their own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "bencode.h"
#include "ng.h"
#include "fake_ng.h"
#include "loop.h"

enum { TRIES = 3, TIMEOUT_MS = 50, WAIT_MS = 3000 };

static const struct ng_conf fast = {.tries = TRIES, .timeout_ms = TIMEOUT_MS};

/** What a handler got */
struct result {
	bool done;
	unsigned calls;
	int err;
	char result[16];
	char callid[64];
	char sdp[256];
	char reason[64];
	uint64_t at;             /* jiffies */
};

static struct fake *fake;
static struct ng_client *ng;


static void setup(void)
{
	fake = fake_alloc();
	ck_assert_int_eq(ng_client_alloc(&ng, &fake->addr, &fast), 0);
}


static void teardown(void)
{
	ng = mem_deref(ng);
	fake = mem_deref(fake);
}


/* Held requests must not be retried: one try, a long wait */
static struct ng_client *patient_alloc(void)
{
	static const struct ng_conf patient = {
		.tries = 1, .timeout_ms = WAIT_MS
	};
	struct ng_client *c = NULL;

	ck_assert_int_eq(ng_client_alloc(&c, &fake->addr, &patient), 0);

	return c;
}


static void copy(char *dst, size_t sz, const struct odict *od, const char *k)
{
	str_ncpy(dst, od ? odict_string(od, k) : NULL, sz);
}


static void resp_handler(int err, const struct odict *reply, void *arg)
{
	struct result *r = arg;

	r->done = true;
	++r->calls;
	r->err = err;
	r->at = tmr_jiffies();
	copy(r->result, sizeof(r->result), reply, "result");
	copy(r->callid, sizeof(r->callid), reply, "call-id");
	copy(r->sdp, sizeof(r->sdp), reply, "sdp");
	copy(r->reason, sizeof(r->reason), reply, "error-reason");
}


static bool is_done(void *arg)
{
	return ((struct result *)arg)->done;
}


static void wait_done(struct result *r)
{
	ck_assert_msg(run_until(is_done, r, WAIT_MS), "no answer in %u ms",
		      WAIT_MS);
}


START_TEST(test_ping)
{
	struct result r = {0};

	ck_assert_int_eq(ng_ping(NULL, ng, resp_handler, &r), 0);
	wait_done(&r);

	ck_assert_int_eq(r.err, 0);
	ck_assert_str_eq(r.result, "pong");
	ck_assert_uint_eq(fake->received, 1);
	ck_assert_str_eq(fake->command, "ping");
	ck_assert_uint_eq(odict_count(fake->last, false), 1);
	ck_assert_uint_eq(ng_client_stats(ng)->sent, 1);
	ck_assert_uint_eq(ng_client_stats(ng)->retries, 0);
}
END_TEST


/* What each command puts on the wire */
START_TEST(test_commands_encoding)
{
	static const struct ng_call call = {
		.callid = "c1", .from_tag = "ft", .to_tag = "tt",
		.sdp = "v=0\r\n"
	};
	static const struct ng_call offer = {
		.callid = "c1", .from_tag = "ft", .sdp = "v=0\r\n"
	};
	struct result r = {0};

	ck_assert_int_eq(ng_offer(NULL, ng, &offer, resp_handler, &r), 0);
	wait_done(&r);
	ck_assert_int_eq(r.err, 0);
	ck_assert_str_eq(r.sdp, FAKE_SDP);
	ck_assert_str_eq(r.callid, "c1");
	ck_assert_str_eq(fake->command, "offer");
	ck_assert_str_eq(odict_string(fake->last, "call-id"), "c1");
	ck_assert_str_eq(odict_string(fake->last, "from-tag"), "ft");
	ck_assert_ptr_null(odict_lookup(fake->last, "to-tag"));
	ck_assert_str_eq(odict_string(fake->last, "sdp"), "v=0\r\n");

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(ng_answer(NULL, ng, &call, resp_handler, &r), 0);
	wait_done(&r);
	ck_assert_str_eq(fake->command, "answer");
	ck_assert_str_eq(odict_string(fake->last, "to-tag"), "tt");
	/* command, call-id, tags, sdp and what to rewrite beyond media */
	ck_assert_uint_eq(odict_count(fake->last, false), 6);
	ck_assert_uint_eq(odict_count(odict_lookup(fake->last, "replace")
				      ->u.odict, false), 2);

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(ng_query(NULL, ng, &(struct ng_call){.callid = "c1"},
				  resp_handler, &r), 0);
	wait_done(&r);
	ck_assert_str_eq(fake->command, "query");
	ck_assert_uint_eq(odict_count(fake->last, false), 2);

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(ng_delete(NULL, ng, &(struct ng_call){.callid = "c1"},
				   resp_handler, &r), 0);
	wait_done(&r);
	ck_assert_str_eq(fake->command, "delete");
	ck_assert_str_eq(odict_string(fake->last, "call-id"), "c1");
	ck_assert_uint_eq(fake->cookies, 4);
}
END_TEST


START_TEST(test_bad_args)
{
	struct ng_call call = {.callid = "c", .from_tag = "f", .sdp = "v=0"};
	struct sa any;

	ck_assert_int_eq(ng_command(NULL, ng, "", NULL, NULL, NULL), EINVAL);
	ck_assert_int_eq(ng_command(NULL, NULL, "ping", NULL, NULL, NULL),
			 EINVAL);
	ck_assert_int_eq(ng_offer(NULL, ng, NULL, NULL, NULL), EINVAL);
	ck_assert_int_eq(ng_answer(NULL, ng, &call, NULL, NULL), EINVAL);
	call.sdp = NULL;
	ck_assert_int_eq(ng_offer(NULL, ng, &call, NULL, NULL), EINVAL);
	call.callid = NULL;
	ck_assert_int_eq(ng_delete(NULL, ng, &call, NULL, NULL), EINVAL);
	ck_assert_int_eq(ng_query(NULL, ng, &call, NULL, NULL), EINVAL);

	sa_init(&any, AF_INET);
	ck_assert_int_eq(ng_client_alloc(&(struct ng_client *){NULL}, &any,
					 NULL), EINVAL);
	run_for(20);
	ck_assert_uint_eq(fake->received, 0);
}
END_TEST


/* Lost answers: the same datagram again, until one gets through */
START_TEST(test_retry_then_success)
{
	struct result r = {0};
	uint64_t t0 = tmr_jiffies();

	fake->bad = FAKE_SILENT;
	fake->bad_count = TRIES - 1;

	ck_assert_int_eq(ng_ping(NULL, ng, resp_handler, &r), 0);
	wait_done(&r);

	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(fake->received, TRIES);
	ck_assert_uint_eq(fake->cookies, 1);
	ck_assert_uint_ge(r.at - t0, (TRIES - 1) * TIMEOUT_MS);
	ck_assert_uint_eq(ng_client_stats(ng)->retries, TRIES - 1);
	ck_assert_uint_eq(ng_client_stats(ng)->timeouts, 0);
}
END_TEST


START_TEST(test_timeout)
{
	struct result r = {0};
	uint64_t t0 = tmr_jiffies();

	fake->bad = FAKE_SILENT;
	fake->bad_count = ~0u;

	ck_assert_int_eq(ng_ping(NULL, ng, resp_handler, &r), 0);
	wait_done(&r);

	ck_assert_int_eq(r.err, ETIMEDOUT);
	ck_assert_str_eq(r.result, "");
	ck_assert_uint_eq(r.calls, 1);
	ck_assert_uint_eq(fake->received, TRIES);
	ck_assert_uint_ge(r.at - t0, TRIES * TIMEOUT_MS);
	ck_assert_uint_eq(ng_client_stats(ng)->timeouts, 1);

	run_for(2 * TIMEOUT_MS);
	ck_assert_uint_eq(r.calls, 1);
	ck_assert_uint_eq(fake->received, TRIES);
}
END_TEST


/* Defaults: 3 tries, 500 ms apart */
START_TEST(test_default_retries)
{
	struct ng_client *slow = NULL;
	struct result r = {0};
	uint64_t t0 = tmr_jiffies();

	fake->bad = FAKE_SILENT;
	fake->bad_count = ~0u;

	ck_assert_int_eq(ng_client_alloc(&slow, &fake->addr, NULL), 0);
	ck_assert_int_eq(ng_ping(NULL, slow, resp_handler, &r), 0);
	wait_done(&r);

	ck_assert_int_eq(r.err, ETIMEDOUT);
	ck_assert_uint_eq(fake->received, 3);
	ck_assert_uint_ge(r.at - t0, 1500);
	ck_assert_uint_lt(r.at - t0, 2500);
	mem_deref(slow);
}
END_TEST


/* A garbled copy is dropped; the retry brings a good one */
START_TEST(test_garbled_then_good)
{
	struct result r = {0};

	fake->bad = FAKE_GARBLED;
	fake->bad_count = 1;

	ck_assert_int_eq(ng_ping(NULL, ng, resp_handler, &r), 0);
	wait_done(&r);

	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(r.calls, 1);
	ck_assert_uint_eq(fake->received, 2);
	ck_assert_uint_eq(ng_client_stats(ng)->garbled, 1);
}
END_TEST


START_TEST(test_junk_only)
{
	struct result r = {0};

	fake->bad = FAKE_JUNK;
	fake->bad_count = ~0u;

	ck_assert_int_eq(ng_ping(NULL, ng, resp_handler, &r), 0);
	wait_done(&r);

	ck_assert_int_eq(r.err, ETIMEDOUT);
	ck_assert_uint_eq(ng_client_stats(ng)->garbled, TRIES);
}
END_TEST


/* A dictionary without "result" is no ng reply either */
START_TEST(test_no_result)
{
	struct result r = {0};

	fake->reply = "d3:foo3:bare";

	ck_assert_int_eq(ng_ping(NULL, ng, resp_handler, &r), 0);
	wait_done(&r);

	ck_assert_int_eq(r.err, ETIMEDOUT);
	ck_assert_uint_eq(ng_client_stats(ng)->garbled, TRIES);
}
END_TEST


START_TEST(test_wrong_cookie)
{
	struct result r = {0};

	fake->bad = FAKE_WRONG_COOKIE;
	fake->bad_count = 1;

	ck_assert_int_eq(ng_ping(NULL, ng, resp_handler, &r), 0);
	wait_done(&r);

	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(fake->received, 2);
	ck_assert_uint_eq(ng_client_stats(ng)->stray, 1);
	ck_assert_uint_eq(ng_client_stats(ng)->garbled, 0);
}
END_TEST


START_TEST(test_error_result)
{
	struct result r = {0};

	fake->reply = "d6:result5:error12:error-reason15:Unknown call-ide";

	ck_assert_int_eq(ng_query(NULL, ng, &(struct ng_call){.callid = "x"},
				  resp_handler, &r), 0);
	wait_done(&r);

	ck_assert_int_eq(r.err, EPROTO);
	ck_assert_str_eq(r.result, "error");
	ck_assert_str_eq(r.reason, "Unknown call-id");
	ck_assert_uint_eq(fake->received, 1);
	ck_assert_uint_eq(ng_client_stats(ng)->errors, 1);
}
END_TEST


/* Answers in the reverse order still reach their own requests */
START_TEST(test_cookie_matching)
{
	static const char *callids[] = {"c0", "c1", "c2"};
	struct result r[ARRAY_SIZE(callids)];
	struct ng_client *patient = patient_alloc();

	memset(r, 0, sizeof(r));
	fake->hold = true;
	for (size_t i = 0; i < ARRAY_SIZE(callids); i++)
		ck_assert_int_eq(ng_query(NULL, patient, &(struct ng_call){
					  .callid = callids[i]},
					  resp_handler, &r[i]), 0);

	run_for(50);
	ck_assert_uint_eq(fake->heldc, ARRAY_SIZE(callids));
	fake_release(fake);
	wait_done(&r[0]);
	run_for(20);

	for (size_t i = 0; i < ARRAY_SIZE(callids); i++) {
		ck_assert(r[i].done);
		ck_assert_int_eq(r[i].err, 0);
		ck_assert_str_eq(r[i].callid, callids[i]);
	}
	mem_deref(patient);
}
END_TEST


/* The right cookie from the wrong address is not an answer */
START_TEST(test_foreign_source)
{
	struct ng_client *patient = patient_alloc();
	struct udp_sock *other = NULL;
	struct result r = {0};
	struct mbuf *mb;
	struct sa laddr;

	fake->hold = true;
	ck_assert_int_eq(ng_ping(NULL, patient, resp_handler, &r), 0);
	run_for(20);
	ck_assert_uint_eq(fake->heldc, 1);

	ck_assert_int_eq(sa_set_str(&laddr, "127.0.0.1", 0), 0);
	ck_assert_int_eq(udp_listen(&other, &laddr, NULL, NULL), 0);
	mb = mbuf_alloc(64);
	ck_assert_int_eq(mbuf_printf(mb, "%s d6:result4:ponge",
				     fake->held[0].cookie), 0);
	mb->pos = 0;
	ck_assert_int_eq(udp_send(other, &fake->peer, mb), 0);
	run_for(20);

	ck_assert(!r.done);
	ck_assert_uint_eq(ng_client_stats(patient)->stray, 1);

	fake_release(fake);
	wait_done(&r);
	ck_assert_int_eq(r.err, 0);

	mem_deref(mb);
	mem_deref(other);
	mem_deref(patient);
}
END_TEST


/* Freeing a request cancels it; an ended one clears the owner's pointer */
START_TEST(test_cancel)
{
	struct ng_client *patient = patient_alloc();
	struct ng_req *req = NULL;
	struct result r = {0};

	fake->hold = true;
	ck_assert_int_eq(ng_ping(&req, patient, resp_handler, &r), 0);
	ck_assert_ptr_nonnull(req);
	run_for(20);
	ck_assert_uint_eq(fake->heldc, 1);
	req = mem_deref(req);
	fake_release(fake);
	run_for(50);
	ck_assert(!r.done);
	ck_assert_uint_eq(ng_client_stats(patient)->stray, 1);
	mem_deref(patient);

	fake->hold = false;
	ck_assert_int_eq(ng_ping(&req, ng, resp_handler, &r), 0);
	ck_assert_ptr_nonnull(req);
	wait_done(&r);
	ck_assert_ptr_null(req);
}
END_TEST


static void free_client_handler(int err, const struct odict *reply,
				void *arg)
{
	resp_handler(err, reply, arg);
	ng = mem_deref(ng);
}


/* A handler may free the client; freeing it cancels what is pending */
START_TEST(test_free_client)
{
	struct result r = {0}, pending = {0};

	ck_assert_int_eq(ng_ping(NULL, ng, free_client_handler, &r), 0);
	wait_done(&r);
	ck_assert_ptr_null(ng);

	ng = patient_alloc();
	fake->hold = true;
	ck_assert_int_eq(ng_ping(NULL, ng, resp_handler, &pending), 0);
	run_for(20);
	ck_assert_uint_eq(fake->heldc, 1);
	ng = mem_deref(ng);
	fake_release(fake);
	run_for(50);
	ck_assert(!pending.done);
}
END_TEST


static Suite *ng_suite(void)
{
	Suite *s = suite_create("ng");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_ping);
	tcase_add_test(tc, test_commands_encoding);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_retry_then_success);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_default_retries);
	tcase_add_test(tc, test_garbled_then_good);
	tcase_add_test(tc, test_junk_only);
	tcase_add_test(tc, test_no_result);
	tcase_add_test(tc, test_wrong_cookie);
	tcase_add_test(tc, test_error_result);
	tcase_add_test(tc, test_cookie_matching);
	tcase_add_test(tc, test_foreign_source);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_free_client);
	suite_add_tcase(s, tc);

	return s;
}


#include "../check_main.h"

int main(void)
{
	return check_main(ng_suite());
}

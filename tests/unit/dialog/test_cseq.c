/**
 * @file test_cseq.c  Unit tests of per-leg CSeq numbering
 *
 * The rules under test (docs/design.md, "CSeq numbering"): relaying keeps
 * numbers while the engine sends nothing of its own; once it has sent a
 * request on a leg, later requests relayed to that leg are renumbered
 * above it; an ACK carries its INVITE's number; numbers from an endpoint
 * must increase. The last tests replay the re-homing sequence seen on the
 * wire and check the invariant over random traffic.
 */
#include <stdlib.h>
#include <check.h>
#include <re.h>
#include "cseq.h"


START_TEST(test_relay_keeps_numbers)
{
	struct cseq_leg callee = {0}, caller = {0};

	ck_assert_uint_eq(cseq_relay(&callee, 101, true), 101);
	ck_assert_uint_eq(cseq_relay_ack(&callee), 101);
	ck_assert_uint_eq(cseq_relay(&callee, 102, false), 102);
	ck_assert_uint_eq(cseq_relay(&callee, 110, true), 110);
	ck_assert_uint_eq(cseq_relay_ack(&callee), 110);
	ck_assert_uint_eq(callee.off, 0);

	/* the other direction has its own numbers */
	ck_assert_uint_eq(cseq_relay(&caller, 7, false), 7);
	ck_assert_uint_eq(cseq_relay(&caller, 8, false), 8);
	ck_assert_uint_eq(caller.off, 0);
}
END_TEST


START_TEST(test_originate_continues_lseq)
{
	struct cseq_leg leg = {0};

	ck_assert_uint_eq(cseq_originate(&leg, true), 1);
	ck_assert_uint_eq(cseq_relay_ack(&leg), 1);

	cseq_relay(&leg, 20, false);
	ck_assert_uint_eq(cseq_originate(&leg, false), 21);
	ck_assert_uint_eq(cseq_relay_ack(&leg), 1);
	ck_assert_uint_eq(cseq_originate(&leg, true), 22);
	ck_assert_uint_eq(cseq_relay_ack(&leg), 22);
}
END_TEST


START_TEST(test_relay_after_originate_renumbers)
{
	struct cseq_leg leg = {0};

	ck_assert_uint_eq(cseq_relay(&leg, 1, true), 1);
	ck_assert_uint_eq(cseq_originate(&leg, true), 2);
	ck_assert_uint_eq(cseq_originate(&leg, true), 3);

	/* the other endpoint continues at 2: must go out above 3 */
	ck_assert_uint_eq(cseq_relay(&leg, 2, true), 4);
	ck_assert_uint_eq(cseq_relay_ack(&leg), 4);
	ck_assert_uint_eq(cseq_relay(&leg, 3, false), 5);
	ck_assert_uint_eq(leg.off, 2);

	/* a gap in the sender's numbers keeps the offset */
	ck_assert_uint_eq(cseq_relay(&leg, 10, false), 12);
}
END_TEST


START_TEST(test_recv_rejects_non_increasing)
{
	struct cseq_leg leg = {0};

	ck_assert_int_eq(cseq_recv(&leg, 5, false), 0);
	ck_assert_uint_eq(leg.rseq, 5);
	ck_assert_int_eq(cseq_recv(&leg, 5, false), EPROTO);
	ck_assert_int_eq(cseq_recv(&leg, 4, false), EPROTO);
	ck_assert_uint_eq(leg.rseq, 5);

	/* ACK (and CANCEL) reuse the INVITE's number */
	ck_assert_int_eq(cseq_recv(&leg, 5, true), 0);
	ck_assert_int_eq(cseq_recv(&leg, 3, true), 0);
	ck_assert_uint_eq(leg.rseq, 5);

	ck_assert_int_eq(cseq_recv(&leg, 9, false), 0);
	ck_assert_uint_eq(leg.rseq, 9);
}
END_TEST


/*
 * A re-homing seen on the wire: the call is set up through node 1, node 2
 * takes it over with mode=challenge (re-INVITE to the caller, then the
 * callee), then the caller's BYE with CSeq 2 goes to the callee as CSeq 3.
 */
START_TEST(test_rehome_sequence)
{
	struct cseq_leg caller = {0}, callee = {0};

	/* INVITE 1 from the caller, relayed unchanged; ACK 1 */
	ck_assert_int_eq(cseq_recv(&caller, 1, false), 0);
	ck_assert_uint_eq(cseq_relay(&callee, 1, true), 1);
	ck_assert_int_eq(cseq_recv(&caller, 1, true), 0);
	ck_assert_uint_eq(cseq_relay_ack(&callee), 1);

	/* re-home: re-INVITE caller, then callee, and ACK each */
	ck_assert_uint_eq(cseq_originate(&caller, true), 1);
	ck_assert_uint_eq(cseq_relay_ack(&caller), 1);
	ck_assert_uint_eq(cseq_originate(&callee, true), 2);
	ck_assert_uint_eq(cseq_relay_ack(&callee), 2);

	/* caller's BYE with CSeq 2 reaches the callee as CSeq 3 */
	ck_assert_int_eq(cseq_recv(&caller, 2, false), 0);
	ck_assert_uint_eq(cseq_relay(&callee, 2, false), 3);
}
END_TEST


START_TEST(test_rehome_sequence_callee_hangs_up)
{
	struct cseq_leg caller = {0}, callee = {0};

	cseq_recv(&caller, 1, false);
	cseq_relay(&callee, 1, true);
	cseq_originate(&caller, true);
	cseq_originate(&callee, true);

	/* the callee's own first request (its CSeq 1) is above the
	 * re-INVITE the caller saw (1) */
	ck_assert_int_eq(cseq_recv(&callee, 1, false), 0);
	ck_assert_uint_eq(cseq_relay(&caller, 1, false), 2);
	ck_assert_int_eq(cseq_recv(&callee, 2, false), 0);
	ck_assert_uint_eq(cseq_relay(&caller, 2, false), 3);
}
END_TEST


/* Whatever mix of relayed and own requests, each endpoint sees strictly
 * increasing numbers, and the ACK always matches the last INVITE. */
START_TEST(test_random_traffic_strictly_increasing)
{
	struct cseq_leg leg = {0};
	uint32_t in = 1, last_out = 0, last_invite = 0;

	srand(1234);
	for (int i = 0; i < 100000; i++) {
		bool invite = rand() % 4 == 0;
		uint32_t out;

		if (rand() % 3 == 0) {
			out = cseq_originate(&leg, invite);
		}
		else {
			in += 1 + rand() % 3;
			out = cseq_relay(&leg, in, invite);
			ck_assert_uint_ge(out, in);
		}

		ck_assert_uint_gt(out, last_out);
		last_out = out;
		if (invite)
			last_invite = out;

		ck_assert_uint_eq(cseq_relay_ack(&leg), last_invite);
	}
}
END_TEST


/* A PRACK's RAck names the INVITE as the leg it goes to numbered it */
START_TEST(test_rack_names_relayed_invite)
{
	struct cseq_leg callee = {0};

	ck_assert_uint_eq(cseq_rack(&callee, 7), 7);   /* nothing relayed */

	cseq_relay(&callee, 1, true);
	ck_assert_uint_eq(cseq_originate(&callee, true), 2);   /* re-home */
	ck_assert_uint_eq(cseq_relay(&callee, 2, true), 3);    /* re-INVITE */
	ck_assert_uint_eq(cseq_rack(&callee, 2), 3);
	ck_assert_uint_eq(cseq_relay(&callee, 3, false), 4);   /* the PRACK */
	ck_assert_uint_eq(cseq_rack(&callee, 2), 3);
}
END_TEST


static Suite *cseq_suite(void)
{
	Suite *s = suite_create("cseq");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_relay_keeps_numbers);
	tcase_add_test(tc, test_originate_continues_lseq);
	tcase_add_test(tc, test_relay_after_originate_renumbers);
	tcase_add_test(tc, test_recv_rejects_non_increasing);
	tcase_add_test(tc, test_rehome_sequence);
	tcase_add_test(tc, test_rehome_sequence_callee_hangs_up);
	tcase_add_test(tc, test_random_traffic_strictly_increasing);
	tcase_add_test(tc, test_rack_names_relayed_invite);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(cseq_suite());
}

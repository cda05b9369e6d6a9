/**
 * @file test_sdpver.c  Unit tests of the o= versions sent to one leg
 *
 * The rules under test (sdpver.c): only the o= version changes; an offer
 * of the engine's own that changed gets a version above the last one the
 * leg was sent, and the offset that took is added to every later SDP; an
 * unchanged description goes out as it went before; relayed SDPs only
 * get the offset.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "sdpver.h"

#define SDP(ver, port) \
	"v=0\r\no=bob 2000 " ver " IN IP4 192.0.2.1\r\ns=-\r\n" \
	"c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio " port " RTP/AVP 0\r\n"


static char *dup(const char *s)
{
	char *d = NULL;

	ck_assert_int_eq(str_dup(&d, s), 0);
	return d;
}


START_TEST(test_decode_and_rewrite)
{
	uint64_t v = 0;
	char *out = NULL;

	ck_assert_int_eq(sdpver_decode(&v, SDP("2000", "7000")), 0);
	ck_assert_uint_eq(v, 2000);
	ck_assert_int_eq(sdpver_decode(&v, SDP("9999999999999999999",
					       "7000")), 0);
	ck_assert_uint_eq(v, 9999999999999999999ULL);

	ck_assert_int_eq(sdpver_rewrite(&out, SDP("2000", "7000"), 2001), 0);
	ck_assert_str_eq(out, SDP("2001", "7000"));
	mem_deref(out);

	ck_assert_int_ne(sdpver_decode(&v, "v=0\r\ns=-\r\n"), 0);
	ck_assert_int_ne(sdpver_decode(&v, "v=0\r\no=bob 1 x IN\r\n"), 0);
	ck_assert_int_ne(sdpver_decode(&v, "v=0\r\no=bob 1\r\n2 3 4\r\n"),
			 0);
	ck_assert_int_ne(sdpver_decode(&v, "v=0\r\no=b 1 123456789012345678901"
				       " IN IP4 x\r\n"), 0);
}
END_TEST


START_TEST(test_same_ignores_version_only)
{
	ck_assert(sdpver_same(SDP("1", "7000"), SDP("9", "7000")));
	ck_assert(!sdpver_same(SDP("1", "7000"), SDP("1", "7002")));
	ck_assert(!sdpver_same(SDP("1", "7000"), NULL));
	ck_assert(sdpver_same("x", "x"));
	ck_assert(!sdpver_same("x", "y"));
}
END_TEST


START_TEST(test_own_changed_offer_bumps)
{
	char *last = dup(SDP("2000", "7000"));
	char *offer = dup(SDP("2000", "7002"));  /* changed, same version */
	char *out = NULL, *out2 = NULL, *relayed = dup(SDP("2001", "7004"));
	uint64_t off = 0;

	ck_assert_int_eq(sdpver_out(&out, &off, last, offer, true), 0);
	ck_assert_str_eq(out, SDP("2001", "7002"));
	ck_assert_uint_eq(off, 1);

	/* the endpoint's next change, relayed: above what the leg saw */
	ck_assert_int_eq(sdpver_out(&out2, &off, out, relayed, false), 0);
	ck_assert_str_eq(out2, SDP("2002", "7004"));
	ck_assert_uint_eq(off, 1);

	mem_deref(out2);
	mem_deref(out);
	mem_deref(relayed);
	mem_deref(offer);
	mem_deref(last);
}
END_TEST


START_TEST(test_unchanged_goes_out_as_before)
{
	char *last = dup(SDP("2001", "7000"));
	char *again = dup(SDP("2000", "7000"));
	char *out = NULL;
	uint64_t off = 1;

	ck_assert_int_eq(sdpver_out(&out, &off, last, again, true), 0);
	ck_assert_ptr_eq(out, last);
	ck_assert_uint_eq(off, 1);
	mem_deref(out);

	/* a newer version of its own needs nothing from us */
	mem_deref(again);
	again = dup(SDP("3000", "7006"));
	ck_assert_int_eq(sdpver_out(&out, &off, last, again, true), 0);
	ck_assert_str_eq(out, SDP("3001", "7006"));
	ck_assert_uint_eq(off, 1);

	mem_deref(out);
	mem_deref(again);
	mem_deref(last);
}
END_TEST


START_TEST(test_relayed_keeps_own_versions)
{
	char *last = dup(SDP("5", "7000"));
	char *sdp = dup(SDP("5", "7002"));
	char *out = NULL;
	uint64_t off = 0;

	/* an endpoint that changes without a new version is its own doing */
	ck_assert_int_eq(sdpver_out(&out, &off, last, sdp, false), 0);
	ck_assert_ptr_eq(out, sdp);
	ck_assert_uint_eq(off, 0);
	mem_deref(out);

	/* no o= line: sent as it is */
	mem_deref(sdp);
	sdp = dup("v=0\r\ns=-\r\n");
	ck_assert_int_eq(sdpver_out(&out, &off, last, sdp, true), 0);
	ck_assert_ptr_eq(out, sdp);

	mem_deref(out);
	mem_deref(sdp);
	mem_deref(last);
}
END_TEST


static Suite *sdpver_suite(void)
{
	Suite *s = suite_create("sdpver");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_decode_and_rewrite);
	tcase_add_test(tc, test_same_ignores_version_only);
	tcase_add_test(tc, test_own_changed_offer_bumps);
	tcase_add_test(tc, test_unchanged_goes_out_as_before);
	tcase_add_test(tc, test_relayed_keeps_own_versions);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(sdpver_suite());
}

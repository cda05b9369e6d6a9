/**
 * @file test_sipmend.c  Unit tests of the second reading of what libre refuses
 *
 * Through libre's own sip_msg_decode() (sipmend.c interposes on it, as in
 * the engine): a request of another SIP version decodes with its version
 * kept as sent; one with LWS in its request line decodes marked for a
 * 400, its method and URI text as sent; an RFC 2543 request (top Via without branch) gets a
 * made-up branch that is the same for a retransmission and for its
 * CANCEL, differs for another transaction, and is never the magic
 * cookie; a From with a URI libre cannot parse keeps its text and tag;
 * what stays unreadable is still refused, and sound messages are
 * untouched.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "sipmend.h"


#define REQ(met, cseq, via, from, to) \
	met " sip:bob@example.com SIP/2.0\r\n" \
	"Via: SIP/2.0/UDP " via "\r\n" \
	"From: " from "\r\n" \
	"To: " to "\r\n" \
	"Call-ID: c2543@example.com\r\n" \
	"CSeq: " cseq "\r\n" \
	"Content-Length: 0\r\n\r\n"

#define FROM "<sip:alice@example.com>;tag=a1"
#define TO   "<sip:bob@example.com>"


static int decode(struct sip_msg **msgp, const char *text)
{
	struct mbuf *mb = mbuf_alloc(strlen(text));
	int err;

	ck_assert_ptr_nonnull(mb);
	(void)mbuf_write_str(mb, text);   /* no spare room: it must make some */
	mb->pos = 0;
	err = sip_msg_decode(msgp, mb);
	mem_deref(mb);

	return err;
}


static char *branch_of(const char *text)
{
	struct sip_msg *msg = NULL;
	char *branch = NULL;

	ck_assert_int_eq(decode(&msg, text), 0);
	ck_assert(sipmend_is_rfc2543(msg));
	ck_assert_int_eq(pl_strdup(&branch, &msg->via.branch), 0);
	mem_deref(msg);

	return branch;
}


START_TEST(test_other_version_kept)
{
	struct sip_msg *msg = NULL;

	ck_assert_int_eq(decode(&msg,
		"OPTIONS sip:bob@example.com SIP/7.0\r\n"
		"Via: SIP/7.0/UDP h.example.com;branch=z9hG4bK1\r\n"
		"From: " FROM "\r\nTo: " TO "\r\n"
		"Call-ID: v7@example.com\r\nCSeq: 1 OPTIONS\r\n"
		"Content-Length: 0\r\n\r\n"), 0);
	ck_assert(msg->req);
	ck_assert(!pl_strcmp(&msg->ver, "SIP/7.0"));
	ck_assert(!pl_strcmp(&msg->met, "OPTIONS"));
	ck_assert(!pl_strcmp(&msg->via.branch, "z9hG4bK1"));
	ck_assert(!pl_strcmp(&msg->via.val,
			     "SIP/7.0/UDP h.example.com;branch=z9hG4bK1"));
	ck_assert(!sipmend_is_rfc2543(msg));
	mem_deref(msg);
}
END_TEST


START_TEST(test_bad_line_marked)
{
	struct sip_msg *msg = NULL;

	ck_assert_int_eq(decode(&msg,
		"INVITE  sip:bob@example.com; lr\tSIP/2.0  \r\n"
		"Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK3\r\n"
		"From: " FROM "\r\nTo: " TO "\r\n"
		"Call-ID: lws@example.com\r\nCSeq: 1 INVITE\r\n"
		"Content-Length: 0\r\n\r\n"), 0);
	ck_assert(sipmend_bad_line(msg));
	ck_assert(!pl_strcmp(&msg->met, "INVITE"));
	ck_assert(!pl_strcmp(&msg->ruri, "  sip:bob@example.com; lr\t"));
	ck_assert(!pl_isset(&msg->uri.host));
	ck_assert(!pl_strcmp(&msg->callid, "lws@example.com"));
	ck_assert(!pl_strcmp(&msg->via.branch, "z9hG4bK3"));
	mem_deref(msg);

	ck_assert_int_eq(decode(&msg, REQ("INVITE", "1 INVITE",
		"h.example.com;branch=z9hG4bKabc", FROM, TO)), 0);
	ck_assert(!sipmend_bad_line(msg));
	mem_deref(msg);
}
END_TEST


START_TEST(test_rfc2543_branch)
{
	char *invite = branch_of(REQ("INVITE", "5 INVITE", "gw.example.com",
				     FROM, TO));
	char *again = branch_of(REQ("INVITE", "5 INVITE", "gw.example.com",
				    FROM, TO));
	char *cancel = branch_of(REQ("CANCEL", "5 CANCEL", "gw.example.com",
				     FROM, TO));
	char *bye = branch_of(REQ("BYE", "6 BYE", "gw.example.com",
				  FROM, TO ";tag=b1"));
	char *other = branch_of(REQ("INVITE", "5 INVITE", "gw2.example.com",
				    FROM, TO));

	ck_assert_str_eq(invite, again);
	ck_assert_str_eq(invite, cancel);
	ck_assert_str_ne(invite, bye);
	ck_assert_str_ne(invite, other);
	ck_assert(!strncmp(invite, "rh2543", 6));
	ck_assert_uint_eq(strlen(invite), 22);

	mem_deref(invite);
	mem_deref(again);
	mem_deref(cancel);
	mem_deref(bye);
	mem_deref(other);
}
END_TEST


START_TEST(test_unknown_scheme_from)
{
	struct sip_msg *msg = NULL;

	ck_assert_int_eq(decode(&msg, REQ("REGISTER", "1 REGISTER",
		"h.example.com;branch=z9hG4bK2",
		"<http://www.example.com>;tag=3234233", "isbn:2983792873")), 0);
	ck_assert(!pl_strcmp(&msg->from.val,
			     "<http://www.example.com>;tag=3234233"));
	ck_assert(!pl_strcmp(&msg->from.auri, "http://www.example.com"));
	ck_assert(!pl_strcmp(&msg->from.tag, "3234233"));
	mem_deref(msg);
}
END_TEST


START_TEST(test_still_refused)
{
	struct sip_msg *msg = NULL;

	/* no header end (TCP would wait for more), a Via of no shape */
	ck_assert_int_ne(decode(&msg, "INVITE sip:a@b.c;  lr SIP/2.0\r\n"
				"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"), 0);
	ck_assert_int_ne(decode(&msg, "OPTIONS sip:a@b.c SIP/2.0\r\n"
				"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"), 0);
	ck_assert_int_ne(decode(&msg, REQ("INVITE", "1 INVITE", "",
					  FROM, TO)), 0);
	ck_assert_ptr_null(msg);
}
END_TEST


START_TEST(test_sound_untouched)
{
	struct sip_msg *msg = NULL;

	ck_assert_int_eq(decode(&msg, REQ("INVITE", "1 INVITE",
		"h.example.com;branch=z9hG4bKabc", FROM, TO)), 0);
	ck_assert(!pl_strcmp(&msg->via.branch, "z9hG4bKabc"));
	ck_assert(!sipmend_is_rfc2543(msg));
	mem_deref(msg);
}
END_TEST


static Suite *sipmend_suite(void)
{
	Suite *s = suite_create("sipmend");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_other_version_kept);
	tcase_add_test(tc, test_bad_line_marked);
	tcase_add_test(tc, test_rfc2543_branch);
	tcase_add_test(tc, test_unknown_scheme_from);
	tcase_add_test(tc, test_still_refused);
	tcase_add_test(tc, test_sound_untouched);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	if (sipmend_init())
		return EXIT_FAILURE;

	return check_main(sipmend_suite());
}

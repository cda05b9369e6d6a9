/**
 * @file test_sipmsg.c  Unit tests of what crosses from one leg to the other
 *
 * The contract under test (docs/design.md, "Topology hiding"): a request
 * only forwarded to the node serving its dialog keeps all but the hop's
 * own headers (which cross between the legs: test_hdrfilter.c). Messages
 * are parsed by libre, as on the wire, so compact forms and comma-separated
 * values are checked the way the engine meets them. The route set, the
 * engine's Contact and body, and the checks made on every request are
 * tested with the inputs an endpoint can send.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "dialog.h"
#include "sipmsg.h"


#define VIA      "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
#define FROM     "From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"
#define TO       "To: <sip:bob@example.com>\r\n"
#define CALLID   "Call-ID: c1@10.0.0.1\r\n"
#define NOBODY   "Content-Length: 0\r\n\r\n"

/* An INVITE with every kind of header: the engine's, the hop's, others */
static const char invite[] =
	"INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
	VIA
	"v: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK2\r\n"
	"Max-Forwards: 69\r\n"
	"Route: <sip:p1.example.com;lr>\r\n"
	"Record-Route: <sip:p2.example.com;lr>, <sip:p3.example.com>\r\n"
	FROM
	"t: <sip:bob@example.com>\r\n"
	CALLID
	"CSeq: 5 INVITE\r\n"
	"Contact: <sip:alice@10.0.0.1:5060>\r\n"
	"Subject: hello\r\n"
	"User-Agent: softphone/1.0\r\n"
	"P-Asserted-Identity: <sip:alice@example.com>\r\n"
	"X-Custom: one\r\n"
	"Allow: INVITE, ACK, BYE\r\n"
	"k: timer\r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 5\r\n"
	"\r\n"
	"v=0\r\n";


static struct sip_msg *decode(const char *str)
{
	struct sip_msg *msg = NULL;
	struct mbuf *mb = mbuf_alloc(512);

	ck_assert_ptr_nonnull(mb);
	ck_assert_int_eq(mbuf_write_str(mb, str), 0);
	mb->pos = 0;
	ck_assert_int_eq(sip_msg_decode(&msg, mb), 0);
	mem_deref(mb);

	return msg;
}


/* What a printer wrote, as a string to compare; consumes mb */
static char *text(struct mbuf *mb)
{
	char *str = NULL;

	mb->pos = 0;
	ck_assert_int_eq(mbuf_strdup(mb, &str, mb->end), 0);
	mem_deref(mb);

	return str;
}


static char *copy_hdrs(const char *str, sipmsg_skip_h *skip)
{
	struct sip_msg *msg = decode(str);
	struct mbuf *mb = mbuf_alloc(512);

	ck_assert_int_eq(sipmsg_copy_hdrs(mb, msg, skip), 0);
	mem_deref(msg);

	return text(mb);
}


START_TEST(test_hop_set)
{
	static const struct {
		enum sip_hdrid id;
		bool hop;
	} hdrs[] = {
		{SIP_HDR_VIA,                 true},
		{SIP_HDR_ROUTE,               true},
		{SIP_HDR_MAX_FORWARDS,        true},
		{SIP_HDR_CONTENT_LENGTH,      true},
		{SIP_HDR_RECORD_ROUTE,        false},
		{SIP_HDR_CONTACT,             false},
		{SIP_HDR_CALL_ID,             false},
		{SIP_HDR_CSEQ,                false},
		{SIP_HDR_FROM,                false},
		{SIP_HDR_TO,                  false},
		{SIP_HDR_CONTENT_TYPE,        false},
		{SIP_HDR_USER_AGENT,          false},
		{SIP_HDR_NONE,                false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(hdrs); i++)
		ck_assert_msg(sipmsg_is_hop(hdrs[i].id) == hdrs[i].hop,
			      "hop, header %zu", i);
}
END_TEST


START_TEST(test_copy_forwarded_keeps_endpoint_headers)
{
	char *out = copy_hdrs(invite, sipmsg_is_hop);

	ck_assert_str_eq(out,
		"Record-Route: <sip:p2.example.com;lr>, "
		"<sip:p3.example.com>\r\n"
		FROM
		"t: <sip:bob@example.com>\r\n"
		CALLID
		"CSeq: 5 INVITE\r\n"
		"Contact: <sip:alice@10.0.0.1:5060>\r\n"
		"Subject: hello\r\n"
		"User-Agent: softphone/1.0\r\n"
		"P-Asserted-Identity: <sip:alice@example.com>\r\n"
		"X-Custom: one\r\n"
		"Allow: INVITE, ACK, BYE\r\n"
		"k: timer\r\n"
		"Content-Type: application/sdp\r\n");
	mem_deref(out);
}
END_TEST


START_TEST(test_copy_one_header)
{
	struct sip_msg *msg = decode(invite);
	struct mbuf *mb = mbuf_alloc(256);
	char *out;

	ck_assert_int_eq(sipmsg_copy_hdr(mb, msg, SIP_HDR_VIA), 0);
	out = text(mb);
	ck_assert_str_eq(out, VIA
			 "v: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK2\r\n");
	mem_deref(out);

	mb = mbuf_alloc(256);
	ck_assert_int_eq(sipmsg_copy_hdr(mb, msg, SIP_HDR_WARNING), 0);
	ck_assert_uint_eq(mb->end, 0);
	mem_deref(mb);
	mem_deref(msg);
}
END_TEST


static const char response_rr[] =
	"SIP/2.0 200 OK\r\n"
	VIA FROM
	"To: <sip:bob@example.com>;tag=b1\r\n"
	CALLID
	"CSeq: 5 INVITE\r\n"
	"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
	"Record-Route: <sip:p3.example.com;lr>\r\n"
	"Contact: <sip:bob@10.0.0.2>\r\n"
	NOBODY;


START_TEST(test_route_set_order)
{
	struct sip_msg *msg = decode(response_rr);
	char *route = NULL;

	/* we are the sender's UAS: its Record-Route as received */
	ck_assert_int_eq(sipmsg_route_set(&route, msg, false), 0);
	ck_assert_str_eq(route, "<sip:p1.example.com;lr>, "
			 "<sip:p2.example.com;lr>, <sip:p3.example.com;lr>");

	/* we are its UAC: reversed; the previous value is replaced */
	ck_assert_int_eq(sipmsg_route_set(&route, msg, true), 0);
	ck_assert_str_eq(route, "<sip:p3.example.com;lr>, "
			 "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>");

	mem_deref(route);
	mem_deref(msg);
}
END_TEST


START_TEST(test_route_set_none)
{
	struct sip_msg *msg = decode("BYE sip:bob@10.0.0.2 SIP/2.0\r\n"
				     VIA FROM TO CALLID "CSeq: 6 BYE\r\n"
				     NOBODY);
	char *route = NULL;

	ck_assert_int_eq(str_dup(&route, "<sip:old;lr>"), 0);
	ck_assert_int_eq(sipmsg_route_set(&route, msg, false), 0);
	ck_assert_ptr_null(route);

	ck_assert_int_eq(sipmsg_route_set(NULL, msg, false), EINVAL);
	ck_assert_int_eq(sipmsg_route_set(&route, NULL, false), EINVAL);
	mem_deref(msg);
}
END_TEST


START_TEST(test_route_first)
{
	struct pl uri;

	ck_assert_int_eq(sipmsg_route_first(&uri, "<sip:p1.example.com;lr>, "
					    "<sip:p2.example.com;lr>"), 0);
	ck_assert_int_eq(pl_strcmp(&uri, "sip:p1.example.com;lr"), 0);

	ck_assert_int_eq(sipmsg_route_first(&uri, "sip:p1.example.com"),
			 EBADMSG);
	ck_assert_int_eq(sipmsg_route_first(&uri, "<>"), EBADMSG);
	ck_assert_int_eq(sipmsg_route_first(&uri, NULL), EINVAL);
	ck_assert_int_eq(sipmsg_route_first(NULL, "<sip:p1>"), EINVAL);
}
END_TEST


START_TEST(test_contact_uri)
{
	struct sip_msg *msg;
	struct pl uri;

	msg = decode("SIP/2.0 200 OK\r\n" VIA FROM
		     "To: <sip:bob@example.com>;tag=b1\r\n" CALLID
		     "CSeq: 5 INVITE\r\n"
		     "m: \"Bob\" <sip:bob@10.0.0.2:5070;transport=tcp>"
		     ";expires=60\r\n"
		     "Contact: <sip:second@10.0.0.3>\r\n"
		     NOBODY);
	ck_assert_int_eq(sipmsg_contact_uri(&uri, msg), 0);
	ck_assert_int_eq(pl_strcmp(&uri,
				   "sip:bob@10.0.0.2:5070;transport=tcp"), 0);
	mem_deref(msg);

	msg = decode("BYE sip:bob@10.0.0.2 SIP/2.0\r\n"
		     VIA FROM TO CALLID "CSeq: 6 BYE\r\n" NOBODY);
	ck_assert_int_eq(sipmsg_contact_uri(&uri, msg), ENOENT);
	mem_deref(msg);
}
END_TEST


START_TEST(test_body)
{
	struct sip_msg *msg = decode(invite);
	size_t pos = msg->mb->pos;
	char *body = NULL;

	ck_assert(sipmsg_has_sdp(msg));
	ck_assert_int_eq(sipmsg_body_str(&body, msg), 0);
	ck_assert_str_eq(body, "v=0\r\n");
	ck_assert_uint_eq(msg->mb->pos, pos);
	mem_deref(body);
	mem_deref(msg);

	/* an SDP type with no body, or a body of another type: no SDP */
	msg = decode("INVITE sip:bob@10.0.0.2 SIP/2.0\r\n" VIA FROM TO CALLID
		     "CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
		     NOBODY);
	ck_assert(!sipmsg_has_sdp(msg));
	mem_deref(msg);

	msg = decode("MESSAGE sip:bob@10.0.0.2 SIP/2.0\r\n" VIA FROM TO
		     CALLID "CSeq: 1 MESSAGE\r\nc: text/plain\r\n"
		     "Content-Length: 2\r\n\r\nhi");
	ck_assert(!sipmsg_has_sdp(msg));
	mem_deref(msg);
}
END_TEST


START_TEST(test_print_contact)
{
	struct mbuf *mb = mbuf_alloc(128);
	struct dialog *dlg = NULL;
	struct sa laddr;
	char *out;

	ck_assert_int_eq(sa_set_str(&laddr, "127.0.0.1", 5060), 0);
	ck_assert_int_eq(dialog_alloc(&dlg, 0x0123456789abcdefULL), 0);
	dlg->leg[LEG_CALLER].contact_key = 0xfedcba9876543210ULL;
	dlg->leg[LEG_CALLEE].contact_key = 1;

	ck_assert_int_eq(sipmsg_print_contact(mb, dlg, LEG_CALLER, &laddr,
					      SIP_TRANSP_UDP), 0);
	out = text(mb);
	ck_assert_str_eq(out, "Contact: <sip:rh-0123456789abcdef-a"
			 "-fedcba9876543210@127.0.0.1:5060>\r\n");
	mem_deref(out);

	mb = mbuf_alloc(128);
	ck_assert_int_eq(sipmsg_print_contact(mb, dlg, LEG_CALLEE, &laddr,
					      SIP_TRANSP_TCP), 0);
	out = text(mb);
	ck_assert_str_eq(out, "Contact: <sip:rh-0123456789abcdef-b"
			 "-0000000000000001@127.0.0.1:5060;transport=tcp>\r\n");
	mem_deref(out);

	mb = mbuf_alloc(128);
	ck_assert_int_eq(sipmsg_print_contact(mb, dlg, 2, &laddr,
					      SIP_TRANSP_UDP), EINVAL);
	ck_assert_int_eq(sipmsg_print_contact(mb, NULL, 0, &laddr,
					      SIP_TRANSP_UDP), EINVAL);
	ck_assert_uint_eq(mb->end, 0);
	mem_deref(mb);
	mem_deref(dlg);
}
END_TEST


START_TEST(test_print_body)
{
	struct mbuf *mb = mbuf_alloc(128);
	char *out;

	ck_assert_int_eq(sipmsg_print_body(mb, "application/sdp",
					   "v=0\r\n"), 0);
	out = text(mb);
	ck_assert_str_eq(out, "Content-Type: application/sdp\r\n"
			 "Content-Length: 5\r\n\r\nv=0\r\n");
	mem_deref(out);

	/* no body: no Content-Type, whatever the caller passed */
	mb = mbuf_alloc(128);
	ck_assert_int_eq(sipmsg_print_body(mb, "application/sdp", NULL), 0);
	out = text(mb);
	ck_assert_str_eq(out, "Content-Length: 0\r\n\r\n");
	mem_deref(out);

	mb = mbuf_alloc(128);
	ck_assert_int_eq(sipmsg_print_body(mb, NULL, "x"), 0);
	out = text(mb);
	ck_assert_str_eq(out, "Content-Length: 1\r\n\r\nx");
	mem_deref(out);
}
END_TEST


START_TEST(test_max_forwards)
{
	struct sip_msg *msg = decode(invite);

	ck_assert_uint_eq(sipmsg_max_forwards(msg), 69);
	mem_deref(msg);

	msg = decode("BYE sip:bob@10.0.0.2 SIP/2.0\r\n"
		     VIA FROM TO CALLID "CSeq: 6 BYE\r\n" NOBODY);
	ck_assert_uint_eq(sipmsg_max_forwards(msg), 70);
	mem_deref(msg);

	msg = decode("BYE sip:bob@10.0.0.2 SIP/2.0\r\n" VIA
		     "Max-Forwards: 0\r\n" FROM TO CALLID "CSeq: 6 BYE\r\n"
		     NOBODY);
	ck_assert_uint_eq(sipmsg_max_forwards(msg), 0);
	ck_assert_uint_eq(sipmsg_max_forwards_next(msg), 0);
	mem_deref(msg);
}
END_TEST


START_TEST(test_max_forwards_next)
{
	struct sip_msg *msg = decode(invite);

	/* one less */
	ck_assert_uint_eq(sipmsg_max_forwards_next(msg), 68);
	mem_deref(msg);

	/* absent: as a request of our own, less one */
	msg = decode("BYE sip:bob@10.0.0.2 SIP/2.0\r\n"
		     VIA FROM TO CALLID "CSeq: 6 BYE\r\n" NOBODY);
	ck_assert_uint_eq(sipmsg_max_forwards_next(msg), 69);
	mem_deref(msg);

	/* never more than a request of our own starts with */
	msg = decode("BYE sip:bob@10.0.0.2 SIP/2.0\r\n" VIA
		     "Max-Forwards: 255\r\n" FROM TO CALLID "CSeq: 6 BYE\r\n"
		     NOBODY);
	ck_assert_uint_eq(sipmsg_max_forwards_next(msg), SIPMSG_MAX_FORWARDS);
	mem_deref(msg);
}
END_TEST


START_TEST(test_target_refresh)
{
	static const struct {
		const char *met;
		bool refresh;
	} cases[] = {
		{"INVITE", true}, {"UPDATE", true}, {"BYE", false},
		{"ACK", false}, {"INFO", false}, {"OPTIONS", false},
		{"invite", false},  /* methods are case-sensitive */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct pl met;

		pl_set_str(&met, cases[i].met);
		ck_assert_msg(sipmsg_is_target_refresh(&met) ==
			      cases[i].refresh, "%s", cases[i].met);
	}
}
END_TEST


static Suite *sipmsg_suite(void)
{
	Suite *s = suite_create("sipmsg");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_hop_set);
	tcase_add_test(tc, test_copy_forwarded_keeps_endpoint_headers);
	tcase_add_test(tc, test_copy_one_header);
	tcase_add_test(tc, test_route_set_order);
	tcase_add_test(tc, test_route_set_none);
	tcase_add_test(tc, test_route_first);
	tcase_add_test(tc, test_contact_uri);
	tcase_add_test(tc, test_body);
	tcase_add_test(tc, test_print_contact);
	tcase_add_test(tc, test_print_body);
	tcase_add_test(tc, test_max_forwards);
	tcase_add_test(tc, test_max_forwards_next);
	tcase_add_test(tc, test_target_refresh);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(sipmsg_suite());
}

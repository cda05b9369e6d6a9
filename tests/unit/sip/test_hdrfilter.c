/**
 * @file test_hdrfilter.c  Unit tests of which headers cross from one leg to the other
 *
 * The contract under test (docs/design.md, "Topology hiding"): only the
 * whitelisted end-to-end headers cross, verbatim and in order (compact
 * forms too); the engine's own (Via, Route, Contact, Call-ID, ...) and
 * everything unknown are dropped; identity headers naming an IP address
 * are dropped; Replaces, Join and Target-Dialog naming the sender's
 * dialog get the receiver's Call-ID, naming any other are dropped;
 * Refer-To loses an embedded Replaces; `pass_header` lets a named header
 * cross. Messages are parsed by libre, as on the wire.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "conf.h"
#include "hdrfilter.h"


static const char invite[] =
	"INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
	"Max-Forwards: 69\r\n"
	"Route: <sip:p1.example.com;lr>\r\n"
	"Record-Route: <sip:p2.example.com;lr>\r\n"
	"From: <sip:alice@example.com>;tag=a1\r\n"
	"t: <sip:bob@example.com>;tag=b1\r\n"
	"Call-ID: c1@10.0.0.1\r\n"
	"CSeq: 5 INVITE\r\n"
	"Contact: <sip:alice@10.0.0.1:5060>\r\n"
	"Subject: hello\r\n"
	"User-Agent: softphone/1.0\r\n"
	"Server: pbx/2.0\r\n"
	"Warning: 399 10.0.0.2 \"internal\"\r\n"
	"Path: <sip:10.0.0.7;lr>\r\n"
	"History-Info: <sip:bob@10.0.0.8>;index=1\r\n"
	"P-Asserted-Identity: <sip:alice@example.com>\r\n"
	"P-Asserted-Identity: <sip:alice@10.0.0.1>\r\n"
	"P-Preferred-Identity: <sip:alice@[2001:db8::1]:5060>\r\n"
	"Remote-Party-ID: <tel:+15551234>;party=calling\r\n"
	"X-Custom: one\r\n"
	"X-Internal-IP: 10.0.0.1\r\n"
	"Allow: INVITE, ACK, BYE\r\n"
	"k: timer\r\n"
	"Replaces: c1@10.0.0.1;to-tag=b1;from-tag=a1\r\n"
	"Target-Dialog: other@10.0.0.5;local-tag=x;remote-tag=y\r\n"
	"Refer-To: <sip:carol@example.com?Replaces=x%40y%3Bto-tag%3D1>\r\n"
	"r: <sip:dave@example.com?Subject=hi>\r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 5\r\n"
	"\r\n"
	"v=0\r\n";


static struct sip_msg *decode(const char *str)
{
	struct sip_msg *msg = NULL;
	struct mbuf *mb = mbuf_alloc(2048);

	ck_assert_ptr_nonnull(mb);
	ck_assert_int_eq(mbuf_write_str(mb, str), 0);
	mb->pos = 0;
	ck_assert_int_eq(sip_msg_decode(&msg, mb), 0);
	mem_deref(mb);

	return msg;
}


static char *filtered(const char *str, const struct hdrfilter_ids *ids)
{
	struct sip_msg *msg = decode(str);
	struct mbuf *mb = mbuf_alloc(1024);
	char *out = NULL;

	ck_assert_int_eq(hdrfilter_print(mb, msg, ids), 0);
	mb->pos = 0;
	ck_assert_int_eq(mbuf_strdup(mb, &out, mb->end), 0);
	mem_deref(mb);
	mem_deref(msg);

	return out;
}


START_TEST(test_whitelist)
{
	struct hdrfilter_ids ids = {PL("c1@10.0.0.1"), "rh-0123-4567"};
	char *out;

	hdrfilter_init(NULL);
	out = filtered(invite, &ids);

	ck_assert_str_eq(out,
		"Subject: hello\r\n"
		"P-Asserted-Identity: <sip:alice@example.com>\r\n"
		"Remote-Party-ID: <tel:+15551234>;party=calling\r\n"
		"Allow: INVITE, ACK, BYE\r\n"
		"k: timer\r\n"
		"Replaces: rh-0123-4567;to-tag=b1;from-tag=a1\r\n"
		"Refer-To: <sip:carol@example.com>\r\n"
		"r: <sip:dave@example.com?Subject=hi>\r\n"
		"Content-Type: application/sdp\r\n");
	mem_deref(out);
}
END_TEST


START_TEST(test_no_dialog_drops_references)
{
	char *out;

	hdrfilter_init(NULL);
	out = filtered(invite, NULL);
	ck_assert_ptr_null(strstr(out, "Replaces:"));
	ck_assert_ptr_null(strstr(out, "Target-Dialog:"));
	mem_deref(out);
}
END_TEST


START_TEST(test_pass_header)
{
	struct rh_conf *cfg = mem_zalloc(sizeof(*cfg), NULL);
	char *out;

	ck_assert_ptr_nonnull(cfg);
	str_ncpy(cfg->pass_header[0], "x-custom", CONF_HDR_SZ);
	str_ncpy(cfg->pass_header[1], "User-Agent", CONF_HDR_SZ);
	cfg->pass_headerc = 2;
	hdrfilter_init(cfg);

	out = filtered(invite, NULL);
	ck_assert_ptr_nonnull(strstr(out, "X-Custom: one\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "User-Agent: softphone/1.0\r\n"));
	ck_assert_ptr_null(strstr(out, "X-Internal-IP"));
	ck_assert_ptr_null(strstr(out, "Server:"));
	mem_deref(out);

	hdrfilter_init(NULL);
	mem_deref(cfg);
}
END_TEST


static Suite *hdrfilter_suite(void)
{
	Suite *s = suite_create("hdrfilter");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_whitelist);
	tcase_add_test(tc, test_no_dialog_drops_references);
	tcase_add_test(tc, test_pass_header);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(hdrfilter_suite());
}

/**
 * @file test_dialog_encode.c  Unit tests of the dialog encoder's bytes
 *
 * dialog_encode() writes JSON itself, without libre's odict and
 * json_encode_odict(), and must write the very bytes that pair wrote
 * (nodes of a cluster compare and store them): the golden strings below
 * are what the odict encoder printed for the same dialogs, and for any
 * string (every byte value 1 to 255) the output must be what
 * json_encode_odict() prints for it once decoded, so the escaping is
 * libre's. Each output also decodes to an equal dialog, and an error of
 * the print handler at any byte is returned, never swallowed.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "cseq.h"
#include "dialog.h"
#include "dialog_ext.h"
#include "dialog/dialog_fixture.h"

#define DID_HEX FIXTURE_DID_HEX


/** A ringing call: the early part, one SDP not relayed, empty strings */
static struct dialog *early_dialog(void)
{
	struct dialog *dlg = fixture_full_dialog();

	ck_assert_int_eq(dialog_early_alloc(dlg), 0);
	fixture_set(&dialog_early(dlg)->vias, "SIP/2.0/UDP 127.0.0.1:5070;"
		    "branch=z9hG4bK-1,SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-2");
	fixture_set(&dialog_early(dlg)->src, "127.0.0.1:5070");
	fixture_set(&dialog_early(dlg)->ruri, "sip:bob@127.0.0.4");
	fixture_set(&dialog_early(dlg)->dst, "");
	fixture_set(&dlg->leg[LEG_CALLER].sdp_out, "v=0\r\nother");
	fixture_set(&dlg->owner, "");
	dlg->state = DIALOG_EARLY;
	ck_assert_int_eq(dialog_set_se(dlg, 1800, LEG_CALLEE), 0);
	dialog_ext_get(dlg)->leg[LEG_CALLER].sdp_off = 7;
	dlg->leg[LEG_CALLEE].caps = 3;
	dlg->leg[LEG_CALLER].tp = SIP_TRANSP_UDP;

	return dlg;
}


/** Little more than a did: every field at its default */
static struct dialog *bare_dialog(void)
{
	struct dialog *dlg = NULL;

	ck_assert_int_eq(dialog_alloc(&dlg, 1), 0);
	dlg->callid_key = 0;
	dlg->leg[LEG_CALLER].contact_key = 0;
	dlg->leg[LEG_CALLEE].contact_key = 0;
	dlg->created = dlg->updated = 0;

	return dlg;
}


/** The typical call, at a time of its own */
static struct dialog *typical_dialog(void)
{
	struct dialog *dlg = fixture_typical_dialog(FIXTURE_DID);

	dlg->created = 1700000000000ULL;
	dlg->updated = 1700000060000ULL;
	ck_assert_int_eq(dialog_set_se(dlg, 90, LEG_CALLER), 0);

	return dlg;
}


/* what the odict encoder (json_encode_odict) printed for each */
static const char golden_full[] =
	"{\"v\":5,\"d\":\"fedcba9876543210\",\"s\":1,\"c\":\"a84b4c76"
	"e66710@pc33.atlanta.example.com\",\"ck\":\"8000000000000001\""
	",\"f\":\"\\\"J\xc3\xbcrgen \xce\xa9 \xf0\x9f\x98\x80 \\\\\\\""
	"x\\\\\\\"\\\" <sip:juergen@127.0.0.1>;tag=f1\",\"t\":\"\\\"B"
	"ob\\\" <sip:bob@biloxi.example.com>\",\"tt\":\"a6c85cf\",\"s"
	"h\":\"service\",\"o\":\"node1\",\"cr\":1700000000123,\"up\":"
	"1700000999456,\"n\":4000000000,\"a\":{\"t\":\"sip:alice@192."
	"0.2.101:5060\",\"r\":\"<sip:127.0.0.9;lr>,<sip:127.0.0.8;lr>"
	"\",\"i\":\"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\ns=Talk \\\""
	"quoted\\\" \\\\ back\\tslash\\r\\nc=IN IP4 127.0.0.1\\r\\nt="
	"0 0\\r\\nm=audio 4000 RTP\\/AVP 0\\r\\na=rtpmap:0 PCMU\\/800"
	"0\\r\\n\",\"l\":\"ext\",\"k\":\"a0a0a0a0a0a0a0a0\",\"rl\":tr"
	"ue,\"tp\":\"TCP\",\"q\":{\"r\":11,\"l\":22,\"o\":33,\"a\":44"
	"},\"ok\":{\"c\":11,\"a\":111,\"u\":1700000001011,\"tp\":\"UD"
	"P\",\"d\":\"127.0.0.10:5070\",\"m\":\"SIP\\/2.0 200 OK\\r\\n"
	"CSeq: 11 INVITE\\r\\nContent-Length: 0\\r\\n\\r\\n\"}},\"b\""
	":{\"t\":\"sip:bob@192.0.2.4:5060\",\"r\":\"<sip:127.0.0.7;lr"
	">\",\"i\":\"v=0\\r\\no=- 7 7 IN IP4 127.0.0.2\\r\\ns=-\\r\\n"
	"c=IN IP4 127.0.0.2\\r\\nt=0 0\\r\\nm=audio 5000 RTP\\/AVP 0\\"
	"r\\n\",\"l\":\"int\",\"k\":\"0b0b0b0b0b0b0b0b\",\"rl\":true,"
	"\"tp\":\"TLS\",\"q\":{\"r\":4294967295,\"l\":55,\"o\":66,\"a"
	"\":77},\"ok\":{\"c\":12,\"a\":112,\"u\":1700000001012,\"tp\""
	":\"TCP\",\"d\":\"[::1]:5080\",\"m\":\"SIP\\/2.0 200 \\\"OK\\"
	"\"\\r\\nCSeq: 12 INVITE\\r\\nContent-Type: application\\/sdp"
	"\\r\\n\\r\\nv=0\\r\\n\"}}}";

static const char golden_early[] =
	"{\"v\":5,\"d\":\"fedcba9876543210\",\"s\":0,\"c\":\"a84b4c76"
	"e66710@pc33.atlanta.example.com\",\"ck\":\"8000000000000001\""
	",\"f\":\"\\\"J\xc3\xbcrgen \xce\xa9 \xf0\x9f\x98\x80 \\\\\\\""
	"x\\\\\\\"\\\" <sip:juergen@127.0.0.1>;tag=f1\",\"t\":\"\\\"B"
	"ob\\\" <sip:bob@biloxi.example.com>\",\"tt\":\"a6c85cf\",\"s"
	"h\":\"service\",\"o\":\"\",\"cr\":1700000000123,\"up\":17000"
	"00999456,\"n\":4000000000,\"se\":1800,\"sr\":1,\"e\":{\"vs\""
	":\"SIP\\/2.0\\/UDP 127.0.0.1:5070;branch=z9hG4bK-1,SIP\\/2.0"
	"\\/UDP 127.0.0.2;branch=z9hG4bK-2\",\"s\":\"127.0.0.1:5070\""
	",\"u\":\"sip:bob@127.0.0.4\",\"d\":\"\"},\"a\":{\"t\":\"sip:"
	"alice@192.0.2.101:5060\",\"r\":\"<sip:127.0.0.9;lr>,<sip:127"
	".0.0.8;lr>\",\"i\":\"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n"
	"s=Talk \\\"quoted\\\" \\\\ back\\tslash\\r\\nc=IN IP4 127.0."
	"0.1\\r\\nt=0 0\\r\\nm=audio 4000 RTP\\/AVP 0\\r\\na=rtpmap:0"
	" PCMU\\/8000\\r\\n\",\"o\":\"v=0\\r\\nother\",\"l\":\"ext\","
	"\"k\":\"a0a0a0a0a0a0a0a0\",\"so\":7,\"q\":{\"r\":11,\"l\":22"
	",\"o\":33,\"a\":44},\"ok\":{\"c\":11,\"a\":111,\"u\":1700000"
	"001011,\"tp\":\"UDP\",\"d\":\"127.0.0.10:5070\",\"m\":\"SIP\\"
	"/2.0 200 OK\\r\\nCSeq: 11 INVITE\\r\\nContent-Length: 0\\r\\"
	"n\\r\\n\"}},\"b\":{\"t\":\"sip:bob@192.0.2.4:5060\",\"r\":\""
	"<sip:127.0.0.7;lr>\",\"i\":\"v=0\\r\\no=- 7 7 IN IP4 127.0.0"
	".2\\r\\ns=-\\r\\nc=IN IP4 127.0.0.2\\r\\nt=0 0\\r\\nm=audio "
	"5000 RTP\\/AVP 0\\r\\n\",\"l\":\"int\",\"k\":\"0b0b0b0b0b0b0"
	"b0b\",\"cp\":3,\"rl\":true,\"tp\":\"TLS\",\"q\":{\"r\":42949"
	"67295,\"l\":55,\"o\":66,\"a\":77},\"ok\":{\"c\":12,\"a\":112"
	",\"u\":1700000001012,\"tp\":\"TCP\",\"d\":\"[::1]:5080\",\"m"
	"\":\"SIP\\/2.0 200 \\\"OK\\\"\\r\\nCSeq: 12 INVITE\\r\\nCont"
	"ent-Type: application\\/sdp\\r\\n\\r\\nv=0\\r\\n\"}}}";

static const char golden_typical[] =
	"{\"v\":5,\"d\":\"fedcba9876543210\",\"s\":1,\"c\":\"a84b4c76"
	"e66710@pc33.atlanta.example.com\",\"ck\":\"8000000000000001\""
	",\"f\":\"\\\"Alice\\\" <sip:alice@atlanta.example.com>;tag=1"
	"928301774\",\"t\":\"\\\"Bob\\\" <sip:bob@biloxi.example.com>"
	"\",\"tt\":\"a6c85cf\",\"sh\":\"service\",\"o\":\"node1\",\"c"
	"r\":1700000000000,\"up\":1700000060000,\"n\":3,\"se\":90,\"a"
	"\":{\"t\":\"sip:alice@192.0.2.101:5060\",\"l\":\"ext\",\"k\""
	":\"a0a0a0a0a0a0a0a0\",\"q\":{\"r\":314159}},\"b\":{\"t\":\"s"
	"ip:bob@192.0.2.4:5060\",\"l\":\"int\",\"k\":\"0b0b0b0b0b0b0b"
	"0b\",\"q\":{\"l\":314159,\"a\":314159}}}";

static const char golden_bare[] =
	"{\"v\":5,\"d\":\"0000000000000001\",\"s\":0,\"cr\":0,\"up\":"
	"0,\"a\":{\"q\":{}},\"b\":{\"q\":{}}}";


/** Decoded and printed again by libre's JSON code: the same bytes */
static void assert_libre_bytes(const char *s)
{
	struct odict *o = NULL;
	char *again = NULL;

	ck_assert_int_eq(json_decode_odict(&o, 8, s, strlen(s), 4), 0);
	ck_assert_int_eq(re_sdprintf(&again, "%H", json_encode_odict, o), 0);
	ck_assert_str_eq(s, again);

	mem_deref(again);
	mem_deref(o);
}


static void assert_encodes_to(struct dialog *dlg, const char *golden)
{
	struct dialog *out = NULL;
	char *s = fixture_encode(dlg);

	ck_assert_str_eq(s, golden);
	assert_libre_bytes(s);
	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert(dialog_equal(dlg, out));

	mem_deref(out);
	mem_deref(s);
	mem_deref(dlg);
}


START_TEST(test_golden_full)
{
	assert_encodes_to(fixture_full_dialog(), golden_full);
}
END_TEST


START_TEST(test_golden_early)
{
	assert_encodes_to(early_dialog(), golden_early);
}
END_TEST


START_TEST(test_golden_typical)
{
	assert_encodes_to(typical_dialog(), golden_typical);
}
END_TEST


START_TEST(test_golden_bare)
{
	assert_encodes_to(bare_dialog(), golden_bare);
}
END_TEST


/* every byte but NUL, in every string field kind and in a 2xx */
START_TEST(test_every_byte_escaped_as_libre)
{
	struct dialog *dlg = early_dialog(), *out = NULL;
	struct dialog_ok *ok;
	char bytes[256];
	char *s;

	for (int i = 1; i < 256; i++)
		bytes[i - 1] = (char)i;
	bytes[255] = '\0';

	fixture_set_route(dlg, LEG_CALLEE, bytes);
	fixture_set(&dialog_early(dlg)->via, bytes);
	fixture_set_id(dlg, DIALOG_ID_TO_TAG, bytes + 0x20);
	ok = dialog_leg_ext(dlg, LEG_CALLEE)->ok;
	ck_assert_int_eq(mbuf_write_str(ok->mb, bytes), 0);

	s = fixture_encode(dlg);
	assert_libre_bytes(s);
	ck_assert_ptr_nonnull(strstr(s, "\\u0001\\u0002"));
	ck_assert_ptr_nonnull(strstr(s, "\\u001F !\\\"#$%&'()*+,-.\\/0"));
	ck_assert_ptr_nonnull(strstr(s, "[\\\\]"));
	ck_assert_ptr_nonnull(strstr(s, "\\b\\t\\n\\u000B\\f\\r"));

	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert(dialog_equal(dlg, out));

	mem_deref(out);
	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


struct failing {
	size_t left;          /* bytes accepted before the handler fails */
};


static int failing_vph(const char *p, size_t size, void *arg)
{
	struct failing *f = arg;
	(void)p;

	if (size > f->left)
		return ENOMEM;

	f->left -= size;
	return 0;
}


/* the handler failing anywhere, the encoder says so */
START_TEST(test_print_error_returned)
{
	struct dialog *dlg = early_dialog();
	char *s = fixture_encode(dlg);
	size_t len = strlen(s);

	for (size_t n = 0; n < len; n++) {
		struct failing f = {n};
		struct re_printf pf = {failing_vph, &f};

		ck_assert_msg(dialog_encode(&pf, dlg) == ENOMEM,
			      "a failure after %zu of %zu bytes lost", n, len);
	}

	{
		struct failing f = {len};
		struct re_printf pf = {failing_vph, &f};

		ck_assert_int_eq(dialog_encode(&pf, dlg), 0);
		ck_assert_uint_eq(f.left, 0);
	}

	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


static Suite *encode_suite(void)
{
	Suite *s = suite_create("dialog_encode");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_golden_full);
	tcase_add_test(tc, test_golden_early);
	tcase_add_test(tc, test_golden_typical);
	tcase_add_test(tc, test_golden_bare);
	tcase_add_test(tc, test_every_byte_escaped_as_libre);
	tcase_add_test(tc, test_print_error_returned);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(encode_suite());
}

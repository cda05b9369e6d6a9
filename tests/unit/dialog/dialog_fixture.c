/**
 * @file dialog_fixture.c  Dialogs the dialog tests share: typical, full
 */
#include <string.h>
#include <check.h>
#include <re.h>
#include "cseq.h"
#include "dialog.h"
#include "dialog/dialog_fixture.h"


const char fixture_sdp_a[] =
	"v=0\r\n"
	"o=- 1 2 IN IP4 127.0.0.1\r\n"
	"s=Talk \"quoted\" \\ back\tslash\r\n"
	"c=IN IP4 127.0.0.1\r\n"
	"t=0 0\r\n"
	"m=audio 4000 RTP/AVP 0\r\n"
	"a=rtpmap:0 PCMU/8000\r\n";

const char fixture_sdp_b[] =
	"v=0\r\n"
	"o=- 7 7 IN IP4 127.0.0.2\r\n"
	"s=-\r\n"
	"c=IN IP4 127.0.0.2\r\n"
	"t=0 0\r\n"
	"m=audio 5000 RTP/AVP 0\r\n";


void fixture_set(char **dst, const char *s)
{
	mem_deref(*dst);
	*dst = NULL;
	if (s)
		ck_assert_int_eq(str_dup(dst, s), 0);
}


void fixture_set_id(struct dialog *dlg, enum dialog_id id, const char *s)
{
	struct pl pl = PL_INIT;

	pl_set_str(&pl, s);
	ck_assert_int_eq(dialog_set_id(dlg, id, &pl), 0);
}


void fixture_set_route(struct dialog *dlg, enum dialog_leg_id leg,
		       const char *route)
{
	char *s = NULL;

	fixture_set(&s, route);
	ck_assert_int_eq(dialog_set_route(dlg, leg, s), 0);
	mem_deref(s);
}


/** A confirmed call without SDP, with realistic field sizes */
struct dialog *fixture_typical_dialog(uint64_t id)
{
	struct dialog *dlg = NULL;

	ck_assert_int_eq(dialog_alloc(&dlg, id), 0);
	fixture_set_id(dlg, DIALOG_ID_CALLID,
		       "a84b4c76e66710@pc33.atlanta.example.com");
	fixture_set_id(dlg, DIALOG_ID_FROM,
		       "\"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774");
	fixture_set_id(dlg, DIALOG_ID_TO, "\"Bob\" <sip:bob@biloxi.example.com>");
	fixture_set_id(dlg, DIALOG_ID_TO_TAG, "a6c85cf");
	dlg->callid_key = 0x8000000000000001ULL;
	dlg->leg[LEG_CALLER].contact_key = 0xa0a0a0a0a0a0a0a0ULL;
	dlg->leg[LEG_CALLEE].contact_key = 0x0b0b0b0b0b0b0b0bULL;
	/* names shared by many dialogs are atoms, as the proxy sets them */
	ck_assert_int_eq(dialog_atom_str(&dlg->shtag, "service"), 0);
	ck_assert_int_eq(dialog_atom_str(&dlg->owner, "node1"), 0);
	fixture_set_id(dlg, DIALOG_ID_CALLER_TARGET, "sip:alice@192.0.2.101:5060");
	ck_assert_int_eq(dialog_atom_str(&dlg->leg[LEG_CALLER].lsnr_tag,
					 "ext"), 0);
	fixture_set_id(dlg, DIALOG_ID_CALLEE_TARGET, "sip:bob@192.0.2.4:5060");
	ck_assert_int_eq(dialog_atom_str(&dlg->leg[LEG_CALLEE].lsnr_tag,
					 "int"), 0);
	dlg->leg[LEG_CALLER].cseq = (struct cseq_leg){314159, 0, 0, 0};
	dlg->leg[LEG_CALLEE].cseq = (struct cseq_leg){0, 314159, 0, 314159};
	dlg->state = DIALOG_CONFIRMED;
	dlg->version = 3;

	return dlg;
}


/** A 2xx awaiting its ACK on a leg, as the proxy keeps it */
static void add_ok(struct dialog *dlg, enum dialog_leg_id leg,
		   const char *dst, const char *msg, uint32_t cseq)
{
	struct dialog_ok ok;

	memset(&ok, 0, sizeof(ok));
	ok.mb = mbuf_alloc(512);
	ck_assert_ptr_nonnull(ok.mb);
	ck_assert_int_eq(mbuf_write_str(ok.mb, msg), 0);
	ck_assert_int_eq(sa_decode(&ok.dst, dst, strlen(dst)), 0);
	ok.tp = leg == LEG_CALLER ? SIP_TRANSP_UDP : SIP_TRANSP_TCP;
	ok.cseq = cseq;
	ok.ack = cseq + 100;
	ok.until = 1700000001000ULL + cseq;
	ok.shared = true;
	ck_assert_int_eq(dialog_ok_keep(NULL, dlg, leg, &ok), 0);
	mem_deref(ok.mb);
}


/** Every replicated field set, none equal to its default */
struct dialog *fixture_full_dialog(void)
{
	struct dialog *dlg = fixture_typical_dialog(FIXTURE_DID);
	struct dialog_leg *caller = &dlg->leg[LEG_CALLER];
	struct dialog_leg *callee = &dlg->leg[LEG_CALLEE];

	fixture_set_id(dlg, DIALOG_ID_FROM,
		       "\"J\xc3\xbcrgen \xce\xa9 \xf0\x9f\x98\x80 \\\"x\\\"\" "
		       "<sip:juergen@127.0.0.1>;tag=f1");
	dlg->created = 1700000000123ULL;
	dlg->updated = 1700000999456ULL;
	dlg->version = 4000000000ULL;

	fixture_set_route(dlg, LEG_CALLER,
			  "<sip:127.0.0.9;lr>,<sip:127.0.0.8;lr>");
	fixture_set(&caller->sdp_in, fixture_sdp_a);
	fixture_set(&caller->sdp_out, fixture_sdp_b);
	caller->tp = SIP_TRANSP_TCP;
	caller->cseq = (struct cseq_leg){11, 22, 33, 44};

	fixture_set_route(dlg, LEG_CALLEE, "<sip:127.0.0.7;lr>");
	fixture_set(&callee->sdp_in, fixture_sdp_b);
	fixture_set(&callee->sdp_out, fixture_sdp_a);
	callee->tp = SIP_TRANSP_TLS;
	callee->cseq = (struct cseq_leg){UINT32_MAX, 55, 66, 77};

	add_ok(dlg, LEG_CALLER, "127.0.0.10:5070",
	       "SIP/2.0 200 OK\r\nCSeq: 11 INVITE\r\n"
	       "Content-Length: 0\r\n\r\n", 11);
	add_ok(dlg, LEG_CALLEE, "[::1]:5080",
	       "SIP/2.0 200 \"OK\"\r\nCSeq: 12 INVITE\r\n"
	       "Content-Type: application/sdp\r\n\r\nv=0\r\n", 12);

	return dlg;
}


char *fixture_encode(const struct dialog *dlg)
{
	char *s = NULL;

	ck_assert_int_eq(re_sdprintf(&s, "%H", dialog_encode, dlg), 0);
	return s;
}


int fixture_decode(struct dialog **dlgp, const char *json)
{
	return dialog_decode(dlgp, json, strlen(json));
}



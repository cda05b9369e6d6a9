/**
 * @file test_dialog_codec.c  Unit tests of dialog serialization
 *
 * Round trips must give dialog_equal(); dialog_equal() itself is checked
 * to notice a change in any single replicated field, or a round trip that
 * lost a field would still pass. Bad input (truncated, another version,
 * wrong types) must be refused without leaking. The size of a typical
 * encoding goes to the test log; the heap a dialog takes is
 * test_dialog_memory.c's.
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
static const uint64_t did = FIXTURE_DID;


static void assert_roundtrip(const struct dialog *dlg)
{
	struct dialog *out = NULL;
	char *s = fixture_encode(dlg);

	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert_msg(dialog_equal(dlg, out), "round trip differs: %s", s);

	mem_deref(out);
	mem_deref(s);
}


START_TEST(test_roundtrip_full)
{
	struct dialog *dlg = fixture_full_dialog(), *out = NULL;
	char *s = fixture_encode(dlg);

	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert(dialog_equal(dlg, out));

	ck_assert_uint_eq(out->did, did);
	ck_assert_str_eq(out->from, dlg->from);
	ck_assert_str_eq(out->leg[LEG_CALLER].sdp_in, fixture_sdp_a);
	ck_assert_uint_eq(out->leg[LEG_CALLEE].cseq.rseq, UINT32_MAX);
	ck_assert_uint_eq(out->created, 1700000000123ULL);
	ck_assert_int_eq(out->leg[LEG_CALLEE].tp, SIP_TRANSP_TLS);

	/* the 2xx awaiting an ACK travels, its resending does not */
	ck_assert_ptr_nonnull(dialog_ok_kept(out, LEG_CALLEE));
	ck_assert_uint_eq(dialog_ok_kept(out, LEG_CALLEE)->ack, 112);
	ck_assert_int_eq(dialog_ok_kept(out, LEG_CALLEE)->tp, SIP_TRANSP_TCP);
	ck_assert_uint_eq(sa_port(&dialog_ok_kept(out, LEG_CALLEE)->dst), 5080);
	ck_assert_ptr_eq(dialog_ok_kept(out, LEG_CALLER)->dlg, out);
	ck_assert_int_eq(dialog_ok_kept(out, LEG_CALLER)->leg, LEG_CALLER);
	ck_assert_ptr_null(dialog_ok_kept(out, LEG_CALLER)->sock);
	ck_assert(!tmr_isrunning(&dialog_ok_kept(out, LEG_CALLER)->tmr));
	ck_assert(dialog_ok_kept(out, LEG_CALLER)->shared);

	/* node-local state does not travel */
	ck_assert(!out->replica);
	ck_assert(!out->acked);
	ck_assert(!dialog_locked(out));

	/* one line of JSON: CR LF and quotes are escaped */
	ck_assert_ptr_null(strchr(s, '\r'));
	ck_assert_ptr_null(strchr(s, '\n'));
	ck_assert_ptr_nonnull(strstr(s, "{\"v\":5,\"d\":\"" DID_HEX "\","
				     "\"s\":1,"));
	ck_assert_ptr_nonnull(strstr(s, "\"ck\":\"8000000000000001\""));
	ck_assert_ptr_nonnull(strstr(s, "\"k\":\"a0a0a0a0a0a0a0a0\""));
	ck_assert_ptr_null(strstr(s, "callid"));
	ck_assert_uint_eq(out->callid_key, 0x8000000000000001ULL);
	ck_assert_uint_eq(out->leg[LEG_CALLEE].contact_key,
			  0x0b0b0b0b0b0b0b0bULL);
	ck_assert_ptr_null(strstr(s, "replica"));

	mem_deref(out);
	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


START_TEST(test_ok_not_overdue_stays_home)
{
	struct dialog *dlg = fixture_full_dialog(), *out = NULL;
	char *s;

	/* an ACK not overdue yet: its 2xx is not replicated */
	dialog_ok_kept(dlg, LEG_CALLER)->shared = false;
	s = fixture_encode(dlg);
	ck_assert_ptr_null(strstr(s, "CSeq: 11 INVITE"));
	ck_assert_ptr_nonnull(strstr(s, "CSeq: 12 INVITE"));

	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert_ptr_null(dialog_ok_kept(out, LEG_CALLER));
	ck_assert(dialog_equal(dlg, out));

	dialog_ok_share(dialog_ok_kept(dlg, LEG_CALLER));
	ck_assert(!dialog_equal(dlg, out));
	assert_roundtrip(dlg);

	mem_deref(out);
	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


START_TEST(test_roundtrip_early_with_nulls)
{
	struct dialog *dlg = NULL, *out = NULL;
	char *s;

	ck_assert_int_eq(dialog_alloc(&dlg, did), 0);
	fixture_set_id(dlg, DIALOG_ID_CALLID, "c1@127.0.0.1");
	fixture_set_id(dlg, DIALOG_ID_FROM, "<sip:a@127.0.0.1>;tag=x");
	fixture_set_id(dlg, DIALOG_ID_TO, "<sip:b@127.0.0.1>");
	fixture_set_id(dlg, DIALOG_ID_CALLER_TARGET, "sip:a@127.0.0.1:5070");
	dlg->leg[LEG_CALLER].cseq.rseq = 1;

	s = fixture_encode(dlg);
	ck_assert_ptr_null(strstr(s, "to_tag"));
	ck_assert_ptr_null(strstr(s, "null"));

	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert(dialog_equal(dlg, out));
	ck_assert_int_eq(out->state, DIALOG_EARLY);
	ck_assert_ptr_null(out->to_tag);
	ck_assert_ptr_null(out->shtag);
	ck_assert_ptr_null(out->leg[LEG_CALLEE].target);
	ck_assert_ptr_null(out->leg[LEG_CALLER].sdp_in);

	mem_deref(out);
	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


START_TEST(test_roundtrip_all_states_and_empty_strings)
{
	struct dialog *dlg = fixture_typical_dialog(1);

	for (int st = DIALOG_EARLY; st <= DIALOG_ENDED; st++) {
		dlg->state = st;
		assert_roundtrip(dlg);
	}

	fixture_set(&dlg->owner, "");
	assert_roundtrip(dlg);

	mem_deref(dlg);
}
END_TEST


START_TEST(test_decode_shares_relayed_sdp)
{
	struct dialog *dlg = fixture_full_dialog(), *out = NULL;
	char *s = fixture_encode(dlg);

	ck_assert_ptr_ne(dlg->leg[LEG_CALLEE].sdp_out,
			 dlg->leg[LEG_CALLER].sdp_in);

	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert_ptr_eq(out->leg[LEG_CALLEE].sdp_out,
			 out->leg[LEG_CALLER].sdp_in);
	ck_assert_ptr_eq(out->leg[LEG_CALLER].sdp_out,
			 out->leg[LEG_CALLEE].sdp_in);
	ck_assert(dialog_equal(dlg, out));

	mem_deref(out);
	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


/*
 * Versions 4 and 5 write a relayed SDP once; versions 1 to 3 wrote both
 * copies, and are read into the same dialog.
 */
START_TEST(test_relayed_sdp_written_once)
{
	static const char v2[] =
		"{\"v\":2,\"did\":\"" DID_HEX "\","
		"\"caller\":{\"sdp_in\":\"v=0\\r\\na\","
		"\"sdp_out\":\"v=0\\r\\nb\"},"
		"\"callee\":{\"sdp_in\":\"v=0\\r\\nb\","
		"\"sdp_out\":\"v=0\\r\\na\"}}";
	static const char *bad[] = {
		/* a reference and a copy */
		"{\"v\":4,\"did\":\"" DID_HEX "\","
		"\"caller\":{\"sdp_in\":\"a\"},"
		"\"callee\":{\"sdp_out\":\"a\",\"sdp_relayed\":true}}",
		/* a reference to nothing */
		"{\"v\":4,\"did\":\"" DID_HEX "\","
		"\"callee\":{\"sdp_relayed\":true}}",
		"{\"v\":4,\"did\":\"" DID_HEX "\","
		"\"callee\":{\"sdp_relayed\":1}}",
		"{\"v\":5,\"d\":\"" DID_HEX "\",\"b\":{\"rl\":true}}",
	};
	struct dialog *dlg = fixture_full_dialog(), *out = NULL;
	char *s = fixture_encode(dlg);
	const char *o = strstr(s, "o=- 1 2");

	ck_assert_ptr_nonnull(strstr(s, "\"rl\":true"));
	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_null(strstr(o + 1, "o=- 1 2"));

	/* a version 2 object, both copies: one string kept */
	ck_assert_int_eq(fixture_decode(&out, v2), 0);
	ck_assert_str_eq(out->leg[LEG_CALLER].sdp_out, "v=0\r\nb");
	ck_assert_ptr_eq(out->leg[LEG_CALLEE].sdp_out,
			 out->leg[LEG_CALLER].sdp_in);
	ck_assert_ptr_eq(out->leg[LEG_CALLER].sdp_out,
			 out->leg[LEG_CALLEE].sdp_in);
	mem_deref(out);
	out = NULL;

	/* an SDP sent that is not the one received is written itself */
	fixture_set(&dlg->leg[LEG_CALLER].sdp_out, "v=0\r\nother");
	mem_deref(s);
	s = fixture_encode(dlg);
	ck_assert_ptr_nonnull(strstr(s, "\"o\":\"v=0\\r\\nother\""));
	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert(dialog_equal(dlg, out));
	ck_assert_ptr_eq(out->leg[LEG_CALLEE].sdp_out,
			 out->leg[LEG_CALLER].sdp_in);
	mem_deref(out);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		out = NULL;
		ck_assert_msg(fixture_decode(&out, bad[i]) == EBADMSG,
			      "'%s' not EBADMSG", bad[i]);
		ck_assert_ptr_null(out);
	}

	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


START_TEST(test_decode_minimal)
{
	struct dialog *out = NULL;

	ck_assert_int_eq(fixture_decode(&out,
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"future\":[1,2]}"), 0);
	ck_assert_uint_eq(out->did, did);
	ck_assert_int_eq(out->state, DIALOG_EARLY);
	ck_assert_ptr_null(out->callid);
	ck_assert_int_eq(out->leg[LEG_CALLEE].tp, SIP_TRANSP_UDP);
	mem_deref(out);

	ck_assert_int_eq(fixture_decode(&out,
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"to_tag\":null,"
		"\"callee\":{\"tp\":\"tcp\",\"sdp_in\":null}}"), 0);
	ck_assert_ptr_null(out->to_tag);
	ck_assert_int_eq(out->leg[LEG_CALLEE].tp, SIP_TRANSP_TCP);
	mem_deref(out);
}
END_TEST


/*
 * A version 1 object, as an engine from before keys wrote it, is read
 * with no keys (its endpoints know the identifiers without one); written
 * again it is version 5 and still without keys.
 */
START_TEST(test_decode_version1_has_no_keys)
{
	static const char v1[] =
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"state\":\"confirmed\","
		"\"callid\":\"c1@127.0.0.1\",\"from\":\"<sip:a@x>;tag=f\","
		"\"to\":\"<sip:b@x>\",\"to_tag\":\"t\","
		"\"caller\":{\"target\":\"sip:a@127.0.0.1\",\"tp\":\"UDP\"},"
		"\"callee\":{\"target\":\"sip:b@127.0.0.2\",\"tp\":\"UDP\"}}";
	struct dialog *out = NULL, *again = NULL;
	char *s;

	ck_assert_int_eq(fixture_decode(&out, v1), 0);
	ck_assert_uint_eq(out->callid_key, 0);
	ck_assert_uint_eq(out->leg[LEG_CALLER].contact_key, 0);
	ck_assert_uint_eq(out->leg[LEG_CALLEE].contact_key, 0);

	s = fixture_encode(out);
	ck_assert_ptr_nonnull(strstr(s, "\"v\":5,"));
	ck_assert_ptr_null(strstr(s, "\"ck\""));
	ck_assert_ptr_null(strstr(s, "\"k\""));
	ck_assert_int_eq(fixture_decode(&again, s), 0);
	ck_assert(dialog_equal(out, again));

	mem_deref(again);
	mem_deref(s);
	mem_deref(out);

	/* no leg objects at all: no keys either */
	ck_assert_int_eq(fixture_decode(&out,
		"{\"v\":2,\"did\":\"" DID_HEX "\"}"), 0);
	ck_assert_uint_eq(out->leg[LEG_CALLER].contact_key, 0);
	ck_assert_uint_eq(out->leg[LEG_CALLEE].contact_key, 0);
	mem_deref(out);
}
END_TEST


/*
 * Objects of versions 3 and 4, with their long keys, are still read: the
 * offset of the o= versions and the caps come back as they were, and
 * written again as version 5 they stay the same dialog.
 */
START_TEST(test_decode_long_keys)
{
	static const char v3[] =
		"{\"v\":3,\"did\":\"" DID_HEX "\",\"state\":\"confirmed\","
		"\"callid\":\"c1@127.0.0.1\",\"callid_key\":\"0000000000000007\","
		"\"from\":\"<sip:a@x>;tag=f\",\"to\":\"<sip:b@x>\","
		"\"to_tag\":\"t\",\"shtag\":\"service\",\"owner\":\"node1\","
		"\"media\":\"r1\",\"created\":1700000000123,"
		"\"updated\":1700000000456,\"version\":9,\"se\":90,"
		"\"se_refresher\":1,"
		"\"early\":{\"vias\":\"Via: x\",\"src\":\"127.0.0.1:5060\"},"
		"\"caller\":{\"target\":\"sip:a@127.0.0.1\",\"route\":\"<sip:r>\","
		"\"sdp_in\":\"v=0\\r\\na\",\"lsnr_tag\":\"ext\","
		"\"contact_key\":\"0000000000000008\",\"sdp_off\":5000000000,"
		"\"caps\":1,\"tp\":\"TCP\",\"cseq\":{\"rseq\":1,\"lseq\":2,"
		"\"off\":3,\"ack\":4},\"ok\":{\"cseq\":1,\"ack\":2,"
		"\"until\":1700000001000,\"tp\":\"TCP\",\"dst\":\"127.0.0.1:5070\","
		"\"msg\":\"SIP/2.0 200 OK\\r\\n\\r\\n\"}},"
		"\"callee\":{\"target\":\"sip:b@127.0.0.2\","
		"\"sdp_out\":\"v=0\\r\\na\"}}";
	struct dialog *out = NULL, *again = NULL;
	const struct dialog_leg *a;
	char *s;

	ck_assert_int_eq(fixture_decode(&out, v3), 0);
	a = &out->leg[LEG_CALLER];
	ck_assert_str_eq(out->callid, "c1@127.0.0.1");
	ck_assert_uint_eq(out->callid_key, 7);
	ck_assert_str_eq(dialog_media(out), "r1");
	ck_assert_uint_eq(dialog_se(out), 90);
	ck_assert_uint_eq(dialog_se_refresher(out), 1);
	ck_assert_str_eq(dialog_early(out)->src, "127.0.0.1:5060");
	ck_assert_str_eq(dialog_route(out, LEG_CALLER), "<sip:r>");
	ck_assert_uint_eq(dialog_sdp_off(out, LEG_CALLER), 5000000000ULL);
	ck_assert_uint_eq(a->caps, DIALOG_CAP_UPDATE);
	ck_assert_int_eq(a->tp, SIP_TRANSP_TCP);
	ck_assert_uint_eq(a->cseq.ack, 4);
	ck_assert_uint_eq(dialog_ok_kept(out, LEG_CALLER)->until,
			  1700000001000ULL);
	ck_assert_ptr_eq(out->leg[LEG_CALLEE].sdp_out, a->sdp_in);

	s = fixture_encode(out);
	ck_assert_ptr_nonnull(strstr(s, "\"v\":5,"));
	ck_assert_ptr_nonnull(strstr(s, "\"so\":5000000000"));
	ck_assert_int_eq(fixture_decode(&again, s), 0);
	ck_assert(dialog_equal(out, again));

	mem_deref(again);
	mem_deref(s);
	mem_deref(out);
}
END_TEST


START_TEST(test_decode_rejects_truncated)
{
	struct dialog *dlg = fixture_full_dialog();
	char *s = fixture_encode(dlg);
	size_t len = strlen(s);

	for (size_t i = 0; i < len; i++) {
		struct dialog *out = NULL;

		ck_assert_msg(dialog_decode(&out, s, i) != 0,
			      "accepted %zu of %zu bytes", i, len);
		ck_assert_ptr_null(out);
	}

	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


START_TEST(test_decode_rejects_version)
{
	static const char *bad[] = {
		"{\"v\":6,\"d\":\"" DID_HEX "\"}",
		"{\"v\":0,\"did\":\"" DID_HEX "\"}",
		"{\"v\":\"1\",\"did\":\"" DID_HEX "\"}",
		"{\"v\":1.5,\"did\":\"" DID_HEX "\"}",
		"{\"did\":\"" DID_HEX "\"}",
		"[1]",
		"",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct dialog *out = NULL;

		ck_assert_msg(fixture_decode(&out, bad[i]) == EPROTO,
			      "'%s' not EPROTO", bad[i]);
		ck_assert_ptr_null(out);
	}
}
END_TEST


START_TEST(test_decode_rejects_bad_fields)
{
	static const char *bad[] = {
		"{\"v\":1}",
		"{\"v\":1,\"did\":null}",
		"{\"v\":1,\"did\":81985529216486895}",
		"{\"v\":1,\"did\":\"0000000000000000\"}",
		"{\"v\":1,\"did\":\"fedcba987654321\"}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"state\":\"gone\"}",
		"{\"v\":5,\"d\":\"" DID_HEX "\",\"s\":3}",
		"{\"v\":5,\"d\":\"" DID_HEX "\",\"s\":-1}",
		"{\"v\":5,\"d\":\"" DID_HEX "\",\"s\":\"confirmed\"}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"state\":1}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"callid\":7}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"created\":-1}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"version\":\"3\"}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"caller\":\"x\"}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"caller\":{\"tp\":\"SCTP\"}}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"callee\":{\"target\":true}}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"callee\":{\"cseq\":[]}}",
		"{\"v\":1,\"did\":\"" DID_HEX "\","
		"\"callee\":{\"cseq\":{\"rseq\":4294967296}}}",
		"{\"v\":1,\"did\":\"" DID_HEX "\","
		"\"caller\":{\"cseq\":{\"off\":-1}}}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"caller\":{\"ok\":1}}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"caller\":{\"ok\":"
		"{\"tp\":\"UDP\",\"dst\":\"127.0.0.1:5060\"}}}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"caller\":{\"ok\":"
		"{\"tp\":\"UDP\",\"dst\":\"nowhere\",\"msg\":\"x\"}}}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"caller\":{\"ok\":"
		"{\"tp\":\"SCTP\",\"dst\":\"127.0.0.1:1\",\"msg\":\"x\"}}}",
		"{\"v\":1,\"did\":\"" DID_HEX "\",\"caller\":{\"ok\":"
		"{\"tp\":\"UDP\",\"dst\":\"127.0.0.1:1\",\"msg\":\"x\","
		"\"cseq\":-2}}}",
		"{\"v\":2,\"did\":\"" DID_HEX "\",\"callid_key\":7}",
		"{\"v\":2,\"did\":\"" DID_HEX "\","
		"\"callid_key\":\"0000000000000000\"}",
		"{\"v\":2,\"did\":\"" DID_HEX "\","
		"\"callid_key\":\"123456789abcdef\"}",
		"{\"v\":2,\"did\":\"" DID_HEX "\","
		"\"caller\":{\"contact_key\":\"x23456789abcdef0\"}}",
		"{\"v\":2,\"did\":\"" DID_HEX "\","
		"\"callee\":{\"contact_key\":true}}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct dialog *out = NULL;

		ck_assert_msg(fixture_decode(&out, bad[i]) == EBADMSG,
			      "'%s' not EBADMSG", bad[i]);
		ck_assert_ptr_null(out);
	}

	ck_assert_int_eq(dialog_decode(NULL, "{}", 2), EINVAL);
}
END_TEST


/* Change one replicated field of a full dialog */
static bool mutate(struct dialog *d, unsigned k)
{
	struct dialog_leg *l = &d->leg[k % 2];
	struct dialog_ok *ok = dialog_ok_kept(d, k % 2);

	switch (k / 2) {

	case 0:  d->did ^= 1;                       break;
	case 1:  fixture_set_id(d, DIALOG_ID_CALLID, "other"); break;
	case 2:  fixture_set_id(d, DIALOG_ID_FROM, NULL);       break;
	case 3:  fixture_set_id(d, DIALOG_ID_TO, "<sip:x@127.0.0.1>"); break;
	case 4:  fixture_set_id(d, DIALOG_ID_TO_TAG, NULL);     break;
	case 5:  fixture_set(&d->shtag, "service2");        break;
	case 6:  fixture_set(&d->owner, "node2");           break;
	case 7:  d->state = DIALOG_ENDED;           break;
	case 8:  d->created++;                      break;
	case 9:  d->updated++;                      break;
	case 10: d->version++;                      break;
	case 11: fixture_set_id(d, DIALOG_ID_CALLER_TARGET + k % 2,
			"sip:z@127.0.0.1");         break;
	case 12: dialog_set_route(d, k % 2, NULL);          break;
	case 13: fixture_set(&l->sdp_in, "v=0\r\n");        break;
	case 14: fixture_set(&l->sdp_out, NULL);            break;
	case 15: fixture_set(&l->lsnr_tag, "ext2");         break;
	case 16: l->tp = SIP_TRANSP_WS;             break;
	case 17: l->cseq.rseq++;                    break;
	case 18: l->cseq.lseq++;                    break;
	case 19: l->cseq.off++;                     break;
	case 20: l->cseq.ack++;                     break;
	case 21: ok->cseq++;                          break;
	case 22: ok->ack++;                           break;
	case 23: ok->until++;                         break;
	case 24: ok->tp = SIP_TRANSP_WS;              break;
	case 25: sa_set_port(&ok->dst, 1);          break;
	case 26: ok->mb->buf[0] ^= 1;                 break;
	case 27: dialog_ok_clear(d, k % 2);         break;
	case 28: d->callid_key ^= 1;                break;
	case 29: l->contact_key = 0;                break;
	case 30: dialog_ext_get(d)->leg[k % 2].sdp_off++; break;
	case 31: l->caps ^= DIALOG_CAP_UPDATE;      break;
	case 32: dialog_set_se(d, dialog_se(d) + 90, dialog_se_refresher(d));
		break;
	case 33: dialog_set_se(d, dialog_se(d), dialog_se_refresher(d) ^ 1);
		break;
	case 34: dialog_set_media(d, k % 2 ? "r2" : "r1"); break;
	default: return false;
	}

	return true;
}


START_TEST(test_equal_sees_every_field)
{
	struct dialog *a = fixture_full_dialog();
	unsigned k;

	for (k = 0; ; k++) {
		struct dialog *b = fixture_full_dialog();
		bool more;

		ck_assert(dialog_equal(a, b));
		more = mutate(b, k);
		if (more) {
			ck_assert_msg(!dialog_equal(a, b),
				      "mutation %u not seen", k);
			ck_assert_msg(!dialog_equal(b, a),
				      "mutation %u not seen", k);
			assert_roundtrip(b);
		}
		mem_deref(b);
		if (!more)
			break;
	}
	ck_assert_uint_eq(k, 70);

	/* node-local state is not compared */
	{
		struct dialog *b = fixture_full_dialog();

		b->replica = true;
		b->acked = true;
		ck_assert(dialog_equal(a, b));
		mem_deref(b);
	}

	ck_assert(dialog_equal(NULL, NULL));
	ck_assert(!dialog_equal(a, NULL));
	ck_assert(!dialog_equal(NULL, a));
	mem_deref(a);
}
END_TEST


START_TEST(test_encode_mb)
{
	struct dialog *dlg = fixture_full_dialog();
	struct mbuf *mb = NULL;
	char *s = fixture_encode(dlg);

	ck_assert_int_eq(dialog_encode_mb(&mb, dlg), 0);
	ck_assert_uint_eq(mb->pos, 0);
	ck_assert_uint_eq(mbuf_get_left(mb), strlen(s));
	ck_assert_int_eq(memcmp(mbuf_buf(mb), s, strlen(s)), 0);

	ck_assert_int_eq(dialog_encode_mb(NULL, dlg), EINVAL);
	ck_assert_int_eq(dialog_encode_mb(&mb, NULL), EINVAL);

	mem_deref(mb);
	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


/*
 * The fields a plain call never uses live in an extension: a typical
 * dialog has none, before and after a round trip; one that uses them all
 * round-trips, and the extension goes once they are all cleared again
 * (ASan: nothing leaks, nothing is freed twice)
 */
START_TEST(test_rare_fields_in_extension)
{
	struct dialog *dlg = fixture_typical_dialog(did), *out = NULL;
	char *s = fixture_encode(dlg), *flow = NULL, *sdp = NULL;
	static const int holder;

	ck_assert_ptr_null(dlg->ext);
	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert_ptr_null(out->ext);
	ck_assert_ptr_null(dialog_media(out));
	ck_assert_ptr_null(dialog_route(out, LEG_CALLEE));
	ck_assert_uint_eq(dialog_sdp_off(out, LEG_CALLER), 0);
	out = mem_deref(out);
	s = mem_deref(s);

	/* every one of them */
	ck_assert_int_eq(dialog_set_media(dlg, "r1"), 0);
	ck_assert_int_eq(dialog_set_se(dlg, 1800, LEG_CALLEE), 0);
	fixture_set_route(dlg, LEG_CALLEE, "<sip:127.0.0.7;lr>");
	ck_assert_int_eq(str_dup(&flow, "sip:127.0.0.1:5062;transport=ws"), 0);
	ck_assert_int_eq(dialog_set_flow(dlg, LEG_CALLER, flow), 0);
	ck_assert_int_eq(dialog_early_alloc(dlg), 0);
	fixture_set(&dialog_early(dlg)->vias, "Via: SIP/2.0/UDP x\r\n");
	ck_assert_int_eq(dialog_lock(dlg, DIALOG_LOCK_REHOME, &holder), 0);
	dialog_lock_pending(dlg, &holder, true);

	/* an o= version lower than the one sent before: the offset grows */
	fixture_set(&dlg->leg[LEG_CALLER].sdp_out, "v=0\r\no=- 1 7 IN IP4 "
		    "127.0.0.1\r\n");
	ck_assert_int_eq(str_dup(&sdp, "v=0\r\no=- 1 2 IN IP4 127.0.0.2\r\n"),
			 0);
	mem_deref(s);
	ck_assert_int_eq(dialog_sdp_out(&s, dlg, LEG_CALLER, sdp, true), 0);
	ck_assert_uint_eq(dialog_sdp_off(dlg, LEG_CALLER), 6);
	mem_deref(dlg->leg[LEG_CALLER].sdp_out);
	dlg->leg[LEG_CALLER].sdp_out = s;
	ck_assert_ptr_nonnull(dlg->ext);

	s = fixture_encode(dlg);
	ck_assert_int_eq(fixture_decode(&out, s), 0);
	ck_assert_msg(dialog_equal(dlg, out), "round trip differs: %s", s);
	ck_assert_str_eq(dialog_media(out), "r1");
	ck_assert_uint_eq(dialog_se(out), 1800);
	ck_assert_uint_eq(dialog_se_refresher(out), LEG_CALLEE);
	ck_assert_str_eq(dialog_route(out, LEG_CALLEE), "<sip:127.0.0.7;lr>");
	ck_assert_uint_eq(dialog_sdp_off(out, LEG_CALLER), 6);
	ck_assert_str_eq(dialog_early(out)->vias, "Via: SIP/2.0/UDP x\r\n");
	/* node-local: not replicated */
	ck_assert_ptr_null(dialog_flow(out, LEG_CALLER));
	ck_assert(!dialog_locked(out));
	ck_assert(dialog_pending(dlg));
	ck_assert(dialog_locked_as(dlg, DIALOG_LOCK_REHOME));
	ck_assert(!dialog_locked_as(dlg, DIALOG_LOCK_HANDOFF));

	/* each one cleared: the extension goes with the last one */
	ck_assert_int_eq(dialog_unlock(dlg, &holder), 0);
	ck_assert_int_eq(dialog_set_media(dlg, NULL), 0);
	ck_assert_int_eq(dialog_set_se(dlg, 0, 0), 0);
	ck_assert_int_eq(dialog_set_route(dlg, LEG_CALLEE, NULL), 0);
	ck_assert_int_eq(dialog_set_flow(dlg, LEG_CALLER, NULL), 0);
	dlg->state = DIALOG_EARLY;
	ck_assert_int_eq(dialog_confirm(dlg), 0);
	ck_assert_ptr_nonnull(dlg->ext);          /* the o= offset stays */
	dlg->ext->leg[LEG_CALLER].sdp_off = 0;
	dialog_ext_trim(dlg);
	ck_assert_ptr_null(dlg->ext);

	mem_deref(sdp);
	mem_deref(flow);
	mem_deref(out);
	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


START_TEST(test_typical_encoded_size)
{
	struct dialog *dlg = fixture_typical_dialog(did);
	char *s = fixture_encode(dlg);
	size_t len = strlen(s);

	printf("typical dialog without SDP: %zu bytes encoded\n%s\n", len, s);
	/* short keys (version 5): about 640 B with the long ones */
	ck_assert_uint_gt(len, 300);
	ck_assert_uint_le(len, 500);

	mem_deref(s);
	mem_deref(dlg);
}
END_TEST


static Suite *codec_suite(void)
{
	Suite *s = suite_create("dialog_codec");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_roundtrip_full);
	tcase_add_test(tc, test_ok_not_overdue_stays_home);
	tcase_add_test(tc, test_roundtrip_early_with_nulls);
	tcase_add_test(tc, test_roundtrip_all_states_and_empty_strings);
	tcase_add_test(tc, test_decode_shares_relayed_sdp);
	tcase_add_test(tc, test_relayed_sdp_written_once);
	tcase_add_test(tc, test_decode_minimal);
	tcase_add_test(tc, test_decode_version1_has_no_keys);
	tcase_add_test(tc, test_decode_rejects_truncated);
	tcase_add_test(tc, test_decode_rejects_version);
	tcase_add_test(tc, test_decode_long_keys);
	tcase_add_test(tc, test_decode_rejects_bad_fields);
	tcase_add_test(tc, test_equal_sees_every_field);
	tcase_add_test(tc, test_encode_mb);
	tcase_add_test(tc, test_rare_fields_in_extension);
	tcase_add_test(tc, test_typical_encoded_size);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(codec_suite());
}

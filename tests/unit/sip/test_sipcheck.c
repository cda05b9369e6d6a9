/**
 * @file test_sipcheck.c  Unit tests of the door (sipcheck.c) and loopmark.c
 *
 * First every RFC 4475 message of tests/torture/ goes through libre's
 * parser (with sipmend.c's second reading, as in the engine) and the
 * door, and must come out as the table says: refused by libre still (the
 * engine never sees it), let through, answered with a code, or (a
 * response) dropped; those libre refuses also mended by hand where libre
 * minds, to show the door ready for them. Then each check on its own, on
 * small messages that differ from a sound one in one place, and the loop
 * mark: added after libre's Via, recognised on the way back, not
 * forgeable, and not taken for a loop when the request was retargeted (a
 * spiral).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "loopmark.h"
#include "sipcheck.h"
#include "sipmend.h"

enum {
	LIBRE_REFUSES = -1,  /* sip_msg_decode() fails: never reaches us */
	PASS = 0,            /* may go on */
	DROP = 1,            /* refused, not answered */
};

/* what the door makes of each RFC 4475 message */
static const struct {
	const char *name;
	int expect;          /* LIBRE_REFUSES, PASS, DROP or a status code */
} torture[] = {
	{"wsinv", PASS},          {"intmeth", 501},      {"esc01", PASS},
	{"escnull", PASS},        {"esc02", 501},        {"lwsdisp", PASS},
	{"longreq", PASS},        {"dblreq", PASS},
	{"semiuri", PASS},        {"transports", PASS},  {"mpart01", PASS},
	{"unreason", PASS},       {"noreason", PASS},
	{"badinv01", 400},        {"clerr", 400},
	{"ncl", 400},             {"scalar02", 400},     {"scalarlg", DROP},
	{"quotbal", 400},         {"ltgtruri", 400},
	{"lwsruri", 400},         {"lwsstart", 400},
	{"trws", 400},           {"escruri", 400},      {"baddate", PASS},
	{"regbadct", 400},        {"badaspec", 400},
	{"baddn", LIBRE_REFUSES}, {"badvers", 505},
	{"mismatch01", 400},      {"mismatch02", 400},   {"bigcode", DROP},
	{"badbranch", 400},       {"insuf", 400},        {"unkscm", 416},
	{"novelsc", 416},         {"unksm2", PASS},
	{"bext01", 420},          {"invut", PASS},       {"regaut01", PASS},
	{"multi01", 400},         {"mcl01", 400},        {"bcast", PASS},
	{"zeromf", 483},          {"cparam01", PASS},    {"cparam02", PASS},
	{"regescrt", PASS},       {"sdp01", PASS},
	{"inv2543", PASS},
};


static int decode_mem(struct sip_msg **msgp, const void *p, size_t n)
{
	struct mbuf *mb = mbuf_alloc(n);
	int err;

	if (!mb)
		return ENOMEM;

	(void)mbuf_write_mem(mb, p, n);
	mb->pos = 0;
	err = sip_msg_decode(msgp, mb);
	mem_deref(mb);   /* the message holds it */

	return err;
}


static struct sip_msg *decode(const char *text)
{
	struct sip_msg *msg = NULL;

	ck_assert_int_eq(decode_mem(&msg, text, strlen(text)), 0);
	return msg;
}


/** Read a torture message; with `old` replaced by `new` if given */
static size_t read_torture(char *buf, size_t sz, const char *name,
			   const char *old, const char *new)
{
	const char *src = getenv("REHOME_SRC");
	char path[512];
	size_t n;
	char *at;
	FILE *f;

	(void)re_snprintf(path, sizeof(path), "%s/tests/torture/%s.dat",
			  src ? src : ".", name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	n = fread(buf, 1, sz - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (!old)
		return n;

	at = strstr(buf, old);
	ck_assert_msg(at != NULL, "%s: no '%s'", name, old);
	ck_assert_uint_lt(n - strlen(old) + strlen(new), sz);
	memmove(at + strlen(new), at + strlen(old),
		n - (size_t)(at - buf) - strlen(old));
	memcpy(at, new, strlen(new));

	return n - strlen(old) + strlen(new);
}


static int decode_torture(struct sip_msg **msgp, const char *name)
{
	char buf[8192];
	size_t n = read_torture(buf, sizeof(buf), name, NULL, NULL);

	return decode_mem(msgp, buf, n);
}


/** PASS, DROP or the status code the door gives msg */
static int verdict(const struct sip_msg *msg)
{
	struct sipcheck chk = {0, NULL};
	int err;

	err = msg->req ? sipcheck_request(msg, &chk)
		       : sipcheck_response(msg, &chk);
	if (!err)
		return PASS;

	ck_assert_ptr_nonnull(chk.reason);
	return chk.scode ? chk.scode : DROP;
}


START_TEST(test_rfc4475)
{
	struct sip_msg *msg = NULL;
	int err, got;

	err = decode_torture(&msg, torture[_i].name);
	got = err ? LIBRE_REFUSES : verdict(msg);

	ck_assert_msg(got == torture[_i].expect, "%s: expected %d, got %d",
		      torture[_i].name, torture[_i].expect, got);
	mem_deref(msg);
}
END_TEST


/* libre's refusals, each mended in the one place libre minds: then the
 * door must give what RFC 4475 asks for the rest of the message */
static const struct {
	const char *name, *old, *new;
	int expect;
} mended[] = {
	{"baddn", "l: 0\r\n", "l: 0\r\n\r\n", 400},
	{"badinv01", "192.0.2.15;;", "192.0.2.15;branch=z9hG4bK1;;", 400},
	{"ltgtruri", "UDP 192.0.2.5\r\n", "UDP 192.0.2.5;branch=z9hG4bK1\r\n",
	 400},
	{"longreq", "sip33.example.com\r\n",
	 "sip33.example.com;branch=z9hG4bK1\r\n", PASS},
	{"inv2543", "iftgw.example.com\r\n",
	 "iftgw.example.com;branch=z9hG4bK1\r\n", PASS},
	{"unksm2", "<http://www.example.com>", "<sip:www.example.com>", PASS},
};


START_TEST(test_rfc4475_mended)
{
	struct sip_msg *msg = NULL;
	char buf[8192];
	size_t n;
	int got;

	n = read_torture(buf, sizeof(buf), mended[_i].name, mended[_i].old,
			 mended[_i].new);
	ck_assert_int_eq(decode_mem(&msg, buf, n), 0);
	got = verdict(msg);
	ck_assert_msg(got == mended[_i].expect, "%s: expected %d, got %d",
		      mended[_i].name, mended[_i].expect, got);
	mem_deref(msg);
}
END_TEST


START_TEST(test_rfc4475_all)
{
	ck_assert_uint_eq(ARRAY_SIZE(torture), 49);
}
END_TEST


/* ---- one check at a time ------------------------------------------- */

#define VIA    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1234;rport\r\n"
#define FROM   "From: <sip:a@example.com>;tag=1\r\n"
#define TO     "To: <sip:b@example.com>\r\n"
#define CALLID "Call-ID: c1@example.com\r\n"
#define HDRS   FROM TO CALLID

/** A sound request with `extra` headers and body `body` */
static struct sip_msg *request(const char *met, const char *ruri,
			       const char *extra, const char *body)
{
	char buf[2048];

	(void)re_snprintf(buf, sizeof(buf),
			  "%s %s SIP/2.0\r\n" VIA HDRS
			  "CSeq: 1 %s\r\nMax-Forwards: 70\r\n%s"
			  "Content-Length: %zu\r\n\r\n%s",
			  met, ruri, met, extra, str_len(body), body);
	return decode(buf);
}


static int request_verdict(const char *met, const char *ruri,
			   const char *extra)
{
	struct sip_msg *msg = request(met, ruri, extra, "");
	int v = verdict(msg);

	mem_deref(msg);
	return v;
}


static int text_verdict(const char *text)
{
	struct sip_msg *msg = decode(text);
	int v = verdict(msg);

	mem_deref(msg);
	return v;
}


START_TEST(test_sound_requests_pass)
{
	ck_assert_int_eq(request_verdict("INVITE", "sip:b@example.com", ""),
			 PASS);
	ck_assert_int_eq(request_verdict("OPTIONS", "sips:b@example.com",
					 ""), PASS);
	ck_assert_int_eq(request_verdict("MESSAGE", "tel:+15551234", ""),
			 PASS);
	ck_assert_int_eq(request_verdict("INVITE", "sip:b@example.com",
					 "Contact: *\r\n"), PASS);
}
END_TEST


START_TEST(test_request_reasons)
{
	static const struct {
		const char *msg;
		const char *reason;   /* NULL: it passes */
	} cases[] = {
		{"INVITE sip:b@example.com SIP/2.0\r\n" VIA HDRS
		 "CSeq: 1 INVITE\r\n\r\n", NULL},
		{"ACK sip:b@example.com SIP/2.0\r\n" VIA HDRS
		 "CSeq: 1 ACK\r\n\r\n", NULL},
		{"BYE sip:b@example.com SIP/2.0\r\n" VIA HDRS
		 "CSeq: 2147483647 BYE\r\n\r\n", NULL},
		/* leading zeros are digits too (RFC 4475 wsinv: "0009") */
		{"BYE sip:b@example.com SIP/2.0\r\n" VIA HDRS
		 "CSeq: 00000000001 BYE\r\n\r\n", NULL},
		{"BYE sip:b@example.com SIP/2.0\r\n" VIA FROM TO
		 "CSeq: 2 BYE\r\n\r\n", "Missing Call-ID"},
		{"BYE sip:b@example.com SIP/2.0\r\n" VIA TO CALLID
		 "CSeq: 2 BYE\r\n\r\n", "Missing From"},
		{"BYE sip:b@example.com SIP/2.0\r\n" VIA FROM CALLID
		 "CSeq: 2 BYE\r\n\r\n", "Missing To"},
		{"BYE sip:b@example.com SIP/2.0\r\n" VIA HDRS "\r\n",
		 "Bad CSeq"},
		{"BYE sip:b@example.com SIP/2.0\r\n" VIA HDRS
		 "CSeq: 2147483648 BYE\r\n\r\n", "Bad CSeq"},
		{"BYE sip:b@example.com SIP/2.0\r\n" VIA HDRS
		 "CSeq: 2 INVITE\r\n\r\n", "CSeq Method Mismatch"},
		{"INVITE sip:b@example.com SIP/2.0\r\n" VIA HDRS
		 "CSeq: 1 ACK\r\n\r\n", "CSeq Method Mismatch"},
		{"MESSAGE sip:b@example.com SIP/2.0\r\n" VIA HDRS
		 "CSeq: 1 MESSAGE\r\nContent-Length: 3\r\n\r\nhi",
		 "Content-Length Past Message"},
		{"OPTIONS sip:b@example.com SIP/2.0\r\n" VIA HDRS CALLID
		 "CSeq: 1 OPTIONS\r\n\r\n", "Multiple Call-ID"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sip_msg *msg = decode(cases[i].msg);
		struct sipcheck chk = {0, NULL};
		int err = sipcheck_request(msg, &chk);

		if (cases[i].reason)
			ck_assert_msg(err && !str_cmp(chk.reason,
						      cases[i].reason),
				      "case %zu: %s", i, chk.reason);
		else
			ck_assert_msg(!err, "case %zu: %s", i, chk.reason);
		mem_deref(msg);
	}
}
END_TEST


START_TEST(test_bare_cr_and_nul)
{
	static const char cr[] = "OPTIONS sip:b@example.com SIP/2.0\r\n" VIA
		HDRS "CSeq: 1 OPTIONS\r\nSubject: a\rX-Smuggled: 1\r\n"
		"Content-Length: 0\r\n\r\n";
	static const char nul[] = "OPTIONS sip:b@example.com SIP/2.0\r\n" VIA
		HDRS "CSeq: 1 OPTIONS\r\nSubject: a\0b\r\n"
		"Content-Length: 0\r\n\r\n";
	static const char qnul[] = "OPTIONS sip:b@example.com SIP/2.0\r\n" VIA
		"From: \"x\\\0y\" <sip:a@example.com>;tag=1\r\n"
		"To: <sip:b@example.com>\r\nCall-ID: c1@example.com\r\n"
		"CSeq: 1 OPTIONS\r\nContent-Length: 3\r\n\r\na\0b";
	static const char inul[] = "INVITE sip:b@example.com SIP/2.0\r\n" VIA
		"From: \"x\\\0y\" <sip:a@example.com>;tag=1\r\n"
		"To: <sip:b@example.com>\r\nCall-ID: c1@example.com\r\n"
		"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
	struct sip_msg *msg = NULL;

	ck_assert_int_eq(decode_mem(&msg, cr, sizeof(cr) - 1), 0);
	ck_assert_int_eq(verdict(msg), 400);
	msg = mem_deref(msg);

	ck_assert_int_eq(decode_mem(&msg, nul, sizeof(nul) - 1), 0);
	ck_assert_int_eq(verdict(msg), 400);
	msg = mem_deref(msg);

	/* a quoted-pair may be a NUL, and the body anything */
	ck_assert_int_eq(decode_mem(&msg, qnul, sizeof(qnul) - 1), 0);
	ck_assert_int_eq(verdict(msg), PASS);
	msg = mem_deref(msg);

	/* but not where a new dialog keeps it as a string */
	ck_assert_int_eq(decode_mem(&msg, inul, sizeof(inul) - 1), 0);
	ck_assert_int_eq(verdict(msg), 400);
	mem_deref(msg);
}
END_TEST


START_TEST(test_content_length)
{
#define BASE "MESSAGE sip:b@example.com SIP/2.0\r\n" VIA HDRS \
	"CSeq: 1 MESSAGE\r\n"
	struct sip_msg *msg;

	/* shorter than the datagram: the rest is cut off (RFC 3261 18.3) */
	msg = decode(BASE "Content-Length: 2\r\n\r\nhello");
	ck_assert_int_eq(verdict(msg), PASS);
	ck_assert_uint_eq(mbuf_get_left(msg->mb), 2);
	mem_deref(msg);

	/* no Content-Length: the datagram frames it */
	msg = decode(BASE "\r\nhello");
	ck_assert_int_eq(verdict(msg), PASS);
	ck_assert_uint_eq(mbuf_get_left(msg->mb), 5);
	mem_deref(msg);

	ck_assert_int_eq(text_verdict(BASE "Content-Length: 6\r\n\r\nhello"),
			 400);
	ck_assert_int_eq(text_verdict(BASE "Content-Length: -1\r\n\r\n"), 400);
	ck_assert_int_eq(text_verdict(BASE "Content-Length: 4294967296\r\n"
				      "\r\n"), 400);
	ck_assert_int_eq(text_verdict(BASE "l: 0\r\nContent-Length: 0\r\n"
				      "\r\n"), 400);
#undef BASE
}
END_TEST


START_TEST(test_scalars)
{
	/* request() has one already */
	ck_assert_int_eq(request_verdict("OPTIONS", "sip:b@example.com",
					 "Max-Forwards: 255\r\n"), 400);
	ck_assert_int_eq(text_verdict("OPTIONS sip:b@example.com SIP/2.0\r\n"
				      VIA HDRS "CSeq: 1 OPTIONS\r\n"
				      "Max-Forwards: 256\r\n\r\n"), 400);
	ck_assert_int_eq(text_verdict("OPTIONS sip:b@example.com SIP/2.0\r\n"
				      VIA HDRS "CSeq: 1 OPTIONS\r\n"
				      "Max-Forwards: 4294967366\r\n\r\n"),
			 400);
	ck_assert_int_eq(text_verdict("OPTIONS sip:b@example.com SIP/2.0\r\n"
				      VIA HDRS "CSeq: 1 OPTIONS\r\n"
				      "Max-Forwards: 255\r\n\r\n"), PASS);
	ck_assert_int_eq(text_verdict("OPTIONS sip:b@example.com SIP/2.0\r\n"
				      VIA HDRS "CSeq: 2147483647 OPTIONS\r\n"
				      "\r\n"), PASS);
	ck_assert_int_eq(text_verdict("OPTIONS sip:b@example.com SIP/2.0\r\n"
				      VIA HDRS "CSeq: 2147483648 OPTIONS\r\n"
				      "\r\n"), 400);
	ck_assert_int_eq(text_verdict("OPTIONS sip:b@example.com SIP/2.0\r\n"
				      VIA HDRS "CSeq: 1 BYE\r\n\r\n"), 400);
	/* an ACK may carry its INVITE's CSeq method */
	ck_assert_int_eq(text_verdict("ACK sip:b@example.com SIP/2.0\r\n"
				      VIA HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 PASS);
}
END_TEST


START_TEST(test_addresses)
{
	static const char * const bad[] = {
		"From: \"unterminated <sip:a@example.com>;tag=1\r\n",
		"From: \"escaped\\\" <sip:a@example.com>;tag=1\r\n",
		"From: < sip:a@example.com>;tag=1\r\n",
		"From: Bell, Alexander <sip:a@example.com>;tag=1\r\n",
		"From: \"quoted\" sip:a@example.com;tag=1\r\n",
		"From: <sip:a@example.com>junk;tag=1\r\n",
		"From: <sip:a@example.com;tag=1\r\n",
		"From: sip:a@example.com?Route=x;tag=1\r\n",
		"From: <sip:a@example.com>;;tag=1\r\n",
	};
	static const char * const good[] = {
		"From: sip:a@example.com;tag=1\r\n",
		"From: Alice<sip:a@example.com>;tag=1\r\n",
		"From: \"A \\\" \\\\\" <sip:a@example.com> ;\r\n tag = 1\r\n",
		"From: <sip:a@example.com;x=\"y\">;p=\"q;r\";tag=1\r\n",
	};
	char buf[1024];

	for (size_t i = 0; i < ARRAY_SIZE(bad) + ARRAY_SIZE(good); i++) {
		bool ok = i >= ARRAY_SIZE(bad);
		const char *from = ok ? good[i - ARRAY_SIZE(bad)] : bad[i];

		(void)re_snprintf(buf, sizeof(buf),
				  "OPTIONS sip:b@example.com SIP/2.0\r\n" VIA
				  "%sTo: <sip:b@example.com>\r\n"
				  "Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
				  from);
		ck_assert_msg(text_verdict(buf) == (ok ? PASS : 400), "%s",
			      from);
	}

	ck_assert_int_eq(request_verdict("INVITE", "sip:b@example.com",
					 "Contact: <sip:a@h>, sip:b@h?x=y\r\n"),
			 400);
	ck_assert_int_eq(request_verdict("INVITE", "sip:b@example.com",
					 "Contact: \"Joe\" <sip:j@h>;;;;\r\n"),
			 400);
}
END_TEST


START_TEST(test_request_line)
{
	ck_assert_int_eq(request_verdict("INVITE",
					 "sip:b@example.com?Route=%3Csip:x%3E",
					 ""), 400);
	ck_assert_int_eq(request_verdict("INVITE", "<sip:b@example.com>", ""),
			 400);
	ck_assert_int_eq(request_verdict("OPTIONS", "mailto:b@example.com",
					 ""), 416);
	ck_assert_int_eq(request_verdict("FOO", "sip:b@example.com", ""),
			 501);
	ck_assert_int_eq(request_verdict("OPTIONS", "sip:b@example.com",
					 "Proxy-Require: foo\r\n"), 420);
	/* Require is end to end: the far endpoint decides */
	ck_assert_int_eq(request_verdict("INVITE", "sip:b@example.com",
					 "Require: 100rel\r\n"), PASS);
}
END_TEST


START_TEST(test_unknown_method_in_dialog_passes)
{
	/* relayed to the other leg, as a proxy would */
	ck_assert_int_eq(text_verdict("FOO sip:b@example.com SIP/2.0\r\n" VIA
				      "From: <sip:a@example.com>;tag=1\r\n"
				      "To: <sip:b@example.com>;tag=2\r\n"
				      "Call-ID: c1\r\nCSeq: 2 FOO\r\n\r\n"),
			 PASS);
}
END_TEST


START_TEST(test_max_forwards_zero)
{
	ck_assert_int_eq(text_verdict("INVITE sip:b@example.com SIP/2.0\r\n"
				      VIA HDRS "CSeq: 1 INVITE\r\n"
				      "Max-Forwards: 0\r\n\r\n"), 483);
	/* an ACK is never answered */
	ck_assert_int_eq(text_verdict("ACK sip:b@example.com SIP/2.0\r\n"
				      VIA HDRS "CSeq: 1 ACK\r\n"
				      "Max-Forwards: 0\r\n\r\n"), DROP);
}
END_TEST


START_TEST(test_via)
{
	ck_assert_int_eq(text_verdict("OPTIONS sip:b@example.com SIP/2.0\r\n"
				      HDRS "CSeq: 1 OPTIONS\r\n\r\n"), DROP);
	ck_assert_int_eq(text_verdict("OPTIONS sip:b@example.com SIP/2.0\r\n"
				      "Via: SIP/2.0/UDP h;branch=z9hG4bK\r\n"
				      HDRS "CSeq: 1 OPTIONS\r\n\r\n"), 400);
}
END_TEST


static int response_verdict(const char *status_line, const char *extra)
{
	char buf[1024];

	(void)re_snprintf(buf, sizeof(buf), "%s\r\n" VIA HDRS
			  "CSeq: 1 INVITE\r\n%s\r\n", status_line, extra);
	return text_verdict(buf);
}


START_TEST(test_responses)
{
	ck_assert_int_eq(response_verdict("SIP/2.0 200 OK", ""), PASS);
	ck_assert_int_eq(response_verdict("SIP/2.0 100 ", ""), PASS);
	ck_assert_int_eq(response_verdict("SIP/2.0 699 Last", ""), PASS);
	ck_assert_int_eq(response_verdict("SIP/2.0 700 Past", ""), DROP);
	ck_assert_int_eq(response_verdict("SIP/2.0 099 Before", ""), DROP);
	ck_assert_int_eq(response_verdict("SIP/2.0 4294967496 Wraps to 200",
					  ""), DROP);
	ck_assert_int_eq(response_verdict("SIP/2.0 2000 Four", ""), DROP);
	ck_assert_int_eq(response_verdict("SIP/3.0 200 OK", ""), DROP);
	ck_assert_int_eq(response_verdict("SIP/2.0 200 OK",
					  "Content-Length: 5\r\n"), DROP);
	ck_assert_int_eq(text_verdict("SIP/2.0 200 OK\r\n" HDRS
				      "CSeq: 1 INVITE\r\n\r\n"), DROP);
}
END_TEST


/* ---- the loop mark --------------------------------------------------- */

/** What libre has written when it calls the send handler */
static struct mbuf *sent_start(const char *ruri)
{
	struct mbuf *mb = mbuf_alloc(512);

	ck_assert_ptr_nonnull(mb);
	ck_assert_int_eq(mbuf_printf(mb, "INVITE %s SIP/2.0\r\nVia: SIP/2.0/"
				     "UDP 10.0.0.9:5060;branch=z9hG4bK00112233"
				     "44556677;rport\r\n", ruri), 0);
	return mb;
}


/** The request as it comes back: another Via on top, R-URI maybe new */
static struct sip_msg *returned(struct mbuf *mb, const char *ruri)
{
	char buf[1024];
	struct pl line, rest;

	mb->pos = 0;
	ck_assert_int_eq(re_regex((char *)mb->buf, mb->end, "[^\r\n]+\r\n",
				  &line), 0);
	rest.p = line.p + line.l + 2;
	rest.l = mb->end - line.l - 2;
	(void)re_snprintf(buf, sizeof(buf),
			  "INVITE %s SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKother\r\n"
			  "%r" HDRS "CSeq: 1 INVITE\r\n\r\n", ruri, &rest);
	return decode(buf);
}


START_TEST(test_loopmark_added)
{
	struct mbuf *mb = sent_start("sip:b@10.0.0.2");
	struct pl mark;

	mb->pos = mb->end;
	ck_assert_int_eq(loopmark_add(mb), 0);
	ck_assert_uint_eq(mb->pos, mb->end);
	ck_assert_int_eq(re_regex((char *)mb->buf, mb->end,
				  ";rport;rhloop=[0-9a-f]+\r\n", &mark), 0);
	ck_assert_uint_eq(mark.l, 16);
	ck_assert_ptr_eq(mark.p + mark.l + 2, (char *)mb->buf + mb->end);
	mem_deref(mb);
}
END_TEST


START_TEST(test_loopmark_unknown_layout)
{
	struct mbuf *mb = mbuf_alloc(64);
	size_t end;

	(void)mbuf_write_str(mb, "INVITE sip:b@h SIP/2.0\r\nTo: <sip:b@h>\r\n");
	end = mb->end;
	ck_assert_int_eq(loopmark_add(mb), 0);
	ck_assert_uint_eq(mb->end, end);
	mem_deref(mb);
}
END_TEST


START_TEST(test_loop_and_spiral)
{
	struct mbuf *mb = sent_start("sip:b@10.0.0.2");
	struct sipcheck chk;
	struct sip_msg *msg;

	mb->pos = mb->end;
	ck_assert_int_eq(loopmark_add(mb), 0);

	/* back unchanged: a loop */
	msg = returned(mb, "sip:b@10.0.0.2");
	ck_assert(loopmark_looped(msg));
	ck_assert_int_eq(sipcheck_request(msg, &chk), EPROTO);
	ck_assert_uint_eq(chk.scode, 482);
	mem_deref(msg);

	/* retargeted: a spiral, processed again */
	msg = returned(mb, "sip:carol@10.0.0.2");
	ck_assert(!loopmark_looped(msg));
	ck_assert_int_eq(sipcheck_request(msg, &chk), 0);
	mem_deref(msg);

	mem_deref(mb);
}
END_TEST


START_TEST(test_loopmark_not_forgeable)
{
	struct sip_msg *msg = decode(
		"INVITE sip:b@10.0.0.2 SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1;rhloop="
		"0123456789abcdef\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n");

	ck_assert(!loopmark_looped(msg));
	mem_deref(msg);
}
END_TEST


static Suite *sipcheck_suite(void)
{
	Suite *s = suite_create("sipcheck");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_rfc4475, 0, (int)ARRAY_SIZE(torture));
	tcase_add_loop_test(tc, test_rfc4475_mended, 0,
			    (int)ARRAY_SIZE(mended));
	tcase_add_test(tc, test_rfc4475_all);
	tcase_add_test(tc, test_sound_requests_pass);
	tcase_add_test(tc, test_request_reasons);
	tcase_add_test(tc, test_bare_cr_and_nul);
	tcase_add_test(tc, test_content_length);
	tcase_add_test(tc, test_scalars);
	tcase_add_test(tc, test_addresses);
	tcase_add_test(tc, test_request_line);
	tcase_add_test(tc, test_unknown_method_in_dialog_passes);
	tcase_add_test(tc, test_max_forwards_zero);
	tcase_add_test(tc, test_via);
	tcase_add_test(tc, test_responses);
	tcase_add_test(tc, test_loopmark_added);
	tcase_add_test(tc, test_loopmark_unknown_layout);
	tcase_add_test(tc, test_loop_and_spiral);
	tcase_add_test(tc, test_loopmark_not_forgeable);
	suite_add_tcase(s, tc);

	return s;
}

#include "check_main.h"

int main(void)
{
	if (sipmend_init())   /* libre's decoders as the engine has them */
		return EXIT_FAILURE;

	return check_main(sipcheck_suite());
}

/**
 * @file fake_ng.h  A fake rtpengine for tests: an ng server in the process
 *
 * It listens on 127.0.0.1 (a free port), decodes every request with the
 * engine's own bencode decoder, and answers as rtpengine would: "pong" to
 * a ping, "ok" with an SDP (and the request's call-id echoed) to the
 * rest. A test makes it misbehave: the first `bad_count` requests get the
 * `bad` treatment (no answer, a garbled one, junk, another cookie), a
 * fixed `reply` body replaces the normal answer, and `hold` keeps the
 * requests unanswered until fake_release() answers them, last first.
 * Include it after <re.h>, "bencode.h" and <check.h>.
 */

enum fake_bad {
	FAKE_SILENT,             /* no answer */
	FAKE_GARBLED,            /* right cookie, broken bencode */
	FAKE_JUNK,               /* bytes with no cookie at all */
	FAKE_WRONG_COOKIE,       /* a good answer to another cookie */
};

enum { FAKE_HOLD_MAX = 8 };

#define FAKE_SDP "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 40000 RTP/AVP 0\r\n"

struct fake {
	struct udp_sock *us;
	struct sa addr;
	struct sa peer;          /* where the last request came from */
	enum fake_bad bad;
	unsigned bad_count;      /* requests treated badly, from the first */
	const char *reply;       /* a fixed body instead of the answer */
	bool hold;
	unsigned received;       /* datagrams */
	unsigned cookies;        /* distinct cookies */
	char cookie[64];         /* of the last request */
	char command[16];        /* of the last request */
	struct odict *last;      /* the last request */
	struct {
		char cookie[64];
		char callid[64];
	} held[FAKE_HOLD_MAX];
	unsigned heldc;
};


static void fake_destructor(void *arg)
{
	struct fake *f = arg;

	mem_deref(f->us);
	mem_deref(f->last);
}


/* "<cookie> <body>", the body is the answer to `req` unless fixed */
static void fake_send(struct fake *f, const char *cookie, const char *callid,
		      const char *command)
{
	struct mbuf *mb = mbuf_alloc(256);

	ck_assert_ptr_nonnull(mb);

	if (f->reply)
		ck_assert_int_eq(mbuf_printf(mb, "%s %s", cookie, f->reply),
				 0);
	else if (!str_cmp(command, "ping"))
		ck_assert_int_eq(mbuf_printf(mb, "%s d6:result4:ponge", cookie),
				 0);
	else
		ck_assert_int_eq(mbuf_printf(mb, "%s d7:call-id%H3:sdp%H"
					     "6:result2:oke", cookie,
					     bencode_encode_str, callid,
					     bencode_encode_str, FAKE_SDP), 0);

	mb->pos = 0;
	ck_assert_int_eq(udp_send(f->us, &f->peer, mb), 0);
	mem_deref(mb);
}


static void fake_send_bad(struct fake *f, const char *cookie)
{
	static const char junk[] = "\xff\x00\x01junk-without-space";
	struct mbuf *mb = mbuf_alloc(64);

	ck_assert_ptr_nonnull(mb);

	switch (f->bad) {

	case FAKE_SILENT:
		break;

	case FAKE_GARBLED:
		(void)mbuf_printf(mb, "%s d6:result4:po", cookie);
		break;

	case FAKE_JUNK:
		(void)mbuf_write_mem(mb, (const uint8_t *)junk,
				     sizeof(junk) - 1);
		break;

	case FAKE_WRONG_COOKIE:
		(void)mbuf_printf(mb, "x%s d6:result4:ponge", cookie);
		break;
	}

	if (mb->end) {
		mb->pos = 0;
		ck_assert_int_eq(udp_send(f->us, &f->peer, mb), 0);
	}
	mem_deref(mb);
}


static void fake_recv(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct fake *f = arg;
	struct pl cookie, body;
	const char *callid, *sp;

	++f->received;
	f->peer = *src;

	cookie.p = (const char *)mbuf_buf(mb);
	sp = memchr(cookie.p, ' ', mbuf_get_left(mb));
	ck_assert_ptr_nonnull(sp);
	cookie.l = sp - cookie.p;
	body.p = sp + 1;
	body.l = mbuf_get_left(mb) - cookie.l - 1;
	if (pl_strcmp(&cookie, f->cookie))
		++f->cookies;
	ck_assert_int_eq(pl_strcpy(&cookie, f->cookie, sizeof(f->cookie)), 0);

	f->last = mem_deref(f->last);
	ck_assert_int_eq(bencode_decode_odict(&f->last, 8, body.p, body.l,
					      8), 0);
	str_ncpy(f->command, odict_string(f->last, "command"),
		 sizeof(f->command));
	callid = odict_string(f->last, "call-id");

	if (f->bad_count) {
		--f->bad_count;
		fake_send_bad(f, f->cookie);
		return;
	}

	if (f->hold) {
		ck_assert_uint_lt(f->heldc, FAKE_HOLD_MAX);
		str_ncpy(f->held[f->heldc].cookie, f->cookie,
			 sizeof(f->held[0].cookie));
		str_ncpy(f->held[f->heldc].callid, callid ? callid : "",
			 sizeof(f->held[0].callid));
		++f->heldc;
		return;
	}

	fake_send(f, f->cookie, callid, f->command);
}


/* Answer the held requests, the last one first */
static void fake_release(struct fake *f)
{
	while (f->heldc) {
		--f->heldc;
		fake_send(f, f->held[f->heldc].cookie,
			  f->held[f->heldc].callid, "query");
	}
}


static struct fake *fake_alloc(void)
{
	struct fake *f = mem_zalloc(sizeof(*f), fake_destructor);
	struct sa laddr;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(sa_set_str(&laddr, "127.0.0.1", 0), 0);
	ck_assert_int_eq(udp_listen(&f->us, &laddr, fake_recv, f), 0);
	ck_assert_int_eq(udp_local_get(f->us, &f->addr), 0);

	return f;
}

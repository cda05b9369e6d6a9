/**
 * @file sipmend.c  A second reading of what libre's parser refuses
 *
 * RFC 4475 has messages an element must answer or process that libre
 * 1.1.0's sip_msg_decode() refuses outright, and libre then drops them
 * ("msg decode err") before any listener sees them, with no hook to step
 * in: a request of another SIP version (owed a 505), a request line with
 * LWS where one SP belongs (owed a 400), RFC 2543 requests whose Vias
 * have no branch (owed processing, RFC 3261 8.2.2.1 and 17.2.3 backward
 * compatibility), a From or To with a URI scheme libre cannot parse (a
 * valid message).
 *
 * So the engine interposes on libre's own symbols: this file defines
 * sip_msg_decode(), sip_via_decode() and sip_addr_decode(), which the
 * dynamic linker gives precedence over libre.so's, also for libre's calls
 * from inside (they go through its PLT: `objdump -R libre.so` lists
 * them; so libre must be linked as the shared library, as pkg-config
 * gives it). Each calls libre's (dlsym RTLD_NEXT) first and, for a message
 * libre refused, tries once more, leniently, in the same buffer (so libre
 * frames a TCP stream on as usual):
 *  - a request line with LWS in it is rewritten in place as "METHOD SP
 *    URI SP VERSION", read, and put back; the request then shows its
 *    method and URI text as received, no decoded URI, and a version whose
 *    address marks it for the door's 400 (sipmend_bad_line());
 *  - a version other than 2.0 in the start line and the Vias ("SIP/7.0",
 *    same length) is read as 2.0, and the bytes put back, so the
 *    request's ver still says "SIP/7.0" and the door answers 505;
 *  - a top Via without a branch is accepted, and given one made up from
 *    what identifies an RFC 2543 transaction (17.2.3: Request-URI, To
 *    tag, From tag, Call-ID, CSeq number, top Via; not the method, so a
 *    CANCEL finds its INVITE), so libre's transactions absorb
 *    retransmissions as for any request. The made-up branch is written
 *    past the end of the message in its own buffer (it is never sent:
 *    responses copy the Via as received) and begins with "rh2543", never
 *    the magic cookie;
 *  - a From or To whose URI libre cannot decode is taken as name-addr or
 *    addr-spec text; the door still checks its syntax.
 * Whatever is still refused is refused as libre would; a header section
 * without its end stays "incomplete" (over TCP more may come). Every
 * mended message then goes through the door (sipcheck.c) like any other.
 *
 * Limit: an RFC 2543 ACK carries the To tag of the response it
 * acknowledges, so it never matches its INVITE's made-up branch: the
 * ACK of an error response reaches the engine (which drops it), and the
 * error is retransmitted until Timer H.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <string.h>
#include <ctype.h>
#include <re.h>
#include "sipmend.h"

enum {
	BRANCH_SZ   = 24,     /* "rh2543" + 16 hex digits + NUL, rounded */
	MAX_PATCHES = 16,     /* "SIP/x.y" read as 2.0, per message */
	MAX_TOKENS  = 8,      /* of a request line with LWS inside */
	VERSION_LEN = 7,      /* "SIP/x.y" */
};

typedef int (msg_decode_h)(struct sip_msg **msgp, struct mbuf *mb);
typedef int (via_decode_h)(struct sip_via *via, const struct pl *pl);
typedef int (addr_decode_h)(struct sip_addr *addr, const struct pl *pl);

static struct {
	msg_decode_h *msg_decode;
	via_decode_h *via_decode;
	addr_decode_h *addr_decode;
	bool lenient;      /* in the second reading */
} mend;

static const char branch_prefix[] = "rh2543";

/* the version of a request whose request line had to be rewritten: the
 * door knows it by its address, which no message on the wire can have */
static const char bad_line_ver[] = "SIP/2.0";

/** A request line rewritten for reading, and what it was */
struct line {
	char *orig;        /* the line as received */
	size_t len;
	size_t pos;        /* where it starts in its buffer */
	size_t met_len;    /* its method, at its start */
	size_t ver_off;    /* its version token, from its start */
};


/**
 * Find libre's own decoders (once; the wrappers below call it too, as
 * libre may decode before the engine starts)
 *
 * @return 0, or ENOSYS if libre's are not found (nothing can be decoded)
 */
int sipmend_init(void)
{
	if (mend.msg_decode)
		return 0;

	mend.via_decode = dlsym(RTLD_NEXT, "sip_via_decode");
	mend.addr_decode = dlsym(RTLD_NEXT, "sip_addr_decode");
	if (mend.via_decode && mend.addr_decode)
		mend.msg_decode = dlsym(RTLD_NEXT, "sip_msg_decode");

	return mend.msg_decode ? 0 : ENOSYS;
}


int sip_via_decode(struct sip_via *via, const struct pl *pl)
{
	int err;

	if (sipmend_init())
		return ENOSYS;

	err = mend.via_decode(via, pl);

	/* libre sets val only once the rest parsed: only the branch is
	 * missing */
	if (err == ENOENT && mend.lenient && via && pl_isset(&via->val)) {
		via->branch = pl_null;
		return 0;
	}

	return err;
}


/** addr as text: "dname <auri>params" or "auri;params" */
static int addr_text(struct sip_addr *addr, const struct pl *pl)
{
	const char *end = pl->p + pl->l;
	const char *lt = pl_strchr(pl, '<');
	const char *gt;

	memset(addr, 0, sizeof(*addr));

	if (lt) {
		gt = memchr(lt, '>', end - lt);
		if (!gt)
			return EBADMSG;

		addr->dname.p = pl->p;
		addr->dname.l = lt - pl->p;
		addr->auri.p = lt + 1;
		addr->auri.l = gt - lt - 1;
		addr->params.p = gt + 1;
		addr->params.l = end - gt - 1;
	}
	else {
		const char *semi = pl_strchr(pl, ';');

		addr->auri.p = pl->p;
		addr->auri.l = (semi ? semi : end) - pl->p;
		addr->params.p = addr->auri.p + addr->auri.l;
		addr->params.l = end - addr->params.p;
	}

	return addr->auri.l ? 0 : EBADMSG;
}


int sip_addr_decode(struct sip_addr *addr, const struct pl *pl)
{
	int err;

	if (sipmend_init())
		return ENOSYS;

	err = mend.addr_decode(addr, pl);
	if (err && mend.lenient && addr && pl)
		err = addr_text(addr, pl);

	return err;
}


/** Where the header section of the message at mb's position ends */
static size_t head_end(const struct mbuf *mb)
{
	const uint8_t *p = mbuf_buf(mb);
	size_t n = mbuf_get_left(mb);

	for (size_t i = 0; i + 4 <= n; i++) {
		if (!memcmp(p + i, "\r\n\r\n", 4))
			return mb->pos + i;
	}

	return mb->end;
}


struct patches {
	size_t off[MAX_PATCHES];
	char orig[MAX_PATCHES][VERSION_LEN];
	unsigned n;
};


/** Read every "SIP/x.y" of another version in the header section as 2.0 */
static void versions_patch(struct mbuf *mb, struct patches *pt)
{
	size_t end = head_end(mb);
	char *buf = (char *)mb->buf;

	pt->n = 0;
	for (size_t i = mb->pos; i + VERSION_LEN <= end; i++) {
		char *v = buf + i;

		if (memcmp(v, "SIP/", 4) || !isdigit((unsigned char)v[4]) ||
		    v[5] != '.' || !isdigit((unsigned char)v[6]) ||
		    !memcmp(v, "SIP/2.0", VERSION_LEN))
			continue;
		if (pt->n == MAX_PATCHES)
			break;

		pt->off[pt->n] = i;
		memcpy(pt->orig[pt->n++], v, VERSION_LEN);
		memcpy(v, "SIP/2.0", VERSION_LEN);
	}
}


static void versions_restore(struct mbuf *mb, const struct patches *pt)
{
	for (unsigned i = 0; i < pt->n; i++)
		memcpy(mb->buf + pt->off[i], pt->orig[i], VERSION_LEN);
}


static uint64_t fnv1a(uint64_t h, const struct pl *pl)
{
	for (size_t i = 0; i < pl->l; i++) {
		h ^= (uint8_t)pl->p[i];
		h *= 0x100000001b3ULL;
	}

	return (h ^ 0xff) * 0x100000001b3ULL;   /* a field separator */
}


/**
 * Give an RFC 2543 request a branch of its transaction's identifiers,
 * written in the spare room past mb's end (made sure of before decoding).
 */
static void branch_make(struct sip_msg *msg, struct mbuf *mb)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	struct pl cseq;
	char *p = (char *)mb->buf + mb->end;
	int n;

	cseq.p = (const char *)&msg->cseq.num;
	cseq.l = sizeof(msg->cseq.num);

	h = fnv1a(h, &msg->ruri);
	h = fnv1a(h, &msg->to.tag);
	h = fnv1a(h, &msg->from.tag);
	h = fnv1a(h, &msg->callid);
	h = fnv1a(h, &cseq);
	h = fnv1a(h, &msg->via.val);

	n = re_snprintf(p, BRANCH_SZ, "%s%016llx", branch_prefix,
			(unsigned long long)h);
	msg->via.branch.p = p;
	msg->via.branch.l = n > 0 ? (size_t)n : 0;
}


/** "SIP/x.y" */
static bool is_version(const struct pl *pl)
{
	return pl->l == VERSION_LEN && !memcmp(pl->p, "SIP/", 4) &&
		isdigit((unsigned char)pl->p[4]) && pl->p[5] == '.' &&
		isdigit((unsigned char)pl->p[6]);
}


/** The start line's tokens, split at runs of SP and HTAB */
static unsigned line_tokens(struct pl *tokv, unsigned tokc, const char *p,
			    const char *end)
{
	unsigned n = 0;

	while (p < end) {
		const char *q;

		if (*p == ' ' || *p == '\t') {
			++p;
			continue;
		}

		for (q = p; q < end && *q != ' ' && *q != '\t'; q++)
			;
		if (n == tokc)
			return tokc + 1;

		tokv[n].p = p;
		tokv[n++].l = q - p;
		p = q;
	}

	return n;
}


/**
 * A request line with LWS where one SP belongs (RFC 4475 lwsruri,
 * lwsstart, trws) is rewritten in place as "METHOD SP URI SP VERSION"
 * (the URI's pieces joined), right-aligned on its line end, and mb's
 * position moved to its new start; the original is kept to put back.
 */
static bool line_patch(struct mbuf *mb, struct line *ln)
{
	struct pl tokv[MAX_TOKENS];
	const char *start = (const char *)mbuf_buf(mb);
	const char *end = memchr(start, '\r', head_end(mb) - mb->pos);
	char *out;
	size_t len = 0;
	unsigned n;

	if (!end)
		return false;

	n = line_tokens(tokv, MAX_TOKENS, start, end);
	if (n < 3 || n > MAX_TOKENS || tokv[0].p != start ||
	    !is_version(&tokv[n - 1]))
		return false;

	for (unsigned i = 0; i < n; i++)
		len += tokv[i].l;
	len += 2;    /* the two SPs */
	if (len == (size_t)(end - start))
		return false;   /* a sound line: libre minded something else */

	ln->orig = mem_alloc(end - start, NULL);
	if (!ln->orig)
		return false;

	memcpy(ln->orig, start, end - start);
	ln->len = end - start;
	ln->pos = mb->pos;
	ln->met_len = tokv[0].l;
	ln->ver_off = tokv[n - 1].p - start;

	/* written from the end backwards: the tokens only move right */
	out = (char *)end;
	for (unsigned i = n; i-- > 0;) {
		const char *t = ln->orig + (tokv[i].p - start);

		out -= tokv[i].l;
		memcpy(out, t, tokv[i].l);
		if (i == n - 1 || i == 1)
			*--out = ' ';
	}

	mb->pos = (const uint8_t *)out - mb->buf;
	return true;
}


static void line_restore(struct mbuf *mb, struct line *ln)
{
	if (!ln->orig)
		return;

	memcpy(mb->buf + ln->pos, ln->orig, ln->len);
	mem_deref(ln->orig);
}


/**
 * The request of a rewritten line as received: its method, its URI part
 * as text (no URI is decoded from it), and the version that marks it.
 */
static void line_show(struct sip_msg *msg, const struct mbuf *mb,
		      const struct line *ln)
{
	const char *start = (const char *)mb->buf + ln->pos;

	msg->met.p = start;
	msg->met.l = ln->met_len;
	msg->ruri.p = start + ln->met_len;
	msg->ruri.l = ln->ver_off - ln->met_len;
	memset(&msg->uri, 0, sizeof(msg->uri));
	msg->ver.p = bad_line_ver;
	msg->ver.l = VERSION_LEN;
}


/** The second, lenient reading of what libre refused */
static int decode_mended(struct sip_msg **msgp, struct mbuf *mb)
{
	struct line ln = {NULL, 0, 0, 0, 0};
	bool bad_line;
	struct patches pt;
	struct sip_msg *msg = NULL;
	int err;

	/* room for a made-up branch: grown now, while nothing points in */
	if (mb->size - mb->end < BRANCH_SZ) {
		err = mbuf_resize(mb, mb->end + BRANCH_SZ);
		if (err)
			return err;
	}

	bad_line = line_patch(mb, &ln);
	versions_patch(mb, &pt);
	mend.lenient = true;
	err = mend.msg_decode(&msg, mb);
	mend.lenient = false;
	versions_restore(mb, &pt);
	line_restore(mb, &ln);
	if (err)
		return err;

	if (bad_line)
		line_show(msg, mb, &ln);

	if (msg->req && !pl_isset(&msg->via.branch))
		branch_make(msg, mb);

	*msgp = msg;
	return 0;
}


int sip_msg_decode(struct sip_msg **msgp, struct mbuf *mb)
{
	size_t pos;
	int err;

	if (sipmend_init())
		return ENOSYS;

	err = mend.msg_decode(msgp, mb);

	/* ENODATA: incomplete (TCP reads on), unless the header section is
	 * all there; ENOMEM: no second try */
	if (!err || err == ENOMEM || !msgp || !mb || mend.lenient ||
	    (err == ENODATA && head_end(mb) == mb->end))
		return err;

	pos = mb->pos;
	if (decode_mended(msgp, mb)) {
		mb->pos = pos;
		return err;   /* refused as libre refused it */
	}

	return 0;
}


/** The request line was not "METHOD SP URI SP VERSION" (400) */
bool sipmend_bad_line(const struct sip_msg *msg)
{
	return msg->ver.p == bad_line_ver;
}


/**
 * The request comes from an RFC 2543 element: its top Via had no branch
 * (the one it has was made up here) or one without the magic cookie.
 */
bool sipmend_is_rfc2543(const struct sip_msg *msg)
{
	static const struct pl cookie = PL("z9hG4bK");
	struct pl b = msg->via.branch;

	b.l = MIN(b.l, cookie.l);
	return msg->req && pl_cmp(&b, &cookie);
}

/**
 * @file sipcheck.c  The door: what a message must be before the engine reads it
 *
 * Every request and response is checked here before the rest of the
 * engine looks at it (RFC 3261 16.3 for a proxy's request validation and
 * its order, 8.2 for what a UAS checks, 18.3 for framing; RFC 4475 has
 * the cases). libre's parser has split the message already, and these
 * checks read what it found; they refuse what it lets through:
 *  - bytes that change meaning further on: a bare CR (a line end to some
 *    parsers, header text to libre: a way to smuggle a header past us) or
 *    a NUL that is not a quoted-pair;
 *  - framing: several Content-Length, one that is not a number, or one
 *    longer than the datagram; octets past it are cut (18.3, as libre's
 *    TCP framing does), which is why a const message is changed here;
 *  - numbers libre wraps around: CSeq past 2^31 - 1 (8.1.1.5),
 *    Max-Forwards past 255 (20.22), status codes outside 100..699 (7.2);
 *  - a header that may appear once appearing twice (Call-ID, CSeq, ...);
 *  - From, To and Contact that libre decoded leniently: an unterminated
 *    quote, LWS inside <>, a display name that is not tokens, an addr-spec
 *    holding '?' or ',' (it needs <>, 20.10);
 *  - a branch that is the bare magic cookie: every such request would be
 *    one transaction; headers in a Request-URI (19.1.1 forbids them);
 *  - a response of another SIP version.
 * Then, in 16.3's order: the URI scheme (416), Max-Forwards 0 (483),
 * loops (482, loopmark.c), Proxy-Require (420: the engine implements no
 * proxy extension), and outside a dialog a method nobody knows (501;
 * inside one the request is relayed as a proxy would).
 *
 * A refused request is answered statelessly, but an ACK, or one without a
 * Via to answer to, is dropped; a refused response is dropped as if it
 * never came.
 *
 * A request line with LWS where one SP belongs gets 400, and a request of
 * another SIP version 505, before anything else: libre refuses both, and
 * sipmend.c reads them a second time for the door to answer, as it reads
 * RFC 2543 requests (a top Via without a branch) and a From or To libre
 * cannot decode. What is still refused never gets here: libre's transport
 * prints "msg decode err" and drops the datagram (closes the TCP
 * connection). That is a Via it cannot decode, or a header section
 * without its blank line.
 */
#include <string.h>
#include <ctype.h>
#include <re.h>
#include "log.h"
#include "metrics.h"
#include "loopmark.h"
#include "sipcheck.h"
#include "sipmend.h"

enum {
	CSEQ_MAX   = 0x7fffffff,
	MAXFWD_MAX = 255,
};

/* the headers a message may carry once (RFC 3261 7.3.1), with their names */
static const struct {
	enum sip_hdrid id;
	const char *reason;
} single_hdrs[] = {
	{SIP_HDR_CALL_ID,        "Multiple Call-ID"},
	{SIP_HDR_CSEQ,           "Multiple CSeq"},
	{SIP_HDR_FROM,           "Multiple From"},
	{SIP_HDR_TO,             "Multiple To"},
	{SIP_HDR_MAX_FORWARDS,   "Multiple Max-Forwards"},
	{SIP_HDR_CONTENT_LENGTH, "Multiple Content-Length"},
	{SIP_HDR_CONTENT_TYPE,   "Multiple Content-Type"},
};

/* methods of RFC 3261 and its extensions: anything else is unknown */
static const char * const known_methods[] = {
	"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "PRACK",
	"SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE",
	"UPDATE",
};


/** pl is 1*DIGIT, of value at most max */
static bool number_ok(const struct pl *pl, uint64_t max)
{
	uint64_t v = 0;

	if (!pl_isset(pl))
		return false;

	for (size_t i = 0; i < pl->l; i++) {

		if (!isdigit((unsigned char)pl->p[i]))
			return false;

		v = v * 10 + (uint64_t)(pl->p[i] - '0');
		if (v > max)
			return false;
	}

	return true;
}


static bool is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/** RFC 3261 25.1 token characters */
static bool is_token(char c)
{
	return isalnum((unsigned char)c) ||
		(c != '\0' && strchr("-.!%*_+`'~", c));
}


static const char *skip_lws(const char *p, const char *end)
{
	while (p < end && is_lws(*p))
		++p;

	return p;
}


/** Past the quoted string opening at p, or NULL if it does not close */
static const char *quoted_end(const char *p, const char *end)
{
	for (++p; p < end; p++) {

		if (*p == '\\') {
			if (++p == end)
				break;
		}
		else if (*p == '"') {
			return p + 1;
		}
	}

	return NULL;
}


/**
 * Header parameters after an address: each ";" starts a token name (no
 * empty one), values are anything with quotes balanced.
 */
static bool params_ok(const char *p, const char *end)
{
	p = skip_lws(p, end);
	if (p < end && *p != ';')
		return false;

	while (p < end) {

		if (*p == ';') {
			p = skip_lws(p + 1, end);
			if (p == end || !is_token(*p))
				return false;
		}
		else if (*p == '"') {
			p = quoted_end(p, end);
			if (!p)
				return false;
		}
		else {
			++p;
		}
	}

	return true;
}


/**
 * A From, To or Contact value (RFC 3261 20.10, 25.1): a name-addr, with a
 * quoted or token display name and no LWS inside <>, or an addr-spec that
 * could not be mistaken for one; then its parameters.
 */
static bool address_ok(const struct pl *val)
{
	const char *end = val->p + val->l;
	const char *p = skip_lws(val->p, end);
	const char *q = p;

	if (p < end && *p == '"') {
		q = quoted_end(p, end);
		if (!q)
			return false;

		q = skip_lws(q, end);
	}
	else {
		while (q < end && (is_token(*q) || is_lws(*q)))
			++q;
	}

	if (q < end && *q == '<') {
		for (p = q + 1; p < end && *p != '>'; p++) {
			if (is_lws(*p))
				return false;
		}

		if (p == end)
			return false;

		return params_ok(p + 1, end);
	}

	if (p < end && *p == '"')
		return false;    /* a display name without its <> */

	for (; p < end && !is_lws(*p) && *p != ';'; p++) {
		if (*p && strchr("?,\"<>", *p))
			return false;
	}

	return params_ok(p, end);
}


static bool contact_handler(const struct sip_hdr *hdr,
			    const struct sip_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;

	return pl_strcmp(&hdr->val, "*") && !address_ok(&hdr->val);
}


static bool count_handler(const struct sip_hdr *hdr,
			  const struct sip_msg *msg, void *arg)
{
	unsigned *n = arg;
	(void)hdr;
	(void)msg;

	return ++*n > 1;
}


/**
 * The header section holds no bare CR and no NUL but in a quoted-pair
 * (the body may hold anything).
 */
static bool bytes_ok(const struct sip_msg *msg)
{
	const char *start = msg->req ? msg->met.p : msg->ver.p;
	const char *end = (const char *)mbuf_buf(msg->mb);

	for (const char *p = start; p < end; p++) {

		if (*p == '\r' && (p + 1 == end || p[1] != '\n'))
			return false;

		if (*p == '\0' && (p == start || p[-1] != '\\'))
			return false;
	}

	return true;
}


/**
 * RFC 3261 18.3: Content-Length frames the body. Octets past it are
 * discarded; a message shorter than it is malformed. Without one, the
 * datagram is the frame (libre refuses that over TCP).
 */
static const char *framing(const struct sip_msg *msg)
{
	uint32_t clen;

	if (!pl_isset(&msg->clen))
		return NULL;

	if (!number_ok(&msg->clen, UINT32_MAX))
		return "Bad Content-Length";

	clen = pl_u32(&msg->clen);
	if (clen > mbuf_get_left(msg->mb))
		return "Content-Length Past Message";

	msg->mb->end = msg->mb->pos + clen;
	return NULL;
}


/** RFC 3261 8.1.1.5: 1*DIGIT below 2^31, then the method */
static bool cseq_ok(const struct sip_msg *msg)
{
	const struct sip_hdr *hdr = sip_msg_hdr(msg, SIP_HDR_CSEQ);
	struct pl num;

	if (!hdr || !pl_isset(&msg->cseq.met))
		return false;

	num.p = hdr->val.p;
	num.l = 0;
	while (num.l < hdr->val.l && isdigit((unsigned char)num.p[num.l]))
		++num.l;

	return number_ok(&num, CSEQ_MAX);
}


/** What requests and responses share; NULL if the message is sound */
static const char *syntax(const struct sip_msg *msg)
{
	const struct sip_hdr *from, *to;

	if (!bytes_ok(msg))
		return "Bad Characters";

	for (size_t i = 0; i < ARRAY_SIZE(single_hdrs); i++) {
		unsigned n = 0;

		if (sip_msg_hdr_apply(msg, true, single_hdrs[i].id,
				      count_handler, &n))
			return single_hdrs[i].reason;
	}

	from = sip_msg_hdr(msg, SIP_HDR_FROM);
	to = sip_msg_hdr(msg, SIP_HDR_TO);

	if (!pl_isset(&msg->callid))
		return "Missing Call-ID";
	if (!from)
		return "Missing From";
	if (!to)
		return "Missing To";
	if (!cseq_ok(msg))
		return "Bad CSeq";
	if (!address_ok(&from->val))
		return "Bad From";
	if (!address_ok(&to->val))
		return "Bad To";
	if (sip_msg_hdr_apply(msg, true, SIP_HDR_CONTACT, contact_handler,
			      NULL))
		return "Bad Contact";

	return framing(msg);
}


/** The scheme of a URI: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
static bool uri_scheme(struct pl *scheme, const struct pl *uri)
{
	const char *colon = pl_strchr(uri, ':');

	if (!colon || colon == uri->p || !isalpha((unsigned char)*uri->p))
		return false;

	scheme->p = uri->p;
	scheme->l = colon - uri->p;

	for (size_t i = 1; i < scheme->l; i++) {
		if (!isalnum((unsigned char)scheme->p[i]) &&
		    !strchr("+-.", scheme->p[i]))
			return false;
	}

	return true;
}


static bool has_nul(const struct pl *pl)
{
	return pl->l && memchr(pl->p, '\0', pl->l);
}


/** Syntax only requests have, after the shared one; NULL if sound */
static const char *request_syntax(const struct sip_msg *msg)
{
	const char *why = syntax(msg);
	struct pl scheme;

	if (why)
		return why;

	if (pl_cmp(&msg->cseq.met, &msg->met) &&
	    !(!pl_strcmp(&msg->met, "ACK") &&
	      !pl_strcmp(&msg->cseq.met, "INVITE")))
		return "CSeq Method Mismatch";

	if (pl_isset(&msg->maxfwd) && !number_ok(&msg->maxfwd, MAXFWD_MAX))
		return "Bad Max-Forwards";

	if (!pl_strcmp(&msg->via.branch, "z9hG4bK"))
		return "Bad Via Branch";

	if (!uri_scheme(&scheme, &msg->ruri))
		return "Bad Request-URI";

	if (pl_isset(&msg->uri.headers))
		return "Headers in Request-URI";

	/* a new dialog keeps these as strings, which a NUL (quoted) cuts */
	if (!pl_strcmp(&msg->met, "INVITE") && !pl_isset(&msg->to.tag) &&
	    (has_nul(&msg->callid) || has_nul(&msg->from.val) ||
	     has_nul(&msg->to.val)))
		return "NUL in Dialog Identifiers";

	return NULL;
}


/** Schemes a SIP element routes: RFC 4475 3.3.2, 3.3.3 */
static bool scheme_known(const struct pl *ruri)
{
	struct pl scheme;

	(void)uri_scheme(&scheme, ruri);   /* request_syntax() checked it */

	return !pl_strcasecmp(&scheme, "sip") ||
		!pl_strcasecmp(&scheme, "sips") ||
		!pl_strcasecmp(&scheme, "tel");
}


static bool method_known(const struct pl *met)
{
	for (size_t i = 0; i < ARRAY_SIZE(known_methods); i++) {
		if (!pl_strcmp(met, known_methods[i]))
			return true;
	}

	return false;
}


static int refuse(struct sipcheck *chk, uint16_t scode, const char *reason)
{
	chk->scode = scode;
	chk->reason = reason;

	return EPROTO;
}


/**
 * Check a request before the engine reads it.
 *
 * @param msg  The request (a body longer than Content-Length is cut)
 * @param chk  Set to the answer (scode 0: drop) when it is refused
 *
 * @return 0 if the request may go on, EPROTO if refused
 */
int sipcheck_request(const struct sip_msg *msg, struct sipcheck *chk)
{
	const char *why;
	int err;

	if (!msg || !chk)
		return EINVAL;

	/* without a Via there is nowhere to answer */
	if (!pl_isset(&msg->via.sentby) || !pl_isset(&msg->via.branch))
		return refuse(chk, 0, "No Via");

	why = request_syntax(msg);
	if (sipmend_bad_line(msg))
		err = refuse(chk, 400, "Bad Request-Line");
	else if (pl_strcmp(&msg->ver, "SIP/2.0"))
		err = refuse(chk, 505, "Version Not Supported");
	else if (why)
		err = refuse(chk, 400, why);
	else if (!scheme_known(&msg->ruri))
		err = refuse(chk, 416, "Unsupported URI Scheme");
	else if (pl_isset(&msg->maxfwd) && !pl_u32(&msg->maxfwd))
		err = refuse(chk, 483, "Too Many Hops");
	else if (loopmark_looped(msg))
		err = refuse(chk, 482, "Loop Detected");
	else if (sip_msg_hdr(msg, SIP_HDR_PROXY_REQUIRE))
		err = refuse(chk, 420, "Bad Extension");
	else if (!pl_isset(&msg->to.tag) && !method_known(&msg->met))
		err = refuse(chk, 501, "Not Implemented");
	else
		return 0;

	if (!pl_strcmp(&msg->met, "ACK"))
		chk->scode = 0;   /* an ACK is never answered */

	return err;
}


/** RFC 3261 7.2: three digits, 100 to 699 (libre wraps larger ones) */
static bool status_ok(const struct sip_msg *msg)
{
	struct pl code;

	/* libre's start line is "x SP y SP z": the code is y, up to its SP */
	code.p = msg->ver.p + msg->ver.l + 1;
	for (code.l = 0; code.p[code.l] != ' '; code.l++) {
		if (code.l == 3)
			return false;
	}

	return code.l == 3 && number_ok(&code, 699) && code.p[0] != '0';
}


/**
 * Check a response before the engine reads it.
 *
 * @param msg  The response (a body longer than Content-Length is cut)
 * @param chk  Set to why it is dropped when it is refused
 *
 * @return 0 if the response may go on, EPROTO if it is to be dropped
 */
int sipcheck_response(const struct sip_msg *msg, struct sipcheck *chk)
{
	const char *why = NULL;

	if (!msg || !chk)
		return EINVAL;

	if (pl_strcmp(&msg->ver, "SIP/2.0"))
		why = "Bad SIP Version";
	else if (!status_ok(msg))
		why = "Bad Status Code";
	else if (!pl_isset(&msg->via.sentby))
		why = "No Via";
	else
		why = syntax(msg);

	return why ? refuse(chk, 0, why) : 0;
}


struct tags {
	struct re_printf *pf;
	unsigned n;
	int err;
};


static bool tag_handler(const struct sip_hdr *hdr, const struct sip_msg *msg,
			void *arg)
{
	struct tags *tags = arg;
	(void)msg;

	tags->err |= re_hprintf(tags->pf, "%s%r", tags->n++ ? ", " : "",
				&hdr->val);
	return tags->err != 0;
}


/** The option tags of Proxy-Require, for Unsupported */
static int print_unsupported(struct re_printf *pf, const struct sip_msg *msg)
{
	struct tags tags = {pf, 0, 0};

	(void)sip_msg_hdr_apply(msg, true, SIP_HDR_PROXY_REQUIRE, tag_handler,
				&tags);
	return tags.err;
}


/**
 * The door itself: check a message, answer a refused request (statelessly)
 * or drop it, drop a refused response.
 *
 * @return true if the message must go no further
 */
bool sipcheck_refuse(struct sip *sip, const struct sip_msg *msg)
{
	struct sipcheck chk;
	int err;

	err = msg->req ? sipcheck_request(msg, &chk)
		       : sipcheck_response(msg, &chk);
	if (!err)
		return false;

	log_debug("sipcheck", "%J: %s %r %r (%r): %s%s", &msg->src,
		  msg->req ? "request" : "response",
		  msg->req ? &msg->met : &msg->ver,
		  msg->req ? &msg->ruri : &msg->cseq.met, &msg->callid,
		  chk.scode ? "" : "dropped: ", chk.reason);

	if (!chk.scode)
		return true;

	metrics_sip_response(chk.scode);
	if (chk.scode == 420)
		(void)sip_replyf(sip, msg, chk.scode, chk.reason,
				 "Unsupported: %H\r\n"
				 "Content-Length: 0\r\n\r\n",
				 print_unsupported, msg);
	else
		(void)sip_reply(sip, msg, chk.scode, chk.reason);

	return true;
}

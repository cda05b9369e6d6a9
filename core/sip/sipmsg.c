/**
 * @file sipmsg.c  Header rewriting: what the engine writes itself between the legs
 *
 * The headers that describe the path or the dialog's addressing the
 * engine always writes itself: Via (libre adds its own), Route and
 * Record-Route (each leg has its own route set, never shown to the
 * other), Contact (the engine's own, carrying the did), Call-ID (each leg
 * has its own), CSeq (mapped per leg), Max-Forwards (decremented),
 * Content-Length (recomputed), From and To (printed by the caller of
 * these helpers, tags included). Which of the others cross is
 * hdrfilter.c's whitelist.
 *
 * libre's parser already splits comma-separated Route/Record-Route values
 * into one sip_hdr each, so a route set is kept as the list of values
 * joined by ", " and printed back as one Route header.
 */
#include <string.h>
#include <re.h>
#include "did.h"
#include "dialog.h"
#include "sipmsg.h"


/**
 * Headers a hop owns, when a request is only forwarded to the node that
 * serves its dialog: everything else, Contact and Call-ID included, is
 * the endpoint's and must reach that node unchanged.
 */
bool sipmsg_is_hop(enum sip_hdrid id)
{
	switch (id) {

	case SIP_HDR_VIA:
	case SIP_HDR_ROUTE:
	case SIP_HDR_MAX_FORWARDS:
	case SIP_HDR_CONTENT_LENGTH:
		return true;

	default:
		return false;
	}
}


/** Copy every header for which skip() is false, in order. */
int sipmsg_copy_hdrs(struct mbuf *mb, const struct sip_msg *msg,
		     sipmsg_skip_h *skip)
{
	struct le *le;
	int err = 0;

	LIST_FOREACH(&msg->hdrl, le) {
		const struct sip_hdr *hdr = le->data;

		if (skip(hdr->id))
			continue;

		err |= mbuf_printf(mb, "%r: %r\r\n", &hdr->name, &hdr->val);
	}

	return err;
}


static bool copy_handler(const struct sip_hdr *hdr, const struct sip_msg *msg,
			 void *arg)
{
	(void)msg;
	return 0 != mbuf_printf(arg, "%r: %r\r\n", &hdr->name, &hdr->val);
}


/** Copy every instance of one header, in order. */
int sipmsg_copy_hdr(struct mbuf *mb, const struct sip_msg *msg,
		    enum sip_hdrid id)
{
	return sip_msg_hdr_apply(msg, true, id, copy_handler, mb) ? ENOMEM : 0;
}


struct route_ctx {
	struct mbuf *mb;
	int err;
};


static bool route_handler(const struct sip_hdr *hdr, const struct sip_msg *msg,
			  void *arg)
{
	struct route_ctx *ctx = arg;
	(void)msg;

	ctx->err |= mbuf_printf(ctx->mb, "%s%r", ctx->mb->end ? ", " : "",
				&hdr->val);
	return ctx->err != 0;
}


/**
 * The route set toward the sender of msg, from its Record-Route headers:
 * in order for a request (we are its UAS), reversed for a response.
 * Sets *routep to NULL when there is none.
 */
int sipmsg_route_set(char **routep, const struct sip_msg *msg, bool reverse)
{
	struct route_ctx ctx = {NULL, 0};
	int err;

	if (!routep || !msg)
		return EINVAL;

	*routep = mem_deref(*routep);
	if (!sip_msg_hdr(msg, SIP_HDR_RECORD_ROUTE))
		return 0;

	ctx.mb = mbuf_alloc(128);
	if (!ctx.mb)
		return ENOMEM;

	(void)sip_msg_hdr_apply(msg, !reverse, SIP_HDR_RECORD_ROUTE,
				route_handler, &ctx);
	err = ctx.err;
	if (err)
		goto out;

	ctx.mb->pos = 0;
	err = mbuf_strdup(ctx.mb, routep, ctx.mb->end);

 out:
	mem_deref(ctx.mb);
	return err;
}


/** The URI of the first entry of a stored route set. */
int sipmsg_route_first(struct pl *uri, const char *route)
{
	struct pl r;

	if (!uri || !route)
		return EINVAL;

	pl_set_str(&r, route);
	if (re_regex(r.p, r.l, "<[^>]+>", uri))
		return EBADMSG;

	return 0;
}


/** The URI of the (first) Contact of msg. */
int sipmsg_contact_uri(struct pl *uri, const struct sip_msg *msg)
{
	const struct sip_hdr *hdr = sip_msg_hdr(msg, SIP_HDR_CONTACT);
	struct sip_addr addr;

	if (!hdr)
		return ENOENT;

	if (sip_addr_decode(&addr, &hdr->val))
		return EBADMSG;

	*uri = addr.auri;
	return 0;
}


bool sipmsg_has_sdp(const struct sip_msg *msg)
{
	return mbuf_get_left(msg->mb) > 0 &&
		msg_ctype_cmp(&msg->ctyp, "application", "sdp");
}


/** The body, from the message's read position */
void sipmsg_body(struct pl *body, const struct sip_msg *msg)
{
	body->p = (const char *)mbuf_buf(msg->mb);
	body->l = mbuf_get_left(msg->mb);
}


/** The body as a new string (the message's read position is kept) */
int sipmsg_body_str(char **strp, const struct sip_msg *msg)
{
	struct pl body;

	sipmsg_body(&body, msg);

	return pl_strdup(strp, &body);
}


/** The engine's Contact toward one leg: its listener, the did, its key */
int sipmsg_print_contact(struct mbuf *mb, const struct dialog *dlg,
			 unsigned leg, const struct sa *laddr,
			 enum sip_transp tp)
{
	char user[DID_USER_SZ];
	int err;

	if (!dlg || leg > LEG_CALLEE)
		return EINVAL;

	err = did_contact_user(user, sizeof(user), dlg->did, leg,
			       dlg->leg[leg].contact_key);
	if (err)
		return err;

	return mbuf_printf(mb, "Contact: <sip:%s@%J%s>\r\n", user, laddr,
			   tp == SIP_TRANSP_TCP ? ";transport=tcp" : "");
}


/** Content-Type (if a body), Content-Length, the blank line and the body */
int sipmsg_print_body(struct mbuf *mb, const char *ctype, const char *body)
{
	size_t len = str_len(body);
	int err = 0;

	if (len && ctype)
		err |= mbuf_printf(mb, "Content-Type: %s\r\n", ctype);

	err |= mbuf_printf(mb, "Content-Length: %zu\r\n\r\n", len);
	if (len)
		err |= mbuf_write_mem(mb, (const uint8_t *)body, len);

	return err;
}


/** Requests that may change the sender's remote target (RFC 3261 12.2) */
bool sipmsg_is_target_refresh(const struct pl *met)
{
	return !pl_strcmp(met, "INVITE") || !pl_strcmp(met, "UPDATE");
}


/** Max-Forwards of msg, SIPMSG_MAX_FORWARDS when absent */
uint32_t sipmsg_max_forwards(const struct sip_msg *msg)
{
	return pl_isset(&msg->maxfwd) ? pl_u32(&msg->maxfwd)
		: SIPMSG_MAX_FORWARDS;
}


/**
 * Max-Forwards of the request relayed for msg: one less, and at most
 * SIPMSG_MAX_FORWARDS, what a request starts with: across B2BUA hops,
 * which change Call-ID and Via, only this ends a loop (loopmark.c).
 */
uint32_t sipmsg_max_forwards_next(const struct sip_msg *msg)
{
	uint32_t maxfwd = sipmsg_max_forwards(msg);

	return maxfwd ? MIN(maxfwd - 1, SIPMSG_MAX_FORWARDS) : 0;
}

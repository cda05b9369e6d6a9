/**
 * @file leg.c  Reaching one leg of a dialog: next hop, addresses, sending
 *
 * Everything the engine sends toward an endpoint, relayed or its own, goes
 * the same way: to the leg's first route, else its remote target; from the
 * listener of the leg's tag; with that leg's Call-ID; and, once libre has
 * picked the local address, with the engine's Contact for that leg. The
 * same file holds what an endpoint's messages teach the dialog about its
 * leg: a new remote target, a new SDP, the WebSocket connection it uses;
 * and whether a request is that leg's at all (leg_match()).
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "cseq.h"
#include "dialog.h"
#include "listener.h"
#include "sipmsg.h"
#include "loopmark.h"
#include "early.h"
#include "proxy.h"
#include "leg.h"

static struct sip *leg_sip;


void leg_init(struct sip *sip)
{
	leg_sip = sip;
}


enum dialog_leg_id leg_other(enum dialog_leg_id leg)
{
	return leg == LEG_CALLER ? LEG_CALLEE : LEG_CALLER;
}


const char *leg_callid(const struct dialog *dlg, enum dialog_leg_id leg,
			     char *buf, size_t sz)
{
	if (leg == LEG_CALLER)
		return dlg->callid;

	(void)dialog_callee_callid(buf, sz, dlg);
	return buf;
}


/** The tag of the party on a leg: the caller's From tag, the callee's */
static int party_tag(struct pl *tag, const struct dialog *dlg,
		     enum dialog_leg_id leg)
{
	if (leg == LEG_CALLER)
		return dialog_from_tag(dlg, tag);

	if (!dlg->to_tag)
		return ENOENT;

	pl_set_str(tag, dlg->to_tag);
	return 0;
}


/**
 * Is an in-dialog request leg `from`'s (RFC 3261 12.2.2)? Its Call-ID must
 * be that leg's, its From tag that leg's party's and its To tag the other
 * party's. The Request-URI named the leg and carried its Contact key,
 * which the caller of this function checked: the tags alone prove
 * nothing, as both cross unchanged and each party knows both.
 */
bool leg_match(const struct dialog *dlg, enum dialog_leg_id from,
	       const struct sip_msg *msg)
{
	char callid[LEG_CALLID_SZ];
	struct pl remote, local;

	if (party_tag(&remote, dlg, from) ||
	    party_tag(&local, dlg, leg_other(from)))
		return false;

	return !pl_strcmp(&msg->callid, leg_callid(dlg, from, callid,
						   sizeof(callid))) &&
		!pl_cmp(&msg->from.tag, &remote) &&
		!pl_cmp(&msg->to.tag, &local);
}


/** Our address toward a leg: the listener of its tag, else any of tp */
const struct sa *leg_laddr(const struct dialog *dlg,
				  enum dialog_leg_id leg, enum sip_transp tp)
{
	const struct listener *l;

	l = listener_by_tag(dlg->leg[leg].lsnr_tag, tp);
	if (!l)
		l = listener_by_tag(dlg->leg[leg].lsnr_tag, SIP_TRANSP_UDP);
	if (!l)
		l = listener_first();

	return l ? &l->own : NULL;
}


/**
 * The SDP of msg from leg `from` is what that leg has now, and what the
 * other leg gets, with the o= version that leg's offset gives (sdpver.c);
 * leg_body() then sends that.
 */
int leg_learn_sdp(struct dialog *dlg, enum dialog_leg_id from,
		   const struct sip_msg *msg)
{
	struct dialog_leg *to = &dlg->leg[leg_other(from)];
	char *sdp = NULL, *out = NULL;
	int err;

	if (!sipmsg_has_sdp(msg))
		return 0;

	err = sipmsg_body_str(&sdp, msg);
	if (!err)
		err = dialog_sdp_out(&out, dlg, leg_other(from), sdp, false);
	if (err) {
		mem_deref(sdp);
		return err;
	}

	mem_deref(dlg->leg[from].sdp_in);
	mem_deref(to->sdp_out);
	dlg->leg[from].sdp_in = sdp;
	to->sdp_out = out;

	return 0;
}


/**
 * Leg `to` was sent `sdp` instead of the other leg's (a media relay's):
 * it is what that leg has now, with the o= version the leg's offset gives;
 * `own`: the engine chose it (a media move), so a changed description
 * gets a version above the last one sent (sdpver.c).
 */
int leg_sent_sdp(struct dialog *dlg, enum dialog_leg_id to, const char *sdp,
		 bool own)
{
	struct dialog_leg *leg = &dlg->leg[to];
	char *copy = NULL, *out = NULL;
	int err;

	err = str_dup(&copy, sdp);
	if (!err)
		err = dialog_sdp_out(&out, dlg, to, copy, own);
	mem_deref(copy);
	if (err)
		return err;

	mem_deref(leg->sdp_out);
	leg->sdp_out = out;

	return 0;
}


/**
 * The body to send leg `to` for msg's: its own, but an SDP that
 * leg_learn_sdp() learned goes with the leg's o= version.
 */
void leg_body(struct pl *body, const struct dialog *dlg,
	      enum dialog_leg_id to, const struct sip_msg *msg, bool learned)
{
	const struct dialog_leg *leg = &dlg->leg[to];

	if (learned && dialog_sdp_off(dlg, to) && leg->sdp_out &&
	    sipmsg_has_sdp(msg)) {
		pl_set_str(body, leg->sdp_out);
		return;
	}

	body->p = (const char *)mbuf_buf(msg->mb);
	body->l = mbuf_get_left(msg->mb);
}


/**
 * The session timer (RFC 4028) the endpoints agreed on, from the 2xx to an
 * INVITE or UPDATE sent by leg `uac`: its interval and who refreshes
 * ("uac": the sender, "uas": the other leg). A 2xx without one turns it
 * off. The engine's own re-INVITEs repeat it (proxy.c), so that a
 * re-home leaves it as it was.
 *
 * @return true if it changed
 */
bool leg_learn_timer(struct dialog *dlg, enum dialog_leg_id uac,
		     const struct sip_msg *resp)
{
	const struct sip_hdr *hdr;
	uint32_t se = 0, refresher = dialog_se_refresher(dlg);
	struct pl val, ref;

	hdr = sip_msg_hdr(resp, SIP_HDR_SESSION_EXPIRES);
	if (hdr && !re_regex(hdr->val.p, hdr->val.l, "[0-9]+", &val)) {
		se = pl_u32(&val);
		refresher = leg_other(uac);
		if (!msg_param_decode(&hdr->val, "refresher", &ref) &&
		    !pl_strcasecmp(&ref, "uac"))
			refresher = uac;
	}

	if (se == dialog_se(dlg) && refresher == dialog_se_refresher(dlg))
		return false;

	return !dialog_set_se(dlg, se, refresher);
}


/** What the endpoint of `leg` accepts, from the Allow of its INVITE/2xx */
void leg_learn_allow(struct dialog *dlg, enum dialog_leg_id leg,
		     const struct sip_msg *msg)
{
	const struct sip_hdr *hdr = sip_msg_hdr(msg, SIP_HDR_ALLOW);
	struct dialog_leg *dl = &dlg->leg[leg];
	struct le *le;

	if (!hdr)
		return;   /* nothing said: what we knew stays */

	dl->caps &= ~(uint32_t)DIALOG_CAP_UPDATE;
	for (le = list_head(&msg->hdrl); le; le = le->next) {
		const struct sip_hdr *h = le->data;
		struct pl rest, tok;

		if (h->id != SIP_HDR_ALLOW)
			continue;

		rest = h->val;
		while (!re_regex(rest.p, rest.l, "[^, \t]+", &tok)) {
			if (!pl_strcasecmp(&tok, "UPDATE"))
				dl->caps |= DIALOG_CAP_UPDATE;
			pl_advance(&rest, (size_t)(tok.p + tok.l - rest.p));
		}
	}
}


int leg_learn_target(struct dialog *dlg, enum dialog_leg_id leg,
		      const struct sip_msg *msg)
{
	struct pl uri;

	if (sipmsg_contact_uri(&uri, msg))
		return 0;

	leg_learn_allow(dlg, leg, msg);
	if (dlg->leg[leg].target && !pl_strcmp(&uri, dlg->leg[leg].target))
		return 0;

	return dialog_set_id(dlg, DIALOG_ID_CALLER_TARGET + leg, &uri);
}


/*
 * libre calls this once it has chosen the local address: the right moment
 * to mark our Via (loopmark.c), write our Contact, and learn which
 * listener the leg uses.
 */
int leg_send_handler(enum sip_transp tp, const struct sa *src,
			const struct sa *dst, struct mbuf *mb, void *arg)
{
	struct proxy_dest *dest = arg;
	struct dialog_leg *leg = &dest->dlg->leg[dest->to];
	const struct listener *l;
	int err;

	err = loopmark_add(mb);
	if (err || dest->forward)
		return err;

	if (dest->to == LEG_CALLEE)
		early_note_sent(dest->dlg, mb, dst);

	leg->tp = tp;
	if (!leg->lsnr_tag) {
		l = listener_by_addr(src, tp);
		if (l)
			(void)dialog_atom_str(&leg->lsnr_tag, l->tag);
	}

	if (!dest->contact)
		return 0;

	return sipmsg_print_contact(mb, dest->dlg, dest->to, src, tp);
}


/**
 * A WebSocket client cannot be connected to (its Contact host is often
 * made up, RFC 7118 5.2): requests toward it ride the connection it came
 * on, found by its address. Only the node holding that connection has it.
 */
int leg_learn_flow(struct dialog *dlg, enum dialog_leg_id leg,
		   const struct sip_msg *msg)
{
	char *flow = NULL;
	int err;

	if (msg->tp != SIP_TRANSP_WS && msg->tp != SIP_TRANSP_WSS)
		return 0;

	err = re_sdprintf(&flow, "sip:%J%s", &msg->src,
			  sip_transp_param(msg->tp));
	if (!err)
		err = dialog_set_flow(dlg, leg, flow);

	mem_deref(flow);
	return err;
}


/** The next hop toward a leg: its connection, its first route, else its
 * target. */
int leg_hop(struct pl *hop, const struct dialog *dlg, enum dialog_leg_id id)
{
	const struct dialog_leg *leg = &dlg->leg[id];
	const char *flow = dialog_flow(dlg, id), *route = dialog_route(dlg, id);

	if (flow) {
		pl_set_str(hop, flow);
		return 0;
	}

	if (route)
		return sipmsg_route_first(hop, route);

	if (!leg->target)
		return EINVAL;

	pl_set_str(hop, leg->target);
	return 0;
}


/* libre routes sip: URIs only; a sips: hop is the same host over TLS */
static void route_secure(struct uri *uri)
{
	if (pl_strcasecmp(&uri->scheme, "sips"))
		return;

	pl_set_str(&uri->scheme, "sip");
	pl_set_str(&uri->params, ";transport=tls");
}


/** Send a request; stateful when there is a response handler. */
int leg_send(struct sip_request **reqp, const struct pl *met,
			const char *ruri, const struct pl *hop,
			struct mbuf *mb, sip_resp_h *resph, void *arg)
{
	struct uri uri;
	int err;

	err = uri_decode(&uri, hop);
	if (err)
		return err;

	route_secure(&uri);
	mb->pos = 0;
	return sip_request(reqp, leg_sip, resph != NULL, met->p,
			   (int)met->l, ruri, (int)str_len(ruri), &uri, mb, 0,
			   leg_send_handler, resph, arg);
}


int leg_print_route(struct mbuf *mb, const char *route)
{
	return route ? mbuf_printf(mb, "Route: %s\r\n", route) : 0;
}


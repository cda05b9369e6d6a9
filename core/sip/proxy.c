/**
 * @file proxy.c  The SIP path: requests and responses between the legs
 *
 * rehomed is a topology-hiding, dialog-stateful proxy that behaves toward
 * each leg as the endpoint itself: every request from one leg is received
 * by a server transaction and sent to the other leg as a new request
 * (relay.c, over leg.c); its responses come back and are answered on the
 * server transaction. Only ACK for a 2xx crosses statelessly, as in any
 * UA. Because every message is rebuilt, nothing that describes the other
 * side's path (Via, Record-Route, Route, Contact, the callee leg's
 * Call-ID) ever leaks; of the other headers only a whitelist crosses
 * (hdrfilter.c).
 *
 * This file decides: what a request is (initial INVITE, in-dialog, for the
 * engine itself, malformed), who serves it (this node, the dialog's owner
 * node, nobody for now), and what the engine sends on its own (BYE on
 * dialog timeout, the requests re-homing needs).
 *
 * Each leg gets the engine's own Contact, "rh-<did>-<a|b>-<key>" at the
 * listener of that leg's tag, so in-dialog requests arrive with the dialog
 * id in the Request-URI: no Call-ID table is needed, and any node with a
 * listener of the same tag can serve them after the call moved. The key,
 * random per leg and replicated, and the leg's Call-ID and tags, must all
 * match: the did alone is known to both endpoints (did.c).
 *
 * The dialog (dialog.c) holds only data another node can continue from;
 * the transactions in flight are node-local and die with the node, which
 * is why engine-originated requests (proxy_request) build everything from
 * the dialog alone.
 *
 * Retransmissions: libre's server transactions absorb requests and resend
 * responses; a 2xx to INVITE is resent by the engine itself until the
 * ACK of the endpoint it answers, and each copy of a 2xx the engine has
 * ACKed gets the same ACK again (reliable.c).
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "listener.h"
#include "sipmsg.h"
#include "hdrfilter.h"
#include "sipcheck.h"
#include "sipmend.h"
#include "randbuf.h"
#include "loopmark.h"
#include "nict.h"
#include "metrics.h"
#include "proxy.h"
#include "leg.h"
#include "linger.h"
#include "reliable.h"
#include "relay.h"
#include "anchor.h"
#include "early.h"
#include "fork.h"
#include "wsconn.h"

enum {
	SWEEP_MS  = 1000,
	RURI_SZ   = 512,
	HOP_SZ    = 96,   /* "sip:[IPv6]:port;transport=tcp" */
	SE_MIN    = 90,   /* s, the lowest Min-SE (RFC 4028 4) */
};

static struct {
	struct sip *sip;
	const struct rh_conf *cfg;
	struct sip_lsnr *lsnr_req;
	struct sip_lsnr *lsnr_resp;
	struct tmr sweep;
	proxy_route_h *routeh;
	void *route_arg;
	proxy_serve_h *serveh;
	void *serve_arg;
	proxy_act_h *acth;
	void *act_arg;
} proxy;


/** A stateless answer of the engine's own */
static void reply(const struct sip_msg *msg, uint16_t scode,
		  const char *reason)
{
	metrics_sip_response(scode);
	(void)sip_reply(proxy.sip, msg, scode, reason);
}


/* ---- initial INVITE ------------------------------------------------ */


static bool is_own_address(const struct uri *uri, enum sip_transp tp)
{
	struct sa sa;

	if (sa_set(&sa, &uri->host, uri->port ? uri->port : SIP_PORT))
		return false;

	return listener_by_addr(&sa, tp) != NULL;
}


/**
 * The caller's target: its Contact, or its From URI for an RFC 2543 UA,
 * which may leave Contact out (RFC 3261 8.1.1.8 requires it only since).
 */
static int target_of_invite(struct pl *uri, const struct sip_msg *msg)
{
	int err = sipmsg_contact_uri(uri, msg);

	if (err == ENOENT && sipmend_is_rfc2543(msg)) {
		*uri = msg->from.auri;
		return 0;
	}

	return err ? EBADMSG : 0;
}


static int dialog_from_invite(struct dialog **dlgp, const struct sip_msg *msg,
			      const char *lsnr_tag, const char *shtag)
{
	struct dialog *dlg = NULL;
	struct dialog_leg *caller;
	char *route = NULL;
	struct pl contact;
	uint64_t did;
	int err;

	do {
		did = did_new();
	} while (dialog_lookup(did));

	err = dialog_alloc(&dlg, did);
	if (err)
		return err;

	caller = &dlg->leg[LEG_CALLER];
	err = target_of_invite(&contact, msg);
	if (!err)
		err = dialog_set_ids(dlg, (const struct pl *[DIALOG_IDS]){
			[DIALOG_ID_CALLID] = &msg->callid,
			[DIALOG_ID_FROM] = &msg->from.val,
			[DIALOG_ID_TO] = &msg->to.val,
			[DIALOG_ID_CALLER_TARGET] = &contact});
	err |= dialog_atom_str(&dlg->shtag, shtag);
	err |= dialog_serve(dlg, proxy.cfg->node_id);
	err |= dialog_atom_str(&caller->lsnr_tag, lsnr_tag);
	err |= sipmsg_route_set(&route, msg, false);
	err |= dialog_set_route(dlg, LEG_CALLER, route);
	err |= leg_learn_sdp(dlg, LEG_CALLER, msg);
	if (err)
		goto out;

	leg_learn_allow(dlg, LEG_CALLER, msg);

	caller->tp = msg->tp;
	caller->cseq.rseq = msg->cseq.num;
	err = leg_learn_flow(dlg, LEG_CALLER, msg);

 out:
	mem_deref(route);
	if (err)
		mem_deref(dlg);
	else
		*dlgp = dlg;

	return err;
}


static void reply_route_reject(const struct sip_msg *msg,
			       const struct proxy_route *rt)
{
	const char *reason = rt->reason[0] ? rt->reason : "Rejected";

	if (!rt->retry_after) {
		reply(msg, rt->reject, reason);
		return;
	}

	metrics_sip_response(rt->reject);
	(void)sip_replyf(proxy.sip, msg, rt->reject, reason,
			 "Retry-After: %u\r\nContent-Length: 0\r\n\r\n",
			 rt->retry_after);
}


static void initial_invite(const struct sip_msg *msg)
{
	const struct listener *lsnr;
	struct proxy_route rt;
	struct dialog *dlg = NULL;
	struct relay *r = NULL;
	char ruri[RURI_SZ];
	struct uri uri;
	struct pl hop;
	int err;

	if (!sip_msg_hdr(msg, SIP_HDR_CONTACT) && !sipmend_is_rfc2543(msg)) {
		reply(msg, 400, "Missing Contact");
		return;
	}

	lsnr = listener_by_addr(&msg->dst, msg->tp);
	if (!lsnr)
		lsnr = listener_first();

	memset(&rt, 0, sizeof(rt));
	if (proxy.routeh)
		proxy.routeh(msg, lsnr->tag, &rt, proxy.route_arg);
	if (rt.reject) {
		reply_route_reject(msg, &rt);
		return;
	}

	if (!rt.target[0] && proxy.cfg->has_upstream)
		str_ncpy(rt.target, proxy.cfg->upstream_uri, sizeof(rt.target));

	(void)re_snprintf(ruri, sizeof(ruri), "%r", &msg->ruri);
	pl_set_str(&hop, rt.target[0] ? rt.target : ruri);
	if (uri_decode(&uri, &hop) || (pl_strcasecmp(&uri.scheme, "sip") &&
					pl_strcasecmp(&uri.scheme, "sips"))) {
		reply(msg, 416, "Unsupported URI Scheme");
		return;
	}
	if (is_own_address(&uri, msg->tp)) {
		reply(msg, 482, "Loop Detected");
		return;
	}

	err = dialog_from_invite(&dlg, msg, lsnr->tag,
				 rt.shtag[0] ? rt.shtag :
				 proxy.cfg->default_shtag);
	if (err) {
		reply(msg, 400, "Bad Request");
		return;
	}

	/* for another node to end the call if this one dies ringing */
	(void)early_note_invite(dlg, msg);

	if (anchor_enabled() && !rt.no_media && anchor_choose(dlg)) {
		dialog_log(LOG_WARN, "media", dlg, "INVITE refused: no media "
			   "relay is up");
		metrics_sip_response(503);
		(void)sip_replyf(proxy.sip, msg, 503, "Service Unavailable",
				 "Retry-After: 5\r\nContent-Length: 0\r\n\r\n");
		goto out;
	}

	err = relay_alloc(&r, dlg, msg, LEG_CALLER);
	if (err) {
		reply(msg, 500, "Server Internal Error");
		goto out;
	}

	r->initial = true;
	(void)sip_treply(&r->st, proxy.sip, msg, 100, "Trying");

	err = dialog_start(dlg);
	if (!err)
		err = relay_send(r, ruri, &hop);
	if (err) {
		dialog_log(LOG_WARN, "proxy", dlg, "INVITE: cannot relay to "
			   "%r: %m", &hop, err);
		relay_failed(r, err);
		mem_deref(r);
	}
	else {
		/* r lives until its final response */
		dialog_log(LOG_DEBUG, "proxy", dlg, "INVITE from %J relayed to "
			   "%r", &msg->src, &hop);
	}

 out:
	mem_deref(dlg);
}


/* ---- in-dialog requests ------------------------------------------- */


/**
 * The dialog and leg an in-dialog request belongs to: the R-URI names
 * them and must carry that leg's Contact key, and the Call-ID and tags
 * must be the leg's. Anything less is no dialog of ours (481).
 */
static struct dialog *dialog_of_request(const struct sip_msg *msg,
					enum dialog_leg_id *fromp)
{
	struct dialog *dlg;
	uint64_t did, key;
	unsigned leg;

	if (did_contact_user_decode(&did, &leg, &key, &msg->uri.user))
		return NULL;

	dlg = dialog_lookup(did);
	if (!dlg || key != dlg->leg[leg].contact_key ||
	    !leg_match(dlg, leg, msg))
		return NULL;

	*fromp = leg;
	return dlg;
}


/*
 * The dialog is served by another live node (we hold a replica): pass the
 * request on to it unchanged but for the hop headers, and its responses
 * back. The owner renumbers, rewrites and replicates; we change nothing.
 */
static void forward_to_owner(struct dialog *dlg, const struct sip_msg *msg,
			     enum dialog_leg_id from, const struct sa *owner)
{
	bool ack = !pl_strcmp(&msg->met, "ACK");
	uint32_t maxfwd = sipmsg_max_forwards(msg);
	struct relay *r = NULL;
	char ruri[RURI_SZ], hopstr[HOP_SZ];
	struct mbuf *mb;
	struct pl hop, body;
	int err;

	if (maxfwd <= 1) {
		if (!ack)
			reply(msg, 483, "Too Many Hops");
		return;
	}

	mb = mbuf_alloc(1024);
	if (!mb)
		return;

	body.p = (const char *)mbuf_buf(msg->mb);
	body.l = mbuf_get_left(msg->mb);
	err  = mbuf_printf(mb, "Max-Forwards: %u\r\n",
			   sipmsg_max_forwards_next(msg));
	err |= sipmsg_copy_hdrs(mb, msg, sipmsg_is_hop);
	err |= mbuf_printf(mb, "Content-Length: %zu\r\n\r\n%r", body.l,
			   &body);
	if (err)
		goto out;

	(void)re_snprintf(ruri, sizeof(ruri), "%r", &msg->ruri);
	(void)re_snprintf(hopstr, sizeof(hopstr), "sip:%J%s", owner,
			  sip_transp_param(msg->tp));
	pl_set_str(&hop, hopstr);

	if (!ack) {
		err = relay_alloc(&r, dlg, msg, from);
		if (err)
			goto out;
		r->dest.forward = true;
	}

	err = ack ? leg_send(NULL, &msg->met, ruri, &hop, mb, NULL,
				 &(struct proxy_dest){dlg, from, false, true})
		  : relay_request(r, ruri, &hop, mb);
	if (err && r) {
		relay_failed(r, err);
		mem_deref(r);
	}

 out:
	mem_deref(mb);
}


static void in_dialog(const struct sip_msg *msg)
{
	enum dialog_leg_id from = LEG_CALLER;
	struct sa owner;
	bool ack = !pl_strcmp(&msg->met, "ACK");
	struct dialog *dlg;
	struct relay *r = NULL;
	struct dialog_leg *to;
	struct pl hop;
	int err;

	dlg = dialog_of_request(msg, &from);
	if (!dlg || dlg->state == DIALOG_ENDED) {
		if (!ack)
			reply(msg, 481,
					"Call/Transaction Does Not Exist");
		return;
	}

	switch (proxy.serveh ? proxy.serveh(dlg, msg, from, &owner,
					     proxy.serve_arg) : PROXY_SERVE) {

	case PROXY_SERVE:
		break;

	case PROXY_FORWARD:
		forward_to_owner(dlg, msg, from, &owner);
		return;

	case PROXY_HOLD:
		/* nobody may change the dialog now (its tag is moving) */
		if (!ack) {
			metrics_sip_response(503);
			(void)sip_replyf(proxy.sip, msg, 503,
					 "Service Unavailable",
					 "Retry-After: 1\r\n"
					 "Content-Length: 0\r\n\r\n");
		}
		return;
	}

	if (cseq_recv(&dlg->leg[from].cseq, msg->cseq.num, ack)) {
		reply(msg, 500, "CSeq Out of Order");
		return;
	}

	if (ack) {
		relay_ack(dlg, msg, from);
		return;
	}

	if (!pl_strcmp(&msg->met, "CANCEL")) {
		reply(msg, 481,
				"Call/Transaction Does Not Exist");
		return;
	}

	/* rehome: while the engine's own re-INVITE is pending, an
	 * endpoint's INVITE/UPDATE is glare (RFC 3261 14.1), and a BYE is
	 * relayed and aborts the re-home, which notices the lock broken */
	if (dialog_pending(dlg) && sipmsg_is_target_refresh(&msg->met)) {
		metrics_sip_response(491);
		/* stateful, so that libre absorbs the ACK of the 491 */
		(void)sip_treply(NULL, proxy.sip, msg, 491, "Request Pending");
		return;
	}
	if (!pl_strcmp(&msg->met, "BYE"))
		dialog_lock_break(dlg);

	err = relay_alloc(&r, dlg, msg, from);
	if (err) {
		reply(msg, 500, "Server Internal Error");
		return;
	}

	if (!pl_strcmp(&msg->met, "INVITE"))
		(void)sip_treply(&r->st, proxy.sip, msg, 100, "Trying");

	if (sipmsg_is_target_refresh(&msg->met))
		(void)leg_learn_target(dlg, from, msg);
	(void)leg_learn_flow(dlg, from, msg);
	(void)leg_learn_sdp(dlg, from, msg);

	to = &dlg->leg[r->dest.to];
	err = leg_hop(&hop, dlg, r->dest.to);
	if (!err)
		err = relay_send(r, to->target, &hop);
	if (err) {
		relay_failed(r, err);
		mem_deref(r);
		return;
	}

	dialog_changed(dlg, DIALOG_EV_UPDATED);
}


/* ---- entry points --------------------------------------------------- */


static void reply_options(const struct sip_msg *msg)
{
	metrics_sip_response(200);
	(void)sip_treplyf(NULL, NULL, proxy.sip, msg, false, 200, "OK",
			  "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, "
			  "INFO, PRACK, REFER, NOTIFY\r\n"
			  "Accept: application/sdp\r\n"
			  "Content-Length: 0\r\n\r\n");
}


static bool request_handler(const struct sip_msg *msg, void *arg)
{
	(void)arg;

	metrics_sip_request(&msg->met);
	wsconn_touch(msg);

	/* malformed, out of hops, looped, unsupported: answered or dropped */
	if (sipcheck_refuse(proxy.sip, msg))
		return true;

	if (pl_isset(&msg->to.tag)) {
		in_dialog(msg);
		return true;
	}

	if (!pl_strcmp(&msg->met, "INVITE")) {
		initial_invite(msg);
	}
	else if (!pl_strcmp(&msg->met, "OPTIONS")) {
		reply_options(msg);
	}
	else if (!pl_strcmp(&msg->met, "ACK")) {
		/* stray ACK: nothing to answer */
	}
	else if (!pl_strcmp(&msg->met, "CANCEL")) {
		reply(msg, 481,
				"Call/Transaction Does Not Exist");
	}
	else {
		(void)sip_replyf(proxy.sip, msg, 405, "Method Not Allowed",
				 "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
				 "Content-Length: 0\r\n\r\n");
	}

	return true;
}


/*
 * A response no client transaction wanted: a response to one of our own
 * non-INVITE transactions, or a copy of a 2xx to INVITE (its client
 * transaction ended with the first one), which reliable.c answers, or a
 * 2xx of another branch of a forked INVITE, which fork.c ends.
 */
static bool response_handler(const struct sip_msg *msg, void *arg)
{
	(void)arg;

	wsconn_touch(msg);
	if (sipcheck_refuse(proxy.sip, msg) || nict_response(msg))
		return true;

	if (!reliable_stray(msg))
		(void)fork_answer(proxy.sip, msg);

	return true;
}


/* ---- requests of the engine's own ----------------------------------- */


/**
 * The session timer the endpoints agreed on, in a refresh of the engine's
 * own toward leg `to` (RFC 4028 7.4): the same interval, and the same
 * endpoint refreshing ("uas": the leg we send to; "uac": the other one,
 * for which the engine stands); nothing if they agreed on none.
 */
static int print_timer(struct mbuf *mb, const struct dialog *dlg,
		       enum dialog_leg_id to)
{
	uint32_t se = dialog_se(dlg);

	if (!se)
		return 0;

	return mbuf_printf(mb, "Supported: timer\r\n"
			   "Session-Expires: %u;refresher=%s\r\n"
			   "Min-SE: %u\r\n", se,
			   dialog_se_refresher(dlg) == (uint32_t)to ?
			   "uas" : "uac", MIN(se, (uint32_t)SE_MIN));
}


/**
 * The headers of a request of the engine's own toward leg `to`, after the
 * Via: the leg's route set, From/To as that leg knows them (our side is the
 * other party), the leg's Call-ID, the given CSeq, and the body.
 */
static int own_request_build(struct mbuf **mbp, const struct dialog *dlg,
			     enum dialog_leg_id to, const struct pl *met,
			     uint32_t cseq, const char *ctype,
			     const char *body)
{
	char callid[LEG_CALLID_SZ];
	struct mbuf *mb;
	int err;

	mb = mbuf_alloc(512 + str_len(body));
	if (!mb)
		return ENOMEM;

	err  = leg_print_route(mb, dialog_route(dlg, to));
	err |= mbuf_printf(mb, "Max-Forwards: %u\r\n", SIPMSG_MAX_FORWARDS);
	if (to == LEG_CALLEE)
		err |= mbuf_printf(mb, "From: %s\r\nTo: %s;tag=%s\r\n",
				   dlg->from, dlg->to, dlg->to_tag);
	else
		err |= mbuf_printf(mb, "From: %s;tag=%s\r\nTo: %s\r\n",
				   dlg->to, dlg->to_tag, dlg->from);
	err |= mbuf_printf(mb, "Call-ID: %s\r\nCSeq: %u %r\r\n",
			   leg_callid(dlg, to, callid, sizeof(callid)), cseq,
			   met);
	if (!pl_strcmp(met, "INVITE") || !pl_strcmp(met, "UPDATE"))
		err |= print_timer(mb, dlg, to);
	err |= sipmsg_print_body(mb, ctype, body);

	if (err)
		mem_deref(mb);
	else
		*mbp = mb;

	return err;
}


/**
 * Send a request of the engine's own into a dialog, built from the
 * dialog alone (so it works on any node holding it): the leg's target and
 * route set, From/To as that leg knows them, the leg's Call-ID, the next
 * CSeq toward it and our Contact. `dest` is the first member of the
 * caller's context, which resph gets as its argument.
 */
int proxy_request(struct sip_request **reqp, struct proxy_dest *dest,
		  const char *met, const char *ctype, const char *body,
		  sip_resp_h *resph)
{
	struct dialog *dlg = dest->dlg;
	struct dialog_leg *to = &dlg->leg[dest->to];
	struct mbuf *mb = NULL;
	struct pl hop, mpl;
	int err;

	err = leg_hop(&hop, dlg, dest->to);
	if (err)
		return err;

	pl_set_str(&mpl, met);
	err = own_request_build(&mb, dlg, dest->to, &mpl,
				cseq_originate(&to->cseq,
					       !str_cmp(met, "INVITE")),
				ctype, body);
	if (err)
		return err;

	dest->contact = !str_cmp(met, "INVITE") || !str_cmp(met, "UPDATE");
	err = leg_send(reqp, &mpl, to->target, &hop, mb, resph, dest);
	if (!err)
		dialog_changed(dlg, DIALOG_EV_UPDATED);

	mem_deref(mb);
	return err;
}


/**
 * ACK the 2xx to the engine's own INVITE on a leg, statelessly; the ACK is
 * kept to send again for that 2xx's copies.
 */
int proxy_ack(struct dialog *dlg, enum dialog_leg_id to, const char *ctype,
	      const char *body)
{
	struct dialog_leg *leg = &dlg->leg[to];
	uint32_t cseq = cseq_relay_ack(&leg->cseq);
	struct mbuf *mb = NULL;
	struct pl hop, met = PL("ACK");
	int err;

	err = leg_hop(&hop, dlg, to);
	if (err)
		return err;

	err = own_request_build(&mb, dlg, to, &met, cseq, ctype, body);
	if (err)
		return err;

	err = reliable_ack(dlg, to, cseq, leg->target, &hop, mb);

	mem_deref(mb);
	return err;
}


struct hangup {
	struct proxy_dest dest;    /* first: see proxy_dest */
	struct sip_request *req;
};


static void hangup_destructor(void *arg)
{
	struct hangup *h = arg;

	mem_deref(h->req);
	mem_deref(h->dest.dlg);
}


static void hangup_response(int err, const struct sip_msg *msg, void *arg)
{
	(void)err;
	(void)msg;
	mem_deref(arg);
}


/** A BYE of the engine's to one leg, in the dialog's state as it is */
int proxy_bye(struct dialog *dlg, enum dialog_leg_id leg)
{
	struct hangup *h;
	int err;

	h = mem_zalloc(sizeof(*h), hangup_destructor);
	if (!h)
		return ENOMEM;

	h->dest.dlg = mem_ref(dlg);
	h->dest.to = leg;
	err = proxy_request(&h->req, &h->dest, "BYE", NULL, NULL,
			    hangup_response);
	if (err)
		mem_deref(h);

	return err;
}


/** End a confirmed call from the engine's side: BYE to both legs. */
int proxy_hangup(struct dialog *dlg, const char *why)
{
	int err = 0;

	if (!dlg || dlg->state == DIALOG_ENDED)
		return EINVAL;

	dialog_log(LOG_INFO, "proxy", dlg, "hanging up (%s)", why);

	for (int leg = LEG_CALLER; dlg->state == DIALOG_CONFIRMED &&
		     leg <= LEG_CALLEE; leg++) {
		int e = proxy_bye(dlg, (enum dialog_leg_id)leg);

		if (e)
			err = e;
	}

	(void)dialog_end(dlg);
	return err;
}


/* ---- timers ----------------------------------------------------------- */


/* a dialog this node may not act for (fenced) waits for the next sweep */
static bool expired(struct dialog *dlg, void *arg)
{
	const uint64_t *deadline = arg;

	if (dlg->updated >= *deadline)
		return false;

	return dlg->replica || !proxy.acth || proxy.acth(dlg, proxy.act_arg);
}


/**
 * A dialog without activity for dialog_timeout: a call is hung up, a
 * ringing one cancelled as on Timer C, and a replica, whose owner would
 * have said something by now, forgotten here without a word.
 */
static void dialog_expired(struct dialog *dlg)
{
	if (dlg->replica) {
		log_debug("proxy", "%016llx: replica not updated for "
			  "dialog_timeout: dropped",
			  (unsigned long long)dlg->did);
		(void)dialog_end(dlg);
	}
	else if (dlg->state == DIALOG_CONFIRMED) {
		(void)proxy_hangup(dlg, "dialog timeout");
	}
	else if (relay_ring_end(dlg)) {
		(void)dialog_end(dlg);
	}
}


static void sweep_handler(void *arg)
{
	uint64_t deadline;
	struct dialog *dlg;
	(void)arg;

	tmr_start(&proxy.sweep, SWEEP_MS, sweep_handler, NULL);

	linger_tick();
	relay_tick(proxy.cfg->ring_timeout);

	deadline = dialog_now() - (uint64_t)proxy.cfg->dialog_timeout * 1000;

	/* one at a time: ending a dialog changes the table under the walk */
	while ((dlg = dialog_apply(expired, &deadline)) != NULL)
		dialog_expired(dlg);
}


/* ---- set-up ----------------------------------------------------------- */


int proxy_init(struct sip *sip, const struct rh_conf *cfg)
{
	int err;

	proxy.sip = sip;
	proxy.cfg = cfg;
	randbuf_init();

	err = sipmend_init();
	if (err)
		return err;

	leg_init(sip);
	relay_init(sip);
	early_init(sip);
	hdrfilter_init(cfg);

	err = nict_init(sip);
	if (err)
		return err;

	err = reliable_init(sip);
	if (err)
		return err;

	err = sip_listen(&proxy.lsnr_req, sip, true, request_handler, NULL);
	if (err)
		return err;

	err = sip_listen(&proxy.lsnr_resp, sip, false, response_handler, NULL);
	if (err)
		return err;

	tmr_start(&proxy.sweep, SWEEP_MS, sweep_handler, NULL);
	return 0;
}


void proxy_close(void)
{
	tmr_cancel(&proxy.sweep);
	linger_close();
	reliable_close();
	proxy.lsnr_req = mem_deref(proxy.lsnr_req);
	proxy.lsnr_resp = mem_deref(proxy.lsnr_resp);
	nict_close();
	loopmark_close();
	proxy.routeh = NULL;
	proxy.serveh = NULL;
}


void proxy_set_route_handler(proxy_route_h *h, void *arg)
{
	proxy.routeh = h;
	proxy.route_arg = arg;
}


/** Who says whether this node may end a dialog on its own (fencing) */
void proxy_set_act_handler(proxy_act_h *h, void *arg)
{
	proxy.acth = h;
	proxy.act_arg = arg;
}


void proxy_set_serve_handler(proxy_serve_h *h, void *arg)
{
	proxy.serveh = h;
	proxy.serve_arg = arg;
}


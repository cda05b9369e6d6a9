/**
 * @file relay.c  One request crossing from one leg to the other
 *
 * Every request from an endpoint (but ACK for a 2xx) is received by a
 * libre server transaction and sent to the other leg as a new request
 * through a client transaction; a `struct relay` ties the two together.
 * The other leg's responses come back through the client transaction,
 * teach the dialog what changed (tags, targets, SDP), and are rebuilt for
 * the sender: its own Via, From, To, Call-ID and CSeq, our Contact, and
 * every other header of the response verbatim.
 *
 * Answered transactions linger in linger.c's one-second buckets instead
 * of on libre's own per-transaction timers (see strans_answer() and
 * nict.c), with only what absorbing retransmissions needs. A 2xx to INVITE
 * is kept until the sender's ACK, which alone crosses to the other leg
 * (reliable.c).
 *
 * Timer C (RFC 3261 16.6, 16.8): an INVITE without a final answer after
 * `ring_timeout` seconds is cancelled toward the other leg (libre sends
 * the CANCEL once the leg has answered provisionally, and ACKs its 487)
 * and answered 408 to the sender, and the relay goes; an early dialog
 * reaped by `dialog_timeout` ends the same way. INVITEs in flight wait in
 * one list, oldest first, checked by the proxy's one-second tick: as the
 * timeout is the same for all, only those due are looked at.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "cseq.h"
#include "dialog.h"
#include "sipmsg.h"
#include "hdrfilter.h"
#include "sipcheck.h"
#include "nict.h"
#include "metrics.h"
#include "proxy.h"
#include "leg.h"
#include "linger.h"
#include "reliable.h"
#include "anchor.h"
#include "relay.h"

/** A response waiting for the one before it to pass the media relay */
struct held {
	struct le le;
	const struct sip_msg *msg;
};

static struct {
	struct sip *sip;
	struct list ringing;   /* INVITEs not answered finally, oldest first */
} rl;


static void relay_destructor(void *arg)
{
	struct relay *r = arg;

	list_unlink(&r->le_linger);
	list_unlink(&r->le_ring);
	list_flush(&r->held);
	mem_deref(r->body);
	mem_deref(r->ruri);
	mem_deref(r->hop);
	mem_deref(r->st);
	mem_deref(r->req);
	mem_deref(r->nict);
	mem_deref((void *)r->msg);
	mem_deref(r->dest.dlg);
}


static void reply_error(struct relay *r, uint16_t scode, const char *reason)
{
	metrics_sip_response(scode);
	(void)sip_treply(&r->st, rl.sip, r->msg, scode, reason);
}


/*
 * A final answer without a libre timer. libre keeps an answered server
 * transaction alive for 32 s on a timer of its own, and libre 1.1.0's
 * timers are one sorted list: at a few hundred calls per second every
 * new timer then walks tens of thousands of entries (67 % of our CPU,
 * measured). So the answer goes out as if provisional, which leaves the
 * transaction absorbing retransmissions (it resends the last message it
 * sent, our final answer) with no timer, and the relay lingers 64*T1
 * (Timers J and L) in linger.c's wheel: one timer for all of them. INVITE
 * errors keep libre's own path: their retransmission until ACK needs its
 * timer. Over TCP nothing is retransmitted, so nothing lingers.
 */
static int strans_answer(struct relay *r, const struct sa *dst,
			 uint16_t scode, struct mbuf *mb)
{
	const struct sip_msg *msg = r->msg;
	int err;

	if (scode < 200 || (scode >= 300 && !pl_strcmp(&msg->met, "INVITE")))
		return sip_strans_reply(&r->st, rl.sip, msg, dst, scode, mb);

	err = sip_strans_reply(&r->st, rl.sip, msg, dst, 199, mb);
	if (err || msg->tp != SIP_TRANSP_UDP) {
		r->st = mem_deref(r->st);
		return err;
	}

	linger_keep(&r->le_linger, r, LINGER_MAX_S);
	return 0;
}


/**
 * r is over (answered, or failed): drop the reference its transaction
 * held. If it lingers, it keeps only what absorbing retransmissions
 * needs, its server transaction; not the dialog, which may have ended.
 */
static void relay_done(struct relay *r)
{
	list_unlink(&r->le_ring);
	r->dest.dlg = mem_deref(r->dest.dlg);
	r->msg = mem_deref((void *)r->msg);
	mem_deref(r);
}


static bool is_2xx_invite(const struct relay *r, const struct sip_msg *resp)
{
	return resp->scode >= 200 && resp->scode < 300 &&
		!pl_strcmp(&r->msg->met, "INVITE");
}


/**
 * Answer the sender of r with the other leg's response, rebuilt; with
 * `sdp`, the relay's version of its body.
 */
static int reply_relay(struct relay *r, const struct sip_msg *resp,
		       const char *sdp)
{
	const struct sip_msg *msg = r->msg;
	struct dialog *dlg = r->dest.dlg;
	struct hdrfilter_ids ids;
	char callid[LEG_CALLID_SZ];
	const struct sa *laddr;
	struct mbuf *mb;
	struct sa dst;
	struct pl body;
	int err;

	mb = mbuf_alloc(1024);
	if (!mb)
		return ENOMEM;

	err  = mbuf_printf(mb, "SIP/2.0 %u %r\r\n", resp->scode,
			   &resp->reason);
	err |= sipmsg_copy_hdr(mb, msg, SIP_HDR_VIA);
	if (r->initial)
		err |= sipmsg_copy_hdr(mb, msg, SIP_HDR_RECORD_ROUTE);
	err |= mbuf_printf(mb, "From: %r\r\n", &msg->from.val);
	err |= mbuf_printf(mb, "To: %r", &msg->to.val);
	if (!pl_isset(&msg->to.tag) && pl_isset(&resp->to.tag))
		err |= mbuf_printf(mb, ";tag=%r", &resp->to.tag);
	err |= mbuf_printf(mb, "\r\nCall-ID: %r\r\n", &msg->callid);
	err |= mbuf_printf(mb, "CSeq: %u %r\r\n", msg->cseq.num,
			   &msg->cseq.met);
	if (resp->scode >= 300 && resp->scode < 400) {
		/* a redirect's Contacts are where to go: kept as they are */
		err |= sipmsg_copy_hdr(mb, resp, SIP_HDR_CONTACT);
	}
	else if (sip_msg_hdr(resp, SIP_HDR_CONTACT)) {
		laddr = leg_laddr(dlg, r->from, msg->tp);
		if (laddr)
			err |= sipmsg_print_contact(mb, dlg, r->from,
						    laddr, msg->tp);
	}
	ids.from_callid = resp->callid;
	ids.to_callid = leg_callid(dlg, r->from, callid, sizeof(callid));
	err |= hdrfilter_print(mb, resp, &ids);

	if (sdp)
		pl_set_str(&body, sdp);
	else
		leg_body(&body, dlg, r->from, resp,
			 !r->dest.forward && resp->scode < 300);
	err |= mbuf_printf(mb, "Content-Length: %zu\r\n\r\n%r", body.l,
			   &body);
	if (err)
		goto out;

	mb->pos = 0;
	sip_reply_addr(&dst, msg, true);
	metrics_sip_response(resp->scode);
	err = strans_answer(r, &dst, resp->scode, mb);

	/* a 2xx to INVITE: resent until the sender's ACK (by the owner) */
	if (!err && is_2xx_invite(r, resp))
		err = r->dest.forward ? reliable_echo(msg, mb, &dst)
			: reliable_2xx(dlg, r->from, msg, resp->cseq.num, mb,
				       &dst);

 out:
	mem_deref(mb);
	return err;
}


/** Learn from the other leg's response what it changed in the dialog. */
static bool absorb_response(struct relay *r, const struct sip_msg *resp)
{
	struct dialog *dlg = r->dest.dlg;
	enum dialog_leg_id to = r->dest.to;
	bool changed = false;

	if (resp->scode >= 300)
		return false;

	if (r->initial && pl_isset(&resp->to.tag) &&
	    (resp->scode >= 200 || !dlg->to_tag)) {
		char *route = NULL;

		(void)dialog_set_to_tag(dlg, &resp->to.tag);
		(void)sipmsg_route_set(&route, resp, true);
		(void)dialog_set_route(dlg, to, route);
		mem_deref(route);
		changed = true;
	}

	if (sipmsg_is_target_refresh(&r->msg->met) &&
	    sip_msg_hdr(resp, SIP_HDR_CONTACT)) {
		(void)leg_learn_target(dlg, to, resp);
		changed = true;
	}

	if (sipmsg_has_sdp(resp)) {
		(void)leg_learn_sdp(dlg, to, resp);
		changed = true;
	}

	if (resp->scode >= 200 && (!pl_strcmp(&r->msg->met, "INVITE") ||
				   !pl_strcmp(&r->msg->met, "UPDATE")))
		changed |= leg_learn_timer(dlg, r->from, resp);

	return changed;
}


void relay_failed(struct relay *r, int err)
{
	struct dialog *dlg = r->dest.dlg;

	if (r->canceled)
		reply_error(r, 487, "Request Terminated");
	else if (err == ETIMEDOUT)
		reply_error(r, 408, "Request Timeout");
	else if (err == EBADMSG)
		reply_error(r, 502, "Bad Gateway");
	else
		reply_error(r, 503, "Service Unavailable");

	dialog_log(LOG_DEBUG, "proxy", dlg, "%r toward %s failed: %m",
		   &r->msg->met, dialog_leg_name(r->dest.to), err);

	if (!r->dest.forward && (r->initial || !pl_strcmp(&r->msg->met, "BYE")))
		(void)dialog_end(dlg);
}


/**
 * The other leg's response, learnt from (`changed`: the dialog changed),
 * goes to the sender; a final one ends r. `sdp`: the relay's SDP for it.
 */
static void respond(struct relay *r, const struct sip_msg *msg,
		    const char *sdp, bool changed)
{
	struct dialog *dlg = r->dest.dlg;

	/* the relay's SDP, with the o= version the leg's offset gives */
	if (sdp && !leg_sent_sdp(dlg, r->from, sdp, false))
		sdp = dlg->leg[r->from].sdp_out;
	(void)reply_relay(r, msg, sdp);

	if (msg->scode < 200) {
		if (changed)
			dialog_changed(dlg, DIALOG_EV_UPDATED);
		return;
	}

	if (r->initial) {
		/* (a dialog no longer early stays as it is) */
		if (msg->scode < 300)
			(void)dialog_confirm(dlg);
		else
			(void)dialog_end(dlg);
	}
	else if (!pl_strcmp(&r->msg->met, "BYE")) {
		(void)dialog_end(dlg);
	}
	else if (changed) {
		dialog_changed(dlg, DIALOG_EV_UPDATED);
	}

	relay_done(r);
}


/* ---- anchored calls: SDP through the media relay ------------------ */


static void held_destructor(void *arg)
{
	struct held *hm = arg;

	list_unlink(&hm->le);
	mem_deref((void *)hm->msg);
}


/**
 * A response whose SDP the relay could not take. A provisional one is
 * dropped (the final one follows); a final one fails the request as a
 * relay failure does, since its SDP cannot reach the sender any other way
 * without exposing the other side.
 */
static void refuse_anchor(struct relay *r, const struct sip_msg *msg,
			  int err)
{
	dialog_log(LOG_WARN, "media", r->dest.dlg, "%u to %r: SDP not taken "
		   "by media relay %s: %m", msg->scode, &r->msg->met,
		   dialog_media(r->dest.dlg), err);

	if (msg->scode < 200)
		return;

	relay_failed(r, ENODEV);
	relay_done(r);
}


static void held_next(struct relay *r);


static void resp_anchored(int err, const char *sdp, void *arg)
{
	struct relay *r = arg;
	struct held *hm = list_ledata(list_head(&r->held));

	r->anchoring = false;
	if (hm && r->dest.dlg) {
		if (err)
			refuse_anchor(r, hm->msg, err);
		else
			respond(r, hm->msg, sdp, r->changed);
		mem_deref(hm);
		held_next(r);
	}

	mem_deref(r);
}


/**
 * The responses of an anchored dialog go out in the order they came,
 * each SDP through the relay first: a 200 never overtakes the 183 whose
 * SDP the relay has not answered yet.
 */
static void held_next(struct relay *r)
{
	struct held *hm;
	struct pl body;
	int err;

	mem_ref(r);   /* a final response ends r's transaction reference */

	while (!r->anchoring && r->dest.dlg &&
	       (hm = list_ledata(list_head(&r->held))) != NULL) {
		const struct sip_msg *msg = hm->msg;
		bool changed = absorb_response(r, msg);

		if (msg->scode < 300 && sipmsg_has_sdp(msg)) {
			sipmsg_body(&body, msg);
			/* a body-less request gets the offer in its answer */
			err = anchor_sdp(r->dest.dlg, r->dest.to,
					 !sipmsg_has_sdp(r->msg), &body,
					 resp_anchored, mem_ref(r));
			if (!err) {
				r->anchoring = true;
				r->changed = changed;
				break;
			}
			mem_deref(r);
			refuse_anchor(r, msg, err);
		}
		else {
			respond(r, msg, NULL, changed);
		}

		mem_deref(hm);
	}

	mem_deref(r);
}


static void hold(struct relay *r, const struct sip_msg *msg)
{
	struct held *hm;

	hm = mem_zalloc(sizeof(*hm), held_destructor);
	if (!hm)
		return;

	hm->msg = mem_ref((void *)msg);
	list_append(&r->held, &hm->le, hm);
	held_next(r);
}


static void relay_response(int err, const struct sip_msg *msg, void *arg)
{
	struct relay *r = arg;

	/* a response the door refuses is never relayed; if libre ended its
	 * transaction on it (a final status to libre), the sender gets 502 */
	if (!err && msg && sipcheck_refuse(rl.sip, msg)) {
		if (msg->scode < 200)
			return;
		err = EBADMSG;
	}

	if (err || !msg) {
		relay_failed(r, err ? err : EPROTO);
		relay_done(r);
		return;
	}

	metrics_sip_response_received(msg->scode);
	if (msg->scode == 100)
		return;

	/* forwarded to the owner: its replication tells us what changed */
	if (r->dest.forward) {
		(void)reply_relay(r, msg, NULL);
		if (msg->scode >= 200)
			relay_done(r);
		return;
	}

	if (dialog_media(r->dest.dlg)) {
		hold(r, msg);
		return;
	}

	respond(r, msg, NULL, absorb_response(r, msg));
}


/**
 * Send r's request, built in mb, statefully: an INVITE through libre (it
 * can be cancelled), any other method through our own transaction where
 * it can (nict.c explains why).
 */
/**
 * A PRACK's RAck, with the CSeq of the INVITE as leg `to` numbered it
 * (cseq.c); other methods have none. hdrfilter.c never passes RAck on.
 */
static void print_rack(struct mbuf *mb, const struct sip_msg *msg,
		       const struct cseq_leg *to, int *errp)
{
	const struct sip_hdr *hdr = sip_msg_hdr(msg, SIP_HDR_RACK);
	struct pl rseq, num, met;

	if (!hdr || pl_strcmp(&msg->met, "PRACK") ||
	    re_regex(hdr->val.p, hdr->val.l, "[0-9]+[ \t]+[0-9]+[ \t]+[^ \t]+",
		     &rseq, NULL, &num, NULL, &met))
		return;

	*errp |= mbuf_printf(mb, "RAck: %r %u %r\r\n", &rseq,
			     !pl_strcmp(&met, "INVITE") ?
			     cseq_rack(to, pl_u32(&num)) : pl_u32(&num), &met);
}


int relay_request(struct relay *r, const char *ruri,
			 const struct pl *hop, struct mbuf *mb)
{
	const struct pl *met = &r->msg->met;
	struct uri uri;
	int err;

	if (pl_strcmp(met, "INVITE")) {
		err = uri_decode(&uri, hop);
		if (err)
			return err;

		mb->pos = 0;
		err = nict_request(&r->nict, met, ruri, &uri, mb, leg_send_handler,
				   relay_response, r);
		if (err != ENOTSUP)
			return err;
	}

	err = leg_send(&r->req, met, ruri, hop, mb, relay_response, r);
	if (!err && !pl_strcmp(met, "INVITE")) {
		r->sent = tmr_jiffies();
		list_append(&rl.ringing, &r->le_ring, r);
	}

	return err;
}


static void cancel_handler(void *arg)
{
	struct relay *r = arg;

	r->canceled = true;
	if (r->req)
		sip_request_cancel(r->req);
}


/** Build r's request for the other leg and send it to `hop`. */
static int request_send(struct relay *r, const char *ruri,
			const struct pl *hop)
{
	const struct sip_msg *msg = r->msg;
	struct dialog *dlg = r->dest.dlg;
	struct dialog_leg *to = &dlg->leg[r->dest.to];
	bool ack = !pl_strcmp(&msg->met, "ACK");
	struct hdrfilter_ids ids;
	char callid[LEG_CALLID_SZ];
	uint32_t cseq;
	struct mbuf *mb;
	struct pl body;
	int err;

	mb = mbuf_alloc(1024);
	if (!mb)
		return ENOMEM;

	cseq = ack ? r->ack_cseq
		   : cseq_relay(&to->cseq, msg->cseq.num,
				!pl_strcmp(&msg->met, "INVITE"));

	err  = leg_print_route(mb, dialog_route(dlg, r->dest.to));
	err |= mbuf_printf(mb, "Max-Forwards: %u\r\n",
			   sipmsg_max_forwards_next(msg));
	err |= mbuf_printf(mb, "From: %r\r\nTo: %r\r\n", &msg->from.val,
			   &msg->to.val);
	ids.from_callid = msg->callid;
	ids.to_callid = leg_callid(dlg, r->dest.to, callid, sizeof(callid));
	err |= mbuf_printf(mb, "Call-ID: %s\r\n", ids.to_callid);
	err |= mbuf_printf(mb, "CSeq: %u %r\r\n", cseq, &msg->met);
	err |= hdrfilter_print(mb, msg, r->initial ? NULL : &ids);
	print_rack(mb, msg, &to->cseq, &err);

	if (r->body)
		pl_set_str(&body, r->body);
	else
		leg_body(&body, dlg, r->dest.to, msg, true);
	err |= mbuf_printf(mb, "Content-Length: %zu\r\n\r\n%r", body.l,
			   &body);
	if (err)
		goto out;

	r->dest.contact = sip_msg_hdr(msg, SIP_HDR_CONTACT) != NULL;
	err = ack ? reliable_ack(dlg, r->dest.to, cseq, ruri, hop, mb)
		  : relay_request(r, ruri, hop, mb);
 out:
	mem_deref(mb);
	return err;
}


/** r's SDP is back from the relay: send r on with it */
static void req_anchored(int err, const char *sdp, void *arg)
{
	struct relay *r = arg;
	struct dialog *dlg = r->dest.dlg;
	struct pl hop;

	if (!dlg)          /* r ended meanwhile */
		goto out;

	if (!err && r->canceled)
		err = ECANCELED;
	if (!err)
		err = leg_sent_sdp(dlg, r->dest.to, sdp, false);
	if (!err) {
		r->body = mem_ref(dlg->leg[r->dest.to].sdp_out);
		pl_set_str(&hop, r->hop);
		err = request_send(r, r->ruri, &hop);
	}
	if (err) {
		if (err != ECANCELED)
			dialog_log(LOG_WARN, "media", dlg, "%r: SDP not taken "
				   "by media relay %s: %m", &r->msg->met,
				   dialog_media(dlg), err);
		relay_failed(r, ENODEV);
		relay_done(r);
	}

 out:
	mem_deref(r);
}


static bool is_offer(const struct pl *met)
{
	return !pl_strcmp(met, "INVITE") || !pl_strcmp(met, "UPDATE");
}


/**
 * Send r's request on to the other leg at `hop`. In an anchored dialog
 * its SDP goes through the media relay first, and r leaves when the relay
 * answers (a failure then is r's: the sender gets 503).
 */
int relay_send(struct relay *r, const char *ruri, const struct pl *hop)
{
	const struct sip_msg *msg = r->msg;
	struct pl body;
	int err;

	if (!dialog_media(r->dest.dlg) || r->dest.forward ||
	    !sipmsg_has_sdp(msg) || !pl_strcmp(&msg->met, "ACK"))
		return request_send(r, ruri, hop);

	err  = str_dup(&r->ruri, ruri);
	err |= pl_strdup(&r->hop, hop);
	if (err)
		return err;

	sipmsg_body(&body, msg);
	err = anchor_sdp(r->dest.dlg, r->from, is_offer(&msg->met), &body,
			 req_anchored, mem_ref(r));
	if (err)
		mem_deref(r);

	return err;
}


/** msg from leg `from` on its way to the other leg, without transactions */
static struct relay *relay_new(struct dialog *dlg, const struct sip_msg *msg,
			       enum dialog_leg_id from)
{
	struct relay *r = mem_zalloc(sizeof(*r), relay_destructor);

	if (!r)
		return NULL;

	r->dest.dlg = mem_ref(dlg);
	r->dest.to = leg_other(from);
	r->from = from;
	r->msg = mem_ref((void *)msg);

	return r;
}


int relay_alloc(struct relay **rp, struct dialog *dlg,
		       const struct sip_msg *msg, enum dialog_leg_id from)
{
	struct relay *r;
	int err;

	r = relay_new(dlg, msg, from);
	if (!r)
		return ENOMEM;

	err = sip_strans_alloc(&r->st, rl.sip, msg, cancel_handler, r);
	if (err) {
		mem_deref(r);
		return err;
	}

	*rp = r;
	return 0;
}


static void ack_anchored(int err, const char *sdp, void *arg)
{
	struct relay *r = arg;
	struct dialog *dlg = r->dest.dlg;
	struct dialog_leg *to = &dlg->leg[r->dest.to];
	struct pl hop;

	if (!err)
		err = leg_sent_sdp(dlg, r->dest.to, sdp, false);
	if (!err) {
		r->body = mem_ref(to->sdp_out);
		err = leg_hop(&hop, dlg, r->dest.to);
	}
	if (!err)
		err = request_send(r, to->target, &hop);
	if (err)
		dialog_log(LOG_WARN, "media", dlg, "ACK: SDP not taken by media "
			   "relay %s: %m", dialog_media(dlg), err);

	mem_deref(r);
}


/** An ACK carrying the answer to a 2xx's offer: through the relay first */
static int ack_anchor(struct dialog *dlg, const struct sip_msg *msg,
		      enum dialog_leg_id from, uint32_t cseq)
{
	struct relay *r;
	struct pl body;
	int err;

	r = relay_new(dlg, msg, from);
	if (!r)
		return ENOMEM;

	r->ack_cseq = cseq;

	sipmsg_body(&body, msg);
	err = anchor_sdp(dlg, from, false, &body, ack_anchored, r);
	if (err)
		mem_deref(r);

	return err;
}


/**
 * An ACK from leg `from`. Only the ACK of the 2xx we keep for that leg
 * crosses, once, with the CSeq of the INVITE the other leg answered; any
 * other (a repeat, a late one) stops here. It is the only ACK the other
 * leg gets for its 2xx: the engine never ACKs on an endpoint's behalf.
 */
void relay_ack(struct dialog *dlg, const struct sip_msg *msg,
		      enum dialog_leg_id from)
{
	const struct dialog_ok *ok = dialog_ok_kept(dlg, from);
	bool announce = ok && ok->shared;   /* the replicas keep it too */
	struct relay r;
	struct pl hop;
	uint32_t cseq;

	if (dialog_ack(dlg, from, msg->cseq.num, &cseq)) {
		log_debug("proxy", "%016llx: ACK %u from the %s: no 2xx awaits "
			  "it", (unsigned long long)dlg->did, msg->cseq.num,
			  dialog_leg_name(from));
		return;
	}

	if (sipmsg_has_sdp(msg)) {
		(void)leg_learn_sdp(dlg, from, msg);
		announce = true;
	}

	if (dialog_media(dlg) && sipmsg_has_sdp(msg)) {
		if (ack_anchor(dlg, msg, from, cseq))
			dialog_log(LOG_WARN, "media", dlg, "ACK: its SDP cannot "
				   "reach media relay %s", dialog_media(dlg));
		goto out;
	}

	/* ACK is stateless: a relay on the stack only carries the context */
	memset(&r, 0, sizeof(r));
	r.dest.dlg = dlg;
	r.dest.to = leg_other(from);
	r.msg = msg;
	r.from = from;
	r.ack_cseq = cseq;

	if (!leg_hop(&hop, dlg, r.dest.to))
		(void)request_send(&r, dlg->leg[r.dest.to].target, &hop);

 out:
	if (announce)
		dialog_changed(dlg, DIALOG_EV_UPDATED);
}


/* ---- Timer C ---------------------------------------------------------- */


/** Timer C fired for INVITE r: CANCEL toward the other leg, 408 back. */
static void ring_expired(struct relay *r)
{
	log_info("proxy", "%016llx: %r toward the %s unanswered for too long: "
		 "CANCEL, 408", (unsigned long long)r->dest.dlg->did,
		 &r->msg->met, dialog_leg_name(r->dest.to));

	list_unlink(&r->le_ring);

	/* libre CANCELs it (now, or on its first provisional answer) and
	 * ACKs the 487 on its own; no answer reaches r any more */
	r->req = mem_deref(r->req);

	relay_failed(r, ETIMEDOUT);
	relay_done(r);
}


/** Once a second: Timer C for the INVITEs sent ring_timeout s ago or more */
void relay_tick(uint32_t ring_timeout)
{
	uint64_t now = tmr_jiffies();
	struct le *le;

	while ((le = list_head(&rl.ringing)) != NULL) {
		struct relay *r = le->data;

		if (now - r->sent < (uint64_t)ring_timeout * 1000)
			break;

		ring_expired(r);
	}
}


/**
 * An early dialog timed out: its initial INVITE ends as on Timer C.
 *
 * @return 0, or ENOENT if no initial INVITE of dlg is in flight here
 */
int relay_ring_end(struct dialog *dlg)
{
	struct le *le;

	LIST_FOREACH(&rl.ringing, le) {
		struct relay *r = le->data;

		if (r->initial && r->dest.dlg == dlg) {
			ring_expired(r);
			return 0;
		}
	}

	return ENOENT;
}


void relay_init(struct sip *sip)
{
	rl.sip = sip;
	list_init(&rl.ringing);
}


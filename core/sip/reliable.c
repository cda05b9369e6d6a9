/**
 * @file reliable.c  2xx to INVITE resent until its ACK; the ACK resent per copy
 *
 * A 2xx to INVITE ends the INVITE transactions at both ends, so its
 * reliability is the UA cores' work: the UAS resends it until the ACK
 * (RFC 3261 13.3.1.4), and the UAC sends the ACK again for every copy of
 * it (13.2.2.4); RFC 6026 keeps it so. Toward the leg that sent an INVITE
 * the engine is that UAS, toward the leg it relays the INVITE to (or sends
 * its own re-INVITE to) it is that UAC, so it does both:
 *
 *  - Our 2xx to a leg is kept in the dialog (dialog_ok_keep()) and resent
 *    over UDP at T1, 2*T1, ... T2 until that leg's own ACK for it comes;
 *    over TCP it is only awaited. The ACK is then relayed once
 *    (relay_ack()). Without an ACK 64*T1 after the 2xx, the call is hung
 *    up (13.3.1.4). The engine never ACKs the other leg's 2xx on an
 *    endpoint's behalf: that leg repeats its 2xx meanwhile, and the copies
 *    are dropped. A 2xx whose ACK has not come after T1 is replicated, so
 *    a node that starts serving the dialog (a re-home, a fail-over)
 *    resumes resending it: dialog_serve() hands it to ok_take_over(). An
 *    ACK in time (nearly always) costs the cluster nothing: replicating
 *    every 2xx would also hand a node that takes over right after the
 *    ACK, before its replication, a 2xx to resend that was acknowledged.
 *  - Every ACK the engine sends, relayed or its own, is kept as sent for
 *    64*T1 under the Call-ID, tags and CSeq of the 2xx it answers: a
 *    copy of that 2xx coming back means the ACK was lost, and gets the
 *    same ACK again.
 *  - A node that forwards an endpoint's INVITE to the dialog's owner keeps
 *    its rebuilt copy of the owner's 2xx the same way: the owner resends
 *    its 2xx to this node, which passes each copy on as it first did.
 *
 * Those copies ("echoes") are node-local, like transactions: the copies
 * of a 2xx come back to the node named in the INVITE's Via. They wait in
 * the linger wheel and a hash by Call-ID, not on timers of their own.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "cseq.h"
#include "dialog.h"
#include "proxy.h"
#include "leg.h"
#include "linger.h"
#include "reliable.h"

enum {
	OK_TIMEOUT = 64 * SIP_T1,     /* no ACK by then: hang up */
	ECHO_BUCKETS = 1024,
};

/** A message to send again when a copy of the 2xx it follows comes back */
struct echo {
	struct le he;                 /* rb.echoes, by Call-ID */
	struct le le_linger;
	char *callid;                 /* of the 2xx */
	char *ftag;                   /* its From tag */
	char *ttag;                   /* its To tag */
	uint32_t cseq;                /* its CSeq number */
	struct mbuf *mb;              /* the message as sent, NULL: not yet */
	struct sa dst;
	enum sip_transp tp;
	void *sock;                   /* NULL: libre picks */
};

static struct {
	struct sip *sip;
	struct hash *echoes;
} rb;


static void echo_destructor(void *arg)
{
	struct echo *e = arg;

	hash_unlink(&e->he);
	list_unlink(&e->le_linger);
	mem_deref(e->callid);
	mem_deref(e->ftag);
	mem_deref(e->ttag);
	mem_deref(e->mb);
}


/* ---- our 2xx, until its ACK ------------------------------------------ */


static void ok_send(struct dialog_ok *ok)
{
	ok->mb->pos = 0;
	(void)sip_send(rb.sip, ok->sock, ok->tp, &ok->dst, ok->mb);
}


/**
 * RFC 3261 13.3.1.4: no ACK, no session. Unless the 2xx was taken over
 * with the dialog: its ACK may have reached the node that sent it just
 * before that node died, with the change not replicated, and the caller's
 * copies for our resends then go to that node still; the call is fine.
 */
static void ok_give_up(struct dialog_ok *ok)
{
	struct dialog *dlg = ok->dlg;
	enum dialog_leg_id leg = ok->leg;
	bool taken_over = ok->taken_over;

	dialog_ok_clear(dlg, leg);   /* frees ok */

	if (taken_over) {
		log_info("proxy", "%016llx: no ACK from the %s for a 2xx taken "
			 "over: forgotten", (unsigned long long)dlg->did,
			 dialog_leg_name(leg));
		return;
	}

	log_warn("proxy", "%016llx: no ACK from the %s for our 2xx",
		 (unsigned long long)dlg->did, dialog_leg_name(leg));
	(void)proxy_hangup(dlg, "no ACK");
}


/**
 * T1 after the 2xx, and every resend after: the ACK is overdue, so the 2xx
 * is replicated now (once); over UDP it is sent again, over TCP only the
 * deadline is left to wait for.
 */
static void ok_timer(void *arg)
{
	struct dialog_ok *ok = arg;
	uint64_t now = dialog_now();
	uint64_t left;

	if (now >= ok->until) {
		ok_give_up(ok);
		return;
	}

	left = ok->until - now;
	if (!ok->shared) {
		dialog_ok_share(ok);
		dialog_changed(ok->dlg, DIALOG_EV_UPDATED);
	}

	if (ok->tp != SIP_TRANSP_UDP) {
		tmr_start(&ok->tmr, left, ok_timer, ok);
		return;
	}

	ok_send(ok);
	ok->interval = MIN(2 * ok->interval, (uint32_t)SIP_T2);
	tmr_start(&ok->tmr, MIN(ok->interval, left), ok_timer, ok);
}


/** Resend a kept 2xx from T1 on */
static void ok_start(struct dialog_ok *ok)
{
	ok->interval = SIP_T1;
	tmr_start(&ok->tmr, MIN(ok->until - dialog_now(), (uint64_t)SIP_T1),
		  ok_timer, ok);
}


/**
 * This node serves a dialog whose 2xx another node sent (dialog_ok_h):
 * resend it until its deadline. One whose deadline passed already is
 * dropped: the node that sent it gave up on it.
 */
static void ok_take_over(struct dialog_ok *ok)
{
	if (dialog_now() >= ok->until) {
		dialog_ok_clear(ok->dlg, ok->leg);
		return;
	}

	ok->taken_over = true;
	ok_start(ok);
}


/**
 * We sent `mb` to `dst`, a 2xx to INVITE `inv` of leg `leg`: keep and
 * resend it until the leg's ACK, which then goes on with CSeq `ack`.
 */
int reliable_2xx(struct dialog *dlg, enum dialog_leg_id leg,
		 const struct sip_msg *inv, uint32_t ack, struct mbuf *mb,
		 const struct sa *dst)
{
	struct dialog_ok tmpl, *ok;
	int err;

	if (!dlg || !inv || !mb || !dst)
		return EINVAL;

	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.mb    = mb;
	tmpl.dst   = *dst;
	tmpl.tp    = inv->tp;
	tmpl.cseq  = inv->cseq.num;
	tmpl.ack   = ack;
	tmpl.until = dialog_now() + OK_TIMEOUT;
	tmpl.sock  = inv->tp == SIP_TRANSP_UDP ? inv->sock : NULL;

	err = dialog_ok_keep(&ok, dlg, leg, &tmpl);
	if (err)
		return err;

	ok_start(ok);
	return 0;
}


/* ---- copies of a 2xx coming back -------------------------------------- */


static int echo_add(struct echo **ep, const struct pl *callid,
		    const struct pl *ftag, const struct pl *ttag, uint32_t cseq)
{
	struct echo *e;
	int err;

	e = mem_zalloc(sizeof(*e), echo_destructor);
	if (!e)
		return ENOMEM;

	/* (an absent tag is kept as "") */
	err  = re_sdprintf(&e->callid, "%r", callid);
	err |= re_sdprintf(&e->ftag, "%r", ftag);
	err |= re_sdprintf(&e->ttag, "%r", ttag);
	if (err) {
		mem_deref(e);
		return err;
	}

	e->cseq = cseq;
	hash_append(rb.echoes, hash_joaat_pl(callid), &e->he, e);
	linger_keep(&e->le_linger, e, LINGER_MAX_S);

	mem_deref(e);   /* the wheel holds it */
	*ep = e;
	return 0;
}


/* libre's stateless request: the message it built is the one it sends */
static int echo_capture(enum sip_transp tp, const struct sa *src,
			const struct sa *dst, struct mbuf *mb, void *arg)
{
	struct echo *e = arg;
	(void)src;

	mem_deref(e->mb);
	e->mb = mem_ref(mb);
	e->dst = *dst;
	e->tp = tp;
	return 0;
}


/**
 * Send an ACK to leg `to` for its 2xx to our INVITE with CSeq `cseq`, and
 * keep it to send again for that 2xx's copies.
 *
 * @param ruri  Request-URI
 * @param hop   Next hop
 * @param hdrs  Headers after the Via, blank line and body included
 */
int reliable_ack(struct dialog *dlg, enum dialog_leg_id to, uint32_t cseq,
		 const char *ruri, const struct pl *hop, struct mbuf *hdrs)
{
	char callid[LEG_CALLID_SZ];
	struct pl cid, ftag = PL_INIT, ttag = PL_INIT;

	if (!dlg)
		return EINVAL;

	/* both legs carry the caller's tag and the callee's: our From toward
	 * the callee is the caller's, toward the caller the callee's */
	if (to == LEG_CALLEE) {
		(void)dialog_from_tag(dlg, &ftag);
		pl_set_str(&ttag, dlg->to_tag);
	}
	else {
		pl_set_str(&ftag, dlg->to_tag);
		(void)dialog_from_tag(dlg, &ttag);
	}

	pl_set_str(&cid, leg_callid(dlg, to, callid, sizeof(callid)));
	return reliable_ack_send(&cid, &ftag, &ttag, cseq, ruri, hop, hdrs);
}


/**
 * Send an ACK for the 2xx with Call-ID `callid`, tags `ftag` and `ttag`
 * and CSeq `cseq`, statelessly, and keep it to send again for that 2xx's
 * copies.
 *
 * @param ruri  Request-URI
 * @param hop   Next hop
 * @param hdrs  Headers after the Via, blank line and body included
 */
int reliable_ack_send(const struct pl *callid, const struct pl *ftag,
		      const struct pl *ttag, uint32_t cseq, const char *ruri,
		      const struct pl *hop, struct mbuf *hdrs)
{
	struct echo *e;
	struct uri uri;
	int err;

	if (!callid || !ftag || !ttag || !ruri || !hop || !hdrs)
		return EINVAL;

	err = uri_decode(&uri, hop);
	if (err)
		return err;

	err = echo_add(&e, callid, ftag, ttag, cseq);
	if (err)
		return err;

	/* the wheel keeps e alive, whenever libre gets to send it */
	hdrs->pos = 0;
	return sip_request(NULL, rb.sip, false, "ACK", 3, ruri,
			   (int)str_len(ruri), &uri, hdrs, 0, echo_capture,
			   NULL, e);
}


/**
 * We forwarded INVITE `inv` to the dialog's owner and passed its 2xx on,
 * rebuilt as `mb`, to `dst`: pass each copy the owner resends on the same.
 */
int reliable_echo(const struct sip_msg *inv, struct mbuf *mb,
		  const struct sa *dst)
{
	struct echo *e;
	int err;

	if (!inv || !mb || !dst)
		return EINVAL;

	if (inv->tp != SIP_TRANSP_UDP)
		return 0;

	err = echo_add(&e, &inv->callid, &inv->from.tag, &inv->to.tag,
		       inv->cseq.num);
	if (err)
		return err;

	e->mb = mem_ref(mb);
	e->dst = *dst;
	e->tp = inv->tp;
	e->sock = inv->sock;
	return 0;
}


static bool echo_cmp(struct le *le, void *arg)
{
	const struct echo *e = le->data;
	const struct sip_msg *msg = arg;

	return e->cseq == msg->cseq.num && !pl_strcmp(&msg->callid, e->callid)
		&& !pl_strcmp(&msg->from.tag, e->ftag)
		&& !pl_strcmp(&msg->to.tag, e->ttag);
}


/**
 * A 2xx to INVITE that no client transaction wanted: a copy of one the
 * engine has ACKed or passed on already gets the same message again;
 * others are left to the caller (proxy.c: a 2xx of another branch of a
 * forked INVITE), or dropped (their ACK is still awaited from an
 * endpoint).
 *
 * @return true if it was a copy, answered
 */
bool reliable_stray(const struct sip_msg *msg)
{
	struct echo *e;

	if (!msg || msg->scode < 200 || msg->scode >= 300 ||
	    pl_strcmp(&msg->cseq.met, "INVITE"))
		return false;

	e = list_ledata(hash_lookup(rb.echoes, hash_joaat_pl(&msg->callid),
				    echo_cmp, (void *)msg));
	if (!e || !e->mb) {
		log_debug("proxy", "%r: copy of a %u (CSeq %u) dropped",
			  &msg->callid, msg->scode, msg->cseq.num);
		return false;
	}

	e->mb->pos = 0;
	(void)sip_send(rb.sip, e->sock, e->tp, &e->dst, e->mb);
	return true;
}


/* ---- set-up ----------------------------------------------------------- */


int reliable_init(struct sip *sip)
{
	rb.sip = sip;
	dialog_set_ok_handler(ok_take_over);

	return hash_alloc(&rb.echoes, ECHO_BUCKETS);
}


/** After linger_close(), which let the echoes go */
void reliable_close(void)
{
	dialog_set_ok_handler(NULL);
	rb.echoes = mem_deref(rb.echoes);
	rb.sip = NULL;
}

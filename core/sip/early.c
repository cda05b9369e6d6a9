/**
 * @file early.c  Ringing calls whose node died: what ending them needs, and the ending
 *
 * A call that rings when its node dies has no answer yet: nothing can be
 * re-homed, and its endpoints wait (the caller for a final response, the
 * callee for an ACK or a CANCEL). The node that takes its tag over ends
 * it cleanly instead: a 480 to the caller's INVITE, a CANCEL of the
 * INVITE toward the callee, and a BYE too when the callee already gave a
 * tag (it may have answered meanwhile: the 200 went to the dead node).
 *
 * Both messages belong to transactions the dead node started, so they
 * are built from what it replicated while the call was early (struct
 * dialog_early): the caller INVITE's Via lines and source address, and
 * our INVITE's Via line, Request-URI and destination. They are sent
 * statelessly, four times at T1 doubling over UDP: their answers go to
 * the Via of the dead node (the caller's ACK of the 480, the callee's 487
 * and its 200 to the CANCEL), so none can say they arrived.
 *
 * Trade-off: the dialog_early is replicated with the call's first update
 * after the INVITE left (its first provisional response), not with the
 * INVITE itself, which would cost one more replication message per call.
 * A node that dies before any provisional answer came back leaves the
 * callee's INVITE without a CANCEL; the caller still gets its 480.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "dialog.h"
#include "leg.h"
#include "proxy.h"
#include "early.h"

enum {
	RESENDS = 4,          /* copies of each message, UDP */
};

static struct sip *early_sip;

/** One message sent statelessly, again at T1, 2*T1, ... over UDP */
struct resend {
	struct tmr tmr;
	struct mbuf *mb;
	struct sa dst;
	enum sip_transp tp;
	unsigned sent;
};


static void resend_destructor(void *arg)
{
	struct resend *rs = arg;

	tmr_cancel(&rs->tmr);
	mem_deref(rs->mb);
}


static void resend_handler(void *arg)
{
	struct resend *rs = arg;

	rs->mb->pos = 0;
	(void)sip_send(early_sip, NULL, rs->tp, &rs->dst, rs->mb);

	if (++rs->sent >= RESENDS || rs->tp != SIP_TRANSP_UDP) {
		mem_deref(rs);
		return;
	}

	tmr_start(&rs->tmr, SIP_T1 << (rs->sent - 1), resend_handler, rs);
}


/** Send mb (taken over) to `dst`, "IP:PORT", and again over UDP */
static int resend_start(struct mbuf *mb, const char *dst, enum sip_transp tp)
{
	struct resend *rs;
	int err;

	rs = mem_zalloc(sizeof(*rs), resend_destructor);
	if (!rs) {
		mem_deref(mb);
		return ENOMEM;
	}

	rs->mb = mb;
	rs->tp = tp;
	err = sa_decode(&rs->dst, dst, str_len(dst));
	if (err) {
		mem_deref(rs);
		return err;
	}

	resend_handler(rs);
	return 0;
}


/**
 * The caller's INVITE of a new call: its Vias and source, for a final
 * response from another node.
 */
int early_note_invite(struct dialog *dlg, const struct sip_msg *msg)
{
	struct dialog_early *early;
	struct mbuf *mb;
	struct le *le;
	int err;

	err = dialog_early_alloc(dlg);
	if (err)
		return err;

	early = dialog_early(dlg);
	mb = mbuf_alloc(256);
	if (!mb)
		return ENOMEM;

	for (le = list_head(&msg->hdrl); le && !err; le = le->next) {
		const struct sip_hdr *hdr = le->data;

		if (hdr->id == SIP_HDR_VIA)
			err = mbuf_printf(mb, "Via: %r\r\n", &hdr->val);
	}

	mb->pos = 0;
	if (!err)
		err = mbuf_strdup(mb, &early->vias, mb->end);
	if (!err)
		err = re_sdprintf(&early->src, "%J", &msg->src);

	mem_deref(mb);
	return err;
}


/**
 * Our INVITE toward the callee is being sent (libre's send handler, after
 * loopmark.c marked it): mb holds its request line and Via.
 */
void early_note_sent(struct dialog *dlg, const struct mbuf *mb,
		     const struct sa *dst)
{
	struct dialog_early *early = dialog_early(dlg);
	struct pl ruri, via;

	if (!early || early->via || dlg->state != DIALOG_EARLY)
		return;

	if (re_regex((const char *)mb->buf, mb->end,
		     "INVITE [^ \r\n]+ SIP/2.0\r\nVia: [^\r\n]+\r\n",
		     &ruri, &via))
		return;

	if (pl_strdup(&early->ruri, &ruri) || pl_strdup(&early->via, &via) ||
	    re_sdprintf(&early->dst, "%J", dst))
		early->via = mem_deref(early->via);  /* all or nothing */
}


static int final_to_caller(const struct dialog *dlg)
{
	const struct dialog_early *early = dialog_early(dlg);
	struct mbuf *mb;
	int err;

	mb = mbuf_alloc(512);
	if (!mb)
		return ENOMEM;

	err = mbuf_printf(mb, "SIP/2.0 480 Temporarily Unavailable\r\n%s"
			  "From: %s\r\nTo: %s;tag=%s\r\nCall-ID: %s\r\n"
			  "CSeq: %u INVITE\r\nContent-Length: 0\r\n\r\n",
			  early->vias, dlg->from, dlg->to,
			  dlg->to_tag ? dlg->to_tag : "rh-ended", dlg->callid,
			  dlg->leg[LEG_CALLER].cseq.rseq);
	if (err) {
		mem_deref(mb);
		return err;
	}

	return resend_start(mb, early->src, dlg->leg[LEG_CALLER].tp);
}


static int cancel_to_callee(const struct dialog *dlg)
{
	const struct dialog_early *early = dialog_early(dlg);
	char callid[LEG_CALLID_SZ];
	struct mbuf *mb;
	int err;

	if (!early->via)
		return ENOENT;

	mb = mbuf_alloc(512);
	if (!mb)
		return ENOMEM;

	err = mbuf_printf(mb, "CANCEL %s SIP/2.0\r\nVia: %s\r\n"
			  "Max-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\n"
			  "Call-ID: %s\r\nCSeq: %u CANCEL\r\n"
			  "Content-Length: 0\r\n\r\n",
			  early->ruri, early->via, dlg->from, dlg->to,
			  leg_callid(dlg, LEG_CALLEE, callid, sizeof(callid)),
			  dlg->leg[LEG_CALLEE].cseq.ack);
	if (err) {
		mem_deref(mb);
		return err;
	}

	return resend_start(mb, early->dst, dlg->leg[LEG_CALLEE].tp);
}


/**
 * End a ringing call that another node served and this one takes over:
 * 480 to the caller, CANCEL (and BYE, when the callee gave a tag) to the
 * callee. The caller ends the dialog afterwards.
 *
 * @return 0, or ENOENT when the dialog holds nothing to end it with
 */
int early_end(struct dialog *dlg)
{
	int err;

	if (!dlg || !dialog_early(dlg) || !dialog_early(dlg)->vias)
		return ENOENT;

	dialog_log(LOG_INFO, "proxy", dlg, "ringing when its node died: 480 "
		   "to the caller, CANCEL to the callee");

	err = final_to_caller(dlg);
	if (cancel_to_callee(dlg))
		dialog_log(LOG_INFO, "proxy", dlg, "no INVITE toward the callee "
			   "known: nothing to cancel");
	if (dlg->to_tag && dlg->leg[LEG_CALLEE].target)
		(void)proxy_bye(dlg, LEG_CALLEE);

	return err;
}


void early_init(struct sip *sip)
{
	early_sip = sip;
}

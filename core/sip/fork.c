/**
 * @file fork.c  A 2xx from another branch of a forked INVITE: ACK and BYE
 *
 * The callee side may fork the initial INVITE (a proxy ringing several
 * phones), and more than one branch may answer 2xx (RFC 3261 13.2.2.4).
 * The call goes on with the first one, whose To tag the dialog keeps;
 * each later one set up a dialog of its own at an endpoint that now
 * believes it is in a call. The engine, as that INVITE's UAC, ACKs it and
 * then ends that dialog with a BYE. libre's INVITE client transaction
 * ends with the first 2xx, so the others arrive as responses no
 * transaction wants (proxy.c). The ACK is kept like any ACK of the
 * engine's, to be sent again for each copy of that 2xx (reliable.c); so a
 * copy never brings another BYE, which goes once, statefully.
 *
 * Such a 2xx is recognised by the callee leg's Call-ID (it names the did,
 * with a key an endpoint cannot guess), the caller's From tag and a To tag
 * other than the dialog's. Nothing of it is kept in the dialog: only the
 * node that sent the INVITE gets these answers.
 */
#include <re.h>
#include "log.h"
#include "did.h"
#include "dialog.h"
#include "sipmsg.h"
#include "loopmark.h"
#include "leg.h"
#include "reliable.h"
#include "fork.h"

enum { HDRS_SZ = 512 };


/** The confirmed dialog served here that msg's Call-ID names, or NULL */
static struct dialog *fork_dialog(const struct sip_msg *msg)
{
	char callid[LEG_CALLID_SZ];
	struct dialog *dlg;
	struct pl hex, ftag;
	uint64_t did;

	if (re_regex(msg->callid.p, msg->callid.l, "rh-[0-9a-f]+", &hex) ||
	    did_decode(&did, &hex))
		return NULL;

	dlg = dialog_lookup(did);
	if (!dlg || dlg->replica || dlg->state != DIALOG_CONFIRMED ||
	    !dlg->to_tag || dialog_from_tag(dlg, &ftag))
		return NULL;

	if (pl_strcmp(&msg->callid, leg_callid(dlg, LEG_CALLEE, callid,
					       sizeof(callid))) ||
	    pl_cmp(&msg->from.tag, &ftag) || !pl_isset(&msg->to.tag) ||
	    !pl_strcmp(&msg->to.tag, dlg->to_tag))
		return NULL;

	return dlg;
}


/** ACK or BYE in the branch's dialog: its From, To and Call-ID */
static int branch_request(struct mbuf **mbp, const struct sip_msg *msg,
			  const char *route, uint32_t cseq, const char *met)
{
	struct mbuf *mb = mbuf_alloc(HDRS_SZ);
	int err;

	if (!mb)
		return ENOMEM;

	err  = leg_print_route(mb, route);
	err |= mbuf_printf(mb, "Max-Forwards: %u\r\nFrom: %r\r\nTo: %r\r\n"
			   "Call-ID: %r\r\nCSeq: %u %s\r\n"
			   "Content-Length: 0\r\n\r\n", SIPMSG_MAX_FORWARDS,
			   &msg->from.val, &msg->to.val, &msg->callid, cseq,
			   met);
	if (err) {
		mem_deref(mb);
		return err;
	}

	mb->pos = 0;
	*mbp = mb;
	return 0;
}


static int bye_send(enum sip_transp tp, const struct sa *src,
		    const struct sa *dst, struct mbuf *mb, void *arg)
{
	(void)tp;
	(void)src;
	(void)dst;
	(void)arg;

	return loopmark_add(mb);
}


/**
 * msg, a 2xx to INVITE no transaction wanted: if another branch of a
 * dialog's initial INVITE sent it, ACK it and end that branch's dialog.
 *
 * @return 0 if it was one, ENOENT if not, otherwise errorcode
 */
int fork_answer(struct sip *sip, const struct sip_msg *msg)
{
	struct mbuf *ack = NULL, *bye = NULL;
	struct dialog *dlg;
	char *route = NULL, *ruri = NULL;
	struct pl target, hop;
	struct uri uri;
	int err;

	if (!sip || !msg || msg->scode < 200 || msg->scode >= 300 ||
	    pl_strcmp(&msg->cseq.met, "INVITE"))
		return EINVAL;

	dlg = fork_dialog(msg);
	if (!dlg)
		return ENOENT;

	err = sipmsg_contact_uri(&target, msg);
	if (!err)
		err = sipmsg_route_set(&route, msg, true);
	if (!err)
		err = pl_strdup(&ruri, &target);
	if (!err)
		err = route ? sipmsg_route_first(&hop, route) : 0;
	if (err)
		goto out;

	if (!route)
		hop = target;

	dialog_log(LOG_INFO, "proxy", dlg, "2xx from another branch (To tag "
		   "%r): ACK and BYE", &msg->to.tag);

	err  = branch_request(&ack, msg, route, msg->cseq.num, "ACK");
	err |= branch_request(&bye, msg, route, msg->cseq.num + 1, "BYE");
	if (!err)
		err = reliable_ack_send(&msg->callid, &msg->from.tag,
					&msg->to.tag, msg->cseq.num, ruri,
					&hop, ack);
	if (!err)
		err = uri_decode(&uri, &hop);
	if (!err)
		err = sip_request(NULL, sip, true, "BYE", 3, ruri,
				  (int)str_len(ruri), &uri, bye, 0, bye_send,
				  NULL, NULL);

 out:
	if (err)
		dialog_log(LOG_WARN, "proxy", dlg, "cannot end the dialog of "
			   "another branch: %m", err);
	mem_deref(ack);
	mem_deref(bye);
	mem_deref(route);
	mem_deref(ruri);
	return err;
}

/**
 * @file anchor.c  A call's SDP through its media relay (rtpengine)
 *
 * With `media_relay` lines, every SDP that crosses the proxy goes through
 * the call's relay first, and the leg on the other side gets the relay's
 * version of it, pointing at the relay's ports: both endpoints send their
 * media to the relay, which can be changed without their help.
 *
 * A new call gets a relay that is up, by weight (mrelay_choose), unless
 * the policy opted it out; the relay's name is part of the replicated
 * dialog, so a node that continues the call talks to the same relay. The
 * ng call-id is the dialog's did, which every node knows and no two calls
 * share (the endpoints' Call-ID is not unique across callers), and the
 * ng tags are the endpoints' own From/To tags, which cross unchanged.
 *
 * rtpengine's offer and answer are directional: an offer names the
 * offering side's tag first, the answer names the same pair in the same
 * order. A leg that offers is `from`, so its tag leads; a leg that answers
 * replies to the other leg's offer, whose tag leads.
 *
 * The per-dialog media call (the ng session with its relay) is node-local
 * and made on first use, so a node that took a call over makes its own.
 * Operations are asynchronous: the caller holds what it needs alive (the
 * relay holding the dialog) until its handler runs. The call's end, on
 * whatever path it ends, deletes its media (dialog_state.c's end
 * handler); a delete outlives the dialog, with its retries.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "dialog.h"
#include "mrelay.h"
#include "media.h"
#include "ctl.h"
#include "leg.h"
#include "anchor.h"

enum {
	NG_CALLID_SZ = 24,     /* "rh-" + 16 hex digits */
};

static struct {
	struct mrelay_set *relays;
	anchor_relay_h *stateh;
	void *state_arg;
} anc;

/** One SDP on its way through the relay */
struct anchor_op {
	anchor_h *h;
	void *arg;
};


static void op_handler(int err, const char *sdp, void *arg)
{
	struct anchor_op *op = arg;

	op->h(err, sdp, op->arg);
	mem_deref(op);
}


/** The call's name on every relay: its did, known to every node */
static void ng_callid(char *buf, size_t sz, const struct dialog *dlg)
{
	(void)re_snprintf(buf, sz, "rh-%016llx", (unsigned long long)dlg->did);
}


/** The dialog's media call, made on first use on this node */
static int call_get(struct media_call **mcp, struct dialog *dlg)
{
	char callid[NG_CALLID_SZ];
	struct media_call *mc = NULL;
	struct mrelay *relay;
	int err;

	if (dialog_mcall(dlg)) {
		*mcp = dialog_mcall(dlg);
		return 0;
	}

	relay = mrelay_find(anc.relays, dialog_media(dlg));
	if (!relay) {
		dialog_log(LOG_WARN, "media", dlg, "relay %s is not "
			   "configured here", dialog_media(dlg));
		return ENOENT;
	}

	ng_callid(callid, sizeof(callid), dlg);
	err = media_call_alloc(&mc, relay, callid);
	if (!err)
		err = dialog_set_mcall(dlg, mc);
	if (!err)
		*mcp = mc;

	mem_deref(mc);   /* the dialog's now */
	return err;
}


/** An endpoint's tag, as a string for ng; NULL while it has none */
static char *leg_tag(const struct dialog *dlg, enum dialog_leg_id leg)
{
	struct pl tag;
	char *s = NULL;

	if (leg == LEG_CALLEE) {
		/* a copy: identifiers live in the dialog's one block */
		(void)str_dup(&s, dlg->to_tag);
		return s;
	}

	if (!dialog_from_tag(dlg, &tag))
		(void)pl_strdup(&s, &tag);

	return s;
}


/**
 * Pass an SDP the leg `from` sent through the call's relay: `h` gets the
 * SDP to send to the other leg (called once, unless the dialog goes
 * first; keep it alive meanwhile).
 *
 * @param dlg    An anchored dialog (dialog_media() set)
 * @param from   The leg that sent the SDP
 * @param offer  An offer (INVITE, UPDATE, a 2xx to a body-less INVITE),
 *               else the answer to the other leg's offer
 * @param sdp    The SDP as received
 * @param h      Result handler
 * @param arg    Handler argument
 *
 * @return 0 if under way, otherwise errorcode (h is not called)
 */
int anchor_sdp(struct dialog *dlg, enum dialog_leg_id from, bool offer,
	       const struct pl *sdp, anchor_h *h, void *arg)
{
	enum dialog_leg_id other = leg_other(from);
	char *own = NULL, *peer = NULL, *body = NULL;
	struct media_call *mc;
	struct anchor_op *op;
	int err;

	if (!dlg || !dialog_media(dlg) || !sdp || !h)
		return EINVAL;

	err = call_get(&mc, dlg);
	if (err)
		return err;

	op = mem_zalloc(sizeof(*op), NULL);
	if (!op)
		return ENOMEM;
	op->h = h;
	op->arg = arg;

	own = leg_tag(dlg, from);
	peer = leg_tag(dlg, other);
	err = pl_strdup(&body, sdp);
	if (err)
		goto out;

	if (offer)
		err = own ? media_offer(mc, own, peer, body, op_handler, op)
			  : EPROTO;
	else
		err = own && peer ? media_answer(mc, peer, own, body,
						 op_handler, op) : EPROTO;

 out:
	if (err)
		mem_deref(op);
	mem_deref(own);
	mem_deref(peer);
	mem_deref(body);
	return err;
}


/** A call's media on its way to another relay */
struct anchor_move {
	struct dialog *dlg;
	struct mrelay *to;
	struct media_call *mc;      /* the call on the new relay */
	struct media_call *old;     /* on the old relay, once swapped */
	char *caller_tag, *callee_tag;
	char *for_callee;           /* the new relay's SDP toward the callee */
	anchor_h *h;
	void *arg;
};


static void move_destructor(void *arg)
{
	struct anchor_move *mv = arg;

	mem_deref(mv->mc);
	mem_deref(mv->old);
	mem_deref(mv->caller_tag);
	mem_deref(mv->callee_tag);
	mem_deref(mv->for_callee);
	mem_deref(mv->dlg);
}


static void move_end(struct anchor_move *mv, int err)
{
	mv->h(err, NULL, mv->arg);
}


/** The new relay answered too: the call's media is there from now on */
static void move_answered(int err, const char *sdp, void *arg)
{
	struct anchor_move *mv = arg;
	struct dialog *dlg = mv->dlg;
	struct media_call *old;

	if (!err)
		err = dialog_set_media(dlg, mrelay_name(mv->to));
	if (!err)
		err = leg_sent_sdp(dlg, LEG_CALLER, sdp, true);
	if (!err)
		err = leg_sent_sdp(dlg, LEG_CALLEE, mv->for_callee, true);
	if (err) {
		move_end(mv, err);
		return;
	}

	/* ended meanwhile (its end deleted it on the old relay) */
	if (dlg->state == DIALOG_ENDED) {
		(void)media_delete(mv->mc, NULL, NULL);
		move_end(mv, 0);
		return;
	}

	/* the old relay keeps the call until the legs have moved */
	old = mem_ref(dialog_mcall(dlg));
	err = dialog_set_mcall(dlg, mv->mc);
	if (err) {
		mem_deref(old);
		move_end(mv, err);
		return;
	}

	mv->mc = mem_deref(mv->mc);
	mv->old = old;

	move_end(mv, 0);
}


static void move_offered(int err, const char *sdp, void *arg)
{
	struct anchor_move *mv = arg;
	const struct dialog *dlg = mv->dlg;

	if (!err)
		err = str_dup(&mv->for_callee, sdp);
	if (!err)
		err = media_answer(mv->mc, mv->caller_tag, mv->callee_tag,
				   dlg->leg[LEG_CALLEE].sdp_in, move_answered,
				   mv);
	if (err)
		move_end(mv, err);
}


/**
 * Move a call's media to relay `to`: the new relay is given the SDPs the
 * endpoints last sent (the caller's as offer, the callee's as answer), and
 * the dialog then names it, with its SDPs as what each leg is to be sent
 * (sdp_out): re-INVITEing both legs with those finishes the move, and
 * anchor_move_finish() then says whether they took it.
 *
 * @param mvp  The move, owned by the caller until anchor_move_finish()
 *             (freeing it first cancels it, h not called)
 *
 * @return 0 if under way (h gets the outcome), otherwise errorcode
 */
int anchor_move(struct anchor_move **mvp, struct dialog *dlg, const char *to,
		anchor_h *h, void *arg)
{
	char callid[NG_CALLID_SZ];
	struct anchor_move *mv;
	struct mrelay *relay;
	int err;

	if (!mvp || !dlg || !to || !h)
		return EINVAL;

	relay = mrelay_find(anc.relays, to);
	if (!relay)
		return ENOENT;
	if (!dialog_media(dlg) || !dlg->leg[LEG_CALLER].sdp_in ||
	    !dlg->leg[LEG_CALLEE].sdp_in)
		return EPROTO;   /* not anchored, or no offer/answer yet */
	if (!str_cmp(dialog_media(dlg), mrelay_name(relay)))
		return EALREADY;

	mv = mem_zalloc(sizeof(*mv), move_destructor);
	if (!mv)
		return ENOMEM;

	mv->dlg = mem_ref(dlg);
	mv->to = relay;
	mv->h = h;
	mv->arg = arg;
	mv->caller_tag = leg_tag(dlg, LEG_CALLER);
	mv->callee_tag = leg_tag(dlg, LEG_CALLEE);
	ng_callid(callid, sizeof(callid), dlg);

	err = mv->caller_tag && mv->callee_tag ? 0 : EPROTO;
	if (!err)
		err = media_call_alloc(&mv->mc, relay, callid);
	if (!err)
		err = media_offer(mv->mc, mv->caller_tag, mv->callee_tag,
				  dlg->leg[LEG_CALLER].sdp_in, move_offered,
				  mv);
	if (err)
		mem_deref(mv);
	else
		*mvp = mv;

	return err;
}


/**
 * The re-INVITEs of a move are over. When both legs took the new relay's
 * SDP, the old relay deletes the call (retried even if it is dead);
 * otherwise a leg still sends its media there, and the old relay keeps
 * forwarding it (it forgets the session once the media stops, by its own
 * timeout).
 */
void anchor_move_finish(struct anchor_move *mv, bool legs_moved)
{
	if (!mv)
		return;

	if (legs_moved && mv->old)
		(void)media_delete(mv->old, NULL, NULL);
	else if (mv->old)
		dialog_log(LOG_INFO, "media", mv->dlg, "a leg did not move: "
			   "the old relay keeps its media");

	mem_deref(mv);
}


/** A new call: anchor it in a relay that is up, by weight */
int anchor_choose(struct dialog *dlg)
{
	struct mrelay *relay;

	if (!dlg)
		return EINVAL;

	relay = mrelay_choose(anc.relays);
	if (!relay)
		return ENODEV;

	return dialog_set_media(dlg, mrelay_name(relay));
}


/** The call ended here: its media goes from the relay too */
static void end_handler(struct dialog *dlg)
{
	struct media_call *mc;

	if (!dialog_media(dlg) || call_get(&mc, dlg))
		return;

	(void)media_delete(mc, NULL, NULL);
}


bool anchor_enabled(void)
{
	return anc.relays != NULL;
}


struct mrelay_set *anchor_relays(void)
{
	return anc.relays;
}


/** Who hears of a relay going down or up (the policy's on_relay_down) */
void anchor_set_relay_handler(anchor_relay_h *h, void *arg)
{
	anc.stateh = h;
	anc.state_arg = arg;
}


static void relay_state(struct mrelay *relay, bool up, void *arg)
{
	(void)arg;

	if (anc.stateh)
		anc.stateh(mrelay_name(relay), up, anc.state_arg);
}


/** {"relays": [...]} as GET /v1/media/relays shows it, [] without relays */
int anchor_relays_odict(struct odict **odp)
{
	struct odict *arr = NULL;
	int err;

	if (anc.relays)
		return mrelay_status(odp, anc.relays);

	err  = odict_alloc(odp, 4);
	err |= odict_alloc(&arr, 4);
	if (!err)
		err = odict_entry_add(*odp, "relays", ODICT_ARRAY, arr);
	mem_deref(arr);

	return err;
}


/** GET /v1/media/relays */
static void relays_route(struct http_conn *conn, const struct ctl_req *req,
			 void *arg)
{
	struct odict *od = NULL;
	int err;
	(void)req;
	(void)arg;

	err = anchor_relays_odict(&od);
	if (err)
		(void)ctl_reply_error(conn, 500, "%m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


int anchor_init(const struct rh_conf *cfg)
{
	int err;

	err = ctl_route_add("GET", "/v1/media/relays", relays_route, NULL);
	if (err || !cfg->media_relayc)
		return err;

	err = mrelay_set_alloc(&anc.relays, cfg->media_relay,
			       cfg->media_relayc, NULL, relay_state, NULL);
	if (err) {
		log_error("media", "media relays: %m", err);
		return err;
	}

	dialog_set_end_handler(end_handler);
	log_info("media", "%zu media relay(s): calls are anchored",
		 cfg->media_relayc);
	return 0;
}


void anchor_close(void)
{
	dialog_set_end_handler(NULL);
	anc.relays = mem_deref(anc.relays);
	anc.stateh = NULL;
}

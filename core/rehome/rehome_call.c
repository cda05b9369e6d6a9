/**
 * @file rehome_call.c  Re-homing one dialog: the re-INVITE/UPDATE sequence
 *
 * One `struct call` walks one dialog through its legs in the order of the
 * mode: send, wait for the final response, ACK, next leg. The requests are
 * built by proxy_request(), which continues the leg's CSeq and writes this
 * node's Contact; later requests relayed between the legs are renumbered
 * by cseq.c. The body rules keep RFC 3264 offer/answer valid on both legs:
 *  - with SDP (outbound/inbound), the first leg answers our offer and that
 *    answer is the offer of the second leg; both ACKs are empty, as each
 *    leg already has an answer;
 *  - without SDP (none), the first leg offers in its 2xx; that offer goes
 *    to the second leg, and the second leg's answer rides in the first
 *    leg's ACK (RFC 3725 flow I). A leg re-INVITEd alone, or whose partner
 *    failed, is answered with the SDP it was last sent: its session is
 *    unchanged, so an identical description with the same o= version is a
 *    valid answer;
 *  - an answer (or offer) that differs from what the other leg was last
 *    sent is passed on to that leg in one more request (pass_on()), so
 *    that no leg keeps a stale description and media never goes one way;
 *    and its answer again, up to STEPS_MAX requests. Whatever the engine
 *    offers or answers goes through sdp_send(), which gives a changed
 *    description an o= version above the last one that leg saw
 *    (sdpver.c).
 * Mode update sends UPDATE only to a leg whose Allow listed it, a
 * re-INVITE to any other; the session timer rides in both (proxy.c).
 *
 * While a call is in flight it holds the dialog's lock, and says when its
 * request is pending (sent and not answered, or a first leg's 2xx waiting
 * for the answer its ACK will carry): proxy.c answers an endpoint's own
 * INVITE/UPDATE with 491 then only, and relays it otherwise. A BYE breaks
 * the lock after relaying it: that is how a call learns it was aborted,
 * without proxy.c knowing this module. A 491 from an endpoint is retried after the
 * RFC 3261 14.1 back-off; 481 means the endpoint lost the call, which is
 * then ended on both legs; any other failure (timeout, 401/407, 488...)
 * fails that leg only and the call stays up on the other one: a
 * non-2xx leaves the failed leg's session as it was, and its media, which
 * never crosses this node, keeps flowing.
 *
 * This file also keeps which dialogs are homed here, as far as this node
 * knows: the ones created here (the caller's ACK passed here) and the ones
 * a call moved here; a replicated copy that replaced one of them (another
 * node took it over) no longer counts. rehome(tag) skips those.
 *
 * The job (rehome.c) decides when a call starts; a finished call records
 * its outcome in the job and frees its in-flight slot at once.
 *
 * Trade-off: a leg that never answers ties up its slot until libre's
 * transaction timeout (64*T1 = 32 s on UDP).
 */
#include <re.h>
#include "log.h"
#include "conf.h"
#include "metrics.h"
#include "cseq.h"
#include "dialog.h"
#include "sdpver.h"
#include "sipmsg.h"
#include "proxy.h"
#include "leg.h"
#include "anchor.h"
#include "cluster.h"
#include "shtag.h"
#include "rehome.h"
#include "rehome_int.h"

enum {
	GLARE_TRIES     = 3,      /* requests per leg when the endpoint 491s */
	ACK_WAIT_MS     = 16000,  /* a 2xx waits this long for its answer */
	SCODE_SZ        = 8,      /* a status code as text */
	STEPS_MAX       = 4,      /* requests of one call, answers passed on */
};

/** One dialog being moved */
struct call {
	struct proxy_dest dest;       /* first: proxy_request() context */
	struct le le;                 /* job->calls */
	struct rehome_job *job;
	uint32_t idx;                 /* in job->itemv */
	struct sip_request *req;
	struct tmr tmr;               /* 491 back-off */
	struct tmr ack_tmr;           /* bounds ack_wait */
	enum dialog_leg_id legv[STEPS_MAX];  /* the leg of each step */
	unsigned legc;
	unsigned step;                /* index in legv of the current leg */
	unsigned tries;               /* requests sent to the current leg */
	bool offerless;               /* current INVITE went without SDP */
	bool requesting;              /* current request awaits its answer */
	bool update;                  /* current request is an UPDATE */
	bool dirty;                   /* changed since last replicated */
	bool ack_wait;                /* wait_leg's 2xx awaits the answer */
	enum dialog_leg_id wait_leg;
	unsigned failed;              /* legs that failed, 1 << leg */
	char *sdp;                    /* SDP of the last 2xx */
	struct anchor_move *mv;       /* media_to: the media's move */
	char reason[REHOME_REASON_SZ]; /* first failure */
	uint64_t started;             /* jiffies of the first request */
};

/** A dialog moved here by this module (holds a reference) */
struct homed {
	struct le he;
	struct dialog *dlg;
};

static struct hash *homed_dlgs;   /* struct homed */
static uint32_t inflight;         /* calls in flight, all jobs */


static void call_send(struct call *c);
static void call_response(int err, const struct sip_msg *msg, void *arg);


static void call_destructor(void *arg)
{
	struct call *c = arg;
	struct dialog *dlg = c->dest.dlg;

	list_unlink(&c->le);
	tmr_cancel(&c->tmr);
	tmr_cancel(&c->ack_tmr);
	mem_deref(c->req);
	mem_deref(c->sdp);
	mem_deref(c->mv);
	(void)dialog_unlock(dlg, c);
	mem_deref(dlg);
}


static void homed_destructor(void *arg)
{
	struct homed *hd = arg;

	hash_unlink(&hd->he);
	mem_deref(hd->dlg);
}


static enum dialog_leg_id cur_leg(const struct call *c)
{
	return c->legv[c->step];
}


/** UPDATE, in mode update toward a leg that allows it; else re-INVITE */
static bool use_update(const struct call *c)
{
	return c->job->opts.mode == REHOME_UPDATE &&
		(c->dest.dlg->leg[cur_leg(c)].caps & DIALOG_CAP_UPDATE);
}


static bool is_update(const struct call *c)
{
	return c->update;
}


/** Glare while our request or the first leg's ACK is pending */
static void pending_update(struct call *c)
{
	dialog_lock_pending(c->dest.dlg, c, c->requesting || c->ack_wait);
}


/**
 * Send leg `to` sdp, as the engine's own offer or answer: sdp_out
 * becomes it, with the o= version sdpver.c gives.
 */
static int sdp_send(struct call *c, enum dialog_leg_id to, char *sdp)
{
	struct dialog_leg *leg = &c->dest.dlg->leg[to];
	char *out = NULL;
	int err;

	if (leg->sdp_out == sdp)
		return 0;

	err = dialog_sdp_out(&out, c->dest.dlg, to, sdp, true);
	if (err)
		return err;

	if (out != leg->sdp_out)
		c->dirty = true;

	mem_deref(leg->sdp_out);
	leg->sdp_out = out;
	return 0;
}


/** Replace a shared SDP reference (dst may already hold sdp) */
static void set_sdp(char **dst, char *sdp)
{
	char *old = *dst;

	*dst = mem_ref(sdp);
	mem_deref(old);
}


/* ---- dialogs homed here ------------------------------------------------ */


static bool homed_cmp(struct le *le, void *arg)
{
	const struct homed *hd = le->data;

	return hd->dlg->did == *(uint64_t *)arg;
}


static void homed_add(struct dialog *dlg)
{
	struct homed *hd;

	hd = list_ledata(hash_lookup(homed_dlgs, (uint32_t)dlg->did, homed_cmp,
				     &dlg->did));
	if (hd) {
		mem_deref(hd->dlg);
		hd->dlg = mem_ref(dlg);
		return;
	}

	hd = mem_zalloc(sizeof(*hd), homed_destructor);
	if (!hd)
		return;

	hd->dlg = mem_ref(dlg);
	hash_append(homed_dlgs, (uint32_t)dlg->did, &hd->he, hd);
}


/**
 * The endpoints of dlg have this node's Contact: it was created here (the
 * caller's ACK came through here), or moved here and not replaced since.
 */
bool rehome_homed_here(const struct dialog *dlg)
{
	const struct homed *hd;

	if (dlg->acked)
		return true;

	hd = list_ledata(hash_lookup(homed_dlgs, (uint32_t)dlg->did, homed_cmp,
				     (void *)&dlg->did));
	return hd && hd->dlg == dlg;
}


static bool homed_stale(struct le *le, void *arg)
{
	struct homed *hd = le->data;
	(void)arg;

	if (dialog_lookup(hd->dlg->did) != hd->dlg)
		mem_deref(hd);

	return false;
}


/** Drop what ended or was replaced by another node's copy. */
void rehome_homed_prune(void)
{
	hash_apply(homed_dlgs, homed_stale, NULL);
}


/* ---- one dialog ------------------------------------------------------- */


/**
 * Why the call cannot go on, or NULL: the dialog ended (or a BYE is on its
 * way: proxy.c broke the lock; or another node relayed the BYE and its
 * ending replaced our copy: none is left), or another node's copy
 * replaced it (a write of that node won in Redis: the dialog stays with
 * it).
 */
static const char *call_aborted(const struct call *c)
{
	const struct dialog *dlg = c->dest.dlg;
	const struct dialog *now = dialog_lookup(dlg->did);

	if (dlg->state == DIALOG_ENDED || !now ||
	    !dialog_locked_by(dlg, DIALOG_LOCK_REHOME, c))
		return "bye";

	return now != dlg ? "replaced" : NULL;
}


static enum rehome_outcome abort_outcome(const char *why)
{
	return str_cmp(why, "bye") ? REHOME_FAILED : REHOME_ENDED;
}


/**
 * ACK a leg's 2xx. When our INVITE went without SDP, a 2xx carrying an
 * offer needs the answer in the ACK: `answer`, else the SDP the leg was
 * last sent, which leaves its session as it was.
 */
static void ack_leg(struct call *c, enum dialog_leg_id leg, bool offer,
		    char *answer)
{
	struct dialog *dlg = c->dest.dlg;
	int err;

	if (offer && answer)
		(void)sdp_send(c, leg, answer);

	err = proxy_ack(dlg, leg, "application/sdp",
			offer ? dlg->leg[leg].sdp_out : NULL);
	if (err)
		dialog_log(LOG_WARN, "rehome", dlg, "ACK to %s: %m",
			   dialog_leg_name(leg), err);
}


/** Answer the first leg's waiting 2xx, if any (body none). */
static void flush_ack(struct call *c, char *answer)
{
	if (!c->ack_wait)
		return;

	c->ack_wait = false;
	tmr_cancel(&c->ack_tmr);
	pending_update(c);
	ack_leg(c, c->wait_leg, true, answer);
}


/*
 * The first leg repeats its 2xx until the ACK, and gives up on the call
 * after 64*T1: if the second leg is that slow, answer with what the first
 * leg already has rather than lose the call.
 */
static void ack_timeout(void *arg)
{
	struct call *c = arg;

	dialog_log(LOG_WARN, "rehome", c->dest.dlg, "no answer from the %s "
		   "leg in time; ACKing the %s leg with its previous SDP",
		   dialog_leg_name(leg_other(c->wait_leg)),
		   dialog_leg_name(c->wait_leg));
	flush_ack(c, NULL);
}


static void call_finish(struct call *c, enum rehome_outcome outcome,
			const char *reason)
{
	struct rehome_job *job = c->job;
	struct dialog *dlg = c->dest.dlg;

	flush_ack(c, NULL);
	anchor_move_finish(c->mv, outcome == REHOME_MOVED);
	c->mv = NULL;
	if (c->dirty && dlg->state != DIALOG_ENDED && !call_aborted(c))
		dialog_changed(dlg, DIALOG_EV_UPDATED);
	if (outcome == REHOME_MOVED)
		homed_add(dlg);
	metrics_rehome_duration(rehome_outcome_name(outcome),
				tmr_jiffies() - c->started);
	rehome_item_done(job, c->idx, outcome, reason);

	--inflight;
	mem_deref(c);
	rehome_tick_soon();   /* the slot is free: start the next dialog now */
}


static void call_next(struct call *c)
{
	c->tries = 0;
	if (++c->step < c->legc) {
		call_send(c);
		return;
	}

	if (c->reason[0])
		call_finish(c, REHOME_FAILED, c->reason);
	else
		call_finish(c, REHOME_MOVED, NULL);
}


static void leg_failed(struct call *c, const char *why)
{
	c->failed |= 1u << cur_leg(c);
	if (!c->reason[0])
		(void)re_snprintf(c->reason, sizeof(c->reason), "%s:%s",
				  dialog_leg_name(cur_leg(c)), why);

	dialog_log(LOG_INFO, "rehome", c->dest.dlg, "%s leg failed: %s",
		   dialog_leg_name(cur_leg(c)), why);

	call_next(c);
}


/** The body of the request to the current leg, per the body rule */
static char *offer_body(const struct call *c)
{
	const struct dialog *dlg = c->dest.dlg;
	enum dialog_leg_id leg = cur_leg(c);

	/* anchored: each leg gets the relay's SDP for it; what an endpoint
	 * answers is its own and never crosses to the other leg */
	if (dialog_media(dlg))
		return dlg->leg[leg].sdp_out;

	/* a later leg gets what the leg before answered or offered */
	if (c->step > 0 && c->sdp)
		return c->sdp;

	switch (c->job->opts.body) {

	case REHOME_BODY_OUTBOUND:
		return dlg->leg[leg].sdp_out;

	case REHOME_BODY_INBOUND:
		return dlg->leg[leg_other(leg)].sdp_in;

	default:
		return NULL;
	}
}


static void call_send(struct call *c)
{
	struct dialog *dlg = c->dest.dlg;
	char *body = offer_body(c);
	int err;

	c->dest.to = cur_leg(c);
	c->update = use_update(c);
	c->offerless = !is_update(c) && !body;
	c->tries++;

	if (body && sdp_send(c, c->dest.to, body)) {
		leg_failed(c, "nomem");
		return;
	}

	err = proxy_request(&c->req, &c->dest,
			    is_update(c) ? "UPDATE" : "INVITE",
			    "application/sdp",
			    body ? dlg->leg[c->dest.to].sdp_out : NULL,
			    call_response);
	if (err) {
		leg_failed(c, "unreachable");
		return;
	}

	c->dirty = false;   /* proxy_request replicated the dialog */
	c->requesting = true;
	pending_update(c);
}


/** RFC 3261 14.1: the owner of the Call-ID waits 2.1-4 s, others 0-2 s */
static uint32_t glare_delay(const struct call *c)
{
	bool owner = cur_leg(c) == LEG_CALLEE;  /* its Call-ID is ours */

	return (owner ? 2100 : 0) + 10 * (rand_u32() % (owner ? 191 : 201));
}


static void glare_handler(void *arg)
{
	struct call *c = arg;
	const char *why = call_aborted(c);

	if (why)
		call_finish(c, abort_outcome(why), why);
	else
		call_send(c);
}


/**
 * The last leg so far answered or offered sdp: if the other leg was last
 * sent something else, it gets sdp too (RFC 3264: each side must have the
 * other's description, or media goes one way), in one more request; and
 * so on, at most STEPS_MAX requests in all.
 */
static void pass_on(struct call *c, const char *sdp)
{
	enum dialog_leg_id other = leg_other(cur_leg(c));
	const struct dialog *dlg = c->dest.dlg;

	/* anchored: an endpoint's SDP never crosses; the relay has the
	 * media of both legs (see offer_body) */
	if (dialog_media(dlg))
		return;

	if (!sdp || c->step + 1 < c->legc || (c->failed & (1u << other)) ||
	    sdpver_same(dlg->leg[other].sdp_out, sdp))
		return;

	if (c->legc == STEPS_MAX) {
		dialog_log(LOG_WARN, "rehome", dlg, "the %s leg still has "
			   "another SDP after %u requests: not passed on",
			   dialog_leg_name(other), c->legc);
		return;
	}

	c->legv[c->legc++] = other;
}


/** A 2xx from the current leg: take its target and SDP, then ACK. */
static void leg_answered(struct call *c, const struct sip_msg *msg)
{
	enum dialog_leg_id leg = cur_leg(c);
	struct dialog_leg *dl = &c->dest.dlg->leg[leg];
	uint32_t caps = dl->caps;
	char *sdp = NULL;
	struct pl uri;

	if (!sipmsg_contact_uri(&uri, msg) && pl_strcmp(&uri, dl->target)) {
		(void)dialog_set_id(c->dest.dlg, DIALOG_ID_CALLER_TARGET + leg,
				    &uri);
		c->dirty = true;
	}

	leg_learn_allow(c->dest.dlg, leg, msg);
	if (dl->caps != caps)
		c->dirty = true;

	if (sipmsg_has_sdp(msg) && !sipmsg_body_str(&sdp, msg)) {
		if (str_cmp(sdp, dl->sdp_in)) {
			set_sdp(&dl->sdp_in, sdp);
			c->dirty = true;
		}
		else {   /* unchanged: keep sharing the one copy */
			mem_deref(sdp);
			sdp = mem_ref(dl->sdp_in);
		}
	}

	flush_ack(c, sdp);
	pass_on(c, sdp);

	if (!is_update(c)) {
		if (c->step + 1 < c->legc && c->offerless && sdp) {
			c->ack_wait = true;   /* ACK carries the answer */
			c->wait_leg = leg;
			pending_update(c);
			tmr_start(&c->ack_tmr, ACK_WAIT_MS, ack_timeout, c);
		}
		else {
			ack_leg(c, leg, c->offerless && sdp, NULL);
		}
	}

	if (sdp)
		set_sdp(&c->sdp, sdp);

	mem_deref(sdp);
	call_next(c);   /* a change is replicated by the next request or at
			 * the end (call_finish), once */
}


static void call_response(int err, const struct sip_msg *msg, void *arg)
{
	struct call *c = arg;
	struct dialog *dlg = c->dest.dlg;
	const char *why;
	char code[SCODE_SZ];

	if (!err && msg->scode < 200)
		return;

	c->requesting = false;
	pending_update(c);
	why = call_aborted(c);
	if (why) {
		if (!err && msg->scode < 300 && !is_update(c))
			ack_leg(c, cur_leg(c),
				c->offerless && sipmsg_has_sdp(msg), NULL);
		call_finish(c, abort_outcome(why), why);
		return;
	}

	if (err) {
		leg_failed(c, err == ETIMEDOUT ? "timeout" : "unreachable");
		return;
	}

	if (msg->scode < 300) {
		leg_answered(c, msg);
		return;
	}

	(void)re_snprintf(code, sizeof(code), "%u", msg->scode);

	switch (msg->scode) {

	case 491:
		if (c->tries < GLARE_TRIES) {
			tmr_start(&c->tmr, glare_delay(c), glare_handler, c);
			return;
		}
		leg_failed(c, code);
		break;

	case 481:
		/* the endpoint lost the call: end it on both legs */
		(void)re_snprintf(c->reason, sizeof(c->reason), "%s:481",
				  dialog_leg_name(cur_leg(c)));
		flush_ack(c, NULL);
		(void)proxy_hangup(dlg, "481 to a re-home request");
		call_finish(c, REHOME_FAILED, c->reason);
		break;

	default:
		/* 401/407 too: nobody should challenge a mid-dialog refresh */
		leg_failed(c, code);
		break;
	}
}


static void call_legs(struct call *c, enum rehome_mode mode)
{
	switch (mode) {

	case REHOME_CHALLENGE_CALLEE:
		c->legv[0] = LEG_CALLEE;
		c->legv[1] = LEG_CALLER;
		c->legc = 2;
		break;

	case REHOME_CALLER:
	case REHOME_CALLEE:
		c->legv[0] = mode == REHOME_CALLER ? LEG_CALLER : LEG_CALLEE;
		c->legc = 1;
		break;

	default:
		c->legv[0] = LEG_CALLER;
		c->legv[1] = LEG_CALLEE;
		c->legc = 2;
		break;
	}
}


/** The call's media is on the new relay: re-INVITE the legs to it */
static void media_moved(int err, const char *sdp, void *arg)
{
	struct call *c = arg;
	const char *why = call_aborted(c);
	(void)sdp;

	if (why) {
		call_finish(c, abort_outcome(why), why);
		return;
	}

	if (err) {
		dialog_log(LOG_WARN, "rehome", c->dest.dlg, "media to %s: %m",
			   c->job->opts.media_to, err);
		call_finish(c, REHOME_FAILED, err == EPROTO ? "media:refused"
			    : "media:relay");
		return;
	}

	c->dirty = true;
	call_send(c);
}


/**
 * With media_to, the call's media moves first (two ng round trips), so
 * that one re-INVITE per leg moves both its signalling and its media.
 */
static void call_media(struct call *c)
{
	int err;

	if (!c->job->opts.media_to[0]) {
		call_send(c);
		return;
	}

	err = anchor_move(&c->mv, c->dest.dlg, c->job->opts.media_to,
			  media_moved, c);
	if (err == EALREADY) {
		call_send(c);
	}
	else if (err) {
		dialog_log(LOG_INFO, "rehome", c->dest.dlg, "media to %s: %m",
			   c->job->opts.media_to, err);
		call_finish(c, REHOME_FAILED, err == ENOENT ? "media:unknown"
			    : "media:none");
	}
}


/** Move item idx of job here; one that cannot start gets its outcome */
void rehome_call_start(struct rehome_job *job, uint32_t idx)
{
	struct rehome_item *it = &job->itemv[idx];
	struct dialog *dlg;
	struct call *c;

	if (it->outcome != REHOME_PENDING)
		return;

	dlg = dialog_lookup(it->did);
	if (!dlg || dlg->state != DIALOG_CONFIRMED) {
		rehome_item_done(job, idx, REHOME_ENDED, "gone");
		return;
	}
	if (dialog_locked(dlg)) {
		rehome_item_done(job, idx, REHOME_FAILED, "busy");
		return;
	}
	if (!shtag_may_act(it->tag ? it->tag : dlg->shtag)) {
		/* fenced, or the tag moved on while the job waited */
		rehome_item_done(job, idx, REHOME_FAILED, "tag not held");
		return;
	}

	c = mem_zalloc(sizeof(*c), call_destructor);
	if (!c) {
		rehome_item_done(job, idx, REHOME_FAILED, "nomem");
		return;
	}

	c->dest.dlg = mem_ref(dlg);
	c->job = job;
	c->idx = idx;
	c->started = tmr_jiffies();
	call_legs(c, job->opts.mode);
	list_append(&job->calls, &c->le, c);
	++inflight;

	/*
	 * From now on this node serves the dialog, under a tag it holds;
	 * replicated with the first request's CSeq.
	 */
	(void)dialog_lock(dlg, DIALOG_LOCK_REHOME, c);
	(void)dialog_serve(dlg, rehome_node_id());
	if (it->tag)
		(void)dialog_atom_str(&dlg->shtag, it->tag);

	call_media(c);
}


/*
 * A BYE (or another node) ended the dialog under a call: stop waiting for
 * its endpoint now, which frees the slot. Dropping the request CANCELs it
 * once a provisional came; before one, libre cannot stop an INVITE
 * transaction (nor may a CANCEL be sent, RFC 3261 9.1): it is
 * retransmitted until the endpoint answers or Timer B fires.
 */
void rehome_calls_reap(struct rehome_job *job)
{
	struct le *le;

	for (le = job->calls.head; le; ) {
		struct call *c = le->data;
		const char *why = call_aborted(c);

		le = le->next;
		if (why)
			call_finish(c, abort_outcome(why), why);
	}
}


/* ---- set-up ---------------------------------------------------------- */


/** Dialogs being moved now, over all jobs */
uint32_t rehome_calls_inflight(void)
{
	return inflight;
}


int rehome_call_init(void)
{
	return hash_alloc(&homed_dlgs, 4096);
}


/** After the jobs (and so their calls) are gone */
void rehome_call_close(void)
{
	hash_flush(homed_dlgs);
	homed_dlgs = mem_deref(homed_dlgs);
	inflight = 0;
}

/**
 * @file dialog_state.c  The one door for a dialog's state, owner and lock
 *
 * Other modules read a dialog freely and set its leaf data (legs, SDP,
 * CSeq) through dialog.c's setters, but its life cycle goes through the
 * named transitions here, as Kamailio funnels every change through
 * next_state_dlg(): one function, transition(), checks that the move is
 * legal (early -> confirmed, early -> ended, confirmed -> ended; nothing
 * leaves ended) and announces it to the observer. A refused move returns
 * EPROTO and is logged at debug level: callers race with the endpoints (a
 * BYE ends a call under a re-INVITE in flight), so it is not an error.
 *
 * Change notification is a single observer (the replication layer, when
 * there is a cluster; metrics otherwise), called synchronously, and only
 * for dialogs this node serves (not replicas). A change of leaf data is
 * announced by its caller with dialog_changed(), once for all the fields
 * one message changed, which bumps the version and the activity time.
 * Owner and replica flag (dialog_serve(), dialog_hold()) and the ACK are
 * announced the same way, with the change they belong to: adopting a tag's
 * dialog at once, a re-homed one with its first request.
 *
 * A 2xx to an INVITE is kept per leg until that leg's ACK for it
 * (dialog_ok_keep(), dialog_ack()), and replicated once that ACK is
 * overdue (dialog_ok_share()). Resending it is node-local work that only
 * the node serving the dialog does, so
 * the doors that change who serves it say so: dialog_hold() stops the
 * resend timers, and dialog_serve() of a replica hands each kept 2xx to
 * the ok handler (the SIP layer), which resumes resending it. A dialog
 * that ends forgets its 2xx.
 *
 * The lock says which engine-originated operation owns the dialog now: a
 * re-home call (our re-INVITE in flight) or a hand-off job (another node
 * is taking it). It is typed, so the holder pointer is only ever compared,
 * never cast back to guess what it is. It is node-local and never
 * announced. Holding it is not glare by itself: only while the holder
 * says it has an INVITE or UPDATE pending (dialog_lock_pending()) are the
 * endpoints' own refreshes refused with 491 (RFC 3261 14.2, RFC 3311 5.2);
 * a hand-off waiting for another node, a re-home between two of its
 * requests, refuse nothing. An endpoint's BYE breaks it
 * (dialog_lock_break()): the holder finds out with dialog_locked_by(),
 * without the SIP layer knowing the re-homing module.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "metrics.h"
#include "cseq.h"
#include "dialog.h"
#include "dialog_ext.h"

static dialog_change_h *observer;
static dialog_ok_h *ok_handler;
static dialog_end_h *end_handler;


static void ok_destructor(void *arg)
{
	struct dialog_ok *ok = arg;

	tmr_cancel(&ok->tmr);
	mem_deref(ok->mb);
}


void dialog_set_observer(dialog_change_h *h)
{
	observer = h;
}


/** Who resumes resending a kept 2xx once a replica is served here */
void dialog_set_ok_handler(dialog_ok_h *h)
{
	ok_handler = h;
}


/**
 * Who frees what a call holds outside the dialog when it ends here (its
 * media on the relay): told once, for dialogs this node serves only, as a
 * replica's end elsewhere was handled where it was served.
 */
void dialog_set_end_handler(dialog_end_h *h)
{
	end_handler = h;
}


/** Record a change: new version, fresh activity time, tell the observer. */
void dialog_changed(struct dialog *dlg, enum dialog_event ev)
{
	if (!dlg)
		return;

	dlg->version++;
	dlg->updated = dialog_now();

	if (observer && !dlg->replica)
		observer(dlg, ev);
}


static bool legal(enum dialog_state from, enum dialog_state to)
{
	switch (from) {

	case DIALOG_EARLY:
		return to == DIALOG_CONFIRMED || to == DIALOG_ENDED;

	case DIALOG_CONFIRMED:
		return to == DIALOG_ENDED;

	default:
		return false;
	}
}


static int refuse(const struct dialog *dlg, const char *what)
{
	dialog_log(LOG_DEBUG, "dialog", dlg, "%s refused in state %s", what,
		   dialog_state_name(dlg->state));
	return EPROTO;
}


/** Every change of state: checked, then announced as ev */
static int transition(struct dialog *dlg, enum dialog_state to,
		      enum dialog_event ev)
{
	if (!dlg)
		return EINVAL;

	if (!legal(dlg->state, to))
		return refuse(dlg, dialog_state_name(to));

	dlg->state = to;
	dialog_log(LOG_DEBUG, "dialog", dlg, "%s", dialog_state_name(to));
	dialog_changed(dlg, ev);
	return 0;
}


/**
 * A new early dialog enters the table and is announced.
 *
 * @return 0, EPROTO if it is not a new early dialog, EEXIST if the table
 *         holds its did already
 */
int dialog_start(struct dialog *dlg)
{
	int err;

	if (!dlg)
		return EINVAL;

	if (dlg->state != DIALOG_EARLY || dlg->he.list)
		return refuse(dlg, "start");

	err = dialog_insert(dlg);
	if (err)
		return err;

	metrics_call_started();
	dialog_log(LOG_DEBUG, "dialog", dlg, "early, tag %s", dlg->shtag);
	dialog_changed(dlg, DIALOG_EV_CREATED);
	return 0;
}


/** The callee's tag, from its responses; fixed once the call is up */
int dialog_set_to_tag(struct dialog *dlg, const struct pl *tag)
{
	if (!dlg)
		return EINVAL;

	if (dlg->state != DIALOG_EARLY)
		return refuse(dlg, "new To tag");

	return dialog_set_id(dlg, DIALOG_ID_TO_TAG, tag);
}


/** The 2xx to the initial INVITE: the call is up. */
int dialog_confirm(struct dialog *dlg)
{
	/* what ending a ringing call needs is not replicated any more */
	if (dlg && dlg->state == DIALOG_EARLY && dlg->ext) {
		dlg->ext->early = mem_deref(dlg->ext->early);
		dialog_ext_trim(dlg);
	}

	return transition(dlg, DIALOG_CONFIRMED, DIALOG_EV_CONFIRMED);
}


/** The dialog is over: mark it ended, announce it, leave the table. */
int dialog_end(struct dialog *dlg)
{
	int err;

	if (!dlg)
		return EINVAL;

	mem_ref(dlg);
	err = transition(dlg, DIALOG_ENDED, DIALOG_EV_ENDED);
	if (!err) {
		if (end_handler && !dlg->replica)
			end_handler(dlg);
		dialog_ok_clear(dlg, LEG_CALLER);
		dialog_ok_clear(dlg, LEG_CALLEE);
		dialog_remove(dlg);
	}
	mem_deref(dlg);

	return err;
}


/**
 * `node` serves the dialog from now on: it is its owner, and this node
 * no longer holds it as a replica. Announced by the caller (see above).
 * Taken from another owner, its version jumps DIALOG_TAKE_GAP ahead: that
 * owner's writes until it hears of the take (same version number, another
 * tag, so neither the tag fence nor the version check refuses them) then
 * lose to ours instead of taking the dialog back.
 */
int dialog_serve(struct dialog *dlg, const char *node)
{
	int err;

	if (!dlg || !str_isset(node))
		return EINVAL;

	if (dlg->state == DIALOG_ENDED)
		return refuse(dlg, "serve");

	if (dlg->he.list && (dlg->replica || str_cmp(dlg->owner, node)))
		dialog_log(LOG_DEBUG, "dialog", dlg, "served by %s", node);

	if (dlg->replica && str_isset(dlg->owner) && str_cmp(dlg->owner, node))
		dlg->version += DIALOG_TAKE_GAP;

	err = dialog_atom_str(&dlg->owner, node);
	if (err)
		return err;

	if (!dlg->replica)
		return 0;

	dlg->replica = false;
	for (int leg = LEG_CALLER; ok_handler && leg <= LEG_CALLEE; leg++) {
		struct dialog_ok *ok = dialog_ok_kept(dlg, leg);

		if (ok)
			ok_handler(ok);
	}

	return 0;
}


/** Held for another node: not served here, changes not announced */
void dialog_hold(struct dialog *dlg)
{
	if (!dlg)
		return;

	if (!dlg->replica)
		dialog_log(LOG_DEBUG, "dialog", dlg, "held for %s",
			   dlg->owner ? dlg->owner : "-");
	dlg->replica = true;
	for (int leg = LEG_CALLER; leg <= LEG_CALLEE; leg++) {
		struct dialog_ok *ok = dialog_ok_kept(dlg, leg);

		if (ok)
			tmr_cancel(&ok->tmr);
	}
}


/**
 * Keep our 2xx to an INVITE of `leg` until that leg's ACK for it: a copy
 * of the replicated fields of `ok` (its buffer is shared), replacing any
 * 2xx kept before for the leg. Nothing is resent yet.
 *
 * @param okp  Set to the kept 2xx (optional)
 *
 * @return 0, EINVAL without a buffer, ENOMEM
 */
int dialog_ok_keep(struct dialog_ok **okp, struct dialog *dlg,
		   enum dialog_leg_id leg, const struct dialog_ok *ok)
{
	struct dialog_ext *x;
	struct dialog_ok *k;

	if (!dlg || leg > LEG_CALLEE || !ok || !ok->mb)
		return EINVAL;

	x = dialog_ext_get(dlg);
	if (!x)
		return ENOMEM;

	k = mem_zalloc(sizeof(*k), ok_destructor);
	if (!k) {
		dialog_ext_trim(dlg);
		return ENOMEM;
	}

	k->mb    = mem_ref(ok->mb);
	k->dst   = ok->dst;
	k->tp    = ok->tp;
	k->cseq  = ok->cseq;
	k->ack   = ok->ack;
	k->until = ok->until;
	k->shared = ok->shared;
	k->sock  = ok->sock;
	k->dlg   = dlg;
	k->leg   = leg;

	mem_deref(x->leg[leg].ok);
	x->leg[leg].ok = k;

	if (okp)
		*okp = k;

	return 0;
}


/**
 * The ACK of a kept 2xx is overdue: the 2xx is replicated from now on, so
 * that a node taking the dialog over resends it. Announced by the caller.
 * (An ACK that comes in time spares the cluster the 2xx altogether.)
 */
void dialog_ok_share(struct dialog_ok *ok)
{
	if (ok)
		ok->shared = true;
}


/**
 * An ACK from `leg` with CSeq `cseq`: if it acknowledges the 2xx kept for
 * the leg, that 2xx is forgotten and *ackp says which CSeq the ACK carries
 * to the other leg. Announced by the caller if the 2xx was shared.
 *
 * @return 0, or ENOENT if no 2xx of that INVITE awaits an ACK (a repeated
 *         ACK, or one for a 2xx given up on)
 */
int dialog_ack(struct dialog *dlg, enum dialog_leg_id leg, uint32_t cseq,
	       uint32_t *ackp)
{
	struct dialog_ok *ok;

	if (!dlg || leg > LEG_CALLEE)
		return EINVAL;

	ok = dialog_ok_kept(dlg, leg);
	if (!ok || ok->cseq != cseq)
		return ENOENT;

	if (ackp)
		*ackp = ok->ack;
	if (leg == LEG_CALLER)
		dlg->acked = true;

	dialog_ok_clear(dlg, leg);
	return 0;
}


/** Forget the 2xx kept for a leg (acknowledged, given up, call over) */
void dialog_ok_clear(struct dialog *dlg, enum dialog_leg_id leg)
{
	struct dialog_leg_ext *l = dialog_leg_ext(dlg, leg);

	if (!l)
		return;

	l->ok = mem_deref(l->ok);
	dialog_ext_trim(dlg);
}


/* ---- the lock ------------------------------------------------------ */


static void lock_clear(struct dialog *dlg)
{
	if (!dlg->ext)
		return;

	dlg->ext->lock_kind = DIALOG_LOCK_NONE;
	dlg->ext->lock_pending = false;
	dlg->ext->lock_holder = NULL;
	dialog_ext_trim(dlg);
}


static bool held_by(const struct dialog *dlg, const void *holder)
{
	return dialog_locked(dlg) && dlg->ext->lock_holder == holder;
}


/**
 * Take the dialog for one engine-originated operation.
 *
 * @return 0, EBUSY if anyone holds it (the same holder too), ENOMEM
 */
int dialog_lock(struct dialog *dlg, enum dialog_lock_kind kind,
		const void *holder)
{
	struct dialog_ext *x;

	if (!dlg || kind == DIALOG_LOCK_NONE || !holder)
		return EINVAL;

	if (dialog_locked(dlg))
		return EBUSY;

	x = dialog_ext_get(dlg);
	if (!x)
		return ENOMEM;

	x->lock_kind = (uint8_t)kind;
	x->lock_holder = holder;
	return 0;
}


/** @return 0, or EPERM if `holder` does not hold the lock (any more) */
int dialog_unlock(struct dialog *dlg, const void *holder)
{
	if (!dlg || !holder)
		return EINVAL;

	if (!held_by(dlg, holder))
		return EPERM;

	lock_clear(dlg);
	return 0;
}


/** An endpoint ends the call: whoever holds the lock loses it. */
void dialog_lock_break(struct dialog *dlg)
{
	if (dlg)
		lock_clear(dlg);
}


bool dialog_locked(const struct dialog *dlg)
{
	return dlg && dlg->ext && dlg->ext->lock_kind != DIALOG_LOCK_NONE;
}


bool dialog_locked_by(const struct dialog *dlg, enum dialog_lock_kind kind,
		      const void *holder)
{
	return dialog_locked_as(dlg, kind) && held_by(dlg, holder);
}


/** Held for an operation of this kind, by whoever */
bool dialog_locked_as(const struct dialog *dlg, enum dialog_lock_kind kind)
{
	return dialog_locked(dlg) && dlg->ext->lock_kind == kind;
}


/** The holder's INVITE/UPDATE is pending, or no longer */
void dialog_lock_pending(struct dialog *dlg, const void *holder,
			 bool pending)
{
	if (held_by(dlg, holder))
		dlg->ext->lock_pending = pending;
}


/** An engine-originated INVITE/UPDATE is pending: a refresh is glare */
bool dialog_pending(const struct dialog *dlg)
{
	return dialog_locked(dlg) && dlg->ext->lock_pending;
}

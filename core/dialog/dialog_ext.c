/**
 * @file dialog_ext.c  A dialog's rarely used fields, allocated on first use
 *
 * Most calls never use a media relay, a session timer, a route set or a
 * WebSocket flow, and hold the early part, the kept 2xx and the lock only
 * for moments: in struct dialog those fields cost every established call
 * 96 B, a malloc size class, and the 600 B target (bench/RESULTS.md,
 * "Memory per dialog"). They live in one extension, allocated by the
 * first setter that stores something and freed by the one that leaves it
 * all empty (dialog_ext_trim()), so that a plain established call has
 * none: the early part goes at the answer, the kept 2xx at its ACK. A
 * call that keeps one of them pays the extension (one allocation, 144 B
 * of heap) for as long as it does, and a plain call one allocation more
 * while it is set up.
 *
 * Readers go through the getters here, which give NULL or 0 without an
 * extension; the setters return ENOMEM when they cannot allocate it. What
 * dialog_state.c owns (the early part's end, the kept 2xx, the lock)
 * stays behind its doors; the codec (dialog_codec.c) reads the fields in
 * place and allocates the extension only for a dialog that has one.
 */
#include <stddef.h>
#include <re.h>
#include "cseq.h"
#include "sdpver.h"
#include "dialog.h"
#include "dialog_ext.h"


static void destructor(void *arg)
{
	struct dialog_ext *x = arg;

	mem_deref(x->media);
	mem_deref(x->early);
	mem_deref(x->mcall);
	for (int i = LEG_CALLER; i <= LEG_CALLEE; i++) {
		mem_deref(x->leg[i].route);
		mem_deref(x->leg[i].ok);
		mem_deref(x->leg[i].flow);
	}
}


/** The dialog's extension, allocated if it has none; NULL: no memory */
struct dialog_ext *dialog_ext_get(struct dialog *dlg)
{
	if (!dlg->ext)
		dlg->ext = mem_zalloc(sizeof(*dlg->ext), destructor);

	return dlg->ext;
}


static bool leg_empty(const struct dialog_leg_ext *l)
{
	return !l->route && !l->ok && !l->sdp_off && !l->flow;
}


/** Free the dialog's extension if nothing is left in it */
void dialog_ext_trim(struct dialog *dlg)
{
	const struct dialog_ext *x = dlg ? dlg->ext : NULL;

	if (!x || x->media || x->early || x->se || x->se_refresher ||
	    x->mcall || x->lock_kind != DIALOG_LOCK_NONE ||
	    !leg_empty(&x->leg[LEG_CALLER]) || !leg_empty(&x->leg[LEG_CALLEE]))
		return;

	dlg->ext = mem_deref(dlg->ext);
}


/** A leg's part of the extension, NULL without one */
struct dialog_leg_ext *dialog_leg_ext(const struct dialog *dlg,
				      enum dialog_leg_id leg)
{
	if (!dlg || !dlg->ext || leg > LEG_CALLEE)
		return NULL;

	return &dlg->ext->leg[leg];
}


/*
 * Set a string field of the extension to a new reference to s (NULL
 * clears it). `off` is its place in struct dialog_ext.
 */
static int ext_set_ref(struct dialog *dlg, size_t off, void *s)
{
	struct dialog_ext *x;
	void **slot, *old;

	if (!dlg)
		return EINVAL;

	if (!s && !dlg->ext)
		return 0;

	x = dialog_ext_get(dlg);
	if (!x)
		return ENOMEM;

	slot = (void **)(void *)((uint8_t *)x + off);
	old = *slot;
	*slot = mem_ref(s);
	mem_deref(old);

	dialog_ext_trim(dlg);
	return 0;
}


static size_t leg_off(enum dialog_leg_id leg, size_t field)
{
	return offsetof(struct dialog_ext, leg) +
		leg * sizeof(struct dialog_leg_ext) + field;
}


/** The relay anchoring the call's media (an atom), NULL: none */
const char *dialog_media(const struct dialog *dlg)
{
	return dlg && dlg->ext ? dlg->ext->media : NULL;
}


/** Anchor the call's media on `relay` (NULL: on none) */
int dialog_set_media(struct dialog *dlg, const char *relay)
{
	struct dialog_ext *x;
	int err;

	if (!dlg)
		return EINVAL;

	if (!relay && !dlg->ext)
		return 0;

	x = dialog_ext_get(dlg);
	if (!x)
		return ENOMEM;

	err = dialog_atom_str(&x->media, relay);
	dialog_ext_trim(dlg);
	return err;
}


/** The call's media call on its relay, once used on this node */
struct media_call *dialog_mcall(const struct dialog *dlg)
{
	return dlg && dlg->ext ? dlg->ext->mcall : NULL;
}


/** The dialog keeps a reference to mc (NULL: drops the one it has) */
int dialog_set_mcall(struct dialog *dlg, struct media_call *mc)
{
	return ext_set_ref(dlg, offsetof(struct dialog_ext, mcall), mc);
}


/** What ending the ringing call needs (dialog_early_alloc()), or NULL */
struct dialog_early *dialog_early(const struct dialog *dlg)
{
	return dlg && dlg->ext ? dlg->ext->early : NULL;
}


/** The session interval the endpoints agreed on (RFC 4028), s; 0: none */
uint32_t dialog_se(const struct dialog *dlg)
{
	return dlg && dlg->ext ? dlg->ext->se : 0;
}


/** The leg (enum dialog_leg_id) that refreshes the session */
uint32_t dialog_se_refresher(const struct dialog *dlg)
{
	return dlg && dlg->ext ? dlg->ext->se_refresher : 0;
}


int dialog_set_se(struct dialog *dlg, uint32_t se, uint32_t refresher)
{
	struct dialog_ext *x;

	if (!dlg)
		return EINVAL;

	if (!se && !refresher && !dlg->ext)
		return 0;

	x = dialog_ext_get(dlg);
	if (!x)
		return ENOMEM;

	x->se = se;
	x->se_refresher = refresher;
	dialog_ext_trim(dlg);
	return 0;
}


/** The route set toward a leg, "<uri>,<uri>", or NULL */
const char *dialog_route(const struct dialog *dlg, enum dialog_leg_id leg)
{
	const struct dialog_leg_ext *l = dialog_leg_ext(dlg, leg);

	return l ? l->route : NULL;
}


/** The leg's route set becomes a new reference to route (NULL: none) */
int dialog_set_route(struct dialog *dlg, enum dialog_leg_id leg,
		     char *route)
{
	if (leg > LEG_CALLEE)
		return EINVAL;

	return ext_set_ref(dlg, leg_off(leg, offsetof(struct dialog_leg_ext,
						      route)), route);
}


/** Our 2xx kept for the leg's ACK (dialog_ok_keep()), or NULL */
struct dialog_ok *dialog_ok_kept(const struct dialog *dlg,
				 enum dialog_leg_id leg)
{
	const struct dialog_leg_ext *l = dialog_leg_ext(dlg, leg);

	return l ? l->ok : NULL;
}


/** What is added to the o= version of the SDP sent to the leg */
uint64_t dialog_sdp_off(const struct dialog *dlg, enum dialog_leg_id leg)
{
	const struct dialog_leg_ext *l = dialog_leg_ext(dlg, leg);

	return l ? l->sdp_off : 0;
}


/**
 * The SDP to send leg `leg` for `sdp`, with the leg's o= offset, which
 * grows if need be (sdpver_out()); the caller makes it the leg's sdp_out.
 *
 * @param outp  Set to a reference: sdp, the leg's sdp_out or a copy
 *
 * @return 0, or ENOMEM
 */
int dialog_sdp_out(char **outp, struct dialog *dlg, enum dialog_leg_id leg,
		   char *sdp, bool own)
{
	uint64_t off;
	int err;

	if (!outp || !dlg || leg > LEG_CALLEE)
		return EINVAL;

	off = dialog_sdp_off(dlg, leg);
	err = sdpver_out(outp, &off, dlg->leg[leg].sdp_out, sdp, own);
	if (err || off == dialog_sdp_off(dlg, leg))
		return err;

	if (!dialog_ext_get(dlg)) {
		*outp = mem_deref(*outp);
		return ENOMEM;
	}

	dlg->ext->leg[leg].sdp_off = off;
	return 0;
}


/** The hop over the leg's WebSocket connection, or NULL */
const char *dialog_flow(const struct dialog *dlg, enum dialog_leg_id leg)
{
	const struct dialog_leg_ext *l = dialog_leg_ext(dlg, leg);

	return l ? l->flow : NULL;
}


/** The leg's flow becomes a new reference to flow (NULL: none) */
int dialog_set_flow(struct dialog *dlg, enum dialog_leg_id leg, char *flow)
{
	if (leg > LEG_CALLEE)
		return EINVAL;

	return ext_set_ref(dlg, leg_off(leg, offsetof(struct dialog_leg_ext,
						      flow)), flow);
}

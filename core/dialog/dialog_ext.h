/**
 * @file dialog_ext.h  A dialog's rarely used fields (core/dialog only)
 */

#ifndef REHOME_DIALOG_EXT_H
#define REHOME_DIALOG_EXT_H

#include "dialog.h"

/** A leg's rarely used fields */
struct dialog_leg_ext {
	char *route;           /* route set toward it: "<uri>,<uri>" or NULL */
	struct dialog_ok *ok;  /* our 2xx awaiting its ACK, or NULL */
	uint64_t sdp_off;      /* added to the o= version of SDP sent to it */
	char *flow;            /* node-local, not replicated: the hop over the
				  WebSocket connection the endpoint came on */
};

/**
 * The fields of struct dialog that a plain call never uses, allocated on
 * first use and freed once all are empty again (dialog_ext_trim())
 */
struct dialog_ext {
	char *media;           /* relay anchoring its media (atom), or NULL */
	struct dialog_early *early; /* while early, or NULL */
	uint32_t se;           /* session interval (RFC 4028), s; 0: none */
	uint32_t se_refresher; /* the leg (dialog_leg_id) that refreshes */
	struct dialog_leg_ext leg[2];

	/* node-local, never serialized */
	struct media_call *mcall; /* its media on `media`, once used here */
	/*
	 * The lock: one engine-originated operation at a time. While the
	 * holder has an INVITE or UPDATE of its own pending, the endpoints'
	 * own session refreshes are glare and refused (491); otherwise they
	 * are relayed as usual (dialog_state.c).
	 */
	const void *lock_holder; /* compared, never dereferenced */
	uint8_t lock_kind;     /* enum dialog_lock_kind */
	bool lock_pending;     /* the holder's INVITE/UPDATE is pending */
};

struct dialog_ext *dialog_ext_get(struct dialog *dlg);
void dialog_ext_trim(struct dialog *dlg);
struct dialog_leg_ext *dialog_leg_ext(const struct dialog *dlg,
				      enum dialog_leg_id leg);

#endif

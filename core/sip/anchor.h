/**
 * @file anchor.h  A call's SDP through its media relay (rtpengine)
 */

#include "dialog.h"

struct rh_conf;
struct mrelay_set;
struct anchor_move;
struct odict;

/** An SDP passed the relay: `sdp` is what to send on (NULL on error) */
typedef void (anchor_h)(int err, const char *sdp, void *arg);
/** A relay stopped answering (up false) or answers again */
typedef void (anchor_relay_h)(const char *relay, bool up, void *arg);

int  anchor_init(const struct rh_conf *cfg);
void anchor_close(void);
bool anchor_enabled(void);
struct mrelay_set *anchor_relays(void);
int  anchor_relays_odict(struct odict **odp);
void anchor_set_relay_handler(anchor_relay_h *h, void *arg);
int  anchor_choose(struct dialog *dlg);
int  anchor_move(struct anchor_move **mvp, struct dialog *dlg, const char *to,
		 anchor_h *h, void *arg);
void anchor_move_finish(struct anchor_move *mv, bool legs_moved);
int  anchor_sdp(struct dialog *dlg, enum dialog_leg_id from, bool offer,
		const struct pl *sdp, anchor_h *h, void *arg);

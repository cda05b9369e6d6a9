/**
 * @file leg.h  Reaching one leg of a dialog: next hop, addresses, sending
 */

#include "dialog.h"

enum { LEG_CALLID_SZ = 40 };  /* "rh-<did>-<key>" + NUL */

void leg_init(struct sip *sip);
enum dialog_leg_id leg_other(enum dialog_leg_id leg);
const char *leg_callid(const struct dialog *dlg, enum dialog_leg_id leg,
		       char *buf, size_t sz);
bool leg_match(const struct dialog *dlg, enum dialog_leg_id from,
	       const struct sip_msg *msg);
const struct sa *leg_laddr(const struct dialog *dlg, enum dialog_leg_id leg,
			   enum sip_transp tp);
int  leg_hop(struct pl *hop, const struct dialog *dlg,
	      enum dialog_leg_id leg);
int  leg_print_route(struct mbuf *mb, const char *route);
int  leg_send_handler(enum sip_transp tp, const struct sa *src,
		      const struct sa *dst, struct mbuf *mb, void *arg);
int  leg_send(struct sip_request **reqp, const struct pl *met,
	      const char *ruri, const struct pl *hop, struct mbuf *mb,
	      sip_resp_h *resph, void *arg);
int  leg_learn_sdp(struct dialog *dlg, enum dialog_leg_id from,
		   const struct sip_msg *msg);
int  leg_learn_flow(struct dialog *dlg, enum dialog_leg_id leg,
		    const struct sip_msg *msg);
int  leg_sent_sdp(struct dialog *dlg, enum dialog_leg_id to,
		  const char *sdp, bool own);
void leg_body(struct pl *body, const struct dialog *dlg,
	      enum dialog_leg_id to, const struct sip_msg *msg, bool learned);
bool leg_learn_timer(struct dialog *dlg, enum dialog_leg_id uac,
		     const struct sip_msg *resp);
void leg_learn_allow(struct dialog *dlg, enum dialog_leg_id leg,
		     const struct sip_msg *msg);
int  leg_learn_target(struct dialog *dlg, enum dialog_leg_id leg,
		      const struct sip_msg *msg);

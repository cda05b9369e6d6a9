/**
 * @file reliable.h  2xx to INVITE resent until its ACK; the ACK resent per copy
 */

#include "dialog.h"

int  reliable_init(struct sip *sip);
void reliable_close(void);
int  reliable_2xx(struct dialog *dlg, enum dialog_leg_id leg,
		  const struct sip_msg *inv, uint32_t ack, struct mbuf *mb,
		  const struct sa *dst);
int  reliable_ack(struct dialog *dlg, enum dialog_leg_id to, uint32_t cseq,
		  const char *ruri, const struct pl *hop, struct mbuf *hdrs);
int  reliable_ack_send(const struct pl *callid, const struct pl *ftag,
		      const struct pl *ttag, uint32_t cseq, const char *ruri,
		      const struct pl *hop, struct mbuf *hdrs);
int  reliable_echo(const struct sip_msg *inv, struct mbuf *mb,
		   const struct sa *dst);
bool reliable_stray(const struct sip_msg *msg);

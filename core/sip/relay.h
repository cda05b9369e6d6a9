/**
 * @file relay.h  One request crossing from one leg to the other
 */

#include "proxy.h"

/** One request crossing from leg `from` to the other leg */
struct relay {
	struct proxy_dest dest;     /* must stay first: see proxy_dest */
	struct le le_linger;        /* in the linger wheel once answered */
	struct le le_ring;          /* an INVITE awaiting its final answer */
	const struct sip_msg *msg;  /* the request as received */
	struct sip_strans *st;      /* toward the sender */
	struct sip_request *req;    /* toward the other leg: INVITE, */
	struct nict *nict;          /* or any other method */
	char *body;                 /* anchored: the relay's SDP to send */
	char *ruri;                 /* anchored: where to, once it is back */
	char *hop;
	struct list held;           /* responses waiting for their SDP's turn
				       through the relay, in order */
	uint64_t sent;              /* INVITE: when it went out (jiffies) */
	uint32_t ack_cseq;          /* ACK: its CSeq toward the other leg */
	enum dialog_leg_id from;
	bool initial;               /* the dialog-creating INVITE */
	bool canceled;
	bool anchoring;             /* an SDP of r is at the relay now */
	bool changed;               /* what the response there changed */
};

void relay_init(struct sip *sip);
void relay_tick(uint32_t ring_timeout);
int  relay_ring_end(struct dialog *dlg);
int  relay_alloc(struct relay **rp, struct dialog *dlg,
		 const struct sip_msg *msg, enum dialog_leg_id from);
int  relay_send(struct relay *r, const char *ruri, const struct pl *hop);
int  relay_request(struct relay *r, const char *ruri, const struct pl *hop,
		   struct mbuf *mb);
void relay_failed(struct relay *r, int err);
void relay_ack(struct dialog *dlg, const struct sip_msg *msg,
	       enum dialog_leg_id from);

/**
 * @file cseq.h  CSeq numbering of one leg, per direction
 */

#ifndef REHOME_CSEQ_H
#define REHOME_CSEQ_H

/**
 * The CSeq state of one leg, seen from the engine:
 * `rseq` is the highest CSeq the endpoint sent us, `lseq` the highest we
 * sent it. `off` is added to the CSeq of a request relayed to this leg from
 * the other one; it grows whenever the engine sends a request of its own.
 * `ack` is the CSeq of the last INVITE sent to this leg (for its 2xx ACK).
 */
struct cseq_leg {
	uint32_t rseq;
	uint32_t lseq;
	uint32_t off;
	uint32_t ack;
};

int      cseq_recv(struct cseq_leg *from, uint32_t num, bool is_ack);
uint32_t cseq_relay(struct cseq_leg *to, uint32_t num, bool is_invite);
uint32_t cseq_relay_ack(const struct cseq_leg *to);
uint32_t cseq_originate(struct cseq_leg *to, bool is_invite);
uint32_t cseq_rack(const struct cseq_leg *to, uint32_t num);

#endif

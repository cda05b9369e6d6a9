/**
 * @file cseq.c  CSeq numbering of one leg, per direction
 *
 * Both endpoints keep their own CSeq counters, and so does the engine
 * toward each of them. As long as the engine only relays, a request keeps
 * its number. Once the engine sends a request of its own (a re-INVITE when
 * a call is re-homed) the leg it went to has seen a number the other
 * endpoint never used, so every later request relayed to that leg must be
 * renumbered above it. An offset per leg does that: it only grows, so the
 * numbers each endpoint sees strictly increase, and it is a single integer
 * to replicate. Responses need no reverse mapping here: the server
 * transaction that answers the sender keeps the sender's own CSeq.
 */
#include <re.h>
#include "cseq.h"


/**
 * Check a request's CSeq against what the endpoint sent before.
 * ACK and CANCEL reuse the number of their INVITE and are always accepted.
 *
 * @return 0, or EPROTO if the number went backwards (answer 500)
 */
int cseq_recv(struct cseq_leg *from, uint32_t num, bool is_ack)
{
	if (is_ack)
		return 0;

	if (from->rseq && num <= from->rseq)
		return EPROTO;

	from->rseq = num;
	return 0;
}


/** Number for a request relayed to `to` that carried `num` */
uint32_t cseq_relay(struct cseq_leg *to, uint32_t num, bool is_invite)
{
	uint32_t out = num + to->off;

	if (to->lseq && out <= to->lseq) {
		to->off = to->lseq + 1 - num;
		out = to->lseq + 1;
	}

	to->lseq = out;
	if (is_invite)
		to->ack = out;

	return out;
}


/** Number for the ACK of the last INVITE relayed to `to` */
uint32_t cseq_relay_ack(const struct cseq_leg *to)
{
	return to->ack;
}


/** Number for a request the engine itself sends to `to` */
uint32_t cseq_originate(struct cseq_leg *to, bool is_invite)
{
	uint32_t out = to->lseq + 1;

	to->lseq = out;
	if (is_invite)
		to->ack = out;

	return out;
}


/**
 * The CSeq number a RAck relayed to `to` must name, for a RAck naming the
 * sender's INVITE `num`: a reliable provisional answers the INVITE still
 * in progress toward `to`, the last one relayed to it (RFC 3262 7.1),
 * whose number may differ from the sender's.
 */
uint32_t cseq_rack(const struct cseq_leg *to, uint32_t num)
{
	return to->ack ? to->ack : num + to->off;
}

/**
 * @file nict.c  Non-INVITE client transactions, without libre's lingering timer
 *
 * libre's client transaction keeps a non-INVITE request alive for T4 (5 s)
 * after its final response over UDP, on a timer of its own; libre 1.1.0's
 * timers are one sorted list, so at thousands of calls per second every
 * new timer walks thousands of those (half of rehomed's CPU, measured with
 * perf). A UAC has nothing to do in that state but swallow retransmitted
 * responses, which the proxy's stray-response listener ignores anyway.
 *
 * So BYE, INFO, UPDATE and friends go out through this small transaction
 * of our own (RFC 3261 17.1.2): the message is built whole, with our own
 * Via branch, sent with sip_send(), retransmitted over UDP at T1, 2T1, ...
 * T2, and given up after 64*T1; a response with our branch ends it at
 * once. Only UDP destinations given as IP addresses are handled here
 * (the engine resolves no names, and over TCP libre keeps nothing after
 * the response); anything else goes through libre.
 *
 * Like libre's sip_request, the owner holds a pointer to the transaction:
 * dereferencing it cancels the transaction (no callback), and it is
 * cleared when the transaction ends.
 */
#include <string.h>
#include <re.h>
#include "nict.h"

enum { T1 = 500, T2 = 4000, TIMEOUT = 64 * T1, BRANCH_SZ = 24 };

struct nict {
	struct le he;            /* pending transactions, by branch */
	struct tmr tmr_retx;
	struct tmr tmr_timeout;
	struct mbuf *mb;
	struct sa dst;
	enum sip_transp tp;
	char branch[BRANCH_SZ];
	uint32_t interval;
	struct nict **ntp;       /* the owner's pointer, cleared at the end */
	sip_resp_h *resph;
	void *arg;
};

static struct {
	struct sip *sip;
	struct hash *pending;
} nt;


static void destructor(void *arg)
{
	struct nict *t = arg;

	if (t->ntp)
		*t->ntp = NULL;
	hash_unlink(&t->he);
	tmr_cancel(&t->tmr_retx);
	tmr_cancel(&t->tmr_timeout);
	mem_deref(t->mb);
}


static void finish(struct nict *t, int err, const struct sip_msg *msg)
{
	sip_resp_h *resph = t->resph;
	void *arg = t->arg;

	t->resph = NULL;
	mem_deref(t);
	if (resph)
		resph(err, msg, arg);
}


static void retx_handler(void *arg)
{
	struct nict *t = arg;

	t->interval = MIN(t->interval * 2, (uint32_t)T2);
	tmr_start(&t->tmr_retx, t->interval, retx_handler, t);
	t->mb->pos = 0;
	(void)sip_send(nt.sip, NULL, t->tp, &t->dst, t->mb);
}


static void timeout_handler(void *arg)
{
	finish(arg, ETIMEDOUT, NULL);
}


static bool branch_cmp(struct le *le, void *arg)
{
	const struct nict *t = le->data;

	return 0 == pl_strcmp(arg, t->branch);
}


/**
 * A response for one of our transactions? Provisional ones are handed on,
 * a final one ends the transaction.
 *
 * @return true if it was ours
 */
bool nict_response(const struct sip_msg *msg)
{
	struct nict *t;

	if (!nt.pending)
		return false;

	t = list_ledata(hash_lookup(nt.pending,
				    hash_joaat_pl(&msg->via.branch),
				    branch_cmp, (void *)&msg->via.branch));
	if (!t)
		return false;

	if (msg->scode < 200) {
		/* a provisional answer: wait for the final one (17.1.2.2) */
		t->interval = T2;
		if (t->resph)
			t->resph(0, msg, t->arg);
		return true;
	}

	finish(t, 0, msg);
	return true;
}


/** The destination of `hop`, if it is an IP address (else ENOTSUP) */
static int hop_addr(struct sa *dst, enum sip_transp *tpp,
		    const struct uri *hop)
{
	struct pl tp;

	*tpp = SIP_TRANSP_UDP;
	if (!msg_param_decode(&hop->params, "transport", &tp) &&
	    pl_strcasecmp(&tp, "udp"))
		return ENOTSUP;

	return sa_set(dst, &hop->host, hop->port ? hop->port : SIP_PORT)
		? ENOTSUP : 0;
}


/**
 * Send a non-INVITE request statefully.
 *
 * @param ntp        Set to the transaction while it is pending
 * @param met, ruri  Request line
 * @param hop        Next hop (IP address; ENOTSUP otherwise)
 * @param hdrs       Headers after the Via, blank line and body included
 * @param sendh      Called with the local address, to add headers
 * @param resph      Response handler: provisional and final responses,
 *                   or an error (ETIMEDOUT) when none came
 */
int nict_request(struct nict **ntp, const struct pl *met, const char *ruri,
		 const struct uri *hop, struct mbuf *hdrs,
		 sip_send_h *sendh, sip_resp_h *resph, void *arg)
{
	struct nict *t;
	struct sa laddr;
	int err;

	if (!nt.sip || !ntp || !met || !ruri || !hop || !hdrs)
		return EINVAL;

	t = mem_zalloc(sizeof(*t), destructor);
	if (!t)
		return ENOMEM;

	err = hop_addr(&t->dst, &t->tp, hop);
	if (!err)
		err = sip_transp_laddr(nt.sip, &laddr, t->tp, &t->dst);
	if (err)
		goto out;

	(void)re_snprintf(t->branch, sizeof(t->branch), "z9hG4bK%016llx",
			  (unsigned long long)rand_u64());

	t->mb = mbuf_alloc(256 + mbuf_get_left(hdrs));
	if (!t->mb) {
		err = ENOMEM;
		goto out;
	}

	err  = mbuf_printf(t->mb, "%r %s SIP/2.0\r\n", met, ruri);
	err |= mbuf_printf(t->mb, "Via: SIP/2.0/%s %J;branch=%s;rport\r\n",
			   sip_transp_name(t->tp), &laddr, t->branch);
	if (!err && sendh)
		err = sendh(t->tp, &laddr, &t->dst, t->mb, arg);
	err |= mbuf_write_mem(t->mb, mbuf_buf(hdrs), mbuf_get_left(hdrs));
	if (err)
		goto out;

	t->mb->pos = 0;
	err = sip_send(nt.sip, NULL, t->tp, &t->dst, t->mb);
	if (err)
		goto out;

	t->resph = resph;
	t->arg = arg;
	t->ntp = ntp;
	*ntp = t;
	hash_append(nt.pending, hash_joaat_str(t->branch), &t->he, t);
	tmr_start(&t->tmr_timeout, TIMEOUT, timeout_handler, t);
	if (t->tp == SIP_TRANSP_UDP) {
		t->interval = T1;
		tmr_start(&t->tmr_retx, T1, retx_handler, t);
	}

 out:
	if (err)
		mem_deref(t);

	return err;
}


static bool flush_handler(struct le *le, void *arg)
{
	(void)arg;

	finish(le->data, ECONNABORTED, NULL);
	return false;
}


int nict_init(struct sip *sip)
{
	nt.sip = sip;
	return hash_alloc(&nt.pending, 1024);
}


/** End every pending transaction, telling its owner (as libre does). */
void nict_close(void)
{
	if (nt.pending)
		hash_apply(nt.pending, flush_handler, NULL);

	nt.pending = mem_deref(nt.pending);
	nt.sip = NULL;
}

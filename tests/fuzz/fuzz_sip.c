/**
 * @file fuzz_sip.c  libFuzzer target: a SIP message through the engine
 *
 * The input is one SIP message, as it would arrive in a UDP datagram. It
 * is decoded by libre, passed the two checks libre's transport makes
 * before any listener sees a message (the essential headers, the CSeq
 * method), and handed to the engine's own request or response handler
 * (fuzz_engine.c): the door (sipcheck), loop detection, dialog matching,
 * CSeq, header rewriting, SDP learning, relaying. Replies go out by UDP
 * to port 9, relayed requests by TCP (below).
 *
 * So that in-dialog requests reach the deep end, a confirmed dialog with
 * fixed identifiers (FUZZ_* below, also in the seeds, made by
 * tests/fuzz/seeds.py) is put back in its initial state before every
 * input. dialog_timeout and ring_timeout are 1 s and the loop is turned
 * after each input, so that the engine's own sweeps reap what the inputs
 * create, as on a busy node, and memory stays bounded.
 *
 * Whatever the engine relays goes over TCP to a closed port: the
 * connection is refused within a turn of the loop and the transaction
 * ends in error there. Relayed over UDP to nowhere, each would live 32 s
 * on libre's timers, whose one sorted list (libre 1.1.0) then grows to
 * tens of thousands and slows every input down to a 10 s timeout after
 * ten minutes of fuzzing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "conf.h"
#include "dialog.h"
#include "redis.h"
#include "fuzz_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char conf_text[] =
	"node_id fuzz\n"
	"listen udp:127.0.0.1:5060 tag=public\n"
	"upstream tcp:127.0.0.1:9\n"
	"dialog_timeout 1\n"
	"ring_timeout 1\n"
	"ctl_listen 127.0.0.1:8060\n"
	"log_level error\n";

/* the fixed dialog; tests/fuzz/seeds.py writes them into the seeds */
static const uint64_t FUZZ_DID        = 0x0123456789abcdefULL;
static const uint64_t FUZZ_KEY_CALLER = 0x1111111111111111ULL;
static const uint64_t FUZZ_KEY_CALLEE = 0x2222222222222222ULL;
static const uint64_t FUZZ_CALLID_KEY = 0x3333333333333333ULL;
#define FUZZ_CALLID "fuzzcall@127.0.0.1"
#define FUZZ_FROM   "<sip:alice@127.0.0.1>;tag=alicetag"
#define FUZZ_TO     "<sip:bob@127.0.0.1>"
#define FUZZ_TO_TAG "bobtag"


int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;

	return fuzz_engine_init(conf_text);
}


static int leg_set(struct dialog *dlg, enum dialog_leg_id id,
		   const char *target, uint64_t key)
{
	struct dialog_leg *leg = &dlg->leg[id];
	struct pl pl;

	pl_set_str(&pl, target);
	leg->contact_key = key;
	leg->tp = SIP_TRANSP_TCP;
	leg->cseq.rseq = 1;
	leg->cseq.lseq = 1;

	return dialog_set_id(dlg, DIALOG_ID_CALLER_TARGET + id, &pl) |
		dialog_atom_str(&leg->lsnr_tag, "public");
}


/** The fixed dialog, confirmed, as its call left it: a fresh copy */
static void fixed_dialog_reset(void)
{
	struct dialog *dlg = dialog_lookup(FUZZ_DID);
	struct pl callid = PL(FUZZ_CALLID), from = PL(FUZZ_FROM);
	struct pl to = PL(FUZZ_TO), tag = PL(FUZZ_TO_TAG);
	int err;

	if (dlg)
		(void)dialog_end(dlg);

	err = dialog_alloc(&dlg, FUZZ_DID);
	if (err)
		abort();

	dlg->callid_key = FUZZ_CALLID_KEY;
	err  = dialog_set_id(dlg, DIALOG_ID_CALLID, &callid);
	err |= dialog_set_id(dlg, DIALOG_ID_FROM, &from);
	err |= dialog_set_id(dlg, DIALOG_ID_TO, &to);
	err |= dialog_atom_str(&dlg->shtag, "default");
	err |= dialog_serve(dlg, fuzz_engine_conf()->node_id);
	err |= leg_set(dlg, LEG_CALLER, "sip:alice@127.0.0.1:9;transport=tcp",
		       FUZZ_KEY_CALLER);
	err |= leg_set(dlg, LEG_CALLEE, "sip:bob@127.0.0.1:9;transport=tcp",
		       FUZZ_KEY_CALLEE);
	if (!err)
		err = dialog_start(dlg);
	if (!err)
		err = dialog_set_to_tag(dlg, &tag);
	if (!err)
		err = dialog_confirm(dlg);
	if (err)
		abort();

	mem_deref(dlg);   /* the table holds it */
}


/* What libre's transport checks before any listener (sip/transp.c) */
static bool transport_passes(const struct sip_msg *msg)
{
	if (!msg->req)
		return true;

	return pl_isset(&msg->to.auri) && pl_isset(&msg->from.auri) &&
		pl_isset(&msg->cseq.met) && pl_isset(&msg->callid) &&
		pl_isset(&msg->maxfwd) && pl_isset(&msg->via.branch) &&
		!pl_casecmp(&msg->cseq.met, &msg->met);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sip_msg *msg = NULL;
	struct mbuf *mb;

	mb = mbuf_alloc(size ? size : 1);
	if (!mb)
		abort();
	(void)mbuf_write_mem(mb, data, size);
	mb->pos = 0;

	fixed_dialog_reset();

	if (!sip_msg_decode(&msg, mb)) {
		(void)sa_set_str(&msg->src, "127.0.0.1", 9);
		msg->dst = fuzz_engine_conf()->listen[0].addr;
		msg->tp = SIP_TRANSP_UDP;

		if (transport_passes(msg))
			(void)fuzz_engine_sip_handler(msg->req)(msg, NULL);
	}

	mem_deref(msg);
	mem_deref(mb);
	fuzz_engine_poll();

	return 0;
}
